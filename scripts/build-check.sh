#!/usr/bin/env bash
# Build the collection tarball, install it into an empty collections path and render every
# module's documentation with ansible-doc from there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out/dist" . >/dev/null
tarball=$(ls "$out"/dist/catmaid-replication-*.tar.gz)
# Dependencies come from the ansible package (Galaxy is not reachable): --no-deps.
ansible-galaxy collection install --no-deps -p "$out/coll" "$tarball" >/dev/null
export ANSIBLE_COLLECTIONS_PATH="$out/coll"
modules=$(ls plugins/modules/*.py | xargs -n1 basename | sed 's/\.py$//')
for m in $modules; do
  ansible-doc "catmaid.replication.$m" > "$out/$m.txt"
  grep -q "catmaid.replication.$m" "$out/$m.txt" || { echo "ansible-doc page for $m is empty" >&2; exit 1; }
  echo "ansible-doc catmaid.replication.$m: $(wc -l < "$out/$m.txt") lines"
done
for r in $(ls roles 2>/dev/null); do
  ansible-doc -t role "catmaid.replication.$r" > /dev/null
  echo "ansible-doc -t role catmaid.replication.$r: ok"
done
echo "built and installed $(basename "$tarball")"
