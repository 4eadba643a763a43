# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``remote_executions`` of bench/bench.py (issue 17 item 1): per host, the task results of the JSON callback's
output that really ran a module on the host, on a small synthetic run covering skipped, looped, delegated and
controller-only results."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))

import bench  # noqa: E402  pylint: disable=wrong-import-position


def _task(name: str, hosts: dict) -> dict:
    return {'task': {'name': name, 'duration': {'start': '2026-12-01T00:00:00Z', 'end': '2026-12-01T00:00:01Z'}}, 'hosts': hosts}


def _play(name: str, tasks: list) -> dict:
    return {'play': {'name': name, 'duration': {'start': '2026-12-01T00:00:00Z', 'end': '2026-12-01T00:00:09Z'}}, 'tasks': tasks}


TO_LOCALHOST = {'ansible_host': 'localhost', 'ansible_connection': 'local', 'ansible_port': None, 'ansible_user': None}
TO_LOOPBACK = {'ansible_host': '127.0.0.1', 'ansible_connection': 'ssh', 'ansible_port': None, 'ansible_user': None}
TO_R1 = {'ansible_host': 'r1', 'ansible_connection': 'community.docker.docker', 'ansible_port': None, 'ansible_user': None}

DATA = {
    'plays': [
        _play('controller', [
            _task('Derive the replication set', {'localhost': {'action': 'catmaid.replication.topology', 'changed': False}}),
            _task('A module on the controller itself', {'localhost': {'action': 'ansible.builtin.stat', 'changed': False}}),
        ]),
        _play('nodes', [
            _task('Gathering Facts', {h: {'action': 'gather_facts', 'changed': False} for h in ('p', 'r1', 'r2')}),
            _task('Plain module', {'p': {'action': 'ansible.builtin.command', 'changed': False},
                                   'r1': {'action': 'ansible.builtin.command', 'changed': False},
                                   'r2': {'action': 'ansible.builtin.command', 'skipped': True, 'changed': False}}),
            _task('Facts by hand', {h: {'action': 'ansible.builtin.setup', 'changed': False} for h in ('p',)}),
            _task('Controller only, with the prefix', {h: {'action': 'ansible.builtin.set_fact'} for h in ('p', 'r1', 'r2')}),
            _task('Controller only, short names', {'p': {'action': 'assert'}, 'r1': {'action': 'debug'}, 'r2': {'action': 'include_tasks'}}),
            _task('More controller only', {'p': {'action': 'ansible.builtin.include_role'}, 'r1': {'action': 'ansible.builtin.validate_argument_spec'},
                                           'r2': {'action': 'ansible.builtin.meta'}}),
            _task('Failed still ran', {'p': {'action': 'ansible.builtin.shell', 'failed': True}}),
            _task('Unreachable did not', {'r2': {'action': 'ansible.builtin.shell', 'unreachable': True}}),
            # a loop: one per item that ran; the task-level result is not counted on top
            _task('Loop', {'p': {'action': 'community.postgresql.postgresql_slot', 'changed': False,
                                 'results': [{'item': 'a', 'changed': False}, {'item': 'b', 'changed': True},
                                             {'item': 'c', 'skipped': True, 'changed': False}]},
                           'r1': {'action': 'community.postgresql.postgresql_slot', 'skipped': True, 'changed': False,
                                  'results': [{'item': 'a', 'skipped': True}, {'item': 'b', 'skipped': True}]},
                           'r2': {'action': 'community.postgresql.postgresql_slot', 'skipped': True, 'changed': False, 'results': []}}),
            # delegated: to the controller (not counted), to another host of the run (counted there)
            _task('Delegated to localhost', {h: {'action': 'ansible.builtin.uri', '_ansible_delegated_vars': TO_LOCALHOST}
                                             for h in ('p', 'r1', 'r2')}),
            _task('Delegated to 127.0.0.1', {'p': {'action': 'ansible.builtin.command', '_ansible_delegated_vars': TO_LOOPBACK}}),
            _task('Delegated to r1', {'r2': {'action': 'ansible.builtin.lineinfile', '_ansible_delegated_vars': TO_R1}}),
            _task('Delegated loop, per item', {'p': {'action': 'ansible.builtin.command', 'results': [
                {'item': 1, '_ansible_delegated_vars': TO_LOCALHOST}, {'item': 2, '_ansible_delegated_vars': TO_R1},
                {'item': 3, 'skipped': True, '_ansible_delegated_vars': TO_R1}]}}),
            _task('Controller-only loop', {'p': {'action': 'ansible.builtin.set_fact', 'results': [{'item': 1}, {'item': 2}]}}),
        ]),
    ],
    'stats': {h: {'ok': 9, 'changed': 1 if h == 'p' else 0} for h in ('p', 'r1', 'r2', 'localhost')},
}


def test_remote_executions_per_host():
    # p: facts, command, setup, failed shell, loop items a and b = 6
    # r1: facts, command, r2's lineinfile delegated to r1, p's loop item 2 delegated to r1 = 4
    # r2: facts only (its command skipped, its shell unreachable, its lineinfile ran on r1) = 1
    assert bench.remote_executions(DATA) == {'p': 6, 'r1': 4, 'r2': 1}


def test_controller_only_actions_with_and_without_prefix():
    for name in ('set_fact', 'assert', 'debug', 'fail', 'include_tasks', 'include_role', 'import_tasks', 'import_role', 'meta',
                 'add_host', 'group_by', 'include_vars', 'set_stats', 'pause', 'validate_argument_spec'):
        assert name in bench.CONTROLLER_ACTIONS
        assert f'ansible.builtin.{name}' in bench.CONTROLLER_ACTIONS
    for name in ('gather_facts', 'setup', 'ansible.builtin.setup', 'ansible.builtin.command', 'ansible.builtin.template'):
        assert name not in bench.CONTROLLER_ACTIONS


def test_empty_and_changed_per_host():
    assert not bench.remote_executions({})
    assert bench.changed_per_host(DATA['stats']) == {'localhost': 0, 'p': 1, 'r1': 0, 'r2': 0}


def test_phase_drift_is_known():
    assert bench.PHASES.index('drift') == bench.PHASES.index('rerun') + 1
    assert set(bench.DRIFTS) == {'setting', 'pg_hba line', 'proxy allow list', 'settings file mode', 'replication slot', 'SSL key mode'}
