# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from jinja2 import Undefined

from ansible.errors import AnsibleFilterError

from ansible_collections.hotstandby.postgresql.plugins.filter import switchover as sw
from ansible_collections.hotstandby.postgresql.plugins.filter import topology as t

SYS, OTHER = '7712491459935377245', '7000000000000000001'
ADDRESSES = {'db1': '10.0.0.1', 'db2': '10.0.0.2', 'db3': '10.0.0.3', 'db4': '10.0.0.4'}


def topo(under='db3', **kwargs):
    """db1 primary, db2 and db3 standbys of it, db4 cascading from `under` (None: no db4)."""
    standbys = ['db2', 'db3'] + (['db4'] if under else [])
    hostvars = dict((h, {'ansible_facts': {'default_ipv4': {'address': ADDRESSES[h]}}}) for h in ['db1'] + standbys)
    if under:
        hostvars['db4']['postgres_standby_upstream'] = under
    return t.topology({'postgres_master': ['db1'], 'postgres_standby': standbys}, hostvars, **kwargs)


def sender(name, state='streaming', lag=0):
    return dict(pid=100, application_name=name, client_addr=ADDRESSES.get(name), state=state, sync_state='async',
                sync_priority=0, sent_lsn='0/5000000', write_lsn='0/5000000', flush_lsn='0/5000000',
                replay_lsn='0/5000000', sent_lag_bytes=0, write_lag_bytes=0, flush_lag_bytes=0,
                replay_lag_bytes=lag, write_lag=None, flush_lag=None, replay_lag=None,
                reply_time='2026-01-26T10:00:00+00:00', backend_start='2026-01-26T09:00:00+00:00')


def slot(name):
    return dict(slot_name=name, active=True, active_pid=100, restart_lsn='0/4FFF000', retained_bytes=4096,
                wal_status='reserved', safe_wal_size=None, invalidation_reason=None, inactive_since=None,
                temporary=False)


def node(role, senders=(), slots=(), sysid=SYS, timeline=1, sender_host=None, status='streaming', paused=False,
         wal_log_hints=True, data_checksums=False, max_wal_senders=10, max_replication_slots=10):
    """A pg_replication_info result of a running node."""
    standby = role == 'standby'
    receiver = dict(pid=7, status=status, sender_host=sender_host, sender_port=5432, received_tli=timeline,
                    slot_name=None) if standby and status else None
    return dict(changed=False, connected=True, connection_error=None, role=role, in_recovery=standby,
                server_version_num=150018, server_version='15.18', system_identifier=sysid, timeline=timeline,
                timeline_source='wal_receiver' if standby else 'wal_insert',
                current_wal_lsn=None if standby else '0/5000000', replication=list(senders), wal_receiver=receiver,
                receive_lsn='0/5000000' if standby else None, replay_lsn='0/5000000' if standby else None,
                replay_lag_bytes=0 if standby else None, replay_paused=paused if standby else None,
                replay_pause_state=('paused' if paused else 'not paused') if standby else None,
                slots=list(slots), basebackup_progress=[], synchronous_standby_names='', synchronous_commit='on',
                wal_log_hints=wal_log_hints, data_checksums=data_checksums, max_wal_senders=max_wal_senders,
                max_replication_slots=max_replication_slots,
                data_directory=dict(path='/var/lib/postgresql/15/main', exists=True, system_identifier=sysid,
                                    pg_version='15', standby_signal=standby, running=True, port=5432,
                                    user_data=None), msg=role)


def healthy(lag=0):
    """db1 serves db2 and db3, db3 serves db4."""
    return {'db1': node('primary', [sender('db2', lag=lag), sender('db3')], [slot('db2'), slot('db3')]),
            'db2': node('standby', sender_host='10.0.0.1'),
            'db3': node('standby', [sender('db4')], [slot('db4')], sender_host='10.0.0.1'),
            'db4': node('standby', sender_host='10.0.0.3')}


def plan(infos=None, topology=None, target='db2', **kwargs):
    result = sw.switchover_plan(healthy() if infos is None else infos, topology or topo(), target, **kwargs)
    json.dumps(result)
    return result


def only(result, *fragments):
    assert len(result['refusals']) == 1, result['refusals']
    for fragment in fragments:
        assert fragment in result['refusals'][0], result['refusals'][0]
    return result['refusals'][0]


# -- go ------------------------------------------------------------------------------------------------------------

