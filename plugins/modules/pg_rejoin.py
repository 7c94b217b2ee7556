#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_rejoin
short_description: Make a stopped former primary, or a standby left on an old timeline, a standby of a new upstream
version_added: 0.1.0
description:
  - Runs on the node to rejoin, normally as C(root) with C(become), after a switchover or failover, the way repmgr's
    C(node rejoin) and Patroni's rewind do it, and says what it did (RV(method)).
  - Reads the stopped cluster in O(data_dir) with C(pg_controldata) (as O(owner), C locale) and refuses a running
    server or one that was not shut down cleanly (it never runs crash recovery itself).
  - Asks the upstream, over a replication connection with C(psql), for its system identifier, timeline and WAL
    position (C(IDENTIFY_SYSTEM)), its C(full_page_writes) and the history file of its timeline (C(TIMELINE_HISTORY)).
  - Decides, by comparing WAL locations, between V(none) (the node can simply stream, only the standby settings are
    written), V(rewind) (the node wrote WAL past the point where the upstream's timeline forked off, which
    C(pg_rewind) undoes) and V(clone) (nothing here can help, the caller clones with
    M(hotstandby.postgresql.pg_basebackup)). It fails with RV(method=refuse) when the upstream is on an older
    timeline than the node.
  - The WAL that a rewind or a clone throws away is always reported (RV(discarded)). Before a rewind that throws
    away any, a copy of O(data_dir) is made (O(copy_dir)) unless O(discard_diverged=true).
  - The password reaches C(psql) and C(pg_rewind) only in their environment (C(PGPASSWORD), kept by C(runuser)),
    never on a command line, in a file other than O(passfile), in the result or in the diff.
  - Runs for the same O(data_dir) exclude each other, and exclude M(hotstandby.postgresql.pg_basebackup) (the same
    C(flock) on C(<parent>/.<basename>.hotstandby-lock)).
  - Supports PostgreSQL 13 and newer, with the Debian/Ubuntu layout of binaries unless O(bin_dir) is given.
author:
  - Hotstandby PostgreSQL maintainers (@hotstandby)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hotstandby.postgresql.upstream
attributes:
  check_mode:
    support: full
    details:
      - Reads the node and the upstream, and for a V(rewind) runs C(pg_rewind --dry-run) (without
        C(--restore-target-wal), which would copy WAL into C(pg_wal)); reports what would be done and writes no file.
  diff_mode:
    support: partial
    details:
      - Shows the standby settings (C(standby.signal), C(primary_conninfo), C(primary_slot_name)), the state of the
        passfile entry and, for a rewind, the WAL range undone. The data files pg_rewind changes are not shown.
  platform:
    platforms: posix
options:
  data_dir:
    description:
      - Data directory of the node to rejoin, for example C(/var/lib/postgresql/15/main). Its server must be stopped.
    type: path
    required: true
  bin_dir:
    description:
      - Directory with C(pg_controldata), C(pg_rewind) and C(psql). Defaults to C(/usr/lib/postgresql/<major>/bin),
        where C(<major>) is the version in C(PG_VERSION) of O(data_dir).
    type: path
  config_file:
    description:
      - The server's main configuration file when it is not in O(data_dir), such as Debian's
        C(/etc/postgresql/15/main/postgresql.conf).
      - Passed to C(pg_rewind) as C(--config-file) on PostgreSQL 15 and newer, and read (with the C(include_dir)
        directories it names, such as C(conf.d), and C(postgresql.auto.conf)) for C(restore_command).
    type: path
  slot:
    description:
      - Physical replication slot on the upstream for C(primary_slot_name); omitted, none is configured (an
        existing one is removed). The module does not create slots; on PostgreSQL 15 and newer it warns when the slot
        is missing.
    type: str
  application_name:
    description:
      - C(application_name) in C(primary_conninfo). Defaults to the short host name.
    type: str
  discard_diverged:
    description:
      - Rewind without first keeping a copy of O(data_dir), even though WAL that the upstream does not have is undone.
    type: bool
    default: false
  restore_target_wal:
    description:
      - Let C(pg_rewind) fetch WAL missing from C(pg_wal) with the node's C(restore_command) (C(--restore-target-wal)).
      - Only used when the configuration (O(config_file) or C(postgresql.conf) in O(data_dir), its C(include_dir)
        directories and C(postgresql.auto.conf)) sets C(restore_command). Before PostgreSQL 15 C(pg_rewind) can only
        read it from O(data_dir); the module then leaves the option out and warns.
    type: bool
    default: true
  copy_dir:
    description:
      - Where the copy of O(data_dir) is made before a rewind that undoes WAL (see O(discard_diverged)), with
        C(cp -a --reflink=auto) (a linked C(pg_wal) is copied too; tablespaces are refused).
      - Defaults to C(<data_dir>.diverged-<YYYYmmddTHHMMSSZ>). It must not exist; its file system needs the size of
        O(data_dir) plus 5% free. The module never removes it.
    type: path
  owner:
    description:
      - Operating system user that owns O(data_dir) and runs C(pg_controldata), C(psql) and C(pg_rewind).
    type: str
    default: postgres
