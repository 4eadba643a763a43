#!/usr/bin/env bash
# Virtual environment of the catmaid_app scenario's analysis client (python-catmaid, import name
# pymaid): build/pymaid-venv under the repo root, made with the controller's python3 and filled from
# PyPI with the pin lock molecule/catmaid_app/files/pymaid-requirements.txt.
# Idempotent and cheap on rerun: build/pymaid-venv/.requirements.sha256 holds the hash of the lock
# (and of the python3 it was made with); when both are unchanged nothing is done. Otherwise the venv
# is made (or reused) and pip installs the lock into it.
# Environment: PYTHON (default python3), PYMAID_VENV (default <repo>/build/pymaid-venv).
# Prints the venv's python on stdout (for: py=$(scripts/pymaid-venv.sh)), the rest on stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
venv=${PYMAID_VENV:-$here/build/pymaid-venv}
req=$here/molecule/catmaid_app/files/pymaid-requirements.txt
stamp=$venv/.requirements.sha256
log() { printf 'pymaid-venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -r "$req" ] || die "$req not readable"
command -v "$python" >/dev/null || die "$python not found"
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

pyver=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
want="$(sha256sum <"$req" | cut -d' ' -f1) python $pyver"
if [ -x "$venv/bin/python" ] && [ -r "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  log "$venv up to date ($(elapsed) s)"
  echo "$venv/bin/python"
  exit 0
fi

# A venv of another python (minor version) cannot be updated in place: make it anew.
if [ -x "$venv/bin/python" ] &&
   [ "$("$venv/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true)" != "$pyver" ]; then
  log "$venv is of another python: making it anew"
  rm -rf "$venv"
fi
rm -f "$stamp"
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req"
"$venv/bin/python" -m pip check --disable-pip-version-check >&2 || die "pip check failed in $venv"
"$venv/bin/python" -c 'import pymaid' || die "pymaid does not import in $venv"
printf '%s\n' "$want" >"$stamp"
log "$venv ready with python $pyver ($(elapsed) s)"
echo "$venv/bin/python"
