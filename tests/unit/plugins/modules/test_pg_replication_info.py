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

from ansible.module_utils import basic

from ansible_collections.hotstandby.postgresql.plugins.modules import pg_replication_info as m
from ansible_collections.hotstandby.postgresql.plugins.module_utils import replication as r
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.clusters import (
    PRIMARY_SYSID, write_cluster)
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.controldata_samples import render
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.modules.harness import NO_LOG_MASK, run_main

PASSWORD = 's3cr:et pass'
UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 1, 26, 10, 15, 0, 123456, tzinfo=UTC)

# What a real server refuses: functions by the first version that has them, and the role they need.
SINCE = {'pg_get_wal_replay_pause_state': 140000, 's.invalidation_reason': 170000, 's.inactive_since': 170000}
RECOVERY_ONLY = ('pg_is_wal_replay_paused', 'pg_get_wal_replay_pause_state')
PRIMARY_ONLY = ('pg_current_wal_lsn', 'pg_walfile_name')


# ---------------------------------------------------------------------------
# a fake psycopg2 that answers the module's queries like a server of a given version and role
# ---------------------------------------------------------------------------

class FakeError(Exception):
    pass


class FakeOperationalError(FakeError):
    pass


class FakeServer(object):

    def __init__(self, version=150018, in_recovery=False):
        self.version = version
        self.in_recovery = in_recovery
        self.rows = {}
        self.connect_error = None
        self.fail_on = None  # a query name that fails with a server error
        self.connects = []
        self.sessions = []
        self.executed = []
        self.rolled_back = self.closed = self.committed = False
        self.params = []  # (sql, params) of each query given parameters
        # the roles of the connected database: name -> 'superuser', or the rewind functions granted to it
        self.roles = {'postgres': 'superuser', 'replicator': set()}
        self.server = dict(
            in_recovery=in_recovery, server_version_num=version,
            server_version='%d.%d (Debian)' % (version // 10000, version % 100),
            system_identifier=7712491459935377245, checkpoint_timeline=1, postmaster_start_time=T0,
            synchronous_standby_names='', synchronous_commit='on', wal_log_hints=False, data_checksums=True,
            max_wal_senders=10, max_replication_slots=10, sees_all_stats=True)
        # what current_setting() answers for the hot standby settings
        self.settings = dict(max_connections=100, max_worker_processes=8, max_wal_senders=10,
                             max_prepared_transactions=0, max_locks_per_transaction=64)

    # the psycopg2 module interface
    Error = FakeError
    OperationalError = FakeOperationalError

    def connect(self, **kwargs):
        self.connects.append(kwargs)
        if self.connect_error:
            raise FakeOperationalError(self.connect_error)
        return FakeConnection(self)

    # answering
    def answer(self, sql, params=None):
        self.executed.append(sql)
        if params is not None:
            self.params.append((sql, params))
            return self.answer_rewind(sql, params)
        if sql == 'SET TRANSACTION READ ONLY':
            return None, []
        if sql == r.server_sql():
            names = r.column_names(r.SERVER_COLUMNS)
            return names, [tuple(self.server[n] for n in names)]
        if sql == m.hot_standby_query()[2]:
            if self.fail_on == 'hot_standby_settings':
                raise FakeError('permission denied to examine "max_connections"')
            names = r.column_names(m.HOT_STANDBY_COLUMNS)
            return names, [tuple(self.settings[n] for n in names)]
        for name, columns, query in r.queries(self.version, self.in_recovery):
            if query == sql:
                break
        else:
            raise AssertionError('unexpected SQL: %s' % sql)
        for function, since in SINCE.items():
            if function in sql and self.version < since:
                raise FakeError('function or column %s does not exist' % function)
        for function in RECOVERY_ONLY:
            if function in sql and not self.in_recovery:
                raise FakeError('recovery is not in progress')
        for function in PRIMARY_ONLY:
            if function in sql and self.in_recovery:
                raise FakeError('recovery is in progress')
        if self.fail_on == name:
            raise FakeError('permission denied for %s' % name)
        names = r.column_names(columns)
        result = []
        for row in self.rows.get(name, []):
            unknown = set(row) - set(names)
            assert not unknown, 'the test gives columns %s that %s does not select' % (unknown, name)
            result.append(tuple(row.get(n) for n in names))
        return names, result

    def answer_rewind(self, sql, params):
        """The grants query: like the server, it looks the role up by the name given as a parameter."""
        user = params[r.REWIND_PARAM]
        assert sql == r.rewind_query(user)[2], 'unexpected SQL with parameters: %s' % sql
        assert '%%(%s)s' % r.REWIND_PARAM in sql  # psycopg2 puts the quoted name there, not the module
        if self.fail_on == 'rewind':
            raise FakeError('permission denied for view pg_roles')
        names = r.column_names(r.REWIND_COLUMNS)
        role = self.roles.get(user)
        if role is None:
            row = (False, list(r.REWIND_FUNCTIONS))  # the CASE: no has_function_privilege() for no role
        elif role == 'superuser':
            row = (True, [])  # has_function_privilege() is true for a superuser
        else:
            row = (True, [f for f in r.REWIND_FUNCTIONS if f not in role])
        return names, [row]


class FakeConnection(object):

    def __init__(self, server):
        self.server = server

    def set_session(self, **kwargs):
        self.server.sessions.append(kwargs)

    def cursor(self):
        return FakeCursor(self.server)

    def rollback(self):
        self.server.rolled_back = True

    def commit(self):
        self.server.committed = True

    def close(self):
        self.server.closed = True


class FakeCursor(object):

    def __init__(self, server):
        self.server = server
        self.description = None
        self._rows = []

    def execute(self, sql, params=None):
        names, self._rows = self.server.answer(sql, params)
        self.description = [(n, None, None, None, None, None, None) for n in names] if names else None

    def fetchall(self):
        return list(self._rows)


@pytest.fixture
def server(monkeypatch):
    fake = FakeServer()
    monkeypatch.setattr(m, 'psycopg2', fake)
    return fake


def run_module(capsys, check=False, **params):
    result, invocation = run_main(m.main, params, capsys, check)
    if invocation and 'login_password' in invocation['module_args'] and invocation['module_args']['login_password']:
        assert invocation['module_args']['login_password'] == NO_LOG_MASK
    return result


def standby_row(name='db2', lag=0, state='streaming', **extra):
    row = dict(pid=4321, application_name=name, client_addr='10.0.0.12', state=state, sync_state='async',
               sync_priority=0, sent_lsn='0/3000148', write_lsn='0/3000148', flush_lsn='0/3000148',
               replay_lsn='0/3000148', sent_lag_bytes=0, write_lag_bytes=0, flush_lag_bytes=0,
               replay_lag_bytes=decimal.Decimal(lag), write_lag=None, flush_lag=None, replay_lag=None,
               reply_time=T0, backend_start=T0)
    row.update(extra)
    return row


def slot_row(name='db2', **extra):
    row = dict(slot_name=name, active=True, active_pid=4321, restart_lsn='0/3000000', retained_bytes=328,
               wal_status='reserved', safe_wal_size=4278190080, invalidation_reason=None, inactive_since=None,
               temporary=False)
    row.update(extra)
    return row


def make_standby(server, version=150018):
    server.version = server.server['server_version_num'] = version
    server.in_recovery = server.server['in_recovery'] = True
    server.rows['positions'] = [dict(
        receive_lsn='0/5000000', replay_lsn='0/4FFFF00', replay_lag_bytes=256, replay_paused=False,
        replay_pause_state='not paused', last_xact_replay_timestamp=T0,
        primary_conninfo="host=10.0.0.11 port=5432 user=replicator password='%s' application_name=db2" % PASSWORD,
        primary_slot_name='db2')]
    server.rows['wal_receiver'] = [dict(
        pid=77, status='streaming', sender_host='10.0.0.11', sender_port=5432, received_tli=2,
        written_lsn='0/5000000', flushed_lsn='0/5000000', latest_end_lsn='0/5000000', latest_end_time=T0,
        slot_name='db2', last_msg_send_time=T0, last_msg_receipt_time=T0,
        conninfo='user=replicator password=******** host=10.0.0.11 port=5432 application_name=db2')]


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

RETURN_KEYS = {
    'role', 'in_recovery', 'server_version_num', 'server_version', 'system_identifier', 'timeline',
    'timeline_source', 'current_wal_lsn', 'postmaster_start_time', 'replication', 'wal_receiver', 'receive_lsn',
    'replay_lsn', 'replay_lag_bytes', 'replay_paused', 'replay_pause_state', 'last_xact_replay_timestamp',
    'primary_conninfo', 'primary_slot_name', 'slots', 'basebackup_progress', 'synchronous_standby_names',
    'synchronous_commit', 'wal_log_hints', 'data_checksums', 'max_wal_senders', 'max_replication_slots', 'msg',
    'connected', 'connection_error', 'data_directory', 'rewind_user', 'rewind_user_exists', 'rewind_grants_missing',
    'hot_standby_settings', 'files'}
# what a node whose server did not answer returns: all but the keys returned only when connected
OFFLINE_KEYS = RETURN_KEYS - {'hot_standby_settings'}


def test_return_documents_every_key():
    import yaml
    documented = set(yaml.safe_load(m.RETURN))
    assert documented == RETURN_KEYS
    ret = yaml.safe_load(m.RETURN)
    for key, spec in ret.items():
        assert {'description', 'returned', 'type'} <= set(spec), key
        assert 'sample' in spec or spec['type'] in ('list', 'dict'), key
    for listed, columns in (('replication', r.REPLICATION_COLUMNS), ('slots', r.SLOT_COLUMNS),
                            ('wal_receiver', r.WAL_RECEIVER_COLUMNS)):
        assert set(ret[listed]['contains']) == set(r.column_names(columns)), listed
    assert set(ret['basebackup_progress']['contains']) == set(r.column_names(r.BASEBACKUP_COLUMNS)) | {'percent'}


def test_primary(server, capsys):
    server.rows['positions'] = [dict(current_wal_lsn='0/3000148', current_wal_file='000000010000000000000003')]
    server.rows['replication'] = [standby_row('db2'), standby_row('db3', lag=16777217, state='catchup',
                                                                  replay_lag=0.25)]
    server.rows['slots'] = [slot_row('db2'), slot_row('db3', active=False, active_pid=None, wal_status='lost',
                                                      restart_lsn=None, retained_bytes=None)]
    result = run_module(capsys)
    assert not result.get('failed'), result
    assert set(result) - {'_raw', 'changed', 'warnings'} == RETURN_KEYS
    assert result['changed'] is False
    assert result['role'] == 'primary' and result['in_recovery'] is False
    assert result['timeline'] == 1 and result['timeline_source'] == 'wal_insert'
    assert result['current_wal_lsn'] == '0/3000148'
    assert result['system_identifier'] == '7712491459935377245'
    assert result['postmaster_start_time'] == '2026-01-26T10:15:00.123456+00:00'
    assert result['wal_receiver'] is None and result['receive_lsn'] is None and result['replay_paused'] is None
    assert [row['application_name'] for row in result['replication']] == ['db2', 'db3']
    db3 = result['replication'][1]
    assert db3['replay_lag_bytes'] == 16777217 and db3['replay_lag'] == 0.25 and db3['write_lag'] is None
    assert db3['reply_time'] == '2026-01-26T10:15:00.123456+00:00'
    assert result['slots'][1]['wal_status'] == 'lost' and result['slots'][1]['retained_bytes'] is None
    assert result['msg'] == 'primary, PostgreSQL 15.18, timeline 1, 2 WAL senders (1 streaming), 2 slots'
    assert result['basebackup_progress'] == []


def test_read_only_transaction_rolled_back(server, capsys):
    run_module(capsys)
    assert server.sessions == [dict(readonly=True, autocommit=False)]
    assert server.executed[0] == 'SET TRANSACTION READ ONLY'
    assert all(sql.startswith('SELECT ') for sql in server.executed[1:])
    assert server.rolled_back and server.closed and not server.committed


def test_check_mode_is_the_same_read(server, capsys):
    normal = run_module(capsys)
    executed = list(server.executed)
    server.executed[:] = []
    checked = run_module(capsys, check=True)
    assert server.executed == executed
    normal.pop('_raw')
    checked.pop('_raw')
    assert checked == normal and checked['changed'] is False


@pytest.mark.parametrize('version', [130000, 130022, 140000, 150000, 160000, 170000, 180000])
def test_standby_every_version(server, capsys, version):
    make_standby(server, version)
    server.rows['replication'] = [standby_row('db3')]
    server.rows['slots'] = [slot_row('db3')]
    server.rows['basebackup_progress'] = [dict(pid=5, phase='streaming database files', backup_total=400,
                                               backup_streamed=100, tablespaces_total=1, tablespaces_streamed=0,
                                               application_name='db4', client_addr='10.0.0.14', backend_start=T0)]
    result = run_module(capsys)
    assert not result.get('failed'), result
    assert result['role'] == 'standby' and result['in_recovery'] is True
    assert result['current_wal_lsn'] is None
    assert result['timeline'] == 2 and result['timeline_source'] == 'wal_receiver'
    assert result['receive_lsn'] == '0/5000000' and result['replay_lsn'] == '0/4FFFF00'
    assert result['replay_lag_bytes'] == 256 and result['replay_paused'] is False
    assert result['replay_pause_state'] == 'not paused'
    assert result['primary_slot_name'] == 'db2'
    assert result['primary_conninfo'] == 'host=10.0.0.11 port=5432 user=replicator application_name=db2'
    assert result['wal_receiver']['conninfo'] == 'user=replicator host=10.0.0.11 port=5432 application_name=db2'
    assert result['wal_receiver']['latest_end_time'] == '2026-01-26T10:15:00.123456+00:00'
    assert result['replication'][0]['application_name'] == 'db3'
    assert result['basebackup_progress'][0]['percent'] == 25.0
    assert result['basebackup_progress'][0]['application_name'] == 'db4'
    assert PASSWORD not in result['_raw'] and '********' not in result['_raw']
    assert 'WAL receiver streaming from 10.0.0.11:5432' in result['msg']


def test_13_gets_null_for_the_columns_of_17(server, capsys):
    make_standby(server, 130011)
    server.rows['slots'] = [slot_row('db3')]
    run_module(capsys)
    slots_sql = [sql for sql in server.executed if 'pg_replication_slots' in sql][0]
    assert 'NULL::text AS invalidation_reason' in slots_sql
    positions_sql = [sql for sql in server.executed if 'pg_last_wal_receive_lsn' in sql][0]
    assert 'pg_is_wal_replay_paused()' in positions_sql and 'pg_get_wal_replay_pause_state' not in positions_sql


def test_17_reads_invalidation_reason(server, capsys):
    server.version = server.server['server_version_num'] = 170004
    server.rows['positions'] = [dict(current_wal_lsn='0/9000000', current_wal_file='000000040000000000000009')]
    server.rows['slots'] = [slot_row('db2', wal_status='lost', invalidation_reason='wal_removed', restart_lsn=None,
                                     retained_bytes=None, active=False, active_pid=None, inactive_since=T0)]
    result = run_module(capsys)
    assert result['slots'][0]['invalidation_reason'] == 'wal_removed'
    assert result['slots'][0]['inactive_since'] == '2026-01-26T10:15:00.123456+00:00'
    assert result['timeline'] == 4


def test_standby_without_receiver(server, capsys):
    make_standby(server)
    server.rows['wal_receiver'] = []
    server.rows['positions'][0].update(receive_lsn=None, replay_lag_bytes=None)
    result = run_module(capsys)
    assert result['wal_receiver'] is None
    assert result['timeline'] == 1 and result['timeline_source'] == 'checkpoint'
    assert result['receive_lsn'] is None and result['replay_lag_bytes'] is None
    assert 'no WAL receiver' in result['msg']


def test_paused_standby_on_14(server, capsys):
    make_standby(server, 140010)
    server.rows['positions'][0].update(replay_paused=True, replay_pause_state='pause requested')
    result = run_module(capsys)
    assert result['replay_paused'] is True and result['replay_pause_state'] == 'pause requested'


def test_large_system_identifier_is_unsigned(server, capsys):
    server.server['system_identifier'] = -8446744073709551616
    result = run_module(capsys)
    assert result['system_identifier'] == '10000000000000000000'


def test_connection_defaults_and_params(server, capsys):
    run_module(capsys)
    assert server.connects == [dict(user='postgres', port=5432, dbname='postgres',
                                    application_name=m.APPLICATION_NAME)]
    server.connects[:] = []
    run_module(capsys, login_unix_socket='/var/run/postgresql', port=5433, db='template1')
    assert server.connects[0]['host'] == '/var/run/postgresql' and server.connects[0]['port'] == 5433
    assert server.connects[0]['dbname'] == 'template1'
    server.connects[:] = []
    result = run_module(capsys, login_host='db1', login_unix_socket='/tmp', login_user='monitor',
                        login_password=PASSWORD, connect_params=dict(connect_timeout=3, sslmode='require'))
    assert server.connects[0] == dict(user='monitor', port=5432, dbname='postgres', host='db1', password=PASSWORD,
                                      application_name=m.APPLICATION_NAME, connect_timeout=3, sslmode='require')
    assert PASSWORD not in result['_raw']


@pytest.mark.parametrize('error, expect', [
    ('connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory',
     'Is the server running'),
    ('FATAL:  Peer authentication failed for user "postgres"', 'become_user: postgres'),
    ('FATAL:  password authentication failed for user "monitor"', 'Check login_password'),
    ('FATAL:  database "nope" does not exist', 'set login_db'),
    ('connection to server failed: No such file\n\tIs the server running locally?', 'Is the server running (systemctl'),
])
def test_connection_failure_says_what_to_check(server, capsys, error, expect):
    server.connect_error = error
    result = run_module(capsys, login_password=PASSWORD)
    assert result['failed'] is True
    assert expect in result['msg'] and ' '.join(error.split()).rstrip('?') in result['msg']
    assert '?.' not in result['msg'] and '\n' not in result['msg']
    assert 'could not connect to PostgreSQL on the local socket' in result['msg']
    assert PASSWORD not in result['_raw']


def test_query_failure(server, capsys):
    server.fail_on = 'slots'
    result = run_module(capsys)
    assert result['failed'] is True
    assert 'reading slots failed' in result['msg'] and 'pg_monitor' in result['msg']
    assert server.rolled_back and server.closed


def test_too_old_server(server, capsys):
    server.server['server_version_num'] = 120015
    server.server['server_version'] = '12.15'
    result = run_module(capsys)
    assert result['failed'] is True and 'supports 13 and newer' in result['msg']


def test_unprivileged_login_warns(server, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, msg, **kw: warnings.append(msg))
    server.server['sees_all_stats'] = False
    run_module(capsys, login_user='nobody')
    assert any('GRANT pg_monitor TO nobody' in w for w in warnings)


def test_missing_psycopg2(monkeypatch, capsys):
    monkeypatch.setattr(m, 'psycopg2', None)
    monkeypatch.setattr(m, 'PSYCOPG2_IMPORT_ERROR', 'Traceback: No module named psycopg2')
    result = run_module(capsys)
    assert result['failed'] is True
    assert 'psycopg2' in result['msg'] and 'python3-psycopg2' in result['msg']


def test_no_write_statement_in_any_query():
    statements = [r.server_sql(), r.rewind_query('replicator')[2]] + [
        sql for version in (130000, 180000) for rec in (False, True) for name, columns, sql in r.queries(version, rec)]
    for sql in statements:
        assert not re.search(r'\b(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|TRUNCATE|COPY|GRANT|pg_terminate|'
                             r'pg_cancel|pg_switch_wal|pg_promote|pg_create|pg_drop|pg_wal_replay_resume|'
                             r'pg_wal_replay_pause)\b', sql, re.I), sql


# ---------------------------------------------------------------------------
# data_dir: what the directory says when no server answers
# ---------------------------------------------------------------------------

def test_data_dir_of_a_stopped_standby_is_reported_not_failed(server, capsys, tmp_path, monkeypatch):
    path = str(tmp_path / 'main')
    write_cluster(path, standby=True)
    monkeypatch.setattr(m, 'DEBIAN_LIB', str(tmp_path / 'no-lib'))  # no pg_controldata: its timeline is unknown
    server.connect_error = 'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file'
    result = run_module(capsys, data_dir=path)
    assert not result.get('failed'), result
    assert result['connected'] is False and 'could not connect' in result['connection_error']
    assert result['role'] == 'standby' and result['system_identifier'] == PRIMARY_SYSID
    assert result['replication'] == [] and result['timeline'] is None
    assert result['data_directory'] == dict(path=path, exists=True, system_identifier=PRIMARY_SYSID, pg_version='15',
                                            standby_signal=True, running=False, port=None,
                                            user_data='files that initdb does not create (standby.signal)',
                                            checkpoint_timeline=None)
    assert set(result) - {'_raw', 'changed', 'warnings'} == OFFLINE_KEYS


def test_data_dir_of_a_stopped_primary_with_data(server, capsys, tmp_path):
    path = str(tmp_path / 'main')
    write_cluster(path, user_data=True)
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=path)
    assert result['role'] == 'primary' and result['connected'] is False
    assert 'stopped primary' in result['msg']
    assert result['data_directory']['user_data']


