# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security checks against the deployed lab: the password stays secret, nobody else gets in."""

from __future__ import annotations

import json
import shlex
import time

from conftest import (NODES, CmdlineSampler, OUTSIDER, PRIMARY, REPLICAS, REPO, REPORT, SITE, ansible_playbook, check_rows_everywhere,
                      cluster, dexec, failure_message, password, psql, recap, wait_streaming, write_rows)

G = 'security (molecule scenario faults)'
PROBE = (REPO / 'molecule' / 'default' / 'files' / 'pg_probe.py').read_text()


def _forms(pw: str) -> list[str]:
    """The password and every encoding it could leak in; its random first word catches any other."""
    return [pw, json.dumps(pw)[1:-1], repr(pw)[1:-1], shlex.quote(pw), pw.replace('\\', '\\\\').replace(':', '\\:'),
            pw.replace('\\', '\\\\').replace("'", "\\'"), pw.split()[0]]


def _probe(node: str, host: str, port: int) -> dict:
    return json.loads(dexec(node, 'python3', '-', host, str(port), stdin=PROBE).stdout)


def test_vvv_reclone_never_shows_the_password(lab):
    node = REPLICAS[1]
    info = cluster(node)
    with REPORT.case(G, 'site.yml -vvv while it re-clones a replica: the password is nowhere in the output',
                     'a replica whose data directory was lost is cloned again by site.yml -vvv (with '
                     'catmaid_replication_sslmode=verify-full, checked below); neither the password '
                     'nor any escaped form of it (JSON, shell, pgpass, conninfo) nor its random first word is in '
                     'stdout or stderr; /proc/*/cmdline sampled on the replica and the primary during the run') as c:
        write_rows('vvv-reclone', 300)
        dexec(node, 'systemctl', 'stop', info['service'])
        dexec(node, 'mv', info['data_dir'], info['data_dir'] + '.lost')
        sampler = CmdlineSampler([node, PRIMARY], password())
        try:
            res = ansible_playbook(SITE, '-vvv', extra_vars={'catmaid_replication_sslmode': 'verify-full'})
        finally:
            samples = sampler.stop()
        out = res.stdout + res.stderr
        assert res.returncode == 0, failure_message(res.stdout) or out[-3000:]
        leaked = [i for i, form in enumerate(_forms(password())) if form in out]
        assert not leaked, f'password form(s) #{leaked} in the -vvv output'
        counts = recap(res.stdout)
        clone = out.split('Clone the primary through the proxy over SSL]', 1)[-1].split('TASK [', 1)[0]
        assert counts[node]['changed'] > 0 and f'changed: [{node}]' in clone, f'no clone ran on {node}'
        c.note(f'-vvv output: {len(out.splitlines())} lines, {len(out)} bytes; {node} re-cloned (changed={counts[node]["changed"]}); '
               f'none of {len(_forms(password()))} forms of the password in it')
        for n, s in samples.items():
            c.note(f'{n}: {s["samples"]} cmdline samples during the run, pg_basebackup seen {s["saw_pg_basebackup"]} times, '
                   f'matches {s["matches"]}')
        assert samples[node]['saw_pg_basebackup'] > 0 and not any(s['matches'] for s in samples.values())
        wait_streaming(120, c)
        check_rows_everywhere('vvv-reclone', 300, c)
        dexec(node, 'rm', '-rf', info['data_dir'] + '.lost')


