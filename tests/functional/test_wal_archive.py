# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WAL archive helper (roles/wal_archive/files/wal-archive), run for real: its local mode
and its server side (the forced SSH command, given its request in SSH_ORIGINAL_COMMAND as sshd
does), then under real PostgreSQL clusters as archive_command, restore_command and
archive_cleanup_command. The SSH transport itself is proven by the Molecule scenario `archive`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, create_standby

SCRIPT = REPO / 'roles' / 'wal_archive' / 'files' / 'wal-archive'
SEG1 = '000000010000000000000001'
SEG2 = '000000010000000000000002'
SEG3 = '000000010000000000000003'
# The file the archive set-up (roles/wal_archive/tasks/archive_host.yml) writes into the archive
# directory: without it a local or mounted archive is taken for one that is not mounted.
MARKER = '.catmaid-wal-archive'
NOT_MOUNTED = 3          # wal-archive's exit code for "this is not the archive" (PostgreSQL: non-fatal)
GROUP_ARCHIVE = 'archive: WAL archive helper (tests/functional/test_wal_archive.py)'


def mark(root: Path) -> Path:
    """Write the archive's marker file, as the archive set-up does."""
    marker = root / MARKER
    marker.write_text('catmaid.replication WAL archive\n')
    return marker


def run(*argv: str, stdin: bytes = b'', env: dict[str, str] | None = None,
        user: str | None = None) -> subprocess.CompletedProcess:
    cmd = ['sh', str(SCRIPT), *argv]
    if user:
        cmd = ['runuser', '-u', user, '--', *cmd]
    return subprocess.run(cmd, input=stdin, capture_output=True, env=env, check=False)


