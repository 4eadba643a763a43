# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Can this server load the extensions its databases use? (catmaid.replication.pg_replication_info,
option extensions, and node_info.) A physical standby gets the primary's catalog, so it has every
extension the primary's databases created, but not their files: a replica without the PostGIS package
answers every spatial query with "could not access file "$libdir/postgis-3"". Read per database from
the server itself: each extension's version and the C libraries its functions load (pg_proc.probin),
whether the file is there (pg_stat_file) and whether it loads (LOAD, what a query does; both need a
superuser). A control file is not needed to use an extension, only to create or update it, so its
absence is reported (``available``) but is no problem. The packages that hold the files come from dpkg
on a node that has them (the primary).

Every connection pins search_path to pg_catalog (the module connects as a superuser to databases whose
owners may have created functions, aggregates or operators shadowing the built-in ones) and limits how
long a statement may run, and an error in one database is reported for that database only."""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping, Optional

from ansible_collections.catmaid.replication.plugins.module_utils import _pg

# Startup options of every connection made here: they override what a database's owner may set for it
# with ALTER DATABASE ... SET (a search path with their own functions, a role to run as, ending the
# session at the first error or after a millisecond idle, a library to preload); the settings PostgreSQL
# 14 and 17 added are given only to servers that know them (an unknown one refuses the connection).
# (A client encoding Python has no codec for, or serializable transactions, which a hot standby refuses,
# would make the database unreadable for the check.)
OPTIONS = ('-c search_path=pg_catalog -c statement_timeout=10000 -c lock_timeout=1000 -c role=none '
           '-c exit_on_error=off -c idle_in_transaction_session_timeout=0 -c local_preload_libraries= '
           '-c client_encoding=UTF8 -c default_transaction_isolation=read\\ committed')
OPTIONS_BY_VERSION = ((140000, '-c idle_session_timeout=0'), (170000, '-c transaction_timeout=0'))
SERVER_VERSION = "SELECT pg_catalog.current_setting('server_version_num')::int AS num"
DATABASES = 'SELECT d.datname FROM pg_catalog.pg_database d WHERE d.datallowconn ORDER BY d.datname'
# The extensions of the connected database, with their C libraries as pg_proc stores them ($libdir/...).
EXTENSIONS = """
SELECT e.extname AS name, e.extversion AS version,
       EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions a
                WHERE a.name OPERATOR(pg_catalog.=) e.extname AND a.version OPERATOR(pg_catalog.=) e.extversion) AS available,
       coalesce((SELECT pg_catalog.array_agg(DISTINCT p.probin ORDER BY p.probin)
                   FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) d.objid
                  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                    AND d.refobjid OPERATOR(pg_catalog.=) e.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
                    AND p.probin IS NOT NULL), '{}') AS libraries
  FROM pg_catalog.pg_extension e
 ORDER BY e.extname