def fake_controldata(monkeypatch, tmp_path, answer):
    """pg_controldata of PostgreSQL 15 under a fake DEBIAN_LIB; answer: (rc, out, err). Returns the calls made."""
    tool = tmp_path / 'lib' / '15' / 'bin' / 'pg_controldata'
    tool.parent.mkdir(parents=True)
    tool.write_text('#!/bin/sh\nexit 99\n')
    tool.chmod(0o755)
    monkeypatch.setattr(m, 'DEBIAN_LIB', str(tmp_path / 'lib'))
    calls = []

    def run_command(self, args, **kwargs):
        calls.append((args, kwargs))
        return answer

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    return calls


def test_data_dir_of_a_stopped_former_primary_reports_its_checkpoint_timeline(server, capsys, tmp_path, monkeypatch):
    path = str(tmp_path / 'main')
    write_cluster(path, user_data=True)
    calls = fake_controldata(monkeypatch, tmp_path, (0, render(system_identifier=PRIMARY_SYSID, timeline='2'), ''))
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=path)
    assert result['role'] == 'primary' and result['data_directory']['checkpoint_timeline'] == 2
    assert [c[0] for c in calls] == [[str(tmp_path / 'lib' / '15' / 'bin' / 'pg_controldata'), '-D', path]]
    assert calls[0][1]['environ_update']['LC_ALL'] == 'C'
    # the same read in check mode
    assert run_module(capsys, check=True, data_dir=path)['data_directory']['checkpoint_timeline'] == 2


