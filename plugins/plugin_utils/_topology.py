# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replication set, derived once from the inventory (private to catmaid.replication).

Every role and playbook of the collection asks this module (through the action plugin
``catmaid.replication.topology``) which host is the primary, which are the replicas, where each
replica connects from, each slot's name, the sender count and the ports, so that a role imported
alone into someone else's playbook gets the same answer as ``playbooks/site.yml``. It also holds
the inventory checks: bad input fails here, with a message that says what to fix, before any
host is touched.

Pure logic: it is given the set-wide settings (the ``catmaid_replication_*`` variables as the
calling host sees them, role defaults included) and, per host, the variables the inventory sets
for that host; it returns plain data and never a secret.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Mapping

from ansible_collections.catmaid.replication.plugins.module_utils._standby import parse_apply_delay

# Variables that may differ per host: read from each host's own variables only.
PER_NODE = ('catmaid_replication_address', 'catmaid_replication_slot', 'catmaid_replication_primary_address',
            'catmaid_replication_apply_delay', 'catmaid_replication_upstream')
# Settings of the whole replication set: every node must see the same value (a port, the proxy, the
# CA set on one host only would split the set).
SET_WIDE = ('catmaid_replication_user', 'catmaid_replication_use_proxy', 'catmaid_replication_port',
            'catmaid_replication_postgres_port', 'catmaid_replication_proxy_source', 'catmaid_replication_sslmode',
            'catmaid_replication_use_slots', 'catmaid_replication_max_wal_senders',
            'catmaid_replication_max_replication_slots', 'catmaid_replication_archive',
            'catmaid_replication_archive_host', 'catmaid_replication_archive_shared_dir',
            'catmaid_replication_archive_dir', 'catmaid_replication_ca_dir', 'catmaid_replication_postgresql_version',
            'catmaid_replication_synchronous')
# How long replay on a standby waits for a conflicting query (postgresql.conf time settings, -1 forever).
STANDBY_DELAYS = ('catmaid_replication_max_standby_streaming_delay', 'catmaid_replication_max_standby_archive_delay')
# Settings resolve() needs: the role catmaid.replication.catmaid_replication gives them all (its
# defaults/main.yml is the one place of their defaults, so none is repeated here).
REQUIRED = ('catmaid_replication_primary_group', 'catmaid_replication_replicas_group', 'catmaid_replication_use_proxy',
            'catmaid_replication_port', 'catmaid_replication_postgres_port', 'catmaid_replication_proxy_source',
            'catmaid_replication_use_slots', 'catmaid_replication_sslmode')

# Whole-number settings, their lower and upper bounds and the hint the error message gives.
INTS: dict[str, tuple[int, int | None, str]] = {
    'catmaid_replication_port': (1, 65535, '1-65535'),
    'catmaid_replication_postgres_port': (1, 65535, '1-65535'),
    'catmaid_replication_wal_keep_mb': (0, None, '0 or more'),
    'catmaid_replication_max_slot_wal_keep_mb': (-1, None, '-1 or more'),
    'catmaid_replication_max_wal_senders': (1, None, '1 or more'),
    'catmaid_replication_max_replication_slots': (1, None, '1 or more'),
    'catmaid_replication_stream_timeout': (1, None, '1 or more'),
}
SSLMODES = ('require', 'verify-ca', 'verify-full')
_INT = re.compile(r'^-?[0-9]+$')
_HOST = re.compile(r'^[A-Za-z0-9_.:-]+$')
_APPLICATION_NAME = re.compile(r'^[A-Za-z0-9._-]{1,63}$')
# Senders (and slots) reserved beyond one per replica: parallel clones take two each
# (pg_basebackup -X stream), pg_rewind one. The minimum keeps a growing set from ever needing
# a restart of every node for this setting (it is read at server start only).
SENDERS_MIN = 32
SENDERS_SPARE = 10


class TopologyError(ValueError):
    """Bad input: the message names what to fix."""


def node_id(name: str) -> str:
    """A node's name as PostgreSQL and the archive know it: lower case, [^a-z0-9_] as "_", 63 at most.

    The default slot name of a replica and its directory in the WAL archive."""
    return re.sub(r'[^a-z0-9_]', '_', str(name).lower())[:63]


