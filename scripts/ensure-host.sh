#!/usr/bin/env bash
# Install and start what the lab and the tests need on a Debian host. Safe to rerun:
# every step is skipped when its result is already there.
#   scripts/ensure-host.sh pg      PostgreSQL server binaries + python3-psycopg2 (module tests)
#   scripts/ensure-host.sh sanity  shellcheck, so ansible-test's shellcheck test always runs
#   scripts/ensure-host.sh docker  Docker engine (Debian's docker.io) running, debootstrap
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(pg docker)

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-host: run as root (it installs Debian packages and starts dockerd)" >&2
  exit 1
fi

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  echo "ensure-host: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

for w in "${want[@]}"; do
  case "$w" in
    pg)
      # Server binaries only: the tests start throw-away clusters themselves. strace: the
      # pg_basebackup test that holds the module's swap open (fault injection into rename).
      apt_install postgresql postgresql-common python3-psycopg2 openssl sudo strace
      # Debian's package creates and starts a cluster; the tests do not use it.
      if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
        pg_lsclusters -h | awk '$4=="online"{print $1, $2}' | while read -r v c; do
          pg_ctlcluster "$v" "$c" stop || true
        done
      fi
      ;;
    sanity)
      # ansible-test's shellcheck test runs only where shellcheck is installed.
      apt_install shellcheck
      ;;
    docker)
      apt_install debootstrap rsync
      if ! docker info >/dev/null 2>&1; then
        command -v dockerd >/dev/null || apt_install docker.io
        command -v docker >/dev/null || apt_install docker.io
        echo "ensure-host: starting dockerd"
        nohup dockerd >/var/log/dockerd.log 2>&1 &
        for _ in $(seq 1 60); do
          docker info >/dev/null 2>&1 && break
          sleep 1
        done
        docker info >/dev/null 2>&1 || { echo "ensure-host: dockerd did not start, see /var/log/dockerd.log" >&2; exit 1; }
      fi
      ;;
    *)
      echo "ensure-host: unknown part $w (use pg, sanity or docker)" >&2
      exit 2
      ;;
  esac
done
