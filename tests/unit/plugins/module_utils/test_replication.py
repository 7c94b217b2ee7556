# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import decimal
import re

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils import replication as r

VERSIONS = (130000, 140000, 150000, 160000, 170000, 180000)


# -- LSNs ------------------------------------------------------------------------

@pytest.mark.parametrize('text, value', [
    ('0/0', 0),
    ('0/3000148', 0x3000148),
    ('16/B374D848', (0x16 << 32) + 0xB374D848),
    ('ffffffff/ffffffff', (1 << 64) - 1),
    (' 1/0 ', 1 << 32),
])
def test_lsn_round_trip(text, value):
    assert r.lsn_to_int(text) == value
    assert r.int_to_lsn(value) == text.strip().upper()


@pytest.mark.parametrize('text', ['', '0', '0/', '/1', '1/2/3', 'x/1', '123456789/0', '0/123456789', '-1/0'])
def test_lsn_malformed(text):
    with pytest.raises(ValueError):
        r.lsn_to_int(text)


def test_lsn_none_and_diff():
    assert r.lsn_to_int(None) is None
    assert r.int_to_lsn(None) is None
    assert r.lsn_diff('0/3000148', '0/3000000') == 0x148
    assert r.lsn_diff('1/0', '0/FFFFFFFF') == 1
    assert r.lsn_diff('0/0', '0/10') == -16
    assert r.lsn_diff(None, '0/10') is None
    assert r.lsn_diff('0/10', None) is None
    with pytest.raises(ValueError):
        r.int_to_lsn(-1)
    with pytest.raises(ValueError):
        r.int_to_lsn(1 << 64)


def test_timeline_of_walfile():
    assert r.timeline_of_walfile('000000010000000000000003') == 1
    assert r.timeline_of_walfile('0000000A00000001000000FF') == 10
    assert r.timeline_of_walfile('00000002.history') is None
    assert r.timeline_of_walfile(None) is None
    assert r.timeline_of_walfile('') is None


def test_unsigned_system_identifier():
    assert r.unsigned_system_identifier(7712491459935377245) == '7712491459935377245'
    assert r.unsigned_system_identifier(-1) == '18446744073709551615'
    assert r.unsigned_system_identifier('-2') == '18446744073709551614'
    assert r.unsigned_system_identifier(None) is None


# -- values ------------------------------------------------------------------------

def test_plain_values():
    utc = datetime.timezone.utc
    assert r.plain(datetime.datetime(2026, 1, 26, 10, 15, tzinfo=utc)) == '2026-01-26T10:15:00+00:00'
    assert r.plain(datetime.timedelta(seconds=1, microseconds=500000)) == 1.5
    assert r.plain(decimal.Decimal('16777216')) == 16777216
    assert isinstance(r.plain(decimal.Decimal('16777216')), int)
    assert r.plain(decimal.Decimal('-3')) == -3
    assert r.plain(decimal.Decimal('2.5')) == 2.5
    for value in (None, True, 3, 'x', 1.25):
        assert r.plain(value) == value
    assert r.row_dict(['a', 'b'], (decimal.Decimal(1), None)) == {'a': 1, 'b': None}


@pytest.mark.parametrize('text, expect', [
    ("host=10.0.0.11 port=5432 user=replicator password=********", 'host=10.0.0.11 port=5432 user=replicator'),
    ("host=a password='s e c\\'ret' application_name=db2", 'host=a application_name=db2'),
    ('postgresql://replicator:secret@10.0.0.11:5432/postgres?application_name=db2',
     'user=replicator port=5432 host=10.0.0.11 dbname=postgres application_name=db2'),
    ('', ''),
    (None, None),
])
def test_strip_password(text, expect):
    assert r.strip_password(text) == expect


