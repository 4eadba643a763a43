# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every SQL the roles and playbooks send as the postgres superuser runs with search_path=pg_catalog.

A database's owner (on PostgreSQL 14 and older any login role, through the public schema of the
postgres database) can create an aggregate or function in another schema that matches the call's
argument types better than pg_catalog's own: public.json_agg(text) is chosen over the polymorphic
pg_catalog.json_agg(anyelement), and runs as the superuser that called it. The collection's own
modules pin the search path themselves (module_utils/_pg.connect_params); community.postgresql's
modules and psql take it from PGOPTIONS in the task's environment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
# Every task file of the roles (tasks and handlers, subdirectories too) and every playbook.
FILES = sorted(path for pattern in ('*/tasks/**/*.y*ml', '*/handlers/**/*.y*ml') for path in (REPO / 'roles').glob(pattern)) \
    + sorted((REPO / 'playbooks').glob('**/*.y*ml'))
COMMANDS = ('command', 'shell', 'script', 'raw')


def _tasks(items: Any, environment: dict | None = None) -> Iterator[dict]:
    """Every task, with the environment of the blocks around it merged under its own."""
    for item in items or []:
        if not isinstance(item, dict):
            continue
        own = item.get('environment')
        # A task's own environment replaces the blocks' when it is not a mapping (a Jinja string): then only it counts.
        env = {**(environment or {}), **own} if isinstance(own, dict) else (own if own is not None else (environment or {}))
        if any(key in item for key in ('block', 'rescue', 'always')):
            for key in ('block', 'rescue', 'always'):
                yield from _tasks(item.get(key), env)
            continue
        yield {**item, 'environment': env} if env else item


def _all_tasks(path: Path) -> Iterator[dict]:
    data = yaml.safe_load(path.read_text()) or []
    if not isinstance(data, list):          # a vars file
        return
    if data and isinstance(data[0], dict) and any(k == 'hosts' or k.endswith('import_playbook') for k in data[0]):   # a playbook
        for play in data:
            for key in ('pre_tasks', 'tasks', 'post_tasks', 'handlers'):
                yield from _tasks(play.get(key), play.get('environment') if isinstance(play.get('environment'), dict) else None)
    else:
        yield from _tasks(data)


def _module(task: dict) -> str:
    """The task's module, short name (postgresql_query for community.postgresql.postgresql_query or postgresql_query)."""
    for key in task:
        if key.split('.')[-1].startswith('postgresql_') or key.split('.')[-1] in COMMANDS:
            return key.split('.')[-1]
    return ''


def _runs_sql(task: dict) -> bool:
    module = _module(task)
    if module.startswith('postgresql_'):
        return True
    if module not in COMMANDS:
        return False
    text = yaml.safe_dump({k: v for k, v in task.items() if k.split('.')[-1] in COMMANDS or k == 'vars'})
    return bool(re.search(r'(^|[/\s\'"-])psql([\s\'"]|$)', text))


def _cases() -> list[tuple[str, str, dict]]:
    return [(str(path.relative_to(REPO)), task.get('name', '?'), task)
            for path in FILES for task in _all_tasks(path) if _runs_sql(task)]


def test_the_sql_tasks_are_found() -> None:
    """The walk finds the tasks (postgresql_query, postgresql_slot, psql): a test that finds none proves nothing."""
    cases = _cases()
    assert len(cases) >= 35
    assert any('psql' in yaml.safe_dump(t.get('ansible.builtin.command')) for _f, _n, t in cases)
    assert any('community.postgresql.postgresql_slot' in t for _f, _n, t in cases)


@pytest.mark.parametrize('where, name, task', _cases(), ids=lambda v: v if isinstance(v, str) else '')
def test_every_sql_task_pins_the_search_path(where: str, name: str, task: dict) -> None:
    args = next(v for k, v in task.items() if k.split('.')[-1] == _module(task))
    for given in (args, task.get('args')):
        params = (given or {}).get('connect_params') if isinstance(given, dict) else None
        assert not params, f'{where}: task {name!r} gives connect_params, and libpq may then ignore PGOPTIONS ({params!r})'
    env = task.get('environment')
    options = str(env.get('PGOPTIONS', '')) if isinstance(env, dict) else ''
    assert re.search(r'(^|\s)-c search_path=pg_catalog(\s|$)', options), (
        f'{where}: task {name!r} sends SQL as a superuser without PGOPTIONS "-c search_path=pg_catalog" '
        f'in its environment (environment: {task.get("environment")!r})')
    # Given last, so that nothing after it in PGOPTIONS sets the search path again.
    assert options.rstrip().endswith('-c search_path=pg_catalog')


def test_the_unqualified_aggregates_are_gone() -> None:
    """json_agg / string_agg / array_agg are named with their schema wherever the roles send SQL."""
    hits = [f'{path.relative_to(REPO)}:{n}' for path in FILES
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r'(?<![.\w])(json_agg|string_agg|array_agg|jsonb_agg)\s*\(', line)]
    assert hits == []


def test_the_detection_sees_short_names_commands_and_block_environments() -> None:
    """Review 15 R3: a future task written with a short module name, psql through a shell, or its pin on the
    block around it, is still classified (and a pin on the block counts)."""
    assert _runs_sql({'postgresql_query': {'query': 'SELECT 1'}})
    assert _runs_sql({'community.postgresql.postgresql_slot': {'name': 's'}})
    assert _runs_sql({'shell': 'psql -X -c "SELECT 1"'})
    assert _runs_sql({'ansible.builtin.command': {'argv': ['/usr/lib/postgresql/15/bin/psql', '-X']}})
    assert not _runs_sql({'ansible.builtin.command': {'argv': ['pg_lsclusters', '--json']}})
    block = [{'name': 'b', 'environment': {'PGOPTIONS': '-c search_path=pg_catalog'},
              'block': [{'name': 't', 'postgresql_query': {'query': 'SELECT 1'}}]}]
    (task,) = list(_tasks(block))
    assert task['environment']['PGOPTIONS'] == '-c search_path=pg_catalog'
