# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure helpers of bench/bench.py behind issue 17 items 3 and 4: GNU time's CPU figures, the marginal cost per added
replica, the cascading layout, walsender CPU from /proc, the fan-out samplers' script and output, and lag from LSNs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))

import bench  # noqa: E402  pylint: disable=wrong-import-position

TIME_V = """\tCommand being timed: "ansible-playbook -i hosts.ini site.yml"
\tUser time (seconds): 41.52
\tSystem time (seconds): 9.13
\tPercent of CPU this job got: 61%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:22.31
\tMaximum resident set size (kbytes): 65024
\tExit status: 0
"""


def test_parse_time_v():
    assert bench.parse_time_v(TIME_V) == {'user_s': 41.52, 'sys_s': 9.13, 'cpu_s': 50.65, 'max_rss_mb': 63.5}
    assert bench.parse_time_v('') == {'user_s': None, 'sys_s': None, 'cpu_s': None, 'max_rss_mb': None}


def _run(n: int, wall: float, executions: int, cpu: float) -> dict:
    return {'replicas': n, 'wall_s': wall, 'executions_total': executions, 'controller_cpu': {'total_s': cpu}}


def test_marginal_costs_between_smallest_and_largest():
    runs = [_run(4, 60.0, 400, 30.0), _run(1, 50.0, 250, 20.0), _run(8, 80.0, 600, 42.0)]
    got = bench.marginal_costs(runs)
    assert (got['n_min'], got['n_max'], got['from'], got['to']) == (1, 8, 1, 8)
    assert got['executions_per_replica'] == round(350 / 7, 1)
    assert got['cpu_s_per_replica'] == round(22 / 7, 2)
    assert got['wall_s_per_replica'] == round(30 / 7, 2)
    assert got['wall_ratio'] == 1.6
    assert [(s['from'], s['to'], s['executions_per_replica']) for s in got['steps']] == [(1, 4, 50.0), (4, 8, 50.0)]


def test_marginal_costs_needs_two_sizes_and_tolerates_missing_cpu():
    assert not bench.marginal_costs([_run(1, 50.0, 250, 20.0)])
    runs = [_run(1, 50.0, 250, 20.0), dict(_run(2, 55.0, 290, 0.0), controller_cpu={})]
    assert bench.marginal_costs(runs)['cpu_s_per_replica'] is None


def test_cascade_upstreams_half_each():
    replicas = bench.replica_names(20)
    got = bench.cascade_upstreams(replicas)
    assert set(got) == set(replicas[2:])
    assert sorted(set(got.values())) == ['bn-r1', 'bn-r2']
    assert sum(1 for up in got.values() if up == 'bn-r1') == 9
    assert bench.cascade_upstreams(bench.replica_names(3)) == {'bn-r3': 'bn-r1'}
    assert not bench.cascade_upstreams(bench.replica_names(2))


def test_walsender_ticks_and_cpu():
    # the command name may hold spaces and parentheses: fields are counted after the last ')'
    stat = '{pid} (postgres: 15/main: walsender (x)) S 1 {pid} {pid} 0 -1 4194560 300 0 0 0 {utime} {stime} 0 0 20 0 1 0 1000'
    before = '100\n' + '\n'.join(f'{pid} ' + stat.format(pid=pid, utime=u, stime=t) for pid, u, t in ((41, 10, 5), (42, 7, 3)))
    after = '100\n' + '\n'.join(f'{pid} ' + stat.format(pid=pid, utime=u, stime=t) for pid, u, t in ((41, 60, 25), (43, 20, 10)))
    clk, ticks0 = bench.walsender_ticks(before)
    assert clk == 100 and ticks0 == {41: 15, 42: 10}
    clk, ticks1 = bench.walsender_ticks(after)
    assert ticks1 == {41: 85, 43: 30}
    # 41: 70 ticks since the first reading, 43 (started in between): all of its 30; 42 ended: not counted
    assert bench.walsender_cpu(ticks0, ticks1, clk, 10.0) == {'cpu_s': 1.0, 'percent_of_one_core': 10.0, 'walsenders': 2}
    assert bench.walsender_ticks('100\n') == (100, {})


