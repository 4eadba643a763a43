# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin catmaid.replication.topology: the replication set, derived on the controller.

Runs nothing on the host. See plugins/modules/topology.py for the documentation and
plugins/plugin_utils/_topology.py for the logic and the inventory checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

from ansible.plugins.action import ActionBase

from ansible_collections.catmaid.replication.plugins.plugin_utils._topology import TopologyError, resolve


_MISSING = object()


class _Rendered(Mapping):
    """A host's variables, each rendered on access, once (the derivation asks for the same ones many
    times); one that cannot be rendered here (it uses a play variable, a role default or a fact this
    host does not have yet) counts as not given, so the host's own value is compared only where it
    can be known."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner if inner is not None else {}
        self._memo: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self._memo.get(key, None)
        if value is None and key not in self._memo:
            try:
                value = self._inner[key]
            except Exception:  # pylint: disable=broad-exception-caught
                value = _MISSING
            self._memo[key] = value
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._inner)

    def __len__(self) -> int:
        return len(self._inner)


class ActionModule(ActionBase):
    """Check the inventory and set the fact catmaid_replication_topology."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        settings = dict(args.get('settings') or {})
        unknown = sorted(set(args) - {'settings', 'primary'})
        if unknown:
            return {**result, 'failed': True, 'msg': f'Unsupported option(s): {", ".join(unknown)}.'}
        hostvars = task_vars.get('hostvars', {})
        me = task_vars.get('inventory_hostname', '')

        # hostvars[host] computes all of that host's variables each time it is asked (VariableManager.get_vars):
        # once per host and task here, not once per variable the derivation reads (it reads dozens for every
        # host, in every task, on every host: quadratic in the hosts, the most of a run with 20 replicas).
        rendered: dict[str, _Rendered] = {}

        def host_vars(host: str) -> Any:
            if host not in rendered:
                rendered[host] = _Rendered(hostvars.get(host))
            return rendered[host]

        def facts_address(host: str) -> str:
            own = host_vars(host)
            facts = own.get('ansible_facts') or {}
            ipv4 = facts.get('default_ipv4') or own.get('ansible_default_ipv4') or {}
            return str(ipv4.get('address') or '')

        try:
            topology = resolve(settings, task_vars.get('groups', {}), host_vars, me, facts_address,
                               primary=str(args.get('primary') or ''))
        except TopologyError as exc:
            return {**result, 'failed': True, 'msg': str(exc)}
        return {**result, 'changed': False, 'ansible_facts': {'catmaid_replication_topology': topology}}
