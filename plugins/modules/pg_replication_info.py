#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_replication_info
short_description: Report PostgreSQL streaming replication status and lag, and check it against limits
version_added: 0.1.0
description:
  - Reads the replication status of one PostgreSQL server, primary or standby, from the
    server's own views and functions.
  - On a primary, lists every connected standby (C(pg_stat_replication) with SSL from
    C(pg_stat_ssl)) with its positions and its replay lag in bytes and seconds, every
    replication slot with the WAL it retains, and the WAL archiver's counters.
  - On a standby, also reports its WAL receiver (C(pg_stat_wal_receiver)), the received and
    replayed positions, its own replay lag in bytes and seconds, and whether replay is paused.
    A cascading standby lists its own downstream standbys and slots too.
  - With O(max_lag_bytes), O(max_lag_seconds) or O(expect_streaming) the module fails, naming
    every replica over its limit, so a playbook or a scheduled check can alert. With
    O(expect_archiving) it fails while the WAL archiver keeps failing, with O(expect_replaying)
    on a standby whose replay is paused. The full status is returned in the failure as well.
  - The module only reads and never reports a change. It works on PostgreSQL 10 to 18; the
    SQL is chosen by the server's C(server_version_num).
options:
  max_lag_bytes:
    description:
      - Largest acceptable replay lag in bytes.
      - On a primary, checked for every connected standby (the distance from the primary's
        current WAL position to the standby's replay position). On a standby, checked for
        the standby itself (received but not yet replayed WAL) and for its own downstream
        standbys.
      - A standby that is not connected has no lag to check; name it in O(expect_streaming). A
        physical replication slot that no standby streams through fails the limit, since the lag
        of the standby that uses it is unknown.
      - A lag that is unknown (null) fails the limit. That is the lag of a standby without a replay
        position, of one whose statistics the login role may not read, and of a standby without a
        streaming WAL receiver.
    type: int
  max_lag_seconds:
    description:
      - Largest acceptable replay lag in seconds.
      - An inactive physical replication slot fails it as it fails O(max_lag_bytes).
      - On a primary this is C(replay_lag) of C(pg_stat_replication), which PostgreSQL sets to null
        once an idle standby has caught up; with a replay lag of 0 bytes that counts as 0 seconds,
        any other null (unknown) lag fails the limit. On a standby it is the time since the last replayed
        transaction was committed on the primary, or V(0) when everything received is replayed.
    type: float
  apply_delays:
    description:
      - Standbys that replay on purpose with a delay (C(recovery_min_apply_delay)), by application name, with
        the delay in seconds (a mapping, for example V(replica3) to V(3600)). Their replay lag is
        expected and is not lag. For them O(max_lag_bytes) limits the WAL they have not flushed yet
        (C(flush_lag_bytes), what they receive must still be current), and O(max_lag_seconds) their
        replay lag beyond the delay (C(replay_lag) minus the delay).
      - Checked on a primary (and a cascading standby) for the standbys connected to it.
    type: dict
  expect_streaming:
    description:
      - A list of application names (C(application_name) in each standby's C(primary_conninfo),
        as shown by C(pg_stat_replication)) that must be connected in state C(streaming) to
        this server. Each one that is not is named in the failure, as C(not connected) or with
        its state.
      - V(true) means this server must be a standby whose WAL receiver is streaming; it fails
        on a primary.
      - A string is read as a boolean word (V(true), V(yes), V(false), ...) or as
        comma-separated application names.
      - V(false), an empty list or no value checks nothing.
    type: raw
  expect_archiving:
    description:
      - Fail while this server's WAL archiver is still failing (RV(archiver.failing)), that is while it
        archives (C(archive_mode) V(on) on a primary, V(always) on a standby), C(pg_stat_archiver)
        counted failed attempts, and no file was archived since the last one. Unarchived WAL stays in
        C(pg_wal), which no C(max_slot_wal_keep_size) limits, until the disk is full.
      - Failures followed by a success (the archiver recovered) pass.
      - It also fails when WAL has waited longer than O(max_archive_ready_seconds) to be archived (the oldest
        C(.ready) file in C(pg_wal/archive_status)), which catches an archiver that never reports a failure,
        such as an C(archive_command) that hangs or cannot keep up. Listing that directory needs
        C(pg_ls_archive_statusdir()) (PostgreSQL 12+, O(login_user) a member of C(pg_monitor) or a superuser;
        a superuser on PostgreSQL 10 and 11); without it the wait is unknown, which fails.
    type: bool
    default: false
  max_archive_ready_seconds:
    description:
      - With O(expect_archiving), the longest a complete WAL segment may wait to be archived, in seconds,
        counted from when its C(.ready) file was written. A working archiver takes each segment as soon as it
        is complete and retries a failing C(archive_command) within a minute, so the default of 600 (10 minutes)
        only fails an archiver that hangs or falls far behind.
      - Must not be negative.
    type: float
    default: 600
  expect_replaying:
    description:
      - On a standby, fail when WAL replay is paused or a pause is requested
        (C(pg_wal_replay_pause())). Its WAL receiver may still stream, but nothing is applied and
        reads fall further behind. Checks nothing on a primary.
    type: bool
    default: false
  extensions:
    description:
      - Also read, in every database that allows connections, the extensions it uses and whether this server can
        load them (RV(extensions)), that is a control file for the installed version and every C library their
        functions load. A physical standby has the primary's catalog but not its files, so a replica without an
        extension's package (PostGIS, for example) fails every query that uses it.
      - Each library is looked for (C(pg_stat_file)) and loaded (C(LOAD), what a query does, which also finds a
        missing dependency); both need a superuser, otherwise the answer is unknown. A missing control file is
        reported (C(available)) but is no problem, since using an extension never reads it. The packages that
        hold the files found under C(PKGLIBDIR) and C(SHAREDIR/extension) are looked up with C(dpkg-query -S)
        (RV(extension_packages)).
      - Every connection of this read pins C(search_path) to C(pg_catalog) and limits statements to 10 s; a database
        that cannot be read is an entry with its error, and no error of this read fails the module unless
        O(expect_extensions) is set.
    type: bool
    default: false
  expect_extensions:
    description:
      - Fail naming each extension of any database whose libraries this server cannot load (implies
        O(extensions)), with the files missing and the packages that hold them when O(extension_packages) names
        them. A library that cannot be checked (no privilege) and a database that cannot be read fail too.
    type: bool
    default: false
  extension_packages:
    description:
      - Path to package, as RV(extension_packages) of a node that has the files (the primary), so that the failure of
        O(expect_extensions) names the packages to install.
    type: dict
extends_documentation_fragment:
  - catmaid.replication.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode changes nothing about what it does.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - O(login_user) needs to be a superuser or a member of C(pg_monitor) (C(pg_read_all_stats)),
    otherwise PostgreSQL hides most columns of the statistics views and the positions, states
    and lags come back null; the module then warns, and every check asked for fails.
  - Lags in bytes are exact; lags in seconds come from the server's clock and the primary's
    commit timestamps, so on a primary without writes a standby's lag in seconds can grow while
    it is fully caught up in bytes. Prefer O(max_lag_bytes) for alerting on idle systems.
seealso:
  - name: pg_stat_replication and pg_stat_wal_receiver
    description: The statistics views this module reads.
    link: https://www.postgresql.org/docs/current/monitoring-stats.html
  - name: Replication slots
    description: How slots retain WAL, C(wal_status) and C(safe_wal_size).
    link: https://www.postgresql.org/docs/current/view-pg-replication-slots.html
  - module: catmaid.replication.standby_signal
author:
  - catmaid.replication developers (@catmaid)
"""

EXAMPLES = r"""
- name: Read the replication status of the primary
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_info:
  register: replication

- name: Show every standby and its lag
  ansible.builtin.debug:
    msg: "{{ item.application_name }} {{ item.state }} {{ item.lag_bytes }} bytes behind"
  loop: "{{ replication.replicas }}"

- name: Fail unless both replicas stream and stay within 16 MiB and 30 seconds
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_info:
    expect_streaming: [replica1, replica2]
    max_lag_bytes: 16777216
    max_lag_seconds: 30

- name: Fail while the archiver keeps failing or this standby's replay is paused
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_info:
    expect_archiving: true
    expect_replaying: true

- name: Check that this standby streams from its primary
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_info:
    expect_streaming: true
    max_lag_bytes: 16777216

- name: Read the primary's extensions and the packages that hold their files
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_info:
    extensions: true
  register: primary_state
  delegate_to: "{{ groups['primary'][0] }}"
  run_once: true

- name: Fail naming each extension this replica cannot load, and the packages to install
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_info:
    expect_extensions: true
    extension_packages: "{{ primary_state.extension_packages }}"
"""

RETURN = r"""
role:
  description: V(primary), or V(standby) for a server in recovery.
  returned: always
  type: str
  sample: primary
in_recovery:
  description: Whether the server is in recovery (C(pg_is_in_recovery())).
  returned: always
  type: bool
  sample: false
read_all_stats:
  description:
    - Whether O(login_user) may read every statistics row (a superuser or a member of
      C(pg_read_all_stats), for example through C(pg_monitor)).
    - When false, the standbys' states, positions and lags are null, the module warns, and any
      threshold or O(expect_streaming) fails naming the missing privilege.
  returned: always
  type: bool
  sample: true
server_version:
  description: The server's version (C(server_version)).
  returned: always
  type: str
  sample: "15.14"
server_version_num:
  description: The server's version as a number (C(server_version_num)).
  returned: always
  type: int
  sample: 150014
current_lsn:
  description:
    - The position lags are measured from. On a primary its current WAL write position; on a
      standby the newest WAL it has received or replayed.
  returned: always
  type: str
  sample: 0/3000148
replicas:
  description: One entry per WAL sender connected to this server (C(pg_stat_replication)), by application name.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id of the WAL sender.
      type: int
      returned: always
    usename:
      description: Role the standby connected as.
      type: str
      returned: always
      sample: replicator
    application_name:
      description: The standby's application name.
      type: str
      returned: always
      sample: replica1
    client_addr:
      description: The standby's address; null over a Unix socket.
      type: str
      returned: always
      sample: 10.0.0.12
    client_port:
      description: The standby's TCP port; V(-1) over a Unix socket.
      type: int
      returned: always
    state:
      description: V(startup), V(catchup), V(streaming), V(backup) or V(stopping).
      type: str
      returned: always
      sample: streaming
    sync_state:
      description: V(async), V(potential), V(sync) or V(quorum).
      type: str
      returned: always
      sample: async
    sync_priority:
      description: Priority in synchronous standby selection (V(0) for asynchronous standbys).
      type: int
      returned: always
    sent_lsn:
      description: Last WAL position sent.
      type: str
      returned: always
      sample: 0/3000148
    write_lsn:
      description: Last WAL position the standby wrote.
      type: str
      returned: always
    flush_lsn:
      description: Last WAL position the standby flushed.
      type: str
      returned: always
    replay_lsn:
      description: Last WAL position the standby replayed; null for clients that do not replay (C(pg_basebackup), C(pg_receivewal)).
      type: str
      returned: always
    lag_bytes:
      description: Bytes from RV(current_lsn) to C(replay_lsn); null when C(replay_lsn) is.
      type: int
      returned: always
      sample: 0
    flush_lag_bytes:
      description: Bytes from RV(current_lsn) to C(flush_lsn) (received and flushed by the standby); null when C(flush_lsn) is.
      type: int
      returned: always
      sample: 0
    lag_seconds:
      description: C(replay_lag) in seconds; null when the standby is idle and caught up.
      type: float
      returned: always
      sample: 0.0012
    write_lag_seconds:
      description: C(write_lag) in seconds, or null.
      type: float
      returned: always
    flush_lag_seconds:
      description: C(flush_lag) in seconds, or null.
      type: float
      returned: always
    backend_start:
      description: When the standby connected (ISO 8601).
      type: str
      returned: always
    reply_time:
      description: Last status message from the standby (ISO 8601); null before PostgreSQL 12.
      type: str
      returned: always
    ssl:
      description: Whether the replication connection uses SSL (C(pg_stat_ssl)).
      type: bool
      returned: always
      sample: true
    ssl_version:
      description: The SSL/TLS protocol version, or null.
      type: str
      returned: always
      sample: TLSv1.3
slots:
  description: Every replication slot on this server (C(pg_replication_slots)), by name.
  returned: always
  type: list
  elements: dict
  contains:
    slot_name:
      description: Name of the slot.
      type: str
      returned: always
      sample: replica1
    slot_type:
      description: V(physical) or V(logical).
      type: str
      returned: always
    database:
      description: Database of a logical slot; null for physical slots.
      type: str
      returned: always
    temporary:
      description: Whether the slot is temporary.
      type: bool
      returned: always
    active:
      description: Whether a client is using the slot now.
      type: bool
      returned: always
    active_pid:
      description: Process using the slot, or null.
      type: int
      returned: always
    wal_status:
      description:
        - V(reserved), V(extended), V(unreserved) or V(lost) (a replica using a lost slot
          can no longer catch up). Null before PostgreSQL 13.
      type: str
      returned: always
      sample: reserved
    restart_lsn:
      description: Oldest WAL position the slot keeps; null for a slot never used.
      type: str
      returned: always
    confirmed_flush_lsn:
      description: Position a logical slot's consumer confirmed; null for physical slots.
      type: str
      returned: always
    retained_bytes:
      description: WAL bytes the slot holds back, from C(restart_lsn) to RV(current_lsn); null when C(restart_lsn) is.
      type: int
      returned: always
      sample: 16777216
    safe_wal_size:
      description:
        - Bytes that can still be written before the slot risks losing WAL (C(max_slot_wal_keep_size));
          null when unlimited, or before PostgreSQL 13.
      type: int
      returned: always
wal_receiver:
  description:
    - The standby's WAL receiver (C(pg_stat_wal_receiver)); null on a primary, or on a
      standby whose receiver is not running.
  returned: always
  type: dict
  contains:
    pid:
      description: Process id of the WAL receiver.
      type: int
    status:
      description: V(streaming), V(starting), V(waiting), V(restarting), V(stopping) or V(stopped).
      type: str
      sample: streaming
    sender_host:
      description: Host (or socket directory) of the upstream server; null before PostgreSQL 11.
      type: str
      sample: 10.0.0.11
    sender_port:
      description: Port of the upstream server; null before PostgreSQL 11.
      type: int
      sample: 5432
    slot_name:
      description: Slot used on the upstream server, or null.
      type: str
    receive_start_lsn:
      description: Position the receiver started at.
      type: str
    receive_start_tli:
      description: Timeline the receiver started on.
      type: int
    written_lsn:
      description: Last position written to disk (not yet flushed); null before PostgreSQL 13.
      type: str
    flushed_lsn:
      description: Last position received and flushed (C(received_lsn) before PostgreSQL 13).
      type: str
    received_tli:
      description: Timeline of RV(wal_receiver.flushed_lsn).
      type: int
    last_msg_send_time:
      description: Send time of the last message from the upstream server (ISO 8601).
      type: str
    last_msg_receipt_time:
      description: Receipt time of the last message from the upstream server (ISO 8601).
      type: str
    latest_end_lsn:
      description: Last position reported back to the upstream server.
      type: str
    latest_end_time:
      description: Time of RV(wal_receiver.latest_end_lsn) (ISO 8601).
      type: str
replay:
  description: The standby's own received and replayed positions and replay lag; null on a primary.
  returned: always
  type: dict
  contains:
    received_lsn:
      description:
        - Last position received and flushed, from the WAL receiver, else
          C(pg_last_wal_receive_lsn()); null when nothing was streamed since the server started.
      type: str
    replayed_lsn:
      description: Last position replayed (C(pg_last_wal_replay_lsn())).
      type: str
    lag_bytes:
      description:
        - Bytes received but not replayed yet.
        - Null (unknown) when RV(replay.received_lsn) is, or when no WAL receiver is streaming
          from the primary (a standby cut off from its primary cannot know its lag).
      type: int
      sample: 0
    lag_seconds:
      description:
        - V(0) when everything received is replayed, else seconds since the last replayed
          transaction committed on the primary; null (unknown) when nothing was replayed yet or
          no WAL receiver is streaming.
      type: float
      sample: 0.0
    streaming:
      description: Whether a WAL receiver is streaming from the primary.
      type: bool
      sample: true
    last_replay_time:
      description: Commit time of the last replayed transaction (ISO 8601), or null.
      type: str
    paused:
      description: Whether replay is paused (C(pg_wal_replay_pause())).
      type: bool
      sample: false
    pause_state:
      description: V(not paused), V(pause requested) or V(paused).
      type: str
      sample: not paused
archiver:
  description: The WAL archiver's counters (C(pg_stat_archiver)) and C(archive_mode).
  returned: always
  type: dict
  contains:
    archive_mode:
      description: V(off), V(on) or V(always).
      type: str
      sample: "off"
    archived_count:
      description: WAL files archived successfully.
      type: int
    last_archived_wal:
      description: Name of the last WAL file archived.
      type: str
    last_archived_time:
      description: When it was archived (ISO 8601).
      type: str
    failed_count:
      description: Failed archiving attempts.
      type: int
      sample: 0
    last_failed_wal:
      description: Name of the WAL file of the last failed attempt.
      type: str
    last_failed_time:
      description: When the last attempt failed (ISO 8601).
      type: str
    stats_reset:
      description: When these counters were last reset (ISO 8601).
      type: str
    ready_visible:
      description: Whether the login role could list C(pg_wal/archive_status); V(false) also where this server does not archive.
      type: bool
      sample: true
    ready_count:
      description: WAL files waiting to be archived (C(.ready) files); null when not visible.
      type: int
      sample: 0
    oldest_ready_wal:
      description: The oldest WAL file waiting to be archived, or null.
      type: str
    oldest_ready_seconds:
      description: Seconds the oldest WAL file has waited to be archived, or null.
      type: float
    failing:
      description:
        - Whether the archiver is still failing; see O(expect_archiving). V(false) where it does not
          archive (C(archive_mode) V(off), or V(on) on a standby).
      type: bool
      sample: false
problems:
  description:
    - One line per threshold exceeded or expectation not met (empty without any); the module fails
      when there is any, with these lines joined by C(; ) as its message.
  returned: always
  type: list
  elements: str
  sample: ["replica2: replay lag 123456 bytes > 100000", "replica3: not connected"]
extensions:
  description:
    - With O(extensions) or O(expect_extensions), one entry per extension of each database that allows
      connections (an entry with C(error) for a database that could not be read).
  returned: when asked for
  type: list
  elements: dict
  contains:
    database:
      description: The database.
      type: str
    name:
      description: The extension (C(pg_extension.extname)).
      type: str
    version:
      description: Its installed version in that database.
      type: str
    available:
      description: Whether this server has a control file for that version (C(pg_available_extension_versions)).
      type: bool
    control_file:
      description: Where that control file is (C(SHAREDIR/extension/NAME.control)), null when unknown.
      type: str
    libraries:
      description:
        - The C libraries its functions load, each with C(library) (as C(pg_proc.probin) names it), C(paths) (the
          files PostgreSQL tries), C(found) (the file exists), C(path) (the file found), C(loadable) (C(LOAD)
          succeeded) and C(error); C(found) and C(loadable) are null when they cannot be told.
      type: list
      elements: dict
    error:
      description: Why the database's extensions could not be read.
      type: str
  sample:
    - {database: catmaid, name: postgis, version: 3.1.1, available: true,
       control_file: /usr/share/postgresql/13/extension/postgis.control,
       libraries: [{library: $libdir/postgis-3, found: true, loadable: true, path: /usr/lib/postgresql/13/lib/postgis-3.so,
                    paths: [/usr/lib/postgresql/13/lib/postgis-3, /usr/lib/postgresql/13/lib/postgis-3.so], error: ""}]}
extensions_error:
  description: Why the extensions could not be read at all (null when they could), with O(extensions).
  returned: when asked for
  type: str
extension_packages:
  description: Path to package (C(dpkg-query -S)) of the extension files found on this server; {} without dpkg.
  returned: when asked for
  type: dict
  sample: {/usr/lib/postgresql/13/lib/postgis-3.so: postgresql-13-postgis-3}
queries:
  description: The SQL statements run.
  returned: always
  type: list
  elements: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.catmaid.replication.plugins.module_utils import _extensions, _pg
from ansible_collections.catmaid.replication.plugins.module_utils._lag import (
    DEFAULT_MAX_ARCHIVE_READY_SECONDS,
    archive_ready_query,
    archiver_failing,
    archiving,
    current_lsn_expression,
    evaluate,
    jsonable,
    normalize_expect_streaming,
    standby_replay,
    status_queries,
)

VERSION = ("SELECT current_setting('server_version') AS server_version, "
           "current_setting('server_version_num')::int AS server_version_num, "
           "pg_catalog.pg_is_in_recovery() AS in_recovery, "
           "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) "
           "OR pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats, "
           "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser")
# PostgreSQL 12+: may this login list pg_wal/archive_status (pg_monitor, or a superuser)?
STATUS_DIR_PRIVILEGE = ("SELECT pg_catalog.has_function_privilege('pg_catalog.pg_ls_archive_statusdir()', "
                        "'EXECUTE') AS allowed")


def collect(conn) -> dict[str, Any]:
    """Read every part of the status; returns the module result without thresholds applied."""
    executed = [VERSION]
    head = _pg.fetch_one(conn, VERSION) or {}
    in_recovery = bool(head.get('in_recovery'))
    version_num = int(head['server_version_num'])
    queries = status_queries(version_num, in_recovery)

    current_sql = f'SELECT {current_lsn_expression(in_recovery)}::text AS lsn'
    executed.append(current_sql)
    current = (_pg.fetch_one(conn, current_sql) or {}).get('lsn')

    def run_all(key: str) -> list[dict[str, Any]]:
        executed.append(queries[key])
        return [jsonable(row) for row in _pg.fetch_all(conn, queries[key])]

    replicas = run_all('replicas')
    slots = run_all('slots')
    archiver_rows = run_all('archiver')
    wal_receiver = None
    replay = None
    if in_recovery:
        receivers = run_all('wal_receiver')
        wal_receiver = receivers[0] if receivers else None
        replay_rows = run_all('replay')
        replay = standby_replay(replay_rows[0] if replay_rows else {}, wal_receiver)

    archiver = archiver_rows[0] if archiver_rows else None
    if archiver is not None:
        archiver['failing'] = archiver_failing(archiver, in_recovery)
        archiver.update(ready_visible=False, ready_count=None, oldest_ready_wal=None, oldest_ready_seconds=None)
        if archiving(archiver, in_recovery):
            allowed = False
            if version_num >= 120000:
                executed.append(STATUS_DIR_PRIVILEGE)
                allowed = bool((_pg.fetch_one(conn, STATUS_DIR_PRIVILEGE) or {}).get('allowed'))
            ready_sql = archive_ready_query(version_num, allowed, bool(head.get('superuser')))
            if ready_sql is not None:
                executed.append(ready_sql)
                ready = jsonable(_pg.fetch_one(conn, ready_sql) or {})
                name = ready.get('oldest_ready_name')
                archiver.update(ready_visible=True, ready_count=int(ready.get('ready_count') or 0),
                                oldest_ready_wal=name[:-len('.ready')] if name else None,
                                oldest_ready_seconds=ready.get('oldest_ready_seconds'))
    return dict(
        changed=False,
        role='standby' if in_recovery else 'primary',
        in_recovery=in_recovery,
        read_all_stats=bool(head.get('read_all_stats')),
        server_version=head.get('server_version'),
        server_version_num=version_num,
        current_lsn=current,
        replicas=replicas,
        slots=slots,
        wal_receiver=wal_receiver,
        replay=replay,
        archiver=archiver,
        problems=[],
        queries=executed,
    )


def main() -> None:
    argument_spec = _pg.connection_argument_spec()
    argument_spec.update(
        max_lag_bytes=dict(type='int'),
        max_lag_seconds=dict(type='float'),
        expect_streaming=dict(type='raw'),
        expect_archiving=dict(type='bool', default=False),
        expect_replaying=dict(type='bool', default=False),
        max_archive_ready_seconds=dict(type='float', default=DEFAULT_MAX_ARCHIVE_READY_SECONDS),
        apply_delays=dict(type='dict'),
        extensions=dict(type='bool', default=False),
        expect_extensions=dict(type='bool', default=False),
        extension_packages=dict(type='dict'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        expect = normalize_expect_streaming(params['expect_streaming'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for key in ('max_lag_bytes', 'max_lag_seconds', 'max_archive_ready_seconds'):
        if params[key] is not None and params[key] < 0:
            module.fail_json(msg=f'{key} must not be negative, got {params[key]}')
    apply_delays: dict[str, float] = {}
    for name, value in (params['apply_delays'] or {}).items():
        try:
            seconds = float(value if value not in (None, '') else 0)
        except (TypeError, ValueError):
            seconds = -1.0
        if seconds < 0 or isinstance(value, bool):
            module.fail_json(msg=f'apply_delays: the delay of {name} must be a number of seconds, 0 or more, got {value!r}')
        apply_delays[str(name)] = seconds

    conn = _pg.connect(module)
    pg_errors = (_pg.psycopg2.Error,) if _pg.psycopg2 is not None else ()
    try:
        result = collect(conn)
    except pg_errors as exc:
        module.fail_json(msg=f'PostgreSQL error while reading the replication status: {str(exc).strip()}')
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    finally:
        conn.close()

    if params['extensions'] or params['expect_extensions']:
        # Its own connections and errors: whatever a database holds, the replication status above stands.
        read = _extensions.read_extensions(module)
        result.update(extensions=read['extensions'], extensions_error=read['error'],
                      extension_packages=_extensions.file_packages(module, read))
    result['problems'] = evaluate(result['in_recovery'], result['replicas'], result['wal_receiver'],
                                  result['replay'], max_lag_bytes=params['max_lag_bytes'],
                                  max_lag_seconds=params['max_lag_seconds'], expect_streaming=expect,
                                  read_all_stats=result['read_all_stats'], slots=result['slots'],
                                  archiver=result['archiver'], expect_archiving=params['expect_archiving'],
                                  expect_replaying=params['expect_replaying'],
                                  max_archive_ready_seconds=params['max_archive_ready_seconds'],
                                  apply_delays=apply_delays)
    if params['expect_extensions']:
        if result['extensions_error']:
            result['problems'].append(f"{result['role']}: the extensions could not be read: {result['extensions_error']}")
        result['problems'] += _extensions.problems(result['extensions'], params['extension_packages'], result['role'])
    if not result['read_all_stats']:
        module.warn(f"{params['login_user']} is neither a superuser nor a member of pg_monitor "
                    '(pg_read_all_stats): the states, positions and lags of the standbys are hidden (null)')
    if result['problems']:
        module.fail_json(msg='; '.join(result['problems']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
