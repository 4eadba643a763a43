# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Can this server load the extensions its databases use? (catmaid.replication.pg_replication_info,
option extensions.) A physical standby gets the primary's catalog, so it has every extension the
primary's databases created, but not their files: a replica without the PostGIS package answers
every spatial query with "could not access file "$libdir/postgis-3"". Read per database from the
server itself: each extension's version, whether this server has a control file for that version
(pg_available_extension_versions), and the C libraries its functions load (pg_proc.probin), found
or not (pg_stat_file, which needs a superuser or pg_read_server_files). The packages that hold the
files come from dpkg on a node that has them (the primary)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ansible_collections.catmaid.replication.plugins.module_utils import _pg

DATABASES = ('SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname')
# The extensions of the connected database, with their C libraries as pg_proc stores them ($libdir/...).
EXTENSIONS = """
SELECT e.extname AS name, e.extversion AS version,
       EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions a
                WHERE a.name = e.extname AND a.version = e.extversion) AS available,
       coalesce((SELECT array_agg(DISTINCT p.probin ORDER BY p.probin)
                   FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
                  WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                    AND d.refobjid = e.oid AND d.deptype = 'e' AND p.probin IS NOT NULL), '{}') AS libraries
  FROM pg_catalog.pg_extension e
 ORDER BY e.extname
"""
# Where $libdir and the control files are (the pg_config view: superusers only unless granted).
DIRECTORIES = ("SELECT max(setting) FILTER (WHERE name = 'PKGLIBDIR') AS pkglibdir, "
               "max(setting) FILTER (WHERE name = 'SHAREDIR') AS sharedir FROM pg_catalog.pg_config")
FILE_EXISTS = 'SELECT (pg_catalog.pg_stat_file(%s, true)).size IS NOT NULL AS found'
DLSUFFIX = '.so'


def library_candidates(probin: str, pkglibdir: str) -> list[str]:
    """The files PostgreSQL tries for a function's library: $libdir expanded, then with the suffix."""
    path = probin.replace('$libdir', pkglibdir, 1) if probin.startswith('$libdir') else probin
    return [path] if path.endswith(DLSUFFIX) else [path, path + DLSUFFIX]


def control_file(sharedir: str, name: str) -> str:
    return f'{sharedir}/extension/{name}.control'


def parse_dpkg_search(stdout: str) -> dict[str, str]:
    """``dpkg-query -S PATH...`` output -> {path: package(s)}. Lines are "pkg: /path" or
    "pkg1, pkg2: /path"; diversion notes and paths dpkg does not know are left out."""
    owners: dict[str, str] = {}
    for line in stdout.splitlines():
        if not line.strip() or line.startswith('diversion by') or ': ' not in line:
            continue
        packages, path = line.split(': ', 1)
        path = path.strip()
        if path.startswith('/'):
            owners[path] = ', '.join(p.strip().split(':')[0] for p in packages.split(',') if p.strip())
    return owners


def problems(extensions: Iterable[Mapping[str, Any]], packages: Optional[Mapping[str, str]], role: str) -> list[str]:
    """One line per extension this server cannot load, naming the database, what is missing and the
    package(s) that hold it (``packages``: path -> package, from a node that has the files)."""
    packages = packages or {}
    out: list[str] = []
    for ext in extensions:
        if ext.get('error'):
            out.append(f"{role}: the extensions of database {ext['database']} could not be read: {ext['error']}")
            continue
        missing: list[str] = []
        paths: list[str] = []
        if not ext.get('available'):
            missing.append(f"the control file of version {ext['version']} ({ext.get('control_file') or 'unknown path'})")
            if ext.get('control_file'):
                paths.append(ext['control_file'])
        for lib in ext.get('libraries') or []:
            if lib.get('found') is None:
                missing.append(f"possibly the library {lib['library']} (cannot tell: {lib.get('why') or 'unknown'})")
            elif not lib['found']:
                missing.append(f"the library {lib['library']} ({' or '.join(lib['paths'])})")
                paths.extend(lib['paths'])
        if not missing:
            continue
        named = sorted({packages[p] for p in paths if packages.get(p)})
        if named:
            fix = 'install ' + ', '.join(named) + ' here (the package(s) that hold these files on a node that has them)'
        else:
            fix = 'install the package that holds these files here (dpkg -S on a node that has them names it)'
        out.append(f"{role}: extension {ext['name']} {ext['version']} of database {ext['database']} cannot be loaded here, "
                   f"queries using it fail: missing {'; '.join(missing)}; {fix}, for example in "
                   'catmaid_replication_extra_packages')
    return out


