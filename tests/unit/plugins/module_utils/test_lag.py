# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the replication status logic: SQL per major, LSNs, thresholds (no I/O)."""

from __future__ import annotations

import datetime
import decimal
import re

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils._lag import (
    archive_ready_query, archiver_failing, evaluate, int_to_lsn, jsonable, lsn_diff, lsn_to_int, normalize_expect_streaming,
    replica_name, standby_replay, status_queries)

MAJORS = list(range(11, 19))

# Columns of the views whose shape changed between majors (PostgreSQL's documentation).
_RECEIVER_10 = {'pid', 'status', 'receive_start_lsn', 'receive_start_tli', 'received_lsn', 'received_tli',
                'last_msg_send_time', 'last_msg_receipt_time', 'latest_end_lsn', 'latest_end_time',
                'slot_name', 'conninfo'}
_SLOTS_10 = {'slot_name', 'plugin', 'slot_type', 'datoid', 'database', 'temporary', 'active', 'active_pid',
             'xmin', 'catalog_xmin', 'restart_lsn', 'confirmed_flush_lsn'}
_REPLICATION_10 = {'pid', 'usesysid', 'usename', 'application_name', 'client_addr', 'client_hostname',
                   'client_port', 'backend_start', 'backend_xmin', 'state', 'sent_lsn', 'write_lsn',
                   'flush_lsn', 'replay_lsn', 'write_lag', 'flush_lag', 'replay_lag', 'sync_priority',
                   'sync_state'}


def receiver_columns(major: int) -> set[str]:
    cols = set(_RECEIVER_10)
    if major >= 11:
        cols |= {'sender_host', 'sender_port'}
    if major >= 13:
        cols = (cols - {'received_lsn'}) | {'written_lsn', 'flushed_lsn'}
    return cols


def slot_columns(major: int) -> set[str]:
    cols = set(_SLOTS_10)
    if major >= 13:
        cols |= {'wal_status', 'safe_wal_size'}
    if major >= 14:
        cols |= {'two_phase'}
    if major >= 16:
        cols |= {'conflicting'}
    if major >= 17:
        cols |= {'inactive_since', 'invalidation_reason', 'failover', 'synced'}
    return cols


def replication_columns(major: int) -> set[str]:
    return _REPLICATION_10 | ({'reply_time'} if major >= 12 else set())


def referenced(sql: str) -> set[str]:
    """Identifiers a query reads (aliases after AS removed)."""
    return set(re.findall(r'[a-z_]+', re.sub(r'\bAS\s+\w+', '', sql)))


def missing(sql: str, columns_of, major: int) -> set[str]:
    """Columns of some major that the query reads but this major lacks."""
    every = set().union(*(columns_of(m) for m in range(10, 19)))
    return (referenced(sql) & every) - columns_of(major)


# -- SQL per major ---------------------------------------------------------------------------
@pytest.mark.parametrize('major', [10] + MAJORS + [19])
@pytest.mark.parametrize('in_recovery', [False, True])
def test_queries_read_only_columns_the_major_has(major, in_recovery):
    queries = status_queries(major * 10000 + 3, in_recovery)
    known = min(major, 18)
    assert not missing(queries['replicas'], replication_columns, known)
    assert not missing(queries['slots'], slot_columns, known)
    if in_recovery:
        assert not missing(queries['wal_receiver'], receiver_columns, known)
        assert set(queries) == {'replicas', 'slots', 'archiver', 'wal_receiver', 'replay'}
    else:
        assert set(queries) == {'replicas', 'slots', 'archiver'}


@pytest.mark.parametrize('major', MAJORS)
def test_wal_receiver_lsn_columns_per_major(major):
    sql = status_queries(major * 10000, True)['wal_receiver']
    if major <= 12:
        assert 'received_lsn::text AS flushed_lsn' in sql
        assert 'NULL::text AS written_lsn' in sql
    else:
        assert 'flushed_lsn::text AS flushed_lsn' in sql
        assert 'written_lsn::text AS written_lsn' in sql
        assert 'received_lsn' not in sql
    assert 'sender_host, sender_port' in sql
    assert 'conninfo' not in sql   # may carry connection details; never returned


@pytest.mark.parametrize('major', MAJORS)
def test_slot_wal_status_only_from_13(major):
    sql = status_queries(major * 10000, False)['slots']
    if major >= 13:
        assert 'wal_status, ' in sql and 'safe_wal_size::bigint AS safe_wal_size' in sql
    else:
        assert 'NULL::text AS wal_status' in sql and 'NULL::bigint AS safe_wal_size' in sql


