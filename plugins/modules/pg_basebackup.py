#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_basebackup
short_description: Turn a host into a streaming-replication standby of a PostgreSQL primary, safely and idempotently
version_added: 0.1.0
description:
  - Runs on the B(standby) host, normally as C(root) with C(become), and performs the base-backup handoff
    from the upstream server (the primary, or the standby a cascading standby streams from) the way a careful DBA
    would do it by hand.
  - Connects to the upstream through a replication connection (C(psql) as O(owner)) and checks, before a single
    byte is copied, that the credentials, C(pg_hba.conf), the C(REPLICATION) attribute, C(wal_level),
    C(max_wal_senders), the major version of the local binaries and O(slot) are all usable. Every problem
    found is reported with what was found and what to do next.
  - Reads O(data_dir) and classifies it (returned as RV(case)) as V(missing), V(empty), V(standby) (already a
    standby of this primary, nothing is copied), V(pristine) (a freshly initdb'ed cluster without user data,
    such as the C(main) cluster the Debian package creates) or V(foreign) (anything else).
  - A V(standby) data directory is only reconciled - C(primary_conninfo), C(primary_slot_name), C(standby.signal)
    and the passfile are rewritten if they differ (RV(settings_changed)); the caller should then reload the server.
    This works while its server runs.
  - With O(follow=true) a standby of the same system that streams from another upstream (a sibling of a promoted
    standby, still pointing at the old primary) is re-pointed the same way, without a clone (RV(followed)).
  - Otherwise the primary is cloned with C(pg_basebackup) into a staging directory next to O(data_dir)
    (C(<parent>/.<basename>.hotstandby-staging/data)), optionally verified with C(pg_verifybackup), given its
    standby settings, and only then renamed into place. An interrupted run never leaves a half-copied O(data_dir);
    the next run removes the leftover staging directory (marked by a C(HOTSTANDBY_STAGING) file) and starts over.
  - C(pg_basebackup) runs with C(--progress); its output - a progress line a second with the kB copied, the
    estimated total and the percentage, and its messages - goes to C(progress.log) in the staging directory (also
    for a clone in place into a mount point), a file of the user the module runs as, mode C(0600). It goes away
    with the staging directory, when the clone is in place or has failed. M(hotstandby.postgresql.pg_basebackup_wait)
    reads it to show the progress of a clone that runs in the background (C(async)). An error message of the module
    quotes C(pg_basebackup)'s messages without the progress lines. With C(--progress) the upstream first adds up
    the size of its files, so that C(pg_stat_progress_basebackup) on it has C(backup_total) too.
  - A V(pristine) directory is renamed aside to C(<data_dir>.moved-<UTC timestamp>) and replaced.
    A V(foreign) directory is only renamed aside with O(existing_data=move_aside), otherwise the module fails.
    The module never deletes anything but its own staging directory and lock file and a consumed O(reclone_marker).
  - Runs for the same O(data_dir) exclude each other. A run holds an exclusive C(flock) on
    C(<parent>/.<basename>.hotstandby-lock) from its start to its end, then removes the file; a second run at the
    same time fails at once, naming the pid of the first. Check mode only tests an existing lock file (and fails if
    it is held), it creates none.
  - The password reaches C(psql) and C(pg_basebackup) only in their environment (C(PGPASSWORD), kept by C(runuser)),
    never on a command line, in a temporary file, in C(postgresql.auto.conf), in the result or in the diff.
  - There is no internal timeout; a clone of a large cluster may run for hours, use C(async) for that, and
    M(hotstandby.postgresql.pg_basebackup_wait) to wait for it while showing its progress.
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
      - Connects to the primary read-only (C(IDENTIFY_SYSTEM), C(SHOW), C(READ_REPLICATION_SLOT)) to classify
        O(data_dir) and reports what would happen (RV(case), RV(action), RV(moved_to), RV(running), RV(followed))
        without changing anything and without writing any file.
  diff_mode:
    support: full
    details:
      - Shows the standby settings (presence of C(standby.signal), C(primary_conninfo), C(primary_slot_name)) and the
        state of the passfile entry before and after, and for a re-point with O(follow) the previous and the new
        upstream. The password is never shown.
  platform:
    platforms: posix
