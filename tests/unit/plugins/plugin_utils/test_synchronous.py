# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catmaid_replication_synchronous -> synchronous_standby_names (issue 16 item 3)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.catmaid.replication.plugins.plugin_utils._topology import (
    TopologyError, resolve, synchronous_standby_names)

REPO = Path(__file__).resolve().parents[4]
DEFAULTS = {k: v for k, v in yaml.safe_load((REPO / 'roles/catmaid_replication/defaults/main.yml').read_text()).items()
            if 'password' not in k}
NODES = ['db-1', 'db-2', 'db-3']


def test_off_by_default_and_for_null_false_or_empty():
    assert DEFAULTS['catmaid_replication_synchronous'] is None
    for value in (None, '', False, {}):
        assert synchronous_standby_names(value, NODES) == ''


def test_every_node_is_named_by_its_application_name_the_primary_too():
    assert synchronous_standby_names({'method': 'ANY', 'count': 1}, NODES) == 'ANY 1 ("db-1", "db-2", "db-3")'
    assert synchronous_standby_names({'method': 'first', 'count': '2'}, NODES) == 'FIRST 2 ("db-1", "db-2", "db-3")'
    assert synchronous_standby_names({}, NODES) == ''
    assert synchronous_standby_names({'count': 1}, NODES).startswith('ANY 1 (')


@pytest.mark.parametrize('value, words', [
    ({'method': 'ALL', 'count': 1}, 'method must be ANY (quorum) or FIRST'),
    ({'method': 'ANY', 'count': 0}, 'count must be 1 to 2'),
    ({'method': 'ANY', 'count': 3}, 'every commit would wait forever'),
    ({'method': 'ANY', 'count': 'one'}, 'count must be a whole number'),
    ({'method': 'ANY', 'count': True}, 'count must be a whole number'),
    ({'method': 'ANY', 'count': 1, 'standbys': ['db-2']}, 'takes only method and count (got standbys)'),
    ('ANY 1 (db-2)', 'must be a mapping such as'),
])
def test_bad_values_are_refused_saying_what_to_fix(value, words):
    with pytest.raises(TopologyError, match='Nothing was changed') as err:
        synchronous_standby_names(value, NODES)
    assert words in str(err.value)


@pytest.mark.parametrize('name', ['x' * 64, 'a"b', "a\\'", 'a\\b', 'a\nb', 'a b', 'dé', ''])
def test_a_name_that_cannot_be_an_application_name_is_refused(name):
    # A backslash, quote or line end would break or inject into the configuration line; PostgreSQL turns
    # non-ASCII bytes of an application name into '?' and keeps 63 bytes: such a name would never match.
    with pytest.raises(TopologyError, match='must be 1 to 63 of the characters A-Z a-z 0-9 . _ -'):
        synchronous_standby_names({'count': 1}, ['p', name])


def test_the_topology_returns_it_for_every_node():
    def topo(settings):
        return resolve({**DEFAULTS, **settings}, {'primary': ['p'], 'replicas': ['r1', 'r2']},
                       lambda h: {'catmaid_replication_password': 'pw'}, 'p',
                       lambda h: {'p': '192.0.2.1', 'r1': '192.0.2.2', 'r2': '192.0.2.3'}[h])
    assert topo({})['synchronous_standby_names'] == ''
    assert topo({'catmaid_replication_synchronous': {'method': 'ANY', 'count': 2}})['synchronous_standby_names'] == \
        'ANY 2 ("p", "r1", "r2")'
    with pytest.raises(TopologyError, match='count must be 1 to 2'):
        topo({'catmaid_replication_synchronous': {'method': 'ANY', 'count': 3}})
