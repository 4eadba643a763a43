# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version-dependent standby configuration: pure logic, no I/O.

Everything that differs between PostgreSQL majors for a streaming standby lives here, so one
function answers for every major from 10 on: ``standby_config(major, options)``. It says
which file marks the standby (``recovery.conf`` up to 11, ``standby.signal`` from 12), which
settings go where, whether a change needs a restart or only a reload, and which WAL-related
names the server uses. ``version_profile(major)`` gives the same facts without options.

Quoting helpers follow libpq (conninfo values, ``.pgpass`` fields) and postgresql.conf
(setting values) exactly.

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

MIN_MAJOR = 10
NEWEST_KNOWN_MAJOR = 18

RECOVERY_CONF = 'recovery.conf'
RECOVERY_DONE = 'recovery.done'
STANDBY_SIGNAL = 'standby.signal'

HEADER = ('# Managed by catmaid.replication.standby_signal: do not edit, '
          'changes are overwritten.')

# Settings a standby needs; every one of them is written by this module (when set) and is
# removed from postgresql.auto.conf, where it would silently override the managed file.
STANDBY_KEYS = ('primary_conninfo', 'primary_slot_name', 'restore_command',
                'recovery_target_timeline', 'promote_trigger_file', 'recovery_min_apply_delay')

# recovery_min_apply_delay as the collection takes it: 0 (off) or a whole number with a unit.
# A bare number would be milliseconds to PostgreSQL and seconds to a reader: only 0 goes without one.
_DELAY_RE = re.compile(r'^\s*([0-9]+)\s*(ms|s|min|h|d)?\s*$')
_DELAY_UNITS = {'ms': 0.001, 's': 1, 'min': 60, 'h': 3600, 'd': 86400}
# PostgreSQL's limit for recovery_min_apply_delay: INT_MAX milliseconds (about 24.8 days).
_DELAY_MAX_MS = 2147483647
APPLY_DELAY_HINT = ("0 or null (off), or a whole number with a unit: ms, s, min, h or d, such as '30s', "
                    "'5min' or '1h' (at most 24 days)")