def test_happy_path():
    result = plan(max_lag_bytes=16777216, rewind_user='rewinder')
    assert result['refusals'] == [] and result['already_done'] is False
    assert result['new_primary'] == 'db2' and result['old_primary'] == 'db1'
    assert result['followers'] == [{'host': 'db3', 'slot': 'db3', 'application_name': 'db3', 'address': '10.0.0.3'}]
    assert result['untouched'] == ['db4']
    assert result['new_downstream'] == [
        {'host': 'db1', 'slot': 'db1', 'application_name': 'db1', 'address': '10.0.0.1'},
        {'host': 'db3', 'slot': 'db3', 'application_name': 'db3', 'address': '10.0.0.3'}]
    assert result['inventory_change'] == [
        'Move db2 from postgres_standby to postgres_master.',
        'Move db1 from postgres_master to postgres_standby.',
        'If postgres_primary_address is set (to 10.0.0.1), set it to the address of db2 (10.0.0.2).']
    assert result['conninfo'] == ('host=10.0.0.2,10.0.0.1,10.0.0.3,10.0.0.4 port=5432,5432,5432,5432 '
                                  'target_session_attrs=read-write')
    assert result['rewind_source'] == 'host=10.0.0.2 port=5432 user=rewinder dbname=postgres'
    assert result['message'] == 'db2 takes over from db1; db1, db3 then stream from it.'


def test_the_old_primarys_slot_is_named_as_topology_names_a_standbys():
    infos = healthy()
    infos['DB-1.example'] = infos.pop('db1')
    hostvars = {'DB-1.example': {}, 'db2': {}, 'db3': {}}
    topology = t.topology({'postgres_master': ['DB-1.example'], 'postgres_standby': ['db2', 'db3']}, hostvars)
    for name in ('db2', 'db3'):
        infos[name]['wal_receiver']['sender_host'] = 'DB-1.example'
    infos['DB-1.example']['replication'] = [sender('db2'), sender('db3')]
    result = plan(infos, topology)
    assert result['refusals'] == []
    assert result['new_downstream'][0] == {'host': 'DB-1.example', 'slot': t.default_slot_name('DB-1.example'),
                                           'application_name': 'DB-1.example', 'address': None}
    assert result['new_downstream'][0]['slot'] == 'db_1_example'
    assert result['inventory_change'][-1] == 'If postgres_primary_address is set, set it to the address of db2.'


def test_the_targets_own_downstreams_stay_on_it_and_lose_their_upstream_setting():
    infos = healthy()
    infos['db3'] = node('standby', sender_host='10.0.0.1')
    infos['db2'] = node('standby', [sender('db4')], [slot('db4')], sender_host='10.0.0.1')
    infos['db4']['wal_receiver']['sender_host'] = '10.0.0.2'
    result = plan(infos, topo(under='db2'))
    assert result['refusals'] == []
    assert [h['host'] for h in result['followers']] == ['db3']
    assert result['untouched'] == []
    assert [(h['host'], h['slot']) for h in result['new_downstream']] == [('db1', 'db1'), ('db3', 'db3'),
                                                                          ('db4', 'db4')]
    assert 'Remove postgres_standby_upstream (db2) from db4: it streams from the primary db2 now.' in \
        result['inventory_change']


def test_conninfo_ports():
    result = plan(ports={'db2': 5433, 'db4': '6432'})
    assert result['conninfo'] == ('host=10.0.0.2,10.0.0.1,10.0.0.3,10.0.0.4 port=5433,5432,5432,6432 '
                                  'target_session_attrs=read-write')
    assert result['rewind_source'] == 'host=10.0.0.2 port=5433 dbname=postgres'
    assert 'password' not in result['conninfo']


def test_checksums_instead_of_wal_log_hints_are_enough():
    infos = healthy()
    infos['db1']['wal_log_hints'], infos['db1']['data_checksums'] = False, True
    assert plan(infos)['refusals'] == []


# -- already done --------------------------------------------------------------------------------------------------

def switched():
    """After a switchover to db2 with the inventory unchanged."""
    return {'db1': node('standby', sender_host='10.0.0.2', timeline=2),
            'db2': node('primary', [sender('db1'), sender('db3')], [slot('db1'), slot('db3')], timeline=2),
            'db3': node('standby', [sender('db4')], [slot('db4')], sender_host='10.0.0.2', timeline=2),
            'db4': node('standby', sender_host='10.0.0.3', timeline=2)}


