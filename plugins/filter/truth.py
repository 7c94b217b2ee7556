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
    C(postgres_standby) host whose stopped data directory is a primary of the inventory's system on the same
    timeline as the inventory's primary, a higher one, or one that is unknown, or while the inventory's primary does
    not run as a primary (a former primary whose history may have diverged, with no promotion after it to rejoin it
    to), a C(postgres_master) host that C(failover.yml) fenced (O(fenced)), and a node whose state could not be read.
  - A C(postgres_standby) host whose stopped data directory is a primary of the inventory's system (no
    C(standby.signal)) on a lower timeline than the inventory's primary, which runs as a primary, is fine - a former
    primary after C(failover.yml) or a promotion by hand, with the inventory changed. C(site.yml) rejoins it (the
    C(postgres_standby) role, with C(hotstandby.postgresql.pg_rejoin)); the companion filter
    C(hotstandby.postgresql.topology_rejoins) takes the same two arguments and returns these hosts. The timeline of
    the stopped directory is what C(hotstandby.postgresql.pg_replication_info) reports as
    C(data_directory.checkpoint_timeline).
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
  fenced:
    description:
      - Host name -> what was read of the marker C(failover.yml) leaves on a fenced old primary
        (C(/etc/postgresql/<version>/<cluster>/hotstandby-fenced)) - the entry of
        C(hotstandby.postgresql.pg_replication_info)'s C(files) (C(path), C(exists), C(content)), the registered
        result of C(ansible.builtin.slurp), a skipped result or an empty dict when there is none, or the marker's
        text. A C(postgres_master) host with a marker is refused, with the reason it gives.
      - Without it no host counts as fenced.
    type: dict
'''

EXAMPLES = r'''
- name: Refuse an inventory that does not match the nodes
  ansible.builtin.assert:
    that:
      - __refusals | length == 0
    fail_msg: "{{ __refusals | join(' ') }}"
  vars:
    __refusals: "{{ __infos | hotstandby.postgresql.topology_truth(__postgres_topology, fenced=__markers) }}"

- name: Note whether this standby is a former primary that site.yml rejoins
  ansible.builtin.set_fact:
    __rejoin: "{{ inventory_hostname in (__infos | hotstandby.postgresql.topology_rejoins(__postgres_topology)) }}"
'''

RETURN = r'''
_value:
  description: The reasons to refuse, one sentence each; empty when the nodes match the inventory.
  type: list
  elements: str
