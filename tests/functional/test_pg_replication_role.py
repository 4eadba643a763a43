# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catmaid.replication.pg_replication_role against real PostgreSQL clusters.

Passwords are checked the way standbys use them: a physical replication connection over SSL
to 127.0.0.1 that must pass scram-sha-256 authentication and answer IDENTIFY_SYSTEM.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from conftest import Cluster, as_postgres

MODULE = 'catmaid.replication.pg_replication_role'


# -- helpers ----------------------------------------------------------------------------------
def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attrs(cluster: Cluster, name: str) -> str:
    """'replication|login|connlimit' from pg_roles, '' when the role does not exist."""
    return cluster.psql('SELECT rolreplication::text, rolcanlogin::text, rolconnlimit FROM pg_roles '
                        f'WHERE rolname = {lit(name)}')


def stored(cluster: Cluster, name: str) -> str:
    return cluster.psql(f'SELECT rolpassword FROM pg_authid WHERE rolname = {lit(name)}')


def replication_login(cluster: Cluster, user: str, password: str) -> tuple:
    """A standby's connection: physical replication, SSL, scram-sha-256; returns IDENTIFY_SYSTEM."""
    conn = psycopg2.connect(host='127.0.0.1', port=cluster.port, user=user, password=password,
                            dbname='replication', sslmode='require', connect_timeout=10,
                            connection_factory=psycopg2.extras.PhysicalReplicationConnection)
    try:
        assert conn.info.ssl_in_use
        with conn.cursor() as cur:
            cur.execute('IDENTIFY_SYSTEM')
            row = cur.fetchone()
    finally:
        conn.close()
    assert str(row[0]) == cluster.system_identifier()
    return row


def login_fails(cluster: Cluster, user: str, password: str) -> bool:
    try:
        replication_login(cluster, user, password)
    except psycopg2.OperationalError as exc:
        return 'password authentication failed' in str(exc)
    return False


def secret_forms(secret: str) -> list[str]:
    """The secret as it could appear in text or in JSON (escaped or not)."""
    return sorted({secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]})


def assert_no_secret(result: dict[str, Any], *secrets: str) -> None:
    visible = {k: v for k, v in result.items() if k not in ('_stdout', '_stderr')}
    texts = [result['_stdout'], result['_stderr'], json.dumps(visible), json.dumps(visible, ensure_ascii=False)]
    for secret in secrets:
        for form in secret_forms(secret):
            for text in texts:
                assert form not in text


def run_ok(run_module, args: dict[str, Any], **kw) -> dict[str, Any]:
    result = run_module(MODULE, args, **kw)
    assert not result.get('failed'), result.get('msg')
    return result


def make_standby(clusters, primary: Cluster, user: str, password: str) -> Cluster:
    """pg_basebackup -R from the primary (over SSL as the replication role), started on a new port."""
    standby = Cluster(clusters.workdir, 'standby', clusters.bindir)
    standby.prepare_dirs()
    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE='require')   # never on argv
    res = as_postgres([standby.bin('pg_basebackup'), '-h', '127.0.0.1', '-p', str(primary.port), '-U', user,
                       '-D', str(standby.data_dir), '-R', '-X', 'stream', '-c', 'fast'], check=False, env=env)
    assert res.returncode == 0, res.stderr
    standby.write_conf()
    standby.start()
    assert standby.psql('SELECT pg_is_in_recovery()') == 't'
    return standby


# -- tests ------------------------------------------------------------------------------------
def test_create_then_idempotent_and_secret_never_shown(clusters, run_module):
    cluster = clusters('primary', log_statement='all')
    password = 'Create-Secret-5b1e9d'
    args = dict(name='replicator', password=password, **cluster.connection_args())

    first = run_ok(run_module, args, diff=True, verbosity=3)     # -vvv must not leak it either
    assert first['changed'] is True
    assert first['queries'] == ['CREATE ROLE "replicator" WITH REPLICATION LOGIN '
                                "PASSWORD '********'"]
    assert first['role'] == dict(name='replicator', exists=True, replication=True, login=True, conn_limit=-1,
                                 password_type='scram-sha-256')
    assert first['diff']['before']['exists'] is False
    assert first['diff']['after'] == first['role']
    assert attrs(cluster, 'replicator') == 'true|true|-1'
    verifier = stored(cluster, 'replicator')
    assert verifier.startswith('SCRAM-SHA-256$4096:')
    replication_login(cluster, 'replicator', password)

    second = run_ok(run_module, args, diff=True)
    assert second['changed'] is False
    assert second['queries'] == []
    assert second['diff']['before'] == second['diff']['after'] == first['role']
    assert stored(cluster, 'replicator') == verifier          # not rewritten with a new salt

    for result in (first, second):
        assert_no_secret(result, password, verifier)
    log = cluster.log.read_text(errors='replace')
    assert 'CREATE ROLE "replicator"' in log and 'SCRAM-SHA-256$4096:' in log   # statements were logged ...
    for form in secret_forms(password):
        assert form not in log                                                  # ... the password was not


