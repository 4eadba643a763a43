#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_basebackup
short_description: Clone a PostgreSQL primary into a replica's data directory
version_added: 0.1.0
description:
  - Takes a base backup of a primary server with C(pg_basebackup) over a replication
    connection and puts it in place as the data directory of a replica.
  - The step the CATMAID replication guide does by hand after telling the reader to delete
    everything in the data directory; this module never deletes anything implicitly.
  - Before changing anything it connects to the primary over a replication connection
    (C(IDENTIFY_SYSTEM)), which proves that the primary is reachable and the password works,
    and it checks that the primary's major version equals the one of the local C(pg_basebackup).
  - What happens to O(data_dir) depends on what it holds.
  - Missing or empty, the primary is cloned into it.
  - A standby of this primary (same system identifier, C(standby.signal) or C(recovery.conf)
    present, running or not) is left alone, RV(action=unchanged).
  - Any other server running in it makes the module fail, even with O(force=true).
  - A clone this module made that was never started (its C(backup_label), labelled
    C(catmaid.replication clone), is still there) and a stopped fresh cluster (as C(initdb) or
    Debian's package made it, no database, table or role added, which C(pg_controldata) shows as a
    C(NextOID) below 16384 after a clean shutdown) are replaced without O(force), their
    configuration files saved first. That is what a rerun finds after a failed first deployment.
  - A directory without C(PG_VERSION), another cluster, or a cluster with the primary's system
    identifier that is not a standby (a promoted former primary) makes the module fail unless
    O(force=true).
  - With O(force=true) the configuration files (C(postgresql.conf), C(postgresql.auto.conf),
    C(pg_hba.conf), C(pg_ident.conf)) and any C(*.crt), C(*.key), C(*.pem) files found at the
    top level of the data directory are first copied into O(backup_dir), then the data directory is
    replaced.
  - The backup is taken into a temporary directory beside O(data_dir) (same file system, named
    C(.<name>.clone-XXXX), mode 0700) and only swapped in once C(pg_basebackup) succeeded. The
    old directory is renamed aside, the new one renamed into place and only then the old one
    removed. Right before the swap it checks again that no server runs in O(data_dir) (one may
    have been started while the copy ran, and the module then fails and leaves it alone) and writes
    a C(postmaster.pid) of its own there, which a server start meets, until the old directory
    is renamed aside. A C(postmaster.pid) that is empty or partly written (a server in the middle
    of starting writes it right after creating it) is never taken for stale; the module reads it
    again for 5 seconds and then fails, leaving it and the directory alone (before the clone when
    it is there already). A failed, refused, timed out or interrupted backup leaves the previous data
    directory exactly as it was. Temporary directories left by an interrupted earlier run are
    removed at the start of the next run.
  - The password reaches C(pg_basebackup) through a temporary mode 0600 password file named by
    E(PGPASSFILE) for that one command; it is never on a command line nor in the result.
  - C(pg_basebackup) cannot outlive the module. It runs in a process group of its own that is
    stopped when the module gets C(SIGTERM), C(SIGINT) or C(SIGHUP), or dies (even by C(SIGKILL),
    through the parent-death signal that C(setpriv) of util-linux sets), which ends its WAL sender
    on the primary and frees the slot.
  - Run the module as the C(postgres) OS user (C(become_user=postgres)). When it runs as root,
    everything it creates is given to O(owner).
  - Symbolic links in O(data_dir) are resolved first; the data directory must not be a mount
    point, because it is swapped by renaming (use a directory below the mount point).
  - When it runs as root, the module acts only where O(owner) could itself, whatever symbolic links
    (which that user may have put into the path) point at. It fails, changing nothing, when the
    cluster would belong to root (PostgreSQL does not run as root), when the parent directory of
    the resolved O(data_dir) is not owned by O(owner), or when the resolved O(data_dir) exists and
    is not owned by O(owner) (PostgreSQL itself refuses a data directory its user does not own).
author:
  - catmaid.replication developers (@catmaid)
