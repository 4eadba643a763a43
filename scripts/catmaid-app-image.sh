#!/usr/bin/env bash
# The image of the Molecule scenario catmaid_app (CATMAID's own application, issue 15): build or keep
# catmaid-replication/catmaid:bullseye with scripts/build-catmaid-image.sh (cached: under a second when
# its inputs are unchanged). When CATMAID_SOURCE is unset and its default, GitHub, is out of reach
# (exit 3 of build-catmaid-image.sh), the scenario is skipped: this prints so loudly, writes
# build/logs/catmaid_app.skipped (`make molecule` / `make test` then leave the scenario out and repeat
# the notice at their end) and exits 0. Any other failure fails, a CATMAID_SOURCE that is set but
# cannot be had too.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
marker="$here/build/logs/catmaid_app.skipped"
mkdir -p "$here/build/logs"
rm -f "$marker"
"$here/scripts/build-catmaid-image.sh"
rc=$?
if [ "$rc" -eq 3 ]; then
  {
    echo "######################################################################################"
    echo "# SKIPPED: Molecule scenario catmaid_app (CATMAID's own application, issue 15)."
    echo "# CATMAID's source could not be had: CATMAID_SOURCE is unset and GitHub is out of reach."
    echo "# Point CATMAID_SOURCE at a tarball, directory or reachable git URL of commit"
    echo "# ${CATMAID_COMMIT:-7d9f836180d199d9d7321f3c57d1d1ed96dcfdd5}, e.g."
    echo "#   make test CATMAID_SOURCE=/path/to/CATMAID-7d9f83618.tar.gz"
    echo "######################################################################################"
  } | tee "$marker" >&2
  exit 0
fi
exit "$rc"
