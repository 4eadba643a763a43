# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every module that talks SQL to the local server."""

    DOCUMENTATION = r"""
options:
  login_user:
    description:
      - The database role to connect as.
      - With the default local socket connection, PostgreSQL's peer authentication maps the
        OS user running the module to this role, so run the task as the C(postgres) OS user
        (C(become_user=postgres)).
    type: str
    default: postgres
  login_password:
    description:
      - Password for O(login_user). Not needed with peer authentication on the local socket.
      - Must not be empty (libpq would take an empty password for none and use C(~/.pgpass) or
        E(PGPASSWORD) instead); omit it to use those on purpose.
    type: str
  login_host:
    description:
      - Host to connect to. Empty (the default) connects over the local Unix socket.
    type: str
    default: ''
  login_unix_socket:
    description:
      - Directory of the Unix socket used when O(login_host) is empty.
    type: str
    default: /var/run/postgresql
  login_port:
    description:
      - Port of the PostgreSQL server (also names the socket file).
    type: int
    default: 5432
  login_db:
    description:
      - Database to connect to.
    type: str
    default: postgres
  connect_timeout:
    description:
      - Seconds to wait for the connection before failing.
    type: int
    default: 10
requirements:
  - psycopg2 on the managed host (Debian package C(python3-psycopg2)).
"""