options:
  data_dir:
    description:
      - Data directory of the replica, for example C(/var/lib/postgresql/15/main).
      - Its parent directory must exist.
    type: path
    required: true
  host:
    description:
      - Host name or address of the primary.
    type: str
    required: true
  port:
    description:
      - Port of the primary.
    type: int
    default: 5432
  user:
    description:
      - Role with the C(REPLICATION) attribute to connect as.
    type: str
    required: true
  password:
    description:
      - Password of O(user). Without it, libpq's usual sources (for example C(~/.pgpass) of the
        OS user running the module) are used.
      - Must not be empty (libpq would take an empty password for none).
    type: str
  sslmode:
    description:
      - libpq SSL mode of the replication connections.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: require
  sslrootcert:
    description:
      - File with the CA certificate(s) that signed the primary's certificate, for
        O(sslmode=verify-ca) and O(sslmode=verify-full).
    type: path
  channel_binding:
    description:
      - libpq C(channel_binding) of the probe connection and of C(pg_basebackup). With V(require)
        only a server that binds SCRAM authentication to the TLS channel (C(SCRAM-SHA-256-PLUS))
        is accepted, so neither a relay in the middle nor a server that lets the user in without
        the password can pass for the primary.
      - V(auto) asks for V(require) when the local PostgreSQL is 13 or later (the major of the
        C(PG_VERSION) in O(data_dir), else of C(pg_basebackup)), O(sslmode) is V(require),
        V(verify-ca) or V(verify-full) and O(password) is given; otherwise libpq's default.
      - V(require), V(prefer) and V(disable) are passed as they are (libpq 13 and later).
    type: str
    choices: [auto, require, prefer, disable]
    default: auto
  slot:
    description:
      - Physical replication slot on the primary that C(pg_basebackup) streams WAL through
        (C(-S)). It must exist unless O(create_slot=true).
      - Lower case letters, digits and underscores only.
    type: str
  create_slot:
    description:
      - Create O(slot) on the primary (C(pg_basebackup -C -S)). When the slot already exists it is
        reused, not an error.
      - A slot created by a clone that fails later stays on the primary (and retains WAL there)
        until a later run uses it or it is dropped.
    type: bool
    default: false
  checkpoint:
    description:
      - Checkpoint mode on the primary at the start of the backup (C(-c)).
    type: str
    choices: [fast, spread]
    default: fast
  max_rate:
    description:
      - Maximum transfer rate of the data directory (C(pg_basebackup -r)), for example C(100M)
        or C(32k) (kilobytes per second without a suffix). Unlimited when not set.
    type: str
  force:
    description:
      - Replace a data directory that holds another cluster, a cluster that is not a standby of
        the primary, or files that are not a cluster at all. Its configuration files are saved into
        O(backup_dir) first.
      - Never replaces a data directory a server is running in, nor a cluster of another PostgreSQL
        major than the primary's (its C(PG_VERSION)), nor one whose C(PG_VERSION) is unreadable.
    type: bool
    default: false
  backup_dir:
    description:
      - Directory the configuration files are saved into before a forced replace. It is created
        (mode 0700) when missing.
      - Nothing in it is overwritten. A name that is taken already (by an earlier save, or anything
        else, a symbolic link included) is saved under C(<name>.YYYYmmddTHHMMSS) instead (then
        C(-2), C(-3) ...); RV(saved_files) has the names used.
      - A directory that exists keeps its mode and owner, and so does everything else in it; only
        what the module creates is given to O(owner).
      - The module follows no symbolic link there. Each file is created anew, never opened through
        a link; a symbolic link in O(data_dir) is saved as a link (its target is not read), and
        O(backup_dir) itself (or the deepest part of its path that exists) must not be a link.
      - Default is a timestamped directory beside O(data_dir),
        C(<data_dir>.config-backup-YYYYmmddTHHMMSS).
    type: path
  owner:
    description:
      - OS user that owns everything the module creates when it runs as root (the data directory,
        O(backup_dir)). Default is the owner of the parent directory of O(data_dir).
      - When the module runs as root, it must not be root, and it must own the parent directory of
        O(data_dir) (after symbolic links are resolved) and O(data_dir) itself when that exists.
      - When the module does not run as root, files belong to the user running it, and this option
        must be unset or name that user.
    type: str
  timeout:
    description:
      - Seconds after which C(pg_basebackup) is stopped and the clone fails (the data directory is
        left as it was).
    type: int
    default: 3600
  connect_timeout:
    description:
      - Seconds to wait for each connection to the primary.
    type: int
    default: 10
  application_name:
    description:
      - C(application_name) of the connections to the primary (shown in C(pg_stat_replication)).
    type: str
  pg_bin_dir:
    description:
      - Directory with the PostgreSQL client and server binaries (C(pg_basebackup), C(pg_controldata)).
      - Default is Debian's C(/usr/lib/postgresql/<major>/bin).
      - For C(pg_controldata) that is the major of the existing data directory.
      - For C(pg_basebackup) it is the primary's major when installed, else the major of the existing
        data directory, else the newest installed one.
    type: path
attributes:
  check_mode:
    description: Reports what would happen (RV(action), RV(msg), RV(cmd)) and changes nothing.
    support: full
    details: Still connects to the primary (read only) to compare system identifiers.
  diff_mode:
    description: No diff is returned; RV(msg) and RV(action) say what happens to the data directory.
    support: none
notes:
  - Does not configure the clone as a standby (C(standby.signal), C(primary_conninfo)) and does not
    start it.
  - The configuration files saved in O(backup_dir) are not put back into the new data directory.
requirements:
  - psycopg2 on the managed host (Debian package C(python3-psycopg2)).
  - pg_basebackup and pg_controldata of the primary's major version; coreutils C(timeout);
    util-linux C(setpriv) (without it a module killed by C(SIGKILL) leaves C(pg_basebackup) running).
seealso:
  - name: pg_basebackup
    description: The PostgreSQL program this module runs.
    link: https://www.postgresql.org/docs/current/app-pgbasebackup.html
"""

EXAMPLES = r"""
- name: Clone the primary into the replica's data directory
  catmaid.replication.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    host: primary.example.org
    port: 5432
    user: replication_user
    password: "{{ replication_password }}"
    sslmode: verify-full
    sslrootcert: /etc/ssl/certs/primary-ca.pem
    slot: replica1
    create_slot: true
  become: true
  become_user: postgres

- name: Replace the fresh cluster Debian created by a clone of the primary
  catmaid.replication.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    host: primary.example.org
    user: replication_user
    password: "{{ replication_password }}"
    force: true
    backup_dir: /var/lib/postgresql/15/main-config-before-clone
  become: true
  become_user: postgres
"""

RETURN = r"""
action:
  description:
    - What was done (or would be done in check mode).
    - Read it from a registered variable; some stdout callbacks (for example C(ansible.posix.json))
      show the task's module name under this key instead. RV(msg) starts with the same word.
  type: str
  returned: always
  choices: [clone, replace, unchanged]
  sample: clone
msg:
  description: A sentence saying what happened and why.
  type: str
  returned: always
  sample: cloned the primary into the missing directory /var/lib/postgresql/15/main
system_identifier:
  description: The primary's database system identifier (a 64-bit number, as a string).
  type: str
  returned: always
  sample: '7301234567890123456'
pg_version:
  description: Major version of the primary.
  type: int
  returned: always
  sample: 15
