# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One variable set, every PostgreSQL major from 11 to 18: what the collection writes.

The containers here prove 13, 15 and 17; the other majors cannot be installed on this machine,
so their configuration is proven here, from the same inputs a real run uses:

* the user's ``catmaid_replication_*`` variables, with the one set of defaults in
  ``roles/catmaid_replication/defaults/main.yml``, and the replication set the roles derive from the inventory
  (``plugins/plugin_utils/_topology.py``, the logic of catmaid.replication.topology), all read from
  the files;
* ``roles/catmaid_replication/templates/replication.conf.j2`` is rendered by Ansible's own Templar for the
  primary and for a replica (both must get the same file, so a replica can take over);
* the replica's standby configuration comes from ``_standby.standby_config`` with the options
  the replica role gives ``standby_signal`` (templated from the same variables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ansible.errors import AnsibleValueOmittedError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.catmaid.replication.plugins.module_utils._standby import (
    StandbyOptions, parse_conf, standby_config, version_profile)
from ansible_collections.catmaid.replication.plugins.plugin_utils._topology import resolve

REPO = Path(__file__).resolve().parents[3]
ROLES = REPO / 'roles'
MANAGED = 'Ansible managed: do not edit'
MAJORS = list(range(11, 19))

PRIMARY = 'db-primary'
REPLICAS = ['replica1', 'Replica-2.lab']

# The one variable set a user gives (group_vars); everything else takes its default.
USER_VARS: dict[str, Any] = {'catmaid_replication_password': 'not-a-real-password'}


def _trusted(value: Any) -> Any:
    """Role and playbook files are trusted templates in a real run; mark them so here too."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def _load(path: Path) -> Any:
    return DataLoader().load_from_file(str(path))


def _role_vars(role: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in ('defaults', 'vars'):
        path = ROLES / role / part / 'main.yml'
        if path.exists():
            out.update(_trusted(_load(path)))
    return out


def _standby_task_args() -> dict[str, Any]:
    """The arguments the replica role gives catmaid.replication.standby_signal."""
    for task in _load(ROLES / 'replica' / 'tasks' / 'standby.yml'):
        for sub in task.get('block', []):
            if 'catmaid.replication.standby_signal' in sub:
                return _trusted(sub['catmaid.replication.standby_signal'])
    raise AssertionError('roles/replica/tasks/standby.yml no longer configures standby_signal')


def _cluster(major: int) -> dict[str, Any]:
    """The fact common's ``install`` entry point sets (Debian layout)."""
    return {'found': True, 'major': str(major), 'name': 'main', 'port': 5432, 'running': True,
            'recovery': False, 'status': 'online', 'data_dir': f'/var/lib/postgresql/{major}/main',
            'conf_dir': f'/etc/postgresql/{major}/main', 'bin_dir': f'/usr/lib/postgresql/{major}/bin',
            'service': f'postgresql@{major}-main'}


def _templar(host: str, major: int, user_vars: dict[str, Any]) -> Templar:
    """Variables as the roles see them: common's defaults and vars, the user's, the topology fact."""
    variables: dict[str, Any] = _role_vars('catmaid_replication')
    variables.update(user_vars)
    nodes = [PRIMARY] + REPLICAS
    hostvars = {h: {'ansible_facts': {'default_ipv4': {'address': f'192.0.2.{i + 10}'}}, **user_vars}
                for i, h in enumerate(nodes)}
    groups = {'primary': [PRIMARY], 'replicas': list(REPLICAS), 'all': nodes}
    settings = {k: v for k, v in variables.items() if k.startswith('catmaid_replication_') and 'password' not in k}
    topology = resolve(settings, groups, lambda h: hostvars[h], host,
                       lambda h: hostvars[h]['ansible_facts']['default_ipv4']['address'])
    variables.update({
        'inventory_hostname': host,
        'groups': groups,
        'hostvars': hostvars,
        'ansible_managed': MANAGED,
        'ansible_check_mode': False,
        'catmaid_replication_topology': topology,
        '__catmaid_replication_cluster': _cluster(major),
    })
    return Templar(loader=DataLoader(), variables=variables)


def _render_settings(templar: Templar) -> str:
    source = trust_as_template((ROLES / 'catmaid_replication' / 'templates' / 'replication.conf.j2').read_text(encoding='utf-8'))
    return templar.template(source, escape_backslashes=False)


def primary_conf(major: int, user_vars: dict[str, Any]) -> str:
    return _render_settings(_templar(PRIMARY, major, user_vars))


def replica_conf(major: int, user_vars: dict[str, Any], host: str = REPLICAS[0]) -> str:
    return _render_settings(_templar(host, major, user_vars))


def replica_standby(major: int, user_vars: dict[str, Any], host: str = REPLICAS[0],
                    trigger_file: str | None = None):
    """standby_config() with the options the replica role passes to standby_signal."""
    templar = _templar(host, major, user_vars)
    args = _standby_task_args()

    def value(name: str) -> Any:
        raw = args.get(name)
        if raw is None:
            return None
        try:
            out = templar.template(raw)
        except AnsibleValueOmittedError:  # "| default(omit, true)": the module's default
            return None
        return None if out in ('', None) else out

    opts = StandbyOptions(
        primary_host=value('primary_host'), replication_user=value('replication_user'),
        primary_port=int(value('primary_port')), passfile=f'/var/lib/postgresql/{major}/replication.pgpass',
        sslmode=value('sslmode'), sslrootcert=value('sslrootcert'), application_name=value('application_name'),
        slot=value('slot'), restore_command=value('restore_command'), trigger_file=trigger_file)
    return standby_config(major, opts)


def settings(text: str) -> dict[str, str]:
    return parse_conf(text)


# -- the primary's settings file -----------------------------------------------------------

@pytest.mark.parametrize('major', MAJORS)
def test_wal_retention_setting_of_each_major(major):
    conf = settings(primary_conf(major, USER_VARS))
    profile = version_profile(major)
    if major <= 12:
        assert conf['wal_keep_segments'] == '64'          # 1024 MB in 16 MB segments
        assert 'wal_keep_size' not in conf
        assert 'max_slot_wal_keep_size' not in conf       # added in 13
    else:
        assert conf['wal_keep_size'] == '1024MB'
        assert conf['max_slot_wal_keep_size'] == '10240MB'
        assert 'wal_keep_segments' not in conf            # removed in 13
    # The template and the module's version logic agree on the names.
    assert profile.wal_keep_setting in conf
    assert (profile.max_slot_wal_keep_size in conf) if profile.max_slot_wal_keep_size else ('max_slot_wal_keep_size' not in conf)


@pytest.mark.parametrize('major', MAJORS)
def test_same_settings_everywhere_else(major):
    conf = settings(primary_conf(major, USER_VARS))
    assert conf['wal_level'] == 'replica'
    assert conf['hot_standby'] == 'on'
    assert conf['wal_log_hints'] == 'on'
    assert conf['ssl'] == 'on'
    assert conf['ssl_cert_file'] == f'/etc/postgresql/{major}/main/ssl/server.crt'
    assert conf['ssl_key_file'] == f'/etc/postgresql/{major}/main/ssl/server.key'
    assert conf['password_encryption'] == 'scram-sha-256'
    assert conf['listen_addresses'] == 'localhost'       # behind the proxy
    assert conf['max_wal_senders'] == '32' and conf['max_replication_slots'] == '32'   # max(32, nodes + 10)
    assert conf['archive_mode'] == 'off'
    # The settings file never holds a trigger file, a standby setting or recovery.conf syntax.
    for key in ('trigger_file', 'promote_trigger_file', 'standby_mode', 'primary_conninfo', 'primary_slot_name'):
        assert key not in conf
    assert f'# {MANAGED}' in primary_conf(major, USER_VARS).splitlines()[:3]


@pytest.mark.parametrize('major', MAJORS)
def test_a_replica_gets_the_same_file_as_the_primary(major):
    assert replica_conf(major, USER_VARS) == primary_conf(major, USER_VARS)
    assert replica_conf(major, USER_VARS, host=REPLICAS[1]) == primary_conf(major, USER_VARS)


@pytest.mark.parametrize('major', MAJORS)
@pytest.mark.parametrize('keep_mb,segments', [(0, 0), (16, 1), (17, 2), (1000, 63), (1024, 64), (4096, 256)])
def test_wal_keep_mb_in_the_unit_of_each_major(major, keep_mb, segments):
    user_vars = dict(USER_VARS, catmaid_replication_wal_keep_mb=keep_mb, catmaid_replication_max_slot_wal_keep_mb=-1)
    conf = settings(primary_conf(major, user_vars))
    if major <= 12:
        # whole 16 MB segments, never fewer MB than asked for
        assert conf['wal_keep_segments'] == str(segments)
        assert segments * 16 >= keep_mb > (segments - 1) * 16 or keep_mb == segments == 0
    else:
        assert conf['wal_keep_size'] == f'{keep_mb}MB'
        assert conf['max_slot_wal_keep_size'] == '-1'     # unlimited, as PostgreSQL spells it
    assert replica_conf(major, user_vars) == primary_conf(major, user_vars)


@pytest.mark.parametrize('major', MAJORS)
def test_extra_settings_and_archiving_render_on_every_major(major):
    user_vars = dict(USER_VARS, catmaid_replication_archive_mode=True,
                     catmaid_replication_archive_command="cp %p '/mnt/wal archive/%f'",
                     catmaid_replication_extra_settings={'wal_compression': True, 'max_wal_size': '2GB', 'wal_sender_timeout': 60000})
    conf = settings(primary_conf(major, user_vars))
    assert conf['archive_mode'] == 'on'
    assert conf['archive_command'] == "cp %p '/mnt/wal archive/%f'"
    assert conf['wal_compression'] == 'on' and conf['max_wal_size'] == '2GB' and conf['wal_sender_timeout'] == '60000'


# -- the replica's standby configuration ---------------------------------------------------

@pytest.mark.parametrize('major', MAJORS)
def test_standby_marker_of_each_major(major):
    cfg = replica_standby(major, USER_VARS)
    if major == 11:
        assert cfg.settings_target == 'recovery.conf'       # the whole standby config in the data dir
        assert cfg.signal_content is None
        assert cfg.keys[0] == 'standby_mode' and dict(cfg.settings)['standby_mode'] == 'on'
    else:
        assert cfg.settings_target == 'settings_file'       # conf.d file, plus an empty standby.signal
        assert cfg.signal_content == ''
        assert cfg.profile.signal_file == 'standby.signal'
        assert 'standby_mode' not in cfg.keys
    conf = parse_conf(cfg.content)
    assert conf['primary_slot_name'] == 'replica1'
    assert conf['recovery_target_timeline'] == 'latest'
    conninfo = conf['primary_conninfo']
    for part in (f"host='{PRIMARY}'", "port='7432'", "user='replication_user'", "sslmode='require'",
                 "application_name='replica1'", f"passfile='/var/lib/postgresql/{major}/replication.pgpass'"):
        assert part in conninfo
    assert 'password' not in conninfo.replace('passfile', '')


@pytest.mark.parametrize('major', MAJORS)
def test_no_trigger_file_unless_asked_and_only_where_postgresql_has_one(major):
    plain = replica_standby(major, USER_VARS)
    assert not {'trigger_file', 'promote_trigger_file'} & set(plain.keys)
    assert not plain.warnings

    asked = replica_standby(major, USER_VARS, trigger_file='/var/lib/postgresql/promote.now')
    keys = set(asked.keys)
    if major == 11:
        assert 'trigger_file' in keys and 'promote_trigger_file' not in keys
    elif major <= 15:
        assert 'promote_trigger_file' in keys and 'trigger_file' not in keys
    else:
        # removed in 16: never written, the user is told to promote with state=promoted
        assert not {'trigger_file', 'promote_trigger_file'} & keys
        assert asked.warnings and 'state=promoted' in asked.warnings[0]
    assert asked.profile.promote_method == ('pg_ctl' if major == 11 else 'pg_promote')


def test_slot_and_application_name_follow_the_inventory_name():
    cfg = replica_standby(17, USER_VARS, host=REPLICAS[1])
    conf = parse_conf(cfg.content)
    assert conf['primary_slot_name'] == 'replica_2_lab'
    assert "application_name='Replica-2.lab'" in conf['primary_conninfo']


@pytest.mark.parametrize('major', MAJORS)
def test_long_replica_reads_survive_vacuum_by_default(major):
    """Issue 15: feedback on, and replay waits 5 min for a conflicting query (PostgreSQL's default: 30 s)."""
    conf = settings(primary_conf(major, USER_VARS))
    assert conf['hot_standby_feedback'] == 'on'
    assert conf['max_standby_streaming_delay'] == '5min' and conf['max_standby_archive_delay'] == '5min'
    assert replica_conf(major, USER_VARS) == primary_conf(major, USER_VARS)


def test_the_standby_read_settings_can_be_changed_or_given_in_extra_settings():
    conf = settings(primary_conf(15, dict(USER_VARS, catmaid_replication_hot_standby_feedback=False,
                                          catmaid_replication_max_standby_streaming_delay=-1)))
    assert conf['hot_standby_feedback'] == 'off' and conf['max_standby_streaming_delay'] == '-1'
    text = primary_conf(15, dict(USER_VARS, catmaid_replication_extra_settings={'max_standby_archive_delay': '1h'}))
    assert [line for line in text.splitlines() if line.startswith('max_standby_archive_delay')] == ["max_standby_archive_delay = '1h'"]


def test_a_delayed_replica_sends_no_feedback():
    """Review 13 M2: feedback from a replica that replays an hour late would hold back VACUUM by an hour."""
    delayed = dict(USER_VARS, catmaid_replication_apply_delay='1h')
    conf = settings(replica_conf(15, delayed))
    assert conf['hot_standby_feedback'] == 'off'
    assert settings(replica_conf(15, USER_VARS))['hot_standby_feedback'] == 'on'
