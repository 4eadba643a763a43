#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: standby_signal
short_description: Put a cloned PostgreSQL data directory into standby mode, or promote it
version_added: 0.1.0
description:
  - Configures a data directory cloned from a primary (for example with C(pg_basebackup)) as a
    streaming standby of that primary, the way its PostgreSQL major version expects it. The
    major version is read from the C(PG_VERSION) file of O(data_dir).
  - PostgreSQL 12 and later get an empty C(standby.signal) in O(data_dir) plus the settings
    C(primary_conninfo), C(primary_slot_name), C(restore_command),
    C(recovery_target_timeline), C(recovery_min_apply_delay) (O(apply_delay)) (and C(promote_trigger_file) on 12 to 15) in one include file,
    O(settings_file), that the module owns as a whole. C(postgresql.conf) itself is never edited.
  - PostgreSQL 10 and 11 get C(recovery.conf) in O(data_dir) with C(standby_mode = 'on') and the
    same settings (C(trigger_file) instead of C(promote_trigger_file)).
  - The replication password is written only to a libpq password file, O(passfile), outside the
    data directory; C(primary_conninfo) names that file instead of holding the password.
  - Settings of the managed names found in C(postgresql.auto.conf) (for example those written by
    C(pg_basebackup -R), which may hold a password) would override the managed file, so they are
    removed from it (PostgreSQL 12 and later).
  - With O(state=promoted) a running standby is promoted (C(pg_promote()) on 12 and later,
    C(pg_ctl promote) on 10 and 11), the module waits until it has left recovery and removes the
    standby configuration.
  - The module does not restart or reload the server. It returns RV(restart_required) and
    RV(reload_required) so that a handler can do what is needed.
extends_documentation_fragment:
  - catmaid.replication.connection