@pytest.mark.parametrize('major', MAJORS)
def test_version_specific_functions(major):
    standby = status_queries(major * 10000, True)
    primary = status_queries(major * 10000, False)
    assert ('pg_get_wal_replay_pause_state()' in standby['replay']) == (major >= 14)
    assert ('r.reply_time' in primary['replicas']) == (major >= 12)
    assert 'NULL::text AS sender_host' in status_queries(100000, True)['wal_receiver']


def test_lag_reference_point_per_role():
    primary = status_queries(150000, False)
    standby = status_queries(150000, True)
    for key in ('replicas', 'slots'):
        assert 'pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), ' in primary[key]
        assert 'pg_current_wal_lsn' not in standby[key]   # errors during recovery
        assert 'pg_last_wal_receive_lsn()' in standby[key]
    assert 'pg_stat_ssl s ON s.pid = r.pid' in primary['replicas']
    assert 'replay_lag' in primary['replicas']


@pytest.mark.parametrize('bad', [90624, 0, None, '150000', True])
def test_queries_refuse_unsupported_versions(bad):
    with pytest.raises(ValueError):
        status_queries(bad, False)


# -- LSNs ------------------------------------------------------------------------------------
@pytest.mark.parametrize('text, value', [
    ('0/0', 0), ('0/3000148', 0x3000148), ('16/B374D848', (0x16 << 32) | 0xB374D848),
    ('FFFFFFFF/FFFFFFFF', 2 ** 64 - 1),
])
def test_lsn_round_trip(text, value):
    assert lsn_to_int(text) == value
    assert int_to_lsn(value) == text
    assert lsn_to_int(text.lower()) == value


@pytest.mark.parametrize('bad', ['', '0', '0/0/0', 'x/1', '1FFFFFFFF/0', 5])
def test_lsn_rejects_garbage(bad):
    with pytest.raises(ValueError):
        lsn_to_int(bad)


def test_lsn_diff():
    assert lsn_to_int(None) is None
    assert lsn_diff('1/0', '0/FFFFFF00') == 0x100
    assert lsn_diff('0/10', '0/20') == 0         # never negative
    assert lsn_diff(None, '0/20') is None and lsn_diff('0/20', None) is None
    with pytest.raises(ValueError):
        int_to_lsn(-1)


# -- values ----------------------------------------------------------------------------------
def test_jsonable():
    ts = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    row = dict(t=ts, n=decimal.Decimal('12'), f=decimal.Decimal('1.5'), d=datetime.timedelta(seconds=2.5),
               nested=[ts], s='x', none=None)
    assert jsonable(row) == dict(t='2026-01-02T03:04:05+00:00', n=12, f=1.5, d=2.5,
                                 nested=['2026-01-02T03:04:05+00:00'], s='x', none=None)


def test_standby_replay_from_receiver():
    replay = dict(receive_lsn='0/5000000', replayed_lsn='0/3000000', since_last_replay=4.25,
                  paused=True, pause_state='paused', last_replay_time=None)
    out = standby_replay(replay, dict(flushed_lsn='0/3100000', status='streaming'))
    assert out['received_lsn'] == '0/3100000'      # the receiver's flushed position wins
    assert out['lag_bytes'] == 0x100000
    assert out['lag_seconds'] == 4.25
    assert out['paused'] is True and out['pause_state'] == 'paused'


def test_standby_replay_caught_up_is_zero_seconds():
    replay = dict(receive_lsn='0/3000000', replayed_lsn='0/3000000', since_last_replay=3600.0, paused=False)
    out = standby_replay(replay, dict(flushed_lsn='0/3000000', status='streaming'))
    assert out['lag_bytes'] == 0 and out['lag_seconds'] == 0.0 and out['streaming'] is True


@pytest.mark.parametrize('receiver', [None, dict(flushed_lsn='0/3000000', status='waiting')])
def test_standby_replay_without_streaming_receiver_is_unknown(receiver):
    # Issue 14: a standby cut off from its primary reported 0 lag; it cannot know its lag.
    replay = dict(receive_lsn='0/3000000', replayed_lsn='0/3000000', since_last_replay=3600.0, paused=False)
    out = standby_replay(replay, receiver)
    assert out['lag_bytes'] is None and out['lag_seconds'] is None and out['streaming'] is False
    assert evaluate(True, [], receiver, out, max_lag_bytes=10 ** 9) == [
        'standby: replay lag unknown (no WAL receiver streaming from the primary), which fails the limit']


