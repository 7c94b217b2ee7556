# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
name: topology_truth
short_description: Compare what the nodes really are with what the inventory says, before anything changes
version_added: 0.1.0
description:
  - Takes what C(hotstandby.postgresql.pg_replication_info) (with O(hotstandby.postgresql.pg_replication_info#module:data_dir))
    returned on every node and the result of the C(hotstandby.postgresql.topology) filter, and returns the reasons
    why C(hotstandby.postgresql.site) must not change anything, one sentence each, naming the hosts, their real role
    and what to change in the inventory. An empty list means the inventory matches the nodes.
  - Refused are a split brain (two running primaries of one system, named first), a C(postgres_master) host in
    recovery (running, or a stopped data directory with C(standby.signal)), a C(postgres_standby) host running as a
    primary of the inventory's system (promoted by hand or by a failover) or as any primary holding data, a
    C(postgres_standby) host whose stopped data directory is a primary of the inventory's system (a former primary
    whose history may have diverged, which site.yml does not rejoin), and a node whose state could not be read.
  - A node without PostgreSQL, or running only the empty cluster Debian's package made, is fine.
positional: _input, topology
options:
  _input:
    description: Host name -> the registered result of C(hotstandby.postgresql.pg_replication_info) (or a skipped result).
    type: dict
    required: true
  topology:
    description: The result of C(hotstandby.postgresql.topology).
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Refuse an inventory that does not match the nodes
  ansible.builtin.assert:
    that:
      - __refusals | length == 0
    fail_msg: "{{ __refusals | join(' ') }}"
  vars:
    __refusals: "{{ __infos | hotstandby.postgresql.topology_truth(__postgres_topology) }}"
'''

RETURN = r'''
_value:
  description: The reasons to refuse, one sentence each; empty when the nodes match the inventory.
  type: list
  elements: str
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _read(info):
    """(state, info): state is 'none' (nothing to read: skipped, no PostgreSQL), 'failed', or 'ok'."""
    if not isinstance(info, Mapping) or info.get('skipped') or not info:
        return 'none', {}
    if info.get('failed') or info.get('unreachable') or 'connected' not in info:
        return 'failed', info
    return 'ok', info


def _sysid(info):
    folder = info.get('data_directory') or {}
    return info.get('system_identifier') or folder.get('system_identifier')


def topology_truth(infos, topology):
    """The reasons to refuse a site.yml run (see DOCUMENTATION)."""
    if not isinstance(infos, Mapping) or not isinstance(topology, Mapping) or 'hosts' not in topology:
        raise AnsibleFilterError('topology_truth: give it the results of pg_replication_info per host and the '
                                 'result of the hotstandby.postgresql.topology filter')
    primary = topology.get('primary')
    standbys = list(topology.get('standbys') or [])
    hosts = ([primary] if primary else []) + standbys
    read = dict((host, _read(infos.get(host))) for host in hosts)
    refusals = []

    for host in hosts:
        state, info = read[host]
        if state == 'failed':
            refusals.append('The real role of %s could not be read (%s), so nothing is changed anywhere: make it '
                            'readable (is PostgreSQL on it healthy?) and run again.'
                            % (host, ' '.join(str(info.get('msg') or 'no message').split())))

    running_primaries = [h for h in hosts if read[h][0] == 'ok' and read[h][1].get('connected', True)
                         and read[h][1].get('role') == 'primary']
    by_system = {}
    for host in running_primaries:
        by_system.setdefault(_sysid(read[host][1]), []).append(host)
    for system, group in sorted(by_system.items(), key=lambda item: str(item[0])):
        if system and len(group) > 1:
            refusals.insert(0, 'SPLIT BRAIN: %s are all running primaries of the same system %s (timelines %s): '
                               'both may have taken writes. Nothing is changed anywhere. Decide which one is the '
                               'primary, stop PostgreSQL on the other(s) and keep their data, then fix the '
                               'inventory.' % (' and '.join(group), system,
                                               ', '.join('%s: %s' % (h, read[h][1].get('timeline')) for h in group)))

    primary_info = read[primary][1] if primary and read[primary][0] == 'ok' else {}
    system = _sysid(primary_info) if primary_info else None
    if primary_info:
        folder = primary_info.get('data_directory') or {}
        stopped_standby = (not primary_info.get('connected', True) and folder.get('exists')
                           and folder.get('standby_signal'))
        if primary_info.get('role') == 'standby' and (primary_info.get('connected', True) or stopped_standby):
            upstream = (primary_info.get('wal_receiver') or {}).get('sender_host')
            refusals.append('%s is in postgres_master but is %s standby%s: it is no longer the primary. Put the host '
                            'that is the primary now in postgres_master and %s in postgres_standby.'
                            % (primary, 'a running' if primary_info.get('connected', True) else 'a stopped',
                               ' of %s' % upstream if upstream else '', primary))

    for host in standbys:
        state, info = read[host]
        if state != 'ok':
            continue
        folder = info.get('data_directory') or {}
        same = bool(system) and _sysid(info) == system
        if info.get('connected', True) and info.get('role') == 'primary':
            if same:
                refusals.append('%s is in postgres_standby but is a running primary of the same system as %s '
                                '(timeline %s; promoted by hand or by a failover?). Nothing is changed: if %s is '
                                'the primary now, put it in postgres_master and %s in postgres_standby.'
                                % (host, primary, info.get('timeline'), host, primary))
            elif folder.get('user_data'):
                refusals.append('%s is in postgres_standby but runs a primary holding data (%s) in %s. It is '
                                'left alone: stop it and move its data directory away yourself if it is to '
                                'become a standby, or take it out of the inventory.'
                                % (host, folder['user_data'], folder.get('path')))
        elif not info.get('connected', True) and same and folder.get('exists') and not folder.get('standby_signal'):
            refusals.append('%s is in postgres_standby but its stopped data directory %s is a primary of the same '
                            'system as %s: a former primary whose history may have diverged from the new one. '
                            'site.yml does not rejoin it and never moves it aside by itself, whatever '
                            'postgres_standby_existing_data says: keep it, or move it aside yourself '
                            '(mv %s %s.diverged) and run again to clone it.'
                            % (host, folder.get('path'), primary, folder.get('path'), folder.get('path')))
    return refusals


class FilterModule(object):
    """hotstandby.postgresql: the nodes' real state against the inventory."""

    def filters(self):
        return {'topology_truth': topology_truth}
