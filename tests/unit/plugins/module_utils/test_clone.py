# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pure decision logic behind catmaid.replication.pg_basebackup."""

from __future__ import annotations

import sys

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils import _clone, _pgdata
from ansible_collections.catmaid.replication.plugins.module_utils._clone import Facts

PRIMARY = '7301000000000000001'
OTHER = '7301000000000000002'


def facts(**kw) -> Facts:
    base = dict(exists=True, empty=False, has_pg_version=True, running=False, local_sysid=OTHER,
                primary_sysid=PRIMARY, standby_configured=False, force=False)
    base.update(kw)
    return Facts(**base)


# Every row of the decision table, with and without force where it matters.
ROWS = [
    # id, facts, action, words in the message
    ('missing', Facts(exists=False, primary_sysid=PRIMARY), 'clone', ['missing']),
    ('missing-force', Facts(exists=False, primary_sysid=PRIMARY, force=True), 'clone', ['missing']),
    ('empty', facts(empty=True, has_pg_version=False, local_sysid=None), 'clone', ['empty']),
    ('empty-force', facts(empty=True, has_pg_version=False, local_sysid=None, force=True), 'clone', ['empty']),
    ('standby-of-primary', facts(local_sysid=PRIMARY, standby_configured=True), 'unchanged',
     ['already holds a standby', PRIMARY]),
    ('standby-of-primary-force', facts(local_sysid=PRIMARY, standby_configured=True, force=True), 'unchanged',
     ['already holds a standby']),
    ('running-standby-of-primary', facts(local_sysid=PRIMARY, standby_configured=True, running=True),
     'unchanged', ['already holds a standby']),
    ('running-other', facts(running=True), 'refuse', ['running', 'force does not override']),
    ('running-other-force', facts(running=True, force=True), 'refuse', ['running']),
    ('running-promoted-force', facts(running=True, local_sysid=PRIMARY, force=True), 'refuse', ['running']),
    ('running-not-a-cluster-force', facts(running=True, has_pg_version=False, local_sysid=None, force=True),
     'refuse', ['running']),
    ('not-a-cluster', facts(has_pg_version=False, local_sysid=None), 'refuse', ['no PG_VERSION', 'force=true']),
    ('not-a-cluster-force', facts(has_pg_version=False, local_sysid=None, force=True), 'replace',
     ['no PG_VERSION']),
    ('promoted', facts(local_sysid=PRIMARY), 'refuse', ['not configured as a standby', 'promoted', 'force=true']),
    ('promoted-force', facts(local_sysid=PRIMARY, force=True), 'replace', ['not configured as a standby']),
    ('other-cluster', facts(), 'refuse', ['another cluster', OTHER, PRIMARY, 'force=true']),
    ('other-cluster-force', facts(force=True), 'replace', ['another cluster']),
    ('other-standby', facts(standby_configured=True), 'refuse', ['another cluster']),
    ('other-standby-force', facts(standby_configured=True, force=True), 'replace', ['another cluster']),
    ('unreadable-sysid', facts(local_sysid=None), 'refuse', ['could not be read']),
    ('unreadable-sysid-standby-force', facts(local_sysid=None, standby_configured=True, force=True), 'replace',
     ['could not be read']),
]


