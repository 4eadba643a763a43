#!/usr/bin/env bash
# Issue 15, last point (make catmaid-browser; docs/notes/catmaid-browser.md): a headless Chromium opens the main
# CATMAID instance's tracing view with read_only_mirror_index set, and the replica's nginx access log shows the
# node-list requests the browser sent it. Too slow for the test suite (about 10 to 15 minutes here), so a target
# of its own.
#
# The lab is the Molecule scenario catmaid_app's own (molecule/catmaid_app), brought up with `molecule create`
# (which runs its prepare.yml) and `molecule converge` (playbooks/site.yml, then playbooks/catmaid_readonly.yml):
#   cma-primary   CATMAID's main instance (gunicorn behind nginx on port 80, the fixture catmaid_testdata); its
#                 PostgreSQL is the primary
#   cma-replica   the read-only CATMAID of the role catmaid_readonly (CORS for the main instance's origin, from
#                 the scenario's group_vars); its database a streaming replica of cma-primary's
# Then, on cma-primary only: CATMAID restarted (site.yml restarted its PostgreSQL: stale persistent connections),
# the admin's API token (`manage.py drf_create_token admin`; tokens live in the database, so the replica knows it
# once replicated: polled on the replica), the instance's client settings (CATMAID's CLIENT_SETTINGS and
# FORCE_CLIENT_SETTINGS read from a JSON file by an include appended once to settings.py, applied by the system
# check check_client_settings on `manage.py check`): remote_servers = [the replica, with that token] and
# tracing-overlay read_only_mirror_index; Debian's chromium and chromium-driver from apt, and chromedriver
# listening on port 9515 of the lab network (catmaid-app-lab).
# The controller runs scripts/catmaid_browser_check.py with selenium (PyPI, pinned, in build/browser-venv) against
# that chromedriver: it logs in through CATMAID's login box (admin of the fixture) and opens the tracing tool on
# stack 3 of project 3 where the fixture has nodes. Two page loads:
#   replica  read_only_mirror_index 1: PASS when the replica's access log has GET and OPTIONS (CORS preflight)
#            requests for /3/node/list from HeadlessChrome with the main instance as Referer (200 and 204), the
#            replica's database scanned treenode_edge (PostGIS's spatial query of the node list) and the overlay
#            holds nodes (the browser read the replica's answer)
#   control  read_only_mirror_index -1: PASS when the node-list requests go to the main instance only
# For each load it also counts the read-only errors in the replica's PostgreSQL log and the replica's error
# answers (a write the front end tried there). Output: a PASS/FAIL summary; logs and each page load's JSON in
# build/catmaid-browser/. Exit status 0 only when both pass. `molecule destroy -s catmaid_app` at the end.
# It runs the scenario catmaid_app's lab (containers cma-primary, cma-replica, network catmaid-app-lab): never
# while `make test` or `make molecule` runs that scenario. It refuses to start when those containers exist
# (unless REUSE=1).
# Environment: KEEP=1 keeps the lab (then `molecule destroy -s catmaid_app`, or a later run with REUSE=1);
# REUSE=1 uses a lab this script kept with KEEP=1 (container ids in build/catmaid-browser.kept) as it is (no create,
# no converge; destroyed at the end unless KEEP=1); a lab of make test or make molecule is refused;
# SELENIUM_VERSION (default 4.51.0; 4.52.0 needs a certifi newer than the index has).
# The API token and the password never appear on a command line: they go through files of mode 0600/0640
# (a temporary directory on the controller, removed at the end), pipes and stdin.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
image=catmaid-replication/catmaid:bullseye  # molecule/catmaid_app/molecule.yml
scenario=catmaid_app
net=catmaid-app-lab
main=cma-primary
replica=cma-replica
selenium_version=${SELENIUM_VERSION:-4.51.0}
venv=$here/build/browser-venv
out=$here/build/catmaid-browser
# Where the fixture has nodes: project 3, stack 3 (FIB, 5 nm), treenode 7 of skeleton 1 at (3590, 3240, 0) nm.
project=3
stack=3
x=3590 y=3240 z=0
settings_json=/etc/catmaid/browser-check-client-settings.json
settings_py=/opt/catmaid/django/projects/mysite/settings.py  # the scenario's (images/catmaid/smoke.sh)
settings_marker='# catmaid-browser-check: client settings'
chromedriver_unit=catmaid-browser-chromedriver
pg_log=/var/log/postgresql/postgresql-13-main.log

