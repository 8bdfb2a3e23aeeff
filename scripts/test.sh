#!/bin/sh
# `npm test` after setup: the layering check, then two lanes at once —
#   unit tests, two files at a time (CPU-bound, minutes), and
#   end-to-end and chaos tests, one file at a time (real time-bound: real FFmpeg, Redis, Varnish,
#   Chromium), the chaos and hostile-client runs last so that they have the machine to themselves.
# The unit lane's report is printed when it ends; the suite fails if either lane fails.
set -u
cd "$(dirname "$0")/.."

npm run --silent lint:deps || exit 1

unit_log=$(mktemp)
e2e_log=$(mktemp)
trap 'rm -f "$unit_log" "$e2e_log" "$e2e_log.status"' EXIT
npx tap --jobs 2 --exclude 'test/e2e/**' >"$unit_log" 2>&1 &
unit_pid=$!

# tap sorts the files it is given, so the runs that need the machine to themselves (the chaos
# runs, and the hostile-clients run that measures a listener's latency under an attack) are a
# second invocation, which starts after the unit lane has long finished.
late='/chaos-|/hostile-clients\.'
e2e_files=$(ls test/e2e/*.test.ts | grep -Ev "$late")
late_files=$(ls test/e2e/*.test.ts | grep -E "$late")
# The end-to-end report is shown as it runs and kept in a log, so that the failures of both lanes
# can be repeated at the very end, where a CI that keeps only the tail of the output shows them.
run_e2e() {
  { npx tap --jobs 1 "$@" 2>&1; echo $? >"$e2e_log.status"; } | tee -a "$e2e_log"
  return "$(cat "$e2e_log.status")"
}
# shellcheck disable=SC2086
run_e2e $e2e_files
e2e_status=$?
# shellcheck disable=SC2086
run_e2e $late_files || e2e_status=1

wait "$unit_pid"
unit_status=$?
echo "--- unit tests (run beside the end-to-end lane) ---"
cat "$unit_log"
echo "unit lane: exit $unit_status; end-to-end lane: exit $e2e_status"
if [ "$unit_status" -ne 0 ] || [ "$e2e_status" -ne 0 ]; then
  echo "--- failures (repeated from the reports above) ---"
  # A failed assertion is a `not ok` line followed by its indented YAML diagnostic (`---` … `...`).
  cat "$unit_log" "$e2e_log" | awk '
    /^ *not ok / && !/# TODO/ { show = 1; lines = 0 }
    show { print; lines++ }
    show && (/^ *\.\.\.$/ || lines > 40) { show = 0 }
  '
fi
[ "$unit_status" -eq 0 ] && [ "$e2e_status" -eq 0 ]