@pytest.mark.parametrize('answer', [(1, '', 'pg_controldata: error: could not open file'),
                                    (0, 'Datenbanksystemidentifikation: 1\n', '')])
def test_data_dir_checkpoint_timeline_unknown_when_pg_controldata_fails(server, capsys, tmp_path, monkeypatch, answer):
    path = str(tmp_path / 'main')
    write_cluster(path)
    fake_controldata(monkeypatch, tmp_path, answer)
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=path)
    assert not result.get('failed') and result['data_directory']['checkpoint_timeline'] is None


def test_data_dir_checkpoint_timeline_unknown_without_pg_controldata(server, capsys, tmp_path, monkeypatch):
    path = str(tmp_path / 'main')
    write_cluster(path)
    monkeypatch.setattr(m, 'DEBIAN_LIB', str(tmp_path / 'no-lib'))
    server.connect_error = 'connection refused'
    assert run_module(capsys, data_dir=path)['data_directory']['checkpoint_timeline'] is None


def test_data_dir_checkpoint_timeline_not_read_while_a_server_runs(server, capsys, tmp_path, monkeypatch):
    path = str(tmp_path / 'main')
    write_cluster(path)
    calls = fake_controldata(monkeypatch, tmp_path, (0, render(system_identifier=PRIMARY_SYSID), ''))
    monkeypatch.setattr(m, 'postmaster_pid', lambda d: 4242 if d == path else None)
    result = run_module(capsys, data_dir=path)
    assert result['connected'] is True and result['data_directory']['checkpoint_timeline'] is None
    assert calls == []