duration_s:
  description: Seconds the backup took; null when none ran.
  type: float
  returned: always
  sample: 12.3
bytes:
  description: Size in bytes of the new data directory; null when nothing was cloned.
  type: int
  returned: always
  sample: 31457280
backup_dir:
  description: Directory the configuration files were saved into before a replace; null if none.
  type: str
  returned: always
  sample: /var/lib/postgresql/15/main.config-backup-20260101T120000
saved_files:
  description:
    - Names of the files saved into RV(backup_dir), as they are named there (a file whose name was
      taken already has the suffix C(.YYYYmmddTHHMMSS)).
    - A symbolic link in O(data_dir) is saved as a symbolic link to the same target.
  type: list
  elements: str
  returned: always
  sample: [pg_hba.conf, postgresql.conf, server.crt, server.key]
cmd:
  description:
    - The C(pg_basebackup) command line that ran (or would run), without secrets; null when none.
    - In check mode the target directory is a placeholder.
  type: list
  elements: str
  returned: always
  sample: [/usr/lib/postgresql/15/bin/pg_basebackup, -D, /var/lib/postgresql/15/.main.clone-ab12cd, -X, stream]
slot_created:
  description: Whether the run created O(slot) on the primary.
  type: bool
  returned: always
  sample: false
timeline:
  description: The primary's current timeline.
  type: int
  returned: always
  sample: 1
