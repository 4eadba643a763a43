# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the version-dependent standby logic (pure functions, no I/O)."""

from __future__ import annotations

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils import _standby
from ansible_collections.catmaid.replication.plugins.module_utils._standby import (
    HEADER, STANDBY_KEYS, StandbyOptions, apply_mode, build_conninfo, changed_keys, conf_quote,
    conninfo_quote, parse_conf, parse_conf_line, pgpass_content, pgpass_escape,
    promoted_settings_content, redact_for_diff, standby_config, strip_settings,
    version_profile)

try:
    from psycopg2.extensions import parse_dsn
except ImportError:  # pragma: no cover - psycopg2 is in the test virtualenv
    parse_dsn = None

MAJORS = list(range(11, 19))
ALL_MAJORS = [10] + MAJORS


def options(**kw) -> StandbyOptions:
    base = dict(primary_host='db1.example.org', primary_port=5433, replication_user='replicator',
                passfile='/var/lib/postgresql/15/replication.pgpass', sslmode='require',
                application_name='replica1', slot='replica1', trigger_file='/tmp/promote.now',
                restore_command='cp /archive/%f "%p"')
    base.update(kw)
    return StandbyOptions(**base)


# -- per major: file, keys, trigger, WAL names ---------------------------------------------

EXPECTED = {
    # major: (signal file, trigger key, wal_keep setting, receiver lsn column)
    10: ('recovery.conf', 'trigger_file', 'wal_keep_segments', 'received_lsn'),
    11: ('recovery.conf', 'trigger_file', 'wal_keep_segments', 'received_lsn'),
    12: ('standby.signal', 'promote_trigger_file', 'wal_keep_segments', 'received_lsn'),
    13: ('standby.signal', 'promote_trigger_file', 'wal_keep_size', 'flushed_lsn'),
    14: ('standby.signal', 'promote_trigger_file', 'wal_keep_size', 'flushed_lsn'),
    15: ('standby.signal', 'promote_trigger_file', 'wal_keep_size', 'flushed_lsn'),
    16: ('standby.signal', None, 'wal_keep_size', 'flushed_lsn'),
    17: ('standby.signal', None, 'wal_keep_size', 'flushed_lsn'),
    18: ('standby.signal', None, 'wal_keep_size', 'flushed_lsn'),
}


@pytest.mark.parametrize('major', ALL_MAJORS)
def test_profile_per_major(major):
    signal, trigger, wal_keep, lsn_column = EXPECTED[major]
    profile = version_profile(major)
    assert profile.major == major
    assert profile.signal_file == signal
    assert profile.uses_recovery_conf is (major <= 11)
    assert profile.trigger_setting == trigger
    assert profile.promote_method == ('pg_ctl' if major <= 11 else 'pg_promote')
    assert profile.promoted_file == ('recovery.done' if major <= 11 else None)
    assert profile.wal_dir == 'pg_wal'
    assert profile.wal_keep_setting == wal_keep
    assert profile.max_slot_wal_keep_size == (None if major <= 12 else 'max_slot_wal_keep_size')
    assert profile.current_wal_lsn_function == 'pg_current_wal_lsn'
    assert profile.last_wal_receive_lsn_function == 'pg_last_wal_receive_lsn'
    assert profile.last_wal_replay_lsn_function == 'pg_last_wal_replay_lsn'
    assert profile.wal_lsn_diff_function == 'pg_wal_lsn_diff'
    assert profile.wal_receiver_lsn_column == lsn_column
    assert profile.wal_receiver_host_column == ('sender_host' if major >= 11 else None)


@pytest.mark.parametrize('major', MAJORS)
def test_rendered_configuration_per_major(major):
    config = standby_config(major, options())
    lines = config.content.splitlines()
    assert lines[0] == HEADER
    assert all(line.startswith('#') for line in lines[:2])
    settings = dict(config.settings)
    assert parse_conf(config.content) == settings
    assert settings['primary_conninfo'] == config.conninfo
    assert settings['primary_slot_name'] == 'replica1'
    assert settings['restore_command'] == 'cp /archive/%f "%p"'
    assert settings['recovery_target_timeline'] == 'latest'
    if major == 11:
        assert config.settings_target == 'recovery.conf'
        assert config.signal_content is None
        assert config.keys == ('standby_mode', 'primary_conninfo', 'primary_slot_name',
                               'restore_command', 'recovery_target_timeline', 'trigger_file')
        assert "standby_mode = 'on'" in lines
        assert "trigger_file = '/tmp/promote.now'" in lines
        assert config.warnings == ()
    else:
        assert config.settings_target == 'settings_file'
        assert config.signal_content == ''
        assert 'standby_mode' not in settings
        assert 'trigger_file' not in settings
        base = ('primary_conninfo', 'primary_slot_name', 'restore_command',
                'recovery_target_timeline')
        if major <= 15:
            assert config.keys == base + ('promote_trigger_file',)
            assert "promote_trigger_file = '/tmp/promote.now'" in lines
            assert config.warnings == ()
        else:
            assert config.keys == base
            assert 'promote_now' not in config.content and '/tmp/promote.now' not in config.content
            assert len(config.warnings) == 1
            assert 'promote_trigger_file was removed in PostgreSQL 16' in config.warnings[0]
    assert set(config.keys) <= set(STANDBY_KEYS) | {'standby_mode', 'trigger_file'}


