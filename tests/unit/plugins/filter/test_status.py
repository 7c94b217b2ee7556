# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import json

import pytest

from jinja2 import Undefined

from ansible.errors import AnsibleFilterError

from ansible_collections.hotstandby.postgresql.plugins.filter import status as s
from ansible_collections.hotstandby.postgresql.plugins.filter import topology as t

SYSID = '7712491459935377245'
MAX = 16777216


def topology(cascade=False, **kwargs):
    """pg0 (10.0.0.10) primary, pg1 (10.0.1.1) and pg2 (10.0.1.2) standbys; with cascade pg2 streams from pg1."""
    hostvars = {'pg0': {'ansible_facts': {'default_ipv4': {'address': '10.0.0.10'}}},
                'pg1': {'ansible_facts': {'default_ipv4': {'address': '10.0.1.1'}}},
                'pg2': {'ansible_facts': {'default_ipv4': {'address': '10.0.1.2'}}}}
    if cascade:
        hostvars['pg2']['postgres_standby_upstream'] = 'pg1'
    groups = {'postgres_master': ['pg0'], 'postgres_standby': ['pg1', 'pg2']}
    return t.topology(groups, hostvars, **kwargs)


def sender_row(name, state='streaming', lag=0, sync_state='async'):
    return dict(pid=100, application_name=name, client_addr='10.0.1.9', state=state, sync_state=sync_state,
                sync_priority=0, sent_lsn='0/5000000', write_lsn='0/5000000', flush_lsn='0/5000000',
                replay_lsn='0/5000000', sent_lag_bytes=0, write_lag_bytes=0, flush_lag_bytes=0,
                replay_lag_bytes=lag, write_lag=None, flush_lag=None, replay_lag=0.002 if lag else None,
                reply_time='2026-01-26T10:00:00+00:00', backend_start='2026-01-26T09:00:00+00:00')


def slot(name, wal_status='reserved', retained=4096, reason=None):
    return dict(slot_name=name, active=True, active_pid=100, restart_lsn='0/4FFF000', retained_bytes=retained,
                wal_status=wal_status, safe_wal_size=1 << 30, invalidation_reason=reason, inactive_since=None,
                temporary=False)


def primary_info(senders=(), slots=(), sysid=SYSID, timeline=1, progress=()):
    return dict(changed=False, role='primary', in_recovery=False, server_version_num=150018,
                server_version='15.18 (Debian 15.18-0+deb12u1)', system_identifier=sysid, timeline=timeline,
                timeline_source='wal_insert', current_wal_lsn='0/5000000', replication=list(senders),
                wal_receiver=None, slots=list(slots), basebackup_progress=list(progress), replay_paused=None,
                msg='primary')


def standby_info(sender_host='10.0.0.10', status='streaming', senders=(), slots=(), sysid=SYSID, paused=False):
    receiver = None if status is None else dict(pid=7, status=status, sender_host=sender_host, sender_port=5432,
                                                received_tli=1, slot_name=None)
    return dict(changed=False, role='standby', in_recovery=True, server_version_num=150018,
                server_version='15.18', system_identifier=sysid, timeline=1, timeline_source='wal_receiver',
                current_wal_lsn=None, replication=list(senders), wal_receiver=receiver, slots=list(slots),
                basebackup_progress=[], replay_paused=paused, replay_pause_state='paused' if paused else 'not paused',
                msg='standby')


def healthy(cascade=False):
    if cascade:
        return {'pg0': primary_info([sender_row('pg1')], [slot('pg1')]),
                'pg1': standby_info(senders=[sender_row('pg2')], slots=[slot('pg2')]),
                'pg2': standby_info(sender_host='10.0.1.1')}
    return {'pg0': primary_info([sender_row('pg1'), sender_row('pg2', lag=100)], [slot('pg1'), slot('pg2')]),
            'pg1': standby_info(), 'pg2': standby_info()}


def judge(infos, topo=None, **kwargs):
    result = s.replication_status(infos, topo or topology(), kwargs.pop('max_lag', MAX), **kwargs)
    json.dumps(result)  # what -e postgres_status_format=json prints
    return result


def problems_with(result, *fragments):
    found = [p for p in result['problems'] if all(f in p for f in fragments)]
    assert found, result['problems']
    return found


