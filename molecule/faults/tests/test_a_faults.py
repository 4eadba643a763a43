# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults against the deployed lab: restarts, a network cut, a proxy outage, clones that die.

Each case writes known rows on the primary first and checks their count and checksum on every
node at the end. The cases run one after another (file order) against the same lab.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

from conftest import (NETWORK, PRIMARY, CmdlineSampler, REPLICAS, REPORT, SCENARIO, ansible_playbook, check_rows_everywhere,
                      dexec, failure_message, psql, receiver_pid, streaming, tree_digest, wait_for, password,
                      wait_streaming, write_rows)

G = 'faults (molecule scenario faults)'


def test_primary_restart_while_replicas_stream(lab):
    with REPORT.case(G, 'primary restarted while the replicas stream',
                     'replicas reconnect on their own (new WAL receiver, both streaming again); rows written '
                     'before and after the restart are on every node') as c:
        write_rows('primary-restart', 500)
        before = {r: receiver_pid(r) for r in REPLICAS}
        dexec(PRIMARY, 'systemctl', 'restart', lab['primary']['service'])
        write_rows('primary-restart', 500, start=501)
        wait_streaming(120, c)
        after = {r: receiver_pid(r) for r in REPLICAS}
        assert all(before[r] != after[r] for r in REPLICAS), f'WAL receivers did not reconnect: {before} -> {after}'
        c.note(f'WAL receiver pids {before} -> {after} (reconnected without help)')
        check_rows_everywhere('primary-restart', 1000, c)


