# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catmaid.replication.pg_basebackup against real, throw-away PostgreSQL clusters."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

# Nothing is imported from conftest: pytest runs in importlib mode, where it is no module on
# sys.path. The Cluster class comes from the fixtures' own objects (type(primary)).
MODULE = 'catmaid.replication.pg_basebackup'
SECRET = 'repl-secret'
PG_USER = 'postgres'
REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / 'build' / 'collections'
MANAGED_PYTHON = os.environ.get('CATMAID_TEST_PYTHON', '/usr/bin/python3')
Cluster = Any  # the fixtures' cluster objects (tests/functional/conftest.py)


def unused_port() -> int:
    """A loopback port nothing listens on (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def clone_args(primary: Cluster, data_dir: Path, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(data_dir=str(data_dir), host='127.0.0.1', port=primary.port,
                                user='replicator', password=SECRET, sslmode='require')
    args.update(extra)
    return args


def action_of(result: dict[str, Any]) -> str:
    """The module's own `action` value.

    The ansible.posix.json callback used by run_module replaces a result's `action` key with
    the task's module name, so the tests read it from `msg` (which starts with it) and one
    test checks the registered variable itself (test_action_in_registered_result).
    """
    msg = result['msg']
    for prefix, action in (('would clone', 'clone'), ('cloned', 'clone'), ('would replace', 'replace'),
                           ('replaced', 'replace'), ('unchanged', 'unchanged')):
        if msg.startswith(prefix):
            return action
    raise AssertionError(f'no action in {msg!r}')


def replica_parent(workdir: Path, name: str = 'replica') -> Path:
    """A directory owned by postgres to clone into (its 'data' child does not exist yet)."""
    root = workdir / name
    root.mkdir(mode=0o700)
    shutil_chown(root)
    return root


def shutil_chown(path: Path) -> None:
    pw = pwd.getpwnam(PG_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def old_cluster(clusters, name: str = 'replica') -> Cluster:
    """A stopped, unrelated cluster in the target directory, with a marker row."""
    old = clusters(name)
    old.psql('CREATE TABLE marker (note text)')
    old.psql("INSERT INTO marker VALUES ('still here')")
    old.stop()
    return old


def assert_marker_intact(old: Cluster) -> None:
    old.start()
    try:
        assert old.psql('SELECT note FROM marker') == 'still here'
    finally:
        old.stop()


def snapshot(path: Path) -> dict[str, tuple[int, float, int]]:
    """Every entry under path with size, mtime and mode."""
    out: dict[str, tuple[int, float, int]] = {}
    if path.exists():
        for p in [path] + sorted(path.rglob('*')):
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime, st.st_mode)
    return out


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if '.clone-' in p.name or '.old-' in p.name)


def as_standby(clusters, data_dir: Path, primary: Cluster, name: str, slot: str | None = None) -> Cluster:
    """Turn a cloned data directory into a running standby on its own port."""
    standby = type(primary)(clusters.workdir, name, clusters.bindir)
    assert standby.data_dir == data_dir
    standby.prepare_dirs()
    standby.write_conf()
    conninfo = (f"host=127.0.0.1 port={primary.port} user=replicator password={SECRET} "
                f"sslmode=require application_name={name}")
    lines = [f"primary_conninfo = '{conninfo}'"]
    if slot:
        lines.append(f"primary_slot_name = '{slot}'")
    conf = data_dir / 'conf.d' / 'standby.conf'
    conf.write_text('\n'.join(lines) + '\n')
    conf.chmod(0o600)
    (data_dir / 'standby.signal').write_text('')
    for p in (conf, data_dir / 'standby.signal'):
        shutil_chown(p)
    standby.start()
    return standby


def test_clone_stream_slot_and_idempotence(primary, clusters, run_module, workdir):
    parent = replica_parent(workdir)
    data_dir = parent / 'data'
    primary.psql('CREATE TABLE t (id int)')

    # Clone in the background and watch every process's argv for the password meanwhile.
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(run_module(
        MODULE, clone_args(primary, data_dir, slot='replica1', create_slot=True,
                           application_name='clone-test'))))
    runner.start()
    seen_basebackup = False
    while runner.is_alive():
        for cmdline in Path('/proc').glob('[0-9]*/cmdline'):
            try:
                raw = cmdline.read_bytes()
            except OSError:
                continue
            assert SECRET.encode() not in raw, f'password on a command line: {raw!r}'
            seen_basebackup = seen_basebackup or b'pg_basebackup\x00-D' in raw
        time.sleep(0.02)
    runner.join()

    assert result.get('failed') is not True, result
    assert result['changed'] is True
    assert action_of(result) == 'clone'
    assert seen_basebackup
    assert SECRET not in result['_stdout'] and SECRET not in ' '.join(result['cmd'])
    assert result['cmd'][:2] == [str(clusters.bindir / 'pg_basebackup'), '-D']
    assert ['-C', '-S', 'replica1'] == result['cmd'][-3:]
    assert result['slot_created'] is True
    assert result['system_identifier'] == primary.system_identifier()
    assert result['pg_version'] == primary.major
    assert result['bytes'] > 1_000_000 and result['duration_s'] > 0
    assert result['backup_dir'] is None
    st = data_dir.stat()
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == pwd.getpwnam(PG_USER).pw_uid
    assert leftovers(parent) == []
    assert primary.psql("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'replica1'") == 'physical'

    # The slot exists now: a second clone elsewhere reuses it instead of failing.
    other_parent = replica_parent(workdir, 'replica2')
    again = run_module(MODULE, clone_args(primary, other_parent / 'data', slot='replica1', create_slot=True))
    assert again.get('failed') is not True, again
    assert again['changed'] is True and again['slot_created'] is False
    assert again['cmd'][-2:] == ['-S', 'replica1'] and '-C' not in again['cmd']

    standby = as_standby(clusters, data_dir, primary, 'replica', slot='replica1')
    primary.psql('INSERT INTO t VALUES (42)')
    standby.wait_for('SELECT id FROM t', '42')
    assert standby.psql('SELECT pg_is_in_recovery()') == 't'
    primary.wait_for("SELECT state FROM pg_stat_replication WHERE application_name = 'replica'", 'streaming')
    assert primary.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'replica1'") == 't'

    # Idempotence: a (running) standby of this primary is left alone, in check mode too.
    for check in (True, False):
        second = run_module(MODULE, clone_args(primary, data_dir, slot='replica1', create_slot=True),
                            check=check)
        assert second.get('failed') is not True, second
        assert second['changed'] is False and action_of(second) == 'unchanged'
        assert 'already holds a standby of this primary' in second['msg']
    assert standby.is_running()


def test_check_mode_touches_nothing(primary, clusters, run_module, workdir):
    parent = replica_parent(workdir)
    data_dir = parent / 'data'
    res = run_module(MODULE, clone_args(primary, data_dir), check=True)
    assert res.get('failed') is not True, res
    assert res['changed'] is True and action_of(res) == 'clone'
    assert res['msg'].startswith('would clone')
    assert res['system_identifier'] == primary.system_identifier()
    assert SECRET not in ' '.join(res['cmd'])
    assert list(parent.iterdir()) == []

    old = old_cluster(clusters)
    before = snapshot(old.data_dir)
    res = run_module(MODULE, clone_args(primary, old.data_dir, force=True), check=True)
    assert res.get('failed') is not True, res
    assert res['changed'] is True and action_of(res) == 'replace'
    assert res['msg'].startswith('would replace an existing cluster')
    assert res['backup_dir'] is None
    assert snapshot(old.data_dir) == before
    assert sorted(os.listdir(old.data_dir.parent)) == ['data', 'server.log', 'sock']
    assert_marker_intact(old)


def test_wrong_password_leaves_old_data_dir(primary, clusters, run_module):
    old = old_cluster(clusters)
    before = snapshot(old.data_dir)
    res = run_module(MODULE, clone_args(primary, old.data_dir, password='wrong:pass\\word', force=True))
    assert res.get('failed') is True
    assert 'password authentication failed for user replicator: check the replication password' in res['msg']
    assert 'wrong:pass' not in res['_stdout']
    assert snapshot(old.data_dir) == before
    assert leftovers(old.data_dir.parent) == []
    assert_marker_intact(old)


def test_unreachable_primary(primary, clusters, run_module, workdir):
    parent = replica_parent(workdir)
    port = unused_port()
    res = run_module(MODULE, dict(clone_args(primary, parent / 'data'), port=port, connect_timeout=3))
    assert res.get('failed') is True
    assert f'127.0.0.1:{port}' in res['msg'] and 'cannot reach the primary' in res['msg']
    assert list(parent.iterdir()) == []


def test_running_server_is_refused_even_with_force(primary, clusters, run_module):
    old = old_cluster(clusters)
    old.start()
    res = run_module(MODULE, clone_args(primary, old.data_dir, force=True))
    assert res.get('failed') is True
    assert 'a PostgreSQL server is running in it' in res['msg']
    assert old.psql('SELECT note FROM marker') == 'still here'
    old.stop()


def test_other_cluster_needs_force_then_is_replaced(primary, clusters, run_module):
    old = old_cluster(clusters)
    old_hba = (old.data_dir / 'pg_hba.conf').read_text()
    old_key = (old.data_dir / 'server.key').read_bytes()
    res = run_module(MODULE, clone_args(primary, old.data_dir))
    assert res.get('failed') is True
    assert 'holds another cluster' in res['msg'] and 'force' in res['msg']
    assert_marker_intact(old)

    res = run_module(MODULE, clone_args(primary, old.data_dir, force=True))
    assert res.get('failed') is not True, res
    assert res['changed'] is True and action_of(res) == 'replace'
    backup = Path(res['backup_dir'])
    assert backup.parent == old.data_dir.parent and backup.name.startswith('data.config-backup-')
    assert {'postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf',
            'server.crt', 'server.key'} <= set(os.listdir(backup))
    assert set(res['saved_files']) == set(os.listdir(backup))
    assert (backup / 'pg_hba.conf').read_text() == old_hba
    assert (backup / 'server.key').read_bytes() == old_key
    assert backup.stat().st_mode & 0o777 == 0o700
    assert old.system_identifier() == primary.system_identifier()
    assert not (old.data_dir / 'base').joinpath('marker').exists()
    assert old.data_dir.stat().st_mode & 0o777 == 0o700
    assert leftovers(old.data_dir.parent) == []


def test_promoted_former_primary_needs_force(primary, clusters, run_module, workdir):
    parent = replica_parent(workdir)
    data_dir = parent / 'data'
    res = run_module(MODULE, clone_args(primary, data_dir))
    assert res['changed'] is True, res
    # Started once without standby.signal: a primary of its own now, whose history diverged.
    former = type(primary)(clusters.workdir, 'replica', clusters.bindir)
    former.prepare_dirs()
    former.write_conf()
    former.start()
    former.stop()
    assert not (data_dir / 'backup_label').exists()
    res = run_module(MODULE, clone_args(primary, data_dir))
    assert res.get('failed') is True
    assert 'not configured as a standby' in res['msg'] and 'force' in res['msg']
    inside = run_module(MODULE, clone_args(primary, data_dir, force=True, backup_dir=str(data_dir / 'saved')))
    assert inside.get('failed') is True and 'lies inside data_dir' in inside['msg']
    saved = parent / 'saved-config'
    res = run_module(MODULE, clone_args(primary, data_dir, force=True, backup_dir=str(saved)))
    assert res.get('failed') is not True, res
    assert action_of(res) == 'replace'
    assert res['backup_dir'] == str(saved)
    assert {'postgresql.conf', 'pg_hba.conf', 'server.key', 'server.crt'} <= set(os.listdir(saved))


def test_non_cluster_directory_needs_force(primary, clusters, run_module, workdir):
    parent = replica_parent(workdir)
    data_dir = parent / 'data'
    data_dir.mkdir(mode=0o700)
    (data_dir / 'notes.txt').write_text('mine')
    for p in (data_dir, data_dir / 'notes.txt'):
        shutil_chown(p)
    res = run_module(MODULE, clone_args(primary, data_dir))
    assert res.get('failed') is True and 'no PG_VERSION' in res['msg']
    assert (data_dir / 'notes.txt').read_text() == 'mine'


def _pids(pattern: str) -> list[int]:
    res = subprocess.run(['pgrep', '-f', pattern], capture_output=True, text=True, check=False)
    return [int(x) for x in res.stdout.split()]


def test_interrupted_clone_keeps_old_dir_and_rerun_completes(primary, clusters, run_module):
    old = old_cluster(clusters)
    parent = old.data_dir.parent
    # Leftovers of an earlier interrupted run, plus look-alikes that are not ours.
    stale = [parent / '.data.clone-abc123', parent / '.data.old-xyz789']
    foreign = [parent / '.data.clone-keep.me', parent / '.other.clone-abc123']
    for d in stale + foreign:
        d.mkdir()
        (d / 'junk').write_text('x')
        shutil_chown(d)
        shutil_chown(d / 'junk')
    before = snapshot(old.data_dir)

    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(run_module(
        MODULE, clone_args(primary, old.data_dir, force=True, max_rate='1M'))))
    runner.start()
    pattern = f'pg_basebackup -D {parent}/.data.clone-'
    deadline = time.monotonic() + 60
    killed: list[int] = []
    while time.monotonic() < deadline and runner.is_alive():
        tmp = [p for p in parent.glob('.data.clone-*') if p not in stale + foreign]
        size = sum(f.stat().st_size for t in tmp for f in t.rglob('*') if f.is_file()) if tmp else 0
        pids = _pids(pattern)
        if pids and size > 2_000_000:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed = pids
            break
        time.sleep(0.1)
    runner.join(120)
    assert killed, 'pg_basebackup was not seen running'
    assert result.get('failed') is True, result
    assert 'pg_basebackup failed' in result['msg'] and 'left as it was' in result['msg']
    assert SECRET not in result['_stdout']
    assert all(not d.exists() for d in stale), 'leftovers of the earlier run were not removed'
    assert all(d.exists() for d in foreign)
    assert snapshot(old.data_dir) == before
    assert [p.name for p in parent.glob('.data.clone-*') if p not in foreign] == []
    assert_marker_intact(old)

    res = run_module(MODULE, clone_args(primary, old.data_dir, force=True))
    assert res.get('failed') is not True, res
    assert action_of(res) == 'replace'
    assert old.system_identifier() == primary.system_identifier()


def test_timeout_stops_pg_basebackup(primary, clusters, run_module):
    old = old_cluster(clusters)
    before = snapshot(old.data_dir)
    res = run_module(MODULE, clone_args(primary, old.data_dir, force=True, max_rate='32k', timeout=3))
    assert res.get('failed') is True
    assert 'did not finish within timeout=3 seconds' in res['msg']
    assert snapshot(old.data_dir) == before
    assert leftovers(old.data_dir.parent) == []
    assert not _pids(f'pg_basebackup -D {old.data_dir.parent}/.data.clone-')


def test_version_mismatch_names_both(primary, clusters, run_module, workdir):
    fake = workdir / 'fakebin'
    fake.mkdir()
    script = fake / 'pg_basebackup'
    script.write_text('#!/bin/sh\necho "pg_basebackup (PostgreSQL) 9.6.24"\n')
    script.chmod(0o755)
    parent = replica_parent(workdir)
    res = run_module(MODULE, clone_args(primary, parent / 'data', pg_bin_dir=str(fake)))
    assert res.get('failed') is True
    assert f'primary runs PostgreSQL {primary.major}' in res['msg'] and 'PostgreSQL 9' in res['msg']
    assert list(parent.iterdir()) == []


def test_as_root_gives_everything_to_the_parent_owner(primary, clusters, run_module, workdir):
    parent = replica_parent(workdir)
    data_dir = parent / 'data'
    res = run_module(MODULE, clone_args(primary, data_dir), become_user=None)
    assert res.get('failed') is not True, res
    uid = pwd.getpwnam(PG_USER).pw_uid
    bad = [str(p) for p in [data_dir] + list(data_dir.rglob('*')) if p.lstat().st_uid != uid]
    assert bad == []
    assert data_dir.stat().st_mode & 0o777 == 0o700
    # PostgreSQL accepts it: start it as a standby of the primary.
    standby = as_standby(clusters, data_dir, primary, 'replica')
    assert standby.psql('SELECT pg_is_in_recovery()') == 't'


@pytest.mark.parametrize('password', ['pa:ss\\word', "it's:a\\\\b"])
def test_passfile_escaping_against_real_server(primary, clusters, run_module, workdir, password):
    escaped = password.replace("'", "''")
    primary.psql(f"CREATE ROLE odd WITH REPLICATION LOGIN PASSWORD '{escaped}'")
    parent = replica_parent(workdir)
    res = run_module(MODULE, dict(clone_args(primary, parent / 'data'), user='odd', password=password))
    assert res.get('failed') is not True, res
    assert res['changed'] is True
    assert (parent / 'data' / 'PG_VERSION').read_text().strip() == str(primary.major)


def test_action_in_registered_result(primary, workdir, clusters):
    """`action` as a playbook sees it when it registers the result (no callback in between)."""
    parent = replica_parent(workdir)
    run_dir = workdir / 'registered'
    run_dir.mkdir()
    vars_file = run_dir / 'args.json'
    fd = os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump({'module_args': clone_args(primary, parent / 'data')}, handle)
    out = run_dir / 'out.json'
    play = [{'hosts': 'localhost', 'gather_facts': False, 'vars_files': [str(vars_file)],
             'tasks': [{MODULE: '{{ module_args }}', 'register': 'r', 'check_mode': True,
                        'become': True, 'become_user': PG_USER, 'become_method': 'ansible.builtin.su'},
                       {'ansible.builtin.copy': {'content': '{{ r | to_json }}', 'dest': str(out),
                                                 'mode': '0600'}}]}]
    (run_dir / 'play.yml').write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_PYTHON_INTERPRETER=MANAGED_PYTHON,
               ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_REMOTE_TMP=str(run_dir / 'tmp'))
    res = subprocess.run([str(Path(os.environ.get('VIRTUAL_ENV', REPO / '.venv')) / 'bin' / 'ansible-playbook'),
                          '-i', 'localhost,', '-c', 'local', str(run_dir / 'play.yml')],
                         capture_output=True, text=True, env=env, cwd=run_dir, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    registered = json.loads(out.read_text())
    assert registered['action'] == 'clone'
    assert registered['changed'] is True
    assert list(parent.iterdir()) == []


def test_ssl_verification(primary, clusters, run_module, workdir):
    """verify-ca with the primary's (self-signed) certificate as root; verify-full names the problem."""
    ca = workdir / 'primary-ca.crt'
    ca.write_bytes((primary.data_dir / 'server.crt').read_bytes())
    ca.chmod(0o644)
    parent = replica_parent(workdir)
    res = run_module(MODULE, clone_args(primary, parent / 'data', sslmode='verify-ca', sslrootcert=str(ca)))
    assert res.get('failed') is not True, res
    assert "sslrootcert='" + str(ca) + "'" in ' '.join(res['cmd'])
    other = replica_parent(workdir, 'replica2')
    # The certificate is for CN=localhost, not 127.0.0.1.
    res = run_module(MODULE, clone_args(primary, other / 'data', sslmode='verify-full', sslrootcert=str(ca)))
    assert res.get('failed') is True
    assert 'SSL connection to the primary 127.0.0.1' in res['msg'] and 'sslrootcert' in res['msg']
    assert list(other.iterdir()) == []


