#!/usr/bin/env bash
# CATMAID on one host of catmaid-replication/catmaid:bullseye, set up the way its installation.rst
# says, then served by gunicorn behind nginx and fetched with curl. Runs inside a container (as root,
# systemd as PID 1), e.g. through scripts/smoke-catmaid-image.sh:
#   docker cp images/catmaid/smoke.sh C:/tmp/ && docker cp images/catmaid/smoke.env C:/tmp/
#   docker exec C bash /tmp/smoke.sh /tmp/smoke.env
# Steps (each timed, one line "smoke: STEP ok in N.N s" or "smoke: STEP FAILED ..."):
#   postgres    the cluster 13/main runs (systemd starts it; started by hand otherwise)
#   database    scripts/createuser.sh DB USER PASSWORD | psql (role, database, postgis, pg_trgm)
#   configure   configuration.py from the example + create_configuration.py (settings.py, django.wsgi)
#   migrate     manage.py migrate
#   fixture     manage.py loaddata catmaid_testdata
#   consistent  tests/common.py init_consistent_data() (setval of concept/location sequences and
#               validate_project_setup for every project)
#   materialize manage.py catmaid_rebuild_all_materializations
#   check       manage.py check
#   static      manage.py collectstatic -l --noinput (already done in the image: must be quick)
#   token       manage.py drf_create_token admin (the fixture's superuser)
#   gunicorn    gunicorn mysite.wsgi:application from django/projects, as www-data, on 127.0.0.1:8020
#   nginx       a site for / (proxy to gunicorn) and /static/ (alias), nginx -t, reload
#   http        curl: / through gunicorn and nginx, /projects/, a static file, and
#               /3/skeletons/ with the token (the fixture's 12 skeletons of project 3)
# Rerunnable on the same host: the database is dropped and made again, gunicorn restarted.
# The passwords come from the file named by $1 (fixed lab test values, never on a command line).
# Settings the file may also set (the Molecule scenario catmaid_app uses them):
#   SMOKE_STEPS              the steps to run, in this order, e.g. "postgres configure gunicorn nginx"
#                            for a replica's read-only instance (its database comes by replication);
#                            default: all of them
#   CATMAID_SETTINGS_EXTRA   a file appended to settings.py by `configure` (site settings)
#   CATMAID_GUNICORN_START   0: `gunicorn` writes and enables the unit but does not start it (a replica's
#                            database does not exist yet); default 1
set -euo pipefail

env_file=${1:-/tmp/smoke.env}
[ -r "$env_file" ] || { echo "smoke: $env_file not readable" >&2; exit 2; }
# shellcheck disable=SC1090
. "$env_file"
: "${CATMAID_DB_NAME:=catmaid}" "${CATMAID_DB_USER:=catmaid_user}" "${CATMAID_DB_PASSWORD:?set in $env_file}"
: "${CATMAID_SERVERNAME:=localhost}" "${CATMAID_HTTP_PORT:=80}" "${CATMAID_GUNICORN_BIND:=127.0.0.1:8020}"

app=/opt/catmaid
dj=$app/django
py=$dj/env/bin/python
# As `source env/bin/activate` would (django-pipeline runs the command `cssmin` from the venv).
manage() { (cd "$dj/projects" && PATH="$dj/env/bin:$PATH" "$py" manage.py "$@"); }
as_pg() { su postgres -s /bin/sh -c "$*"; }

