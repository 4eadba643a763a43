#!/usr/bin/env bash
# Issue 15, last point (make catmaid-browser; docs/notes/catmaid-browser.md): a headless Chromium opens the main
# CATMAID instance's tracing view with read_only_mirror_index set, and the mirror's nginx access log shows the
# node-list requests the browser sent it. Too slow for the test suite (4 to 8 minutes here, with the load of other
# tests), so a target of its own.
#
# On catmaid-replication/catmaid:bullseye (scripts/build-catmaid-image.sh), on the docker network
# catmaid-browser-lab, two containers started like the lab's (systemd as PID 1, no --privileged):
#   cmb-mirror  CATMAID set up by images/catmaid/smoke.sh (fixture catmaid_testdata), then the collection's role
#               catmaid_readonly applied with ansible-playbook (playbooks/catmaid_readonly.yml) for
#               catmaid_readonly_cors_origins = [the main instance's origin] only: nginx answers CORS for it.
#               Its database is its own (the same fixture, so the same ids): what is shown is the browser's
#               behaviour, not replication (the Molecule scenario catmaid_app covers the replica).
#   cmb-main    the same set-up, plus the instance's client settings (CATMAID's CLIENT_SETTINGS and
#               FORCE_CLIENT_SETTINGS, applied by the system check check_client_settings on `manage.py check`):
#               remote_servers = [the mirror, with an API token of the mirror's admin], and
#               tracing-overlay read_only_mirror_index; Debian's chromium and chromium-driver from apt, and
#               chromedriver listening on port 9515 of the lab network.
# The controller runs scripts/catmaid_browser_check.py with selenium (PyPI, pinned, in build/browser-venv) against
# that chromedriver: it logs in through CATMAID's login box (admin of the fixture) and opens the tracing tool on
# stack 3 of project 3 where the fixture has nodes. Two page loads:
#   mirror   read_only_mirror_index 1: PASS when the mirror's access log has GET and OPTIONS (CORS preflight)
#            requests for /3/node/list from HeadlessChrome with the main instance as Referer, and the overlay
#            holds nodes (the browser read the mirror's answer)
#   control  read_only_mirror_index -1: PASS when the node-list requests go to the main instance only
# Output: a PASS/FAIL summary with the node-list requests each instance logged; logs and each page load's JSON in
# build/catmaid-browser/. Exit status 0 only when both pass.
# Environment: IMAGE_REPO (default catmaid-replication), KEEP=1 keeps the containers and the network,
# SELENIUM_VERSION (default 4.51.0; 4.52.0 needs a certifi newer than the index has).
# The API token and the password never appear on a command line: they go through files of mode 0600/0640
# (a temporary directory on the controller, removed at the end) and through pipes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
repo=${IMAGE_REPO:-catmaid-replication}
image="$repo/catmaid:bullseye"
net=catmaid-browser-lab
main=cmb-main
mirror=cmb-mirror
selenium_version=${SELENIUM_VERSION:-4.51.0}
venv=$here/build/browser-venv
out=$here/build/catmaid-browser
# Where the fixture has nodes: project 3, stack 3 (FIB, 5 nm), treenode 7 of skeleton 1 at (3590, 3240, 0) nm.
project=3
stack=3
x=3590 y=3240 z=0
settings_json=/etc/catmaid/browser-check-client-settings.json

