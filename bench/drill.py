# Switchover and failover drill of catmaid.replication (issue 16 item 2): how long writes stop, how
# many acknowledged commits are lost, how long until every surviving node streams again.
#
#   make drill                                   3 switchovers and 3 failovers, results in bench/results/
#   python bench/drill.py --help                 rounds, rate, events (after `make collection images`)
#   python bench/drill.py --rounds 1 --keep      one of each; keep the dr-* containers
#   python bench/drill.py --report-only          rewrite drill.md from drill.json
#
# Everything runs on throw-away systemd containers dr-primary, dr-replica1, dr-replica2 on the Docker
# network catmaid-drill, created and removed here (image catmaid-replication/debian:<release>, the
# container settings of molecule/default, never --privileged), deployed with playbooks/site.yml
# (PostgreSQL listening on every address, catmaid_replication_listen_addresses '*').
# A write probe on the controller (psycopg2) commits numbered rows, each its own transaction, about
# 40 times a second through a libpq multi-host conninfo over the three containers with
# target_session_attrs=read-write (it finds whichever node is the primary, and reconnects on any
# error), and records every acknowledged commit (id, monotonic time). While it runs the drill
#   (a) switches over with playbooks/switchover.yml, back and forth between dr-primary and dr-replica1;
#   (b) kills the primary's container (docker kill) and promotes another replica with
#       playbooks/promote.yml (the killed node cannot be fenced); before each further round the killed
#       node is replaced by a fresh container that site.yml clones as a replica of the new primary.
# The inventory follows every change of primary (one file per primary, the moved groups).
# Passwords are random per run: the replication password in build/drill/password (0600, read by
# Ansible with the file lookup), the probe role's in build/drill/pgpass (0600, libpq's PGPASSFILE);
# the probe role is created from a SCRAM-SHA-256 verifier computed here. Never on a command line.
# Raw data: <out>/drill.json; the table: <out>/drill.md.
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
# bench/bench.py's container helpers and the collection's SCRAM verifier (make collection links it).
sys.path[:0] = [str(ROOT / 'bench'), str(ROOT / 'build' / 'collections')]
import bench  # noqa: E402  # pylint: disable=wrong-import-position
from ansible_collections.catmaid.replication.plugins.module_utils._scram import build_verifier  # noqa: E402  # pylint: disable=wrong-import-position

BENCH = ROOT / 'bench'
WORK = ROOT / 'build' / 'drill'
NETWORK = 'catmaid-drill'
NODES = ['dr-primary', 'dr-replica1', 'dr-replica2']
RELEASE = os.environ.get('CATMAID_LAB_RELEASE', 'bookworm')
IMAGE = f'catmaid-replication/debian:{RELEASE}'
EVENTS = ('switchover', 'failover')
PROBE_DB = 'drill'
PROBE_USER = 'drill_probe'
HBA_MARK = '# catmaid-drill probe'
SYNCHRONOUS = {'catmaid_replication_synchronous': {'method': 'ANY', 'count': 1}}
ANCHORS = {
    'switchover': "Percona's operator: ~8 s for a planned switchover; Patroni's defaults allow ~30 s",
    'failover': "Percona's operator: ~5-10 s after a crash; Patroni's defaults allow ~30 s",
}
# What the servers' logs say, with a millisecond time stamp each (Debian's log_line_prefix '%m [%p] ...'):
# the old primary's fast shutdown, and the new primary's promotion until it accepts writes.
LOG_EVENTS = {
    'shutdown_request': 'received fast shutdown request',
    'shut_down': 'database system is shut down',
    'promote_request': 'received promote request',
    'ready': 'database system is ready to accept connections',
}
TARGETS = {
    'switchover': 'no writes for <= 5 s, 0 acknowledged commits lost',
    'failover': 'reported as measured (asynchronous replication may lose the last commits)',
}


