# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replication status: the SQL for each PostgreSQL major, LSN arithmetic, threshold checks.

Pure logic, no I/O: ``status_queries(version_num, in_recovery)`` says what to ask the server,
``standby_replay(...)`` turns a standby's answers into its replay lag, and
``evaluate(...)`` compares the collected facts with the thresholds and returns one readable
problem per replica (or standby) over its limit.

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

# The newest major whose catalog this file knows; newer ones are queried like it.
NEWEST_KNOWN_MAJOR = 18

ExpectStreaming = Union[bool, Sequence[str]]

_TRUE_WORDS = ('true', 'yes', 'on')
_FALSE_WORDS = ('false', 'no', 'off', '')


# -- LSN arithmetic ------------------------------------------------------------------------

def lsn_to_int(lsn: Optional[str]) -> Optional[int]:
    """``'16/B374D848'`` -> byte position; None stays None."""
    if lsn is None:
        return None
    if not isinstance(lsn, str) or lsn.count('/') != 1:
        raise ValueError(f'not an LSN: {lsn!r}')
    high, low = lsn.split('/')
    try:
        hi, lo = int(high, 16), int(low, 16)
    except ValueError:
        raise ValueError(f'not an LSN: {lsn!r}') from None
    if not (0 <= hi <= 0xFFFFFFFF and 0 <= lo <= 0xFFFFFFFF):
        raise ValueError(f'not an LSN: {lsn!r}')
    return (hi << 32) | lo


def int_to_lsn(pos: int) -> str:
    """Byte position -> LSN text as PostgreSQL prints it (upper-case hex, no padding)."""
    if pos < 0 or pos > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f'LSN out of range: {pos}')
    return f'{pos >> 32:X}/{pos & 0xFFFFFFFF:X}'


def lsn_diff(ahead: Optional[str], behind: Optional[str]) -> Optional[int]:
    """Bytes from ``behind`` to ``ahead`` (never negative); None when either is unknown."""
    a, b = lsn_to_int(ahead), lsn_to_int(behind)
    if a is None or b is None:
        return None
    return max(a - b, 0)


# -- SQL per major -----------------------------------------------------------------------

def current_lsn_expression(in_recovery: bool) -> str:
    """The position lags are measured from: the primary's WAL write position, or on a
    (cascading) standby the newest WAL it has, as its WAL senders see it."""
    if in_recovery:
        return 'GREATEST(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())'
    return 'pg_catalog.pg_current_wal_lsn()'


