# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module integration tests: real modules against real, throw-away PostgreSQL clusters.

Every cluster lives under a temporary directory, listens on 127.0.0.1 and a Unix socket in
that directory, and is stopped and removed at the end of the test. Modules run through
ansible-playbook exactly as users run them: as the postgres OS user (become), on the host's
own Python (/usr/bin/python3 with Debian's python3-psycopg2).
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from casereport import Report

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / 'build' / 'collections'
# Tests compare with the collection's own pure helpers (for example _scram against libpq).
if str(COLLECTIONS) not in sys.path:
    sys.path.append(str(COLLECTIONS))
PG_USER = 'postgres'
MANAGED_PYTHON = os.environ.get('CATMAID_TEST_PYTHON', '/usr/bin/python3')
# Fault, bad-input and security cases of the module tests (issue 14): build/reports/modules.json.
MODULES_REPORT = Report('modules', command='pytest -q tests/functional/test_pg_basebackup.py '
                        'test_standby_signal.py test_pg_replication_info.py test_pg_replication_role.py')
_ports = itertools.count(int(os.environ.get('CATMAID_TEST_BASE_PORT', '25432')))


def pg_bindir() -> Path:
    """Newest PostgreSQL server binaries installed on the host."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail('PostgreSQL server binaries are missing: run scripts/ensure-host.sh pg')
    return Path(found[-1]).parent


def as_postgres(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command as the postgres OS user."""
    return subprocess.run(['runuser', '-u', PG_USER, '--'] + argv, check=check,
                          capture_output=True, text=True, **kw)


def free_port() -> int:
    while True:
        port = next(_ports)
        with socket.socket() as s:
            if s.connect_ex(('127.0.0.1', port)) != 0:
                return port


class Cluster:
    """A throw-away PostgreSQL cluster owned by the postgres OS user."""

    def __init__(self, base: Path, name: str, bindir: Path):
        self.bindir = bindir
        self.root = base / name
        self.data_dir = self.root / 'data'
        self.sock_dir = self.root / 'sock'
        self.log = self.root / 'server.log'
        self.port = free_port()
        self.major = int(bindir.parts[-2])

    # -- lifecycle -------------------------------------------------------------------
    def bin(self, name: str) -> str:
        return str(self.bindir / name)

    def prepare_dirs(self) -> None:
        pw = pwd.getpwnam(PG_USER)
        for d in (self.root, self.sock_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            d.chmod(0o700)

    def init(self, **settings: Any) -> 'Cluster':
        """initdb, SSL key pair, scram-sha-256, replication allowed over SSL from loopback."""
        self.prepare_dirs()
        as_postgres([self.bin('initdb'), '-D', str(self.data_dir), '-U', PG_USER,
                     '--auth-local=peer', '--auth-host=scram-sha-256', '-E', 'UTF8',
                     '--locale=C.UTF-8'])
        as_postgres(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                     '-subj', '/CN=localhost', '-keyout', str(self.data_dir / 'server.key'),
                     '-out', str(self.data_dir / 'server.crt')])
        (self.data_dir / 'server.key').chmod(0o600)
        self.write_conf(**settings)
        hba = ('local all all peer\n'
               'hostssl replication all 127.0.0.1/32 scram-sha-256\n'
               'hostssl all all 127.0.0.1/32 scram-sha-256\n')
        (self.data_dir / 'pg_hba.conf').write_text(hba)
        (self.data_dir / 'conf.d').mkdir(exist_ok=True)
        as_postgres(['chown', '-R', f'{PG_USER}:', str(self.data_dir)], check=False)
        shutil.chown(self.data_dir / 'conf.d', PG_USER, PG_USER)
        shutil.chown(self.data_dir / 'pg_hba.conf', PG_USER, PG_USER)
        return self

    def base_settings(self) -> dict[str, Any]:
        return dict(listen_addresses='127.0.0.1', port=self.port,
                    unix_socket_directories=str(self.sock_dir), ssl='on',
                    ssl_cert_file='server.crt', ssl_key_file='server.key',
                    password_encryption='scram-sha-256', wal_level='replica',
                    max_wal_senders=10, max_replication_slots=10, hot_standby='on',
                    wal_keep_size='64MB' if self.major >= 13 else None,
                    wal_keep_segments=4 if self.major < 13 else None,
                    fsync='off', logging_collector='off')

    def write_conf(self, **settings: Any) -> None:
        """Write our settings into an include file read after postgresql.conf."""
        conf = self.data_dir / 'postgresql.conf'
        text = conf.read_text()
        marker = "include_if_exists = 'test-settings.conf'\ninclude_dir = 'conf.d'\n"
        if marker not in text:
            conf.write_text(text + '\n' + marker)
        values = self.base_settings()
        values.update(settings)
        lines = []
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, int):
                lines.append(f'{key} = {value}')
            else:
                lines.append(f"{key} = '{value}'")
        path = self.data_dir / 'test-settings.conf'
        path.write_text('\n'.join(lines) + '\n')
        shutil.chown(path, PG_USER, PG_USER)

    def start(self) -> 'Cluster':
        as_postgres([self.bin('pg_ctl'), '-D', str(self.data_dir), '-l', str(self.log), '-w',
                     '-t', '60', 'start'])
        return self

    def stop(self, mode: str = 'fast') -> None:
        if self.is_running():
            as_postgres([self.bin('pg_ctl'), '-D', str(self.data_dir), '-m', mode, '-w',
                         'stop'], check=False)

    def is_running(self) -> bool:
        if not self.data_dir.exists():
            return False
        res = as_postgres([self.bin('pg_ctl'), '-D', str(self.data_dir), 'status'], check=False)
        return res.returncode == 0

    # -- SQL ------------------------------------------------------------------------
    def psql(self, sql: str, db: str = 'postgres') -> str:
        """Run SQL as the postgres superuser over the socket; return unaligned output."""
        res = as_postgres([self.bin('psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                           '-h', str(self.sock_dir), '-p', str(self.port), '-d', db, '-c', sql],
                          check=False)
        if res.returncode != 0:
            raise RuntimeError(f'psql failed: {res.stderr.strip()}')
        return res.stdout.strip()

    def connection_args(self) -> dict[str, Any]:
        """Module options that reach this cluster over its socket as postgres."""
        return dict(login_unix_socket=str(self.sock_dir), login_port=self.port)

    def system_identifier(self) -> str:
        out = as_postgres([self.bin('pg_controldata'), str(self.data_dir)]).stdout
        for line in out.splitlines():
            if line.startswith('Database system identifier:'):
                return line.split(':', 1)[1].strip()
        raise RuntimeError('no system identifier in pg_controldata output')

    def wait_for(self, sql: str, expected: str, timeout: float = 30) -> str:
        """Poll a query until it returns the expected text."""
        import time
        deadline = time.monotonic() + timeout
        last = ''
        while time.monotonic() < deadline:
            try:
                last = self.psql(sql)
            except RuntimeError as exc:
                last = str(exc)
            if last == expected:
                return last
            time.sleep(0.2)
        raise AssertionError(f'{sql!r} returned {last!r}, expected {expected!r} within {timeout}s')


def create_standby(clusters, primary: Cluster, name: str = 'standby', user: str = 'replicator',
                   password: str = 'repl-secret', slot: str | None = None,
                   application_name: str | None = None, start: bool = True) -> Cluster:
    """A streaming standby of ``primary``: pg_basebackup -R (over SSL as the replication role)
    into a new directory, then started on a new port. Tests use it through the
    ``make_standby`` fixture (importlib mode: test files cannot import conftest).

    ``slot`` creates that physical slot on the primary (pg_basebackup -C -S) and makes the
    standby use it; ``application_name`` (default: ``name``) is what pg_stat_replication
    shows. The password reaches pg_basebackup through its environment, never argv. The
    ``clusters`` fixture stops the standby at the end of the test.
    """
    standby = Cluster(clusters.workdir, name, clusters.bindir)
    standby.prepare_dirs()
    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE='require')
    conninfo = (f'host=127.0.0.1 port={primary.port} user={user} '
                f'application_name={application_name or name}')
    argv = [standby.bin('pg_basebackup'), '-d', conninfo, '-D', str(standby.data_dir),
            '-R', '-X', 'stream', '-c', 'fast']
    if slot:
        argv += ['-C', '-S', slot]
    res = as_postgres(argv, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f'pg_basebackup failed: {res.stderr.strip()}')
    standby.write_conf()
    if start:
        standby.start()
        standby.wait_for('SELECT pg_is_in_recovery()', 't')
    return standby


@pytest.fixture
def workdir():
    """A temporary directory the postgres OS user can use."""
    path = Path(tempfile.mkdtemp(prefix='catmaid-repl-', dir='/tmp'))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def clusters(workdir):
    """Factory for throw-away clusters; all of them are stopped at the end of the test."""
    made: list[Cluster] = []
    bindir = pg_bindir()

    def make(name: str = 'primary', start: bool = True, **settings: Any) -> Cluster:
        cluster = Cluster(workdir, name, bindir)
        cluster.init(**settings)
        if start:
            cluster.start()
        made.append(cluster)
        return cluster

    make.bindir = bindir  # type: ignore[attr-defined]
    make.workdir = workdir  # type: ignore[attr-defined]
    yield make
    for cluster in made:
        cluster.stop('immediate')
    # Standbys made by the tests themselves (not through make) may still run.
    for pidfile in workdir.glob('**/postmaster.pid'):
        as_postgres([str(bindir / 'pg_ctl'), '-D', str(pidfile.parent), '-m', 'immediate',
                     'stop'], check=False)


@pytest.fixture
def postgres_pgpass():
    """Lines for the postgres OS user's ~/.pgpass during one test: ``postgres_pgpass(line)`` appends one
    (the file 0600, owned by postgres, as libpq requires). At the end of the test the file is put back
    byte for byte as it was, or removed when there was none, whether the test passed or not."""
    entry = pwd.getpwnam(PG_USER)
    path = Path(entry.pw_dir) / '.pgpass'
    saved = path.read_bytes() if path.exists() else None

    def add(line: str) -> Path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, 'a') as handle:
            handle.write(line.rstrip('\n') + '\n')
        os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    yield add
    if saved is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(saved)


