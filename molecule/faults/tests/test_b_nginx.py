# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication proxy never leaves nginx with a configuration it refuses (issue 14 item 11).

Before, the role wrote its files and only a handler ran `nginx -t`: when the test failed (an
nginx.conf that already had a `stream {}` block: "stream directive is duplicate"; a value nginx
rejects), the broken files stayed in place, a rerun saw no change and never tested again, and the
next restart of nginx took the host's web sites down. Now nginx is tested right after the files
change; a refusal puts the previous files back and fails with nginx's message, and an nginx.conf
with its own stream block gets the include inside that block.
"""

from __future__ import annotations

import time

from conftest import PRIMARY, REPLICAS, REPORT, SITE, ansible_playbook, dexec, failure_message, psql, recap, wait_for, wait_streaming

G = 'stopping services: the proxy (molecule scenario faults)'
CONF = '/etc/nginx/nginx.conf'
SERVER = '/etc/nginx/stream.d/catmaid-replication.conf'


def _nginx_ok() -> tuple[bool, str]:
    res = dexec(PRIMARY, 'nginx', '-t', check=False)
    return res.returncode == 0, ' '.join(res.stderr.split())[-160:]


def _sha(path: str) -> str:
    return dexec(PRIMARY, 'sha256sum', path).stdout.split()[0]


def _reconnect_through_proxy(timeout: float = 60) -> float:
    """End every WAL sender on the primary and wait until each replica streams on a new connection: a run
    under --limit the primary makes no new connection through the reloaded proxy by itself, and a WAL
    sender opened before a reload keeps streaming through nginx's old worker."""
    old = set(psql(PRIMARY, 'SELECT pid FROM pg_stat_replication').split())
    assert old, 'no WAL sender on the primary to end'
    psql(PRIMARY, 'SELECT pg_terminate_backend(pid) FROM pg_stat_replication')
    t0 = time.monotonic()

    def fresh() -> str:
        rows = psql(PRIMARY, "SELECT pid || ' ' || application_name FROM pg_stat_replication WHERE state = 'streaming'",
                    check=False).splitlines()
        names = {name for pid, name in (r.split(' ', 1) for r in rows if ' ' in r) if pid not in old}
        return 'ok' if all(r in names for r in REPLICAS) else f'new streaming senders: {sorted(names)}'
    wait_for('both replicas streaming again on new connections through the proxy', fresh, timeout=timeout)
    return time.monotonic() - t0


def test_refused_value_keeps_the_previous_files(lab):
    with REPORT.case(G, 'a setting nginx refuses: the previous proxy files stay, nginx keeps working',
                     'site.yml -e nginx_stream_proxy_timeout="10 minutes" fails with nginx\'s own message; the stream '
                     'server file is byte for byte what it was, nginx -t passes, the replicas still stream, and a rerun '
                     'with the same value fails again (on the parent commit the refused file stayed, nginx -t failed '
                     'afterwards and the rerun reported success)') as c:
        before = _sha(SERVER)
        for attempt in (1, 2):
            res = ansible_playbook(SITE, extra_vars={'nginx_stream_proxy_timeout': '10 minutes'})
            msg = failure_message(res.stdout)
            assert res.returncode != 0 and 'nginx -t refused' in res.stdout, msg or res.stdout[-2000:]
            assert 'invalid' in res.stdout.lower() or 'directive' in res.stdout.lower(), msg
            assert _sha(SERVER) == before, 'the refused stream server file stayed'
            ok, text = _nginx_ok()
            assert ok, text
            c.note(f'run {attempt}: {msg[:220]}; stream server unchanged; nginx -t: ok')
        c.note(f'replicas streaming {wait_streaming(60):.1f} s later')


def test_nginx_conf_with_its_own_stream_block(lab):
    with REPORT.case(G, 'nginx.conf that already has a stream block of its own',
                     'our managed stream block replaced by the site\'s own "stream { ... }": site.yml succeeds, puts the '
                     'include inside that block (one stream block in nginx.conf), nginx -t passes, the replicas stream '
                     'and a rerun changes nothing on the primary (on the parent commit: "stream directive is duplicate", '
                     'the broken nginx.conf stayed and a rerun reported success); site.yml --limit the primary, where '
                     'nginx.conf changed, so the replicas\' WAL senders are ended to make them connect through the '
                     'reloaded proxy anew; afterwards nginx.conf and the stream server are byte for byte as before') as c:
        conf_before, server_before = _sha(CONF), _sha(SERVER)
        dexec(PRIMARY, 'bash', '-c',
              f"sed -i '/# BEGIN catmaid.replication stream servers/,/# END catmaid.replication stream servers/d' {CONF} && "
              f"printf 'stream {{\\n    # the site\\x27s own stream servers\\n}}\\n' >> {CONF} && nginx -t")
        try:
            res = ansible_playbook(SITE, '--limit', PRIMARY)
            assert res.returncode == 0, failure_message(res.stdout) or res.stdout[-2000:]
            text = dexec(PRIMARY, 'cat', CONF).stdout
            blocks = [ln for ln in text.splitlines() if ln.strip().startswith('stream')]
            assert len(blocks) == 1 and 'include /etc/nginx/stream.d/*.conf;' in text, text
            ok, msg = _nginx_ok()
            assert ok, msg
            c.note(f'one stream block, include inside it; nginx -t ok; replicas streaming {wait_streaming(60):.1f} s later, '
                   f'and again on new connections through the proxy {_reconnect_through_proxy():.1f} s after their senders ended')
            again = ansible_playbook(SITE, '--limit', PRIMARY)
            changed = recap(again.stdout).get(PRIMARY, {}).get('changed')
            assert again.returncode == 0 and changed == 0, (changed, again.stdout[-2000:])
            c.note('rerun: changed=0 on the primary')
        finally:
            # Back to the collection's own stream block for the cases after this one.
            dexec(PRIMARY, 'bash', '-c',
                  f"sed -i -e '/^stream {{$/,/^}}$/d' -e '/catmaid.replication stream servers/d' {CONF}")
            res = ansible_playbook(SITE, '--limit', PRIMARY)
            assert res.returncode == 0, failure_message(res.stdout)
            assert _nginx_ok()[0]
            assert (_sha(CONF), _sha(SERVER)) == (conf_before, server_before), 'nginx.conf or the stream server not as before'
            _reconnect_through_proxy()