# -- issue 14 ---------------------------------------------------------------------------------
GROUP_DATA = 'data loss: pg_basebackup module (tests/functional/test_pg_basebackup.py)'


def run_in_background(run_module, args: dict[str, Any], **kw: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(run_module(MODULE, args, **kw)))
    runner.start()
    return runner, result


def wait_for_basebackup(parent: Path, runner: threading.Thread, timeout: float = 60) -> list[int]:
    """The pids of the module's pg_basebackup once it runs (and has written something)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and runner.is_alive():
        pids = _pids(f'pg_basebackup -D {parent}/.data.clone-')
        tmp = list(parent.glob('.data.clone-*'))
        if pids and tmp and any(tmp[0].iterdir()):
            return pids
        time.sleep(0.05)
    raise AssertionError('pg_basebackup was not seen running')


def test_server_started_during_clone_is_not_swapped_away(primary, clusters, run_module, report):
    with report.case(GROUP_DATA, 'a server started in data_dir while the clone runs (issue 14 item 1)',
                     'force=true replaces a stopped cluster; while pg_basebackup copies (max_rate), that '
                     'cluster is started again. The module must fail naming the running server and leave '
                     'the running server, its directory and its rows untouched. On the parent commit the '
                     'swap renamed the running server\'s directory aside and deleted it') as case:
        old = old_cluster(clusters)
        sysid = old.system_identifier()
        parent = old.data_dir.parent
        runner, result = run_in_background(run_module, clone_args(primary, old.data_dir, force=True,
                                                                  max_rate='2M'))
        wait_for_basebackup(parent, runner)
        old.start()
        runner.join(300)
        try:
            assert result.get('failed') is True, result.get('msg')
            assert 'started' in result['msg'] and 'running' in result['msg'], result['msg']
            assert old.is_running(), 'the server started meanwhile is gone'
            assert old.psql('SELECT note FROM marker') == 'still here'
            assert old.system_identifier() == sysid
            assert leftovers(parent) == []
            case.note(f"module failed: {result['msg'][:160]}")
        finally:
            old.stop()


@pytest.mark.parametrize('content,when', [('', 'during'), ('4242', 'before')],
                         ids=['empty-during-the-clone', 'partly-written-before-the-run'])
def test_unfinished_postmaster_pid_is_not_taken_over(primary, clusters, run_module, report, content, when):
    what = 'an empty' if not content else f'a partly written ({content!r}, no line end)'
    with report.case(GROUP_DATA, f'{what} postmaster.pid in data_dir {when} the clone (review of issue 14 item 1)',
                     f'force=true replaces a stopped cluster; {what} postmaster.pid appears in data_dir '
                     f'{"while pg_basebackup copies" if when == "during" else "before the run"}, as a postmaster '
                     'in the middle of starting leaves it (PostgreSQL writes it after creating it with O_EXCL). '
                     'The module must refuse, naming the file and what to do, and leave the file and the '
                     'cluster as they were. On the parent commit the module deleted the file as stale, wrote '
                     'its own lock and replaced the directory') as case:
        old = old_cluster(clusters)
        sysid = old.system_identifier()
        parent = old.data_dir.parent
        pid_file = old.data_dir / 'postmaster.pid'

        def starting_postmaster() -> None:
            fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, content.encode())
            os.close(fd)
            shutil_chown(pid_file)

        if when == 'before':
            starting_postmaster()
        runner, result = run_in_background(run_module, clone_args(primary, old.data_dir, force=True,
                                                                  max_rate='4M'))
        if when == 'during':
            wait_for_basebackup(parent, runner)
            starting_postmaster()
        runner.join(300)
        assert result.get('failed') is True, result.get('msg')
        assert 'postmaster.pid' in result['msg'] and 'remove' in result['msg'], result['msg']
        assert pid_file.read_text() == content, 'the unfinished postmaster.pid was replaced or removed'
        assert old.system_identifier() == sysid, 'the data directory was replaced'
        assert leftovers(parent) == []
        case.note(f"module failed: {result['msg'][:110]} ... {result['msg'][-170:]}")
        pid_file.unlink()
        assert_marker_intact(old)


def test_existing_backup_dir_is_not_chmodded_or_chowned(primary, clusters, run_module, workdir, report):
    with report.case(GROUP_DATA, 'an existing backup_dir keeps its mode and its files\' owners (issue 14 item 4)',
                     'a forced replace (module as root) saves the configuration into an existing 0755 '
                     'directory holding a root-owned file: the directory keeps mode 0755, the file its owner; '
                     'only the saved files are the postgres user\'s. On the parent commit the directory was '
                     'chmodded 0700 and everything in it chowned to postgres') as case:
        old = old_cluster(clusters)
        shared = workdir / 'shared-backups'
        shared.mkdir(mode=0o755)
        shared.chmod(0o755)
        mine = shared / 'root-notes.txt'
        mine.write_text('root owns this')
        mine.chmod(0o644)
        res = run_module(MODULE, clone_args(primary, old.data_dir, force=True, backup_dir=str(shared)),
                         become_user=None)
        assert res.get('failed') is not True, res.get('msg')
        st = shared.stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o755, 0), f'{oct(st.st_mode)} uid {st.st_uid}'
        assert (mine.stat().st_uid, mine.stat().st_mode & 0o777) == (0, 0o644)
        uid = pwd.getpwnam(PG_USER).pw_uid
        assert all((shared / name).stat().st_uid == uid for name in res['saved_files'])
        case.note(f"backup_dir 0755 root kept; saved {len(res['saved_files'])} files owned by postgres")


def _state(path: Path) -> tuple[bytes, int, int, int]:
    """Content, owner, group and mode of a file (through no link)."""
    st = path.lstat()
    return path.read_bytes(), st.st_uid, st.st_gid, st.st_mode


def test_backup_dir_links_and_same_named_files_are_not_followed(primary, clusters, run_module, workdir, report):
    with report.case(GROUP_DATA, 'symbolic links and same-named files in backup_dir and data_dir (issue 14, '
                                 'review of item 4)',
                     'a forced replace as root saves into an existing backup_dir (owned by postgres) that holds '
                     'postgresql.conf as a link to a root-only file, pg_ident.conf as a link to a root-owned '
                     'directory and a pg_hba.conf of an earlier save; data_dir holds stolen.pem, a link to a '
                     'root-only secret. Afterwards the linked file, the directory, the earlier pg_hba.conf and the '
                     'links are byte for byte, owner and mode as before, every saved file is a new regular file (or '
                     'link) owned by postgres, and the secret is in no file of backup_dir. On the parent commit '
                     'the module wrote the configuration through the link into the root-only file, overwrote the '
                     'earlier save, and copied the secret into a postgres-owned file') as case:
        old = old_cluster(clusters)
        uid = pwd.getpwnam(PG_USER).pw_uid
        victim = workdir / 'root-only.conf'
        victim.write_text('root only, not for postgres\n')
        victim.chmod(0o600)
        victim_dir = workdir / 'root-dir'
        victim_dir.mkdir(mode=0o700)
        victim_dir.chmod(0o700)
        secret = workdir / 'secret.txt'
        secret.write_text('S3CRET-root-only-4711\n')
        secret.chmod(0o600)
        backup = workdir / 'saved-configs'
        backup.mkdir(mode=0o700)
        shutil_chown(backup)
        (backup / 'postgresql.conf').symlink_to(victim)
        (backup / 'pg_ident.conf').symlink_to(victim_dir)
        earlier = backup / 'pg_hba.conf'
        earlier.write_text('# pg_hba.conf of an earlier save\n')
        earlier.chmod(0o640)
        for p in (backup / 'postgresql.conf', backup / 'pg_ident.conf'):
            os.lchown(p, uid, -1)
        (old.data_dir / 'stolen.pem').symlink_to(secret)
        os.lchown(old.data_dir / 'stolen.pem', uid, -1)
        old_hba = (old.data_dir / 'pg_hba.conf').read_text()
        old_conf = (old.data_dir / 'postgresql.conf').read_text()
        before = {p: _state(p) for p in (victim, secret, earlier)}
        links = {p: (os.readlink(p), p.lstat().st_uid) for p in (backup / 'postgresql.conf', backup / 'pg_ident.conf')}
        dir_before = (victim_dir.stat().st_uid, victim_dir.stat().st_mode, sorted(os.listdir(victim_dir)))

        res = run_module(MODULE, clone_args(primary, old.data_dir, force=True, backup_dir=str(backup)),
                         become_user=None)
        assert res.get('failed') is not True, res.get('msg')
        assert {p: _state(p) for p in before} == before, 'a file outside what the module creates changed'
        assert {p: (os.readlink(p), p.lstat().st_uid) for p in links} == links
        assert (victim_dir.stat().st_uid, victim_dir.stat().st_mode, sorted(os.listdir(victim_dir))) == dir_before
        saved = [backup / name for name in res['saved_files']]
        assert saved and all(p.parent == backup for p in saved), res['saved_files']
        assert not set(res['saved_files']) & {'postgresql.conf', 'pg_ident.conf', 'pg_hba.conf'}, res['saved_files']
        assert all(p.lstat().st_uid == uid for p in saved), [(p.name, p.lstat().st_uid) for p in saved]
        assert sorted(os.listdir(backup)) == sorted({'postgresql.conf', 'pg_ident.conf', 'pg_hba.conf'}
                                                    | set(res['saved_files'])), 'something else was left in backup_dir'
        assert (backup / 'stolen.pem').is_symlink() and os.readlink(backup / 'stolen.pem') == str(secret)
        texts = {p.name: p.read_text() for p in saved if not p.is_symlink()}
        assert old_hba in texts.values() and old_conf in texts.values(), sorted(texts)
        leaked = [p.name for p in backup.iterdir() if not p.is_symlink() and p.is_file()
                  and b'S3CRET' in p.read_bytes()]
        assert leaked == [], f'the root-only secret was copied into {leaked}'
        case.note(f"saved as {', '.join(sorted(res['saved_files']))}; linked file, directory, earlier save and "
                  'secret unchanged')

        # backup_dir itself a link (to the root-owned directory): refused before anything changes.
        pointer = workdir / 'backup-link'
        pointer.symlink_to(victim_dir)
        before_dir = snapshot(old.data_dir)
        refused = run_module(MODULE, clone_args(primary, old.data_dir, force=True, backup_dir=str(pointer)),
                             become_user=None)
        assert refused.get('failed') is True and 'symbolic link' in refused['msg'], refused.get('msg')
        assert snapshot(old.data_dir) == before_dir
        assert (victim_dir.stat().st_uid, victim_dir.stat().st_mode, sorted(os.listdir(victim_dir))) == dir_before
        case.note(f"backup_dir a link: {refused['msg'][:140]}")


def _tree_state(path: Path) -> dict[str, tuple[bytes | str | None, int, int]]:
    """Every entry under path (path itself included, no link followed): content or link target,
    owner and mode."""
    out: dict[str, tuple[bytes | str | None, int, int]] = {}
    for p in [path] + sorted(path.rglob('*')):
        st = p.lstat()
        body = os.readlink(p) if p.is_symlink() else (p.read_bytes() if p.is_file() else None)
        out[str(p)] = (body, st.st_uid, st.st_mode)
    return out


def _root_only_dir(path: Path) -> Path:
    """A root-owned 0700 directory holding a key and another file, as the finding's victim."""
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    (path / 'site.key').write_text('ROOT-ONLY-KEY-0815\n')
    (path / 'site.key').chmod(0o600)
    (path / 'other.txt').write_text('root keeps this\n')
    return path


