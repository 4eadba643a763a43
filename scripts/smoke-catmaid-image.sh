#!/usr/bin/env bash
# Smoke test of catmaid-replication/catmaid:bullseye (scripts/build-catmaid-image.sh): start one
# container the way the lab does (systemd as PID 1, no --privileged; see /work/shared/LAB.md and
# molecule/*/molecule.yml), no network (everything it fetches is on loopback), copy in
# images/catmaid/smoke.sh and smoke.env, run it with docker exec, remove the container.
# Environment: IMAGE_REPO (default catmaid-replication), SMOKE_CONTAINER (default catmaid-img-smoke;
# must start with catmaid-img-), KEEP=1 keeps the container. Log: build/catmaid-smoke.log.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
repo=${IMAGE_REPO:-catmaid-replication}
image="$repo/catmaid:bullseye"
name=${SMOKE_CONTAINER:-catmaid-img-smoke}
log() { printf 'smoke-catmaid-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$name" == catmaid-img-* ]] || die "SMOKE_CONTAINER must start with catmaid-img- (got $name)"
docker image inspect "$image" >/dev/null 2>&1 || die "$image is missing (run: scripts/build-catmaid-image.sh)"
mkdir -p "$here/build"
out="$here/build/catmaid-smoke.log"

docker rm -f "$name" >/dev/null 2>&1 || true
# shellcheck disable=SC2317  # called through the trap
cleanup() { if [ "${KEEP:-0}" = 1 ]; then log "container $name kept (KEEP=1)"; else docker rm -f "$name" >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
docker run -d --name "$name" --hostname "$name" --network none \
  --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
  --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
  "$image" /lib/systemd/systemd >/dev/null
state=
for _ in $(seq 1 60); do
  state=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
  case $state in running|degraded) break ;; esac
  sleep 1
done
log "container $name up in $(( $(date +%s) - t0 )) s (systemd: $state)"
[ "$state" = running ] || docker exec "$name" systemctl --failed --no-legend >&2 || true

docker cp "$here/images/catmaid/smoke.sh" "$name:/tmp/smoke.sh"
docker cp "$here/images/catmaid/smoke.env" "$name:/tmp/smoke.env"
rc=0
docker exec "$name" bash /tmp/smoke.sh /tmp/smoke.env 2>&1 | tee "$out" || rc=$?
log "smoke test rc $rc after $(( $(date +%s) - t0 )) s (log: $out)"
exit "$rc"
