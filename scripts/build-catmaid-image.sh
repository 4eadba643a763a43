#!/usr/bin/env bash
# Build catmaid-replication/catmaid:bullseye: CATMAID's own application (source, venv from a
# committed lock, static files), PostgreSQL 13 + PostGIS 3 and nginx on top of the lab's
# catmaid-replication/debian:bullseye (scripts/build-images.sh bullseye). See images/catmaid/Dockerfile.
#   1. CATMAID's source from $CATMAID_SOURCE into a staging build context
#   2. the wheelhouse: `pip download` on the host (containers cannot reach PyPI) of
#      images/catmaid/requirements.lock + wheelhouse-extra.txt for CPython 3.9.2 / glibc 2.31,
#      cached in build/catmaid-wheelhouse/<hash of those files>
#   3. `docker build` (legacy builder, nice -n 10), labelled with the hash of its inputs
# Environment:
#   CATMAID_SOURCE  a tarball (.tar.gz/.tgz/.tar.xz/.tar), a directory, or a git URL
#                   (default https://github.com/catmaid/CATMAID.git)
#   CATMAID_COMMIT  commit for a git URL; also checked against a tarball's `git archive` header
#                   (default 7d9f836180d199d9d7321f3c57d1d1ed96dcfdd5)
#   PYTHON39        a CPython 3.9 for pip download (default: python3.9 on PATH or ~/.pyenv/versions/3.9*,
#                   else the checkout's .venv or python3: pip targets 3.9 by its options either way)
#   IMAGE_REPO      (default catmaid-replication), FORCE=1 rebuilds even when the inputs are unchanged,
#   BUILD_DIR       (default <checkout>/build) for the wheelhouse, git cache and staging context.
#   DOWNLOAD_ONLY=1 stops after the wheelhouse (no docker build); NO_CACHE=1 builds without docker's
#   layer cache (a cold build, e.g. to time it; with FORCE=1 when the inputs are unchanged).
# Exit status 3: CATMAID_SOURCE is unset and the default git URL is out of reach; 1: any other failure
# (a CATMAID_SOURCE that is set but cannot be had too).
# Safe to rerun: an image whose label carries the current input hash is kept (prints so); the input
# hash covers the Dockerfile, the lock, wheelhouse-extra.txt, the source's identity (commit, tarball
# sha256 or tree hash) and the base image's id.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
src_dir="$here/images/catmaid"
repo=${IMAGE_REPO:-catmaid-replication}
tag="$repo/catmaid:bullseye"
base="$repo/debian:bullseye"
label=org.catmaid-replication.inputs-sha256
force=${FORCE:-0}
build_dir=${BUILD_DIR:-$here/build}
default_commit=7d9f836180d199d9d7321f3c57d1d1ed96dcfdd5
source=${CATMAID_SOURCE:-https://github.com/catmaid/CATMAID.git}
commit=${CATMAID_COMMIT:-$default_commit}

log() { printf 'build-catmaid-image: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# The default source (GitHub; CATMAID_SOURCE unset) cannot be reached: exit 3, which
# scripts/catmaid-app-image.sh turns into a loud skip of the catmaid_app scenario. A source the user
# named that cannot be had is an error (exit 1): they asked for the scenario.
nosource() { if [ -z "${CATMAID_SOURCE:-}" ]; then log "ERROR: $*"; exit 3; fi; die "$*"; }
t_start=$(date +%s)

command -v docker >/dev/null || die "docker is not installed (run: make host-docker)"
docker info >/dev/null 2>&1 || die "docker engine not reachable (run: make host-docker)"
base_id=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null) ||
  die "base image $base is missing (run: scripts/build-images.sh bullseye, or make images LAB_RELEASES=bullseye)"
for f in Dockerfile requirements.lock wheelhouse-extra.txt; do
  [ -f "$src_dir/$f" ] || die "$src_dir/$f is missing"
done

# --- 1. which source -------------------------------------------------------------------------
kind=
if [ -f "$source" ]; then kind=tarball
elif [ -d "$source" ]; then kind=dir
elif [[ "$source" =~ ^(https?|git|ssh|file):// || "$source" =~ ^[^/]+@[^/]+: || "$source" == *.git ]]; then kind=git
else nosource "CATMAID_SOURCE='$source' is neither a file, a directory nor a git URL"
fi
[[ "$commit" =~ ^[0-9a-f]{7,40}$ ]] || die "CATMAID_COMMIT='$commit' is not a commit id (hex)"

# The identity must be known before anything is fetched, so that an unchanged rerun costs nothing.
case $kind in
  tarball)
    tar_sha=$(sha256sum "$source" | cut -c1-64)
    # `git archive` (GitHub's tarballs too) writes the commit into a pax global header: cheap check.
    tar_commit=$(python3 - "$source" <<'EOF' 2>/dev/null || true
import sys, tarfile
with tarfile.open(sys.argv[1], 'r|*') as t:
    t.next()
    print(t.pax_headers.get('comment', ''))
EOF
)
    if [ -n "$tar_commit" ] && [[ ! "$tar_commit" =~ ^[0-9a-f]{40}$ ]]; then tar_commit=; fi
    if [ -n "$tar_commit" ] && [[ "$tar_commit" != "$commit"* ]]; then
      die "tarball $source was made from commit $tar_commit, not CATMAID_COMMIT=$commit (set CATMAID_COMMIT to use it)"
    fi
    identity="tarball sha256:$tar_sha commit:${tar_commit:-unknown}"
    ;;
  dir)
    # Content hash of what would be copied (no .git, venv, static, local settings).
    tree_sha=$(cd "$source" && find . \( -path ./.git -o -path ./django/env -o -path ./django/static \) -prune -o -type f \
        ! -path ./django/configuration.py ! -path ./django/projects/mysite/settings.py ! -path ./django/projects/mysite/django.wsgi \
        ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
    dir_head=$(git -C "$source" rev-parse HEAD 2>/dev/null || true)
    [ -z "$dir_head" ] || [[ "$dir_head" == "$commit"* ]] ||
      log "WARNING: $source is a git checkout at $dir_head, not CATMAID_COMMIT=$commit; its files are used as they are"
    [ -z "$dir_head" ] || log "$source: git HEAD $dir_head"
    identity="dir tree-sha256:$tree_sha"
    ;;
  git)
    if [[ "$commit" =~ ^[0-9a-f]{40}$ ]]; then identity="git commit:$commit"; else identity=; fi
    ;;
esac

git_cache="$build_dir/catmaid-src/$(printf '%s' "$source" | sha256sum | cut -c1-12).git"
fetch_git() {
  command -v git >/dev/null || die "git is not installed (needed for CATMAID_SOURCE=$source)"
  if [ ! -d "$git_cache" ]; then
    mkdir -p "$(dirname "$git_cache")"
    git init -q --bare "$git_cache"
  fi
  # Also when a run was stopped between the two commands.
  git -C "$git_cache" remote get-url origin >/dev/null 2>&1 || git -C "$git_cache" remote add origin "$source"
  if ! git -C "$git_cache" cat-file -e "$commit^{commit}" 2>/dev/null; then
    log "fetching $commit from $source (cache $git_cache)"
    git -C "$git_cache" fetch -q --depth 1 origin "$commit" 2>&1 ||
      git -C "$git_cache" fetch -q origin 2>&1 ||
      nosource "cannot fetch $commit from $source (no network to it? point CATMAID_SOURCE at a tarball or directory of that commit)"
  fi
  full_commit=$(git -C "$git_cache" rev-parse "$commit^{commit}" 2>/dev/null || git -C "$git_cache" rev-parse FETCH_HEAD) ||
    die "commit $commit not found in $source"
  identity="git commit:$full_commit"
}
[ -n "$identity" ] || fetch_git

# Of the contents only (sha256sum would also hash the paths: another checkout, another wheelhouse).
lock_sha=$(sha256sum "$src_dir/requirements.lock" "$src_dir/wheelhouse-extra.txt" | cut -c1-64 | sha256sum | cut -c1-64)
inputs_sha=$( { sha256sum "$src_dir/Dockerfile" "$src_dir/requirements.lock" "$src_dir/wheelhouse-extra.txt" | cut -c1-64
               printf '%s\n%s\n' "$identity" "$base_id"; } | sha256sum | cut -c1-64)
log "source: $kind $source ($identity)"
log "inputs: ${inputs_sha:0:12} (Dockerfile, lock ${lock_sha:0:12}, source, base ${base_id:7:12})"

current=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null || true)
prune_old() {
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo/catmaid" | grep -E "^$repo/catmaid:bullseye-[0-9a-f]{12}\$" |
    grep -v -- "-${inputs_sha:0:12}\$" | xargs -r docker image rm >/dev/null 2>&1 || true
}
if [ "$force" != 1 ] && [ "$current" = "$inputs_sha" ]; then
  log "$tag up to date (inputs ${inputs_sha:0:12}), kept; $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
  prune_old
  exit 0
