# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure decision logic and helpers of the pg_basebackup module.

Nothing here touches the file system, runs a program or opens a connection: the module
gathers the facts, these functions decide. That keeps every row of the decision table
unit-testable.

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

import re
import sys
from typing import Any, NamedTuple, Optional

# Outcomes of decide().
CLONE = 'clone'
REPLACE = 'replace'
UNCHANGED = 'unchanged'
REFUSE = 'refuse'

# Files saved into backup_dir before a forced replace (the guide: "make a backup of those").
CONFIG_FILES = ('postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf')
KEY_SUFFIXES = ('.crt', '.key', '.pem')

CLONE_MARK = '.clone-'
OLD_MARK = '.old-'
# pg_basebackup -l: the label in backup_label of a clone this module made. The server removes
# backup_label when it first starts, so the file with this label marks a clone never started.
CLONE_LABEL = 'catmaid.replication clone'
# PostgreSQL's FirstNormalObjectId: every database, table, role ... a user adds gets an OID
# from here on; initdb's own objects stay below it.
FIRST_NORMAL_OID = 16384


class Facts(NamedTuple):
    """What the module found out before deciding anything."""

    exists: bool
    empty: bool = True
    has_pg_version: bool = False
    running: bool = False
    local_sysid: Optional[str] = None
    primary_sysid: Optional[str] = None
    standby_configured: bool = False
    force: bool = False
    # backup_label of this module's clone is there: the cluster was never started.
    own_unstarted_clone: bool = False
    # Cleanly shut down and no OID ever given to a user object (as initdb, or Debian's
    # package, left it): the NextOID of its pg_control, else None.
    fresh_next_oid: Optional[int] = None


class Decision(NamedTuple):
    action: str
    msg: str

    def message(self, done: bool) -> str:
        """The message for the result: "would ..." in check mode, past tense once done."""
        if self.action == CLONE:
            return ('cloned' if done else 'would clone') + ' the primary into ' + self.msg
        if self.action == REPLACE:
            return ('replaced' if done else 'would replace') + ' an existing cluster: ' + self.msg
        return self.msg


def decide(facts: Facts, data_dir: str = 'data_dir') -> Decision:
    """The decision table: what to do with ``data_dir`` given ``facts``.

    ============================================  =====================  ==========
    data directory                                force false            force true
    ============================================  =====================  ==========
    missing, or empty                             clone                  clone
    standby of this primary (same system id)      unchanged              unchanged
    a server is running in it (anything else)     refuse                 refuse
    this module's clone, never started            replace                replace
    a fresh cluster, stopped (initdb, no objects) replace                replace
    not empty, no PG_VERSION                      refuse                 replace
    same system id but not a standby (promoted)   refuse                 replace
    another cluster (other or unknown system id)  refuse                 replace
    ============================================  =====================  ==========

    A running standby of this primary is "unchanged" rather than refused: nothing would be
    touched, and a role that clones and then starts the standby stays idempotent.
    """
    if not facts.exists or facts.empty:
        where = 'missing' if not facts.exists else 'empty'
        return Decision(CLONE, f'the {where} directory {data_dir}')

    same = (facts.has_pg_version and facts.local_sysid is not None
            and facts.local_sysid == facts.primary_sysid)
    if same and facts.standby_configured:
        return Decision(UNCHANGED, f'unchanged: {data_dir} already holds a standby of this primary '
                                   f'(system identifier {facts.local_sysid})')

    if facts.running:
        return Decision(REFUSE, f'refusing to touch {data_dir}: a PostgreSQL server is running in it; '
                                'stop it first (force does not override this)')

    # What a rerun finds after a failed first deployment goes on without force.
    if facts.has_pg_version and facts.own_unstarted_clone:
        return Decision(REPLACE, f'{data_dir} holds a clone this module made that was never started '
                                 '(its backup_label is still there), so it holds nothing of its own')
    if facts.has_pg_version and facts.fresh_next_oid is not None:
        return Decision(REPLACE, f'{data_dir} holds a fresh cluster as initdb (or the distribution\'s '
                                 f'package) left it, stopped, with no database, table or role added '
                                 f'(NextOID {facts.fresh_next_oid})')

    if not facts.has_pg_version:
        why = f'{data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION)'
    elif same:
        why = (f'{data_dir} holds a cluster with the primary\'s system identifier {facts.local_sysid} '
               'but it is not configured as a standby (no standby.signal or recovery.conf): '
               'probably a promoted former primary whose history has diverged')
    elif facts.local_sysid is None:
        why = f'{data_dir} holds a PostgreSQL cluster whose system identifier could not be read'
    else:
        why = (f'{data_dir} holds another cluster (system identifier {facts.local_sysid}, '
               f'the primary has {facts.primary_sysid})')
    if facts.force:
        return Decision(REPLACE, why)
    return Decision(REFUSE, f'refusing to replace data: {why}; set force=true to save its '
                            'configuration files and replace it with a clone of the primary')


