# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the `faults` scenario's verifier: the deployed lab, driven through docker.

Molecule's testinfra verifier runs these tests after converge. They act on the
containers with `docker exec` / `docker network` (the faults), run playbooks/site.yml with
ansible-playbook against Molecule's inventory (the bad input), and read PostgreSQL's own views.
Every case writes known rows on the primary first and compares count and checksum
(md5 of string_agg in key order) on every node at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / 'tests' / 'functional'))
from casereport import Report  # noqa: E402  pylint: disable=wrong-import-position

PRIMARY = 'fl-primary'
REPLICAS = ['fl-replica1', 'fl-replica2']
OUTSIDER = 'fl-outsider'
NETWORK = 'catmaid-faults'
NODES = [PRIMARY] + REPLICAS
SITE = REPO / 'playbooks' / 'site.yml'
SCENARIO = Path(__file__).resolve().parents[1]
PASSWORD_FILE = REPO / 'build' / 'lab' / 'faults_password'
LOGS = REPO / 'build' / 'reports' / 'faults-logs'

REPORT = Report('faults', scenario='faults', command='molecule test -s faults (a step of make test)',
                release=os.environ.get('CATMAID_LAB_RELEASE', 'bookworm'))


def password() -> str:
    return PASSWORD_FILE.read_text().rstrip('\n')


def run(argv: list[str], check: bool = True, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f'{argv[:4]}... exited {res.returncode}: {res.stderr.strip()[-1500:]}')
    return res


def dexec(container: str, *argv: str, user: str | None = None, check: bool = True, stdin: str | None = None,
          timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = ['docker', 'exec', '-i'] + (['-u', user] if user else []) + [container, *argv]
    return run(cmd, check=check, timeout=timeout, input=stdin)


def psql(container: str, sql: str, db: str = 'postgres', check: bool = True, port: int = 5432) -> str:
    res = dexec(container, 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-p', str(port), '-d', db, '-c', sql,
                user='postgres', check=check)
    return res.stdout.strip() if res.returncode == 0 else ''


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 90, interval: float = 1.0) -> Any:
    """Poll until probe() returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except AssertionError as exc:
            last = str(exc)[-300:]
        if last and not isinstance(last, str) or (isinstance(last, str) and last.startswith('ok')):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f'{what}: not reached within {timeout:.0f} s (last: {last!r})')
        time.sleep(interval)


# --- rows and checksums --------------------------------------------------------------------------
ROWS_SQL = ("SELECT count(*) || ' ' || coalesce(md5(string_agg(n || ':' || payload, ',' ORDER BY n)), '-') "
            "FROM fault_rows WHERE case_name = '{case}'")


def write_rows(case: str, count: int, start: int = 1) -> None:
    """Known rows on the primary: payload md5(case:n), n from start to start+count-1 (start=1 begins afresh)."""
    if start == 1:
        psql(PRIMARY, f"DELETE FROM fault_rows WHERE case_name = '{case}'")
    psql(PRIMARY, f"INSERT INTO fault_rows (case_name, n, payload) SELECT '{case}', g, md5('{case}:' || g) "
                  f"FROM generate_series({start}, {start + count - 1}) g")


def fingerprint(node: str, case: str) -> str:
    return psql(node, ROWS_SQL.format(case=case), check=False)


def expected_fingerprint(case: str, count: int) -> str:
    """What every node must show, computed independently of the database."""
    import hashlib
    import subprocess as _  # noqa: F401  (keeps this helper self-contained)
    agg = ','.join(f'{n}:{hashlib.md5(f"{case}:{n}".encode()).hexdigest()}' for n in range(1, count + 1))
    return f'{count} {hashlib.md5(agg.encode()).hexdigest()}'


def check_rows_everywhere(case: str, count: int, c: Any = None, timeout: float = 90) -> None:
    """count and checksum of the case's rows on every node equal the expected ones."""
    want = expected_fingerprint(case, count)
    for node in NODES:
        wait_for(f'{count} rows of {case} with checksum {want.split()[1][:12]} on {node}',
                 lambda node=node: 'ok' if fingerprint(node, case) == want else fingerprint(node, case), timeout=timeout)
    if c is not None:
        c.note(f'{case}: {count} rows, checksum {want.split()[1][:12]}... equal on {", ".join(NODES)}')