def _postgres_link(link: Path, target: Path) -> None:
    link.symlink_to(target)
    os.lchown(link, pwd.getpwnam(PG_USER).pw_uid, -1)


@pytest.mark.parametrize('layout', ['data_dir-link', 'data_dir-link-parent-postgres', 'parent-link',
                                    'parent-link-owner', 'parent-link-missing'])
def test_links_of_the_postgres_user_do_not_redirect_root(primary, clusters, run_module, workdir, report, layout):
    """The module as root must not act on a directory the postgres user could not write itself,
    whatever symbolic links (owned by postgres) in data_dir's path point at."""
    what = {'data_dir-link': 'data_dir a link (owned by postgres) to a root-only directory, force=true',
            'data_dir-link-parent-postgres': 'data_dir a link (owned by postgres) to a root-only directory '
                                             'inside a postgres-owned one, force=true',
            'parent-link': 'data_dir\'s parent a link (owned by postgres) into a root-only tree, force=true',
            'parent-link-owner': 'data_dir\'s parent a link (owned by postgres) into a root-only tree, '
                                 'force=true, owner=postgres',
            'parent-link-missing': 'data_dir\'s parent a link (owned by postgres) into a root-only tree, '
                                   'data_dir missing there'}[layout]
    with report.case('security: pg_basebackup module (tests/functional/test_pg_basebackup.py)',
                     f'symbolic links of the postgres user in data_dir\'s path, module as root: {what} '
                     '(hostile review, MEDIUM)',
                     'the module runs as root; a symbolic link owned by postgres (at data_dir, or a directory '
                     'of its path) points into a root-only directory holding site.key and other.txt. The module '
                     'must fail saying what to fix and that nothing was changed; the root-only tree (contents, '
                     'owners, modes), the link and the postgres-owned directory stay exactly as they were, and '
                     'no backup or clone is made. On the parent commit the link was resolved and its target '
                     'treated as the data directory: with force=true the root-only directory was removed and '
                     'replaced by a clone (site.key copied to the backup directory), and without force a clone '
                     'owned by root was made inside the root-only tree') as case:
        attacker = replica_parent(workdir, 'atk')          # postgres owns it
        extra: dict[str, Any] = {} if layout == 'parent-link-missing' else {'force': True}
        if layout == 'parent-link-owner':
            extra['owner'] = PG_USER
        if layout.startswith('data_dir-link'):
            if layout == 'data_dir-link-parent-postgres':
                home = replica_parent(workdir, 'pg-owned')  # postgres owns it, the victim in it does not
                victim = _root_only_dir(home / 'secret')
            else:
                victim = _root_only_dir(workdir / 'root-only')
            data_dir = attacker / 'main'
            _postgres_link(data_dir, victim)
            watched = victim          # its parent (the test's workdir) gets run_module's play files
        else:
            tree = workdir / 'root-tree'
            tree.mkdir(mode=0o700)
            tree.chmod(0o700)
            if layout != 'parent-link-missing':
                _root_only_dir(tree / 'main')
            _postgres_link(attacker / 'pgparent', tree)
            data_dir = attacker / 'pgparent' / 'main'
            watched = tree
        before = _tree_state(watched)
        before_attacker = _tree_state(attacker)
        res = run_module(MODULE, clone_args(primary, data_dir, **extra), become_user=None)
        after = _tree_state(watched)
        changed = sorted({name for name, dummy in set(before.items()) ^ set(after.items())})
        gone = sorted(set(before) - set(after))
        keys = sorted(str(p) for p in workdir.rglob('site.key*') if p.is_file() and not p.is_symlink())
        assert res.get('failed') is True, (
            f"the module did not refuse: {res.get('msg')!r}; saved_files={res.get('saved_files')}, "
            f"backup_dir={res.get('backup_dir')}; under {watched} {len(changed)} entries changed, "
            f"gone: {[Path(g).name for g in gone][:6]}; copies of site.key (owner uid): "
            f"{[(k, Path(k).stat().st_uid) for k in keys]}")
        assert changed == [], f'the module failed but changed {changed}'
        assert _tree_state(attacker) == before_attacker
        made = [str(p) for p in workdir.rglob('*') if 'config-backup' in p.name or '.clone-' in p.name
                or '.old-' in p.name]
        assert made == [], f'the module left {made}'
        assert 'owned by' in res['msg'] and 'Nothing was changed' in res['msg'], res['msg']
        case.note(f"refused: {res['msg'][:150]} ... {res['msg'][-230:]}")
        if layout == 'data_dir-link-parent-postgres':
            # Not overbroad: the same link of postgres's to a directory postgres owns is still followed.
            real = replica_parent(workdir / 'pg-owned', 'real')
            data_dir.unlink()
            _postgres_link(data_dir, real)
            ok = run_module(MODULE, clone_args(primary, data_dir), become_user=None)
            assert ok.get('failed') is not True, ok.get('msg')
            assert (real / 'PG_VERSION').is_file() and data_dir.is_symlink()
            assert (real.stat().st_uid, (real / 'PG_VERSION').stat().st_uid) == (pwd.getpwnam(PG_USER).pw_uid,) * 2
            case.note(f"link to a directory of postgres's: {ok['msg'][:120]}")