def test_data_dir_missing_means_no_cluster(server, capsys, tmp_path):
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=str(tmp_path / 'none'))
    assert result['role'] is None and result['connected'] is False
    assert result['data_directory']['exists'] is False and 'holds no cluster' in result['msg']


def test_data_dir_with_a_running_server_that_does_not_answer_fails(server, capsys, tmp_path, monkeypatch):
    path = str(tmp_path / 'main')
    write_cluster(path)
    monkeypatch.setattr(m, 'postmaster_pid', lambda d: 4242 if d == path else None)
    server.connect_error = 'password authentication failed for user "postgres"'
    result = run_module(capsys, data_dir=path)
    assert result['failed'] and result['data_directory']['running'] is True


def test_data_dir_alongside_a_running_server(server, capsys, tmp_path, monkeypatch):
    path = str(tmp_path / 'main')
    write_cluster(path)
    monkeypatch.setattr(m, 'postmaster_pid', lambda d: 4242 if d == path else None)
    result = run_module(capsys, data_dir=path)
    assert result['connected'] is True and result['data_directory']['running'] is True


def test_data_dir_without_psycopg2_reports_the_directory(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(m, 'psycopg2', None)
    result = run_module(capsys, data_dir=str(tmp_path / 'none'))
    assert not result.get('failed') and result['connected'] is False and 'psycopg2' in result['connection_error']


# ---------------------------------------------------------------------------
# rewind_user: the grants a non-superuser pg_rewind needs
# ---------------------------------------------------------------------------

HALF = {'pg_catalog.pg_ls_dir(text, boolean, boolean)', 'pg_catalog.pg_read_binary_file(text)'}


def test_rewind_keys_are_null_without_rewind_user(server, capsys):
    result = run_module(capsys)
    assert result['rewind_user'] is None and result['rewind_user_exists'] is None
    assert result['rewind_grants_missing'] is None
    assert server.params == [] and not any('has_function_privilege' in sql for sql in server.executed)
    assert 'pg_rewind' not in result['msg']


@pytest.mark.parametrize('version', [130000, 140000, 150000, 160000, 170000, 180000])
@pytest.mark.parametrize('in_recovery', [False, True])
def test_rewind_grants_partly_missing_every_version_and_role(server, capsys, version, in_recovery):
    if in_recovery:
        make_standby(server, version)
    else:
        server.version = server.server['server_version_num'] = version
    server.roles['replicator'] = set(HALF)
    result = run_module(capsys, rewind_user='replicator')
    assert not result.get('failed'), result
    assert result['rewind_user'] == 'replicator' and result['rewind_user_exists'] is True
    assert result['rewind_grants_missing'] == ['pg_catalog.pg_stat_file(text, boolean)',
                                               'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)']
    assert 'role replicator lacks 2 of the 4 pg_rewind grants' in result['msg']
    assert set(result) - {'_raw', 'changed', 'warnings'} == RETURN_KEYS


def test_rewind_grants_all_missing_in_the_order_of_the_docs(server, capsys):
    result = run_module(capsys, rewind_user='replicator')
    assert result['rewind_user_exists'] is True
    assert result['rewind_grants_missing'] == [
        'pg_catalog.pg_ls_dir(text, boolean, boolean)', 'pg_catalog.pg_stat_file(text, boolean)',
        'pg_catalog.pg_read_binary_file(text)', 'pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)']


def test_rewind_grants_none_missing(server, capsys):
    server.roles['replicator'] = set(r.REWIND_FUNCTIONS)
    result = run_module(capsys, rewind_user='replicator')
    assert result['rewind_user_exists'] is True and result['rewind_grants_missing'] == []
    assert result['msg'].endswith(', role replicator may run pg_rewind')


def test_rewind_superuser_misses_nothing(server, capsys):
    result = run_module(capsys, rewind_user='postgres')
    assert result['rewind_user'] == 'postgres' and result['rewind_user_exists'] is True
    assert result['rewind_grants_missing'] == []


def test_rewind_unknown_role_misses_all_four(server, capsys):
    result = run_module(capsys, rewind_user='rewinder')
    assert not result.get('failed'), result
    assert result['rewind_user'] == 'rewinder' and result['rewind_user_exists'] is False
    assert result['rewind_grants_missing'] == list(r.REWIND_FUNCTIONS)
    assert 'no role rewinder for pg_rewind' in result['msg']


@pytest.mark.parametrize('name', ["we'ird\"x", "x'); GRANT pg_write_server_files TO x; --", 'Replicator', '%s %(x)s'])
def test_rewind_user_is_a_query_parameter_never_sql_text(server, capsys, name):
    server.roles[name] = set(HALF)
    result = run_module(capsys, rewind_user=name)
    assert result['rewind_user'] == name and result['rewind_user_exists'] is True
    assert len(result['rewind_grants_missing']) == 2
    assert len(server.params) == 1
    sql, params = server.params[0]
    assert params == {r.REWIND_PARAM: name}
    for executed in server.executed:
        assert name not in executed


def test_rewind_in_the_same_read_only_transaction(server, capsys):
    make_standby(server)
    run_module(capsys, rewind_user='replicator')
    assert len(server.connects) == 1 and server.sessions == [dict(readonly=True, autocommit=False)]
    assert server.executed[0] == 'SET TRANSACTION READ ONLY'
    assert len([sql for sql in server.executed if 'has_function_privilege' in sql]) == 1
    assert all(sql.startswith('SELECT ') for sql in server.executed[1:])
    assert server.rolled_back and server.closed and not server.committed


def test_rewind_check_mode_is_the_same_read(server, capsys):
    normal = run_module(capsys, rewind_user='replicator')
    executed = list(server.executed)
    server.executed[:] = []
    checked = run_module(capsys, check=True, rewind_user='replicator')
    assert server.executed == executed
    normal.pop('_raw')
    checked.pop('_raw')
    assert checked == normal


def test_rewind_query_failure_names_the_step(server, capsys):
    server.fail_on = 'rewind'
    result = run_module(capsys, rewind_user='replicator')
    assert result['failed'] is True
    assert 'reading the pg_rewind grants of role "replicator" failed' in result['msg']
    assert server.rolled_back and server.closed


def test_rewind_user_empty_fails_before_connecting(server, capsys):
    result = run_module(capsys, rewind_user='')
    assert result['failed'] is True and 'rewind_user must name a role' in result['msg']
    assert server.connects == []


def test_rewind_keys_null_when_no_server_answers(server, capsys, tmp_path):
    path = str(tmp_path / 'main')
    write_cluster(path, standby=True)
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=path, rewind_user='replicator')
    assert not result.get('failed'), result
    assert result['connected'] is False
    assert result['rewind_user'] is None and result['rewind_user_exists'] is None
    assert result['rewind_grants_missing'] is None
    assert set(result) - {'_raw', 'changed', 'warnings'} == OFFLINE_KEYS