def test_sampler_script_quits_past_its_time():
    script = bench.sampler_script('SELECT 1', 0.5, 1234.5, 3)
    assert script.count('SELECT 1;') == 11
    assert script.startswith('SELECT extract(epoch FROM clock_timestamp()) > 1234.500 AS bench_done \\gset\n\\if :bench_done\n\\q\n\\endif\n')
    assert 'SELECT pg_sleep(0.5) \\g /dev/null\n' in script


def test_parse_samples():
    assert bench.parse_lsn_samples('10.5,2000\n\n10.0,1000\n9.9,\n') == [(10.0, 1000.0), (10.5, 2000.0)]
    got = bench.parse_sender_samples('10.0,bn-r1,0.0123,456\n10.0,bn-r2,0,0\nnoise\n')
    assert got == [{'epoch': 10.0, 'replica': 'bn-r1', 'lag_s': 0.0123, 'lag_bytes': 456},
                   {'epoch': 10.0, 'replica': 'bn-r2', 'lag_s': 0.0, 'lag_bytes': 0}]


def test_lsn_lag_samples():
    # the primary writes 1000 bytes a second from LSN 0 at t=100
    primary = [(100.0 + i * 0.5, 500.0 * i) for i in range(21)]       # t 100..110
    replicas = {
        'bn-r1': [(101.0, 1000.0), (102.0, 1800.0), (105.0, 5000.0)],     # caught up; 200 bytes = 0.2 s behind; caught up
        'bn-r2': [(99.0, 0.0), (103.0, 1000.0), (111.0, 9000.0)],         # before the window; 2 s behind; after the window
    }
    got = bench.lsn_lag_samples(primary, replicas, 100.5, 110.0)
    assert got == [
        {'t': 0.5, 'replica': 'bn-r1', 'lag_s': 0.0, 'lag_bytes': 0},
        {'t': 1.5, 'replica': 'bn-r1', 'lag_s': 0.2, 'lag_bytes': 200},
        {'t': 4.5, 'replica': 'bn-r1', 'lag_s': 0.0, 'lag_bytes': 0},
        {'t': 2.5, 'replica': 'bn-r2', 'lag_s': 2.0, 'lag_bytes': 2000},
    ]


def test_lsn_lag_lower_bound_and_no_primary():
    # the replica replayed less than the primary's first sample: seconds since that sample (a lower bound)
    got = bench.lsn_lag_samples([(100.0, 1000.0), (101.0, 2000.0)], {'bn-r1': [(100.5, 200.0)]}, 100.0, 101.0)
    assert got == [{'t': 0.5, 'replica': 'bn-r1', 'lag_s': 0.5, 'lag_bytes': 1300}]
    assert not bench.lsn_lag_samples([], {'bn-r1': [(100.5, 200.0)]}, 100.0, 101.0)


def test_lag_summary_of_nothing():
    assert bench.lag_summary([]) == {'samples': 0}
    got = bench.lag_summary([{'lag_s': 0.1, 'lag_bytes': 10}, {'lag_s': 0.3, 'lag_bytes': 30}])
    assert got['samples'] == 2 and got['max_s'] == 0.3 and got['p50_bytes'] == 20


def test_inotify_raises_only_what_is_lower():
    assert bench.inotify_raises({'fs.inotify.max_user_instances': 128, 'fs.inotify.max_user_watches': 2000000}) == {
        'fs.inotify.max_user_instances': 1024}
    assert not bench.inotify_raises({'fs.inotify.max_user_instances': 8192, 'fs.inotify.max_user_watches': 1048576})


def test_new_phases_are_opt_in():
    assert bench.PHASES[:len(bench.DEFAULT_PHASES)] == bench.DEFAULT_PHASES
    assert set(bench.PHASES) - set(bench.DEFAULT_PHASES) == {'scale-pre', 'fanout'}
    for phase in bench.PHASES:
        assert hasattr(bench.Bench, f'phase_{phase.replace("-", "_")}')


def test_inventory_with_host_variables(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, 'WORK', tmp_path)
    ansible = bench.Ansible('secret')
    text = ansible.inventory(['bn-r1', 'bn-r2'], {'bn-r2': {'catmaid_replication_upstream': 'bn-r1'}}).read_text(encoding='utf-8')
    assert '[replicas]\nbn-r1\nbn-r2 catmaid_replication_upstream=bn-r1\n\n[all:vars]\n' in text
    assert '[replicas]\nbn-r1\nbn-r2\n\n' in ansible.inventory(['bn-r1', 'bn-r2']).read_text(encoding='utf-8')
