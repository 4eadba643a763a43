#!/usr/bin/env bash
# Build the local systemd Debian images the Molecule lab runs on. No registry is used:
#   1. debootstrap a minimal root file system and `docker import` it as
#      catmaid-replication/debian-base:<release>
#   2. `docker build` images/debian/Dockerfile on top of it as
#      catmaid-replication/debian:<release> (systemd, sudo, python3-apt, role packages in apt's cache)
#   3. for each release in $PG_IMAGE_RELEASES (make molecule/test: the scenarios' release) also
#      `docker build` images/debian-pg/Dockerfile on top of that as
#      catmaid-replication/debian-pg:<release> (PostgreSQL installed, no cluster yet)
# Usage: scripts/build-images.sh [RELEASE...]        (default: bookworm; also bullseye, trixie)
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), FORCE=1 rebuilds everything,
# IMAGE_REPO (default catmaid-replication: the names the scenarios use) builds under another name,
# e.g. IMAGE_REPO=scratch-test to time a build from scratch without touching the lab's images.
# Safe to rerun: an image whose tag exists (and, for the final image, whose label carries the
# current Dockerfile hash) is kept; the temporary root file system is always removed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
context="$here/images/debian"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
repo=${IMAGE_REPO:-catmaid-replication}
label=org.catmaid-replication.dockerfile-sha256
force=${FORCE:-0}

releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(bookworm)

log() { printf 'build-images: %s\n' "$*" >&2; }

for r in "${releases[@]}"; do
  case "$r" in
    bullseye|bookworm|trixie) ;;
    *) log "unsupported release '$r' (use bullseye, bookworm or trixie)"; exit 2 ;;
  esac
done

command -v docker >/dev/null || { log "docker is not installed (run: make host-docker)"; exit 1; }
docker info >/dev/null 2>&1 || { log "docker engine not reachable (run: make host-docker)"; exit 1; }

# Each file of a build context with its hash, one line each, in a fixed order.
context_files() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
# The hash covers the whole build context (only the Dockerfile today).
dockerfile_sha=$(context_files "$context" | sha256sum | cut -c1-64)
pg_context="$here/images/debian-pg"
pg_releases=" ${PG_IMAGE_RELEASES:-} "

rootfs=""
build_log=$(mktemp "${TMPDIR:-/tmp}/catmaid-build.XXXXXX")
cleanup() {
  if [ -n "$rootfs" ] && [ -d "$rootfs" ]; then
    # debootstrap mounts proc/sys inside the target; never delete through a mount point.
    awk -v p="$rootfs" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$rootfs"
  fi
  rootfs=""
}
trap 'cleanup; rm -f "$build_log"' EXIT
trap 'exit 130' INT TERM

build_base() {
  local release=$1 tag="$repo/debian-base:$1" start
  if [ "$force" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag present, kept"
    return 0
  fi
  command -v debootstrap >/dev/null || { log "debootstrap is not installed (run: make host-docker)"; exit 1; }
  [ "$(id -u)" -eq 0 ] || { log "debootstrap needs root"; exit 1; }
  start=$(date +%s)
  rootfs=$(mktemp -d "${TMPDIR:-/var/tmp}/catmaid-rootfs-$release.XXXXXX")
  log "debootstrap $release into $rootfs"
  debootstrap --variant=minbase --include=python3,ca-certificates "$release" "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { log "debootstrap failed, last lines:"; tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  # Drop what only makes sense on the build host.
  rm -rf "${rootfs:?}/var/cache/apt/archives/"*.deb "${rootfs:?}/var/lib/apt/lists/"* "${rootfs:?}/etc/hostname" "${rootfs:?}/etc/resolv.conf"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "LABEL org.catmaid-replication.release=$release" - "$tag" >/dev/null
  cleanup
  log "$tag imported in $(( $(date +%s) - start )) s"
}

# Drop tags left by earlier Dockerfiles of this release (an image a container still uses stays).
prune_old() {
  local release=$1
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo/debian" | grep -E "^$repo/debian:$release-[0-9a-f]{12}\$" |
    grep -v -- "-${dockerfile_sha:0:12}\$" | xargs -r docker image rm >/dev/null 2>&1 || true
}

build_image() {
  local release=$1 tag="$repo/debian:$1" current start
  current=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null || true)
  if [ "$force" != 1 ] && [ "$current" = "$dockerfile_sha" ]; then
    log "$tag up to date (Dockerfile ${dockerfile_sha:0:12}), kept"
    prune_old "$release"
    return 0
  fi
  [ -z "$current" ] || log "$tag was built from another Dockerfile (${current:0:12}), rebuilding"
  build_base "$release"
  start=$(date +%s)
  log "docker build $tag"
  # The legacy builder talks to any engine (Debian's 20.10 has no buildx plugin).
  DOCKER_BUILDKIT=0 docker build \
    --build-arg "BASE_IMAGE=$repo/debian-base:$release" \
    --build-arg "RELEASE=$release" \
    --label "$label=$dockerfile_sha" \
    --label "org.catmaid-replication.release=$release" \
    -t "$tag" -t "$repo/debian:$release-${dockerfile_sha:0:12}" \
    "$context" >"$build_log" 2>&1 || { log "docker build failed, last lines:"; tail -n 30 "$build_log" >&2; exit 1; }
  log "$tag built in $(( $(date +%s) - start )) s"
  prune_old "$release"
}

# debian-pg's label covers its own context and the id of the image it starts from, so a rebuilt
# debian:<release> (new packages) rebuilds it too. The image it replaces is removed (unless in use).
build_pg_image() {
  local release=$1 tag="$repo/debian-pg:$1" current want old start
  want=$( { docker image inspect -f '{{.Id}}' "$repo/debian:$release"; context_files "$pg_context"; } | sha256sum | cut -c1-64)
  current=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null || true)
  if [ "$force" != 1 ] && [ "$current" = "$want" ]; then
    log "$tag up to date (${want:0:12}), kept"
    return 0
  fi
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  start=$(date +%s)
  log "docker build $tag"
  DOCKER_BUILDKIT=0 docker build --force-rm \
    --build-arg "BASE_IMAGE=$repo/debian:$release" \
    --label "$label=$want" \
    --label "org.catmaid-replication.release=$release" \
    -t "$tag" \
    "$pg_context" >"$build_log" 2>&1 || { log "docker build failed, last lines:"; tail -n 30 "$build_log" >&2; exit 1; }
  log "$tag built in $(( $(date +%s) - start )) s"
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
}

for r in "${releases[@]}"; do
  build_image "$r"
  [[ "$pg_releases" != *" $r "* ]] || build_pg_image "$r"
done
