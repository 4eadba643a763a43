# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication set derived from the inventory (plugins/plugin_utils/_topology.py), with the
defaults of roles/catmaid_replication/defaults/main.yml as the settings, as the roles pass them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.catmaid.replication.plugins.plugin_utils._topology import TopologyError, check_address, resolve

REPO = Path(__file__).resolve().parents[4]
DEFAULTS = {k: v for k, v in yaml.safe_load((REPO / 'roles/catmaid_replication/defaults/main.yml').read_text()).items()
            if 'password' not in k}
GROUPS = {'primary': ['p'], 'replicas': ['r1', 'r2']}
FACTS = {'p': '192.0.2.1', 'r1': '192.0.2.2', 'r2': '192.0.2.3'}


def topo(me: str = 'p', host: dict[str, dict] | None = None, settings: dict | None = None, primary: str = '',
         facts: dict | None = None, groups: dict | None = None) -> dict[str, Any]:
    own = {h: {'catmaid_replication_password': 'pw', **(host or {}).get(h, {})} for h in ('p', 'r1', 'r2')}
    facts = FACTS if facts is None else facts
    return resolve({**DEFAULTS, **(settings or {})}, groups or GROUPS, lambda h: own[h], me,
                   lambda h: facts.get(h, ''), primary=primary)


def test_the_set_from_the_inventory_and_the_defaults():
    t = topo('r1')
    assert (t['primary'], t['replicas'], t['role']) == ('p', ['r1', 'r2'], 'replica')
    assert topo('p')['allow'] == ['192.0.2.2', '192.0.2.3'] and t['hba_sources'] == ['127.0.0.2/32']
    assert topo('p')['slots'] == ['r1', 'r2'] and t['slot'] == 'r1' and t['connect_port'] == 7432
    # a replica serves nobody: no allow list, no slots of its own
    assert t['allow'] == [] and t['slots'] == []
    assert t['senders'] == 32 and t['max_slots'] == 32 and t['primary_host'] == 'p'


def test_after_a_failover_the_override_names_the_primary():
    t = topo('p', primary='r1')
    assert (t['primary'], t['replicas'], t['role']) == ('r1', ['p', 'r2'], 'replica')
    new = topo('r1', primary='r1')
    assert new['slots'] == ['p', 'r2'] and new['allow'] == ['192.0.2.1', '192.0.2.3'] and t['slots'] == []


def test_a_per_node_address_stays_with_its_node():
    """Review hole 5: r1's own primary_address must not become every node's."""
    t = topo('r1', host={'r1': {'catmaid_replication_primary_address': '10.0.0.2'}})
    assert t['host_of'] == {'p': 'p', 'r1': '10.0.0.2', 'r2': 'r2'} and t['primary_host'] == 'p'


@pytest.mark.parametrize('name,value', [('catmaid_replication_port', 7433), ('catmaid_replication_use_proxy', False),
                                        ('catmaid_replication_sslmode', 'verify-full'),
                                        ('catmaid_replication_ca_dir', '/elsewhere')])
def test_a_set_wide_setting_given_on_one_node_only_is_refused(name, value):
    """Review holes 6 and 14: one node on another port, proxy mode, sslmode or CA would split the set."""
    with pytest.raises(TopologyError, match=f'{name} must be the same on every node'):
        topo('r1', host={'p': {name: value}})


@pytest.mark.parametrize('fact', ['10.0.0.2;\n    allow all;\n    #', '0.0.0.0', '127.0.0.1', 'fe80::1%eth0'])
def test_an_address_from_facts_is_checked_like_a_given_one(fact):
    """Review hole 4: a managed host controls its own facts; they went into nginx unchecked."""
    with pytest.raises(TopologyError, match='not a usable address'):
        topo('p', facts={**FACTS, 'r1': fact})


@pytest.mark.parametrize('value', ['fe80::1%eth0', 'fe80::1%x; allow all', '10.0.0.5/0', '::/0', '0.0.0.0', '127.0.0.1',
                                   '224.0.0.1', '10.0.0.5/24', 'db2.example.org', '10.0.0.300', ''])
def test_check_address_refuses_what_would_open_or_break_the_proxy(value):
    """Review holes 3 and 16."""
    assert check_address(value) is None


@pytest.mark.parametrize('value', ['10.0.0.2', '10.0.0.0/24', '2001:db8::5', '2001:db8::/64'])
def test_check_address_accepts_addresses_and_networks(value):
    assert check_address(value) == value


@pytest.mark.parametrize('source', ['127.0.0.1', '::1', '10.0.0.2', 'localhost'])
def test_the_proxy_source_cannot_lock_out_local_clients(source):
    """Review hole 2: 127.0.0.1 (or ::1) would reject every local client of PostgreSQL."""
    with pytest.raises(TopologyError, match='catmaid_replication_proxy_source must be an IPv4 loopback'):
        topo(settings={'catmaid_replication_proxy_source': source})