def check_address(value: Any) -> str | None:
    """A replica's IPv4/IPv6 address or network (the proxy's allow list, pg_hba); None when it is not one.

    Refused as well: scoped IPv6 addresses (``%``: pg_hba.conf cannot read them), networks with host
    bits set or a prefix of 0 (everyone), the unspecified, loopback and multicast addresses (the
    proxy would admit the primary itself or nobody)."""
    text = str(value).strip()
    if not text or '%' in text or any(c.isspace() for c in text):
        return None
    try:
        if '/' in text:
            net = ipaddress.ip_network(text, strict=True)
            if net.prefixlen == 0:
                return None
            first = net.network_address
        else:
            net = None
            first = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(first, 'ipv4_mapped', None)
    if mapped is not None:
        return None     # ::ffff:a.b.c.d never matches an IPv4 client in nginx or pg_hba: give a.b.c.d
    if first.is_unspecified or first.is_loopback or first.is_multicast:
        return None
    return str(net) if net is not None else str(first)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    text = '' if value is None else str(value).strip()
    return {'yes': 'true', 'on': 'true', 'true': 'true', 'no': 'false', 'off': 'false', 'false': 'false'}.get(text.lower(), text)


def _bad_ints(values: Mapping[str, Any]) -> list[str]:
    bad = []
    for name, (low, high, hint) in INTS.items():
        value = values.get(name)
        if value is None or value == '':
            continue        # automatic (senders, slots) or not set
        text = str(value).strip()
        if isinstance(value, bool) or not _INT.match(text):
            bad.append(f'{name} (a whole number)')
            continue
        number = int(text)
        if number < low or (high is not None and number > high):
            bad.append(f'{name} ({hint})')
    sslmode = values.get('catmaid_replication_sslmode')
    if sslmode not in SSLMODES:
        bad.append('catmaid_replication_sslmode (require, verify-ca or verify-full)')
    return bad