GROUP_INPUT = 'bad input: pg_basebackup module (tests/functional/test_pg_basebackup.py)'


def test_empty_password_is_refused_not_replaced_by_pgpass(primary, clusters, run_module, workdir, report,
                                                          postgres_pgpass):
    with report.case(GROUP_INPUT, 'an empty password (issue 14 item 8)',
                     'password="" while the postgres user\'s ~/.pgpass holds a working password: the module '
                     'fails saying the password is empty and clones nothing. On the parent commit the empty '
                     'password was dropped and libpq silently logged in with ~/.pgpass') as case:
        postgres_pgpass(f'127.0.0.1:{primary.port}:*:replicator:{SECRET}')
        parent = replica_parent(workdir)
        res = run_module(MODULE, clone_args(primary, parent / 'data', password=''))
        assert res.get('failed') is True, res.get('msg')
        assert 'password' in res['msg'] and 'empty' in res['msg'], res['msg']
        assert list(parent.iterdir()) == []
        case.note(f"refused: {res['msg'][:160]}")


def test_malformed_pg_version_is_a_clear_error(primary, clusters, run_module, workdir, report):
    with report.case(GROUP_INPUT, 'a malformed PG_VERSION (issue 14 item 8)',
                     'data_dir holds PG_VERSION "fifteen": the module fails naming the file, no traceback, '
                     'the directory untouched. On the parent commit it died with a Python traceback '
                     '(ValueError: invalid literal for int())') as case:
        parent = replica_parent(workdir)
        data_dir = parent / 'data'
        data_dir.mkdir(mode=0o700)
        (data_dir / 'PG_VERSION').write_text('fifteen\n')
        for p in (data_dir, data_dir / 'PG_VERSION'):
            shutil_chown(p)
        before = snapshot(data_dir)
        res = run_module(MODULE, clone_args(primary, data_dir, force=True))
        assert res.get('failed') is True
        assert 'PG_VERSION' in res['msg'] and 'fifteen' in res['msg'], res['msg']
        assert 'Traceback' not in json.dumps({k: v for k, v in res.items() if not k.startswith('_')})
        assert snapshot(data_dir) == before
        case.note(f"failed: {res['msg'][:160]}")


