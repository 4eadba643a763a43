#!/usr/bin/env bash
# Run Molecule scenarios, JOBS at a time (default 2), each with its own log under build/logs.
# Scenarios use distinct container names and Docker networks, so they can run side by side;
# containers mostly wait on systemd, apt and PostgreSQL, so two at once finish sooner than one
# after the other even on two cores. Prints each scenario's result and time, the log of every
# failed one, and exits non-zero when any failed.
#   scripts/run-scenarios.sh default pg13 ...      JOBS=1 for one at a time
#   MOLECULE_DESTROY=never keeps each scenario's containers afterwards (to look into a failure;
#   `molecule destroy -s NAME` removes them). More than ~20 kept systemd containers exhaust the host's
#   inotify instances (fs.inotify.max_user_instances, 128) and new ones exit at start.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
jobs=${JOBS:-2}
logs=build/logs
mkdir -p "$logs"
[ $# -gt 0 ] || { echo "usage: $0 SCENARIO..." >&2; exit 2; }

run_one() {
  local s=$1 start rc
  start=$(date +%s)
  molecule test -s "$s" --destroy "${MOLECULE_DESTROY:-always}" >"build/logs/molecule-$s.log" 2>&1
  rc=$?
  echo "$s $rc $(( $(date +%s) - start ))" >"build/logs/molecule-$s.result"
  if [ $rc -eq 0 ]; then
    echo "== molecule test -s $s: passed in $(( $(date +%s) - start ))s"
  else
    echo "== molecule test -s $s: FAILED (rc $rc) after $(( $(date +%s) - start ))s"
  fi
}

rm -f "$logs"/molecule-*.result
running=0
started=0
for s in "$@"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$s" &
  running=$((running + 1))
  started=$((started + 1))
  # Let the first scenarios' creates start one after the other; a later one starts when a slot
  # frees, which staggers them anyway.
  [ "$started" -ge "$jobs" ] || sleep 5
done
wait

failed=()
for s in "$@"; do
  read -r _ rc _ <"$logs/molecule-$s.result" 2>/dev/null || rc=1
  [ "$rc" = 0 ] || failed+=("$s")
done
if [ ${#failed[@]} -gt 0 ]; then
  for s in "${failed[@]}"; do
    echo "================ failed tasks of scenario $s ================"
    # The task that failed is usually far above the log's end (destroy runs after it), and
    # retried waits push it out of any tail; print every fatal result with its context.
    grep -v -e '^FAILED - RETRYING' "$logs/molecule-$s.log" | grep -B 3 -A 25 -e '^fatal:' -e '^failed:' -e 'FAILED!' | head -n 300
    echo "================ log of the failed scenario $s (last 60 lines) ================"
    tail -n 60 "$logs/molecule-$s.log"
  done
  echo "Molecule: ${#failed[@]} of $# scenario(s) failed: ${failed[*]} (full logs in $logs/)"
  exit 1
fi
echo "Molecule: all $# scenario(s) passed: $*"