options:
  data_dir:
    description:
      - Data directory of the standby, for example C(/var/lib/postgresql/15/main).
      - If it is a symbolic link, the directory it points to is used.
      - If it is a mount point it cannot be renamed; see O(existing_data).
    type: path
    required: true
  slot:
    description:
      - Name of a physical replication slot on the upstream server, used by the clone and by the standby
        (C(primary_slot_name)). Lower-case letters, digits and underscores, at most 63 characters.
      - The slot must exist; the module does not create or drop slots (the hotstandby.postgresql roles create
        them on the upstream with M(community.postgresql.postgresql_slot)). If the upstream runs PostgreSQL 15 or
        newer the module checks this first (C(READ_REPLICATION_SLOT)) and fails before copying anything when the
        slot is missing; for an existing standby it only warns. With older upstreams C(pg_basebackup) reports it.
      - If omitted, the clone uses a temporary slot and no C(primary_slot_name) is configured
        (an existing one is removed).
    type: str
  application_name:
    description:
      - C(application_name) of the standby's connection (as used in C(synchronous_standby_names) and
        shown in C(pg_stat_replication)).
      - Defaults to the short host name of the standby.
    type: str
  checkpoint:
    description:
      - Checkpoint mode at the start of the backup (C(pg_basebackup -c)).
    type: str
    choices: [fast, spread]
    default: fast
  max_rate:
    description:
      - Maximum transfer rate of the clone, in C(pg_basebackup -r) syntax, for example V(100M) or V(32768k).
    type: str
  wal_method:
    description:
      - How the WAL needed by the clone is included (C(pg_basebackup -X)).
    type: str
    choices: [stream, fetch]
    default: stream
  verify:
    description:
      - Run C(pg_verifybackup) on the staged copy before it is moved into place; a failed verification
        fails the module and leaves O(data_dir) untouched.
      - Skipped (and explained in RV(verify_note)) when C(pg_verifybackup) or the C(backup_manifest) is missing.
    type: bool
    default: true
  bin_dir:
    description:
      - Directory with the PostgreSQL client binaries (C(pg_basebackup), C(psql), C(pg_verifybackup)).
      - Defaults to C(/usr/lib/postgresql/<major>/bin), where C(<major>) is the primary's major version.
        If that does not exist the module fails and lists the versions that are installed.
      - If given, its C(pg_basebackup) must be of the primary's major version.
    type: path
  existing_data:
    description:
      - What to do when O(data_dir) holds real data that is not a standby of this primary (RV(case=foreign)).
      - V(fail) stops with a message describing what was found.
      - V(move_aside) renames the directory to C(<data_dir>.moved-<YYYYmmddTHHMMSSZ>) and clones.
        Nothing is deleted; remove the moved directory yourself when you no longer need it.
      - A V(pristine) directory is always moved aside, regardless of this option. Pristine means - PG_VERSION
        present, no database directory or relation file with an OID of 16384 or above, no tablespace, no replication
        slot, no file that initdb does not create, and no standby.signal, recovery.signal or backup_label.
      - A running server in a directory that would be moved makes the module fail (in check mode it reports
        RV(running=true) instead); stop the server first.
      - If O(data_dir) is a mount point it cannot be renamed. The module then only clones into it when it is
        empty, or when it holds an interrupted clone of this module (marked by the staging marker file); in
        that case the interrupted clone's files are removed from the mount point before cloning again.
        Any other content of a mount point makes the module fail; using a sub-directory of the mount as
        O(data_dir) is recommended.
    type: str
    choices: [fail, move_aside]
    default: fail
  reclone:
    description:
      - Clone again even when O(data_dir) is already a standby of this primary (RV(case=standby)), for example
        because the standby fell so far behind that the primary no longer has the WAL it needs (its slot was
        lost).
      - The existing directory is renamed aside to C(<data_dir>.moved-<YYYYmmddTHHMMSSZ>) like with
        O(existing_data=move_aside), never deleted; the result has RV(case=standby), RV(action=clone) and
        RV(moved_to).
      - The server running in O(data_dir) must be stopped first (in check mode RV(running) says whether it runs).
      - Does not change how other cases are handled; a V(foreign) directory still follows O(existing_data).
    type: bool
    default: false
  reclone_marker:
    description:
      - A file on the standby that records that a re-clone is needed, so that a re-clone that fails or is
        interrupted is done again by the next run. The hotstandby.postgresql roles write it when the upstream
        made the standby's slot anew.
      - When a file (or symbolic link) exists at this path, the run behaves as with O(reclone=true)
        (RV(reclone_marker_found=true)). The module removes the file only after the clone (and its
        verification) succeeded and the new data directory is in place; a failed run leaves it. Check mode
        only reports it.
      - Nothing happens when no file exists there; a directory at this path makes the module fail.
    type: path
    version_added: 0.1.0
  follow:
    description:
      - Re-point a running (or stopped) standby at the upstream O(primary_host):O(primary_port) without cloning it,
        for example the siblings of the standby that a switchover or failover promoted.
      - With V(true), a data directory with the upstream's system identifier, a C(standby.signal) and a
        C(primary_conninfo) that names another host or port (it streams, or tries to, from the old primary or
        another upstream of the same system) is treated as RV(case=standby) - RV(action=update_settings) rewrites
        C(primary_conninfo) and C(primary_slot_name) in C(postgresql.auto.conf) and writes the new upstream's entry
        into O(passfile) (other entries are kept); RV(followed) is true and RV(msg) names the previous upstream. The
        server may keep running; nothing is copied, moved or deleted.
      - The caller must then reload the server (PostgreSQL 13 and newer apply a changed C(primary_conninfo) on
        reload; the WAL receiver reconnects to the new upstream).
      - The standby must not have replayed WAL beyond the point where the new upstream switched to its new timeline
        (for the siblings of a standby promoted by a switchover with a clean shutdown of the old primary this holds).
        The module cannot see that. If it did replay further, streaming from the new upstream fails after the reload
        (the server log says the requested starting point is ahead of the timeline switch point, or that the new
        timeline is not a child of its history); then stop the server and rewind it with
        M(hotstandby.postgresql.pg_rejoin) or clone it again (O(reclone)).
      - If O(slot) is set, the slot must already exist on the new upstream. With an upstream of PostgreSQL 15 or
        newer the module checks this and fails without re-pointing when the slot is missing.
      - A data directory of the same system that is not in standby mode (no C(standby.signal) - a former primary)
        is still V(foreign) with O(follow=true); rejoining a former primary is the job of
        M(hotstandby.postgresql.pg_rejoin). A standby whose C(primary_conninfo) names no host is V(foreign) too.
      - With V(false) a standby of the same system that points at another upstream is V(foreign), as before.
      - Does not change how other cases are handled. With O(reclone=true) (or a found O(reclone_marker)) such a
        standby is cloned again instead of re-pointed.
    type: bool
    default: false
    version_added: 0.1.0
  owner:
    description:
      - Operating system user that owns O(data_dir) and runs C(pg_basebackup), C(psql) and C(pg_verifybackup)
        (through C(runuser) when the module runs as C(root)).
    type: str
    default: postgres
