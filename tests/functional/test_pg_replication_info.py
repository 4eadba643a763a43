# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catmaid.replication.pg_replication_info against a real primary and a real streaming standby."""

from __future__ import annotations

import time
from typing import Any

import pytest

MODULE = 'catmaid.replication.pg_replication_info'
Cluster = Any  # the fixtures' cluster objects (tests/functional/conftest.py)


def info(run_module, cluster: Cluster, **args: Any) -> dict[str, Any]:
    return run_module(MODULE, dict(cluster.connection_args(), **args))


def info_ok(run_module, cluster: Cluster, **args: Any) -> dict[str, Any]:
    result = info(run_module, cluster, **args)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert result['problems'] == []
    return result


def by_name(entries: list[dict[str, Any]], key: str, name: str) -> dict[str, Any]:
    found = [e for e in entries if e[key] == name]
    assert len(found) == 1, entries
    return found[0]


def wait_until(predicate, timeout: float = 30, what: str = 'condition') -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f'{what} not reached within {timeout}s')


def streaming(primary: Cluster, name: str) -> None:
    primary.wait_for(f"SELECT state FROM pg_stat_replication WHERE application_name = '{name}'", 'streaming')


def caught_up(primary: Cluster, name: str) -> None:
    """Wait until the standby has flushed everything the primary wrote."""
    primary.wait_for("SELECT count(*) FROM pg_stat_replication WHERE application_name = "
                     f"'{name}' AND flush_lsn = pg_current_wal_lsn()", '1')


@pytest.fixture
def pair(primary, make_standby):
    """A primary with one standby 'replica1' streaming over SSL through slot 'replica1'."""
    standby = make_standby(primary, 'replica1', slot='replica1')
    streaming(primary, 'replica1')
    return primary, standby


# -- status ---------------------------------------------------------------------------------
def test_primary_reports_standby_streaming_over_ssl_and_its_slot(pair, run_module):
    primary, _standby = pair
    primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1)')
    caught_up(primary, 'replica1')
    result = info_ok(run_module, primary)
    assert result['role'] == 'primary' and result['in_recovery'] is False
    assert result['server_version_num'] // 10000 == primary.major
    assert result['server_version'].startswith(f'{primary.major}.')
    assert result['wal_receiver'] is None and result['replay'] is None

    replica = by_name(result['replicas'], 'application_name', 'replica1')
    assert replica['state'] == 'streaming'
    assert replica['sync_state'] == 'async'
    assert replica['ssl'] is True and replica['ssl_version'].startswith('TLS')
    assert replica['client_addr'] == '127.0.0.1'
    assert replica['usename'] == 'replicator'
    for key in ('sent_lsn', 'write_lsn', 'flush_lsn', 'replay_lsn'):
        assert '/' in replica[key], (key, replica)
    assert isinstance(replica['lag_bytes'], int) and replica['lag_bytes'] >= 0
    assert replica['lag_seconds'] is None or isinstance(replica['lag_seconds'], float)

    slot = by_name(result['slots'], 'slot_name', 'replica1')
    assert slot['slot_type'] == 'physical' and slot['active'] is True
    assert slot['active_pid'] == replica['pid']
    if primary.major >= 13:
        assert slot['wal_status'] == 'reserved'
    assert isinstance(slot['retained_bytes'], int)

    archiver = result['archiver']
    assert archiver['archive_mode'] == 'off'
    assert archiver['failed_count'] == 0 and archiver['last_failed_wal'] is None
    assert any('pg_stat_replication' in q for q in result['queries'])