def test_already_done():
    result = plan(switched())
    assert result['already_done'] is True and result['refusals'] == []
    assert 'db2 already is the primary (timeline 2) and db1 streams from it' in result['message']
    assert 'Move db2 from postgres_standby to postgres_master.' in result['message']
    assert result['inventory_change'][:2] == ['Move db2 from postgres_standby to postgres_master.',
                                              'Move db1 from postgres_master to postgres_standby.']


def test_already_done_by_the_old_primarys_wal_receiver_alone():
    infos = switched()
    infos['db2']['replication'] = []
    assert plan(infos)['already_done'] is True


def test_already_done_and_the_inventory_changed():
    infos = switched()
    topology = t.topology({'postgres_master': ['db2'], 'postgres_standby': ['db1', 'db3']}, {})
    result = plan(dict((h, infos[h]) for h in ('db1', 'db2', 'db3')), topology)
    assert result['already_done'] is True and result['refusals'] == [] and result['inventory_change'] == []


def test_a_promoted_target_the_old_primary_does_not_follow_is_refused():
    infos = healthy()
    infos['db2'] = node('primary', timeline=2)
    result = plan(infos)
    assert result['already_done'] is False
    only(result, 'db2 is not a running standby', 'promoted by hand?', 'pick another standby (db3)')


# -- refusals ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('target', [None, '', '  ', Undefined()])
def test_no_target(target):
    result = plan(target=target)
    only(result, 'pass -e postgres_switchover_to=<one of the standbys streaming from the primary db1: db2, db3>')
    assert result['new_primary'] is None and result['followers'] == [] and result['inventory_change'] == []
    assert result['message'] == 'No switchover: 1 reason(s) to refuse.'


def test_target_not_a_standby():
    only(plan(target='db9'), "postgres_switchover_to is 'db9'", 'db2, db3')
    infos = healthy()
    infos['db1'] = node('standby', sender_host='10.0.0.3')
    refusals = plan(infos, target='db1')['refusals']
    assert refusals[0].startswith('db1 is the primary of the inventory already') and 'db2, db3' in refusals[0]


def test_the_running_primary_as_target_is_a_no_op():
    result = plan(target='db1')
    assert result['already_done'] is True and result['refusals'] == [] and result['inventory_change'] == []
    assert result['message'] == 'db1 already is the primary and the inventory says so: there is nothing to switch over.'


def test_cascading_target():
    only(plan(target='db4'), 'db4 is a cascading standby: it streams from db3, not from the primary db1',
         'Pass one of db2, db3, or first make db4 stream from db1 (remove its postgres_standby_upstream')


@pytest.mark.parametrize('result, fragment', [
    ({'failed': True, 'msg': 'could not connect:\n refused'}, 'The state of db3 could not be read (could not connect: '
                                                              'refused): a switchover needs every node'),
    ({'unreachable': True, 'msg': 'ssh: timeout'}, 'The state of db3 could not be read (ssh: timeout)'),
    ({'skipped': True}, 'db3 gave no result'),
    (None, 'db3 gave no result'),
])
def test_every_node_must_be_read(result, fragment):
    infos = healthy()
    infos['db3'] = result
    if result is None:
        del infos['db3']
    only(plan(infos), fragment)


def test_primary_down_points_to_failover():
    infos = healthy()
    infos['db1'] = dict(node('primary'), connected=False, role='primary', replication=[])
    only(plan(infos), 'db1, the primary of the inventory, is down', 'failover.yml')


def test_primary_in_recovery_means_a_stale_inventory():
    infos = healthy()
    infos['db1'] = node('standby', sender_host='10.0.0.3')
    only(plan(infos), 'db1, the primary of the inventory, is not a running primary but in recovery',
         'status.yml', 'site.yml')


@pytest.mark.parametrize('change, fragment', [
    (dict(connected=False), 'db2 is not a running standby (no server runs there)'),
    (dict(system_identifier=OTHER), 'db2 is not a copy of db1 (system identifier %s' % OTHER),
    (dict(timeline=2), 'db2 is on timeline 2, the primary db1 on 1'),
])
def test_target_not_a_standby_of_the_primary(change, fragment):
    infos = healthy()
    infos['db2'].update(change)
    only(plan(infos), fragment)


@pytest.mark.parametrize('status', [None, 'starting'])
def test_target_receiver_not_streaming(status):
    infos = healthy()
    infos['db2'] = node('standby', sender_host='10.0.0.1', status=status)
    only(plan(infos), 'db2 does not stream from db1 (its WAL receiver is %s)'
         % ("'%s'" % status if status else 'absent'))