def test_check_mode_changes_nothing(primary, run_module):
    args = dict(name='standby_user', password='Check-Mode-Secret-4c2d', conn_limit=3, **primary.connection_args())
    result = run_ok(run_module, args, check=True, diff=True)
    assert result['changed'] is True
    assert result['queries'] == ['CREATE ROLE "standby_user" WITH REPLICATION LOGIN CONNECTION LIMIT 3 '
                                 "PASSWORD '********'"]
    assert result['role']['exists'] is True and result['role']['password_type'] == 'scram-sha-256'
    assert set(result['diff']['before']) == {'name', 'exists', 'replication', 'login', 'conn_limit', 'password_type'}
    assert attrs(primary, 'standby_user') == ''
    assert_no_secret(result, args['password'])

    run_ok(run_module, args)
    # A changed password in check mode: reported, not applied.
    before = stored(primary, 'standby_user')
    changed = run_ok(run_module, dict(args, password='Other-Secret-9e8f'), check=True)
    assert changed['changed'] is True
    assert changed['queries'] == ['ALTER ROLE "standby_user" WITH PASSWORD \'********\'']
    assert stored(primary, 'standby_user') == before
    replication_login(primary, 'standby_user', args['password'])

    # Dropping in check mode keeps the role.
    absent = run_ok(run_module, dict(name='standby_user', state='absent', **primary.connection_args()), check=True)
    assert absent['changed'] is True and absent['queries'] == ['DROP ROLE "standby_user"']
    assert attrs(primary, 'standby_user') == 'true|true|3'


def test_password_change_detected_and_works(primary, run_module):
    base = dict(name='replicator', **primary.connection_args())
    # The fixture made 'replicator' with password 'repl-secret' (scram-sha-256 by the server).
    same = run_ok(run_module, dict(base, password='repl-secret'))
    assert same['changed'] is False

    new = 'Changed-Secret-77a0c3'
    result = run_ok(run_module, dict(base, password=new), diff=True)
    assert result['changed'] is True
    assert result['queries'] == ['ALTER ROLE "replicator" WITH PASSWORD \'********\'']
    assert result['diff']['before']['password_type'] == result['diff']['after']['password_type'] == 'scram-sha-256'
    replication_login(primary, 'replicator', new)
    assert login_fails(primary, 'replicator', 'repl-secret')
    assert run_ok(run_module, dict(base, password=new))['changed'] is False
    assert_no_secret(result, new)


def test_md5_hash_is_replaced(primary, run_module):
    password = 'Md5-Secret-31c9aa'
    primary.psql("SET password_encryption = 'md5'; "
                 f'CREATE ROLE legacy WITH REPLICATION LOGIN PASSWORD {lit(password)}')
    assert stored(primary, 'legacy').startswith('md5')
    base = dict(name='legacy', **primary.connection_args())

    kept = run_ok(run_module, base)                       # no password given: left alone, with a warning
    assert kept['changed'] is False
    assert any('md5' in w for w in kept.get('warnings', []))

    result = run_ok(run_module, dict(base, password=password), diff=True)
    assert result['changed'] is True
    assert result['queries'] == ['ALTER ROLE "legacy" WITH PASSWORD \'********\'']
    assert result['diff']['before']['password_type'] == 'md5'
    assert result['diff']['after']['password_type'] == 'scram-sha-256'
    assert stored(primary, 'legacy').startswith('SCRAM-SHA-256$')
    replication_login(primary, 'legacy', password)
    assert run_ok(run_module, dict(base, password=password))['changed'] is False


