# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module integration tests of catmaid.replication.standby_signal on real clusters.

A standby is cloned with plain pg_basebackup, configured by the module, started, and checked
through the servers' own views: pg_stat_wal_receiver on the standby, pg_stat_replication joined
with pg_stat_ssl on the primary, then promoted.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path

from conftest import PG_USER, Cluster, as_postgres

MODULE = 'catmaid.replication.standby_signal'
PASSWORD = 'repl-secret'


def set_password(primary: Cluster, password: str) -> None:
    """ALTER ROLE through psql's stdin, so the password is on no command line."""
    literal = "'" + password.replace("'", "''") + "'"
    as_postgres([primary.bin('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h',
                 str(primary.sock_dir), '-p', str(primary.port), '-d', 'postgres', '-f', '-'],
                input=f'SET standard_conforming_strings = on;\n'
                      f'ALTER ROLE replicator PASSWORD {literal};\n')


def clone(clusters, primary: Cluster, name: str, password: str = PASSWORD) -> Cluster:
    """A stopped copy of the primary made with plain pg_basebackup (no -R), own port."""
    standby = Cluster(clusters.workdir, name, clusters.bindir)
    standby.prepare_dirs()
    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE='require')
    as_postgres([primary.bin('pg_basebackup'), '-h', '127.0.0.1', '-p', str(primary.port),
                 '-U', 'replicator', '-D', str(standby.data_dir), '-X', 'stream', '-c', 'fast',
                 '--no-sync'], env=env)
    standby.write_conf()  # its own port and socket directory
    return standby


def standby_args(primary: Cluster, standby: Cluster, **kw) -> dict:
    args = dict(data_dir=str(standby.data_dir),
                settings_file=str(standby.data_dir / 'conf.d' / 'standby.conf'),
                primary_host='127.0.0.1', primary_port=primary.port,
                replication_user='replicator', password=PASSWORD, slot=None,
                application_name=standby.root.name)
    args.update(kw)
    return {k: v for k, v in args.items() if v is not None}


def assert_ok(result: dict) -> None:
    assert not result.get('failed'), result.get('msg', result)


def wait_streaming(primary: Cluster, standby: Cluster, app_name: str) -> None:
    standby.wait_for('SELECT status FROM pg_stat_wal_receiver', 'streaming')
    primary.wait_for("SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
                     f"WHERE r.application_name = '{app_name}' AND r.state = 'streaming'", 't')


