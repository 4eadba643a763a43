# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 15, extensions on replicas: catmaid.replication.pg_replication_info (options extensions and
expect_extensions, which status.yml uses on every node) on a real primary and a real streaming standby.
A physical standby has the primary's catalog but not its files: here an extension (pg_trgm, part of the
server package) is given a C function whose library exists nowhere (its pg_proc row pointed at a missing
file), so every node that has the catalog row lacks the file, as a replica without PostGIS's package does.
The module must name the database, the extension and the library, with the package from the primary's
dpkg lookup where the files exist, and pass for a database whose extensions all load."""

from __future__ import annotations

import shutil

import pytest

MODULE = 'catmaid.replication.pg_replication_info'


def setup_extension(primary, broken: bool) -> None:
    primary.psql('CREATE DATABASE labdb')
    primary.psql('CREATE EXTENSION pg_trgm', db='labdb')
    if broken:
        # CREATE FUNCTION loads the library: made with pg_trgm's, then pointed at one that exists nowhere.
        primary.psql("CREATE FUNCTION lab_missing(text) RETURNS text[] AS '$libdir/pg_trgm', 'show_trgm' LANGUAGE C; "
                     "UPDATE pg_catalog.pg_proc SET probin = '$libdir/catmaid_lab_missing' WHERE proname = 'lab_missing'; "
                     'ALTER EXTENSION pg_trgm ADD FUNCTION lab_missing(text)', db='labdb')


def test_a_standby_that_cannot_load_an_extension_is_named_with_the_package(primary, make_standby, run_module):
    setup_extension(primary, broken=True)
    standby = make_standby(primary, 'standby', slot='standby')
    assert standby.psql("SELECT count(*) FROM pg_proc WHERE proname = 'lab_missing'", db='labdb') == '1'
    # On the primary: what its databases use and the packages of the files it has.
    head = run_module(MODULE, dict(primary.connection_args(), extensions=True))
    assert not head.get('failed'), head.get('msg')
    trgm = [e for e in head['extensions'] if e['database'] == 'labdb' and e['name'] == 'pg_trgm'][0]
    assert trgm['available'] and trgm['control_file'].endswith('/extension/pg_trgm.control')
    libs = {lib['library']: lib for lib in trgm['libraries']}
    assert libs['$libdir/pg_trgm']['found'] is True and libs['$libdir/catmaid_lab_missing']['found'] is False
    plpgsql = [e for e in head['extensions'] if e['database'] == 'postgres' and e['name'] == 'plpgsql'][0]
    assert [lib['found'] for lib in plpgsql['libraries']] == [True]
    if shutil.which('dpkg-query'):
        owner = head['extension_packages'].get(trgm['control_file'], '')
        assert owner.startswith('postgresql-'), head['extension_packages']
    # On the standby: the check fails naming the database, the extension and the library.
    res = run_module(MODULE, dict(standby.connection_args(), expect_extensions=True,
                                  extension_packages={libs['$libdir/pg_trgm']['path']: 'pkg-of-trgm',
                                                      libs['$libdir/catmaid_lab_missing']['paths'][1]: 'pkg-lab-missing'}))
    assert res.get('failed'), res
    assert 'standby: extension pg_trgm' in res['msg'] and 'of database labdb cannot be used here' in res['msg']
    assert 'the library $libdir/catmaid_lab_missing is missing' in res['msg'] and 'install pkg-lab-missing here' in res['msg']
    assert 'pkg-of-trgm' not in res['msg']      # its file is there
    assert 'database postgres' not in res['msg'] and 'database template1' not in res['msg']
    # The same without a package map: it still says which files are missing.
    res = run_module(MODULE, dict(standby.connection_args(), expect_extensions=True))
    assert res.get('failed') and 'install the package that holds these files here' in res['msg']


def test_every_extension_loadable_passes_and_changes_nothing(primary, make_standby, run_module):
    setup_extension(primary, broken=False)
    standby = make_standby(primary, 'standby', slot='standby')
    standby.wait_for("SELECT count(*) FROM pg_database WHERE datname = 'labdb'", '1')
    for cluster in (primary, standby):
        res = run_module(MODULE, dict(cluster.connection_args(), expect_extensions=True))
        assert not res.get('failed'), res.get('msg')
        assert res['changed'] is False and res['problems'] == []
        assert {(e['database'], e['name']) for e in res['extensions']} >= {('labdb', 'pg_trgm'), ('labdb', 'plpgsql')}


@pytest.mark.parametrize('user', ['monitor'])
def test_without_the_privilege_to_look_the_library_is_unknown_and_fails(primary, run_module, user):
    setup_extension(primary, broken=False)
    primary.psql(f"CREATE ROLE {user} LOGIN PASSWORD 'monitor-secret' IN ROLE pg_monitor")
    res = run_module(MODULE, dict(login_host='127.0.0.1', login_port=primary.port, login_user=user,
                                  login_password='monitor-secret', expect_extensions=True))
    assert res.get('failed') and 'the library $libdir/pg_trgm cannot be checked (' in res['msg'], res['msg']


def test_a_database_owner_cannot_run_code_through_the_check(primary, run_module):
    """Review 13 C1: the check connects as a superuser to every database; a database owner's aggregate
    array_agg(text) (an exact match, preferred to pg_catalog's polymorphic one) and a search_path set on
    the database must not be used."""
    primary.psql("CREATE ROLE owner LOGIN PASSWORD 'owner-secret'")
    primary.psql('CREATE DATABASE labdb OWNER owner')
    primary.psql('CREATE EXTENSION pg_trgm', db='labdb')
    primary.psql("SET ROLE owner; CREATE SCHEMA trap; "
                 "CREATE FUNCTION public.trojan_sfunc(text[], text) RETURNS text[] LANGUAGE plpgsql AS "
                 "$$ BEGIN IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN "
                 "EXECUTE 'ALTER ROLE owner SUPERUSER'; END IF; RETURN coalesce($1, '{}') || $2; END $$; "
                 "CREATE AGGREGATE public.array_agg(text) (sfunc = public.trojan_sfunc, stype = text[]); "
                 "CREATE FUNCTION trap.max(text) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$", db='labdb')
    primary.psql('ALTER DATABASE labdb SET search_path = trap, public, pg_catalog')
    res = run_module(MODULE, dict(primary.connection_args(), expect_extensions=True))
    assert not res.get('failed'), res.get('msg')
    assert primary.psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'") == 'f'
    assert ('labdb', 'pg_trgm') in {(e['database'], e['name']) for e in res['extensions']}


def test_a_database_that_cannot_be_read_is_named_and_the_replication_status_stands(primary, run_module):
    """Review 13 H3 (review 14 N12: the earlier version of this test never made a database unreadable): a
    login without CONNECT on one database gets that database's error as its entry, never a failure of
    the replication read; with expect_extensions it is a problem naming the database."""
    setup_extension(primary, broken=False)
    primary.psql("CREATE ROLE monitor LOGIN PASSWORD 'monitor-secret' IN ROLE pg_monitor")
    primary.psql('REVOKE CONNECT ON DATABASE labdb FROM PUBLIC')
    login = dict(login_host='127.0.0.1', login_port=primary.port, login_user='monitor', login_password='monitor-secret')
    res = run_module(MODULE, dict(login, extensions=True))
    assert not res.get('failed'), res.get('msg')
    assert res['role'] == 'primary' and res['current_lsn']
    entry = [e for e in res['extensions'] if e['database'] == 'labdb'][0]
    assert entry['name'] is None and 'permission denied for database' in entry['error'], entry
    assert ('postgres', 'plpgsql') in {(e['database'], e['name']) for e in res['extensions']}
    res = run_module(MODULE, dict(login, expect_extensions=True))
    assert res.get('failed') and 'the extensions of database labdb could not be read: ' in res['msg'], res.get('msg')
    # A database that allows no connections is not a database anyone's query can use: not listed.
    primary.psql('ALTER DATABASE labdb ALLOW_CONNECTIONS false')
    res = run_module(MODULE, dict(primary.connection_args(), expect_extensions=True))
    assert not res.get('failed'), res.get('msg')
    assert 'labdb' not in {e['database'] for e in res['extensions']}


def test_a_database_owner_cannot_change_the_verdict_on_any_library(primary, make_standby, run_module):
    """Review 14 N3: settings a database's owner gives their database (run as another role, end the session
    at the first error or when idle for a millisecond, preload a library that is not there) apply to the
    superuser's session too. None may change what the check says about a library, in that database or
    in any other: every extension here loads, so there is no problem at all, on the primary and on a standby
    (review 15 R1: a client encoding Python has no codec for; serializable transactions, which a hot standby
    refuses)."""
    primary.psql("CREATE ROLE owner LOGIN PASSWORD 'owner-secret'")
    primary.psql('CREATE DATABASE labdb OWNER owner')
    primary.psql('CREATE EXTENSION pg_trgm', db='labdb')
    for setting in ("role = 'owner'", 'exit_on_error = on', "idle_session_timeout = '1ms'",
                    "idle_in_transaction_session_timeout = '1ms'", "local_preload_libraries = 'catmaid_lab_nothing'",
                    "client_encoding = 'EUC_TW'", "default_transaction_isolation = 'serializable'"):
        primary.psql(f'SET ROLE owner; ALTER DATABASE labdb SET {setting}')
    # The poison works on an ordinary superuser session (psql as postgres): it cannot even connect.
    with pytest.raises(RuntimeError, match='catmaid_lab_nothing'):
        primary.psql('SELECT 1', db='labdb')
    res = run_module(MODULE, dict(primary.connection_args(), expect_extensions=True))
    assert not res.get('failed'), res.get('msg')
    assert res['problems'] == []
    found = {(e['database'], e['name']): e for e in res['extensions']}
    assert {('labdb', 'pg_trgm'), ('labdb', 'plpgsql'), ('postgres', 'plpgsql'), ('template1', 'plpgsql')} <= set(found)
    for entry in found.values():
        assert all(lib['loadable'] is True and lib['found'] is True for lib in entry['libraries']), entry
    standby = make_standby(primary, 'standby', slot='standby')
    res = run_module(MODULE, dict(standby.connection_args(), expect_extensions=True))
    assert not res.get('failed'), res.get('msg')
    assert res['problems'] == [] and ('labdb', 'pg_trgm') in {(e['database'], e['name']) for e in res['extensions']}


def test_an_old_version_and_a_bare_library_name_are_no_problem(primary, run_module):
    """Review 13 H2: an extension whose installed version has no install script any more (PostGIS after
    an upgrade without ALTER EXTENSION UPDATE) and a library named without $libdir (found through
    dynamic_library_path) both load: no problem."""
    setup_extension(primary, broken=False)
    primary.psql("UPDATE pg_catalog.pg_extension SET extversion = '1.1' WHERE extname = 'pg_trgm'", db='labdb')
    primary.psql("CREATE FUNCTION bare_trgm(text) RETURNS text[] AS 'pg_trgm', 'show_trgm' LANGUAGE C STRICT; "
                 'ALTER EXTENSION pg_trgm ADD FUNCTION bare_trgm(text)', db='labdb')
    res = run_module(MODULE, dict(primary.connection_args(), expect_extensions=True))
    assert not res.get('failed'), res.get('msg')
    trgm = [e for e in res['extensions'] if e['database'] == 'labdb' and e['name'] == 'pg_trgm'][0]
    assert trgm['version'] == '1.1' and trgm['available'] is False
    bare = [lib for lib in trgm['libraries'] if lib['library'] == 'pg_trgm'][0]
    assert bare['found'] is True and bare['loadable'] is True and bare['path'].endswith('/pg_trgm.so')