def test_cluster_of_another_major_is_not_replaced_even_with_force(primary, clusters, run_module, report):
    with report.case(GROUP_INPUT, 'force and a data directory of another major (issue 14 item 8)',
                     'data_dir holds a stopped PostgreSQL 13 cluster (PG_VERSION 13), the primary runs 15, '
                     'force=true: the module refuses naming both majors and leaves the cluster as it was. On '
                     'the parent commit the 13 cluster was deleted and replaced by a 15 clone') as case:
        old = old_cluster(clusters)
        (old.data_dir / 'PG_VERSION').write_text('13\n')
        before = snapshot(old.data_dir)
        res = run_module(MODULE, clone_args(primary, old.data_dir, force=True))
        assert res.get('failed') is True, res.get('msg')
        assert 'PostgreSQL 13' in res['msg'] and f'PostgreSQL {primary.major}' in res['msg'], res['msg']
        assert snapshot(old.data_dir) == before
        assert leftovers(old.data_dir.parent) == []
        case.note(f"refused: {res['msg'][:200]}")


def test_check_mode_predicts_the_restore_of_a_set_aside_directory(primary, clusters, run_module, workdir, report):
    with report.case(GROUP_INPUT, 'check mode after a run died inside the swap (issue 14 item 8)',
                     'the data directory (a standby of the primary) is missing and its set-aside copy '
                     '.data.old-XXXX exists: check mode predicts what the run does (restore it, unchanged), '
                     'and the run does that. On the parent commit check mode predicted "would clone"') as case:
        parent = replica_parent(workdir)
        data_dir = parent / 'data'
        assert run_module(MODULE, clone_args(primary, data_dir))['changed'] is True
        (data_dir / 'standby.signal').write_text('')
        shutil_chown(data_dir / 'standby.signal')
        aside = parent / '.data.old-k3y7q2'
        data_dir.rename(aside)
        predicted = run_module(MODULE, clone_args(primary, data_dir), check=True)
        assert predicted.get('failed') is not True, predicted.get('msg')
        assert aside.exists() and not data_dir.exists()
        done = run_module(MODULE, clone_args(primary, data_dir))
        assert done.get('failed') is not True, done.get('msg')
        assert action_of(done) == 'unchanged' and data_dir.exists() and not aside.exists()
        assert (action_of(predicted), predicted['changed']) == (action_of(done), done['changed']), predicted['msg']
        case.note(f"check mode: {predicted['msg'][:120]}; run: {done['msg'][:80]}")