def test_target_without_a_streaming_row_on_the_primary():
    infos = healthy()
    infos['db1']['replication'] = [sender('db2', state='catchup'), sender('db3')]
    only(plan(infos), "db2 does not stream from db1 (its WAL receiver is 'streaming'; the primary has no streaming "
                      'connection with application_name db2)')


def test_replay_paused():
    infos = healthy()
    infos['db2'] = node('standby', sender_host='10.0.0.1', paused=True)
    only(plan(infos), 'Replay is paused on db2 (paused)', 'pg_wal_replay_resume()')


def test_lag():
    assert plan(healthy(lag=1000), max_lag_bytes=1000)['refusals'] == []
    assert plan(healthy(lag=10 ** 9))['refusals'] == []  # no bound: no check
    only(plan(healthy(lag=1001), max_lag_bytes='1000'), 'db2 is 1001 bytes behind the primary db1, more than '
                                                        'max_lag_bytes (1000)')
    only(plan(healthy(lag=None), max_lag_bytes=1000), 'db2 is an unknown number of bytes behind')


def test_primary_without_wal_log_hints_or_checksums():
    infos = healthy()
    infos['db1']['wal_log_hints'], infos['db1']['data_checksums'] = False, False
    only(plan(infos), 'db1 has neither wal_log_hints on nor data checksums', 'site.yml now turns it on',
         'restart db1 once')
    # the target's own setting does not matter: it is the rewind's source
    infos = healthy()
    infos['db2']['wal_log_hints'], infos['db2']['data_checksums'] = False, False
    assert plan(infos)['refusals'] == []


def test_target_without_enough_wal_senders_or_slots():
    infos = healthy()
    infos['db2'].update(max_wal_senders=1, max_replication_slots=1)
    refusals = plan(infos)['refusals']
    assert refusals == [
        'db2 has max_wal_senders = 1, but it needs 2 after the switchover for db1, db3: raise postgres_max_wal_senders '
        'and run site.yml (it restarts db2), then switch over.',
        'db2 has max_replication_slots = 1, but it needs 2 after the switchover for db1, db3: raise '
        'postgres_max_replication_slots and run site.yml (it restarts db2), then switch over.']
    infos['db2'].update(max_wal_senders=2, max_replication_slots=2)
    assert plan(infos)['refusals'] == []
    # a WAL sender and a slot of something outside the inventory count too
    infos['db2'].update(replication=[sender('archiver')], slots=[slot('archiver')])
    assert [r.split(',')[0] for r in plan(infos)['refusals']] == ['db2 has max_wal_senders = 2',
                                                                  'db2 has max_replication_slots = 2']
    assert 'for db1, db3 and 1 other WAL sender(s) it serves now' in plan(infos)['refusals'][0]
    assert 'for db1, db3 and 1 other slot(s) it has now' in plan(infos)['refusals'][1]
    # slots the target already has for its future downstreams are not counted twice
    infos['db2'].update(replication=[], slots=[slot('db1'), slot('db3')])
    assert plan(infos)['refusals'] == []


def test_inventory_errors_come_first_in_a_fixed_order():
    infos = healthy()
    infos['db4'] = {'failed': True, 'msg': 'boom'}
    infos['db1']['wal_log_hints'] = False
    topology = topo()
    topology['errors'] = ['something is wrong']
    refusals = plan(infos, topology, target='db4')['refusals']
    assert refusals[0] == 'INVENTORY: something is wrong'
    assert refusals[1].startswith('db4 is a cascading standby')
    assert refusals[2].startswith('The state of db4 could not be read (boom)')
    assert refusals[3].startswith('db1 has neither wal_log_hints')
    assert len(refusals) == 4


# -- malformed input -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('args, kwargs', [
    (([], topo(), 'db2'), {}),
    (({}, {}, 'db2'), {}),
    (({}, {'hosts': []}, 'db2'), {}),
    (({}, topo(), 2), {}),
    (({}, topo(), 'db2'), {'max_lag_bytes': 'much'}),
    (({}, topo(), 'db2'), {'max_lag_bytes': True}),
    (({}, topo(), 'db2'), {'ports': [5432]}),
    (({}, topo(), 'db2'), {'ports': {'db2': 'x'}}),
    (({}, topo(), 'db2'), {'rewind_user': 5}),
])
def test_malformed_input(args, kwargs):
    with pytest.raises(AnsibleFilterError):
        sw.switchover_plan(*args, **kwargs)


