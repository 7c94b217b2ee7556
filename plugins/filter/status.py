# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
name: replication_status
short_description: Judge the real replication state of a hotstandby.postgresql cluster against its inventory
version_added: 0.1.0
description:
  - Takes what M(hotstandby.postgresql.pg_replication_info) returned on each node (the registered results, also
    failed or unreachable ones) and the topology the inventory intends (the result of the filter
    C(hotstandby.postgresql.topology)), and returns one row per node for a person to read, every problem found
    as a sentence that names the host and the reason, and a libpq connection string that reaches the writable node.
  - A node without a usable result (unreachable, the module failed, left out of the run) is a problem, never fine.
  - Problems - a node without a result; a standby that does not stream (no WAL receiver, a WAL receiver that is
    not V(streaming), or no V(streaming) connection from it on its upstream); a standby whose replay is more than
    O(max_lag_bytes) behind its upstream, or whose replay position its upstream does not report; a physical slot
    whose C(wal_status) is V(lost) or V(unreserved); a standby's slot missing on its upstream; the host of
    C(postgres_master) in recovery; a host of C(postgres_standby) that is a primary; a standby streaming from
    another node than its intended upstream; a node with another system identifier than the primary; two or more
    primaries with the same system identifier (SPLIT BRAIN); errors of the topology itself.
  - Warnings (reported, not problems) - replay paused, a C(sync_state) other than the inventory expects, a clone
    running, an unprivileged login role.
  - A standby's real upstream is the node whose C(pg_stat_replication) has a row with the standby's
    C(application_name) (its inventory name), a V(streaming) one first; without one, the node whose address or
    name is the standby's C(wal_receiver.sender_host).
  - The same file provides C(hotstandby.postgresql.replication_status_table), which turns this filter's result
    into fixed-width lines for ansible.builtin.debug.
positional: _input, topology, max_lag_bytes
options:
  _input:
    description:
      - The results of M(hotstandby.postgresql.pg_replication_info) by inventory host name. A missing or undefined
        entry counts as a node without a result.
    type: dict
    required: true
  topology:
    description: The result of C(hotstandby.postgresql.topology) for the same inventory.
    type: dict
    required: true
  max_lag_bytes:
    description:
      - The most bytes a standby's replay may be behind its upstream, normally C(postgres_standby_max_lag_bytes).
      - Either one number for every standby, or a mapping of host names to numbers (each standby's own
        C(postgres_standby_max_lag_bytes)); a standby the mapping does not name gets 16777216.
      - Strings holding whole numbers (from INI inventories or C(-e)) are accepted.
    type: raw
    default: 16777216
  ports:
    description: The port of each node by host name (normally its C(postgres_port)), for the connection string.
    type: dict
    default: {}
  default_port:
    description: The port of a node that O(ports) does not name.
    type: int
    default: 5432
'''

EXAMPLES = r'''
- name: Judge the cluster
  ansible.builtin.set_fact:
    status: >-
      {{ infos | hotstandby.postgresql.replication_status(topology, postgres_standby_max_lag_bytes | default(16777216)) }}

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ status | hotstandby.postgresql.replication_status_table }}"
'''

RETURN = r'''
_value:
  description: The verdict.
  type: dict
  contains:
    ok:
      description: Whether there is no problem.
      type: bool
    split_brain:
      description: Whether two or more primaries share a system identifier.
      type: bool
    problems:
      description: One sentence per problem, naming the host and what to look at.
      type: list
      elements: str
    warnings:
      description: Things worth knowing that are not problems.
      type: list
      elements: str
    rows:
      description:
        - One mapping per node, primary first then the standbys in inventory order, with C(host), C(ok), C(status)
          (V(ok), V(unreachable), V(failed), V(no result)), C(role), C(intended_role), C(upstream),
          C(intended_upstream), C(state), C(sync_state), C(replay_lag_bytes), C(replay_lag_seconds), C(slot),
          C(slot_retained_bytes), C(slot_wal_status), C(clone), C(timeline), C(system_identifier), C(version),
          C(message) and C(problems) (those of the node).
      type: list
      elements: dict
    conninfo:
      description:
        - libpq connection string over every node that reaches the writable one,
          V(host=a,b,c port=p,p,p dbname=postgres target_session_attrs=read-write). No user, no password.
      type: str
