# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One wiring: each shared default defined once, documented where it is read, the README's playbook
the one Molecule runs, and no role or playbook mapping the shared settings by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ROLES = REPO / 'roles'
DEFAULTS = yaml.safe_load((ROLES / 'catmaid_replication' / 'defaults' / 'main.yml').read_text())


def _specs(role: str) -> dict:
    return yaml.safe_load((ROLES / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']


def test_readme_playbook_is_the_one_molecule_runs() -> None:
    readme = (REPO / 'README.md').read_text()
    section = readme.split('## Use the roles in your own playbook', 1)[1]
    block = re.search(r'```yaml\n(.*?)```', section, re.S).group(1)
    assert (REPO / 'molecule' / 'roles' / 'converge.yml').read_text() == block


@pytest.mark.parametrize('role', sorted(p.name for p in ROLES.iterdir() if (p / 'meta' / 'argument_specs.yml').exists()))
def test_documented_defaults_agree_with_the_one_definition(role: str) -> None:
    """A catmaid_replication_* default repeated in a role's argument_specs equals common's defaults."""
    checked = 0
    for entry, spec in _specs(role).items():
        for name, option in (spec.get('options') or {}).items():
            if not name.startswith('catmaid_replication_'):
                continue
            if name in DEFAULTS:
                assert 'default' in option, f'{role}/{entry}: {name} documents no default ({DEFAULTS[name]!r})'
                assert option['default'] == DEFAULTS[name], f'{role}/{entry}: {name} {option["default"]!r} != {DEFAULTS[name]!r}'
                checked += 1
            else:
                assert 'default' not in option, f'{role}/{entry}: {name} has no default in roles/common, but documents one'
    assert role == 'catmaid_readonly' or checked > 0


def test_every_shared_default_is_documented_by_common() -> None:
    options = _specs('catmaid_replication')['main']['options']
    assert sorted(set(DEFAULTS) - set(options)) == []


def test_shared_defaults_are_written_once() -> None:
    """The values the guide's steps turn on appear as defaults only in roles/catmaid_replication/defaults/main.yml."""
    pattern = re.compile(r"default\((7432|10240|1024|'replication_user'|5432)\)")
    hits = [f'{p.relative_to(REPO)}:{n}' for p in list((REPO / 'playbooks').rglob('*.yml')) + list(ROLES.rglob('*.yml'))
            for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
    rule = re.compile(r"regex_replace\('\[\^a-z0-9_\]'")
    hits = [str(p.relative_to(REPO)) for p in list((REPO / 'playbooks').rglob('*.yml')) + list(ROLES.rglob('*.yml'))
            if rule.search(p.read_text())]
    assert hits == [], 'the slot-name rule lives in plugins/plugin_utils/_topology.py only'


def test_configure_tasks_map_no_variables() -> None:
    for name in ('configure_primary.yml', 'configure_replica.yml'):
        text = (REPO / 'playbooks' / 'tasks' / name).read_text()
        assert not re.search(r'^\s+(primary|replica|nginx_stream)_\w+:', text, re.M), name


def test_parallel_clones_fit_in_the_spare_senders() -> None:
    """Adding replicas restarts nobody: clones at once (two senders each) fit in the default's spare senders."""
    from ansible_collections.catmaid.replication.plugins.plugin_utils import _topology

    def find(tasks):
        for task in tasks or []:
            if 'catmaid.replication.pg_basebackup' in task and task.get('name', '').startswith('Clone'):
                yield task
            yield from find(task.get('block'))

    clones = list(find(yaml.safe_load((ROLES / 'replica' / 'tasks' / 'standby.yml').read_text())))
    assert len(clones) == 1
    throttle = clones[0].get('throttle')
    # Each clone holds two senders: the clones at once fit in the spare even with the old (smaller) value in force.
    assert isinstance(throttle, int) and 1 <= throttle and 2 * throttle <= _topology.SENDERS_SPARE, throttle
    # 21 replicas: the default is still the minimum, so growing to them changes no setting read at start.
    assert max(_topology.SENDERS_MIN, 22 + _topology.SENDERS_SPARE) == _topology.SENDERS_MIN


def _tasks_with_named_args(node):
    if isinstance(node, dict):
        if isinstance(node.get('named_args'), dict):
            yield node
        for value in node.values():
            yield from _tasks_with_named_args(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tasks_with_named_args(value)


def test_no_query_gets_a_list_argument() -> None:
    """community.postgresql.postgresql_query sends a list as the text "{'a', 'b'}", which matches nothing
    (the primary's lost-slot query never found a slot that way): lists go as one joined string."""
    offenders = []
    for path in sorted(list(ROLES.rglob('*.yml')) + list((REPO / 'playbooks').rglob('*.yml')) + list((REPO / 'molecule').rglob('*.yml'))):
        for task in _tasks_with_named_args(yaml.safe_load(path.read_text())):
            for name, value in task['named_args'].items():
                text = value if isinstance(value, str) else ''
                templated_list = (text.strip().startswith('{{') and '| join' not in text
                                  and re.search(r'\.(slots|replicas|names|hosts)\s*}}', text))
                if isinstance(value, list) or templated_list:
                    offenders.append(f'{path.relative_to(REPO)}: {name}')
    assert not offenders, offenders
