#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_info
short_description: Read in one step what the roles of catmaid.replication compare a node against
version_added: 0.2.0
description:
  - Reads, without changing anything, the state of a node that the roles would otherwise read (or
    write only to learn that nothing changes) one task at a time. That is files (type, mode, owner, SHA-1,
    and the text of those asked for), private keys (type, size, public key fingerprint), which
    packages dpkg has installed, the state of systemd units, whether C(nginx -t) accepts the
    configuration, and the PostgreSQL server's state (recovery, settings waiting for a restart,
    replication slots, the replication role).
  - The roles run it once per host and role, and run a write task only when what the module read
    differs from what that task would write. A second run of an unchanged replication set then
    executes a few modules per host instead of dozens, and still finds and fixes any drift.
  - The module never reports a change. It returns no secret. The replication role's stored
    verifier is checked against O(role_password) on the host, and only whether it matches comes back.
  - A part that cannot be read (a missing file, no psycopg2, a stopped server) is returned as
    such (for example RV(postgres.connected) false), never as a failure, so a caller can fall back
    to its write tasks.
author:
  - catmaid.replication developers (@catmaid)
options:
  files:
    description:
      - Paths to describe (symbolic links are followed). See RV(files).
    type: list
    elements: path
    default: []
  contents:
    description:
      - Paths (also described as in O(files)) whose text to return, up to 1 MiB each. Do not name
        files that hold secrets.
    type: list
    elements: path
    default: []
  search:
    description:
      - Per path (also described as in O(files)), a Python regular expression (multi-line mode) to
        search the file's text for; whether it matched comes back in RV(files), not the text, so a
        file that may hold a password (postgresql.conf) can be asked about.
    type: dict
    default: {}
  blocks:
    description:
      - Per path (also described as in O(files)), an ansible.builtin.blockinfile marker with C({mark}).
        The module returns where that block is and its lines in RV(files), not the file's text.
    type: dict
    default: {}
  private_keys:
    description:
      - Paths of PEM private keys to describe (readable only with the rights of the task's user).
        Only the key's type, size and public key fingerprint come back, never the key.
    type: list
    elements: path
    default: []
  packages:
    description:
      - Package names to look up with C(dpkg-query). See RV(packages).
    type: list
    elements: str
    default: []
  services:
    description:
      - systemd unit names whose state to read with C(systemctl show).
    type: list
    elements: str
    default: []
  nginx_test:
    description:
      - Run C(nginx -t) (which only reads and tests the configuration) and return its result.
    type: bool
    default: false
  postgres:
    description:
      - Connect to the local PostgreSQL server with the connection options and read its state.
    type: bool
    default: false
  extensions:
    description:
      - With O(postgres), also name the packages that hold the files of the extensions every database uses
        (RV(postgres.extension_packages)), for the replicas to install them (see module
        catmaid.replication.pg_replication_info, option O(catmaid.replication.pg_replication_info#module:extensions)).
    type: bool
    default: false
  settings_file:
    description:
      - With O(postgres), the configuration file whose settings waiting for a restart are returned
        in RV(postgres.pending_restart).
    type: path
  role:
    description:
      - With O(postgres), the replication role to check (see RV(postgres.role)).
    type: str
  role_password:
    description:
      - The password the replication role must have. Checked on the host against the stored
        verifier; never returned.
    type: str
  role_conn_limit:
    description:
      - The connection limit the replication role must have; not checked when omitted.
    type: int
extends_documentation_fragment:
  - catmaid.replication.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: catmaid.replication.pg_replication_info
"""

EXAMPLES = r"""
- name: Read the settings file, the proxy's packages and the server's state
  become: true
  catmaid.replication.node_info:
    files: [/etc/postgresql/15/main/conf.d/40-catmaid-replication.conf]
    contents: [/etc/postgresql/15/main/postgresql.conf]
    packages: [nginx, libnginx-mod-stream]
    services: [nginx]
    postgres: true
    login_user: postgres
    login_port: 5432
    role: replication_user
    role_password: "{{ catmaid_replication_password }}"
  register: node

- name: Write the settings only when they differ
  ansible.builtin.template:
    src: replication.conf.j2
    dest: /etc/postgresql/15/main/conf.d/40-catmaid-replication.conf
  when: >-
    node.files['/etc/postgresql/15/main/conf.d/40-catmaid-replication.conf'].sha1
    != lookup('ansible.builtin.template', 'replication.conf.j2') | hash('sha1')
"""

RETURN = r"""
files:
  description:
    - Per path of O(files) and O(contents), its state.
  returned: always
  type: dict
  sample:
    /etc/postgresql/15/main/conf.d/40-catmaid-replication.conf:
      exists: true
      type: file
      mode: '0644'
      owner: postgres
      group: postgres
      sha1: 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12
  contains:
    exists:
      description: Whether the path exists (after following links).
      type: bool
    type:
      description: V(file), V(directory) or V(other); null when it does not exist.
      type: str
    link:
      description: Whether the path itself is a symbolic link.
      type: bool
    mode:
      description: Permission bits as four octal digits.
      type: str
    owner:
      description: Owner's name (the uid when it has none).
      type: str
    group:
      description: Group's name (the gid when it has none).
      type: str
    sha1:
      description: SHA-1 of a regular file's content (as ansible.builtin.stat's checksum); null otherwise.
      type: str
    content:
      description: The text, for paths of O(contents) that are regular files of at most 1 MiB.
      type: str
    found:
      description: For paths of O(search), whether the expression matched the file's text (null when it is no readable file).
      type: bool
    readable:
      description: Whether the module could read the path (a directory counts as readable).
      type: bool
    block:
      description:
        - For paths of O(blocks), the counts of the BEGIN and END marker lines (C(begin), C(end)), whether the first
          BEGIN comes before the first END (C(ordered)), the lines between them (C(lines)), whether the file ends with a
          line break (C(final_newline)) and holds a carriage return (C(crlf)).
      type: dict
private_keys:
  description: Per path of O(private_keys), what the key is.
  returned: always
  type: dict
  contains:
    readable:
      description: Whether the file exists and holds an unencrypted PEM private key that could be loaded.
      type: bool
    type:
      description: V(RSA), V(ECC), V(Ed25519), V(Ed448) or V(DSA).
      type: str
    size:
      description: The key size in bits (RSA, DSA, ECC).
      type: int
    fingerprint_sha256:
      description: SHA-256 of the public key (DER SubjectPublicKeyInfo), as colon-separated hex, the form community.crypto returns.
      type: str
packages:
  description: Per name of O(packages), whether dpkg has it installed.
  returned: always
  type: dict
  sample: {nginx: true, libnginx-mod-stream: false}
services:
  description: Per unit of O(services), its C(ActiveState) and C(UnitFileState).
  returned: always
  type: dict
  sample: {nginx.service: {active: active, enabled: enabled}}
nginx_test:
  description: C(nginx -t)'s exit code and messages (C(rc) null when nginx is not installed); null without O(nginx_test).
  returned: always
  type: dict
  sample: {rc: 0, stderr: "nginx: configuration file /etc/nginx/nginx.conf test is successful"}
postgres:
  description: The server's state; null without O(postgres).
  returned: always
  type: dict
  contains:
    connected:
      description: Whether the module could connect (false with RV(postgres.error) when not).
      type: bool
    error:
      description: Why the module could not connect or read (only when RV(postgres.connected) is false).
      type: str
    in_recovery:
      description: pg_is_in_recovery().
      type: bool
    version_num:
      description: server_version_num.
      type: int
    system_identifier:
      description: The cluster's system identifier (pg_control_system()), as text.
      type: str
    wal_level:
      description: The wal_level in force.
      type: str
    logical_slots:
      description: The names of logical replication slots, comma-separated.
      type: str
    pending_restart:
      description:
        - Settings of O(settings_file) whose new value waits for a restart, with the value in force
          (as C(name) and C(current)).
      type: list
      elements: dict
    standbys:
      description: Rows in pg_stat_replication.
      type: int
    extension_packages:
      description:
        - With O(extensions), the packages (C(dpkg-query -S)) that hold the control files and C libraries (under
          C(PKGLIBDIR) and C(SHAREDIR/extension)) of the extensions used in any database that allows connections,
          sorted; only Debian's PostgreSQL packages (C(postgresql-N), C(postgresql-N-NAME)), the names a replica may
          install from them. Those of a database that could not be read are missing (RV(postgres.extensions_error)).
      type: list
      elements: str
    extensions_error:
      description: Why the extensions (of some databases) could not be read, with O(extensions); null when they could.
      type: str
    slots_in_force:
      description: max_replication_slots in force.
      type: int
    slots:
      description: Every physical replication slot (C(slot_name), C(active), C(wal_status); C(wal_status) null before PostgreSQL 13).
      type: list
      elements: dict
    role:
      description:
        - With O(role), whether it exists and whether pg_replication_role would change it
          (C(needs_change)), and whether it is a superuser; never the verifier.
      type: dict
    rewind_grants:
      description: With O(role), pg_rewind's functions the role may execute (only a rejoin grants them), each as C(function).
      type: list
      elements: dict
"""

import grp
import hashlib
import os
import pwd
import re
import stat
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.catmaid.replication.plugins.module_utils import _extensions, _pg
from ansible_collections.catmaid.replication.plugins.module_utils._node import describe_block, installed_packages
from ansible_collections.catmaid.replication.plugins.module_utils._role import plan

MAX_CONTENT = 1024 * 1024

REWIND_FUNCTIONS = ('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'pg_catalog.pg_stat_file(text, boolean)',
                    'pg_catalog.pg_read_binary_file(text)', 'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)')


# -- pure logic (unit-tested) ---------------------------------------------------------------
def name_of(ident: int, lookup) -> str:
    """The name of a uid or gid, or the number as text when it has none."""
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def describe_file(path: str, want_content: bool) -> dict[str, Any]:
    """The state of ``path`` (links followed) as returned in ``files``."""
    out: dict[str, Any] = dict(exists=False, type=None, link=os.path.islink(path), mode=None, owner=None, group=None, sha1=None)
    try:
        st = os.stat(path)
    except OSError:
        return out
    kind = 'file' if stat.S_ISREG(st.st_mode) else 'directory' if stat.S_ISDIR(st.st_mode) else 'other'
    out.update(exists=True, type=kind, mode=f'{stat.S_IMODE(st.st_mode):04o}',
               owner=name_of(st.st_uid, pwd.getpwuid), group=name_of(st.st_gid, grp.getgrgid))
    out['readable'] = kind != 'file'
    if kind == 'file':
        digest = hashlib.sha1()  # nosec - a checksum as ansible.builtin.stat's, not a security measure
        data = b''
        try:
            with open(path, 'rb') as handle:
                for chunk in iter(lambda: handle.read(65536), b''):
                    digest.update(chunk)
                    if want_content and len(data) <= MAX_CONTENT:
                        data += chunk
        except OSError:
            return out            # unreadable (another owner): the callers' write tasks put it right
        out['readable'] = True
        out['sha1'] = digest.hexdigest()
        if want_content and len(data) <= MAX_CONTENT:
            out['content'] = data.decode('utf-8', errors='replace')
    return out


def parse_dpkg(output: str, wanted: list[str]) -> dict[str, bool]:
    """Which of ``wanted`` dpkg-query lists as installed (as the filter catmaid.replication.missing_packages reads it)."""
    installed = installed_packages(output)
    return {name: name in installed for name in wanted}


def parse_systemctl_show(output: str, units: list[str]) -> dict[str, dict[str, Optional[str]]]:
    """``systemctl show -p Id,ActiveState,UnitFileState`` of several units: blocks separated by blank lines, in order."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in (output or '').splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _sep, value = line.partition('=')
        current[key] = value
    if current:
        blocks.append(current)
    out: dict[str, dict[str, Optional[str]]] = {}
    for unit, block in zip(units, blocks):
        out[unit] = dict(active=block.get('ActiveState'), enabled=block.get('UnitFileState'))
    for unit in units[len(blocks):]:
        out[unit] = dict(active=None, enabled=None)
    return out


def colon_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as community.crypto writes fingerprints (aa:bb:...)."""
    text = hashlib.sha256(data).hexdigest()
    return ':'.join(text[i:i + 2] for i in range(0, len(text), 2))


def role_state(row: Optional[dict[str, Any]], password: Optional[str], conn_limit: Optional[int], readable: bool) -> dict[str, Any]:
    """What pg_replication_role would do to the role in ``row`` (None: absent); never the verifier."""
    return dict(exists=row is not None, superuser=bool(row and row.get('rolsuper')), readable=readable,
                needs_change=bool(plan(row, 'present', password, conn_limit, readable)) or (row is not None and not readable))


# -- reading the host ----------------------------------------------------------------------
def describe_key(path: str) -> dict[str, Any]:
    out: dict[str, Any] = dict(readable=False, type=None, size=None, fingerprint_sha256=None)
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    except ImportError:
        out['error'] = 'python3-cryptography is not installed'
        return out
    try:
        with open(path, 'rb') as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    # Any key the task would not keep counts as unreadable, an unsupported type too.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        out['error'] = type(exc).__name__
        return out
    kinds = ((rsa.RSAPrivateKey, 'RSA'), (ec.EllipticCurvePrivateKey, 'ECC'), (dsa.DSAPrivateKey, 'DSA'),
             (ed25519.Ed25519PrivateKey, 'Ed25519'), (ed448.Ed448PrivateKey, 'Ed448'))
    kind = next((name for cls, name in kinds if isinstance(key, cls)), 'unknown')
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out.update(readable=True, type=kind, size=getattr(key, 'key_size', None), fingerprint_sha256=colon_hex(public))
    return out


def read_postgres(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    if _pg.PSYCOPG2_IMPORT_ERROR is not None:
        return dict(connected=False, error='psycopg2 is not installed')
    try:
        conn = _pg.psycopg2.connect(**_pg.connect_params(params))
    except _pg.psycopg2.Error as exc:
        return dict(connected=False, error=str(exc).strip())
    conn.autocommit = True
    try:
        out = query_postgres(conn, params)
    except _pg.psycopg2.Error as exc:
        return dict(connected=False, error=str(exc).strip())
    finally:
        conn.close()
    if params['extensions']:
        read = _extensions.read_extensions(module)
        owners = _extensions.file_packages(module, read)
        out['extension_packages'] = _extensions.installable(name.strip() for value in owners.values() for name in value.split(','))
        out['extensions_error'] = read['error'] or '; '.join(
            f"database {e['database']}: {e['error']}" for e in read['extensions'] if e.get('error')) or None
    return out


def query_postgres(conn, params: dict[str, Any]) -> dict[str, Any]:
    row = _pg.fetch_one(conn, """
        SELECT pg_is_in_recovery() AS in_recovery,
               current_setting('server_version_num')::int AS version_num,
               current_setting('wal_level') AS wal_level,
               current_setting('max_replication_slots')::int AS slots_in_force,
               (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
               (SELECT count(*) FROM pg_stat_replication)::int AS standbys,
               (SELECT coalesce(string_agg(slot_name, ', ' ORDER BY slot_name), '') FROM pg_replication_slots
                 WHERE slot_type = 'logical') AS logical_slots""") or {}
    out: dict[str, Any] = dict(connected=True, **row)
    out['pending_restart'] = _pg.fetch_all(conn, """
        SELECT s.name, s.setting AS current FROM pg_settings s
         WHERE s.context = 'postmaster'
           AND s.name IN (SELECT f.name FROM pg_file_settings f WHERE f.error IS NOT NULL AND f.sourcefile = %s)
         ORDER BY s.name""", (params['settings_file'] or '',)) if params['settings_file'] else []
    wal_status = "wal_status" if out['version_num'] >= 130000 else "NULL::text AS wal_status"
    out['slots'] = _pg.fetch_all(conn, f"""
        SELECT slot_name, active, {wal_status} FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name""")
    if params['role']:
        try:
            role_row = _pg.fetch_one(conn, 'SELECT rolsuper, rolreplication, rolcanlogin, rolconnlimit, rolpassword '
                                           'FROM pg_catalog.pg_authid WHERE rolname = %s', (params['role'],))
            readable = True
        except _pg.psycopg2.Error:
            role_row = _pg.fetch_one(conn, 'SELECT rolsuper, rolreplication, rolcanlogin, rolconnlimit, NULL::text AS rolpassword '
                                           'FROM pg_catalog.pg_roles WHERE rolname = %s', (params['role'],))
            readable = False
        out['role'] = role_state(role_row, params['role_password'], params['role_conn_limit'], readable)
        grants = _pg.fetch_all(conn, """
            SELECT f AS function FROM pg_roles r, unnest(%s::text[]) AS f
             WHERE r.rolname = %s AND has_function_privilege(r.oid, f, 'EXECUTE') ORDER BY 1""",
                               (list(REWIND_FUNCTIONS), params['role']))
        out['rewind_grants'] = grants
    return out


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    contents = set(params['contents'])
    search = params['search'] or {}
    blocks = params['blocks'] or {}
    paths = list(dict.fromkeys(params['files'] + params['contents'] + list(search) + list(blocks)))
    files = {path: describe_file(path, path in contents or path in search or path in blocks) for path in paths}
    for path in paths:
        text = files[path].get('content') if path in contents else files[path].pop('content', None)
        if path in search:
            try:
                files[path]['found'] = None if text is None else bool(re.search(str(search[path]), text, re.MULTILINE))
            except re.error as exc:
                module.fail_json(msg=f'search[{path!r}] is no valid regular expression: {exc}')
        if path in blocks and text is not None:
            files[path]['block'] = describe_block(text, str(blocks[path]))
        if path not in contents and path not in params['files'] and path in search:
            files[path]['sha1'] = None        # no checksum of a file whose text is withheld (a guessable password)
    keys = {path: describe_key(path) for path in params['private_keys']}
    packages: dict[str, bool] = {}
    if params['packages']:
        rc, out, err = module.run_command(['dpkg-query', '--show', '--showformat=${Package} ${db:Status-Abbrev}|'] + params['packages'])
        if rc not in (0, 1):
            module.fail_json(msg=f'dpkg-query failed ({rc}): {err.strip()}')
        packages = parse_dpkg(out, params['packages'])
    services: dict[str, Any] = parse_systemctl_show('', params['services'])
    if params['services'] and module.get_bin_path('systemctl', opt_dirs=['/usr/bin', '/bin']):
        rc, out, err = module.run_command(['systemctl', 'show', '--property=Id,ActiveState,UnitFileState', '--'] + params['services'])
        services = parse_systemctl_show(out if rc == 0 else '', params['services'])
    nginx = None
    if params['nginx_test']:
        binary = module.get_bin_path('nginx', opt_dirs=['/usr/sbin', '/sbin'])
        if binary is None:
            nginx = dict(rc=None, stderr='nginx is not installed')
        else:
            rc, out, err = module.run_command([binary, '-t'])
            nginx = dict(rc=rc, stderr=err.strip())
    postgres = read_postgres(module) if params['postgres'] else None
    return dict(changed=False, files=files, private_keys=keys, packages=packages, services=services, nginx_test=nginx,
                postgres=postgres)


def main() -> None:
    argument_spec = _pg.connection_argument_spec()
    argument_spec.update(
        files=dict(type='list', elements='path', default=[]),
        contents=dict(type='list', elements='path', default=[]),
        search=dict(type='dict', default={}),
        blocks=dict(type='dict', default={}),
        private_keys=dict(type='list', elements='path', default=[], no_log=False),
        packages=dict(type='list', elements='str', default=[]),
        services=dict(type='list', elements='str', default=[]),
        nginx_test=dict(type='bool', default=False),
        postgres=dict(type='bool', default=False),
        extensions=dict(type='bool', default=False),
        settings_file=dict(type='path'),
        role=dict(type='str'),
        role_password=dict(type='str', no_log=True),
        role_conn_limit=dict(type='int'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == '__main__':
    main()