def test_missing_attributes_and_conn_limit_corrected(primary, run_module):
    primary.psql('ALTER ROLE replicator WITH NOLOGIN NOREPLICATION CONNECTION LIMIT 2')
    base = dict(name='replicator', password='repl-secret', **primary.connection_args())
    result = run_ok(run_module, dict(base, conn_limit=-1), diff=True)
    assert result['changed'] is True
    assert result['queries'] == ['ALTER ROLE "replicator" WITH REPLICATION LOGIN CONNECTION LIMIT -1']
    assert result['diff']['before'] == dict(name='replicator', exists=True, replication=False, login=False,
                                            conn_limit=2, password_type='scram-sha-256')
    assert attrs(primary, 'replicator') == 'true|true|-1'
    replication_login(primary, 'replicator', 'repl-secret')

    primary.psql('ALTER ROLE replicator WITH NOLOGIN')
    login_only = run_ok(run_module, dict(base, conn_limit=4))
    assert login_only['queries'] == ['ALTER ROLE "replicator" WITH LOGIN CONNECTION LIMIT 4']
    assert attrs(primary, 'replicator') == 'true|true|4'
    assert run_ok(run_module, dict(base, conn_limit=4))['changed'] is False


def test_without_password_existing_password_is_kept(primary, run_module):
    before = stored(primary, 'replicator')
    result = run_ok(run_module, dict(name='replicator', **primary.connection_args()))
    assert result['changed'] is False
    assert stored(primary, 'replicator') == before
    # A new role without a password: created (with a warning), password left NULL.
    created = run_ok(run_module, dict(name='nopass', **primary.connection_args()))
    assert created['changed'] is True
    assert created['queries'] == ['CREATE ROLE "nopass" WITH REPLICATION LOGIN']
    assert created['role']['password_type'] is None
    assert any('no password' in w for w in created.get('warnings', []))
    assert stored(primary, 'nopass') == ''


def test_absent_drops(primary, run_module):
    args = dict(name='replicator', state='absent', **primary.connection_args())
    result = run_ok(run_module, args, diff=True)
    assert result['changed'] is True
    assert result['queries'] == ['DROP ROLE "replicator"']
    assert result['diff']['after']['exists'] is False
    assert result['role']['exists'] is False
    assert attrs(primary, 'replicator') == ''
    again = run_ok(run_module, args)
    assert again['changed'] is False and again['queries'] == []


def test_absent_refuses_owner_of_objects(primary, run_module):
    primary.psql('CREATE TABLE owned_by_replicator (id int); ALTER TABLE owned_by_replicator OWNER TO replicator')
    result = run_module(MODULE, dict(name='replicator', state='absent', **primary.connection_args()))
    assert result.get('failed') is True
    assert 'cannot be dropped' in result['msg'] and 'REASSIGN OWNED BY "replicator"' in result['msg']
    assert 'postgres: 1' in result['msg']
    assert attrs(primary, 'replicator') == 'true|true|-1'


def test_absent_refuses_active_replication_connection(primary, run_module):
    conn = psycopg2.connect(host='127.0.0.1', port=primary.port, user='replicator', password='repl-secret',
                            dbname='replication', sslmode='require',
                            connection_factory=psycopg2.extras.PhysicalReplicationConnection)
    try:
        result = run_module(MODULE, dict(name='replicator', state='absent', **primary.connection_args()))
        assert result.get('failed') is True
        assert 'cannot be dropped' in result['msg'] and 'walsender' in result['msg']
        assert 'standbys' in result['msg'] and 'pg_terminate_backend' in result['msg']
        assert attrs(primary, 'replicator') == 'true|true|-1'
    finally:
        conn.close()


def test_awkward_password_and_name(clusters, run_module):
    cluster = clusters('primary', log_statement='all')
    name = 'repl "odd" 100% user'
    # Quotes, backslashes, a %s, non-ASCII letters, a ligature and a no-break space that SASLprep
    # rewrites (NFKC and space mapping), and an emoji PostgreSQL leaves as raw bytes.
    passwords = ['it\'s a "quoted" \\back\\slash %s pass',
                 'Gr\u00fc\u00dfe-\ufb01x\u00a0\u00e9t\u00e9-\u00c5ngstr\u00f6m-7b2',
                 '\U0001F511 key \\\' \u00fc-secret-11']
    for password in passwords:
        args = dict(name=name, password=password, **cluster.connection_args())
        result = run_ok(run_module, args, diff=True)
        assert result['changed'] is True
        replication_login(cluster, name, password)
        again = run_ok(run_module, args)
        assert again['changed'] is False
        for res in (result, again):
            assert_no_secret(res, password)
    assert attrs(cluster, name) == 'true|true|-1'
    log = cluster.log.read_text(errors='replace')
    assert 'ALTER ROLE "repl ""odd"" 100% user" WITH PASSWORD \'SCRAM-SHA-256$' in log
    for password in passwords:
        for form in secret_forms(password):
            assert form not in log


