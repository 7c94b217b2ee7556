# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
name: topology
short_description: Work out the replication topology of a hotstandby.postgresql inventory
version_added: 0.1.0
description:
  - Reads the inventory groups C(postgres_master) (exactly one host, the primary) and C(postgres_standby)
    (the hot standbys) and, for every standby, the host variables C(postgres_standby_upstream),
    C(postgres_standby_slot_name), C(postgres_standby_address) and C(ansible_facts.default_ipv4.address).
  - Returns the whole topology in one mapping, the same for every host that computes it. It holds the primary,
    each standby's upstream, its tier (hops from the primary), its replication slot and application name,
    the addresses the nodes connect to, the standbys that stream from each node, C(synchronous_standby_names)
    and the C(sync_state) each standby is expected to report.
  - Never fails because of the inventory. Every problem found (no or several primaries, no standby, a host
    in both groups, an upstream that is not another standby, a cascade loop, a cascade deeper than
    three standbys, clashing or invalid slot names, an unusable synchronous mode or count) is one message
    in RV(_value.errors); everything that can still be computed is returned beside them. Callers must
    refuse to go on while RV(_value.errors) is not empty.
  - A cascade may be at most three standbys deep (tiers 1, 2 and 3); the playbook C(hotstandby.postgresql.site)
    has one play per tier. The limit lives in C(MAX_CASCADE_DEPTH) in this plugin and is returned as
    RV(_value.max_depth).
  - A standby whose address is unknown (no C(postgres_standby_address) and no gathered C(default_ipv4) fact)
    is not an error here; its address is returned as V(null).
  - The same file provides the filter C(hotstandby.postgresql.hba_rules), applied to this filter's result with two
    arguments, a host and whether TLS is on (a boolean or a boolean string). It returns the
    O(community.postgresql.postgresql_pg_hba#module:rules) for the standbys that stream from that host. For each,
    its line for the connection type in use (C(hostssl) with TLS, else C(host)) comes first, then the removal
    of its line of the other type. It fails when such a standby's address is unknown.
  - The filter C(hotstandby.postgresql.downstream_changes), applied to this filter's result with a host, the record
    that host keeps of the slots and pg_hba lines made on it for its downstream standbys, and the names of its
    slots in use, returns the new record and the removed standbys whose slot and line go (C(drop), each with the
    C(hba_rules) that remove its line) or, still streaming, stay (C(kept)), and whether the record must be written
    (C(write), true when it changed; no record counts as an empty one, so a host that never served a standby writes none).
    Slots and lines not in the record are never named.
  - A host in both groups counts as the primary only (and is reported). Without exactly one primary,
    standbys that would stream from the primary get C(upstream) V(null) in RV(_value.hosts), but their tiers,
    slots and the checks that do not need the primary are still worked out.
positional: _input, hostvars
options:
  _input:
    description: The inventory groups, normally C(groups). Only C(postgres_master) and C(postgres_standby) are read.
    type: dict
    required: true
  hostvars:
    description: The variables of every host, normally C(hostvars). Only the hosts of the two groups are read.
    type: dict
    required: true
  primary_address:
    description:
      - Address the standbys use to reach the primary, normally C(postgres_primary_address).
      - When empty, the primary's C(ansible_facts.default_ipv4.address) is used.
    type: str
    default: ''
  synchronous_mode:
    description: Synchronous replication mode, normally C(postgres_synchronous_mode).
    type: str
    choices: [async, sync, quorum]
    default: async
  synchronous_count:
    description:
      - Number of synchronous standbys for V(sync) and V(quorum), normally C(postgres_synchronous_count).
      - A string holding a whole number (as INI inventories give) is accepted.
      - Must lie between 1 and the number of standbys that stream from the primary itself.
    type: raw
    default: 1
'''

EXAMPLES = r'''
- name: Work out the replication topology once
  ansible.builtin.set_fact:
    __postgres_topology: >-
      {{ groups | hotstandby.postgresql.topology(hostvars,
                                                 primary_address=postgres_primary_address,
                                                 synchronous_mode=postgres_synchronous_mode,
                                                 synchronous_count=postgres_synchronous_count) }}

- name: Refuse an inventory the topology cannot be built from
  ansible.builtin.assert:
    that:
      - __postgres_topology.errors | length == 0
    fail_msg: "{{ __postgres_topology.errors | join(' ') }}"
    quiet: true

# This host's upstream, its slot and the address it connects to
# __postgres_topology.hosts[inventory_hostname].upstream
# __postgres_topology.hosts[inventory_hostname].slot
# __postgres_topology.hosts[inventory_hostname].upstream_address

- name: Allow replication from each downstream standby's own address only
  community.postgresql.postgresql_pg_hba:
    dest: /etc/postgresql/16/main/pg_hba.conf
    databases: replication
    users: replicator
    method: scram-sha-256
    rules: "{{ __postgres_topology | hotstandby.postgresql.hba_rules(inventory_hostname, postgres_tls) }}"
'''

RETURN = r'''
_value:
  description: The replication topology.
  type: dict
  contains:
    primary:
      description: The primary (the only host of C(postgres_master)), V(null) unless there is exactly one.
      type: str
    max_depth:
      description: The deepest cascade allowed, in standbys (C(MAX_CASCADE_DEPTH), 3).
      type: int
    errors:
      description: One message per problem found, naming the hosts, the variable and what to change. Empty when the inventory is usable.
      type: list
      elements: str
    standbys:
      description: The standbys, in inventory order (a host also in C(postgres_master) is left out).
      type: list
      elements: str
    tiers:
      description:
        - The standbys by hops from the primary, keys V('1') to V('3') (strings, all present), hosts in inventory order.
        - Standbys in a loop, behind an invalid upstream or deeper than the limit are in no tier.
      type: dict
    synchronous_candidates:
      description: The standbys that stream from the primary itself, in inventory order.
      type: list
      elements: str
    synchronous_standby_names:
      description: The value of C(synchronous_standby_names) for the primary - V('') for async, else V(FIRST n ("a", "b")) or V(ANY n ("a", "b")).
      type: str
    hosts:
      description: Per host of either group, a mapping with C(role) (V(primary) or V(standby)), C(upstream), C(tier)
        (0 for the primary, V(null) when it cannot be worked out), C(slot), C(application_name), C(address),
        C(upstream_address), C(downstream) (the standbys streaming from it) and C(expected_sync_states).
      type: dict
'''

import re
from collections.abc import Mapping

from jinja2 import Undefined

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.parsing.convert_bool import boolean

# The deepest cascade allowed, in standbys: tiers 1 to MAX_CASCADE_DEPTH.
# playbooks/site.yml has one play per tier (a unit test holds the two together).
MAX_CASCADE_DEPTH = 3

# What PostgreSQL accepts as a replication slot name (NAMEDATALEN - 1 = 63 bytes).
SLOT_NAME_RE = re.compile(r'^[a-z0-9_]{1,63}$')

SYNCHRONOUS_MODES = ('async', 'sync', 'quorum')

_SLOT_UNSAFE_RE = re.compile(r'[^a-z0-9_]')

_MISSING = object()


def _lookup(mapping, name):
    """Return mapping[name], or _MISSING when it is absent or undefined."""
    if not isinstance(mapping, Mapping):
        return _MISSING
    try:
        if name not in mapping:
            return _MISSING
        # HostVars template on access: a value built from an undefined variable
        # raises one of Ansible's undefined errors (or returns an Undefined):
        # both mean "not defined" here.
        value = mapping[name]
    except Exception:  # pylint: disable=broad-exception-caught
        return _MISSING
    if isinstance(value, Undefined):
        return _MISSING
    return value


def _hostvar(hostvars, host, name):
    """Return the variable name of host, or _MISSING."""
    return _lookup(_lookup(hostvars, host), name)


def _default_ipv4(hostvars, host):
    """Return the host's gathered default IPv4 address, or None."""
    address = _lookup(_lookup(_hostvar(hostvars, host, 'ansible_facts'), 'default_ipv4'), 'address')
    if not isinstance(address, str) or not address:
        return None
    return address


def _group(groups, name):
    """Return the hosts of an inventory group as a list without duplicates."""
    hosts = _lookup(groups, name)
    if hosts is _MISSING or hosts is None:
        return []
    if isinstance(hosts, str) or not is_sequence(hosts):
        raise AnsibleFilterError('topology: groups[%r] must be a list of host names, got %s' % (name, type(hosts).__name__))
    result = []
    for host in hosts:
        if host not in result:
            result.append(host)
    return result


def _type_name(value):
    """Name the YAML type of a value for a message."""
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, Mapping):
        return 'a mapping'
    if is_sequence(value):
        return 'a list'
    return type(value).__name__


def _join(hosts, empty='none'):
    return ', '.join(hosts) if hosts else empty


def _chain(hosts):
    return ' -> '.join(hosts)


def _path_to_primary(links, host):
    """The standbys from host up to the one that streams from the primary."""
    path = [host]
    while links[path[-1]] is not None:
        path.append(links[path[-1]])
    return path


def default_slot_name(host):
    """The slot name a standby gets when postgres_standby_slot_name is not set."""
    return _SLOT_UNSAFE_RE.sub('_', host.lower())


def _as_count(value):
    """Return value as an int, or None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def topology(groups, hostvars, primary_address='', synchronous_mode='async', synchronous_count=1):
    """Work out the replication topology of the inventory; see DOCUMENTATION.

    Never raises for a bad inventory: problems are returned in 'errors'.
    Decisions where the inventory is broken:
      - a host in both groups is the primary only (left out of 'standbys');
      - without exactly one primary, a standby that would stream from the
        primary gets upstream None (and upstream_address None), but still
        counts as tier 1 and as a synchronous candidate;
      - a standby whose postgres_standby_upstream is invalid (not another
        standby, itself, the primary, not a string) gets upstream None and
        tier None, and is nobody's downstream; so are the standbys behind it
        or in a loop (tier None);
      - a standby deeper than MAX_CASCADE_DEPTH keeps its real hop count as
        tier but is in no entry of 'tiers';
      - an invalid postgres_standby_slot_name that is not a string gives slot None;
      - with several hosts in postgres_master, each is listed with role
        'primary' but address None and no downstream.
    """
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError('topology: the input must be the inventory groups (a mapping), got %s' % type(groups).__name__)
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError('topology: hostvars must be a mapping of host names to their variables, got %s' % type(hostvars).__name__)

    errors = []

    masters = _group(groups, 'postgres_master')
    standby_group = _group(groups, 'postgres_standby')

    # 1. exactly one primary
    if len(masters) != 1:
        errors.append(
            'The inventory group postgres_master must hold exactly one host; it holds %d: %s. Keep the primary '
            'there and move the other hosts to postgres_standby.' % (len(masters), _join(masters)))
    primary = masters[0] if len(masters) == 1 else None

    # 2. at least one standby
    if not standby_group:
        errors.append(
            'The inventory group postgres_standby is empty or missing. Add the hosts that should become hot '
            'standbys of %s.' % (primary or 'the primary'))

    # 3. no host in both groups
    both = [host for host in masters if host in standby_group]
    if both:
        errors.append(
            '%s %s in both postgres_master and postgres_standby; a host is either the primary or a standby. '
            'Remove %s from one of the two groups.'
            % (_join(both), 'is' if len(both) == 1 else 'are', 'it' if len(both) == 1 else 'each'))
    standbys = [host for host in standby_group if host not in masters]

    # 4. upstreams: a valid link points at another standby; None = streams from the primary.
    links = {}      # standby -> upstream standby, or None for the primary
    broken = set()  # standbys whose postgres_standby_upstream is invalid
    for host in standbys:
        upstream = _hostvar(hostvars, host, 'postgres_standby_upstream')
        if upstream is _MISSING:
            links[host] = None
            continue
        others = _join([other for other in standbys if other != host], 'there is none')
        if not isinstance(upstream, str):
            errors.append(
                'postgres_standby_upstream of %s must be the inventory name of another standby, but YAML reads it '
                'as %s. Set it to one of the postgres_standby group (%s), or leave it unset to stream from the '
                'primary.' % (host, _type_name(upstream), others))
        elif upstream == host:
            errors.append(
                "postgres_standby_upstream of %s is '%s', the host itself. It must name another host of the "
                'postgres_standby group (%s); leave it unset to stream from the primary.' % (host, upstream, others))
        elif upstream in masters:
            errors.append(
                "postgres_standby_upstream of %s is '%s', the primary: leave it unset to stream from the "
                'primary; set it only to cascade from another host of the postgres_standby group '
                '(%s).' % (host, upstream, others))
        elif upstream not in standbys:
            errors.append(
                "postgres_standby_upstream of %s is '%s'. It must name another host of the postgres_standby group "
                '(%s); leave it unset to stream from the primary.' % (host, upstream, others))
        else:
            links[host] = upstream
            continue
        broken.add(host)

    # 5./6. follow each standby's links: its depth in standbys, or None (loop or broken link).
    depth = {}
    loops = []
    for start in standbys:
        path = []
        host = start
        while host is not None and host not in depth and host not in path and host not in broken:
            path.append(host)
            host = links[host]
        if host is None:
            base = 0
        elif host in depth:
            base = depth[host]
        elif host in broken:
            base = None
        else:  # host is in path: a loop
            cycle = path[path.index(host):]
            first = min(cycle, key=standbys.index)
            cycle = cycle[cycle.index(first):] + cycle[:cycle.index(first)]
            loops.append(cycle)
            for member in cycle:
                depth[member] = None
            path = path[:path.index(host)]
            base = None
        for host in reversed(path):
            base = None if base is None else base + 1
            depth[host] = base
    for host in broken:
        depth[host] = None

    for cycle in sorted(loops, key=lambda c: standbys.index(c[0])):
        errors.append(
            'postgres_standby_upstream makes a loop: %s. A cascade must end at the primary. Point '
            'postgres_standby_upstream of one of these standbys at a standby nearer the primary, or leave it unset '
            'there to stream from the primary.' % _chain(cycle + [cycle[0]]))

    primary_name = primary or 'the primary'
    for host in standbys:
        if depth[host] == MAX_CASCADE_DEPTH + 1:
            chain = _path_to_primary(links, host)
            behind = [other for other in standbys
                      if depth[other] is not None and depth[other] > len(chain) and host in _path_to_primary(links, other)]
            errors.append(
                'Following postgres_standby_upstream from %s (%s) takes %d standbys to reach the primary; a cascade '
                'may be at most %d standbys deep. Point postgres_standby_upstream of %s at a standby nearer the '
                'primary%s.' % (host, _chain(chain + [primary_name]), len(chain), MAX_CASCADE_DEPTH, host,
                                ' (the standbys behind it, %s, follow)' % _join(behind) if behind else ''))

    # 7./8. replication slots
    slots = {}
    explicit_slot = set()
    for host in standbys:
        name = _hostvar(hostvars, host, 'postgres_standby_slot_name')
        if name is _MISSING:
            slot = default_slot_name(host)
            if not SLOT_NAME_RE.fullmatch(slot):
                errors.append(
                    "The replication slot name made from the inventory name %s ('%s') is %d characters long; "
                    'PostgreSQL allows at most 63. Set postgres_standby_slot_name for %s to a shorter name of '
                    'lower-case letters, digits and underscores.' % (host, slot, len(slot), host))
            slots[host] = slot
            continue
        explicit_slot.add(host)
        if not isinstance(name, str):
            errors.append(
                'postgres_standby_slot_name of %s must be a string, but YAML reads it as %s: quote the value '
                '(1 to 63 lower-case letters, digits and underscores).' % (host, _type_name(name)))
            slots[host] = None
        else:
            if not SLOT_NAME_RE.fullmatch(name):
                errors.append(
                    "postgres_standby_slot_name of %s is '%s', which is not a valid replication slot name. Use 1 to "
                    '63 lower-case letters, digits and underscores.' % (host, name))
            slots[host] = name

    users = {}
    for host in standbys:
        if slots[host] is not None:
            users.setdefault(slots[host], []).append(host)
    for slot, hosts in users.items():
        if len(hosts) > 1:
            origins = ', '.join(
                '%s (%s)' % (host, 'postgres_standby_slot_name' if host in explicit_slot else 'from its inventory name')
                for host in hosts)
            errors.append(
                "The standbys %s would all use the replication slot '%s'; each standby needs its own slot. Set "
                'postgres_standby_slot_name to a unique name on all of them but one.' % (origins, slot))

    # 9. synchronous replication
    candidates = [host for host in standbys if host not in broken and links[host] is None]
    mode_valid = isinstance(synchronous_mode, str) and synchronous_mode in SYNCHRONOUS_MODES
    count = None
    if not mode_valid:
        errors.append(
            "postgres_synchronous_mode is '%s'; it must be async, sync or quorum." % (synchronous_mode,))
    elif synchronous_mode != 'async':
        count = _as_count(synchronous_count)
        if count is None or not 1 <= count <= len(candidates):
            errors.append(
                "postgres_synchronous_mode is %s with postgres_synchronous_count '%s'%s, but %d standby(s) stream "
                'from the primary (%s). Set postgres_synchronous_count between 1 and %d, or use '
                'postgres_synchronous_mode async.'
                % (synchronous_mode, synchronous_count, ' (not a whole number)' if count is None else '',
                   len(candidates), _join(candidates), len(candidates)))

    if mode_valid and synchronous_mode != 'async' and count is not None:
        synchronous_standby_names = '%s %d (%s)' % (
            'FIRST' if synchronous_mode == 'sync' else 'ANY', count,
            ', '.join('"%s"' % host.replace('"', '""') for host in candidates))
    else:
        synchronous_standby_names = ''

    # addresses
    if primary is None:
        primary_node_address = None
    elif isinstance(primary_address, str) and primary_address:
        primary_node_address = primary_address
    else:
        primary_node_address = _default_ipv4(hostvars, primary)

    addresses = {}
    for host in standbys:
        override = _hostvar(hostvars, host, 'postgres_standby_address')
        if isinstance(override, str) and override:
            addresses[host] = override
        else:
            addresses[host] = _default_ipv4(hostvars, host)

    # per host
    def downstream_of(node, is_primary):
        return [host for host in standbys
                if host not in broken and (links[host] is None if is_primary else links[host] == node)]

    hosts = {}
    for host in masters:
        hosts[host] = {
            'role': 'primary',
            'upstream': None,
            'tier': 0,
            'slot': None,
            'application_name': host,
            'address': primary_node_address if host == primary else None,
            'upstream_address': None,
            'downstream': downstream_of(host, True) if host == primary else [],
            'expected_sync_states': None,
        }
    for host in standbys:
        if host in broken:
            upstream = None
            upstream_address = None
        elif links[host] is None:
            upstream = primary
            upstream_address = primary_node_address
        else:
            upstream = links[host]
            upstream_address = addresses[upstream]
        if not mode_valid:
            expected = None
        elif synchronous_mode == 'async' or host not in candidates:
            expected = ['async']
        elif synchronous_mode == 'sync':
            expected = ['sync', 'potential']
        else:
            expected = ['quorum']
        hosts[host] = {
            'role': 'standby',
            'upstream': upstream,
            'tier': depth[host],
            'slot': slots[host],
            'application_name': host,
            'address': addresses[host],
            'upstream_address': upstream_address,
            'downstream': downstream_of(host, False),
            'expected_sync_states': expected,
        }

    tiers = {}
    for tier in range(1, MAX_CASCADE_DEPTH + 1):
        tiers[str(tier)] = [host for host in standbys if depth[host] == tier]

    return {
        'primary': primary,
        'max_depth': MAX_CASCADE_DEPTH,
        'errors': errors,
        'standbys': standbys,
        'tiers': tiers,
        'synchronous_candidates': candidates,
        'synchronous_standby_names': synchronous_standby_names,
        'hosts': hosts,
    }


def _single_address(address):
    """A pg_hba address that admits this one address only."""
    return address + ('/128' if ':' in address else '/32')


def hba_rules(topology_value, host, tls):
    """pg_hba rules (community.postgresql.postgresql_pg_hba 'rules') for the standbys streaming from host.

    For each downstream standby: its line for the connection type in use
    (hostssl with TLS, else host), then the removal of its line of the other type.
    """
    if not isinstance(topology_value, Mapping) or not isinstance(topology_value.get('hosts'), Mapping):
        raise AnsibleFilterError('hba_rules: the input must be the result of the hotstandby.postgresql.topology filter')
    try:
        use_tls = boolean(tls, strict=True)
    except TypeError as exc:
        raise AnsibleFilterError('hba_rules: tls must be a boolean, got %r (%s)' % (tls, exc))
    nodes = topology_value['hosts']
    node = nodes.get(host)
    if not isinstance(node, Mapping):
        return []
    rules = []
    for downstream in node.get('downstream') or []:
        address = (nodes.get(downstream) or {}).get('address')
        if not address:
            raise AnsibleFilterError(
                'The address of %s, which streams from %s, is unknown, so its pg_hba line cannot be written. Set '
                'postgres_standby_address for %s, or gather its facts (it has no default IPv4 address).'
                % (downstream, host, downstream))
        source = _single_address(address)
        rules.append({'contype': 'hostssl' if use_tls else 'host', 'address': source,
                      'comment': 'hotstandby.postgresql: replication for ' + downstream})
        rules.append({'contype': 'host' if use_tls else 'hostssl', 'address': source, 'state': 'absent'})
    return rules


def downstream_changes(topology_value, host, record=None, active_slots=()):
    """What host's record of the downstream standbys it serves becomes, and what goes.

    record: the record host keeps of the slots and pg_hba lines this collection made on it for its downstream
    standbys ({'downstream': {standby: {'slot': ..., 'address': ...}}}), or None before the first one.
    active_slots: the names of the slots in use on host right now.

    A standby in the record that is no longer downstream of host (removed from the inventory, or moved to
    another upstream) is dropped: its slot and pg_hba line go. One whose slot is in use still streams: it is
    kept (and stays in the record) so that the next run can drop it once it has stopped. Slots and lines that
    are not in the record (made by hand, or before the record existed) are never named here.
    write: whether the record must be written: it differs from the one kept, and no record (None) stands for an
    empty one, so a host that never served a standby keeps no file.
    """
    if not isinstance(topology_value, Mapping) or not isinstance(topology_value.get('hosts'), Mapping):
        raise AnsibleFilterError('downstream_changes: the input must be the result of the '
                                 'hotstandby.postgresql.topology filter')
    nodes = topology_value['hosts']
    node = nodes.get(host) or {}
    current = {}
    for downstream in node.get('downstream') or []:
        entry = nodes.get(downstream) or {}
        current[downstream] = {'slot': entry.get('slot'), 'address': entry.get('address')}
    previous = (record or {}).get('downstream') if isinstance(record, Mapping) else None
    if not isinstance(previous, Mapping):
        previous = {}
    active = set(active_slots or ())
    drop, kept = [], []
    for name in sorted(previous):
        if name in current:
            continue
        entry = previous[name] if isinstance(previous[name], Mapping) else {}
        item = {'host': name, 'slot': entry.get('slot'), 'address': entry.get('address')}
        if item['slot'] in active:
            kept.append(item)
        else:
            # its pg_hba line goes whichever connection type it was written for
            item['hba_rules'] = [{'contype': contype, 'address': _single_address(item['address']), 'state': 'absent'}
                                 for contype in ('host', 'hostssl')] if item['address'] else []
            drop.append(item)
    new_record = dict(current)
    for item in kept:
        new_record[item['host']] = {'slot': item['slot'], 'address': item['address']}
    result = {'downstream': new_record}
    write = result != record and (record is not None or bool(new_record))
    return {'record': result, 'drop': drop, 'kept': kept, 'write': write}


class FilterModule(object):
    """hotstandby.postgresql replication topology filters."""

    def filters(self):
        return {
            'topology': topology,
            'hba_rules': hba_rules,
            'downstream_changes': downstream_changes,
        }
