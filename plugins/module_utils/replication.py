# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Replication state seen from SQL: LSNs, the version-dependent queries of pg_replication_info, row shaping.

Pure functions only (no connection, no module): the SQL for a server is built from its server_version_num, so that
every query names only columns that server has and returns NULL AS <column> for the others.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import decimal
import re

from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import conninfo_without_password

# The oldest server version the collection supports (PostgreSQL 13).
MIN_VERSION_NUM = 130000

_LSN_RE = re.compile(r'^\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*$')
_PASSWORD_RE = re.compile(r"""(?ix)
    (?:^|(?<=\s)) password \s* = \s* (?: '(?:[^'\\]|\\.)*' | \S* )   # key=value form
  | (?<=://) ([^:@/\s]*) : [^@/\s]* @                                 # user:password@ of a URI
""")


# -- LSNs ----------------------------------------------------------------------

def lsn_to_int(lsn):
    """The byte position of a WAL location written as PostgreSQL prints it ('16/B374D848'); None for None.

    Raises ValueError for anything else.
    """
    if lsn is None:
        return None
    m = _LSN_RE.match('%s' % lsn)
    if not m:
        raise ValueError('not a WAL location (LSN): %r' % (lsn,))
    return (int(m.group(1), 16) << 32) + int(m.group(2), 16)


def int_to_lsn(position):
    """The WAL location text ('16/B374D848') of a byte position; None for None."""
    if position is None:
        return None
    if position < 0 or position >= 1 << 64:
        raise ValueError('not a WAL position: %r' % (position,))
    return '%X/%X' % (position >> 32, position & 0xFFFFFFFF)


def lsn_diff(a, b):
    """a - b in bytes, like pg_wal_lsn_diff(a, b); None when either is None."""
    if a is None or b is None:
        return None
    return lsn_to_int(a) - lsn_to_int(b)


def timeline_of_walfile(name):
    """The timeline of a WAL segment file name (its first 8 hex digits, as pg_walfile_name() returns it); or None."""
    if not name or not re.match(r'^[0-9A-Fa-f]{24}$', name):
        return None
    return int(name[:8], 16)


def unsigned_system_identifier(value):
    """The database system identifier as the unsigned decimal string pg_controldata and IDENTIFY_SYSTEM print.

    pg_control_system() returns it as a signed bigint, negative for identifiers of 2^63 and above.
    """
    if value is None:
        return None
    number = int(value)
    if number < 0:
        number += 1 << 64
    return '%d' % number


# -- values --------------------------------------------------------------------

