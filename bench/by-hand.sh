#!/usr/bin/env bash
# The CATMAID replication guide's own steps as a plain shell script: the "by hand" baseline that
# bench/bench.py times against playbooks/site.yml. It runs INSIDE one host (bench.py feeds it to
# `docker exec -i <container> bash -s -- ...`): first on the primary, then on every replica at once.
# The "parallel" variant is what a skilled admin does, and what the playbook does: the packages on
# every host at once first (`install`), then the primary's steps, then the replicas' at once, each
# without installing again (BYHAND_SKIP_INSTALL=1).
#
#   by-hand.sh install primary|replica        only the packages of that kind of host
#   by-hand.sh primary REPLICA_ADDRESS...     PostgreSQL + nginx stream proxy on 7432, SSL, role, pg_hba
#   by-hand.sh replica PRIMARY_HOST APP_NAME  stop, empty the data directory, pg_basebackup through
#                                             the proxy, standby.signal + primary_conninfo, start
#
# The replication password is read from /root/.bench_password (mode 0600, written by bench.py
# before the clock starts, as an operator would have it at hand). It never appears on a command
# line: the shell's builtin printf hands it to psql's standard input and into a 0600 PGPASSFILE.
# The same apt rule as the roles (refresh the package lists when older than an hour), the same
# settings as the collection renders, and the same end state (the replica streams) are used, so
# both sides do the same work. What the guide leaves to the reader is filled in the simplest
# way: a self-signed certificate with openssl, the nginx stream block appended to nginx.conf.
set -euo pipefail

PORT=7432
USER_NAME=replication_user
PASSWORD_FILE=/root/.bench_password
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  # Like the roles' cache_valid_time: 3600, refresh the lists only when they are older than an hour.
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -60 -print -quit)" ]; then
    apt-get update -q >/dev/null
  fi
  apt-get install -y -q "$@" >/dev/null
}

cluster() {  # prints "major data_dir" of the distribution's cluster "main"
  pg_lsclusters --no-header | awk '$2 == "main" {print $1, $6; exit}'
}

settings() {  # the replication settings of the guide, as the collection renders them for PG 13+
  local conf_dir=$1
  mkdir -p "$conf_dir/conf.d"
  cat >"$conf_dir/conf.d/40-replication.conf" <<EOF
listen_addresses = 'localhost'
ssl = on
ssl_cert_file = '/etc/ssl/postgresql/cert/server.crt'
ssl_key_file = '/etc/ssl/postgresql/private/server.key'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 1024
hot_standby = on
EOF
  chown -R postgres:postgres "$conf_dir/conf.d"
}

certificate() {  # self-signed pair readable by postgres only
  mkdir -p /etc/ssl/postgresql/cert /etc/ssl/postgresql/private
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=$(hostname)" \
    -keyout /etc/ssl/postgresql/private/server.key -out /etc/ssl/postgresql/cert/server.crt 2>/dev/null
  chown -R postgres:postgres /etc/ssl/postgresql
  chmod 0700 /etc/ssl/postgresql/private
  chmod 0600 /etc/ssl/postgresql/private/server.key
}

PRIMARY_PACKAGES=(postgresql nginx libnginx-mod-stream)
REPLICA_PACKAGES=(postgresql)

install() {
  case "$1" in
    primary) apt_install "${PRIMARY_PACKAGES[@]}" ;;
    replica) apt_install "${REPLICA_PACKAGES[@]}" ;;
    *) echo "usage: by-hand.sh install primary|replica" >&2; exit 2 ;;
  esac
}

