# Benchmarks of catmaid.replication (issue 8): deployment against the guide's steps by hand,
# second run, scale-out, clone throughput, proxy overhead, replication lag, controller memory.
#
#   make bench                                   everything, results in bench/results/
#   python bench/bench.py --help                 phases, sizes, rounds (after `make collection images`)
#   python bench/bench.py --quick --out build/bench/quick     small sizes, to try the scripts
#
# Everything runs on throw-away systemd containers named bn-* on the Docker network
# catmaid-bench, created and removed here (image catmaid-replication/debian:<release>, the same
# container settings as molecule/default). Every comparison is measured alternately in one run.
# The replication password is random per run, in build/bench/password (0600); Ansible reads it
# with the file lookup, by-hand.sh from a 0600 file in each container; never on a command line.
# Raw data: <out>/results.json; the report (<out>/README.md, PNG plots) comes from bench/report.py.
from __future__ import annotations

import argparse
import bisect
import datetime
import hashlib
import json
import os
import platform
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / 'bench'
WORK = ROOT / 'build' / 'bench'
NETWORK = 'catmaid-bench'
PRIMARY = 'bn-primary'
RELEASE = os.environ.get('CATMAID_LAB_RELEASE', 'bookworm')
IMAGE = f'catmaid-replication/debian:{RELEASE}'
# Bench only (issue 17 items 3-5): the lab image with the roles' packages already installed, so a deployment
# measures the automation and not apt (built by preinstalled_image() when missing or when its base changed).
PREINSTALLED = f'catmaid-replication/bench-preinstalled:{RELEASE}'
# __catmaid_replication_packages of roles/catmaid_replication/vars/main.yml with the proxy's (the default
# catmaid_replication_nginx_packages): on every node, so any replica can become an upstream (cascading).
PREINSTALLED_PACKAGES = ('postgresql', 'postgresql-common', 'python3-psycopg2', 'python3-cryptography', 'acl', 'nginx', 'libnginx-mod-stream')
DEFAULT_PHASES = ('deploy', 'rerun', 'drift', 'conn', 'addone', 'clone', 'lag', 'scale')
# Run only when named in --phases: scale-pre (issue 17 item 3) and fanout (item 4); item 5 is addone with --addone-base.
PHASES = DEFAULT_PHASES + ('scale-pre', 'fanout')
# More systemd containers than this on one host need higher inotify limits (README "Many replicas").
INOTIFY_CONTAINERS = 15
INOTIFY_WANT = {'fs.inotify.max_user_instances': 1024, 'fs.inotify.max_user_watches': 1048576}
HOST_CHANGES: list[str] = []          # what the bench changed on the Docker host (inotify limits), for results.json