def _ppid(pid: int) -> int:
    with open(f'/proc/{pid}/stat', encoding='ascii') as handle:
        return int(handle.read().rsplit(')', 1)[1].split()[1])


@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM], ids=['SIGKILL', 'SIGTERM'])
def test_killed_module_takes_pg_basebackup_with_it(primary, clusters, run_module, workdir, report, signum):
    with report.case(GROUP_INPUT, f'the module is killed ({signum.name}) while it clones (issue 14 item 8)',
                     f'{signum.name} to the module\'s Python process while pg_basebackup copies through a new slot: '
                     'within 15 s no pg_basebackup is left and the slot is inactive (its WAL sender gone); '
                     'after SIGTERM the module also reports it and removes its partial copy. On the parent '
                     'commit pg_basebackup went on copying, holding the slot, with nobody to swap the copy '
                     'in') as case:
        parent = replica_parent(workdir)
        runner, result = run_in_background(run_module, clone_args(primary, parent / 'data', slot='killed',
                                                                  create_slot=True, max_rate='1M'))
        pids = wait_for_basebackup(parent, runner)
        chain = [pids[0]]
        while len(chain) < 6:
            chain.append(_ppid(chain[-1]))
        modules = [pid for pid in chain if b'AnsiballZ_pg_basebackup' in Path(f'/proc/{pid}/cmdline').read_bytes()]
        assert modules, f'no module process above pg_basebackup: {chain}'
        os.kill(modules[0], signum)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (_pids(f'pg_basebackup -D {parent}/.data.clone-')
                                               or primary.psql("SELECT active FROM pg_replication_slots "
                                                               "WHERE slot_name = 'killed'") != 'f'):
            time.sleep(0.2)
        left = _pids(f'pg_basebackup -D {parent}/.data.clone-')
        active = primary.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'killed'")
        runner.join(120)
        assert left == [], f'pg_basebackup still running 15 s after the module was killed: {left}'
        assert active == 'f', f'slot active={active!r}'
        assert not (parent / 'data').exists()
        if signum == signal.SIGTERM:
            assert result.get('failed') is True and 'interrupted by signal 15' in result['msg'], result.get('msg')
            assert list(parent.glob('.data.clone-*')) == []
        case.note(f'module pid {modules[0]} got {signum.name}; pg_basebackup gone, slot inactive')


