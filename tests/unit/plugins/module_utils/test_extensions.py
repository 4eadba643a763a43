# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the extension check (module_utils/_extensions.py)."""

from __future__ import annotations

from ansible_collections.catmaid.replication.plugins.module_utils import _extensions as ext

LIB = '/usr/lib/postgresql/13/lib'


def test_library_candidates_follow_postgresql():
    assert ext.library_candidates('$libdir/postgis-3', LIB) == [f'{LIB}/postgis-3', f'{LIB}/postgis-3.so']
    assert ext.library_candidates('$libdir/plpgsql.so', LIB) == [f'{LIB}/plpgsql.so']
    assert ext.library_candidates('/opt/x/lib', LIB) == ['/opt/x/lib', '/opt/x/lib.so']


def test_dpkg_search_output_is_read_per_path():
    out = ('postgresql-13-postgis-3: /usr/lib/postgresql/13/lib/postgis-3.so\n'
           'postgresql-13-postgis-3-scripts: /usr/share/postgresql/13/extension/postgis.control\n'
           'diversion by foo from: /usr/bin/x\n'
           'libc6:amd64, libc6-dev:amd64: /usr/lib/x86_64-linux-gnu/y\n\n')
    assert ext.parse_dpkg_search(out) == {
        '/usr/lib/postgresql/13/lib/postgis-3.so': 'postgresql-13-postgis-3',
        '/usr/share/postgresql/13/extension/postgis.control': 'postgresql-13-postgis-3-scripts',
        '/usr/lib/x86_64-linux-gnu/y': 'libc6, libc6-dev'}


def postgis(available=True, found=True, loadable='same', error=''):
    loadable = found if loadable == 'same' else loadable
    return {'database': 'catmaid', 'name': 'postgis', 'version': '3.1.1', 'available': available,
            'control_file': '/usr/share/postgresql/13/extension/postgis.control',
            'libraries': [{'library': '$libdir/postgis-3', 'found': found, 'path': f'{LIB}/postgis-3.so' if found else None,
                           'loadable': loadable, 'paths': [f'{LIB}/postgis-3', f'{LIB}/postgis-3.so'],
                           'error': error or ('' if found is not None else 'no privilege')}]}


PACKAGES = {f'{LIB}/postgis-3.so': 'postgresql-13-postgis-3',
            '/usr/share/postgresql/13/extension/postgis.control': 'postgresql-13-postgis-3-scripts'}


def test_a_loadable_extension_is_no_problem_even_without_its_control_file():
    """Review 13 H2: using an extension never reads its control file (an old version has none)."""
    assert ext.problems([postgis()], PACKAGES, 'standby') == []
    assert ext.problems([postgis(available=False)], PACKAGES, 'standby') == []


def test_a_replica_without_postgis_is_told_the_package():
    [line] = ext.problems([postgis(available=False, found=False)], PACKAGES, 'standby')
    assert line.startswith('standby: extension postgis 3.1.1 of database catmaid cannot be used here, queries using it fail')
    assert 'the library $libdir/postgis-3 is missing' in line
    assert 'install postgresql-13-postgis-3 here' in line and 'catmaid_replication_extra_packages' in line


def test_a_library_that_does_not_load_says_why():
    [line] = ext.problems([postgis(loadable=False, error='libgeos_c.so.1: cannot open shared object file')], PACKAGES, 'standby')
    assert 'does not load: libgeos_c.so.1' in line and 'ldd' in line


def test_an_unknown_library_is_a_problem_and_says_why():
    [line] = ext.problems([postgis(found=None, loadable=None)], PACKAGES, 'primary')
    assert 'cannot be checked (no privilege)' in line and line.startswith('primary: ') and 'superuser' in line


def test_without_a_package_map_it_says_how_to_find_the_package():
    [line] = ext.problems([postgis(found=False)], {}, 'standby')
    assert 'install the package that holds these files here (dpkg -S' in line


def test_a_database_that_could_not_be_read_is_named():
    [line] = ext.problems([{'database': 'x', 'name': None, 'version': None, 'error': 'refused'}], {}, 'standby')
    assert line == 'standby: the extensions of database x could not be read: refused'


def test_only_files_found_under_the_extension_directories_are_looked_up():
    """Review 13 H1: a library path may be anything in pg_proc (an option for dpkg-query, /usr/sbin/sshd)."""
    assert ext.found_paths([postgis(), postgis(available=False, found=False)], LIB, '/usr/share/postgresql/13') == [
        f'{LIB}/postgis-3.so', '/usr/share/postgresql/13/extension/postgis.control']
    odd = postgis()
    odd['libraries'] += [{'library': x, 'found': True, 'path': x, 'loadable': True, 'paths': [x]}
                         for x in ['--admindir=/tmp/fake', '/usr/sbin/sshd', f'{LIB}/../../../sbin/sshd', 'relative/lib.so']]
    assert ext.found_paths([odd], LIB, '/usr/share/postgresql/13') == [
        f'{LIB}/postgis-3.so', '/usr/share/postgresql/13/extension/postgis.control']