@pytest.mark.parametrize('major', MAJORS)
def test_optional_settings_left_out(major):
    config = standby_config(major, options(slot=None, restore_command=None, trigger_file=None))
    expected = ('primary_conninfo', 'recovery_target_timeline')
    if major <= 11:
        expected = ('standby_mode',) + expected
    assert config.keys == expected
    assert config.warnings == ()


@pytest.mark.parametrize('major', MAJORS)
def test_rendering_is_byte_identical(major):
    first = standby_config(major, options(application_name="it's \\ ünï"))
    second = standby_config(major, options(application_name="it's \\ ünï"))
    assert first == second
    assert first.content.encode() == second.content.encode()
    assert promoted_settings_content(major) == promoted_settings_content(major)


@pytest.mark.parametrize('major', MAJORS)
def test_conninfo_names_passfile_not_password(major):
    config = standby_config(major, options())
    assert 'password' not in config.conninfo
    assert "passfile='/var/lib/postgresql/15/replication.pgpass'" in config.conninfo
    without = standby_config(major, options(passfile=None))
    assert 'passfile' not in without.conninfo


@pytest.mark.parametrize('major', [9, 8])
def test_unsupported_majors(major):
    with pytest.raises(ValueError):
        version_profile(major)


def test_newer_majors_follow_newest_rules():
    assert version_profile(19).trigger_setting is None
    assert version_profile(19).contexts == version_profile(18).contexts


@pytest.mark.parametrize('major', MAJORS)
def test_required_options(major):
    with pytest.raises(ValueError):
        standby_config(major, options(primary_host=''))
    with pytest.raises(ValueError):
        standby_config(major, options(replication_user=''))


# -- reload versus restart -----------------------------------------------------------------

RESTART, RELOAD, NOTHING = (True, False), (False, True), (False, False)


@pytest.mark.parametrize('major,key,expected', [
    (11, 'primary_conninfo', RESTART), (11, 'primary_slot_name', RESTART),
    (11, 'restore_command', RESTART), (11, 'trigger_file', RESTART),
    (12, 'primary_conninfo', RESTART), (12, 'primary_slot_name', RESTART),
    (12, 'restore_command', RESTART), (12, 'promote_trigger_file', RELOAD),
    (13, 'primary_conninfo', RELOAD), (13, 'primary_slot_name', RELOAD),
    (13, 'restore_command', RESTART), (13, 'promote_trigger_file', RELOAD),
    (14, 'primary_conninfo', RELOAD), (14, 'restore_command', RELOAD),
    (15, 'primary_conninfo', RELOAD), (15, 'primary_slot_name', RELOAD),
    (15, 'promote_trigger_file', RELOAD),
    (16, 'primary_conninfo', RELOAD), (16, 'primary_slot_name', RELOAD),
    (16, 'restore_command', RELOAD),
    (17, 'primary_conninfo', RELOAD), (17, 'primary_slot_name', RELOAD),
    (18, 'primary_conninfo', RELOAD), (18, 'primary_slot_name', RELOAD),
    (18, 'restore_command', RELOAD),
])
def test_change_on_running_standby(major, key, expected):
    assert apply_mode(major, {key}, signal_created=False, running=True) == expected


@pytest.mark.parametrize('major', MAJORS)
def test_reload_and_restart_per_major(major):
    profile = version_profile(major)
    conn_needs_restart = major <= 12
    assert profile.needs_restart('primary_conninfo') is conn_needs_restart
    assert profile.needs_restart('primary_slot_name') is conn_needs_restart
    assert profile.needs_restart('recovery_target_timeline') is True
    assert profile.needs_restart('restore_command') is (major <= 13)
    # the timeline is read at start everywhere
    assert apply_mode(major, {'recovery_target_timeline'}, False, True) == RESTART
    # a new signal file always needs a (re)start, running or not
    assert apply_mode(major, set(), signal_created=True, running=False) == RESTART
    assert apply_mode(major, {'primary_conninfo'}, signal_created=True, running=True) == RESTART
    # a stopped server reads everything when it starts
    assert apply_mode(major, {'primary_conninfo', 'primary_slot_name'}, False, False) == NOTHING
    # nothing changed, nothing to do
    assert apply_mode(major, set(), False, True) == NOTHING
    # mixed: a restart covers a reload
    assert apply_mode(major, {'primary_conninfo', 'recovery_target_timeline'}, False, True) == RESTART