def test_password_in_no_world_readable_file_or_log(lab):
    with REPORT.case(G, 'the password is in no world-readable file and no log file on any host',
                     'every file readable by others (outside /proc, /sys, /dev), and every file of any mode under '
                     '/var/log, /var/lib/postgresql, /etc/postgresql and /etc/nginx, searched for the password\'s random '
                     'first word (found in any encoding): only the replicas\' 0600 passfiles hold it (a control)') as c:
        word = password().split()[0]
        for node in NODES + [OUTSIDER]:
            dexec(node, 'bash', '-c', 'umask 077; cat > /root/.faults-pat', stdin=word)
            try:
                found = dexec(node, 'bash', '-c',
                              'find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -perm -o=r -print0 '
                              '| xargs -0 -r grep -l -s -F -f /root/.faults-pat -- || true').stdout.split()
                logs = dexec(node, 'bash', '-c', 'find /var/log /var/lib/postgresql /etc/postgresql /etc/nginx -type f -print0 '
                                                 '| xargs -0 -r grep -l -s -F -f /root/.faults-pat -- || true').stdout.split()
                # The one place it belongs: the replica's libpq password file (0600, checked below).
                passfile = ''
                if node in REPLICAS:
                    conninfo = psql(node, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
                    passfile = next(w.split('=', 1)[1].strip("'") for w in conninfo.split() if w.startswith('passfile='))
                    assert passfile in logs, 'control: the passfile should hold the password'
                    logs.remove(passfile)
                control = dexec(node, 'bash', '-c', 'grep -l -F -f /root/.faults-pat /root/.faults-pat').stdout.split()
            finally:
                dexec(node, 'rm', '-f', '/root/.faults-pat')
            assert control == ['/root/.faults-pat'], 'the search does not work (control failed)'
            assert not found, f'world-readable files on {node} hold the password: {found}'
            assert not logs, f'files under log/config/data directories on {node} hold the password: {logs}'
            c.note(f'{node}: no world-readable file; under /var/log, /var/lib/postgresql, /etc/postgresql and /etc/nginx '
                   f'(any mode) only {passfile or "nothing"}' + (' (the 0600 passfile)' if passfile else ''))


def test_no_trust_or_md5_replication_rule(lab):
    with REPORT.case(G, 'pg_hba.conf has no trust or md5 rule for replication',
                     'pg_hba_file_rules (what the server loaded) on every node: no replication rule is trust, md5 or '
                     'password; on the primary every TCP replication rule for a non-loopback source or the proxy\'s '
                     'address is hostssl with scram-sha-256 or a reject') as c:
        for node in NODES:
            rows = psql(node, "SELECT concat_ws(' ', type, address, auth_method) FROM pg_hba_file_rules "
                              "WHERE 'replication' = ANY(database) ORDER BY line_number").splitlines()
            bad = [r for r in rows if r.split()[-1] in ('trust', 'md5', 'password')]
            assert not bad, f'{node}: {bad}'
            if node == PRIMARY:
                # Only hostssl with scram-sha-256 may admit replication from the proxy's address or the network;
                # everything else from the proxy's address is rejected. Debian's own 127.0.0.1 / ::1 lines (local
                # clients, scram-sha-256 on bookworm) stay: the proxy never connects from there.
                tcp = [r for r in rows if not r.startswith('local')
                       and not (r.split()[1] in ('127.0.0.1', '::1') and r.endswith('scram-sha-256'))]
                assert tcp and all((r.startswith('hostssl') and r.endswith('scram-sha-256')) or r.endswith('reject')
                                   for r in tcp), f'{node}: {tcp}'
                assert any(r.startswith('hostssl') for r in tcp), f'{node}: {tcp}'
            c.note(f'{node}: replication rules {rows}')


def test_replication_without_ssl_is_refused(lab):
    with REPORT.case(G, 'replication without SSL is refused by the server',
                     'from a replica through the proxy, the replica\'s own conninfo (passfile, right password) with '
                     'sslmode=disable fails with "no pg_hba.conf entry ... no encryption"; the same with '
                     'sslmode=require succeeds (control)') as c:
        r = REPLICAS[0]
        conninfo = psql(r, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
        ok = dexec(r, 'psql', '-X', '-A', '-t', '-c', 'IDENTIFY_SYSTEM',
                   f'{conninfo} replication=true dbname=replication sslmode=require', user='postgres', check=False)
        assert ok.returncode == 0, ok.stderr
        bad = dexec(r, 'psql', '-X', '-A', '-t', '-c', 'IDENTIFY_SYSTEM',
                    f'{conninfo} replication=true dbname=replication sslmode=disable', user='postgres', check=False)
        assert bad.returncode != 0 and 'no encryption' in bad.stderr, bad.stderr
        c.note(f'sslmode=require: answered; sslmode=disable: {" ".join(bad.stderr.split())[:220]}')


def test_proxy_admits_replication_only(lab):
    """Issue 14 item 9: before, nginx forwarded from 127.0.0.1 and Debian's "host all all 127.0.0.1/32"
    let a replica host log in to every database through the proxy, with or without TLS."""
    with REPORT.case(G, 'the proxy admits replication only, never a database login',
                     'from a replica, the replication role\'s own conninfo (passfile, right password) with '
                     'dbname=postgres instead of replication, through the proxy: refused by pg_hba.conf with and '
                     'without SSL (the proxy connects from its own address, 127.0.0.2, which only replication may '
                     'use); on the parent commit both logins succeeded and could read every database. Control: on '
                     'the primary a local client on 127.0.0.1 still logs in, and replication through the proxy '
                     'still works') as c:
        r = REPLICAS[0]
        conninfo = psql(r, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
        for mode in ('require', 'disable'):
            res = dexec(r, 'psql', '-X', '-A', '-t', '-c', 'SELECT current_database()',
                        f'{conninfo} dbname=postgres sslmode={mode}', user='postgres', check=False)
            assert res.returncode != 0 and 'pg_hba.conf rejects connection for host "127.0.0.2"' in res.stderr, \
                (mode, res.stdout, res.stderr)
            c.note(f'{r} -> proxy, dbname=postgres sslmode={mode}: {" ".join(res.stderr.split())[:160]}')
        ok = dexec(r, 'psql', '-X', '-A', '-t', '-c', 'IDENTIFY_SYSTEM',
                   f'{conninfo} replication=true dbname=replication', user='postgres', check=False)
        assert ok.returncode == 0, ok.stderr
        local = dexec(PRIMARY, 'psql', '-X', '-A', '-t', '-h', '127.0.0.1', '-d', 'postgres', '-c', 'SELECT 1',
                      user='postgres', check=False)
        # postgres has no password: reaching password authentication proves the 127.0.0.1 rule still applies.
        assert 'password' in (local.stderr + local.stdout).lower() or local.returncode == 0, local.stderr
        c.note(f'control: replication through the proxy answered; local 127.0.0.1 client reaches its own rule '
               f'({" ".join((local.stderr or local.stdout).split())[:100]})')


def test_outsider_cannot_reach_the_proxy(lab):
    with REPORT.case(G, 'a host outside the allow list cannot connect to the proxy port',
                     f'{OUTSIDER} sends a PostgreSQL SSLRequest to {PRIMARY}:7432 and gets no answer (nginx deny); '
                     'the same probe from each replica is answered (control)') as c:
        out = _probe(OUTSIDER, PRIMARY, 7432)
        assert out['result'] in ('closed', 'reset', 'refused', 'timeout'), out
        c.note(f'{OUTSIDER} -> {PRIMARY}:7432: {out["result"]}')
        for r in REPLICAS:
            ctl = _probe(r, PRIMARY, 7432)
            assert ctl['result'] == 'answered', ctl
            c.note(f'{r} -> {PRIMARY}:7432: answered {ctl["answer"]!r} (control)')


def test_postgresql_port_not_reachable(lab):
    with REPORT.case(G, "PostgreSQL's own port is not reachable from the replicas (proxy in use)",
                     f'an SSLRequest to {PRIMARY}:5432 from each replica and from {OUTSIDER} gets no PostgreSQL answer; '
                     'the primary listens on localhost only') as c:
        for node in REPLICAS + [OUTSIDER]:
            out = _probe(node, PRIMARY, 5432)
            assert out['result'] != 'answered', out
            c.note(f'{node} -> {PRIMARY}:5432: {out["result"]}')
        c.note('listen_addresses on the primary: ' + psql(PRIMARY, 'SHOW listen_addresses'))


def test_key_files_private(lab):
    with REPORT.case(G, 'key files and the password file are 0600 and owned by postgres',
                     'every SSL private key PostgreSQL uses (ssl_key_file) and each replica\'s libpq password file') as c:
        for node in NODES:
            key = psql(node, 'SHOW ssl_key_file')
            files = [key]
            if node in REPLICAS:
                conninfo = psql(node, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
                files += [w.split('=', 1)[1].strip("'") for w in conninfo.split() if w.startswith('passfile=')]
            for f in files:
                st = dexec(node, 'stat', '-c', '%a %U %G', f).stdout.split()
                assert st == ['600', 'postgres', 'postgres'], f'{node}:{f} is {st}'
                c.note(f'{node}: {f} {" ".join(st)}')


def test_verify_full_with_the_distributed_certificate(lab):
    with REPORT.case(G, 'sslmode=verify-full, the replication set\'s CA on every node',
                     'after site.yml -e catmaid_replication_sslmode=verify-full (the -vvv run above): each replica has '
                     'the replication set\'s CA certificate as its trust anchor (0644, postgres), the same file as on the '
                     'primary, whose server certificate it signed (openssl verify); its primary_conninfo and WAL '
                     'receiver use verify-full, both stream and every row arrives') as c:
        write_rows('verify-full', 200)
        server_crt = dexec(PRIMARY, 'bash', '-c', 'cat /etc/postgresql/*/main/ssl/catmaid-replication-ca.crt').stdout
        signed = dexec(PRIMARY, 'bash', '-c', 'cd /etc/postgresql/*/main/ssl && openssl verify -CAfile catmaid-replication-ca.crt '
                                              'server.crt').stdout
        assert signed.strip().endswith(': OK'), signed
        c.note(f'{PRIMARY}: {signed.strip()}')
        wait_streaming(120, c)
        for r in REPLICAS:
            conninfo = psql(r, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
            received = psql(r, 'SELECT conninfo FROM pg_stat_wal_receiver')
            root = next(w.split('=', 1)[1].strip("'") for w in conninfo.split() if w.startswith('sslrootcert='))
            assert 'sslmode=verify-full' in conninfo.replace("'", '') and 'sslmode=verify-full' in received, (conninfo, received)
            assert dexec(r, 'cat', root).stdout == server_crt
            st = dexec(r, 'stat', '-c', '%a %U', root).stdout.split()
            c.note(f'{r}: primary_conninfo and WAL receiver sslmode=verify-full, sslrootcert {root} ({" ".join(st)}) '
                   f'= the CA certificate on the primary')
        check_rows_everywhere('verify-full', 200, c)


def test_wrong_certificate_is_refused(lab):
    r = REPLICAS[0]
    with REPORT.case(G, 'a replica pointed at a host with the wrong certificate refuses to connect',
                     '(1) site.yml --limit a replica, verify-full with the replication set\'s CA as sslrootcert, '
                     'the primary addressed by its IP (the certificate names fl-primary): fails at the replica\'s first '
                     'login and changes nothing; (2) an impostor PostgreSQL '
                     f'on {OUTSIDER} with a self-made certificate for "fl-primary" is refused under verify-full '
                     '("certificate verify failed") although sslmode=require without a root certificate would have talked to it') as c:
        ip = dexec(PRIMARY, 'hostname', '-I').stdout.split()[0]
        starts = {n: psql(n, 'SELECT pg_postmaster_start_time()') for n in NODES}
        root = dexec(r, 'bash', '-c', 'ls /etc/postgresql/*/main/ssl/catmaid-replication-ca.crt').stdout.strip()
        res = ansible_playbook(SITE, '--limit', r, extra_vars={'catmaid_replication_sslmode': 'verify-full',
                                                               'catmaid_replication_sslrootcert': root,
                                                               'catmaid_replication_primary_address': ip})
        msg = failure_message(res.stdout)
        assert res.returncode != 0 and 'does not match host name' in res.stdout, msg or res.stdout[-2000:]
        changed = {h: v['changed'] for h, v in recap(res.stdout).items() if h != 'localhost'}
        assert not any(changed.values()), changed
        assert {n: psql(n, 'SELECT pg_postmaster_start_time()') for n in NODES} == starts
        c.note(f'(1) message: {msg}; changed=0 on {", ".join(sorted(changed))}')
        # (2) the impostor: same name in its certificate, but not signed by the replica's trust anchor
        outsider_ip = dexec(OUTSIDER, 'hostname', '-I').stdout.split()[0]
        conf = dexec(OUTSIDER, 'bash', '-c', 'ls -d /etc/postgresql/*/main').stdout.strip()
        dexec(OUTSIDER, 'bash', '-c', f'cd {conf} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fl-primary '
                                      '-addext subjectAltName=DNS:fl-primary -keyout impostor.key -out impostor.crt 2>/dev/null '
                                      '&& chown postgres: impostor.* && chmod 600 impostor.key '
                                      f'&& printf "%s\\n" "listen_addresses = \'*\'" "ssl_cert_file = \'{conf}/impostor.crt\'" '
                                      f'"ssl_key_file = \'{conf}/impostor.key\'" > conf.d/99-impostor.conf '
                                      '&& echo "hostssl replication all 0.0.0.0/0 reject" >> pg_hba.conf')
        dexec(OUTSIDER, 'bash', '-c', 'systemctl restart postgresql@$(pg_lsclusters --no-header | cut -d" " -f1)-main')
        conninfo = psql(r, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
        target = f'{conninfo} host=fl-primary hostaddr={outsider_ip} port=5432 replication=true dbname=replication'
        bad = dexec(r, 'psql', '-X', '-c', 'IDENTIFY_SYSTEM', f'{target} sslmode=verify-full', user='postgres', check=False)
        assert bad.returncode != 0 and 'certificate verify failed' in bad.stderr, bad.stderr
        ctl = dexec(r, 'psql', '-X', '-c', 'IDENTIFY_SYSTEM', f'{target} sslmode=require sslrootcert=/nonexistent',
                    user='postgres', check=False)
        assert 'pg_hba.conf' in ctl.stderr and 'SSL encryption' in ctl.stderr, ctl.stderr
        c.note(f'(2) verify-full -> impostor {outsider_ip}: {" ".join(bad.stderr.split())[:200]}')
        c.note(f'    sslmode=require -> impostor: TLS accepted, stopped only by its pg_hba ({" ".join(ctl.stderr.split())[:120]})')
        wait_streaming(60)


def test_every_row_on_every_node(lab):
    with REPORT.case(G.replace('security', 'all cases'), 'after every case: all rows on every node',
                     'count and md5 of every row written by every case, in key order, equal on the primary and both '
                     'replicas; both replicas streaming') as c:
        sql = ("SELECT count(*) || ' ' || md5(string_agg(case_name || '/' || n || ':' || payload, ',' "
               "ORDER BY case_name, n)) FROM fault_rows")
        want = psql(PRIMARY, sql)
        wait_streaming(60)
        for r in REPLICAS:
            for _attempt in range(30):
                if psql(r, sql) == want:
                    break
                time.sleep(1)
            assert psql(r, sql) == want, f'{r}: {psql(r, sql)} != {want}'
        c.note(f'{want.split()[0]} rows, md5 {want.split()[1][:12]}... on {", ".join(NODES)}')
