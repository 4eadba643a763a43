# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to playbooks/site.yml fails in its first play, before any host is touched.

Every inventory here names hosts that cannot be reached (127.0.0.1 port 1), so a run that got
past validation would stop with "UNREACHABLE" in the second play. Each case proves that the run
failed in the play "Validate the inventory before anything changes", with a message naming what
to fix, and that no later play started (no facts gathered, no role task ran). The control case
shows a valid inventory (with a password full of quotes, a backslash and a colon) passes
validation and gets as far as contacting the hosts. Results: build/reports/validation.json.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from casereport import Report

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / 'playbooks' / 'site.yml'
GROUP = 'bad input, no containers (tests/functional/test_site_validation.py)'
AWKWARD = 'Tr0ub4dor it\'s "q" \\ back:slash x'
FIRST_PLAY = 'PLAY [Validate the inventory before anything changes]'
LATER_PLAYS = ('PLAY [Gather the facts', 'PLAY [Configure the primary', 'PLAY [Clone and start',
               'catmaid.replication.primary :', 'catmaid.replication.replica :', 'catmaid.replication.nginx_stream :')

REPORT = Report('validation', command='pytest -q tests/functional/test_site_validation.py')

UNREACHABLE = {'ansible_host': '127.0.0.1', 'ansible_port': 1, 'ansible_connection': 'ssh',
               'ansible_user': 'nobody', 'ansible_ssh_common_args': '-o ConnectTimeout=2 -o BatchMode=yes'}


def inventory(primaries: list[str], replicas: list[str] | None, hostvars: dict[str, dict] | None = None,
              allvars: dict[str, Any] | None = None) -> dict:
    hostvars = hostvars or {}
    groups: dict[str, Any] = {'primary': {'hosts': {h: None for h in primaries}}}
    if replicas is not None:
        groups['replicas'] = {'hosts': {h: None for h in replicas}}
    hosts = {h: {**UNREACHABLE, **hostvars.get(h, {})} for h in set(primaries) | set(replicas or []) | set(hostvars)}
    return {'all': {'hosts': hosts, 'children': groups,
                    'vars': {'catmaid_replication_password': 'a-good-password', **(allvars or {})}}}