def test_standby_reports_streaming_receiver_and_sender_port(pair, run_module):
    primary, standby = pair
    primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1)')
    caught_up(primary, 'replica1')
    standby.wait_for('SELECT count(*) FROM t', '1')
    result = info_ok(run_module, standby, expect_streaming=True, max_lag_bytes=16 * 1024 * 1024)
    assert result['role'] == 'standby' and result['in_recovery'] is True
    receiver = result['wal_receiver']
    assert receiver['status'] == 'streaming'
    assert receiver['sender_host'] == '127.0.0.1'
    assert receiver['sender_port'] == primary.port
    assert receiver['slot_name'] == 'replica1'
    assert '/' in receiver['flushed_lsn']
    replay = result['replay']
    assert replay['paused'] is False and replay['pause_state'] == 'not paused'
    assert replay['replayed_lsn'] and replay['received_lsn']
    assert replay['lag_bytes'] is not None and replay['lag_bytes'] >= 0
    assert replay['last_replay_time'] is not None
    assert result['replicas'] == [] and result['slots'] == []


def test_check_mode_reads_the_same(pair, run_module):
    primary, _standby = pair
    result = run_module(MODULE, dict(primary.connection_args(), expect_streaming=['replica1']), check=True)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert [r['application_name'] for r in result['replicas']] == ['replica1']


# -- thresholds -----------------------------------------------------------------------------
def test_expect_streaming_names_the_missing_replica(pair, run_module):
    primary, _standby = pair
    info_ok(run_module, primary, expect_streaming=['replica1'])
    result = info(run_module, primary, expect_streaming=['replica1', 'replica3'])
    assert result.get('failed') is True
    assert result['msg'] == 'replica3: not connected'
    assert result['problems'] == ['replica3: not connected']
    assert result['changed'] is False
    # The status still comes back with the failure.
    assert by_name(result['replicas'], 'application_name', 'replica1')['state'] == 'streaming'
    assert result['role'] == 'primary'


def test_expect_streaming_true_fails_on_a_primary(primary, run_module):
    result = info(run_module, primary, expect_streaming=True)
    assert result.get('failed') is True
    assert 'not in recovery' in result['msg']
    assert result['replicas'] == []


def test_max_lag_with_replay_paused(pair, run_module):
    primary, standby = pair
    primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1)')
    standby.wait_for('SELECT count(*) FROM t', '1')
    standby.psql('SELECT pg_wal_replay_pause()')
    standby.wait_for('SELECT pg_is_wal_replay_paused()', 't')
    time.sleep(1.2)  # the last replayed commit gets older than max_lag_seconds below
    primary.psql('INSERT INTO t SELECT generate_series(2, 5000)')
    caught_up(primary, 'replica1')  # received and flushed, not replayed

    result = info(run_module, primary, max_lag_bytes=0)
    assert result.get('failed') is True, result
    replica = by_name(result['replicas'], 'application_name', 'replica1')
    lag = replica['lag_bytes']
    assert lag > 0
    assert result['msg'] == f'replica1: replay lag {lag} bytes > 0'
    assert result['changed'] is False

    # A limit above the lag passes.
    info_ok(run_module, primary, max_lag_bytes=lag + 16 * 1024 * 1024, expect_streaming=['replica1'])

    # The standby sees the same lag from its side.
    result = info(run_module, standby, max_lag_bytes=0, max_lag_seconds=0.5)
    assert result.get('failed') is True, result
    replay = result['replay']
    assert replay['paused'] is True and replay['pause_state'] == 'paused'
    assert replay['lag_bytes'] > 0 and replay['lag_seconds'] >= 1.0
    assert result['problems'] == [f"standby: replay lag {replay['lag_bytes']} bytes > 0",
                                  f"standby: replay lag {round(replay['lag_seconds'], 3):g} s > 0.5 s"]
    assert result['msg'] == '; '.join(result['problems'])

    # Resumed, the standby catches up and the same checks pass.
    standby.psql('SELECT pg_wal_replay_resume()')
    standby.wait_for('SELECT count(*) FROM t', '5000')
    results: list[dict[str, Any]] = []
    wait_until(lambda: not results.append(info(run_module, standby, max_lag_bytes=0, max_lag_seconds=0.5))
               and not results[-1].get('failed'), what='standby replay lag 0')
    assert results[-1]['replay']['lag_bytes'] == 0 and results[-1]['replay']['lag_seconds'] == 0.0
    assert results[-1]['replay']['paused'] is False