@pytest.fixture
def make_standby(clusters):
    """Factory for streaming standbys: make_standby(primary, name='replica1', slot='replica1')."""
    def make(primary: Cluster, name: str = 'standby', **kw: Any) -> Cluster:
        return create_standby(clusters, primary, name, **kw)
    return make


@pytest.fixture
def primary(clusters) -> Cluster:
    """A running primary with a replication role 'replicator' (password 'repl-secret')."""
    cluster = clusters('primary')
    cluster.psql("CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD 'repl-secret'")
    return cluster


class ModuleRunner:
    """Runs one module task through ansible-playbook on localhost and returns its result."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.count = 0

    def __call__(self, module: str, args: dict[str, Any], check: bool = False,
                 diff: bool = False, become_user: str | None = PG_USER,
                 verbosity: int = 0, python: str | None = None) -> dict[str, Any]:
        """``python``: the interpreter the module runs on (default: the host's, MANAGED_PYTHON)."""
        self.count += 1
        run_dir = Path(tempfile.mkdtemp(prefix=f'play{self.count}-', dir=self.workdir))
        vars_file = run_dir / 'args.json'
        # Arguments (passwords included) go through a 0600 vars file, never argv.
        fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            json.dump({'module_args': args}, handle)
        task: dict[str, Any] = {'name': 'Run module', module: '{{ module_args }}'}
        play: dict[str, Any] = {'hosts': 'localhost', 'gather_facts': False,
                                'vars_files': [str(vars_file)], 'tasks': [task]}
        if become_user:
            play.update(become=True, become_user=become_user, become_method='ansible.builtin.su')
        playbook = run_dir / 'play.yml'
        playbook.write_text(json.dumps([play]))
        env = dict(os.environ)
        env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
                   ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
                   ANSIBLE_CALLBACK_RESULT_FORMAT='json',
                   ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                   ANSIBLE_REMOTE_TMP=str(run_dir / 'remote-tmp'),
                   ANSIBLE_PYTHON_INTERPRETER=python or MANAGED_PYTHON,
                   ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
        argv = [str(Path(os.environ.get('VIRTUAL_ENV', REPO / '.venv')) / 'bin' / 'ansible-playbook'),
                '-i', 'localhost,', '-c', 'local', str(playbook)]
        if check:
            argv.append('--check')
        if diff:
            argv.append('--diff')
        if verbosity:
            argv.append('-' + 'v' * verbosity)
        res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=run_dir,
                             check=False)
        try:
            # With -v..., ansible-playbook prints its own lines before the callback's JSON.
            start = 0 if res.stdout.startswith('{') else res.stdout.find('\n{') + 1
            out, _end = json.JSONDecoder().raw_decode(res.stdout, start)
            result = out['plays'][0]['tasks'][0]['hosts']['localhost']
        except (ValueError, KeyError, IndexError) as exc:
            raise AssertionError(f'ansible-playbook gave no task result (rc={res.returncode}):\n'
                                 f'{res.stdout}\n{res.stderr}') from exc
        result['_stdout'] = res.stdout
        result['_stderr'] = res.stderr
        return result


@pytest.fixture
def run_module(workdir):
    """Run a catmaid.replication module for real: run_module('catmaid.replication.x', {...})."""
    return ModuleRunner(workdir)


@pytest.fixture(scope='session')
def report() -> Report:
    """The shared case report of the module tests: ``with report.case(group, title, checked):``."""
    return MODULES_REPORT