def test_slot_names_are_unique_over_every_node():
    """Review hole 10: a replica using the primary's default slot name collided only after a promotion."""
    with pytest.raises(TopologyError, match='Two nodes would use the same replication slot'):
        topo(host={'r2': {'catmaid_replication_slot': 'p'}})


def test_missing_settings_are_named_not_defaulted_here():
    settings = dict(DEFAULTS)
    del settings['catmaid_replication_port']
    with pytest.raises(TopologyError, match='Settings missing: catmaid_replication_port'):
        resolve(settings, GROUPS, lambda h: {'catmaid_replication_password': 'pw'}, 'p', lambda h: FACTS[h])


def test_the_password_is_never_returned():
    t = topo('p', host={h: {'catmaid_replication_password': 'S3cret'} for h in ('p', 'r1', 'r2')})
    assert 'S3cret' not in repr(t)


def test_ipv4_mapped_addresses_are_refused():
    assert check_address('::ffff:127.0.0.1') is None and check_address('::ffff:10.0.0.5') is None


def test_a_boolean_written_as_a_word_is_the_same_setting():
    t = topo('r1', host={'p': {'catmaid_replication_use_proxy': 'True'}, 'r1': {'catmaid_replication_use_proxy': 'yes'}})
    assert t['use_proxy'] is True


@pytest.mark.parametrize('upstream', ['::1', '[::1]', 'localhost', 'db1.example.org', '192.0.2.1', '10.0.0.5',
                                      '127.0.0.1; allow all', '127.0.0.1:5432', ''])
def test_the_proxy_upstream_must_be_an_ipv4_loopback_address(upstream):
    """The proxy binds to catmaid_replication_proxy_source (IPv4 loopback): an IPv6 or host name upstream
    (localhost may resolve to ::1) fails in nginx, another host cannot be reached from a loopback source."""
    with pytest.raises(TopologyError, match='nginx_stream_upstream_host must be an IPv4 loopback address') as err:
        topo(settings={'nginx_stream_upstream_host': upstream})
    assert f'(got "{upstream}")' in str(err.value) and '127.0.0.1' in str(err.value)
    assert 'Nothing was changed' in str(err.value)


def test_the_primary_s_own_upstream_is_checked_on_every_node():
    """Given in the primary's host variables, it is refused on a replica as well, before anything changes there."""
    with pytest.raises(TopologyError, match='nginx_stream_upstream_host must be an IPv4 loopback address'):
        topo('r1', host={'p': {'nginx_stream_upstream_host': '::1'}})


@pytest.mark.parametrize('upstream', ['127.0.0.1', ' 127.0.0.1 ', '127.0.1.1'])
def test_an_ipv4_loopback_upstream_is_the_proxy_s(upstream):
    assert topo(settings={'nginx_stream_upstream_host': upstream})['proxy_upstream'] == upstream.strip()


def test_the_upstream_is_not_checked_without_the_proxy():
    t = topo(settings={'catmaid_replication_use_proxy': False, 'nginx_stream_upstream_host': '::1'})
    assert t['use_proxy'] is False


# -- removing a replica, a delayed replica (issue 16 items 4 and 5) ---------------------------

GROUPS3 = {'primary': ['p'], 'replicas': ['r1', 'r2', 'r3']}
FACTS3 = {**FACTS, 'r3': '192.0.2.4'}


def topo3(me: str = 'p', remove: Any = None, host: dict[str, dict] | None = None, primary: str = '') -> dict[str, Any]:
    own = {h: {'catmaid_replication_password': 'pw', **(host or {}).get(h, {})} for h in ('p', 'r1', 'r2', 'r3')}
    settings = {**DEFAULTS, 'catmaid_replication_remove': remove}
    return resolve(settings, GROUPS3, lambda h: own[h], me, lambda h: FACTS3.get(h, ''), primary=primary)


@pytest.mark.parametrize('remove', ['r3', ' r3 ', ['r3'], 'r3,', ('r3',)])
def test_a_removed_replica_is_out_of_the_set(remove):
    t = topo3(remove=remove)
    assert t['removed'] == ['r3'] and t['replicas'] == ['r1', 'r2'] and t['nodes'] == ['p', 'r1', 'r2']
    assert t['slots'] == ['r1', 'r2'] and 'r3' not in t['slot_of']
    assert t['allow'] == ['192.0.2.2', '192.0.2.3']
    assert topo3('r3', remove=remove)['role'] == 'removed'


def test_several_replicas_can_be_removed_at_once():
    t = topo3(remove='r1, r3')
    assert t['removed'] == ['r1', 'r3'] and t['replicas'] == ['r2'] and t['allow'] == ['192.0.2.3']