def test_rewind_user_documented():
    import yaml
    doc = yaml.safe_load(m.DOCUMENTATION)
    option = doc['options']['rewind_user']
    assert option['type'] == 'str' and 'default' not in option and not option.get('required')
    assert m.ARGUMENT_SPEC['rewind_user'] == dict(type='str')
    text = ' '.join(option['description'])
    for function in r.REWIND_FUNCTIONS:
        assert function in text
    assert 'site.yml' in text and 'switchover preflight' in text
    ret = yaml.safe_load(m.RETURN)
    assert ret['rewind_grants_missing']['type'] == 'list' and ret['rewind_grants_missing']['elements'] == 'str'
    assert ret['rewind_user_exists']['type'] == 'bool' and ret['rewind_user']['type'] == 'str'
    missing_doc = ' '.join(ret['rewind_grants_missing']['description'])
    for function in r.REWIND_FUNCTIONS:  # a ) inside V() is escaped
        assert 'V(%s)' % function.replace(')', '\\)') in missing_doc
    assert set(ret['rewind_grants_missing']['sample']) <= set(r.REWIND_FUNCTIONS)


# ---------------------------------------------------------------------------
# hot_standby_settings: what a standby must have at least as high as its primary
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('version', [130000, 140000, 150000, 160000, 170000, 180000])
@pytest.mark.parametrize('in_recovery', [False, True])
def test_hot_standby_settings_every_version_and_role(server, capsys, version, in_recovery):
    if in_recovery:
        make_standby(server, version)
    else:
        server.version = server.server['server_version_num'] = version
    server.settings.update(max_connections=250, max_prepared_transactions=5)
    result = run_module(capsys)
    assert not result.get('failed'), result
    assert result['hot_standby_settings'] == dict(max_connections=250, max_worker_processes=8, max_wal_senders=10,
                                                  max_prepared_transactions=5, max_locks_per_transaction=64)
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in result['hot_standby_settings'].values())