def test_filter_is_registered():
    assert sw.FilterModule().filters() == {'switchover_plan': sw.switchover_plan}


# -- what the target gets before the promotion ------------------------------------------------------------------

@pytest.mark.parametrize('mode, count, names', [
    ('async', 1, ''),
    ('sync', 1, 'FIRST 1 ("db1", "db3")'),
    ('quorum', 2, 'ANY 2 ("db1", "db3")'),
])
def test_synchronous_names_of_the_new_primary_are_its_own_standbys(mode, count, names):
    result = plan(synchronous_mode=mode, synchronous_count=count)
    assert result['refusals'] == []
    assert result['synchronous_standby_names'] == names


def test_a_synchronous_count_above_the_new_standbys_is_refused():
    only(plan(synchronous_mode='sync', synchronous_count=3), 'postgres_synchronous_count 3',
         'after the switchover 2 standby(s) would stream from db2 (db1, db3)')


@pytest.mark.parametrize('tls, contype', [(False, 'host'), (True, 'hostssl')])
def test_target_hba_rules_cover_the_new_standbys_and_the_old_primarys_rewind(tls, contype):
    rules = plan(tls=tls)['target_hba_rules']
    assert rules == [
        {'contype': contype, 'databases': 'replication', 'address': '10.0.0.1/32',
         'comment': 'hotstandby.postgresql: replication for db1'},
        {'contype': contype, 'databases': 'postgres', 'address': '10.0.0.1/32',
         'comment': 'hotstandby.postgresql: pg_rewind for db1'},
        {'contype': contype, 'databases': 'replication', 'address': '10.0.0.3/32',
         'comment': 'hotstandby.postgresql: replication for db3'}]


def test_missing_rewind_grants_on_the_target_are_refused():
    infos = healthy()
    infos['db2'].update(rewind_user='replicator', rewind_user_exists=True,
                        rewind_grants_missing=['pg_catalog.pg_read_binary_file(text)'])
    only(plan(infos), 'On db2 the role replicator may not run pg_catalog.pg_read_binary_file(text)',
         'which pg_rewind needs to rejoin db1')


def test_the_old_primarys_lines_use_its_own_address_when_postgres_primary_address_is_set():
    result = plan(topology=topo(primary_address='db-primary.example.com'), facts={'db1': {'default_ipv4': {'address': '10.0.0.1'}}, 'db2': {}})
    assert result['refusals'] == []
    assert [r['address'] for r in result['target_hba_rules'] if r['comment'].endswith('db1')] == ['10.0.0.1/32'] * 2


# -- the settings a hot standby needs at least as high as its primary ---------------------------------------------

DEFAULTS = dict(max_connections=100, max_worker_processes=8, max_wal_senders=10, max_prepared_transactions=0,
                max_locks_per_transaction=64)


def with_settings(infos=None, **per_host):
    """infos (healthy()) where every node has PostgreSQL's defaults as hot_standby_settings, per_host changing some."""
    infos = healthy() if infos is None else infos
    for host, info in infos.items():
        info['hot_standby_settings'] = dict(DEFAULTS, **per_host.get(host, {}))
    return infos


def test_downstream_settings_lower_than_the_targets_are_refused():
    infos = with_settings(db2=dict(max_connections=200, max_locks_per_transaction=128),
                          db3=dict(max_connections=200, max_locks_per_transaction=100))
    refusals = plan(infos)['refusals']
    assert refusals == [
        'db1 has max_connections = 100, lower than 200 on db2, which it will stream from after the switchover: as a '
        'hot standby with a lower max_connections it would refuse to start or pause its recovery. Raise '
        'max_connections on db1 to at least 200 (e.g. in postgres_settings) and run site.yml, which restarts it, then '
        'switch over.',
        'db1 has max_locks_per_transaction = 64, lower than 128 on db2, which it will stream from after the '
        'switchover: as a hot standby with a lower max_locks_per_transaction it would refuse to start or pause its '
        'recovery. Raise max_locks_per_transaction on db1 to at least 128 (e.g. in postgres_settings) and run '
        'site.yml, which restarts it, then switch over.',
        'db3 has max_locks_per_transaction = 100, lower than 128 on db2, which it will stream from after the '
        'switchover: as a hot standby with a lower max_locks_per_transaction it would refuse to start or pause its '
        'recovery. Raise max_locks_per_transaction on db3 to at least 128 (e.g. in postgres_settings) and run '
        'site.yml, which restarts it, then switch over.']
    assert plan(infos)['message'] == 'No switchover: 3 reason(s) to refuse.'