want() { [[ " ${SMOKE_STEPS:-all} " == *" all "* || " ${SMOKE_STEPS:-} " == *" $1 "* ]]; }
step_name=
step_t0=
timings=()
begin() { step_name=$1; step_t0=$(date +%s.%N); echo "smoke: $step_name ..."; }
end() {
  local dt; dt=$(awk -v a="$step_t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  echo "smoke: $step_name ok in $dt s"; timings+=("$step_name=$dt"); step_name=
}
# shellcheck disable=SC2154  # rc is set inside the trap
trap 'rc=$?; [ -z "$step_name" ] || echo "smoke: $step_name FAILED (rc $rc)" >&2' EXIT

if want postgres; then
begin postgres
for _ in $(seq 1 60); do
  systemctl is-system-running >/dev/null 2>&1 && break
  [ "$(systemctl is-system-running 2>/dev/null || true)" = degraded ] && break
  sleep 1
done
pg_lsclusters 13 main >/dev/null || { echo "smoke: no cluster 13/main in this image" >&2; exit 1; }
pg_lsclusters -h 13 main | grep -q online || pg_ctlcluster 13 main start
for _ in $(seq 1 30); do as_pg "psql -Atqc 'select 1'" >/dev/null 2>&1 && break; sleep 1; done
as_pg "psql -Atqc 'select version()'"
end
fi

if want database; then
begin database
as_pg "psql -q -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS \"$CATMAID_DB_NAME\"'"
# createuser.sh takes the password as an argument: run it with the value from the file inside this
# process (not visible on the docker exec command line), its SQL goes to psql through a pipe.
"$app/scripts/createuser.sh" "$CATMAID_DB_NAME" "$CATMAID_DB_USER" "$CATMAID_DB_PASSWORD" |
  as_pg "psql -q -v ON_ERROR_STOP=1" >/dev/null
as_pg "psql -Atq -d '$CATMAID_DB_NAME' -c 'select postgis_full_version()'" | cut -c1-100
end
fi

if want configure; then
begin configure
install -d -o www-data -g www-data /var/lib/catmaid/files
purelib=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
umask 027
cat > "$dj/configuration.py" <<EOF
abs_catmaid_path = '$app'
abs_virtualenv_python_library_path = '$purelib'
catmaid_database_name = '$CATMAID_DB_NAME'
catmaid_database_username = '$CATMAID_DB_USER'
catmaid_database_password = '$CATMAID_DB_PASSWORD'
catmaid_database_host = 'localhost'
catmaid_database_port = '5432'
catmaid_writable_path = '/var/lib/catmaid/files'
catmaid_timezone = 'UTC'
catmaid_servername = '$CATMAID_SERVERNAME'
catmaid_subdirectory = ''
catmaid_default_enabled_tools = ['tracing']
EOF
(cd "$dj" && "$py" create_configuration.py >/dev/null)
if [ -n "${CATMAID_SETTINGS_EXTRA:-}" ]; then
  { echo; echo "# Site settings (smoke.sh: $CATMAID_SETTINGS_EXTRA)"; cat "$CATMAID_SETTINGS_EXTRA"; } >> "$dj/projects/mysite/settings.py"
fi
umask 022
chgrp www-data "$dj/configuration.py" "$dj/projects/mysite/settings.py"
grep -E "^(ALLOWED_HOSTS|STATIC_ROOT|STATIC_URL|MEDIA_ROOT)" "$dj/projects/mysite/settings.py"
end
fi

if want migrate; then
begin migrate
manage migrate --noinput -v 0
end
fi

if want fixture; then
begin fixture
manage loaddata catmaid_testdata
end
fi

if want consistent; then
begin consistent
manage shell -c 'from catmaid.tests.common import init_consistent_data; init_consistent_data()'
end
fi

if want materialize; then
begin materialize
manage catmaid_rebuild_all_materializations
end
fi

if want check; then
begin check
manage check
end
fi

if want static; then
begin static
manage collectstatic -l --noinput -v 0
end
fi

if want token; then
begin token
token=$(manage drf_create_token admin | awk '{print $3}')
[ ${#token} -ge 20 ] || { echo "smoke: no token from drf_create_token" >&2; exit 1; }
end
fi

if want gunicorn; then
begin gunicorn
# manage.py ran as root and made MEDIA_ROOT's sub-folders (tmp/matplotlib, ...): the web server
# user must be able to write there.
chown -R www-data:www-data /var/lib/catmaid/files
cat > /etc/systemd/system/catmaid-gunicorn.service <<EOF
[Unit]
Description=CATMAID (gunicorn, smoke test)
After=network.target postgresql.service
[Service]
User=www-data
Group=www-data
WorkingDirectory=$dj/projects
Environment=PATH=$dj/env/bin:/usr/local/bin:/usr/bin:/bin
ExecStart=$dj/env/bin/gunicorn --workers 2 --bind $CATMAID_GUNICORN_BIND --timeout 120 mysite.wsgi:application
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable -q catmaid-gunicorn
if [ "${CATMAID_GUNICORN_START:-1}" = 0 ]; then
  echo "gunicorn: unit written and enabled, not started (CATMAID_GUNICORN_START=0)"
else
systemctl restart catmaid-gunicorn
# ALLOWED_HOSTS is [servername]: send it as Host.
for _ in $(seq 1 60); do curl -fsS -H "Host: $CATMAID_SERVERNAME" -o /dev/null "http://$CATMAID_GUNICORN_BIND/" 2>/dev/null && break; sleep 0.5; done
curl -fsS -H "Host: $CATMAID_SERVERNAME" -o /dev/null -w 'gunicorn /: HTTP %{http_code}, %{size_download} bytes\n' "http://$CATMAID_GUNICORN_BIND/"
fi
end
fi

if want nginx; then
begin nginx
cat > /etc/nginx/sites-available/catmaid <<EOF
upstream catmaid-wsgi { server $CATMAID_GUNICORN_BIND fail_timeout=0; }
server {
    listen $CATMAID_HTTP_PORT default_server;
    server_name $CATMAID_SERVERNAME;
    location /static/ { alias $dj/static/; }
    location /files/ { alias /var/lib/catmaid/files/; }
    location / {
        # CORS for a read-only instance (catmaid_readonly_cors_origins); a glob: may match nothing.
        include /etc/nginx/snippets/catmaid-readonly-cors*.conf;
        proxy_pass http://catmaid-wsgi/;
        proxy_redirect off;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
    }
}
EOF
rm -f /etc/nginx/sites-enabled/default
ln -sfn ../sites-available/catmaid /etc/nginx/sites-enabled/catmaid
nginx -t 2>&1 | tail -1
systemctl enable -q nginx
# restart, not reload: a reload is asynchronous, the next request may still reach an old worker.
systemctl restart nginx
end
fi

if want http; then
begin http
base="http://127.0.0.1:$CATMAID_HTTP_PORT"
curl -fsS -H "Host: $CATMAID_SERVERNAME" -o /tmp/smoke-index.html -w 'nginx /: HTTP %{http_code}, %{size_download} bytes\n' "$base/"
grep -q -i catmaid /tmp/smoke-index.html || { echo "smoke: / does not look like CATMAID" >&2; exit 1; }
curl -fsS -H "Host: $CATMAID_SERVERNAME" -w '\nnginx /projects/: HTTP %{http_code}\n' "$base/projects/"
static_file=$(cd "$dj/static" && find -L . -name '*.css' -path './css/*' | head -1)
curl -fsS -H "Host: $CATMAID_SERVERNAME" -o /dev/null -w "nginx /static/${static_file#./}: HTTP %{http_code}, %{size_download} bytes\n" "$base/static/${static_file#./}"
# The header is built in this process; the token is not on any command line a `ps` would show for long.
skeletons=$(curl -fsS -H "Host: $CATMAID_SERVERNAME" -K - "$base/3/skeletons/" <<EOF
header = "X-Authorization: Token $token"
EOF
)
echo "nginx /3/skeletons/ (token of admin): $skeletons"
n=$(printf '%s' "$skeletons" | "$py" -c 'import json, sys; print(len(json.load(sys.stdin)))')
[ "$n" -eq 12 ] || { echo "smoke: expected the fixture's 12 skeletons of project 3, got $n" >&2; exit 1; }
end
fi

echo "smoke: all steps ok: ${timings[*]}"