def status_queries(version_num: int, in_recovery: bool) -> dict[str, str]:
    """SQL for every part of the status, chosen by ``server_version_num`` (e.g. 150006).

    Keys: ``replicas``, ``slots``, ``archiver`` always; ``wal_receiver`` and ``replay`` on a
    standby only.
    """
    if not isinstance(version_num, int) or isinstance(version_num, bool) or version_num < 100000:
        raise ValueError(f'unsupported server_version_num {version_num!r}: PostgreSQL 10 or later is needed')
    major = min(version_num // 10000, NEWEST_KNOWN_MAJOR)
    cur = current_lsn_expression(in_recovery)

    reply_time = 'r.reply_time' if major >= 12 else 'NULL::timestamptz'
    queries = {
        'replicas': (
            'SELECT r.pid, r.usename::text AS usename, r.application_name, '
            'host(r.client_addr) AS client_addr, r.client_port, r.state, r.sync_state, r.sync_priority, '
            'r.sent_lsn::text AS sent_lsn, r.write_lsn::text AS write_lsn, '
            'r.flush_lsn::text AS flush_lsn, r.replay_lsn::text AS replay_lsn, '
            f'GREATEST(pg_catalog.pg_wal_lsn_diff({cur}, r.replay_lsn), 0)::bigint AS lag_bytes, '
            f'GREATEST(pg_catalog.pg_wal_lsn_diff({cur}, r.flush_lsn), 0)::bigint AS flush_lag_bytes, '
            'EXTRACT(EPOCH FROM r.replay_lag)::float8 AS lag_seconds, '
            'EXTRACT(EPOCH FROM r.write_lag)::float8 AS write_lag_seconds, '
            'EXTRACT(EPOCH FROM r.flush_lag)::float8 AS flush_lag_seconds, '
            f'r.backend_start, {reply_time} AS reply_time, '
            'coalesce(s.ssl, false) AS ssl, s.version AS ssl_version '
            'FROM pg_catalog.pg_stat_replication r '
            'LEFT JOIN pg_catalog.pg_stat_ssl s ON s.pid = r.pid '
            'ORDER BY r.application_name, r.pid'),
        'slots': (
            'SELECT slot_name::text AS slot_name, slot_type, database::text AS database, '
            'temporary, active, active_pid, '
            + ('wal_status, ' if major >= 13 else 'NULL::text AS wal_status, ')
            + 'restart_lsn::text AS restart_lsn, confirmed_flush_lsn::text AS confirmed_flush_lsn, '
            f'GREATEST(pg_catalog.pg_wal_lsn_diff({cur}, restart_lsn), 0)::bigint AS retained_bytes, '
            + ('safe_wal_size::bigint AS safe_wal_size ' if major >= 13 else 'NULL::bigint AS safe_wal_size ')
            + 'FROM pg_catalog.pg_replication_slots ORDER BY slot_name'),
        'archiver': (
            "SELECT pg_catalog.current_setting('archive_mode') AS archive_mode, "
            'archived_count, last_archived_wal, last_archived_time, '
            'failed_count, last_failed_wal, last_failed_time, stats_reset '
            'FROM pg_catalog.pg_stat_archiver'),
    }
    if in_recovery:
        if major >= 13:
            lsns = 'written_lsn::text AS written_lsn, flushed_lsn::text AS flushed_lsn, '
        else:
            lsns = 'NULL::text AS written_lsn, received_lsn::text AS flushed_lsn, '
        if major >= 11:
            sender = 'sender_host, sender_port, '
        else:
            sender = 'NULL::text AS sender_host, NULL::int AS sender_port, '
        queries['wal_receiver'] = (
            'SELECT pid, status, ' + sender
            + 'slot_name, receive_start_lsn::text AS receive_start_lsn, receive_start_tli, '
            + lsns
            + 'received_tli, last_msg_send_time, last_msg_receipt_time, '
            'latest_end_lsn::text AS latest_end_lsn, latest_end_time '
            'FROM pg_catalog.pg_stat_wal_receiver')
        pause_state = ('pg_catalog.pg_get_wal_replay_pause_state()' if major >= 14
                       else "CASE WHEN pg_catalog.pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END")
        queries['replay'] = (
            'SELECT pg_catalog.pg_last_wal_receive_lsn()::text AS receive_lsn, '
            'pg_catalog.pg_last_wal_replay_lsn()::text AS replayed_lsn, '
            'pg_catalog.pg_last_xact_replay_timestamp() AS last_replay_time, '
            'EXTRACT(EPOCH FROM now() - pg_catalog.pg_last_xact_replay_timestamp())::float8 AS since_last_replay, '
            'pg_catalog.pg_is_wal_replay_paused() AS paused, '
            f'{pause_state} AS pause_state')
    return queries


def archive_ready_query(version_num: int, can_list_status_dir: bool, superuser: bool) -> Optional[str]:
    """SQL for the WAL waiting to be archived (the ``.ready`` files of ``pg_wal/archive_status``): their
    count, the oldest segment's name and how long it has waited (since its ``.ready`` file was written,
    when the segment was complete). None when this login cannot see the directory: PostgreSQL 12+ needs
    EXECUTE on ``pg_ls_archive_statusdir()`` (pg_monitor, or a superuser), older majors a superuser."""
    if version_num >= 120000 and (can_list_status_dir or superuser):
        source = 'SELECT name, modification FROM pg_catalog.pg_ls_archive_statusdir()'
    elif superuser:
        source = ("SELECT d AS name, (pg_catalog.pg_stat_file('pg_wal/archive_status/' || d, true)).modification "
                  "FROM pg_catalog.pg_ls_dir('pg_wal/archive_status', true, false) d")
    else:
        return None
    return ('SELECT count(*)::int AS ready_count, min(f.name) AS oldest_ready_name, '
            'GREATEST(EXTRACT(EPOCH FROM now() - min(f.modification)), 0)::float8 AS oldest_ready_seconds '
            f"FROM ({source}) f WHERE f.name LIKE '%.ready' AND f.modification IS NOT NULL")


# -- values ------------------------------------------------------------------------------

def jsonable(value: Any) -> Any:
    """Make a psycopg2 value fit a module result: timestamps as ISO 8601 text, numerics as numbers."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def standby_replay(replay: Mapping[str, Any], wal_receiver: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """A standby's own position and lag from the ``replay`` row and its WAL receiver (if any).

    The received position is the receiver's flushed LSN, or the last one received since the
    server started when no receiver runs. The lag in seconds is 0 when everything received is
    replayed, otherwise the time since the last replayed transaction committed on the primary.

    Without a WAL receiver that streams, the standby cannot know how far the primary is ahead:
    both lags are None (unknown), never 0, and ``streaming`` is False.
    """
    streaming = bool(wal_receiver) and wal_receiver.get('status') == 'streaming'
    received = None
    if wal_receiver:
        received = wal_receiver.get('flushed_lsn')
    if received is None:
        received = replay.get('receive_lsn')
    replayed = replay.get('replayed_lsn')
    lag_bytes = lsn_diff(received, replayed) if streaming else None
    lag_seconds: Optional[float] = None
    if lag_bytes == 0:
        lag_seconds = 0.0
    elif lag_bytes is not None:
        since = replay.get('since_last_replay')
        lag_seconds = max(float(since), 0.0) if since is not None else None
    return dict(received_lsn=received, replayed_lsn=replayed, lag_bytes=lag_bytes,
                lag_seconds=lag_seconds, streaming=streaming,
                last_replay_time=jsonable(replay.get('last_replay_time')),
                paused=bool(replay.get('paused')), pause_state=replay.get('pause_state'))


# -- thresholds --------------------------------------------------------------------------

def normalize_expect_streaming(value: Any) -> ExpectStreaming:
    """``expect_streaming`` as given -> True/False or a list of application names.

    Accepts a bool, a list of names, or a string: a boolean word, else comma-separated names.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        value = value.split(',')
    if isinstance(value, (list, tuple)):
        names: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f'expect_streaming: application names must be strings, not {item!r}')
            item = item.strip()
            if not item:
                raise ValueError('expect_streaming: empty application name')
            if item not in names:
                names.append(item)
        return names
    raise ValueError(f'expect_streaming must be a list of application names or a boolean, not {value!r}')