# --- replication state ---------------------------------------------------------------------------
def streaming() -> dict[str, str]:
    out = psql(PRIMARY, "SELECT application_name || '=' || state FROM pg_stat_replication ORDER BY 1", check=False)
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def wait_streaming(timeout: float = 120, c: Any = None) -> float:
    t0 = time.monotonic()
    wait_for('both replicas streaming in pg_stat_replication',
             lambda: 'ok' if all(streaming().get(r) == 'streaming' for r in REPLICAS) else str(streaming()),
             timeout=timeout)
    for r in REPLICAS:
        wait_for(f'WAL receiver of {r} streaming',
                 lambda r=r: 'ok' if psql(r, 'SELECT status FROM pg_stat_wal_receiver', check=False) == 'streaming' else 'no',
                 timeout=timeout)
    took = time.monotonic() - t0
    if c is not None:
        c.note(f'both replicas streaming again after {took:.0f} s')
    return took


def receiver_pid(node: str) -> str:
    return psql(node, 'SELECT pid FROM pg_stat_wal_receiver', check=False)


def cluster(node: str) -> dict[str, str]:
    """major, port, data_dir, service of the node's main cluster (pg_lsclusters)."""
    line = dexec(node, 'pg_lsclusters', '--no-header').stdout.split('\n')[0].split()
    return {'major': line[0], 'name': line[1], 'port': line[2], 'status': line[3], 'data_dir': line[5],
            'service': f'postgresql@{line[0]}-{line[1]}'}


def postmaster_start(node: str) -> str:
    return psql(node, 'SELECT pg_postmaster_start_time()', check=False)


def tree_digest(node: str, path: str) -> str:
    """Digest of every file (name and content) below path: proves a directory unchanged."""
    return dexec(node, 'bash', '-c', f'cd {path} && find . -type f -print0 | sort -z | xargs -0 md5sum | md5sum '
                                     f'&& find . -type f | wc -l').stdout.replace('\n', ' ').strip()


def config_digest(node: str) -> str:
    """Configuration of a node that a refused run must leave alone."""
    return dexec(node, 'bash', '-c', 'cat /etc/postgresql/*/main/conf.d/* /etc/postgresql/*/main/pg_hba.conf '
                                     '/var/lib/postgresql/*/replication.pgpass /etc/nginx/stream.d/* 2>/dev/null | md5sum'
                 ).stdout.split()[0]


# --- ansible -------------------------------------------------------------------------------------
def ansible_playbook(playbook: Path, *args: str, extra_vars: dict | None = None, extra_inventory: dict | None = None,
                     timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook against Molecule's inventory; extra vars through a 0600 file, never argv."""
    inventory = os.environ.get('MOLECULE_INVENTORY_FILE')
    assert inventory, 'MOLECULE_INVENTORY_FILE is not set: run through `molecule verify -s faults`'
    argv = ['ansible-playbook', '-i', inventory]
    with tempfile.TemporaryDirectory(prefix='faults-') as tmp:
        if extra_inventory is not None:
            inv = Path(tmp) / 'extra_inventory.yml'
            inv.write_text(json.dumps(extra_inventory))
            argv += ['-i', str(inv)]
        if extra_vars is not None:
            ev = Path(tmp) / 'extra_vars.json'
            ev.touch(mode=0o600)
            ev.write_text(json.dumps(extra_vars))
            argv += ['-e', f'@{ev}']
        full_env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_CALLBACK_RESULT_FORMAT='yaml',
                        ANSIBLE_DISPLAY_FAILED_STDERR='0',   # Molecule's environment sends failures to stderr
                        ANSIBLE_COLLECTIONS_PATH=str(REPO / 'build' / 'collections'), ANSIBLE_ROLES_PATH=str(REPO / 'roles'),
                        **(env or {}))
        res = run(argv + [str(playbook), *args], check=False, timeout=timeout, env=full_env)
    # Every run's output is kept for reading after a failure (build/ is not committed).
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f'{time.strftime("%H%M%S")}-{playbook.stem}-rc{res.returncode}.log'
    log.write_text(' '.join(argv[3:] + [playbook.name, *args]) + '\n' + res.stdout + res.stderr)
    return res


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    out: dict[str, dict[str, int]] = {}
    for line in output.split('PLAY RECAP')[-1].splitlines():
        if ':' in line and 'ok=' in line:
            host, rest = line.split(':', 1)
            out[host.strip()] = {k: int(v) for k, v in (p.split('=') for p in rest.split())}
    return out


