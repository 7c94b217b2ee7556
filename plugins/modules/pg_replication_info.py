#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_replication_info
short_description: Read the streaming-replication state of a PostgreSQL node, primary or standby
version_added: 0.1.0
description:
  - Connects to the PostgreSQL server on the managed host and reads, in one read-only transaction, what a person
    needs to judge its replication - its real role, version, system identifier, timeline and WAL position, the
    standbys that stream from it with their LSNs and lag, its WAL receiver when it is a standby, its physical
    replication slots with the WAL they retain, the base backups running from it, and the settings a switchover
    depends on.
  - Never writes. The transaction is C(READ ONLY) and the module runs only C(SELECT)s.
  - Works on PostgreSQL 13 and newer. A value that a server version does not have (for example
    C(invalidation_reason) of a slot before 17) is returned as V(null), never as an error. A server older than
    13 makes the module fail.
  - Byte lags are computed by the server with C(pg_wal_lsn_diff), so they are right also when the primary is
    idle, when the time-based lags (RV(replication[].replay_lag)) read V(null) or stay at their last value.
  - Every key is returned on every node (RV(hot_standby_settings) only when the server answered); what does not
    apply to the node's role is V(null) (single values) or empty (lists).
  - The login role must be a superuser or a member of C(pg_monitor) to see the LSNs of other sessions and the
    WAL receiver's connection string; C(primary_conninfo) needs superuser or C(pg_read_all_settings) (V(null)
    otherwise).
options:
  data_dir:
    description:
      - The node's data directory (for example C(/var/lib/postgresql/15/main)). When given, the result also says
        what the directory itself holds (RV(data_directory)), and a server that does not answer because none runs
        there (stopped, or not installed yet) is no failure - RV(connected) is V(false) and RV(role) is what the
        directory says (V(standby) with C(standby.signal), else V(primary); V(null) without a cluster).
      - Without it, or while a server runs in it, a failed connection fails the module.
    type: path
  read_files:
    description:
      - Files to read in the same module run, returned in RV(files), such as markers and records kept beside the
        cluster's configuration. A literal C({version}) in a path stands for the data directory's major version
        (RV(data_directory.pg_version), so it needs O(data_dir)).
      - Read as the user the module runs as, at most 1 MiB each. A missing file is no failure (RV(files[].exists)
        is V(false)); a symbolic link is not followed and, like anything that is not a regular file or cannot be
        read, fails the module.
    type: list
    elements: str
    default: []
  rewind_user:
    description:
      - A role to check as the login role of a C(pg_rewind) against this node. The result then names it
        (RV(rewind_user)), says whether it exists (RV(rewind_user_exists)) and lists which of the functions a
        C(pg_rewind) that logs in as a role that is not a superuser needs (PostgreSQL's pg_rewind page) it may not
        execute in the database the module connects to, O(login_db) (RV(rewind_grants_missing)). These are
        pg_catalog.pg_ls_dir(text, boolean, boolean), pg_catalog.pg_stat_file(text, boolean),
        pg_catalog.pg_read_binary_file(text) and pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean).
        Grants are per database, so check the one C(pg_rewind) connects to - V(postgres) for the roles and
        playbooks of this collection, the default of O(login_db).
      - Read in the same read-only transaction as the rest, by one query with C(has_function_privilege), which is
        V(true) for a superuser (none missing then) and counts the privileges of the roles it is a member of, as
        C(pg_rewind) does. The name goes to the server as a query parameter, never into the SQL text, and is
        compared as it is spelled (case-sensitive, without quotes).
      - A role that does not exist is no failure. All four functions are missing then, and RV(rewind_user_exists)
        is V(false).
      - The roles of C(site.yml) use it to skip the grant to the replication role when nothing is missing, and
        the switchover preflight refuses a role with missing grants.
      - Without it, RV(rewind_user), RV(rewind_user_exists) and RV(rewind_grants_missing) are V(null). It must not
        be empty.
    type: str
author:
  - Hotstandby PostgreSQL maintainers (@hotstandby)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hotstandby.postgresql.local_connection
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; check mode runs it unchanged.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - name: Monitoring replication
    description: The views and functions the module reads.
    link: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW
  - module: community.postgresql.postgresql_info
  - module: hotstandby.postgresql.pg_basebackup
'''

EXAMPLES = r'''
- name: Read the replication state of this node
  hotstandby.postgresql.pg_replication_info:
    login_unix_socket: /var/run/postgresql
    login_port: 5432
  become: true
  become_user: postgres
  register: replication