def found_paths(extensions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The extension files that exist on this server (their packages can be looked up here)."""
    out: list[str] = []
    for ext in extensions:
        if ext.get('available') and ext.get('control_file'):
            out.append(ext['control_file'])
        for lib in ext.get('libraries') or []:
            if lib.get('found') and lib.get('path'):
                out.append(lib['path'])
    return sorted(set(out))


def read_extensions(module, conn) -> list[dict[str, Any]]:
    """Every extension of every database that allows connections, and whether this server can load it."""
    why = ''
    try:
        dirs = _pg.fetch_one(conn, DIRECTORIES) or {}
    except _pg.psycopg2.Error as exc:
        dirs, why = {}, f'the pg_config view is not readable: {str(exc).strip()}'
    pkglibdir, sharedir = dirs.get('pkglibdir') or '', dirs.get('sharedir') or ''
    seen: dict[str, tuple[Optional[bool], Optional[str], str]] = {}
    out: list[dict[str, Any]] = []
    for database in [row['datname'] for row in _pg.fetch_all(conn, DATABASES)]:
        try:
            dconn = _pg.psycopg2.connect(**dict(_pg.connect_params(module.params), dbname=database))
        except _pg.psycopg2.Error as exc:
            out.append({'database': database, 'name': None, 'version': None, 'error': str(exc).strip()})
            continue
        dconn.autocommit = True
        try:
            for row in _pg.fetch_all(dconn, EXTENSIONS):
                libraries = []
                for probin in row['libraries'] or []:
                    if probin not in seen:
                        seen[probin] = library_state(dconn, probin, pkglibdir, why)
                    found, path, reason = seen[probin]
                    libraries.append({'library': probin, 'found': found, 'path': path, 'why': reason,
                                      'paths': library_candidates(probin, pkglibdir) if pkglibdir else []})
                out.append({'database': database, 'name': row['name'], 'version': row['version'],
                            'available': bool(row['available']), 'libraries': libraries,
                            'control_file': control_file(sharedir, row['name']) if sharedir else None})
        finally:
            dconn.close()
    return out


def library_state(conn, probin: str, pkglibdir: str, why: str) -> tuple[Optional[bool], Optional[str], str]:
    """(found, the file found, why unknown) of one library as pg_proc names it."""
    if probin.startswith('$libdir') and not pkglibdir:
        return None, None, why or 'PKGLIBDIR unknown'
    try:
        for path in library_candidates(probin, pkglibdir):
            if (_pg.fetch_one(conn, FILE_EXISTS, (path,)) or {}).get('found'):
                return True, path, ''
    except _pg.psycopg2.Error as exc:
        return None, None, f'pg_stat_file is not allowed: {str(exc).strip()}'
    return False, None, ''


def file_packages(module, extensions: list[dict[str, Any]]) -> dict[str, str]:
    """Path -> package of the extension files found here (dpkg-query -S), {} without dpkg."""
    paths = found_paths(extensions)
    dpkg = module.get_bin_path('dpkg-query')
    if not paths or not dpkg:
        return {}
    dummy, stdout, dummy_err = module.run_command([dpkg, '-S', *paths])
    return parse_dpkg_search(stdout)
