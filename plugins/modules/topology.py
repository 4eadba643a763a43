#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
---
module: topology
short_description: Derive the replication set from the inventory, once, on the controller
version_added: 0.2.0
description:
  - Checks the inventory and answers, for the host it runs for, every question the roles and
    playbooks of catmaid.replication ask about the replication set, in one place.
  - Which host is the primary (the one host of the group named by C(catmaid_replication_primary_group),
    or O(primary)), which are the replicas (every other host of both groups), the address each replica
    connects from (C(catmaid_replication_address), else its default IPv4 address from gathered facts),
    each replica's slot name (C(catmaid_replication_slot), else its inventory name in lower case with
    every other character than C([a-z0-9_]) as C(_)), the sender and slot counts, the port the replicas
    connect to, C(listen_addresses), the proxy's allow list and the C(pg_hba.conf) sources.
  - Cascading (C(catmaid_replication_upstream), per replica) - which node each replica streams from
    (the primary, or the replica it names, one level deep) and which replicas stream from this host.
    The allow list, the C(pg_hba.conf) sources and the slots are those of the replicas that stream
    from this host (the primary's own replicas; on a cascading upstream the replicas naming it; none on
    any other replica).
  - Fails, naming what to fix, on bad input (not exactly one primary, no replica, a host in both
    groups, a missing, empty or differing C(catmaid_replication_password), ports, sizes or
    C(sslmode) out of range, an allow-list address that is not an IP address or network, colliding
    slot names, a C(catmaid_replication_upstream) outside the set, naming the host itself, removed or
    chained (the upstream must stream from the primary), a proxy upstream C(nginx_stream_upstream_host) that is not an IPv4 loopback address)
    before anything else runs.
  - Runs on the controller only (an action plugin); nothing is executed on the host. Never returns
    the password.
author:
  - catmaid.replication developers (@catmaid)
options:
  settings:
    description:
      - The C(catmaid_replication_*) variables as the host sees them, role defaults included, except
        the password (the roles pass them; see roles/catmaid_replication/tasks/topology.yml), and
        C(nginx_stream_upstream_host) where it is defined.
      - Per-host values (C(catmaid_replication_address), C(_slot), C(_primary_address),
        C(_password) and the ports) are read from each host's own variables.
    type: dict
    required: true
  primary:
    description:
      - The node that is the primary now, when it is not the inventory's (the day-two playbooks
        after a failover). All other nodes of both groups are then the replicas.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: all
    details: Runs on the controller; nothing is executed on the host.
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
notes:
  - The default sender count (C(max_wal_senders), and C(max_replication_slots)) is
    max(32, nodes + 10), so that adding replicas (and cloning several at once, two senders each)
    up to more than twenty never needs a restart for it.
'''

EXAMPLES = r'''
- name: Resolve the replication set
  catmaid.replication.topology:
    settings:
      catmaid_replication_primary_group: primary
      catmaid_replication_replicas_group: replicas
      catmaid_replication_use_proxy: true
      catmaid_replication_port: 7432

- name: Show who streams from whom
  ansible.builtin.debug:
    msg: "{{ catmaid_replication_topology.replicas }} stream from {{ catmaid_replication_topology.primary }}"
'''

RETURN = r'''
ansible_facts:
  description: Facts set on the host.
  returned: success
  type: dict
  contains:
    catmaid_replication_topology:
      description: The replication set.
      type: dict
      returned: success
      sample:
        primary: db1
        inventory_primary: db1
        replicas: [db2, db3]
        nodes: [db1, db2, db3]
        me: db1
        role: primary
        use_proxy: true
        proxy_port: 7432
        postgres_port: 5432
        connect_port: 7432
        primary_host: db1
        host_of: {db1: db1, db2: db2, db3: db3}
        address_of: {db1: 192.0.2.1, db2: 192.0.2.2, db3: 203.0.113.17}
        missing_addresses: []
        allow: [192.0.2.2, 203.0.113.17]
        hba_sources: [127.0.0.2/32]
        proxy_source: 127.0.0.2/32
        proxy_upstream: 127.0.0.1
        slot_of: {db1: db1, db2: db2, db3: db3}
        slots: [db2, db3]
        slot: db1
        upstream_of: {db2: db1, db3: db1}
        cascade_of: {db1: "", db2: "", db3: ""}
        downstreams_of: {db1: [db2, db3], db2: [], db3: []}
        upstream: ""
        upstream_host: ""
        downstreams: [db2, db3]
        id_of: {db1: db1, db2: db2, db3: db3}
        senders: 32
        max_slots: 32
        listen_addresses: localhost
        archive: false
        archive_host: db1
        archive_address: db1
        archive_shared_dir: ""
'''

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={'settings': {'type': 'dict', 'required': True}, 'primary': {'type': 'str'}},
        supports_check_mode=True,
    )
    module.fail_json(msg='catmaid.replication.topology runs on the controller (its action plugin); '
                         'it cannot run as a module on the host.')


if __name__ == '__main__':
    main()
