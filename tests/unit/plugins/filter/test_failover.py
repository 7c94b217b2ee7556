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

from ansible_collections.hotstandby.postgresql.plugins.filter import failover as fo
from ansible_collections.hotstandby.postgresql.plugins.filter import topology as t

SYS, OTHER = '7712491459935377245', '7000000000000000001'
ADDRESSES = {'db1': '10.0.0.1', 'db2': '10.0.0.2', 'db3': '10.0.0.3', 'db4': '10.0.0.4'}
LOST = {'unreachable': True, 'msg': 'ssh: connect to host db1 port 22: No route to host'}


def topo(under='db3', primary_facts=False, **kwargs):
    """db1 primary (without facts: it did not answer), db2 and db3 standbys of it, db4 cascading from `under`."""
    standbys = ['db2', 'db3'] + (['db4'] if under else [])
    hostvars = dict((h, {'ansible_facts': {'default_ipv4': {'address': ADDRESSES[h]}}}) for h in standbys)
    hostvars['db1'] = {'ansible_facts': {'default_ipv4': {'address': ADDRESSES['db1']}}} if primary_facts else {}
    if under:
        hostvars['db4']['postgres_standby_upstream'] = under
    return t.topology({'postgres_master': ['db1'], 'postgres_standby': standbys}, hostvars, **kwargs)


def node(role, lsn='0/5000000', replay=None, sysid=SYS, timeline=1, status=None, sender_host=None, paused=False,
         conninfo='host=10.0.0.1 port=5432 user=replicator application_name=x'):
    """A pg_replication_info result of a running node; a standby's WAL receiver is gone unless status is given."""
    standby = role == 'standby'
    receiver = dict(pid=7, status=status, sender_host=sender_host, sender_port=5432, received_tli=timeline,
                    slot_name=None) if standby and status else None
    return dict(changed=False, connected=True, connection_error=None, role=role, in_recovery=standby,
                system_identifier=sysid, timeline=timeline, wal_receiver=receiver,
                receive_lsn=lsn if standby else None, replay_lsn=(replay or lsn) if standby else None,
                replay_paused=paused if standby else None,
                replay_pause_state=('paused' if paused else 'not paused') if standby else None,
                primary_conninfo=conninfo if standby else None, replication=[], slots=[],
                synchronous_standby_names='',
                data_directory=dict(path='/var/lib/postgresql/15/main', exists=True, system_identifier=sysid,
                                    pg_version='15', standby_signal=standby, running=True, port=5432,
                                    user_data=None), msg=role)


def stopped(standby_signal=False, sysid=SYS):
    return dict(changed=False, connected=False, connection_error='no server', role='standby' if standby_signal
                else 'primary', in_recovery=None, system_identifier=sysid, timeline=None, wal_receiver=None,
                receive_lsn=None, replay_lsn=None, primary_conninfo=None, replication=[], slots=[],
                data_directory=dict(path='/var/lib/postgresql/15/main', exists=True, system_identifier=sysid,
                                    standby_signal=standby_signal, running=False, user_data=None),
                msg='no server answered')


def lost(db2='0/5000000', db3='0/5000000'):
    """db1 did not answer; db2 and db3 lost their WAL receiver; db4 streams from db3."""
    return {'db1': dict(LOST), 'db2': node('standby', db2), 'db3': node('standby', db3),
            'db4': node('standby', '0/4000000', status='streaming', sender_host='10.0.0.3')}


def plan(infos=None, topology=None, target='', **kwargs):
    result = fo.failover_plan(lost() if infos is None else infos, topology or topo(), target, **kwargs)
    json.dumps(result)
    return result


def only(result, *fragments):
    assert len(result['refusals']) == 1, result['refusals']
    for fragment in fragments:
        assert fragment in result['refusals'][0], result['refusals'][0]
    return result['refusals'][0]


def candidate(result, host):
    return next(c for c in result['candidates'] if c['host'] == host)


# -- go ------------------------------------------------------------------------------------------------------------

