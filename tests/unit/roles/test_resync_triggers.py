# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which PostgreSQL log lines make playbooks/resync.yml re-seed a replica (issue 18 item 7).

The play's own variables, rendered by Ansible's Templar from the playbook text, with the servers'
answers (the log's last lines, the primary's slot and pg_wal) given as they would come back.
The real thing runs in the Molecule scenario ``archive`` (a lost slot and the WAL receiver's own
FATAL lines re-seed; a stale and a forged line do not); this pins down the line matching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

PLAYBOOK = Path(__file__).resolve().parents[3] / 'playbooks' / 'resync.yml'
START = '2026-11-30 10:00:00.000 UTC [100] LOG:  starting PostgreSQL 15.14 (Debian 15.14-0+deb12u1) on x86_64-pc-linux-gnu'
READY = '2026-11-30 10:00:01.000 UTC [100] LOG:  database system is ready to accept read-only connections'
REAL = ('2026-11-30 10:00:02.345 UTC [123] FATAL:  could not receive data from WAL stream: ERROR:  '
        'requested WAL segment 000000010000000000000005 has already been removed')
FORGED_QUOTED = ('2026-11-30 10:00:03.000 UTC [130] postgres@postgres ERROR:  invalid input syntax for type integer: '
                 '"requested WAL segment x has already been removed"')
FORGED_STATEMENT = ("2026-11-30 10:00:03.000 UTC [130] postgres@postgres STATEMENT:  SELECT x -- [1] FATAL:  could not "
                    'receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000005 has already '
                    'been removed')
# A statement with a line break in it: its second line looks like the WAL receiver's entry, but names a
# segment the primary still has (09), or one from before the replica's last restartpoint (01).
FORGED_LINE = ('2026-11-30 10:00:03.000 UTC [1] FATAL:  could not receive data from WAL stream: ERROR:  '
               'requested WAL segment 000000010000000000000009 has already been removed')
FORGED_OLD = FORGED_LINE.replace('000000010000000000000009', '000000010000000000000001')
# A carriage return inside a value PostgreSQL logs (here the startup packet's "replication" parameter, sent
# before any authentication; a logged-in user gets the same with SELECT (E'x\r...')::int): the value's rest
# would be a line of its own for str.splitlines(), naming a segment in the window (06).
FORGED_CR = ('2026-11-30 10:00:03.000 UTC [131] nobody@postgres FATAL:  invalid value for parameter "replication": "x\r'
             '2026-11-30 10:00:03.000 UTC [4243] FATAL:  could not receive data from WAL stream: ERROR:  '
             'requested WAL segment 000000010000000000000006 has already been removed\r"')
FORGED_CR_START = ('2026-11-30 10:00:04.000 UTC [132] nobody@postgres FATAL:  invalid value for parameter "replication": "x\r'
                   '2026-11-30 10:00:04.000 UTC [1] LOG:  starting PostgreSQL 15.14\r"')
CONTROL = "pg_control version number:            1300\nLatest checkpoint's REDO WAL file:    000000010000000000000004\n"


def play_vars() -> dict[str, Any]:
    play = yaml.safe_load(PLAYBOOK.read_text())[0]
    return {k: trust_as_template(v) if isinstance(v, str) else v for k, v in play['vars'].items()}


def render(lines: list[str], wal_status: str = 'reserved', streaming: bool = False, role: str = 'standby',
           oldest: str = '0000000000000008', control: str = CONTROL) -> tuple[list[str], bool]:
    replicas = [{'application_name': 'replica1', 'state': 'streaming', 'lag_bytes': 0}] if streaming else []
    variables = play_vars()
    variables.update({
        'catmaid_replication_resync': 'replica1', 'catmaid_replication_resync_force': False,
        '__cr_primaries': ['primary', 'replica1'] if role == 'primary' else ['primary'],
        '__cr_role_of': {'primary': 'primary', 'replica1': role},
        '__cr_slot_of': {'primary': 'primary', 'replica1': 'replica1'},
        'hostvars': {
            'primary': {'__cr_node_info': {'replicas': replicas,
                                           'slots': [{'slot_name': 'replica1', 'wal_status': wal_status}]},
                        '__resync_waldir': {'query_result': [{'oldest': oldest}]}},
            # As the command module returns it: stdout_lines is str.splitlines(), which also splits on \r and
            # other separators PostgreSQL writes unescaped inside a logged value.
            'replica1': {'__resync_log': {'stdout': '\n'.join(lines), 'stdout_lines': '\n'.join(lines).splitlines()},
                         '__resync_control': {'stdout': control}},
        },
    })
    templar = Templar(loader=DataLoader(), variables=variables)
    found = templar.template(trust_as_template('{{ __resync_log_removed }}'))
    needed = templar.template(trust_as_template('{{ __resync_needed | bool }}'))
    return list(found), bool(needed)


def test_the_wal_receivers_own_line_since_the_last_start_re_seeds():
    assert render([START, READY, REAL]) == ([REAL], True)
    # Also when the start was rotated out of the lines read: every line read is newer than it.
    assert render([READY, REAL]) == ([REAL], True)


@pytest.mark.parametrize('lines', [
    [REAL, START, READY],                       # stale: from the run before the last start
    [START, READY, FORGED_QUOTED],              # SELECT '...has already been removed'::int, as any user can
    [START, READY, FORGED_STATEMENT],           # the words inside a logged statement
    [START, READY, FORGED_LINE],                # a whole forged line, but the primary still has that segment
    [START, READY, FORGED_OLD],                 # ... or one the replica cannot need any more
    [START, READY, FORGED_CR],                  # a carriage return in a logged value, no login needed
], ids=['stale', 'quoted-by-a-client', 'inside-a-statement', 'segment-not-removed', 'segment-before-redo',
        'carriage-return-before-login'])
def test_stale_or_forged_lines_do_not(lines):
    assert render(lines) == ([], False)


def test_a_streaming_replica_is_never_re_seeded_for_its_log():
    assert render([START, REAL], streaming=True) == ([REAL], False)


def test_a_lost_slot_re_seeds_whatever_the_log_says():
    assert render([START, READY], wal_status='lost') == ([], True)


def test_a_node_that_accepts_writes_is_never_found_in_need():
    assert render([START, REAL], wal_status='lost', role='primary')[1] is False


def test_unknown_bounds_match_nothing():
    assert render([START, REAL], control='') == ([], False)          # pg_controldata gave nothing
    assert render([START, REAL], oldest='') == ([], False)           # the primary's pg_wal unread


def test_a_forged_start_line_does_not_hide_a_real_incident():
    """A carriage return in a logged value must not pass for "starting PostgreSQL" and empty the list."""
    assert render([START, READY, REAL, FORGED_CR_START]) == ([REAL], True)
