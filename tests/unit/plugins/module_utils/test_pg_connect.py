# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_pg.connect_params: the search path pinned, the task's PGOPTIONS kept (review 14 N2)."""

from __future__ import annotations

from ansible_collections.catmaid.replication.plugins.module_utils import _pg

PARAMS = dict(login_user='postgres', login_db='postgres', login_port=5432, connect_timeout=10, login_host='',
              login_unix_socket='/var/run/postgresql', login_password=None)


def test_the_search_path_is_pinned_without_pgoptions(monkeypatch):
    monkeypatch.delenv('PGOPTIONS', raising=False)
    assert _pg.connect_params(PARAMS)['options'] == '-c search_path=pg_catalog'


def test_pgoptions_of_the_task_are_kept_and_the_search_path_wins(monkeypatch):
    """libpq ignores PGOPTIONS once options are given: a task's synchronous_commit=local (the replication
    role's change must not wait for a synchronous standby) would be lost."""
    monkeypatch.setenv('PGOPTIONS', ' -c synchronous_commit=local -c search_path=public ')
    options = _pg.connect_params(PARAMS)['options']
    assert options == '-c synchronous_commit=local -c search_path=public -c search_path=pg_catalog'
    assert options.endswith('-c search_path=pg_catalog')      # the last one given is the one in force