def test_slot_retains_more_wal_while_the_standby_is_stopped(pair, run_module):
    primary, standby = pair
    caught_up(primary, 'replica1')
    before = by_name(info_ok(run_module, primary)['slots'], 'slot_name', 'replica1')
    standby.stop()
    primary.wait_for("SELECT active FROM pg_replication_slots WHERE slot_name = 'replica1'", 'f')
    primary.psql('CREATE TABLE filler AS SELECT g AS id, repeat(\'x\', 100) AS pad FROM generate_series(1, 20000) g')
    primary.psql('SELECT pg_switch_wal()')

    result = info(run_module, primary, expect_streaming=['replica1'])
    assert result.get('failed') is True and result['msg'] == 'replica1: not connected'
    assert result['replicas'] == []
    after = by_name(result['slots'], 'slot_name', 'replica1')
    assert after['active'] is False and after['active_pid'] is None
    assert after['restart_lsn'] == before['restart_lsn']
    assert after['retained_bytes'] > before['retained_bytes'] + 1024 * 1024
    if primary.major >= 13:
        assert after['wal_status'] in ('reserved', 'extended')

    # Back online, the standby streams again and releases the WAL.
    standby.start()
    streaming(primary, 'replica1')
    caught_up(primary, 'replica1')
    wait_until(lambda: by_name(info_ok(run_module, primary)['slots'], 'slot_name', 'replica1')['retained_bytes']
               < after['retained_bytes'], what='slot advancing')


@pytest.mark.parametrize('args, message', [
    (dict(max_lag_bytes=-1), 'max_lag_bytes must not be negative'),
    (dict(expect_streaming=[1]), 'application names must be strings'),
    (dict(expect_streaming={'a': 1}), 'expect_streaming must be a list'),
])
def test_bad_thresholds_fail_before_connecting(run_module, args, message):
    # Nothing listens on this socket: the argument checks come first.
    result = run_module(MODULE, dict(login_unix_socket='/nonexistent', login_port=1, **args))
    assert result.get('failed') is True
    assert message in result['msg']


def test_pg_monitor_role_over_tcp_with_password(pair, run_module):
    """A monitoring role (pg_monitor, no superuser) over SSL with a password sees everything;
    the password appears nowhere in the result."""
    primary, _standby = pair
    secret = 'Monitor-Secret-7f3a'
    primary.psql(f"CREATE ROLE monitor LOGIN PASSWORD '{secret}' IN ROLE pg_monitor")
    result = run_module(MODULE, dict(login_host='127.0.0.1', login_port=primary.port, login_user='monitor',
                                     login_password=secret, expect_streaming=['replica1'], max_lag_bytes=2 ** 30),
                        become_user=None)
    assert not result.get('failed'), result.get('msg')
    replica = by_name(result['replicas'], 'application_name', 'replica1')
    assert replica['state'] == 'streaming' and replica['ssl'] is True and replica['lag_bytes'] is not None
    assert by_name(result['slots'], 'slot_name', 'replica1')['active'] is True
    assert secret not in result['_stdout'] and secret not in result['_stderr']


# -- issue 14 item 7: unknown is never healthy ----------------------------------------------------
GROUP_INFO = 'wrong answers: pg_replication_info (tests/functional/test_pg_replication_info.py)'