def plain(value):
    """A database value as a JSON-friendly one: timestamps as ISO 8601 strings, numerics as int or float,
    intervals as seconds (float). Other values are returned as they are."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    return value


def row_dict(names, row):
    """One result row as a dict of plain() values, keyed by column names."""
    return dict((name, plain(value)) for name, value in zip(names, row))


def strip_password(conninfo):
    """A libpq connection string without its password; never raises, None for None.

    Uses libpq.conninfo_without_password(); a string it cannot parse has its password removed by pattern.
    """
    if conninfo is None:
        return None
    try:
        return conninfo_without_password(conninfo)
    except ValueError:
        return _PASSWORD_RE.sub(lambda m: (m.group(1) + '@') if m.group(1) is not None else '', conninfo).strip()


def percent(streamed, total):
    """streamed / total * 100 rounded to 0.1, or None when the total is unknown (NULL or 0)."""
    if streamed is None or not total:
        return None
    return round(100.0 * streamed / total, 1)


# -- SQL -----------------------------------------------------------------------
#
# A column is (name, variants, type): variants maps the first server_version_num that has it to the SQL expression
# (a later key replaces an earlier one from that version on); a server older than every key gets NULL::type.

def _expr(variants, version_num, sql_type):
    chosen = None
    for since in sorted(variants):
        if version_num >= since:
            chosen = variants[since]
    return 'NULL::%s' % sql_type if chosen is None else chosen


def select_list(columns, version_num):
    """The SELECT list of columns for a server version: '<expression> AS <name>' or 'NULL::<type> AS <name>'."""
    return ',\n       '.join('%s AS %s' % (_expr(variants, version_num, sql_type), name)
                             for name, variants, sql_type in columns)


def available(columns, version_num):
    """The names of the columns a server version really has (not NULL AS ...)."""
    return [name for name, variants, sql_type in columns if any(version_num >= since for since in variants)]


def _all(expr):
    return {MIN_VERSION_NUM: expr}


def _lsn_diff(reference, column):
    return 'pg_wal_lsn_diff(%s, %s)::bigint' % (reference, column)


# Read first, on every server: what the server is. Only functions and settings of every supported version.
SERVER_COLUMNS = [
    ('in_recovery', _all('pg_is_in_recovery()'), 'boolean'),
    ('server_version_num', _all("current_setting('server_version_num')::integer"), 'integer'),
    ('server_version', _all("current_setting('server_version')"), 'text'),
    ('system_identifier', _all('(SELECT system_identifier FROM pg_control_system())'), 'bigint'),
    ('checkpoint_timeline', _all('(SELECT timeline_id FROM pg_control_checkpoint())'), 'integer'),
    ('postmaster_start_time', _all('pg_postmaster_start_time()'), 'timestamptz'),
    ('synchronous_standby_names', _all("current_setting('synchronous_standby_names')"), 'text'),
    ('synchronous_commit', _all("current_setting('synchronous_commit')"), 'text'),
    ('wal_log_hints', _all("current_setting('wal_log_hints')::boolean"), 'boolean'),
    ('data_checksums', _all("current_setting('data_checksums')::boolean"), 'boolean'),
    ('max_wal_senders', _all("current_setting('max_wal_senders')::integer"), 'integer'),
    ('max_replication_slots', _all("current_setting('max_replication_slots')::integer"), 'integer'),
    # whether the login role sees the LSNs and states of other roles' sessions (a warning when not; not returned)
    ('sees_all_stats', _all("pg_has_role('pg_read_all_stats', 'USAGE')"), 'boolean'),
]

# A primary's WAL position. pg_walfile_name() carries the timeline WAL is written on now (also right after a
# promotion, before the first checkpoint on the new timeline); it fails during recovery, so it is read on a
# primary only.
PRIMARY_COLUMNS = [
    ('current_wal_lsn', _all('pg_current_wal_lsn()::text'), 'text'),
    ('current_wal_file', _all('pg_walfile_name(pg_current_wal_lsn())'), 'text'),
]

# A standby's positions and settings. The recovery control functions fail on a primary: read on a standby only.
# primary_conninfo is readable by superusers and pg_read_all_settings only: read through pg_settings, which
# hides it from others (NULL) instead of failing.
STANDBY_COLUMNS = [
    ('receive_lsn', _all('pg_last_wal_receive_lsn()::text'), 'text'),
    ('replay_lsn', _all('pg_last_wal_replay_lsn()::text'), 'text'),
    ('replay_lag_bytes', _all(_lsn_diff('pg_last_wal_receive_lsn()', 'pg_last_wal_replay_lsn()')), 'bigint'),
    ('replay_paused', {MIN_VERSION_NUM: 'pg_is_wal_replay_paused()',
                       140000: "pg_get_wal_replay_pause_state() <> 'not paused'"}, 'boolean'),
    ('replay_pause_state', {MIN_VERSION_NUM: "CASE WHEN pg_is_wal_replay_paused() THEN 'paused' "
                                             "ELSE 'not paused' END",
                            140000: 'pg_get_wal_replay_pause_state()'}, 'text'),
    ('last_xact_replay_timestamp', _all('pg_last_xact_replay_timestamp()'), 'timestamptz'),
    ('primary_conninfo', _all("(SELECT setting FROM pg_catalog.pg_settings WHERE name = 'primary_conninfo')"),
     'text'),
    ('primary_slot_name', _all("(SELECT setting FROM pg_catalog.pg_settings WHERE name = 'primary_slot_name')"),
     'text'),
]

WAL_RECEIVER_COLUMNS = [
    ('pid', _all('w.pid'), 'integer'),
    ('status', _all('w.status'), 'text'),
    ('sender_host', _all('w.sender_host'), 'text'),
    ('sender_port', _all('w.sender_port'), 'integer'),
    ('received_tli', _all('w.received_tli'), 'integer'),
    ('written_lsn', _all('w.written_lsn::text'), 'text'),
    ('flushed_lsn', _all('w.flushed_lsn::text'), 'text'),
    ('latest_end_lsn', _all('w.latest_end_lsn::text'), 'text'),
    ('latest_end_time', _all('w.latest_end_time'), 'timestamptz'),
    ('slot_name', _all('w.slot_name'), 'text'),
    ('last_msg_send_time', _all('w.last_msg_send_time'), 'timestamptz'),
    ('last_msg_receipt_time', _all('w.last_msg_receipt_time'), 'timestamptz'),
    ('conninfo', _all('w.conninfo'), 'text'),
]


def _replication_columns():
    columns = [
        ('pid', _all('r.pid'), 'integer'),
        ('application_name', _all('r.application_name'), 'text'),
        ('client_addr', _all('host(r.client_addr)'), 'text'),
        ('state', _all('r.state'), 'text'),
        ('sync_state', _all('r.sync_state'), 'text'),
        ('sync_priority', _all('r.sync_priority'), 'integer'),
    ]
    for kind in ('sent', 'write', 'flush', 'replay'):
        columns.append(('%s_lsn' % kind, _all('r.%s_lsn::text' % kind), 'text'))
    for kind in ('sent', 'write', 'flush', 'replay'):
        columns.append(('%s_lag_bytes' % kind, _all(_lsn_diff('ref.lsn', 'r.%s_lsn' % kind)), 'bigint'))
    for kind in ('write', 'flush', 'replay'):
        columns.append(('%s_lag' % kind, _all('EXTRACT(EPOCH FROM r.%s_lag)::float8' % kind), 'float8'))
    columns += [
        ('reply_time', _all('r.reply_time'), 'timestamptz'),
        ('backend_start', _all('r.backend_start'), 'timestamptz'),
    ]
    return columns


REPLICATION_COLUMNS = _replication_columns()

SLOT_COLUMNS = [
    ('slot_name', _all('s.slot_name::text'), 'text'),
    ('active', _all('s.active'), 'boolean'),
    ('active_pid', _all('s.active_pid'), 'integer'),
    ('restart_lsn', _all('s.restart_lsn::text'), 'text'),
    ('retained_bytes', _all(_lsn_diff('ref.lsn', 's.restart_lsn')), 'bigint'),
    ('wal_status', _all('s.wal_status'), 'text'),
    ('safe_wal_size', _all('s.safe_wal_size'), 'bigint'),
    ('invalidation_reason', {170000: 's.invalidation_reason'}, 'text'),
    ('inactive_since', {170000: 's.inactive_since'}, 'timestamptz'),
    ('temporary', _all('s.temporary'), 'boolean'),
]

BASEBACKUP_COLUMNS = [
    ('pid', _all('b.pid'), 'integer'),
    ('phase', _all('b.phase'), 'text'),
    ('backup_total', _all('b.backup_total'), 'bigint'),
    ('backup_streamed', _all('b.backup_streamed'), 'bigint'),
    ('tablespaces_total', _all('b.tablespaces_total'), 'bigint'),
    ('tablespaces_streamed', _all('b.tablespaces_streamed'), 'bigint'),
    ('application_name', _all('a.application_name'), 'text'),
    ('client_addr', _all('host(a.client_addr)'), 'text'),
    ('backend_start', _all('a.backend_start'), 'timestamptz'),
]


def reference_lsn(in_recovery):
    """The WAL position lag and retained WAL are measured from: written (primary) or replayed (standby)."""
    return 'pg_last_wal_replay_lsn()' if in_recovery else 'pg_current_wal_lsn()'


def _reference(in_recovery):
    return 'CROSS JOIN (SELECT %s AS lsn) AS ref' % reference_lsn(in_recovery)


def server_sql():
    """The first query, the same on every supported version."""
    return 'SELECT ' + select_list(SERVER_COLUMNS, MIN_VERSION_NUM)


def queries(version_num, in_recovery):
    """The queries after server_sql() for a server: a list of (name, columns, sql).

    name is the result key (a single row for 'positions', a list of rows for the others).
    """
    if version_num < MIN_VERSION_NUM:
        raise ValueError('PostgreSQL %s is not supported (13 or newer)' % version_num)
    positions = STANDBY_COLUMNS if in_recovery else PRIMARY_COLUMNS
    result = [('positions', positions, 'SELECT ' + select_list(positions, version_num))]
    if in_recovery:
        result.append(('wal_receiver', WAL_RECEIVER_COLUMNS, 'SELECT %s\nFROM pg_catalog.pg_stat_wal_receiver AS w'
                       % select_list(WAL_RECEIVER_COLUMNS, version_num)))
    result += [
        ('replication', REPLICATION_COLUMNS,
         'SELECT %s\nFROM pg_catalog.pg_stat_replication AS r %s\nORDER BY r.application_name, r.pid'
         % (select_list(REPLICATION_COLUMNS, version_num), _reference(in_recovery))),
        ('slots', SLOT_COLUMNS,
         "SELECT %s\nFROM pg_catalog.pg_replication_slots AS s %s\nWHERE s.slot_type = 'physical'\n"
         'ORDER BY s.slot_name' % (select_list(SLOT_COLUMNS, version_num), _reference(in_recovery))),
        ('basebackup_progress', BASEBACKUP_COLUMNS,
         'SELECT %s\nFROM pg_catalog.pg_stat_progress_basebackup AS b\n'
         'LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = b.pid\nORDER BY b.pid'
         % select_list(BASEBACKUP_COLUMNS, version_num)),
    ]
    return result


def column_names(columns):
    return [name for name, variants, sql_type in columns]


# What a pg_rewind that logs in as a role that is not a superuser must execute on its source, in the database it
# connects to (PostgreSQL's pg_rewind page), in the order the result lists them.
REWIND_FUNCTIONS = (
    'pg_catalog.pg_ls_dir(text, boolean, boolean)',
    'pg_catalog.pg_stat_file(text, boolean)',
    'pg_catalog.pg_read_binary_file(text)',
    'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)',
)

# The role is looked up in pg_roles (readable by every role) and has_function_privilege() is given its OID, never
# its name: the name form raises for a role that does not exist. For no role (u.oid IS NULL) the CASE answers
# without calling it; all four are missing then.
REWIND_COLUMNS = [
    ('rewind_user_exists', _all('u.oid IS NOT NULL'), 'boolean'),
    ('rewind_grants_missing', _all(
        'ARRAY(SELECT f.signature FROM unnest(ARRAY[%s]::text[]) WITH ORDINALITY AS f(signature, n)\n'
        "             WHERE CASE WHEN u.oid IS NULL THEN true\n"
        "                        ELSE NOT pg_catalog.has_function_privilege(u.oid, f.signature, 'EXECUTE') END\n"
        '             ORDER BY f.n)' % ', '.join("'%s'" % f for f in REWIND_FUNCTIONS)), 'text[]'),
]

# The name of the query parameter that carries the role name (psycopg2 pyformat: passed apart from the SQL text).
REWIND_PARAM = 'rewind_user'


def rewind_query(rewind_user):
    """The query of the pg_rewind grants of a role: (name, columns, sql, params), the same on every supported version.

    The role name is a query parameter (params), never part of the SQL text; one row of REWIND_COLUMNS.
    """
    if not isinstance(rewind_user, str) or not rewind_user:
        raise ValueError('not a role name: %r' % (rewind_user,))
    sql = ('SELECT %s\nFROM (SELECT %%(%s)s::text AS rolname) AS given\n'
           'LEFT JOIN pg_catalog.pg_roles AS u ON u.rolname = given.rolname'
           % (select_list(REWIND_COLUMNS, MIN_VERSION_NUM), REWIND_PARAM))
    return 'rewind', REWIND_COLUMNS, sql, {REWIND_PARAM: rewind_user}


# -- the result ----------------------------------------------------------------

def rewind_result(rewind_user=None, row=None):
    """rewind_user, rewind_user_exists and rewind_grants_missing: from the row of rewind_query(), all None without."""
    if rewind_user is None or row is None:
        return dict(rewind_user=None, rewind_user_exists=None, rewind_grants_missing=None)
    exists = bool(row.get('rewind_user_exists'))
    missing = list(row.get('rewind_grants_missing') or []) if exists else list(REWIND_FUNCTIONS)
    return dict(rewind_user=rewind_user, rewind_user_exists=exists, rewind_grants_missing=missing)


def shape(server, rows, rewind_user=None):
    """The result of pg_replication_info from the server row and the rows of queries() (name -> list of dicts).

    rows['rewind'] is the row of rewind_query(rewind_user) when rewind_user is given.
    Every key is present on every node; what does not apply to the node's role is None.
    """
    in_recovery = bool(server['in_recovery'])
    positions = (rows.get('positions') or [{}])[0]
    receivers = rows.get('wal_receiver') or []
    receiver = dict(receivers[0]) if receivers else None
    if receiver is not None:
        receiver['conninfo'] = strip_password(receiver.get('conninfo'))
    if in_recovery:
        if receiver and receiver.get('status') == 'streaming' and receiver.get('received_tli'):
            timeline, timeline_source = receiver['received_tli'], 'wal_receiver'
        else:
            timeline, timeline_source = server.get('checkpoint_timeline'), 'checkpoint'
    else:
        timeline = timeline_of_walfile(positions.get('current_wal_file'))
        timeline_source = 'wal_insert'
        if timeline is None:
            timeline, timeline_source = server.get('checkpoint_timeline'), 'checkpoint'
    progress = []
    for row in rows.get('basebackup_progress') or []:
        row = dict(row)
        row['percent'] = percent(row.get('backup_streamed'), row.get('backup_total'))
        progress.append(row)
    standby = dict((name, positions.get(name) if in_recovery else None) for name in column_names(STANDBY_COLUMNS))
    standby['primary_conninfo'] = strip_password(standby['primary_conninfo'])
    result = dict(
        role='standby' if in_recovery else 'primary',
        in_recovery=in_recovery,
        server_version_num=server['server_version_num'],
        server_version=server['server_version'],
        system_identifier=unsigned_system_identifier(server['system_identifier']),
        timeline=timeline,
        timeline_source=timeline_source,
        current_wal_lsn=None if in_recovery else positions.get('current_wal_lsn'),
        postmaster_start_time=server['postmaster_start_time'],
        replication=list(rows.get('replication') or []),
        wal_receiver=receiver,
        slots=list(rows.get('slots') or []),
        basebackup_progress=progress,
        synchronous_standby_names=server['synchronous_standby_names'],
        synchronous_commit=server['synchronous_commit'],
        wal_log_hints=server['wal_log_hints'],
        data_checksums=server['data_checksums'],
        max_wal_senders=server['max_wal_senders'],
        max_replication_slots=server['max_replication_slots'],
    )
    result.update(standby)
    result.update(rewind_result(rewind_user, (rows.get('rewind') or [None])[0] if rewind_user is not None else None))
    return result


def offline_result(connection_error):
    """The result when the server could not be asked (stopped, not installed): every key, all empty."""
    result = dict((name, None) for name in (
        'role', 'in_recovery', 'server_version_num', 'server_version', 'system_identifier', 'timeline',
        'timeline_source', 'current_wal_lsn', 'postmaster_start_time', 'wal_receiver',
        'synchronous_standby_names', 'synchronous_commit', 'wal_log_hints', 'data_checksums', 'max_wal_senders',
        'max_replication_slots'))
    result.update(dict((name, None) for name in column_names(STANDBY_COLUMNS)))
    result.update(rewind_result())
    result.update(replication=[], slots=[], basebackup_progress=[], connected=False,
                  connection_error=connection_error)
    return result