def test_standby_replay_without_anything_received():
    replay = dict(receive_lsn=None, replayed_lsn='0/3000000', since_last_replay=None, paused=False)
    out = standby_replay(replay, dict(flushed_lsn=None, status='streaming'))
    assert out['received_lsn'] is None and out['lag_bytes'] is None and out['lag_seconds'] is None


# -- expect_streaming ------------------------------------------------------------------------
@pytest.mark.parametrize('given, wanted', [
    (None, False), (False, False), (True, True), ('true', True), ('Yes', True), ('no', False), ('', False),
    ([], []), (['replica1', 'replica2', 'replica1'], ['replica1', 'replica2']),
    ('replica1, replica2', ['replica1', 'replica2']), ('replica1', ['replica1']),
])
def test_normalize_expect_streaming(given, wanted):
    assert normalize_expect_streaming(given) == wanted


@pytest.mark.parametrize('bad', [[1], ['a', ''], {'a': 1}, 3, 'a,,b'])
def test_normalize_expect_streaming_rejects(bad):
    with pytest.raises(ValueError):
        normalize_expect_streaming(bad)


# -- thresholds ------------------------------------------------------------------------------
def replica(name, state='streaming', lag_bytes=0, lag_seconds=None, pid=100, addr='10.0.0.2'):
    return dict(application_name=name, state=state, lag_bytes=lag_bytes, lag_seconds=lag_seconds,
                pid=pid, client_addr=addr)


def test_no_thresholds_no_problems():
    replicas = [replica('replica1', lag_bytes=10 ** 9, lag_seconds=3600.0)]
    assert evaluate(False, replicas, None, None) == []


def test_message_names_each_replica_over_its_limit():
    replicas = [replica('replica2', lag_bytes=123456), replica('replica1', lag_bytes=5)]
    problems = evaluate(False, replicas, None, None, max_lag_bytes=100000,
                        expect_streaming=['replica1', 'replica2', 'replica3'])
    assert problems == ['replica2: replay lag 123456 bytes > 100000', 'replica3: not connected']
    assert '; '.join(problems) == 'replica2: replay lag 123456 bytes > 100000; replica3: not connected'


def test_limits_are_inclusive_and_unknown_lags_fail():
    replicas = [replica('a', lag_bytes=100, lag_seconds=2.0), replica('b', lag_bytes=None, lag_seconds=None)]
    unknown = 'b: replay lag unknown (no replay position reported), which fails the limit'
    assert evaluate(False, replicas[:1], None, None, max_lag_bytes=100, max_lag_seconds=2.0) == []
    assert evaluate(False, replicas, None, None, max_lag_bytes=100, max_lag_seconds=2.0) == [unknown]
    assert evaluate(False, replicas, None, None, max_lag_bytes=99, max_lag_seconds=1.5) == [
        'a: replay lag 100 bytes > 99', 'a: replay lag 2 s > 1.5 s', unknown]
    # Idle and caught up: PostgreSQL's null replay_lag with 0 bytes is 0 seconds.
    assert evaluate(False, [replica('c', lag_bytes=0, lag_seconds=None)], None, None, max_lag_seconds=0) == []


def test_hidden_statistics_fail_every_check_naming_the_privilege():
    hidden = [replica('r', state=None, lag_bytes=None, lag_seconds=None)]
    problems = evaluate(False, hidden, None, None, max_lag_bytes=1, read_all_stats=False)
    assert 'pg_monitor' in problems[0] and problems[1].startswith('r: replay lag unknown (hidden')
    assert evaluate(False, hidden, None, None, read_all_stats=False) == []   # no check asked for


def test_zero_limit_fails_on_any_lag():
    assert evaluate(False, [replica('r', lag_bytes=1)], None, None, max_lag_bytes=0) == ['r: replay lag 1 bytes > 0']
    assert evaluate(False, [replica('r', lag_bytes=0)], None, None, max_lag_bytes=0) == []


def test_seconds_are_rounded_readably():
    problems = evaluate(False, [replica('r', lag_seconds=12.3456789)], None, None, max_lag_seconds=10)
    assert problems == ['r: replay lag 12.346 s > 10 s']


def test_expected_replica_in_another_state():
    replicas = [replica('replica1', state='catchup', lag_bytes=None)]
    assert evaluate(False, replicas, None, None, expect_streaming=['replica1']) == [
        'replica1: state catchup, not streaming']
    # Any one streaming sender of that name is enough.
    replicas.append(replica('replica1', state='streaming', pid=101))
    assert evaluate(False, replicas, None, None, expect_streaming=['replica1']) == []