notes:
  - The module does not start, stop or reload the server. Call it in check mode first and stop the service when
    RV(running) is true and RV(action) is V(clone); reload the service when RV(settings_changed) is true (also
    after a re-point with O(follow), RV(followed)); start it after a clone.
  - The replication role needs a C(host replication) line in the primary's C(pg_hba.conf) for the standby's address.
  - The system identifier of an existing data directory is read directly from C(global/pg_control).
  - When C(pg_basebackup) dies (or a previous run was killed), the module terminates leftover C(pg_basebackup)
    processes still writing into its own staging directory (the WAL streaming child outlives a killed parent) first.
seealso:
  - name: pg_basebackup
    description: The PostgreSQL program used for the clone.
    link: https://www.postgresql.org/docs/current/app-pgbasebackup.html
  - name: Streaming replication
    description: Setting up a standby server.
    link: https://www.postgresql.org/docs/current/warm-standby.html
  - module: community.postgresql.postgresql_slot
  - module: hotstandby.postgresql.pg_basebackup_wait
'''

EXAMPLES = r'''
- name: Find out whether the standby would be cloned while its server runs
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.11
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: standby1
    reclone_marker: /var/lib/postgresql/15/.main.reclone-needed
  check_mode: true
  register: basebackup_plan

- name: Stop the server before the clone replaces its data directory
  ansible.builtin.service:
    name: postgresql@15-main
    state: stopped
  when: basebackup_plan.action == 'clone' and basebackup_plan.running