- name: Show how far each standby is behind
  ansible.builtin.debug:
    msg: "{{ item.application_name }}: {{ item.state }}, {{ item.replay_lag_bytes }} bytes behind"
  loop: "{{ replication.replication }}"
  loop_control:
    label: "{{ item.application_name }}"

- name: Require that this standby streams
  ansible.builtin.assert:
    that:
      - replication.role == 'standby'
      - replication.wal_receiver is not none
      - replication.wal_receiver.status == 'streaming'
    fail_msg: "{{ inventory_hostname }} does not stream: {{ replication.wal_receiver }}"

# The status of the whole cluster, one table: playbook hotstandby.postgresql.status
'''

RETURN = r'''
connected:
  description: Whether the server answered. V(false) only with O(data_dir) and no server running there.
  returned: always
  type: bool
  sample: true
connection_error:
  description: Why the server did not answer (with RV(connected) V(false)), else V(null).
  returned: always
  type: str
  sample: null
data_directory:
  description: What the data directory holds, read from its files (V(null) without O(data_dir)).
  returned: always
  type: dict
  contains:
    path:
      description: O(data_dir).
      type: str
      sample: /var/lib/postgresql/15/main
    exists:
      description: Whether it exists.
      type: bool
      sample: true
    system_identifier:
      description: The database system identifier in its C(global/pg_control), V(null) without a cluster.
      type: str
      sample: "7712491459935377245"
    pg_version:
      description: Its C(PG_VERSION).
      type: str
      sample: "15"
    standby_signal:
      description: Whether C(standby.signal) is there.
      type: bool
      sample: true
    running:
      description: Whether a live postmaster uses it.
      type: bool
      sample: true
    port:
      description:
        - The port the running server listens on (from C(postmaster.pid)), else V(null). The module connects to it
          rather than to O(login_port), which may name a new port the server takes only at its next restart.
      type: int
      sample: 5432
    user_data:
      description: What user data it holds (databases, relations, tablespaces), V(null) when none.
      type: str
      sample: database directory base/16384
    checkpoint_timeline:
      description:
        - The timeline of its latest checkpoint, C(Latest checkpoint's TimeLineID) of C(pg_controldata) (run in the C
          locale from C(/usr/lib/postgresql/<pg_version>/bin)), read only while no server runs in it.
        - For a stopped former primary, the timeline it wrote WAL on, which C(site.yml) compares with the primary's
          to rejoin it. V(null) while a server runs there (see RV(timeline)), without a cluster, and when
          C(pg_controldata) is missing or fails.
      type: int
      sample: 1
files:
  description: The files of O(read_files), in order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path read, C({version}) replaced.
      type: str
      sample: /etc/postgresql/15/main/hotstandby-fenced
    exists:
      description:
        - Whether it is there. V(false) also when the path names C({version}) and there is no version to put in
          (no O(data_dir), or no cluster in it).
      type: bool
      sample: false
    content:
      description: Its text, V(null) when it is not there.
      type: str
      sample: null
role:
  description: V(primary), or V(standby) while the server is in recovery.
  returned: always
  type: str
  sample: primary
in_recovery:
  description: C(pg_is_in_recovery).
  returned: always
  type: bool
  sample: false
server_version_num:
  description: C(server_version_num) of the server.
  returned: always
  type: int
  sample: 150018
server_version:
  description: C(server_version) of the server.
  returned: always
  type: str
  sample: 15.18 (Debian 15.18-0+deb12u1)
system_identifier:
  description:
    - The database system identifier from C(pg_control_system), as the unsigned decimal number
      C(pg_controldata) prints. A primary and its standbys share it.
  returned: always
  type: str
  sample: "7712491459935377245"
timeline:
  description:
    - The timeline of the node; where it comes from is in RV(timeline_source).
    - On a primary, the timeline WAL is written on now (from pg_walfile_name(pg_current_wal_lsn())), which is
      right also just after a promotion, while C(pg_control_checkpoint) still shows the old timeline until the
      first checkpoint on the new one.
    - On a standby whose WAL receiver streams, the receiver's C(received_tli) (the timeline of the last WAL
      received and flushed); otherwise the timeline of the last restart point, C(pg_control_checkpoint), which
      may lag behind what has been replayed.
  returned: always
  type: int
  sample: 1
timeline_source:
  description: Where RV(timeline) comes from - V(wal_insert), V(wal_receiver) or V(checkpoint) (see RV(timeline)).
  returned: always
  type: str
  sample: wal_insert