def test_replica_without_application_name_is_named_by_address():
    assert replica_name(replica('', pid=42)) == '10.0.0.2 (pid 42)'
    assert replica_name(replica(None, pid=42, addr=None)) == 'local (pid 42)'
    problems = evaluate(False, [replica('', lag_bytes=7, pid=42)], None, None, max_lag_bytes=1)
    assert problems == ['10.0.0.2 (pid 42): replay lag 7 bytes > 1']


def test_expect_streaming_true_on_primary_and_standby():
    assert evaluate(False, [], None, None, expect_streaming=True) == [
        'standby: not in recovery (this server is a primary), expected a streaming standby']
    assert evaluate(True, [], None, None, expect_streaming=True) == [
        'standby: no WAL receiver running, expected streaming']
    assert evaluate(True, [], dict(status='waiting'), None, expect_streaming=True) == [
        'standby: WAL receiver waiting, not streaming']
    assert evaluate(True, [], dict(status='streaming'), None, expect_streaming=True) == []


def test_standby_checks_itself_then_its_downstream_replicas():
    replay = dict(lag_bytes=5000, lag_seconds=61.0, streaming=True)
    downstream = [replica('cascade1', lag_bytes=9000, lag_seconds=1.0)]
    problems = evaluate(True, downstream, dict(status='streaming'), replay, max_lag_bytes=1000,
                        max_lag_seconds=60, expect_streaming=True, self_name='replica1')
    assert problems == ['replica1: replay lag 5000 bytes > 1000', 'replica1: replay lag 61 s > 60 s',
                        'cascade1: replay lag 9000 bytes > 1000']


def test_primary_ignores_replay_argument():
    assert evaluate(False, [], None, dict(lag_bytes=10 ** 9, lag_seconds=10.0 ** 6), max_lag_bytes=0) == []


def test_inactive_physical_slot_fails_a_lag_limit():
    slots = [dict(slot_name='replica2', slot_type='physical', temporary=False, active=False, retained_bytes=4096),
             dict(slot_name='replica1', slot_type='physical', temporary=False, active=True, retained_bytes=0),
             dict(slot_name='logical1', slot_type='logical', temporary=False, active=False, retained_bytes=0),
             dict(slot_name='pg_basebackup_1', slot_type='physical', temporary=True, active=False)]
    assert evaluate(False, [], None, None, max_lag_bytes=10 ** 9, slots=slots) == [
        'slot replica2: no standby streams through it, so its replay lag is unknown, the slot holds 4096 bytes '
        'of WAL back, which fails the limit']
    assert evaluate(False, [], None, None, slots=slots) == []   # no lag limit asked for


# -- issue 18 item 6: a failing archiver and paused replay ------------------------------------
def archiver(mode='on', failed=3, failed_at='2026-11-30T10:00:05+00:00', archived_at='2026-11-30T09:00:00+00:00'):
    return dict(archive_mode=mode, archived_count=7, last_archived_wal='000000010000000000000007',
                last_archived_time=archived_at, failed_count=failed, last_failed_wal='000000010000000000000008',
                last_failed_time=failed_at, ready_visible=True, ready_count=0, oldest_ready_wal=None,
                oldest_ready_seconds=None)


@pytest.mark.parametrize('row, in_recovery, failing', [
    (archiver(), False, True),                                   # failed after the last success
    (archiver(archived_at=None), False, True),                   # never archived anything
    (archiver(archived_at='2026-11-30T10:00:06+00:00'), False, False),   # recovered since
    (archiver(failed=0, failed_at=None), False, False),          # never failed
    (archiver(mode='off'), False, False),                        # not archiving
    (archiver(), True, False),                                   # a standby with on: counters of its past
    (archiver(mode='always'), True, True),                       # a standby that archives
    (None, False, False),
])
def test_archiver_failing(row, in_recovery, failing):
    assert archiver_failing(row, in_recovery) is failing


def test_expect_archiving_names_the_file_and_the_last_success():
    problems = evaluate(False, [], None, None, archiver=archiver(), expect_archiving=True)
    assert problems == ['primary: WAL archiver still failing: 3 failed attempt(s), the last for '
                        '000000010000000000000008 at 2026-11-30T10:00:05+00:00, last success '
                        '000000010000000000000007 at 2026-11-30T09:00:00+00:00; unarchived WAL stays in pg_wal '
                        '(see archive_command in the PostgreSQL log)']
    # Not asked, or recovered: nothing.
    assert evaluate(False, [], None, None, archiver=archiver()) == []
    assert evaluate(False, [], None, None, archiver=archiver(archived_at='2026-11-30T11:00:00+00:00'),
                    expect_archiving=True) == []


