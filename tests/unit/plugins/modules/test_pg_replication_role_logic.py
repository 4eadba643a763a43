# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of pg_replication_role: what to change, how it is shown, what is refused."""

from __future__ import annotations

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils import _scram
from ansible_collections.catmaid.replication.plugins.module_utils._scram import build_verifier
from ansible_collections.catmaid.replication.plugins.modules import pg_replication_role as mod

PW = 'Unit-Secret-1'
SCRAM = build_verifier(PW, salt=b'0123456789abcdef')
MD5 = 'md57764e463c73a54e4bb79b9b9e419e145'


def row(replication=True, login=True, limit=-1, password=SCRAM, superuser=False):
    return dict(oid=16384, rolname='replicator', rolsuper=superuser, rolreplication=replication,
                rolcanlogin=login, rolconnlimit=limit, rolpassword=password)


C = mod.Change


@pytest.mark.parametrize('current, state, password, limit, readable, expected', [
    pytest.param(None, 'present', PW, -1, True,
                 [C('CREATE', ('REPLICATION', 'LOGIN', 'CONNECTION LIMIT -1'), True)], id='create'),
    pytest.param(None, 'present', PW, None, True, [C('CREATE', ('REPLICATION', 'LOGIN'), True)],
                 id='create-without-conn_limit'),
    pytest.param(row(limit=3), 'present', PW, None, True, [], id='dba-limit-kept-without-conn_limit'),
    pytest.param(None, 'present', None, 5, True,
                 [C('CREATE', ('REPLICATION', 'LOGIN', 'CONNECTION LIMIT 5'), False)], id='create-no-password'),
    pytest.param(row(), 'present', PW, -1, True, [], id='unchanged'),
    pytest.param(row(), 'present', None, -1, True, [], id='no-password-keeps-existing'),
    pytest.param(row(password=MD5), 'present', None, -1, True, [], id='no-password-keeps-md5'),
    pytest.param(row(), 'present', 'other', -1, True, [C('ALTER', (), True)], id='new-password'),
    pytest.param(row(password=MD5), 'present', PW, -1, True, [C('ALTER', (), True)], id='md5-replaced'),
    pytest.param(row(password=None), 'present', PW, -1, True, [C('ALTER', (), True)], id='password-added'),
    pytest.param(row(password='garbage'), 'present', PW, -1, True, [C('ALTER', (), True)], id='malformed-replaced'),
    pytest.param(row(login=False), 'present', PW, -1, True, [C('ALTER', ('LOGIN',), False)], id='login'),
    pytest.param(row(replication=False), 'present', PW, -1, True, [C('ALTER', ('REPLICATION',), False)],
                 id='replication'),
    pytest.param(row(limit=3), 'present', PW, -1, True, [C('ALTER', ('CONNECTION LIMIT -1',), False)],
                 id='conn-limit'),
    pytest.param(row(False, False, 3, MD5), 'present', PW, 4, True,
                 [C('ALTER', ('REPLICATION', 'LOGIN', 'CONNECTION LIMIT 4'), True)], id='everything'),
    pytest.param(row(password=None), 'present', PW, -1, False, [C('ALTER', (), True)], id='unreadable-sets-always'),
    pytest.param(row(password=None), 'present', None, -1, False, [], id='unreadable-no-password'),
    pytest.param(row(), 'absent', PW, -1, True, [C('DROP')], id='drop'),
    pytest.param(None, 'absent', None, -1, True, [], id='already-absent'),
])
def test_plan(current, state, password, limit, readable, expected):
    assert mod.plan(current, state, password, limit, readable) == expected


@pytest.mark.parametrize('change, text, template', [
    (C('CREATE', ('REPLICATION', 'LOGIN', 'CONNECTION LIMIT -1'), True),
     'CREATE ROLE "r" WITH REPLICATION LOGIN CONNECTION LIMIT -1 PASSWORD \'********\'',
     'CREATE ROLE {} WITH REPLICATION LOGIN CONNECTION LIMIT -1 PASSWORD %s'),
    (C('ALTER', (), True), 'ALTER ROLE "r" WITH PASSWORD \'********\'', 'ALTER ROLE {} WITH PASSWORD %s'),
    (C('ALTER', ('LOGIN',), False), 'ALTER ROLE "r" WITH LOGIN', 'ALTER ROLE {} WITH LOGIN'),
    (C('DROP'), 'DROP ROLE "r"', 'DROP ROLE {}'),
])
def test_statement_text_masks_password(change, text, template):
    assert mod.statement_text(change, 'r') == text
    assert mod.statement_template(change) == template


@pytest.mark.parametrize('name, quoted', [
    ('replicator', '"replicator"'),
    ('Repl User', '"Repl User"'),
    ('a"b', '"a""b"'),
    ('x; DROP ROLE postgres; --', '"x; DROP ROLE postgres; --"'),
])
def test_quote_ident(name, quoted):
    assert mod.quote_ident(name) == quoted