def test_standby_streams_over_ssl_and_promotes(clusters, primary, run_module):
    primary.psql("SELECT pg_create_physical_replication_slot('standby1')")
    standby = clone(clusters, primary, 'standby1')
    args = standby_args(primary, standby, slot='standby1')
    settings_file = Path(args['settings_file'])
    signal = standby.data_dir / 'standby.signal'
    passfile = standby.root / 'replication.pgpass'  # default: parent of data_dir

    # Check mode reports the change and writes nothing.
    res = run_module(MODULE, args, check=True)
    assert_ok(res)
    assert res['changed'] is True
    assert res['restart_required'] is True
    assert sorted(res['files']) == sorted([str(passfile), str(settings_file), str(signal)])
    assert not signal.exists() and not settings_file.exists() and not passfile.exists()

    # Apply, with a diff that never shows the password.
    res = run_module(MODULE, args, diff=True)
    assert_ok(res)
    assert res['changed'] is True
    assert res['pg_version'] == primary.major
    assert res['running'] is False
    assert res['restart_required'] is True and res['reload_required'] is False
    assert sorted(res['files']) == sorted([str(passfile), str(settings_file), str(signal)])
    assert PASSWORD not in json.dumps(res)
    diff_after = ''.join(d['after'] for d in res['diff'])
    assert 'passfile: changed' in diff_after and 'primary_conninfo' in diff_after
    assert signal.read_text() == ''
    settings = settings_file.read_text()
    assert f"passfile=''{passfile}''" in settings
    assert "primary_slot_name = 'standby1'" in settings
    assert PASSWORD not in settings
    assert PASSWORD not in (standby.data_dir / 'postgresql.auto.conf').read_text()
    postgres_uid = pwd.getpwnam(PG_USER).pw_uid
    for path in (passfile, settings_file, signal):
        st = path.stat()
        assert (oct(st.st_mode & 0o777), st.st_uid) == (oct(0o600), postgres_uid), path
    assert passfile.read_text() == f'127.0.0.1:{primary.port}:replication:replicator:{PASSWORD}\n'

    standby.start()
    wait_streaming(primary, standby, 'standby1')
    assert primary.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'standby1'") == 't'
    assert standby.psql('SELECT pg_is_in_recovery()') == 't'
    # The server read back exactly what the module meant (both quoting levels).
    assert standby.psql('SHOW primary_conninfo') == res['primary_conninfo']
    primary.psql("CREATE TABLE replicated (note text); INSERT INTO replicated VALUES ('from primary')")
    standby.wait_for('SELECT note FROM replicated', 'from primary')

    # Idempotence, also on the running standby.
    res = run_module(MODULE, args, diff=True)
    assert_ok(res)
    assert res['changed'] is False
    assert res['running'] is True
    assert res['restart_required'] is False and res['reload_required'] is False
    assert res['files'] == [] and res['diff'] == []

    # A new application_name on a running 13+ standby needs a reload, not a restart.
    args2 = dict(args, application_name='standby1-renamed')
    res = run_module(MODULE, args2)
    assert_ok(res)
    assert res['changed'] is True
    assert res['files'] == [str(settings_file)]
    if primary.major >= 13:
        assert (res['restart_required'], res['reload_required']) == (False, True)
        as_postgres([standby.bin('pg_ctl'), '-D', str(standby.data_dir), 'reload'])
        wait_streaming(primary, standby, 'standby1-renamed')
    else:
        assert (res['restart_required'], res['reload_required']) == (True, False)

    # Promotion of the running standby.
    promote_args = dict(data_dir=str(standby.data_dir), settings_file=str(settings_file),
                        state='promoted', wait_timeout=60, **standby.connection_args())
    res = run_module(MODULE, promote_args, check=True)
    assert_ok(res)
    assert res['changed'] is True
    assert standby.psql('SELECT pg_is_in_recovery()') == 't'

    res = run_module(MODULE, promote_args, diff=True)
    assert_ok(res)
    assert res['changed'] is True
    assert res['restart_required'] is False
    assert any('pg_promote(wait => true, wait_seconds => 60)' in q for q in res['queries'])
    assert standby.psql('SELECT pg_is_in_recovery()') == 'f'
    standby.psql("CREATE TABLE after_promotion (id int); INSERT INTO after_promotion VALUES (1)")
    assert standby.psql('SELECT count(*) FROM after_promotion') == '1'
    assert not signal.exists()
    remaining = settings_file.read_text()
    assert 'primary_conninfo' not in remaining and 'primary_slot_name' not in remaining
    assert remaining.startswith('# Managed by catmaid.replication.standby_signal')

    res = run_module(MODULE, promote_args)
    assert_ok(res)
    assert res['changed'] is False
    assert res['files'] == [] and res['removed'] == []


def test_password_with_quote_backslash_colon_end_to_end(clusters, primary, run_module):
    """The odd password goes to the passfile; a passfile path and application name with
    quotes, backslashes and spaces survive conninfo and postgresql.conf quoting."""
    password = "q'uo\\te:co:lon \\:"
    set_password(primary, password)
    standby = clone(clusters, primary, 'standby2', password=password)
    odd_dir = standby.root / "it's a \\ dir"
    odd_dir.mkdir()
    shutil.chown(odd_dir, PG_USER, PG_USER)
    passfile = odd_dir / 'repl pass:file'
    app_name = "standby 'two' \\ x"
    args = standby_args(primary, standby, password=password, passfile=str(passfile),
                        application_name=app_name)

    res = run_module(MODULE, args)
    assert_ok(res)
    assert res['changed'] is True
    assert password not in res['_stdout']
    settings = Path(args['settings_file']).read_text()
    assert password not in settings and 'q\'uo' not in settings
    st = passfile.stat()
    assert oct(st.st_mode & 0o777) == oct(0o600) and st.st_uid == pwd.getpwnam(PG_USER).pw_uid
    assert passfile.read_text() == (f'127.0.0.1:{primary.port}:replication:replicator:'
                                    "q'uo\\\\te\\:co\\:lon \\\\\\:\n")

    standby.start()
    standby.wait_for('SELECT status FROM pg_stat_wal_receiver', 'streaming')
    literal = app_name.replace("'", "''")
    primary.wait_for("SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
                     f"WHERE r.application_name = '{literal}'", 't')
    assert standby.psql('SHOW primary_conninfo') == res['primary_conninfo']
    assert password not in (standby.data_dir / 'postgresql.auto.conf').read_text()
    assert run_module(MODULE, args)['changed'] is False