def test_replica_cut_off_from_the_network_for_60_s(lab):
    with REPORT.case(G, 'replica cut off from the lab network for 60 s, then reconnected',
                     'while cut off its slot stays on the primary and keeps the WAL; after reconnecting it '
                     'catches up through the slot: every row written meanwhile is on every node') as c:
        victim = REPLICAS[0]
        slot = victim.replace('-', '_')
        ip = json.loads(subprocess.run(['docker', 'inspect', '-f', '{{json .NetworkSettings.Networks}}', victim],
                                       capture_output=True, text=True, check=True).stdout)[NETWORK]['IPAddress']
        write_rows('network-cut', 200)
        check_rows_everywhere('network-cut', 200)
        t0 = time.monotonic()
        subprocess.run(['docker', 'network', 'disconnect', NETWORK, victim], check=True)
        try:
            write_rows('network-cut', 5000, start=201)
            psql(PRIMARY, 'SELECT pg_switch_wal()')
            slot_lsn = psql(PRIMARY, f"SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'")
            current = psql(PRIMARY, 'SELECT pg_current_wal_lsn()')
            behind = psql(victim, "SELECT count(*) FROM fault_rows WHERE case_name = 'network-cut'")
            assert behind == '200', f'{victim} should not see rows written while it is cut off (sees {behind})'
            c.note(f'cut off: {victim} sees 200 of 5200 rows; slot {slot} restart_lsn {slot_lsn} <= current {current}')
            time.sleep(max(0.0, 60 - (time.monotonic() - t0)))
            kept = psql(PRIMARY, f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{slot}'")
            assert kept in ('reserved', 'extended'), f'slot {slot} lost its WAL: wal_status {kept}'
            c.note(f'after {time.monotonic() - t0:.0f} s cut off: slot {slot} wal_status {kept}')
        finally:
            subprocess.run(['docker', 'network', 'connect', '--ip', ip, NETWORK, victim], check=True)
        wait_streaming(180, c)
        check_rows_everywhere('network-cut', 5200, c, timeout=120)


def test_replica_restarted(lab):
    with REPORT.case(G, 'replica restarted (its container, like a reboot)',
                     'PostgreSQL comes back as a standby by itself and streams; rows written while it was '
                     'down are on every node') as c:
        victim = REPLICAS[1]
        write_rows('replica-restart', 300)
        proc = subprocess.Popen(['docker', 'restart', '-t', '30', victim], stdout=subprocess.DEVNULL)
        write_rows('replica-restart', 300, start=301)
        assert proc.wait(timeout=120) == 0
        wait_for(f'{victim} answering', lambda: 'ok' if psql(victim, 'SELECT pg_is_in_recovery()', check=False) == 't' else 'no',
                 timeout=120)
        wait_streaming(120, c)
        check_rows_everywhere('replica-restart', 600, c)


def test_nginx_restarted(lab):
    with REPORT.case(G, 'nginx (the replication proxy) restarted',
                     'both replicas reconnect through the proxy; rows written around the restart are on every node') as c:
        write_rows('nginx-restart', 300)
        dexec(PRIMARY, 'systemctl', 'restart', 'nginx')
        write_rows('nginx-restart', 300, start=301)
        wait_streaming(120, c)
        check_rows_everywhere('nginx-restart', 600, c)


def test_nginx_stopped_then_started(lab):
    with REPORT.case(G, 'nginx stopped for 20 s, then started',
                     'while it is stopped the replicas get nothing (rows written then are missing on them); '
                     'after the start they stream again and have every row') as c:
        write_rows('nginx-stop', 100)
        check_rows_everywhere('nginx-stop', 100)
        dexec(PRIMARY, 'systemctl', 'stop', 'nginx')
        t0 = time.monotonic()
        try:
            write_rows('nginx-stop', 900, start=101)
            wait_for('replicas losing the stream', lambda: 'ok' if not any(v == 'streaming' for v in streaming().values())
                     else str(streaming()), timeout=30)
            seen = {r: psql(r, "SELECT count(*) FROM fault_rows WHERE case_name = 'nginx-stop'") for r in REPLICAS}
            assert all(v == '100' for v in seen.values()), f'replicas saw rows although the proxy was down: {seen}'
            c.note(f'proxy down: replicas see {seen} of 1000 rows, none streams')
            time.sleep(max(0.0, 20 - (time.monotonic() - t0)))
        finally:
            dexec(PRIMARY, 'systemctl', 'start', 'nginx')
        wait_streaming(120, c)
        check_rows_everywhere('nginx-stop', 1000, c)


def _new_previous_cluster(node: str, parent: str) -> str:
    """A stopped, freshly initialised cluster at parent/data: the 'previous data directory'."""
    major = dexec(node, 'pg_lsclusters', '--no-header').stdout.split()[0]
    data = f'{parent}/data'
    dexec(node, 'bash', '-c', f'mkdir -p {parent} && chown postgres:postgres {parent} && chmod 0700 {parent} && rm -rf {data}')
    dexec(node, f'/usr/lib/postgresql/{major}/bin/initdb', '-D', data, '-A', 'peer', user='postgres')
    dexec(node, 'bash', '-c', f'echo "previous cluster of the faults suite" > {data}/MARKER', user='postgres')
    return data


def _system_identifier(node: str, data: str) -> str:
    major = dexec(node, 'pg_lsclusters', '--no-header').stdout.split()[0]
    out = dexec(node, f'/usr/lib/postgresql/{major}/bin/pg_controldata', data, user='postgres').stdout
    return next(line.split(':', 1)[1].strip() for line in out.splitlines() if line.startswith('Database system identifier'))


def test_clone_interrupted_then_rerun(lab):
    node = REPLICAS[1]
    parent = '/var/lib/postgresql/faults-clone'
    with REPORT.case(G, 'pg_basebackup killed part way through a clone, then rerun',
                     'the killed run fails and leaves the previous data directory byte for byte as it was '
                     '(no half clone in its place); the rerun completes and the directory then holds a clone '
                     'of the primary (same system identifier); rows written during the clone are on every node') as c:
        psql(PRIMARY, 'CREATE DATABASE faultbench', check=False)
        dexec(PRIMARY, 'pgbench', '-i', '-q', '-s', '10', 'faultbench', user='postgres', timeout=600)
        size = psql(PRIMARY, "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
        data = _new_previous_cluster(node, parent)
        before = tree_digest(node, data)
        write_rows('clone-interrupted', 400)
        sampler = CmdlineSampler([node, PRIMARY], password())
        vars_ = {'clone_host': node, 'clone_data_dir': data, 'clone_max_rate': '8M'}
        result: dict = {}
        thread = threading.Thread(target=lambda: result.update(r=ansible_playbook(SCENARIO / 'clone.yml', extra_vars=vars_)))
        thread.start()
        tmp_size = wait_for('a half-done clone of at least 20 MB beside the data directory', lambda: int(dexec(
            node, 'bash', '-c', f'du -sm {parent}/.data.clone-* 2>/dev/null | cut -f1 | sort -n | tail -1 || true').stdout.strip() or 0)
            // 20 * 20, timeout=120, interval=0.5)
        pid = dexec(node, 'pgrep', '-x', '-u', 'postgres', 'pg_basebackup').stdout.split()[0]
        dexec(node, 'kill', '-KILL', pid)
        thread.join(timeout=300)
        first = result['r']
        samples = sampler.stop()
        assert first.returncode != 0, 'the clone whose pg_basebackup was killed must fail'
        msg = failure_message(first.stdout)
        c.note(f'primary holds {size}; pg_basebackup (pid {pid}) killed with {tmp_size} MB cloned; module said: {msg}')
        assert tree_digest(node, data) == before, 'the previous data directory changed'
        assert 'previous cluster' in dexec(node, 'cat', f'{data}/MARKER').stdout
        c.note(f'previous data directory unchanged (digest and file count {before.split()[-1]} files)')
        second = ansible_playbook(SCENARIO / 'clone.yml', extra_vars={'clone_host': node, 'clone_data_dir': data})
        assert second.returncode == 0, second.stdout[-3000:]
        primary_sysid = psql(PRIMARY, 'SELECT system_identifier FROM pg_control_system()')
        assert _system_identifier(node, data) == primary_sysid
        left = dexec(node, 'bash', '-c', f'ls -A {parent}').stdout.split()
        assert not [x for x in left if '.clone-' in x], f'temporary clone directories left: {left}'
        c.note(f'rerun completed: {data} holds a clone of the primary (system identifier {primary_sysid}); '
               f'no temporary directory left ({left})')
        write_rows('clone-interrupted', 400, start=401)
        check_rows_everywhere('clone-interrupted', 800, c)
        dexec(node, 'rm', '-rf', parent)
    # The clone above is also where the password could leak into a command line.
    with REPORT.case('security (molecule scenario faults)', 'the password is in no process command line during a clone',
                     f'/proc/*/cmdline sampled every 50 ms on {node} and {PRIMARY} during the whole interrupted clone; '
                     'the sampler must have seen pg_basebackup running') as c:
        for n, s in samples.items():
            c.note(f'{n}: {s["samples"]} samples, {s["scanned"]} command lines, pg_basebackup seen {s["saw_pg_basebackup"]} '
                   f'times, matches {s["matches"]}')
        assert samples[node]['saw_pg_basebackup'] > 0, 'the sampler never saw pg_basebackup: it proves nothing'
        assert all(not s['matches'] for s in samples.values()), f'password found in command lines: {samples}'


def test_disk_full_during_a_clone(lab):
    node = REPLICAS[1]
    parent = '/srv/faults-small'
    with REPORT.case(G, 'disk full on the replica during a clone (64 MB file system)',
                     'the clone fails with a message naming the lack of space; the previous data directory is '
                     'unchanged and no temporary directory is left; the primary keeps serving and both replicas '
                     'keep streaming every row') as c:
        dexec(node, 'chown', 'postgres:postgres', parent)
        data = _new_previous_cluster(node, parent)
        before = tree_digest(node, data)
        df_before = dexec(node, 'df', '-m', '--output=used,avail', parent).stdout.split()[-2:]
        write_rows('disk-full', 300)
        start = psql(PRIMARY, 'SELECT pg_postmaster_start_time()')
        res = ansible_playbook(SCENARIO / 'clone.yml', extra_vars={'clone_host': node, 'clone_data_dir': data})
        msg = failure_message(res.stdout)
        assert res.returncode != 0, 'a clone into a full file system must fail'
        assert 'No space left on device' in res.stdout or 'space' in msg.lower(), msg
        c.note(f'file system: {df_before[0]} MB used, {df_before[1]} MB free before; module said: {msg}')
        assert tree_digest(node, data) == before, 'the previous data directory changed'
        left = dexec(node, 'bash', '-c', f'ls -A {parent}').stdout.split()
        assert not [x for x in left if '.clone-' in x], f'temporary clone directory left in {parent}: {left}'
        c.note(f'previous data directory unchanged; no temporary clone directory left ({parent} holds {left}: the '
               f'data directory and the configuration files force saved first)')
        assert psql(PRIMARY, 'SELECT pg_postmaster_start_time()') == start
        write_rows('disk-full', 300, start=301)
        wait_streaming(60)
        check_rows_everywhere('disk-full', 600, c)
        c.note('primary not restarted (same pg_postmaster_start_time), still accepting writes')
        dexec(node, 'rm', '-rf', data)