log() { printf 'catmaid-browser-check: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
t_start=$(date +%s)
since() { echo "$(( $(date +%s) - $1 ))"; }

docker image inspect "$image" >/dev/null 2>&1 ||
  die "$image is missing: build it first (make catmaid-image, see docs/notes/catmaid-image.md)"
[ -x "$here/.venv/bin/molecule" ] || die "$here/.venv/bin/molecule is missing: run make collection"
[ -d "$here/build/collections/ansible_collections/catmaid/replication" ] ||
  die "build/collections has no catmaid.replication: run make collection"

# Molecule as `make molecule` runs it (the Makefile's exports).
export PATH="$here/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$here/build/collections" \
  ANSIBLE_ROLES_PATH="$here/roles" PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
molecule_run() {  # COMMAND LOG
  (cd "$here" && molecule "$1" -s "$scenario") >"$2" 2>&1
}

lab_ids() { docker ps -aq --no-trunc --filter "name=^/$main\$" --filter "name=^/$replica\$" | sort; }
lab_exists() {
  local names
  names=$(docker ps -a --format '{{.Names}}') || die "docker ps failed"
  grep -qxE "$main|$replica" <<<"$names"
}
kept_marker="$here/build/catmaid-browser.kept"  # the container ids of a lab this script kept (KEEP=1)
reuse=0
if lab_exists; then
  # REUSE=1 only for the lab this script kept, never one of make test or make molecule.
  if [ "${REUSE:-0}" = 1 ] && [ -s "$kept_marker" ] && [ "$(cat "$kept_marker")" = "$(lab_ids)" ]; then
    reuse=1
  else
    die "containers of the scenario $scenario exist ($main/$replica) that this script did not keep: a run of make test
  or make molecule uses them (wait for it), or remove them with molecule destroy -s $scenario"
  fi
fi
rm -f "$kept_marker"

mkdir -p "$out"
rm -f "$out"/*  # this script's own directory: files of the previous run
secrets=$(mktemp -d)
chmod 0700 "$secrets"
ours=0  # set once this run may have made the lab: only then is it destroyed

# shellcheck disable=SC2317  # called through the trap
cleanup() {
  rm -rf "$secrets"
  [ "$ours" = 1 ] || return 0
  # chromedriver drives a root Chrome: never left running.
  docker exec "$main" systemctl stop "$chromedriver_unit" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then
    lab_ids >"$kept_marker"
    log "kept (KEEP=1): the lab of $scenario ($main, $replica, network $net); REUSE=1 uses it, molecule destroy -s $scenario removes it"
  else
    local t
    t=$(date +%s)
    molecule_run destroy "$out/molecule-destroy.log" || log "molecule destroy failed: $out/molecule-destroy.log"
    log "molecule destroy -s $scenario in $(since "$t") s"
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

ours=1
if [ "$reuse" = 1 ]; then
  log "REUSE=1: the lab's containers exist, no molecule create or converge"
else
  t=$(date +%s)
  molecule_run create "$out/molecule-create.log" ||
    { tail -n 40 "$out/molecule-create.log" >&2; die "molecule create -s $scenario failed ($out/molecule-create.log)"; }
  log "molecule create -s $scenario (with prepare: CATMAID on both) in $(since "$t") s"
  t=$(date +%s)
  molecule_run converge "$out/molecule-converge.log" ||
    { tail -n 40 "$out/molecule-converge.log" >&2; die "molecule converge -s $scenario failed ($out/molecule-converge.log)"; }
  log "molecule converge -s $scenario (site.yml, catmaid_readonly.yml) in $(since "$t") s"
  { sed -n '/^PLAY RECAP/,$p' "$out/molecule-converge.log" | grep -E '^[^ ]+ +: ok=' || true; } | tail -n 3 | sed 's/^/  /' >&2
fi

ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1"; }
main_ip=$(ip_of "$main")
replica_ip=$(ip_of "$replica")
if [ -z "$main_ip" ] || [ -z "$replica_ip" ]; then die "no addresses on $net for $main/$replica"; fi
main_url="http://$main_ip"
replica_url="http://$replica_ip"
log "lab: $main $main_ip (main instance), $replica $replica_ip (replica)"

# Debian's chromium and chromium-driver on the main instance's host, after converge (its apt would compete for
# dpkg's lock), while the rest is set up. Mesa's EGL (libegl1, libegl-mesa0) gives this Chromium WebGL: see
# scripts/catmaid_browser_check.py.
t_apt=$(date +%s)
docker exec -e DEBIAN_FRONTEND=noninteractive "$main" sh -c \
  'apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver libegl1 libegl-mesa0' \
  >"$out/apt-chromium.log" 2>&1 &
apt_pid=$!

manage() {  # CONTAINER ARGS...: CATMAID's manage.py, as the scenario runs it
  local c=$1; shift
  docker exec -i "$c" sh -c 'cd /opt/catmaid/django/projects && exec ../env/bin/python manage.py "$@"' manage "$@"
}
restart_main() {  # restart the main instance's CATMAID and wait until it answers
  docker exec "$main" systemctl restart catmaid-gunicorn
  local code=
  for _ in $(seq 1 60); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$main_url/" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    sleep 1
  done
  die "the main instance does not answer after a restart of catmaid-gunicorn (HTTP $code)"
}

# site.yml restarted the primary's PostgreSQL: the main instance's persistent connections (CONN_MAX_AGE) are
# stale (Django 3.2 has no CONN_HEALTH_CHECKS), as in verify.yml's first task.
restart_main
log "main: catmaid-gunicorn restarted"

preflight() {  # ORIGIN: the Access-Control-Allow-Origin the replica answers a preflight with
  curl -sS -o /dev/null -D - -X OPTIONS -H "Origin: $1" -H 'Access-Control-Request-Method: GET' \
    -H 'Access-Control-Request-Headers: x-authorization' "$replica_url/$project/node/list" |
    tr -d '\r' | sed -n 's/^Access-Control-Allow-Origin: //Ip'
}
[ "$(preflight "$main_url")" = "$main_url" ] || die "the replica does not allow $main_url across origins"
[ -z "$(preflight http://other.invalid)" ] || die "the replica allows an origin that is not listed"
log "replica: CORS preflight allowed for $main_url (role catmaid_readonly), not for another origin"

# The admin's API token, made on the main instance (drf_create_token returns an existing one): from its stdout
# through a pipe into a 0600 file, and a curl config with the header (curl reads it on stdin).
(umask 077
 manage "$main" drf_create_token admin 2>/dev/null | python3 -c '
import re, sys
m = re.search(r"token (\S+) for user", sys.stdin.read())
if not m or len(m.group(1)) < 20:
    sys.exit("no token from drf_create_token")
print(m.group(1))
' >"$secrets/token"
 printf 'header = "X-Authorization: Token %s"\n' "$(cat "$secrets/token")" >"$secrets/curl-token.cfg")
# Tokens live in the database: valid on the replica once replicated.
t=$(date +%s)
code=
for _ in $(seq 1 60); do
  code=$(curl -sS -o /dev/null -w '%{http_code}' -K - "$replica_url/$project/skeletons/" <"$secrets/curl-token.cfg" || true)
  [ "$code" = 200 ] && break
  sleep 1
done
[ "$code" = 200 ] || die "the replica does not take the main instance's token (HTTP $code on /$project/skeletons/)"
log "replica: the admin's token (made on the main instance) valid there after $(since "$t") s"

# The main instance's client settings, in a JSON file that settings.py reads (0640 root:www-data: gunicorn runs
# as www-data); the include is appended to settings.py once.
(umask 077
 python3 -c '
import json, sys
token = open(sys.argv[2], encoding="utf-8").read().strip()
json.dump({"client-settings": {"remote_servers": [
              {"name": "replica", "url": sys.argv[1] + "/", "api_key": token, "type": "catmaid"}]},
           "tracing-overlay": {"read_only_mirror_index": 1}}, sys.stdout)
' "$replica_url" "$secrets/token" >"$secrets/client-settings.json")
docker exec "$main" install -d -m 0755 /etc/catmaid
docker cp "$secrets/client-settings.json" "$main:$settings_json"
docker exec "$main" sh -c "chown root:www-data $settings_json && chmod 0640 $settings_json"
if docker exec "$main" grep -qxF "$settings_marker" "$settings_py"; then
  log "main: $settings_py includes the client settings already"
else
  docker exec -i "$main" sh -c "cat >> $settings_py" <<EOF

$settings_marker
# (scripts/catmaid-browser-check.sh, make catmaid-browser): remote_servers with the replica and the admin's API
# token, tracing-overlay read_only_mirror_index, set again on every \`manage.py check\` (FORCE_CLIENT_SETTINGS).
import os as _cmb_os
if _cmb_os.path.exists('$settings_json'):
    with open('$settings_json', encoding='utf-8') as _cmb_file:
        CLIENT_SETTINGS = _cmb_file.read()
    FORCE_CLIENT_SETTINGS = True
EOF
  log "main: include of $settings_json appended to $settings_py"
fi
restart_main  # gunicorn's workers import settings.py again

wait "$apt_pid" || { tail -n 20 "$out/apt-chromium.log" >&2; die "apt-get install chromium failed in $main"; }
log "main: $(docker exec "$main" chromium --version 2>/dev/null), $(docker exec "$main" chromedriver --version | cut -d' ' -f1-2) (apt $(since "$t_apt") s)"

# chromedriver on the lab network, for the controller only: the network's gateway is the host's side of it
# (still any user on this host; the page loads take a minute, and cleanup stops it).
gateway=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$net")
[ -n "$gateway" ] || die "no gateway address of $net"
docker exec "$main" sh -c "systemctl stop $chromedriver_unit 2>/dev/null; systemctl reset-failed $chromedriver_unit 2>/dev/null; true"
docker exec "$main" systemd-run -q --unit="$chromedriver_unit" --property=Environment=HOME=/root \
  /usr/bin/chromedriver --port=9515 "--allowed-ips=$gateway" '--allowed-origins=*'
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
  manage "$main" check </dev/null >"$out/main-check-$1.log" 2>&1 ||
    { tail -n 20 "$out/main-check-$1.log" >&2; die "manage.py check failed"; }
}
lines() { docker exec "$1" sh -c "wc -l < ${2:-/var/log/nginx/access.log}"; }
# flush: restart CATMAID on both hosts, so that their PostgreSQL sessions end. PostgreSQL 13 sends a session's
# table statistics at most every 0.5 s at a transaction's end, and an idle persistent connection (CONN_MAX_AGE)
# never does; a session that ends sends them. Then wait until both answer.
flush() {
  docker exec "$replica" systemctl restart catmaid-gunicorn
  restart_main
  local code=
  for _ in $(seq 1 60); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$replica_url/" 2>/dev/null || true)
    [ "$code" = 200 ] && break
    sleep 1
  done
  [ "$code" = 200 ] || die "the replica does not answer after a restart of catmaid-gunicorn (HTTP $code)"
  sleep 1
}
# Scans of treenode_edge (PostGIS's 3D index: the node list's spatial query, node provider postgis3d) so far.
edge_scans() {
  docker exec "$1" runuser -u postgres -- psql -d catmaid -XAtc \
    "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'treenode_edge'"
}
# count FILE METHOD [STATUS]: node-list requests of that method (answered with that status) from HeadlessChrome
# with the main instance as Referer (nginx's combined format: "request" status bytes "referer" "user agent").
count() {
  grep -E "\"$2 /$project/node/list[^\"]*\" ${3:-[0-9]+} " "$1" | grep -F HeadlessChrome | grep -cF "\"$main_url/" || true
}

declare -A res
page_load() {  # NAME INDEX
  local name=$1 n_main n_replica n_pg e_main e_replica rc=0 t
  t=$(date +%s)
  set_mirror_index "$2"
  flush
  n_main=$(lines "$main")
  n_replica=$(lines "$replica")
  n_pg=$(lines "$replica" "$pg_log")
  e_main=$(edge_scans "$main")
  e_replica=$(edge_scans "$replica")
  "$venv/bin/python" "$here/scripts/catmaid_browser_check.py" --webdriver "http://$main_ip:9515" --main "$main_url/" \
    --replica "$replica_url/" --project "$project" --stack "$stack" --x "$x" --y "$y" --z "$z" --user admin \
    --password-file "$secrets/password" >"$out/$name.json" 2>"$out/$name.err" || rc=$?
  sleep 1
  docker exec "$main" tail -n "+$((n_main + 1))" /var/log/nginx/access.log >"$out/$name-main-access.log"
  docker exec "$replica" tail -n "+$((n_replica + 1))" /var/log/nginx/access.log >"$out/$name-replica-access.log"
  docker exec "$replica" tail -n "+$((n_pg + 1))" "$pg_log" >"$out/$name-replica-postgresql.log"
  flush
  res[$name.main_edge]=$(( $(edge_scans "$main") - e_main ))
  res[$name.replica_edge]=$(( $(edge_scans "$replica") - e_replica ))
  res[$name.rc]=$rc
  res[$name.main_get]=$(count "$out/$name-main-access.log" GET)
  res[$name.replica_get]=$(count "$out/$name-replica-access.log" GET)
  res[$name.replica_options]=$(count "$out/$name-replica-access.log" OPTIONS)
  res[$name.replica_get_ok]=$(count "$out/$name-replica-access.log" GET 200)
  res[$name.replica_options_ok]=$(count "$out/$name-replica-access.log" OPTIONS 204)
  res[$name.ro_errors]=$(grep -ci 'read-only transaction' "$out/$name-replica-postgresql.log" || true)
  # The replica's answers of 400 or more (a write the front end tried there would fail so), as "METHOD path status".
  res[$name.replica_errors]=$(awk '$9 ~ /^[45]/ {split($7, p, "?"); print substr($6, 2), p[1], $9}' \
    "$out/$name-replica-access.log" | sort | uniq -c | awk '{$1 = $1 "x"; print}' | paste -sd ';' -)
  res[$name.replica_paths]=$(awk '{split($7, p, "?"); print substr($6, 2), p[1], $9}' "$out/$name-replica-access.log" |
    sort | uniq -c | awk '{$1 = $1 "x"; print}' | paste -sd ';' -)
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

page_load replica 1
page_load control -1

verdict() {  # NAME: PASS or FAIL with the reason
  local n=$1 why=()
  [ "${res[$n.rc]}" = 0 ] || why+=("the browser script failed (rc ${res[$n.rc]}, see $out/$n.err)")
  if [ "$n" = replica ]; then
    [ "${res[$n.index]}" = 1 ] || why+=("the front end used read_only_mirror_index ${res[$n.index]}")
    # 200: the replica took the API token (X-Authorization) that made the preflight necessary; 204: nginx's CORS.
    [ "${res[$n.replica_get_ok]}" -ge 1 ] || why+=("no GET /$project/node/list answered 200 on the replica")
    [ "${res[$n.replica_options_ok]}" -ge 1 ] || why+=("no CORS preflight (OPTIONS) answered 204 on the replica")
    [ "${res[$n.replica_edge]}" -ge 1 ] || why+=("no scan of treenode_edge in the replica's database")
    [ "${res[$n.main_get]}" -eq 0 ] || why+=("node-list requests reached the main instance too")
    [ "${res[$n.main_edge]}" -eq 0 ] || why+=("treenode_edge was scanned in the primary's database")
    [ "${res[$n.ro_errors]}" -eq 0 ] || why+=("read-only errors in the replica's PostgreSQL log")
  else
    [ "${res[$n.index]}" = -1 ] || why+=("the front end used read_only_mirror_index ${res[$n.index]}")
    [ "${res[$n.main_get]}" -ge 1 ] || why+=("no GET /$project/node/list on the main instance")
    [ $(( ${res[$n.replica_get]} + ${res[$n.replica_options]} )) -eq 0 ] || why+=("node-list requests reached the replica")
    [ "${res[$n.main_edge]}" -ge 1 ] || why+=("no scan of treenode_edge in the primary's database")
    [ "${res[$n.replica_edge]}" -eq 0 ] || why+=("treenode_edge was scanned in the replica's database")
    # The front end lists the remote server's projects in both loads: the replica's log slice is live.
    [[ "${res[$n.replica_paths]:-}" == *"GET /projects/ 200"* ]] ||
      why+=("the replica's access log shows no GET /projects/ of this load (log slice not live?)")
  fi
  if [ ${#why[@]} -eq 0 ]; then echo PASS; else local IFS=';'; echo "FAIL: ${why[*]}"; fi
}
v_replica=$(verdict replica)
v_control=$(verdict control)

echo
echo "CATMAID browser check (headless Chromium; lab of $scenario: $main $main_url -> replica $replica $replica_url), $(since "$t_start") s"
echo "  node-list requests from HeadlessChrome (GET /$project/node/list; OPTIONS = CORS preflight), scans of"
echo "  treenode_edge (PostGIS) in each database, read-only errors in the replica's PostgreSQL log:"
printf '  %-8s %-6s %-9s %-12s %-16s %-13s %-16s %-10s %s\n' load index "main GET" "replica GET" "replica OPTIONS" \
  "main scans" "replica scans" "read-only" result
for n in replica control; do
  idx=$([ "$n" = replica ] && echo 1 || echo -1)
  printf '  %-8s %-6s %-9s %-12s %-16s %-13s %-16s %-10s %s\n' "$n" "$idx" "${res[$n.main_get]}" "${res[$n.replica_get]}" \
    "${res[$n.replica_options]}" "${res[$n.main_edge]}" "${res[$n.replica_edge]}" "${res[$n.ro_errors]}" \
    "$([ "$n" = replica ] && echo "$v_replica" || echo "$v_control")"
done
for n in replica control; do
  echo "  $n load, the replica's access log (count x method path status): ${res[$n.replica_paths]:-nothing}"
  [ -z "${res[$n.replica_errors]}" ] || echo "  $n load, the replica's error answers: ${res[$n.replica_errors]}"
done
echo "  replica's access log, first node-list lines:"
{ grep -F "/$project/node/list" "$out/replica-replica-access.log" || true; } | head -n 2 | cut -c1-400 | sed 's/^/    /'
echo "  logs and JSON: $out"
if [ "$v_replica" = PASS ] && [ "$v_control" = PASS ]; then
  echo "catmaid-browser-check: PASS"
else
  echo "catmaid-browser-check: FAIL"
  exit 1
fi
