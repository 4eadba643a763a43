# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The queries roles/replica/tasks/standby.yml runs for a delayed replica that does not stream from its
upstream yet, on real PostgreSQL servers: a failover where the delayed replica received WAL the promoted
node never had must be found (can_follow false: the run fails and says to re-seed it), and one where it
did not must pass (the run only warns and does not wait for the delay). Hostile review 9, finding 1: the
delayed replica would otherwise be left silently unable to stream, up to its delay later, for ever.

The SQL is read from the role's own task file, so a change there is what these tests check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STANDBY = REPO / 'roles' / 'replica' / 'tasks' / 'standby.yml'


def _tasks(tasks: list[dict[str, Any]]):
    for task in tasks:
        yield task
        for key in ('block', 'rescue', 'always'):
            yield from _tasks(task.get(key, []))


def role_query(name_start: str) -> str:
    for task in _tasks(yaml.safe_load(STANDBY.read_text())):
        if task.get('name', '').startswith(name_start):
            return task['community.postgresql.postgresql_query']['query']
    raise AssertionError(f'no task named {name_start!r} in {STANDBY}')


def bind(sql: str, **args: Any) -> str:
    """The named arguments as SQL string literals, as psycopg2 sends them."""
    for key, value in args.items():
        sql = sql.replace(f'%({key})s', "'" + str(value).replace("'", "''") + "'")
    return sql


def rows(cluster, sql: str) -> list[list[str]]:
    return [line.split('|') for line in cluster.psql(sql).splitlines()]


def failover(make_standby, primary, diverge: bool):
    """primary -> b (promoted later) and d (apply delay 60 s). With diverge, b is stopped while the
    primary commits, so d holds WAL that b never gets. Then the primary crashes, b is promoted and d
    is re-pointed to b by a reload, as the role does."""
    primary.psql('CREATE TABLE t (i int)')
    b = make_standby(primary, 'b', slot='b')
    d = make_standby(primary, 'd', slot='d')
    d.write_conf(recovery_min_apply_delay='60s')
    d.psql('SELECT pg_reload_conf()')
    b.wait_for("SELECT count(*) FROM pg_class WHERE relname = 't'", '1')
    d.wait_for("SELECT count(*) FROM pg_class WHERE relname = 't'", '1')
    if diverge:
        b.stop()
    primary.psql('INSERT INTO t SELECT generate_series(1, 1000)')
    lsn = primary.psql('SELECT pg_current_wal_lsn()')
    d.wait_for(f"SELECT pg_last_wal_receive_lsn() >= '{lsn}'", 't')
    primary.stop('immediate')
    if diverge:
        b.start()
    b.psql('SELECT pg_promote()')
    b.psql('CHECKPOINT')
    d.psql(f"ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={b.port} user=replicator password=repl-secret "
           "sslmode=require application_name=d'")
    d.psql("ALTER SYSTEM SET primary_slot_name = ''")
    d.psql('SELECT pg_reload_conf()')
    return b, d


def verdict(b, d) -> dict[str, str]:
    wait = bind(role_query('Wait until the WAL receiver streams from'), host='127.0.0.1', port=b.port, slot='')
    deadline = time.monotonic() + 10
    while True:
        status, from_upstream, replay_pending = rows(d, wait)[0]
        if replay_pending == 't' or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    held_tli, position, seg_end = rows(d, role_query('Read the newest timeline and position'))[0]
    tli, switchpoint, can_follow = rows(b, bind(role_query('Ask the upstream where its timelines began'),
                                                tli=held_tli, pos=position, seg_end=seg_end))[0]
    return dict(status=status, from_upstream=from_upstream, replay_pending=replay_pending, held_tli=held_tli,
                position=position, tli=tli, switchpoint=switchpoint, can_follow=can_follow)


@pytest.mark.parametrize('diverge', [True, False], ids=['received-past-the-fork', 'within-the-fork'])
def test_a_delayed_replica_is_judged_by_its_upstream_timeline_history(make_standby, primary, diverge):
    b, d = failover(make_standby, primary, diverge)
    v = verdict(b, d)
    # Waiting for its delay, not streaming from b: the case the role does not wait for.
    assert v['from_upstream'] == 'f' and v['replay_pending'] == 't', v
    assert v['held_tli'] == '1' and v['tli'] == '2', v
    # 'no' fails the run (re-seed it): PostgreSQL would refuse the new timeline once the delay is over.
    assert v['can_follow'] == ('no' if diverge else 'yes'), v
    # Review 10, finding 1: restarted, its received position is gone; the end of its newest segment lies past
    # the fork either way, so it cannot be told: the run warns ('unknown') and never advises re-seeding a
    # healthy delayed copy on that alone.
    d.stop()
    d.start()
    v = verdict(b, d)
    assert v['position'] == '' and v['replay_pending'] == 't', v
    assert v['can_follow'] == 'unknown', v


def test_after_a_restart_a_delayed_replica_counts_as_waiting_for_its_delay(make_standby, primary):
    """Review 9, finding 2: after a restart pg_last_wal_receive_lsn() is NULL until a WAL receiver starts,
    which a delayed standby does only after replaying its local WAL; its startup process waits in
    RecoveryApplyDelay, which the wait query counts as replay pending."""
    primary.psql('CREATE TABLE t (i int)')
    d = make_standby(primary, 'd', slot='d')
    d.write_conf(recovery_min_apply_delay='60s')
    d.psql('SELECT pg_reload_conf()')
    d.wait_for("SELECT count(*) FROM pg_class WHERE relname = 't'", '1')
    primary.psql('INSERT INTO t VALUES (1)')
    lsn = primary.psql('SELECT pg_current_wal_lsn()')
    d.wait_for(f"SELECT pg_last_wal_receive_lsn() >= '{lsn}'", 't')
    d.stop()
    d.start()
    wait = bind(role_query('Wait until the WAL receiver streams from'), host='127.0.0.1', port=primary.port, slot='d')
    deadline = time.monotonic() + 20
    while True:
        try:
            status, from_upstream, replay_pending = rows(d, wait)[0]
            if replay_pending == 't' or time.monotonic() > deadline:
                break
        except RuntimeError:          # not accepting connections yet
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)
    assert (status, from_upstream, replay_pending) == ('', 'f', 't')
    held_tli, position, seg_end = rows(d, role_query('Read the newest timeline and position'))[0]
    tli, switchpoint, can_follow = rows(primary, bind(role_query('Ask the upstream where its timelines began'),
                                                      tli=held_tli, pos=position, seg_end=seg_end))[0]
    assert (held_tli, position, tli, switchpoint, can_follow) == ('1', '', '1', '', 'yes')