- name: Clone the primary, or reconcile the settings of an existing standby
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.11
    primary_port: 5432
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: standby1
    reclone_marker: /var/lib/postgresql/15/.main.reclone-needed
    max_rate: 200M
    sslmode: verify-full
    sslrootcert: /etc/postgresql-common/root.crt
  async: 86400
  poll: 0
  register: basebackup_job

- name: Wait for the clone, printing its progress every 10 seconds
  hotstandby.postgresql.pg_basebackup_wait:
    jid: "{{ basebackup_job.ansible_job_id }}"
    progress_file: /var/lib/postgresql/15/.main.hotstandby-staging/progress.log
    upstream: 10.0.0.11
    timeout: 86400
  register: basebackup

- name: Reload after changed settings
  ansible.builtin.service:
    name: postgresql@15-main
    state: reloaded
  when: basebackup.settings_changed and basebackup.action != 'clone'

- name: After a switchover, re-point a sibling standby at the new primary (its server keeps running)
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.12
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: standby3
    follow: true
  register: repoint

- name: Reload, so that the standby streams from the new primary
  ansible.builtin.service:
    name: postgresql@15-main
    state: reloaded
  when: repoint.settings_changed

- name: Replace whatever is in the data directory (it is renamed aside, not deleted)
  hotstandby.postgresql.pg_basebackup:
    data_dir: /srv/pgdata/15/main
    primary_host: db1.example.com
    user: replicator
    password: "{{ postgres_replication_password }}"
    existing_data: move_aside
    bin_dir: /usr/lib/postgresql/15/bin
'''

RETURN = r'''
case:
  description:
    - Classification of O(data_dir) before the run.
    - V(missing) does not exist, V(empty) exists without entries, V(standby) is a standby of this primary (with
      O(follow=true) also a standby of the same system that streams from another upstream, see RV(followed)),
      V(pristine) is a freshly initialised cluster without user data, V(foreign) is anything else.
  returned: always
  type: str
  sample: pristine
action:
  description:
    - What was done (or would be done in check mode).
    - V(clone) copied the primary, V(update_settings) only rewrote standby settings, the passfile or removed a
      leftover staging directory, V(none) changed nothing.
  returned: always
  type: str
  sample: clone
moved_to:
  description: Where the previous content of O(data_dir) was (or would be) renamed to, or C(null).
  returned: always
  type: str
  sample: /var/lib/postgresql/15/main.moved-20260126T101500Z
cleaned_staging:
  description: Whether a leftover staging directory of an interrupted run was (or would be) removed.
  returned: always
  type: bool
  sample: false
bytes:
  description: Size of the copied data directory in bytes (sum of the file sizes of the clone); C(0) without clone.
  returned: always
  type: int
  sample: 31684091
seconds:
  description: Duration of the C(pg_basebackup) run in seconds; C(0.0) without clone.
  returned: always
  type: float
  sample: 2.41
bytes_per_second:
  description: RV(bytes) divided by RV(seconds); C(0) without clone.
  returned: always
  type: int
  sample: 13146925
system_identifier:
  description: Database system identifier of the primary, as reported by C(IDENTIFY_SYSTEM).
  returned: always
  type: str
  sample: "7712491459935377245"
primary_version:
  description: Major version of the primary.
  returned: always
  type: int
  sample: 15
slot:
  description: The replication slot configured for the standby (O(slot)), or C(null).
  returned: always
  type: str
  sample: standby1
data_dir:
  description: The data directory (after resolving a symbolic link).
  returned: always
  type: str
  sample: /var/lib/postgresql/15/main