def test_changed_keys():
    assert changed_keys({'a': '1', 'b': '2'}, {'a': '1', 'b': '3', 'c': '4'}) == {'b', 'c'}
    assert changed_keys({'a': '1'}, {}) == {'a'}
    assert changed_keys({'a': '1'}, {'a': '1'}) == set()


# -- libpq conninfo quoting ----------------------------------------------------------------

CONNINFO_VALUES = [
    'plain', 'with space', "it's", 'back\\slash', "mix 'of\\ all'\\", 'ünïcödé ✓ 日本',
    '', "''", '\\\\', 'a=b', 'tab\there', "trailing\\",
]


@pytest.mark.parametrize('value', CONNINFO_VALUES)
def test_conninfo_quote(value):
    quoted = conninfo_quote(value)
    assert quoted.startswith("'") and quoted.endswith("'")
    body = quoted[1:-1]
    # every quote and backslash of the body is escaped by a backslash
    i = 0
    out = []
    while i < len(body):
        if body[i] == '\\':
            assert body[i + 1] in "\\'"
            out.append(body[i + 1])
            i += 2
        else:
            assert body[i] != "'"
            out.append(body[i])
            i += 1
    assert ''.join(out) == value


@pytest.mark.skipif(parse_dsn is None, reason='psycopg2 missing')
@pytest.mark.parametrize('value', [v for v in CONNINFO_VALUES if v])
def test_conninfo_parsed_by_libpq(value):
    """libpq itself (PQconninfoParse through psycopg2) reads back every value exactly."""
    conninfo = build_conninfo([('host', 'db'), ('port', 5432), ('user', value),
                               ('passfile', f'/tmp/{value}/pgpass'), ('application_name', value)])
    parsed = parse_dsn(conninfo)
    assert parsed == {'host': 'db', 'port': '5432', 'user': value,
                      'passfile': f'/tmp/{value}/pgpass', 'application_name': value}


def test_build_conninfo_skips_none_and_rejects_bad_keys():
    assert build_conninfo([('host', 'h'), ('sslrootcert', None), ('port', 1)]) == "host='h' port='1'"
    with pytest.raises(ValueError):
        build_conninfo([("host='x' password", 'y')])
    with pytest.raises(ValueError):
        conninfo_quote('nul\0byte')


# -- postgresql.conf quoting (the conninfo is quoted a second time) ------------------------

@pytest.mark.parametrize('value', CONNINFO_VALUES + ['line\nbreak', 'cr\rlf'])
def test_conf_quote_round_trip(value):
    line = f'primary_conninfo = {conf_quote(value)}'
    assert '\n' not in line
    assert parse_conf_line(line) == ('primary_conninfo', value)


def test_conf_quote_rules():
    assert conf_quote("it's") == "'it''s'"
    assert conf_quote('a\\b') == "'a\\\\b'"
    # the conninfo escape \' becomes \\'' in the file
    assert conf_quote(conninfo_quote("o'k")) == "'''o\\\\''k'''"


@pytest.mark.parametrize('major', MAJORS)
def test_conninfo_survives_both_quotings(major):
    config = standby_config(major, options(application_name="rep'l\\ica ✓",
                                           passfile="/var/lib/it's here/pg pass"))
    assert parse_conf(config.content)['primary_conninfo'] == config.conninfo
    if parse_dsn is not None:
        parsed = parse_dsn(parse_conf(config.content)['primary_conninfo'])
        assert parsed['application_name'] == "rep'l\\ica ✓"
        assert parsed['passfile'] == "/var/lib/it's here/pg pass"
        assert parsed['port'] == '5433'
        assert parsed['sslmode'] == 'require'
        assert 'password' not in parsed


def test_parse_conf_variants():
    text = ("# comment\n"
            "Primary_Conninfo='a'  # trailing\n"
            "port 5432\n"
            "primary_slot_name = s1\n"
            "   restore_command = 'cp ''x'' \\\\y'\n"
            "broken = 'unterminated\n"
            "\n"
            "primary_slot_name = 's2'\n")
    assert parse_conf(text) == {'primary_conninfo': 'a', 'port': '5432',
                                'primary_slot_name': 's2', 'restore_command': "cp 'x' \\y"}
    assert parse_conf(None) == {}
    assert parse_conf_line("x = 'oct\\101'") == ('x', 'octA')


