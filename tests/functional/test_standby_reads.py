# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 15, long read queries on replicas: with the collection's defaults for hot_standby_feedback and
max_standby_streaming_delay (read from roles/catmaid_replication/defaults/main.yml, which the settings
template writes), a transaction reading a table on a real standby survives the primary deleting every row
of that table and vacuuming it; with PostgreSQL's own behaviour (no feedback, replay waiting only briefly)
the same transaction is cancelled, so the test can tell the two apart. The reading session is a real
psycopg2 connection over SSL with scram-sha-256."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / 'roles' / 'catmaid_replication' / 'defaults' / 'main.yml').read_text())
ROWS = 100000


def role_settings() -> dict[str, str]:
    return {'hot_standby_feedback': 'on' if DEFAULTS['catmaid_replication_hot_standby_feedback'] else 'off',
            'max_standby_streaming_delay': str(DEFAULTS['catmaid_replication_max_standby_streaming_delay']),
            'max_standby_archive_delay': str(DEFAULTS['catmaid_replication_max_standby_archive_delay'])}


def lsn_replayed(primary, standby, timeout: float) -> bool:
    """Whether the standby replays up to the primary's current WAL position within ``timeout`` s."""
    target = primary.psql('SELECT pg_current_wal_lsn()')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == 't':
            return True
        time.sleep(0.2)
    return False


def read_during_vacuum(primary, standby) -> tuple[str, bool]:
    """A repeatable-read transaction on the standby counts the rows; the primary deletes them all and
    vacuums; the transaction counts again. Returns (what the second count gave, replay caught up)."""
    conn = psycopg2.connect(host='127.0.0.1', port=standby.port, dbname='postgres', user='reader',
                            password='reader-secret', sslmode='require', application_name='long-read')
    try:
        conn.set_session(isolation_level='REPEATABLE READ')
        cur = conn.cursor()
        cur.execute('SELECT count(*) FROM lab_vac')
        assert cur.fetchone()[0] == ROWS
        # The standby reports its oldest snapshot to the primary every wal_receiver_status_interval
        # (and when it changes), into its slot's xmin (the role's replicas stream through slots): wait
        # for the report, as a real long query would have long sent it.
        if standby.psql('SHOW hot_standby_feedback') == 'on':
            primary.wait_for("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'standby' AND xmin IS NOT NULL",
                             '1', timeout=30)
        primary.psql('DELETE FROM lab_vac')
        primary.psql('VACUUM lab_vac')
        primary.psql('CHECKPOINT')
        caught_up = lsn_replayed(primary, standby, timeout=30)
        try:
            cur.execute('SELECT count(*) FROM lab_vac')
            second = str(cur.fetchone()[0])
            conn.commit()
        except psycopg2.Error as exc:
            second = f'error: {exc.pgerror or exc}'.strip()
        return second, caught_up
    finally:
        conn.close()


def setup_pair(primary, make_standby, **standby_settings):
    primary.psql(f'CREATE TABLE lab_vac AS SELECT i FROM generate_series(1, {ROWS}) AS i')
    primary.psql("CREATE ROLE reader LOGIN PASSWORD 'reader-secret'")
    primary.psql('GRANT SELECT ON lab_vac TO reader')
    standby = make_standby(primary, 'standby', slot='standby', start=False)
    standby.write_conf(**standby_settings)
    standby.start()
    standby.wait_for('SELECT count(*) FROM lab_vac', str(ROWS))
    return standby


def test_the_collection_s_defaults_keep_a_long_replica_read_alive_through_vacuum(primary, make_standby):
    settings = role_settings()
    standby = setup_pair(primary, make_standby, **settings)
    second, caught_up = read_during_vacuum(primary, standby)
    assert second == str(ROWS), f'the replica read was cancelled or saw other rows: {second}'
    # Feedback kept the rows, so replay did not have to wait for the query at all.
    assert caught_up, 'replay on the standby waited for the reading transaction'
    assert standby.psql('SELECT count(*) FROM lab_vac') == '0'
    conflicts = standby.psql("SELECT confl_snapshot + confl_lock FROM pg_stat_database_conflicts WHERE datname = 'postgres'")
    assert conflicts == '0'


@pytest.mark.parametrize('delay', ['1s'])
def test_without_feedback_the_same_read_is_cancelled(primary, make_standby, delay):
    """The control: the test above fails when the settings do not protect the read."""
    standby = setup_pair(primary, make_standby, hot_standby_feedback='off', max_standby_streaming_delay=delay)
    second, dummy = read_during_vacuum(primary, standby)
    # The waiting session is cancelled or (idle in its transaction) disconnected by the recovery conflict.
    assert second.startswith('error:'), second
    conflicts = standby.psql("SELECT confl_snapshot + confl_lock FROM pg_stat_database_conflicts WHERE datname = 'postgres'")
    assert int(conflicts) >= 1, conflicts