def test_without_pg_monitor_thresholds_fail_and_name_the_privilege(pair, run_module, report):
    primary, _standby = pair
    with report.case(GROUP_INFO, 'a login without pg_monitor cannot see the lags (issue 14 item 7)',
                     'max_lag_bytes checked by a role without pg_monitor / pg_read_all_stats, which sees the '
                     'standby\'s lag as NULL: the module fails naming the missing privilege. On the parent '
                     'commit the NULL lag passed every threshold and the check reported healthy') as case:
        primary.psql("CREATE ROLE watcher LOGIN PASSWORD 'watch-secret'")
        args = dict(login_host='127.0.0.1', login_port=primary.port, login_user='watcher',
                    login_password='watch-secret', max_lag_bytes=1024)
        res = run_module(MODULE, args)
        assert res.get('failed') is True, res.get('problems')
        assert 'pg_monitor' in res['msg'] and 'unknown' in res['msg'], res['msg']
        assert res['read_all_stats'] is False
        case.note(f"failed: {res['msg'][:200]}")
        primary.psql('GRANT pg_monitor TO watcher')
        ok = run_module(MODULE, args)
        assert not ok.get('failed'), ok.get('msg')
        assert ok['read_all_stats'] is True
        case.note('with pg_monitor granted: passes')


def test_disconnected_standby_lag_is_unknown_not_zero(pair, run_module, report):
    primary, standby = pair
    with report.case(GROUP_INFO, 'a standby cut off from its primary (issue 14 item 7)',
                     'the primary is stopped; max_lag_bytes / max_lag_seconds checked on the standby: its '
                     'lag is reported unknown (null) and the module fails saying no WAL receiver streams. '
                     'On the parent commit it reported 0 bytes and 0 s of lag and passed') as case:
        primary.stop()
        wait_until(lambda: standby.psql('SELECT count(*) FROM pg_stat_wal_receiver WHERE status = '
                                        "'streaming'") == '0', what='WAL receiver gone')
        res = info(run_module, standby, max_lag_bytes=1024, max_lag_seconds=60)
        assert res.get('failed') is True, res.get('replay')
        assert res['replay']['lag_bytes'] is None and res['replay']['lag_seconds'] is None
        assert 'unknown' in res['msg'] and 'WAL receiver' in res['msg'], res['msg']
        case.note(f"failed: {res['msg'][:200]}")


def test_empty_login_password_is_refused(primary, run_module, report):
    import os
    import pwd
    from pathlib import Path
    with report.case('bad input: connection options (tests/functional/test_pg_replication_info.py)',
                     'an empty login_password (issue 14 item 8)',
                     'login_password="" over TCP while the postgres user\'s ~/.pgpass holds a working password: '
                     'the module fails saying the password is empty. On the parent commit the empty password was '
                     'dropped and libpq silently logged in with ~/.pgpass') as case:
        primary.psql("CREATE ROLE watcher2 LOGIN PASSWORD 'watch2-secret'; GRANT pg_monitor TO watcher2")
        entry = pwd.getpwnam('postgres')
        pgpass = Path(entry.pw_dir) / '.pgpass'
        saved = pgpass.read_bytes() if pgpass.exists() else None
        fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, 'a') as handle:
            handle.write(f'127.0.0.1:{primary.port}:*:watcher2:watch2-secret\n')
        os.chown(pgpass, entry.pw_uid, entry.pw_gid)
        try:
            res = run_module(MODULE, dict(login_host='127.0.0.1', login_port=primary.port, login_user='watcher2',
                                          login_password=''))
        finally:
            if saved is None:
                pgpass.unlink()
            else:
                pgpass.write_bytes(saved)
        assert res.get('failed') is True, res.get('role')
        assert 'login_password' in res['msg'] and 'empty' in res['msg'], res['msg']
        case.note(f"refused: {res['msg'][:160]}")


def test_standby_gone_from_its_slot_fails_the_lag_limit(pair, run_module, report):
    primary, standby = pair
    with report.case(GROUP_INFO, 'a standby that disconnected from the primary (issue 14 item 7)',
                     'the standby behind slot replica1 is stopped; max_lag_bytes checked on the primary: the '
                     'module fails naming the slot with no standby, whose lag is unknown. On the parent commit '
                     'the standby simply vanished from pg_stat_replication and the check passed') as case:
        standby.stop()
        wait_until(lambda: primary.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'replica1'")
                   == 'f', what='slot inactive')
        res = info(run_module, primary, max_lag_bytes=10 ** 9)
        assert res.get('failed') is True, res.get('replicas')
        assert 'replica1' in res['msg'] and 'unknown' in res['msg'], res['msg']
        case.note(f"failed: {res['msg'][:200]}")