primary() {
  [ "${BYHAND_SKIP_INSTALL:-0}" = 1 ] || apt_install "${PRIMARY_PACKAGES[@]}"
  local major data_dir conf_dir password
  read -r major data_dir < <(cluster)
  conf_dir=/etc/postgresql/$major/main
  certificate
  settings "$conf_dir"
  grep -q "^include_dir = 'conf.d'" "$conf_dir/postgresql.conf" || echo "include_dir = 'conf.d'" >>"$conf_dir/postgresql.conf"

  # CREATE ROLE ... ; SET password_encryption = 'scram-sha-256'; \password (here: on stdin)
  password=$(<"$PASSWORD_FILE")
  printf "CREATE ROLE %s WITH REPLICATION LOGIN;\nSET password_encryption = 'scram-sha-256';\nALTER ROLE %s PASSWORD '%s';\n" \
    "$USER_NAME" "$USER_NAME" "${password//\'/\'\'}" | runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 >/dev/null

  # Behind the local proxy every replica arrives from 127.0.0.1.
  echo "hostssl replication $USER_NAME 127.0.0.1/32 scram-sha-256" >>"$conf_dir/pg_hba.conf"
  systemctl restart "postgresql@$major-main"

  # The guide's stream block (Debian loads ngx_stream_module via modules-enabled), only the replicas allowed.
  {
    echo "stream {"
    echo "    upstream postgres_db { server 127.0.0.1:5432; }"
    echo "    server {"
    echo "        listen $PORT;"
    for address in "$@"; do echo "        allow $address;"; done
    echo "        deny all;"
    echo "        proxy_pass postgres_db;"
    echo "    }"
    echo "}"
  } >>/etc/nginx/nginx.conf
  nginx -t 2>/dev/null
  systemctl reload nginx
}

replica() {
  local primary_host=$1 app_name=$2 major data_dir conf_dir password passfile=/var/lib/postgresql/.pgpass_replication
  [ "${BYHAND_SKIP_INSTALL:-0}" = 1 ] || apt_install "${REPLICA_PACKAGES[@]}"
  read -r major data_dir < <(cluster)
  conf_dir=/etc/postgresql/$major/main
  systemctl stop "postgresql@$major-main"
  certificate
  settings "$conf_dir"
  grep -q "^include_dir = 'conf.d'" "$conf_dir/postgresql.conf" || echo "include_dir = 'conf.d'" >>"$conf_dir/postgresql.conf"

  # "delete all files in this data directory", then pg_basebackup through the proxy.
  find "$data_dir" -mindepth 1 -delete
  password=$(<"$PASSWORD_FILE")
  (umask 077 && printf '%s:%s:replication:%s:%s\n' "$primary_host" "$PORT" "$USER_NAME" "$password" >"$passfile")
  chown postgres:postgres "$passfile"
  runuser -u postgres -- env PGPASSFILE="$passfile" "/usr/lib/postgresql/$major/bin/pg_basebackup" \
    -h "$primary_host" -p "$PORT" -U "$USER_NAME" -w -D "$data_dir" --checkpoint=fast -X stream \
    -d "sslmode=require application_name=$app_name"

  # standby.signal + primary_conninfo (password in the passfile, not in postgresql.conf)
  echo "primary_conninfo = 'host=$primary_host port=$PORT user=$USER_NAME passfile=$passfile sslmode=require application_name=$app_name'" \
    >"$conf_dir/conf.d/50-standby.conf"
  chown postgres:postgres "$conf_dir/conf.d/50-standby.conf"
  runuser -u postgres -- touch "$data_dir/standby.signal"
  systemctl start "postgresql@$major-main"

  # "started streaming WAL from primary": wait for it, as the playbook does.
  for _ in $(seq 120); do
    if [ "$(runuser -u postgres -- psql -Atc 'SELECT status FROM pg_stat_wal_receiver' 2>/dev/null)" = streaming ]; then
      return 0
    fi
    sleep 0.5
  done
  echo "by-hand: $(hostname) does not stream" >&2
  return 1
}

case "${1:-}" in
  install) shift; install "${1:-}" ;;
  primary) shift; primary "$@" ;;
  replica) shift; replica "$@" ;;
  *) echo "usage: by-hand.sh install primary|replica | primary REPLICA_ADDRESS... | replica PRIMARY_HOST APP_NAME" >&2; exit 2 ;;
esac