@pytest.mark.parametrize('remove', [None, '', [], ' , '])
def test_nothing_removed_by_default(remove):
    t = topo3(remove=remove)
    assert t['removed'] == [] and t['replicas'] == ['r1', 'r2', 'r3']


@pytest.mark.parametrize('remove', ['r9', 'r3,r9', 'P', 'localhost'])
def test_removing_an_unknown_host_is_refused_naming_it(remove):
    with pytest.raises(TopologyError, match='names .*not a replica of the inventory group .replicas. .r1, r2, r3.*'
                                            'Nothing was changed'):
        topo3(remove=remove)


@pytest.mark.parametrize('remove, primary', [('p', ''), ('r1', 'r1'), ('p,r3', '')])
def test_removing_the_primary_is_refused(remove, primary):
    with pytest.raises(TopologyError, match=r'names the primary .*only a replica can be removed'):
        topo3(remove=remove, primary=primary)


def test_removing_every_replica_is_refused():
    with pytest.raises(TopologyError, match='names every replica'):
        topo3(remove=['r1', 'r2', 'r3'])


def test_removing_a_non_string_is_refused():
    with pytest.raises(TopologyError, match='must name hosts'):
        topo3(remove=[3])


def test_the_apply_delay_is_per_replica():
    t = topo3('r2', host={'r2': {'catmaid_replication_apply_delay': '30s'}, 'r1': {'catmaid_replication_apply_delay': 0}})
    assert t['apply_delay_of'] == {'p': '', 'r1': '', 'r2': '30s', 'r3': ''}
    assert t['apply_delay_seconds_of'] == {'p': 0.0, 'r1': 0.0, 'r2': 30.0, 'r3': 0.0}
    assert t['apply_delay'] == '30s' and topo3('r1', host={'r2': {'catmaid_replication_apply_delay': '30s'}})['apply_delay'] == ''


@pytest.mark.parametrize('bad', ['30', '1 hour', 'x'])
def test_a_bad_apply_delay_is_refused_before_anything_changes(bad):
    with pytest.raises(TopologyError, match=r'catmaid_replication_apply_delay of r2: .*Nothing was changed'):
        topo3(host={'r2': {'catmaid_replication_apply_delay': bad}})


# -- cascading (catmaid_replication_upstream) ---------------------------------------------------------

def topo4(me: str = 'p', host: dict[str, dict] | None = None, primary: str = '', remove: Any = None,
          settings: dict | None = None) -> dict[str, Any]:
    groups = {'primary': ['p'], 'replicas': ['r1', 'r2', 'r3']}
    facts = {**FACTS, 'r3': '192.0.2.4'}
    own = {h: {'catmaid_replication_password': 'pw', **(host or {}).get(h, {})} for h in ('p', 'r1', 'r2', 'r3')}
    extra = {} if remove is None else {'catmaid_replication_remove': remove}
    return resolve({**DEFAULTS, **extra, **(settings or {})}, groups, lambda h: own[h], me, lambda h: facts.get(h, ''),
                   primary=primary)


CASCADE = {'r3': {'catmaid_replication_upstream': 'r1'}}


def test_without_upstreams_every_replica_streams_from_the_primary():
    t = topo4('r1')
    assert t['upstream'] == 'p' and t['upstream_host'] == 'p' and t['downstreams'] == []
    assert t['upstream_of'] == {'r1': 'p', 'r2': 'p', 'r3': 'p'} and t['slots'] == [] and t['allow'] == []
    assert t['listen_addresses'] == 'localhost'


def test_a_cascading_replica_streams_from_its_upstream_which_serves_it_alone():
    leaf, upstream, primary = topo4('r3', CASCADE), topo4('r1', CASCADE), topo4('p', CASCADE)
    assert leaf['upstream'] == 'r1' and leaf['upstream_host'] == 'r1' and leaf['slot'] == 'r3'
    assert upstream['downstreams'] == ['r3'] and upstream['slots'] == ['r3'] and upstream['allow'] == ['192.0.2.4']
    assert upstream['hba_sources'] == ['127.0.0.2/32'] and upstream['upstream'] == 'p'
    # the primary neither admits nor keeps a slot for the replica that does not stream from it
    assert primary['downstreams'] == ['r1', 'r2'] and primary['slots'] == ['r1', 'r2']
    assert primary['allow'] == ['192.0.2.2', '192.0.2.3']


def test_the_upstream_is_reached_at_its_own_primary_address():
    t = topo4('r3', {**CASCADE, 'r1': {'catmaid_replication_primary_address': '10.0.0.2'}})
    assert t['upstream_host'] == '10.0.0.2' and t['primary_host'] == 'p'


def test_without_the_proxy_the_upstream_listens_and_admits_its_replica_s_address():
    t = topo4('r1', CASCADE, settings={'catmaid_replication_use_proxy': False})
    assert t['listen_addresses'] == '*' and t['hba_sources'] == ['192.0.2.4']
    assert topo4('r2', CASCADE, settings={'catmaid_replication_use_proxy': False})['listen_addresses'] == 'localhost'


