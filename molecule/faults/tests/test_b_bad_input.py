# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input against the deployed lab: playbooks/site.yml fails before changing anything.

Each case runs the site playbook as an operator would, with one mistake, and proves: the run
failed with a message that says what to fix, every host's PLAY RECAP shows changed=0, the
configuration of every node (conf.d, pg_hba.conf, passfile, nginx stream server) is byte for
byte the same, no server restarted, and rows written before the mistake and after it reach every
node (the lab keeps working).
"""

from __future__ import annotations

from conftest import (NODES, OUTSIDER, PRIMARY, REPLICAS, REPORT, SITE, ansible_playbook, check_rows_everywhere,
                      config_digest, dexec, failure_message, password, postmaster_start, psql, recap, wait_streaming,
                      write_rows)

G = 'bad input (molecule scenario faults)'


def _refused(case: str, c, *args: str, extra_vars=None, extra_inventory=None, expect: tuple[str, ...] = (),
             nodes: list[str] | None = None) -> str:
    nodes = nodes or NODES
    write_rows(case, 100)
    configs = {n: config_digest(n) for n in nodes}
    starts = {n: postmaster_start(n) for n in nodes}
    res = ansible_playbook(SITE, *args, extra_vars=extra_vars, extra_inventory=extra_inventory)
    out = res.stdout + res.stderr
    assert res.returncode != 0, f'the run should have failed:\n{out[-3000:]}'
    msg = failure_message(res.stdout)
    for text in expect:
        assert text.lower() in out.lower(), f'{text!r} not in the failure: {msg or out[-2000:]}'
    c.note(f'message: {msg}')
    counts = recap(res.stdout)
    changed = {h: v.get('changed', 0) for h, v in counts.items() if h != 'localhost'}
    assert changed and not any(changed.values()), f'something changed: {changed}'
    c.note(f'PLAY RECAP changed=0 on {", ".join(sorted(changed))}')
    assert {n: config_digest(n) for n in nodes} == configs, 'a configuration file changed'
    assert {n: postmaster_start(n) for n in nodes} == starts, 'a server restarted'
    c.note('configuration files identical, no server restarted')
    wait_streaming(60)
    write_rows(case, 100, start=101)
    check_rows_everywhere(case, 200, c)
    return msg


def test_wrong_replication_password(lab):
    with REPORT.case(G, 'wrong replication password (site.yml --limit one replica, as when adding it)',
                     'the replica role\'s replication login fails first: "password authentication failed ... check '
                     'the replication password"; nothing changed') as c:
        _refused('bad-password', c, '--limit', REPLICAS[0],
                 extra_vars={'catmaid_replication_password': password() + ' but wrong'},
                 expect=('password authentication failed', 'check the replication password'))


def test_primary_unreachable(lab):
    with REPORT.case(G, 'primary unreachable (replicas told to reach it at a host where nothing listens)',
                     'the replicas\' first step, a replication login, fails: "cannot reach the primary at '
                     'fl-outsider:7432: check host, port, firewall ..."; nothing changed') as c:
        _refused('unreachable', c, extra_vars={'catmaid_replication_primary_address': OUTSIDER},
                 expect=('cannot reach the primary', f'{OUTSIDER}:7432'))


def test_wrong_proxy_port(lab):
    with REPORT.case(G, 'wrong proxy port for one replica (7433; site.yml --limit that replica)',
                     'the replication login fails: "cannot reach the primary at fl-primary:7433"; nothing changed') as c:
        _refused('wrong-port', c, '--limit', REPLICAS[0], extra_inventory={'all': {'hosts': {REPLICAS[0]: {'catmaid_replication_port': 7433}}}},
                 expect=('cannot reach the primary', f'{PRIMARY}:7433'))


def test_replica_host_with_a_live_user_database(lab):
    with REPORT.case(G, 'a host listed as a replica whose data directory holds a live database with user data',
                     'refused while facts are gathered, naming the database and replica_force; the primary gets no '
                     'slot and no allow-list entry for it; the database and its rows are untouched') as c:
        dexec(OUTSIDER, 'bash', '-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null', timeout=600)
        psql(OUTSIDER, 'CREATE DATABASE catmaid', check=False)
        psql(OUTSIDER, 'CREATE TABLE IF NOT EXISTS stacks (id int PRIMARY KEY, title text); '
                       "INSERT INTO stacks SELECT g, 'stack ' || g FROM generate_series(1, 250) g ON CONFLICT DO NOTHING", db='catmaid')
        sql = "SELECT count(*) || ' ' || md5(string_agg(id || title, ',' ORDER BY id)) FROM stacks"
        data_before = psql(OUTSIDER, sql, db='catmaid')
        slots_before = psql(PRIMARY, 'SELECT string_agg(slot_name, \',\' ORDER BY slot_name) FROM pg_replication_slots')
        _refused('live-database', c, extra_inventory={'replicas': {'hosts': {OUTSIDER: None}}},
                 expect=('holds data', 'catmaid', 'catmaid_replication_force', 'Nothing was changed on any host'), nodes=NODES + [OUTSIDER])
        assert psql(OUTSIDER, sql, db='catmaid') == data_before
        assert psql(PRIMARY, 'SELECT string_agg(slot_name, \',\' ORDER BY slot_name) FROM pg_replication_slots') == slots_before
        allow = dexec(PRIMARY, 'bash', '-c', 'grep -h allow /etc/nginx/stream.d/*.conf').stdout.split('\n')
        outsider_ip = dexec(OUTSIDER, 'hostname', '-I').stdout.split()[0]
        assert not [a for a in allow if outsider_ip in a], f'{OUTSIDER} ({outsider_ip}) got into the allow list: {allow}'
        c.note(f'{OUTSIDER}: catmaid.stacks still {data_before.split()[0]} rows, same checksum; primary slots still '
               f'{slots_before}; {outsider_ip} not in the allow list')


def test_awkward_password_works(lab):
    with REPORT.case(G, "a password with ' \" \\ : and spaces (the lab's own, deployed for real)",
                     'site.yml deployed the lab with it; each replica streams with it from its passfile, and a '
                     'replication login with it through the proxy answers IDENTIFY_SYSTEM') as c:
        pw = password()
        assert all(ch in pw for ch in ('\'', '"', '\\', ':', ' ')), 'the lab password lost its awkward characters'
        for r in REPLICAS:
            conninfo = psql(r, "SELECT setting FROM pg_settings WHERE name = 'primary_conninfo'")
            assert 'password' not in conninfo.lower().replace('passfile', ''), 'password in primary_conninfo'
            out = dexec(r, 'psql', '-X', '-A', '-t', '-c', 'IDENTIFY_SYSTEM', f'{conninfo} replication=true dbname=replication',
                        user='postgres').stdout
            assert psql(PRIMARY, 'SELECT system_identifier FROM pg_control_system()') in out
            c.note(f'{r}: replication login with the passfile answered IDENTIFY_SYSTEM ({out.split("|")[0]})')
        wait_streaming(60, c)