def test_hot_standby_settings_read_with_current_setting_in_the_same_read_only_transaction(server, capsys):
    make_standby(server)
    run_module(capsys, rewind_user='replicator')
    assert len(server.connects) == 1 and server.sessions == [dict(readonly=True, autocommit=False)]
    name, columns, sql = m.hot_standby_query()
    assert server.executed.count(sql) == 1 and server.executed[0] == 'SET TRANSACTION READ ONLY'
    for setting in m.HOT_STANDBY_SETTINGS:
        assert "current_setting('%s')::integer AS %s" % (setting, setting) in sql
    assert not re.search(r'\b(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|SET|GRANT)\b', sql, re.I), sql
    assert server.rolled_back and server.closed and not server.committed


def test_hot_standby_settings_are_the_ones_of_the_hot_standby_page():
    assert m.HOT_STANDBY_SETTINGS == ('max_connections', 'max_worker_processes', 'max_wal_senders',
                                      'max_prepared_transactions', 'max_locks_per_transaction')


def test_hot_standby_settings_query_failure_names_the_step(server, capsys):
    server.fail_on = 'hot_standby_settings'
    result = run_module(capsys)
    assert result['failed'] is True
    assert 'reading the hot standby settings failed' in result['msg']
    assert server.rolled_back and server.closed