options:
  data_dir:
    description:
      - The data directory (PGDATA) to configure. It must hold C(PG_VERSION).
    type: path
    required: true
  state:
    description:
      - V(standby) makes O(data_dir) a standby of O(primary_host).
      - V(promoted) makes it a primary. A running standby is promoted through the server (the
        connection options must reach it) and the standby configuration is removed afterwards.
        Before anything changes, the server's C(data_directory) must be O(data_dir); the module
        fails naming both when the connection reaches another server.
      - For a B(stopped) standby, V(promoted) only removes C(standby.signal) (C(recovery.conf) on
        10 and 11) and the standby settings, so the server starts as a primary after replaying
        the WAL it has locally. It then stays on the old timeline (the module warns); promote a
        running standby when it is possible.
    type: str
    choices: [standby, promoted]
    default: standby
  primary_host:
    description:
      - Host name or address of the primary (or of a proxy in front of it). Required with
        O(state=standby).
      - Several hosts may be given separated by commas (libpq multi-host syntax); the password file
        then gets one line per host.
    type: str
  primary_port:
    description:
      - Port of the primary.
    type: int
    default: 5432
  replication_user:
    description:
      - Role with the REPLICATION attribute the standby connects as. Required with
        O(state=standby).
    type: str
  password:
    description:
      - Password of O(replication_user). Written only to O(passfile) (mode 0600), never to a
        configuration file, a command line or the module's result.
      - When omitted, O(passfile) is neither written nor named in C(primary_conninfo) unless
        O(passfile) is given explicitly (then you manage that file yourself).
      - Must not be empty (libpq would take an empty password for none).
    type: str
  passfile:
    description:
      - libpq password file for the replication connection.
      - Defaults to C(replication.pgpass) in the parent directory of O(data_dir) (for Debian's
        C(/var/lib/postgresql/15/main) that is C(/var/lib/postgresql/15/replication.pgpass)),
        which is outside the data directory, so base backups never copy it.
      - The whole file is managed; its directory must exist.
    type: path
  sslmode:
    description:
      - libpq C(sslmode) of the replication connection.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: require
  sslrootcert:
    description:
      - CA certificate file on the standby host to verify the primary with (for
        O(sslmode=verify-ca) or O(sslmode=verify-full)).
    type: path
  channel_binding:
    description:
      - libpq C(channel_binding) of the replication connection. With V(require) the standby
        connects only when SCRAM authentication is bound to the TLS channel
        (C(SCRAM-SHA-256-PLUS)), so neither a relay in the middle nor a server that lets it in
        without the password can pass for the primary.
      - V(auto) writes C(channel_binding=require) on PostgreSQL 13 and later when O(sslmode) is
        V(require), V(verify-ca) or V(verify-full) and a password (O(password) or O(passfile)) is
        used; otherwise it writes nothing (libpq's default).
      - V(require), V(prefer) and V(disable) are written as they are (PostgreSQL 13 and later).
    type: str
    choices: [auto, require, prefer, disable]
    default: auto
  application_name:
    description:
      - Name the standby reports to the primary (C(pg_stat_replication.application_name),
        C(synchronous_standby_names)). Defaults to the short host name of the managed host.
    type: str
  slot:
    description:
      - Physical replication slot on the primary to stream from (C(primary_slot_name)). The
        slot must exist on the primary.
    type: str
  restore_command:
    description:
      - Shell command that restores an archived WAL file (C(restore_command)), for example
        C(cp /var/lib/postgresql/wal_archive/%f "%p").
    type: str
  trigger_file:
    description:
      - Path whose creation promotes the standby (C(trigger_file) on 10 and 11,
        C(promote_trigger_file) on 12 to 15).
      - PostgreSQL 16 removed C(promote_trigger_file); there the option is not written and a
        warning is given. Use O(state=promoted) instead.
    type: path
  settings_file:
    description:
      - The include file that holds the standby settings on PostgreSQL 12 and later, for example
        C(/etc/postgresql/15/main/conf.d/50-standby.conf) on Debian (whose C(postgresql.conf)
        reads C(conf.d)). The server must read this file; the module owns all of its content.
      - Required with O(state=standby) on PostgreSQL 12 and later. Not used on 10 and 11.
      - Must not be C(postgresql.conf) or C(postgresql.auto.conf).
    type: path
  recovery_target_timeline:
    description:
      - C(recovery_target_timeline); V(latest) follows the primary across promotions.
    type: str
    default: latest
  apply_delay:
    description:
      - Delay the replay of each transaction on this standby (C(recovery_min_apply_delay)), so
        that rows deleted or overwritten by mistake on the primary can still be read here for that
        long. The standby receives and flushes WAL at once; only the replay of commits waits (the
        lock of a C(DROP TABLE) or C(TRUNCATE) is taken at once and blocks reads of that table).
      - V(0), an empty string or null means no delay (the setting is not written). Otherwise a
        whole number with a unit, V(ms), V(s), V(min), V(h) or V(d), for example V(30s) or
        V(1h); a number without a unit is refused (PostgreSQL would read milliseconds). At most
        24 days.
      - Takes effect on reload on PostgreSQL 12 and later (in C(recovery.conf) on 10 and 11, on restart).
    type: str
  wait_timeout:
    description:
      - Seconds to wait for a promotion to finish (O(state=promoted)).
    type: int
    default: 60
  pg_bin_dir:
    description:
      - Directory of the PostgreSQL server binaries (C(pg_ctl)), needed to promote on 10 and 11.
        Defaults to Debian's C(/usr/lib/postgresql/<major>/bin).
    type: path
  owner:
    description:
      - OS user owning the written files (with its primary group). Applied when the module runs
        as root; run the task as this user otherwise.
    type: str
    default: postgres
attributes:
  check_mode:
    description: Reports what would change and writes nothing, promotes nothing.
    support: full
  diff_mode:
    description:
      - "Shows the managed files before and after. The password file's content is never shown,
        only the line C(passfile: changed)."
    support: full
  platform:
    description: Hosts running PostgreSQL on a POSIX system.
    support: full
    platforms: posix
notes:
  - Run the task as the OS user owning the data directory (C(become_user=postgres)); promotion on
    PostgreSQL 10 and 11 runs C(pg_ctl), which refuses to run as root (as root, the module runs it
    through C(runuser -u) O(owner)).
  - Files are written atomically with mode 0600 and owned by O(owner).
  - On PostgreSQL 13 and later C(primary_conninfo) and C(primary_slot_name) take effect on reload;
    on 12 (and in C(recovery.conf)) they need a restart. RV(restart_required) and
    RV(reload_required) follow this.
  - A changed password only rewrites O(passfile); the standby uses it the next time it connects,
    so neither a restart nor a reload is reported for it.
  - The module refuses to put a running primary into standby mode; stop it first.
seealso:
  - name: PostgreSQL documentation, standby server setup
    description: Settings of a streaming standby.
    link: https://www.postgresql.org/docs/current/warm-standby.html#STANDBY-SERVER-SETUP
  - name: libpq password file
    description: Format of the password file.
    link: https://www.postgresql.org/docs/current/libpq-pgpass.html
author:
  - catmaid.replication developers (@catmaid)
"""

EXAMPLES = r"""
- name: Configure the clone as a standby of the primary (Debian, PostgreSQL 15)
  catmaid.replication.standby_signal:
    data_dir: /var/lib/postgresql/15/main
    settings_file: /etc/postgresql/15/main/conf.d/50-standby.conf
    primary_host: db-primary.example.org
    primary_port: 5432
    replication_user: replicator
    password: "{{ vault_replication_password }}"
    slot: replica1
    sslmode: verify-full
    sslrootcert: /etc/postgresql/15/main/primary-ca.crt
  become: true
  become_user: postgres
  register: standby

- name: A delayed standby, one hour behind the primary in what it replays
  catmaid.replication.standby_signal:
    data_dir: /var/lib/postgresql/15/main
    settings_file: /etc/postgresql/15/main/conf.d/50-standby.conf
    primary_host: db-primary.example.org
    replication_user: replicator
    password: "{{ vault_replication_password }}"
    slot: replica_delayed
    apply_delay: 1h
  become: true
  become_user: postgres

- name: Restart PostgreSQL when the standby configuration needs it
  ansible.builtin.service:
    name: postgresql@15-main
    state: restarted
  when: standby.restart_required

- name: Promote the standby to a primary
  catmaid.replication.standby_signal:
    data_dir: /var/lib/postgresql/15/main
    settings_file: /etc/postgresql/15/main/conf.d/50-standby.conf
    state: promoted
    wait_timeout: 120
  become: true
  become_user: postgres
"""

RETURN = r"""
pg_version:
  description: Major version of the data directory (from C(PG_VERSION)).
  returned: always
  type: int
  sample: 15
restart_required:
  description:
    - Whether the server must be (re)started for the configuration to apply. True when the
      signal file (C(standby.signal) or C(recovery.conf)) was created, or a setting read only at
      start changed on a running server.
  returned: always
  type: bool
  sample: true
reload_required:
  description:
    - Whether a reload (SIGHUP) applies the change on the running server. Never true together with
      RV(restart_required).
  returned: always
  type: bool
  sample: false
running:
  description: Whether a server was running on O(data_dir) when the module started.
  returned: always
  type: bool
  sample: false
files:
  description: Paths written (or that would be written in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/postgresql/15/replication.pgpass, /etc/postgresql/15/main/conf.d/50-standby.conf,
           /var/lib/postgresql/15/main/standby.signal]
removed:
  description: Paths removed (or that would be removed in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/postgresql/15/main/standby.signal]
primary_conninfo:
  description: The C(primary_conninfo) written (it holds no password).
  returned: when O(state=standby)
  type: str
  sample: "host='db-primary.example.org' port='5432' user='replicator' passfile='/var/lib/postgresql/15/replication.pgpass'
    sslmode='require' application_name='replica1'"
settings:
  description: The managed settings written, by name.
  returned: when O(state=standby)
  type: dict
  sample: {primary_slot_name: replica1, recovery_target_timeline: latest, recovery_min_apply_delay: 1h}
queries:
  description: SQL statements run on the server.
  returned: always
  type: list
  elements: str
  sample: ["SELECT pg_promote(wait => true, wait_seconds => 60)"]
command:
  description: The C(pg_ctl promote) command run on PostgreSQL 10 and 11.
  returned: when a server of major 10 or 11 was promoted
  type: list
  elements: str
  sample: [/usr/lib/postgresql/11/bin/pg_ctl, promote, -D, /var/lib/postgresql/11/main, -w, -t, '60']
"""

import os
import socket
import stat
import time
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.catmaid.replication.plugins.module_utils._pg import (
    connect, connection_argument_spec, fetch_one, psycopg2, server_info)
from ansible_collections.catmaid.replication.plugins.module_utils._pgdata import (
    find_bin_dir, postmaster_running, read_pg_version, read_text, user_ids, write_file_atomic)
from ansible_collections.catmaid.replication.plugins.module_utils._standby import (
    CHANNEL_BINDING_CHOICES, MIN_MAJOR, RECOVERY_CONF, STANDBY_KEYS, StandbyOptions, apply_mode,
    changed_keys, channel_binding_setting, parse_apply_delay,
    parse_conf, pgpass_content, promoted_settings_content, redact_for_diff, standby_config,
    strip_settings, version_profile)

FILE_MODE = 0o600
AUTO_CONF = 'postgresql.auto.conf'
FORBIDDEN_SETTINGS_FILES = ('postgresql.conf', AUTO_CONF)


def argument_spec() -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = dict(
        data_dir=dict(type='path', required=True),
        state=dict(type='str', choices=['standby', 'promoted'], default='standby'),
        primary_host=dict(type='str'),
        primary_port=dict(type='int', default=5432),
        replication_user=dict(type='str'),
        password=dict(type='str', no_log=True),
        passfile=dict(type='path', no_log=False),
        sslmode=dict(type='str', default='require',
                     choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
        sslrootcert=dict(type='path'),
        channel_binding=dict(type='str', default='auto', choices=list(CHANNEL_BINDING_CHOICES)),
        application_name=dict(type='str'),
        slot=dict(type='str'),
        restore_command=dict(type='str'),
        trigger_file=dict(type='path'),
        settings_file=dict(type='path'),
        recovery_target_timeline=dict(type='str', default='latest'),
        apply_delay=dict(type='str'),
        wait_timeout=dict(type='int', default=60),
        pg_bin_dir=dict(type='path'),
        owner=dict(type='str', default='postgres'),
    )
    spec.update(connection_argument_spec())
    return spec


class Plan:
    """Files to write and remove, with diff entries; nothing touches the disk until apply()."""

    def __init__(self, module: AnsibleModule, owner: tuple[int, int]):
        self.module = module
        self.owner = owner
        self.writes: list[tuple[str, str]] = []
        self.removals: list[str] = []
        self.diff: list[dict[str, str]] = []

    def _attributes_wrong(self, path: str) -> bool:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) != FILE_MODE:
            return True
        return os.geteuid() == 0 and (st.st_uid, st.st_gid) != self.owner

    def write(self, path: str, before: Optional[str], after: str, secret: bool = False) -> bool:
        """Plan ``after`` into ``path`` when content, mode or owner differ; True if planned."""
        if before == after and not self._attributes_wrong(path):
            return False
        self.writes.append((path, after))
        if secret:
            self.diff.append(dict(before_header=path, after_header=path, before='',
                                  after='passfile: changed\n'))
        else:
            self.diff.append(dict(before_header=path if before is not None else f'{path} (absent)',
                                  after_header=path, before=redact_for_diff(before) or '',
                                  after=redact_for_diff(after) or ''))
        return True

    def remove(self, path: str, before: Optional[str]) -> bool:
        if not os.path.lexists(path):
            return False
        self.removals.append(path)
        self.diff.append(dict(before_header=path, after_header=f'{path} (removed)',
                              before=redact_for_diff(before) or '', after=''))
        return True

    @property
    def changed(self) -> bool:
        return bool(self.writes or self.removals)

    def apply(self) -> None:
        for path, content in self.writes:
            try:
                write_file_atomic(path, content, mode=FILE_MODE, owner=self.owner)
            except OSError as exc:
                self.module.fail_json(msg=f'Could not write {path}: {exc.strerror or exc}')
        for path in self.removals:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.module.fail_json(msg=f'Could not remove {path}: {exc.strerror or exc}')


def read_or_fail(module: AnsibleModule, path: str) -> Optional[str]:
    try:
        return read_text(path)
    except OSError as exc:
        module.fail_json(msg=f'Could not read {path}: {exc.strerror or exc}')
    return None  # pragma: no cover - fail_json exits


def check_settings_file(module: AnsibleModule, settings_file: str) -> None:
    if os.path.basename(settings_file) in FORBIDDEN_SETTINGS_FILES:
        module.fail_json(msg=f'settings_file must be an include file of its own, not '
                             f'{os.path.basename(settings_file)} ({settings_file}): the module '
                             f'owns the whole file.')
    if not os.path.isdir(os.path.dirname(settings_file)):
        module.fail_json(msg=f'The directory of settings_file {settings_file} does not exist.')


def plan_auto_conf(module: AnsibleModule, plan: Plan, data_dir: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Drop managed settings from postgresql.auto.conf; return the ones it held."""
    path = os.path.join(data_dir, AUTO_CONF)
    before = read_or_fail(module, path)
    held = {k: v for k, v in parse_conf(before).items() if k in keys}
    if held:
        module.warn(f"Removing {', '.join(sorted(held))} from {path}: the settings there would "
                    f"override the managed standby configuration.")
        plan.write(path, before, strip_settings(before, keys) or '')
    return held


def standby(module: AnsibleModule, data_dir: str, major: int, running: bool, plan: Plan,
            result: dict[str, Any]) -> None:
    p = module.params
    profile = version_profile(major)
    settings_file = os.path.abspath(p['settings_file']) if p['settings_file'] else None
    if not profile.uses_recovery_conf:
        if not settings_file:
            module.fail_json(msg=f'settings_file is required with state=standby on PostgreSQL '
                                 f'{major} (12 and later keep the standby settings in an include '
                                 f'file, for example /etc/postgresql/{major}/main/conf.d/'
                                 f'50-standby.conf on Debian).')
        check_settings_file(module, settings_file)
    signal_path = os.path.join(data_dir, profile.signal_file)
    if running and not os.path.exists(signal_path):
        module.fail_json(msg=f'A server is running on {data_dir} and it is not a standby (no '
                             f'{profile.signal_file}): refusing to turn a running primary into a '
                             f'standby. Stop it first (and make sure its timeline fits the '
                             f'primary, for example with pg_rewind).')

    passfile = os.path.abspath(p['passfile'] or os.path.join(os.path.dirname(data_dir), 'replication.pgpass'))
    if os.path.commonpath([passfile, data_dir]) == data_dir:
        module.warn(f'passfile {passfile} is inside the data directory: base backups copy it.')
    use_passfile = bool(p['password'] or p['passfile'])
    application_name = p['application_name'] or socket.gethostname().split('.')[0]
    try:
        channel_binding = channel_binding_setting(p['channel_binding'], major, p['sslmode'], use_passfile)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        apply_delay, dummy = parse_apply_delay(p['apply_delay'])
    except ValueError as exc:
        module.fail_json(msg=f'Invalid apply_delay: {exc}. Nothing was changed.')
    options = StandbyOptions(
        primary_host=p['primary_host'], primary_port=p['primary_port'],
        replication_user=p['replication_user'], passfile=passfile if use_passfile else None,
        sslmode=p['sslmode'], sslrootcert=p['sslrootcert'], channel_binding=channel_binding,
        application_name=application_name,
        slot=p['slot'], restore_command=p['restore_command'], trigger_file=p['trigger_file'],
        recovery_target_timeline=p['recovery_target_timeline'], apply_delay=apply_delay)
    try:
        config = standby_config(major, options)
    except ValueError as exc:
        module.fail_json(msg=f'Invalid standby option: {exc}')
    for warning in config.warnings:
        module.warn(warning)
    wanted = dict(config.settings)

    # Password file first: the server must never start with settings naming a missing file.
    if p['password']:
        if not os.path.isdir(os.path.dirname(passfile)):
            module.fail_json(msg=f'The directory of passfile {passfile} does not exist.')
        try:
            content = pgpass_content(p['primary_host'], p['primary_port'], p['replication_user'],
                                     p['password'])
        except ValueError as exc:
            module.fail_json(msg=f'Cannot write the password file: {exc}')
        plan.write(passfile, read_or_fail(module, passfile), content, secret=True)

    if profile.uses_recovery_conf:
        before_text = read_or_fail(module, signal_path)
        signal_created = before_text is None
        before = parse_conf(before_text)
        plan.write(signal_path, before_text, config.content)
    else:
        before_text = read_or_fail(module, settings_file)
        before = parse_conf(before_text)
        held = plan_auto_conf(module, plan, data_dir, tuple(sorted(set(STANDBY_KEYS) | set(wanted))))
        before.update(held)  # postgresql.auto.conf wins over the include file
        plan.write(settings_file, before_text, config.content)
        stale = os.path.join(data_dir, RECOVERY_CONF)
        if os.path.exists(stale):
            module.warn(f'Removing {stale}: PostgreSQL {major} refuses to start with it.')
            plan.remove(stale, read_or_fail(module, stale))
        signal_created = not os.path.exists(signal_path)
        if signal_created:
            plan.write(signal_path, None, config.signal_content or '')
        else:
            plan.write(signal_path, '', '')  # fixes mode/owner only; the content is not read

    keys = changed_keys({k: v for k, v in before.items() if k in profile.contexts}, wanted)
    restart, reload_ = apply_mode(major, keys, signal_created, running)
    result.update(restart_required=restart, reload_required=reload_,
                  primary_conninfo=config.conninfo,
                  settings={k: v for k, v in config.settings if k != 'primary_conninfo'})
    if not module.check_mode:
        plan.apply()


def pg_ctl_promote_argv(bin_dir: str, data_dir: str, timeout: int, owner: str,
                        euid: int) -> list[str]:
    """pg_ctl promote, through runuser when running as root (pg_ctl refuses root)."""
    argv = [os.path.join(bin_dir, 'pg_ctl'), 'promote', '-D', data_dir, '-w', '-t', str(timeout)]
    if euid == 0:
        argv = ['runuser', '-u', owner, '--'] + argv
    return argv


def wait_out_of_recovery(module: AnsibleModule, conn, timeout: int, queries: list[str]) -> None:
    query = 'SELECT pg_is_in_recovery() AS in_recovery'
    queries.append(query)
    deadline = time.monotonic() + timeout
    while True:
        row = fetch_one(conn, query)
        if row is not None and not row['in_recovery']:
            return
        if time.monotonic() >= deadline:
            module.fail_json(msg=f'The server is still in recovery {timeout}s after the promotion '
                                 f'request (wait_timeout).', queries=queries)
        time.sleep(0.2)


def promote(module: AnsibleModule, data_dir: str, major: int, running: bool, plan: Plan,
            result: dict[str, Any]) -> None:
    p = module.params
    profile = version_profile(major)
    queries: list[str] = result['queries']
    timeout = p['wait_timeout']
    signal_path = os.path.join(data_dir, profile.signal_file)
    promoting = False
    if running:
        conn = connect(module)
        try:
            info = server_info(conn)
            queries.append('SELECT pg_is_in_recovery()')
            if info['major'] != major:
                module.fail_json(msg=f'The server reached through the connection options runs '
                                     f'PostgreSQL {info["major"]}, but {data_dir} is a {major} data '
                                     f'directory: check login_port/login_unix_socket.')
            # The same major is not the same server: compare its data directory before anything.
            queries.append('SHOW data_directory')
            try:
                row = fetch_one(conn, 'SHOW data_directory')
            except psycopg2.Error as exc:   # psycopg2 is there: connect() checked it
                module.fail_json(msg=f'Could not read the data_directory of the server reached through the '
                                     f'connection options ({str(exc).strip()}): login_user must be a superuser '
                                     f'or a member of pg_read_all_settings, so that the module can check it is '
                                     f'the server of {data_dir} before promoting it.', queries=queries)
            served = row['data_directory'] if row else None
            if not served or os.path.realpath(served) != os.path.realpath(data_dir):
                module.fail_json(msg=f'The server reached through the connection options serves the data '
                                     f'directory {served}, not data_dir {data_dir}: refusing to promote '
                                     f'or change anything. Check login_port/login_unix_socket.',
                                 queries=queries)
            promoting = bool(info['in_recovery'])
            if promoting and not module.check_mode:
                if profile.promote_method == 'pg_promote':
                    query = f'SELECT pg_promote(wait => true, wait_seconds => {int(timeout)}) AS promoted'
                    queries.append(query)
                    row = fetch_one(conn, query)
                    if not row or not row['promoted']:
                        module.fail_json(msg=f'pg_promote() did not finish within {timeout}s '
                                             f'(wait_timeout).', queries=queries)
                else:
                    bin_dir = find_bin_dir(major, p['pg_bin_dir'])
                    if not bin_dir:
                        module.fail_json(msg=f'No PostgreSQL {major} binaries found: set pg_bin_dir.')
                    argv = pg_ctl_promote_argv(bin_dir, data_dir, timeout, p['owner'], os.geteuid())
                    result['command'] = argv
                    rc, out, err = module.run_command(argv)
                    if rc != 0:
                        module.fail_json(msg='pg_ctl promote failed', rc=rc, stdout=out,
                                         stderr=err, command=argv)
                wait_out_of_recovery(module, conn, timeout, queries)
        finally:
            conn.close()

    if not running and os.path.exists(signal_path):
        module.warn(f'{data_dir} is a stopped standby: promoting it only removes {profile.signal_file}, '
                    'so when it starts it ends recovery with the WAL it has and stays on the old '
                    'timeline (no new timeline is chosen). Start it as a standby and promote the '
                    'running server for a proper promotion.')

    # What is left of the standby configuration. A promoted server removed standby.signal
    # itself (12+) or renamed recovery.conf to recovery.done (10, 11).
    if promoting and module.check_mode:
        if profile.promoted_file:
            plan.removals.append(os.path.join(data_dir, profile.promoted_file))
    else:
        plan.remove(signal_path, read_or_fail(module, signal_path) if profile.uses_recovery_conf else '')
        if profile.promoted_file:
            done = os.path.join(data_dir, profile.promoted_file)
            plan.remove(done, read_or_fail(module, done))
    if not profile.uses_recovery_conf:
        settings_file = os.path.abspath(p['settings_file']) if p['settings_file'] else None
        if settings_file:
            check_settings_file(module, settings_file)
            before_text = read_or_fail(module, settings_file)
            if before_text is not None and set(parse_conf(before_text)) & set(STANDBY_KEYS):
                plan.write(settings_file, before_text, promoted_settings_content(major))
        plan_auto_conf(module, plan, data_dir, ('primary_conninfo', 'primary_slot_name'))
    # A primary ignores standby settings: no restart; a reload just tidies pg_settings.
    result.update(restart_required=False,
                  reload_required=bool(running and plan.writes))
    if promoting:
        result['changed'] = True
    if not module.check_mode:
        plan.apply()


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[('state', 'standby', ('primary_host', 'replication_user'))],
    )
    p = module.params
    if p['password'] == '':
        module.fail_json(msg='password must not be empty: libpq would take an empty password for none and '
                             'the standby would use ~/.pgpass or PGPASSWORD instead; give the password, or '
                             'omit the option (and name your own passfile) to use those on purpose.')
    data_dir = os.path.abspath(p['data_dir']).rstrip('/') or '/'
    if not os.path.isdir(data_dir):
        module.fail_json(msg=f'data_dir {data_dir} is not a directory.')
    try:
        major = read_pg_version(data_dir)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f'Could not read {data_dir}/PG_VERSION: {exc}')
    if major is None:
        module.fail_json(msg=f'{data_dir} has no PG_VERSION: not a PostgreSQL data directory '
                             f'(clone it from the primary first).')
    if major < MIN_MAJOR:
        module.fail_json(msg=f'PostgreSQL {major} is not supported (10 or later is).')
    try:
        owner = user_ids(p['owner'])
    except KeyError:
        module.fail_json(msg=f"No OS user {p['owner']!r} (option owner).")

    try:
        running = postmaster_running(data_dir)
    except OSError as exc:
        module.fail_json(msg=f'Could not read {data_dir}/postmaster.pid: {exc.strerror or exc}. Run the '
                             f'task as the owner of the data directory (become_user: postgres).')
    plan = Plan(module, owner)
    result: dict[str, Any] = dict(changed=False, pg_version=major, running=running,
                                  restart_required=False, reload_required=False, queries=[])
    if p['state'] == 'standby':
        standby(module, data_dir, major, running, plan, result)
    else:
        promote(module, data_dir, major, running, plan, result)
    result['changed'] = result['changed'] or plan.changed
    result['files'] = [path for path, dummy in plan.writes]
    result['removed'] = list(plan.removals)
    if module._diff:
        result['diff'] = plan.diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