def log(msg: str) -> None:
    print(f'[bench {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def loadavg() -> list[float]:
    return [float(x) for x in Path('/proc/loadavg').read_text(encoding='utf-8').split()[:3]]


def run(argv: list[str], check: bool = True, input_text: Optional[str] = None, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, input=input_text, capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f'{shlex.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def dexec(container: str, *argv: str, check: bool = True, input_text: Optional[str] = None) -> str:
    return run(['docker', 'exec', '-i', container, *argv], check=check, input_text=input_text).stdout


def psql(container: str, sql: str, db: str = 'postgres') -> str:
    return dexec(container, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-d', db, '-c', sql).strip()


def replica_names(count: int) -> list[str]:
    return [f'bn-r{i}' for i in range(1, count + 1)]


# --- containers -------------------------------------------------------------------------------

def bench_containers() -> list[str]:
    out = run(['docker', 'ps', '-a', '--filter', 'name=^bn-', '--format', '{{.Names}}']).stdout.split()
    return [n for n in out if n.startswith('bn-')]


def destroy(names: Optional[list[str]] = None) -> None:
    names = bench_containers() if names is None else names
    if names:
        run(['docker', 'rm', '-f', '-v', *names], check=False)    # -v: the anonymous volume of the preinstalled image


def ensure_network(network: str = NETWORK) -> None:
    if run(['docker', 'network', 'inspect', network], check=False).returncode != 0:
        run(['docker', 'network', 'create', network])


def remove_network(network: str = NETWORK) -> None:
    run(['docker', 'network', 'rm', network], check=False)


def inotify_raises(current: dict[str, int], want: Optional[dict[str, int]] = None) -> dict[str, int]:
    """The inotify settings below what many systemd containers need, with the value to set (never lowered)."""
    want = INOTIFY_WANT if want is None else want
    return {key: value for key, value in want.items() if current.get(key, 0) < value}


def ensure_inotify(containers: int) -> None:
    """Before running more than INOTIFY_CONTAINERS containers: each container's systemd takes inotify instances, and at
    the default max_user_instances (128) new containers exit at start after about 20. Raised (sysctl -w), logged, recorded."""
    if containers <= INOTIFY_CONTAINERS:
        return
    current = {key: int(Path('/proc/sys', *key.split('.')).read_text(encoding='utf-8')) for key in INOTIFY_WANT}
    raise_to = inotify_raises(current)
    if not raise_to:
        return
    proc = run(['sysctl', '-w', *[f'{key}={value}' for key, value in raise_to.items()]], check=False)
    what = ', '.join(f'{key} {current[key]} -> {value}' for key, value in raise_to.items())
    msg = (f'{containers} containers: raised {what} (sysctl -w; not persistent)' if proc.returncode == 0 else
           f'{containers} containers: could not raise {what}: {proc.stderr.strip()[:300]} (containers may exit at start)')
    log(msg)
    HOST_CHANGES.append(msg)


def running_containers() -> int:
    return len(run(['docker', 'ps', '-q']).stdout.split())


def container_image(name: str) -> str:
    return run(['docker', 'inspect', '-f', '{{.Config.Image}}', name]).stdout.strip()


def preinstalled_image(base: str = IMAGE, tag: str = PREINSTALLED) -> str:
    """Bench only: the lab image with the roles' packages (PREINSTALLED_PACKAGES) installed from the .debs it caches
    (apt-get --no-download: no network), services not started during the build (policy-rc.d), so a container starts
    with Debian's cluster N/main running, as on a server where PostgreSQL is installed already. /var/lib/postgresql is a
    volume, which Docker fills with the image's content at container creation: the data directory is then on a file
    system of its own as on a server, not in an overlayfs image layer, where renaming a directory fails with EXDEV (the
    pg_basebackup module moves an existing data directory aside). Built when missing or when the lab image or this
    recipe changed (label org.catmaid-replication.bench-base)."""
    base_id = run(['docker', 'image', 'inspect', '-f', '{{.Id}}', base]).stdout.strip()
    recipe = [
        'RUN set -eux; \\',
        '    if [ -e /usr/sbin/policy-rc.d ]; then mv /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.bench; fi; \\',
        "    printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d; \\",
        f'    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download {" ".join(PREINSTALLED_PACKAGES)}; \\',
        '    rm -f /usr/sbin/policy-rc.d; \\',
        '    if [ -e /usr/sbin/policy-rc.d.bench ]; then mv /usr/sbin/policy-rc.d.bench /usr/sbin/policy-rc.d; fi; \\',
        '    pg_lsclusters',
        'VOLUME /var/lib/postgresql', '']
    stamp = base_id + ' ' + hashlib.sha256('\n'.join(recipe).encode()).hexdigest()[:12]
    have = run(['docker', 'image', 'inspect', '-f', '{{index .Config.Labels "org.catmaid-replication.bench-base"}}', tag], check=False)
    if have.returncode == 0 and have.stdout.strip() == stamp:
        return tag
    dockerfile = '\n'.join([f'FROM {base}', f'LABEL org.catmaid-replication.bench-base="{stamp}"', *recipe])
    log(f'building {tag} from {base} (the roles\' packages preinstalled from its apt cache)')
    t0 = time.monotonic()
    proc = subprocess.run(['docker', 'build', '-t', tag, '-'], input=dockerfile, capture_output=True, text=True, check=False,
                          env={**os.environ, 'DOCKER_BUILDKIT': '0'})
    if proc.returncode != 0:
        raise RuntimeError(f'docker build of {tag} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    log(f'{tag} built in {time.monotonic() - t0:.0f} s')
    return tag


def create(names: list[str], network: str = NETWORK, label: str = 'bench', image: str = IMAGE) -> None:
    """Fresh systemd containers with molecule/default's settings (no --privileged); bench/drill.py uses it too."""
    ensure_inotify(running_containers() + len(names))
    ensure_network(network)
    for name in names:
        run(['docker', 'run', '-d', '--name', name, '--hostname', name, '--network', network,
             '--cap-add', 'SYS_ADMIN', '--cgroupns=host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
             '--tmpfs', '/run', '--tmpfs', '/run/lock', '--stop-signal', 'SIGRTMIN+3',
             '--label', f'org.catmaid-replication.{label}=1', image, '/lib/systemd/systemd'])
    wait_s = 120 + 5 * max(0, len(names) - 3)         # 120 s for a few, more for many starting at once
    deadline = time.monotonic() + wait_s
    for name in names:
        while True:
            state = dexec(name, 'systemctl', 'is-system-running', check=False).strip()
            if state in ('running', 'degraded'):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f'{name}: systemd is {state!r} after {wait_s} s')
            time.sleep(0.5)


def address(name: str, network: str = NETWORK) -> str:
    fmt = '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % network
    return run(['docker', 'inspect', '-f', fmt, name]).stdout.strip()


def subnet(network: str = NETWORK) -> str:
    return run(['docker', 'network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', network]).stdout.strip()


# --- Ansible ------------------------------------------------------------------------------------

class Ansible:
    """Inventory, environment and timed runs of ansible-playbook with the JSON callback."""

    def __init__(self, password: str) -> None:
        self.inv_dir = WORK / 'inventory'
        (self.inv_dir / 'group_vars').mkdir(parents=True, exist_ok=True)
        pw_file = WORK / 'password'
        pw_file.touch(mode=0o600)
        pw_file.chmod(0o600)
        pw_file.write_text(password, encoding='utf-8')
        (self.inv_dir / 'group_vars' / 'all.yml').write_text(
            '---\n# Written by bench/bench.py: the random password of this benchmark run (0600 file).\n'
            f'catmaid_replication_password: "{{{{ lookup(\'ansible.builtin.file\', \'{pw_file}\') }}}}"\n', encoding='utf-8')
        self.logs = WORK / 'logs'
        self.logs.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def inventory(self, replicas: list[str], hostvars: Optional[dict[str, dict[str, str]]] = None) -> Path:
        path = self.inv_dir / 'hosts.ini'
        hostvars = hostvars or {}
        lines = [' '.join([r, *(f'{key}={value}' for key, value in sorted(hostvars.get(r, {}).items()))]) for r in replicas]
        path.write_text(f'[primary]\n{PRIMARY}\n\n[replicas]\n' + ''.join(f'{line}\n' for line in lines) +
                        '\n[all:vars]\nansible_connection=community.docker.docker\nansible_python_interpreter=/usr/bin/python3\n', encoding='utf-8')
        return path

    def env(self, forks: int, tree: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
        # Ansible's own default (no pipelining) unless BENCH_PIPELINING says otherwise: what a user gets
        # without an ansible.cfg (site.yml turns pipelining on in its plays).
        env.pop('ANSIBLE_PIPELINING', None)
        if os.environ.get('BENCH_PIPELINING'):
            env['ANSIBLE_PIPELINING'] = os.environ['BENCH_PIPELINING']
        env.update({
            'ANSIBLE_COLLECTIONS_PATH': str(collections_path(tree)),
            'ANSIBLE_ROLES_PATH': str(tree / 'roles'),
            'ANSIBLE_FORKS': str(max(5, forks)),
            'ANSIBLE_TIMEOUT': '60',
            'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json',
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_RETRY_FILES_ENABLED': 'false',
            'ANSIBLE_DEPRECATION_WARNINGS': 'false',
        })
        return env

    def play(self, label: str, playbook: Path, replicas: list[str], tree: Path, extra: Optional[list[str]] = None,
             memory: bool = False, env: Optional[dict[str, str]] = None, hostvars: Optional[dict[str, dict[str, str]]] = None) -> dict[str, Any]:
        inv = self.inventory(replicas, hostvars)
        self.count += 1
        out_file = self.logs / f'{time.strftime("%Y%m%dT%H%M%S")}-{self.count:02d}-{label}.json'
        argv = ['ansible-playbook', '-i', str(inv), str(playbook), *(extra or [])]
        time_file = out_file.with_suffix('.time')
        if memory:
            argv = ['/usr/bin/time', '-v', '-o', str(time_file), *argv]
        load0 = loadavg()
        start = time.monotonic()
        run_env = {**self.env(len(replicas) + 1, tree), **(env or {})}
        with open(out_file, 'w', encoding='utf-8') as out, open(out_file.with_suffix('.err'), 'w', encoding='utf-8') as err:
            proc = subprocess.Popen(argv, stdout=out, stderr=err,  # pylint: disable=consider-using-with
                                    env=run_env, cwd=ROOT)
            sampler = TreeSampler(proc.pid) if memory else None
            if sampler:
                sampler.start()
            rc = proc.wait()
            if sampler:
                sampler.stop()
        wall = time.monotonic() - start
        text = out_file.read_text(encoding='utf-8')
        try:
            data = json.loads(text[text.index('{'):])
        except ValueError:
            data = {}
        if rc != 0:
            failed = [f'{t["task"]["name"]} on {h}: {r.get("msg", "")}' for p in data.get('plays', []) for t in p['tasks']
                      for h, r in t['hosts'].items() if r.get('failed') or r.get('unreachable')]
            raise RuntimeError(f'{label}: ansible-playbook failed (rc {rc}): {"; ".join(failed)[:2000]}\n'
                               f'see {out_file} and {out_file.with_suffix(".err")}')
        result = {'label': label, 'wall_s': round(wall, 2), 'load_start': load0, 'load_end': loadavg(), 'forks': int(run_env['ANSIBLE_FORKS']),
                  'stats': data.get('stats', {}), 'plays': plays_of(data), 'tasks': tasks_of(data), 'log': str(out_file)}
        result['changed_total'] = sum(s.get('changed', 0) for s in result['stats'].values())
        if sampler:
            result['memory'] = sampler.result()
            timed = parse_time_v(time_file.read_text(encoding='utf-8'))
            result['memory']['time_v_max_rss_mb'] = timed['max_rss_mb']
            # CPU of ansible-playbook and every descendant it (or they) waited for: workers, docker exec clients
            result['controller_cpu'] = {'user_s': timed['user_s'], 'sys_s': timed['sys_s'], 'total_s': timed['cpu_s']}
        result['_data'] = data
        return result


def parse_time_v(text: str) -> dict[str, Any]:
    """From GNU time -v's report: user and system CPU seconds (the process and every descendant that was waited for),
    their sum, and the largest single resident set in MB; None for what is missing."""
    def number(label: str) -> Optional[float]:
        m = re.search(re.escape(label) + r':\s*([\d.]+)', text)
        return float(m.group(1)) if m else None
    user, system, rss = number('User time (seconds)'), number('System time (seconds)'), number('Maximum resident set size (kbytes)')
    return {'user_s': user, 'sys_s': system, 'cpu_s': round(user + system, 2) if user is not None and system is not None else None,
            'max_rss_mb': round(rss / 1024, 1) if rss is not None else None}


def collections_path(tree: Path) -> Path:
    return ROOT / 'build' / 'collections' if tree == ROOT else tree / '.collections'


def export_tree(ref: str) -> tuple[Path, str]:
    """The collection at a git ref, exported under build/bench/trees (the working tree for 'worktree')."""
    if ref == 'worktree':
        dirty = run(['git', '-C', str(ROOT), 'status', '--porcelain', '--', 'roles', 'playbooks', 'plugins']).stdout.strip()
        head = run(['git', '-C', str(ROOT), 'rev-parse', 'HEAD']).stdout.strip()
        return ROOT, head + (' + uncommitted changes' if dirty else '')
    sha = run(['git', '-C', str(ROOT), 'rev-parse', '--verify', f'{ref}^{{commit}}']).stdout.strip()
    dest = WORK / 'trees' / sha[:12]
    if not (dest / 'galaxy.yml').exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(['git', '-C', str(ROOT), 'archive', sha], capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', str(dest)], input=archive, check=True)
    link = dest / '.collections' / 'ansible_collections' / 'catmaid' / 'replication'
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(dest)
    return dest, sha


def _ts(value: str) -> float:
    return datetime.datetime.fromisoformat(value.rstrip('Z')).timestamp()


def _span(duration: dict[str, str]) -> float:
    return round(_ts(duration['end']) - _ts(duration['start']), 3) if duration.get('end') else 0.0


def plays_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{'name': p['play']['name'], 'seconds': _span(p['play']['duration'])} for p in data.get('plays', [])]


def tasks_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in data.get('plays', []):
        for t in p['tasks']:
            hosts = t.get('hosts', {})
            out.append({'play': p['play']['name'], 'name': t['task']['name'], 'seconds': _span(t['task']['duration']),
                        'hosts': len(hosts),
                        'ran': sum(1 for h in hosts.values() if not h.get('skipped')),
                        'changed': sum(1 for h in hosts.values() if h.get('changed')),
                        'action': next(iter(hosts.values()), {}).get('action', '')})
    return out


# Actions that run on the controller only: no module reaches the host. catmaid.replication.topology is
# the collection's action plugin, which computes the replication set on the controller (no module).
CONTROLLER_ACTIONS = frozenset(
    f'{prefix}{name}' for prefix in ('', 'ansible.builtin.', 'ansible.legacy.')
    for name in ('set_fact', 'assert', 'debug', 'fail', 'include_tasks', 'include_role', 'import_tasks', 'import_role',
                 'import_playbook', 'meta', 'add_host', 'group_by', 'include_vars', 'set_stats', 'pause',
                 'validate_argument_spec')) | {'catmaid.replication.topology'}
CONTROLLER_HOSTS = ('localhost', '127.0.0.1', '::1')


def _executed_on(host: str, result: dict[str, Any], delegated: Optional[dict[str, Any]], known: set[str]) -> Optional[str]:
    """The host a (non-skipped) result ran its module on; None for the controller. A delegated result
    counts for the host it was delegated to when that is a host of the run, else for its own host."""
    delegated = result.get('_ansible_delegated_vars') or delegated
    if not delegated:
        return host
    target = delegated.get('ansible_delegated_host') or delegated.get('ansible_host') or host
    if target in CONTROLLER_HOSTS or delegated.get('ansible_connection') in ('local', 'ansible.builtin.local', 'ansible.legacy.local'):
        return None
    return target if target in known else host


def remote_executions(data: dict[str, Any]) -> dict[str, int]:
    """Per host, the task results of an ansible-playbook run (the JSON callback's output) that really ran a
    module on that host: not skipped (nor unreachable), not a controller-only action, not delegated to
    the controller (nor of a play on localhost); a loop counts once per item that ran; the implicit fact
    gathering counts too. One task result (or loop item) counts as one execution, although an action
    plugin such as template may run more than one module within it (stat, then copy)."""
    known = set(data.get('stats', {}))
    for play in data.get('plays', []):
        for task in play['tasks']:
            known.update(task.get('hosts', {}))
    known -= set(CONTROLLER_HOSTS)              # a play on localhost runs its modules on the controller
    counts: dict[str, int] = {host: 0 for host in sorted(known)}
    for play in data.get('plays', []):
        for task in play['tasks']:
            for host, res in task.get('hosts', {}).items():
                if host not in known or res.get('action', '') in CONTROLLER_ACTIONS or res.get('unreachable'):
                    continue
                delegated = res.get('_ansible_delegated_vars')
                if isinstance(res.get('results'), list):     # a loop: one execution per item that ran
                    items = [item for item in res['results'] if isinstance(item, dict)]
                else:
                    items = [res]
                for item in items:
                    if item.get('skipped') or item.get('unreachable'):
                        continue
                    target = _executed_on(host, item, delegated, known)
                    if target is not None:
                        counts[target] = counts.get(target, 0) + 1
    return counts


def changed_per_host(stats: dict[str, Any]) -> dict[str, int]:
    return {host: s.get('changed', 0) for host, s in sorted(stats.items())}


class TreeSampler:
    """Peak memory of a process and all its descendants (RSS sum and PSS sum), sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f'/proc/{entry}/stat').read_text(encoding='utf-8')
            except OSError:
                continue
            ppid = int(stat.rsplit(')', 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    @staticmethod
    def _kb(path: str, key: str) -> int:
        try:
            for line in Path(path).read_text(encoding='utf-8').splitlines():
                if line.startswith(key):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            tree = self._tree()
            rss = sum(self._kb(f'/proc/{p}/status', 'VmRSS:') for p in tree)
            pss = sum(self._kb(f'/proc/{p}/smaps_rollup', 'Pss:') for p in tree)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(tree))
            self._stop.wait(0.2)

    def result(self) -> dict[str, Any]:
        return {'tree_peak_rss_mb': round(self.peak_rss / 1024, 1), 'tree_peak_pss_mb': round(self.peak_pss / 1024, 1),
                'tree_peak_processes': self.peak_procs}


# --- drift (phase drift) ---------------------------------------------------------------------------
# One entry per managed item in DRIFTS: inject() changes the item on a host of the deployed lab (docker
# exec) and returns its state ('host', 'injected': what was done, and what check() needs); check(state),
# after one run of site.yml, reads the host again and returns (fixed, how it was checked).

STREAM_SERVER = '/etc/nginx/stream.d/catmaid-replication.conf'    # nginx_stream_config_dir / _config_file_name
SETTINGS_FILE = 'conf.d/40-catmaid-replication.conf'              # __catmaid_replication_conf_file_name, in conf.d
SLOT_RECORD = 'catmaid-replication-slots'                         # __catmaid_replication_slot_record
HBA_BEGIN, HBA_END = '# BEGIN catmaid.replication', '# END catmaid.replication'


def conf_dir(host: str) -> str:
    """/etc/postgresql/<major>/main of the host's cluster (cluster name main)."""
    return f'/etc/postgresql/{psql(host, "SHOW server_version_num")[:-4]}/main'


def cat(host: str, path: str) -> str:
    return dexec(host, 'cat', path)


def put(host: str, path: str, text: str) -> None:
    """Rewrite a file in place (same inode: owner and mode stay)."""
    dexec(host, 'sh', '-c', f'cat > {shlex.quote(path)}', input_text=text)


def mode_of(host: str, path: str) -> str:
    return dexec(host, 'stat', '-c', '%a', path).strip()


def wait_for(probe: Callable[[], bool], timeout: float, step: float = 1.0) -> tuple[bool, float]:
    """Call probe() until it is true or timeout seconds passed: (true at the end, seconds waited)."""
    t0 = time.monotonic()
    while True:
        if probe():
            return True, round(time.monotonic() - t0, 1)
        if time.monotonic() - t0 > timeout:
            return False, round(time.monotonic() - t0, 1)
        time.sleep(step)


def _same_file(state: dict[str, Any]) -> tuple[bool, str]:
    now_text = cat(state['host'], state['path'])
    same = now_text == state['original']
    return same, f'{state["path"]} equal to its content before the injection: {same}'


def drift_setting() -> dict[str, Any]:
    """A managed setting changed in the settings file and reloaded, so the server runs with it too."""
    path = f'{conf_dir(PRIMARY)}/{SETTINGS_FILE}'
    original = cat(PRIMARY, path)
    name = 'wal_keep_size' if re.search(r'(?m)^wal_keep_size\s*=', original) else 'wal_keep_segments'   # PostgreSQL 13+ / older
    shown = psql(PRIMARY, f'SHOW {name}')
    value = ("'2GB'" if shown == '1GB' else "'1GB'") if name == 'wal_keep_size' else str(int(shown) + 7)
    drifted = re.sub(rf'(?m)^{name}\s*=.*$', f'{name} = {value}', original, count=1)
    put(PRIMARY, path, drifted)
    psql(PRIMARY, 'SELECT pg_reload_conf()')
    took, dummy = wait_for(lambda: psql(PRIMARY, f'SHOW {name}') != shown, 10, 0.5)
    return {'host': PRIMARY, 'path': path, 'original': original, 'setting': name, 'shown': shown,
            'injected': f'{path}: {name} = {value} instead of the managed value, pg_reload_conf() '
                        f'(SHOW {name}: {shown} before, {psql(PRIMARY, f"SHOW {name}")} after{"" if took else ", not applied"})'}


def check_setting(state: dict[str, Any]) -> tuple[bool, str]:
    same, how = _same_file(state)
    shown = psql(state['host'], f'SHOW {state["setting"]}')
    return same and shown == state['shown'], f'{how}; SHOW {state["setting"]} = {shown} (before the injection {state["shown"]})'


def drift_hba() -> dict[str, Any]:
    """One rule of the managed block of pg_hba.conf deleted (a reject rule: the replicas' connections stay), reloaded."""
    path = f'{conf_dir(PRIMARY)}/pg_hba.conf'
    original = cat(PRIMARY, path)
    lines = original.splitlines(keepends=True)
    begin = next(i for i, line in enumerate(lines) if line.startswith(HBA_BEGIN))
    end = next(i for i, line in enumerate(lines) if line.startswith(HBA_END))
    rules = [i for i in range(begin + 1, end) if lines[i].strip() and not lines[i].lstrip().startswith('#')]
    gone = next((i for i in rules if 'reject' in lines[i]), rules[-1])
    put(PRIMARY, path, ''.join(lines[:gone] + lines[gone + 1:]))
    psql(PRIMARY, 'SELECT pg_reload_conf()')
    return {'host': PRIMARY, 'path': path, 'original': original,
            'injected': f'{path}: rule `{lines[gone].strip()}` deleted from the managed block, pg_reload_conf()'}


def drift_allow() -> dict[str, Any]:
    """One allow line of the proxy's stream server deleted (bn-r1's: its stream stays up), nginx reloaded."""
    path = STREAM_SERVER
    original = cat(PRIMARY, path)
    lines = original.splitlines(keepends=True)
    allows = [i for i, line in enumerate(lines) if line.strip().startswith('allow ')]
    mine = f'allow {address(replica_names(1)[0])};'
    gone = next((i for i in allows if lines[i].strip() == mine), allows[0])
    put(PRIMARY, path, ''.join(lines[:gone] + lines[gone + 1:]))
    dexec(PRIMARY, 'nginx', '-s', 'reload')
    return {'host': PRIMARY, 'path': path, 'original': original,
            'injected': f'{path}: `{lines[gone].strip()}` deleted, nginx -s reload'}


def drift_settings_mode() -> dict[str, Any]:
    host = replica_names(1)[0]
    path = f'{conf_dir(host)}/{SETTINGS_FILE}'
    before = mode_of(host, path)
    dexec(host, 'chmod', '0600', path)
    return {'host': host, 'path': path, 'mode': '644', 'injected': f'chmod 0600 {path} (was {before})'}


def drift_key_mode() -> dict[str, Any]:
    host = replica_names(2)[1]
    path = psql(host, 'SHOW ssl_key_file')                           # __catmaid_replication_ssl_key
    before = mode_of(host, path)
    dexec(host, 'chmod', '0640', path)
    return {'host': host, 'path': path, 'mode': '600', 'injected': f'chmod 0640 {path} (was {before})'}


def check_mode(state: dict[str, Any]) -> tuple[bool, str]:
    now_mode = mode_of(state['host'], state['path'])
    return now_mode == state['mode'], f'stat -c %a {state["path"]}: {now_mode} (expected {state["mode"]})'


def _streams_through(replica: str, slot: str) -> bool:
    row = psql(PRIMARY, "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid "
                        f"WHERE r.application_name = '{replica}' AND r.state = 'streaming' AND s.slot_name = '{slot}' AND s.active")
    return row == '1'


def drift_slot() -> dict[str, Any]:
    """The replication slot of bn-r2 dropped on the primary while bn-r2 streams through it (its walsender ended first)."""
    replica = replica_names(2)[1]
    slot = psql(PRIMARY, "SELECT s.slot_name FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid "
                         f"WHERE r.application_name = '{replica}'")
    if not slot:
        raise RuntimeError(f'drift: {replica} does not stream through a slot of {PRIMARY}')
    recorded = slot in cat(PRIMARY, f'{conf_dir(PRIMARY)}/{SLOT_RECORD}').split()
    tries = 0
    while psql(PRIMARY, f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'") != '0':
        tries += 1
        if tries > 30:
            raise RuntimeError(f'drift: could not drop the slot {slot} on {PRIMARY} (its walsender keeps coming back)')
        psql(PRIMARY, f"SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = '{replica}'")
        time.sleep(0.2)       # the walsender exits; the replica's walreceiver retries only after wal_retrieve_retry_interval (5 s)
        try:
            psql(PRIMARY, f"SELECT pg_drop_replication_slot('{slot}') FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT active")
        except RuntimeError:  # taken again in between: end its walsender once more
            pass
    streaming = psql(PRIMARY, f"SELECT count(*) FROM pg_stat_replication WHERE application_name = '{replica}'")
    return {'host': PRIMARY, 'replica': replica, 'slot': slot,
            'injected': f'slot {slot} of {replica} dropped on {PRIMARY} (walsender ended first; in the slot record: {recorded}; '
                        f'{replica} walsenders right after: {streaming})'}


def check_slot(state: dict[str, Any]) -> tuple[bool, str]:
    slot, replica = state['slot'], state['replica']
    exists = psql(PRIMARY, f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'") == '1'
    streams, waited = wait_for(lambda: _streams_through(replica, slot), 60) if exists else (False, 0.0)
    return exists and streams, (f'slot {slot} exists after the run: {exists}; {replica} streaming through it (pg_stat_replication + '
                                f'pg_replication_slots.active on {PRIMARY}): {streams}' + (f' after {waited} s' if streams else ' within 60 s'))


DRIFTS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], tuple[bool, str]]]] = {
    'setting': (drift_setting, check_setting),
    'pg_hba line': (drift_hba, _same_file),
    'proxy allow list': (drift_allow, _same_file),
    'settings file mode': (drift_settings_mode, check_mode),
    'replication slot': (drift_slot, check_slot),
    'SSL key mode': (drift_key_mode, check_mode),
}


# --- the benchmark --------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        WORK.mkdir(parents=True, exist_ok=True)
        WORK.chmod(0o700)
        pw_file = WORK / 'password'
        # A lab kept from an earlier run (--keep) still has that run's password; otherwise a new one.
        reuse = pw_file.exists() and PRIMARY in bench_containers()
        self.password = pw_file.read_text(encoding='utf-8') if reuse else secrets.token_urlsafe(24)
        self.ansible = Ansible(self.password)
        self.tree, self.sha = export_tree(args.ref)
        self.site = self.tree / 'playbooks' / 'site.yml'
        self.base_tree, self.base_sha = export_tree(args.baseline_ref) if args.baseline_ref else (None, None)
        self.base_extra = shlex.split(args.baseline_extra)
        if self.base_extra and not self.base_tree:     # the same commit, with other variables
            self.base_tree, self.base_sha = self.tree, self.sha
        self.lab: list[str] = []            # replicas of the lab deployed by the playbook, if any
        self._scale_done: Optional[int] = None
        # --preinstalled: every bn-* container from the image with the roles' packages installed (scale-pre and fanout always)
        self._preinstalled: Optional[str] = None
        self.image = IMAGE
        self.results: dict[str, Any] = {'machine': machine(), 'started': now(), 'args': vars(args), 'phases': {},
                                        'commit': self.sha, 'baseline_commit': self.base_sha}
        earlier = Path(args.out) / 'results.json'
        if args.merge and earlier.exists():   # continue an earlier run: keep its phases (and its start)
            old = json.loads(earlier.read_text(encoding='utf-8'))
            self.results['phases'] = old.get('phases', {})
            self.results['started'] = old.get('started', self.results['started'])
            self.results['runs_of_bench'] = old.get('runs_of_bench', [old.get('args')]) + [vars(args)]
        if args.preinstalled:
            self.image = self.preinstalled()

    # helpers
    def preinstalled(self) -> str:
        if self._preinstalled is None:
            self._preinstalled = preinstalled_image()
            self.results['machine']['preinstalled_image'] = self._preinstalled
        return self._preinstalled

    def fresh(self, replicas: list[str], image: Optional[str] = None) -> None:
        destroy()
        create([PRIMARY, *replicas], image=image or self.image)
        self.lab = []

    def deploy_playbook(self, label: str, replicas: list[str], memory: bool = False, baseline: bool = False,
                        image: Optional[str] = None) -> dict[str, Any]:
        self.fresh(replicas, image)
        log(f'{label}: site playbook, primary + {len(replicas)} replica(s)')
        tree = self.base_tree if baseline and self.base_tree else self.tree
        res = self.ansible.play(label, tree / 'playbooks' / 'site.yml', replicas, tree, memory=memory,
                                extra=self.base_extra if baseline else None)
        self.lab = [] if baseline else replicas
        log(f'{label}: {res["wall_s"]} s, changed {res["changed_total"]}')
        return res

    def deploy_by_hand(self, label: str, replicas: list[str], parallel: bool = False) -> dict[str, Any]:
        """The guide's steps by hand (bench/by-hand.sh). parallel=False: the primary's steps (packages
        included), then the replicas' at once. parallel=True, as a skilled admin (and the playbook) does:
        the packages on every host at once, then the primary's steps, then the replicas' at once."""
        self.fresh(replicas)
        script = (BENCH / 'by-hand.sh').read_text(encoding='utf-8')
        for host in [PRIMARY, *replicas]:   # the operator has the password at hand: before the clock
            dexec(host, 'sh', '-c', 'umask 077 && cat > /root/.bench_password', input_text=self.password)
        addresses = [address(r) for r in replicas]

        def at_once(jobs: list[tuple[str, list[str]]], what: str) -> None:
            procs = [subprocess.Popen(['docker', 'exec', '-i', host, *argv],  # pylint: disable=consider-using-with
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for host, argv in jobs]
            outs = [p.communicate(script) for p in procs]
            for (host, dummy), p, (out, err) in zip(jobs, procs, outs):
                if p.returncode != 0:
                    raise RuntimeError(f'{label}: by-hand.sh {what} on {host} failed: {out[-2000:]} {err[-2000:]}')

        skip = ['env', 'BYHAND_SKIP_INSTALL=1'] if parallel else []
        log(f'{label}: by-hand.sh{" (packages on every host at once first)" if parallel else ""}, primary + {len(replicas)} replica(s)')
        load0 = loadavg()
        t0 = time.monotonic()
        if parallel:
            at_once([(PRIMARY, ['bash', '-s', '--', 'install', 'primary'])]
                    + [(r, ['bash', '-s', '--', 'install', 'replica']) for r in replicas], 'install')
        ti = time.monotonic()
        at_once([(PRIMARY, [*skip, 'bash', '-s', '--', 'primary', *addresses])], 'primary')
        t1 = time.monotonic()
        at_once([(r, [*skip, 'bash', '-s', '--', 'replica', PRIMARY, r]) for r in replicas], 'replica')
        t2 = time.monotonic()
        streaming = psql(PRIMARY, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        res = {'label': label, 'wall_s': round(t2 - t0, 2), 'install_s': round(ti - t0, 2), 'primary_s': round(t1 - ti, 2),
               'replicas_s': round(t2 - t1, 2), 'parallel': parallel,
               'streaming': int(streaming), 'load_start': load0, 'load_end': loadavg()}
        log(f'{label}: {res["wall_s"]} s (packages {res["install_s"]} s, primary {res["primary_s"]} s, '
            f'replicas {res["replicas_s"]} s), {streaming} streaming')
        return res

    def ensure_lab(self, replicas: list[str]) -> None:
        if self.lab:
            return
        existing = bench_containers()
        if PRIMARY in existing and set(replicas) <= set(existing):   # kept from an earlier run (--keep)
            apps = psql(PRIMARY, "SELECT string_agg(application_name, ' ') FROM pg_stat_replication WHERE state = 'streaming'",
                        ) if run(['docker', 'exec', PRIMARY, 'true'], check=False).returncode == 0 else ''
            streaming = sorted(a for a in apps.split() if a.startswith('bn-'))
            if set(replicas) <= set(streaming):
                self.lab = streaming
                log(f'reusing the running lab: {PRIMARY} + {", ".join(streaming)}')
                return
        self.deploy_playbook('lab', replicas)

    def record(self, phase: str, data: dict[str, Any]) -> None:
        self.results['phases'][phase] = data
        self.save()

    def save(self) -> None:
        if HOST_CHANGES:
            self.results['host_changes'] = list(HOST_CHANGES)
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        clean = json.loads(json.dumps(self.results, default=str))
        strip_private(clean)
        (out / 'results.json').write_text(json.dumps(clean, indent=1, sort_keys=True) + '\n', encoding='utf-8')

    # phase 1
    def phase_deploy(self) -> None:
        replicas = replica_names(2)
        runs: list[dict[str, Any]] = []
        kinds = ('playbook', 'hand', 'hand-parallel', 'baseline') if self.base_tree else ('playbook', 'hand', 'hand-parallel')
        for i in range(self.args.rounds):
            order = kinds if i % 2 == 0 else tuple(reversed(kinds))
            for kind in order:
                label = f'deploy-{kind}-{i + 1}'
                if kind in ('hand', 'hand-parallel'):
                    res = self.deploy_by_hand(label, replicas, parallel=kind == 'hand-parallel')
                else:
                    res = self.deploy_playbook(label, replicas, baseline=kind == 'baseline')
                res['kind'] = kind
                res['round'] = i + 1
                runs.append(res)
        pb = [r['wall_s'] for r in runs if r['kind'] == 'playbook']
        hand = [r['wall_s'] for r in runs if r['kind'] == 'hand']
        par = [r['wall_s'] for r in runs if r['kind'] == 'hand-parallel']
        data = {'runs': runs, 'playbook_mean_s': mean(pb), 'hand_mean_s': mean(hand),
                'ratio': round(mean(pb) / mean(hand), 3), 'profile': profile([r for r in runs if r['kind'] == 'playbook']),
                # the strongest fair baseline: the guide's steps with every host's packages installed at once
                'hand_parallel_mean_s': mean(par), 'ratio_parallel': round(mean(pb) / mean(par), 3)}
        base = [r['wall_s'] for r in runs if r['kind'] == 'baseline']
        if base:
            data.update({'baseline_mean_s': mean(base), 'baseline_ratio': round(mean(base) / mean(hand), 3),
                         'baseline_extra': self.args.baseline_extra,
                         'baseline_profile': profile([r for r in runs if r['kind'] == 'baseline'])})
        self.record('deploy', data)
        log(f'deploy: playbook {mean(pb)} s, by hand {mean(hand)} s (ratio {mean(pb) / mean(hand):.2f}), '
            f'by hand with the packages at once {mean(par)} s (ratio {mean(pb) / mean(par):.2f})')
        if runs[-1]['kind'] != 'playbook':
            self.lab = []

    # phase 2
    def phase_rerun(self) -> None:
        self.ensure_lab(replica_names(2))
        res = self.ansible.play('rerun', self.site, self.lab, self.tree)
        res['hosts'] = 1 + len(self.lab)
        res['changed'] = changed_per_host(res['stats'])
        res['executions'] = remote_executions(res['_data'])
        self.record('rerun', {'run': res, 'profile': profile([res])})
        log(f'rerun: {res["wall_s"]} s, changed {res["changed_total"]}, remote executions per host {res["executions"]}')

    # phase 2c: one drift per managed item, then ONE run of site.yml must find and fix each
    def phase_drift(self) -> None:
        self.ensure_lab(replica_names(2))
        states: dict[str, dict[str, Any]] = {}
        for name, (inject, dummy) in DRIFTS.items():
            states[name] = inject()
            log(f'drift: {name}: injected on {states[name]["host"]}: {states[name]["injected"]}')
        error = ''
        res: dict[str, Any] = {}
        try:
            res = self.ansible.play('drift', self.site, self.lab, self.tree)
        except RuntimeError as exc:          # checked and recorded all the same: what did the failed run fix?
            error = str(exc)
            log(f'drift: site.yml failed: {error[:500]}')
        items = []           # a list: results.json is written with sorted keys, the items keep DRIFTS' order
        for name, (dummy, check) in DRIFTS.items():
            fixed, checked = check(states[name])
            items.append({'item': name, 'host': states[name]['host'], 'injected': states[name]['injected'], 'fixed': fixed, 'checked': checked})
            log(f'drift: {name}: {"fixed" if fixed else "NOT FIXED"} ({checked})')
        data: dict[str, Any] = {'items': items, 'fixed': sum(1 for i in items if i['fixed']), 'count': len(items)}
        if res:
            res['hosts'] = 1 + len(self.lab)
            res['changed'] = changed_per_host(res['stats'])
            res['executions'] = remote_executions(res['_data'])
            data['run'] = res
            log(f'drift: site.yml {res["wall_s"]} s, changed per host {res["changed"]}, remote executions per host {res["executions"]}')
        if error:
            data['error'] = error[:3000]
        self.record('drift', data)
        missed = [item['item'] for item in items if not item['fixed']]
        if error or missed:
            raise RuntimeError(f'drift: not fixed by one run of site.yml: {", ".join(missed) or "-"}' + (f'; the run failed: {error[:500]}' if error else ''))

    # phase 2b: what one small task costs with each connection setting
    def phase_conn(self) -> None:
        self.ensure_lab(replica_names(2))
        settings = [('docker', 'true'), ('docker', 'false'), ('docker_api', 'true')]
        runs = []
        for i in range(self.args.conn_rounds):
            for conn, pipelining in (settings if i % 2 == 0 else list(reversed(settings))):
                res = self.ansible.play(f'conn-{conn}-pipelining-{pipelining}', BENCH / 'tasks.yml', self.lab, self.tree,
                                        extra=['-e', f'ansible_connection=community.docker.{conn}'],
                                        env={'ANSIBLE_PIPELINING': pipelining})
                small = [t['seconds'] for t in res['tasks'] if t['name'].startswith('Small task')]
                runs.append({'connection': conn, 'pipelining': pipelining, 'wall_s': res['wall_s'], 'tasks': len(small),
                             'per_task_s': round(sum(small) / len(small), 3), 'hosts': 1 + len(self.lab), 'round': i + 1,
                             'label': res['label'], 'load_start': res['load_start'], 'load_end': res['load_end']})
                log(f'conn: {conn} pipelining={pipelining}: {runs[-1]["per_task_s"]} s per task on {runs[-1]["hosts"]} hosts')
        summary = {f'{c} pipelining={p}': mean([r['per_task_s'] for r in runs if r['connection'] == c and r['pipelining'] == p])
                   for c, p in settings}
        self.record('conn', {'runs': runs, 'per_task_s': summary})

    # phase 3b (issue 17 item 5 with --addone-base 20): one replica added to the running lab of at least
    # --addone-base replicas (deployed with that many when none runs), its container from the lab's image
    def phase_addone(self) -> None:
        if len(self.lab) < self.args.addone_base:      # a smaller lab from an earlier phase: a kept or a new one of that size
            self.lab = []
        self.ensure_lab(replica_names(self.args.addone_base))
        existing = list(self.lab)
        new = f'bn-r{len(existing) + 1}'
        image = container_image(PRIMARY)
        destroy([new])
        create([new], image=image)
        before = {r: psql(r, 'SELECT pg_postmaster_start_time()') for r in existing}
        primary_before = psql(PRIMARY, 'SELECT pg_postmaster_start_time()')
        res = self.ansible.play('addone', self.site, existing + [new], self.tree)
        after = {r: psql(r, 'SELECT pg_postmaster_start_time()') for r in existing}
        self.lab = existing + [new]
        res['executions'] = remote_executions(res['_data'])
        data = {'run': res, 'existing': existing, 'new': new, 'base': len(existing), 'image': image,
                'primary_restarted': psql(PRIMARY, 'SELECT pg_postmaster_start_time()') != primary_before,
                'changed_existing': {r: res['stats'].get(r, {}).get('changed') for r in existing},
                'changed_primary': res['stats'].get(PRIMARY, {}).get('changed'),
                'changed_new': res['stats'].get(new, {}).get('changed'),
                'restarted_existing': [r for r in existing if before[r] != after[r]]}
        self.record('addone', data)
        log(f'addone: {res["wall_s"]} s, changed on existing replicas {data["changed_existing"]}, restarted {data["restarted_existing"]}')

    # phase 4
    def direct_access(self) -> None:
        """Bench only: PostgreSQL on the primary also listens on the network (5432) for the replicas."""
        major = psql(PRIMARY, 'SHOW server_version_num')[:-4]
        conf = f'/etc/postgresql/{major}/main'
        if 'bench-direct' in dexec(PRIMARY, 'cat', f'{conf}/pg_hba.conf'):
            return
        dexec(PRIMARY, 'sh', '-c', f"echo \"listen_addresses = '*'\" > {conf}/conf.d/99-bench-direct.conf && "
              f"printf '\\nhostssl replication replication_user {subnet()} scram-sha-256  # bench-direct\\n' >> {conf}/pg_hba.conf && "
              f'systemctl restart postgresql@{major}-main')
        self.wait_streaming()

    def wait_streaming(self, port: Optional[int] = None, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        for r in self.lab:
            while True:
                row = psql(r, 'SELECT status, sender_port FROM pg_stat_wal_receiver')
                if row.startswith('streaming') and (port is None or row.endswith(f'|{port}')):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{r} does not stream (port {port}): {row!r}')
                time.sleep(0.5)

    def caught_up(self, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lag = psql(PRIMARY, 'SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) FROM pg_stat_replication')
            if float(lag) == 0:
                return
            time.sleep(1)
        raise RuntimeError('replicas did not catch up')

    def bench_db(self, scale: Optional[int] = None) -> dict[str, Any]:
        scale = self.args.scale if scale is None else scale
        exists = psql(PRIMARY, "SELECT count(*) FROM pg_database WHERE datname = 'bench'")
        info: dict[str, Any] = {'scale': scale}
        if exists == '0' or scale != self._scale_done:
            log(f'pgbench -i -s {scale} on the primary')
            dexec(PRIMARY, 'runuser', '-u', 'postgres', '--', 'dropdb', '--if-exists', 'bench')
            dexec(PRIMARY, 'runuser', '-u', 'postgres', '--', 'createdb', 'bench')
            t0 = time.monotonic()
            # With pgbench's vacuum step (v, as its default initialization has): otherwise autovacuum of
            # the new tables runs during the first timed clones (15 s against 8-11 s later, seen here).
            dexec(PRIMARY, 'runuser', '-u', 'postgres', '--', 'pgbench', '-i', '-q', '-I', 'dtGvp', '-s', str(scale), 'bench')
            info['pgbench_init_s'] = round(time.monotonic() - t0, 1)
            self._scale_done = scale
            self.caught_up()
            dexec(PRIMARY, 'runuser', '-u', 'postgres', '--', 'psql', '-Xq', '-c', 'CHECKPOINT')
        info['cluster_bytes'] = int(psql(PRIMARY, 'SELECT sum(pg_database_size(oid)) FROM pg_database'))
        info['bench_db_bytes'] = int(psql(PRIMARY, "SELECT pg_database_size('bench')"))
        return info

    def phase_clone(self) -> None:
        self.ensure_lab(replica_names(2))
        self.direct_access()
        db = self.bench_db()
        host = self.lab[0]
        major = psql(PRIMARY, 'SHOW server_version_num')[:-4]
        # passfile for the plain runs (the module writes its own temporary one)
        passfile = '/var/lib/postgresql/.bench_pgpass'
        lines = ''.join(f'{PRIMARY}:{port}:replication:replication_user:{self.password}\n' for port in (7432, 5432))
        dexec(host, 'runuser', '-u', 'postgres', '--', 'sh', '-c', f'umask 077 && cat > {passfile}', input_text=lines)
        scratch = '/var/lib/postgresql/bench-clone'
        runs: list[dict[str, Any]] = []
        cmd: Optional[list[str]] = None

        def clean() -> None:
            dexec(host, 'sh', '-c', f'rm -rf {scratch} /var/lib/postgresql/.bench-clone.* && sync')

        def module_run(i: int) -> dict[str, Any]:
            nonlocal cmd
            clean()
            res = self.ansible.play(f'clone-module-{i}', BENCH / 'clone.yml', self.lab, self.tree,
                                    extra=['-e', f'bench_clone_host={host} bench_clone_dir={scratch} bench_clone_port=7432'])
            task = [t for t in res['tasks'] if t['name'].startswith('Clone the primary')][0]
            result = next(p for p in res['_data']['plays'] for t in p['tasks'] if t['task']['name'] == task['name'])
            got = [t for t in result['tasks'] if t['task']['name'] == task['name']][0]['hosts'][host]
            cmd = got['cmd']
            return {'kind': 'module', 'route': 'proxy', 'seconds': task['seconds'], 'playbook_wall_s': res['wall_s'],
                    'basebackup_s': got.get('duration_s'),
                    'load_start': res['load_start'], 'load_end': res['load_end']}

        def plain_run(route: str) -> dict[str, Any]:
            assert cmd is not None
            clean()
            argv = list(cmd)
            argv[argv.index('-D') + 1] = scratch
            argv[argv.index('-p') + 1] = '7432' if route == 'proxy' else '5432'
            load0 = loadavg()
            t0 = time.monotonic()
            dexec(host, 'runuser', '-u', 'postgres', '--', 'env', f'PGPASSFILE={passfile}', *argv)
            return {'kind': 'plain', 'route': route, 'seconds': round(time.monotonic() - t0, 2), 'load_start': load0, 'load_end': loadavg()}

        # One module clone first, not timed: warms the page cache and gives the command line the
        # plain runs reuse, so no timed kind pays for a cold start.
        module_run(0)
        log('clone: warm-up clone done (not counted)')
        for i in range(self.args.clone_rounds):
            order = ('module', 'proxy', 'direct') if i % 2 == 0 else ('direct', 'proxy', 'module')
            if cmd is None and order[0] != 'module':
                order = ('module', 'proxy', 'direct')
            for kind in order:
                res = module_run(i + 1) if kind == 'module' else plain_run(kind)
                res['round'] = i + 1
                runs.append(res)
                log(f'clone: {res["kind"]} via {res["route"]}: {res["seconds"]} s')
        clean()
        dexec(host, 'rm', '-f', passfile)
        m = mean([r['seconds'] for r in runs if r['kind'] == 'module'])
        p = mean([r['seconds'] for r in runs if r['kind'] == 'plain' and r['route'] == 'proxy'])
        d = mean([r['seconds'] for r in runs if r['kind'] == 'plain' and r['route'] == 'direct'])
        mb = db['cluster_bytes'] / 1e6
        self.record('clone', {'db': db, 'runs': runs, 'cmd_shape': [a if not a.startswith('/var/lib') else '<dir>' for a in (cmd or [])],
                              'module_mean_s': m, 'plain_proxy_mean_s': p, 'plain_direct_mean_s': d,
                              'module_basebackup_mean_s': mean([r['basebackup_s'] for r in runs
                                                                if r['kind'] == 'module' and r.get('basebackup_s') is not None] or [0]),
                              'module_over_plain': round(m / p, 3), 'proxy_over_direct': round(p / d, 3),
                              'throughput_mb_s': {'module': round(mb / m, 1), 'plain_proxy': round(mb / p, 1), 'plain_direct': round(mb / d, 1)},
                              'major': major, 'target_host': host})

    # phase 5
    def set_route(self, route: str) -> None:
        port = 7432 if route == 'proxy' else 5432
        for r in self.lab:
            if route == 'proxy':
                psql(r, 'ALTER SYSTEM RESET primary_conninfo')
            else:
                current = psql(r, 'SHOW primary_conninfo')
                passfile = '/var/lib/postgresql/.bench-direct.pgpass'   # the role's passfile names port 7432 only
                dexec(r, 'runuser', '-u', 'postgres', '--', 'sh', '-c', f'umask 077 && cat > {passfile}',
                      input_text=f'{PRIMARY}:{port}:replication:replication_user:{self.password}\n')
                direct = re.sub(r"port='?\d+'?", f'port={port}', current)
                direct = re.sub(r"passfile='?[^' ]+'?", f'passfile={passfile}', direct)
                psql(r, "ALTER SYSTEM SET primary_conninfo = '%s'" % direct.replace("'", "''"))
            psql(r, 'SELECT pg_reload_conf()')
        self.wait_streaming(port)

    def phase_lag(self) -> None:
        self.ensure_lab(replica_names(2))
        self.direct_access()
        if psql(PRIMARY, "SELECT count(*) FROM pg_database WHERE datname = 'bench'") == '0':
            self.bench_db()
        runs = []
        routes = [route for i in range(self.args.lag_rounds) for route in (('proxy', 'direct') if i % 2 == 0 else ('direct', 'proxy'))]
        for route in routes:
            self.set_route(route)
            self.caught_up()
            runs.append(self.lag_run(route))
        self.set_route('proxy')
        self.record('lag', {'runs': runs, 'rate': self.args.rate, 'seconds': self.args.lag_seconds, 'replicas': self.lab,
                            'summary': {route: lag_summary([s for r in runs if r['route'] == route for s in r['samples']])
                                        for route in ('proxy', 'direct')}})

    def lag_run(self, route: str) -> dict[str, Any]:
        n = self.args.lag_seconds
        sql = ("SELECT extract(epoch FROM clock_timestamp()), application_name, "
               "coalesce(extract(epoch FROM replay_lag), 0), pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) "
               "FROM pg_stat_replication WHERE application_name LIKE 'bn-%'")
        loop = f'for i in $(seq {n + 2}); do psql -XAtq -F, -c "{sql}"; sleep 1; done'
        log(f'lag: pgbench -R {self.args.rate} for {n} s via {route}')
        load0 = loadavg()
        sampler = subprocess.Popen(['docker', 'exec', PRIMARY,  # pylint: disable=consider-using-with
                                    'runuser', '-u', 'postgres', '--', 'bash', '-c', loop],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        bench = self.pgbench(n)
        out, dummy = sampler.communicate()
        samples = []
        t_first = None
        for line in out.splitlines():
            ts, app, lag_s, lag_b = line.split(',')
            t_first = t_first if t_first is not None else float(ts)
            samples.append({'t': round(float(ts) - t_first, 2), 'replica': app, 'lag_s': float(lag_s), 'lag_bytes': int(float(lag_b or 0))})
        res = {'route': route, 'samples': samples, 'tps': bench['tps'], 'latency_ms': bench['latency_ms'], 'load_start': load0, 'load_end': loadavg()}
        res['summary'] = lag_summary(samples)
        log(f'lag via {route}: {res["summary"]}, tps {res["tps"]}')
        return res

    def pgbench(self, seconds: int) -> dict[str, Any]:
        """pgbench at --rate on the primary's database bench (4 clients, 2 threads): tps and mean latency."""
        bench = run(['docker', 'exec', PRIMARY, 'runuser', '-u', 'postgres', '--', 'pgbench', '-R', str(self.args.rate),
                     '-T', str(seconds), '-c', '4', '-j', '2', '-P', '10', 'bench'])
        tps = re.search(r'tps = ([\d.]+)', bench.stdout)
        latency = re.search(r'latency average = ([\d.]+) ms', bench.stdout)
        return {'tps': float(tps.group(1)) if tps else None, 'latency_ms': float(latency.group(1)) if latency else None}

    # phase 3a + 6
    def scale_runs(self, label: str, sizes: list[int], image: Optional[str] = None) -> list[dict[str, Any]]:
        runs = []
        for n in sizes:
            res = self.deploy_playbook(f'{label}-{n}', replica_names(n), memory=True, image=image)
            res['replicas'] = n
            res['executions'] = remote_executions(res['_data'])
            res['executions_total'] = sum(res['executions'].values())
            log(f'{label}-{n}: {res["executions_total"]} remote executions, controller CPU {res["controller_cpu"]["total_s"]} s, '
                f'peak memory {res["memory"]["tree_peak_rss_mb"]} MB (RSS sum), forks {res["forks"]}')
            runs.append(res)
        return runs

    def phase_scale(self) -> None:
        runs = self.scale_runs('scale', self.args.scale_replicas)
        by_n = {r['replicas']: r['wall_s'] for r in runs}
        data: dict[str, Any] = {'runs': runs, 'wall_s': by_n, 'image': self.image}
        if 1 in by_n and max(by_n) > 1:
            data['ratio_max_over_1'] = round(by_n[max(by_n)] / by_n[1], 3)
        self.record('scale', data)

    # issue 17 item 3: the automation's own cost per added replica, PostgreSQL already installed (apt's CPU out of the way)
    def phase_scale_pre(self) -> None:
        image = self.preinstalled()
        runs = self.scale_runs('scale-pre', self.args.scale_pre_replicas, image=image)
        data: dict[str, Any] = {'runs': runs, 'image': image, 'wall_s': {r['replicas']: r['wall_s'] for r in runs},
                                'forks': {r['replicas']: r['forks'] for r in runs}, 'marginal': marginal_costs(runs)}
        self.record('scale-pre', data)
        log(f'scale-pre: {data["marginal"]}')

    # issue 17 item 4: how many replicas one primary feeds
    def wait_replayed(self, replicas: list[str], timeout: float = 900) -> None:
        """Until every replica has replayed the primary's current LSN of now (cascading ones included)."""
        target = float(psql(PRIMARY, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
        deadline = time.monotonic() + timeout
        for r in replicas:
            while float(psql(r, "SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)")) < target:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{r} did not replay up to the primary within {timeout:.0f} s')
                time.sleep(1)

    def senders(self, node: str) -> set[str]:
        return set(psql(node, "SELECT string_agg(application_name, ' ') FROM pg_stat_replication WHERE state = 'streaming'").split())

    def wait_topology(self, upstreams: dict[str, str], timeout: float = 300) -> float:
        """Until the primary streams to exactly the replicas without an upstream and each upstream to its own."""
        want = {PRIMARY: set(self.lab) - set(upstreams)}
        for r, up in upstreams.items():
            want.setdefault(up, set()).add(r)
        seen: dict[str, set[str]] = {}

        def probe() -> bool:
            seen.update({node: self.senders(node) for node in want})
            return all(seen[node] == names for node, names in want.items())
        ok, waited = wait_for(probe, timeout)
        if not ok:
            raise RuntimeError(f'fanout: not streaming as configured after {timeout:.0f} s: want {want}, see {seen}')
        return waited

    def fanout_measure(self, label: str, upstreams: dict[str, str]) -> dict[str, Any]:
        """pgbench at --rate for --lag-seconds on the primary. Meanwhile one psql session per node samples: the primary its
        current LSN every 0.2 s, each replica its replayed LSN every second, each sending node its pg_stat_replication every
        second; the walsenders' CPU on each sending node is read before and after. See lsn_lag_samples()."""
        n = self.args.lag_seconds
        sending = [PRIMARY] + sorted(set(upstreams.values()))
        lead = 3.0 + 0.2 * len(self.lab)                 # for the samplers' docker exec and psql to start
        start = time.time() + lead
        until = start + n + 8                            # past the end of pgbench -T n, which starts a little after `start`
        jobs = [(PRIMARY, 'lsn', LSN_SQL, 0.2)] + [(r, 'lsn', LSN_SQL, 1.0) for r in self.lab] + [(node, 'senders', SENDERS_SQL, 1.0) for node in sending]
        outs: dict[tuple[str, str], tuple[int, str, str]] = {}

        def sample(node: str, kind: str, sql: str, interval: float) -> None:
            proc = subprocess.run(['docker', 'exec', '-i', node, 'runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-F,', '-v', 'ON_ERROR_STOP=1'],
                                  input=sampler_script(sql, interval, until, until - time.time() + 5), capture_output=True, text=True, check=False)
            outs[(node, kind)] = (proc.returncode, proc.stdout, proc.stderr)

        threads = [threading.Thread(target=sample, args=job, daemon=True) for job in jobs]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, start - time.time()))
        load0 = loadavg()
        cpu0 = {node: walsender_ticks(dexec(node, 'sh', '-c', WALSENDER_PROBE)) for node in sending}
        t0 = time.time()
        log(f'fanout {label}: pgbench -R {self.args.rate} for {n} s, {len(self.lab)} replicas sampled')
        bench = self.pgbench(n)
        t1 = time.time()
        cpu1 = {node: walsender_ticks(dexec(node, 'sh', '-c', WALSENDER_PROBE)) for node in sending}
        load1 = loadavg()
        for thread in threads:
            thread.join(max(5.0, until - time.time() + 120))
        failed = {f'{node} {kind}': (rc, err[-300:]) for (node, kind), (rc, dummy, err) in outs.items() if rc != 0}
        if failed or len(outs) != len(jobs):
            raise RuntimeError(f'fanout {label}: samplers failed or did not end: {failed}; {len(outs)} of {len(jobs)} ended')
        primary = parse_lsn_samples(outs[(PRIMARY, 'lsn')][1])
        replicas = {r: parse_lsn_samples(outs[(r, 'lsn')][1]) for r in self.lab}
        samples = lsn_lag_samples(primary, replicas, t0, t1)
        sent = [dict(x, t=round(x['epoch'] - t0, 2)) for node in sending for x in parse_sender_samples(outs[(node, 'senders')][1])
                if t0 <= x['epoch'] <= t1 and x['replica'] in self.lab and upstreams.get(x['replica'], PRIMARY) == node]
        for x in sent:
            del x['epoch']
        firsts = [series[0][0] - t0 for series in [primary, *replicas.values()] if series]
        if firsts and max(firsts) > 0:
            log(f'fanout {label}: a sampler began {max(firsts):.1f} s after pgbench started (its first seconds are not sampled)')
        res = {'label': label, 'replicas': len(self.lab), 'rate': self.args.rate, 'seconds': n, 'window_s': round(t1 - t0, 2),
               'tps': bench['tps'], 'latency_ms': bench['latency_ms'], 'load_start': load0, 'load_end': load1,
               'summary': lag_summary(samples),                # the samples themselves are not kept (thousands with 20 replicas)
               'replay_lag_summary': lag_summary(sent),       # PostgreSQL's replay_lag, on the node each replica streams from
               'per_replica': {r: lag_summary([x for x in samples if x['replica'] == r]) for r in self.lab},
               'last_sampler_start_s': round(max(firsts), 2) if firsts else None,
               'walsenders': {node: walsender_cpu(cpu0[node][1], cpu1[node][1], cpu1[node][0], t1 - t0) for node in sending}}
        log(f'fanout {label}: lag {res["summary"]}, walsender CPU {res["walsenders"]}, tps {res["tps"]}')
        return res

    def phase_fanout(self) -> None:
        image = self.preinstalled()
        sizes = sorted(set(self.args.fanout_sizes))
        points: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        data: dict[str, Any] = {'points': points, 'runs': runs, 'rate': self.args.rate, 'seconds': self.args.lag_seconds,
                                'scale': self.args.fanout_scale, 'sizes': sizes, 'image': image,
                                'sample_interval_s': {'primary': 0.2, 'replicas': 1.0, 'pg_stat_replication': 1.0}}
        for n in sizes:
            res = self.deploy_playbook(f'fanout-{n}', replica_names(n), image=image)
            res['replicas'] = n
            res['executions'] = remote_executions(res['_data'])
            runs.append(res)
            db = self.bench_db(scale=self.args.fanout_scale)
            self.wait_replayed(self.lab)
            point = self.fanout_measure(f'{n} replicas', {})
            point.update({'layout': 'direct', 'deploy_wall_s': res['wall_s'], 'db': db})
            points.append(point)
            self.record('fanout', data)
        big = sizes[-1]
        if big < 3:
            log('fanout: the cascading variant needs 3 replicas or more (two upstreams and one below them): skipped')
        else:
            upstreams = cascade_upstreams(self.lab)
            hostvars = {r: {'catmaid_replication_upstream': up} for r, up in upstreams.items()}
            log(f'fanout: {len(upstreams)} replica(s) re-pointed to stream from {", ".join(sorted(set(upstreams.values())))} (site.yml)')
            res = self.ansible.play('fanout-cascade', self.site, self.lab, self.tree, hostvars=hostvars)
            res['replicas'] = big
            res['changed'] = changed_per_host(res['stats'])
            res['executions'] = remote_executions(res['_data'])
            runs.append(res)
            waited = self.wait_topology(upstreams)
            self.wait_replayed(self.lab)
            point = self.fanout_measure(f'{big} replicas, cascading', upstreams)
            point.update({'layout': 'cascade', 'upstreams': sorted(set(upstreams.values())), 'cascading': len(upstreams),
                          'repoint_wall_s': res['wall_s'], 'repoint_changed_total': res['changed_total'], 'topology_waited_s': waited})
            points.append(point)
            self.record('fanout', data)
            later = self.args.phases[self.args.phases.index('fanout') + 1:]
            if later or self.args.keep:     # the lab as the other phases expect it: every replica streaming from the primary
                back = self.ansible.play('fanout-direct-again', self.site, self.lab, self.tree)
                back['replicas'] = big
                back['changed'] = changed_per_host(back['stats'])
                runs.append(back)
                self.wait_topology({})
                log(f'fanout: every replica streams from the primary again ({back["wall_s"]} s, changed {back["changed_total"]})')
        self.record('fanout', data)

    def run(self) -> None:
        log(f'machine: {self.results["machine"]}')
        try:
            for phase in self.args.phases:
                start, load0 = now(), loadavg()
                getattr(self, f'phase_{phase.replace("-", "_")}')()
                self.results['phases'][phase].update({'started': start, 'load_start': load0, 'load_end': loadavg(), 'commit': self.sha})
                self.save()
        finally:
            self.results['finished'] = now()
            self.save()
            if not self.args.keep:
                destroy()
                remove_network()
        sys.path.insert(0, str(BENCH))
        import report  # pylint: disable=import-outside-toplevel
        report.write(Path(self.args.out))


def strip_private(obj: Any) -> None:
    if isinstance(obj, dict):
        obj.pop('_data', None)
        for v in obj.values():
            strip_private(v)
    elif isinstance(obj, list):
        for v in obj:
            strip_private(v)


def mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 2) if values else float('nan')


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float('nan')
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def lag_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    if not samples:
        return {'samples': 0}
    secs = [s['lag_s'] for s in samples]
    byts = [s['lag_bytes'] for s in samples]
    return {'samples': len(samples), 'p50_s': round(percentile(secs, 0.5), 4), 'p99_s': round(percentile(secs, 0.99), 4),
            'max_s': round(max(secs), 4) if secs else None, 'p50_bytes': round(percentile(byts, 0.5)),
            'p99_bytes': round(percentile(byts, 0.99)), 'max_bytes': max(byts) if byts else None}


def marginal_costs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The automation's cost per added replica between the smallest and the largest deployment (issue 17 item 3):
    remote executions, controller CPU seconds and wall seconds per replica, the wall ratio largest / smallest, and the
    same per step between consecutive sizes. Each run: replicas, wall_s, executions_total, controller_cpu.total_s."""
    by_n = {r['replicas']: r for r in runs}
    if len(by_n) < 2:
        return {}
    sizes = sorted(by_n)

    def cost(small: int, big: int) -> dict[str, Any]:
        a, b = by_n[small], by_n[big]
        cpu_a, cpu_b = (a.get('controller_cpu') or {}).get('total_s'), (b.get('controller_cpu') or {}).get('total_s')
        return {'from': small, 'to': big,
                'executions_per_replica': round((b['executions_total'] - a['executions_total']) / (big - small), 1),
                'cpu_s_per_replica': round((cpu_b - cpu_a) / (big - small), 2) if cpu_a is not None and cpu_b is not None else None,
                'wall_s_per_replica': round((b['wall_s'] - a['wall_s']) / (big - small), 2)}

    out = cost(sizes[0], sizes[-1])
    out.update({'n_min': sizes[0], 'n_max': sizes[-1], 'wall_ratio': round(by_n[sizes[-1]]['wall_s'] / by_n[sizes[0]]['wall_s'], 3),
                'steps': [cost(a, b) for a, b in zip(sizes, sizes[1:])]})
    return out


def cascade_upstreams(replicas: list[str], upstreams: int = 2) -> dict[str, str]:
    """catmaid_replication_upstream per cascading replica: every replica after the first `upstreams` streams from one of
    them, in turn (half each with two)."""
    heads = replicas[:upstreams]
    return {r: heads[i % len(heads)] for i, r in enumerate(replicas[upstreams:])} if heads else {}


# One line per walsender of the node: its pid and /proc/<pid>/stat, after the clock ticks per second (run with sh -c).
WALSENDER_PROBE = ('getconf CLK_TCK; for d in /proc/[0-9]*; do c=$(tr "\\0" " " < "$d/cmdline" 2>/dev/null) || continue; '
                   'case "$c" in "postgres: "*walsender*) s=$(cat "$d/stat" 2>/dev/null) && echo "${d#/proc/} $s";; esac; done')


def walsender_ticks(raw: str) -> tuple[int, dict[int, int]]:
    """WALSENDER_PROBE's output: (clock ticks per second, {pid: utime + stime in ticks})."""
    lines = [line for line in raw.splitlines() if line.strip()]
    ticks = {}
    for line in lines[1:]:
        pid, stat = line.split(' ', 1)
        fields = stat.rsplit(')', 1)[1].split()        # after the command name: state, ppid, ... utime (14th), stime (15th)
        ticks[int(pid)] = int(fields[11]) + int(fields[12])
    return int(lines[0]), ticks


def walsender_cpu(before: dict[int, int], after: dict[int, int], clk_tck: int, seconds: float) -> dict[str, Any]:
    """CPU of a node's walsenders between two readings: each one still there at the end counts its ticks since the first
    reading (all of them when it started in between); seconds and percent of one core over `seconds`."""
    ticks = sum(value - before.get(pid, 0) for pid, value in after.items())
    cpu_s = ticks / clk_tck
    return {'cpu_s': round(cpu_s, 2), 'percent_of_one_core': round(100 * cpu_s / seconds, 1) if seconds > 0 else None,
            'walsenders': len(after)}


# The fan-out sampler: one psql session per node that samples until an absolute time (epoch), then quits.
LSN_SQL = ("SELECT extract(epoch FROM clock_timestamp()), pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() "
           "THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, '0/0')")
SENDERS_SQL = ("SELECT extract(epoch FROM clock_timestamp()), application_name, coalesce(extract(epoch FROM replay_lag), 0), "
               "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, replay_lsn) "
               "FROM pg_stat_replication WHERE application_name LIKE 'bn-%'")


def sampler_script(sql: str, interval: float, until: float, seconds: float) -> str:
    """A psql script (psql -XAtq -F,) running `sql` every `interval` seconds until the epoch `until`, for at most about
    `seconds` (the loop is unrolled: psql has no loop; it quits at the first check past `until`)."""
    step = ('SELECT extract(epoch FROM clock_timestamp()) > %.3f AS bench_done \\gset\n\\if :bench_done\n\\q\n\\endif\n'
            '%s;\nSELECT pg_sleep(%s) \\g /dev/null\n') % (until, sql, interval)
    return step * (int(seconds / interval) + 5)


def parse_lsn_samples(text: str) -> list[tuple[float, float]]:
    """LSN_SQL's rows: (epoch, LSN in bytes), in order."""
    out = []
    for line in text.splitlines():
        parts = line.split(',')
        if len(parts) == 2 and parts[1]:
            out.append((float(parts[0]), float(parts[1])))
    return sorted(out)


def parse_sender_samples(text: str) -> list[dict[str, Any]]:
    """SENDERS_SQL's rows: epoch, replica, replay_lag seconds (PostgreSQL's), bytes behind the sending node."""
    out = []
    for line in text.splitlines():
        parts = line.split(',')
        if len(parts) == 4:
            out.append({'epoch': float(parts[0]), 'replica': parts[1], 'lag_s': float(parts[2] or 0), 'lag_bytes': int(float(parts[3] or 0))})
    return out


def lsn_lag_samples(primary: list[tuple[float, float]], replicas: dict[str, list[tuple[float, float]]],
                    t0: float, t1: float) -> list[dict[str, Any]]:
    """Every replica sample (epoch, replayed LSN) within [t0, t1] against the primary's samples (epoch, current LSN):
    lag_bytes, how far the replica's replay is behind the primary's LSN at the same moment (the primary's samples
    interpolated linearly), and lag_s, how long ago the primary was at the replayed LSN (0 when nothing is behind; when
    the primary was past it at its first sample already, the time since that sample: a lower bound). t is seconds since t0."""
    primary = sorted(primary)
    if not primary:
        return []
    times = [p[0] for p in primary]
    lsns: list[float] = []
    for p in primary:                                   # the current LSN never goes back
        lsns.append(max(p[1], lsns[-1]) if lsns else p[1])

    def lsn_at(t: float) -> float:
        i = bisect.bisect_right(times, t)
        if i == 0:
            return lsns[0]
        if i == len(times):
            return lsns[-1]
        ta, tb, la, lb = times[i - 1], times[i], lsns[i - 1], lsns[i]
        return la + (lb - la) * (t - ta) / (tb - ta) if tb > ta else lb

    out = []
    for name in sorted(replicas):
        for t, replayed in sorted(replicas[name]):
            if t < t0 or t > t1 or t < times[0] or t > times[-1]:
                continue
            behind = max(0.0, lsn_at(t) - replayed)
            if behind <= 0:
                lag = 0.0
            else:
                j = bisect.bisect_left(lsns, replayed)   # the first sample at or past the replayed LSN
                if j == 0:
                    reached = times[0]
                else:
                    ta, tb, la, lb = times[j - 1], times[j], lsns[j - 1], lsns[j]
                    reached = ta + (tb - ta) * (replayed - la) / (lb - la)
                lag = max(0.0, t - reached)
            out.append({'t': round(t - t0, 2), 'replica': name, 'lag_s': round(lag, 4), 'lag_bytes': int(round(behind))})
    return out


def profile(runs: list[dict[str, Any]], top: int = 25) -> list[dict[str, Any]]:
    """Mean seconds per task name over runs, with how often it ran, largest first."""
    per: dict[tuple[str, str], list[float]] = {}
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs:
        sums: dict[tuple[str, str], float] = {}
        for t in r['tasks']:
            key = (t['play'], t['name'])
            sums[key] = sums.get(key, 0.0) + t['seconds']
            m = meta.setdefault(key, {'occurrences': 0, 'action': t['action'], 'changed': 0})
            m['occurrences'] += 1
            m['changed'] += t['changed']
        for key, s in sums.items():
            per.setdefault(key, []).append(s)
    rows = [{'play': k[0], 'task': k[1], 'seconds': mean(v), 'action': meta[k]['action'],
             'occurrences_per_run': round(meta[k]['occurrences'] / len(runs), 1), 'changed_per_run': round(meta[k]['changed'] / len(runs), 1)}
            for k, v in per.items()]
    rows.sort(key=lambda x: -x['seconds'])
    total_tasks = sum(len(r['tasks']) for r in runs) / max(1, len(runs))
    return [{'tasks_per_run': total_tasks, 'task_seconds_per_run': mean([sum(t['seconds'] for t in r['tasks']) for r in runs])}] + rows[:top]


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')


def machine() -> dict[str, Any]:
    mem_kb = int(re.search(r'MemTotal:\s+(\d+)', Path('/proc/meminfo').read_text(encoding='utf-8')).group(1))
    debian = Path('/etc/debian_version').read_text(encoding='utf-8').strip() if Path('/etc/debian_version').exists() else '?'
    cpu = re.search(r'model name\s*:\s*(.*)', Path('/proc/cpuinfo').read_text(encoding='utf-8'))
    return {'nproc': os.cpu_count(), 'ram_gb': round(mem_kb / 1024 / 1024, 1), 'kernel': platform.release(),
            'debian': debian, 'cpu': cpu.group(1) if cpu else '?', 'image': IMAGE,
            'docker': run(['docker', 'version', '-f', '{{.Server.Version}}'], check=False).stdout.strip()}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='catmaid.replication benchmarks (issue 8)')
    parser.add_argument('--phases', default=','.join(DEFAULT_PHASES),
                        help=f'comma-separated subset of {",".join(PHASES)}, run in the order given (default: {",".join(DEFAULT_PHASES)}; '
                        'drift: one drift per managed item injected on the deployed lab, then one run of site.yml must fix each; '
                        'scale-pre and fanout (issue 17 items 3 and 4) only when named)')
    parser.add_argument('--rounds', type=int, default=2, help='rounds of playbook vs by-hand deployment (alternating)')
    parser.add_argument('--conn-rounds', type=int, default=1, help='rounds of the per-task connection cost runs')
    parser.add_argument('--scale', type=int, default=70, help='pgbench scale of the clone database (70: about 1 GB)')
    parser.add_argument('--clone-rounds', type=int, default=2, help='rounds of module / plain proxy / plain direct clones')
    parser.add_argument('--rate', type=int, default=200, help='pgbench transactions per second during the lag test')
    parser.add_argument('--lag-seconds', type=int, default=60, help='duration of each lag run')
    parser.add_argument('--lag-rounds', type=int, default=1, help='proxy + direct lag runs per round')
    parser.add_argument('--scale-replicas', default='1,2,4', help='replica counts of the scale-out runs')
    parser.add_argument('--preinstalled', action='store_true',
                        help=f'every bn-* container from {PREINSTALLED} (the roles\' packages installed; built when missing): '
                        'deployments without apt (phases scale-pre and fanout always use it; not with phase deploy)')
    parser.add_argument('--scale-pre-replicas', default='1,4,8', help='replica counts of phase scale-pre (PostgreSQL preinstalled)')
    parser.add_argument('--fanout-sizes', default='1,5,10,20', help='replica counts of phase fanout; the largest also cascading')
    parser.add_argument('--fanout-scale', type=int, default=5, help='pgbench scale of the fanout database (5: about 80 MB)')
    parser.add_argument('--addone-base', type=int, default=2,
                        help='phase addone: replicas of the running lab one is added to (deployed with that many when none runs)')
    parser.add_argument('--ref', default='HEAD', help="git ref of the collection to measure (exported to build/bench/trees), "
                        "or 'worktree' for the checkout as it is")
    parser.add_argument('--baseline-ref', default='', help='also deploy this ref in the deploy phase, alternately (before/after)')
    parser.add_argument('--baseline-extra', default='', help='ansible-playbook arguments of the baseline deployments, e.g. '
                        '"-e catmaid_replication_pipelining=false" (the same commit when --baseline-ref is not given)')
    parser.add_argument('--out', default=str(BENCH / 'results'), help='directory of results.json, README.md and plots')
    parser.add_argument('--merge', action='store_true', help='add to the phases already in <out>/results.json (same lab, kept with --keep)')
    parser.add_argument('--keep', action='store_true', help='keep the bn-* containers at the end')
    parser.add_argument('--quick', action='store_true', help='small sizes to try the scripts: 1 round, scale 5, 15 s lag, 1,2 replicas')
    parser.add_argument('--report-only', action='store_true', help='only rewrite README.md and plots from results.json')
    args = parser.parse_args(argv)
    if args.report_only:
        sys.path.insert(0, str(BENCH))
        import report  # pylint: disable=import-outside-toplevel
        report.write(Path(args.out))
        return 0
    if args.quick:
        args.rounds, args.scale, args.clone_rounds, args.lag_seconds, args.scale_replicas = 1, 5, 1, 15, '1,2'
        args.scale_pre_replicas, args.fanout_sizes, args.fanout_scale = '1,2', '1,3', 1
    args.phases = [p.strip() for p in args.phases.split(',') if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f'unknown phase(s): {", ".join(sorted(unknown))}')
    args.scale_replicas = [int(x) for x in str(args.scale_replicas).split(',')]
    args.scale_pre_replicas = [int(x) for x in str(args.scale_pre_replicas).split(',')]
    args.fanout_sizes = [int(x) for x in str(args.fanout_sizes).split(',')]
    if min(args.scale_replicas + args.scale_pre_replicas + args.fanout_sizes + [args.addone_base]) < 1:
        parser.error('replica counts must be 1 or more')
    if args.preinstalled and 'deploy' in args.phases:
        parser.error('--preinstalled: phase deploy compares package installations too; run it without --preinstalled')
    if run(['docker', 'image', 'inspect', IMAGE], check=False).returncode != 0:
        parser.error(f'image {IMAGE} missing: run `make images` (scripts/build-images.sh {RELEASE})')
    Bench(args).run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
