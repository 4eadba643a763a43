# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PG_VERSION parsing: a version, or a clear error naming the file (issue 14: it was a traceback)."""

from __future__ import annotations

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils._pgdata import parse_pg_version


@pytest.mark.parametrize('text, major', [('15\n', 15), ('9.6\n', 9), ('10', 10), (' 17 \n', 17)])
def test_parse_pg_version(text, major):
    assert parse_pg_version(text) == major


@pytest.mark.parametrize('text', ['fifteen\n', '', '\n', '15a', '-1', '1' * 40, 'x.15'])
def test_parse_pg_version_rejects_with_the_file_named(text):
    with pytest.raises(ValueError, match='/d/PG_VERSION holds'):
        parse_pg_version(text, '/d/PG_VERSION')