def test_the_most_advanced_standby_takes_over_from_an_unreachable_primary():
    result = plan(lost(db3='0/5000060'), rewind_user='rewinder')
    assert result['refusals'] == [] and result['warnings'] == [] and result['already_done'] is False
    assert result['old_primary'] == 'db1' and result['new_primary'] == 'db3'
    assert result['old_primary_state'] == 'unreachable' and result['fence'] == 'guard'
    assert result['choice'] == 'db3 has received the most WAL (0/5000060; next is db2, 96 bytes behind).'
    assert result['followers'] == [{'host': 'db2', 'slot': 'db2', 'application_name': 'db2', 'address': '10.0.0.2'}]
    assert result['unreachable_standbys'] == [] and result['untouched'] == []
    # db4 cascades from db3: it stays on it, now a direct standby of the new primary
    assert [(h['host'], h['slot'], h['address']) for h in result['new_downstream']] == [
        ('db1', 'db1', '10.0.0.1'), ('db2', 'db2', '10.0.0.2'), ('db4', 'db4', '10.0.0.4')]
    assert result['inventory_change'] == [
        'Move db3 from postgres_standby to postgres_master.',
        'Move db1 from postgres_master to postgres_standby.',
        'Remove postgres_standby_upstream (db3) from db4: it streams from the primary db3 now.',
        'If postgres_primary_address is set, set it to the address of db3 (10.0.0.3).']
    assert result['conninfo'] == ('host=10.0.0.3,10.0.0.1,10.0.0.2,10.0.0.4 port=5432,5432,5432,5432 '
                                  'dbname=postgres target_session_attrs=read-write')
    assert result['rewind_source'] == 'host=10.0.0.3 port=5432 user=rewinder dbname=postgres'
    assert result['synchronous_standby_names'] == ''
    assert result['message'].startswith('db3 takes over from db1. db1 does not answer and is taken as lost: when it '
                                        'comes back, the start-time guard on it refuses to start it as a primary. '
                                        'db2 then stream from db3.')
    assert 'db1 gets a slot on db3' in result['message']


def test_candidates_report_positions_and_distance_to_the_best():
    result = plan(lost(db2='0/5000000', db3='0/5000060'))
    assert candidate(result, 'db2') == dict(host='db2', reachable=True, state='running_standby',
                                            receive_lsn='0/5000000', replay_lsn='0/5000000', position='0/5000000',
                                            behind_bytes=96, synchronous_candidate=False, eligible=True, reason='')
    assert candidate(result, 'db3')['behind_bytes'] == 0
    db4 = candidate(result, 'db4')
    assert db4['eligible'] is False and db4['reason'] == 'it is a cascading standby (it streams from db3)'
    assert [c['host'] for c in result['candidates']] == ['db2', 'db3', 'db4']


def test_the_position_is_the_greater_of_received_and_replayed():
    infos = lost()
    infos['db2'] = node('standby', lsn='0/5000000', replay='0/6000000')  # replayed from the archive beyond receipt
    infos['db3']['receive_lsn'] = None
    result = plan(infos)
    assert candidate(result, 'db2')['position'] == '0/6000000' and candidate(result, 'db3')['position'] == '0/5000000'
    assert result['new_primary'] == 'db2'


def test_a_stopped_primary_is_masked():
    infos = lost()
    infos['db1'] = stopped()
    result = plan(infos, topo(primary_facts=True))
    assert result['refusals'] == [] and result['old_primary_state'] == 'stopped' and result['fence'] == 'mask'
    assert 'db1 answers but runs no PostgreSQL: its service is stopped and masked first' in result['message']