@pytest.mark.parametrize('current, readable, expected', [
    (None, True, dict(exists=False, replication=False, login=False, conn_limit=None, password_type=None)),
    (row(), True, dict(exists=True, replication=True, login=True, conn_limit=-1, password_type='scram-sha-256')),
    (row(password=MD5, limit=2), True,
     dict(exists=True, replication=True, login=True, conn_limit=2, password_type='md5')),
    (row(password=None, login=False), True,
     dict(exists=True, replication=True, login=False, conn_limit=-1, password_type=None)),
    (row(password=None), False, dict(exists=True, replication=True, login=True, conn_limit=-1, password_type='unknown')),
])
def test_describe_never_shows_the_verifier(current, readable, expected):
    described = mod.describe('replicator', current, readable)
    assert described == dict(name='replicator', **expected)
    assert SCRAM not in repr(described) and MD5 not in repr(described)


@pytest.mark.parametrize('current, state, password, limit', [
    (None, 'present', PW, -1),
    (None, 'present', None, 7),
    (row(), 'present', 'other', -1),
    (row(False, False, 3, MD5), 'present', PW, 4),
    (row(password=None), 'present', None, -1),
    (row(), 'absent', None, -1),
    (None, 'absent', None, -1),
])
def test_predict_matches_what_the_plan_does(current, state, password, limit):
    before = mod.describe('replicator', current)
    after = mod.predict(before, mod.plan(current, state, password, limit), limit)
    if state == 'absent':
        assert after == mod.describe('replicator', None)
        return
    assert after['exists'] and after['replication'] and after['login']
    assert after['conn_limit'] == limit
    if password is not None:
        assert after['password_type'] == 'scram-sha-256'
    else:
        assert after['password_type'] == before['password_type'] if current else after['password_type'] is None


def test_predict_without_changes_is_before():
    before = mod.describe('replicator', row())
    assert mod.predict(before, [], -1) == before


@pytest.mark.parametrize('params, error', [
    (dict(name='r', conn_limit=-1, password=None), None),
    (dict(name='r', conn_limit=0, password='x'), None),
    (dict(name='', conn_limit=-1, password=None), 'name must not be empty'),
    (dict(name='r' * 63, conn_limit=-1, password=None), None),
    (dict(name='r' * 64, conn_limit=-1, password=None), '63 bytes'),
    (dict(name='\u00e9' * 32, conn_limit=-1, password=None), '63 bytes'),
    (dict(name='r', conn_limit=-2, password=None), 'conn_limit'),
    (dict(name='r', conn_limit=-1, password=''), 'must not be empty'),
    (dict(name='r', conn_limit=-1, password='a\x00b'), 'NUL'),
])
def test_validate(params, error):
    result = mod.validate(params)
    if error is None:
        assert result is None
    else:
        assert error in result


def test_messages_say_what_to_do():
    sessions = [dict(pid=42, backend_type='walsender', application_name='walreceiver', client_addr='10.0.0.5'),
                dict(pid=43, backend_type='client backend', application_name='', client_addr=None)]
    msg = mod.sessions_message('replicator', sessions)
    assert 'pid 42 (walsender from 10.0.0.5 application \'walreceiver\')' in msg
    assert 'pid 43 (client backend over the local socket)' in msg
    assert 'standbys' in msg and 'pg_terminate_backend' in msg and 'does not force' in msg

    msg = mod.dependencies_message('replicator', [dict(place='app', objects=2), dict(place='(cluster-wide)', objects=1)])
    assert '3 object(s) (app: 2, (cluster-wide): 1)' in msg
    assert 'REASSIGN OWNED BY "replicator" TO postgres; DROP OWNED BY "replicator";' in msg

    msg = mod.standby_message('replicator', ['ALTER ROLE "replicator" WITH PASSWORD \'********\''])
    assert 'must be managed on the primary' in msg and "PASSWORD '********'" in msg


class _Diag:
    message_primary = 'permission denied to create role'
    message_detail = None
    message_hint = 'Only superusers may do that.'


class _PgError(Exception):
    pgcode = '42501'
    diag = _Diag()


def test_pg_error_text_never_echoes_the_statement():
    exc = _PgError("ALTER ROLE x PASSWORD 'SCRAM-SHA-256$4096:...'")
    text = mod.pg_error_text(exc)
    assert text == 'permission denied to create role (Only superusers may do that.) [SQLSTATE 42501]'
    assert mod.pg_error_text(ValueError('SCRAM-SHA-256$secret')) == 'ValueError'


@pytest.mark.parametrize('major, setting, expected', [
    (15, None, 4096),           # no scram_iterations before 16
    (16, '4096', 4096),
    (16, '10000', 10000),       # issue 14: a DBA's higher count was ignored
    (17, 16384, 16384),
    (16, None, 4096),
])
def test_verifier_uses_the_servers_scram_iterations(major, setting, expected):
    iterations = mod.verifier_iterations(major, setting)
    assert iterations == expected
    verifier = _scram.build_verifier('pw', iterations=iterations)
    assert verifier.startswith(f'SCRAM-SHA-256${expected}:') and _scram.verify('pw', verifier)