current_wal_lsn:
  description: C(pg_current_wal_lsn) on a primary; V(null) on a standby.
  returned: always
  type: str
  sample: 0/3000148
postmaster_start_time:
  description: C(pg_postmaster_start_time), ISO 8601.
  returned: always
  type: str
  sample: "2026-01-26T10:15:00.123456+00:00"
replication:
  description:
    - One entry per row of C(pg_stat_replication) - the standbys (and C(pg_basebackup) runs) streaming from this
      node, on a primary and on a standby with cascading standbys alike. Empty when none.
    - The byte lags are pg_wal_lsn_diff(reference, <lsn>) computed by the server, where reference is
      C(pg_current_wal_lsn) on a primary and C(pg_last_wal_replay_lsn) on a standby. On a standby a downstream
      can have received more than this node has replayed, so its lags there can be negative.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id of the WAL sender.
      type: int
      sample: 4321
    application_name:
      description: C(application_name) of the standby's connection (in this collection, its inventory name).
      type: str
      sample: db2
    client_addr:
      description: Address the standby connects from; V(null) for a local socket connection.
      type: str
      sample: 10.0.0.12
    state:
      description: State of the WAL sender, such as V(streaming), V(catchup), V(startup) or V(backup).
      type: str
      sample: streaming
    sync_state:
      description: V(async), V(potential), V(sync) or V(quorum).
      type: str
      sample: async
    sync_priority:
      description: Priority of the standby for synchronous replication (0 for an asynchronous standby).
      type: int
      sample: 0
    sent_lsn:
      description: Last WAL location sent.
      type: str
      sample: 0/3000148
    write_lsn:
      description: Last WAL location the standby wrote.
      type: str
      sample: 0/3000148
    flush_lsn:
      description: Last WAL location the standby flushed.
      type: str
      sample: 0/3000148
    replay_lsn:
      description: Last WAL location the standby replayed.
      type: str
      sample: 0/3000148
    sent_lag_bytes:
      description: Bytes between the reference position and RV(replication[].sent_lsn); V(null) when that is.
      type: int
      sample: 0
    write_lag_bytes:
      description: Bytes between the reference position and RV(replication[].write_lsn); V(null) when that is.
      type: int
      sample: 0
    flush_lag_bytes:
      description: Bytes between the reference position and RV(replication[].flush_lsn); V(null) when that is.
      type: int
      sample: 0
    replay_lag_bytes:
      description: Bytes between the reference position and RV(replication[].replay_lsn); V(null) when that is.
      type: int
      sample: 0
    write_lag:
      description: C(write_lag) in seconds, V(null) when the server reports none (an idle primary).
      type: float
      sample: 0.000412
    flush_lag:
      description: C(flush_lag) in seconds, or V(null).
      type: float
      sample: 0.00118
    replay_lag:
      description: C(replay_lag) in seconds, or V(null).
      type: float
      sample: 0.00125
    reply_time:
      description: When the last reply from the standby was sent, ISO 8601, or V(null).
      type: str
      sample: "2026-01-26T10:20:01.000001+00:00"
    backend_start:
      description: When the standby connected, ISO 8601.
      type: str
      sample: "2026-01-26T10:15:03.5+00:00"
wal_receiver:
  description:
    - The row of C(pg_stat_wal_receiver) on a standby, V(null) on a primary and on a standby without a WAL
      receiver (not connected to its upstream, or restoring from the archive only).
  returned: always
  type: dict
  contains:
    pid:
      description: Process id of the WAL receiver.
      type: int
      sample: 1234
    status:
      description: V(streaming), V(starting), V(waiting), V(restarting), V(stopping) or V(stopped).
      type: str
      sample: streaming
    sender_host:
      description: Host (or socket directory) of the upstream the receiver is connected to.
      type: str
      sample: 10.0.0.11
    sender_port:
      description: Port of that upstream.
      type: int
      sample: 5432
    received_tli:
      description: Timeline of the last WAL location received and flushed.
      type: int
      sample: 1
    written_lsn:
      description: Last WAL location received and written (not yet flushed).
      type: str
      sample: 0/3000148
    flushed_lsn:
      description: Last WAL location received and flushed.
      type: str
      sample: 0/3000148
    latest_end_lsn:
      description: Last WAL location reported to the upstream.
      type: str
      sample: 0/3000148
    latest_end_time:
      description: When RV(wal_receiver.latest_end_lsn) was reported, ISO 8601.
      type: str
      sample: "2026-01-26T10:20:00.9+00:00"
    slot_name:
      description: Replication slot the receiver uses, or V(null).
      type: str
      sample: db2
    last_msg_send_time:
      description: Send time of the last message from the upstream, ISO 8601.
      type: str
      sample: "2026-01-26T10:20:01+00:00"
    last_msg_receipt_time:
      description: Receipt time of the last message from the upstream, ISO 8601.
      type: str
      sample: "2026-01-26T10:20:01.0002+00:00"
    conninfo:
      description: The receiver's connection string without a password, or V(null) without C(pg_read_all_stats).
      type: str
      sample: user=replicator passfile=/var/lib/postgresql/.pgpass_replication host=10.0.0.11 port=5432 application_name=db2