def test_the_old_primarys_address_comes_from_a_standbys_primary_conninfo_without_facts():
    infos = lost()
    infos['db2']['primary_conninfo'] = 'host=192.0.2.7 port=5432 user=replicator'
    infos['db3']['primary_conninfo'] = "host='10.0.0.1' port=5432"
    result = plan(infos, target='db3')
    assert result['refusals'] == []
    old = result['new_downstream'][0]
    assert old == {'host': 'db1', 'slot': 'db1', 'application_name': 'db1', 'address': '10.0.0.1'}
    assert [r['address'] for r in result['target_hba_rules'] if r['comment'].endswith('db1')] == ['10.0.0.1/32'] * 2
    assert result['conninfo'].startswith('host=10.0.0.3,10.0.0.1,')
    # no target: the first direct standby's
    assert plan(infos)['new_downstream'][0]['address'] == '192.0.2.7'


def test_a_conninfo_host_that_is_no_ip_address_is_not_used():
    infos = lost()
    for h in ('db2', 'db3'):
        infos[h]['primary_conninfo'] = 'host=db1.example port=5432'
    result = plan(infos)
    assert result['refusals'] == []
    assert result['new_downstream'][0]['address'] is None
    assert [r['comment'] for r in result['target_hba_rules']] == ['hotstandby.postgresql: replication for db3']
    assert result['conninfo'].startswith('host=10.0.0.2,db1,10.0.0.3,')


def test_facts_and_postgres_primary_address():
    # the topology's address of the primary is postgres_primary_address: its own address from facts comes first
    result = plan(topology=topo(primary_address='db-primary.example.com'),
                  facts={'db1': {'default_ipv4': {'address': '10.0.0.9'}}})
    assert result['new_downstream'][0]['address'] == '10.0.0.9'
    assert result['inventory_change'][-1] == ('If postgres_primary_address is set (to db-primary.example.com), set it '
                                              'to the address of db2 (10.0.0.2).')


@pytest.mark.parametrize('tls, contype', [(False, 'host'), (True, 'hostssl')])
def test_target_hba_rules(tls, contype):
    rules = plan(lost(db2='0/6000000'), tls=tls)['target_hba_rules']
    assert rules == [
        {'contype': contype, 'databases': 'replication', 'address': '10.0.0.1/32',
         'comment': 'hotstandby.postgresql: replication for db1'},
        {'contype': contype, 'databases': 'postgres', 'address': '10.0.0.1/32',
         'comment': 'hotstandby.postgresql: pg_rewind for db1'},
        {'contype': contype, 'databases': 'replication', 'address': '10.0.0.3/32',
         'comment': 'hotstandby.postgresql: replication for db3'}]


def test_ports():
    result = plan(lost(db2='0/6000000'), ports={'db2': 5433, 'db4': '6432'})
    assert result['conninfo'] == ('host=10.0.0.2,10.0.0.1,10.0.0.3,10.0.0.4 port=5433,5432,5432,6432 '
                                  'dbname=postgres target_session_attrs=read-write')
    assert result['rewind_source'] == 'host=10.0.0.2 port=5433 dbname=postgres'


# -- the choice ----------------------------------------------------------------------------------------------------

def test_a_tie_without_synchronous_replication_goes_by_inventory_order():
    result = plan()
    assert result['new_primary'] == 'db2'
    assert result['choice'] == ('db2, db3 have received the same WAL (0/5000000); db2 is chosen as the first in '
                                'inventory order.')


def test_a_tie_prefers_a_synchronous_candidate():
    topology = topo(synchronous_mode='sync')
    topology['synchronous_candidates'] = ['db3']  # as if only db3 were named in synchronous_standby_names
    result = plan(topology=topology, synchronous_mode='sync')
    assert result['new_primary'] == 'db3'
    assert [candidate(result, h)['synchronous_candidate'] for h in ('db2', 'db3')] == [False, True]
    assert 'db3 is chosen as a synchronous candidate, the first in synchronous_standby_names priority order' in \
        result['choice']


def test_a_tie_of_synchronous_candidates_goes_by_their_priority():
    topology = topo(synchronous_mode='sync')
    topology['synchronous_candidates'] = ['db3', 'db2']
    result = plan(topology=topology, synchronous_mode='sync')
    assert result['new_primary'] == 'db3'
    assert result['choice'].endswith('db3 is chosen as the first in synchronous_standby_names priority order.')
    # without a tie the position decides
    assert plan(lost(db2='0/5000001'), topology, synchronous_mode='sync')['new_primary'] == 'db2'


