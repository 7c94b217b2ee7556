# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
name: switchover_plan
short_description: Decide whether a planned switchover to a standby may start, and plan it
version_added: 0.1.0
description:
  - Takes what C(hotstandby.postgresql.pg_replication_info) returned on every node, the result of the
    C(hotstandby.postgresql.topology) filter for the current inventory and the standby that is to become the
    primary, and returns the reasons to refuse (one sentence each, naming the host and the fix), or the plan - the
    standbys to re-point, the ones left alone, what streams from the new primary and what to change in the inventory.
  - Refused, in this order - errors of the topology; no target; a target that is not a standby of the inventory;
    a cascading target; a node without a usable result (a switchover needs every node); an inventory primary that
    is not a running primary; a target that is not a running standby of the primary's system and timeline; a target
    that does not stream from the primary; paused replay; replay lag above O(max_lag_bytes); a primary with neither
    C(wal_log_hints) nor data checksums (it is the node pg_rewind rewinds); a target without enough
    C(max_wal_senders) or C(max_replication_slots) for the standbys that will stream from it; a node that will
    stream from the target (the old primary, the followers and the target's own downstream standbys) with one of
    C(max_connections), C(max_worker_processes), C(max_wal_senders), C(max_prepared_transactions) or
    C(max_locks_per_transaction) lower than on the target (a hot standby refuses to start with a lower value, or
    pauses recovery), one sentence per node and setting. They are compared from the C(hot_standby_settings) of
    C(hotstandby.postgresql.pg_replication_info); a node whose values are not known (a result without them, a node
    that did not answer) is not refused for that.
  - When the target already is a running primary and the inventory's primary streams from it (a run after a
    switchover that worked), nothing is refused and RV(_value.already_done) is V(true).
positional: _input, topology, target
options:
  _input:
    description: Host name -> the registered result of C(hotstandby.postgresql.pg_replication_info) (or a skipped result).
    type: dict
    required: true
  topology:
    description: The result of C(hotstandby.postgresql.topology) for the current inventory.
    type: dict
    required: true
  target:
    description: The standby to promote, normally C(postgres_switchover_to). Empty or V(null) is refused.
    type: str
    required: true
  max_lag_bytes:
    description: The most bytes the target's replay may be behind the primary (a string holding a number is accepted). V(null) does not check.
    type: raw
    default: null
  rewind_user:
    description: The role the old primary's pg_rewind logs in as on the new primary, for RV(_value.rewind_source). V(null) leaves it to libpq.
    type: str
    default: null
  ports:
    description: The port of each node by host name (normally its C(postgres_port)); 5432 for a node not named.
    type: dict
    default: {}
  synchronous_mode:
    description: C(postgres_synchronous_mode) - V(async), V(sync) or V(quorum), for RV(_value.synchronous_standby_names).
    type: str
    default: async
  synchronous_count:
    description: C(postgres_synchronous_count); refused when it exceeds the standbys that will stream from the target.
    type: int
    default: 1
  tls:
    description: C(postgres_tls) - the new pg_hba lines are C(hostssl) lines when true, else C(host) lines.
    type: bool
    default: false
  facts:
    description: Each node's C(ansible_facts) by host name. The old primary's pg_hba lines on the target use its own
      default IPv4 address from them, since the topology's address of the primary is C(postgres_primary_address)
      when that is set.
    type: dict
    default: {}
'''

EXAMPLES = r'''
- name: Plan the switchover
  ansible.builtin.set_fact:
    __switchover: >-
      {{ __infos | hotstandby.postgresql.switchover_plan(__postgres_topology, postgres_switchover_to | default(''),
                                                         max_lag_bytes=postgres_standby_max_lag_bytes) }}

- name: Refuse what is not safe
  ansible.builtin.assert:
    that:
      - __switchover.refusals | length == 0
    fail_msg: "{{ __switchover.refusals | join(' ') }}"