notes:
  - The module does not start or stop the server. Stop it (cleanly) first; start it after RV(method=none) or a
    rewind. After RV(needs_clone=true) run M(hotstandby.postgresql.pg_basebackup) with
    O(hotstandby.postgresql.pg_basebackup#module:existing_data=move_aside) and
    O(hotstandby.postgresql.pg_basebackup#module:reclone=true) (the old data directory is renamed aside, not deleted;
    C(reclone) because a standby left behind still looks like a standby of the upstream).
  - C(pg_rewind) needs C(wal_log_hints = on) or data checksums on this node (set before the fork), C(full_page_writes)
    on the upstream, a C(pg_hba.conf) line there for a normal connection of O(user) to database C(postgres), and,
    for a role that is not a superuser, EXECUTE on C(pg_ls_dir), C(pg_stat_file) and C(pg_read_binary_file) there.
  - Before PostgreSQL 16, C(pg_rewind) reads the upstream's timeline from its control file, which a promotion updates
    only with the next checkpoint; the module then fails asking for a C(CHECKPOINT) on the upstream.
  - A rewind that fails leaves C(standby.signal) and C(recovery.signal) moved out of O(data_dir) (next to it), so that
    the directory is never taken for a standby of the upstream; do not start it before it is cloned.
seealso:
  - name: pg_rewind
    description: The PostgreSQL program that undoes the diverged WAL.
    link: https://www.postgresql.org/docs/current/app-pgrewind.html
  - module: hotstandby.postgresql.pg_basebackup
'''

EXAMPLES = r'''
- name: Rejoin the old primary to the new one (both tasks get these arguments)
  module_defaults:
    hotstandby.postgresql.pg_rejoin:
      data_dir: /var/lib/postgresql/15/main
      config_file: /etc/postgresql/15/main/postgresql.conf
      primary_host: 10.0.0.12
      user: replicator
      password: "{{ postgres_replication_password }}"
      slot: db1
  block:
    - name: See what rejoining the old primary would take
      hotstandby.postgresql.pg_rejoin: {}
      check_mode: true
      register: rejoin_plan

    - name: Rejoin it (rewind when its WAL diverged, keeping a copy first)
      hotstandby.postgresql.pg_rejoin: {}
      register: rejoin

- name: Clone when rejoining cannot work (the old data directory is moved aside)
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.12
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: db1
    existing_data: move_aside
    reclone: true
  when: rejoin.needs_clone
'''

RETURN = r'''
method:
  description:
    - V(none) the node can stream as it is (only standby settings are written), V(rewind) pg_rewind undoes its
      diverged WAL, V(clone) it must be cloned (nothing was changed), V(refuse) the upstream is on an older timeline.
  returned: always
  type: str
  sample: rewind
reason:
  description: Why that method, with the timelines and WAL locations compared.
  returned: always
  type: str
  sample: the upstream's timeline 2 left timeline 1 at 0/40000A0 and this node went on to 0/4622038
needs_clone:
  description: Whether the caller must clone the node (RV(method=clone), or a rewind that failed beyond repair).
  returned: always
  type: bool
  sample: false
system_identifier:
  description: Database system identifiers of O(data_dir) (C(local)) and of the upstream (C(upstream)).
  returned: always
  type: dict
  sample: {local: "7714269775029075042", upstream: "7714269775029075042"}
local_timeline:
  description: Timeline of the node's WAL end (C(null) without a cluster in O(data_dir)).
  returned: always
  type: int
  sample: 1
upstream_timeline:
  description: Timeline the upstream is on (C(IDENTIFY_SYSTEM)).
  returned: always
  type: int
  sample: 2
fork_lsn:
  description: Where the upstream's history left the timeline it shares with the node, or C(null) (same timeline).
  returned: always
  type: str
  sample: 0/40000A0
local_end_lsn:
  description:
    - Where the node's WAL ends, as compared - the start of the shutdown checkpoint record of a primary, the minimum
      recovery point of a standby (whichever pg_controldata shows later).
  returned: always
  type: str
  sample: 0/4622038
discarded:
  description:
    - The node's WAL the upstream does not have, undone by a rewind or lost by a clone - C(start), C(end) (WAL
      locations) and C(bytes) (0 when nothing is lost; C(null) when unknown, as for another cluster).
  returned: always
  type: dict
  sample: {start: 0/40000A0, end: 0/4622038, bytes: 6430616}