fi
# A git source is fetched now, before the wheelhouse's ~110 MB: one out of reach is found first.
[ "$kind" != git ] || [ -n "${full_commit:-}" ] || fetch_git
if [ "$force" = 1 ]; then log "FORCE=1: rebuilding $tag"
elif [ -n "$current" ]; then log "$tag was built from other inputs (${current:0:12}), rebuilding"
fi

# --- 2. the wheelhouse (host side) -----------------------------------------------------------
# pip download targets bullseye through --python-version/--abi/--platform, so any CPython with pip
# can fetch the wheelhouse (the same 89 files with 3.9 and 3.11); a 3.9 is only preferred.
is_py39() { [ -n "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 9)' >/dev/null 2>&1; }
has_pip() { [ -n "$1" ] && "$1" -m pip --version >/dev/null 2>&1; }
py39=${PYTHON39:-}
if [ -n "$py39" ]; then
  { is_py39 "$py39" && has_pip "$py39"; } || die "PYTHON39=$py39 is not a working CPython 3.9 with pip"
else
  # A pyenv shim may be on PATH without answering, so try each candidate.
  for c in "$(command -v python3.9 || true)" "$HOME"/.pyenv/versions/3.9*/bin/python3.9 /usr/local/bin/python3.9 /usr/bin/python3.9 \
           "$here/.venv/bin/python" "$(command -v python3 || true)"; do
    if has_pip "$c"; then py39=$c; break; fi
  done
  [ -n "$py39" ] || die "no Python with pip found for pip download (run: make venv, or set PYTHON39=/path/to/python3.9)"
fi
wheelhouse="$build_dir/catmaid-wheelhouse/${lock_sha:0:12}"
if [ -f "$wheelhouse/.complete" ]; then
  log "wheelhouse $wheelhouse present ($(find "$wheelhouse" -type f ! -name .complete | wc -l) files), kept"
else
  t=$(date +%s)
  tmp_wh="$wheelhouse.tmp.$$"
  rm -rf "$tmp_wh"; mkdir -p "$tmp_wh"
  # Bullseye: CPython 3.9.2 (3.9.2 exactly: some releases exclude 3.9.0/3.9.1 or need >= 3.9.12),
  # glibc 2.31. --no-deps: the lock is complete; it also lets pip take the sdists it names.
  plats=()
  for i in $(seq 31 -1 5); do plats+=(--platform "manylinux_2_${i}_x86_64"); done
  plats+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
  log "pip download into $wheelhouse (python $("$py39" -c 'import platform; print(platform.python_version())'))"
  "$py39" -m pip download -q --disable-pip-version-check --no-deps --dest "$tmp_wh" \
      --python-version 3.9.2 --implementation cp --abi cp39 --abi abi3 --abi none "${plats[@]}" \
      -r "$src_dir/requirements.lock" -r "$src_dir/wheelhouse-extra.txt" >"$tmp_wh.log" 2>&1 ||
    { log "pip download failed, last lines:"; tail -n 20 "$tmp_wh.log" >&2; rm -rf "$tmp_wh" "$tmp_wh.log"; exit 1; }
  rm -f "$tmp_wh.log"
  n_pins=$(cat "$src_dir/requirements.lock" "$src_dir/wheelhouse-extra.txt" | grep -cE '^[A-Za-z0-9]')
  n_files=$(find "$tmp_wh" -type f | wc -l)
  [ "$n_files" -eq "$n_pins" ] || { rm -rf "$tmp_wh"; die "pip download gave $n_files files for $n_pins pins"; }
  touch "$tmp_wh/.complete"
  rm -rf "$wheelhouse"; mv "$tmp_wh" "$wheelhouse"
  # Wheelhouses of earlier locks (~110 MB each) go.
  find "$build_dir/catmaid-wheelhouse" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{12\}' \
    ! -name "${lock_sha:0:12}" -exec rm -rf {} + 2>/dev/null || true
  log "wheelhouse: $n_files files, $(du -sh "$wheelhouse" | cut -f1) in $(( $(date +%s) - t )) s; sdists: $(find "$wheelhouse" -type f ! -name '*.whl' ! -name .complete -printf '%f ')"
fi

if [ "${DOWNLOAD_ONLY:-0}" = 1 ]; then log "DOWNLOAD_ONLY=1: wheelhouse $wheelhouse ready, no image built"; exit 0; fi

# --- 3. the build context and docker build ----------------------------------------------------
context="$build_dir/catmaid-context"
rm -rf "$context"; mkdir -p "$context/catmaid"
trap 'rm -rf "$context"' EXIT
trap 'exit 130' INT TERM
cp "$src_dir/Dockerfile" "$src_dir/requirements.lock" "$src_dir/wheelhouse-extra.txt" "$context/"
cp -al "$wheelhouse" "$context/wheels" 2>/dev/null || cp -a "$wheelhouse" "$context/wheels"
rm -f "$context/wheels/.complete"
case $kind in
  tarball)
    tar -xf "$source" -C "$context/catmaid" || die "cannot unpack $source"
    # A single top-level directory (CATMAID/, CATMAID-<sha>/) is the tree itself.
    mapfile -t top < <(ls -A "$context/catmaid")
    if [ ${#top[@]} -eq 1 ] && [ -d "$context/catmaid/${top[0]}" ]; then
      mv "$context/catmaid/${top[0]}" "$context/catmaid.tmp" && rmdir "$context/catmaid" && mv "$context/catmaid.tmp" "$context/catmaid"
    fi ;;
  dir)
    tar -C "$source" -c --exclude=./.git --exclude=./django/env --exclude=./django/static \
        --exclude=./django/configuration.py --exclude=./django/projects/mysite/settings.py \
        --exclude=./django/projects/mysite/django.wsgi --exclude='*.pyc' . | tar -x -C "$context/catmaid" ;;
  git)
    [ -n "${full_commit:-}" ] || fetch_git
    git -C "$git_cache" archive --format=tar "$full_commit" | tar -x -C "$context/catmaid" ;;
esac
for f in django/requirements.txt django/setup.py django/projects/mysite/utils.py scripts/createuser.sh django/configuration.py.example; do
  [ -f "$context/catmaid/$f" ] || die "CATMAID_SOURCE=$source has no $f: not a CATMAID tree"
done
base_version=$(sed -n "s/^BASE_VERSION = '\(.*\)'/\1/p" "$context/catmaid/django/projects/mysite/utils.py")
req_sha=$(sha256sum "$context/catmaid/django/requirements.txt" | cut -c1-64)
lock_req_sha=$(sed -n 's/^# catmaid-requirements-sha256: \([0-9a-f]*\).*/\1/p' "$src_dir/requirements.lock")
[ "$req_sha" = "$lock_req_sha" ] ||
  log "WARNING: this source's django/requirements.txt (${req_sha:0:12}) is not the one the lock was resolved from (${lock_req_sha:0:12}); pip install . checks the lock still fits"
printf 'CATMAID_SOURCE=%s\nkind=%s\nidentity=%s\nBASE_VERSION=%s\nrequirements.txt sha256=%s\ninputs sha256=%s\n' \
  "$source" "$kind" "$identity" "$base_version" "$req_sha" "$inputs_sha" > "$context/source.txt"
log "CATMAID $base_version from $kind ($identity)"

t=$(date +%s)
build_log="$build_dir/catmaid-image-build.log"
log "docker build $tag (log: $build_log)"
# The legacy builder talks to any engine (Debian's 20.10 has no buildx plugin).
cache_opt=()
[ "${NO_CACHE:-0}" != 1 ] || cache_opt=(--no-cache)
DOCKER_BUILDKIT=0 nice -n 10 docker build --force-rm "${cache_opt[@]}" \
  --build-arg "BASE_IMAGE=$base" \
  --label "$label=$inputs_sha" \
  --label "org.catmaid-replication.catmaid-source=$identity" \
  --label "org.catmaid-replication.catmaid-version=$base_version" \
  -t "$tag" -t "$repo/catmaid:bullseye-${inputs_sha:0:12}" \
  "$context" >"$build_log" 2>&1 || { log "docker build failed, last lines (all in $build_log):"; tail -n 40 "$build_log" >&2; exit 1; }
prune_old
log "$tag built in $(( $(date +%s) - t )) s (all steps $(( $(date +%s) - t_start )) s); $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