def replica_name(replica: Mapping[str, Any]) -> str:
    """How a message names a replica: its application_name, else its address and pid."""
    name = replica.get('application_name')
    if name:
        return str(name)
    addr = replica.get('client_addr') or 'local'
    return f"{addr} (pid {replica.get('pid')})"


def _number(value: float) -> str:
    return f'{round(float(value), 3):g}'


def delayed_lag(replica: Mapping[str, Any], delay_seconds: float) -> tuple[Optional[int], Optional[float], str]:
    """``(lag_bytes, lag_seconds, what)`` to check for a standby with an apply delay (recovery_min_apply_delay).

    Its replay is meant to be ``delay_seconds`` behind, so the replay lag is not lag: the bytes are
    those it has not flushed yet (``flush_lag_bytes``: what it received must still be current), the
    seconds its replay lag beyond the delay (``replay_lag`` - delay, at least 0; when PostgreSQL
    reports no replay lag, 0 if everything is flushed, else unknown).
    """
    flush_bytes = replica.get('flush_lag_bytes')
    replay_seconds = replica.get('lag_seconds')
    if replay_seconds is not None:
        seconds: Optional[float] = max(float(replay_seconds) - float(delay_seconds), 0.0)
    elif flush_bytes == 0 or replica.get('lag_bytes') == 0:
        seconds = 0.0
    else:
        seconds = None
    return flush_bytes, seconds, f'beyond its apply delay of {_number(delay_seconds)} s'