def parse_apply_delay(value: object) -> tuple[Optional[str], float]:
    """``(setting, seconds)`` of a replica's apply delay; ``(None, 0)`` when it is off.

    Accepts None, '' and 0 (off), or a whole number with one of PostgreSQL's time units
    (``ms``, ``s``, ``min``, ``h``, ``d``). Raises ValueError naming the accepted forms otherwise.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, 0.0
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f'apply delay {value!r}: expected {APPLY_DELAY_HINT}')
    match = _DELAY_RE.match(str(value))
    if not match:
        raise ValueError(f'apply delay {value!r}: expected {APPLY_DELAY_HINT}')
    number, unit = int(match.group(1)), match.group(2)
    if number == 0:
        return None, 0.0
    if unit is None:
        raise ValueError(f'apply delay {value!r} has no unit (PostgreSQL would read milliseconds): expected '
                         f'{APPLY_DELAY_HINT}')
    seconds = number * _DELAY_UNITS[unit]
    if seconds * 1000 > _DELAY_MAX_MS:
        raise ValueError(f'apply delay {value!r} is longer than PostgreSQL allows: expected {APPLY_DELAY_HINT}')
    return f'{number}{unit}', float(seconds)


@dataclass(frozen=True)
class VersionProfile:
    """What a PostgreSQL major does for standbys, and the WAL-related names it uses."""

    major: int
    # recovery.conf (10, 11) or standby.signal + ordinary settings (12+)
    uses_recovery_conf: bool
    # file in the data directory whose presence makes the server a standby
    signal_file: str
    # file the server leaves behind after promotion (11: recovery.conf -> recovery.done)
    promoted_file: Optional[str]
    # name of the trigger-file setting, None where the server has none (16+)
    trigger_setting: Optional[str]
    # 'pg_ctl' (pg_ctl promote) or 'pg_promote' (SQL function, 12+)
    promote_method: str
    # setting name -> 'postmaster' (restart) or 'sighup' (reload)
    contexts: Mapping[str, str]
    # WAL-related names
    wal_dir: str
    wal_keep_setting: str
    max_slot_wal_keep_size: Optional[str]
    current_wal_lsn_function: str
    last_wal_receive_lsn_function: str
    last_wal_replay_lsn_function: str
    wal_lsn_diff_function: str
    wal_receiver_lsn_column: str
    wal_receiver_host_column: Optional[str]

    def needs_restart(self, key: str) -> bool:
        return self.contexts.get(key, 'postmaster') == 'postmaster'


def version_profile(major: int) -> VersionProfile:
    """Standby facts for one PostgreSQL major (10 and later; newer than 18 follow 18)."""
    if not isinstance(major, int) or isinstance(major, bool):
        raise TypeError(f'major must be an int, not {major!r}')
    if major < MIN_MAJOR:
        raise ValueError(f'PostgreSQL {major} is not supported (10 or later is)')
    legacy = major < 12
    if legacy:
        # Everything in recovery.conf is read once at start.
        legacy_keys = ('standby_mode', 'primary_conninfo', 'primary_slot_name', 'restore_command',
                       'recovery_target_timeline', 'trigger_file')
        contexts = {k: 'postmaster' for k in legacy_keys}
        contexts['recovery_min_apply_delay'] = 'postmaster'
    else:
        reload_conn = 'sighup' if major >= 13 else 'postmaster'
        contexts = {
            'primary_conninfo': reload_conn,
            'primary_slot_name': reload_conn,
            'restore_command': 'sighup' if major >= 14 else 'postmaster',
            'recovery_target_timeline': 'postmaster',
            'recovery_min_apply_delay': 'sighup',
        }
        if major <= 15:
            contexts['promote_trigger_file'] = 'sighup'
    if legacy:
        trigger: Optional[str] = 'trigger_file'
    elif major <= 15:
        trigger = 'promote_trigger_file'
    else:
        trigger = None
    return VersionProfile(
        major=major,
        uses_recovery_conf=legacy,
        signal_file=RECOVERY_CONF if legacy else STANDBY_SIGNAL,
        promoted_file=RECOVERY_DONE if legacy else None,
        trigger_setting=trigger,
        promote_method='pg_ctl' if legacy else 'pg_promote',
        contexts=contexts,
        wal_dir='pg_wal',
        wal_keep_setting='wal_keep_segments' if major <= 12 else 'wal_keep_size',
        max_slot_wal_keep_size='max_slot_wal_keep_size' if major >= 13 else None,
        current_wal_lsn_function='pg_current_wal_lsn',
        last_wal_receive_lsn_function='pg_last_wal_receive_lsn',
        last_wal_replay_lsn_function='pg_last_wal_replay_lsn',
        wal_lsn_diff_function='pg_wal_lsn_diff',
        wal_receiver_lsn_column='received_lsn' if major <= 12 else 'flushed_lsn',
        wal_receiver_host_column='sender_host' if major >= 11 else None,
    )


# -- quoting -------------------------------------------------------------------------------

def _no_nul(value: str, what: str) -> str:
    if '\0' in value:
        raise ValueError(f'{what} must not contain a NUL character')
    return value


def conninfo_quote(value: object) -> str:
    """One libpq conninfo value: always single-quoted, ``\\`` and ``'`` backslash-escaped."""
    text = _no_nul(str(value), 'a connection parameter')
    return "'" + text.replace('\\', '\\\\').replace("'", "\\'") + "'"


def build_conninfo(params: Iterable[tuple[str, object]]) -> str:
    """``key='value' ...`` from (key, value) pairs; pairs whose value is None are skipped."""
    parts = []
    for key, value in params:
        if value is None:
            continue
        if not re.fullmatch(r'[a-z_]+', key):
            raise ValueError(f'invalid conninfo keyword {key!r}')
        parts.append(f'{key}={conninfo_quote(value)}')
    return ' '.join(parts)


def conf_quote(value: object) -> str:
    """A postgresql.conf (and recovery.conf) string value.

    The server unescapes backslashes in quoted values, so ``\\`` is doubled, ``'`` becomes
    ``''`` and line breaks are written as ``\\n``/``\\r`` (a raw one would end the line).
    """
    text = _no_nul(str(value), 'a setting value')
    text = (text.replace('\\', '\\\\').replace("'", "''")
            .replace('\n', '\\n').replace('\r', '\\r'))
    return "'" + text + "'"


def pgpass_escape(value: object) -> str:
    """One field of a libpq password file: ``\\`` and ``:`` backslash-escaped."""
    text = _no_nul(str(value), 'a password file field')
    if '\n' in text or '\r' in text:
        raise ValueError('a password file field cannot contain a line break')
    return text.replace('\\', '\\\\').replace(':', '\\:')


def pgpass_content(host: str, port: int, user: str, password: str,
                   database: str = 'replication') -> str:
    """Password file lines for a replication connection (one line per host of ``host``)."""
    lines = []
    for one_host in host.split(','):
        one_host = one_host.strip()
        if one_host:
            lines.append(':'.join(pgpass_escape(v) for v in (one_host, port, database, user, password)))
    return '\n'.join(lines) + '\n'


# -- postgresql.conf reading ---------------------------------------------------------------

