#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_replication_role
short_description: Manage the dedicated PostgreSQL streaming replication role
version_added: 0.1.0
description:
  - Ensures that the role standbys use for physical streaming replication exists with the
    C(REPLICATION) and C(LOGIN) attributes, the wanted connection limit and a
    C(scram-sha-256) password, or that it is absent.
  - The password never reaches the server in plain text. The module computes the
    SCRAM-SHA-256 verifier itself (RFC 5802 and RFC 7677, PostgreSQL's format, the server's
    C(scram_iterations) on PostgreSQL 16 and later, else 4096 iterations, a random 16-byte salt) and sends only that, so neither the server nor its log
    sees the password, whatever C(log_statement) says.
  - A stored verifier is checked against O(password) by recomputing it with the stored salt and
    iteration count, so an unchanged password reports no change. A different password, an
    C(md5) hash, a missing C(REPLICATION) or C(LOGIN) attribute and a different connection
    limit are corrected.
  - On a standby (a server in recovery) the module only reads. It succeeds when nothing would
    change and fails otherwise, because roles are managed on the primary and reach the standbys
    through replication.
options:
  name:
    description:
      - Name of the replication role, at most 63 bytes (PostgreSQL's identifier length).
    type: str
    required: true
  password:
    description:
      - Password of the role. It is normalised with SASLprep as PostgreSQL and libpq do; when it
        is not valid UTF-8 or contains characters SASLprep prohibits, its raw bytes are used,
        again as PostgreSQL does, so clients can always log in with the same string.
      - When omitted, an existing role keeps its password (or its lack of one), even an C(md5)
        hash (the module warns about that); a new role is created without a password and
        cannot log in with password authentication until one is set.
      - Must not be empty.
    type: str
  state:
    description:
      - V(present) creates or corrects the role; V(absent) drops it.
      - V(absent) never forces. It fails, and says what to do, while the role still owns
        objects or holds privileges in any database, or while sessions of the role (such as a
        standby's WAL receiver) are connected.
    type: str
    choices: [absent, present]
    default: present
  conn_limit:
    description:
      - How many concurrent connections the role may open; V(-1) means no limit.
      - Every streaming standby holds one connection, and C(pg_basebackup -X stream) needs two
        while it runs.
      - When not given, the limit of an existing role is left as it is (for example one a DBA
        set) and a new role gets none (V(-1)).
    type: int
extends_documentation_fragment:
  - catmaid.replication.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the role's attributes before and after, never the password or its verifier.
  platform:
    platforms: posix
notes:
  - O(login_user) must be a superuser. Reading stored verifiers from C(pg_authid) needs one, and
    up to PostgreSQL 15 so does creating a role with C(REPLICATION).
  - With a role that only has C(CREATEROLE) (and, from PostgreSQL 16, C(REPLICATION) itself),
    the module cannot read C(pg_authid). It then warns and sets O(password), when given, on
    every run (reported as a change).
  - The SQL sent (and logged with C(log_statement=all)) contains the verifier, not the password.
    A verifier cannot be used to log in, but it allows an offline guessing attack, so choose a
    long random password.
  - Its changes commit with C(synchronous_commit=local), so they never wait for a synchronous standby
    (with C(synchronous_standby_names) set and no such standby streaming they would wait for ever).
seealso:
  - name: CREATE ROLE
    description: PostgreSQL's reference of role attributes.
    link: https://www.postgresql.org/docs/current/sql-createrole.html
  - name: SCRAM-SHA-256 authentication
    description: How PostgreSQL stores and checks SCRAM-SHA-256 passwords.
    link: https://www.postgresql.org/docs/current/auth-password.html
author:
  - catmaid.replication developers (@catmaid)
"""

EXAMPLES = r"""
- name: Ensure the replication role exists with a scram-sha-256 password
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_role:
    name: replicator
    password: "{{ vault_replication_password }}"
    conn_limit: 5

- name: Ensure the role has REPLICATION and LOGIN, keeping whatever password it has
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_role:
    name: replicator

- name: Drop the replication role once no standby uses it
  become: true
  become_user: postgres
  catmaid.replication.pg_replication_role:
    name: replicator
    state: absent

- name: Manage the role on a primary reached over TCP
  catmaid.replication.pg_replication_role:
    name: replicator
    password: "{{ vault_replication_password }}"
    login_host: 127.0.0.1
    login_user: postgres
    login_password: "{{ vault_postgres_password }}"
"""

RETURN = r"""
queries:
  description:
    - The statements run, or that would run in check mode, with the password masked.
  returned: always
  type: list
  elements: str
  sample: ["ALTER ROLE \"replicator\" WITH LOGIN PASSWORD '********'"]
role:
  description:
    - The role's attributes after the task (predicted in check mode).
  returned: always
  type: dict
  contains:
    name:
      description: Name of the role.
      type: str
      returned: always
      sample: replicator
    exists:
      description: Whether the role exists.
      type: bool
      returned: always
      sample: true
    replication:
      description: Whether the role has the C(REPLICATION) attribute.
      type: bool
      returned: always
      sample: true
    login:
      description: Whether the role has the C(LOGIN) attribute.
      type: bool
      returned: always
      sample: true
    conn_limit:
      description: The role's connection limit (V(-1) is unlimited); null when the role is absent.
      type: int
      returned: always
      sample: -1
    password_type:
      description:
        - How the password is stored, V(scram-sha-256) or V(md5); null without a password;
          V(unknown) when C(pg_authid) cannot be read or holds anything else.
      type: str
      returned: always
      sample: scram-sha-256
"""

from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.catmaid.replication.plugins.module_utils import _pg
from ansible_collections.catmaid.replication.plugins.module_utils._role import Change, plan  # pylint: disable=unused-import
from ansible_collections.catmaid.replication.plugins.module_utils._scram import (
    DEFAULT_ITERATIONS,
    build_verifier,
    password_type,
)

MASK = "'********'"

ROLE_FROM_AUTHID = ("SELECT oid, rolname, rolsuper, rolreplication, rolcanlogin, rolconnlimit, rolpassword "
                    "FROM pg_catalog.pg_authid WHERE rolname = %s")
ROLE_FROM_ROLES = ("SELECT oid, rolname, rolsuper, rolreplication, rolcanlogin, rolconnlimit, NULL::text AS rolpassword "
                   "FROM pg_catalog.pg_roles WHERE rolname = %s")
SESSIONS = ("SELECT pid, backend_type, application_name, client_addr::text AS client_addr "
            "FROM pg_catalog.pg_stat_activity WHERE usename = %s AND pid <> pg_catalog.pg_backend_pid() "
            "ORDER BY pid")
DEPENDENCIES = ("SELECT coalesce(d.datname, '(cluster-wide)') AS place, count(*) AS objects "
                "FROM pg_catalog.pg_shdepend s LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid "
                "WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND s.refobjid = %s AND s.deptype <> 'p' "
                "GROUP BY 1 ORDER BY 1")


# -- pure logic (unit-tested) ---------------------------------------------------------------
def quote_ident(name: str) -> str:
    """PostgreSQL's always-quoted identifier, as psycopg2.sql.Identifier writes it."""
    return '"' + name.replace('"', '""') + '"'


def describe(name: str, row: Optional[dict[str, Any]], password_readable: bool = True) -> dict[str, Any]:
    """The attributes shown in the diff and returned as ``role``; never the verifier."""
    if row is None:
        return dict(name=name, exists=False, replication=False, login=False, conn_limit=None, password_type=None)
    return dict(name=name, exists=True, replication=bool(row['rolreplication']), login=bool(row['rolcanlogin']),
                conn_limit=int(row['rolconnlimit']),
                password_type=password_type(row['rolpassword']) if password_readable else 'unknown')


def predict(before: dict[str, Any], changes: list[Change], conn_limit: Optional[int]) -> dict[str, Any]:
    """The attributes ``changes`` would leave (used in check mode and for the diff)."""
    after = dict(before)
    for change in changes:
        if change.verb == 'DROP':
            after.update(exists=False, replication=False, login=False, conn_limit=None, password_type=None)
            continue
        if change.verb == 'CREATE':
            after.update(exists=True, password_type=None, conn_limit=-1)
        after.update(replication=True, login=True)
        if conn_limit is not None:
            after['conn_limit'] = int(conn_limit)
        if change.set_password:
            after['password_type'] = 'scram-sha-256'
    return after


def statement_text(change: Change, name: str) -> str:
    """The statement with the password masked, as returned in ``queries``."""
    text = f'{change.verb} ROLE {quote_ident(name)}'
    words = list(change.options)
    if change.set_password:
        words.append(f'PASSWORD {MASK}')
    if words:
        text += ' WITH ' + ' '.join(words)
    return text


def statement_template(change: Change) -> str:
    """The statement to execute: ``{}`` stands for the quoted role name, ``%s`` for the verifier."""
    text = f'{change.verb} ROLE {{}}'
    words = list(change.options)
    if change.set_password:
        words.append('PASSWORD %s')
    if words:
        text += ' WITH ' + ' '.join(words)
    return text


def describe_sessions(sessions: list[dict[str, Any]]) -> str:
    parts = []
    for sess in sessions:
        kind = sess.get('backend_type') or 'backend'
        where = f" from {sess['client_addr']}" if sess.get('client_addr') else ' over the local socket'
        app = f" application {sess['application_name']!r}" if sess.get('application_name') else ''
        parts.append(f"pid {sess['pid']} ({kind}{where}{app})")
    return ', '.join(parts)


def sessions_message(name: str, sessions: list[dict[str, Any]]) -> str:
    replication = any(s.get('backend_type') == 'walsender' for s in sessions)
    advice = ('Stop or repoint the standbys that stream with this role (and drop their replication slots if they '
              'are gone for good), ' if replication else 'Close those sessions, ')
    return (f'Role {name!r} cannot be dropped: {len(sessions)} session(s) of it are connected: '
            f'{describe_sessions(sessions)}. {advice}or end them with pg_terminate_backend(pid), then run again. '
            'The module does not force this.')


def dependencies_message(name: str, deps: list[dict[str, Any]]) -> str:
    total = sum(int(d['objects']) for d in deps)
    where = ', '.join(f"{d['place']}: {d['objects']}" for d in deps)
    ident = quote_ident(name)
    return (f'Role {name!r} cannot be dropped: it owns or holds privileges on {total} object(s) ({where}). '
            f'In each database listed run REASSIGN OWNED BY {ident} TO postgres; DROP OWNED BY {ident}; '
            '(or move those objects yourself), then run again. The module does not force this.')


def standby_message(name: str, queries: list[str]) -> str:
    return (f'The server is a standby (pg_is_in_recovery() is true): role {name!r} must be managed on the primary, '
            f'from where it reaches the standbys through replication. On the primary this would run: '
            f"{'; '.join(queries)}")


def verifier_iterations(major: int, setting: Any) -> int:
    """The iteration count for a new verifier: the server's scram_iterations (16+), else 4096.

    ``setting`` is ``current_setting('scram_iterations')`` on 16 and later, None before.
    """
    if major >= 16 and setting is not None and int(setting) >= 1:
        return int(setting)
    return DEFAULT_ITERATIONS


def validate(params: dict[str, Any]) -> Optional[str]:
    """An error message for invalid options, or None."""
    if not params['name']:
        return 'name must not be empty'
    if len(params['name'].encode('utf-8')) > 63:
        return 'name must be at most 63 bytes long (PostgreSQL would silently truncate it)'
    if params['conn_limit'] is not None and params['conn_limit'] < -1:
        return 'conn_limit must be -1 (no limit) or a number of connections'
    password = params.get('password')
    if password is not None:
        if password == '':
            return 'password must not be empty (PostgreSQL treats an empty password as none); omit it instead'
        if '\x00' in password:
            return 'password must not contain a NUL character'
    return None


# -- database access ---------------------------------------------------------------------
def pg_error_text(exc: Exception) -> str:
    """The server's message without the statement text (which holds the verifier)."""
    diag = getattr(exc, 'diag', None)
    primary = getattr(diag, 'message_primary', None)
    if not primary:
        return type(exc).__name__
    text = primary
    for extra in (getattr(diag, 'message_detail', None), getattr(diag, 'message_hint', None)):
        if extra:
            text += f' ({extra})'
    code = getattr(exc, 'pgcode', None)
    return f'{text} [SQLSTATE {code}]' if code else text


def read_role(module: AnsibleModule, conn, name: str) -> tuple[Optional[dict[str, Any]], bool]:
    """The role's catalog row and whether its password could be read (superuser)."""
    try:
        return _pg.fetch_one(conn, ROLE_FROM_AUTHID, (name,)), True
    except _pg.psycopg2.Error as exc:
        if getattr(exc, 'pgcode', None) != '42501':     # insufficient_privilege
            module.fail_json(msg=f'Could not read role {name!r} from pg_authid: {pg_error_text(exc)}')
    try:
        return _pg.fetch_one(conn, ROLE_FROM_ROLES, (name,)), False
    except _pg.psycopg2.Error as exc:
        module.fail_json(msg=f'Could not read role {name!r} from pg_roles: {pg_error_text(exc)}')
    raise AssertionError('unreachable')  # pragma: no cover


def check_droppable(module: AnsibleModule, conn, name: str, row: dict[str, Any]) -> None:
    """Fail, before anything runs, while sessions of the role are connected or objects depend on it."""
    sessions = _pg.fetch_all(conn, SESSIONS, (name,))
    if sessions:
        module.fail_json(msg=sessions_message(name, sessions), queries=[])
    deps = _pg.fetch_all(conn, DEPENDENCIES, (row['oid'],))
    if deps:
        module.fail_json(msg=dependencies_message(name, deps), queries=[])


def execute(module: AnsibleModule, conn, name: str, change: Change, password: Optional[str], done: list[str],
            iterations: int = DEFAULT_ITERATIONS) -> None:
    """Run one change; the verifier is a query parameter, the name a quoted identifier."""
    from psycopg2 import sql  # psycopg2 exists: _pg.connect checked it

    args = ([build_verifier(password, iterations=iterations)]
            if change.set_password and password is not None else None)
    ident = sql.Identifier(name).as_string(conn)
    if args is not None:
        ident = ident.replace('%', '%%')    # the identifier sits in a string psycopg2 %-formats
    query = statement_template(change).replace('{}', ident, 1)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
    except _pg.psycopg2.Error as exc:
        if getattr(exc, 'pgcode', None) == '2BP01':     # dependent_objects_still_exist
            module.fail_json(msg=f'Role {name!r} cannot be dropped: {pg_error_text(exc)}. In each database run '
                                 f'REASSIGN OWNED BY {quote_ident(name)} TO postgres; DROP OWNED BY {quote_ident(name)}; '
                                 'then run again. The module does not force this.', queries=done)
        module.fail_json(msg=f'Could not run {statement_text(change, name)}: {pg_error_text(exc)}', queries=done)
    done.append(statement_text(change, name))


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    name: str = params['name']
    password: Optional[str] = params['password']
    conn_limit: Optional[int] = params['conn_limit']

    error = validate(params)
    if error:
        module.fail_json(msg=error)

    conn = _pg.connect(module)
    try:
        info = _pg.server_info(conn)
        row, readable = read_role(module, conn, name)
        before = describe(name, row, readable)
        changes = plan(row, params['state'], password, conn_limit, readable)
        queries = [statement_text(c, name) for c in changes]

        if changes and info['in_recovery']:
            module.fail_json(msg=standby_message(name, queries), queries=[], role=before)

        if not readable and password is not None and row is not None:
            module.warn('Cannot read pg_authid (login_user is not a superuser), so the stored password cannot be '
                        'compared: it is set again on every run.')
        if params['state'] == 'present' and password is None:
            if before['password_type'] == 'md5':
                module.warn(f'Role {name!r} has an md5 password hash; give the password option to replace it with '
                            'a scram-sha-256 verifier.')
            elif row is None or before['password_type'] is None:
                module.warn(f'Role {name!r} has no password, so standbys cannot authenticate with scram-sha-256; '
                            'give the password option.')
        if row is not None and row.get('rolsuper'):
            module.warn(f'Role {name!r} is a superuser; a replication role needs only REPLICATION and LOGIN.')

        if changes and changes[0].verb == 'DROP' and row is not None:
            check_droppable(module, conn, name, row)

        if module.check_mode or not changes:
            after = predict(before, changes, conn_limit)
        else:
            done: list[str] = []
            setting = None
            if info['major'] >= 16 and any(c.set_password for c in changes):
                setting = (_pg.fetch_one(conn, "SELECT current_setting('scram_iterations') AS n") or {}).get('n')
            iterations = verifier_iterations(info['major'], setting)
            # The changes commit without waiting for a synchronous standby: with synchronous_standby_names
            # set and none streaming (the replicas the run is about to repair), they would wait for ever.
            with conn.cursor() as cur:
                cur.execute('SET synchronous_commit TO local')
            for change in changes:
                execute(module, conn, name, change, password, done, iterations)
            new_row, readable_after = read_role(module, conn, name)
            after = describe(name, new_row, readable_after)
    finally:
        conn.close()

    result: dict[str, Any] = dict(changed=bool(changes), queries=queries, role=after)
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    return result


def main() -> None:
    argument_spec = _pg.connection_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        password=dict(type='str', no_log=True),
        state=dict(type='str', default='present', choices=['absent', 'present']),
        conn_limit=dict(type='int'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    pg_errors = (_pg.psycopg2.Error,) if _pg.psycopg2 is not None else ()
    try:
        result = run(module)
    except pg_errors as exc:
        # The server's message only: a statement text could hold the verifier.
        module.fail_json(msg=f'PostgreSQL error while managing role {module.params["name"]!r}: {pg_error_text(exc)}')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
