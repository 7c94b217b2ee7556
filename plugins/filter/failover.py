# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
name: failover_plan
short_description: Decide whether a failover from a lost primary may start, choose the standby to promote, and plan it
version_added: 0.1.0
description:
  - Takes what C(hotstandby.postgresql.pg_replication_info) returned on every node that answered (a node that did
    not answer, or is missing or skipped, counts as unreachable, never as healthy), the result of the
    C(hotstandby.postgresql.topology) filter for the current inventory and, optionally, the standby to promote, and
    returns the reasons to refuse (one sentence each, naming the host and what to do), or the plan - the standby
    to promote and why, how the old primary is fenced, the standbys to re-point, what streams from the new primary
    and what to change in the inventory.
  - Refused, in this order - errors of the topology; two running primaries of the cluster (split brain); an
    inventory primary that runs as a primary (not a failover - use the switchover), or as a standby; an
    inventory primary that may still be alive - a standby whose WAL receiver still streams from it, or a primary
    host that answers but whose state could not be read (unless O(force)); a named target that is not a direct
    standby of the inventory or cannot take over (unreachable, unreadable, stopped, not in recovery, another system
    identifier, unknown WAL position); no standby that can take over; standbys that could take over on different
    timelines; a named target that has received less WAL than the best candidate (unless O(force)); paused replay
    on the new primary; a synchronous count above the standbys that stream from the new primary right after the
    failover.
  - The candidates are the standbys of the inventory; one may take over when it is reachable, running, in
    recovery, a direct standby of the old primary, and of the same system identifier as the old primary (or, when
    that is unknown, as most nodes). Without a target the one that received the most WAL is chosen (the greater of
    its received and replayed positions); on a tie a synchronous candidate, in C(synchronous_standby_names)
    priority order, then the first in inventory order.
  - When a standby of the inventory already is a running primary of the cluster (a failover that was done), the
    result has RV(_value.already_done) V(true) and the inventory change to make, unless another target is named.
positional: _input, topology, target
options:
  _input:
    description:
      - Host name -> the registered result of C(hotstandby.postgresql.pg_replication_info), or a result with
        C(unreachable) V(true). A missing or skipped entry (left out by C(--limit)) counts as unreachable.
    type: dict
    required: true
  topology:
    description: The result of C(hotstandby.postgresql.topology) for the current inventory; its primary is the lost one.
    type: dict
    required: true
  target:
    description: The standby to promote, normally C(postgres_failover_to). Empty or V(null) chooses the best one.
    type: str
    default: ''
  force:
    description:
      - C(postgres_failover_force). Fails over although a standby still streams from the old primary or the old
        primary's host answers but its state cannot be read, and promotes a named target that received less WAL than
        the best candidate. Each is reported in RV(_value.warnings). A running primary is never overridden.
    type: bool
    default: false
  rewind_user:
    description: The role the old primary's pg_rewind logs in as on the new primary, for RV(_value.rewind_source). V(null) leaves it to libpq.
    type: str
    default: null
  ports:
    description: The port of each node by host name (normally its C(postgres_port)); 5432 for a node not named.
    type: dict
    default: {}
  synchronous_mode:
    description: C(postgres_synchronous_mode) - V(async), V(sync) or V(quorum).
    type: str
    default: async
  synchronous_count:
    description: C(postgres_synchronous_count); refused when it exceeds the standbys that stream from the new primary right after the failover.
    type: int
    default: 1
  tls:
    description: C(postgres_tls) - the new pg_hba lines are C(hostssl) lines when true, else C(host) lines.
    type: bool
    default: false
  facts:
    description:
      - Each node's C(ansible_facts) by host name. The old primary's pg_hba lines on the new primary use its own
        default IPv4 address from them; without them (it did not answer) the topology's address, else the C(host)
        of a standby's C(primary_conninfo) when that is an IP address.
    type: dict
    default: {}
'''

EXAMPLES = r'''
- name: Plan the failover
  ansible.builtin.set_fact:
    __failover: >-
      {{ __infos | hotstandby.postgresql.failover_plan(__postgres_topology, postgres_failover_to | default(''),
                                                       force=postgres_failover_force | default(false) | bool) }}

- name: Refuse what is not safe
  ansible.builtin.assert:
    that:
      - __failover.refusals | length == 0
    fail_msg: "{{ __failover.refusals | join(' ') }}"
