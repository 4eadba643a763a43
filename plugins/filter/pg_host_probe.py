# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter catmaid.replication.pg_host_probe: what PostgreSQL a host has and would get.

The roles read a host's PostgreSQL state with one command (the probe script of catmaid.replication.catmaid_replication,
``__cr_probe_script``) instead of one task per question. Its output has one entry per line,
each starting with its kind:

    clusters <pg_lsclusters --json output without each cluster's "config">
    binary /usr/lib/postgresql/<major>/bin/postgres
    packages <dpkg-query --showformat='${Package} ${db:Status-Abbrev}|' output>
    candidate <the Depends line of apt's postgresql package>
    startconf <major> <name> <auto|manual|disabled>      (per cluster: its start.conf)
    fenced <major> <name>                                (catmaid.replication.promote fenced it)
    managed <major> <name>                               (its conf.d holds the collection's settings file)
    control <major> <name> sysid|timeline|state <value>  (per cluster: pg_controldata)
    control <major> <name> histtimeline <hex>            (per cluster: the newest pg_wal/*.history)

This filter turns it into the facts the roles decide on.
"""

from __future__ import annotations

import json
import re

from ansible_collections.catmaid.replication.plugins.filter.missing_packages import missing_packages

_BINARY = re.compile(r'^/usr/lib/postgresql/([0-9]+)/bin/postgres$')
_CANDIDATE = re.compile(r'\bpostgresql-([0-9]+)\b')


def _flag(value):
    return str(value if value is not None else '').strip() not in ('', '0')


def _clusters(text):
    """The clusters of a ``pg_lsclusters --json`` array, each field as postgresql-common read it."""
    try:
        entries = json.loads(text)
    except ValueError:
        return []
    found = []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict):
            continue
        major, port = str(e.get('version', '')), str(e.get('port', ''))
        if not major.isdigit() or not port.isdigit():
            continue
        running, recovery = _flag(e.get('running')), _flag(e.get('recovery'))
        # the status column of pg_lsclusters' table
        status = ','.join(['online' if running else 'down'] + (['recovery'] if recovery else [])
                          + ([str(e['supervisor'])] if e.get('supervisor') else [])
                          + (['binaries_missing'] if _flag(e.get('binaries_missing')) else []))
        found.append({'major': int(major), 'name': str(e.get('cluster', '')), 'port': int(port), 'status': status,
                      'owner': str(e.get('owner', '')), 'data_dir': str(e.get('pgdata') or ''),
                      'log': str(e.get('logfile') or ''), 'running': running, 'recovery': recovery})
    return found


def pg_host_probe(output, cluster_name='main', version='', packages=None):
    """Parse the probe's output; choose the major and the cluster the roles manage.

    The major is, in this order: ``version`` when given; the major of the one cluster named
    ``cluster_name`` whose conf.d holds the collection's settings file (the cluster it manages);
    the major of the only cluster named ``cluster_name``; the highest installed server major; the
    major apt's ``postgresql`` package would install. ``why`` names which rule chose it
    (``version``, ``managed``, ``cluster``, ``installed``, ``candidate``; empty when none could).
    Several clusters of that name, none or more than one of them managed, and no ``version``:
    nothing is chosen (``major`` empty, ``why`` ``ambiguous``) and ``ambiguous`` lists them, so
    that the caller refuses instead of guessing (a newer major's empty ``main`` next to the one
    in use is what a package upgrade leaves). So is a managed cluster that is down while another
    of that name runs (what ``pg_upgradecluster`` leaves: it does not copy conf.d).
    """
    clusters, majors, candidate, dpkg = [], set(), None, None
    extra: dict[tuple[str, str], dict] = {}
    for raw in str(output or '').splitlines():
        kind, _sep, rest = raw.strip().partition(' ')
        if kind in ('startconf', 'fenced', 'managed', 'control'):
            parts = rest.split(None, 3 if kind == 'control' else 2)
            if len(parts) < 2:
                continue
            about = extra.setdefault((parts[0], parts[1]), {})
            if kind == 'startconf':
                about['start_conf'] = parts[2].strip() if len(parts) > 2 else ''
            elif kind == 'fenced':
                about['fenced'] = True
            elif kind == 'managed':
                about['managed'] = True
            elif len(parts) == 4 and parts[2] in ('sysid', 'timeline', 'state'):
                value = parts[3].strip()
                about[parts[2]] = int(value) if parts[2] == 'timeline' and value.isdigit() else value
            elif len(parts) == 4 and parts[2] == 'histtimeline':
                try:
                    about['histtimeline'] = int(parts[3].strip(), 16)
                except ValueError:
                    pass
            continue
        if kind == 'clusters':
            clusters.extend(_clusters(rest))
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
                      'managed': bool(about.get('managed')),
                      'sysid': about.get('sysid', ''), 'state': about.get('state', ''),
                      # the current timeline: the newest history file's, else the last checkpoint's
                      'timeline': max(about.get('timeline', 0) or 0, about.get('histtimeline', 0) or 0)})
    clusters.sort(key=lambda c: (c['major'], c['name']))
    named = [c for c in clusters if c['name'] == cluster_name]
    managed = [c for c in named if c['managed']]
    version = str(version if version is not None else '').strip()
    ambiguous = []
    if version:
        major, why = version, 'version'
    elif len(managed) == 1 and (managed[0]['running'] or managed[0]['fenced']
                                or not any(c['running'] for c in named if c is not managed[0])):
        major, why = str(managed[0]['major']), 'managed'
    elif len(managed) == 1:
        # The managed cluster is down and another of that name runs (pg_upgradecluster does not copy
        # conf.d): acting on the stopped one would, e.g., fence it while the other takes writes.
        major, why, ambiguous = '', 'ambiguous', named
    elif len(named) == 1:
        major, why = str(named[0]['major']), 'cluster'
    elif named:
        major, why, ambiguous = '', 'ambiguous', named
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
        'ambiguous': ambiguous,
    }


class FilterModule:
    """catmaid.replication filters."""

    def filters(self):
        return {'pg_host_probe': pg_host_probe}