def test_strip_settings_keeps_everything_else():
    auto = ("# Do not edit this file manually!\n"
            "# It will be overwritten by the ALTER SYSTEM command.\n"
            "work_mem = '64MB'\n"
            "primary_conninfo = 'user=replicator password=secret host=db'\n"
            "primary_slot_name = 's1'\n"
            "shared_buffers = '1GB'\n")
    stripped = strip_settings(auto, ('primary_conninfo', 'primary_slot_name'))
    assert stripped == ("# Do not edit this file manually!\n"
                        "# It will be overwritten by the ALTER SYSTEM command.\n"
                        "work_mem = '64MB'\n"
                        "shared_buffers = '1GB'\n")
    assert 'secret' not in stripped
    assert strip_settings(None, ('x',)) is None
    assert strip_settings(stripped, ('primary_conninfo',)) == stripped


def test_redact_for_diff():
    text = ("work_mem = '64MB'\n"
            "primary_conninfo = 'host=db user=r PassWord=s3cret'\n"
            "primary_conninfo = 'host=db user=r passfile=''/x'''\n"
            "# password in a comment stays a comment\n")
    redacted = redact_for_diff(text)
    assert 's3cret' not in redacted
    assert redacted.splitlines() == ["work_mem = '64MB'",
                                     '# primary_conninfo = (holds a password: not shown)',
                                     "primary_conninfo = 'host=db user=r passfile=''/x'''",
                                     '# password in a comment stays a comment']
    assert redact_for_diff(None) is None
    assert redact_for_diff(redacted) == redacted


@pytest.mark.parametrize('major', range(12, 19))
def test_promoted_settings_have_no_standby_keys(major):
    content = promoted_settings_content(major)
    assert content.startswith(HEADER + '\n')
    assert parse_conf(content) == {}


# -- password file -------------------------------------------------------------------------

@pytest.mark.parametrize('value,escaped', [
    ('plain', 'plain'),
    ('co:lon', 'co\\:lon'),
    ('back\\slash', 'back\\\\slash'),
    ("q'uo\\te:co:lon", "q'uo\\\\te\\:co\\:lon"),
    ('*', '*'),
    ('ünï ✓', 'ünï ✓'),
    ('\\:', '\\\\\\:'),
])
def test_pgpass_escape(value, escaped):
    assert pgpass_escape(value) == escaped


def _pgpass_fields(line: str) -> list[str]:
    """Split a password file line the way libpq does (backslash escapes the next char)."""
    fields, cur, i = [], [], 0
    while i < len(line):
        if line[i] == '\\' and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
        elif line[i] == ':':
            fields.append(''.join(cur))
            cur = []
            i += 1
        else:
            cur.append(line[i])
            i += 1
    fields.append(''.join(cur))
    return fields


def test_pgpass_content():
    password = "q'uo\\te:co:lon"
    text = pgpass_content('127.0.0.1', 5432, 'rep:user', password)
    assert text.endswith('\n') and text.count('\n') == 1
    assert _pgpass_fields(text.rstrip('\n')) == ['127.0.0.1', '5432', 'replication', 'rep:user',
                                                 password]
    multi = pgpass_content('db1,db2', 5432, 'u', 'p', database='*')
    assert multi == 'db1:5432:*:u:p\ndb2:5432:*:u:p\n'


@pytest.mark.parametrize('bad', ['line\nbreak', 'cr\rreturn', 'nul\0'])
def test_pgpass_rejects_unrepresentable(bad):
    with pytest.raises(ValueError):
        pgpass_escape(bad)


@pytest.mark.parametrize('choice, major, sslmode, password, expected', [
    ('auto', 15, 'require', True, 'require'),
    ('auto', 13, 'verify-full', True, 'require'),
    ('auto', 12, 'require', True, None),        # libpq 12 has no channel_binding
    ('auto', 15, 'prefer', True, None),         # might not be SSL at all
    ('auto', 15, 'require', False, None),       # no password: maybe not SCRAM
    ('auto', None, 'require', True, None),      # major unknown
    ('prefer', 15, 'require', True, 'prefer'),
    ('disable', 15, 'disable', False, 'disable'),
])
def test_channel_binding_setting(choice, major, sslmode, password, expected):
    assert _standby.channel_binding_setting(choice, major, sslmode, password) == expected


def test_channel_binding_explicit_before_13_is_refused():
    with pytest.raises(ValueError, match='libpq 13'):
        _standby.channel_binding_setting('require', 12, 'require', True)


def test_channel_binding_in_primary_conninfo():
    options = _standby.StandbyOptions(primary_host='db1', replication_user='r', channel_binding='require')
    assert "channel_binding='require'" in _standby.standby_config(15, options).conninfo