# -- issue 18 item 6: a status that cannot vouch must not pass -------------------------------------
def test_failing_archiver_fails_expect_archiving_until_it_recovers(clusters, run_module, report):
    with report.case(GROUP_INFO, 'an archive_command that keeps failing (issue 18 item 6)',
                     'archive_mode on with archive_command /bin/false, a WAL switch: the archiver counts failures and '
                     'archiver.failing is true; expect_archiving fails naming the WAL file and the last success; '
                     'every other check passes. With a working archive_command the next success clears it') as case:
        primary = clusters('primary', archive_mode='on', archive_command='/bin/false')
        primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()')
        wait_until(lambda: int(primary.psql('SELECT failed_count FROM pg_stat_archiver')) > 0, what='archive failure')
        # The harm: with the checks there were, the primary passes.
        info_ok(run_module, primary, max_lag_bytes=0, max_lag_seconds=0)
        res = info(run_module, primary, expect_archiving=True)
        assert res.get('failed') is True, res['archiver']
        assert res['archiver']['failing'] is True
        wal = res['archiver']['last_failed_wal']
        assert res['problems'] == [res['msg']] and res['msg'].startswith('primary: WAL archiver still failing: ')
        assert f'the last for {wal} at ' in res['msg'] and 'nothing archived since' in res['msg'], res['msg']
        case.note(f"failed: {res['msg'][:230]}")

        primary.write_conf(archive_mode='on', archive_command='/bin/true')
        primary.psql('SELECT pg_reload_conf()')
        primary.psql('INSERT INTO t VALUES (2); SELECT pg_switch_wal()')
        wait_until(lambda: primary.psql('SELECT last_archived_time > last_failed_time FROM pg_stat_archiver') == 't',
                   what='archiving recovered')
        ok = info_ok(run_module, primary, expect_archiving=True)
        assert ok['archiver']['failing'] is False and ok['archiver']['failed_count'] > 0
        case.note(f"after a success ({ok['archiver']['last_archived_wal']}): passes, failed_count "
                  f"{ok['archiver']['failed_count']} kept")


def test_paused_replay_fails_expect_replaying_while_the_receiver_streams(pair, run_module, report):
    primary, standby = pair
    with report.case(GROUP_INFO, 'a standby whose replay is paused while it streams (issue 18 item 6)',
                     'pg_wal_replay_pause() on an idle pair: the standby streams with 0 bytes of lag, so '
                     'expect_streaming and max_lag_bytes pass; expect_replaying fails saying replay is paused, '
                     'and passes again after pg_wal_replay_resume()') as case:
        caught_up(primary, 'replica1')
        standby.psql('SELECT pg_wal_replay_pause()')
        standby.wait_for('SELECT pg_is_wal_replay_paused()', 't')
        passed = info_ok(run_module, standby, expect_streaming=True, max_lag_bytes=0)
        assert passed['replay']['paused'] is True
        res = info(run_module, standby, expect_streaming=True, max_lag_bytes=0, expect_replaying=True)
        assert res.get('failed') is True, res['replay']
        assert res['problems'] == ['standby: replay paused (paused): WAL is received but not applied, so reads '
                                   'fall behind; resume with pg_wal_replay_resume()'], res['problems']
        case.note(f"failed: {res['msg']}")
        # A primary has no replay: the same option checks nothing there.
        info_ok(run_module, primary, expect_replaying=True)
        standby.psql('SELECT pg_wal_replay_resume()')
        standby.wait_for('SELECT pg_is_wal_replay_paused()', 'f')
        info_ok(run_module, standby, expect_streaming=True, expect_replaying=True)
        case.note('resumed: passes')