def test_hot_standby_settings_absent_when_no_server_answers(server, capsys, tmp_path):
    path = str(tmp_path / 'main')
    write_cluster(path, standby=True)
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=path)
    assert not result.get('failed'), result
    assert result['connected'] is False and 'hot_standby_settings' not in result


def test_hot_standby_settings_documented():
    import yaml
    ret = yaml.safe_load(m.RETURN)['hot_standby_settings']
    assert ret['returned'] == 'when connected' and ret['type'] == 'dict'
    assert list(ret['contains']) == list(m.HOT_STANDBY_SETTINGS)
    assert all(spec['type'] == 'int' and isinstance(spec['sample'], int) for spec in ret['contains'].values())


# ---------------------------------------------------------------------------
# read_files: the markers site.yml's truth read takes in the same module run
# ---------------------------------------------------------------------------

def test_read_files_beside_the_data_dir_with_its_version(server, capsys, tmp_path):
    path = str(tmp_path / 'lib' / '15' / 'main')
    write_cluster(path, standby=True)
    conf = tmp_path / 'etc' / '15' / 'main'
    conf.mkdir(parents=True)
    (conf / 'marker').write_text('{"reason": "fenced"}\n')
    server.connect_error = 'connection refused'
    result = run_module(capsys, data_dir=path,
                        read_files=[str(tmp_path / 'etc' / '{version}' / 'main' / 'marker'),
                                    str(tmp_path / 'etc' / '{version}' / 'main' / 'record')])
    assert not result.get('failed'), result
    assert result['role'] == 'standby' and result['connected'] is False
    assert result['files'] == [dict(path=str(conf / 'marker'), exists=True, content='{"reason": "fenced"}\n'),
                               dict(path=str(conf / 'record'), exists=False, content=None)]


