# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter catmaid.replication.pg_host_probe: what PostgreSQL a host has and would get.

The roles read a host's PostgreSQL state with one command (the probe script of catmaid.replication.catmaid_replication,
``__cr_probe_script``) instead of one task per question. Its output has one entry per line,
each starting with its kind:

    cluster <pg_lsclusters --no-header line>
    binary /usr/lib/postgresql/<major>/bin/postgres
    packages <dpkg-query --showformat='${Package} ${db:Status-Abbrev}|' output>
    candidate <the Depends line of apt's postgresql package>
    startconf <major> <name> <auto|manual|disabled>      (per cluster: its start.conf)
    fenced <major> <name>                                (catmaid.replication.promote fenced it)
    control <major> <name> sysid|timeline|state <value>  (per cluster: pg_controldata)
    control <major> <name> histtimeline <hex>            (per cluster: the newest pg_wal/*.history)

This filter turns it into the facts the roles decide on.
"""

from __future__ import annotations

import re

from ansible_collections.catmaid.replication.plugins.filter.missing_packages import missing_packages

_BINARY = re.compile(r'^/usr/lib/postgresql/([0-9]+)/bin/postgres$')
_CANDIDATE = re.compile(r'\bpostgresql-([0-9]+)\b')


def _cluster(line):
    fields = line.split()
    if len(fields) < 6 or not fields[0].isdigit() or not fields[2].isdigit():
        return None
    return {'major': int(fields[0]), 'name': fields[1], 'port': int(fields[2]), 'status': fields[3],
            'owner': fields[4], 'data_dir': fields[5], 'log': fields[6] if len(fields) > 6 else '',
            'running': fields[3].startswith('online'), 'recovery': 'recovery' in fields[3]}


def pg_host_probe(output, cluster_name='main', version='', packages=None):
    """Parse the probe's output; choose the major and the cluster the roles manage.

    The major is, in this order: ``version`` when given; the highest major of an existing
    cluster named ``cluster_name``; the highest installed server major; the major apt's
    ``postgresql`` package would install. ``why`` names which rule chose it (``version``,
    ``cluster``, ``installed``, ``candidate``; empty when none could).
    """
    clusters, majors, candidate, dpkg = [], set(), None, None
    extra: dict[tuple[str, str], dict] = {}
    for raw in str(output or '').splitlines():
        kind, _sep, rest = raw.strip().partition(' ')
        if kind in ('startconf', 'fenced', 'control'):
            parts = rest.split(None, 3 if kind == 'control' else 2)
            if len(parts) < 2:
                continue
            about = extra.setdefault((parts[0], parts[1]), {})
            if kind == 'startconf':
                about['start_conf'] = parts[2].strip() if len(parts) > 2 else ''
            elif kind == 'fenced':
                about['fenced'] = True
            elif len(parts) == 4 and parts[2] in ('sysid', 'timeline', 'state'):
                value = parts[3].strip()
                about[parts[2]] = int(value) if parts[2] == 'timeline' and value.isdigit() else value
            elif len(parts) == 4 and parts[2] == 'histtimeline':
                try:
                    about['histtimeline'] = int(parts[3].strip(), 16)
                except ValueError:
                    pass
            continue
        if kind == 'cluster':
            found = _cluster(rest)
            if found:
                clusters.append(found)
        elif kind == 'binary':
            match = _BINARY.match(rest.strip())
            if match:
                majors.add(int(match.group(1)))
        elif kind == 'packages':
            dpkg = (dpkg or '') + rest
        elif kind == 'candidate' and candidate is None:
            match = _CANDIDATE.search(rest)
            if match:
                candidate = int(match.group(1))
    for found in clusters:
        about = extra.get((str(found['major']), found['name']), {})
        found.update({'start_conf': about.get('start_conf', ''), 'fenced': bool(about.get('fenced')),
                      'sysid': about.get('sysid', ''), 'state': about.get('state', ''),
                      # the current timeline: the newest history file's, else the last checkpoint's
                      'timeline': max(about.get('timeline', 0) or 0, about.get('histtimeline', 0) or 0)})
    named = [c for c in clusters if c['name'] == cluster_name]
    version = str(version if version is not None else '').strip()
    if version:
        major, why = version, 'version'
    elif named:
        major, why = str(max(c['major'] for c in named)), 'cluster'
    elif majors:
        major, why = str(max(majors)), 'installed'
    elif candidate is not None:
        major, why = str(candidate), 'candidate'
    else:
        major, why = '', ''
    chosen = [c for c in named if str(c['major']) == major]
    return {
        'clusters': clusters,
        'majors': sorted(majors),
        'missing': missing_packages(dpkg, list(packages or [])),
        'candidate': '' if candidate is None else str(candidate),
        'major': major,
        'why': why,
        'cluster': chosen[0] if chosen else {},
        'standbys': [str(c['major']) for c in named if c['recovery']],
    }


class FilterModule:
    """catmaid.replication filters."""

    def filters(self):
        return {'pg_host_probe': pg_host_probe}