copy_kept_at:
  description: The copy of O(data_dir) made (or, in check mode, to be made) before the rewind, or C(null).
  returned: always
  type: str
  sample: /var/lib/postgresql/15/main.diverged-20260126T101500Z
rewound:
  description: Whether pg_rewind rewound O(data_dir).
  returned: always
  type: bool
  sample: true
restore_target_wal:
  description: Whether pg_rewind is (or was) given C(--restore-target-wal).
  returned: always
  type: bool
  sample: false
settings_changed:
  description: Whether C(standby.signal), C(primary_conninfo) or C(primary_slot_name) were (or would be) written.
  returned: always
  type: bool
  sample: true
passfile_changed:
  description: Whether the entry in O(passfile) was (or would be) written.
  returned: always
  type: bool
  sample: false
primary_conninfo:
  description: The C(primary_conninfo) the node gets (no password), or C(null) for RV(method=clone).
  returned: always
  type: str
  sample: host=10.0.0.12 port=5432 user=replicator passfile=/var/lib/postgresql/.pgpass_replication application_name=db1
cluster_state:
  description: C(Database cluster state) of pg_controldata, or C(null).
  returned: always
  type: str
  sample: shut down
crash_recovered:
  description:
    - Whether the module first ran PostgreSQL's crash recovery on O(data_dir) - a cluster that stopped without a
      shutdown checkpoint (RV(cluster_state) V(in production), V(in crash recovery) or V(shutting down) - killed, or
      its host lost power), with no server running and no C(backup_label). It runs C(postgres --single), which
      accepts no connection, replays the node's own WAL to its real end and stops cleanly; RV(local_end_lsn) and
      RV(discarded) are read after it. In check mode it is only planned (V(false)), and what a rewind would
      discard is known only after it.
  returned: always
  type: bool
  sample: false
running:
  description: Whether a server was running in O(data_dir) (the module then fails).
  returned: always
  type: bool
  sample: false
seconds:
  description: Duration of the copy and the rewind in seconds; C(0.0) when neither ran.
  returned: always
  type: float
  sample: 3.52
msg:
  description: What was (or would be) done, in one sentence.
  returned: always
  type: str
  sample: rewound /var/lib/postgresql/15/main from 10.0.0.12:5432; it is a standby of it now, start it