def log(msg: str) -> None:
    print(f'[drill {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def loadavg() -> list[float]:
    return [float(x) for x in Path('/proc/loadavg').read_text(encoding='utf-8').split()[:3]]


def run(argv: list[str], check: bool = True, input_text: Optional[str] = None, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, input=input_text, capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f'{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def dexec(container: str, *argv: str, check: bool = True, input_text: Optional[str] = None) -> str:
    return run(['docker', 'exec', '-i', container, *argv], check=check, input_text=input_text).stdout


def psql(container: str, sql: str, db: str = 'postgres') -> str:
    """SQL on stdin (never on a command line), as postgres over the local socket."""
    return dexec(container, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', db,
                 input_text=sql).strip()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')


# --- containers (bench/bench.py's helpers, on the drill's own network and names) ------------------

def drill_containers() -> list[str]:
    out = run(['docker', 'ps', '-a', '--filter', 'name=^dr-', '--format', '{{.Names}}']).stdout.split()
    return [n for n in out if n in NODES]


def destroy() -> None:
    names = drill_containers()
    if names:
        run(['docker', 'rm', '-f', *names], check=False)


def create(names: list[str]) -> None:
    bench.create(names, network=NETWORK, label='drill', image=IMAGE)


def address(name: str) -> str:
    return bench.address(name, NETWORK)


def subnet() -> str:
    return bench.subnet(NETWORK)


def remove_network() -> None:
    bench.remove_network(NETWORK)


def private_file(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text, encoding='utf-8')


# --- the write probe ------------------------------------------------------------------------------

def connect(conninfo: str) -> Any:
    import psycopg2  # pylint: disable=import-outside-toplevel
    conn = psycopg2.connect(conninfo)
    conn.autocommit = True
    return conn


class Probe:
    """Commits numbered rows at a fixed rate, each its own transaction; records every acknowledged commit."""

    def __init__(self, conninfo: str, rate: float, first_id: int, hosts: dict[str, str]) -> None:
        self.conninfo = conninfo
        self.interval = 1.0 / rate
        self.next_id = first_id
        self.first_id = first_id
        self.node_of = {v: k for k, v in hosts.items()}
        self.acks: list[tuple[int, float]] = []
        self.failed: list[int] = []
        self.errors: list[tuple[float, str]] = []
        self.connects: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        conn = None
        due = time.monotonic()
        while not self._stop.is_set():
            if conn is None:
                try:
                    conn = connect(self.conninfo)
                    self.connects.append((time.monotonic(), self.node_of.get(conn.info.host, conn.info.host)))
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    self.errors.append((time.monotonic(), f'connect: {str(exc).strip()[:200]}'))
                    self._stop.wait(0.05)
                    continue
            row_id = self.next_id
            self.next_id += 1
            try:
                with conn.cursor() as cur:
                    cur.execute('INSERT INTO probe (id) VALUES (%s)', (row_id,))
                self.acks.append((row_id, time.monotonic()))
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.failed.append(row_id)
                self.errors.append((time.monotonic(), f'insert {row_id}: {str(exc).strip()[:200]}'))
                try:
                    conn.close()
                except Exception:  # pylint: disable=broad-exception-caught
                    pass
                conn = None
                continue
            due += self.interval
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                due = time.monotonic()
        if conn is not None:
            conn.close()


class Watcher:
    """Polls the new primary every 0.2 s: the first moment it accepts writes and every expected node streams from it."""

    def __init__(self, conninfo: str, expected: list[str]) -> None:
        self.conninfo = conninfo
        self.expected = set(expected)
        self.done_at: Optional[float] = None
        self.last: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return self.done_at is not None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        conn = None
        while not self._stop.is_set() and self.done_at is None:
            try:
                if conn is None:
                    conn = connect(self.conninfo)
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery(), coalesce(array_agg(application_name::text) "
                                "FILTER (WHERE state = 'streaming'), '{}') FROM pg_stat_replication")
                    recovery, streaming = cur.fetchone()
                self.last = {'in_recovery': recovery, 'streaming': sorted(streaming)}
                if not recovery and self.expected <= set(streaming):
                    self.done_at = time.monotonic()
                    break
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.last = {'error': str(exc).strip()[:200]}
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # pylint: disable=broad-exception-caught
                        pass
                conn = None
            self._stop.wait(0.2)
        if conn is not None:
            conn.close()


def outage(acks: list[tuple[int, float]], t0: float, t_end: float, t_stop: float) -> dict[str, Any]:
    """Seconds without accepted writes around an event that started at t0 (see the report's definition).

    None when writes did not resume after the playbook ended (t_end) before the probe stopped (t_stop):
    then no_write_at_least_s says for how long there were none."""
    times = [ack[1] for ack in acks]
    after = [t for t in times if t >= t0]
    if not [t for t in after if t > t_end]:
        last = times[-1] if times else t0
        return {'no_write_s': None, 'no_write_at_least_s': round(t_stop - max(last, t0), 3), 'gap_from_s': round(last - t0, 3)}
    first_after = after[0] - t0
    gaps = [(b - a, a, b) for a, b in zip(times, times[1:]) if b >= t0]
    gap, start, end = max(gaps) if gaps else (0.0, t0, after[0])
    if first_after > gap:
        gap, start, end = first_after, t0, after[0]
    return {'no_write_s': round(gap, 3), 'gap_from_s': round(start - t0, 3), 'gap_to_s': round(end - t0, 3),
            'first_ack_after_start_s': round(first_after, 3)}


def server_log(container: str, since: float) -> dict[str, float]:
    """Wall-clock times (epoch) of LOG_EVENTS in the container's PostgreSQL log at or after since, the first of each
    (a promotion's 'ready' only after its 'promote request': a standby logs 'ready to accept read-only connections')."""
    text = dexec(container, 'sh', '-c', 'tail -q -n 3000 /var/log/postgresql/postgresql-*.log', check=False)
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (UTC|GMT) \[\d+\] (.*)$', line)
        if not m:
            continue
        at = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S.%f').replace(tzinfo=datetime.timezone.utc).timestamp()
        if at < since:
            continue
        for key, needle in LOG_EVENTS.items():
            if key not in found and needle in m.group(3) and (key != 'ready' or 'promote_request' in found):
                found[key] = at
    return found


def summary(values: list[Optional[float]]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {'n': 0, 'min': None, 'median': None, 'max': None}
    return {'n': len(vals), 'min': round(min(vals), 3), 'median': round(statistics.median(vals), 3), 'max': round(max(vals), 3)}


def machine() -> dict[str, Any]:
    cpu = re.search(r'model name\s*:\s*(.*)', Path('/proc/cpuinfo').read_text(encoding='utf-8'))
    return {'nproc': os.cpu_count(), 'cpu': cpu.group(1) if cpu else '?', 'kernel': platform.release(), 'image': IMAGE,
            'docker': run(['docker', 'version', '-f', '{{.Server.Version}}'], check=False).stdout.strip()}


# --- the drill ------------------------------------------------------------------------------------

class Drill:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tree = Path(args.tree).resolve()
        WORK.mkdir(parents=True, exist_ok=True)
        WORK.chmod(0o700)
        self.logs = WORK / 'logs'
        self.logs.mkdir(exist_ok=True)
        self.inv_dir = WORK / 'inventory'
        (self.inv_dir / 'group_vars').mkdir(parents=True, exist_ok=True)
        pw_file = WORK / 'password'
        private_file(pw_file, secrets.token_urlsafe(24))
        self.probe_password = secrets.token_urlsafe(24)
        self.pgpass = WORK / 'pgpass'
        private_file(self.pgpass, f'*:5432:{PROBE_DB}:{PROBE_USER}:{self.probe_password}\n')
        os.environ['PGPASSFILE'] = str(self.pgpass)
        (self.inv_dir / 'group_vars' / 'all.yml').write_text(
            '---\n# Written by bench/drill.py: the random password of this drill (0600 file); PostgreSQL on every\n'
            '# address, so the write probe on the controller reaches whichever node is the primary.\n'
            f'catmaid_replication_password: "{{{{ lookup(\'ansible.builtin.file\', \'{pw_file}\') }}}}"\n'
            "catmaid_replication_listen_addresses: '*'\n", encoding='utf-8')
        self.extra = ['-e', json.dumps(SYNCHRONOUS)] if args.synchronous else []
        self.primary = NODES[0]
        self.alive: set[str] = set()
        self.addr: dict[str, str] = {}
        self.count = 0
        self.next_id = 1
        self.results: dict[str, Any] = {
            'started': now(), 'machine': machine(), 'load_start': loadavg(), 'commit': self.commit(),
            'settings': {'rounds': args.rounds, 'rate_per_s': args.rate, 'events': args.events, 'synchronous': args.synchronous,
                         'failover_inventory': args.failover_inventory, 'release': RELEASE, 'extra_vars': SYNCHRONOUS if args.synchronous else {}},
            'anchors': ANCHORS, 'targets': TARGETS, 'labs': [], 'rounds': [], 'errors': []}

    def commit(self) -> str:
        head = run(['git', '-C', str(self.tree), 'rev-parse', 'HEAD']).stdout.strip()
        dirty = run(['git', '-C', str(self.tree), 'status', '--porcelain', '--', 'roles', 'playbooks', 'plugins']).stdout.split('\n')
        dirty = [line[3:] for line in dirty if line.strip()]
        return head + (f' + uncommitted {", ".join(dirty)}' if dirty else '')

    def collections_path(self) -> Path:
        if self.tree == ROOT:
            return ROOT / 'build' / 'collections'
        link = self.tree / '.collections' / 'ansible_collections' / 'catmaid' / 'replication'
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(self.tree)
        return self.tree / '.collections'

    def inventory(self, primary: Optional[str] = None) -> Path:
        """The moved groups: the primary in 'primary', every other running node in 'replicas' (a killed node left out)."""
        primary = primary or self.primary
        nodes = [n for n in NODES if n in self.alive or not self.alive]
        path = self.inv_dir / f'hosts-{primary}-{len(nodes)}.ini'
        path.write_text(f'# Written by bench/drill.py: {primary} is the primary.\n[primary]\n{primary}\n\n[replicas]\n'
                        + ''.join(f'{n}\n' for n in nodes if n != primary)
                        + '\n[all:vars]\nansible_connection=community.docker.docker\nansible_python_interpreter=/usr/bin/python3\n',
                        encoding='utf-8')
        return path

    def play(self, label: str, playbook: str, extra: Optional[list[str]] = None, primary: Optional[str] = None) -> dict[str, Any]:
        self.count += 1
        out_file = self.logs / f'{time.strftime("%Y%m%dT%H%M%S")}-{self.count:02d}-{label}.log'
        argv = ['ansible-playbook', '-i', str(self.inventory(primary)), str(self.tree / 'playbooks' / playbook), *self.extra, *(extra or [])]
        env = dict(os.environ)
        env.update({'ANSIBLE_COLLECTIONS_PATH': str(self.collections_path()), 'ANSIBLE_ROLES_PATH': str(self.tree / 'roles'),
                    'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_FORCE_COLOR': '0', 'ANSIBLE_RETRY_FILES_ENABLED': 'false',
                    'ANSIBLE_DEPRECATION_WARNINGS': 'false', 'ANSIBLE_TIMEOUT': '60',
                    # Each task's start time and duration in the log (where the seconds without writes go).
                    'ANSIBLE_CALLBACKS_ENABLED': 'ansible.posix.profile_tasks'})
        env.pop('ANSIBLE_STDOUT_CALLBACK', None)
        start = time.monotonic()
        with open(out_file, 'w', encoding='utf-8') as out:
            rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False).returncode
        wall = round(time.monotonic() - start, 2)
        text = out_file.read_text(encoding='utf-8')
        recap = text[text.rfind('PLAY RECAP'):] if 'PLAY RECAP' in text else ''
        log(f'{label}: {playbook} rc {rc} in {wall} s ({out_file.name})')
        return {'label': label, 'playbook': playbook, 'argv': argv[3:], 'rc': rc, 'wall_s': wall, 'log': str(out_file.relative_to(ROOT)),
                'recap': re.findall(r'^(dr-\S+)\s+:\s+(.*)$', recap, re.M), 'failed': re.findall(r'^fatal: .*$', text, re.M)[:5]}

    def addr_node(self, host: str) -> str:
        return next((n for n, a in self.addr.items() if a == host), host)

    def conninfo(self, nodes: Optional[list[str]] = None) -> str:
        nodes = nodes or NODES
        return (f'host={",".join(self.addr[n] for n in nodes)} port={",".join(["5432"] * len(nodes))} dbname={PROBE_DB} '
                f'user={PROBE_USER} target_session_attrs=read-write connect_timeout=2 application_name=catmaid-drill-probe '
                'tcp_user_timeout=2000 keepalives_idle=2 keepalives_interval=1 keepalives_count=2')

    # --- the lab --------------------------------------------------------------------------------

    def lab(self) -> None:
        """Fresh containers, site.yml, and the probe's database, role and pg_hba line on every node."""
        log('creating dr-primary, dr-replica1, dr-replica2')
        destroy()
        create(NODES)
        self.addr = {n: address(n) for n in NODES}
        self.primary = NODES[0]
        self.alive = set(NODES)
        self.deploy('deploy', NODES)
        psql(self.primary, f"CREATE ROLE {PROBE_USER} LOGIN PASSWORD '{build_verifier(self.probe_password)}';\n"
                           f'GRANT pg_monitor TO {PROBE_USER};\nCREATE DATABASE {PROBE_DB} OWNER {PROBE_USER};\n')
        conn = connect(self.conninfo())
        with conn.cursor() as cur:
            cur.execute('CREATE TABLE probe (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())')
        conn.close()
        self.next_id = 1

    def rebuild(self) -> None:
        """A fresh container for each killed node, made a replica of the current primary by site.yml (the inventory moved)."""
        dead = [n for n in NODES if n not in self.alive]
        log(f'replacing {", ".join(dead)} with fresh containers, replicas of {self.primary}')
        run(['docker', 'rm', '-f', *dead])
        create(dead)
        self.addr.update({n: address(n) for n in dead})
        self.alive = set(NODES)
        self.deploy('rebuild', dead)

    def deploy(self, label: str, fresh: list[str]) -> None:
        result = self.play(label, 'site.yml')
        self.results['labs'].append({'started': now(), 'label': label, 'fresh': fresh, 'primary': self.primary, 'addresses': dict(self.addr),
                                     'wall_s': result['wall_s'], 'rc': result['rc'], 'log': result['log']})
        if result['rc'] != 0:
            raise RuntimeError(f'site.yml failed: {result["failed"]} (see {result["log"]})')
        net = subnet()
        for node in fresh:
            # Outside the collection's managed block, after the distribution's rules.
            hba = psql(node, 'SHOW hba_file')
            dexec(node, 'sh', '-c', f"grep -qF '{HBA_MARK}' {shlex.quote(hba)} || "
                  f"printf '%s\\n' 'host {PROBE_DB} {PROBE_USER} {net} scram-sha-256  {HBA_MARK}' >> {shlex.quote(hba)}")
            psql(node, 'SELECT pg_reload_conf()')

    # --- one event ------------------------------------------------------------------------------

    def event(self, kind: str, number: int) -> dict[str, Any]:
        old = self.primary
        if kind == 'switchover':
            target = NODES[1] if old == NODES[0] else NODES[0]
        else:
            i = NODES.index(old)
            target = next(n for n in NODES[i + 1:] + NODES[:i] if n in self.alive)
        survivors = [n for n in NODES if n in self.alive and n != target and (kind == 'switchover' or n != old)]
        log(f'{kind} {number}: {old} -> {target} (then streaming: {", ".join(survivors)})')
        first_id = self.next_id
        probe = Probe(self.conninfo(), self.args.rate, first_id, self.addr)
        probe.start()
        deadline = time.monotonic() + 60
        while len(probe.acks) < self.args.rate * self.args.warmup:
            if time.monotonic() > deadline:
                probe.stop()
                raise RuntimeError(f'the probe committed {len(probe.acks)} rows in 60 s before the {kind}: {probe.errors[-3:]}')
            time.sleep(0.1)
        watcher = Watcher(self.conninfo([target]), survivors)
        load0 = loadavg()
        t0 = time.monotonic()
        t0_wall = time.time()
        kill_s = None
        watcher.start()
        if kind == 'switchover':
            result = self.play(f'switchover-{number}', 'switchover.yml', ['-e', f'catmaid_replication_switchover={target}'])
        else:
            run(['docker', 'kill', old])
            kill_s = round(time.monotonic() - t0, 3)
            if self.args.failover_inventory == 'moved':
                # The killed node out of the inventory, the replica to promote in the primary group: with the
                # unreachable node in it, promote.yml stops at its first play (any_errors_fatal, see the report).
                self.alive.discard(old)
                result = self.play(f'failover-{number}', 'promote.yml', ['-e', f'catmaid_replication_promote={target}'], primary=target)
            else:
                result = self.play(f'failover-{number}', 'promote.yml', ['-e', f'catmaid_replication_promote={target}'])
                self.alive.discard(old)
        t_end = time.monotonic()
        if result['rc'] == 0:
            self.primary = target
        streaming = watcher.wait(max(1.0, self.args.settle_timeout - (time.monotonic() - t_end)))
        watcher.stop()
        # Let the probe show writes after the event (or give up after the settle timeout).
        deadline = time.monotonic() + self.args.settle_timeout
        while time.monotonic() < deadline and not [ack for ack in probe.acks if ack[1] > t_end + self.args.warmup]:
            time.sleep(0.2)
        probe.stop()
        t_stop = time.monotonic()
        self.next_id = probe.next_id
        acked = {ack[0] for ack in probe.acks}
        found: set[int] = set()
        rows: list[tuple[int, float]] = []
        check_error = ''
        primary_after = None
        try:
            # Whichever node accepts writes now (also after a playbook that failed past the promotion).
            conn = connect(self.conninfo([n for n in NODES if n in self.alive]))
            primary_after = self.addr_node(conn.info.host)
            with conn.cursor() as cur:
                cur.execute('SELECT id, extract(epoch FROM at)::float8 FROM probe WHERE id >= %s AND id < %s ORDER BY id',
                            (first_id, probe.next_id))
                rows = cur.fetchall()
                found = {r[0] for r in rows}
            conn.close()
        except Exception as exc:  # pylint: disable=broad-exception-caught
            check_error = str(exc).strip()[:300]
        lost = sorted(acked - found) if not check_error else []
        # The servers' side: the largest interval between the insert times (clock_timestamp() on the server that took
        # the row; the containers share the host's clock) of consecutive rows that ended after time 0 ...
        at_gaps = [(b[1] - a[1], a[1], b[1]) for a, b in zip(rows, rows[1:]) if b[1] >= t0_wall]
        server_gap = max(at_gaps) if at_gaps else None
        # ... and the servers' logs: the old primary's fast shutdown, the new one's promotion until it accepts writes.
        logs: dict[str, float] = {}
        for node, keys in ((old, ('shutdown_request', 'shut_down')), (target, ('promote_request', 'ready'))):
            if node in self.alive or node == target:
                found_log = server_log(node, t0_wall)
                logs.update({k: found_log[k] for k in keys if k in found_log})
        server = {k: round(v - t0_wall, 3) for k, v in logs.items()}
        if kind == 'switchover' and {'shutdown_request', 'shut_down', 'promote_request', 'ready'} <= set(logs):
            server['shutdown_s'] = round(logs['shut_down'] - logs['shutdown_request'], 3)
            server['stopped_until_promote_request_s'] = round(logs['promote_request'] - logs['shut_down'], 3)
            server['promotion_s'] = round(logs['ready'] - logs['promote_request'], 3)
            server['shutdown_request_to_ready_s'] = round(logs['ready'] - logs['shutdown_request'], 3)
        duration = probe.acks[-1][1] - probe.acks[0][1] if len(probe.acks) > 1 else 0
        rec = {
            'event': kind, 'round': number, 'from': old, 'to': target, 'primary_after': primary_after, 'survivors_streaming': survivors, 'started': now(),
            'playbook': result, 'playbook_wall_s': result['wall_s'], 'ok': result['rc'] == 0 and streaming and not check_error,
            **outage(probe.acks, t0, t_end, t_stop),
            'streaming_again_s': round(watcher.done_at - t0, 3) if watcher.done_at else None, 'watcher_last': watcher.last,
            'kill_s': kill_s, 'inventory': self.args.failover_inventory if kind == 'failover' else 'moved',
            'server_gap_s': round(server_gap[0], 3) if server_gap else None,
            'server_gap_from_s': round(server_gap[1] - t0_wall, 3) if server_gap else None, 'server_log': server,
            'acked': len(acked), 'lost': None if check_error else len(lost), 'lost_ids': lost[:50], 'check_error': check_error,
            'committed_without_ack': len(found & set(probe.failed)), 'failed_attempts': len(probe.failed),
            'probe_rate_per_s': round((len(probe.acks) - 1) / duration, 1) if duration else None,
            'probe_connects': [(round(t - t0, 3), node) for t, node in probe.connects],
            'probe_errors': len(probe.errors), 'probe_first_errors': [(round(t - t0, 3), m) for t, m in probe.errors[:3]],
            'load_start': load0, 'load_end': loadavg(),
        }
        log(f'{kind} {number}: no writes {rec["no_write_s"]} s, lost {rec["lost"]} of {rec["acked"]}, streaming again after '
            f'{rec["streaming_again_s"]} s, playbook {rec["playbook_wall_s"]} s')
        return rec

    def run(self) -> None:
        log(f'machine: {self.results["machine"]}, collection {self.results["commit"]}')
        try:
            self.lab()
            if 'switchover' in self.args.events:
                for n in range(1, self.args.rounds + 1):
                    self.record(self.event('switchover', n))
            if 'failover' in self.args.events:
                for n in range(1, self.args.rounds + 1):
                    if len(self.alive) < len(NODES):
                        self.rebuild()
                    self.record(self.event('failover', n))
        except Exception as exc:
            self.results['errors'].append(str(exc)[:3000])
            raise
        finally:
            self.results['finished'] = now()
            self.results['load_end'] = loadavg()
            self.save()
            if not self.args.keep:
                destroy()
                remove_network()

    def record(self, rec: dict[str, Any]) -> None:
        self.results['rounds'].append(rec)
        self.save()
        if not rec['ok'] and not self.args.keep_going:
            raise RuntimeError(f'{rec["event"]} {rec["round"]} did not complete: playbook rc {rec["playbook"]["rc"]} '
                               f'{rec["playbook"]["failed"]}, streaming again: {rec["streaming_again_s"]} ({rec["watcher_last"]}), '
                               f'check: {rec["check_error"] or "ok"} (see {rec["playbook"]["log"]})')

    def save(self) -> None:
        res = self.results
        res['summary'] = {}
        for kind in EVENTS:
            rows = [r for r in res['rounds'] if r['event'] == kind]
            if rows:
                done = [r for r in rows if r['ok']]
                res['summary'][kind] = {k: summary([r[k] for r in done])
                                        for k in ('no_write_s', 'server_gap_s', 'lost', 'streaming_again_s', 'playbook_wall_s')}
                res['summary'][kind]['rounds_ok'] = sum(1 for r in rows if r['ok'])
                res['summary'][kind]['rounds'] = len(rows)
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        if res['rounds']:
            (out / 'drill.json').write_text(json.dumps(res, indent=1) + '\n', encoding='utf-8')
            write_report(out)
        else:
            (WORK / 'drill.json').write_text(json.dumps(res, indent=1) + '\n', encoding='utf-8')


# --- the report -----------------------------------------------------------------------------------

def fmt(value: Any, unit: str = '') -> str:
    return '-' if value is None else f'{value}{unit}'


def nowrite(r: dict[str, Any]) -> str:
    if r['no_write_s'] is None and r.get('no_write_at_least_s') is not None:
        return f'>= {r["no_write_at_least_s"]}, not resumed'
    return fmt(r['no_write_s'])


def serverlog(r: dict[str, Any]) -> str:
    v = r.get('server_log') or {}
    if 'shutdown_request_to_ready_s' not in v:
        return '-' if 'ready' not in v else f'ready at {v["ready"]}'
    return f'{v["shutdown_s"]} + {v["stopped_until_promote_request_s"]} + {v["promotion_s"]} = {v["shutdown_request_to_ready_s"]}'


def write_report(out: Path) -> None:
    res = json.loads((out / 'drill.json').read_text(encoding='utf-8'))
    m = res['machine']
    sync = 'synchronous (`ANY 1`)' if res['settings']['synchronous'] else 'asynchronous (the default)'
    lines = [
        '# Switchover and failover drill',
        '',
        'Written by `bench/drill.py` (`make drill`); raw data in [drill.json](drill.json). Figures measured on the',
        'machine below, published, not enforced. Min / median / max over the rounds that completed; every round below.',
        '',
        f'- **Machine**: {m["nproc"]} CPUs ({m["cpu"]}), kernel {m["kernel"]}, Docker {m["docker"]}; containers from `{m["image"]}`.',
        f'- **Date**: {res["started"]} to {res.get("finished", "?")}; load average (1, 5, 15 min) {res["load_start"]} at the start, '
        f'{res.get("load_end", "?")} at the end.',
        f'- **Collection**: `{res["commit"]}`.',
    ] + [f'- **Run {i}** ({", ".join(run["events"])}): {run["started"]} to {run["finished"]}, load {run["load_start"]} → {run["load_end"]}.'
         for i, run in enumerate(res.get('runs', []), 1)] + [
        f'- **Replication**: {sync}; write probe at {res["settings"]["rate_per_s"]} commits/s; rounds: '
        + ', '.join(f'{k} {v["rounds"]}' for k, v in res['summary'].items()) + '.',
        '',
        '| Event | Seconds without accepted writes (min / median / max) | The same, on the servers | Acknowledged commits lost | '
        'Seconds until every surviving node streams | Playbook wall time, s | Target | Anchors |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for kind in EVENTS:
        s = res['summary'].get(kind)
        if not s:
            continue

        def mmm(key: str, s: dict[str, Any] = s) -> str:
            v = s.get(key, {'n': 0})
            return '-' if v['n'] == 0 else f'{v["min"]} / {v["median"]} / {v["max"]}'
        rounds = f'{s["rounds_ok"]}/{s.get("rounds", s["no_write_s"]["n"])}'
        lines.append(f'| {kind} ({rounds} rounds ok) | {mmm("no_write_s")} | {mmm("server_gap_s")} | {mmm("lost")} | '
                     f'{mmm("streaming_again_s")} | {mmm("playbook_wall_s")} | {res["targets"][kind]} | {res["anchors"][kind]} |')
    lines += [
        '',
        'Every round:',
        '',
        '| Event | Round | From → to | Without writes, s (gap from → to, after the start) | On the servers, s '
        '| Server logs: shutdown, stopped until pg_promote, promotion, s | Lost / acknowledged '
        '| Streaming again, s | Playbook, s | Probe commits/s | Load (1 min) |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in res['rounds']:
        lost_ids = f' (ids {", ".join(map(str, r["lost_ids"]))})' if r['lost'] else ''
        rc = '' if r['playbook']['rc'] == 0 else f' (rc {r["playbook"]["rc"]})'
        lines.append(f'| {r["event"]} | {r["round"]} | {r["from"]} → {r["to"]} | {nowrite(r)} ({fmt(r.get("gap_from_s"))} → '
                     f'{fmt(r.get("gap_to_s"))}) | {fmt(r.get("server_gap_s"))} | {serverlog(r)} | {fmt(r["lost"])} / {r["acked"]}{lost_ids} '
                     f'| {fmt(r["streaming_again_s"])} | {r["playbook_wall_s"]}{rc} '
                     f'| {fmt(r["probe_rate_per_s"])} | {r["load_start"][0]} → {r["load_end"][0]} |')
    if res.get('notes'):
        lines += ['', '**Notes**:', ''] + [f'- {note}' for note in res['notes']]
    if res.get('errors'):
        lines += ['', '**Errors**: ' + '; '.join(e.replace('\n', ' ')[:500] for e in res['errors'])]
    lines += [
        '',
        '**What is measured.** Time 0 of an event is the moment the drill starts `ansible-playbook .../switchover.yml` (a) or',
        'runs `docker kill` on the primary\'s container (b; `promote.yml` is started right after the kill returns, so an',
        'operator\'s or a monitor\'s time to notice is not included). The write probe (psycopg2 on the controller, libpq',
        'multi-host conninfo over the three containers, `target_session_attrs=read-write connect_timeout=2`,',
        '`tcp_user_timeout=2000`) commits one numbered row per transaction and notes the monotonic time each commit was',
        'acknowledged; on any error it reconnects at once, then every 50 ms while connecting fails (each attempt tries the',
        'three hosts in turn), and goes on with the next id: its reconnection adds at most ~50 ms plus one connection to a',
        'gap, and a commit can only be acknowledged after the server took it, so it never shows less than the truth.',
        '',
        '- *Seconds without accepted writes*: the largest interval between two consecutive acknowledged commits, among the',
        '  intervals that end at or after time 0 (until the probe stops, a few seconds after the playbook), or, if larger,',
        '  the interval from time 0 to the first acknowledged commit after it. Writes that did not resume before the probe',
        '  stopped are shown as ">= seconds, not resumed". The playbook\'s checks before the primary stops do not stop',
        '  writes and are not in this figure (they are in the playbook\'s wall time).',
        '- *The same, on the servers*: the largest interval between the insert times (`clock_timestamp()` of the server that',
        '  took the row; all containers share the host\'s clock) of consecutive probe rows on the new primary, among those',
        '  that end after time 0: the same gap without the return trip to the probe.',
        '- *Server logs*: from the PostgreSQL logs (millisecond time stamps), the old primary\'s `received fast shutdown',
        '  request` to `database system is shut down`, from there to the new primary\'s `received promote request`, and',
        '  from there to its `database system is ready to accept connections`; the sum is the time the servers accepted',
        '  no writes (the rest of the figure is the probe noticing). Each playbook log has every task\'s time',
        '  (callback `ansible.posix.profile_tasks`).',
        '- *Acknowledged commits lost*: ids the probe saw acknowledged in the round that are not on the new primary',
        '  afterwards (`SELECT id FROM probe` there).',
        '- *Seconds until every surviving node streams*: from time 0 until the new primary accepts writes and its',
        '  `pg_stat_replication` shows every other running node `streaming` (polled every 0.2 s; for (a) the old primary',
        '  and the other replica, for (b) the replica left besides the promoted one: the killed node is not rejoined).',
        '- *Playbook wall time*: `switchover.yml` or `promote.yml` from start to end (status table included).',
        '',
        'Switchover rounds go back and forth between dr-primary and dr-replica1 on one lab, the inventory rewritten with',
        'the moved groups after each. The first failover kills the primary the switchovers left and promotes the next',
        'node; before each further failover the killed node is replaced by a fresh container that `site.yml` (inventory',
        'moved) clones as a replica of the new primary.',
        '',
        f'Failover inventory: `{res["settings"].get("failover_inventory", "stale")}`. With `moved` (the default), `promote.yml` runs',
        'right after the kill with the killed node left out of the inventory and the replica to promote in the primary',
        'group; with `stale` (the inventory as it was, the killed node still the primary) `promote.yml` stops at its first',
        'play: the killed host is unreachable in `tasks/discover.yml` (`ignore_unreachable: true`), but the play has',
        '`any_errors_fatal: true`, and ansible-core ends the play for every host on an unreachable result even when it is',
        'ignored.',
    ]
    (out / 'drill.md').write_text('\n'.join(lines) + '\n', encoding='utf-8')


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='catmaid.replication switchover and failover drill (issue 16 item 2)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds of each event (switchovers go back and forth)')
    parser.add_argument('--events', default=','.join(EVENTS), help=f'comma-separated subset of {",".join(EVENTS)}')
    parser.add_argument('--rate', type=float, default=40, help='probe commits per second (at least 20)')
    parser.add_argument('--warmup', type=float, default=3, help='seconds of probe commits before an event and after its playbook')
    parser.add_argument('--settle-timeout', type=float, default=120, help='seconds to wait after the playbook for streaming and writes')
    parser.add_argument('--synchronous', action='store_true',
                        help='deploy (and run every playbook) with catmaid_replication_synchronous {method: ANY, count: 1}')
    parser.add_argument('--failover-inventory', choices=('moved', 'stale'), default='moved',
                        help='promote.yml after the kill with the killed node out of the inventory and the replica to promote in '
                        'the primary group (moved), or with the inventory as it was (stale)')
    parser.add_argument('--tree', default=str(ROOT), help='the collection checkout to run (default: this one)')
    parser.add_argument('--out', default=str(BENCH / 'results'), help='directory of drill.json and drill.md')
    parser.add_argument('--keep', action='store_true', help='keep the dr-* containers and the network at the end')
    parser.add_argument('--keep-going', action='store_true', help='go on after a round that did not complete')
    parser.add_argument('--report-only', action='store_true', help='only rewrite drill.md from drill.json')
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(Path(args.out))
        return 0
    args.events = [e.strip() for e in args.events.split(',') if e.strip()]
    if set(args.events) - set(EVENTS):
        parser.error(f'unknown event(s): {", ".join(sorted(set(args.events) - set(EVENTS)))}')
    if args.rate < 20:
        parser.error('--rate: at least 20 commits per second')
    defaults = Path(args.tree) / 'roles' / 'catmaid_replication' / 'defaults' / 'main.yml'
    if args.synchronous and 'catmaid_replication_synchronous' not in defaults.read_text(encoding='utf-8'):
        parser.error(f'--synchronous: {args.tree} has no catmaid_replication_synchronous (issue 16 item 3) yet')
    if 'switchover' in args.events and not (Path(args.tree) / 'playbooks' / 'switchover.yml').exists():
        parser.error(f'{args.tree} has no playbooks/switchover.yml')
    if run(['docker', 'image', 'inspect', IMAGE], check=False).returncode != 0:
        parser.error(f'image {IMAGE} missing: run `make images` (scripts/build-images.sh {RELEASE})')
    # A SIGTERM (also a background job's stop, which ignores SIGINT) still removes the containers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    Drill(args).run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