def row(result, host):
    return [r for r in result['rows'] if r['host'] == host][0]


# -- healthy -------------------------------------------------------------------

@pytest.mark.parametrize('cascade', [False, True])
def test_healthy(cascade):
    result = judge(healthy(cascade), topology(cascade))
    assert result['ok'] is True and result['problems'] == [] and result['split_brain'] is False
    assert [r['host'] for r in result['rows']] == ['pg0', 'pg1', 'pg2']
    assert all(r['ok'] for r in result['rows'])
    pg2 = row(result, 'pg2')
    assert pg2['role'] == pg2['intended_role'] == 'standby'
    assert pg2['upstream'] == ('pg1' if cascade else 'pg0') == pg2['intended_upstream']
    assert pg2['state'] == 'streaming' and pg2['sync_state'] == 'async'
    assert pg2['slot'] == 'pg2' and pg2['slot_wal_status'] == 'reserved' and pg2['slot_retained_bytes'] == 4096
    assert row(result, 'pg0')['role'] == 'primary' and row(result, 'pg0')['upstream'] is None


def test_conninfo():
    result = judge(healthy(), ports={'pg1': 5433})
    assert result['conninfo'] == ('host=10.0.0.10,10.0.1.1,10.0.1.2 port=5432,5433,5432 dbname=postgres '
                                  'target_session_attrs=read-write')
    assert 'password' not in result['conninfo']
    topo = topology(primary_address='db.example.com')
    topo['hosts']['pg2']['address'] = None  # unknown address: the inventory name
    assert s.read_write_conninfo(topo, {}, 6432) == ('host=db.example.com,10.0.1.1,pg2 port=6432,6432,6432 '
                                                     'dbname=postgres target_session_attrs=read-write')


# -- nodes without a result ----------------------------------------------------------------

def test_unreachable_failed_and_missing_hosts_are_never_fine():
    infos = healthy()
    infos['pg1'] = {'unreachable': True, 'changed': False, 'msg': 'Failed to connect to the host via ssh'}
    infos['pg2'] = {'failed': True, 'msg': 'could not connect to PostgreSQL on the local socket ...'}
    infos.pop('pg0')
    result = judge(infos)
    assert result['ok'] is False
    problems_with(result, 'pg1 is UNREACHABLE', 'via ssh')
    problems_with(result, 'pg_replication_info FAILED on pg2', 'could not connect')
    problems_with(result, 'pg0', 'no result', '--limit')
    assert [r['ok'] for r in result['rows']] == [False, False, False]
    assert [r['status'] for r in result['rows']] == ['no result', 'unreachable', 'failed']
    # a standby cannot be confirmed when its upstream gave nothing
    lines = s.replication_status_table(result)
    assert any(line.startswith('FAIL  pg1') and 'UNREACHABLE' in line for line in lines)


@pytest.mark.parametrize('value', [None, {}, Undefined(), {'skipped': True}, {'changed': False}])
def test_no_usable_result(value):
    infos = healthy()
    infos['pg2'] = value
    result = judge(infos)
    assert not row(result, 'pg2')['ok']
    problems_with(result, 'pg2')


def test_standby_without_result_still_shows_what_its_upstream_says():
    infos = healthy()
    infos['pg1'] = {'failed': True, 'msg': 'could not connect'}
    infos['pg0']['replication'] = [sender_row('pg2')]
    infos['pg0']['slots'][0] = slot('pg1', retained=1 << 30)
    pg1 = row(judge(infos), 'pg1')
    assert pg1['slot_wal_status'] == 'reserved' and pg1['slot_retained_bytes'] == 1 << 30
    assert pg1['state'] is None and pg1['upstream'] is None and not pg1['ok']


def test_standby_cannot_be_confirmed_without_its_upstream():
    infos = healthy()
    infos['pg0'] = {'unreachable': True, 'msg': 'timeout'}
    result = judge(infos)
    problems_with(result, 'pg1: its streaming cannot be confirmed, its upstream pg0 gave no result (unreachable)')
    assert not row(result, 'pg1')['ok']


# -- streaming ---------------------------------------------------------------------------------