def test_a_tie_in_async_mode_ignores_the_synchronous_candidates():
    topology = topo()
    topology['synchronous_candidates'] = ['db3']
    result = plan(topology=topology)
    assert result['new_primary'] == 'db2' and candidate(result, 'db3')['synchronous_candidate'] is False


def test_the_only_candidate():
    infos = lost()
    infos['db2'] = dict(LOST)
    result = plan(infos)
    assert result['refusals'] == [] and result['new_primary'] == 'db3'
    assert result['choice'] == 'db3 is the only standby that can take over; it has received WAL up to 0/5000000.'
    assert result['unreachable_standbys'] == ['db2'] and result['followers'] == []
    assert 'Not re-pointed now: db2 (it did not answer (unreachable, or left out by --limit)); site.yml with the ' \
           'changed inventory re-points them.' in result['message']


@pytest.mark.parametrize('low, high', [('0/0', '0/1'), ('0/FFFFFFFF', '1/0'), ('0/ffffff', '0/1000000'),
                                       ('9/FFFFFFFF', 'A/0')])
def test_lsn_order(low, high):
    result = plan(lost(db2=low, db3=high))
    assert result['new_primary'] == 'db3'
    assert candidate(result, 'db2')['behind_bytes'] == 1
    assert candidate(result, 'db3')['position'] == high.upper()


def test_lsn_edge_cases():
    result = plan(lost(db2='1/0', db3='0/FFFFFFFF'))
    assert result['new_primary'] == 'db2' and candidate(result, 'db3')['behind_bytes'] == 1
    result = plan(lost(db2='0/0', db3='0/0'))
    assert result['new_primary'] == 'db2' and candidate(result, 'db2')['position'] == '0/0'


@pytest.mark.parametrize('receive, replay', [(None, None), ('garbage', None), ('1/2/3', 'x')])
def test_a_standby_without_a_known_position_cannot_take_over(receive, replay):
    infos = lost()
    infos['db2'].update(receive_lsn=receive, replay_lsn=replay)
    result = plan(infos)
    assert result['refusals'] == [] and result['new_primary'] == 'db3'
    assert candidate(result, 'db2')['reason'].startswith('its WAL position is unknown')
    assert result['unreachable_standbys'] == ['db2']


# -- unreachable, skipped, stopped ---------------------------------------------------------------------------------

@pytest.mark.parametrize('entry', [None, {'skipped': True}, {}, Undefined(), dict(LOST)])
def test_a_primary_without_a_result_is_unreachable(entry):
    infos = lost()
    if entry is None:
        del infos['db1']
    else:
        infos['db1'] = entry
    result = plan(infos)
    assert result['refusals'] == [] and result['old_primary_state'] == 'unreachable' and result['fence'] == 'guard'
    assert result['warnings'] == ([] if entry == LOST else
                                  ['db1 gave no result (skipped, or left out by --limit?): it is taken as unreachable.'])


@pytest.mark.parametrize('entry, state, reason', [
    (None, 'unreachable', 'it did not answer'),
    ({'skipped': True}, 'unreachable', 'it did not answer'),
    ({'unreachable': True}, 'unreachable', 'it did not answer'),
    ({'failed': True, 'msg': 'could not connect:\n refused'}, 'unreadable',
     'its state could not be read (could not connect: refused)'),
    (stopped(standby_signal=True), 'stopped', 'PostgreSQL does not run there'),
])
def test_standbys_that_cannot_be_read_are_never_healthy(entry, state, reason):
    infos = lost(db3='0/9000000')
    if entry is None:
        del infos['db3']
    else:
        infos['db3'] = entry
    result = plan(infos)
    assert result['refusals'] == [] and result['new_primary'] == 'db2'
    db3 = candidate(result, 'db3')
    assert db3['state'] == state and db3['eligible'] is False and db3['reason'].startswith(reason)
    assert db3['reachable'] is (state != 'unreachable') and db3['position'] is None
    assert result['unreachable_standbys'] == ['db3'] and result['followers'] == []
    # db4 cascades from db3 and is left alone
    assert result['untouched'] == ['db4']
    assert 'Not re-pointed now: db3' in result['message']


