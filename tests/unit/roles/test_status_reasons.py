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