def test_no_wal_receiver():
    infos = healthy()
    infos['pg1'] = standby_info(status=None)
    infos['pg0']['replication'] = [sender_row('pg2')]
    result = judge(infos)
    problems_with(result, 'pg1 is NOT STREAMING: it has no WAL receiver')
    problems_with(result, 'pg1 is NOT STREAMING: pg0 has no replication connection with application_name pg1')
    assert row(result, 'pg1')['state'] == 'not connected'


def test_receiver_not_streaming_and_sender_in_catchup():
    infos = healthy()
    infos['pg1'] = standby_info(status='waiting')
    infos['pg0']['replication'][0] = sender_row('pg1', state='catchup')
    result = judge(infos)
    problems_with(result, "pg1 is NOT STREAMING: its WAL receiver is 'waiting'")
    problems_with(result, "pg1 is NOT STREAMING: pg0 reports its connection as 'catchup'")


def test_lag():
    infos = healthy()
    infos['pg0']['replication'][1] = sender_row('pg2', lag=MAX + 1)
    result = judge(infos)
    problems_with(result, 'pg2 is LAGGING', '16777217 bytes (16.0 MiB) behind pg0', 'postgres_standby_max_lag_bytes')
    assert row(result, 'pg1')['ok'] and not row(result, 'pg2')['ok']
    infos['pg0']['replication'][1] = sender_row('pg2', lag=MAX)
    assert judge(infos)['ok'] is True
    assert judge(infos, max_lag='1000')['ok'] is False  # a string from the inventory
    # each standby's own bound; one the mapping does not name gets the default
    assert judge(infos, max_lag={'pg1': 0, 'pg2': '16777216'})['ok'] is True
    assert judge(infos, max_lag={'pg1': 0})['ok'] is True
    problems_with(judge(infos, max_lag={'pg2': 99}), 'pg2 is LAGGING', '(99)')
    with pytest.raises(AnsibleFilterError):
        judge(infos, max_lag={'pg2': 'lots'})


def test_unknown_replay_position():
    infos = healthy()
    infos['pg0']['replication'][1]['replay_lag_bytes'] = None
    problems_with(judge(infos), 'pg2: pg0 does not report its replay position')


# -- topology ------------------------------------------------------------------------------------------

def test_standby_streams_from_another_upstream():
    infos = healthy(cascade=True)  # pg2 cascades from pg1 ...
    result = judge(infos, topology(cascade=False))  # ... but the inventory says the primary
    problems_with(result, 'TOPOLOGY: pg2 streams from pg1, but the inventory says pg0 (the primary)')
    assert row(result, 'pg2')['upstream'] == 'pg1' and row(result, 'pg2')['intended_upstream'] == 'pg0'
    assert row(result, 'pg2')['state'] == 'streaming'
    result = judge(healthy(), topology(cascade=True))
    problems_with(result, 'TOPOLOGY: pg2 streams from pg0, but the inventory says pg1 (postgres_standby_upstream)')


def test_upstream_from_sender_host_when_no_row_names_it():
    infos = healthy()
    infos['pg0']['replication'] = [sender_row('pg1')]
    infos['pg2'] = standby_info(sender_host='10.0.1.1')  # connected to pg1, which shows no row for it
    result = judge(infos)
    assert row(result, 'pg2')['upstream'] == 'pg1'
    problems_with(result, 'TOPOLOGY: pg2 streams from pg1')
    problems_with(result, 'pg2 is NOT STREAMING: pg1 has no replication connection with application_name pg2')
    infos['pg2'] = standby_info(sender_host='192.0.2.7')
    result = judge(infos)
    assert row(result, 'pg2')['upstream'] == '192.0.2.7:5432'
    problems_with(result, 'TOPOLOGY: pg2 streams from 192.0.2.7:5432, but the inventory says pg0')


def test_primary_in_recovery_and_standby_promoted():
    infos = healthy()
    infos['pg0'] = standby_info(sender_host='10.0.1.1')
    infos['pg1'] = primary_info([sender_row('pg0')], timeline=2)
    result = judge(infos)
    problems_with(result, 'TOPOLOGY: pg0 is the primary in the inventory (postgres_master) but is IN RECOVERY',
                  'from 10.0.1.1')
    problems_with(result, 'TOPOLOGY: pg1 is a standby in the inventory (postgres_standby) but is a PRIMARY',
                  'timeline 2')
    assert row(result, 'pg0')['upstream'] == 'pg1' and row(result, 'pg0')['state'] == 'streaming'
    assert result['split_brain'] is False