def test_followers_and_untouched_with_a_cascading_standby():
    result = plan(lost(db2='0/6000000'))
    assert result['new_primary'] == 'db2'
    assert [f['host'] for f in result['followers']] == ['db3']
    assert result['untouched'] == ['db4']
    assert [h['host'] for h in result['new_downstream']] == ['db1', 'db3']
    assert 'Cascading standbys keep their upstream: db4.' in result['message']
    assert not any('postgres_standby_upstream' in c for c in result['inventory_change'])


# -- already done --------------------------------------------------------------------------------------------------

def failed_over():
    """db3 was promoted; db2 follows it; db1 is gone."""
    return {'db1': dict(LOST), 'db2': node('standby', '0/6000000', status='streaming', sender_host='10.0.0.3',
                                           timeline=2),
            'db3': node('primary', timeline=2), 'db4': node('standby', status='streaming', sender_host='10.0.0.3',
                                                            timeline=2)}


@pytest.mark.parametrize('target', ['', 'db3', None])
def test_already_done(target):
    result = plan(failed_over(), target=target)
    assert result['already_done'] is True and result['refusals'] == [] and result['new_primary'] == 'db3'
    assert result['message'].startswith('The cluster already has its primary db3 (timeline 2): there is nothing to '
                                        'fail over')
    assert 'Move db3 from postgres_standby to postgres_master.' in result['message']
    assert result['inventory_change'][:2] == ['Move db3 from postgres_standby to postgres_master.',
                                              'Move db1 from postgres_master to postgres_standby.']


def test_already_done_says_which_standbys_do_not_stream_from_it_yet():
    infos = failed_over()
    infos['db2'] = node('standby', '0/5000000')
    result = plan(infos)
    assert result['already_done'] is True
    assert 'Not streaming from it yet: db2 (site.yml with the changed inventory' in result['message']


def test_already_done_when_the_old_primary_is_stopped_and_only_its_data_directory_tells_the_system():
    infos = failed_over()
    infos['db1'] = stopped()
    assert plan(infos)['already_done'] is True


def test_a_promoted_standby_of_another_system_is_not_the_primary():
    infos = lost()
    infos['db1'] = stopped()
    infos['db3'] = node('primary', sysid=OTHER)  # Debian's empty cluster, say
    result = plan(infos)
    assert result['already_done'] is False and result['refusals'] == [] and result['new_primary'] == 'db2'
    assert candidate(result, 'db3')['reason'] == 'it is not in recovery (it runs as a primary)'


def test_another_target_than_the_running_primary_is_refused():
    result = plan(failed_over(), target='db2')
    assert result['already_done'] is False
    only(result, 'db3 already is the running primary of the cluster (timeline 2), but postgres_failover_to names db2')


def test_two_running_primaries_among_the_standbys_are_a_split_brain():
    infos = failed_over()
    infos['db2'] = node('primary', timeline=2)
    result = plan(infos)
    assert result['already_done'] is False
    assert result['refusals'][0].startswith('SPLIT BRAIN: db2 and db3 are all running primaries of the same system')
    assert 'db2: 2, db3: 2' in result['refusals'][0]


def test_a_running_old_primary_and_a_promoted_standby_are_a_split_brain():
    infos = failed_over()
    infos['db1'] = node('primary')
    result = plan(infos, force=True)
    assert result['already_done'] is False
    assert result['refusals'][0].startswith('SPLIT BRAIN: db1 and db3')


# -- refusals ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('force', [False, True])
def test_a_running_primary_is_not_a_failover(force):
    infos = lost()
    infos['db1'] = node('primary')
    result = plan(infos, force=force)
    only(result, 'db1 is a running primary: this is not a failover; use playbooks/switchover.yml '
                 '(hotstandby.postgresql.switchover) to move the primary on purpose.')
    assert result['old_primary_state'] == 'running_primary' and result['fence'] == 'mask'
    assert result['message'] == 'No failover: 1 reason(s) to refuse; nothing is changed.'