def test_after_a_switchover_to_the_upstream_its_replica_streams_from_it_directly():
    t = topo4('r1', CASCADE, primary='r1')
    assert t['role'] == 'primary' and sorted(t['downstreams']) == ['p', 'r2', 'r3'] and 'r3' in t['slots']
    assert topo4('r3', CASCADE, primary='r1')['upstream'] == 'r1'


def test_after_a_switchover_elsewhere_the_cascade_stays():
    t = topo4('r3', CASCADE, primary='r2')
    assert t['upstream'] == 'r1' and topo4('r1', CASCADE, primary='r2')['downstreams'] == ['r3']
    assert topo4('r2', CASCADE, primary='r2')['downstreams'] == ['p', 'r1']


def test_the_primary_s_own_upstream_is_ignored():
    t = topo4('r1', {'p': {'catmaid_replication_upstream': 'r1'}})
    assert t['downstreams'] == [] and t['upstream_of']['r1'] == 'p'


@pytest.mark.parametrize('host,match', [
    ({'r3': {'catmaid_replication_upstream': 'nowhere'}}, 'names "nowhere", which is not a node'),
    ({'r3': {'catmaid_replication_upstream': 'r3'}}, 'names r3 itself'),
    ({'r3': {'catmaid_replication_upstream': 'r2'}, 'r2': {'catmaid_replication_upstream': 'r1'}}, 'one level deep'),
    ({'r3': {'catmaid_replication_upstream': 'r2'}, 'r2': {'catmaid_replication_upstream': 'r3'}}, 'one level deep'),
])
def test_a_bad_upstream_is_refused_before_anything_changes(host, match):
    with pytest.raises(TopologyError, match=match):
        topo4('p', host)


def test_an_upstream_that_is_removed_is_refused_naming_why():
    with pytest.raises(TopologyError, match='removed with catmaid_replication_remove'):
        topo4('p', CASCADE, remove='r1')


def test_one_node_cannot_feed_more_replicas_than_its_slots():
    host = {'r2': {'catmaid_replication_upstream': 'r1'}, 'r3': {'catmaid_replication_upstream': 'r1'}}
    with pytest.raises(TopologyError, match='2 replicas stream from one node'):
        topo4('p', host, settings={'catmaid_replication_max_replication_slots': 1})


def test_synchronous_count_is_limited_to_the_replicas_of_the_primary():
    """A cascading replica never confirms a commit to the primary: counting it would hang every commit."""
    settings = {'catmaid_replication_synchronous': {'method': 'ANY', 'count': 3}}
    assert topo4('p', settings=settings)['synchronous_standby_names'].startswith('ANY 3 (')
    with pytest.raises(TopologyError, match='must be 1 to 2, the number of replicas that stream from the primary'):
        topo4('p', CASCADE, settings=settings)


def test_a_delayed_replica_cannot_be_an_upstream():
    with pytest.raises(TopologyError, match='a delayed replica'):
        topo4('p', {**CASCADE, 'r1': {'catmaid_replication_apply_delay': '1h'}})


def test_naming_the_inventory_primary_streams_from_the_primary_now():
    """After a failover the inventory's primary is fenced or down: a replica naming it must not follow it."""
    host = {'r3': {'catmaid_replication_upstream': 'p'}}
    assert topo4('r3', host)['upstream'] == 'p'
    after = topo4('r3', host, primary='r1')
    assert after['upstream'] == 'r1' and topo4('p', host, primary='r1')['downstreams'] == []
    assert 'r3' in topo4('r1', host, primary='r1')['downstreams']


@pytest.mark.parametrize('value', ['5min', '30s', '-1', -1, 0, '0', '250ms', '1h'])
def test_the_standby_delays_accept_postgresql_time_values(value):
    for name in ('catmaid_replication_max_standby_streaming_delay', 'catmaid_replication_max_standby_archive_delay'):
        assert topo('r1', host={'r2': {name: value}})['role'] == 'replica'


@pytest.mark.parametrize('value', ['5', 300, "5min'\nfsync = off", 'forever', '-2', '30 days', True, '5min\n', ' -1\n',
                                   '\u20285min', '5 min', '-1 ', '99999h'])
def test_a_standby_delay_that_is_not_a_time_is_refused_before_anything_changes(value):
    """A bare number would be milliseconds to PostgreSQL; a line end would write another setting."""
    for name in ('catmaid_replication_max_standby_streaming_delay', 'catmaid_replication_max_standby_archive_delay'):
        with pytest.raises(TopologyError, match=f'{name} of r2 must be -1 .*got {re.escape(repr(value))}'):
            topo('p', host={'r2': {name: value}})