receive_lsn:
  description: C(pg_last_wal_receive_lsn) on a standby (V(null) before anything was streamed); V(null) on a primary.
  returned: always
  type: str
  sample: 0/3000148
replay_lsn:
  description: C(pg_last_wal_replay_lsn) on a standby; V(null) on a primary.
  returned: always
  type: str
  sample: 0/3000148
replay_lag_bytes:
  description:
    - On a standby, pg_wal_lsn_diff(receive_lsn, replay_lsn) - WAL received but not yet replayed here. It can
      be negative just after the WAL receiver started, V(null) without a receive position; V(null) on a primary.
    - How far a standby is behind its upstream is RV(replication[].replay_lag_bytes) on the upstream.
  returned: always
  type: int
  sample: 0
replay_paused:
  description:
    - On a standby, whether replay is paused or a pause was requested (PostgreSQL 14 and newer -
      pg_get_wal_replay_pause_state() <> 'not paused'; 13 - C(pg_is_wal_replay_paused)). V(null) on a primary.
  returned: always
  type: bool
  sample: false
replay_pause_state:
  description:
    - On a standby, C(pg_get_wal_replay_pause_state) (14 and newer) - V(not paused), V(pause requested) or
      V(paused). PostgreSQL 13 cannot tell a requested pause from a reached one, so there it is V(paused) or
      V(not paused) after C(pg_is_wal_replay_paused). V(null) on a primary.
  returned: always
  type: str
  sample: not paused
last_xact_replay_timestamp:
  description: On a standby, C(pg_last_xact_replay_timestamp), ISO 8601, or V(null); V(null) on a primary.
  returned: always
  type: str
  sample: "2026-01-26T10:19:58.1+00:00"
primary_conninfo:
  description:
    - On a standby, the C(primary_conninfo) setting without a password (V(null) when the login role may not read
      it); V(null) on a primary.
  returned: always
  type: str
  sample: host=10.0.0.11 port=5432 user=replicator passfile=/var/lib/postgresql/.pgpass_replication application_name=db2
primary_slot_name:
  description: On a standby, the C(primary_slot_name) setting (V('') when none is set); V(null) on a primary.
  returned: always
  type: str
  sample: db2
slots:
  description:
    - The physical replication slots of the node (C(pg_replication_slots) with C(slot_type = 'physical')).
  returned: always
  type: list
  elements: dict
  contains:
    slot_name:
      description: Name of the slot.
      type: str
      sample: db2
    active:
      description: Whether a WAL sender uses the slot now.
      type: bool
      sample: true
    active_pid:
      description: Process id of that WAL sender, or V(null).
      type: int
      sample: 4321
    restart_lsn:
      description: Oldest WAL location the slot keeps, or V(null) (a slot that never reserved WAL, or a lost one).
      type: str
      sample: 0/3000148
    retained_bytes:
      description:
        - WAL the slot holds back, pg_wal_lsn_diff(reference, restart_lsn) (reference as for RV(replication)),
          or V(null) without a RV(slots[].restart_lsn).
      type: int
      sample: 0
    wal_status:
      description: V(reserved), V(extended), V(unreserved) (WAL will be removed at the next checkpoint) or V(lost).
      type: str
      sample: reserved
    safe_wal_size:
      description: Bytes of WAL that can still be written before the slot is lost, V(null) without a limit.
      type: int
      sample: 4278190080
    invalidation_reason:
      description: Why the slot was invalidated (PostgreSQL 17 and newer), V(null) when it was not or before 17.
      type: str
      sample: wal_removed
    inactive_since:
      description: Since when the slot is unused, ISO 8601 (PostgreSQL 17 and newer), V(null) while active or before 17.
      type: str
      sample: "2026-01-26T09:00:00+00:00"
    temporary:
      description: Whether the slot is temporary (such as the one of a C(pg_basebackup) without a slot).
      type: bool
      sample: false