def test_an_old_primary_in_recovery_means_a_stale_inventory():
    infos = lost()
    infos['db1'] = node('standby', status='streaming', sender_host='10.0.0.7')
    result = plan(infos)
    assert result['old_primary_state'] == 'running_standby'
    only(result, 'db1, the primary of the inventory, runs as a standby (in recovery, streaming from 10.0.0.7)')


def alive():
    """db1 does not answer, but db2's WAL receiver still streams from it."""
    infos = lost(db3='0/5000060')
    infos['db2'] = node('standby', status='streaming', sender_host='10.0.0.1')
    return infos


def test_a_standby_streaming_from_the_unreachable_primary_is_refused():
    result = plan(alive())
    only(result, 'db1 does not answer, but the WAL receiver of db2 (from 10.0.0.1) still streams',
         'promoting a standby now may make two primaries', '-e postgres_failover_force=true fails over anyway')
    assert result['warnings'] == []


def test_force_overrides_a_streaming_standby_loudly():
    result = plan(alive(), force=True)
    assert result['refusals'] == [] and result['new_primary'] == 'db3'
    assert len(result['warnings']) == 1
    assert result['warnings'][0].startswith('FORCED: db1 does not answer, but the WAL receiver of db2')
    assert 'TWO PRIMARIES' in result['warnings'][0]
    assert 'the start-time guard and the mask cannot stop a primary that is still running' in result['warnings'][0]


def test_streaming_evidence():
    # a stopped primary whose standby still streams: something else answers there
    infos = alive()
    infos['db1'] = stopped()
    only(plan(infos), 'db1 runs no PostgreSQL, but the WAL receiver of db2 (from 10.0.0.1) still streams')
    # the primary's address from primary_conninfo names it too, also for a host named by its inventory name
    infos = alive()
    infos['db2']['wal_receiver']['sender_host'] = 'db1'
    only(plan(infos), 'db2 (from db1)')
    # a cascading standby streaming from its upstream says nothing about the primary
    assert plan(lost())['refusals'] == []
    # nor does a direct standby that streams from another standby
    infos = lost()
    infos['db2'] = node('standby', status='streaming', sender_host='10.0.0.3')
    assert plan(infos)['refusals'] == []
    # a WAL receiver that is not streaming is no evidence
    infos = lost()
    infos['db2'] = node('standby', status='waiting', sender_host='10.0.0.1')
    assert plan(infos)['refusals'] == []


def test_an_old_primary_that_answers_but_cannot_be_read():
    infos = lost()
    infos['db1'] = {'failed': True, 'msg': 'password authentication failed'}
    result = plan(infos)
    assert result['old_primary_state'] == 'unreadable' and result['fence'] == 'mask'
    only(result, 'db1 answers, but its state could not be read (password authentication failed)',
         'PostgreSQL may still run there as a primary')
    result = plan(infos, force=True)
    assert result['refusals'] == [] and result['warnings'][0].startswith('FORCED: db1 answers')
    assert 'its service is stopped and masked first' in result['message']


@pytest.mark.parametrize('target, fragments', [
    ('db9', ("postgres_failover_to is 'db9', which is not a standby of the inventory (postgres_standby: db2, db3, "
             "db4); pass one that can take over (db2, db3)",)),
    ('db1', ('postgres_failover_to is db1, the primary that is lost; pass one of the standbys that can take over '
             '(db2, db3)',)),
    ('db4', ('db4 is a cascading standby: it streams from db3, not from the primary db1', 'Pass one of db2, db3')),
])
def test_a_target_that_is_not_a_direct_standby(target, fragments):
    result = plan(target=target)
    only(result, *fragments)
    assert result['new_primary'] is None and result['inventory_change'] == [] and result['new_downstream'] == []