@pytest.mark.parametrize('state', ['paused', 'pause requested'])
def test_expect_replaying_fails_on_a_paused_standby_that_streams(state):
    receiver = {'status': 'streaming'}
    replay = {'lag_bytes': 0, 'lag_seconds': 0.0, 'paused': state == 'paused', 'pause_state': state}
    problems = evaluate(True, [], receiver, replay, expect_streaming=True, max_lag_bytes=0, expect_replaying=True)
    assert problems == [f'standby: replay paused ({state}): WAL is received but not applied, so reads fall '
                        'behind; resume with pg_wal_replay_resume()']
    # Without expect_replaying the same standby passes every other check (the harm of issue 18 item 6).
    assert evaluate(True, [], receiver, replay, expect_streaming=True, max_lag_bytes=0) == []
    running = dict(replay, paused=False, pause_state='not paused')
    assert evaluate(True, [], receiver, running, expect_replaying=True) == []
    # A primary has no replay to check.
    assert evaluate(False, [], None, None, expect_replaying=True) == []


# -- second review F3: the archiver's times are instants, not text ---------------------------------
_DST = dict(archive_mode='on', failed_count=2, last_failed_wal='000000010000000000000005',
            last_archived_wal='000000010000000000000004')


@pytest.mark.parametrize('failed, archived, failing', [
    # Across the end of summer time in the session's TimeZone: the failure (01:30 UTC) came after the
    # success (00:45 UTC) although its text sorts first.
    ('2026-10-25T02:30:00+01:00', '2026-10-25T02:45:00+02:00', True),
    # The other way round: the success (01:15 UTC) came after the failure (00:30 UTC).
    ('2026-10-25T02:30:00+02:00', '2026-10-25T02:15:00+01:00', False),
    ('2026-10-25T01:00:00+00:00', '2026-10-25T01:00:00.5+00:00', False),
    ('2026-10-25T01:00:00.5+00:00', '2026-10-25T01:00:00+00:00', True),
])
def test_archiver_failing_compares_instants_with_offsets(failed: str, archived: str, failing: bool) -> None:
    row = dict(_DST, last_failed_time=failed, last_archived_time=archived)
    assert archiver_failing(row, in_recovery=False) is failing
    # As psycopg2 returns them (before jsonable), too.
    as_dt = dict(row, last_failed_time=datetime.datetime.fromisoformat(failed),
                 last_archived_time=datetime.datetime.fromisoformat(archived))
    assert archiver_failing(as_dt, in_recovery=False) is failing


# -- second review F5: WAL waiting to be archived while no failure is counted -------------------------
def test_expect_archiving_fails_on_wal_waiting_too_long():
    waiting = dict(archiver(failed=0, failed_at=None), ready_count=4, oldest_ready_wal='000000010000000000000009',
                   oldest_ready_seconds=601.5)
    problems = evaluate(False, [], None, None, archiver=waiting, expect_archiving=True)
    assert problems == ['primary: 4 WAL file(s) waiting to be archived, the oldest 000000010000000000000009 for '
                        '601.5 s > 600 s, while the archiver reports no failure (an archive_command that hangs or is '
                        'too slow); unarchived WAL stays in pg_wal']
    assert evaluate(False, [], None, None, archiver=waiting, expect_archiving=True,
                    max_archive_ready_seconds=700) == []
    assert evaluate(False, [], None, None, archiver=waiting) == []
    # A standby with archive_mode on does not archive: its archive_status says nothing.
    assert evaluate(True, [], None, None, archiver=waiting, expect_archiving=True) == []
    # Unknown is never healthy.
    hidden = dict(archiver(failed=0, failed_at=None), ready_visible=False, ready_count=None)
    (line,) = evaluate(False, [], None, None, archiver=hidden, expect_archiving=True)
    assert line.startswith('primary: WAL waiting to be archived unknown') and 'pg_monitor' in line
    assert evaluate(False, [], None, None, archiver=dict(hidden, archive_mode='off'), expect_archiving=True) == []


@pytest.mark.parametrize('major, allowed, superuser, source', [
    (16, True, False, 'pg_ls_archive_statusdir()'),
    (16, False, True, 'pg_ls_archive_statusdir()'),
    (16, False, False, None),
    (11, False, True, "pg_ls_dir('pg_wal/archive_status'"),
    (11, True, False, None),
])
def test_archive_ready_query_by_major_and_privilege(major, allowed, superuser, source):
    sql = archive_ready_query(major * 10000, allowed, superuser)
    if source is None:
        assert sql is None
    else:
        assert source in sql and "LIKE '%.ready'" in sql