def removal_list(value: Any) -> list[str]:
    """catmaid_replication_remove as a list of host names: a name, names separated by commas, or a list."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(',')
    names = []
    for item in items:
        if not isinstance(item, str):
            raise TopologyError(f'catmaid_replication_remove must name hosts (a name, names separated by commas, or a '
                                f'list of names), not {item!r}. Nothing was changed.')
        name = item.strip()
        if name and name not in names:
            names.append(name)
    return names


def resolve(settings: Mapping[str, Any], groups: Mapping[str, list], host_vars: Callable[[str], Mapping[str, Any]],
            me: str, facts_address: Callable[[str], str], primary: str = '') -> dict[str, Any]:
    """Check the inventory and derive the replication set.

    settings      the catmaid_replication_* variables of the calling host (defaults included)
    groups        the inventory's groups
    host_vars     host -> that host's own variables (inventory, -e, facts set so far)
    me            the calling host
    facts_address host -> its default IPv4 address from gathered facts ('' when not gathered)
    primary       which node is the primary now (day-two playbooks after a failover); default:
                  the one host of the primary group. The other nodes of both groups are then
                  the replicas.
    """
    missing = [name for name in REQUIRED if name not in settings]
    if missing:
        raise TopologyError(f'Settings missing: {", ".join(missing)} (the role catmaid.replication.catmaid_replication '
                            'defines them all; include it, or its entry point "topology").')
    primary_group = str(settings['catmaid_replication_primary_group'])
    replicas_group = str(settings['catmaid_replication_replicas_group'])
    primaries = list(groups.get(primary_group) or [])
    replicas = list(groups.get(replicas_group) or [])
    if len(primaries) != 1:
        held = f': {", ".join(primaries)}' if primaries else ''
        raise TopologyError(
            f"The inventory group '{primary_group}' must hold exactly one host (the primary); it holds "
            f'{len(primaries)}{held}. Set catmaid_replication_primary_group (-e) to use another group.')
    if not replicas:
        raise TopologyError(
            f"The inventory group '{replicas_group}' must hold at least one replica; it is empty or missing. "
            'Set catmaid_replication_replicas_group (-e) to use another group.')
    if primaries[0] in replicas:
        raise TopologyError(
            f"{primaries[0]} is in both '{primary_group}' and '{replicas_group}'; a host is either the primary "
            'or a replica.')
    inventory_primary = primaries[0]
    nodes = [inventory_primary] + [r for r in replicas if r != inventory_primary]
    # Replicas to detach although they are still in the replicas group (-e catmaid_replication_remove):
    # from here on they are not in the set (no allow-list entry, pg_hba rule or slot for them).
    remove = removal_list(settings.get('catmaid_replication_remove'))
    unknown = [h for h in remove if h not in nodes]
    if unknown:
        raise TopologyError(
            f'catmaid_replication_remove names {", ".join(unknown)}, not a replica of the inventory group '
            f"'{replicas_group}' ({', '.join(replicas)}). Name a replica that is still in the inventory (a host taken "
            'out of the inventory is detached without it). Nothing was changed.')
    current_given = str(primary or inventory_primary)
    if current_given in remove or inventory_primary in remove:
        raise TopologyError(
            f'catmaid_replication_remove names the primary ({current_given if current_given in remove else inventory_primary}); '
            'only a replica can be removed. Promote another node first (playbooks/promote.yml), then remove '
            'the old primary. Nothing was changed.')
    if remove and len(remove) >= len(nodes) - 1:
        raise TopologyError(
            f'catmaid_replication_remove names every replica ({", ".join(remove)}); at least one must stay in the set. '
            'Nothing was changed.')
    nodes = [n for n in nodes if n not in remove]

    def value(host: str, name: str) -> Any:
        own = host_vars(host)
        return own[name] if name in own else settings.get(name)

    # The password: the same, non-empty, on every node (compared here, never returned).
    wanted = value(inventory_primary, 'catmaid_replication_password')
    for host in nodes:
        password = value(host, 'catmaid_replication_password')
        if password is None or str(password) == '' or str(password) != str(wanted):
            raise TopologyError(
                f'catmaid_replication_password is missing, empty or different on {host}. Give it once for all '
                'hosts, for example in group_vars/all/vault.yml encrypted with ansible-vault.')
    for host in nodes:
        bad = _bad_ints({name: value(host, name) for name in list(INTS) + ['catmaid_replication_sslmode']})
        if bad:
            raise TopologyError(
                f'Invalid value(s) for {host}: {", ".join(bad)}. Nothing was changed; fix them in the inventory '
                'or in -e.')
    for host in nodes:
        for name in STANDBY_DELAYS:
            given = value(host, name)
            if given is None:
                continue
            try:
                # Exactly as written into postgresql.conf: no space, no line end (a bare number would be ms).
                if isinstance(given, bool) or not re.match(r'(-1|0|[0-9]+(ms|s|min|h|d))\Z', str(given)):
                    raise ValueError(given)
                if str(given) != '-1':
                    parse_apply_delay(given)
            except ValueError:
                raise TopologyError(
                    f'{name} of {host} must be -1 (wait for the query forever), 0, or a whole number with a unit: ms, s, min, '
                    f"h or d, such as '30s' or '5min' (at most 24 days); got {given!r}. Nothing was changed.") from None
    for name in SET_WIDE:
        seen = {host: _norm(value(host, name)) for host in nodes}
        if len(set(seen.values())) > 1:
            raise TopologyError(
                f'{name} must be the same on every node of the replication set, but it differs: '
                + ', '.join(f'{h}={v or "(empty)"}' for h, v in seen.items())
                + '. Set it once (group_vars/all or -e). Nothing was changed.')

    current = str(primary or inventory_primary)
    if current not in nodes:
        raise TopologyError(f'{current} is not one of the nodes ({", ".join(nodes)}), so it cannot be the primary.')
    others = [n for n in nodes if n != current]

    host_of, address_of, slot_of, id_of = {}, {}, {}, {}
    for host in nodes:
        reach = str(host_vars(host).get('catmaid_replication_primary_address') or host)
        if reach != host and not _HOST.match(reach):
            raise TopologyError(
                f'catmaid_replication_primary_address must be a host name or address (got "{reach}"). Nothing was '
                'changed.')
        host_of[host] = reach
        given = host_vars(host).get('catmaid_replication_address')
        if given not in (None, ''):
            checked = check_address(given)
            if checked is None:
                raise TopologyError(
                    f'catmaid_replication_address of {host} must be an IPv4 or IPv6 address or network (got '
                    f'"{given}"); it goes into the allow list of the proxy. Nothing was changed.')
            address_of[host] = checked
        else:
            fact = str(facts_address(host) or '')
            checked = check_address(fact) if fact else ''
            if checked is None:
                raise TopologyError(
                    f'The default IPv4 address {host} reports in its facts ("{fact}") is not a usable address for the '
                    'allow list of the proxy; set catmaid_replication_address for it. Nothing was changed.')
            address_of[host] = checked
        id_of[host] = node_id(host)
        slot = host_vars(host).get('catmaid_replication_slot')
        slot_of[host] = str(slot) if slot not in (None, '') else id_of[host]
        if not re.match(r'^[a-z0-9_]{1,63}$', slot_of[host]):
            raise TopologyError(
                f'catmaid_replication_slot of {host} must be 1 to 63 characters out of [a-z0-9_] (got '
                f'"{slot_of[host]}"). Nothing was changed.')
    delay_of, delay_seconds_of = {}, {}
    for host in nodes:
        given = host_vars(host).get('catmaid_replication_apply_delay')
        try:
            delay_of[host], delay_seconds_of[host] = parse_apply_delay(given)
        except ValueError as exc:
            raise TopologyError(f'catmaid_replication_apply_delay of {host}: {exc}. Nothing was changed.') from None
        delay_of[host] = delay_of[host] or ''
    if len(set(id_of.values())) != len(id_of):
        raise TopologyError(
            'Two nodes have the same name in lower case with [^a-z0-9_] as "_" ('
            + ', '.join(sorted(n for n in nodes if list(id_of.values()).count(id_of[n]) > 1))
            + '); their slots and archive directories would collide. Rename one.')
    use_slots = _bool(settings['catmaid_replication_use_slots'])
    if not use_slots:
        slot_of = {n: '' for n in nodes}
    elif len(set(slot_of.values())) != len(nodes):
        # Over every node, not only today's replicas: after a promotion the old primary needs its slot too.
        raise TopologyError('Two nodes would use the same replication slot ('
                            + ', '.join(sorted(f'{n}={slot_of[n]}' for n in nodes
                                               if list(slot_of.values()).count(slot_of[n]) > 1))
                            + '): give each its own catmaid_replication_slot. Nothing was changed.')

    # Cascading (catmaid_replication_upstream, per replica): a replica may stream from another replica
    # instead of the primary, one level deep: the upstream itself streams from the primary. The value of
    # whichever node is the primary now is ignored (it streams from nobody), and a replica whose upstream
    # is the primary now (after a switchover to it) streams from it directly.
    cascade_of: dict[str, str] = {}
    for host in nodes:
        given = host_vars(host).get('catmaid_replication_upstream')
        name = '' if given in (None, '') else str(given).strip()
        if name and name not in nodes:
            why = (' (it is removed with catmaid_replication_remove)' if name in remove else '')
            raise TopologyError(
                f'catmaid_replication_upstream of {host} names "{name}", which is not a node of the replication set '
                f'({", ".join(nodes)}){why}. Name a replica that stays in the set, or leave it unset so that {host} '
                'streams from the primary. Nothing was changed.')
        if name == host:
            raise TopologyError(
                f'catmaid_replication_upstream of {host} names {host} itself: name the replica it streams from, or leave '
                'it unset so that it streams from the primary. Nothing was changed.')
        cascade_of[host] = name
    # A replica naming the inventory's primary streams from whichever node is the primary now: after a
    # failover that node is fenced or down until it rejoins and the inventory is updated.
    upstream_of = {n: (cascade_of[n] if cascade_of[n] and cascade_of[n] != inventory_primary else current) for n in others}
    for host in others:
        upstream = upstream_of[host]
        if upstream != current and delay_of.get(upstream):
            raise TopologyError(
                f'{host} would stream from {upstream}, a delayed replica (catmaid_replication_apply_delay '
                f'{delay_of[upstream]}): its replicas would follow a new timeline only as late as it replays it, and '
                f'the status could not check their lag. Name a replica without an apply delay as the upstream of {host}, '
                'or leave it unset. Nothing was changed.')
        if upstream != current and upstream_of.get(upstream) != current:
            raise TopologyError(
                f'{host} would stream from {upstream}, which streams from {upstream_of.get(upstream, "nobody")}, not from '
                f'the primary {current}: cascading is one level deep (a replica streams from the primary or from a replica '
                f'of the primary). Change catmaid_replication_upstream of {host} or of {upstream}. Nothing was changed.')
    downstreams_of = {n: [r for r in others if upstream_of[r] == n] for n in nodes}

    use_proxy = _bool(settings['catmaid_replication_use_proxy'])
    source = str(settings['catmaid_replication_proxy_source']).strip()
    try:
        address = ipaddress.ip_address(source)
        # IPv4 (the proxy's upstream is 127.0.0.1), loopback, and not 127.0.0.1 itself: local clients
        # connect from there, and everything from the proxy's source but replication is rejected.
        if address.version != 4 or not address.is_loopback or source == '127.0.0.1':
            raise ValueError(source)
    except ValueError:
        raise TopologyError(
            f'catmaid_replication_proxy_source must be an IPv4 loopback address other than 127.0.0.1, such as 127.0.0.2 '
            f'(got "{source}"): the proxy connects to PostgreSQL from it and pg_hba.conf rejects everything from it but '
            'replication, so 127.0.0.1 would lock out local clients. Nothing was changed.') from None
    proxy_source = f'{source}/32'
    # Where the proxy forwards to (nginx_stream_upstream_host: the primary's own value, else the one the
    # caller sees, the role default inside catmaid.replication.nginx_stream). nginx binds to the proxy's
    # IPv4 loopback source (proxy_bind), so the upstream must be an IPv4 loopback address too: with an IPv6
    # address (or a name such as localhost that may resolve to ::1) nginx cannot connect from an IPv4
    # source, and another host is never reached from a loopback one.
    upstream_given = value(current, 'nginx_stream_upstream_host')
    upstream = '' if upstream_given is None else str(upstream_given).strip()
    if use_proxy and upstream_given is not None:
        try:
            target = ipaddress.ip_address(upstream)
            if target.version != 4 or not target.is_loopback:
                raise ValueError(upstream)
        except ValueError:
            raise TopologyError(
                f'nginx_stream_upstream_host must be an IPv4 loopback address where PostgreSQL listens on the primary, '
                f'such as 127.0.0.1 (got "{upstream}"): the proxy connects to it from catmaid_replication_proxy_source '
                f'({source}, nginx proxy_bind), so an IPv6 address or a host name (localhost may resolve to ::1) would '
                'make nginx fail to connect, and another host cannot be reached from a loopback address. Set it to '
                '127.0.0.1 or remove it. Nothing was changed.') from None
    postgres_port = int(settings['catmaid_replication_postgres_port'])
    proxy_port = int(settings['catmaid_replication_port'])
    senders_given = settings.get('catmaid_replication_max_wal_senders')
    senders = int(senders_given) if senders_given not in (None, '') else max(SENDERS_MIN, len(nodes) + SENDERS_SPARE)
    slots_given = settings.get('catmaid_replication_max_replication_slots')
    max_slots = int(slots_given) if slots_given not in (None, '') else senders
    fed = max(len(d) for d in downstreams_of.values())
    if use_slots and fed > max_slots:
        raise TopologyError(
            f'{fed} replicas stream from one node and need as many slots there, but '
            f'catmaid_replication_max_replication_slots is {max_slots}. Raise it or leave it unset.')
    # The replicas that stream from this node (the primary's, or a cascading upstream's): its allow list,
    # pg_hba sources and slots are theirs.
    mine = downstreams_of.get(me, [])
    known = [address_of[n] for n in mine if address_of[n]]
    role = 'primary' if me == current else ('replica' if me in others else ('removed' if me in remove else 'none'))
    listen = settings.get('catmaid_replication_listen_addresses')
    if listen in (None, '', []):
        listen = '*' if ((role == 'primary' or mine) and not use_proxy) else 'localhost'
    archive = _bool(settings.get('catmaid_replication_archive'))
    shared_dir = str(settings.get('catmaid_replication_archive_shared_dir') or '')
    archive_host = '' if shared_dir else str(settings.get('catmaid_replication_archive_host') or inventory_primary)
    archive_address = str(settings.get('catmaid_replication_archive_address') or '')
    if not archive_address and archive_host:
        archive_address = host_of.get(archive_host, archive_host)
    return {
        'primary': current,
        'inventory_primary': inventory_primary,
        'replicas': others,
        'nodes': nodes,
        'me': me,
        'role': role,
        'use_proxy': use_proxy,
        # synchronous_standby_names for the primary ('' when catmaid_replication_synchronous is off)
        'synchronous_standby_names': synchronous_standby_names(settings.get('catmaid_replication_synchronous'), nodes,
                                                               len(downstreams_of[current])),
        'proxy_port': proxy_port,
        'postgres_port': postgres_port,
        # where the replicas connect: the proxy on the primary, or PostgreSQL itself
        'connect_port': proxy_port if use_proxy else postgres_port,
        'primary_host': host_of[current],
        'host_of': host_of,
        'address_of': address_of,
        'missing_addresses': [n for n in mine if not address_of[n]],
        'allow': known,
        'hba_sources': [proxy_source] if use_proxy else known,
        'proxy_source': proxy_source,
        'proxy_upstream': upstream if use_proxy else '',
        'slot_of': slot_of,
        'slots': [slot_of[n] for n in mine if slot_of[n]],
        'slot': slot_of.get(me, ''),
        # Cascading: replica -> the node it streams from (the primary, or its catmaid_replication_upstream);
        # node -> the replica named as its upstream ('' when none); node -> the replicas streaming from it.
        'upstream_of': upstream_of,
        'cascade_of': cascade_of,
        'downstreams_of': downstreams_of,
        # this node's upstream and how to reach it ('' on the primary), and the replicas streaming from it
        'upstream': upstream_of.get(me, ''),
        'upstream_host': host_of[upstream_of[me]] if me in upstream_of else '',
        'downstreams': mine,
        'id_of': id_of,
        'senders': senders,
        'max_slots': max_slots,
        'listen_addresses': listen if isinstance(listen, str) else ','.join(str(a) for a in listen),
        'archive': archive,
        'archive_host': archive_host,
        'archive_address': archive_address,
        'archive_shared_dir': shared_dir,
        # replicas named in catmaid_replication_remove (still in the inventory, no longer in the set)
        'removed': remove,
        # node -> recovery_min_apply_delay ('' when none) and the same in seconds (0 when none)
        'apply_delay_of': delay_of,
        'apply_delay_seconds_of': delay_seconds_of,
        'apply_delay': delay_of.get(me, ''),
    }


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('1', 'true', 'yes', 'on', 'y', 't')


def synchronous_standby_names(value: Any, nodes: list[str], direct: int | None = None) -> str:
    """synchronous_standby_names from catmaid_replication_synchronous ({method: ANY|FIRST, count: N}, or off).

    Every node of the set is listed by the application name it streams with (its inventory name), the
    primary included: the value is the same on every node, so it still holds after a switchover or a
    promotion, and a server never waits for itself. ``direct``: how many replicas stream from the primary
    itself (default: all); a cascading replica never confirms a commit to the primary, so ``count`` may not
    exceed it.
    """
    if value in (None, '', False) or (isinstance(value, Mapping) and not value):
        return ''
    if not isinstance(value, Mapping):
        raise TopologyError(f'catmaid_replication_synchronous must be a mapping such as {{method: ANY, count: 1}}, or null '
                            f'for asynchronous replication (got {value!r}). Nothing was changed.')
    unknown = sorted(str(k) for k in value if k not in ('method', 'count'))
    if unknown:
        raise TopologyError(f'catmaid_replication_synchronous takes only method and count (got {", ".join(unknown)}). '
                            'Nothing was changed.')
    method = str(value.get('method', 'ANY')).strip().upper()
    if method not in ('ANY', 'FIRST'):
        raise TopologyError(f'catmaid_replication_synchronous.method must be ANY (quorum) or FIRST (priority) (got '
                            f'{value.get("method")!r}). Nothing was changed.')
    count_given = value.get('count', 1)
    if isinstance(count_given, bool) or not _INT.match(str(count_given).strip()):
        raise TopologyError(f'catmaid_replication_synchronous.count must be a whole number (got {count_given!r}). '
                            'Nothing was changed.')
    count = int(str(count_given).strip())
    replicas = len(nodes) - 1 if direct is None else direct
    if count < 1 or count > replicas:
        raise TopologyError(
            f'catmaid_replication_synchronous.count must be 1 to {replicas}, the number of replicas that stream from the '
            f'primary (cascading ones, catmaid_replication_upstream, never confirm a commit to it) (got {count}): '
            f'{"no standby would be synchronous" if count < 1 else "every commit would wait forever for a standby that does not exist"}. '
            'Nothing was changed.')
    for node in nodes:
        # PostgreSQL keeps 63 bytes of an application name and turns any other byte than printable ASCII into
        # '?'; quotes, backslashes and line ends would also break (or inject into) the configuration line.
        if not _APPLICATION_NAME.match(node):
            raise TopologyError(
                f'{node!r} cannot be named in synchronous_standby_names: a replica streams with its inventory name as its '
                'application name, which must be 1 to 63 of the characters A-Z a-z 0-9 . _ - for synchronous '
                'replication. Rename the host in the inventory (ansible_host keeps its address). Nothing was changed.')
    return f'{method} {count} (' + ', '.join(f'"{n}"' for n in nodes) + ')'
