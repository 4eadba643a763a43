# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin catmaid.replication.topology reads each host's variables once per task.

Ansible computes all of a host's variables each time ``hostvars[host]`` is asked for
(VariableManager.get_vars); the derivation reads dozens of variables of every host, so asking once
per variable made each task quadratic in the hosts: 8-12 s per task with 21 hosts (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from ansible_collections.catmaid.replication.plugins.action.topology import ActionModule, _Rendered

REPO = Path(__file__).resolve().parents[4]
DEFAULTS = yaml.safe_load((REPO / 'roles/catmaid_replication/defaults/main.yml').read_text())


class CountingHostVars(dict):
    """hostvars: counts how often each host's variables are computed."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.asked: dict[str, int] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        self.asked[key] = self.asked.get(key, 0) + 1
        return super().get(key, default)


class Failing(dict):
    """A host whose variable cannot be rendered here raises on access, as Ansible's templating does."""

    def __getitem__(self, key: str) -> Any:
        if key == 'catmaid_replication_address':
            raise RuntimeError('undefined variable in the template')
        return super().__getitem__(key)


def _run(hostvars: CountingHostVars, groups: dict[str, list[str]], me: str) -> dict[str, Any]:
    task = mock.MagicMock()
    task.args = {'settings': {**DEFAULTS, 'catmaid_replication_password': 'pw'}}
    task.async_val = 0
    action = ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    with mock.patch('ansible.plugins.action.ActionBase.run', return_value={}):
        return action.run(task_vars={'hostvars': hostvars, 'groups': groups, 'inventory_hostname': me})


def test_each_hosts_variables_are_computed_once_per_task() -> None:
    replicas = [f'r{i}' for i in range(1, 21)]
    hostvars = CountingHostVars({h: {'catmaid_replication_password': 'pw',
                                     'ansible_default_ipv4': {'address': f'192.0.2.{n + 1}'}}
                                 for n, h in enumerate(['p'] + replicas)})
    result = _run(hostvars, {'primary': ['p'], 'replicas': replicas}, 'r3')
    assert not result.get('failed'), result.get('msg')
    topology = result['ansible_facts']['catmaid_replication_topology']
    assert topology['role'] == 'replica' and topology['replicas'] == replicas
    assert topology['address_of']['r20'] == '192.0.2.21'
    assert set(hostvars.asked) == {'p', *replicas}
    assert max(hostvars.asked.values()) == 1, hostvars.asked


def test_a_variable_that_cannot_be_rendered_counts_as_not_given_every_time() -> None:
    rendered = _Rendered(Failing({'catmaid_replication_address': '{{ undefined }}', 'x': 1}))
    assert 'catmaid_replication_address' not in rendered
    assert rendered.get('catmaid_replication_address', 'default') == 'default'     # asked again: the memo's miss
    assert 'catmaid_replication_address' not in rendered
    assert rendered['x'] == 1 and rendered.get('y') is None and rendered.get('x') == 1
    none = _Rendered({'n': None})
    assert none['n'] is None and 'n' in none