"""
# Where $libdir and the control files are (the pg_config view: superusers only unless granted), and
# where a library named without a directory is looked for.
DIRECTORIES = ("SELECT (SELECT c.setting FROM pg_catalog.pg_config c WHERE c.name OPERATOR(pg_catalog.=) 'PKGLIBDIR') AS pkglibdir, "
               "(SELECT c.setting FROM pg_catalog.pg_config c WHERE c.name OPERATOR(pg_catalog.=) 'SHAREDIR') AS sharedir")
DYNAMIC_PATH = "SELECT pg_catalog.current_setting('dynamic_library_path') AS path"
FILE_EXISTS = 'SELECT (pg_catalog.pg_stat_file(%s, true)).size IS NOT NULL AS found'
LOAD = 'LOAD %s'
DLSUFFIX = '.so'
# What apt may be asked to install on a replica from the primary's answer: Debian's PostgreSQL server
# and extension packages only (postgresql-15, postgresql-15-postgis-3, postgresql-15-postgis-3-scripts).
INSTALLABLE = re.compile(r'^postgresql-[0-9]+(-[a-z0-9][a-z0-9+.-]*)?\Z')
PACKAGE_NAME = re.compile(r'^[a-z0-9][a-z0-9+.-]+\Z')


def _with_suffix(path: str) -> list[str]:
    return [path] if path.endswith(DLSUFFIX) else [path, path + DLSUFFIX]


def library_candidates(probin: str, pkglibdir: str, dynamic_path: str = '$libdir') -> list[str]:
    """The files PostgreSQL tries for a function's library (its expand_dynamic_library_name): a name with a
    directory with $libdir expanded, a bare name in each directory of dynamic_library_path; each as
    given, then with the suffix."""
    if '/' not in probin:
        dirs = [d.replace('$libdir', pkglibdir, 1) if d.startswith('$libdir') else d
                for d in (dynamic_path or '$libdir').split(':') if d]
        return [c for d in dirs for c in _with_suffix(f'{d}/{probin}')]
    path = probin.replace('$libdir', pkglibdir, 1) if probin.startswith('$libdir') else probin
    return _with_suffix(path)


def control_file(sharedir: str, name: str) -> str:
    return f'{sharedir}/extension/{name}.control'


def parse_dpkg_search(stdout: str) -> dict[str, str]:
    """``dpkg-query -S PATH...`` output -> {path: package(s)}. Lines are "pkg: /path" or
    "pkg1, pkg2: /path"; diversion lines, paths dpkg does not know and anything that is not a package
    name are left out."""
    owners: dict[str, str] = {}
    for line in stdout.splitlines():
        if ': ' not in line:
            continue
        packages, path = line.split(': ', 1)
        if 'diversion' in packages:
            continue
        names = [p.strip().split(':')[0] for p in packages.split(',') if p.strip()]
        path = path.strip()
        if path.startswith('/') and names and all(PACKAGE_NAME.match(n) for n in names):
            owners[path] = ', '.join(names)
    return owners


def installable(packages: Iterable[str]) -> list[str]:
    """The names apt may install on a replica (Debian's PostgreSQL packages), sorted, once each."""
    return sorted({p for p in packages if INSTALLABLE.match(p)})


def problems(extensions: Iterable[Mapping[str, Any]], packages: Optional[Mapping[str, str]], role: str) -> list[str]:
    """One line per extension whose libraries this server cannot load, naming the database, what fails and
    the package(s) that hold the missing files (``packages``: path -> package, from a node that has them)."""
    packages = packages or {}
    out: list[str] = []
    for ext in extensions:
        if ext.get('error'):
            out.append(f"{role}: the extensions of database {ext['database']} could not be read: {ext['error']}")
            continue
        failing: list[str] = []
        paths: list[str] = []
        for lib in ext.get('libraries') or []:
            if lib.get('loadable') is True or (lib.get('loadable') is None and lib.get('found') is True):
                continue
            if lib.get('found') is False:
                failing.append(f"the library {lib['library']} is missing ({' or '.join(lib.get('paths') or [])})")
                paths.extend(lib.get('paths') or [])
            elif lib.get('loadable') is False:
                failing.append(f"the library {lib['library']} does not load: {lib.get('error') or 'unknown error'}")
            else:
                failing.append(f"the library {lib['library']} cannot be checked ({lib.get('error') or 'unknown'})")
        if not failing:
            continue
        named = sorted({packages[p] for p in paths if packages.get(p)})
        unknown = all('cannot be checked' in line for line in failing)
        if named:
            fix = 'install ' + ', '.join(named) + ' here (the package(s) that hold these files on a node that has them)'
        elif paths:
            fix = 'install the package that holds these files here (dpkg -S on a node that has them names it)'
        elif unknown and all((lib.get('error') or '').startswith(('the session ended', 'no connection'))
                             for lib in ext.get('libraries') or [] if lib.get('loadable') is not True and lib.get('found') is not True):
            fix = 'run status again once the server takes connections (its log says why the session ended or was refused)'
        elif unknown:
            fix = 'check it as a superuser (pg_stat_file and LOAD need one; status.yml connects as postgres)'
        else:
            fix = 'install what the library needs here (ldd on it names what is missing)'
        hint = '' if unknown else ', for example with catmaid_replication_extra_packages'
        what = 'may not be usable here' if unknown else 'cannot be used here, queries using it fail'
        out.append(f"{role}: extension {ext['name']} {ext['version']} of database {ext['database']} {what}: "
                   f"{'; '.join(failing)}; {fix}{hint}")
    return out


def found_paths(extensions: Iterable[Mapping[str, Any]], pkglibdir: str, sharedir: str) -> list[str]:
    """The extension files found on this server whose packages may be looked up: absolute, normalised
    paths under PKGLIBDIR or SHAREDIR/extension only (a function's library may be any path)."""
    roots = [r.rstrip('/') + '/' for r in (pkglibdir, f'{sharedir}/extension' if sharedir else '') if r]
    out: set[str] = set()
    for ext in extensions:
        candidates = [ext.get('control_file')] if ext.get('available') else []
        candidates += [lib.get('path') for lib in ext.get('libraries') or [] if lib.get('found')]
        for path in candidates:
            if path and path == os.path.normpath(path) and any(path.startswith(r) for r in roots):
                out.add(path)
    return sorted(out)


def options(version_num: int = 0) -> str:
    """The startup options for a server of this version (server_version_num; 0 when not known yet)."""
    return ' '.join([OPTIONS] + [extra for since, extra in OPTIONS_BY_VERSION if version_num >= since])


def _connect(module, database: str, version_num: int = 0):
    conn = _pg.psycopg2.connect(**dict(_pg.connect_params(module.params), dbname=database, options=options(version_num)))
    conn.autocommit = True
    return conn


def read_extensions(module) -> dict[str, Any]:
    """Every extension of every database that allows connections, and whether this server can load its
    libraries: {'extensions': [...], 'pkglibdir', 'sharedir', 'error'}. Never raises a database error:
    a database that cannot be read is an entry with its error, the whole read an ``error``.

    Each database is asked only which extensions it has and which libraries their functions load; the
    files are looked for and loaded on the connection to login_db (the server's own, one per library):
    whatever a database's owner set for their database cannot change the verdict on a library, nor
    carry over to another database."""
    out: dict[str, Any] = {'extensions': [], 'pkglibdir': '', 'sharedir': '', 'error': None}
    login_db = module.params['login_db']
    try:
        conn = _connect(module, login_db)
    except _pg.psycopg2.Error as exc:
        out['error'] = str(exc).strip()
        return out
    try:
        version_num = int((_pg.fetch_one(conn, SERVER_VERSION) or {}).get('num') or 0)
        why = ''
        try:
            dirs = _pg.fetch_one(conn, DIRECTORIES) or {}
        except _pg.psycopg2.Error as exc:
            dirs, why = {}, f'the pg_config view is not readable: {str(exc).strip()}'
        out['pkglibdir'], out['sharedir'] = dirs.get('pkglibdir') or '', dirs.get('sharedir') or ''
        dynamic_path = (_pg.fetch_one(conn, DYNAMIC_PATH) or {}).get('path') or '$libdir'
        databases = [row['datname'] for row in _pg.fetch_all(conn, DATABASES)]
    except _pg.psycopg2.Error as exc:
        conn.close()
        out['error'] = str(exc).strip()
        return out
    conn.close()
    rows: list[tuple[str, Mapping[str, Any]]] = []
    for database in databases:
        try:
            dconn = _connect(module, database, version_num)
        except _pg.psycopg2.Error as exc:
            out['extensions'].append({'database': database, 'name': None, 'version': None, 'error': str(exc).strip()})
            continue
        try:
            rows.extend((database, row) for row in _pg.fetch_all(dconn, EXTENSIONS))
        except _pg.psycopg2.Error as exc:
            out['extensions'].append({'database': database, 'name': None, 'version': None, 'error': str(exc).strip()})
        finally:
            dconn.close()
    seen: dict[str, dict[str, Any]] = {}
    conn = None
    try:
        for database, row in rows:
            libraries = []
            for probin in row['libraries'] or []:
                if probin not in seen:
                    # The connection itself failing leaves the library unknown, never "missing".
                    blank = {'library': probin, 'paths': [], 'found': None, 'path': None, 'loadable': None}
                    try:
                        if conn is None or conn.closed:
                            conn = _connect(module, login_db, version_num)
                    except _pg.psycopg2.Error as exc:
                        seen[probin] = dict(blank, error=f'no connection to check it: {str(exc).strip()}')
                    else:
                        try:
                            seen[probin] = library_state(conn, probin, out['pkglibdir'], dynamic_path, why)
                        except _pg.psycopg2.Error as exc:
                            seen[probin] = dict(blank, error=f'the session ended while checking it: {str(exc).strip()}')
                libraries.append(dict(seen[probin]))
            out['extensions'].append({
                'database': database, 'name': row['name'], 'version': row['version'],
                'available': bool(row['available']), 'libraries': libraries,
                'control_file': control_file(out['sharedir'], row['name']) if out['sharedir'] else None})
    finally:
        if conn is not None:
            conn.close()
    return out


def library_state(conn, probin: str, pkglibdir: str, dynamic_path: str, why: str) -> dict[str, Any]:
    """library, paths, found (the file), path (the one found), loadable (LOAD), error; None where unknown.
    A connection lost on the way raises (the caller reports the library as not checked)."""
    state: dict[str, Any] = {'library': probin, 'paths': [], 'found': None, 'path': None, 'loadable': None, 'error': ''}
    if '$libdir' in (probin if '/' in probin else dynamic_path) and not pkglibdir:
        state['error'] = why or 'PKGLIBDIR unknown'
    else:
        state['paths'] = library_candidates(probin, pkglibdir, dynamic_path)
        try:
            state['found'] = False
            for path in state['paths']:
                if (_pg.fetch_one(conn, FILE_EXISTS, (path,)) or {}).get('found'):
                    state.update(found=True, path=path)
                    break
        except _pg.psycopg2.Error as exc:
            if conn.closed:
                raise
            state.update(found=None, error=f'pg_stat_file is not allowed: {str(exc).strip()}')
    try:
        with conn.cursor() as cur:
            cur.execute(LOAD, (probin,))
        state['loadable'] = True
    except _pg.psycopg2.Error as exc:
        if conn.closed:                    # the session ended (a crash in the library): not known, not missing
            raise
        text = str(exc).strip()
        if exc.pgcode == '42501':          # insufficient_privilege: not a superuser
            state['error'] = state['error'] or f'LOAD is not allowed: {text}'
        elif 'shared_preload_libraries' in text:
            # pg_cron, pgaudit, timescaledb, citus: loaded only at server start, whatever the package; the
            # file is there (found) and what it needs is this server's shared_preload_libraries, not a package.
            state['error'] = f'loads only at server start (shared_preload_libraries), not with LOAD: {text}'
        else:
            state.update(loadable=False, error=text)
    return state


def file_packages(module, read: Mapping[str, Any]) -> dict[str, str]:
    """Path -> package of the extension files found here (dpkg-query -S), {} without dpkg."""
    paths = found_paths(read['extensions'], read['pkglibdir'], read['sharedir'])
    dpkg = module.get_bin_path('dpkg-query')
    if not paths or not dpkg:
        return {}
    dummy, stdout, dummy_err = module.run_command([dpkg, '-S', '--', *paths])
    return parse_dpkg_search(stdout)