'''

RETURN = r'''
_value:
  description: The verdict and the plan.
  type: dict
  contains:
    refusals:
      description: The reasons not to fail over, one sentence each, naming the host and what to do. Empty means go.
      type: list
      elements: str
    warnings:
      description: What O(force) overrides, loudly, and other things to know (a node taken as unreachable).
      type: list
      elements: str
    already_done:
      description: Whether a standby of the inventory already is the running primary of the cluster.
      type: bool
    message:
      description: One paragraph for a person - what will be done, why it is refused, or what was done already.
      type: str
    old_primary:
      description: The inventory's primary, the one that is lost.
      type: str
    new_primary:
      description: The standby to promote (the running primary when RV(_value.already_done)), V(null) when there is none.
      type: str
    old_primary_state:
      description: V(unreachable) (no result - it did not answer or was left out), V(unreadable) (it answered but its
        state could not be read), V(stopped) (it answered, PostgreSQL is down), V(running_primary) or V(running_standby).
      type: str
    fence:
      description: How the old primary is fenced - V(mask) (its host answers - the service is stopped and masked) or
        V(guard) (it does not answer - the start-time guard on it must refuse when it comes back).
      type: str
    candidates:
      description: Every standby of the inventory, in inventory order, each with C(host), C(reachable), C(state) (as
        RV(_value.old_primary_state)), C(receive_lsn), C(replay_lsn), C(position) (the greater of the two, V(X/Y)),
        C(behind_bytes) (against the best candidate), C(synchronous_candidate), C(eligible) and C(reason) (why not
        eligible, or V('')).
      type: list
      elements: dict
    candidates_text:
      description: RV(_value.candidates) as one line for the play's output - each standby's received and replayed WAL,
        the bytes it is behind the best one, and why it cannot take over.
      type: str
    choice:
      description: Why RV(_value.new_primary) was chosen, one sentence (V('') when none is).
      type: str
    followers:
      description: The other running direct standbys of the old primary, re-pointed to the new one, sorted, each with
        C(host), C(slot), C(application_name) and C(address).
      type: list
      elements: dict
    unreachable_standbys:
      description: The direct standbys of the old primary the failover does not re-point (unreachable, unreadable,
        not running, or ahead of the new primary); site.yml with the changed inventory re-points or rejoins them.
      type: list
      elements: str
    untouched:
      description: The cascading standbys that keep their upstream, sorted.
      type: list
      elements: str
    new_downstream:
      description: What streams from the new primary - the old primary (once site.yml rejoins it), the followers and the
        new primary's own downstream standbys - each with C(host), C(slot), C(application_name) and C(address).
      type: list
      elements: dict
    target_hba_rules:
      description: C(community.postgresql.postgresql_pg_hba) rules for the new primary - a replication line per entry of
        RV(_value.new_downstream) with an address, and the old primary's line to database C(postgres) for pg_rewind.
      type: list
      elements: dict
    synchronous_standby_names:
      description: The new primary's C(synchronous_standby_names) over the standbys that stream from it right after
        the failover (not the fenced old primary), V('') in async mode.
      type: str
    inventory_change:
      description: What to change in the inventory after the failover, one sentence each.
      type: list
      elements: str
    conninfo:
      description: libpq connection string over every node, the new primary first,
        V(host=a,b,c port=p,p,p dbname=postgres target_session_attrs=read-write). No user, no password.
      type: str
    rewind_source:
      description: The connection string the old primary's pg_rewind uses to reach the new primary, without a password.
      type: str
