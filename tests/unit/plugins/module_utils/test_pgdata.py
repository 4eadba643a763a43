# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PG_VERSION parsing: a version, or a clear error naming the file (issue 14: it was a traceback)."""

from __future__ import annotations

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils._pgdata import lock_file_pid, parse_pg_version


@pytest.mark.parametrize('text, major', [('15\n', 15), ('9.6\n', 9), ('10', 10), (' 17 \n', 17)])
def test_parse_pg_version(text, major):
    assert parse_pg_version(text) == major


@pytest.mark.parametrize('text', ['fifteen\n', '', '\n', '15a', '-1', '1' * 40, 'x.15'])
def test_parse_pg_version_rejects_with_the_file_named(text):
    with pytest.raises(ValueError, match='/d/PG_VERSION holds'):
        parse_pg_version(text, '/d/PG_VERSION')


@pytest.mark.parametrize('text, pid', [
    (None, None), ('', None), ('4242', None), ('42', None), ('\n', None), ('abc\n', None), ('0\n', None),
    ('4242\n', 4242), ('4242\n/var/lib/postgresql/15/main\n1700000000\n5432\n', 4242),
])
def test_only_a_complete_postmaster_pid_names_a_pid(text, pid):
    """An empty or partly written postmaster.pid (a postmaster between creating and writing it) has no pid."""
    assert lock_file_pid(text) == pid