basebackup_progress:
  description:
    - One entry per base backup streaming from this node now (C(pg_stat_progress_basebackup)), with the
      C(application_name) and address of its connection (C(pg_stat_activity)). Empty when none.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id of the WAL sender that sends the backup.
      type: int
      sample: 4400
    phase:
      description: Phase of the backup, such as V(streaming database files).
      type: str
      sample: streaming database files
    backup_total:
      description: Estimated bytes to send, V(null) when not estimated.
      type: int
      sample: 31684091
    backup_streamed:
      description: Bytes sent so far.
      type: int
      sample: 1048576
    tablespaces_total:
      description: Tablespaces to send.
      type: int
      sample: 1
    tablespaces_streamed:
      description: Tablespaces sent.
      type: int
      sample: 0
    percent:
      description:
        - RV(basebackup_progress[].backup_streamed) / RV(basebackup_progress[].backup_total) * 100, rounded to 0.1;
          V(null) when the total is unknown. The total is an estimate, so this can pass 100 a little.
      type: float
      sample: 3.3
    application_name:
      description: C(application_name) of the backup's connection (the pg_basebackup module uses the standby's).
      type: str
      sample: db3
    client_addr:
      description: Address the backup connects from, or V(null).
      type: str
      sample: 10.0.0.13
    backend_start:
      description: When the backup connected, ISO 8601.
      type: str
      sample: "2026-01-26T10:19:00+00:00"
synchronous_standby_names:
  description: The C(synchronous_standby_names) setting.
  returned: always
  type: str
  sample: FIRST 1 ("db2", "db3")
synchronous_commit:
  description: The C(synchronous_commit) setting.
  returned: always
  type: str
  sample: "on"
wal_log_hints:
  description: The C(wal_log_hints) setting (pg_rewind needs it or data checksums).
  returned: always
  type: bool
  sample: false
data_checksums:
  description: Whether the cluster has data checksums.
  returned: always
  type: bool
  sample: true
max_wal_senders:
  description: The C(max_wal_senders) setting.
  returned: always
  type: int
  sample: 10
max_replication_slots:
  description: The C(max_replication_slots) setting.
  returned: always
  type: int
  sample: 10
hot_standby_settings:
  description:
    - The settings a hot standby must have at least as high as its primary (PostgreSQL's Hot Standby page,
      Administrator's Overview - with a lower value it refuses to start, or pauses recovery when the primary
      raises one), each read with C(current_setting) in the same read-only transaction as the rest.
    - The switchover preflight compares them between the new primary and the nodes that will stream from it.
    - Absent when the server did not answer (RV(connected) V(false)).
  returned: when connected
  type: dict
  contains:
    max_connections:
      description: The C(max_connections) setting.
      type: int
      sample: 100
    max_worker_processes:
      description: The C(max_worker_processes) setting.
      type: int
      sample: 8
    max_wal_senders:
      description: The C(max_wal_senders) setting (also RV(max_wal_senders)).
      type: int
      sample: 10
    max_prepared_transactions:
      description: The C(max_prepared_transactions) setting.
      type: int
      sample: 0
    max_locks_per_transaction:
      description: The C(max_locks_per_transaction) setting.
      type: int
      sample: 64
rewind_user:
  description:
    - O(rewind_user), the role whose grants RV(rewind_grants_missing) lists; V(null) without O(rewind_user), and
      when the server did not answer (RV(connected) V(false)), as RV(rewind_user_exists) and
      RV(rewind_grants_missing) are then.
  returned: always
  type: str
  sample: replicator
rewind_user_exists:
  description:
    - Whether the role O(rewind_user) exists (C(pg_roles)). V(null) when RV(rewind_user) is.
  returned: always
  type: bool
  sample: true
rewind_grants_missing:
  description:
    - The functions, among the four a C(pg_rewind) that logs in as a role that is not a superuser needs, that
      O(rewind_user) may not execute in the database the module connected to (O(login_db)), after
      C(has_function_privilege); in this order, as the signatures a C(GRANT EXECUTE ON FUNCTION) takes -
      V(pg_catalog.pg_ls_dir(text, boolean, boolean\)), V(pg_catalog.pg_stat_file(text, boolean\)),
      V(pg_catalog.pg_read_binary_file(text\)), V(pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean\)).
    - Empty when the role may run C(pg_rewind) against this node (always for a superuser); all four when the role
      does not exist (RV(rewind_user_exists) V(false)). V(null) when RV(rewind_user) is.
    - The roles of C(site.yml) skip the grant when it is empty; the switchover preflight refuses a role for which
      it is not.
  returned: always
  type: list
  elements: str
  sample:
    - pg_catalog.pg_stat_file(text, boolean)
    - pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)