@pytest.mark.parametrize('text', [
    "host=a password='unterminated",
    "host=a password=secret broken",
    "password = secret host='x",
])
def test_strip_password_of_unparseable_strings(text):
    stripped = r.strip_password(text)
    assert 'secret' not in stripped and 'unterminated' not in stripped
    assert 'host' in stripped


def test_strip_password_unparseable_uri_is_not_a_uri_for_the_parser():
    # key=value parsing fails on "=" missing; the URI user:password@ part is removed by pattern
    stripped = r.strip_password("broken postgres://me:secret@db1/x")
    assert 'secret' not in stripped and 'me@db1' in stripped


def test_percent():
    assert r.percent(50, 200) == 25.0
    assert r.percent(1, 3) == 33.3
    assert r.percent(5, None) is None
    assert r.percent(5, 0) is None
    assert r.percent(None, 10) is None


# -- SQL -------------------------------------------------------------------------------

def sql_of(version, in_recovery):
    return dict((name, sql) for name, columns, sql in r.queries(version, in_recovery))


def test_select_list_and_available():
    columns = [('a', {130000: 'x.a'}, 'text'), ('b', {170000: 'x.b'}, 'bigint'),
               ('c', {130000: 'old()', 140000: 'new()'}, 'boolean')]
    assert r.select_list(columns, 130000) == 'x.a AS a,\n       NULL::bigint AS b,\n       old() AS c'
    assert r.select_list(columns, 140000).endswith('new() AS c')
    assert 'x.b AS b' in r.select_list(columns, 170000)
    assert r.available(columns, 130000) == ['a', 'c']
    assert r.available(columns, 180000) == ['a', 'b', 'c']


def test_server_sql_is_version_independent():
    sql = r.server_sql()
    for name in r.column_names(r.SERVER_COLUMNS):
        assert ' AS %s' % name in sql
    assert 'NULL::' not in sql
    assert 'pg_control_system()' in sql and 'pg_is_in_recovery()' in sql


@pytest.mark.parametrize('version', VERSIONS)
def test_every_query_names_its_columns_in_order(version):
    for in_recovery in (False, True):
        for name, columns, sql in r.queries(version, in_recovery):
            select_list = sql.split('\nFROM ')[0]
            aliases = re.findall(r' AS (\w+)(?:,\n|$)', select_list)
            assert aliases == r.column_names(columns), (name, sql)


@pytest.mark.parametrize('version', VERSIONS)
def test_only_select_statements(version):
    for in_recovery in (False, True):
        for name, columns, sql in r.queries(version, in_recovery):
            assert sql.startswith('SELECT ')
            assert ';' not in sql
            assert not re.search(r'\b(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|CHECKPOINT|pg_create|pg_drop)\b', sql,
                                 re.I), sql


@pytest.mark.parametrize('version', VERSIONS)
def test_role_specific_queries(version):
    primary, standby = sql_of(version, False), sql_of(version, True)
    assert list(primary) == ['positions', 'replication', 'slots', 'basebackup_progress']
    assert list(standby) == ['positions', 'wal_receiver', 'replication', 'slots', 'basebackup_progress']
    # functions that fail during recovery only on a primary, recovery control functions only on a standby
    assert 'pg_current_wal_lsn()' in primary['positions'] and 'pg_walfile_name' in primary['positions']
    for sql in standby.values():
        assert 'pg_current_wal_lsn' not in sql and 'pg_walfile_name' not in sql
    for sql in primary.values():
        assert 'pause' not in sql and 'pg_last_wal' not in sql
    # the reference of the lags: the WAL written (primary) or replayed (standby)
    assert 'CROSS JOIN (SELECT pg_current_wal_lsn() AS lsn) AS ref' in primary['replication']
    assert 'CROSS JOIN (SELECT pg_current_wal_lsn() AS lsn) AS ref' in primary['slots']
    assert 'CROSS JOIN (SELECT pg_last_wal_replay_lsn() AS lsn) AS ref' in standby['replication']
    assert 'CROSS JOIN (SELECT pg_last_wal_replay_lsn() AS lsn) AS ref' in standby['slots']
    assert "s.slot_type = 'physical'" in primary['slots']
    # byte lags are computed by the server
    for kind in ('sent', 'write', 'flush', 'replay'):
        assert 'pg_wal_lsn_diff(ref.lsn, r.%s_lsn)::bigint AS %s_lag_bytes' % (kind, kind) in primary['replication']
    assert 'pg_wal_lsn_diff(ref.lsn, s.restart_lsn)::bigint AS retained_bytes' in primary['slots']
    assert ('pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS replay_lag_bytes'
            in standby['positions'])
    assert 'EXTRACT(EPOCH FROM r.replay_lag)::float8 AS replay_lag' in primary['replication']
    assert 'LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = b.pid' in primary['basebackup_progress']