def _lag_problems(name: str, lag_bytes: Optional[int], lag_seconds: Optional[float],
                  max_lag_bytes: Optional[int], max_lag_seconds: Optional[float],
                  why_unknown: str = 'no replay position reported', delayed: str = '') -> list[str]:
    """Lines for the limits exceeded; an unknown lag never passes a limit that is set.

    ``delayed`` (from delayed_lag): the standby has an apply delay; ``lag_bytes`` is then its flush lag and
    ``lag_seconds`` its replay lag beyond the delay, and the lines say so."""
    if lag_seconds is None and lag_bytes == 0:
        lag_seconds = 0.0       # caught up: PostgreSQL clears replay_lag once a standby is idle
    if delayed:
        byte_text, second_text = 'flush lag', f'replay lag {delayed}'
    else:
        byte_text, second_text = 'replay lag', 'replay lag'
    found = []
    unknown = []
    if max_lag_bytes is not None:
        if lag_bytes is None:
            unknown.append('bytes')
        elif lag_bytes > max_lag_bytes:
            found.append(f'{name}: {byte_text} {lag_bytes} bytes > {max_lag_bytes}')
    if max_lag_seconds is not None:
        if lag_seconds is None:
            unknown.append('seconds')
        elif lag_seconds > max_lag_seconds:
            found.append(f'{name}: {second_text} {_number(lag_seconds)} s > {_number(max_lag_seconds)} s')
    if len(unknown) == 2 or (unknown and lag_bytes is None):
        found.append(f'{name}: replay lag unknown ({why_unknown}), which fails the limit')
    elif unknown:
        found.append(f'{name}: replay lag in seconds unknown (PostgreSQL reports none), which fails the limit')
    return found


# WAL waiting longer than this to be archived fails expect_archiving (max_archive_ready_seconds): a working
# archiver takes a segment as soon as it is complete, and retries a failing archive_command within a minute.
DEFAULT_MAX_ARCHIVE_READY_SECONDS = 600.0


def archiving(archiver: Optional[Mapping[str, Any]], in_recovery: bool) -> bool:
    """Whether this server archives WAL: archive_mode on for a primary, always for a standby."""
    mode = (archiver or {}).get('archive_mode')
    return mode == 'always' or (mode == 'on' and not in_recovery)


def archiver_backlog_problem(name: str, archiver: Mapping[str, Any], max_ready_seconds: float) -> Optional[str]:
    """One line when WAL waits too long to be archived, or when the wait cannot be seen (unknown is
    never healthy); None otherwise. Reads ``ready_visible``, ``ready_count``, ``oldest_ready_wal``
    and ``oldest_ready_seconds`` of the module's archiver result."""
    if not archiver.get('ready_visible'):
        return (f'{name}: WAL waiting to be archived unknown: the login role cannot list pg_wal/archive_status '
                '(pg_ls_archive_statusdir() needs pg_monitor or a superuser, PostgreSQL 10 and 11 a superuser), '
                'which fails expect_archiving')
    age = archiver.get('oldest_ready_seconds')
    if not archiver.get('ready_count') or age is None or float(age) <= max_ready_seconds:
        return None
    return (f"{name}: {archiver.get('ready_count')} WAL file(s) waiting to be archived, the oldest "
            f"{archiver.get('oldest_ready_wal')} for {_number(age)} s > {_number(max_ready_seconds)} s, while the "
            'archiver reports no failure (an archive_command that hangs or is too slow); unarchived WAL stays in pg_wal')