msg:
  description: One line for a person, such as V(primary, PostgreSQL 15.18, timeline 1, 2 WAL senders, 2 slots).
  returned: always
  type: str
  sample: primary, PostgreSQL 15.18, timeline 1, 2 WAL senders, 2 slots
'''

import errno
import os
import stat
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import DEBIAN_LIB
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import C_ENV
from ansible_collections.hotstandby.postgresql.plugins.module_utils.controldata import parse_controldata
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import (
    postmaster_pid, read_pg_version, read_system_identifier, user_data_found)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.replication import (
    MIN_VERSION_NUM, REWIND_FUNCTIONS, SERVER_COLUMNS, column_names, offline_result, queries, rewind_query, row_dict,
    select_list, server_sql, shape)

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

ARGUMENT_SPEC = dict(
    login_user=dict(type='str', default='postgres'),
    login_password=dict(type='str', default='', no_log=True),
    login_host=dict(type='str', default=''),
    login_unix_socket=dict(type='str', default=''),
    login_port=dict(type='int', default=5432, aliases=['port']),
    login_db=dict(type='str', default='postgres', aliases=['db']),
    connect_params=dict(type='dict', default={}),
    data_dir=dict(type='path'),
    read_files=dict(type='list', elements='str', default=[]),
    rewind_user=dict(type='str'),
)

APPLICATION_NAME = 'hotstandby.postgresql.pg_replication_info'

# The settings a hot standby must have at least as high as its primary (PostgreSQL's Hot Standby page,
# Administrator's Overview), in the order of that page; settings of every supported version.
HOT_STANDBY_SETTINGS = ('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions',
                        'max_locks_per_transaction')
HOT_STANDBY_COLUMNS = [(name, {MIN_VERSION_NUM: "current_setting('%s')::integer" % name}, 'integer')
                       for name in HOT_STANDBY_SETTINGS]


def hot_standby_query():
    """The query of the result's hot_standby_settings: (name, columns, sql), the same on every version and role."""
    return 'hot_standby_settings', HOT_STANDBY_COLUMNS, 'SELECT ' + select_list(HOT_STANDBY_COLUMNS, MIN_VERSION_NUM)


class Failure(Exception):
    """Ends the run with fail_json (the message is for the user)."""


class ReplicationInfo(object):
    """Connects, reads the replication state in one read-only transaction, shapes the result."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        socket_dir = self.p['login_unix_socket'] or "libpq's default directory"
        self.where = self.p['login_host'] or 'the local socket in %s' % socket_dir

    def connect_kwargs(self):
        p = self.p
        kwargs = dict(user=p['login_user'], port=p['login_port'], dbname=p['login_db'],
                      application_name=APPLICATION_NAME)
        host = p['login_host'] or p['login_unix_socket']
        if host:
            kwargs['host'] = host
        if p['login_password']:
            kwargs['password'] = p['login_password']
        kwargs.update(p['connect_params'] or {})
        return kwargs

    def connect(self):
        try:
            conn = psycopg2.connect(**self.connect_kwargs())
        except psycopg2.Error as e:
            raise Failure(self.connect_advice(' '.join(to_native(e).split()).rstrip('.?')))
        try:
            conn.set_session(readonly=True, autocommit=False)
        except psycopg2.Error as e:
            conn.close()
            raise Failure('could not start a read-only session: %s' % to_native(e).strip())
        return conn

    def connect_advice(self, err):
        p = self.p
        who = 'role "%s"' % p['login_user']
        low = err.lower()
        if 'peer authentication failed' in low or 'ident authentication failed' in low:
            hint = ('The module runs as another operating system user than %s: run the task with become: true and '
                    'become_user: %s, or give login_password (and login_host for a TCP connection)'
                    % (p['login_user'], p['login_user']))
        elif 'password authentication failed' in low or 'no password supplied' in low:
            hint = 'Check login_password, or use peer authentication over the local socket (become_user: postgres)'
        elif 'does not exist' in low and 'database' in low:
            hint = 'The database "%s" does not exist: set login_db to one that does (postgres)' % p['login_db']
        else:
            hint = ('Is the server running (systemctl status postgresql@<version>-main, pg_lsclusters)? Does it '
                    'listen on port %s (login_port) and in that socket directory (login_unix_socket: '
                    '/var/run/postgresql on Debian)? Does the task run as the operating system user postgres '
                    '(become: true, become_user: postgres)?' % p['login_port'])
        return 'could not connect to PostgreSQL on %s, port %s, as %s: %s. %s' % (
            self.where, p['login_port'], who, err, hint)

    @staticmethod
    def fetch(cursor, sql, names, params=None):
        """The rows of sql as dicts; params (a dict) are passed to the server apart from the SQL text, when given."""
        if params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, params)
        got = [d[0] for d in cursor.description]
        if got != names:  # a programming error, never a server difference: each query names its columns
            raise Failure('unexpected columns %s (expected %s) from: %s' % (got, names, sql))
        return [row_dict(names, row) for row in cursor.fetchall()]

    def read(self):
        """Everything in one read-only transaction, rolled back at the end."""
        conn = self.connect()
        try:
            cursor = conn.cursor()
            step = 'starting the read-only transaction'
            try:
                cursor.execute('SET TRANSACTION READ ONLY')
                step = 'reading what the server is'
                server = self.fetch(cursor, server_sql(), column_names(SERVER_COLUMNS))[0]
                version = server['server_version_num']
                if version < MIN_VERSION_NUM:
                    raise Failure('the server runs PostgreSQL %s; pg_replication_info supports 13 and newer'
                                  % server['server_version'])
                rows = {}
                for name, columns, sql in queries(version, server['in_recovery']):
                    step = 'reading %s' % name
                    rows[name] = self.fetch(cursor, sql, column_names(columns))
                name, columns, sql = hot_standby_query()
                step = 'reading the hot standby settings'
                settings = self.fetch(cursor, sql, column_names(columns))[0]
                rewind_user = self.p['rewind_user']
                if rewind_user is not None:
                    name, columns, sql, params = rewind_query(rewind_user)
                    step = 'reading the pg_rewind grants of role "%s"' % rewind_user
                    rows[name] = self.fetch(cursor, sql, column_names(columns), params)
            except psycopg2.Error as e:
                raise Failure('%s failed on PostgreSQL on %s, port %s: %s. The login role needs to be a superuser or '
                              'a member of pg_monitor; if the server was promoted or demoted just now, run again.'
                              % (step, self.where, self.p['login_port'], ' '.join(to_native(e).split()).rstrip('.')))
            if not server['sees_all_stats']:
                self.module.warn('the login role "%s" is neither a superuser nor a member of pg_monitor (or '
                                 'pg_read_all_stats): the states, LSNs and lags of the WAL senders and the WAL '
                                 'receiver read as null. GRANT pg_monitor TO %s, or log in as postgres.'
                                 % (self.p['login_user'], self.p['login_user']))
            result = shape(server, rows, self.p['rewind_user'])
            result['hot_standby_settings'] = dict((name, settings[name]) for name in HOT_STANDBY_SETTINGS)
            return result
        finally:
            try:
                conn.rollback()  # nothing was written; this only ends the transaction
            except psycopg2.Error:
                pass
            conn.close()


def summary(info):
    streaming = len([r for r in info['replication'] if r['state'] == 'streaming'])
    parts = ['%s, PostgreSQL %s, timeline %s' % (info['role'], info['server_version'].split()[0], info['timeline'])]
    receiver = info['wal_receiver']
    if receiver:
        parts.append('WAL receiver %s from %s:%s' % (
            receiver['status'] or 'in an unknown state', receiver['sender_host'] or '?', receiver['sender_port'] or '?'))
    elif info['role'] == 'standby':
        parts.append('no WAL receiver')
    senders = len(info['replication'])
    parts.append('%d WAL sender%s (%d streaming)' % (senders, '' if senders == 1 else 's', streaming))
    parts.append('%d slot%s' % (len(info['slots']), '' if len(info['slots']) == 1 else 's'))
    if info['basebackup_progress']:
        parts.append('%d base backup(s) running' % len(info['basebackup_progress']))
    if info.get('rewind_user') is not None:
        if not info['rewind_user_exists']:
            parts.append('no role %s for pg_rewind' % info['rewind_user'])
        elif info['rewind_grants_missing']:
            parts.append('role %s lacks %d of the %d pg_rewind grants' % (
                info['rewind_user'], len(info['rewind_grants_missing']), len(REWIND_FUNCTIONS)))
        else:
            parts.append('role %s may run pg_rewind' % info['rewind_user'])
    return ', '.join(parts)


def data_directory(module, path):
    """What the data directory itself says, running server or not (nothing is written)."""
    if not path:
        return None
    found = dict(path=path, exists=os.path.isdir(path), system_identifier=None, pg_version=None,
                 standby_signal=False, running=False, port=None, user_data=None, checkpoint_timeline=None)
    if not found['exists']:
        return found
    try:
        found['system_identifier'] = read_system_identifier(path)
    except (IOError, OSError, ValueError):
        pass
    found.update(pg_version=read_pg_version(path), standby_signal=os.path.exists(os.path.join(path, 'standby.signal')),
                 running=bool(postmaster_pid(path)), user_data=user_data_found(path))
    if found['running']:
        found['port'] = listening_port(path)
    elif found['system_identifier']:
        found['checkpoint_timeline'] = checkpoint_timeline(module, path, found['pg_version'])
    return found


def checkpoint_timeline(module, path, version):
    """Latest checkpoint's TimeLineID of the stopped cluster in path (pg_controldata, C locale), None if unreadable."""
    if not version or not version.isdigit():
        return None
    tool = os.path.join(DEBIAN_LIB, version, 'bin', 'pg_controldata')
    if not os.access(tool, os.X_OK):
        return None
    rc, out, dummy = module.run_command([tool, '-D', path], environ_update=dict(C_ENV))
    if rc != 0:
        return None
    try:
        return parse_controldata(out)['checkpoint_timeline']
    except ValueError:
        return None


def listening_port(path):
    """The port the running server listens on: the fourth line of postmaster.pid (a changed port waits for a restart)."""
    try:
        with open(os.path.join(path, 'postmaster.pid')) as f:
            lines = f.read().splitlines()
        return int(lines[3])
    except (IOError, OSError, IndexError, ValueError):
        return None


def read_files(paths, folder):
    """[{path, exists, content}] of paths, {version} standing for the data directory's major version."""
    version = (folder or {}).get('pg_version')
    files = []
    for path in paths:
        if '{version}' in path:
            if not version:
                files.append(dict(path=path, exists=False, content=None))
                continue
            path = path.replace('{version}', version)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            files.append(dict(path=path, exists=False, content=None))
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, 'not a regular file', path)
            chunks, size = [], 0
            while size <= 1 << 20:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b''.join(chunks)
        finally:
            os.close(fd)
        if len(data) > 1 << 20:
            raise OSError(errno.EFBIG, 'larger than 1 MiB', path)
        files.append(dict(path=path, exists=True, content=to_text(data, errors='surrogate_or_replace')))
    return files


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if module.params['rewind_user'] == '':
        module.fail_json(msg='rewind_user must name a role (it is empty); leave it out to check no role')
    folder = data_directory(module, module.params['data_dir'])
    try:
        files = read_files(module.params['read_files'], folder)
    except (IOError, OSError) as e:
        module.fail_json(msg='could not read %s (read_files): %s. Move it out of the way if it is not the '
                             "collection's (the collection keeps regular files there, readable by postgres)."
                             % (e.filename or 'a file', e.strerror or to_native(e)), data_directory=folder)
    if folder and folder.get('port'):
        module.params['login_port'] = folder['port']
    if psycopg2 is None:
        msg = missing_required_lib('psycopg2', reason='to connect to PostgreSQL') + \
            ' On Debian: apt-get install python3-psycopg2.'
        if folder is None:
            module.fail_json(msg=msg, exception=PSYCOPG2_IMPORT_ERROR)
        info, error = None, msg
    else:
        try:
            info, error = ReplicationInfo(module).read(), None
        except Failure as e:
            if folder is None or folder['running']:
                module.fail_json(msg=to_native(e), data_directory=folder)
            info, error = None, to_native(e)
    if info is None:
        # data_dir given and no server running there: what the directory says is the answer
        info = offline_result(error)
        if folder['exists'] and folder['system_identifier']:
            info.update(role='standby' if folder['standby_signal'] else 'primary',
                        system_identifier=folder['system_identifier'])
        msg = 'no server answered (%s); the data directory %s %s' % (
            error, folder['path'], ('is a stopped %s of system %s' % (info['role'], info['system_identifier'])
                                    if info['role'] else 'holds no cluster'))
    else:
        info.update(connected=True, connection_error=None)
        msg = summary(info)
    module.exit_json(changed=False, msg=msg, data_directory=folder, files=files, **info)


if __name__ == '__main__':
    main()