def test_createrole_login_cannot_read_pg_authid(primary, run_module):
    admin_pw = 'Admin-Secret-2f6b81'
    primary.psql(f'CREATE ROLE role_admin WITH LOGIN CREATEROLE PASSWORD {lit(admin_pw)}')
    login = dict(login_host='127.0.0.1', login_port=primary.port, login_user='role_admin', login_password=admin_pw)

    kept = run_ok(run_module, dict(name='replicator', **login))
    assert kept['changed'] is False
    assert kept['role']['password_type'] == 'unknown'            # pg_roles hides it; nothing is guessed

    # Without pg_authid the password cannot be compared, and PostgreSQL 15 lets only superusers
    # alter a REPLICATION role: the module says so and nothing leaks.
    new_pw = 'Never-Applied-Secret-c1'
    result = run_module(MODULE, dict(name='replicator', password=new_pw, **login))
    assert result.get('failed') is True
    assert 'Could not run ALTER ROLE "replicator" WITH PASSWORD \'********\'' in result['msg']
    assert 'superuser' in result['msg'] and 'SCRAM-SHA-256$' not in result['msg']
    assert_no_secret(result, new_pw, admin_pw)
    replication_login(primary, 'replicator', 'repl-secret')


def test_refuses_empty_password(primary, run_module):
    result = run_module(MODULE, dict(name='replicator', password='', **primary.connection_args()))
    assert result.get('failed') is True and 'must not be empty' in result['msg']


def test_standby_refuses_changes_but_accepts_no_change(clusters, run_module):
    primary = clusters('primary')
    password = 'Standby-Secret-0d41f7'
    run_ok(run_module, dict(name='replicator', password=password, **primary.connection_args()))
    standby = make_standby(clusters, primary, 'replicator', password)
    on_standby = dict(name='replicator', password=password, **standby.connection_args())

    same = run_ok(run_module, on_standby, diff=True)
    assert same['changed'] is False and same['queries'] == []
    assert same['role']['exists'] is True and same['role']['password_type'] == 'scram-sha-256'

    for args, check in ((dict(on_standby, password='Another-Secret-6a'), False),
                        (dict(on_standby, password='Another-Secret-6a'), True),
                        (dict(on_standby, conn_limit=2), False),
                        (dict(name='replicator', state='absent', **standby.connection_args()), False),
                        (dict(name='brand_new', **standby.connection_args()), False)):
        result = run_module(MODULE, args, check=check)
        assert result.get('failed') is True, result
        assert 'must be managed on the primary' in result['msg']
        assert 'standby' in result['msg']
        assert_no_secret(result, 'Another-Secret-6a', password)

    # The standby still streams with the role the module made on the primary.
    primary.psql('CREATE TABLE after_standby (id int)')
    standby.wait_for("SELECT count(*) FROM pg_class WHERE relname = 'after_standby'", '1')


# -- issue 14 item 6: SASLprep exactly as PostgreSQL's src/common/saslprep.c --------------------
ISSUE_PASSWORDS = ['pass\u213b', 'A\U0001f130b-\u00e9', 'x\u00e9\u0341', '\ufb1d']
GROUP_SCRAM = 'security: replication password (tests/functional/test_pg_replication_role.py)'
# Where SASLprep decides: spaces and mapped-to-nothing, combining marks, compatibility forms,
# right-to-left letters, characters unassigned in Unicode 3.2 that NFKC maps to assigned ones.
_POOLS = [(0x20, 0x7e), (0xa0, 0x17f), (0x300, 0x36f), (0x5b0, 0x5ff), (0x600, 0x6ff),
          (0x1e00, 0x1eff), (0x2000, 0x206f), (0x2100, 0x218f), (0x2460, 0x24ff), (0x3000, 0x30ff),
          (0xfb00, 0xfb4f), (0xfe00, 0xfe0f), (0xfe70, 0xfeff), (0xff00, 0xffef),
          (0x1d400, 0x1d7ff), (0x1f100, 0x1f1ff), (0x1f600, 0x1f64f), (0xe0000, 0xe007f)]