def archiver_failing(archiver: Optional[Mapping[str, Any]], in_recovery: bool) -> bool:
    """Whether this server's WAL archiver is still failing: it runs (archive_mode on for a primary,
    always for a standby), counted failures, and archived nothing since its last failure.

    A standby with archive_mode on does not archive: counters it keeps from an earlier life as a
    primary (a rejoined old primary) say nothing about now, so it is never failing.
    """
    if not archiver:
        return False
    mode = archiver.get('archive_mode')
    if mode not in ('on', 'always') or (in_recovery and mode != 'always'):
        return False
    if not archiver.get('failed_count'):
        return False
    failed, archived = archiver.get('last_failed_time'), archiver.get('last_archived_time')
    if failed is None:
        return False
    if archived is None:
        return True
    failed_at, archived_at = instant(failed), instant(archived)
    if failed_at is None or archived_at is None:
        return True         # a time it cannot read: unknown is never healthy
    return failed_at > archived_at


def instant(value: Any) -> Optional[datetime.datetime]:
    """A timestamp (a datetime, or ISO 8601 text as ``jsonable`` writes it) as an aware datetime, so
    that times written with different UTC offsets (the session's TimeZone across a change of summer
    time) compare as instants, never as text. None when it cannot be read; naive times count as UTC."""
    if isinstance(value, str):
        text = value.strip().replace(' ', 'T', 1)
        if text.endswith('Z'):
            text = text[:-1] + '+00:00'
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def archiver_problem(name: str, archiver: Mapping[str, Any]) -> str:
    """One line saying that, and what, the archiver keeps failing to archive."""
    last_ok = archiver.get('last_archived_wal')
    since = (f"last success {last_ok} at {archiver.get('last_archived_time')}" if last_ok
             else 'nothing archived since the statistics were reset')
    return (f"{name}: WAL archiver still failing: {archiver.get('failed_count')} failed attempt(s), the last for "
            f"{archiver.get('last_failed_wal')} at {archiver.get('last_failed_time')}, {since}; unarchived WAL stays "
            "in pg_wal (see archive_command in the PostgreSQL log)")


PRIVILEGE_PROBLEM = ('the login role is neither a superuser nor a member of pg_monitor (pg_read_all_stats): '
                     "PostgreSQL hides the standbys' states and lags from it, so they are unknown, which "
                     'fails every check; grant pg_monitor to login_user')


