#!/usr/bin/env bash
# Build the collection tarball, install it into an empty collections path and render every
# module's documentation with ansible-doc from there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out/dist" . >/dev/null
tarball=$(ls "$out"/dist/catmaid-replication-*.tar.gz)
# Only the empty path: otherwise the checkout (build/collections) counts as installed already.
export ANSIBLE_COLLECTIONS_PATH="$out/coll"
# Dependencies come from the ansible package (Galaxy is not reachable): --no-deps.
ansible-galaxy collection install --no-deps -p "$out/coll" "$tarball" >/dev/null
test -f "$out/coll/ansible_collections/catmaid/replication/MANIFEST.json"
repo=$PWD
cd "$out"   # away from the checkout, as a user of the installed collection would be
for path in "$repo"/plugins/modules/*.py; do
  m=$(basename "$path" .py)
  ansible-doc "catmaid.replication.$m" > "$out/$m.txt"
  grep -q "catmaid.replication.$m" "$out/$m.txt" || { echo "ansible-doc page for $m is empty" >&2; exit 1; }
  echo "ansible-doc catmaid.replication.$m: $(wc -l < "$out/$m.txt") lines"
done
for dir in "$repo"/roles/*/; do
  r=$(basename "$dir")
  ansible-doc -t role "catmaid.replication.$r" > /dev/null
  echo "ansible-doc -t role catmaid.replication.$r: ok"
done
echo "built and installed $(basename "$tarball")"
