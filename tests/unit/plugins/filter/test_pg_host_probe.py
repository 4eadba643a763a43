# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

from ansible_collections.catmaid.replication.plugins.filter.pg_host_probe import FilterModule, pg_host_probe


def _clusters(*entries, **extra):
    """A probe's clusters line (pg_lsclusters --json, without the config) from (major, name, port, data_dir, running)."""
    return 'clusters ' + json.dumps([{'version': v, 'cluster': n, 'port': str(p), 'pgdata': d, 'running': r,
                                      'owneruid': 0, 'owner': 'postgres', 'start': 'auto', **extra}
                                     for v, n, p, d, r in entries]) + '\n'


PKGS = ['postgresql', 'postgresql-common', 'nginx']
FRESH = "packages \ncandidate postgresql-15\n"
INSTALLED = (
    _clusters(('15', 'main', 5432, '/var/lib/postgresql/15/main', 1), logfile='/var/log/postgresql/postgresql-15-main.log') +
    "binary /usr/lib/postgresql/15/bin/postgres\n"
    "packages postgresql ii |postgresql-common ii |\n"
    "candidate postgresql-15\n"
)


def test_fresh_host_takes_apt_candidate_and_misses_every_package():
    got = pg_host_probe(FRESH, 'main', '', PKGS)
    assert got['major'] == '15' and got['why'] == 'candidate'
    assert got['missing'] == PKGS
    assert got['cluster'] == {} and got['clusters'] == [] and got['majors'] == []


def test_installed_host_finds_its_running_cluster():
    got = pg_host_probe(INSTALLED, 'main', '', PKGS)
    assert got['major'] == '15' and got['why'] == 'cluster'
    assert got['missing'] == ['nginx']
    assert got['majors'] == [15]
    c = got['cluster']
    assert (c['major'], c['port'], c['data_dir'], c['running'], c['recovery']) == (15, 5432, '/var/lib/postgresql/15/main', True, False)
    assert c['log'] == '/var/log/postgresql/postgresql-15-main.log'


def test_the_only_cluster_of_the_name_wins_over_newer_binaries_and_candidate():
    out = (_clusters(('13', 'main', 5433, '/var/lib/postgresql/13/main', 0), ('15', 'other', 5432, '/var/lib/postgresql/15/other', 1)) +
           "binary /usr/lib/postgresql/13/bin/postgres\nbinary /usr/lib/postgresql/15/bin/postgres\n"
           "candidate postgresql-17\n")
    got = pg_host_probe(out, 'main', '', [])
    assert got['major'] == '13' and got['why'] == 'cluster'
    assert got['cluster']['status'] == 'down' and got['cluster']['running'] is False and got['cluster']['log'] == ''
    assert got['majors'] == [13, 15]


def test_installed_binaries_without_cluster_win_over_candidate():
    got = pg_host_probe("binary /usr/lib/postgresql/16/bin/postgres\ncandidate postgresql-15\n", 'main', '', [])
    assert (got['major'], got['why'], got['cluster']) == ('16', 'installed', {})


def test_version_asked_for_wins_and_picks_that_cluster_only():
    got = pg_host_probe(INSTALLED, 'main', 17, [])
    assert (got['major'], got['why'], got['cluster']) == ('17', 'version', {})
    assert pg_host_probe(INSTALLED, 'main', '15', [])['cluster']['major'] == 15


def test_standby_clusters_of_the_name_are_reported():
    out = _clusters(('15', 'main', 5432, '/var/lib/postgresql/15/main', 1), recovery=1)
    got = pg_host_probe(out, 'main', '', [])
    assert got['standbys'] == ['15'] and got['cluster']['recovery'] is True and got['cluster']['running'] is True
    assert pg_host_probe(out, 'other', '', [])['standbys'] == []


def test_nothing_known_chooses_nothing():
    for out in ('', None, 'garbage line\ncluster short line\nbinary /usr/bin/postgres\n'):
        got = pg_host_probe(out, 'main', '', ['acl'])
        assert (got['major'], got['why'], got['missing'], got['clusters']) == ('', '', ['acl'], [])


def test_registered_under_its_name():
    assert FilterModule().filters()['pg_host_probe'] is pg_host_probe


