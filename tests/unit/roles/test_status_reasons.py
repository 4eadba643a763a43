# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/status.yml's own expressions (the reasons strict status fails with, the archiver lines),
rendered by ansible-playbook on localhost with the registered results they read (no PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
STATUS = REPO / 'playbooks' / 'status.yml'


def render(tmp_path: Path, check: dict[str, Any], info: dict[str, Any] | None = None) -> dict[str, Any]:
    """__status_reasons and __status_archiver of status.yml for one node, localhost."""
    play_vars = yaml.safe_load(STATUS.read_text())[0]['vars']
    out = tmp_path / 'out.json'
    play = [{
        'hosts': 'localhost', 'gather_facts': False,
        'vars': dict(__cr_nodes=['localhost'], __status_reasons=play_vars['__status_reasons'],
                     __status_archiver=play_vars['__status_archiver']),
        # Host facts, as status.yml reads them through hostvars.
        'tasks': [{'name': 'Register', 'ansible.builtin.set_fact': {'__status_check': check,
                                                                    '__cr_node_info': info or {}}},
                  {'name': 'Render', 'ansible.builtin.copy': {
                      'content': "{{ {'reasons': __status_reasons, 'archiver': __status_archiver} | to_json }}",
                      'dest': str(out)}}],
    }]
    playbook = tmp_path / 'play.yml'
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1')
    res = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                          str(playbook)], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(out.read_text())


def test_a_check_that_failed_before_evaluating_is_a_reason(tmp_path: Path) -> None:
    """F2: the check module failed (a negative limit, a connection error): no ``problems`` key, and the
    registered result says failed: false (failed_when: false). Unknown is never healthy."""
    check = {'failed': False, 'changed': False, 'msg': 'max_lag_bytes must not be negative, got -1',
             'invocation': {'module_args': {'max_lag_bytes': -1}}}
    reasons = render(tmp_path, check)['reasons']
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith('localhost: ') and 'max_lag_bytes must not be negative, got -1' in reasons[0], reasons
    assert 'unknown' in reasons[0]


def test_a_skipped_or_clean_check_is_no_reason(tmp_path: Path) -> None:
    assert render(tmp_path, {'skipped': True, 'changed': False, 'skip_reason': 'Conditional result was False'})[
        'reasons'] == []
    assert render(tmp_path, {'failed': False, 'changed': False, 'problems': []})['reasons'] == []


def test_problems_are_reasons_as_before(tmp_path: Path) -> None:
    reasons = render(tmp_path, {'failed': False, 'problems': ['primary: WAL archiver still failing: x']})['reasons']
    assert reasons == ['localhost: WAL archiver still failing: x']


def test_archiver_line_compares_instants_not_text(tmp_path: Path) -> None:
    """F3: last success 02:45+02:00 (00:45 UTC), last failure 02:30+01:00 (01:30 UTC): still failing,
    although the failure's text sorts before the success's."""
    info = {'archiver': {'archive_mode': 'on', 'failed_count': 3, 'last_failed_wal': '000000010000000000000005',
                         'last_failed_time': '2026-10-25T02:30:00+01:00',
                         'last_archived_wal': '000000010000000000000004',
                         'last_archived_time': '2026-10-25T02:45:00+02:00', 'failing': True}}
    lines = render(tmp_path, {'skipped': True}, info)['archiver']
    assert len(lines) == 1 and 'STILL FAILING' in lines[0], lines


def render_upstream_of(tmp_path: Path, topology: dict[str, Any], current: str) -> dict[str, str]:
    """status.yml's __status_upstream_of (node -> the node it must stream from), on localhost."""
    play_vars = yaml.safe_load(STATUS.read_text())[0]['vars']
    out = tmp_path / 'upstream.json'
    nodes = topology['nodes']
    play = [{
        'hosts': 'localhost', 'gather_facts': False,
        'vars': dict(catmaid_replication_topology=topology, __cr_nodes=nodes, __status_primary=current,
                     __cr_inventory_primary=topology['inventory_primary'],
                     __status_expected=[n for n in nodes if n != current],
                     __status_upstream_of=play_vars['__status_upstream_of']),
        'tasks': [{'name': 'Render',
                   'ansible.builtin.copy': {'content': '{{ __status_upstream_of | to_json }}', 'dest': str(out)}}],
    }]
    playbook = tmp_path / 'upstream.yml'
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1')
    res = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                          str(playbook)], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(out.read_text())


def test_status_expects_what_the_roles_configure_for_an_upstream_naming_the_inventory_primary(tmp_path: Path) -> None:
    """Review 8 finding 5: r2 names the inventory's primary p as its upstream. After a switchover to r1 the
    roles make r2 stream from r1 (the primary now); status must expect the same, not p (a standby now)."""
    from ansible_collections.catmaid.replication.plugins.plugin_utils._topology import resolve

    groups = {'primary': ['p'], 'replicas': ['r1', 'r2', 'r3']}
    own = {h: {'catmaid_replication_password': 'pw'} for h in ('p', 'r1', 'r2', 'r3')}
    own['r2']['catmaid_replication_upstream'] = 'p'
    own['r3']['catmaid_replication_upstream'] = 'p'
    settings = {k: v for k, v in yaml.safe_load((REPO / 'roles/catmaid_replication/defaults/main.yml').read_text()).items()
                if 'password' not in k}
    facts = {'p': '192.0.2.1', 'r1': '192.0.2.2', 'r2': '192.0.2.3', 'r3': '192.0.2.4'}
    for current in ('p', 'r1', 'r2'):
        topo = resolve(settings, groups, lambda h: own[h], 'p', lambda h: facts[h], primary=current)
        expected = dict(topo['upstream_of'])
        if current != 'p':
            expected['p'] = current
        assert render_upstream_of(tmp_path, topo, current) == expected, current