def test_stopped_standby_promoted_and_auto_conf_cleaned(clusters, primary, run_module):
    """pg_basebackup -R style primary_conninfo (with a password) in postgresql.auto.conf is
    taken over; a stopped standby promoted starts as a primary."""
    standby = clone(clusters, primary, 'standby3')
    auto = standby.data_dir / 'postgresql.auto.conf'
    old_password = 'left-by-basebackup-R'
    auto.write_text(auto.read_text() + f"primary_conninfo = 'user=replicator password={old_password} "
                    f"host=127.0.0.1 port={primary.port}'\nwork_mem = '8MB'\n")
    args = standby_args(primary, standby)
    res = run_module(MODULE, args, diff=True)
    assert_ok(res)
    assert str(auto) in res['files']
    assert old_password not in res['_stdout'] and old_password not in json.dumps(res)
    assert any('postgresql.auto.conf' in w for w in res.get('warnings', []))
    text = auto.read_text()
    assert old_password not in text and 'primary_conninfo' not in text and "work_mem = '8MB'" in text
    assert run_module(MODULE, args)['changed'] is False

    promote_args = dict(data_dir=args['data_dir'], settings_file=args['settings_file'],
                        state='promoted', **standby.connection_args())
    res = run_module(MODULE, promote_args)
    assert_ok(res)
    assert res['changed'] is True and res['running'] is False
    assert res['removed'] == [str(standby.data_dir / 'standby.signal')]
    assert not (standby.data_dir / 'standby.signal').exists()
    assert 'primary_conninfo' not in Path(args['settings_file']).read_text()
    assert run_module(MODULE, promote_args)['changed'] is False
    standby.start()
    assert standby.psql('SELECT pg_is_in_recovery()') == 'f'


def test_refusals(clusters, primary, run_module):
    """Clear failures instead of a half-configured or demoted server."""
    args = standby_args(primary, primary)
    del args['settings_file']
    res = run_module(MODULE, args)
    assert res.get('failed') and 'settings_file is required' in res['msg']

    for name in ('postgresql.conf', 'postgresql.auto.conf'):
        res = run_module(MODULE, dict(args, settings_file=str(primary.data_dir / name)))
        assert res.get('failed') and 'settings_file must be an include file' in res['msg']

    res = run_module(MODULE, dict(args, settings_file=str(primary.data_dir / 'conf.d' / 's.conf')))
    assert res.get('failed') and 'refusing to turn a running primary into a standby' in res['msg']
    assert not (primary.data_dir / 'standby.signal').exists()

    res = run_module(MODULE, dict(args, data_dir=str(primary.root)))
    assert res.get('failed') and 'no PG_VERSION' in res['msg']

    # A running primary is already promoted: nothing to do.
    res = run_module(MODULE, dict(data_dir=str(primary.data_dir), state='promoted',
                                  **primary.connection_args()))
    assert_ok(res)
    assert res['changed'] is False