def test_impostor_without_channel_binding_is_refused(primary, clusters, run_module, workdir, report):
    with report.case('security: pg_basebackup module (tests/functional/test_pg_basebackup.py)',
                     'a server that lets the replication user in without SCRAM (issue 14 item 10)',
                     'an impostor "primary" (any certificate, sslmode=require, pg_hba trust) is asked for a '
                     'clone: the probe and pg_basebackup require channel binding, so the module refuses it '
                     'and clones nothing. On the parent commit the replica cloned the impostor\'s data (and '
                     'a relay could strip SCRAM-SHA-256-PLUS the same way)') as case:
        impostor = clusters('impostor')
        impostor.psql('CREATE ROLE replicator WITH REPLICATION LOGIN')
        (impostor.data_dir / 'pg_hba.conf').write_text('local all all peer\n'
                                                       'hostssl replication all 127.0.0.1/32 trust\n')
        impostor.psql('SELECT pg_reload_conf()')
        parent = replica_parent(workdir)
        res = run_module(MODULE, clone_args(impostor, parent / 'data'))
        assert res.get('failed') is True, res.get('msg')
        assert 'channel binding' in res['msg'], res['msg']
        assert list(parent.iterdir()) == []
        case.note(f"refused: {res['msg'][:200]}")
        # Against the real primary (scram-sha-256) the clone runs with channel binding.
        ok = run_module(MODULE, clone_args(primary, parent / 'data'))
        assert ok.get('failed') is not True, ok.get('msg')
        assert "channel_binding='require'" in ' '.join(ok['cmd'])


GROUP_RERUN = 'stopping services: pg_basebackup rerun (tests/functional/test_pg_basebackup.py)'