def test_read_files_without_a_version_to_put_in(server, capsys, tmp_path):
    (tmp_path / 'plain').write_text('x')
    result = run_module(capsys, data_dir=str(tmp_path / 'none'),
                        read_files=['/etc/postgresql/{version}/prod/marker', str(tmp_path / 'plain')])
    assert not result.get('failed'), result
    assert result['files'] == [dict(path='/etc/postgresql/{version}/prod/marker', exists=False, content=None),
                               dict(path=str(tmp_path / 'plain'), exists=True, content='x')]
    assert run_module(capsys)['files'] == []


@pytest.mark.parametrize('make, error', [
    (lambda p: p.mkdir(), 'not a regular file'),
    (lambda p: p.symlink_to(p.parent / 'target'), 'Too many levels of symbolic links'),
    (lambda p: p.write_bytes(b'x' * ((1 << 20) + 1)), 'larger than 1 MiB'),
])
def test_read_files_refuses_what_is_not_a_small_regular_file(server, capsys, tmp_path, make, error):
    (tmp_path / 'target').write_text('secret of another user')
    make(tmp_path / 'marker')
    result = run_module(capsys, read_files=[str(tmp_path / 'marker')])
    assert result['failed'] and 'could not read %s (read_files): %s' % (tmp_path / 'marker', error) in result['msg']
    assert 'secret of another user' not in result['_raw']