staging_dir:
  description: The staging directory used (or that would be used) for the clone.
  returned: always
  type: str
  sample: /var/lib/postgresql/15/.main.hotstandby-staging
verified:
  description: Whether C(pg_verifybackup) verified the clone successfully.
  returned: always
  type: bool
  sample: true
verify_note:
  description: Why verification was skipped, or a short result of it; empty when nothing was cloned.
  returned: always
  type: str
  sample: backup successfully verified
settings_changed:
  description:
    - Whether C(standby.signal), C(primary_conninfo) or C(primary_slot_name) of an existing standby were (or would be)
      rewritten. The server must then be reloaded. Also true after a clone.
  returned: always
  type: bool
  sample: false
passfile_changed:
  description: Whether the entry in O(passfile) was (or would be) written or changed.
  returned: always
  type: bool
  sample: false
passfile:
  description: Path of the passfile used by the standby.
  returned: always
  type: str
  sample: /var/lib/postgresql/.pgpass_replication
primary_conninfo:
  description: The C(primary_conninfo) of the standby (contains no password).
  returned: always
  type: str
  sample: host=10.0.0.11 port=5432 user=replicator passfile=/var/lib/postgresql/.pgpass_replication application_name=db2
running:
  description:
    - Whether a server is running in O(data_dir) (a live C(postmaster.pid)). In check mode a running server in a
      directory that would be moved aside is reported here instead of failing.
  returned: always
  type: bool
  sample: false
followed:
  description:
    - Whether O(data_dir) was a standby of the same system streaming from another upstream and was (or, in check
      mode, would be) re-pointed at O(primary_host):O(primary_port) (only with O(follow=true)); RV(msg) names the
      previous upstream. Reload the server then. False when it was cloned again instead (O(reclone)).
  returned: always
  type: bool
  sample: true
  version_added: 0.1.0
reclone_marker_found:
  description: Whether a file existed at O(reclone_marker), so that the run cloned again (see O(reclone)).
  returned: always
  type: bool
  sample: false
msg:
  description: Human-readable summary.
  returned: always
  type: str
  sample: cloned 10.0.0.11:5432 (PostgreSQL 15) into /var/lib/postgresql/15/main
