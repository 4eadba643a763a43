# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for PostgreSQL data directories and files in them.

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import stat
import tempfile
from typing import Optional


def parse_pg_version(text: str, path: str = 'PG_VERSION') -> int:
    """Major version from the content of ``PG_VERSION`` ("15" -> 15, "9.6" -> 9).

    Raises ValueError with a message naming the file and its content when it holds anything else.
    """
    first = text.strip().split('.')[0]
    if not re.fullmatch(r'[0-9]{1,3}', first) or len(text.strip()) > 16:
        raise ValueError(f'{path} holds {text.strip()[:40]!r}, not a PostgreSQL major version: '
                         'this is not an intact PostgreSQL data directory')
    return int(first)


def read_pg_version(data_dir: str) -> Optional[int]:
    """Major version from ``PG_VERSION`` ("15" -> 15, "9.6" -> 9), or None when absent.

    Raises ValueError (see parse_pg_version) when the file holds no version.
    """
    path = os.path.join(data_dir, 'PG_VERSION')
    try:
        with open(path, encoding='ascii', errors='replace') as handle:
            text = handle.read(4096)
    except FileNotFoundError:
        return None
    return parse_pg_version(text, path)


def find_bin_dir(major: Optional[int], explicit: Optional[str] = None,
                 root: str = '/usr/lib/postgresql') -> Optional[str]:
    """Directory holding the server binaries of ``major``.

    ``explicit`` wins when given. Otherwise Debian's ``/usr/lib/postgresql/<major>/bin``;
    with no major, the newest installed one. None when nothing is found.
    """
    if explicit:
        return explicit
    if major is not None:
        candidate = os.path.join(root, str(major), 'bin')
        return candidate if os.path.isdir(candidate) else None
    found = sorted(glob.glob(os.path.join(root, '*', 'bin')),
                   key=lambda p: int(p.split(os.sep)[-2]) if p.split(os.sep)[-2].isdigit() else -1)
    return found[-1] if found else None


def owner_ids(path: str) -> tuple[int, int]:
    """uid and gid owning ``path``."""
    st = os.stat(path)
    return st.st_uid, st.st_gid


def user_ids(name: str) -> tuple[int, int]:
    """uid and primary gid of an OS user."""
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def write_file_atomic(path: str, content: str, mode: int = 0o600,
                      owner: Optional[tuple[int, int]] = None) -> None:
    """Write ``content`` to a temp file beside ``path``, set mode/owner, then rename over it.

    The temporary file is created with ``mode`` already applied, so the content is never
    readable by others, not even for a moment.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=directory)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, owner[0], owner[1])
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path: str) -> Optional[str]:
    """File content, or None when it does not exist."""
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_text_nofollow(path: str, limit: int = 4096) -> Optional[str]:
    """The first ``limit`` bytes of a file as text, or None when it does not exist.

    Never through a symbolic link (OSError ELOOP) nor from anything but a regular file (OSError).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f'{path} is not a regular file')
        return os.read(fd, limit).decode('utf-8', errors='replace')
    finally:
        os.close(fd)


def parse_postmaster_pid(text: Optional[str]) -> Optional[int]:
    """The postmaster's pid from the first line of postmaster.pid, or None."""
    if not text:
        return None
    lines = text.splitlines()
    first = lines[0].strip() if lines else ''
    return int(first) if first.isdigit() and int(first) > 0 else None


def lock_file_pid(text: Optional[str]) -> Optional[int]:
    """The pid of a complete postmaster.pid: a first line of digits ended by a line break.

    None for an empty or partly written file (PostgreSQL creates the file with O_EXCL and only
    then writes it, so a postmaster in the middle of starting leaves it empty for a moment) and
    for any other content PostgreSQL itself would refuse ("lock file is empty", "bogus data").
    """
    if not text or '\n' not in text:
        return None
    first = text.split('\n', 1)[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def postmaster_running(data_dir: str) -> bool:
    """Whether a server runs on ``data_dir``: the pid in its postmaster.pid is alive and a postgres.

    A stale postmaster.pid (left by a crash) whose pid now belongs to another program does not
    count. OSError other than a missing file (e.g. no permission) is raised to the caller.
    """
    pid = parse_postmaster_pid(read_text(os.path.join(data_dir, 'postmaster.pid')))
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass   # alive, owned by another user
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as handle:
            cmdline = handle.read()
    except OSError:
        return True
    return b'postgres' in cmdline or b'postmaster' in cmdline
