# Report of bench/bench.py: README.md (a table of every figure with its target) and PNG plots,
# written next to results.json. Rerun alone with: python bench/bench.py --report-only [--out DIR]
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

TARGETS = {
    'deploy': 'playbook / by hand <= 1.25',
    'deploy_parallel': 'playbook / by hand, packages at once <= 1.25',
    'deploy_serial': 'playbook / by hand, one host after the other <= 1.0',
    'rerun_changed': 'changed = 0',
    'rerun_time': '<= 10 s for 3 hosts (issue 17; issue 8: 15 s)',
    'drift': 'every item fixed',
    'scale': '4 replicas <= 1.5 x 1 replica',
    'addone': 'changed = 0 on existing replicas',
    'clone_module': 'module / plain <= 1.05',
    'clone_proxy': 'proxy / direct <= 1.10',
    'lag': 'p99 < 1 s',
    # issue 17 item 3: the automation's marginal cost per added replica, PostgreSQL preinstalled
    'scale_pre_exec': '<= 25 per added replica',
    'scale_pre_cpu': '<= 2 s per added replica',
    # issue 17 item 4 names no figure: the lag target of phase lag
    'fanout_lag': 'p99 < 1 s (as phase lag)',
}
PRIMARY = 'bn-primary'


def _ok(flag: Optional[bool]) -> str:
    return 'n/a' if flag is None else ('**met**' if flag else '**missed**')


def _load(run: dict[str, Any]) -> str:
    a, b = run.get('load_start'), run.get('load_end')
    return f'{a[0]:.1f} → {b[0]:.1f}' if a and b else '?'


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:.{digits}f}' if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def _per_host(counts: dict[str, Any]) -> str:
    return ', '.join(f'{host} {n}' for host, n in counts.items())


def _ms(seconds: Any) -> str:
    return '-' if seconds is None else f'{seconds * 1000:.1f} ms'


def _layout(point: dict[str, Any]) -> str:
    if point.get('layout') == 'cascade':
        return f'{point["cascading"]} of them cascading from {" and ".join(point["upstreams"])}'
    return 'all from the primary'


def _lag_text(sm: dict[str, Any]) -> str:
    return (f'p50 {_ms(sm["p50_s"])}, p99 {_ms(sm["p99_s"])}, max {_ms(sm["max_s"])}; '
            f'bytes p50 {sm["p50_bytes"]}, p99 {sm["p99_bytes"]}, max {sm["max_bytes"]}')


def _walsenders(point: dict[str, Any], node: str = PRIMARY) -> str:
    w = point.get('walsenders', {}).get(node)
    if not w:
        return '-'
    return f'{w["cpu_s"]:.2f} s, {_num(w["percent_of_one_core"])} % of one core ({w["walsenders"]} walsender{"" if w["walsenders"] == 1 else "s"})'


def _changed_existing(a: dict[str, Any]) -> str:
    changed = a['changed_existing']
    if len(changed) <= 4:
        text = ', '.join(f'{k}={v}' for k, v in changed.items())
    else:
        other = {k: v for k, v in changed.items() if v != 0}
        text = (f'0 on each of the {len(changed)}' if not other else
                ', '.join(f'{k}={v}' for k, v in other.items()) + f'; 0 on the other {len(changed) - len(other)}')
    return text + (f'; restarted: {a["restarted_existing"]}' if a['restarted_existing'] else '; none restarted')


def rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, met) for every measured figure."""
    ph = res.get('phases', {})
    out: list[tuple[str, str, str, str]] = []
    d = ph.get('deploy')
    if d:
        n = len([r for r in d['runs'] if r['kind'] == 'playbook'])
        out.append(('1. Deploy primary + 2 replicas, site playbook (mean of %d)' % n, f'{d["playbook_mean_s"]:.1f} s', '', ''))
        out.append(('1. Deploy primary + 2 replicas, guide by hand (bench/by-hand.sh, mean)', f'{d["hand_mean_s"]:.1f} s', '', ''))
        if 'hand_parallel_mean_s' in d:
            # Issue 17: the strongest fair baseline installs every host's packages at once, as the playbook does.
            out.append(('1. Ratio playbook / by hand, one host after the other', f'{d["ratio"]:.3f}', TARGETS['deploy_serial'],
                        _ok(d['ratio'] <= 1.0)))
            out.append(('1. Deploy primary + 2 replicas, guide by hand with every host\'s packages at once (mean)',
                        f'{d["hand_parallel_mean_s"]:.1f} s', '', ''))
            out.append(('1. Ratio playbook / by hand, packages at once', f'{d["ratio_parallel"]:.3f}', TARGETS['deploy_parallel'],
                        _ok(d['ratio_parallel'] <= 1.25)))
        else:
            out.append(('1. Ratio playbook / by hand', f'{d["ratio"]:.3f}', TARGETS['deploy'], _ok(d['ratio'] <= 1.25)))
        if 'baseline_mean_s' in d:
            how = f'`{d["baseline_extra"]}`' if d.get('baseline_extra') else 'baseline commit'
            out.append((f'1. Before the waste cut ({how}), mean', f'{d["baseline_mean_s"]:.1f} s', '', ''))
            out.append(('1. Ratio before the waste cuts / by hand', f'{d["baseline_ratio"]:.3f}', TARGETS['deploy'], _ok(d['baseline_ratio'] <= 1.25)))
    r = ph.get('rerun')
    if r:
        run = r['run']
        out.append(('2. Second run on the deployed lab: changed', str(run['changed_total']), TARGETS['rerun_changed'], _ok(run['changed_total'] == 0)))
        out.append((f'2. Second run: wall time ({run.get("hosts", 3)} hosts)', f'{run["wall_s"]:.1f} s', TARGETS['rerun_time'], _ok(run['wall_s'] <= 10)))
        if 'executions' in run:
            out.append(('2. Second run: remote module executions per host', _per_host(run['executions']), '', ''))
    dr = ph.get('drift')
    if dr:
        run = dr.get('run') or {}
        out.append((f'2. One drift per managed item ({dr["count"]}), then one run of site.yml: fixed',
                    f'{dr["fixed"]} of {dr["count"]}' + (f'; changed {_per_host(run["changed"])}' if run.get('changed') else '')
                    + (f'; {run["wall_s"]:.1f} s' if run else '; the run failed'),
                    TARGETS['drift'], _ok(dr['fixed'] == dr['count'] and not dr.get('error'))))
    s = ph.get('scale')
    if s:
        for run in s['runs']:
            out.append((f'3. Deploy with {run["replicas"]} replica(s)', f'{run["wall_s"]:.1f} s', '', ''))
        if 'ratio_max_over_1' in s:
            big = max(run['replicas'] for run in s['runs'])
            out.append((f'3. Ratio {big} replicas / 1 replica', f'{s["ratio_max_over_1"]:.3f}', TARGETS['scale'], _ok(s['ratio_max_over_1'] <= 1.5)))
    sp = ph.get('scale-pre')
    if sp:
        for run in sp['runs']:
            m = run.get('memory') or {}
            out.append((f'3. PostgreSQL preinstalled: deploy with {run["replicas"]} replica(s), {run.get("forks", "?")} forks',
                        f'{run["wall_s"]:.1f} s; {run["executions_total"]} remote executions; controller CPU '
                        f'{_num((run.get("controller_cpu") or {}).get("total_s"))} s; peak memory {_num(m.get("tree_peak_rss_mb"))} MB', '', ''))
        mc = sp.get('marginal') or {}
        if mc:
            span = f'{mc["n_min"]} → {mc["n_max"]} replicas'
            out.append((f'3. PostgreSQL preinstalled: remote executions per added replica ({span})', f'{mc["executions_per_replica"]:.1f}',
                        TARGETS['scale_pre_exec'], _ok(mc['executions_per_replica'] <= 25)))
            cpu = mc.get('cpu_s_per_replica')
            out.append((f'3. PostgreSQL preinstalled: controller CPU per added replica ({span})', f'{_num(cpu, 2)} s',
                        TARGETS['scale_pre_cpu'], _ok(None if cpu is None else cpu <= 2)))
            out.append((f'3. PostgreSQL preinstalled: ratio {mc["n_max"]} replicas / {mc["n_min"]}',
                        f'{mc["wall_ratio"]:.3f} ({mc["wall_s_per_replica"]:.1f} s per added replica)', '', ''))
            big = [run for run in sp['runs'] if run['replicas'] == mc['n_max']][0]
            m = big.get('memory') or {}
            cpu = big.get('controller_cpu') or {}
            out.append((f'3. PostgreSQL preinstalled: controller with {mc["n_max"]} replicas ({big.get("forks", "?")} forks)',
                        f'peak memory: RSS sum {_num(m.get("tree_peak_rss_mb"))} MB, PSS sum {_num(m.get("tree_peak_pss_mb"))} MB, '
                        f'{m.get("tree_peak_processes", "?")} processes; CPU {_num(cpu.get("total_s"))} s '
                        f'(user {_num(cpu.get("user_s"))}, system {_num(cpu.get("sys_s"))})', '', ''))
    a = ph.get('addone')
    if a:
        changed = a['changed_existing']
        ok = all(v == 0 for v in changed.values()) and not a['restarted_existing']
        out.append((f'3. Add {a["new"]} to a running set of {len(changed)}: changed on existing replicas', _changed_existing(a),
                    TARGETS['addone'], _ok(ok)))
        out.append(('3. Add one replica: wall time (primary changed %s, new replica changed %s)' % (a['changed_primary'], a['changed_new']),
                    f'{a["run"]["wall_s"]:.1f} s', '', ''))
    c = ph.get('clone')
    if c:
        gb = c['db']['cluster_bytes'] / 1e9
        out.append((f'4. Clone of {gb:.2f} GB (pgbench scale {c["db"]["scale"]}): module, via proxy (mean)',
                    f'{c["module_mean_s"]:.1f} s ({c["throughput_mb_s"]["module"]:.0f} MB/s)', '', ''))
        if c.get('module_basebackup_mean_s'):
            out.append(('4. Clone: of the module task, pg_basebackup itself (the module measures it; mean)',
                        f'{c["module_basebackup_mean_s"]:.1f} s; the rest ({c["module_mean_s"] - c["module_basebackup_mean_s"]:.1f} s) '
                        'is the Ansible task and the module\'s checks', '', ''))
        out.append(('4. Clone: plain pg_basebackup, same options, via proxy (mean)',
                    f'{c["plain_proxy_mean_s"]:.1f} s ({c["throughput_mb_s"]["plain_proxy"]:.0f} MB/s)', '', ''))
        out.append(('4. Clone: plain pg_basebackup, direct to PostgreSQL (mean)',
                    f'{c["plain_direct_mean_s"]:.1f} s ({c["throughput_mb_s"]["plain_direct"]:.0f} MB/s)', '', ''))
        out.append(('4. Ratio module / plain', f'{c["module_over_plain"]:.3f}', TARGETS['clone_module'], _ok(c['module_over_plain'] <= 1.05)))
        out.append(('4. Ratio proxy / direct', f'{c["proxy_over_direct"]:.3f}', TARGETS['clone_proxy'], _ok(c['proxy_over_direct'] <= 1.10)))
    lag = ph.get('lag')
    if lag:
        for route in ('proxy', 'direct'):
            sm = lag['summary'].get(route)
            if not sm or not sm['samples']:
                continue
            tps = [r['tps'] for r in lag['runs'] if r['route'] == route and r['tps']]
            out.append((f'5. Replay lag via {route}, pgbench -R {lag["rate"]} for {lag["seconds"]} s '
                        f'({sm["samples"]} samples, {len(lag["replicas"])} replicas, {sum(tps) / max(1, len(tps)):.0f} tps)',
                        f'p50 {sm["p50_s"] * 1000:.1f} ms, p99 {sm["p99_s"] * 1000:.1f} ms, max {sm["max_s"] * 1000:.1f} ms; '
                        f'bytes p50 {sm["p50_bytes"]}, p99 {sm["p99_bytes"]}, max {sm["max_bytes"]}',
                        TARGETS['lag'], _ok(sm['p99_s'] < 1)))
    fo = ph.get('fanout')
    if fo:
        for pt in fo['points']:
            sm = pt['summary']
            if not sm.get('samples'):
                continue
            head = f'5. Fan-out, {pt["replicas"]} replica(s), {_layout(pt)}'
            out.append((f'{head}: lag behind the primary, pgbench -R {pt["rate"]} for {pt["seconds"]} s ({_num(pt["tps"], 0)} tps, '
                        f'{sm["samples"]} samples)', _lag_text(sm), TARGETS['fanout_lag'], _ok(sm['p99_s'] < 1)))
            out.append((f'{head}: walsenders\' CPU on the primary', _walsenders(pt), '', ''))
    if s:
        for run in s['runs']:
            m = run.get('memory') or {}
            out.append((f'6. Controller memory, deploy with {run["replicas"]} replica(s): peak of the process tree',
                        f'RSS sum {_num(m.get("tree_peak_rss_mb"))} MB, PSS sum {_num(m.get("tree_peak_pss_mb"))} MB, '
                        f'largest process {_num(m.get("time_v_max_rss_mb"))} MB, {m.get("tree_peak_processes", "?")} processes', '', ''))
    return out


def plots(res: dict[str, Any], out: Path) -> list[str]:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    made = []
    ph = res.get('phases', {})
    d = ph.get('deploy')
    if d:
        fig, ax = plt.subplots(figsize=(10, 5.2))
        labels, palette, colour = [], list(plt.get_cmap('tab20').colors), {}
        for y, run in enumerate(d['runs']):
            left = 0.0
            parts = ([(p['name'], p['seconds']) for p in run['plays']] if not run['kind'].startswith('hand')
                     else [('by hand: packages on every host at once', run.get('install_s', 0)),
                           ('by hand: primary', run['primary_s']), ('by hand: replicas (in parallel)', run['replicas_s'])])
            parts = [(name, secs) for name, secs in parts if secs]
            overhead = run['wall_s'] - sum(secs for dummy, secs in parts)
            if overhead > 0.05:
                parts.append(('ansible-playbook start-up and end', overhead))
            for name, secs in parts:
                first = name not in colour
                if first:
                    colour[name] = palette[(2 * len(colour)) % 20] if len(colour) < 10 else palette[(2 * len(colour) + 1) % 20]
                ax.barh(y, secs, left=left, color=colour[name], edgecolor='white', label=name[:70] if first else None)
                left += secs
            labels.append(f'{run["kind"]} #{run["round"]}')
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel('seconds')
        ax.set_title('Deploy primary + 2 replicas: time per phase (plays of site.yml; steps of by-hand.sh)')
        ax.legend(fontsize=7, loc='upper center', bbox_to_anchor=(0.5, -0.15), ncol=2)
        fig.tight_layout()
        fig.savefig(out / 'deploy-phases.png', dpi=110)
        plt.close(fig)
        made.append('deploy-phases.png')

        prof = list(d['profile'][1:16])
        if prof:
            fig, ax = plt.subplots(figsize=(9, 5))
            names = [f'{row["task"][:70]}' for row in reversed(prof)]
            ax.barh(names, [row['seconds'] for row in reversed(prof)], color='tab:blue')
            ax.set_xlabel('seconds (wall time of the task over all hosts, mean per run)')
            ax.set_title('Site playbook: the 15 slowest tasks')
            ax.tick_params(axis='y', labelsize=7)
            fig.tight_layout()
            fig.savefig(out / 'deploy-profile.png', dpi=110)
            plt.close(fig)
            made.append('deploy-profile.png')

    s = ph.get('scale')
    if s:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        ns = [run['replicas'] for run in s['runs']]
        ax.bar([str(n) for n in ns], [run['wall_s'] for run in s['runs']], color='tab:green')
        if 1 in ns:
            one = [run['wall_s'] for run in s['runs'] if run['replicas'] == 1][0]
            ax.axhline(1.5 * one, color='red', linestyle='--', label='target: 1.5 x one replica')
            ax.legend(fontsize=8)
        ax.set_xlabel('replicas')
        ax.set_ylabel('seconds')
        ax.set_title('Site playbook on fresh containers')
        fig.tight_layout()
        fig.savefig(out / 'scale-out.png', dpi=110)
        plt.close(fig)
        made.append('scale-out.png')

    sp = ph.get('scale-pre')
    if sp and sp['runs']:
        runs = sorted(sp['runs'], key=lambda run: run['replicas'])
        ns = [run['replicas'] for run in runs]
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
        panels = [('wall time (s)', [run['wall_s'] for run in runs], None),
                  ('remote executions', [run['executions_total'] for run in runs], 25),
                  ('controller CPU (s)', [(run.get('controller_cpu') or {}).get('total_s') or 0 for run in runs], 2)]
        for ax, (title, values, per_replica) in zip(axes, panels):
            ax.plot(ns, values, marker='o', color='tab:green')
            if per_replica is not None and len(ns) > 1:
                ax.plot([ns[0], ns[-1]], [values[0], values[0] + per_replica * (ns[-1] - ns[0])], color='red', linestyle='--',
                        label=f'target: + {per_replica} per replica')
                ax.legend(fontsize=7)
            ax.set_xticks(ns)
            ax.set_xlabel('replicas')
            ax.set_title(title, fontsize=9)
        fig.suptitle('Site playbook on fresh containers, PostgreSQL preinstalled', fontsize=10)
        fig.tight_layout()
        fig.savefig(out / 'scale-preinstalled.png', dpi=110)
        plt.close(fig)
        made.append('scale-preinstalled.png')

    fo = ph.get('fanout')
    points = [pt for pt in (fo or {}).get('points', []) if pt['summary'].get('samples')]
    if points:
        direct = sorted([pt for pt in points if pt.get('layout') != 'cascade'], key=lambda pt: pt['replicas'])
        cascade = [pt for pt in points if pt.get('layout') == 'cascade']
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
        styles = [('p50', 'tab:blue'), ('p99', 'tab:orange'), ('max', 'tab:red')]
        for ax, unit, scale, label in ((axes[0], 's', 1000, 'lag behind the primary (ms)'), (axes[1], 'bytes', 1 / 1024, 'lag behind the primary (KiB)')):
            for stat, colour in styles:
                key = f'{stat}_{unit}'
                ax.plot([pt['replicas'] for pt in direct], [pt['summary'][key] * scale for pt in direct], marker='o', color=colour, label=stat)
                if cascade:
                    ax.scatter([pt['replicas'] for pt in cascade], [pt['summary'][key] * scale for pt in cascade], marker='*', s=120,
                               color=colour, edgecolor='black', zorder=3, label=f'{stat}, cascading' if stat == 'max' else None)
            ax.set_ylabel(label, fontsize=8)
        cpu = [pt['walsenders'].get(PRIMARY, {}).get('percent_of_one_core') or 0 for pt in direct]
        axes[2].plot([pt['replicas'] for pt in direct], cpu, marker='o', color='tab:purple', label='all from the primary')
        if cascade:
            axes[2].scatter([pt['replicas'] for pt in cascade], [pt['walsenders'].get(PRIMARY, {}).get('percent_of_one_core') or 0 for pt in cascade],
                            marker='*', s=120, color='tab:purple', edgecolor='black', zorder=3, label='cascading (primary only)')
        axes[2].set_ylabel("primary's walsenders (% of one core)", fontsize=8)
        for ax in axes:
            ax.set_xlabel('replicas')
            ax.set_xticks(sorted({pt['replicas'] for pt in points}))
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7)
        star = (f' (star: {cascade[0]["replicas"]} replicas, {cascade[0]["cascading"]} of them cascading from '
                f'{" and ".join(cascade[0]["upstreams"])})' if cascade else '')
        fig.suptitle(f'One primary feeding N replicas: pgbench -R {fo["rate"]} for {fo["seconds"]} s{star}', fontsize=10)
        fig.tight_layout()
        fig.savefig(out / 'fanout.png', dpi=110)
        plt.close(fig)
        made.append('fanout.png')

    c = ph.get('clone')
    if c:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        kinds = [('module', 'proxy'), ('plain', 'proxy'), ('plain', 'direct')]
        for i, (kind, route) in enumerate(kinds):
            vals = [r['seconds'] for r in c['runs'] if r['kind'] == kind and r['route'] == route]
            ax.scatter([i] * len(vals), vals, color='black', zorder=3, s=12)
            ax.bar(i, sum(vals) / max(1, len(vals)), color=['tab:blue', 'tab:orange', 'tab:grey'][i])
        ax.set_xticks(range(3), [f'{k} via {r}' for k, r in kinds])
        ax.set_ylabel('seconds')
        ax.set_title(f'Clone of {c["db"]["cluster_bytes"] / 1e9:.2f} GB (bars: mean, dots: runs)')
        fig.tight_layout()
        fig.savefig(out / 'clone.png', dpi=110)
        plt.close(fig)
        made.append('clone.png')

    lag = ph.get('lag')
    if lag and lag['runs']:
        fig, axes = plt.subplots(len(lag['runs']), 1, figsize=(9, 2.6 * len(lag['runs'])), sharex=True, squeeze=False)
        for ax, run in zip(axes[:, 0], lag['runs']):
            for rep in sorted({x['replica'] for x in run['samples']}):
                pts = [x for x in run['samples'] if x['replica'] == rep]
                ax.plot([x['t'] for x in pts], [x['lag_s'] * 1000 for x in pts], label=rep, linewidth=1)
            ax.set_ylabel('replay lag (ms)')
            ax.set_title(f'via {run["route"]}: pgbench -R {lag["rate"]} ({_num(run["tps"])} tps)', fontsize=9)
            ax.legend(fontsize=7, loc='upper right')
        axes[-1, 0].set_xlabel('seconds')
        fig.tight_layout()
        fig.savefig(out / 'lag.png', dpi=110)
        plt.close(fig)
        made.append('lag.png')
    return made


def scale_pre_section(sp: Optional[dict[str, Any]]) -> list[str]:
    if not sp:
        return []
    lines = ['## Scaling of the automation, PostgreSQL preinstalled (issue 17 item 3)', '',
             f'Fresh containers from `{sp["image"]}` (PostgreSQL, nginx and the roles\' other packages installed, Debian\'s cluster '
             'running, as on a server that has them already), so apt\'s CPU does not hide the automation\'s. Ansible works on 5 hosts '
             'at once by default (`forks = 5`) and would take the replicas in batches; `bench.py` sets `ANSIBLE_FORKS` to max(5, hosts) '
             '(column Forks: every host at once). Controller CPU: user + system seconds of `ansible-playbook` and every process below it '
             '(workers, `docker exec` clients; `/usr/bin/time -v`), not the Docker daemon\'s. Peak memory: the process tree\'s, '
             'sampled every 0.2 s.', '',
             '| Replicas | Forks | Wall | Remote executions (all hosts) | On the primary | Per replica (mean) | Controller CPU '
             '(user + system) | Peak memory (RSS sum / PSS sum) | Processes |', '|---|---|---|---|---|---|---|---|---|']
    for run in sorted(sp['runs'], key=lambda r: r['replicas']):
        ex = run.get('executions', {})
        reps = [v for h, v in ex.items() if h != PRIMARY]
        cpu = run.get('controller_cpu') or {}
        m = run.get('memory') or {}
        lines.append(f'| {run["replicas"]} | {run.get("forks", "?")} | {run["wall_s"]:.1f} s | {run["executions_total"]} | {ex.get(PRIMARY, "-")} | '
                     f'{_num(sum(reps) / len(reps)) if reps else "-"} | {_num(cpu.get("total_s"))} s ({_num(cpu.get("user_s"))} + '
                     f'{_num(cpu.get("sys_s"))}) | {_num(m.get("tree_peak_rss_mb"))} / {_num(m.get("tree_peak_pss_mb"))} MB | '
                     f'{m.get("tree_peak_processes", "-")} |')
    mc = sp.get('marginal') or {}
    if mc:
        lines += ['', 'Per added replica (the difference between two deployments over the replicas added):', '',
                  '| From → to | Remote executions | Controller CPU | Wall |', '|---|---|---|---|']
        lines += [f'| {st["from"]} → {st["to"]} | {st["executions_per_replica"]:.1f} | {_num(st["cpu_s_per_replica"], 2)} s | '
                  f'{st["wall_s_per_replica"]:.1f} s |' for st in mc.get('steps', [])]
        cpu = mc.get('cpu_s_per_replica')
        lines += [f'| **{mc["n_min"]} → {mc["n_max"]}** | **{mc["executions_per_replica"]:.1f}** '
                  f'({TARGETS["scale_pre_exec"]}: {_ok(mc["executions_per_replica"] <= 25)}) | **{_num(cpu, 2)} s** '
                  f'({TARGETS["scale_pre_cpu"]}: {_ok(None if cpu is None else cpu <= 2)}) | **{mc["wall_s_per_replica"]:.1f} s** '
                  f'(wall {mc["n_max"]} / {mc["n_min"]}: {mc["wall_ratio"]:.3f}) |']
    return lines + ['']


def fanout_section(fo: Optional[dict[str, Any]]) -> list[str]:
    if not fo or not fo.get('points'):
        return []
    iv = fo.get('sample_interval_s', {})
    lines = ['## Fan-out: how many replicas one primary feeds (issue 17 item 4)', '',
             f'Per size, fresh containers from `{fo["image"]}` deployed by `site.yml` (forks = replicas + 1, slots, the proxy), a small '
             f'database (`pgbench -i -s {fo["scale"]}`), then `pgbench -R {fo["rate"]}` for {fo["seconds"]} s on the primary. Meanwhile one '
             f'psql session per node samples: the primary its current LSN every {iv.get("primary", 0.2)} s, each replica its replayed '
             f'LSN every {iv.get("replicas", 1)} s, each sending node its `pg_stat_replication` every {iv.get("pg_stat_replication", 1)} s. '
             '**Lag behind the primary**: bytes, the primary\'s LSN at the moment of the replica\'s sample (its samples interpolated) '
             'less the replica\'s replayed LSN; seconds, how long before that the primary was at the replayed LSN (0 when nothing is '
             'behind). The same measure for replicas of the primary and cascading ones. **replay_lag**: PostgreSQL\'s own, in '
             '`pg_stat_replication` of the node each replica streams from (for a cascading replica: behind its upstream only). '
             '**Walsenders\' CPU**: utime + stime from `/proc/<pid>/stat` of the node\'s `postgres: ... walsender` processes, read '
             'before and after the pgbench window.', '',
             '| Replicas | Streaming from | tps | Lag p50 / p99 / max | Bytes p50 / p99 / max | replay_lag p50 / p99 / max | '
             'Walsenders\' CPU, primary | Walsenders\' CPU, upstreams | Deploy (re-point) | Load start → end |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for pt in fo['points']:
        sm, pg = pt['summary'], pt.get('replay_lag_summary') or {}
        ups = '; '.join(f'{node}: {_walsenders(pt, node)}' for node in pt.get('walsenders', {}) if node != PRIMARY) or '-'
        wall = (f'{pt["deploy_wall_s"]:.1f} s' if 'deploy_wall_s' in pt else
                f'({_num(pt.get("repoint_wall_s"))} s, changed {pt.get("repoint_changed_total", "?")})')
        lag = (f'{_ms(sm["p50_s"])} / {_ms(sm["p99_s"])} / {_ms(sm["max_s"])} | {sm["p50_bytes"]} / {sm["p99_bytes"]} / {sm["max_bytes"]}'
               if sm.get('samples') else '- | -')
        rl = f'{_ms(pg["p50_s"])} / {_ms(pg["p99_s"])} / {_ms(pg["max_s"])}' if pg.get('samples') else '-'
        lines.append(f'| {pt["replicas"]} | {_layout(pt)} | {_num(pt["tps"], 0)} | {lag} | {rl} | {_walsenders(pt)} | {ups} | {wall} | {_load(pt)} |')
    return lines + ['']


def addone_section(a: Optional[dict[str, Any]]) -> list[str]:
    if not a or 'base' not in a or len(a['existing']) <= 2:      # written by the bench with --addone-base
        return []
    run = a['run']
    ex = run.get('executions', {})
    return [f'## Add one replica to {len(a["existing"])} (issue 17 item 5)', '',
            f'`site.yml` with {a["new"]} added to the inventory of the running lab (containers from `{a["image"]}`, '
            f'{run["forks"]} forks): {run["wall_s"]:.1f} s; remote executions: primary {ex.get(PRIMARY, "-")}, new replica '
            f'{ex.get(a["new"], "-")}, existing replicas {sum(v for h, v in ex.items() if h in a["existing"])} in all; '
            f'changed on the existing replicas: {_changed_existing(a)} '
            f'(restarts: `pg_postmaster_start_time()` before and after); the primary changed {a["changed_primary"]} '
            f'(restarted: {"yes" if a.get("primary_restarted") else "no"}), the new replica {a["changed_new"]}.', '']


def write(out: Path) -> None:
    res = json.loads((out / 'results.json').read_text())
    made = plots(res, out)
    m = res['machine']
    lines = [
        '# Benchmarks of catmaid.replication',
        '',
        'Written by `bench/bench.py` (`make bench`); raw data in [results.json](results.json). Every ratio',
        'compares two things measured alternately in the same run on the same machine. Nothing here is a',
        'test assertion: these figures are published, not enforced.',
        '',
        f'- **Machine**: {m["nproc"]} CPUs ({m["cpu"]}), {m["ram_gb"]} GB RAM, kernel {m["kernel"]}, '
        f'Debian {m["debian"]}, Docker {m["docker"]}; containers from `{m["image"]}`'
        + (f' (phases scale-pre, fanout and with --preinstalled: `{m["preinstalled_image"]}`, the roles\' packages installed)'
           if m.get('preinstalled_image') else '') + '.',
        f'- **Date**: {res["started"]} to {res.get("finished", "?")}; collection commit `{res.get("commit", "?")}`'
        + (f', baseline `{res["baseline_commit"]}`' if res.get('baseline_commit') else '') + '.',
        '- **Load average** (1 min) at the start → end of each phase: '
        + ', '.join(f'{name} {_load(p)}' for name, p in res['phases'].items()) + '.',
        '',
        '| Figure | Value | Target | Met? |',
        '|---|---|---|---|',
    ]
    if res.get('host_changes'):
        lines[-3:-3] = [f'- **Host settings changed by the bench**: {"; ".join(res["host_changes"])}.']
    lines += [f'| {a} | {b} | {c} | {d} |' for a, b, c, d in rows(res)]
    lines += ['']
    for png in made:
        lines += [f'![{png}]({png})', '']
    notes = out / 'NOTES.md'
    if notes.exists():
        lines += [notes.read_text().rstrip(), '']
    d = res['phases'].get('deploy')
    if d:
        lines += ['## Where the playbook spends its time', '',
                  f'Mean over the playbook deployments: {d["profile"][0]["tasks_per_run"]:.0f} task entries, '
                  f'{d["profile"][0]["task_seconds_per_run"]:.1f} s of task time.', '',
                  '| Play | Task | Module | Seconds | Runs per deploy | Changed |', '|---|---|---|---|---|---|']
        lines += [f'| {r["play"][:40]} | {r["task"]} | {r["action"]} | {r["seconds"]:.1f} | {r["occurrences_per_run"]} | {r["changed_per_run"]} |'
                  for r in d['profile'][1:]]
        lines += ['']
    runs = [(name, res['phases'][name]['run']) for name in ('rerun', 'drift')
            if 'executions' in (res['phases'].get(name) or {}).get('run', {})]
    if runs:
        hosts = sorted({h for dummy, run in runs for h in run['executions']})
        lines += ['## Remote executions per host', '',
                  'Task results that ran a module on the host (skipped ones, controller-only actions such as set_fact, '
                  'assert or include_*, and tasks delegated to the controller not counted; a loop counts once per item; '
                  'fact gathering counts), and changed tasks:', '',
                  '| Run | ' + ' | '.join(hosts) + ' | Changed |', '|---|' + '---|' * len(hosts) + '---|']
        lines += [f'| {name} | ' + ' | '.join(str(run['executions'].get(h, '-')) for h in hosts)
                  + f' | {_per_host(run.get("changed", {}))} |' for name, run in runs]
        lines += ['']
    lines += scale_pre_section(res['phases'].get('scale-pre'))
    lines += fanout_section(res['phases'].get('fanout'))
    lines += addone_section(res['phases'].get('addone'))
    dr = res['phases'].get('drift')
    if dr:
        lines += ['## Drift: one per managed item, one run of site.yml', '',
                  '| Item | Host | Injected | Fixed | Checked |', '|---|---|---|---|---|']
        lines += [f'| {item["item"]} | {item["host"]} | {_cell(item["injected"])} | {"yes" if item["fixed"] else "**no**"} | {_cell(item["checked"])} |'
                  for item in dr['items']]
        if dr.get('error'):
            lines += ['', f'The run failed: `{dr["error"][:300]}`']
        lines += ['']
    lines += ['## Runs', '', '| Phase | Run | Seconds | Load (1 min) start → end |', '|---|---|---|---|']
    for name, p in res['phases'].items():
        for run in p.get('runs', []) if isinstance(p.get('runs'), list) else []:
            label = run.get('label') or f'{run.get("kind")} via {run.get("route")} #{run.get("round", "")}'
            secs = run.get('wall_s', run.get('seconds'))
            lines.append(f'| {name} | {label} | {_num(secs)} | {_load(run)} |')
        if 'run' in p:
            lines.append(f'| {name} | {p["run"]["label"]} | {_num(p["run"]["wall_s"])} | {_load(p["run"])} |')
    (out / 'README.md').write_text('\n'.join(lines) + '\n')