def superuser_connection(cluster: Cluster):
    """A superuser connection over the socket for the OS user running the tests (peer auth)."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    if not cluster.psql(f'SELECT 1 FROM pg_roles WHERE rolname = {lit(me)}'):
        cluster.psql(f'CREATE ROLE "{me}" SUPERUSER LOGIN')
    conn = psycopg2.connect(host=str(cluster.sock_dir), port=cluster.port, user=me, dbname='postgres')
    conn.autocommit = True
    return conn


def random_passwords(count: int, seed: int = 14) -> list[str]:
    import random
    rng = random.Random(seed)
    out = list(ISSUE_PASSWORDS)
    while len(out) < count:
        chars = []
        for dummy in range(rng.randint(1, 8)):
            if rng.random() < 0.15:
                code = rng.randint(0x80, 0x10ffff)
            else:
                low, high = rng.choice(_POOLS)
                code = rng.randint(low, high)
            if 0xd800 <= code <= 0xdfff or code == 0:
                continue
            chars.append(chr(code))
        if chars:
            out.append(''.join(chars))
    return out


def test_saslprep_equals_libpq_for_random_unicode_passwords(primary, report):
    """libpq's verifier verifies with the module's code and the module computes libpq's bytes."""
    from ansible_collections.catmaid.replication.plugins.module_utils import _scram

    passwords = random_passwords(3000)
    conn = superuser_connection(primary)
    with report.case(GROUP_SCRAM, 'SASLprep equals libpq for 3000 random Unicode passwords (issue 14 item 6)',
                     'for each password (the issue\'s U+213B, U+1F130, U+0341, U+FB1D examples and random ones '
                     'from the ranges SASLprep treats specially) the verifier libpq makes '
                     '(PQencryptPasswordConn) verifies with the module\'s code, and the module rebuilds '
                     'exactly libpq\'s verifier from its salt; 200 of them stored as module-made verifiers '
                     'log in on the server. On the parent commit the module normalised '
                     'before checking and disagreed with libpq, so the replicas could not log in') as case:
        mismatched = []
        try:
            for password in passwords:
                made = psycopg2.extensions.encrypt_password(password, 'u', conn, 'scram-sha-256')
                secret = _scram.parse_verifier(made)
                ours = _scram.build_verifier(password, salt=secret.salt, iterations=secret.iterations)
                if not _scram.verify(password, made) or ours != made:
                    mismatched.append(password)
        finally:
            conn.close()
        case.note(f'{len(passwords)} passwords, {len(mismatched)} differ from libpq')
        assert mismatched == [], f'{len(mismatched)} passwords differ, e.g. {[ascii(p) for p in mismatched[:5]]}'

        # And the other way round on the server itself: a verifier the module's code made, stored
        # as it is, lets libpq log in (physical replication over SSL) with the password.
        conn = superuser_connection(primary)
        refused = []
        try:
            with conn.cursor() as cur:
                cur.execute('CREATE ROLE sasl_random WITH REPLICATION LOGIN')
                for password in passwords[:200]:
                    cur.execute('ALTER ROLE sasl_random PASSWORD %s', (_scram.build_verifier(password),))
                    try:
                        replication_login(primary, 'sasl_random', password)
                    except psycopg2.OperationalError:
                        refused.append(password)
        finally:
            conn.close()
        case.note(f'200 of them stored as module-made verifiers: {200 - len(refused)} log in')
        assert refused == [], f'{len(refused)} logins refused, e.g. {[ascii(p) for p in refused[:5]]}'