def serve(archive: Path, client: str, ops: str, request: str, stdin: bytes = b''):
    env = dict(os.environ, SSH_ORIGINAL_COMMAND=request)
    return run('-d', str(archive), 'serve', client, ops, stdin=stdin, env=env)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive directory with two replica directories."""
    root = tmp_path / 'archive'
    for replica in ('replica1', 'replica2'):
        (root / replica).mkdir(parents=True)
    mark(root)
    return root


def segment(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / 'pg_wal' / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


def test_push_links_into_every_replica_directory_and_retries_are_idempotent(tmp_path, archive):
    data = os.urandom(64 * 1024)
    src = segment(tmp_path, SEG1, data)
    res = run('-d', str(archive), '-c', 'replica1', 'push', str(src), SEG1)
    assert res.returncode == 0, res.stderr
    one, two = archive / 'replica1' / SEG1, archive / 'replica2' / SEG1
    assert one.read_bytes() == data and two.read_bytes() == data
    assert one.stat().st_ino == two.stat().st_ino      # one copy on disk, a link per replica
    assert list((archive / '.incoming').iterdir()) == []
    # PostgreSQL retries a segment whose success it did not see: same content, success again.
    assert run('-d', str(archive), '-c', 'replica1', 'push', str(src), SEG1).returncode == 0
    # A replica added later gets the links of what is pushed from then on.
    (archive / 'replica3').mkdir()
    assert run('-d', str(archive), '-c', 'replica1', 'push', str(src), SEG1).returncode == 0
    assert (archive / 'replica3' / SEG1).read_bytes() == data


def test_push_never_overwrites_a_different_file_of_the_same_name(tmp_path, archive):
    original = b'A' * 4096
    assert run('-d', str(archive), '-c', 'x', 'push', str(segment(tmp_path, SEG1, original)), SEG1).returncode == 0
    res = run('-d', str(archive), '-c', 'x', 'push', str(segment(tmp_path, SEG1, b'B' * 4096)), SEG1)
    assert res.returncode == 1
    assert b'different content; not overwritten' in res.stderr
    assert (archive / 'replica1' / SEG1).read_bytes() == original
    assert (archive / 'replica2' / SEG1).read_bytes() == original
    assert list((archive / '.incoming').iterdir()) == []


def test_push_without_any_replica_directory_fails(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    mark(empty)
    res = run('-d', str(empty), '-c', 'x', 'push', str(segment(tmp_path, SEG1, b'x')), SEG1)
    assert res.returncode == 1
    assert b'no replica directory' in res.stderr


def test_served_push_stores_only_complete_files(archive):
    data = os.urandom(100_000)
    digest = hashlib.sha256(data).hexdigest()
    # The connection broke after half the file: the checksum does not match, nothing is stored.
    res = serve(archive, 'primary', 'push', f'push {SEG2} {digest}', stdin=data[:50_000])
    assert res.returncode == 1
    assert b'incomplete or damaged' in res.stderr
    assert not (archive / 'replica1' / SEG2).exists()
    assert list((archive / '.incoming').iterdir()) == []
    res = serve(archive, 'primary', 'push', f'push {SEG2} {digest}', stdin=data)
    assert res.returncode == 0, res.stderr
    assert (archive / 'replica2' / SEG2).read_bytes() == data


@pytest.mark.parametrize('request_line', [
    'fetch 000000010000000000000001',                    # the primary's key may only push
    'cleanup 000000010000000000000001',
    'push ../../etc/passwd ' + '0' * 64,                 # no path ever reaches the file system
    'push 000000010000000000000001 notasha',
    'rm -rf /',
    '',
])
def test_served_requests_outside_what_the_key_allows_are_refused(archive, request_line):
    res = serve(archive, 'primary', 'push', request_line, stdin=b'x')
    assert res.returncode == 1
    assert not (archive / 'replica1' / SEG1).exists()


def test_replica_keys_cannot_push(archive):
    res = serve(archive, 'replica1', 'fetch,cleanup', f'push {SEG1} {hashlib.sha256(b"x").hexdigest()}', stdin=b'x')
    assert res.returncode == 1
    assert b"'push' is not allowed for replica1" in res.stderr


def test_fetch_copies_whole_files_and_fails_cleanly_for_missing_ones(tmp_path, archive):
    data = os.urandom(10_000)
    run('-d', str(archive), '-c', 'x', 'push', str(segment(tmp_path, SEG1, data)), SEG1)
    target_dir = tmp_path / 'restore'
    target_dir.mkdir()
    target = target_dir / 'RECOVERYXLOG'
    res = run('-d', str(archive), '-c', 'replica1', 'fetch', SEG1, str(target))
    assert res.returncode == 0, res.stderr
    assert target.read_bytes() == data
    target.unlink()
    res = run('-d', str(archive), '-c', 'replica1', 'fetch', SEG2, str(target))
    assert res.returncode == 1
    assert res.stderr == b''                      # PostgreSQL asks for missing files all the time
    assert list(target_dir.iterdir()) == []       # no partial or temporary file left
    # The same through the server side, as the replica's forced command.
    res = serve(archive, 'replica2', 'fetch,cleanup', f'fetch {SEG1}')
    assert res.returncode == 0 and res.stdout == data
    assert serve(archive, 'replica2', 'fetch,cleanup', f'fetch {SEG2}').returncode == 1


def test_fetch_over_an_unreachable_archive_exits_1_not_255(tmp_path):
    """ssh exits with 255; PostgreSQL would take an exit code above 125 as fatal."""
    key = tmp_path / 'key'
    key.write_text('')
    key.chmod(0o600)
    target = tmp_path / 'RECOVERYXLOG'
    res = run('-r', 'nobody@127.0.0.1', '-p', '9', '-i', str(key), 'fetch', SEG1, str(target))
    assert res.returncode == 1
    assert list(tmp_path.iterdir()) == [key]
    src = segment(tmp_path, SEG1, b'x')
    res = run('-r', 'nobody@127.0.0.1', '-p', '9', '-i', str(key), 'push', str(src), SEG1)
    assert res.returncode == 1
    assert b'archiving 000000010000000000000001 on nobody@127.0.0.1 failed' in res.stderr


def test_cleanup_touches_only_the_calling_replicas_directory(tmp_path, archive):
    names = [SEG1, SEG2, SEG3, '000000020000000000000002.partial', '00000002.history',
             '000000010000000000000001.00000028.backup']
    for name in names:
        assert run('-d', str(archive), '-c', 'x', 'push', str(segment(tmp_path, name, name.encode())),
                   name).returncode == 0
    # replica1 restarted at SEG3: every segment before it goes from its directory (any timeline,
    # partial ones too), history files stay; replica2 still has everything.
    res = serve(archive, 'replica1', 'fetch,cleanup', f'cleanup {SEG3}')
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (archive / 'replica1').iterdir()) == sorted(
        [SEG3, '00000002.history', '000000010000000000000001.00000028.backup'])
    assert sorted(p.name for p in (archive / 'replica2').iterdir()) == sorted(names)
    # The local mode does the same for the client it names.
    assert run('-d', str(archive), '-c', 'replica2', 'cleanup', SEG2).returncode == 0
    assert not (archive / 'replica2' / SEG1).exists()
    assert (archive / 'replica2' / SEG2).exists()
    assert run('-d', str(archive), '-c', 'replica2', 'cleanup', '../x').returncode == 1


def wal_file(cluster, sql: str) -> str:
    return cluster.psql(f'SELECT pg_walfile_name({sql})')


def test_postgresql_archives_restores_and_cleans_up_through_the_helper(clusters, primary, tmp_path):
    """A primary archives with `push`; a standby that cannot stream (no primary_conninfo)
    replays everything from the archive with `fetch`, and its restartpoints prune only its own
    directory with `cleanup`."""
    archive = clusters.workdir / 'archive'
    for replica in ('standby', 'other'):
        (archive / replica).mkdir(parents=True)
    mark(archive)
    shutil.chown(archive, 'postgres', 'postgres')
    for d in archive.iterdir():
        shutil.chown(d, 'postgres', 'postgres')
    script = clusters.workdir / 'wal-archive'
    shutil.copy(SCRIPT, script)
    script.chmod(0o755)
    push = f"{script} -d {archive} -c primary push %p %f"
    primary.write_conf(archive_mode='on', archive_command=push)
    primary.stop()
    primary.start()
    primary.psql('CREATE TABLE t (id int PRIMARY KEY, v text)')
    standby = create_standby(clusters, primary, 'standby', start=False)
    # Only the archive: no streaming connection at all.
    auto = standby.data_dir / 'postgresql.auto.conf'
    auto.write_text('\n'.join(line for line in auto.read_text().splitlines()
                              if not line.startswith('primary_conninfo')) + '\n')
    standby.write_conf(
        restore_command=f'{script} -d {archive} -c standby fetch %f %p',
        archive_cleanup_command=f'{script} -d {archive} -c standby cleanup %r',
        archive_mode='on', archive_command=push)
    standby.start()
    for batch in range(6):
        primary.psql(f"INSERT INTO t SELECT g, md5(g::text) FROM generate_series({batch * 5000 + 1}, {(batch + 1) * 5000}) g")
        primary.psql('SELECT pg_switch_wal()')
    primary.psql('CHECKPOINT')                    # a restartpoint needs a checkpoint to replay
    primary.psql('SELECT pg_switch_wal()')
    # Everything before the current segment reaches the archive...
    deadline = time.monotonic() + 60
    while primary.psql('SELECT last_archived_wal FROM pg_stat_archiver') < wal_file(primary, 'pg_current_wal_lsn() - 1'):
        assert time.monotonic() < deadline, 'the primary did not archive in time'
        time.sleep(0.2)
    assert primary.psql('SELECT failed_count FROM pg_stat_archiver') == '0'
    # ...and the standby replays it from there.
    standby.wait_for('SELECT count(*), sum(hashtext(v)) FROM t',
                     primary.psql('SELECT count(*), sum(hashtext(v)) FROM t'), timeout=60)
    assert 'restored log file' in standby.log.read_text()
    # A restartpoint on the standby cleans up its own directory, not the other replica's.
    standby.wait_for("SELECT pg_last_wal_replay_lsn() >= '" + primary.psql('SELECT redo_lsn FROM pg_control_checkpoint()') + "'", 't')
    standby.psql('CHECKPOINT')
    restart = wal_file(primary, "'" + standby.psql('SELECT redo_lsn FROM pg_control_checkpoint()') + "'")
    own = sorted(p.name for p in (archive / 'standby').iterdir() if len(p.name) == 24)
    other = sorted(p.name for p in (archive / 'other').iterdir() if len(p.name) == 24)
    assert own, 'the cleanup removed the restart segment itself'
    assert all(name[8:] >= restart[8:] for name in own), (own, restart)
    assert other[0][8:] < own[0][8:] and set(own) <= set(other)
    assert list((archive / '.incoming').iterdir()) == []


def test_a_killed_push_leaves_no_temporary_file_for_ever(archive, report):
    """Issue 18 item 9: SIGKILL (or an sshd that never notices the client is gone) skips the
    script's trap, so its temporary file stays in .incoming; a later push removes it once it is
    old, and only files of the script's own temporary-name pattern."""
    with report.case(GROUP_ARCHIVE, 'a push killed part way leaves no temporary file behind for ever (issue 18 item 9)',
                     'a served push of a 1 MiB segment is killed with SIGKILL after half of it arrived; its temporary '
                     'file in .incoming, once older than an hour, is removed by the next push, while other files in '
                     '.incoming (other names, a recent temporary file of a push still running) stay') as c:
        incoming = archive / '.incoming'
        data = os.urandom(1 << 20)
        env = dict(os.environ, SSH_ORIGINAL_COMMAND=f'push {SEG1} {hashlib.sha256(data).hexdigest()}')
        proc = subprocess.Popen(['sh', str(SCRIPT), '-d', str(archive), 'serve', 'primary', 'push'],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        assert proc.stdin is not None
        proc.stdin.write(data[:len(data) // 2])
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while not any(p.stat().st_size >= len(data) // 2 for p in incoming.glob(f'{SEG1}.*')):
            assert time.monotonic() < deadline, 'the push never wrote half the segment'
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        left = sorted(incoming.iterdir())
        assert [p.name[:25] for p in left] == [SEG1 + '.'], left
        stale = left[0]
        c.note(f'after SIGKILL: .incoming holds {stale.name} ({stale.stat().st_size} bytes)')
        two_hours_ago = time.time() - 7200
        os.utime(stale, (two_hours_ago, two_hours_ago))
        others = [incoming / 'README', incoming / f'{SEG2}.x', incoming / f'{SEG3}.abc-ef']
        for other in others:
            other.write_bytes(b'not ours')
            os.utime(other, (two_hours_ago, two_hours_ago))
        running = incoming / f'{SEG3}.Ab12Cd'          # a push still receiving: recent
        running.write_bytes(b'half')
        res = run('-d', str(archive), '-c', 'replica1', 'push',
                  str(segment(archive.parent, SEG2, b'next')), SEG2)
        assert res.returncode == 0, res.stderr
        assert not stale.exists(), f'{stale.name} is still in .incoming after the next push'
        assert all(p.exists() for p in others + [running])
        assert (archive / 'replica1' / SEG2).read_bytes() == b'next'
        c.note(f'the next push removed it (two hours old); kept: {", ".join(p.name for p in others + [running])}')


def test_an_unmounted_shared_archive_fails_loudly_not_like_a_missing_file(tmp_path, report):
    """Issue 18 item 9: a shared archive directory that is not mounted (an empty mount point, or
    one with directories left on the root file system) has no marker: fetch, push and cleanup say
    so on stderr and exit 3, which PostgreSQL takes as a non-fatal restore failure."""
    with report.case(GROUP_ARCHIVE, 'an unmounted shared archive directory fails loudly (issue 18 item 9)',
                     f'-d DIR without DIR/{MARKER} (the archive set-up writes it): fetch, push and cleanup exit '
                     f'{NOT_MOUNTED} naming the marker, write nothing; with the marker a missing file is still a '
                     'silent exit 1') as c:
        mount_point = tmp_path / 'mnt' / 'wal-archive'
        (mount_point / 'replica1').mkdir(parents=True)
        target = tmp_path / 'RECOVERYXLOG'
        res = run('-d', str(mount_point), '-c', 'replica1', 'fetch', SEG1, str(target))
        c.note(f'fetch: exit {res.returncode}, stderr {res.stderr.decode().strip()!r}')
        assert res.returncode == NOT_MOUNTED
        assert f'{mount_point}/{MARKER}'.encode() in res.stderr and b'not mounted' in res.stderr
        assert not target.exists() and list(tmp_path.iterdir()) == [tmp_path / 'mnt']
        src = segment(tmp_path / 'mnt', SEG1, b'x')
        res = run('-d', str(mount_point), '-c', 'primary', 'push', str(src), SEG1)
        assert res.returncode == NOT_MOUNTED and b'not mounted' in res.stderr
        assert not (mount_point / 'replica1' / SEG1).exists() and not (mount_point / '.incoming').exists()
        res = run('-d', str(mount_point), '-c', 'replica1', 'cleanup', SEG1)
        assert res.returncode == NOT_MOUNTED and b'not mounted' in res.stderr
        c.note(f'push and cleanup: exit {NOT_MOUNTED}, nothing written')
        mark(mount_point)
        res = run('-d', str(mount_point), '-c', 'replica1', 'fetch', SEG1, str(target))
        assert res.returncode == 1 and res.stderr == b''
        c.note('with the marker: a file not archived is exit 1, silent, as PostgreSQL expects')


def test_a_standby_whose_archive_is_not_mounted_streams_and_logs_why(clusters, primary, report):
    """The exit code for an unmounted archive must not stop recovery (PostgreSQL aborts on exit
    codes above 125): a streaming standby keeps replaying, and its log names the cause."""
    with report.case(GROUP_ARCHIVE, 'a standby whose shared archive is not mounted keeps streaming and logs why '
                     '(issue 18 item 9)',
                     'PostgreSQL 15 standby with restore_command = wal-archive fetch on a directory without the '
                     'marker: starts, streams, replays a new row; its log has the wal-archive message') as c:
        mount_point = clusters.workdir / 'mnt' / 'wal-archive'
        (mount_point / 'standby').mkdir(parents=True)
        for d in (mount_point.parent, mount_point, mount_point / 'standby'):
            shutil.chown(d, 'postgres', 'postgres')
        script = clusters.workdir / 'wal-archive'
        shutil.copy(SCRIPT, script)
        script.chmod(0o755)
        standby = create_standby(clusters, primary, 'standby', start=False)
        standby.write_conf(restore_command=f'{script} -d {mount_point} -c standby fetch %f %p')
        standby.start()
        primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (42)')
        standby.wait_for('SELECT id FROM t', '42')
        standby.wait_for('SELECT status FROM pg_stat_wal_receiver', 'streaming')
        log = standby.log.read_text()
        lines = [line for line in log.splitlines() if 'wal-archive:' in line]
        c.note(f'standby streams and replayed the row; log: {lines[0] if lines else "(no wal-archive line)"}')
        assert lines and f'{mount_point}/{MARKER}' in lines[0], log[-2000:]
        assert 'FATAL' not in log