log() { printf 'catmaid-browser-check: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
t_start=$(date +%s)
since() { echo "$(( $(date +%s) - $1 ))"; }

docker image inspect "$image" >/dev/null 2>&1 ||
  die "$image is missing: build it first (make catmaid-image, see docs/notes/catmaid-image.md)"
[ -x "$here/.venv/bin/ansible-playbook" ] || die "$here/.venv/bin/ansible-playbook is missing: run make collection"
[ -d "$here/build/collections/ansible_collections/catmaid/replication" ] ||
  die "build/collections has no catmaid.replication: run make collection"

mkdir -p "$out"
rm -f "$out"/*.log "$out"/*.json
secrets=$(mktemp -d)
chmod 0700 "$secrets"

# shellcheck disable=SC2317  # called through the trap
cleanup() {
  rm -rf "$secrets"
  if [ "${KEEP:-0}" = 1 ]; then
    log "kept (KEEP=1): containers $main, $mirror, network $net"
  else
    docker rm -f "$main" "$mirror" >/dev/null 2>&1 || true
    docker network rm "$net" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# selenium on the controller, pinned (the containers cannot reach PyPI).
if ! "$venv/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$selenium_version')" 2>/dev/null; then
  log "installing selenium $selenium_version into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "selenium==$selenium_version"
fi

# Only this check's own containers and network, by their exact names.
docker rm -f "$main" "$mirror" >/dev/null 2>&1 || true
docker network rm "$net" >/dev/null 2>&1 || true
docker network create "$net" >/dev/null
for c in "$mirror" "$main"; do
  docker run -d --name "$c" --hostname "$c" --network "$net" \
    --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
    "$image" /lib/systemd/systemd >/dev/null
done
for c in "$mirror" "$main"; do
  state=
  for _ in $(seq 1 60); do
    state=$(docker exec "$c" systemctl is-system-running 2>/dev/null || true)
    case $state in running|degraded) break ;; esac
    sleep 1
  done
  [ -n "$state" ] || die "systemd did not come up in $c"
done
ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1"; }
main_ip=$(ip_of "$main")
mirror_ip=$(ip_of "$mirror")
main_url="http://$main_ip"
mirror_url="http://$mirror_ip"
log "containers up in $(since "$t_start") s: $main $main_ip (main), $mirror $mirror_ip (mirror)"

# Debian's chromium and chromium-driver in the main instance's container, while the mirror is set up (apt is
# mostly download). Mesa's EGL (libegl1, libegl-mesa0) is what gives this Chromium WebGL: see the script.
docker exec -e DEBIAN_FRONTEND=noninteractive "$main" sh -c \
  'apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver libegl1 libegl-mesa0' \
  >"$out/apt-chromium.log" 2>&1 &
apt_pid=$!

smoke() {  # CONTAINER SERVERNAME LOG [SETTINGS_EXTRA]
  local envf="$secrets/smoke-$1.env"
  cp "$here/images/catmaid/smoke.env" "$envf"
  sed -i "s/^CATMAID_SERVERNAME=.*/CATMAID_SERVERNAME=$2/" "$envf"
  [ -z "${4:-}" ] || echo "CATMAID_SETTINGS_EXTRA=$4" >>"$envf"
  docker cp "$here/images/catmaid/smoke.sh" "$1:/tmp/smoke.sh"
  docker cp "$envf" "$1:/tmp/smoke.env"
  docker exec "$1" bash /tmp/smoke.sh /tmp/smoke.env >"$3" 2>&1 || { tail -n 20 "$3" >&2; die "smoke.sh failed in $1 (log: $3)"; }
  grep '^smoke: all steps ok' "$3" >&2
}
manage() {  # CONTAINER ARGS...: CATMAID's manage.py, as smoke.sh runs it
  local c=$1; shift
  docker exec "$c" sh -c 'cd /opt/catmaid/django/projects && PATH=/opt/catmaid/django/env/bin:$PATH exec python manage.py "$@"' manage "$@"
}

t=$(date +%s)
smoke "$mirror" "$mirror_ip" "$out/mirror-smoke.log"
log "mirror: CATMAID set up in $(since "$t") s"

# The collection's role, as on a real replica, for CORS only: the settings fragment is written but not included
# (catmaid_readonly_settings_py unset), because this mirror's database is its own and writable.
t=$(date +%s)
cat >"$out/inventory.yml" <<EOF
replicas:
  hosts:
    $mirror:
      ansible_connection: community.docker.docker
      ansible_python_interpreter: /usr/bin/python3
      catmaid_readonly_django_version: "3.2.18"
      catmaid_readonly_cors_origins: ["$main_url"]
EOF
ANSIBLE_COLLECTIONS_PATH="$here/build/collections" ANSIBLE_ROLES_PATH="$here/roles" ANSIBLE_FORCE_COLOR=0 \
  "$here/.venv/bin/ansible-playbook" -i "$out/inventory.yml" "$here/playbooks/catmaid_readonly.yml" \
  >"$out/mirror-role.log" 2>&1 || { tail -n 30 "$out/mirror-role.log" >&2; die "catmaid_readonly failed on $mirror"; }
grep -A1 '^PLAY RECAP' "$out/mirror-role.log" | tail -1 >&2
log "mirror: role catmaid_readonly (CORS for $main_url) applied in $(since "$t") s"
preflight() {  # ORIGIN: the Access-Control-Allow-Origin the mirror answers a preflight with
  curl -sS -o /dev/null -D - -X OPTIONS -H "Origin: $1" -H 'Access-Control-Request-Method: GET' \
    -H 'Access-Control-Request-Headers: x-authorization' "$mirror_url/$project/node/list" |
    tr -d '\r' | sed -n 's/^Access-Control-Allow-Origin: //Ip'
}
[ "$(preflight "$main_url")" = "$main_url" ] || die "the mirror does not allow $main_url across origins"
[ -z "$(preflight http://other.invalid)" ] || die "the mirror allows an origin that is not listed"
log "mirror: CORS preflight allowed for $main_url, not for another origin"