'''

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import (
    basebackup_args, check_upstream, clone_done_message, clone_plan_text, discard_clone, explain_basebackup_error,
    find_bin_dir, find_psql, missing_slot_advice, read_upstream, settings_message, slot_exists, strip_progress,
    verify_backup)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import (
    ModuleFailure, chown, fsync_dir, run_as_to_file)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import (
    STAGING_SUFFIX, classify_data_dir, clear_reclone_marker, conninfo_upstream, create_staging, dir_size,
    leftover_staging, move_aside, postmaster_pid, reclone_marker_found, replace_empty_dir, service_hint, sibling_path,
    utc_stamp)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import (
    conninfo_points_at, sweep_temp_passfiles)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import (
    read_standby_settings, standby_settings_text)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.standby import (
    UPSTREAM_SPEC, make_standby, passfile_diff, passfile_state, settings_plan, upstream_conninfo, write_passfile)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.worker import DataDirWorker, run_worker

ARGUMENT_SPEC = dict(
    UPSTREAM_SPEC,
    data_dir=dict(type='path', required=True),
    slot=dict(type='str'),
    application_name=dict(type='str'),
    checkpoint=dict(type='str', choices=['fast', 'spread'], default='fast'),
    max_rate=dict(type='str'),
    wal_method=dict(type='str', choices=['stream', 'fetch'], default='stream'),
    verify=dict(type='bool', default=True),
    bin_dir=dict(type='path'),
    existing_data=dict(type='str', choices=['fail', 'move_aside'], default='fail'),
    reclone=dict(type='bool', default=False),
    reclone_marker=dict(type='path'),
    follow=dict(type='bool', default=False),
    owner=dict(type='str', default='postgres'),
)

# the result of every run (RETURN); a plan holds these and what apply() needs
RESULT = dict(changed=False, case=None, action='none', moved_to=None, cleaned_staging=False, bytes=0, seconds=0.0,
              bytes_per_second=0, system_identifier=None, primary_version=None, slot=None, data_dir=None,
              staging_dir=None, verified=False, verify_note='', settings_changed=False, passfile_changed=False,
              passfile=None, primary_conninfo=None, running=False, reclone_marker_found=False, followed=False,
              msg='')
MOVED_CASES = ('pristine', 'foreign', 'standby')
# pg_basebackup's output (its --progress lines and its messages), in the staging directory while it runs
PROGRESS_FILE = 'progress.log'


class BaseBackup(DataDirWorker):
    """plan() reads the standby and the upstream and decides, changing nothing; apply(plan) does it."""

    RESULT = RESULT
    KEPT = 'moved_to'  # self.kept: the previous data directory was moved there

    def __init__(self, module):
        super(BaseBackup, self).__init__(module)
        self.parent = os.path.dirname(self.data_dir.rstrip('/'))
        self.staging = sibling_path(self.data_dir, STAGING_SUFFIX)
        self.primary = None
        self.outcome = dict(RESULT, slot=self.slot, data_dir=self.data_dir, staging_dir=self.staging)

    # -- reading -------------------------------------------------------------

    def check_directories(self):
        if not os.path.isdir(self.parent):
            raise ModuleFailure('the parent directory %s of data_dir does not exist: install the PostgreSQL server '
                                'package or create it (owned by %s)' % (self.parent, self.p['owner']))

    def conninfo(self, replication=False, passfile=None):
        """For the module's own connections (replication: the walsender protocol) or, with passfile, the standby's."""
        return upstream_conninfo(self.p, self.app_name, replication, passfile)

    def preflight(self, plan):
        """Read and check the upstream (read-only replication commands)."""
        self.psql_bin = find_psql(self.module, self.p['bin_dir'])
        info = read_upstream(self.replication_sql, self.host, self.port, self.user)
        plan.update(system_identifier=info['system_identifier'], primary_version=info['major'])
        check_upstream(info, self.where, self.slot)
        info['slot_exists'] = slot_exists(self.replication_sql, self.slot, self.where) \
            if self.slot and info['major'] >= 15 else None
        self.primary = info

    def passfile_state(self):
        """(new_text, state, changed) of the managed passfile; state is missing/outdated/current."""
        return passfile_state(self.passfile, self.p, self.owner)

    # -- deciding --------------------------------------------------------------

    def plan(self):
        """Read the state of the standby and the upstream and decide what to do; changes nothing anywhere."""
        plan = self.outcome = dict(RESULT, slot=self.slot, data_dir=self.data_dir, staging_dir=self.staging,
                                   passfile=self.passfile, diff=dict(before='', after=''), blocked=None,
                                   in_place=False, leftover_in_place=False, current=None, previous_upstream=None)
        plan['reclone_marker_found'] = reclone_marker_found(self.p['reclone_marker'])
        self.preflight(plan)
        plan['primary_conninfo'] = self.conninfo(passfile=self.passfile)
        plan['cleaned_staging'], plan['leftover_in_place'] = leftover_staging(self.staging, self.data_dir)
        pid = None
        if plan['leftover_in_place']:
            case, found = 'empty', None  # the interrupted clone in the mount point is removed first
            running = postmaster_pid(self.data_dir)
            if running:
                plan['blocked'] = ('a server (pid %d) is running in %s, which holds an interrupted clone: stop it (%s) '
                                   'and run again' % (running, self.data_dir, service_hint(self.data_dir)))
        else:
            case, found = classify_data_dir(self.data_dir, self.host, self.port, self.primary['system_identifier'],
                                            follow=self.p['follow'])
            pid = postmaster_pid(self.data_dir) if case in MOVED_CASES else None
        if case == 'standby':
            current = read_standby_settings(self.data_dir)['conninfo']
            if not conninfo_points_at(current, self.host, self.port):  # only with follow: streams from elsewhere
                plan['previous_upstream'] = conninfo_upstream(current)
        plan.update(case=case, running=bool(pid))
        dummy, state, plan['passfile_changed'] = self.passfile_state()
        before, after = passfile_diff(self.passfile, self.p, state)
        plan['diff'] = dict(before=before, after=after)
        if case == 'standby' and not (self.p['reclone'] or plan['reclone_marker_found']):
            self.plan_settings(plan)
        else:
            self.plan_clone(plan, found, pid)
        return plan

    def plan_settings(self, plan):
        settings = settings_plan(self.data_dir, plan['primary_conninfo'], self.slot)
        previous = plan['previous_upstream']
        plan['settings_changed'] = settings['changed']
        if previous and self.slot and self.primary['slot_exists'] is False:
            raise ModuleFailure('the replication slot "%s" does not exist on the new upstream %s:%s, so %s was not '
                                're-pointed (it still points at %s): %s' % (
                                    self.slot, self.host, self.port, self.data_dir, previous,
                                    missing_slot_advice(self.slot)))
        plan['followed'] = bool(previous and settings['changed'])
        head = '# upstream: %s -> %s (re-pointed, follow)\n' % (previous, self.where) if plan['followed'] else ''
        plan['diff'] = dict(before=head + settings['before'] + plan['diff']['before'],
                            after=head + settings['after'] + plan['diff']['after'])
        if self.slot and self.primary['slot_exists'] is False:
            self.module.warn('the replication slot "%s" does not exist on the primary %s:%s, so this standby cannot '
                             'stream: %s' % (self.slot, self.host, self.port, missing_slot_advice(self.slot)))
        plan['current'] = settings['current']
        plan['changed'] = bool(plan['settings_changed'] or plan['passfile_changed'] or plan['cleaned_staging'])
        plan['action'] = 'update_settings' if plan['changed'] else 'none'
        plan['msg'] = settings_message(plan, self.data_dir, self.passfile, self.where,
                                       self.primary['system_identifier'], done=False)

    def plan_clone(self, plan, found, pid):
        case = plan['case']
        if os.path.isdir(self.data_dir) and os.path.ismount(self.data_dir):
            if case != 'empty':
                raise ModuleFailure('%s is a mount point and holds %s; a mount point cannot be renamed aside, so the '
                                    'module cannot replace it: empty it yourself (keep a copy if you need one), or '
                                    'better use a sub-directory of the mount as data_dir (e.g. %s/data)'
                                    % (self.data_dir, found or 'a %s PostgreSQL cluster' % case, self.data_dir))
            plan['in_place'] = True
        if case == 'foreign' and self.p['existing_data'] == 'fail':
            raise ModuleFailure('%s holds %s. It is left untouched. To replace it, set existing_data: move_aside (it '
                                'will be renamed to %s.moved-<timestamp>, not deleted), or move it away yourself, '
                                'then run again.' % (self.data_dir, found, self.data_dir))
        if case in MOVED_CASES:
            plan['moved_to'] = '%s.moved-%s' % (self.data_dir, utc_stamp())
            if pid and not plan['blocked']:
                plan['blocked'] = ('a PostgreSQL server (pid %d) is running in %s, which would have to be moved aside '
                                   'for the clone: stop it first (%s), then run again'
                                   % (pid, self.data_dir, service_hint(self.data_dir)))
        if self.slot and self.primary['slot_exists'] is False:
            raise ModuleFailure('the replication slot "%s" does not exist on the primary %s:%s, nothing was copied: %s'
                                % (self.slot, self.host, self.port, missing_slot_advice(self.slot)))
        self.bin_dir = find_bin_dir(self.module, self.primary['major'], self.p['bin_dir'])
        plan.update(action='clone', changed=True, settings_changed=True)
        before, after, plan['msg'] = clone_plan_text(
            case, self.data_dir, self.where, self.primary['system_identifier'], self.primary['major'], found,
            plan['moved_to'], plan['previous_upstream'], bool(pid))
        plan['diff'] = dict(before=before + plan['diff']['before'], after=after + standby_settings_text(
            True, plan['primary_conninfo'], self.slot) + plan['diff']['after'])

    # -- doing -----------------------------------------------------------------

    def apply(self, plan):
        """Do what plan() decided (a real run)."""
        if plan['blocked']:
            raise ModuleFailure(plan['blocked'])
        sweep_temp_passfiles(os.path.dirname(self.passfile))  # left by killed runs of older versions
        if plan['cleaned_staging']:
            discard_clone(self.staging, self.data_dir, plan['leftover_in_place'])
            self.touched = True
        if plan['action'] == 'clone':
            self.clone(plan)
        elif plan['action'] == 'update_settings':
            if plan['settings_changed']:
                make_standby(self.data_dir, plan['primary_conninfo'], self.slot, self.owner, plan['current'])
                self.touched = True
            if plan['passfile_changed']:
                self.write_passfile()
            plan['msg'] = settings_message(plan, self.data_dir, self.passfile, self.where,
                                           self.primary['system_identifier'], done=True)
        return plan

    def clone(self, plan):
        """Copy the primary into staging (or in place), verify, configure, move into place."""
        in_place, case = plan['in_place'], plan['case']
        target = self.data_dir if in_place else os.path.join(self.staging, 'data')
        create_staging(self.staging, dict(pid=os.getpid(), started_at=utc_stamp(), primary='%s:%s' % (
            self.host, self.port), data_dir=self.data_dir, mode='in_place' if in_place else 'staged'), self.owner)
        if in_place:
            os.chmod(self.data_dir, 0o700)
            chown(self.data_dir, self.owner)
        start = time.time()
        # its progress goes to the staging directory (also in place: the data directory gets nothing but the
        # clone), where pg_basebackup_wait reads it while the run goes on in the background; gone with staging
        rc, out, err = run_as_to_file(
            self.module, self.runuser, basebackup_args(self.bin_dir, target, self.conninfo(False),
                                                       self.p['wal_method'], self.p['checkpoint'], self.p['max_rate'],
                                                       self.slot, progress=True),
            os.path.join(self.staging, PROGRESS_FILE), self.p['password'])
        seconds = time.time() - start
        if rc != 0:
            discard_clone(self.staging, self.data_dir, in_place, ignore_errors=True)
            why = explain_basebackup_error(strip_progress(err), rc, self.slot, self.staging, self.host, self.port,
                                           self.user)
            raise ModuleFailure('cloning failed, %s was not changed: %s' % (self.p['data_dir'], why))
        plan.update(seconds=round(seconds, 3), bytes=dir_size(target))
        plan['bytes_per_second'] = int(plan['bytes'] / seconds) if seconds > 0 else 0
        verified, plan['verify_note'] = verify_backup(self.run, self.bin_dir, target, self.p['verify'])
        if verified is False:
            discard_clone(self.staging, self.data_dir, in_place, ignore_errors=True)
            raise ModuleFailure('pg_verifybackup found the clone damaged, %s was not changed and the staged copy was '
                                'removed: %s' % (self.p['data_dir'], plan['verify_note']))
        plan['verified'] = bool(verified)
        make_standby(target, plan['primary_conninfo'], self.slot, self.owner)
        self.write_passfile()
        if not in_place:
            if case in MOVED_CASES:
                plan['moved_to'] = move_aside(self.data_dir, plan['moved_to'])
                self.kept = self.touched = True
            elif case == 'empty':
                replace_empty_dir(self.data_dir, self.staging)
            os.rename(os.path.join(self.staging, 'data'), self.data_dir)
        os.chmod(self.data_dir, 0o700)
        chown(self.data_dir, self.owner)
        fsync_dir(self.parent)
        if plan['reclone_marker_found']:  # the re-clone it asked for is done and in place
            clear_reclone_marker(self.p['reclone_marker'], self.data_dir)
        shutil.rmtree(self.staging)
        plan['msg'] = clone_done_message(self.where, self.primary['major'], plan['bytes'], plan['seconds'],
                                         self.data_dir, case, plan['moved_to'])

    def write_passfile(self):
        if write_passfile(self.passfile, self.p, self.owner):
            self.touched = True

    # -- results ---------------------------------------------------------------

    def unexpected(self, error):
        return 'unexpected error: %s; %s. A staging directory %s, if left, is removed on the next run' % (
            error, 'the previous data directory was moved to %s' % self.outcome['moved_to'] if self.kept
            else '%s was not moved' % self.data_dir, self.staging)


def main():
    run_worker(BaseBackup(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)))


if __name__ == '__main__':
    main()