def failure_message(output: str) -> str:
    """The msg of the first failed task (YAML result format), on one line, for the report."""
    lines = output.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(('fatal: [', 'failed: ['))), None)
    if start is None:
        return ''
    for i in range(start + 1, min(start + 300, len(lines))):
        stripped = lines[i].lstrip(' ')
        if not stripped.startswith('msg:'):
            continue
        indent = len(lines[i]) - len(stripped)
        value = stripped[len('msg:'):].strip()
        text = [] if value in ('|-', '|', '>-', '>', '') else [value]
        for nxt in lines[i + 1:]:
            if not nxt.strip() or len(nxt) - len(nxt.lstrip(' ')) <= indent:
                break
            text.append(nxt.strip())
        return ' '.join(text).strip().strip("'\"").replace("''", "'")[:600]
    return lines[start][:300]


class CmdlineSampler:
    """Reads /proc/*/cmdline on a node every 50 ms while a clone runs; reports matches of the password."""

    SCRIPT = r'''
import json, os, sys, time
secret = open(sys.argv[1], 'rb').read()
stop = sys.argv[2]
samples = scanned = saw = 0
matches = set()
while not os.path.exists(stop):
    samples += 1
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            cmd = open('/proc/%s/cmdline' % pid, 'rb').read()
        except OSError:
            continue
        scanned += 1
        if b'pg_basebackup' in cmd:
            saw += 1
        if secret in cmd or secret in cmd.replace(b'\0', b' '):
            matches.add(open('/proc/%s/comm' % pid).read().strip())
    time.sleep(0.05)
print(json.dumps({'samples': samples, 'scanned': scanned, 'saw_pg_basebackup': saw, 'matches': sorted(matches)}))
'''

    def __init__(self, nodes: list[str], secret: str) -> None:
        self.nodes = nodes
        self.procs: dict[str, subprocess.Popen] = {}
        for node in nodes:
            dexec(node, 'bash', '-c', 'umask 077; rm -f /root/.faults-stop; cat > /root/.faults-pw', stdin=secret)
            dexec(node, 'bash', '-c', 'cat > /root/.faults-sampler.py', stdin=self.SCRIPT)
            self.procs[node] = subprocess.Popen(
                ['docker', 'exec', node, 'python3', '/root/.faults-sampler.py', '/root/.faults-pw', '/root/.faults-stop'],
                stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict[str, dict]:
        out = {}
        for node, proc in self.procs.items():
            dexec(node, 'touch', '/root/.faults-stop')
            out[node] = json.loads(proc.communicate(timeout=60)[0])
            dexec(node, 'rm', '-f', '/root/.faults-pw', '/root/.faults-stop', '/root/.faults-sampler.py')
        return out


@pytest.fixture(scope='session')
def lab() -> dict[str, Any]:
    """The deployed lab is healthy and holds the fault_rows table."""
    wait_streaming(120)
    psql(PRIMARY, 'CREATE TABLE IF NOT EXISTS fault_rows (case_name text, n int, payload text, PRIMARY KEY (case_name, n))')
    return {'primary': cluster(PRIMARY), 'replicas': {r: cluster(r) for r in REPLICAS}}