_KEY_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=\s*)?')
_ESCAPES = {'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}


def _conf_unquote(body: str) -> str:
    """Inverse of conf_quote for the text between the quotes (GUC_scanstr rules)."""
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '\\' and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif nxt in '01234567':
                j = i + 1
                while j < len(body) and j < i + 4 and body[j] in '01234567':
                    j += 1
                out.append(chr(int(body[i + 1:j], 8)))
                i = j
            else:
                out.append(nxt)
                i += 2
        elif ch == "'" and body[i + 1:i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(ch)
            i += 1
    return ''.join(out)


def parse_conf_line(line: str) -> Optional[tuple[str, str]]:
    """``(key, value)`` of one postgresql.conf line (key lower-cased), None for others."""
    match = _KEY_RE.match(line)
    if not match or line.lstrip().startswith('#'):
        return None
    key = match.group(1).lower()
    rest = line[match.end():]
    if rest.startswith("'"):
        i = 1
        while i < len(rest):
            if rest[i] == '\\':
                i += 2
                continue
            if rest[i] == "'":
                if rest[i + 1:i + 2] == "'":
                    i += 2
                    continue
                return key, _conf_unquote(rest[1:i])
            i += 1
        return None  # unterminated quote: not a line we understand
    value = re.split(r'[\s#]', rest, maxsplit=1)[0]
    if not value:
        return None
    return key, value


def parse_conf(text: Optional[str]) -> dict[str, str]:
    """Settings of a postgresql.conf-style text; the last occurrence of a key wins."""
    result: dict[str, str] = {}
    for line in (text or '').splitlines():
        parsed = parse_conf_line(line)
        if parsed is not None:
            result[parsed[0]] = parsed[1]
    return result


def strip_settings(text: Optional[str], keys: Iterable[str]) -> Optional[str]:
    """``text`` without the lines that set one of ``keys`` (None stays None)."""
    if text is None:
        return None
    drop = {k.lower() for k in keys}
    kept = []
    for line in text.splitlines(keepends=True):
        parsed = parse_conf_line(line)
        if parsed is not None and parsed[0] in drop:
            continue
        kept.append(line)
    return ''.join(kept)


def redact_for_diff(text: Optional[str]) -> Optional[str]:
    """``text`` with every primary_conninfo that holds a password replaced by a comment.

    For before/after diffs of files the module did not write itself (an old hand-made
    settings file, ``postgresql.auto.conf`` from ``pg_basebackup -R``).
    """
    if text is None:
        return None
    out = []
    for line in text.splitlines(keepends=True):
        parsed = parse_conf_line(line)
        if parsed is not None and parsed[0] == 'primary_conninfo' and 'password' in parsed[1].lower():
            end = '\n' if line.endswith('\n') else ''
            out.append('# primary_conninfo = (holds a password: not shown)' + end)
        else:
            out.append(line)
    return ''.join(out)


# -- rendering -----------------------------------------------------------------------------

def render_conf(settings: Iterable[tuple[str, str]], comments: Iterable[str] = ()) -> str:
    """The managed file: header, comment lines, then one ``key = 'value'`` line per setting."""
    lines = [HEADER]
    lines.extend('# ' + c if c else '#' for c in comments)
    lines.extend(f'{key} = {conf_quote(value)}' for key, value in settings)
    return '\n'.join(lines) + '\n'


CHANNEL_BINDING_CHOICES = ('auto', 'require', 'prefer', 'disable')
_SSL_ALWAYS = ('require', 'verify-ca', 'verify-full')


def channel_binding_setting(choice: str, major: Optional[int], sslmode: Optional[str],
                            password_auth: bool) -> Optional[str]:
    """The libpq ``channel_binding`` to write, or None to leave it out.

    ``auto`` asks for ``require`` where it is known to work: libpq and server 13 or later
    (``major``; the primary runs the same major), a connection that is always SSL (``sslmode``
    require, verify-ca or verify-full) and password (SCRAM) authentication. Everything else gets
    no setting (libpq's own default, ``prefer`` from 13 on). An explicit value is written as is;
    libpq before 13 does not know the keyword, so it is refused there.
    """
    if choice not in CHANNEL_BINDING_CHOICES:
        raise ValueError(f'channel_binding must be one of {", ".join(CHANNEL_BINDING_CHOICES)}, not {choice!r}')
    if choice != 'auto':
        if major is not None and major < 13:
            raise ValueError(f'channel_binding={choice} needs libpq 13 or later; this is PostgreSQL {major} '
                             '(use channel_binding=auto)')
        return choice
    if major is not None and major >= 13 and sslmode in _SSL_ALWAYS and password_auth:
        return 'require'
    return None


@dataclass(frozen=True)
class StandbyOptions:
    """What the operator asked for; the module fills the defaults in before calling."""

    primary_host: str
    replication_user: str
    primary_port: int = 5432
    passfile: Optional[str] = None
    sslmode: Optional[str] = 'require'
    sslrootcert: Optional[str] = None
    channel_binding: Optional[str] = None
    application_name: Optional[str] = None
    slot: Optional[str] = None
    restore_command: Optional[str] = None
    trigger_file: Optional[str] = None
    recovery_target_timeline: Optional[str] = 'latest'
    # recovery_min_apply_delay as parse_apply_delay returns it (None: not written, no delay)
    apply_delay: Optional[str] = None


@dataclass(frozen=True)
class StandbyConfig:
    """Everything to write for a standby of one major."""

    profile: VersionProfile
    conninfo: str
    # ordered (key, value) pairs of the managed file
    settings: tuple[tuple[str, str], ...]
    # 'recovery.conf' (in the data directory, 10/11) or 'settings_file' (12+)
    settings_target: str
    # full text of the managed file
    content: str
    # text of the signal file when it is not the managed file (standby.signal: empty)
    signal_content: Optional[str]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, dummy in self.settings)


def standby_config(major: int, options: StandbyOptions) -> StandbyConfig:
    """The standby configuration of ``options`` for PostgreSQL ``major`` (10 and later).

    Same inputs always give byte-identical output.
    """
    profile = version_profile(major)
    if not options.primary_host:
        raise ValueError('primary_host is required for a standby')
    if not options.replication_user:
        raise ValueError('replication_user is required for a standby')
    conninfo = build_conninfo([
        ('host', options.primary_host),
        ('port', int(options.primary_port)),
        ('user', options.replication_user),
        ('passfile', options.passfile),
        ('sslmode', options.sslmode),
        ('sslrootcert', options.sslrootcert),
        ('channel_binding', options.channel_binding),
        ('application_name', options.application_name),
    ])
    warnings: list[str] = []
    settings: list[tuple[str, str]] = []
    if profile.uses_recovery_conf:
        settings.append(('standby_mode', 'on'))
    settings.append(('primary_conninfo', conninfo))
    if options.slot:
        settings.append(('primary_slot_name', options.slot))
    if options.restore_command:
        settings.append(('restore_command', options.restore_command))
    if options.recovery_target_timeline:
        settings.append(('recovery_target_timeline', options.recovery_target_timeline))
    if options.apply_delay:
        settings.append(('recovery_min_apply_delay', options.apply_delay))
    if options.trigger_file:
        if profile.trigger_setting:
            settings.append((profile.trigger_setting, options.trigger_file))
        else:
            warnings.append(f'trigger_file is not written: promote_trigger_file was removed in '
                            f'PostgreSQL 16 (this is {major}); promote with state=promoted '
                            f'(pg_promote()) instead.')
    if profile.uses_recovery_conf:
        comments = [f'Standby of {options.primary_host} (PostgreSQL {major}: recovery.conf).']
        return StandbyConfig(profile=profile, conninfo=conninfo, settings=tuple(settings),
                             settings_target=RECOVERY_CONF,
                             content=render_conf(settings, comments),
                             signal_content=None, warnings=tuple(warnings))
    comments = [f'Standby of {options.primary_host} (PostgreSQL {major}: these settings '
                f'plus standby.signal in the data directory).']
    return StandbyConfig(profile=profile, conninfo=conninfo, settings=tuple(settings),
                         settings_target='settings_file',
                         content=render_conf(settings, comments),
                         signal_content='', warnings=tuple(warnings))


def promoted_settings_content(major: int) -> str:
    """The managed settings file (12+) once the server is no longer a standby."""
    version_profile(major)
    return render_conf((), [f'Not a standby: promoted (PostgreSQL {major}). '
                            f'No standby settings.'])


def changed_keys(before: Mapping[str, str], after: Mapping[str, str]) -> set[str]:
    """Keys added, removed or given another value."""
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def apply_mode(major: int, keys: Iterable[str], signal_created: bool,
               running: bool) -> tuple[bool, bool]:
    """``(restart_required, reload_required)`` for changed settings ``keys``.

    A newly created signal file always needs a (re)start. Changed settings only matter to a
    running server: those read at start need a restart, reloadable ones (SIGHUP) a reload.
    At most one of the two is true.
    """
    profile = version_profile(major)
    keys = set(keys)
    restart = signal_created or (running and any(profile.needs_restart(k) for k in keys))
    reload_ = running and not restart and bool(keys)
    return restart, reload_