def run_site(tmp_path: Path, inv: dict, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / 'inventory.json'   # JSON is YAML; no quoting surprises for awkward values
    path.write_text(json.dumps(inv))
    path.chmod(0o600)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / 'build' / 'collections'),
               ANSIBLE_ROLES_PATH=str(REPO / 'roles'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    return subprocess.run(['ansible-playbook', '-i', str(path), str(SITE), *extra], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def assert_refused_first(result: subprocess.CompletedProcess, *messages: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert FIRST_PLAY in out, out[-3000:]
    started = [p for p in LATER_PLAYS if p in out]
    assert not started, f'a later play ran: {started}\n{out[-3000:]}'
    for m in messages:
        assert m in out, f'{m!r} missing from the failure:\n{out[-3000:]}'
    # The message shown to the operator (assert's msg) for the report
    for line in out.splitlines():
        if '"msg":' in line or 'msg:' in line:
            return line.split('msg', 1)[1].strip(' :"}').replace('\\"', '"')[:300]
    return ''


CASES = [
    ('two hosts in the primary group', inventory(['db1', 'db2'], ['db3']),
     ["'primary' must hold exactly one host", 'it holds 2: db1, db2']),
    ('an empty replicas group', inventory(['db1'], []),
     ["'replicas' must hold at least one replica"]),
    ('no replicas group at all', inventory(['db1'], None),
     ["'replicas' must hold at least one replica"]),
    ('the primary also listed in the replicas group', inventory(['db1'], ['db1', 'db2']),
     ["db1 is in both 'primary' and 'replicas'"]),
    ('an empty replication password', inventory(['db1'], ['db2'], allvars={'catmaid_replication_password': ''}),
     ['catmaid_replication_password is missing, empty or different on db1']),
    ('a replica with a different password than the primary',
     inventory(['db1'], ['db2'], hostvars={'db2': {'catmaid_replication_password': 'other'}}),
     ['catmaid_replication_password is missing, empty or different on db2']),
    ('a proxy port out of range (70000)', inventory(['db1'], ['db2'], allvars={'catmaid_replication_port': 70000}),
     ['catmaid_replication_port (1-65535)']),
    ('a PostgreSQL port of 0', inventory(['db1'], ['db2'], allvars={'catmaid_replication_postgres_port': 0}),
     ['catmaid_replication_postgres_port (1-65535)']),
    ('a port that is not a number', inventory(['db1'], ['db2'], hostvars={'db2': {'catmaid_replication_port': '74x2'}}),
     ['Invalid value(s) for db2', 'catmaid_replication_port (a whole number)']),
    ('a malformed address in the allow list (10.0.0.300)',
     inventory(['db1'], ['db2'], hostvars={'db2': {'catmaid_replication_address': '10.0.0.300'}}),
     ['catmaid_replication_address of db2 must be an IPv4 or IPv6 address', '10.0.0.300']),
    ('a network with a bad prefix in the allow list (10.0.0.0/33)',
     inventory(['db1'], ['db2'], hostvars={'db2': {'catmaid_replication_address': '10.0.0.0/33'}}),
     ['catmaid_replication_address of db2 must be an IPv4 or IPv6 address']),
    ('a host name instead of an address in the allow list',
     inventory(['db1'], ['db2'], hostvars={'db2': {'catmaid_replication_address': 'db2.example.org'}}),
     ['catmaid_replication_address of db2 must be an IPv4 or IPv6 address']),
    ('a negative WAL size (wal_keep_mb -5)', inventory(['db1'], ['db2'], allvars={'catmaid_replication_wal_keep_mb': -5}),
     ['catmaid_replication_wal_keep_mb (0 or more)']),
    ('a slot WAL limit below -1', inventory(['db1'], ['db2'], allvars={'catmaid_replication_max_slot_wal_keep_mb': -2}),
     ['catmaid_replication_max_slot_wal_keep_mb (-1 or more)']),
    ('max_wal_senders of 0', inventory(['db1'], ['db2'], allvars={'catmaid_replication_max_wal_senders': 0}),
     ['catmaid_replication_max_wal_senders (1 or more)']),
    ('sslmode disable (replication without SSL)', inventory(['db1'], ['db2'], allvars={'catmaid_replication_sslmode': 'disable'}),
     ['catmaid_replication_sslmode (require, verify-ca or verify-full)']),
    ('a primary address with a space', inventory(['db1'], ['db2'],
                                                 hostvars={'db1': {'catmaid_replication_primary_address': 'db1 .org'}}),
     ['catmaid_replication_primary_address must be a host name or address', 'db1 .org']),
    ('an IPv6 upstream for the proxy (nginx_stream_upstream_host ::1; proxy_bind is IPv4)',
     inventory(['db1'], ['db2'], allvars={'nginx_stream_upstream_host': '::1'}),
     ['nginx_stream_upstream_host must be an IPv4 loopback address', '(got \\"::1\\")']),
    ('a host name upstream for the proxy, given for the primary only (nginx_stream_upstream_host localhost)',
     inventory(['db1'], ['db2'], hostvars={'db1': {'nginx_stream_upstream_host': 'localhost'}}),
     ['nginx_stream_upstream_host must be an IPv4 loopback address', '(got \\"localhost\\")']),
]


@pytest.mark.parametrize('title,inv,messages', CASES, ids=[c[0] for c in CASES])
def test_bad_inventory_fails_before_anything_changes(tmp_path: Path, title: str, inv: dict, messages: list[str]) -> None:
    with REPORT.case(GROUP, title, 'site.yml fails in its validation play naming what to fix; no later play starts') as c:
        shown = assert_refused_first(run_site(tmp_path, inv), *messages)
        c.note(f'message: {shown}')


def test_valid_inventory_with_awkward_password_passes_validation(tmp_path: Path) -> None:
    """Control: the same harness lets a valid inventory through (so the refusals above mean something)."""
    inv = inventory(['db1'], ['db2', 'db3'], hostvars={'db3': {'catmaid_replication_address': '192.0.2.17'}},
                    allvars={'catmaid_replication_password': AWKWARD})
    with REPORT.case(GROUP, "control: a valid inventory, password with ' \" \\ : and spaces",
                     'passes every validation task and stops only when the (fake) hosts are unreachable; '
                     'the password is not in the -vvv output') as c:
        result = run_site(tmp_path, inv, '-vvv')
        out = result.stdout + result.stderr
        assert result.returncode != 0
        assert 'PLAY [Gather the facts' in out, out[-3000:]
        assert 'UNREACHABLE' in out, out[-3000:]
        assert 'FAILED!' not in out.split('PLAY [Gather the facts')[0], out[-3000:]
        for form in (AWKWARD, json.dumps(AWKWARD)[1:-1], 'Tr0ub4dor'):
            assert form not in out, 'the password appears in the -vvv output'
        c.note('validation play: ok; facts play: hosts unreachable; password absent from -vvv output')


def test_templated_settings_that_use_role_defaults_pass_validation(tmp_path: Path) -> None:
    """Control for the set-wide equality check: a value given as a template that refers to a role default
    (not rendered in another host's own variables) is not taken for a difference between nodes."""
    inv = inventory(['db1'], ['db2'], allvars={
        'catmaid_replication_archive_dir': '{{ catmaid_replication_ca_dir }}/../wal-archive',
        'catmaid_replication_port': '{{ 7000 + 432 }}'})
    with REPORT.case(GROUP, 'control: settings given as templates that use role defaults',
                     'group_vars/all values such as "{{ catmaid_replication_ca_dir }}/../wal-archive" pass the check '
                     'that every node has the same set-wide settings, and the run gets as far as contacting the hosts') as c:
        result = run_site(tmp_path, inv)
        out = result.stdout + result.stderr
        assert 'PLAY [Gather the facts' in out and 'UNREACHABLE' in out, out[-3000:]
        assert 'FAILED!' not in out.split('PLAY [Gather the facts')[0], out[-3000:]
        c.note('validation play: ok; facts play: hosts unreachable')