def test_split_brain():
    infos = healthy()
    infos['pg1'] = primary_info(timeline=2)
    result = judge(infos)
    assert result['split_brain'] is True and result['ok'] is False
    text = problems_with(result, 'SPLIT BRAIN: pg0 and pg1 are ALL PRIMARIES of the same cluster', SYSID,
                         'pg0 on timeline 1, pg1 on timeline 2')[0]
    assert text in row(result, 'pg0')['problems'] and text in row(result, 'pg1')['problems']
    lines = s.replication_status_table(result)
    assert '!!! SPLIT BRAIN: more than one primary of the same cluster !!!' in lines


def test_primaries_of_different_clusters_are_no_split_brain_but_foreign():
    infos = healthy()
    infos['pg2'] = primary_info(sysid='1234')
    result = judge(infos)
    assert result['split_brain'] is False
    problems_with(result, 'pg2 is NOT A COPY of pg0', '1234', SYSID)
    problems_with(result, 'TOPOLOGY: pg2 is a standby in the inventory')


def test_foreign_standby():
    infos = healthy()
    infos['pg2']['system_identifier'] = '42'
    problems_with(judge(infos), 'pg2 is NOT A COPY of pg0: its system identifier is 42')


def test_inventory_errors_are_problems():
    topo = topology(synchronous_mode='sync', synchronous_count=5)
    result = judge(healthy(), topo)
    problems_with(result, 'INVENTORY: postgres_synchronous_mode is sync')


# -- slots ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('wal_status, word', [('lost', 'LOST'), ('unreserved', 'UNRESERVED')])
def test_bad_slots(wal_status, word):
    infos = healthy()
    infos['pg0']['slots'][1] = slot('pg2', wal_status=wal_status, retained=None,
                                    reason='wal_removed' if wal_status == 'lost' else None)
    result = judge(infos)
    problems_with(result, 'SLOT pg2 on pg0 (used by pg2) is %s' % word)
    assert not row(result, 'pg2')['ok'] and row(result, 'pg2')['slot_wal_status'] == wal_status
    if wal_status == 'lost':
        problems_with(result, '(wal_removed)', 'cloned again')


def test_bad_slot_nobody_uses():
    infos = healthy()
    infos['pg0']['slots'].append(slot('old_standby', wal_status='lost'))
    result = judge(infos)
    problems_with(result, 'SLOT old_standby on pg0 is LOST and no standby of the inventory uses it',
                  "pg_drop_replication_slot('old_standby')")
    assert not row(result, 'pg0')['ok']


def test_missing_slot():
    infos = healthy()
    del infos['pg0']['slots'][0]
    result = judge(infos)
    problems_with(result, "pg1: its replication slot 'pg1' does not exist on pg0")
    assert row(result, 'pg1')['slot_wal_status'] == 'missing'


# -- warnings -------------------------------------------------------------------------------------------

def test_clone_in_progress():
    infos = healthy()
    infos['pg2'] = {'failed': True, 'msg': 'could not connect to PostgreSQL ...'}
    infos['pg0']['replication'][1] = sender_row('pg2', state='backup')
    infos['pg0']['replication'].append(sender_row('pg2'))  # pg_basebackup's WAL stream
    infos['pg0']['basebackup_progress'] = [dict(pid=5, phase='streaming database files', backup_total=400,
                                                backup_streamed=100, percent=25.0, application_name='pg2')]
    result = judge(infos)
    assert row(result, 'pg2')['clone'] == '25.0% from pg0'
    assert 'pg2 is being cloned from pg0: 25.0% (streaming database files)' in result['warnings']
    assert not row(result, 'pg2')['ok']


def test_clone_while_the_standby_answers():
    infos = healthy()
    infos['pg0']['basebackup_progress'] = [dict(pid=5, phase='waiting for checkpoint to finish', backup_total=None,
                                                backup_streamed=0, percent=None, application_name='pg2')]
    result = judge(infos)
    problems_with(result, 'pg2 is NOT STREAMING: it is being cloned from pg0')
    assert row(result, 'pg2')['clone'] == '?% from pg0'