def escape_passfile_field(value: str) -> str:
    r"""Escape one field of a libpq password file: ``\`` and ``:`` get a backslash."""
    return value.replace('\\', '\\\\').replace(':', '\\:')


def passfile_line(user: str, password: str) -> str:
    """The single line of the one-shot passfile given to pg_basebackup.

    Host, port and database are wildcards: the file exists for one run against one server.
    """
    if '\n' in password or '\r' in password:
        raise ValueError('the password contains a line break, which a libpq password file cannot hold')
    return f'*:*:*:{escape_passfile_field(user)}:{escape_passfile_field(password)}\n'


def conninfo_quote(value: str) -> str:
    """Quote a value for a libpq connection string (single quotes, backslash escapes)."""
    return "'" + value.replace('\\', '\\\\').replace("'", "\\'") + "'"


def conninfo(options: dict[str, Any]) -> str:
    """A libpq connection string from the options that are set (None values are skipped)."""
    return ' '.join(f'{key}={conninfo_quote(str(value))}' for key, value in options.items()
                    if value is not None and value != '')


def basebackup_argv(binary: str, target: str, host: str, port: int, user: str, checkpoint: str,
                    conn_string: str, slot: Optional[str] = None, create_slot: bool = False,
                    max_rate: Optional[str] = None) -> list[str]:
    """The pg_basebackup command line. It never carries a password."""
    argv = [binary, '-D', target, '-X', 'stream', '-c', checkpoint, '-l', CLONE_LABEL, '-d', conn_string,
            '-h', host, '-p', str(port), '-U', user, '-w', '--no-password']
    if slot:
        argv += (['-C'] if create_slot else []) + ['-S', slot]
    if max_rate:
        argv += ['-r', max_rate]
    return argv


def temp_prefix(data_dir_name: str) -> str:
    """Prefix of the temporary directory a backup is taken into (beside the data dir)."""
    return f'.{data_dir_name}{CLONE_MARK}'


def old_prefix(data_dir_name: str) -> str:
    """Prefix of the name the previous data directory gets during the swap."""
    return f'.{data_dir_name}{OLD_MARK}'


def _ours(entry: str, prefix: str) -> bool:
    rest = entry[len(prefix):] if entry.startswith(prefix) else ''
    return bool(re.fullmatch(r'[A-Za-z0-9_]+', rest))


def select_leftovers(entries: list[str], data_dir_name: str,
                     data_dir_exists: bool) -> tuple[list[str], Optional[str]]:
    """Which entries of the parent directory an interrupted earlier run left behind.

    Returns ``(remove, restore)``: names to delete, and the name of a set-aside previous data
    directory to rename back when a run died between the two renames of the swap (the data
    directory is missing and exactly one set-aside copy exists). Only names built by
    temp_prefix()/old_prefix() for this data directory are ever selected.
    """
    clones = sorted(e for e in entries if _ours(e, temp_prefix(data_dir_name)))
    olds = sorted(e for e in entries if _ours(e, old_prefix(data_dir_name)))
    restore = None
    if not data_dir_exists and len(olds) == 1:
        restore = olds[0]
        olds = []
    elif not data_dir_exists and olds:
        # Several candidates and no data directory: do not guess, keep them all.
        olds = []
    return clones + olds, restore


def files_to_save(entries: list[str]) -> list[str]:
    """Configuration files and key material of a data directory's top level, sorted."""
    return sorted(e for e in entries if e in CONFIG_FILES or e.endswith(KEY_SUFFIXES))


def save_names(name: str, stamp: str, tries: int = 100) -> list[str]:
    """Names to save ``name`` under in a backup directory, first free one wins.

    The name itself, then ``<name>.<stamp>``, ``<name>.<stamp>-2`` ...: a file of an earlier save
    (or anything else of that name) is never overwritten.
    """
    return [name, f'{name}.{stamp}'] + [f'{name}.{stamp}-{n}' for n in range(2, tries)]


def parse_major(version_output: str) -> Optional[int]:
    """Major version from ``pg_basebackup --version`` ("... (PostgreSQL) 15.14 ..." -> 15)."""
    match = re.search(r'\(PostgreSQL\)\s+(\d+)', version_output)
    return int(match.group(1)) if match else None


def server_major(server_version: int) -> int:
    """Major from libpq's integer server version (150014 -> 15, 90624 -> 9)."""
    return server_version // 10000


def parse_controldata_sysid(output: str) -> Optional[str]:
    """System identifier from pg_controldata output (run with LC_ALL=C)."""
    return parse_controldata(output).get('Database system identifier')