def test_start_conf_fence_marker_and_control_data_are_attached_to_their_cluster():
    out = (_clusters(('15', 'main', 5432, '/var/lib/postgresql/15/main', 0), ('13', 'old', 5433, '/var/lib/postgresql/13/old', 1)) +
           'startconf 15 main manual\n'
           'fenced 15 main\n'
           'control 15 main sysid 7311234567890123456\n'
           'control 15 main timeline 3\n'
           'control 15 main state shut down\n'
           'startconf 13 old auto\n')
    got = pg_host_probe(out, 'main', '', [])
    main = got['cluster']
    assert main['start_conf'] == 'manual' and main['fenced'] is True
    assert main['sysid'] == '7311234567890123456' and main['timeline'] == 3 and main['state'] == 'shut down'
    old = [c for c in got['clusters'] if c['name'] == 'old'][0]
    assert old['start_conf'] == 'auto' and old['fenced'] is False and old['sysid'] == '' and old['timeline'] == 0


def test_a_promoted_server_shows_its_new_timeline_before_its_next_checkpoint():
    out = (_clusters(('15', 'main', 5432, '/var/lib/postgresql/15/main', 1)) +
           'control 15 main timeline 1\n'
           'control 15 main histtimeline 0000000A\n')
    assert pg_host_probe(out, 'main', '', [])['cluster']['timeline'] == 10


def test_two_clusters_of_the_name_without_version_are_ambiguous_not_the_highest():
    out = _clusters(('16', 'main', 5432, '/var/lib/postgresql/16/main', 1), ('17', 'main', 5433, '/var/lib/postgresql/17/main', 1))
    got = pg_host_probe(out, 'main', '', [])
    assert (got['major'], got['why'], got['cluster']) == ('', 'ambiguous', {})
    assert [f"{c['major']}/{c['name']}" for c in got['ambiguous']] == ['16/main', '17/main']
    assert pg_host_probe(out, 'main', '16', [])['cluster']['port'] == 5432
    assert pg_host_probe(out, 'other', '', [])['ambiguous'] == []


def test_the_managed_cluster_is_chosen_and_two_managed_ones_are_ambiguous():
    out = _clusters(('16', 'main', 5432, '/a', 1), ('17', 'main', 5433, '/b', 1)) + 'managed 16 main\n'
    got = pg_host_probe(out, 'main', '', [])
    assert (got['major'], got['why'], got['cluster']['port']) == ('16', 'managed', 5432)
    # an explicit version still wins
    assert pg_host_probe(out, 'main', '17', [])['cluster']['port'] == 5433
    both = pg_host_probe(out + 'managed 17 main\n', 'main', '', [])
    assert both['cluster'] == {} and both['why'] == 'ambiguous' and len(both['ambiguous']) == 2


def test_a_managed_cluster_that_is_down_beside_a_running_one_of_the_name_is_ambiguous():
    """What pg_upgradecluster leaves (it does not copy conf.d): the old, stopped 15/main still holds the
    collection's settings file, the new 17/main runs. Acting on 15 would fence a stopped cluster while
    17 keeps taking writes: refuse instead (review of issue 18 item 4)."""
    out = _clusters(('15', 'main', 5433, '/a', 0), ('17', 'main', 5432, '/b', 1)) + 'managed 15 main\n'
    got = pg_host_probe(out, 'main', '', [])
    assert (got['major'], got['why'], got['cluster']) == ('', 'ambiguous', {})
    # Both down, or the managed one running: the managed one, as before.
    assert pg_host_probe(out.replace('"running": 1', '"running": 0'), 'main', '', [])['why'] == 'managed'
    # A fenced old primary is down on purpose: still chosen, so that the fence refusal names it.
    assert pg_host_probe(out + 'fenced 15 main\n', 'main', '', [])['cluster']['port'] == 5433


def test_json_fields_are_taken_exactly():
    out = _clusters(('15', 'main', 5432, '/srv/pg data/15/main', 0))
    c = pg_host_probe(out, 'main', '', [])['cluster']
    assert (c['data_dir'], c['running'], c['status'], c['recovery'], c['port']) == ('/srv/pg data/15/main', False, 'down', False, 5432)