# -- second review F5: an archiver that never reports a failure -------------------------------------
def test_hanging_archive_command_fails_expect_archiving_on_waiting_wal(clusters, run_module, report):
    with report.case(GROUP_INFO, 'an archive_command that hangs (second review F5)',
                     'archive_mode on with archive_command "sleep 60", a WAL switch: pg_stat_archiver counts no '
                     'failure, so archiver.failing is false, but the segment waits in pg_wal/archive_status as .ready; '
                     'expect_archiving with max_archive_ready_seconds 1 fails naming the waiting WAL and its age. '
                     'On the parent commit expect_archiving passed (the option did not exist; the default is 600 s)'
                     ) as case:
        primary = clusters('primary', archive_mode='on', archive_command='sleep 60')
        primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()')
        wait_until(lambda: primary.psql("SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') f "
                                        "WHERE f LIKE '%.ready'") != '0', what='a .ready file')
        time.sleep(2.5)
        # The harm: nothing reports a failure.
        assert primary.psql('SELECT failed_count FROM pg_stat_archiver') == '0'
        passed = info_ok(run_module, primary, expect_archiving=True)     # 600 s default: not yet
        assert passed['archiver']['failing'] is False
        res = info(run_module, primary, expect_archiving=True, max_archive_ready_seconds=1)
        assert res.get('failed') is True, res.get('msg')
        assert res['archiver']['ready_count'] >= 1 and res['archiver']['oldest_ready_seconds'] > 1, res['archiver']
        wal = res['archiver']['oldest_ready_wal']
        assert res['problems'] == [res['msg']], res['problems']
        assert res['msg'].startswith('primary: ') and 'waiting to be archived' in res['msg'] and wal in res['msg'], \
            res['msg']
        case.note(f"failed: {res['msg'][:230]}")
        # Without the privilege to see pg_wal/archive_status the backlog is unknown, which is never healthy.
        primary.psql("CREATE ROLE watcher3 LOGIN PASSWORD 'watch3-secret'")
        args = dict(login_host='127.0.0.1', login_port=primary.port, login_user='watcher3',
                    login_password='watch3-secret', expect_archiving=True)
        hidden = run_module(MODULE, args)
        assert hidden.get('failed') is True and 'archive_status' in hidden['msg'] and 'unknown' in hidden['msg'], \
            hidden.get('msg')
        case.note(f"without pg_monitor: {hidden['msg'][:160]}")


