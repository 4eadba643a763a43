# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the replication role must look like, shared by pg_replication_role (which changes it) and
node_info (which only tells whether it would).

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from ansible_collections.catmaid.replication.plugins.module_utils._scram import verify


class Change(NamedTuple):
    """One statement to run: CREATE/ALTER/DROP ROLE with its options."""

    verb: str                        # 'CREATE', 'ALTER' or 'DROP'
    options: tuple[str, ...] = ()    # fixed keywords, e.g. ('REPLICATION', 'CONNECTION LIMIT 5')
    set_password: bool = False


def plan(row: Optional[dict[str, Any]], state: str, password: Optional[str], conn_limit: Optional[int],
         password_readable: bool = True) -> list[Change]:
    """The statements that bring the role from ``row`` (None: absent) to the wanted state.

    ``conn_limit`` None leaves an existing role's limit alone (a new role gets none).
    """
    if state == 'absent':
        return [Change('DROP')] if row is not None else []
    limit = f'CONNECTION LIMIT {int(conn_limit)}' if conn_limit is not None else None
    if row is None:
        return [Change('CREATE', ('REPLICATION', 'LOGIN') + ((limit,) if limit else ()), password is not None)]
    options = []
    if not row['rolreplication']:
        options.append('REPLICATION')
    if not row['rolcanlogin']:
        options.append('LOGIN')
    if limit and int(row['rolconnlimit']) != int(conn_limit):
        options.append(limit)
    set_password = password is not None and not (password_readable and verify(password, row['rolpassword']))
    if options or set_password:
        return [Change('ALTER', tuple(options), set_password)]
    return []