def evaluate(in_recovery: bool, replicas: Iterable[Mapping[str, Any]],
             wal_receiver: Optional[Mapping[str, Any]], replay: Optional[Mapping[str, Any]],
             max_lag_bytes: Optional[int] = None, max_lag_seconds: Optional[float] = None,
             expect_streaming: ExpectStreaming = False, self_name: str = 'standby',
             read_all_stats: Optional[bool] = None, slots: Iterable[Mapping[str, Any]] = (),
             archiver: Optional[Mapping[str, Any]] = None, expect_archiving: bool = False,
             expect_replaying: bool = False,
             max_archive_ready_seconds: float = DEFAULT_MAX_ARCHIVE_READY_SECONDS,
             apply_delays: Optional[Mapping[str, float]] = None) -> list[str]:
    """Every threshold violation as one readable line, in a stable order.

    Unknown is never healthy: a lag that is unknown fails a limit that is set.

    - ``read_all_stats`` False (the login role cannot see other roles' statistics) with any
      check asked for: one line naming the missing privilege, first.
    - Each connected replica (primary, or cascading standby) whose replay lag exceeds
      ``max_lag_bytes`` / ``max_lag_seconds``, or whose lag is unknown (no replay position).
      A lag in seconds that PostgreSQL leaves null while the bytes are 0 (idle) counts as 0.
    - On a standby, its own replay lag against the same limits, named ``self_name``; without a
      streaming WAL receiver it is unknown.
    - With a lag limit, each physical slot no standby streams through: the standby that uses it
      is gone, its lag unknown (named by the slot, with the WAL the slot holds back).
    - ``expect_streaming`` as a list: each name must have a WAL sender in state streaming
      (``not connected`` or ``state X, not streaming`` otherwise).
    - ``expect_streaming`` true: this server must be a standby whose WAL receiver streams.
    - ``expect_archiving``: this server's archiver must not be still failing (``archiver_failing``), nor
      leave WAL waiting to be archived longer than ``max_archive_ready_seconds`` (``archiver_backlog_problem``;
      a backlog it cannot see fails too).
    - ``expect_replaying``: on a standby, replay must not be paused (nor a pause requested).
    - ``apply_delays``: application name -> seconds of a replica's intended apply delay
      (recovery_min_apply_delay); its lag is checked with ``delayed_lag``: the WAL it has not flushed
      against ``max_lag_bytes``, its replay lag beyond the delay against ``max_lag_seconds``.
    """
    replicas = list(replicas)
    own: list[str] = []
    checks = max_lag_bytes is not None or max_lag_seconds is not None or bool(expect_streaming)
    if read_all_stats is False and checks:
        own.append(PRIVILEGE_PROBLEM)
    if expect_streaming is True:
        if not in_recovery:
            own.append(f'{self_name}: not in recovery (this server is a primary), expected a streaming standby')
        elif not wal_receiver:
            own.append(f'{self_name}: no WAL receiver running, expected streaming')
        elif wal_receiver.get('status') != 'streaming':
            own.append(f"{self_name}: WAL receiver {wal_receiver.get('status')}, not streaming")
    if expect_archiving and archiver_failing(archiver, in_recovery):
        own.append(archiver_problem(self_name if in_recovery else 'primary', archiver or {}))
    elif expect_archiving and archiving(archiver, in_recovery):
        backlog = archiver_backlog_problem(self_name if in_recovery else 'primary', archiver or {},
                                           max_archive_ready_seconds)
        if backlog:
            own.append(backlog)
    if expect_replaying and in_recovery and replay is not None and (
            replay.get('paused') or replay.get('pause_state') not in (None, 'not paused')):
        own.append(f"{self_name}: replay paused ({replay.get('pause_state') or 'paused'}): WAL is received but "
                   'not applied, so reads fall behind; resume with pg_wal_replay_resume()')
    if in_recovery and replay is not None:
        streams = bool(wal_receiver) and wal_receiver.get('status') == 'streaming'
        why = ('no received or replayed position' if streams
               else 'no WAL receiver streaming from the primary')
        own.extend(_lag_problems(self_name, replay.get('lag_bytes'), replay.get('lag_seconds'),
                                 max_lag_bytes, max_lag_seconds, why))

    # Downstream replicas, grouped by name (stable sort keeps each name's checks in order).
    others: list[tuple[str, str]] = []
    if isinstance(expect_streaming, (list, tuple)):
        for name in expect_streaming:
            states = [r.get('state') for r in replicas if r.get('application_name') == name]
            if not states:
                others.append((name, f'{name}: not connected'))
            elif 'streaming' not in states:
                shown = ', '.join(sorted({str(s) for s in states}))
                others.append((name, f'{name}: state {shown}, not streaming'))
    hidden = 'hidden from the login role' if read_all_stats is False else 'no replay position reported'
    delays = dict(apply_delays or {})
    for replica in replicas:
        name = replica_name(replica)
        delay = delays.get(str(replica.get('application_name') or ''))
        if delay:
            lag_bytes, lag_seconds, delayed = delayed_lag(replica, float(delay))
        else:
            lag_bytes, lag_seconds, delayed = replica.get('lag_bytes'), replica.get('lag_seconds'), ''
        for problem in _lag_problems(name, lag_bytes, lag_seconds, max_lag_bytes, max_lag_seconds, hidden,
                                     delayed):
            others.append((name, problem))
    if max_lag_bytes is not None or max_lag_seconds is not None:
        for slot in slots:
            if slot.get('slot_type') != 'physical' or slot.get('temporary') or slot.get('active'):
                continue
            name = str(slot.get('slot_name'))
            held = slot.get('retained_bytes')
            held_text = f', the slot holds {held} bytes of WAL back' if held is not None else ''
            others.append((name, f'slot {name}: no standby streams through it, so its replay lag is unknown'
                                 f'{held_text}, which fails the limit'))
    others.sort(key=lambda item: item[0])
    return own + [problem for _name, problem in others]