# -- second review F2 and F3: what strict status.yml makes of the check's result ----------------------
def status_reasons(workdir, cluster: Cluster, **args: Any) -> tuple[dict[str, Any], list[str], list[str]]:
    """Run the check task of playbooks/status.yml as it is written there (failed_when: false, register
    __status_check) against ``cluster`` on localhost, then status.yml's own __status_reasons and
    __status_archiver: returns the registered result, the reasons and the archiver lines."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    import yaml
    repo = Path(__file__).resolve().parents[2]
    play_vars = yaml.safe_load((repo / 'playbooks' / 'status.yml').read_text())[0]['vars']
    run_dir = Path(tempfile.mkdtemp(prefix='status-', dir=workdir))
    run_dir.chmod(0o755)
    out = run_dir / 'out.json'
    check = dict(cluster.connection_args(), expect_archiving=True, expect_replaying=True, **args)
    play = [{'hosts': 'localhost', 'gather_facts': False,
             'vars': dict(__cr_nodes=['localhost'], __status_reasons=play_vars['__status_reasons'],
                          __status_archiver=play_vars['__status_archiver']),
             'tasks': [
                 {'name': 'Check', MODULE: check, 'become': True, 'become_user': 'postgres',
                  'become_method': 'ansible.builtin.su', 'register': '__status_check', 'failed_when': False},
                 {'name': 'Read', 'ansible.builtin.set_fact': {'__cr_node_info': '{{ __status_check }}'}},
                 {'name': 'Render', 'ansible.builtin.copy': {
                     'content': "{{ {'check': __status_check, 'reasons': __status_reasons, "
                                "'archiver': __status_archiver} | to_json }}", 'dest': str(out)}}]}]
    (run_dir / 'play.yml').write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               ANSIBLE_REMOTE_TMP=str(run_dir / 'remote-tmp'), ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3',
               ANSIBLE_COLLECTIONS_PATH=str(repo / 'build' / 'collections'), ANSIBLE_NOCOLOR='1')
    res = subprocess.run([str(Path(os.environ.get('VIRTUAL_ENV', repo / '.venv')) / 'bin' / 'ansible-playbook'),
                          '-i', 'localhost,', '-c', 'local', str(run_dir / 'play.yml')],
                         capture_output=True, text=True, env=env, cwd=run_dir, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(out.read_text())
    return data['check'], data['reasons'], data['archiver']


def test_strict_status_names_a_check_that_failed_before_evaluating(primary, workdir, report):
    with report.case(GROUP_INFO, 'strict status when the check itself fails (second review F2)',
                     "status.yml's check task (failed_when: false) with max_lag_bytes -1 against a real primary: the "
                     'module fails with no problems; status.yml\'s reasons name the node and quote "must not be '
                     'negative". On the parent commit the reasons were empty and strict status passed') as case:
        check, reasons, _archiver = status_reasons(workdir, primary, max_lag_bytes=-1)
        assert 'problems' not in check and 'must not be negative' in check['msg'], check
        assert len(reasons) == 1 and reasons[0].startswith('localhost: '), reasons
        assert 'max_lag_bytes must not be negative, got -1' in reasons[0] and 'never healthy' in reasons[0], reasons
        case.note(f'reason: {reasons[0][:200]}')
        primary.stop()
        check, reasons, _archiver = status_reasons(workdir, primary, max_lag_bytes=1024)
        assert 'problems' not in check and len(reasons) == 1, (check, reasons)
        case.note(f'server stopped, reason: {reasons[0][:200]}')


def test_archiver_times_in_a_summer_time_zone(clusters, workdir, report):
    with report.case(GROUP_INFO, "the archiver's times in the session's TimeZone Europe/Berlin (second review F3)",
                     'timezone Europe/Berlin, archive_command /bin/false then /bin/true: the module returns the times '
                     "with Berlin's offset and compares them as instants (the case across a change of summer time, "
                     'which a test cannot wait for, is tests/unit/plugins/module_utils/test_lag.py::'
                     "test_archiver_failing_compares_instants_with_offsets, failing on the parent commit); status.yml's "
                     'archiver line follows archiver.failing') as case:
        primary = clusters('primary', archive_mode='on', archive_command='/bin/false', timezone='Europe/Berlin')
        primary.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()')
        wait_until(lambda: int(primary.psql('SELECT failed_count FROM pg_stat_archiver')) > 0, what='archive failure')
        check, reasons, lines = status_reasons(workdir, primary)
        assert check['archiver']['failing'] is True
        assert check['archiver']['last_failed_time'][-6:] in ('+01:00', '+02:00'), check['archiver']
        assert len(lines) == 1 and 'STILL FAILING' in lines[0], lines
        assert any('WAL archiver still failing' in r for r in reasons), reasons
        case.note(f'failing: {lines[0][:200]}')
        primary.write_conf(archive_mode='on', archive_command='/bin/true', timezone='Europe/Berlin')
        primary.psql('SELECT pg_reload_conf()')
        primary.psql('INSERT INTO t VALUES (2); SELECT pg_switch_wal()')
        wait_until(lambda: primary.psql('SELECT last_archived_time > last_failed_time FROM pg_stat_archiver') == 't',
                   what='archiving recovered')
        check, reasons, lines = status_reasons(workdir, primary)
        assert check['archiver']['failing'] is False and 'recovered since' in lines[0] and reasons == [], (lines, reasons)
        case.note(f'recovered: {lines[0][:200]}')