@pytest.mark.parametrize('given, action, words', [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_decision_table(given, action, words):
    decision = _clone.decide(given, '/srv/pg/main')
    assert decision.action == action
    for word in words:
        assert word in decision.msg


@pytest.mark.parametrize('action, done, start', [
    ('clone', False, 'would clone the primary into'),
    ('clone', True, 'cloned the primary into'),
    ('replace', False, 'would replace an existing cluster: '),
    ('replace', True, 'replaced an existing cluster: '),
    ('unchanged', False, 'unchanged'),
    ('unchanged', True, 'unchanged'),
])
def test_messages_say_what_happens(action, done, start):
    given = {'clone': Facts(exists=False, primary_sysid=PRIMARY),
             'replace': facts(force=True),
             'unchanged': facts(local_sysid=PRIMARY, standby_configured=True)}[action]
    assert _clone.decide(given).message(done).startswith(start)


@pytest.mark.parametrize('raw, escaped', [
    ('plain', 'plain'),
    ('a:b', 'a\\:b'),
    ('a\\b', 'a\\\\b'),
    ('\\:', '\\\\\\:'),
    ('::', '\\:\\:'),
    ("it's*", "it's*"),
])
def test_passfile_field_escaping(raw, escaped):
    assert _clone.escape_passfile_field(raw) == escaped


def _parse_passfile_field(text: str) -> list[str]:
    """libpq's reading of one passfile line (backslash escapes the next character)."""
    fields, cur, i = [], '', 0
    while i < len(text):
        if text[i] == '\\' and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
            continue
        if text[i] == ':':
            fields.append(cur)
            cur = ''
        else:
            cur += text[i]
        i += 1
    return fields + [cur]


@pytest.mark.parametrize('user, password', [
    ('replicator', 'repl-secret'),
    ('rep:l', 'p:a\\s:s\\'),
    ('u', '*'),
])
def test_passfile_line_round_trips(user, password):
    line = _clone.passfile_line(user, password)
    assert line.endswith('\n') and line.count('\n') == 1
    assert _parse_passfile_field(line.rstrip('\n')) == ['*', '*', '*', user, password]


@pytest.mark.parametrize('password', ['a\nb', 'a\rb'])
def test_passfile_line_rejects_line_breaks(password):
    with pytest.raises(ValueError, match='line break'):
        _clone.passfile_line('u', password)


def test_conninfo_quotes_and_skips_unset():
    assert _clone.conninfo(dict(sslmode='require', sslrootcert=None, application_name="it's \\x",
                                connect_timeout=10)) == \
        "sslmode='require' application_name='it\\'s \\\\x' connect_timeout='10'"


def test_argv_never_has_the_password_and_has_slot_flags():
    argv = _clone.basebackup_argv('/bin/pg_basebackup', '/d/.main.clone-1', 'db1', 5433, 'rep', 'fast',
                                  "sslmode='require'", slot='s1', create_slot=True, max_rate='1M')
    assert argv == ['/bin/pg_basebackup', '-D', '/d/.main.clone-1', '-X', 'stream', '-c', 'fast',
                    '-l', 'catmaid.replication clone', '-d', "sslmode='require'", '-h', 'db1', '-p', '5433', '-U', 'rep', '-w', '--no-password',
                    '-C', '-S', 's1', '-r', '1M']
    reuse = _clone.basebackup_argv('pg_basebackup', 't', 'h', 1, 'u', 'spread', '', slot='s1')
    assert reuse[-2:] == ['-S', 's1'] and '-C' not in reuse and 'spread' in reuse
    plain = _clone.basebackup_argv('pg_basebackup', 't', 'h', 1, 'u', 'fast', '')
    assert '-S' not in plain and '-C' not in plain and '-r' not in plain


def test_temp_names_are_hidden_and_beside_the_data_dir():
    assert _clone.temp_prefix('main') == '.main.clone-'
    assert _clone.old_prefix('main') == '.main.old-'


@pytest.mark.parametrize('entries, exists, remove, restore', [
    # Only our own clone/old names for this data directory are selected.
    (['main', '.main.clone-abc_12', '.main.clone-x9', 'other'], True, ['.main.clone-abc_12', '.main.clone-x9'], None),
    (['main', '.main.old-k3j2'], True, ['.main.old-k3j2'], None),
    (['main', '.main.clone-', '.main.clone-a.b', '.main.clone-a/b', '.mainx.clone-ab', '.other.clone-ab',
      'main.clone-ab', '.main.clone-ab.keep', '.main.config-backup-20260101T000000'], True, [], None),
    (['main', '.main.clone-ab', '.main.old-cd'], True, ['.main.clone-ab', '.main.old-cd'], None),
    # The data dir vanished between the two renames of a swap: put the set-aside one back.
    (['.main.clone-ab', '.main.old-cd'], False, ['.main.clone-ab'], '.main.old-cd'),
    # Several candidates and no data directory: keep them all, guess nothing.
    (['.main.old-a', '.main.old-b'], False, [], None),
    ([], False, [], None),
    # Names with regex meaning in the data dir name are matched literally.
    (['.1.5.clone-ab', '.1x5.clone-ab'], True, ['.1.5.clone-ab'], None),
])
def test_leftover_selection(entries, exists, remove, restore):
    name = '1.5' if any(e.startswith('.1') for e in entries) else 'main'
    assert _clone.select_leftovers(entries, name, exists) == (remove, restore)


def test_files_to_save():
    entries = ['PG_VERSION', 'base', 'postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf',
               'server.crt', 'server.key', 'root.pem', 'postmaster.opts', 'conf.d', 'my.conf', 'keyring']
    assert _clone.files_to_save(entries) == ['pg_hba.conf', 'pg_ident.conf', 'postgresql.auto.conf',
                                             'postgresql.conf', 'root.pem', 'server.crt', 'server.key']


def test_save_names_never_reuse_a_taken_name():
    names = _clone.save_names('pg_hba.conf', '20260101T120000')
    assert names[:3] == ['pg_hba.conf', 'pg_hba.conf.20260101T120000', 'pg_hba.conf.20260101T120000-2']
    assert len(set(names)) == len(names) and all('/' not in n for n in names)


@pytest.mark.parametrize('text, major', [
    ('pg_basebackup (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n', 15),
    ('pg_basebackup (PostgreSQL) 13.22\n', 13),
    ('pg_basebackup (PostgreSQL) 9.6.24\n', 9),
    ('pg_basebackup (PostgreSQL) 17devel\n', 17),
    ('garbage', None),
])
def test_parse_major(text, major):
    assert _clone.parse_major(text) == major


@pytest.mark.parametrize('num, major', [(150014, 15), (130022, 13), (90624, 9), (170000, 17)])
def test_server_major(num, major):
    assert _clone.server_major(num) == major


def test_version_mismatch_message_names_both():
    assert _clone.version_mismatch_message(15, 15, '/x/pg_basebackup') is None
    msg = _clone.version_mismatch_message(15, 13, '/usr/lib/postgresql/13/bin/pg_basebackup')
    assert 'PostgreSQL 15' in msg and 'PostgreSQL 13' in msg and 'pg_bin_dir' in msg
    assert 'unknown' in _clone.version_mismatch_message(15, None, 'pg_basebackup')


def test_controldata_and_pg_control_sysid():
    out = 'pg_control version number:            1300\nDatabase system identifier:           7301000000000000001\n'
    assert _clone.parse_controldata_sysid(out) == PRIMARY
    assert _clone.parse_controldata_sysid('nothing') is None
    raw = int(PRIMARY).to_bytes(8, sys.byteorder) + b'\x00' * 100
    assert _clone.sysid_from_pg_control(raw) == PRIMARY
    assert _clone.sysid_from_pg_control(b'\x01') is None


@pytest.mark.parametrize('text, pid', [
    ('1234\n/var/lib/postgresql/15/main\n', 1234),
    ('', None), (None, None), ('abc\n', None), ('0\n', None), ('  77  \n', 77),
])
def test_parse_postmaster_pid(text, pid):
    assert _pgdata.parse_postmaster_pid(text) == pid


@pytest.mark.parametrize('detail, words', [
    ('connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "rep"',
     ['password authentication failed for user rep: check the replication password']),
    ('connection to server at "10.0.0.1", port 5432 failed: Connection refused\n\tIs the server running',
     ['cannot reach the primary at db1:5432']),
    ('connection to server at "10.0.0.1", port 5432 failed: timeout expired', ['cannot reach the primary at db1:5432']),
    ('could not translate host name "db1" to address: Name or service not known', ['cannot reach', 'db1:5432']),
    ('FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.2", user "rep", SSL encryption',
     ['pg_hba.conf', 'hostssl replication']),
    ('fe_sendauth: no password supplied', ['set the password option']),
    ('FATAL:  must be superuser or replication role to start walsender', ['REPLICATION attribute']),
    ('server does not support SSL, but SSL was required', ['does not accept SSL']),
    ('SSL error: certificate verify failed', ['sslrootcert']),
    ('something else entirely', ['could not connect to the primary at db1:5432 as user rep']),
])
def test_connect_error_messages(detail, words):
    msg = _clone.connect_error_message(detail, 'db1', 5432, 'rep')
    for word in words:
        assert word in msg
    assert '\n' not in msg


@pytest.mark.parametrize('stderr, exists', [
    ('pg_basebackup: error: could not send replication command "CREATE_REPLICATION_SLOT "s1" PHYSICAL '
     'RESERVE_WAL": ERROR:  replication slot "s1" already exists', True),
    ('pg_basebackup: error: could not connect to server', False),
])
def test_slot_exists_error(stderr, exists):
    assert _clone.slot_exists_error(stderr) is exists


@pytest.mark.parametrize('local, primary, empty, refused', [
    (13, 15, False, True), (15, 15, False, False), (None, 15, False, False), (13, 15, True, False),
])
def test_data_dir_of_another_major_is_never_replaced(local, primary, empty, refused):
    msg = _clone.data_dir_major_message('/d', local, primary, empty)
    assert (msg is not None) == refused
    if refused:
        assert f'PostgreSQL {local}' in msg and f'PostgreSQL {primary}' in msg


@pytest.mark.parametrize('facts, action', [
    (dict(own_unstarted_clone=True), 'replace'),
    (dict(own_unstarted_clone=True, local_sysid=PRIMARY), 'replace'),
    (dict(fresh_next_oid=13572), 'replace'),
    (dict(fresh_next_oid=13572, running=True), 'refuse'),
    (dict(own_unstarted_clone=True, running=True), 'refuse'),
    (dict(), 'refuse'),
])
def test_own_clone_and_fresh_cluster_need_no_force(facts, action):
    base = dict(exists=True, empty=False, has_pg_version=True, local_sysid='1', primary_sysid=PRIMARY)
    base.update(facts)
    assert _clone.decide(Facts(**base)).action == action


@pytest.mark.parametrize('state, next_oid, fresh', [
    ('shut down', '13572', 13572), ('shut down', '16384', 16384), ('shut down', '16385', None),
    ('in production', '13572', None), ('shut down in recovery', '13572', None), ('shut down', '', None),
])
def test_fresh_next_oid(state, next_oid, fresh):
    control = {'Database cluster state': state, "Latest checkpoint's NextOID": next_oid}
    assert _clone.fresh_next_oid(control) == fresh


def test_controldata_fields_and_own_label():
    out = ('Database system identifier:           7301234567890123456\n'
           'Database cluster state:               shut down\n'
           "Latest checkpoint's NextOID:          13572\n")
    fields = _clone.parse_controldata(out)
    assert fields["Latest checkpoint's NextOID"] == '13572'
    assert _clone.parse_controldata_sysid(out) == '7301234567890123456'
    assert _clone.is_own_clone_label('START TIMELINE: 1\nLABEL: catmaid.replication clone\n')
    assert not _clone.is_own_clone_label('LABEL: pg_basebackup base backup\n')
    assert not _clone.is_own_clone_label(None)