def test_issue_passwords_log_in_and_server_verifier_kept(primary, run_module, report):
    with report.case(GROUP_SCRAM, 'a replica logs in with a password SASLprep prohibits (issue 14 item 6)',
                     "for 'pass\\u213b', 'A\\U0001f130b-\\u00e9', 'x\\u00e9\\u0341', '\\ufb1d': the verifier the "
                     'module stores lets a physical replication connection log in over SSL, and a verifier '
                     'the server made for the same password is kept (changed=false). On the parent commit '
                     'the module stored a verifier no replica could log in with ("password authentication '
                     'failed") and replaced the server\'s working one') as case:
        for number, password in enumerate(ISSUE_PASSWORDS):
            name = f'sasl{number}'
            result = run_ok(run_module, dict(name=name, password=password, **primary.connection_args()))
            assert result['changed'] is True
            assert_no_secret(result, password)
            replication_login(primary, name, password)
            server_made = f'sasl_server{number}'
            conn = superuser_connection(primary)
            try:
                with conn.cursor() as cur:
                    cur.execute("SET password_encryption = 'scram-sha-256'")
                    cur.execute(f'CREATE ROLE {server_made} WITH REPLICATION LOGIN PASSWORD %s', (password,))
            finally:
                conn.close()
            before = stored(primary, server_made)
            again = run_ok(run_module, dict(name=server_made, password=password, **primary.connection_args()))
            assert again['changed'] is False, f'{ascii(password)}: the server-made verifier was replaced'
            assert stored(primary, server_made) == before
            replication_login(primary, server_made, password)
            case.note(f'{ascii(password)}: module verifier logs in; server verifier kept')


# -- issue 14 item 8 ------------------------------------------------------------------------------
GROUP_INPUT = 'bad input: pg_replication_role (tests/functional/test_pg_replication_role.py)'


def test_conn_limit_set_by_a_dba_is_kept_unless_given(primary, run_module, report):
    with report.case(GROUP_INPUT, 'a connection limit a DBA set is left alone (issue 14 item 8)',
                     'ALTER ROLE ... CONNECTION LIMIT 5 by hand, then the module without conn_limit: no change, '
                     'the limit stays 5; conn_limit=7 sets 7. On the parent commit the default -1 silently '
                     'removed the DBA\'s limit') as case:
        primary.psql("CREATE ROLE limited WITH REPLICATION LOGIN CONNECTION LIMIT 5 PASSWORD 'pw-limited'")
        res = run_ok(run_module, dict(name='limited', password='pw-limited', **primary.connection_args()))
        assert res['changed'] is False, res['queries']
        assert attrs(primary, 'limited') == 'true|true|5'
        res = run_ok(run_module, dict(name='limited', conn_limit=7, **primary.connection_args()))
        assert res['changed'] is True and attrs(primary, 'limited') == 'true|true|7'
        created = run_ok(run_module, dict(name='fresh_role', **primary.connection_args()))
        assert created['changed'] is True and attrs(primary, 'fresh_role') == 'true|true|-1'
        case.note('limit 5 kept without conn_limit; conn_limit=7 applied; a new role has no limit')


def test_changes_do_not_wait_for_a_synchronous_standby_that_is_not_there(primary, run_module, monkeypatch):
    """synchronous_standby_names names a standby that does not stream (the replicas site.yml is about to
    repair): a commit of the role's change would wait for ever. The module commits it locally."""
    primary.psql("ALTER SYSTEM SET synchronous_standby_names = 'nobody_streams'")
    primary.psql('SELECT pg_reload_conf()')
    primary.wait_for('SHOW synchronous_standby_names', 'nobody_streams')
    try:
        # The control: an ordinary commit here does wait (it is still waiting after 3 s).
        with pytest.raises(subprocess.TimeoutExpired):
            as_postgres([primary.bin('psql'), '-X', '-q', '-h', str(primary.sock_dir), '-p', str(primary.port),
                         '-c', 'ALTER ROLE replicator CONNECTION LIMIT 7'], timeout=3)
        primary.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        # A hang fails the task after 90 s instead of the whole test run.
        monkeypatch.setenv('ANSIBLE_TASK_TIMEOUT', '90')
        new = 'Sync-Proof-Secret-4d1e'
        result = run_ok(run_module, dict(name='replicator', password=new, conn_limit=5, **primary.connection_args()))
        assert result['changed'] is True
        assert attrs(primary, 'replicator') == 'true|true|5'
        replication_login(primary, 'replicator', new)
        assert primary.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'") == '0'
    finally:
        primary.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        primary.psql('ALTER SYSTEM RESET synchronous_standby_names')
        primary.psql('SELECT pg_reload_conf()')