'''

import base64
import binascii
import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


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


def _timeline(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _former_primary(info, primary_info):
    """None when info (read 'ok') is not a stopped primary of the system of primary_info (the inventory's primary,
    read 'ok', or {}); else (True, None) when site.yml rejoins it - primary_info runs as a primary on a higher
    timeline - or (False, why), why ending the sentence of the refusal."""
    folder = info.get('data_directory') or {}
    system = _sysid(primary_info) if primary_info else None
    if info.get('connected', True) or not system or _sysid(info) != system or not folder.get('exists') \
            or folder.get('standby_signal'):
        return None
    mine, theirs = _timeline(folder.get('checkpoint_timeline')), _timeline(primary_info.get('timeline'))
    if not (primary_info.get('connected', True) and primary_info.get('role') == 'primary'):
        return False, 'which does not run as a primary'
    if mine is None:
        return False, 'while the timeline of this data directory is unknown (pg_controldata could not read it)'
    if theirs is None:
        return False, 'whose timeline is unknown'
    if theirs > mine:
        return True, None
    return False, 'which runs on timeline %d, not on a higher one (no promotion came after it)' % theirs


def _check_args(name, infos, topology):
    if not isinstance(infos, Mapping) or not isinstance(topology, Mapping) or 'hosts' not in topology:
        raise AnsibleFilterError('%s: give it the results of pg_replication_info per host and the '
                                 'result of the hotstandby.postgresql.topology filter' % name)


def _primary_info(infos, topology):
    """What the inventory's primary said, when it could be read; else {}."""
    primary = topology.get('primary')
    state, info = _read(infos.get(primary)) if primary else ('none', {})
    return info if state == 'ok' else {}


def topology_rejoins(infos, topology):
    """The postgres_standby hosts whose stopped data directory is a former primary that site.yml rejoins: of the
    inventory's system, on a lower timeline than the inventory's primary, which runs as a primary."""
    _check_args('topology_rejoins', infos, topology)
    primary_info = _primary_info(infos, topology)
    rejoins = []
    for host in topology.get('standbys') or []:
        state, info = _read(infos.get(host))
        if state == 'ok' and (_former_primary(info, primary_info) or (False,))[0]:
            rejoins.append(host)
    return rejoins


def _marker_text(marker):
    """What a fenced marker says (a pg_replication_info files entry, a slurp result, or its text) in one line; None
    when there is no marker.

    failover.yml writes JSON with reason, at (when) and new_primary; any other text is taken as it is.
    """
    if isinstance(marker, Mapping) and 'exists' in marker:
        marker = marker.get('content') if marker['exists'] else None
        if marker is None:
            return None
    elif isinstance(marker, Mapping):
        if marker.get('skipped') or marker.get('failed') or 'content' not in marker:
            return None
        try:
            marker = base64.b64decode(marker['content'])
        except (TypeError, ValueError, binascii.Error):
            return 'its marker could not be decoded'
    if marker is None:
        return None
    text = to_text(marker, errors='surrogate_or_replace')
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, Mapping) and data.get('reason'):
        text = '%s%s%s' % (data['reason'], ', at %s' % data['at'] if data.get('at') else '',
                           ', new primary %s' % data['new_primary'] if data.get('new_primary') else '')
    text = ' '.join(text.split())
    if not text:
        return 'its marker gives no reason'
    return text if len(text) <= 400 else text[:397] + '...'


def topology_truth(infos, topology, fenced=None):
    """The reasons to refuse a site.yml run (see DOCUMENTATION)."""
    _check_args('topology_truth', infos, topology)
    if fenced is not None and not isinstance(fenced, Mapping):
        raise AnsibleFilterError('topology_truth: fenced must be a dict, host name -> what was read of its '
                                 'fenced marker')
    primary = topology.get('primary')
    standbys = list(topology.get('standbys') or [])
    hosts = ([primary] if primary else []) + standbys
    read = dict((host, _read(infos.get(host))) for host in hosts)
    refusals = []

    marker = (fenced or {}).get(primary) if primary else None
    reason = _marker_text(marker)
    if reason:
        path = (marker.get('source') or marker.get('path')) if isinstance(marker, Mapping) else None
        refusals.append('%s was fenced by failover.yml (%s): it is no longer the primary. Nothing is changed: put '
                        'the new primary in postgres_master and %s in postgres_standby, and site.yml rejoins it as '
                        'a standby%s.'
                        % (primary, reason, primary,
                           ' (if %s is to be the primary after all, remove %s first)' % (primary, path)
                           if path else ''))

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

    primary_info = _primary_info(infos, topology)
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
        else:
            former = _former_primary(info, primary_info)
            if former and not former[0]:
                mine = _timeline(folder.get('checkpoint_timeline'))
                refusals.append('%s is in postgres_standby but its stopped data directory %s (timeline %s) is a '
                                'primary of the same system as %s, %s: a former primary whose history may have '
                                'diverged from the primary\'s. site.yml rejoins a former primary only to a '
                                'primary that runs on a higher timeline (after failover.yml, or a promotion), '
                                'and never moves it aside by itself, whatever postgres_standby_existing_data '
                                'says: keep it, or move it aside yourself (mv %s %s.diverged) and run again to '
                                'clone it.'
                                % (host, folder.get('path'), 'unknown' if mine is None else mine, primary,
                                   former[1], folder.get('path'), folder.get('path')))
    return refusals


class FilterModule(object):
    """hotstandby.postgresql: the nodes' real state against the inventory."""

    def filters(self):
        return {'topology_truth': topology_truth, 'topology_rejoins': topology_rejoins}
