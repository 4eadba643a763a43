# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection helper shared by the modules of catmaid.replication.

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

PSYCOPG2_IMPORT_ERROR: str | None
try:
    import psycopg2
    import psycopg2.extras
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the managed host
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib


def connection_argument_spec() -> dict[str, dict[str, Any]]:
    """Argument spec of the options in the ``catmaid.replication.connection`` doc fragment."""
    return dict(
        login_user=dict(type='str', default='postgres'),
        login_password=dict(type='str', no_log=True),
        login_host=dict(type='str', default=''),
        login_unix_socket=dict(type='str', default='/var/run/postgresql'),
        login_port=dict(type='int', default=5432),
        login_db=dict(type='str', default='postgres'),
        connect_timeout=dict(type='int', default=10),
    )


def ensure_psycopg2(module) -> None:
    """Fail with installation advice when psycopg2 is missing on the managed host."""
    if PSYCOPG2_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib('psycopg2', reason='to talk to PostgreSQL')
                         + ' On Debian: apt-get install python3-psycopg2.',
                         exception=PSYCOPG2_IMPORT_ERROR)


def connect_params(params: dict[str, Any]) -> dict[str, Any]:
    """Turn the module's connection options into psycopg2 keyword arguments."""
    kw: dict[str, Any] = dict(
        user=params['login_user'],
        dbname=params['login_db'],
        port=params['login_port'],
        connect_timeout=params['connect_timeout'],
        host=params['login_host'] or params['login_unix_socket'],
        application_name='catmaid.replication',
        # The modules connect as superusers and name only pg_catalog's objects: no function, aggregate or
        # operator a database owner created in another schema can stand in for one of them. libpq reads
        # PGOPTIONS only when no options are given: keep what the task's environment sets there (e.g.
        # synchronous_commit=local), the search path last so that it wins.
        options=' '.join(filter(None, [os.environ.get('PGOPTIONS', '').strip(), '-c search_path=pg_catalog'])),
    )
    if params.get('login_password'):
        kw['password'] = params['login_password']
    return kw


def connect(module, autocommit: bool = True):
    """Connect to the server named by the module's connection options.

    Fails the module with a message that names the target (never the password).
    """
    ensure_psycopg2(module)
    if module.params.get('login_password') == '':
        module.fail_json(msg='login_password must not be empty: libpq would take an empty password for none '
                             'and use ~/.pgpass or PGPASSWORD instead; give the password, or omit the option '
                             'to use those on purpose.')
    kw = connect_params(module.params)
    try:
        conn = psycopg2.connect(**kw)
    except psycopg2.Error as exc:
        target = kw['host'] if kw['host'].startswith('/') else f"{kw['host']}:{kw['port']}"
        module.fail_json(msg=f"Could not connect to PostgreSQL as {kw['user']!r} on {target} "
                             f"(database {kw['dbname']!r}): {str(exc).strip()}")
    conn.autocommit = autocommit
    return conn


def fetch_one(conn, query: str, args: Any = None) -> dict[str, Any] | None:
    """Run a query and return its first row as a dict (or None)."""
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(query, args)
        row = cur.fetchone()
        return dict(row) if row is not None else None


def fetch_all(conn, query: str, args: Any = None) -> list[dict[str, Any]]:
    """Run a query and return every row as a dict."""
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(query, args)
        return [dict(r) for r in cur.fetchall()]


def server_info(conn) -> dict[str, Any]:
    """Return the server's major version and whether it is in recovery (a standby)."""
    row = fetch_one(conn, "SELECT current_setting('server_version_num')::int AS num, "
                          "pg_is_in_recovery() AS in_recovery")
    if row is None:
        raise RuntimeError('the server returned no row for its version')
    return dict(version_num=row['num'], major=row['num'] // 10000, in_recovery=row['in_recovery'])