def parse_controldata(output: str) -> dict[str, str]:
    """Every ``name: value`` line of pg_controldata output (run with LC_ALL=C)."""
    fields = {}
    for line in output.splitlines():
        name, sep, value = line.partition(':')
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def fresh_next_oid(controldata: dict[str, str]) -> Optional[int]:
    """NextOID when pg_controldata shows a cluster nobody added objects to, else None.

    It must have been shut down cleanly (then NextOID is exact), and NextOID must not have
    passed FirstNormalObjectId: the first user database, table, role, schema ... takes 16384.
    """
    if controldata.get('Database cluster state') != 'shut down':
        return None
    text = controldata.get("Latest checkpoint's NextOID", '')
    if not text.isdigit() or int(text) > FIRST_NORMAL_OID:
        return None
    return int(text)


def is_own_clone_label(text: Optional[str]) -> bool:
    """Whether backup_label content is that of a clone this module made (pg_basebackup -l)."""
    return bool(text) and f'LABEL: {CLONE_LABEL}' in text.splitlines()


def sysid_from_pg_control(raw: bytes) -> Optional[str]:
    """System identifier from the first 8 bytes of global/pg_control (native byte order).

    Every PostgreSQL version starts ControlFileData with the uint64 system identifier; this
    is the fallback when no pg_controldata of the cluster's major is installed.
    """
    if len(raw) < 8:
        return None
    return str(int.from_bytes(raw[:8], sys.byteorder))


def connect_error_message(detail: str, host: str, port: int, user: str) -> str:
    """A message that says what to fix, from a libpq connection error (never has secrets)."""
    detail = ' '.join(detail.split())
    target = f'{host}:{port}'
    low = detail.lower()
    if 'password authentication failed' in low:
        return (f'password authentication failed for user {user}: check the replication password '
                f'(primary {target}; {detail})')
    if 'no password supplied' in low:
        return (f'the primary {target} asks user {user} for a password and none was given: '
                f'set the password option ({detail})')
    if 'no pg_hba.conf entry' in low:
        return (f'the primary {target} has no pg_hba.conf entry allowing replication connections '
                f'for user {user} from this host with this SSL mode: add a "hostssl replication" '
                f'line on the primary ({detail})')
    if 'channel binding' in low:
        return (f'the primary {target} let user {user} in without channel binding (SCRAM-SHA-256-PLUS over '
                f'SSL), which channel_binding=require refuses: it may not be the primary (or a relay sits in '
                f'between), or its pg_hba.conf does not use scram-sha-256 for this connection; fix that, or '
                f'set channel_binding=prefer ({detail})')
    if 'must be superuser or replication role' in low or 'permission denied to start wal sender' in low:
        return f'user {user} may not stream from {target}: grant it the REPLICATION attribute ({detail})'
    if 'does not support ssl' in low:
        return f'the primary {target} does not accept SSL connections: enable ssl there or change sslmode ({detail})'
    if 'certificate' in low or 'ssl error' in low:
        return f'SSL connection to the primary {target} failed: check sslmode/sslrootcert ({detail})'
    unreachable = ('connection refused', 'could not connect', 'timeout expired', 'could not translate host',
                   'no route to host', 'network is unreachable', 'name or service not known',
                   'connection timed out')
    if any(text in low for text in unreachable):
        return f'cannot reach the primary at {target}: check host, port, firewall and that it runs ({detail})'
    return f'could not connect to the primary at {target} as user {user}: {detail}'


def version_mismatch_message(primary_major: int, local_major: Optional[int], binary: str) -> Optional[str]:
    """An error message when the primary and the local binaries differ in major, else None."""
    if local_major == primary_major:
        return None
    local = 'an unknown version' if local_major is None else f'PostgreSQL {local_major}'
    return (f'version mismatch: the primary runs PostgreSQL {primary_major} but {binary} is '
            f'{local}; install the PostgreSQL {primary_major} server package or set pg_bin_dir')


def data_dir_major_message(data_dir: str, local_major: Optional[int], primary_major: int,
                           empty: bool) -> Optional[str]:
    """An error when ``data_dir`` holds a cluster of another major than the primary's, else None.

    A clone of another major never replaces it, force or not: that cluster belongs to another
    installed PostgreSQL (for example Debian's 13/main beside 15/main).
    """
    if empty or local_major is None or local_major == primary_major:
        return None
    return (f'refusing to replace {data_dir}: it holds a PostgreSQL {local_major} cluster (PG_VERSION) and '
            f'the primary runs PostgreSQL {primary_major}; a clone of another major never replaces it, '
            f'force or not. Clone into a data directory of PostgreSQL {primary_major} (for example '
            f'/var/lib/postgresql/{primary_major}/main), or remove that cluster yourself if it is to go')


def slot_exists_error(stderr: str) -> bool:
    """True when pg_basebackup -C failed only because the slot already exists."""
    return bool(re.search(r'replication slot ".*" already exists', stderr))