def test_pause_state_by_version():
    v13 = sql_of(130000, True)['positions']
    assert 'pg_get_wal_replay_pause_state' not in v13
    assert 'pg_is_wal_replay_paused() AS replay_paused' in v13
    assert "CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END AS replay_pause_state" in v13
    for version in (140000, 150000, 170000, 180000):
        sql = sql_of(version, True)['positions']
        assert "pg_get_wal_replay_pause_state() <> 'not paused' AS replay_paused" in sql
        assert 'pg_get_wal_replay_pause_state() AS replay_pause_state' in sql
        assert 'pg_is_wal_replay_paused' not in sql


@pytest.mark.parametrize('version, real', [
    (130000, False), (140000, False), (150000, False), (160000, False), (170000, True), (180000, True)])
def test_slot_columns_by_version(version, real):
    for in_recovery in (False, True):
        sql = sql_of(version, in_recovery)['slots']
        for column, sql_type in (('invalidation_reason', 'text'), ('inactive_since', 'timestamptz')):
            if real:
                assert 's.%s AS %s' % (column, column) in sql
            else:
                assert 'NULL::%s AS %s' % (sql_type, column) in sql
                assert 's.%s' % column not in sql
        # the columns every supported version has
        for column in ('wal_status', 'safe_wal_size', 'temporary', 'active_pid'):
            assert 's.%s AS %s' % (column, column) in sql


@pytest.mark.parametrize('version', VERSIONS)
def test_wal_receiver_columns_of_13_and_newer(version):
    sql = sql_of(version, True)['wal_receiver']
    # 13 renamed received_lsn to flushed_lsn and added written_lsn
    assert 'w.flushed_lsn::text AS flushed_lsn' in sql and 'w.written_lsn::text AS written_lsn' in sql
    assert 'received_lsn' not in sql
    assert 'NULL::' not in sql


def test_unsupported_version():
    with pytest.raises(ValueError):
        r.queries(120000, False)


def test_available_columns_per_version():
    assert 'invalidation_reason' not in r.available(r.SLOT_COLUMNS, 160000)
    assert 'invalidation_reason' in r.available(r.SLOT_COLUMNS, 170000)
    assert r.available(r.STANDBY_COLUMNS, 130000) == r.column_names(r.STANDBY_COLUMNS)


# -- shape ----------------------------------------------------------------------------------------------------------

SERVER = dict(in_recovery=False, server_version_num=150018, server_version='15.18 (Debian 15.18-0+deb12u1)',
              system_identifier=-5, checkpoint_timeline=1, postmaster_start_time='2026-01-26T10:00:00+00:00',
              synchronous_standby_names='', synchronous_commit='on', wal_log_hints=False, data_checksums=True,
              max_wal_senders=10, max_replication_slots=10, sees_all_stats=True)