def fake_data_dir(workdir: Path, major: int) -> Path:
    """A stopped data directory of another major: only PG_VERSION, enough for file handling.

    The host has one PostgreSQL major; these cover the module's file layout of the others.
    """
    root = workdir / f'pg{major}'
    data_dir = root / 'main'
    data_dir.mkdir(parents=True)
    (data_dir / 'PG_VERSION').write_text(f'{major}\n')
    (data_dir / 'conf.d').mkdir()
    for path in (root, data_dir, data_dir / 'conf.d', data_dir / 'PG_VERSION'):
        shutil.chown(path, PG_USER, PG_USER)
    data_dir.chmod(0o700)
    return data_dir


def test_major_11_layout_recovery_conf(clusters, run_module):
    data_dir = fake_data_dir(clusters.workdir, 11)
    args = dict(data_dir=str(data_dir), primary_host='db1', replication_user='replicator',
                password=PASSWORD, slot='s1', trigger_file='/tmp/promote.now',
                application_name='r11')
    res = run_module(MODULE, args)
    assert_ok(res)
    assert res['pg_version'] == 11 and res['restart_required'] is True
    recovery = data_dir / 'recovery.conf'
    assert sorted(res['files']) == sorted([str(recovery), str(data_dir.parent / 'replication.pgpass')])
    text = recovery.read_text()
    for line in ("standby_mode = 'on'", "primary_slot_name = 's1'", "trigger_file = '/tmp/promote.now'",
                 "recovery_target_timeline = 'latest'"):
        assert line in text.splitlines()
    assert PASSWORD not in text and not (data_dir / 'standby.signal').exists()
    assert oct(recovery.stat().st_mode & 0o777) == oct(0o600)
    assert run_module(MODULE, args)['changed'] is False

    res = run_module(MODULE, dict(data_dir=str(data_dir), state='promoted'))
    assert_ok(res)
    assert res['removed'] == [str(recovery)] and not recovery.exists()
    assert run_module(MODULE, dict(data_dir=str(data_dir), state='promoted'))['changed'] is False


def test_major_16_drops_trigger_file_with_warning(clusters, run_module):
    data_dir = fake_data_dir(clusters.workdir, 16)
    settings_file = data_dir / 'conf.d' / 'standby.conf'
    args = dict(data_dir=str(data_dir), settings_file=str(settings_file), primary_host='db1',
                replication_user='replicator', trigger_file='/tmp/promote.now')
    res = run_module(MODULE, args)
    assert_ok(res)
    assert any('promote_trigger_file was removed in PostgreSQL 16' in w for w in res.get('warnings', []))
    text = settings_file.read_text()
    assert 'promote.now' not in text and 'passfile' not in text  # no password, no passfile
    assert (data_dir / 'standby.signal').exists()


# -- issue 14 ---------------------------------------------------------------------------------
GROUP_PROMOTE = 'data loss: standby_signal promotion (tests/functional/test_standby_signal.py)'


def test_promotion_refuses_a_connection_to_another_server(primary, make_standby, run_module, report):
    with report.case(GROUP_PROMOTE, 'promotion whose connection reaches another server (issue 14 item 5)',
                     'state=promoted for standby A with login_port of standby B (same major): the module '
                     'fails naming both data directories and changes nothing: B stays a standby, A keeps '
                     'its standby.signal. On the parent commit B was promoted (a second primary) and A\'s '
                     'standby.signal removed') as case:
        one = make_standby(primary, 'standby_a')
        two = make_standby(primary, 'standby_b')
        res = run_module(MODULE, dict(data_dir=str(one.data_dir), state='promoted', wait_timeout=30,
                                      **two.connection_args()))
        assert res.get('failed') is True, res
        assert str(one.data_dir) in res['msg'] and str(two.data_dir) in res['msg'], res['msg']
        assert two.psql('SELECT pg_is_in_recovery()') == 't'
        assert one.psql('SELECT pg_is_in_recovery()') == 't'
        assert (one.data_dir / 'standby.signal').exists() and (two.data_dir / 'standby.signal').exists()
        case.note(f"refused: {res['msg'][:200]}")