'''

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import (
    DEBIAN_LIB, check_upstream, find_psql, missing_slot_advice, read_timeline, read_upstream, slot_exists)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import C_ENV, ModuleFailure, run_as
from ansible_collections.hotstandby.postgresql.plugins.module_utils.controldata import (
    CLEAN_STATES, backup_method, parse_controldata, state_problem, wal_end)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import (
    postmaster_pid, read_pg_version, utc_stamp)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import read_setting
from ansible_collections.hotstandby.postgresql.plugins.module_utils.rejoin import (
    copy_data_dir, copy_problem, decide, explain_rewind_error, missing_wal, move_signal_files, parse_timeline_history,
    rewind_args, rewind_did_nothing)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.standby import (
    UPSTREAM_SPEC, make_standby, passfile_diff, passfile_state, settings_plan, upstream_conninfo, write_passfile)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.worker import DataDirWorker, run_worker

ARGUMENT_SPEC = dict(
    UPSTREAM_SPEC,
    data_dir=dict(type='path', required=True),
    bin_dir=dict(type='path'),
    config_file=dict(type='path'),
    slot=dict(type='str'),
    application_name=dict(type='str'),
    discard_diverged=dict(type='bool', default=False),
    restore_target_wal=dict(type='bool', default=True),
    copy_dir=dict(type='path'),
    owner=dict(type='str', default='postgres'),
)

# the result of every run (RETURN); a plan holds these and what apply() needs
RESULT = dict(changed=False, method=None, reason='', needs_clone=False, system_identifier=None, local_timeline=None,
              upstream_timeline=None, fork_lsn=None, local_end_lsn=None, discarded=None, copy_kept_at=None,
              rewound=False, restore_target_wal=False, settings_changed=False, passfile_changed=False,
              primary_conninfo=None, cluster_state=None, running=False, crash_recovered=False, seconds=0.0, msg='')
# a cluster that stopped without a shutdown checkpoint (killed, power lost): crash recovery comes first
CRASHED_STATES = ('in production', 'in crash recovery', 'shutting down')
NOTHING_LOST = dict(start=None, end=None, bytes=0)
STALE_SOURCE = ('pg_rewind found nothing to rewind, so it still sees the upstream on this node\'s timeline in the '
                'upstream\'s control file (it was promoted and has not finished a checkpoint since): run CHECKPOINT '
                'on the upstream and run again; nothing was changed')


class Rejoin(DataDirWorker):
    """plan() reads the node and the upstream and decides, changing nothing; apply(plan) does it."""

    RESULT = RESULT
    KEPT = 'copy_kept_at'  # self.kept: the copy of the data directory was made

    def __init__(self, module):
        super(Rejoin, self).__init__(module)
        self.major = None
        self.outcome = dict(RESULT, discarded=dict(NOTHING_LOST), system_identifier=dict(local=None, upstream=None))

    # -- reading -------------------------------------------------------------

    def source_server(self):
        """pg_rewind's connection to the upstream: a normal one, to database postgres, without password."""
        return upstream_conninfo(self.p, self.app_name, dbname='postgres')

    def read_local(self, plan):
        """The stopped cluster in data_dir as decide() takes it, or None when there is none."""
        version = read_pg_version(self.data_dir)
        if version is None or not version.isdigit():
            return None
        self.major = major = int(version)
        self.bin_dir = self.p['bin_dir'] or os.path.join(DEBIAN_LIB, version, 'bin')
        tool = os.path.join(self.bin_dir, 'pg_controldata')
        if not os.access(tool, os.X_OK):
            raise ModuleFailure('%s does not exist: install postgresql-%d (the version of %s) or set bin_dir'
                                % (tool, major, self.data_dir))
        rc, out, err = self.run([tool, '-D', self.data_dir])
        if rc != 0:
            raise ModuleFailure('"%s -D %s" failed, nothing was changed: %s' % (tool, self.data_dir, err.strip()))
        try:
            cd = parse_controldata(out)
        except ValueError as e:
            raise ModuleFailure('%s, nothing was changed' % to_native(e))
        pid = postmaster_pid(self.data_dir)
        plan.update(cluster_state=cd['state'], running=bool(pid))
        if cd['state'] in CRASHED_STATES and not pid and backup_method(self.data_dir) is None:
            if self.module.check_mode:
                return 'crashed'
            cd = self.crash_recover(tool, cd['state'])
            plan.update(cluster_state=cd['state'], crash_recovered=True)
        problem = state_problem(cd, self.data_dir, pid, backup_method(self.data_dir), self.p['config_file'])
        if problem:
            raise ModuleFailure(problem)
        timeline, end, end_is_record_start = wal_end(cd)
        local = dict(cd, major=major, timeline=timeline, end_lsn=end, end_is_record_start=end_is_record_start,
                     history=None)
        path = os.path.join(self.data_dir, 'pg_wal', '%08X.history' % timeline)
        if timeline > 1 and os.path.exists(path):
            try:
                with open(path) as f:
                    local['history'] = parse_timeline_history(f.read())
            except (IOError, OSError, ValueError) as e:
                raise ModuleFailure('cannot read the timeline history %s: %s; nothing was changed' % (path,
                                                                                                      to_native(e)))
        return local

    def crash_recover(self, tool, state):
        """PostgreSQL's own crash recovery of the stopped cluster, in single-user mode (no connection can reach it,
        so nothing is written but its recovery), then its control data again; the copy kept before a rewind is
        made after this, from the recovered directory."""
        args = [os.path.join(self.bin_dir, 'postgres'), '--single', '-D', self.data_dir]
        if self.p['config_file']:
            args += ['-c', 'config_file=%s' % self.p['config_file']]
        self.touched = True
        # single-user mode reads commands from stdin: empty lines, then the end of input, end it
        rc, out, err = self.module.run_command(list(self.runuser) + args + ['template1'], data='\n',
                                               environ_update=dict(C_ENV), cwd='/')
        if rc != 0:
            raise ModuleFailure('%s was not shut down cleanly (Database cluster state "%s") and its crash recovery '
                                '(postgres --single) failed with rc %d: %s. Its data directory is as PostgreSQL '
                                'left it; look at the error, fix it and run again'
                                % (self.data_dir, state, rc, ' '.join((err or out).split())[-2000:]))
        rc, out, err = self.run([tool, '-D', self.data_dir])
        if rc != 0:
            raise ModuleFailure('"%s -D %s" failed after the crash recovery: %s' % (tool, self.data_dir, err.strip()))
        return parse_controldata(out)

    def read_upstream(self):
        """The upstream as decide() takes it (and its parsed history)."""
        self.psql_bin = find_psql(self.module, self.bin_dir)
        info = read_upstream(self.replication_sql, self.host, self.port, self.user)
        check_upstream(info, self.where, self.slot)
        info['full_page_writes'], text = read_timeline(self.replication_sql, info['timeline'], self.where)
        try:
            history = parse_timeline_history(text)
        except ValueError as e:
            raise ModuleFailure('the upstream %s sent a timeline history that is not understood (%s): %r'
                                % (self.where, to_native(e), text))
        if self.slot and info['major'] >= 15 and not slot_exists(self.replication_sql, self.slot, self.where):
            self.module.warn('the replication slot "%s" does not exist on the upstream %s, so this node cannot stream '
                             'once started: %s' % (self.slot, self.where, missing_slot_advice(self.slot)))
        return info, history

    # -- deciding --------------------------------------------------------------

    def plan(self):
        """Read the node and the upstream and decide what to do; changes nothing anywhere."""
        plan = self.outcome = dict(RESULT, discarded=dict(NOTHING_LOST), system_identifier=dict(local=None,
                                                                                                upstream=None),
                                   current=None, diff=dict(before='', after=''), dry_run_note=None)
        local = self.read_local(plan)
        if local == 'crashed':
            plan.update(changed=True, method='rewind', discarded=dict(start=None, end=None, bytes=None),
                        reason='the cluster was not shut down cleanly (Database cluster state "%s")'
                        % plan['cluster_state'])
            plan['msg'] = ('%s was not shut down cleanly (%s): a real run first lets PostgreSQL recover it in '
                           'single-user mode (no connections), then rewinds it if it has WAL %s does not have '
                           '(what that discards is known only after the recovery)'
                           % (self.data_dir, plan['cluster_state'], self.where))
            return plan
        if local is None:
            plan.update(method='clone', needs_clone=True, discarded=dict(start=None, end=None, bytes=None),
                        reason='there is no PostgreSQL data directory in %s' % self.data_dir)
            plan['msg'] = '%s holds no cluster to rejoin: clone it from %s' % (self.data_dir, self.where)
            return plan
        upstream, history = self.read_upstream()
        decision = decide(local, upstream, history, local['history'])
        plan.update(decision, system_identifier=dict(local=local['system_identifier'],
                                                     upstream=upstream['system_identifier']),
                    local_timeline=local['timeline'], upstream_timeline=upstream['timeline'])
        if plan['method'] == 'refuse':
            raise ModuleFailure(plan['reason'])
        if plan['method'] == 'clone':
            plan.update(needs_clone=True, msg='%s must be cloned from %s (pg_basebackup with existing_data: '
                        'move_aside and reclone: true): %s' % (self.data_dir, self.where, plan['reason']))
            return plan
        plan['primary_conninfo'] = upstream_conninfo(self.p, self.app_name, passfile=self.passfile)
        settings = settings_plan(self.data_dir, plan['primary_conninfo'], self.slot)
        dummy, state, plan['passfile_changed'] = passfile_state(self.passfile, self.p, self.owner)
        before, after = passfile_diff(self.passfile, self.p, state)
        plan['diff'] = dict(before=settings['before'] + before, after=settings['after'] + after)
        if plan['method'] == 'none':
            plan.update(settings_changed=settings['changed'], current=settings['current'])
            plan['changed'] = plan['settings_changed'] or plan['passfile_changed']
            plan['msg'] = self.none_message(plan, done=False)
        else:
            self.plan_rewind(plan, local['major'])
        return plan

    def plan_rewind(self, plan, major):
        if plan['cluster_state'] not in CLEAN_STATES:  # rewound before, and not started since
            raise ModuleFailure('%s was rewound and not started since, and pg_rewind only rewinds a cleanly stopped '
                                'cluster: start it once (it recovers as a standby) and stop it cleanly, then run '
                                'again; nothing was changed' % self.data_dir)
        if not os.access(os.path.join(self.bin_dir, 'pg_rewind'), os.X_OK):
            raise ModuleFailure('%s/pg_rewind does not exist: install postgresql-%d or set bin_dir'
                                % (self.bin_dir, major))
        plan['restore_target_wal'] = self.restore_wanted(major)
        if plan['discarded']['bytes'] and not self.p['discard_diverged']:
            plan['copy_kept_at'] = self.p['copy_dir'] or '%s.diverged-%s' % (self.data_dir, utc_stamp())
            problem = copy_problem(self.data_dir, plan['copy_kept_at'])
            if problem:
                raise ModuleFailure('a copy of %s is needed before the rewind, which undoes %d bytes of its WAL: %s; '
                                    'nothing was changed' % (self.data_dir, plan['discarded']['bytes'], problem))
        rc, out, err = self.run(rewind_args(self.bin_dir, self.data_dir, self.source_server(), major,
                                            self.p['config_file'], dry_run=True), password=True)
        if rc != 0 and missing_wal(err) and plan['restore_target_wal']:
            plan['dry_run_note'] = 'the dry run missed WAL that the rewind fetches with restore_command'
        elif rc != 0:
            why, plan['needs_clone'] = explain_rewind_error(err, rc, self.host, self.port, self.user)
            raise ModuleFailure('pg_rewind --dry-run failed, nothing was changed: %s' % why)
        elif rewind_did_nothing(out + err):
            raise ModuleFailure(STALE_SOURCE)
        plan.update(changed=True, settings_changed=True)
        lost = '%d bytes of WAL after %s are undone%s' % (
            plan['discarded']['bytes'], plan['fork_lsn'], ', after a copy to %s' % plan['copy_kept_at']
            if plan['copy_kept_at'] else '')
        plan['diff']['before'] = 'data directory %s: WAL diverged from %s at %s up to %s\n' % (
            self.data_dir, self.where, plan['fork_lsn'], plan['local_end_lsn']) + plan['diff']['before']
        plan['diff']['after'] = 'data directory %s: rewound from %s (%s)\n' % (
            self.data_dir, self.where, lost) + plan['diff']['after']
        plan['msg'] = 'would rewind %s from %s with pg_rewind (%s%s), then make it a standby of it' % (
            self.data_dir, self.where, lost, '; %s' % plan['dry_run_note'] if plan['dry_run_note'] else '')

    def restore_wanted(self, major):
        """Whether pg_rewind gets --restore-target-wal: asked for, a restore_command set, and readable by it."""
        if not self.p['restore_target_wal'] or not read_setting('restore_command', self.p['config_file'],
                                                                self.data_dir):
            return False
        if os.path.exists(os.path.join(self.data_dir, 'postgresql.conf')) or (major >= 15 and self.p['config_file']):
            return True
        self.module.warn('restore_command is set, but pg_rewind %d reads it from %s/postgresql.conf only (config_file '
                         'needs PostgreSQL 15): it is not used, so WAL missing from pg_wal makes the rewind fail'
                         % (major, self.data_dir))
        return False

    def none_message(self, plan, done):
        if not plan['changed']:
            return '%s is already a standby of %s; nothing to do' % (self.data_dir, self.where)
        return '%s has no WAL that %s lacks, so it needs no rewind; its standby settings %s written: start it' % (
            self.data_dir, self.where, 'were' if done else 'would be')

    # -- doing -----------------------------------------------------------------

    def apply(self, plan):
        """Do what plan() decided (a real run)."""
        if plan['method'] == 'none':
            if plan['settings_changed']:
                make_standby(self.data_dir, plan['primary_conninfo'], self.slot, self.owner, plan['current'])
                self.touched = True
            if plan['passfile_changed']:
                self.touched = write_passfile(self.passfile, self.p, self.owner) or self.touched
            plan['msg'] = self.none_message(plan, done=True)
        elif plan['method'] == 'rewind':
            self.rewind(plan)
        return plan

    def rewind(self, plan):
        """Keep a copy if asked, move the signal files away, run pg_rewind, then make the directory a standby."""
        start = time.time()
        copy = plan['copy_kept_at']
        if copy:
            rc, err = copy_data_dir(lambda args: run_as(self.module, [], args),
                                    self.module.get_bin_path('cp', required=True), self.data_dir, copy)
            if rc != 0:
                shutil.rmtree(copy, ignore_errors=True)
                raise ModuleFailure('copying %s to %s failed, nothing was changed (the partial copy was removed): %s'
                                    % (self.data_dir, copy, err.strip()))
            self.kept = self.touched = True
        moved = move_signal_files(self.data_dir)
        self.touched = True  # from here on the data directory may change
        rc, out, err = self.run(rewind_args(self.bin_dir, self.data_dir, self.source_server(), self.major,
                                            self.p['config_file'], plan['restore_target_wal']), password=True)
        plan['seconds'] = round(time.time() - start, 3)
        if rc != 0:
            why, plan['needs_clone'] = explain_rewind_error(err, rc, self.host, self.port, self.user)
            raise ModuleFailure('pg_rewind failed: %s.%s%s Do not start the server before it is rewound or cloned' % (
                why, ' A copy of the data directory from before the rewind is at %s.' % copy if copy else '',
                ' Its %s moved to %s (not put back, so that it is not taken for a standby).' % (
                    ', '.join(os.path.basename(a) for a, b in moved), ', '.join(b for a, b in moved)) if moved else ''))
        if rewind_did_nothing(out + err):  # the data directory is as it was: so are its signal files
            for original, away in moved:
                os.replace(away, original)
            self.touched = self.kept
            raise ModuleFailure(STALE_SOURCE + (' (the copy %s was made)' % copy if copy else ''))
        plan['rewound'] = self.touched = True
        # pg_rewind copied the upstream's postgresql.auto.conf: the standby settings are written anew
        make_standby(self.data_dir, plan['primary_conninfo'], self.slot, self.owner)
        write_passfile(self.passfile, self.p, self.owner)
        for dummy, away in moved:
            os.unlink(away)
        plan['msg'] = 'rewound %s from %s in %.1f s (%d bytes of WAL after %s undone%s); it is a standby of it now, ' \
                      'start it' % (self.data_dir, self.where, plan['seconds'], plan['discarded']['bytes'],
                                    plan['fork_lsn'], ', a copy from before is at %s' % copy if copy else '')

    # -- results ---------------------------------------------------------------

    def unexpected(self, error):
        return 'unexpected error: %s%s' % (error, '; a copy of the data directory is at %s' % (
            self.outcome['copy_kept_at']) if self.kept else '')


def main():
    run_worker(Rejoin(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)))


if __name__ == '__main__':
    main()