def test_own_unstarted_clone_is_replaced_without_force(primary, clusters, run_module, workdir, report):
    with report.case(GROUP_RERUN, 'a rerun finds the module\'s own clone, never started (issue 14 item 14)',
                     'a first run cloned but died before the standby was configured (no standby.signal, '
                     'backup_label of the module\'s clone still there): the rerun without force replaces it '
                     'and goes on. On the parent commit it refused ("not configured as a standby ... set '
                     'force=true"), so a failed first deployment needed the global force') as case:
        parent = replica_parent(workdir)
        data_dir = parent / 'data'
        first = run_module(MODULE, clone_args(primary, data_dir))
        assert first.get('failed') is not True, first.get('msg')
        again = run_module(MODULE, clone_args(primary, data_dir))
        assert again.get('failed') is not True, again.get('msg')
        assert again['changed'] is True and action_of(again) == 'replace', again['msg']
        assert 'never started' in again['msg']
        assert 'LABEL: catmaid.replication' in (data_dir / 'backup_label').read_text()
        case.note(f"rerun: {again['msg'][:160]}")


def test_fresh_package_cluster_is_replaced_without_force(primary, clusters, run_module, report):
    with report.case(GROUP_RERUN, 'a rerun finds the stopped, fresh package cluster (issue 14 item 14)',
                     'data_dir holds a cluster that initdb made and nobody used (no database, table or role '
                     'added: NextOID below 16384), stopped: replaced without force, its configuration saved. '
                     'A cluster with one role added is still refused without force. On the parent commit '
                     'the fresh cluster counted as "holds another cluster" and needed force') as case:
        fresh = clusters('replica')
        fresh.stop()
        res = run_module(MODULE, clone_args(primary, fresh.data_dir))
        assert res.get('failed') is not True, res.get('msg')
        assert action_of(res) == 'replace' and 'fresh cluster' in res['msg'], res['msg']
        assert fresh.system_identifier() == primary.system_identifier()
        assert res['backup_dir'] and 'postgresql.conf' in res['saved_files']
        case.note(f"replaced: {res['msg'][:160]}")

        used = clusters('used')
        used.psql('CREATE ROLE dba_added')
        used.stop()
        before = snapshot(used.data_dir)
        refused = run_module(MODULE, clone_args(primary, used.data_dir))
        assert refused.get('failed') is True and 'force' in refused['msg'], refused.get('msg')
        assert snapshot(used.data_dir) == before
        case.note('a cluster with one role added: refused without force, untouched')


def _processes_in(parent: Path) -> dict[int, str]:
    """pid -> working directory of every process whose working directory lies under ``parent``
    (a postmaster and its children work in their data directory; a deleted one reads "... (deleted)")."""
    found = {}
    for entry in Path('/proc').glob('[0-9]*'):
        try:
            cwd = os.readlink(entry / 'cwd')
        except OSError:
            continue
        if cwd.startswith(str(parent) + '/'):
            found[int(entry.name)] = cwd
    return found


@pytest.mark.parametrize('as_user', ['postgres', 'root'])
def test_server_start_during_the_swap_is_held_off(primary, clusters, run_module, workdir, report, as_user):
    """A real pg_ctl start on data_dir while the module is inside its swap.

    The module runs for real (ansible-playbook), on a Python started under strace, which delays
    every rename(2) the module makes by 4 seconds: the swap's first rename (data_dir aside) stays
    entered-but-not-done long enough for the test to see it in strace's output and start the old
    cluster with pg_ctl on that very data_dir. Whatever the module does to keep it off, afterwards
    no server may run on data_dir's old content, in particular none whose directory was deleted
    from under it.
    """
    with report.case(GROUP_DATA, f'a real server start during the module\'s swap (module as {as_user}, '
                                 'issue 14 item 1)',
                     'force=true replaces a stopped cluster; the module\'s rename of data_dir aside is delayed '
                     '4 s (strace fault injection) and while it is pending pg_ctl start runs on data_dir. '
                     'pg_ctl start must fail, no postgres process may work in a deleted or set-aside '
                     'directory, the clone must be in place and nothing left over. On the commit before the '
                     'swap lock the server started, its directory was renamed aside and deleted under it') as case:
        old = old_cluster(clusters)
        parent = old.data_dir.parent
        trace = workdir / 'strace'
        trace.mkdir(mode=0o755)
        shutil_chown(trace)
        log = trace / 'renames.log'
        python = trace / 'python-delayed-renames'
        calls = 'rename,renameat,renameat2'
        python.write_text('#!/bin/sh\n'
                          f'exec strace -qq -e signal=none -o {log} -e trace={calls} '
                          f'-e inject={calls}:delay_enter=4s {MANAGED_PYTHON} "$@"\n')
        python.chmod(0o755)
        entered = (f'rename("{old.data_dir}", ', f'renameat(AT_FDCWD, "{old.data_dir}", ',
                   f'renameat2(AT_FDCWD, "{old.data_dir}", ')
        runner, result = run_in_background(run_module, clone_args(primary, old.data_dir, force=True),
                                           become_user=PG_USER if as_user == 'postgres' else None,
                                           python=str(python))
        start = None
        try:
            deadline = time.monotonic() + 240
            while start is None and runner.is_alive() and time.monotonic() < deadline:
                lines = log.read_text().splitlines() if log.exists() else []
                if any(line.startswith(entered) and '= ' not in line for line in lines):
                    # The module is inside rename(data_dir, <aside>): start the server on data_dir now.
                    start = subprocess.run(['runuser', '-u', PG_USER, '--', old.bin('pg_ctl'), '-D',
                                            str(old.data_dir), '-l', str(old.log), '-w', '-t', '20', 'start'],
                                           capture_output=True, text=True, check=False)
                time.sleep(0.02)
            runner.join(300)
            assert start is not None, f'the module\'s rename of data_dir was not seen: {result.get("msg")}'
            strays = _processes_in(parent)
            assert not [cwd for cwd in strays.values() if cwd.endswith('(deleted)')], \
                f'a server runs in a deleted directory: {strays}'
            assert strays == {}, f'a server runs on data_dir\'s old content: {strays}'
            said = [line for line in (start.stderr + (old.log.read_text() if old.log.exists() else '')).splitlines()
                    if 'lock file' in line or 'PID file' in line]
            assert start.returncode != 0, 'pg_ctl start succeeded during the swap'
            assert said, start.stderr
            assert result.get('failed') is not True, result.get('msg')
            assert action_of(result) == 'replace', result['msg']
            assert old.system_identifier() == primary.system_identifier()
            assert leftovers(parent) == []
            case.note(f'pg_ctl start during the pending rename refused: {said[-1][:160]}')
            case.note(f"module: {result['msg'][:120]}")
        finally:
            for pid in _processes_in(parent):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
