#!/bin/sh
# `npm test` after setup: the layering check, then two lanes at once —
#   unit tests, two files at a time (CPU-bound, minutes), and
#   end-to-end and chaos tests, one file at a time (real time-bound: real FFmpeg, Redis, Varnish,
#   Chromium), the chaos runs last so that they have the machine to themselves.
# The unit lane's report is printed when it ends; the suite fails if either lane fails.
set -u
cd "$(dirname "$0")/.."

npm run --silent lint:deps || exit 1

unit_log=$(mktemp)
trap 'rm -f "$unit_log"' EXIT
npx tap --jobs 2 --exclude 'test/e2e/**' >"$unit_log" 2>&1 &
unit_pid=$!

# tap sorts the files it is given, so the chaos runs are a second invocation.
e2e_files=$(ls test/e2e/*.test.ts | grep -v '/chaos-')
# shellcheck disable=SC2086
npx tap --jobs 1 $e2e_files
e2e_status=$?
npx tap --jobs 1 test/e2e/chaos-*.test.ts || e2e_status=1

wait "$unit_pid"
unit_status=$?
echo "--- unit tests (run beside the end-to-end lane) ---"
cat "$unit_log"
echo "unit lane: exit $unit_status; end-to-end lane: exit $e2e_status"
[ "$unit_status" -eq 0 ] && [ "$e2e_status" -eq 0 ]