'''

from collections.abc import Mapping

from jinja2 import Undefined

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

STREAMING = 'streaming'
DEFAULT_MAX_LAG = 16777216  # postgres_standby_max_lag_bytes' default
BAD_WAL_STATUS = ('lost', 'unreserved')
MISSING = '-'


def _get(mapping, key, default=None):
    if not isinstance(mapping, Mapping):
        return default
    try:
        value = mapping.get(key, default)
    except Exception:  # pylint: disable=broad-exception-caught
        return default
    return default if isinstance(value, Undefined) else value


def _list(value):
    if value is None or isinstance(value, (str, Mapping)) or not is_sequence(value):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def human_bytes(value):
    """1536 -> '1.5 KiB'; None -> '-'."""
    if value is None:
        return MISSING
    sign = '-' if value < 0 else ''
    value = abs(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return '%s%d B' % (sign, value) if unit == 'B' else '%s%.1f %s' % (sign, value, unit)
        value /= 1024.0
    return MISSING  # not reached


def _as_int(value, name):
    if isinstance(value, bool):
        raise AnsibleFilterError('replication_status: %s must be a whole number, got %r' % (name, value))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('replication_status: %s must be a whole number, got %r' % (name, value))


def _outcome(info):
    """(status, message) of a registered result: ok, unreachable, failed or no result."""
    if not isinstance(info, Mapping) or not info:
        return 'no result', 'no result from pg_replication_info (left out of the run, e.g. by --limit?)'
    msg = _get(info, 'msg') or ''
    if _get(info, 'unreachable'):
        return 'unreachable', msg or 'unreachable'
    if _get(info, 'failed'):
        return 'failed', msg or 'the module failed'
    if _get(info, 'skipped'):
        return 'no result', 'the task was skipped (no PostgreSQL on it?)'
    if _get(info, 'connected') is False:
        return 'stopped', msg or 'no server answers'
    if _get(info, 'role') not in ('primary', 'standby'):
        return 'failed', msg or 'the result has no role'
    return 'ok', msg


class _Judge(object):
    """Collects problems and warnings, each for one host (or none)."""

    def __init__(self):
        self.problems = []
        self.warnings = []
        self.by_host = {}

    def problem(self, host, text):
        if text not in self.problems:
            self.problems.append(text)
        if host is not None:
            self.by_host.setdefault(host, [])
            if text not in self.by_host[host]:
                self.by_host[host].append(text)

    def warn(self, text):
        if text not in self.warnings:
            self.warnings.append(text)


def _rows_for(info, application_name):
    return [row for row in _list(_get(info, 'replication')) if _get(row, 'application_name') == application_name]


def _best_row(rows):
    """The streaming row first, else the first one."""
    for row in rows:
        if _get(row, 'state') == STREAMING:
            return row
    return rows[0] if rows else None


def _slot(info, name):
    for slot in _list(_get(info, 'slots')):
        if _get(slot, 'slot_name') == name:
            return slot
    return None


def _node_by_address(nodes, sender_host):
    """The inventory host whose topology address or name is sender_host."""
    if not sender_host:
        return None
    wanted = sender_host.lower()
    for host, node in nodes.items():
        address = _get(node, 'address')
        if host.lower() == wanted or (isinstance(address, str) and address.lower() == wanted):
            return host
    return None


def replication_status(infos, topology, max_lag_bytes=DEFAULT_MAX_LAG, ports=None, default_port=5432):
    """Judge the real replication state against the inventory's topology; see DOCUMENTATION."""
    if not isinstance(infos, Mapping):
        raise AnsibleFilterError('replication_status: the input must be a mapping of host names to the results of '
                                 'pg_replication_info, got %s' % type(infos).__name__)
    if not isinstance(topology, Mapping) or not isinstance(_get(topology, 'hosts'), Mapping):
        raise AnsibleFilterError('replication_status: topology must be the result of the hotstandby.postgresql.'
                                 'topology filter')
    nodes = topology['hosts']
    if isinstance(max_lag_bytes, Mapping):
        bounds = dict((host, _as_int(_get(max_lag_bytes, host, DEFAULT_MAX_LAG), 'max_lag_bytes of %s' % host))
                      for host in nodes)
    else:
        bound = _as_int(max_lag_bytes, 'max_lag_bytes')
        bounds = dict((host, bound) for host in nodes)
    default_port = _as_int(default_port, 'default_port')
    ports = ports if isinstance(ports, Mapping) else {}
    judge = _Judge()

    for error in _get(topology, 'errors') or []:
        judge.problem(None, 'INVENTORY: %s' % error)

    # 1. every node's result
    outcome = {}
    ok = {}
    for host in nodes:
        status, message = _outcome(_get(infos, host))
        outcome[host] = (status, message)
        if status == 'ok':
            ok[host] = infos[host]
        elif status == 'unreachable':
            judge.problem(host, '%s is UNREACHABLE, its state is unknown: %s' % (host, message))
        elif status == 'failed':
            judge.problem(host, 'pg_replication_info FAILED on %s, its state is unknown: %s' % (host, message))
        elif status == 'stopped':
            judge.problem(host, '%s is NOT STREAMING: no PostgreSQL server runs there (%s)' % (
                host, message) if _get(nodes.get(host), 'role') == 'standby' else
                '%s is DOWN: no PostgreSQL server runs there (%s)' % (host, message))
        else:
            judge.problem(host, '%s: %s; its state is unknown' % (host, message))

    def app_name(host):
        return _get(nodes.get(host), 'application_name') or host

    # 2. split brain, foreign clusters, roles against the inventory
    primaries = [host for host in ok if ok[host]['role'] == 'primary']
    by_sysid = {}
    for host in primaries:
        by_sysid.setdefault(ok[host].get('system_identifier'), []).append(host)
    split_brain = False
    for sysid, hosts in by_sysid.items():
        if len(hosts) > 1:
            split_brain = True
            text = ('SPLIT BRAIN: %s are ALL PRIMARIES of the same cluster (system identifier %s; %s). '
                    'Each may be taking writes: stop the ones that must not be primary now, keep clients away '
                    'from them, then make them standbys again (clone them anew).'
                    % (' and '.join(hosts), sysid, ', '.join('%s on timeline %s' % (h, ok[h].get('timeline'))
                                                             for h in hosts)))
            for host in hosts:
                judge.problem(host, text)

    # the cluster is the intended primary's; without its result, that of the only primary found
    reference = _get(topology, 'primary')
    if reference not in ok:
        reference = primaries[0] if len(by_sysid) == 1 else None
    reference_sysid = ok[reference].get('system_identifier') if reference else None
    for host, info in ok.items():
        if reference_sysid and info.get('system_identifier') != reference_sysid:
            judge.problem(host, '%s is NOT A COPY of %s: its system identifier is %s, that of %s is %s (another '
                                'cluster)' % (host, reference, info.get('system_identifier'), reference,
                                              reference_sysid))

    for host, info in ok.items():
        intended = _get(nodes[host], 'role')
        if intended == 'primary' and info['role'] != 'primary':
            judge.problem(host, 'TOPOLOGY: %s is the primary in the inventory (postgres_master) but is IN RECOVERY '
                                '(a standby%s). After a failover, update the inventory.'
                          % (host, ', WAL receiver from %s' % _get(info.get('wal_receiver'), 'sender_host')
                             if info.get('wal_receiver') else ''))
        elif intended == 'standby' and info['role'] != 'standby':
            judge.problem(host, 'TOPOLOGY: %s is a standby in the inventory (postgres_standby) but is a PRIMARY '
                                '(not in recovery, timeline %s): was it promoted?' % (host, info.get('timeline')))

    # 3. clones running anywhere, by the application_name of their connection
    clones = {}
    for node, info in ok.items():
        for progress in _list(info.get('basebackup_progress')):
            name = _get(progress, 'application_name')
            clones.setdefault(name, (node, progress))

    # 4. each standby
    rows = {}
    for host, node in nodes.items():
        info = ok.get(host)
        row = dict(host=host, status=outcome[host][0], message=outcome[host][1], intended_role=_get(node, 'role'),
                   role=info['role'] if info else None, intended_upstream=_get(node, 'upstream'), upstream=None,
                   state=None, sync_state=None, replay_lag_bytes=None, replay_lag_seconds=None,
                   slot=_get(node, 'slot'), slot_retained_bytes=None, slot_wal_status=None, clone=None,
                   timeline=info.get('timeline') if info else None,
                   system_identifier=info.get('system_identifier') if info else None,
                   version=((info.get('server_version') or '').split(' ')[0] or None) if info else None)
        rows[host] = row
        name = app_name(host)
        if name in clones:
            source, progress = clones[name]
            pct = _get(progress, 'percent')
            row['clone'] = '%s%% from %s' % ('%.1f' % pct if pct is not None else '?', source)
            judge.warn('%s is being cloned from %s: %s (%s)' % (
                host, source, '%.1f%%' % pct if pct is not None else 'size unknown', _get(progress, 'phase')))
        if row['intended_role'] != 'standby':
            if info and info['role'] == 'standby':  # the intended primary in recovery: what it follows
                receiver = info.get('wal_receiver')
                row['state'] = _get(receiver, 'status') or 'no receiver'
                row['upstream'] = _real_upstream(host, name, receiver, nodes, ok, None)[0]
            continue
        if info and info['role'] != 'standby':
            continue  # a primary: reported above
        _judge_standby(host, name, info, nodes, ok, outcome, row, judge, bounds[host], clones)

    # 5. slots everywhere
    users = dict((_get(n, 'slot'), h) for h, n in nodes.items() if _get(n, 'slot'))
    for node, info in ok.items():
        for slot in _list(info.get('slots')):
            status = _get(slot, 'wal_status')
            if status not in BAD_WAL_STATUS:
                continue
            name = _get(slot, 'slot_name')
            user = users.get(name)
            whose = (' (used by %s)' % user) if user else ''
            reason = ' (%s)' % _get(slot, 'invalidation_reason') if _get(slot, 'invalidation_reason') else ''
            if status == 'lost' and user:
                judge.problem(user, 'SLOT %s on %s%s is LOST%s: the WAL %s needs is gone, it must be cloned again '
                                    '(site.yml makes the slot anew and re-clones)' % (name, node, whose, reason, user))
            elif status == 'lost':
                judge.problem(node, 'SLOT %s on %s is LOST%s and no standby of the inventory uses it: drop it '
                                    "(SELECT pg_drop_replication_slot('%s')) unless a client outside the inventory "
                                    'needs it' % (name, node, reason, name))
            else:
                judge.problem(user or node, 'SLOT %s on %s%s is UNRESERVED: WAL its standby still needs will be removed '
                                            'at the next checkpoint (max_slot_wal_keep_size); it is about to be lost'
                              % (name, node, whose))

    # 6. warnings from the nodes themselves
    for host, info in ok.items():
        if info.get('replay_paused'):
            judge.warn('%s: replay is paused (%s); its lag grows until pg_wal_replay_resume()'
                       % (host, info.get('replay_pause_state')))

    ordered = [rows[h] for h in nodes]
    for row in ordered:
        row['problems'] = judge.by_host.get(row['host'], [])
        row['ok'] = row['status'] == 'ok' and not row['problems']
    return dict(ok=not judge.problems, split_brain=split_brain, problems=judge.problems, warnings=judge.warnings,
                rows=ordered, conninfo=read_write_conninfo(topology, ports, default_port))


def _real_upstream(host, name, receiver, nodes, ok, intended):
    """(real upstream, its row for this standby): the node serving a connection with the standby's
    application_name (a streaming one first, then the intended upstream), else the node whose address or name is
    the receiver's sender_host (without a row), else sender_host:sender_port as the receiver says, else None."""
    serving = [(node, _best_row(_rows_for(other, name))) for node, other in ok.items()
               if node != host and _rows_for(other, name)]
    serving.sort(key=lambda item: (_get(item[1], 'state') != STREAMING, item[0] != intended))
    if serving:
        return serving[0]
    sender = _get(receiver, 'sender_host')
    if not sender:
        return None, None
    return _node_by_address(nodes, sender) or '%s:%s' % (sender, _get(receiver, 'sender_port')), None


def _judge_standby(host, name, info, nodes, ok, outcome, row, judge, max_lag, clones):
    """Streaming, upstream, lag and slot of one host the inventory makes a standby (info None: no result)."""
    intended = _get(nodes[host], 'upstream')
    receiver = info.get('wal_receiver') if info else None
    real, stream_row = _real_upstream(host, name, receiver, nodes, ok, intended)
    row['upstream'] = real
    upstream = real if real in nodes else intended  # where its connection, lag and slot are looked for
    if stream_row is not None:
        row.update(state=_get(stream_row, 'state'), sync_state=_get(stream_row, 'sync_state'),
                   replay_lag_bytes=_get(stream_row, 'replay_lag_bytes'),
                   replay_lag_seconds=_get(stream_row, 'replay_lag'))
    elif info is not None:
        row['state'] = 'not connected'

    # its slot on its upstream (also for a standby without a result: what WAL it holds back)
    slot_name = row['slot']
    if slot_name and upstream in ok:
        slot = _slot(ok[upstream], slot_name)
        if slot is None:
            judge.problem(host, "%s: its replication slot '%s' does not exist on %s, which keeps no WAL for it"
                          % (host, slot_name, upstream))
            row['slot_wal_status'] = 'missing'
        else:
            row['slot_retained_bytes'] = _get(slot, 'retained_bytes')
            row['slot_wal_status'] = _get(slot, 'wal_status')

    if info is None:
        return  # no result: reported already; what its upstream says is shown

    if real is not None and intended is not None and real != intended:
        judge.problem(host, 'TOPOLOGY: %s streams from %s, but the inventory says %s (%s)'
                      % (host, real, intended, 'postgres_standby_upstream' if _get(nodes.get(intended), 'role') ==
                         'standby' else 'the primary'))

    # streaming: both the standby's WAL receiver and its upstream's WAL sender must say so
    if receiver is None:
        judge.problem(host, '%s is NOT STREAMING: it has no WAL receiver (it cannot connect to %s? look at its log)'
                      % (host, upstream or 'its upstream'))
    elif _get(receiver, 'status') != STREAMING:
        judge.problem(host, "%s is NOT STREAMING: its WAL receiver is '%s'" % (host, _get(receiver, 'status')))
    if upstream is None:
        judge.problem(host, '%s: its upstream is unknown (see the inventory problems)' % host)
    elif upstream not in ok:
        judge.problem(host, '%s: its streaming cannot be confirmed, its upstream %s gave no result (%s)'
                      % (host, upstream, outcome.get(upstream, ('no result',))[0]))
    elif stream_row is None:
        judge.problem(host, '%s is NOT STREAMING: %s has no replication connection with application_name %s'
                      % (host, upstream, name))
    elif row['state'] != STREAMING:
        judge.problem(host, "%s is NOT STREAMING: %s reports its connection as '%s'" % (host, upstream, row['state']))
    if name in clones:
        judge.problem(host, '%s is NOT STREAMING: it is being cloned from %s' % (host, clones[name][0]))

    # lag, as its upstream measures it
    if row['state'] == STREAMING:
        lag = row['replay_lag_bytes']
        if lag is None:
            judge.problem(host, '%s: %s does not report its replay position (yet)' % (host, upstream))
        elif lag > max_lag:
            judge.problem(host, '%s is LAGGING: replay is %d bytes (%s) behind %s, more than '
                                'postgres_standby_max_lag_bytes (%d)' % (host, lag, human_bytes(lag), upstream, max_lag))
        expected = _get(nodes[host], 'expected_sync_states')
        if expected and row['sync_state'] not in expected:
            judge.warn("%s: %s reports sync_state '%s', the inventory expects %s (postgres_synchronous_mode)"
                       % (host, upstream, row['sync_state'], ' or '.join(expected)))


def read_write_conninfo(topology, ports=None, default_port=5432):
    """host=a,b port=p,p dbname=postgres target_session_attrs=read-write over every node of the topology."""
    ports = ports if isinstance(ports, Mapping) else {}
    nodes = _get(topology, 'hosts') or {}
    hosts = [h for h in nodes if _get(nodes[h], 'role') == 'primary'] + \
        [h for h in nodes if _get(nodes[h], 'role') != 'primary']
    addresses = [_get(nodes[h], 'address') or h for h in hosts]
    port_list = ['%s' % (_get(ports, h) or default_port) for h in hosts]
    return 'host=%s port=%s dbname=postgres target_session_attrs=read-write' % (','.join(addresses),
                                                                                ','.join(port_list))


# -- the table -----------------------------------------------------------------------------------------------------

COLUMNS = (
    ('', 'verdict'), ('host', 'host'), ('role', 'role'), ('inventory', 'intended_role'), ('upstream', 'upstream'),
    ('state', 'state'), ('sync', 'sync_state'), ('replay lag', 'replay_lag'), ('lag s', 'lag_seconds'),
    ('slot', 'slot'), ('slot keeps', 'slot_keeps'), ('wal_status', 'slot_wal_status'), ('tl', 'timeline'),
    ('clone', 'clone'),
)


def _cell(row, key):
    if key == 'verdict':
        return 'ok' if row.get('ok') else 'FAIL'
    if key == 'role':
        if row.get('status') != 'ok':
            return (row.get('status') or 'no result').upper()
        return row.get('role') or MISSING
    if key == 'replay_lag':
        return human_bytes(row.get('replay_lag_bytes'))
    if key == 'lag_seconds':
        value = row.get('replay_lag_seconds')
        return MISSING if value is None else '%.3f' % value
    if key == 'slot_keeps':
        return human_bytes(row.get('slot_retained_bytes'))
    value = row.get(key)
    return MISSING if value is None or value == '' else '%s' % value


def replication_status_table(status):
    """The result of replication_status as fixed-width lines: a header, one line per node, then the verdict."""
    if not isinstance(status, Mapping) or 'rows' not in status:
        raise AnsibleFilterError('replication_status_table: the input must be the result of replication_status')
    cells = [[title for title, key in COLUMNS]]
    for row in status['rows']:
        cells.append([_cell(row, key) for title, key in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    numeric = ('replay_lag', 'lag_seconds', 'slot_keeps', 'timeline')
    right = set(i for i, (title, key) in enumerate(COLUMNS) if key in numeric)
    lines = []
    for number, line in enumerate(cells):
        lines.append('  '.join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                               for i, cell in enumerate(line)).rstrip())
        if number == 0:
            lines.append('  '.join('-' * w for w in widths))
    lines.append('')
    if status.get('split_brain'):
        lines.append('!!! SPLIT BRAIN: more than one primary of the same cluster !!!')
    if status.get('problems'):
        lines.append('PROBLEMS (%d):' % len(status['problems']))
        lines.extend('  - %s' % p for p in status['problems'])
    else:
        lines.append('No problems: every node is reachable, in its intended role and streaming within the lag bound.')
    if status.get('warnings'):
        lines.append('Warnings:')
        lines.extend('  - %s' % w for w in status['warnings'])
    lines.append('')
    lines.append('Connection string for clients that must write (add user; the password goes in a passfile):')
    lines.append('  %s' % status.get('conninfo'))
    return lines


class FilterModule(object):
    """hotstandby.postgresql replication status filters."""

    def filters(self):
        return {
            'replication_status': replication_status,
            'replication_status_table': replication_status_table,
        }