def test_shape_primary():
    rows = dict(positions=[dict(current_wal_lsn='0/5000000', current_wal_file='000000030000000000000005')],
                replication=[dict(application_name='db2')], slots=[dict(slot_name='db2')],
                basebackup_progress=[dict(pid=1, backup_streamed=10, backup_total=40)])
    result = r.shape(SERVER, rows)
    assert result['role'] == 'primary' and result['in_recovery'] is False
    assert result['timeline'] == 3 and result['timeline_source'] == 'wal_insert'
    assert result['current_wal_lsn'] == '0/5000000'
    assert result['system_identifier'] == '18446744073709551611'
    assert result['wal_receiver'] is None
    for name in r.column_names(r.STANDBY_COLUMNS):
        assert result[name] is None
    assert result['basebackup_progress'][0]['percent'] == 25.0
    assert 'sees_all_stats' not in result and 'checkpoint_timeline' not in result


def test_shape_primary_without_walfile_uses_checkpoint():
    result = r.shape(SERVER, dict(positions=[dict(current_wal_lsn='0/5000000', current_wal_file=None)]))
    assert result['timeline'] == 1 and result['timeline_source'] == 'checkpoint'
    assert result['replication'] == [] and result['slots'] == [] and result['basebackup_progress'] == []


def standby_rows(status='streaming', tli=2):
    return dict(
        positions=[dict(receive_lsn='0/5000000', replay_lsn='0/4000000', replay_lag_bytes=0x1000000,
                        replay_paused=False, replay_pause_state='not paused', last_xact_replay_timestamp=None,
                        primary_conninfo='host=db1 password=hunter2 application_name=db2', primary_slot_name='db2')],
        wal_receiver=[dict(pid=9, status=status, received_tli=tli, conninfo='host=db1 password=******** port=5432')],
        replication=[], slots=[], basebackup_progress=[])


def test_shape_standby():
    result = r.shape(dict(SERVER, in_recovery=True), standby_rows())
    assert result['role'] == 'standby' and result['current_wal_lsn'] is None
    assert result['timeline'] == 2 and result['timeline_source'] == 'wal_receiver'
    assert result['primary_conninfo'] == 'host=db1 application_name=db2'
    assert result['wal_receiver']['conninfo'] == 'host=db1 port=5432'
    assert result['replay_lag_bytes'] == 0x1000000 and result['primary_slot_name'] == 'db2'
    assert 'hunter2' not in repr(result) and '****' not in repr(result)


def test_shape_standby_not_streaming_uses_checkpoint_timeline():
    result = r.shape(dict(SERVER, in_recovery=True), standby_rows(status='waiting'))
    assert result['timeline'] == 1 and result['timeline_source'] == 'checkpoint'
    rows = standby_rows()
    rows['wal_receiver'] = []
    result = r.shape(dict(SERVER, in_recovery=True), rows)
    assert result['wal_receiver'] is None and result['timeline_source'] == 'checkpoint'


# -- the pg_rewind grants of a role --------------------------------------------------------------------------------

REWIND_FUNCTIONS = ['pg_catalog.pg_ls_dir(text, boolean, boolean)', 'pg_catalog.pg_stat_file(text, boolean)',
                    'pg_catalog.pg_read_binary_file(text)',
                    'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)']


def test_rewind_functions_are_those_of_the_pg_rewind_page():
    assert list(r.REWIND_FUNCTIONS) == REWIND_FUNCTIONS