@pytest.mark.parametrize('entry, fragment', [
    (dict(LOST), 'db3 cannot take over: it did not answer'),
    ({'failed': True, 'msg': 'boom'}, 'db3 cannot take over: its state could not be read (boom)'),
    (stopped(standby_signal=True), 'db3 cannot take over: PostgreSQL does not run there'),
    (node('primary', sysid=OTHER), 'db3 cannot take over: it is not in recovery'),
    (node('standby', sysid=OTHER), "db3 cannot take over: its system identifier is %s, the cluster's is %s"
     % (OTHER, SYS)),
])
def test_a_target_that_cannot_take_over(entry, fragment):
    infos = lost()
    infos['db1'] = stopped()
    infos['db3'] = entry
    result = plan(infos, target='db3')
    only(result, fragment, 'pass another one (db2)')


def test_no_standby_can_take_over():
    infos = {'db1': dict(LOST), 'db2': dict(LOST), 'db3': stopped(standby_signal=True),
             'db4': node('standby', status='streaming', sender_host='10.0.0.3')}
    result = plan(infos)
    only(result, 'No reachable standby can take over from db1: db2: it did not answer',
         'db3: PostgreSQL does not run there', 'db4: it is a cascading standby')
    assert result['new_primary'] is None and result['choice'] == ''


def test_the_cluster_is_the_one_most_nodes_belong_to_when_the_primary_is_unknown():
    infos = lost()
    infos['db2'] = node('standby', '0/9000000', sysid=OTHER)
    result = plan(infos)
    assert result['new_primary'] == 'db3'
    assert candidate(result, 'db2')['reason'] == "its system identifier is %s, the cluster's is %s" % (OTHER, SYS)
    # a tie between systems: nobody can tell
    del infos['db4']
    result = plan(infos, topo(under=None))
    assert result['new_primary'] is None
    only(result, 'No reachable standby can take over', "the cluster's is unknown")


def test_candidates_on_different_timelines():
    infos = lost()
    infos['db3']['timeline'] = 2
    for name in ('db2', 'db3'):
        infos[name]['timeline_source'] = 'wal_receiver'
    only(plan(infos), 'different timelines (db2: 1, db3: 2)')
    # the timeline of the last restart point (no WAL receiver any more) may be older than what was replayed
    infos['db3']['timeline_source'] = 'checkpoint'
    assert plan(infos)['refusals'] == []


def test_a_named_target_behind_the_best_is_refused():
    result = plan(lost(db3='0/5000060'), target='db2')
    only(result, 'db2 has received 96 bytes less WAL than db3 (0/5000000 against 0/5000060)',
         'Leave postgres_failover_to out to promote db3, or pass -e postgres_failover_force=true')


def test_force_promotes_a_named_target_behind_the_best():
    result = plan(lost(db3='0/5000060'), target='db2', force=True)
    assert result['refusals'] == [] and result['new_primary'] == 'db2'
    assert result['warnings'] == ['FORCED: db2 has received 96 bytes less WAL than db3 (0/5000000 against 0/5000060): '
                                  'the commits in those bytes, which only db3 has, ARE LOST. db3 is not re-pointed: '
                                  'site.yml with the changed inventory rejoins it.']
    assert result['choice'] == ('db2 is promoted as named (postgres_failover_to), although db3 has received 96 bytes '
                                'more WAL (forced).')
    # db3 is ahead of the new primary: it cannot follow it
    assert result['followers'] == [] and result['unreachable_standbys'] == ['db3']
    assert 'db3 (ahead of db2)' in result['message']


def test_a_named_target_level_with_the_best():
    result = plan(target='db3')
    assert result['refusals'] == [] and result['new_primary'] == 'db3'
    assert result['choice'] == 'db3 is promoted as named (postgres_failover_to); it has received the most WAL (0/5000000).'
    assert [f['host'] for f in result['followers']] == ['db2']