def test_bare_library_names_are_looked_for_in_dynamic_library_path():
    assert ext.library_candidates('pg_trgm', LIB) == [f'{LIB}/pg_trgm', f'{LIB}/pg_trgm.so']
    assert ext.library_candidates('x', LIB, '/opt/pg:$libdir') == ['/opt/pg/x', '/opt/pg/x.so', f'{LIB}/x', f'{LIB}/x.so']


def test_dpkg_diversions_and_odd_names_are_never_packages():
    out = ('local diversion to: /usr/lib/postgresql/15/lib/plpgsql.so.orig\n'
           'diversion by foo to: /x\n'
           'evil pkg; rm: /usr/lib/postgresql/15/lib/a.so\n'
           'postgresql-15: /usr/lib/postgresql/15/lib/plpgsql.so\n')
    assert ext.parse_dpkg_search(out) == {'/usr/lib/postgresql/15/lib/plpgsql.so': 'postgresql-15'}


def test_only_debian_postgresql_packages_are_installable_on_a_replica():
    assert ext.installable(['postgresql-15-postgis-3', 'postgresql-15', 'openssh-server', 'postgresql-15-postgis-3',
                            'postgresql-common', 'libgeos-c1v5', 'postgresql-15-postgis-3-scripts']) == [
        'postgresql-15', 'postgresql-15-postgis-3', 'postgresql-15-postgis-3-scripts']


class _Error(Exception):
    def __init__(self, text, pgcode=None):
        super().__init__(text)
        self.pgcode = pgcode


class _Conn:
    """A connection whose pg_stat_file finds the file and whose LOAD raises what it is given."""

    def __init__(self, load_error=None, closes=False):
        self.load_error, self.closes, self.closed = load_error, closes, False

    def cursor(self):
        conn = self

        class _Cur:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, query, args=None):
                if conn.load_error is not None:
                    conn.closed = conn.closes
                    raise conn.load_error
        return _Cur()


def _state(monkeypatch, conn):
    monkeypatch.setattr(ext._pg, 'psycopg2', type('P', (), {'Error': _Error}))
    monkeypatch.setattr(ext._pg, 'fetch_one', lambda conn, query, args=None: {'found': True})
    return ext.library_state(conn, '$libdir/pg_cron', LIB, '$libdir', '')


def test_a_library_loaded_only_at_server_start_is_no_missing_package(monkeypatch):
    """Review 14 N7: pg_cron, pgaudit, timescaledb refuse LOAD unless preloaded; their file is there, so no
    package is missing (the replica's shared_preload_libraries is the operator's)."""
    state = _state(monkeypatch, _Conn(_Error('pg_cron can only be loaded via shared_preload_libraries', 'XX000')))
    assert state['found'] is True and state['loadable'] is None
    assert 'shared_preload_libraries' in state['error']
    assert ext.problems([{'database': 'db', 'name': 'pg_cron', 'version': '1.6', 'libraries': [state]}], {}, 'r') == []
    other = _state(monkeypatch, _Conn(_Error('undefined symbol: foo', 'XX000')))
    assert other['loadable'] is False and ext.problems(
        [{'database': 'db', 'name': 'x', 'version': '1', 'libraries': [other]}], {}, 'r')


def test_a_session_that_ends_during_the_check_is_not_a_verdict(monkeypatch):
    """Review 14 N3: a connection lost while checking a library raises (the caller reports the library as not
    checked and opens a new connection), never "does not load"."""
    import pytest
    with pytest.raises(_Error):
        _state(monkeypatch, _Conn(_Error('server closed the connection unexpectedly'), closes=True))


def test_the_startup_options_override_a_database_owners_settings_on_every_major():
    base = ext.options(0)
    for setting in ('search_path=pg_catalog', 'role=none', 'exit_on_error=off', 'idle_in_transaction_session_timeout=0',
                    'local_preload_libraries=', 'statement_timeout=10000'):
        assert f'-c {setting}' in base
    # Settings a server does not know refuse the connection: given only from the major that has them.
    assert 'idle_session_timeout' not in ext.options(130011)
    assert '-c idle_session_timeout=0' in ext.options(140000) and 'transaction_timeout' not in ext.options(160004)
    assert '-c transaction_timeout=0' in ext.options(170002)


def test_a_library_left_unknown_by_the_connection_says_so():
    """Review 16 L4: a library the check could not reach (no connection, or the session ended) is a problem,
    with advice about the connection, not about privileges."""
    for error in ('no connection to check it: FATAL: too many connections',
                  'the session ended while checking it: server closed the connection unexpectedly'):
        lib = {'library': '$libdir/postgis-3', 'paths': [], 'found': None, 'path': None, 'loadable': None, 'error': error}
        (line,) = ext.problems([{'database': 'db', 'name': 'postgis', 'version': '3', 'libraries': [lib]}], {}, 'r')
        assert error in line and 'run status again once the server takes connections' in line
        assert 'superuser' not in line