'''

RETURN = r'''
_value:
  description: The verdict and the plan.
  type: dict
  contains:
    refusals:
      description: The reasons not to switch over, one sentence each, naming the host and the fix. Empty means go.
      type: list
      elements: str
    already_done:
      description: Whether the target already is the primary and the inventory's primary streams from it.
      type: bool
    message:
      description: One sentence for a person - the plan, why it is refused or why there is nothing to do.
      type: str
    new_primary:
      description: The target (V(null) when none is given).
      type: str
    old_primary:
      description: The inventory's primary.
      type: str
    followers:
      description: The standbys that streamed from the old primary and are re-pointed to the new one, sorted, each
        with C(host), C(slot), C(application_name) and C(address).
      type: list
      elements: dict
    untouched:
      description: The standbys that cascade from another standby than the target and keep their upstream, sorted.
      type: list
      elements: str
    new_downstream:
      description: What streams from the new primary - the old primary, the followers and the target's own
        downstream standbys - each with C(host), C(slot), C(application_name) and C(address).
      type: list
      elements: dict
    inventory_change:
      description: What to change in the inventory after the switchover, one sentence each.
      type: list
      elements: str
    conninfo:
      description: libpq connection string over every node, the new primary first,
        V(host=a,b,c port=p,p,p target_session_attrs=read-write). No user, no password.
      type: str
    rewind_source:
      description: The connection string the old primary's pg_rewind uses to reach the new primary, without a password.
      type: str
    synchronous_standby_names:
      description: The new primary's C(synchronous_standby_names), built from the standbys that will stream from it
        (V('') in async mode), set on the target before its promotion.
      type: str
    target_hba_rules:
      description: C(community.postgresql.postgresql_pg_hba) rules for the target - a replication line per standby that
        will stream from it, and the old primary's line to database C(postgres) for pg_rewind.
      type: list
      elements: dict