def test_paused_replay_on_the_new_primary():
    infos = lost(db2='0/6000000')
    infos['db2'].update(replay_paused=True, replay_pause_state='paused')
    only(plan(infos), 'Replay is paused on db2 (paused)', 'pg_wal_replay_resume()')


@pytest.mark.parametrize('mode, count, names', [
    ('async', 1, ''),
    ('sync', 1, 'FIRST 1 ("db3", "db4")'),
    ('quorum', 2, 'ANY 2 ("db3", "db4")'),
])
def test_synchronous_names_of_the_new_primary_are_the_standbys_streaming_from_it(mode, count, names):
    infos = lost(db2='0/6000000')
    topology = topo(under='db2', synchronous_mode=mode, synchronous_count=min(count, 2))
    infos['db4']['wal_receiver']['sender_host'] = '10.0.0.2'
    result = plan(infos, topology, synchronous_mode=mode, synchronous_count=count)
    assert result['refusals'] == [] and result['new_primary'] == 'db2'
    assert result['synchronous_standby_names'] == names


def test_a_synchronous_count_above_the_standbys_streaming_from_the_new_primary_is_lowered_with_a_warning():
    result = plan(synchronous_mode='sync', synchronous_count=2)
    assert result['refusals'] == [] and result['synchronous_standby_names'] == 'FIRST 1 ("db3")'
    assert any('postgres_synchronous_count 2, but right after the failover 1 standby(s) stream from db2 (db3): '
               'commits on db2 wait for 1 of them' in w for w in result['warnings']), result['warnings']
    infos = lost()
    infos['db3'] = dict(LOST)
    alone = plan(infos, synchronous_mode='quorum', synchronous_count=1, force=True)
    assert alone['refusals'] == [] and alone['synchronous_standby_names'] == ''
    assert any('no standby streams from db2: commits on db2 do not wait' in w for w in alone['warnings'])


def test_inventory_errors_come_first():
    topology = topo()
    topology['errors'] = ['something is wrong']
    infos = alive()
    refusals = plan(infos, topology, target='db9')['refusals']
    assert refusals[0] == 'INVENTORY: something is wrong'
    assert refusals[1].startswith('db1 does not answer, but the WAL receiver of db2')
    assert refusals[2].startswith("postgres_failover_to is 'db9'")
    assert len(refusals) == 3


# -- malformed input -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('args, kwargs', [
    (([], topo()), {}),
    (({}, {}), {}),
    (({}, {'hosts': []}), {}),
    (({}, topo(), 2), {}),
    (({}, topo()), {'ports': [5432]}),
    (({}, topo()), {'ports': {'db2': 'x'}}),
    (({}, topo()), {'rewind_user': 5}),
    (({}, topo()), {'synchronous_mode': 'sync', 'synchronous_count': 'many'}),
])
def test_malformed_input(args, kwargs):
    with pytest.raises(AnsibleFilterError, match='^failover_plan: '):
        fo.failover_plan(*args, **kwargs)


def test_filter_is_registered():
    assert fo.FilterModule().filters() == {'failover_plan': fo.failover_plan}


def test_a_synchronous_standby_that_did_not_answer_may_hold_acknowledged_commits():
    infos = lost()
    infos['db3'] = dict(LOST)
    refused = plan(infos, synchronous_mode='sync', synchronous_count=1)
    only(refused, 'In sync mode every acknowledged commit is on 1 synchronous standby(s), and db3 did not answer',
         'promoting db2 may lose it', '-e postgres_failover_force=true')
    forced = plan(infos, synchronous_mode='sync', synchronous_count=1, force=True)
    assert forced['refusals'] == [] and any(w.startswith('FORCED: In sync mode') for w in forced['warnings'])
    # async: commits never waited for a standby, so it is only a warning
    relaxed = plan(infos)
    assert relaxed['refusals'] == [] and any('db3 did not answer, so it may have received more WAL than db2' in w
                                             for w in relaxed['warnings'])


def test_the_candidates_are_listed_with_their_positions():
    text = plan()['candidates_text']
    assert text.startswith('Candidates: db2: received ') and 'replayed' in text