"""

import os
import pwd
import re
import shutil
import signal
import stat
import tempfile
import time
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.catmaid.replication.plugins.module_utils import _clone, _pgdata, _standby
from ansible_collections.catmaid.replication.plugins.module_utils._pg import ensure_psycopg2, psycopg2
from ansible_collections.catmaid.replication.plugins.module_utils._pgdata import (
    find_bin_dir, postmaster_running, read_pg_version)

C_LOCALE = dict(LANG='C', LC_ALL='C', LC_MESSAGES='C')
# Seconds an empty or partly written postmaster.pid gets to become complete before the module
# refuses (a starting postmaster writes it right after creating it).
LOCK_SETTLE_S = 5


class Cloner:
    """One run of the module: gather facts, decide, act."""

    def __init__(self, module: AnsibleModule):
        self.module = module
        self.p = module.params
        self.data_dir = os.path.realpath(self.p['data_dir'])
        self.parent = os.path.dirname(self.data_dir)
        self.name = os.path.basename(self.data_dir)
        self.result: dict[str, Any] = dict(changed=False, action=None, msg='', system_identifier=None,
                                           pg_version=None, duration_s=None, bytes=None,
                                           backup_dir=None, saved_files=[], cmd=None,
                                           slot_created=False, timeline=None)
        self.slot_exists: Optional[bool] = None
        self.binary_major: Optional[int] = None

    # -- the one seam for external programs ----------------------------------------------
    def _run_command(self, argv: list[str], env: Optional[dict[str, str]] = None,
                     **kw: Any) -> tuple[int, str, str]:
        environ = dict(C_LOCALE)
        environ.update(env or {})
        return self.module.run_command(argv, environ_update=environ, check_rc=False, **kw)

    def _run_tied(self, argv: list[str], env: Optional[dict[str, str]] = None) -> tuple[int, str, str]:
        """Run a long command so that it cannot outlive the module.

        setpriv(1) gives the command the parent-death signal (PR_SET_PDEATHSIG: SIGTERM when
        this process dies, even by SIGKILL), which it keeps across exec; SIGTERM, SIGINT and
        SIGHUP sent to the module stop the command's process group first. timeout(1), the
        command run here, leads a process group of its own and passes a TERM on to
        pg_basebackup and its WAL streamer, so the primary's WAL sender ends and the slot is
        released.
        """
        setpriv = self.module.get_bin_path('setpriv')
        if setpriv:
            argv = [setpriv, '--pdeathsig', 'TERM', '--'] + argv
        running: list[Any] = []

        def stop(signum: int, frame: Any) -> None:
            for proc in running:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(proc.pid, signal.SIGTERM)
                        break
                    except OSError:
                        continue
            raise Interrupted(signum)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            return self._run_command(argv, env, before_communicate_callback=running.append)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def fail(self, msg: str, **extra: Any) -> None:
        result = dict(self.result)
        result.update(extra)
        result.pop('changed', None)
        result['msg'] = msg
        self.module.fail_json(**result)

    # -- facts ----------------------------------------------------------------------------
    def owner(self) -> Optional[tuple[int, int]]:
        """uid/gid to give created files when running as root; None otherwise."""
        wanted = self.p['owner']
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid()).pw_name
            if wanted and wanted != me:
                self.fail(f'owner={wanted} needs the module to run as root (it runs as {me})')
            return None
        if wanted:
            found = [e for e in pwd.getpwall() if e.pw_name == wanted]
            if not found:
                self.fail(f'owner={wanted}: no such OS user')
            return found[0].pw_uid, found[0].pw_gid
        st = os.stat(self.parent)
        return st.st_uid, st.st_gid

    def check_location(self, owner: Optional[tuple[int, int]]) -> None:
        """As root, act only where ``owner`` could act itself: fail unless the cluster's user is
        not root, the parent directory of the resolved data_dir is owned by that user and so is
        data_dir when it exists (and it is no symbolic link).

        data_dir is resolved through symbolic links, which the owner may have put on the way (it
        owns the directories above a data directory): without this check root would replace or
        fill whatever such a link points at, a root-only directory included. PostgreSQL itself
        refuses a data directory its user does not own. Without root, the kernel's own checks
        keep the module to what its user may do.
        """
        if owner is None:
            return
        uid = owner[0]
        given = os.path.abspath(self.p['data_dir'])
        via = '' if given == self.data_dir else f' (data_dir={self.p["data_dir"]} leads there through symbolic links)'
        unchanged = 'Nothing was changed.'
        if uid == 0:
            why = 'owner=root' if self.p['owner'] else f'root owns its parent directory {self.parent}{via}'
            self.fail(f'refusing to clone into {self.data_dir}: the cluster would belong to root ({why}), and '
                      f'PostgreSQL does not run as root. {unchanged} Set owner to the OS user PostgreSQL runs as '
                      '(for example postgres) and give data_dir a parent directory owned by that user')
        user = _user_name(uid)
        parent = os.stat(self.parent)
        if parent.st_uid != uid:
            self.fail(f'refusing to touch {self.data_dir}{via}: its parent directory {self.parent} is owned by '
                      f'{_user_name(parent.st_uid)}, not by {user}, the OS user the cluster belongs to. Running as '
                      f'root, the module creates, renames and removes directories only where {user} could itself. '
                      f'{unchanged} Give data_dir a path whose parent directory {user} owns, for example one in '
                      f'a directory of {user}\'s below {self.parent} (check any symbolic link on the way)')
        try:
            st = os.lstat(self.data_dir)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            self.fail(f'refusing to touch {self.data_dir}: it became a symbolic link (to {os.readlink(self.data_dir)}) '
                      f'while the module ran. {unchanged} Check who changes it, then run again')
        if st.st_uid != uid:
            self.fail(f'refusing to touch {self.data_dir}{via}: it is owned by {_user_name(st.st_uid)}, not by '
                      f'{user}, the OS user the cluster belongs to, so it is no data directory of {user}\'s '
                      f'(PostgreSQL refuses a data directory its user does not own). {unchanged} Give data_dir the '
                      f'path of {user}\'s data directory (check any symbolic link on the way); if {self.data_dir} '
                      f'really is that cluster\'s, give it to {user} (chown -R {user}: {self.data_dir})')

    def controldata(self, major: Optional[int], path: str) -> dict[str, str]:
        """pg_controldata of the cluster in ``path`` ({} without a pg_controldata of its major)."""
        bin_dir = find_bin_dir(major, self.p['pg_bin_dir'])
        binary = os.path.join(bin_dir, 'pg_controldata') if bin_dir else ''
        if binary and os.access(binary, os.X_OK):
            rc, out, dummy = self._run_command([binary, '-D', path])
            if rc == 0:
                return _clone.parse_controldata(out)
        return {}

    def local_sysid(self, controldata: dict[str, str], path: str) -> Optional[str]:
        sysid = controldata.get('Database system identifier')
        if sysid:
            return sysid
        try:
            with open(os.path.join(path, 'global', 'pg_control'), 'rb') as handle:
                return _clone.sysid_from_pg_control(handle.read(8))
        except OSError:
            return None

    def local_facts(self, primary_sysid: str, path: Optional[str] = None) -> tuple[_clone.Facts, Optional[int]]:
        """Facts about the data directory (or ``path``, the set-aside copy check mode looks at)."""
        path = path or self.data_dir
        if not os.path.lexists(path):
            return _clone.Facts(exists=False, primary_sysid=primary_sysid, force=self.p['force']), None
        if not os.path.isdir(path):
            self.fail(f'{path} exists and is not a directory')
        entries = os.listdir(path)
        try:
            major = read_pg_version(path) if 'PG_VERSION' in entries else None
        except ValueError as exc:
            self.fail(f'refusing to touch {self.data_dir}: {exc}')
        control = self.controldata(major, path) if 'PG_VERSION' in entries else {}
        label = None
        if 'backup_label' in entries:
            try:
                label = _pgdata.read_text(os.path.join(path, 'backup_label'))
            except (OSError, UnicodeDecodeError):
                label = None
        facts = _clone.Facts(
            exists=True, empty=not entries, has_pg_version='PG_VERSION' in entries,
            running=postmaster_running(path),
            local_sysid=self.local_sysid(control, path) if 'PG_VERSION' in entries else None,
            primary_sysid=primary_sysid,
            standby_configured='standby.signal' in entries or 'recovery.conf' in entries,
            force=self.p['force'],
            own_unstarted_clone=_clone.is_own_clone_label(label),
            fresh_next_oid=_clone.fresh_next_oid(control))
        return facts, major

    # -- the primary ----------------------------------------------------------------------
    def identify_primary(self) -> tuple[str, int, int]:
        """(system identifier, timeline, major) of the primary; fails with what to fix."""
        ensure_psycopg2(self.module)
        kw: dict[str, Any] = dict(host=self.p['host'], port=self.p['port'], user=self.p['user'],
                                  sslmode=self.p['sslmode'], connect_timeout=self.p['connect_timeout'],
                                  application_name=self.p['application_name'] or 'catmaid.replication')
        if self.p['password']:
            kw['password'] = self.p['password']
        if self.p['sslrootcert']:
            kw['sslrootcert'] = self.p['sslrootcert']
        libpq_major = psycopg2.extensions.libpq_version() // 10000
        binding = self.channel_binding(min(libpq_major, self.expected_major() or libpq_major))
        if binding:
            kw['channel_binding'] = binding
        conn = None
        try:
            conn = psycopg2.connect(connection_factory=psycopg2.extras.PhysicalReplicationConnection, **kw)
            cur = conn.cursor()
            cur.execute('IDENTIFY_SYSTEM')
            row = cur.fetchone()
            major = _clone.server_major(conn.server_version)
            self.slot_exists = self.read_slot(cur, major)
            return str(row[0]), int(row[1]), major
        except psycopg2.Error as exc:
            if conn is None:
                msg = _clone.connect_error_message(str(exc), self.p['host'], self.p['port'], self.p['user'])
            else:
                msg = f"IDENTIFY_SYSTEM on the primary {self.p['host']}:{self.p['port']} failed: {str(exc).strip()}"
        finally:
            if conn is not None:
                conn.close()
        self.fail(msg)
        raise AssertionError('unreachable')

    def channel_binding(self, major: Optional[int]) -> Optional[str]:
        """channel_binding for a libpq/server of ``major`` (None: leave it to libpq)."""
        try:
            return _standby.channel_binding_setting(self.p['channel_binding'], major, self.p['sslmode'],
                                                    bool(self.p['password']))
        except ValueError as exc:
            self.fail(str(exc))
        raise AssertionError('unreachable')

    def expected_major(self) -> Optional[int]:
        """The local major before the primary is asked: the data directory's PG_VERSION, else
        the major of pg_basebackup in pg_bin_dir (or of the newest installed)."""
        try:
            major = read_pg_version(self.data_dir) if os.path.isdir(self.data_dir) else None
        except (OSError, ValueError):
            major = None
        if major is not None:
            return major
        bin_dir = self.p['pg_bin_dir'] or find_bin_dir(None)
        binary = os.path.join(bin_dir, 'pg_basebackup') if bin_dir else ''
        if binary and os.access(binary, os.X_OK):
            rc, out, dummy = self._run_command([binary, '--version'])
            return _clone.parse_major(out) if rc == 0 else None
        return None

    def read_slot(self, cur, major: int) -> Optional[bool]:
        """Whether the slot exists on the primary; None when this server cannot tell (< 15)."""
        if not self.p['slot'] or major < 15:
            return None
        try:
            cur.execute(f"READ_REPLICATION_SLOT {self.p['slot']}")
            row = cur.fetchone()
        except psycopg2.Error:
            return None
        return bool(row and row[0] is not None)

    def basebackup_binary(self, primary_major: int, local_major: Optional[int]) -> tuple[str, Optional[int]]:
        bin_dir = (self.p['pg_bin_dir'] or find_bin_dir(primary_major) or find_bin_dir(local_major)
                   or find_bin_dir(None))
        binary = self.module.get_bin_path('pg_basebackup', required=True, opt_dirs=[bin_dir] if bin_dir else [])
        rc, out, err = self._run_command([binary, '--version'])
        return binary, (_clone.parse_major(out) if rc == 0 else None)

    # -- file system steps ----------------------------------------------------------------
    def clean_leftovers(self) -> None:
        remove, restore = _clone.select_leftovers(os.listdir(self.parent), self.name,
                                                  os.path.lexists(self.data_dir))
        if restore:
            os.rename(os.path.join(self.parent, restore), self.data_dir)
            self.module.warn(f'{self.data_dir} was missing after an interrupted run: restored it from {restore}')
        for entry in remove:
            shutil.rmtree(os.path.join(self.parent, entry), ignore_errors=True)

    def chown_tree(self, path: str, owner: Optional[tuple[int, int]]) -> None:
        if owner is None:
            return
        os.lchown(path, *owner)
        for root, dirs, files in os.walk(path):
            for entry in dirs + files:
                os.lchown(os.path.join(root, entry), *owner)

    def save_config(self, owner: Optional[tuple[int, int]]) -> None:
        """Save the configuration files and key material of data_dir into backup_dir.

        Touches only what it creates, and follows no symbolic link: the files are read with
        O_NOFOLLOW (a link in data_dir is saved as a link, its target never read), created with
        O_EXCL | O_NOFOLLOW in the backup directory opened by descriptor (a name that is taken,
        by a file or by a link, gets a unique suffix instead), and only what was created is
        given a mode and an owner, through its descriptor.
        """
        if not os.path.isdir(self.data_dir):
            return
        # data_dir was checked to be no link and the owner's (check_location); a link put there
        # since makes this fail (ELOOP) instead of reading another directory.
        src = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            if owner is not None and os.fstat(src).st_uid != owner[0]:
                raise OSError(f'{self.data_dir} changed owner since it was checked')
            names = []
            for name in _clone.files_to_save(os.listdir(src)):
                mode = os.stat(name, dir_fd=src, follow_symlinks=False).st_mode
                if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                    names.append(name)
            if not names:
                return
            stamp = time.strftime('%Y%m%dT%H%M%S')
            target, created = self.open_backup_dir(stamp)
            try:
                saved = [self.save_one(src, name, created[-1][1] if created else target[1], stamp, owner)
                         for name in names]
                # Directories the module made: 0700 and the owner's only now that they are filled.
                for dummy, fd in created:
                    os.fchmod(fd, 0o700)
                    if owner is not None:
                        os.fchown(fd, *owner)
            finally:
                for dummy, fd in created:
                    os.close(fd)
                if target[1] is not None:
                    os.close(target[1])
        finally:
            os.close(src)
        self.result.update(backup_dir=target[0], saved_files=saved)

    def backup_dir_problem(self) -> Optional[str]:
        """Why the given backup_dir cannot be used (it, or the deepest part of it that exists, is a
        symbolic link or not a directory); None when it can."""
        path = os.path.abspath(self.p['backup_dir'])
        while not os.path.lexists(path):
            path = os.path.dirname(path)
        if os.path.islink(path):
            return (f"backup_dir={self.p['backup_dir']}: {path} is a symbolic link (to {os.readlink(path)}), "
                    'which the module does not follow: give the real directory')
        if not os.path.isdir(path):
            return f"backup_dir={self.p['backup_dir']}: {path} exists and is not a directory"
        return None

    def open_backup_dir(self, stamp: str) -> tuple[tuple[str, Optional[int]], list[tuple[str, int]]]:
        """((backup_dir, descriptor of it when it existed), [(path, descriptor) of each directory created]).

        The default directory and missing parts of a given one are created here (mkdir fails on
        any name that exists, a link included) and opened without following a link.
        """
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        given = self.p['backup_dir']
        if given:
            path = os.path.abspath(given)
            problem = self.backup_dir_problem()
            if problem:
                self.fail(problem + f'; {self.data_dir} was left as it was')
            if os.path.lexists(path):
                return (path, os.open(path, flags)), []
            missing = []
            while not os.path.lexists(path):
                missing.append(os.path.basename(path))
                path = os.path.dirname(path)
            names = list(reversed(missing))
        else:
            path = self.parent
            base = f'{self.name}.config-backup-{stamp}'
            names = [base]
        created: list[tuple[str, int]] = []
        parent = os.open(path, flags)
        try:
            for index, name in enumerate(names):
                while True:
                    try:
                        os.mkdir(name, 0o700, dir_fd=created[-1][1] if created else parent)
                        break
                    except FileExistsError:
                        if given:
                            raise
                        # The default name is taken: the next one (-2, -3 ...).
                        count = int(name.rsplit('-', 1)[1]) + 1 if name != base else 2
                        name = f'{base}-{count}'
                fd = os.open(name, flags, dir_fd=created[-1][1] if created else parent)
                path = os.path.join(path, name)
                created.append((path, fd))
                if os.fstat(fd).st_uid != os.geteuid():
                    raise OSError(f'{path} was replaced by a directory of another user while it was created')
                os.fchmod(fd, 0o700)
        except BaseException:
            for dummy, fd in created:
                os.close(fd)
            raise
        finally:
            os.close(parent)
        return (path, None), created

    def save_one(self, src: int, name: str, dest: int, stamp: str, owner: Optional[tuple[int, int]]) -> str:
        """Copy data_dir's ``name`` into the directory ``dest`` under the first free name; return it."""
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        link = os.readlink(name, dir_fd=src) if stat.S_ISLNK(st.st_mode) else None
        if link is not None:
            return self.save_link(link, name, dest, stamp, owner)
        for candidate in _clone.save_names(name, stamp):
            try:
                out = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dest)
            except FileExistsError:
                continue
            try:
                inp = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src)
                try:
                    if not stat.S_ISREG(os.fstat(inp).st_mode):
                        raise OSError(f'{os.path.join(self.data_dir, name)} is no longer a regular file')
                    while True:
                        chunk = os.read(inp, 1 << 16)
                        if not chunk:
                            break
                        while chunk:
                            chunk = chunk[os.write(out, chunk):]
                finally:
                    os.close(inp)
                os.fchmod(out, stat.S_IMODE(st.st_mode) & 0o777)
                os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
                if owner is not None:
                    os.fchown(out, *owner)
            finally:
                os.close(out)
            return candidate
        raise OSError(f'no free name to save {name} under in the backup directory')

    def save_link(self, link: str, name: str, dest: int, stamp: str, owner: Optional[tuple[int, int]]) -> str:
        """Save a symbolic link of data_dir as a link to the same target (never read) under a free name.

        Given to ``owner`` in a private directory of the module's first, then hard-linked into
        ``dest`` (link(2) fails on a taken name and follows no link): a chown by name in a
        directory that others may write could otherwise meet a file swapped in meanwhile.
        """
        if owner is None:
            for candidate in _clone.save_names(name, stamp):
                try:
                    os.symlink(link, candidate, dir_fd=dest)
                except FileExistsError:
                    continue
                return candidate
            raise OSError(f'no free name to save {name} under in the backup directory')
        while True:
            private = f'.catmaid-save-{os.getpid()}-{os.urandom(6).hex()}'
            try:
                os.mkdir(private, 0o700, dir_fd=dest)
                break
            except FileExistsError:
                continue
        fd = os.open(private, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dest)
        try:
            if os.fstat(fd).st_uid != os.geteuid():
                raise OSError(f'the module\'s private directory {private} was swapped for another one')
            os.symlink(link, 'link', dir_fd=fd)
            os.chown('link', *owner, dir_fd=fd, follow_symlinks=False)
            for candidate in _clone.save_names(name, stamp):
                try:
                    os.link('link', candidate, src_dir_fd=fd, dst_dir_fd=dest, follow_symlinks=False)
                except FileExistsError:
                    continue
                return candidate
            raise OSError(f'no free name to save {name} under in the backup directory')
        finally:
            try:
                os.unlink('link', dir_fd=fd)
            except FileNotFoundError:
                pass
            os.close(fd)
            try:
                os.rmdir(private, dir_fd=dest)
            except OSError:
                pass

    def write_passfile(self) -> Optional[str]:
        if not self.p['password']:
            return None
        try:
            line = _clone.passfile_line(self.p['user'], self.p['password'])
        except ValueError as exc:
            self.fail(str(exc))
        fd, path = tempfile.mkstemp(prefix='pgpass-', dir=self.module.tmpdir)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(line)
        return path

    def argv(self, binary: str, target: str, create: bool) -> list[str]:
        opts = dict(sslmode=self.p['sslmode'], sslrootcert=self.p['sslrootcert'],
                    channel_binding=self.channel_binding(self.binary_major),
                    application_name=self.p['application_name'], connect_timeout=self.p['connect_timeout'])
        return _clone.basebackup_argv(binary, target, self.p['host'], self.p['port'], self.p['user'],
                                      self.p['checkpoint'], _clone.conninfo(opts), slot=self.p['slot'],
                                      create_slot=create, max_rate=self.p['max_rate'])

    def run_basebackup(self, binary: str, target: str) -> None:
        create = bool(self.p['slot'] and self.p['create_slot'] and self.slot_exists is not True)
        timeout_bin = self.module.get_bin_path('timeout', required=True)
        passfile = self.write_passfile()
        env = {'PGPASSFILE': passfile} if passfile else {}
        try:
            while True:
                argv = self.argv(binary, target, create)
                self.result['cmd'] = argv
                start = time.monotonic()
                # timeout(1) signals pg_basebackup's whole process group (its WAL streamer too).
                rc, out, err = self._run_tied([timeout_bin, '-s', 'TERM', '-k', '30', str(self.p['timeout'])] + argv, env)
                self.result['duration_s'] = round(time.monotonic() - start, 3)
                if rc != 0 and create and _clone.slot_exists_error(err):
                    # The slot is there already (a server older than 15 cannot be asked): reuse it.
                    create = False
                    os.makedirs(target, mode=0o700, exist_ok=True)
                    _empty_dir(target)
                    continue
                break
        finally:
            if passfile:
                os.unlink(passfile)
        if rc != 0:
            shutil.rmtree(target, ignore_errors=True)
            # timeout(1) exits 124 after its TERM, 137 when it had to KILL as well.
            if rc == 124 or (rc == 137 and self.result['duration_s'] >= self.p['timeout']):
                what = f"pg_basebackup did not finish within timeout={self.p['timeout']} seconds and was stopped"
            else:
                what = f'pg_basebackup failed (rc={rc})'
            self.fail(f'{what}; {self.data_dir} was left as it was: {err.strip()}', rc=rc, stderr=err, stdout=out)
        self.result['slot_created'] = create

    def swap(self, target: str) -> None:
        aside = None
        if os.path.lexists(self.data_dir):
            lock = self.hold_off_postmaster()
            # A fresh, unique, empty name beside it; rename(2) replaces an empty directory.
            aside = tempfile.mkdtemp(prefix=_clone.old_prefix(self.name), dir=self.parent)
            os.rename(self.data_dir, aside)
            if _pgdata.read_text(os.path.join(aside, 'postmaster.pid')) != lock:
                # A server took the lock over between our check and the rename: put it back.
                os.rename(aside, self.data_dir)
                self.fail(self.started_meanwhile_message())
            os.unlink(os.path.join(aside, 'postmaster.pid'))
        try:
            os.rename(target, self.data_dir)
        except OSError:
            if aside:
                os.rename(aside, self.data_dir)
            raise
        if aside:
            shutil.rmtree(aside, ignore_errors=True)
            if os.path.lexists(aside):
                self.module.warn(f'could not remove the previous data directory, now at {aside}: remove it by hand')

    def started_meanwhile_message(self) -> str:
        return (f'a PostgreSQL server started in {self.data_dir} while the clone ran and is running '
                f'now: refusing to replace it; {self.data_dir} was left as it was (stop that server '
                'and run again)')

    def hold_off_postmaster(self) -> str:
        """Check again that no server runs on data_dir and keep one from starting until the swap.

        Writes a postmaster.pid naming this process, the lock file PostgreSQL's own start meets
        ("lock file postmaster.pid already exists"); it moves aside with the old directory. A
        server that is running (it started while the clone ran) makes the module fail. Returns
        the lock's content.
        """
        path = os.path.join(self.data_dir, 'postmaster.pid')
        content = f'{os.getpid()}\n{self.data_dir}\ncatmaid.replication.pg_basebackup swap\n'
        for dummy in range(3):
            if postmaster_running(self.data_dir):
                self.fail(self.started_meanwhile_message())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                text = self.settled_lock_file()
                if text is None:
                    continue
                # Stale (a crashed server's, its pid gone): PostgreSQL itself removes such a file
                # on start. One that is empty or partly written is never taken for stale.
                if not postmaster_running(self.data_dir) and _pgdata.read_text_nofollow(path) == text:
                    os.unlink(path)
                continue
            with os.fdopen(fd, 'w', encoding='ascii') as handle:
                handle.write(content)
            return content
        self.fail(f'could not lock {self.data_dir} against a server start for the swap: '
                  f'{path} keeps appearing; {self.data_dir} was left as it was')
        raise AssertionError('unreachable')

    def settled_lock_file(self) -> Optional[str]:
        """data_dir's postmaster.pid once it is complete (None when there is none).

        An empty or partly written one may be a postmaster in the middle of starting (it creates
        the file, then writes it): it is read again for LOCK_SETTLE_S seconds, and the module fails,
        leaving it alone, when it is still not complete then.
        """
        path = os.path.join(self.data_dir, 'postmaster.pid')
        deadline = time.monotonic() + LOCK_SETTLE_S
        while True:
            text = _pgdata.read_text_nofollow(path)
            if text is None or _pgdata.lock_file_pid(text) is not None:
                return text
            if time.monotonic() >= deadline:
                self.fail(f'{path} is empty or partly written (it holds {text[:40]!r}) and stayed so for '
                          f'{LOCK_SETTLE_S} seconds: a PostgreSQL server may be starting in {self.data_dir}, or '
                          'one crashed while starting and left it (PostgreSQL itself refuses to start with '
                          f'it). {self.data_dir} was left as it was. Check that no server is starting there '
                          f'(pg_ctl status -D {self.data_dir}, ps), then remove {path} and run again')
            time.sleep(0.1)

    # -- main -----------------------------------------------------------------------------
    def run(self) -> None:
        p = self.p
        if p['slot'] and not re.fullmatch(r'[a-z0-9_]{1,63}', p['slot']):
            self.fail(f"slot={p['slot']!r}: a slot name has 1 to 63 lower case letters, digits and underscores")
        if not os.path.isdir(self.parent):
            self.fail(f'the parent directory {self.parent} of data_dir does not exist')
        if p['backup_dir']:
            backup = os.path.realpath(p['backup_dir'])
            if backup == self.data_dir or backup.startswith(self.data_dir + os.sep):
                self.fail(f"backup_dir={p['backup_dir']} lies inside data_dir, which a replace removes: "
                          'choose a directory outside it')
            problem = self.backup_dir_problem()
            if problem:
                self.fail(problem)
        if p['password'] == '':
            self.fail('password must not be empty: libpq would take an empty password for none and '
                      'use ~/.pgpass or PGPASSWORD instead; give the password, or omit the option to '
                      'use those sources on purpose')
        owner = self.owner()
        self.check_location(owner)
        restore = None
        if not self.module.check_mode:
            self.clean_leftovers()
            # A set-aside directory it restored is judged like any data_dir.
            self.check_location(owner)
        else:
            # What clean_leftovers() would do: look at the set-aside copy it would restore.
            dummy, restore = _clone.select_leftovers(os.listdir(self.parent), self.name,
                                                     os.path.lexists(self.data_dir))
            if restore:
                self.module.warn(f'{self.data_dir} is missing after an interrupted run: the run would '
                                 f'restore it from {restore} first')

        sysid, timeline, major = self.identify_primary()
        self.result.update(system_identifier=sysid, timeline=timeline, pg_version=major)
        facts, local_major = self.local_facts(sysid, os.path.join(self.parent, restore) if restore else None)
        decision = _clone.decide(facts, self.data_dir)
        self.result['action'] = decision.action
        if decision.action == _clone.REFUSE:
            self.fail(decision.msg)
        mismatch = _clone.data_dir_major_message(self.data_dir, local_major, major, facts.empty)
        if decision.action != _clone.UNCHANGED and mismatch:
            self.fail(mismatch)
        if decision.action == _clone.UNCHANGED:
            self.result['msg'] = decision.msg
            self.module.exit_json(**self.result)
        if facts.exists and not restore:
            # An unfinished postmaster.pid: refuse now rather than after the clone.
            self.settled_lock_file()
            if postmaster_running(self.data_dir):
                self.fail(f'a PostgreSQL server is starting in {self.data_dir}: refusing to replace it; '
                          f'{self.data_dir} was left as it was (stop that server and run again)')
        if facts.exists and os.path.ismount(self.data_dir):
            self.fail(f'{self.data_dir} is a mount point and cannot be swapped by renaming: '
                      'use a directory below the mount point as data_dir')

        binary, local_bin_major = self.basebackup_binary(major, local_major)
        self.binary_major = local_bin_major
        mismatch = _clone.version_mismatch_message(major, local_bin_major, binary)
        if mismatch:
            self.fail(mismatch)

        self.result['changed'] = True
        if self.module.check_mode:
            placeholder = os.path.join(self.parent, _clone.temp_prefix(self.name) + 'XXXXXX')
            self.result['cmd'] = self.argv(binary, placeholder, bool(p['slot'] and p['create_slot'] and self.slot_exists is not True))
            self.result['msg'] = decision.message(done=False)
            self.module.exit_json(**self.result)

        if decision.action == _clone.REPLACE:
            self.save_config(owner)
        target = tempfile.mkdtemp(prefix=_clone.temp_prefix(self.name), dir=self.parent)
        try:
            os.chmod(target, 0o700)
            self.run_basebackup(binary, target)
            os.chmod(target, 0o700)
            self.chown_tree(target, owner)
            size = _tree_size(target)
            self.swap(target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        self.result['bytes'] = size
        self.result['msg'] = decision.message(done=True)
        self.module.exit_json(**self.result)


class Interrupted(BaseException):
    """The module got a signal while pg_basebackup ran (which was stopped).

    A BaseException, so that run_command's own exception handling lets it through to the
    clean-up of the partial copy.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f'uid {uid}'


def _empty_dir(path: str) -> None:
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)


def _tree_size(path: str) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for entry in dirs + files:
            total += os.lstat(os.path.join(root, entry)).st_size
    return total


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            data_dir=dict(type='path', required=True),
            host=dict(type='str', required=True),
            port=dict(type='int', default=5432),
            user=dict(type='str', required=True),
            password=dict(type='str', no_log=True),
            sslmode=dict(type='str', default='require',
                         choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
            sslrootcert=dict(type='path'),
            channel_binding=dict(type='str', default='auto', choices=list(_standby.CHANNEL_BINDING_CHOICES)),
            slot=dict(type='str'),
            create_slot=dict(type='bool', default=False),
            checkpoint=dict(type='str', default='fast', choices=['fast', 'spread']),
            max_rate=dict(type='str'),
            force=dict(type='bool', default=False),
            backup_dir=dict(type='path'),
            owner=dict(type='str'),
            timeout=dict(type='int', default=3600),
            connect_timeout=dict(type='int', default=10),
            application_name=dict(type='str'),
            pg_bin_dir=dict(type='path'),
        ),
        required_if=[('create_slot', True, ['slot'])],
        supports_check_mode=True,
    )
    cloner = Cloner(module)
    try:
        cloner.run()
    except OSError as exc:
        cloner.fail(f'{exc.__class__.__name__} while cloning into {cloner.data_dir}: {exc}; '
                    'a data directory that existed was left as it was')
    except Interrupted as exc:
        cloner.fail(f'interrupted by signal {exc.signum} while pg_basebackup ran: it was stopped and its '
                    f'copy removed; {cloner.data_dir} was left as it was')


if __name__ == '__main__':
    main()