# The mirror's API token for the main instance's remote_servers: from drf_create_token's stdout through a pipe
# into the settings file (mode 0600 here, 0640 root:www-data in the container).
(umask 077
 manage "$mirror" drf_create_token admin 2>/dev/null |
   python3 -c '
import json, sys
words = sys.stdin.read().split()
token = words[2] if len(words) > 2 and words[0] == "Generated" else ""
if len(token) < 20:
    sys.exit("no token from drf_create_token")
json.dump({"client-settings": {"remote_servers": [
              {"name": "mirror", "url": sys.argv[1] + "/", "api_key": token, "type": "catmaid"}]},
           "tracing-overlay": {"read_only_mirror_index": 1}}, sys.stdout)
' "$mirror_url" >"$secrets/client-settings.json")
docker exec "$main" install -d -m 0755 /etc/catmaid
docker cp "$secrets/client-settings.json" "$main:$settings_json"
docker exec "$main" sh -c "chown root:www-data $settings_json && chmod 0640 $settings_json"
cat >"$secrets/settings-extra.py" <<EOF
# scripts/catmaid-browser-check.sh: the instance's client settings (remote_servers with the mirror and its API
# token, tracing-overlay read_only_mirror_index), set again on every \`manage.py check\` (FORCE_CLIENT_SETTINGS).
with open('$settings_json', encoding='utf-8') as _cmb_file:
    CLIENT_SETTINGS = _cmb_file.read()
FORCE_CLIENT_SETTINGS = True
EOF
docker cp "$secrets/settings-extra.py" "$main:/tmp/settings-extra.py"

t=$(date +%s)
smoke "$main" "$main_ip" "$out/main-smoke.log" /tmp/settings-extra.py
log "main: CATMAID set up in $(since "$t") s"
wait "$apt_pid" || { tail -n 20 "$out/apt-chromium.log" >&2; die "apt-get install chromium failed in $main"; }
log "main: $(docker exec "$main" chromium --version 2>/dev/null), $(docker exec "$main" chromedriver --version | cut -d' ' -f1-2)"

# chromedriver on the lab network (--allowed-ips= : any client; the network is this check's own).
docker exec "$main" systemd-run -q --unit=cmb-chromedriver --property=Environment=HOME=/root \
  /usr/bin/chromedriver --port=9515 --allowed-ips= '--allowed-origins=*'
for _ in $(seq 1 30); do curl -fsS "http://$main_ip:9515/status" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS "http://$main_ip:9515/status" >/dev/null || die "chromedriver does not answer on $main_ip:9515"

(umask 077; printf 'test\n' >"$secrets/password")  # the fixture's admin password (a lab test value)

set_mirror_index() {  # N: tracing-overlay read_only_mirror_index in the client settings, applied by manage.py check
  docker exec -i "$main" python3 - "$1" "$settings_json" <<'EOF'
import json, sys
with open(sys.argv[2], encoding='utf-8') as f:
    s = json.load(f)
s['tracing-overlay']['read_only_mirror_index'] = int(sys.argv[1])
with open(sys.argv[2], 'w', encoding='utf-8') as f:  # in place: owner and mode stay
    json.dump(s, f)
EOF
  manage "$main" check >"$out/main-check-$1.log" 2>&1 || { tail -n 20 "$out/main-check-$1.log" >&2; die "manage.py check failed"; }
}
lines() { docker exec "$1" sh -c 'wc -l < /var/log/nginx/access.log'; }
# count FILE METHOD [STATUS]: node-list requests of that method (answered with that status) from HeadlessChrome
# with the main instance as Referer (nginx's combined format: "request" status bytes "referer" "user agent").
count() {
  grep -E "\"$2 /$project/node/list[^\"]*\" ${3:-[0-9]+} " "$1" | grep -F HeadlessChrome | grep -cF "\"$main_url/" || true
}

declare -A res
page_load() {  # NAME INDEX
  local name=$1 n_main n_mirror rc=0 t
  t=$(date +%s)
  set_mirror_index "$2"
  n_main=$(lines "$main")
  n_mirror=$(lines "$mirror")
  "$venv/bin/python" "$here/scripts/catmaid_browser_check.py" --webdriver "http://$main_ip:9515" --main "$main_url/" \
    --project "$project" --stack "$stack" --x "$x" --y "$y" --z "$z" --user admin \
    --password-file "$secrets/password" >"$out/$name.json" 2>"$out/$name.err" || rc=$?
  sleep 1
  docker exec "$main" tail -n "+$((n_main + 1))" /var/log/nginx/access.log >"$out/$name-main-access.log"
  docker exec "$mirror" tail -n "+$((n_mirror + 1))" /var/log/nginx/access.log >"$out/$name-mirror-access.log"
  res[$name.rc]=$rc
  res[$name.main_get]=$(count "$out/$name-main-access.log" GET)
  res[$name.mirror_get]=$(count "$out/$name-mirror-access.log" GET)
  res[$name.mirror_options]=$(count "$out/$name-mirror-access.log" OPTIONS)
  res[$name.mirror_get_ok]=$(count "$out/$name-mirror-access.log" GET 200)
  res[$name.mirror_options_ok]=$(count "$out/$name-mirror-access.log" OPTIONS 204)
  res[$name.state]=$("$venv/bin/python" -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    print("no result"); sys.exit()
s = d.get("state", {})
print("index %s, overlay nodes %s, node list from %s, WebGL %s, page %s s" % (s.get("read_only_mirror_index"),
      s.get("nodes"), s.get("tracing_data_url"), s.get("webgl"), d.get("elapsed_s")))
' "$out/$name.json")
  res[$name.index]=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("state", {}).get("read_only_mirror_index"))' "$out/$name.json" 2>/dev/null || echo none)
  log "$name (read_only_mirror_index $2): browser rc $rc, $(since "$t") s; ${res[$name.state]}"
}

page_load mirror 1
page_load control -1

verdict() {  # NAME: PASS or FAIL with the reason
  local n=$1 why=()
  [ "${res[$n.rc]}" = 0 ] || why+=("the browser script failed (rc ${res[$n.rc]}, see $out/$n.err)")
  if [ "$n" = mirror ]; then
    [ "${res[$n.index]}" = 1 ] || why+=("the front end used read_only_mirror_index ${res[$n.index]}")
    # 200: the mirror took the API token (X-Authorization) that made the preflight necessary; 204: nginx's CORS.
    [ "${res[$n.mirror_get_ok]}" -ge 1 ] || why+=("no GET /$project/node/list answered 200 on the mirror")
    [ "${res[$n.mirror_options_ok]}" -ge 1 ] || why+=("no CORS preflight (OPTIONS) answered 204 on the mirror")
  else
    [ "${res[$n.index]}" = -1 ] || why+=("the front end used read_only_mirror_index ${res[$n.index]}")
    [ "${res[$n.main_get]}" -ge 1 ] || why+=("no GET /$project/node/list on the main instance")
    [ $(( ${res[$n.mirror_get]} + ${res[$n.mirror_options]} )) -eq 0 ] || why+=("node-list requests reached the mirror")
  fi
  if [ ${#why[@]} -eq 0 ]; then echo PASS; else local IFS=';'; echo "FAIL: ${why[*]}"; fi
}
v_mirror=$(verdict mirror)
v_control=$(verdict control)

echo
echo "CATMAID browser check (headless Chromium, $main $main_url -> mirror $mirror $mirror_url), $(since "$t_start") s"
echo "  node-list requests from HeadlessChrome (GET /$project/node/list; OPTIONS = CORS preflight):"
printf '  %-8s %-22s %-10s %-12s %-16s %s\n' "load" read_only_mirror_index "main GET" "mirror GET" "mirror OPTIONS" result
for n in mirror control; do
  idx=$([ "$n" = mirror ] && echo 1 || echo -1)
  printf '  %-8s %-22s %-10s %-12s %-16s %s\n' "$n" "$idx" "${res[$n.main_get]}" "${res[$n.mirror_get]}" \
    "${res[$n.mirror_options]}" "$([ "$n" = mirror ] && echo "$v_mirror" || echo "$v_control")"
done
echo "  mirror's access log, first node-list lines:"
grep -F "/$project/node/list" "$out/mirror-mirror-access.log" | head -n 2 | cut -c1-400 | sed 's/^/    /'
echo "  logs and JSON: $out"
if [ "$v_mirror" = PASS ] && [ "$v_control" = PASS ]; then
  echo "catmaid-browser-check: PASS"
else
  echo "catmaid-browser-check: FAIL"
  exit 1
fi