'''

import ipaddress

from collections import Counter
from collections.abc import Mapping

from jinja2 import Undefined

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.hotstandby.postgresql.plugins.filter.status import read_write_conninfo
from ansible_collections.hotstandby.postgresql.plugins.filter.switchover import (
    DEFAULT_PORT, STREAMING, downstream_entry, handover_hba_rules, handover_inventory_change, node_ports,
    old_primary_entry, rewind_conninfo, synchronous_names, whole)
from ansible_collections.hotstandby.postgresql.plugins.filter.truth import _sysid
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import parse_conninfo
from ansible_collections.hotstandby.postgresql.plugins.module_utils.replication import int_to_lsn, lsn_to_int

CALLER = 'failover_plan'
FORCE = '-e postgres_failover_force=true'


def _join(hosts):
    return ', '.join(hosts) if hosts else 'none'


def _state(info):
    """(state, info) of one registered result: unreachable, unreadable, stopped, running_primary, running_standby."""
    if not isinstance(info, Mapping) or not info or info.get('skipped') or info.get('unreachable'):
        return 'unreachable', {}
    if info.get('failed') or 'connected' not in info:
        return 'unreadable', info
    if not info.get('connected'):
        return 'stopped', info
    if info.get('role') == 'primary':
        return 'running_primary', info
    if info.get('role') == 'standby':
        return 'running_standby', info
    return 'unreadable', info


def _position(info):
    """The greater of receive_lsn and replay_lsn as a byte position; None when neither is a WAL location."""
    positions = []
    for key in ('receive_lsn', 'replay_lsn'):
        try:
            positions.append(lsn_to_int(info.get(key)))
        except ValueError:
            positions.append(None)
    known = [p for p in positions if p is not None]
    return max(known) if known else None


def _conninfo_host(info):
    """The host= of a standby's primary_conninfo when it is one IP address, else None."""
    try:
        host = parse_conninfo(info.get('primary_conninfo') or '').get('host') or ''
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def _msg(info):
    return ' '.join(str(info.get('msg') or 'no message').split())


def failover_plan(infos, topology, target='', force=False, rewind_user=None, ports=None,
                  synchronous_mode='async', synchronous_count=1, tls=False, facts=None):
    """Refusals and plan of a failover from the inventory's lost primary; see DOCUMENTATION."""
    if not isinstance(infos, Mapping) or not isinstance(topology, Mapping) or \
            not isinstance(topology.get('hosts'), Mapping):
        raise AnsibleFilterError('failover_plan: give it the results of pg_replication_info per host and the '
                                 'result of the hotstandby.postgresql.topology filter')
    if isinstance(target, Undefined) or target is None:
        target = ''
    if not isinstance(target, str):
        raise AnsibleFilterError('failover_plan: target must be a host name, got %r' % (target,))
    target = target.strip()
    if rewind_user is not None and not isinstance(rewind_user, str):
        raise AnsibleFilterError('failover_plan: rewind_user must be a role name, got %r' % (rewind_user,))
    force = boolean(force, strict=False) if force is not None else False
    port = node_ports(ports, topology['hosts'], CALLER)
    count = whole(synchronous_count, 'synchronous_count', CALLER) if synchronous_mode != 'async' else None

    nodes = topology['hosts']
    primary = topology.get('primary')
    standbys = list(topology.get('standbys') or [])
    direct = [h for h in standbys if primary and (nodes.get(h) or {}).get('upstream') == primary]
    seen = dict((h, _state(infos.get(h))) for h in ([primary] if primary else []) + standbys)
    state = dict((h, seen[h][0]) for h in seen)
    info = dict((h, seen[h][1]) for h in seen)
    warnings = []
    refusals = ['INVENTORY: %s' % error for error in topology.get('errors') or []]

    # the cluster: the old primary's system identifier, or the one most nodes have
    system = _sysid(info[primary]) if primary and info[primary] else None
    if not system:
        common = Counter(_sysid(info[h]) for h in standbys if info[h] and _sysid(info[h])).most_common(2)
        system = common[0][0] if common and (len(common) == 1 or common[0][1] > common[1][1]) else None

    # the old primary's address: the topology's, else the host of a direct standby's primary_conninfo
    fallback = None
    if primary and not (nodes.get(primary) or {}).get('address'):
        for h in ([target] if target in direct else []) + direct:
            fallback = fallback or (_conninfo_host(info[h]) if state[h] == 'running_standby' else None)
    primary_names = set(n for n in (primary, (nodes.get(primary) or {}).get('address'), fallback) if n)
    standby_names = set(n for h in standbys for n in (h, (nodes.get(h) or {}).get('address')) if n)

    # every standby as a candidate
    sync = list(topology.get('synchronous_candidates') or []) if synchronous_mode != 'async' else []
    candidates, where = [], {}
    for h in standbys:
        node = nodes.get(h) or {}
        best = _position(info[h]) if state[h] == 'running_standby' else None
        reason = ''
        if state[h] == 'unreachable':
            reason = 'it did not answer (unreachable, or left out by --limit)'
        elif state[h] == 'unreadable':
            reason = 'its state could not be read (%s)' % _msg(info[h])
        elif state[h] == 'stopped':
            reason = 'PostgreSQL does not run there'
        elif state[h] == 'running_primary':
            reason = 'it is not in recovery (it runs as a primary)'
        elif h not in direct:
            reason = ('it is a cascading standby (it streams from %s)' % node['upstream'] if node.get('upstream')
                      else 'its upstream is unknown (see the inventory problems)')
        elif _sysid(info[h]) != system or not system:
            reason = 'its system identifier is %s, the cluster\'s is %s' % (_sysid(info[h]), system or 'unknown')
        elif best is None:
            reason = 'its WAL position is unknown (receive_lsn %s, replay_lsn %s)' % (
                info[h].get('receive_lsn'), info[h].get('replay_lsn'))
        where[h] = best
        candidates.append(dict(host=h, reachable=state[h] != 'unreachable', state=state[h],
                               receive_lsn=info[h].get('receive_lsn'), replay_lsn=info[h].get('replay_lsn'),
                               position=int_to_lsn(best), behind_bytes=None, synchronous_candidate=h in sync,
                               eligible=not reason, reason=reason))
    eligible = [c['host'] for c in candidates if c['eligible']]
    ranked = sorted(eligible, key=lambda h: (-where[h], h not in sync, sync.index(h) if h in sync else 0,
                                             standbys.index(h)))
    best = ranked[0] if ranked else None
    for c in candidates:
        if best is not None and where[c['host']] is not None:
            c['behind_bytes'] = where[best] - where[c['host']]

    # a standby of the inventory that runs as the cluster's primary: the failover is done, or a split brain
    promoted = [h for h in standbys if state[h] == 'running_primary' and system and _sysid(info[h]) == system]
    p_state = state[primary] if primary else 'unreachable'
    if len(promoted) + (p_state == 'running_primary') > 1:
        group = ([primary] if p_state == 'running_primary' else []) + promoted
        refusals.append('SPLIT BRAIN: %s are all running primaries of the same system %s (timelines %s): each may '
                        'take writes. Nothing is changed. Decide which one is the primary, stop PostgreSQL on the '
                        'other(s) and keep their data, then fix the inventory and run status.yml.'
                        % (' and '.join(group), system, ', '.join('%s: %s' % (h, info[h].get('timeline'))
                                                                  for h in group)))
    new = promoted[0] if len(promoted) == 1 and p_state != 'running_primary' else None
    if new is None:
        new = target if target and target in direct else (best if not target else None)

    # the plan (also with refusals: the caller may show it)
    below = sorted((nodes.get(new) or {}).get('downstream') or []) if new else []
    followers = [downstream_entry(nodes, h) for h in sorted(eligible)
                 if h != new and new in where and where[new] is not None and where[h] <= where[new]]
    following = set(f['host'] for f in followers)
    unreachable = [h for h in direct if h != new and h not in following]
    untouched = sorted(h for h in standbys if h != new and h not in direct and h not in below)
    new_downstream = ([old_primary_entry(nodes, primary, facts, fallback)] if primary and new else []) + \
        followers + [downstream_entry(nodes, h) for h in below]
    streaming = [h['application_name'] for h in new_downstream if h['host'] != primary]
    view = dict((h, dict(nodes.get(h) or {}, role='primary' if h == new else 'standby')) for h in
                ([new] if new else []) + [h for h in nodes if h != new])
    if primary in view and not view[primary].get('address'):
        view[primary]['address'] = fallback
    plan = dict(refusals=refusals, warnings=warnings, already_done=False, message='', old_primary=primary,
                new_primary=new, old_primary_state=p_state, fence='guard' if p_state == 'unreachable' else 'mask',
                candidates=candidates, choice='', followers=followers, unreachable_standbys=unreachable,
                untouched=untouched, new_downstream=new_downstream,
                target_hba_rules=handover_hba_rules(new_downstream, primary, tls),
                synchronous_standby_names=synchronous_names(synchronous_mode, count, streaming),
                inventory_change=handover_inventory_change(nodes, primary, new, below) if new and primary else [],
                conninfo=read_write_conninfo({'hosts': view}, port, DEFAULT_PORT),
                rewind_source=rewind_conninfo(nodes, new, port, rewind_user) if new else None)

    raw = infos.get(primary) if primary else None
    if primary and p_state == 'unreachable' and not (isinstance(raw, Mapping) and raw.get('unreachable')):
        warnings.append('%s gave no result (skipped, or left out by --limit?): it is taken as unreachable.' % primary)

    # 1. a failover that is done
    if new in promoted and not refusals:
        if target and target != new:
            refusals.append('%s already is the running primary of the cluster (timeline %s), but '
                            'postgres_failover_to names %s: nothing is changed. Make %s the primary of the '
                            'inventory, or run switchover.yml to move the primary to %s on purpose.'
                            % (new, info[new].get('timeline'), target, new, target))
        else:
            lagging = [h for h in standbys if h != new and not (
                (info[h].get('wal_receiver') or {}).get('status') == STREAMING and
                (info[h].get('wal_receiver') or {}).get('sender_host') in (new, (nodes.get(new) or {}).get('address')))]
            plan.update(already_done=True, candidates=candidates,
                        choice='%s already is the running primary.' % new,
                        message='The cluster already has its primary %s (timeline %s): there is nothing to fail '
                                'over, nothing is changed.%s The inventory still says %s is the primary; change '
                                'it, then run site.yml: %s'
                                % (new, info[new].get('timeline'),
                                   ' Not streaming from it yet: %s (site.yml with the changed inventory re-points '
                                   'or rejoins them).' % _join(lagging) if lagging else '',
                                   primary, ' '.join(plan['inventory_change'])))
            return plan

    # 2. the old primary itself
    if p_state == 'running_primary' and not promoted:
        refusals.append('%s is a running primary: this is not a failover; use playbooks/switchover.yml '
                        '(hotstandby.postgresql.switchover) to move the primary on purpose.' % primary)
    elif p_state == 'running_standby':
        upstream = (info[primary].get('wal_receiver') or {}).get('sender_host')
        refusals.append('%s, the primary of the inventory, runs as a standby (in recovery%s): the inventory is '
                        'stale. Run status.yml to see which node is the primary, put it in postgres_master, and '
                        'run again.' % (primary, ', streaming from %s' % upstream if upstream else ''))

    # 3. an old primary that may be alive
    if p_state in ('unreachable', 'unreadable', 'stopped'):
        evidence = []
        for h in standbys:
            receiver = (info[h].get('wal_receiver') or {}) if state[h] == 'running_standby' else {}
            sender = receiver.get('sender_host')
            from_primary = sender in primary_names or (h in direct and sender not in standby_names)
            if receiver.get('status') == STREAMING and from_primary:
                evidence.append('%s (from %s)' % (h, sender or 'an unknown host'))
        if evidence:
            seen_as = {'unreachable': 'does not answer', 'unreadable': 'cannot be read',
                       'stopped': 'runs no PostgreSQL'}[p_state]
            text = ('%s %s, but the WAL receiver of %s still streams: a primary may still run there (or behind '
                    'its address)' % (primary, seen_as, ', '.join(evidence)))
            if force:
                warnings.append('FORCED: %s. If it is still running there will be TWO PRIMARIES taking writes: the '
                                'start-time guard and the mask cannot stop a primary that is still running. Stop it '
                                'yourself now.' % text)
            else:
                refusals.append('%s: promoting a standby now may make two primaries. Make sure %s is down (console, '
                                'hypervisor) and stop it, then run again; %s fails over anyway.'
                                % (text, primary, FORCE))
        if p_state == 'unreadable':
            text = ('%s answers, but its state could not be read (%s): PostgreSQL may still run there as a primary'
                    % (primary, _msg(info[primary])))
            if force:
                warnings.append('FORCED: %s; its service is stopped and masked before the promotion.' % text)
            else:
                refusals.append('%s. Make it readable, or stop PostgreSQL on %s, and run again; %s fails over '
                                'anyway (its service is then stopped and masked).' % (text, primary, FORCE))

    # 4. the named target
    choices = _join(eligible)
    if target:
        entry = next((c for c in candidates if c['host'] == target), None)
        if target == primary:
            refusals.append('postgres_failover_to is %s, the primary that is lost; pass one of the standbys that can '
                            'take over (%s), or leave it out to promote the most advanced.' % (target, choices))
        elif target not in standbys:
            refusals.append("postgres_failover_to is '%s', which is not a standby of the inventory "
                            '(postgres_standby: %s); pass one that can take over (%s), or leave it out to promote '
                            'the most advanced.' % (target, _join(standbys), choices))
        elif target not in direct:
            refusals.append('%s is a cascading standby: it streams from %s, not from the primary %s, and has no '
                            'more WAL than its upstream. Pass one of %s, or leave postgres_failover_to out.'
                            % (target, (nodes.get(target) or {}).get('upstream') or 'an unknown upstream', primary,
                               choices))
        elif not entry['eligible']:
            refusals.append('%s cannot take over: %s. Make it a running standby (run status.yml to see why), or '
                            'pass another one (%s), or leave postgres_failover_to out.'
                            % (target, entry['reason'], _join([h for h in eligible if h != target])))

    # 5. nobody to promote, or candidates that disagree
    if not eligible and not target:
        refusals.append('No reachable standby can take over from %s: %s. Make a direct standby of %s reachable and '
                        'running (run status.yml), and run again.'
                        % (primary, '; '.join('%s: %s' % (c['host'], c['reason']) for c in candidates) or
                           'the inventory has none', primary))
    # Only timelines their WAL receivers reported are current: without one (the primary is gone) a standby
    # reports the timeline of its last restart point, which may be older than the WAL it replayed.
    timelines = dict((h, info[h].get('timeline')) for h in eligible
                     if info[h].get('timeline_source') == 'wal_receiver')
    if len(set(timelines.values())) > 1:
        refusals.append('The standbys that could take over are on different timelines (%s): one of them follows '
                        'another history. Nothing is changed; run status.yml to see why.'
                        % ', '.join('%s: %s' % (h, timelines[h]) for h in sorted(timelines)))

    # 6. a named target behind the best one
    if target and target in eligible and best != target and where[target] < where[best]:
        lost = where[best] - where[target]
        text = ('%s has received %d bytes less WAL than %s (%s against %s)'
                % (target, lost, best, int_to_lsn(where[target]), int_to_lsn(where[best])))
        if force:
            warnings.append('FORCED: %s: the commits in those bytes, which only %s has, ARE LOST. %s is not '
                            're-pointed: site.yml with the changed inventory rejoins it.' % (text, best, best))
        else:
            refusals.append('%s: promoting it loses the commits only %s has. Leave postgres_failover_to out to '
                            'promote %s, or pass %s to accept the loss.' % (text, best, best, FORCE))

    # 6b. acknowledged commits a standby that did not answer (or does not run) may hold alone: with FIRST/ANY n, every
    # acknowledged commit is on n standbys; unless fewer than n of them are unknown, the most advanced
    # standby that answered may lack some
    unknown = [c['host'] for c in candidates if c['host'] in direct and c['host'] != new
               and c['state'] in ('unreachable', 'unreadable', 'stopped')]
    if new and count is not None and unknown:
        named = [h for h in unknown if h in sync]
        if len(named) >= count:
            text = ('In %s mode every acknowledged commit is on %d synchronous standby(s), and %s did not answer: '
                    'an acknowledged commit may be only there, and promoting %s may lose it'
                    % (synchronous_mode, count, _join(named), new))
            if force:
                warnings.append('FORCED: %s.' % text)
            else:
                refusals.append('%s. Make %s reachable and run again, or pass %s to accept that.'
                                % (text, _join(named), FORCE))
    elif new and unknown:
        which = 'it' if len(unknown) == 1 else 'one of them'
        warnings.append('%s did not answer, so %s may have received more WAL than %s (async mode: '
                        'commits did not wait for a standby).' % (_join(unknown), which, new))
    if new and p_state == 'unreachable' and not old_primary_entry(nodes, primary, facts, fallback).get('address'):
        warnings.append('The address of %s is not known (no facts, no IP address in the standbys\' '
                        'primary_conninfo): %s gets no pg_hba line for it, so the start-time guard on %s cannot ask '
                        '%s when it comes back, and starts it as a primary unless postgres_fence_strict is true. '
                        'Keep %s down until site.yml with the changed inventory has rejoined it.'
                        % (primary, new, primary, new, primary))

    # 7. what the new primary needs
    if new and new in eligible and info[new].get('replay_paused'):
        refusals.append('Replay is paused on %s (%s): it would not replay what it received before its promotion. '
                        'Resume it (SELECT pg_wal_replay_resume()) and run again.'
                        % (new, info[new].get('replay_pause_state') or 'paused'))
    if new and count is not None and count > len(streaming):
        # A failover is for writes to go on: commits wait for the standbys that are there, never only for the
        # lost node; site.yml with the changed inventory sets the configured count again once it rejoined.
        plan['synchronous_standby_names'] = synchronous_names(synchronous_mode, len(streaming), streaming) \
            if streaming else ''
        warnings.append('postgres_synchronous_mode is %s with postgres_synchronous_count %d, but right after the '
                        'failover %s: %s. site.yml with the changed inventory sets the count again once %s '
                        'has rejoined.'
                        % (synchronous_mode, count,
                           '%d standby(s) stream from %s (%s)' % (len(streaming), new, _join(streaming))
                           if streaming else 'no standby streams from %s' % new,
                           'commits on %s wait for %d of them' % (new, len(streaming)) if streaming
                           else 'commits on %s do not wait for a synchronous standby (synchronous_standby_names '
                                "is '') until then" % new, primary))

    # why this one
    if new and new in eligible:
        tied = [h for h in ranked if where[h] == where[new]]
        at = int_to_lsn(where[new])
        if target and where[new] < where[best]:
            plan['choice'] = ('%s is promoted as named (postgres_failover_to), although %s has received %d bytes more '
                              'WAL (forced).' % (new, best, where[best] - where[new]))
        elif target:
            plan['choice'] = ('%s is promoted as named (postgres_failover_to); it has received the most WAL (%s).'
                              % (new, at))
        elif len(ranked) == 1:
            plan['choice'] = '%s is the only standby that can take over; it has received WAL up to %s.' % (new, at)
        elif len(tied) == 1:
            second = ranked[1]
            plan['choice'] = ('%s has received the most WAL (%s; next is %s, %d bytes behind).'
                              % (new, at, second, where[new] - where[second]))
        elif new in sync and any(h not in sync for h in tied):
            plan['choice'] = ('%s have received the same WAL (%s); %s is chosen as a synchronous candidate, the first '
                              'in synchronous_standby_names priority order.' % (_join(tied), at, new))
        elif new in sync:
            plan['choice'] = ('%s have received the same WAL (%s); %s is chosen as the first in '
                              'synchronous_standby_names priority order.' % (_join(tied), at, new))
        else:
            plan['choice'] = ('%s have received the same WAL (%s); %s is chosen as the first in inventory order.'
                              % (_join(tied), at, new))

    if refusals:
        plan['message'] = 'No failover: %d reason(s) to refuse; nothing is changed.' % len(refusals)
        return plan
    fence = ({'unreachable': '%s does not answer and is taken as lost: when it comes back, the start-time guard on '
                             'it refuses to start it as a primary' % primary,
              'stopped': '%s answers but runs no PostgreSQL: its service is stopped and masked first' % primary,
              'unreadable': '%s answers but cannot be read: its service is stopped and masked first' % primary}
             [p_state])
    parts = ['%s takes over from %s. %s.' % (new, primary, fence)]
    if followers:
        parts.append('%s then stream from %s.' % (_join([f['host'] for f in followers]), new))
    if unreachable:
        parts.append('Not re-pointed now: %s; site.yml with the changed inventory re-points them.'
                     % '; '.join('%s (%s)' % (h, next(c['reason'] for c in candidates if c['host'] == h) or
                                              'ahead of %s' % new) for h in unreachable))
    if untouched:
        parts.append('Cascading standbys keep their upstream: %s.' % _join(untouched))
    parts.append('%s gets a slot on %s that keeps WAL for it until site.yml with the changed inventory rejoins it '
                 'as a standby (drop the slot if it is not coming back).' % (primary, new))
    plan['message'] = ' '.join(parts)
    plan['candidates_text'] = candidates_text(candidates)
    return plan


def candidates_text(candidates):
    """One line per candidate: its received and replayed WAL, how far it is behind the best, and why not."""
    lines = []
    for c in candidates:
        line = '%s: received %s, replayed %s' % (c['host'], c['receive_lsn'] or '-', c['replay_lsn'] or '-')
        if c['behind_bytes']:
            line += ', %d bytes behind' % c['behind_bytes']
        if c['synchronous_candidate']:
            line += ', a synchronous candidate'
        lines.append(line + ('' if c['eligible'] else ' - cannot take over: %s' % c['reason']))
    return 'Candidates: ' + '; '.join(lines) + '.' if lines else 'No candidates.'


class FilterModule(object):
    """hotstandby.postgresql: failover from a lost primary."""

    def filters(self):
        return {'failover_plan': failover_plan}