def test_rewind_query():
    name, columns, sql, params = r.rewind_query("we'ird")
    assert name == 'rewind' and columns is r.REWIND_COLUMNS
    assert params == {'rewind_user': "we'ird"} and r.REWIND_PARAM == 'rewind_user'
    assert "we'ird" not in sql and 'weird' not in sql
    # the name reaches the server only as the one pyformat parameter; no other % for psycopg2 to misread
    assert sql.count('%(rewind_user)s') == 1 and sql.replace('%(rewind_user)s', '').count('%') == 0
    assert sql.startswith('SELECT ') and ';' not in sql
    aliases = re.findall(r' AS (\w+)(?:,\n|$)', sql.split('\nFROM ', maxsplit=1)[0])
    assert aliases == r.column_names(r.REWIND_COLUMNS) == ['rewind_user_exists', 'rewind_grants_missing']
    # the role is looked up first; has_function_privilege() gets its OID and is not called without a role
    assert 'LEFT JOIN pg_catalog.pg_roles AS u ON u.rolname = given.rolname' in sql
    assert "CASE WHEN u.oid IS NULL THEN true" in sql
    assert "NOT pg_catalog.has_function_privilege(u.oid, f.signature, 'EXECUTE')" in sql
    assert 'WITH ORDINALITY' in sql and 'ORDER BY f.n' in sql
    for function in REWIND_FUNCTIONS:
        assert "'%s'" % function in sql
    assert not re.search(r'\b(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|GRANT|REVOKE)\b', sql, re.I), sql


def test_rewind_query_is_version_independent():
    sql = r.rewind_query('replicator')[2]
    assert 'NULL::' not in sql
    for version in VERSIONS:
        assert r.available(r.REWIND_COLUMNS, version) == r.column_names(r.REWIND_COLUMNS)
    assert r.rewind_query('other')[2] == sql


@pytest.mark.parametrize('bad', [None, '', 5, b'replicator'])
def test_rewind_query_needs_a_role_name(bad):
    with pytest.raises(ValueError):
        r.rewind_query(bad)


def test_rewind_result():
    assert r.rewind_result() == dict(rewind_user=None, rewind_user_exists=None, rewind_grants_missing=None)
    assert r.rewind_result('replicator') == r.rewind_result()  # not read (no row): nothing is known
    got = r.rewind_result('replicator', dict(rewind_user_exists=True, rewind_grants_missing=REWIND_FUNCTIONS[1:2]))
    assert got == dict(rewind_user='replicator', rewind_user_exists=True,
                       rewind_grants_missing=['pg_catalog.pg_stat_file(text, boolean)'])
    got = r.rewind_result('postgres', dict(rewind_user_exists=True, rewind_grants_missing=[]))
    assert got['rewind_grants_missing'] == []
    # no role: all four missing, whatever the array holds
    got = r.rewind_result('x', dict(rewind_user_exists=False, rewind_grants_missing=None))
    assert got == dict(rewind_user='x', rewind_user_exists=False, rewind_grants_missing=REWIND_FUNCTIONS)


def test_shape_with_and_without_rewind_user():
    rows = dict(positions=[dict(current_wal_lsn='0/5000000', current_wal_file='000000030000000000000005')])
    result = r.shape(SERVER, rows)
    assert result['rewind_user'] is None and result['rewind_user_exists'] is None
    assert result['rewind_grants_missing'] is None
    rows['rewind'] = [dict(rewind_user_exists=True, rewind_grants_missing=REWIND_FUNCTIONS[2:])]
    result = r.shape(SERVER, rows, 'replicator')
    assert result['rewind_user'] == 'replicator' and result['rewind_user_exists'] is True
    assert result['rewind_grants_missing'] == REWIND_FUNCTIONS[2:]
    assert r.shape(SERVER, rows)['rewind_user'] is None  # a row without the option is not used
    standby = r.shape(dict(SERVER, in_recovery=True), dict(standby_rows(), rewind=[
        dict(rewind_user_exists=False, rewind_grants_missing=REWIND_FUNCTIONS)]), 'nobody')
    assert standby['rewind_user_exists'] is False and standby['rewind_grants_missing'] == REWIND_FUNCTIONS


def test_offline_result_has_the_rewind_keys():
    result = r.offline_result('connection refused')
    assert result['rewind_user'] is None and result['rewind_user_exists'] is None
    assert result['rewind_grants_missing'] is None
    rows = dict(positions=[dict(current_wal_lsn='0/5000000', current_wal_file='000000030000000000000005')])
    assert set(result) - {'connected', 'connection_error'} == set(r.shape(SERVER, rows))