def test_promoting_a_stopped_standby_warns_about_the_timeline(primary, make_standby, run_module, report):
    with report.case(GROUP_PROMOTE, 'promotion of a stopped standby warns (issue 14 item 5)',
                     'state=promoted on a stopped standby removes standby.signal and warns that it starts on '
                     'the old timeline. On the parent commit it did so without a word') as case:
        standby = make_standby(primary, 'standby_c')
        standby.stop()
        res = run_module(MODULE, dict(data_dir=str(standby.data_dir), state='promoted',
                                      **standby.connection_args()))
        assert not res.get('failed'), res.get('msg')
        assert res['changed'] is True and not (standby.data_dir / 'standby.signal').exists()
        warnings = ' '.join(res.get('warnings', []))
        assert 'stopped' in warnings and 'timeline' in warnings, warnings
        case.note(f'warning: {warnings[:200]}')


def test_empty_password_is_refused(clusters, primary, run_module, report, postgres_pgpass):
    with report.case('bad input: standby_signal (tests/functional/test_standby_signal.py)',
                     'an empty replication password (issue 14 item 8)',
                     'state=standby with password="" while the postgres user\'s ~/.pgpass holds a working password '
                     '(fixture postgres_pgpass): the module fails saying the password is empty and writes '
                     'nothing, no passfile either. On the parent commit it wrote a primary_conninfo without a passfile, so the '
                     'standby silently used the postgres user\'s ~/.pgpass or failed to log in later') as case:
        standby = clone(clusters, primary, 'standby_empty_pw')
        # The fallback the refusal is about: a working password in the postgres user's ~/.pgpass.
        postgres_pgpass(f'127.0.0.1:{primary.port}:*:replicator:{PASSWORD}')
        res = run_module(MODULE, standby_args(primary, standby, password=''))
        assert res.get('failed') is True, res.get('msg')
        assert 'password' in res['msg'] and 'empty' in res['msg'], res['msg']
        assert not (standby.data_dir / 'standby.signal').exists()
        assert not (standby.data_dir / 'conf.d' / 'standby.conf').exists()
        assert not (standby.root / 'replication.pgpass').exists()
        case.note(f"refused: {res['msg'][:160]}")


def test_primary_conninfo_requires_channel_binding(clusters, primary, run_module, report):
    with report.case('security: standby_signal (tests/functional/test_standby_signal.py)',
                     'primary_conninfo asks for channel binding (issue 14 item 10)',
                     'a 13+ standby configured with the defaults (sslmode=require, a password) has '
                     'channel_binding=require in primary_conninfo and streams with it (pg_stat_wal_receiver). '
                     'On the parent commit it had none, so libpq\'s default prefer let a relay in the middle '
                     'strip SCRAM-SHA-256-PLUS') as case:
        standby = clone(clusters, primary, 'standby_cb')
        res = run_module(MODULE, standby_args(primary, standby))
        assert_ok(res)
        assert "channel_binding='require'" in res['primary_conninfo'], res['primary_conninfo']
        standby.start()
        wait_streaming(primary, standby, 'standby_cb')
        receiver = standby.psql('SELECT conninfo FROM pg_stat_wal_receiver')
        assert 'channel_binding=require' in receiver, receiver
        off = run_module(MODULE, standby_args(primary, standby, channel_binding='disable'))
        assert_ok(off)
        assert "channel_binding='disable'" in off['primary_conninfo']
        case.note(f'pg_stat_wal_receiver.conninfo: {receiver[:160]}')


def test_promotion_without_rights_to_read_data_directory_is_refused(primary, make_standby, run_module, report):
    standby = make_standby(primary, 'standby_d')
    primary.psql("CREATE ROLE plain_login LOGIN PASSWORD 'plain-secret'")
    standby.wait_for("SELECT count(*) FROM pg_roles WHERE rolname = 'plain_login'", '1')
    res = run_module(MODULE, dict(data_dir=str(standby.data_dir), state='promoted', login_host='127.0.0.1',
                                  login_port=standby.port, login_user='plain_login', login_password='plain-secret'))
    assert res.get('failed') is True
    assert 'pg_read_all_settings' in res['msg'], res['msg']
    assert standby.psql('SELECT pg_is_in_recovery()') == 't'
    assert (standby.data_dir / 'standby.signal').exists()