@pytest.mark.parametrize('setting', sorted(DEFAULTS))
def test_each_hot_standby_setting_is_compared(setting):
    infos = with_settings(db2={setting: DEFAULTS[setting] + 1})
    refusals = plan(infos)['refusals']
    assert [r.split(',')[0] for r in refusals] == ['db1 has %s = %d' % (setting, DEFAULTS[setting]),
                                                   'db3 has %s = %d' % (setting, DEFAULTS[setting])]
    assert ('(e.g. in postgres_max_wal_senders)' if setting == 'max_wal_senders' else
            '(e.g. in postgres_settings)') in refusals[0]


def test_equal_or_higher_hot_standby_settings_are_accepted():
    assert plan(with_settings())['refusals'] == []
    higher = dict((name, value * 2 + 1) for name, value in DEFAULTS.items())
    assert plan(with_settings(db1=higher, db3=higher))['refusals'] == []
    # a target lower than the nodes that will stream from it is fine, and an untouched node is not compared
    lower = dict((name, value // 2) for name, value in DEFAULTS.items())
    assert plan(with_settings(db2=lower))['refusals'] == []
    assert plan(with_settings(db2=higher, db1=higher, db3=higher, db4=lower))['refusals'] == []


def test_the_targets_own_downstreams_are_compared_untouched_standbys_are_not():
    infos = healthy()
    infos['db3'] = node('standby', sender_host='10.0.0.1')
    infos['db2'] = node('standby', [sender('db4')], [slot('db4')], sender_host='10.0.0.1')
    infos['db4']['wal_receiver']['sender_host'] = '10.0.0.2'
    with_settings(infos, db2=dict(max_worker_processes=16), db1=dict(max_worker_processes=16),
                  db3=dict(max_worker_processes=16))
    only(plan(infos, topo(under='db2')), 'db4 has max_worker_processes = 8, lower than 16 on db2')
    # db4 under db3 keeps its upstream: not compared with db2
    assert plan(with_settings(db2=dict(max_worker_processes=16), db1=dict(max_worker_processes=16),
                              db3=dict(max_worker_processes=16)))['refusals'] == []


@pytest.mark.parametrize('unknown', ['absent', 'none', 'partial', 'garbage'])
def test_unknown_hot_standby_settings_are_no_reason_to_refuse(unknown):
    def forget(info):
        if unknown == 'absent':  # a result of an older pg_replication_info
            info.pop('hot_standby_settings')
        elif unknown == 'none':
            info['hot_standby_settings'] = None
        elif unknown == 'partial':
            info['hot_standby_settings'] = dict((name, None) for name in DEFAULTS)
        else:
            info['hot_standby_settings'] = dict((name, 'lots') for name in DEFAULTS)
    raised = dict((name, value + 1) for name, value in DEFAULTS.items())
    infos = with_settings(db2=raised)
    forget(infos['db2'])  # the target's values unknown
    assert plan(infos)['refusals'] == []
    infos = with_settings(db2=raised)
    forget(infos['db1'])  # the downstreams' values unknown
    forget(infos['db3'])
    assert plan(infos)['refusals'] == []
    assert plan(healthy())['refusals'] == []  # no node has them


def test_an_unreadable_downstream_is_refused_for_that_only():
    infos = with_settings(db2=dict(max_connections=500), db1=dict(max_connections=500))
    infos['db3'] = dict(failed=True, msg='permission denied')
    only(plan(infos), 'The state of db3 could not be read')
    infos = with_settings(db2=dict(max_connections=500), db3=dict(max_connections=500))
    infos['db1'] = dict(changed=False, connected=False, connection_error='connection refused', role='primary',
                        replication=[], slots=[], msg='no server answered')
    refusals = plan(infos)['refusals']
    assert not [r for r in refusals if 'max_connections' in r], refusals


def test_the_refusal_list_of_the_documentation_names_the_hot_standby_settings():
    import yaml
    text = ' '.join(yaml.safe_load(sw.DOCUMENTATION)['description'])
    for name in sw.HOT_STANDBY_SETTINGS:
        assert 'C(%s)' % name in text
    assert 'hot_standby_settings' in text
