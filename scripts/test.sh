#!/bin/sh
# `npm test` after setup: the layering check, then two lanes at once —
#   unit tests, two files at a time (CPU-bound, minutes), then, once they are done, the side
#   end-to-end files: those that check results rather than timing (deploy schemas, auth,
#   recordings, stores, TLS, sources), one at a time; and
#   the other end-to-end files, one at a time (real time-bound: real FFmpeg, Redis, Varnish,
#   Chromium);
# then the chaos, hostile-client and live-timing runs, once both lanes are done, so that they
# have the machine to themselves. The side lane's report is printed when it ends; the suite fails if any
# run fails.
set -u
cd "$(dirname "$0")/.."

npm run --silent lint:deps || exit 1

unit_log=$(mktemp)
e2e_log=$(mktemp)
trap 'rm -f "$unit_log" "$unit_log.status" "$e2e_log" "$e2e_log.status"' EXIT

# tap sorts the files it is given, so the runs that need the machine to themselves are a last
# invocation, which starts after both lanes have finished: the chaos runs, the hostile-clients
# run (a listener's latency under an attack), and the two that measure live timing over SRT
# (pipeline: new segments at most 1.5 target durations apart; progressive-continuity: not a
# frame lost across a switch), which the unit lane's Ceph and Redis Cluster tests can starve.
late='/chaos-|/hostile-clients\.|/pipeline\.|/progressive-continuity\.'
side='/(deploy-recipes|playback-auth|recording-s3|recording-s3-mirror|recording-disk|redis-full|icy-pull|icecast-source|demo|mp3-rendition|encryption-recording|tls)\.test'
e2e_files=$(ls test/e2e/*.test.ts | grep -Ev "$late" | grep -Ev "$side")
side_files=$(ls test/e2e/*.test.ts | grep -E "$side")
late_files=$(ls test/e2e/*.test.ts | grep -E "$late")

# shellcheck disable=SC2086
{
  npx tap --jobs 2 --exclude 'test/e2e/**' 2>&1
  status=$?
  npx tap --jobs 1 $side_files 2>&1 || status=1
  echo "$status" >"$unit_log.status"
} >"$unit_log" &
unit_pid=$!

# The end-to-end report is shown as it runs and kept in a log, so that the failures of every
# run can be repeated at the very end, where a CI that keeps only the tail of the output shows them.
run_e2e() {
  { npx tap --jobs 1 "$@" 2>&1; echo $? >"$e2e_log.status"; } | tee -a "$e2e_log"
  return "$(cat "$e2e_log.status")"
}
# shellcheck disable=SC2086
run_e2e $e2e_files
e2e_status=$?
wait "$unit_pid"
unit_status=$(cat "$unit_log.status" 2>/dev/null || echo 1)
# shellcheck disable=SC2086
run_e2e $late_files || e2e_status=1

echo "--- unit tests, then the side end-to-end files (run beside the end-to-end lane) ---"
cat "$unit_log"
echo "unit and side lane: exit $unit_status; end-to-end lane: exit $e2e_status"
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