'''

from collections.abc import Mapping

from jinja2 import Undefined

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.hotstandby.postgresql.plugins.filter.topology import _single_address, default_slot_name
from ansible_collections.hotstandby.postgresql.plugins.filter.truth import _read

STREAMING = 'streaming'
DEFAULT_PORT = 5432
# What a hot standby must have at least as high as its primary (PostgreSQL's Hot Standby page, Administrator's
# Overview), as pg_replication_info's hot_standby_settings names them.
HOT_STANDBY_SETTINGS = ('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions',
                        'max_locks_per_transaction')


# -- shared with the failover plan (plugins/filter/failover.py) ----------------------------------------------------

def whole(value, name, caller='switchover_plan'):
    """value as an int (a string holding a whole number too); AnsibleFilterError naming caller and name otherwise."""
    if isinstance(value, bool):
        raise AnsibleFilterError('%s: %s must be a whole number, got %r' % (caller, name, value))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('%s: %s must be a whole number, got %r' % (caller, name, value))


def node_ports(ports, hosts, caller='switchover_plan'):
    """The port of each host: ports (host -> port, normally postgres_port) or DEFAULT_PORT."""
    if ports is not None and not isinstance(ports, Mapping):
        raise AnsibleFilterError('%s: ports must map host names to ports, got %r' % (caller, ports))
    return dict((h, whole((ports or {}).get(h) or DEFAULT_PORT, 'the port of %s' % h, caller)) for h in hosts)


def _on(value):
    return boolean(value, strict=False) if value is not None else False


def _streaming_row(info, application_name):
    """The primary's (or any node's) streaming pg_stat_replication row for application_name, or None."""
    for row in info.get('replication') or []:
        if isinstance(row, Mapping) and row.get('application_name') == application_name and row.get('state') == STREAMING:
            return row
    return None


def _running(read, host, role):
    state, info = read.get(host, ('none', {}))
    return state == 'ok' and info.get('connected', True) and info.get('role') == role


def downstream_entry(nodes, host, slot=None):
    """A standby that will stream from the new primary: host, slot, application_name, address (from the topology)."""
    node = nodes.get(host) or {}
    return {'host': host, 'slot': slot or node.get('slot'), 'application_name': node.get('application_name') or host,
            'address': node.get('address')}


def old_primary_entry(nodes, primary, facts, fallback_address=None):
    """The old primary as a standby of the new one. Its slot is named as topology names a standby's from its
    inventory name. It connects from its own address: the topology's address of the primary is
    postgres_primary_address when that is set (a virtual IP or a DNS name), so its default IPv4 address from facts
    comes first; fallback_address is used when neither is known."""
    entry = downstream_entry(nodes, primary, default_slot_name(primary))
    own = ((facts or {}).get(primary) or {}).get('default_ipv4') if isinstance(facts, Mapping) else None
    if isinstance(own, Mapping) and own.get('address'):
        entry['address'] = own['address']
    elif not entry['address'] and fallback_address:
        entry['address'] = fallback_address
    return entry


def handover_inventory_change(nodes, primary, target, below):
    """What to change in the inventory once target is the primary in place of primary, one sentence each; below
    are the target's own downstream standbys."""
    change = ['Move %s from postgres_standby to postgres_master.' % target,
              'Move %s from postgres_master to postgres_standby.' % primary]
    # postgres_standby_upstream may not name the primary: the target's downstreams stream from it by default
    change.extend('Remove postgres_standby_upstream (%s) from %s: it streams from the primary %s now.'
                  % (target, h, target) for h in below)
    known = [(nodes.get(h) or {}).get('address') for h in (primary, target)]
    change.append('If postgres_primary_address is set%s, set it to the address of %s%s.'
                  % (' (to %s)' % known[0] if known[0] else '', target, ' (%s)' % known[1] if known[1] else ''))
    return change


def rewind_conninfo(nodes, source, port, rewind_user):
    """The connection string of the old primary's pg_rewind to source (the new primary), without a password."""
    return 'host=%s port=%s%s dbname=postgres' % (
        (nodes.get(source) or {}).get('address') or source, port.get(source, DEFAULT_PORT),
        ' user=%s' % rewind_user if rewind_user else '')


def synchronous_names(mode, count, names):
    """synchronous_standby_names over names (application names, in priority order); '' when count is None."""
    return '' if count is None else '%s %d (%s)' % (
        'FIRST' if mode == 'sync' else 'ANY', count, ', '.join('"%s"' % n.replace('"', '""') for n in names))


def handover_hba_rules(new_downstream, old_primary, tls):
    """postgresql_pg_hba rules for the new primary: a replication line per entry of new_downstream with an address,
    and the old primary's line to database postgres for pg_rewind."""
    use_tls = _on(tls)
    hba = []
    for h in new_downstream:
        if not h['address']:
            continue
        for database in ('replication', 'postgres') if h['host'] == old_primary else ('replication',):
            hba.append({'contype': 'hostssl' if use_tls else 'host', 'databases': database,
                        'address': _single_address(h['address']),
                        'comment': 'hotstandby.postgresql: %s for %s' % (
                            'replication' if database == 'replication' else 'pg_rewind', h['host'])})
    return hba


def hot_standby_setting(info, name):
    """The value of a hot standby setting in a pg_replication_info result (hot_standby_settings), or None when it is
    not known: an older result without them, a node that did not answer, or a value that is no whole number."""
    settings = info.get('hot_standby_settings') if isinstance(info, Mapping) else None
    value = settings.get(name) if isinstance(settings, Mapping) else None
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def hot_standby_shortfalls(read, source, hosts):
    """One sentence per (host, setting) where a host that will stream from source has a hot standby setting lower
    than source; read maps a host to (state, info) as truth._read returns them. Unknown values are skipped."""
    source_info = read.get(source, ('none', {}))[1]
    found = []
    for host in hosts:
        state, info = read.get(host, ('none', {}))
        if state != 'ok':
            continue
        for name in HOT_STANDBY_SETTINGS:
            have, need = hot_standby_setting(info, name), hot_standby_setting(source_info, name)
            if have is None or need is None or have >= need:
                continue
            found.append('%s has %s = %d, lower than %d on %s, which it will stream from after the switchover: as a '
                         'hot standby with a lower %s it would refuse to start or pause its recovery. Raise %s on %s '
                         'to at least %d (e.g. in %s) and run site.yml, which restarts it, then switch over.'
                         % (host, name, have, need, source, name, name, host, need,
                            'postgres_max_wal_senders' if name == 'max_wal_senders' else 'postgres_settings'))
    return found


def _join(hosts):
    return ', '.join(hosts) if hosts else 'none'


def switchover_plan(infos, topology, target, max_lag_bytes=None, rewind_user=None, ports=None,
                    synchronous_mode='async', synchronous_count=1, tls=False, facts=None):
    """Refusals and plan of a switchover to target; see DOCUMENTATION."""
    if not isinstance(infos, Mapping) or not isinstance(topology, Mapping) or \
            not isinstance(topology.get('hosts'), Mapping):
        raise AnsibleFilterError('switchover_plan: give it the results of pg_replication_info per host and the '
                                 'result of the hotstandby.postgresql.topology filter')
    if isinstance(target, Undefined) or target is None:
        target = ''
    if not isinstance(target, str):
        raise AnsibleFilterError('switchover_plan: target must be a host name, got %r' % (target,))
    target = target.strip()
    if rewind_user is not None and not isinstance(rewind_user, str):
        raise AnsibleFilterError('switchover_plan: rewind_user must be a role name, got %r' % (rewind_user,))
    bound = None if max_lag_bytes is None or max_lag_bytes == '' else whole(max_lag_bytes, 'max_lag_bytes')
    port = node_ports(ports, topology['hosts'])

    nodes = topology['hosts']
    primary = topology.get('primary')
    standbys = list(topology.get('standbys') or [])
    direct = [h for h in standbys if primary and (nodes.get(h) or {}).get('upstream') == primary]
    is_direct = bool(primary) and target in direct
    read = dict((h, _read(infos.get(h))) for h in ([primary] if primary else []) + standbys)
    p_info, t_info = read.get(primary, ('none', {}))[1], read.get(target, ('none', {}))[1]
    new = target if target in standbys or target == primary else None

    # the plan (also with refusals: the caller may show it)
    followers = [downstream_entry(nodes, h) for h in sorted(direct) if h != target] if is_direct else []
    below = sorted((nodes.get(target) or {}).get('downstream') or []) if target in standbys else []
    untouched = sorted(h for h in standbys if h != target and h not in direct and h not in below)
    old_entry = old_primary_entry(nodes, primary, facts) if primary else None
    new_downstream = ([old_entry] if primary and is_direct else []) + \
        (followers + [downstream_entry(nodes, h) for h in below] if is_direct else [])
    inventory_change = handover_inventory_change(nodes, primary, target, below) if is_direct else []
    first = new or primary
    order = ([first] if first else []) + [h for h in ([primary] if primary else []) + standbys if h != first]
    conninfo = 'host=%s port=%s target_session_attrs=read-write' % (
        ','.join((nodes.get(h) or {}).get('address') or h for h in order), ','.join(str(port[h]) for h in order))
    source = new or primary
    rewind_source = rewind_conninfo(nodes, source, port, rewind_user) if source else None
    # what the new primary needs before it is promoted: every standby that will stream from it is a synchronous
    # candidate (as the topology filter names them for a primary), and pg_hba lines for them, plus the old
    # primary's normal connection to database postgres for pg_rewind
    count = whole(synchronous_count, 'synchronous_count') if synchronous_mode != 'async' else None
    names = [h['application_name'] for h in new_downstream]
    synchronous_standby_names = synchronous_names(synchronous_mode, count, names)
    hba = handover_hba_rules(new_downstream, primary, tls)
    plan = dict(refusals=[], already_done=False, message='', new_primary=target or None, old_primary=primary,
                followers=followers, untouched=untouched, new_downstream=new_downstream,
                inventory_change=inventory_change, conninfo=conninfo, rewind_source=rewind_source,
                synchronous_standby_names=synchronous_standby_names, target_hba_rules=hba)

    # a second run after a switchover that worked: nothing to do
    if target and primary and _running(read, target, 'primary'):
        if target == primary:
            plan.update(already_done=True, inventory_change=[],
                        message='%s already is the primary and the inventory says so: there is nothing to switch '
                                'over.' % target)
            return plan
        follows = _streaming_row(t_info, (nodes.get(primary) or {}).get('application_name') or primary) or (
            (p_info.get('wal_receiver') or {}).get('status') == STREAMING and
            (p_info.get('wal_receiver') or {}).get('sender_host') in (target, (nodes.get(target) or {}).get('address')))
        if target in standbys and _running(read, primary, 'standby') and follows and \
                p_info.get('system_identifier') == t_info.get('system_identifier'):
            plan.update(already_done=True,
                        message='%s already is the primary (timeline %s) and %s streams from it as a standby: the '
                                'switchover is done, nothing is changed. The inventory still says otherwise; change '
                                'it: %s' % (target, t_info.get('timeline'), primary, ' '.join(inventory_change)))
            return plan

    refusals = plan['refusals']
    refusals.extend('INVENTORY: %s' % error for error in topology.get('errors') or [])
    if not target:
        refusals.append('No standby to promote is given: pass -e postgres_switchover_to=<one of the standbys '
                        'streaming from the primary %s: %s>.' % (primary, _join(direct)))
    elif target == primary:
        refusals.append('%s is the primary of the inventory already; pass -e postgres_switchover_to=<one of the '
                        'standbys streaming from it: %s>.' % (target, _join(direct)))
    elif target not in standbys:
        refusals.append("postgres_switchover_to is '%s', which is not a standby of the inventory (postgres_standby); "
                        'pass one of the standbys streaming from the primary %s: %s.'
                        % (target, primary, _join(direct)))
    elif not is_direct:
        upstream = (nodes.get(target) or {}).get('upstream')
        refusals.append('%s is a cascading standby: it streams from %s, not from the primary %s. Pass one of %s, '
                        'or first make %s stream from %s (remove its postgres_standby_upstream and run site.yml).'
                        % (target, upstream or 'an unknown upstream (see the inventory problems)', primary,
                           _join(direct), target, primary))

    for host in ([primary] if primary else []) + standbys:
        state, info = read[host]
        if state == 'failed':
            refusals.append('The state of %s could not be read (%s): a switchover needs every node. Make it readable '
                            '(is PostgreSQL on it healthy?) and run again.'
                            % (host, ' '.join(str(info.get('msg') or 'no message').split())))
        elif state == 'none':
            refusals.append('%s gave no result (skipped, no PostgreSQL there, or left out by --limit): a switchover '
                            'needs every node. Run site.yml for it, and run the switchover without --limit.' % host)

    if primary and read[primary][0] == 'ok' and not _running(read, primary, 'primary'):
        if not p_info.get('connected', True):
            refusals.append('%s, the primary of the inventory, is down (no server runs there): a switchover needs a '
                            'running primary. To promote a standby in its place, use failover.yml.' % primary)
        else:
            refusals.append('%s, the primary of the inventory, is not a running primary but %s: the inventory is '
                            'stale. Run status.yml to see which node is the primary, put it in postgres_master '
                            '(site.yml refuses until then), and run again.'
                            % (primary, 'in recovery' if p_info.get('role') == 'standby' else p_info.get('role')))
    p_ok = _running(read, primary, 'primary')

    if is_direct and read[target][0] == 'ok':
        name = (nodes.get(target) or {}).get('application_name') or target
        row = _streaming_row(p_info, name) if p_ok else None
        receiver = t_info.get('wal_receiver') or {}
        if not _running(read, target, 'standby'):
            why = ('no server runs there' if not t_info.get('connected', True) else
                   'it is a primary, not in recovery, and %s does not stream from it: promoted by hand?' % primary)
            refusals.append('%s is not a running standby (%s): run status.yml to see why, start it or pick another '
                            'standby (%s).' % (target, why, _join([h for h in direct if h != target])))
        elif p_ok and t_info.get('system_identifier') != p_info.get('system_identifier'):
            refusals.append('%s is not a copy of %s (system identifier %s, the primary has %s): it cannot take over. '
                            'Run site.yml to clone it again.' % (target, primary, t_info.get('system_identifier'),
                                                                 p_info.get('system_identifier')))
        elif p_ok and t_info.get('timeline') != p_info.get('timeline'):
            refusals.append('%s is on timeline %s, the primary %s on %s: it does not follow the primary. Run '
                            'status.yml and site.yml, and run again when it streams.'
                            % (target, t_info.get('timeline'), primary, p_info.get('timeline')))
        else:
            if receiver.get('status') != STREAMING or (p_ok and row is None):
                refusals.append('%s does not stream from %s (its WAL receiver is %s%s): run status.yml and site.yml, '
                                'and switch over once it streams.'
                                % (target, primary, "'%s'" % receiver['status'] if receiver.get('status') else 'absent',
                                   '; the primary has no streaming connection with application_name %s' % name
                                   if p_ok and row is None else ''))
            if t_info.get('replay_paused'):
                refusals.append('Replay is paused on %s (%s): resume it (SELECT pg_wal_replay_resume()) and run '
                                'again.' % (target, t_info.get('replay_pause_state') or 'paused'))
            lag = row.get('replay_lag_bytes') if row is not None else None
            if bound is not None and row is not None and (lag is None or lag > bound):
                refusals.append('%s is %s behind the primary %s, more than max_lag_bytes (%d): wait until it catches '
                                'up and run again.' % (target, '%d bytes' % lag if lag is not None else
                                                       'an unknown number of bytes', primary, bound))

    # pg_rewind rewinds the OLD primary (it writes past the new timeline's switchpoint until it stops), so that is
    # the node that needs wal_log_hints or checksums, set before the fork; the target is the rewind's source.
    if p_ok and not _on(p_info.get('wal_log_hints')) and not _on(p_info.get('data_checksums')):
        refusals.append('%s has neither wal_log_hints on nor data checksums, so pg_rewind could not rejoin it as a '
                        'standby after the switchover: set wal_log_hints (site.yml now turns it on) and restart %s '
                        'once, e.g. run site.yml which restarts it for that, then switch over.' % (primary, primary))

    if is_direct and count is not None and not 1 <= count <= len(names):
        refusals.append('postgres_synchronous_mode is %s with postgres_synchronous_count %d, but after the switchover '
                        '%d standby(s) would stream from %s (%s): set postgres_synchronous_count between 1 and %d, or '
                        'switch over in async mode.' % (synchronous_mode, count, len(names), target or 'the target',
                                                        _join([h['host'] for h in new_downstream]), len(names)))

    # the target is the source of the old primary's pg_rewind: the role it logs in as needs the grants there
    missing = t_info.get('rewind_grants_missing') if is_direct else None
    if missing:
        refusals.append('On %s the role %s may not run %s, which pg_rewind needs to rejoin %s after the switchover: '
                        'run site.yml (it grants them on the primary, and they replicate), then switch over.'
                        % (target, t_info.get('rewind_user') or 'of the replication', ', '.join(missing), primary))

    if is_direct and _running(read, target, 'standby'):
        serving = set(h['application_name'] for h in new_downstream)
        other_senders = [r for r in t_info.get('replication') or [] if isinstance(r, Mapping)
                         and r.get('application_name') not in serving]
        wanted = set(h['slot'] for h in new_downstream if h['slot'])
        other_slots = set(s.get('slot_name') for s in t_info.get('slots') or [] if isinstance(s, Mapping)) - wanted
        for setting, others, what in (('max_wal_senders', len(other_senders), 'WAL sender(s) it serves'),
                                      ('max_replication_slots', len(other_slots), 'slot(s) it has')):
            have, needed = t_info.get(setting), len(new_downstream) + others
            if have is not None and whole(have, setting) < needed:
                refusals.append('%s has %s = %s, but it needs %d after the switchover for %s%s: raise '
                                'postgres_%s and run site.yml (it restarts %s), then switch over.'
                                % (target, setting, have, needed, _join([h['host'] for h in new_downstream]),
                                   ' and %d other %s now' % (others, what) if others else '', setting, target))

    # after the switchover everything in new_downstream is a hot standby of the target: PostgreSQL refuses to start
    # (or pauses recovery on) a standby with one of these settings lower than on its primary
    if is_direct:
        refusals.extend(hot_standby_shortfalls(read, target, [h['host'] for h in new_downstream]))

    plan['message'] = ('No switchover: %d reason(s) to refuse.' % len(refusals) if refusals else
                       '%s takes over from %s; %s then stream from it.'
                       % (target, primary, _join([h['host'] for h in new_downstream])))
    return plan


class FilterModule(object):
    """hotstandby.postgresql: planned switchover."""

    def filters(self):
        return {'switchover_plan': switchover_plan}