def test_paused_and_sync_state_warnings():
    topo = topology(synchronous_mode='sync', synchronous_count=1)
    infos = healthy()
    infos['pg0']['replication'] = [sender_row('pg1', sync_state='sync'), sender_row('pg2', sync_state='async')]
    infos['pg1'] = standby_info(paused=True)
    result = judge(infos, topo)
    assert result['ok'] is True
    assert any("pg2: pg0 reports sync_state 'async', the inventory expects sync or potential" in w
               for w in result['warnings'])
    assert any('pg1: replay is paused' in w for w in result['warnings'])


# -- the table -------------------------------------------------------------------------------------------

def test_table_is_fixed_width():
    infos = healthy()
    infos['pg0']['replication'][1] = sender_row('pg2', lag=3 * 1024 * 1024)
    lines = s.replication_status_table(judge(infos))
    header, rule = lines[0], lines[1]
    assert header.split() == ['host', 'role', 'inventory', 'upstream', 'state', 'sync', 'replay', 'lag', 'lag', 's',
                              'slot', 'slot', 'keeps', 'wal_status', 'tl', 'clone']
    body = lines[2:5]
    assert [line.split()[1] for line in body] == ['pg0', 'pg1', 'pg2']
    # every column starts at the same offset on every line
    starts = [i for i, c in enumerate(rule) if c == '-' and (i == 0 or rule[i - 1] == ' ')]
    for line in [header] + body:
        for start in starts[1:]:
            assert line[start - 2:start] == '  ' or line[start - 1] == ' '
    assert '3.0 MiB' in body[2] and 'streaming' in body[2]
    assert 'No problems' in '\n'.join(lines)
    assert lines[-1] == '  host=10.0.0.10,10.0.1.1,10.0.1.2 port=5432,5432,5432 dbname=postgres ' \
                        'target_session_attrs=read-write'


def test_table_lists_problems():
    infos = healthy()
    infos['pg1'] = {'unreachable': True, 'msg': 'ssh timeout'}
    lines = s.replication_status_table(judge(infos))
    assert 'PROBLEMS (1):' in lines  # what pg0 says of pg1 is still shown and judged
    assert any(line.startswith('  - pg1 is UNREACHABLE') for line in lines)


def test_human_bytes():
    assert s.human_bytes(None) == '-'
    assert s.human_bytes(0) == '0 B'
    assert s.human_bytes(1023) == '1023 B'
    assert s.human_bytes(1536) == '1.5 KiB'
    assert s.human_bytes(16777216) == '16.0 MiB'
    assert s.human_bytes(-2048) == '-2.0 KiB'
    assert s.human_bytes(5 * 1024 ** 5) == '5120.0 TiB'


def test_bad_input():
    with pytest.raises(AnsibleFilterError):
        s.replication_status([], topology())
    with pytest.raises(AnsibleFilterError):
        s.replication_status({}, {'primary': 'pg0'})
    with pytest.raises(AnsibleFilterError):
        s.replication_status({}, topology(), 'lots')
    with pytest.raises(AnsibleFilterError):
        s.replication_status({}, topology(), True)
    with pytest.raises(AnsibleFilterError):
        s.replication_status_table({'problems': []})


def test_input_is_not_changed():
    infos = healthy()
    before = copy.deepcopy(infos)
    judge(infos)
    assert infos == before


def test_filters_registered():
    assert set(s.FilterModule().filters()) == {'replication_status', 'replication_status_table'}


def test_a_stopped_server_is_named_as_such():
    infos = healthy()
    infos['pg1'] = {'connected': False, 'role': 'standby', 'msg': 'no server answered (could not connect); the data '
                    'directory /var/lib/postgresql/15/main is a stopped standby of system %s' % SYSID}
    infos['pg0'] = {'connected': False, 'role': 'primary', 'msg': 'no server answered'}
    result = judge(infos)
    assert result['ok'] is False
    problems_with(result, 'pg1 is NOT STREAMING: no PostgreSQL server runs there', 'stopped standby')
    problems_with(result, 'pg0 is DOWN: no PostgreSQL server runs there')
    assert row(result, 'pg1')['status'] == 'stopped' and row(result, 'pg1')['ok'] is False
