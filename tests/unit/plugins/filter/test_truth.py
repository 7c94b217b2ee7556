# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.hotstandby.postgresql.plugins.filter import topology as t
from ansible_collections.hotstandby.postgresql.plugins.filter.truth import FilterModule, topology_rejoins, topology_truth

SYS, OTHER = '7712491459935377245', '7000000000000000001'


def topo(standbys=('db2', 'db3')):
    hostvars = dict((h, {}) for h in ('db1',) + tuple(standbys))
    return t.topology({'postgres_master': ['db1'], 'postgres_standby': list(standbys)}, hostvars)


def running(role, sysid=SYS, timeline=1, user_data=None, sender=None):
    return dict(connected=True, role=role, system_identifier=sysid, timeline=timeline,
                wal_receiver={'sender_host': sender, 'status': 'streaming'} if sender else None,
                data_directory=dict(exists=True, system_identifier=sysid, standby_signal=role == 'standby',
                                    running=True, user_data=user_data, path='/var/lib/postgresql/15/main'))


def stopped(sysid=SYS, standby_signal=True, exists=True, timeline=None):
    return dict(connected=False, role=('standby' if standby_signal else 'primary') if exists else None,
                system_identifier=sysid if exists else None,
                data_directory=dict(exists=exists, system_identifier=sysid if exists else None,
                                    standby_signal=standby_signal, running=False, user_data=None,
                                    path='/var/lib/postgresql/15/main', checkpoint_timeline=timeline))


def healthy():
    return {'db1': running('primary'), 'db2': running('standby', sender='10.0.0.1'),
            'db3': running('standby', sender='10.0.0.1')}


def test_a_healthy_pair_is_fine():
    assert topology_truth(healthy(), topo()) == []


def test_fresh_hosts_and_debians_empty_cluster_are_fine():
    infos = {'db1': {'skipped': True}, 'db2': running('primary', sysid=OTHER), 'db3': stopped(exists=False)}
    assert topology_truth(infos, topo()) == []


def test_stopped_standbys_and_a_stopped_primary_are_fine():
    infos = {'db1': stopped(standby_signal=False), 'db2': stopped(), 'db3': running('standby')}
    assert topology_truth(infos, topo()) == []


def test_a_promoted_standby_with_the_old_primary_running_is_split_brain_first():
    infos = healthy()
    infos['db2'] = running('primary', timeline=2)
    refusals = topology_truth(infos, topo())
    assert refusals[0].startswith('SPLIT BRAIN: db1 and db2')
    assert 'db1: 1, db2: 2' in refusals[0]
    assert any('db2 is in postgres_standby but is a running primary of the same system as db1' in r
               for r in refusals)


def test_a_promoted_standby_with_the_old_primary_stopped():
    infos = {'db1': stopped(standby_signal=False), 'db2': running('primary', timeline=2),
             'db3': running('standby')}
    refusals = topology_truth(infos, topo())
    assert len(refusals) == 1 and 'put it in postgres_master and db1 in postgres_standby' in refusals[0]


def test_the_inventorys_primary_in_recovery():
    infos = healthy()
    infos['db1'] = running('standby', sender='10.0.0.2')
    infos['db2'] = running('primary', timeline=2)
    refusals = topology_truth(infos, topo())
    assert any('db1 is in postgres_master but is a running standby of 10.0.0.2' in r for r in refusals)


def test_the_inventorys_primary_stopped_as_a_standby():
    infos = healthy()
    infos['db1'] = stopped(standby_signal=True)
    refusals = topology_truth(infos, topo())
    assert any('db1 is in postgres_master but is a stopped standby' in r for r in refusals)


def test_a_foreign_primary_holding_data_in_the_standby_group():
    infos = healthy()
    infos['db3'] = running('primary', sysid=OTHER, user_data='database directory base/16384')
    refusals = topology_truth(infos, topo())
    assert len(refusals) == 1 and 'db3 is in postgres_standby but runs a primary holding data' in refusals[0]


def test_a_stopped_former_primary_of_unknown_timeline_in_the_standby_group_is_refused():
    infos = {'db1': running('primary', timeline=2), 'db2': stopped(standby_signal=False), 'db3': running('standby')}
    refusals = topology_truth(infos, topo())
    assert len(refusals) == 1
    assert ('db2 is in postgres_standby but its stopped data directory /var/lib/postgresql/15/main (timeline '
            'unknown) is a primary of the same system as db1, while the timeline of this data directory is '
            'unknown') in refusals[0]
    assert 'whatever postgres_standby_existing_data says' in refusals[0]
    assert 'mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.diverged' in refusals[0]
    assert topology_rejoins(infos, topo()) == []


def test_a_stopped_former_primary_on_a_lower_timeline_is_rejoined():
    # after failover.yml promoted db1 (timeline 2) and the inventory was changed: db2, the old primary, rejoins
    infos = {'db1': running('primary', timeline=2), 'db2': stopped(standby_signal=False, timeline=1),
             'db3': running('standby', timeline=2, sender='10.0.0.1')}
    assert topology_truth(infos, topo()) == []
    assert topology_rejoins(infos, topo()) == ['db2']


@pytest.mark.parametrize('primary_timeline, own_timeline', [(1, 1), (2, 3)])
def test_a_stopped_former_primary_on_the_same_or_a_higher_timeline_is_refused(primary_timeline, own_timeline):
    infos = {'db1': running('primary', timeline=primary_timeline),
             'db2': stopped(standby_signal=False, timeline=own_timeline), 'db3': running('standby')}
    refusals = topology_truth(infos, topo())
    assert len(refusals) == 1
    assert ('db2 is in postgres_standby but its stopped data directory /var/lib/postgresql/15/main (timeline %d) '
            'is a primary of the same system as db1, which runs on timeline %d, not on a higher one'
            % (own_timeline, primary_timeline)) in refusals[0]
    assert 'site.yml rejoins a former primary only to a primary that runs on a higher timeline' in refusals[0]
    assert topology_rejoins(infos, topo()) == []


def test_a_stopped_former_primary_is_refused_while_the_primary_is_stopped_too():
    infos = {'db1': stopped(standby_signal=False, timeline=2), 'db2': stopped(standby_signal=False, timeline=1),
             'db3': running('standby')}
    refusals = topology_truth(infos, topo())
    assert len(refusals) == 1 and 'is a primary of the same system as db1, which does not run as a primary' in \
        refusals[0]
    assert topology_rejoins(infos, topo()) == []


def test_a_stopped_former_primary_is_refused_when_the_primarys_timeline_is_unknown():
    infos = {'db1': running('primary', timeline=None), 'db2': stopped(standby_signal=False, timeline=1),
             'db3': running('standby')}
    refusals = topology_truth(infos, topo())
    assert len(refusals) == 1 and 'db1, whose timeline is unknown' in refusals[0]
    assert topology_rejoins(infos, topo()) == []


def test_a_running_former_primary_on_a_lower_timeline_stays_refused():
    infos = {'db1': running('primary', timeline=2), 'db2': running('primary', timeline=1), 'db3': running('standby')}
    refusals = topology_truth(infos, topo())
    assert any('db2 is in postgres_standby but is a running primary of the same system as db1' in r
               for r in refusals)
    assert topology_rejoins(infos, topo()) == []


def test_only_stopped_primaries_of_the_system_are_rejoined():
    infos = {'db1': running('primary', timeline=3), 'db2': stopped(standby_signal=True, timeline=1),
             'db3': stopped(sysid=OTHER, standby_signal=False, timeline=1)}
    assert topology_truth(infos, topo()) == [] and topology_rejoins(infos, topo()) == []
    infos['db3'] = {'failed': True, 'msg': 'boom'}
    assert topology_rejoins(infos, topo()) == []


def test_a_stopped_primary_of_another_system_is_left_to_the_clone():
    infos = {'db1': running('primary'), 'db2': stopped(sysid=OTHER, standby_signal=False), 'db3': running('standby')}
    assert topology_truth(infos, topo()) == []


def test_a_node_that_could_not_be_read_is_never_fine():
    infos = healthy()
    infos['db3'] = {'failed': False, 'msg': 'could not connect:\n password authentication failed'}
    refusals = topology_truth(infos, topo())
    assert refusals == ['The real role of db3 could not be read (could not connect: password authentication '
                        'failed), so nothing is changed anywhere: make it readable (is PostgreSQL on it healthy?) '
                        'and run again.']


def test_two_standbys_promoted_with_the_primary_fresh():
    infos = {'db1': {'skipped': True}, 'db2': running('primary'), 'db3': running('primary')}
    refusals = topology_truth(infos, topo())
    assert refusals[0].startswith('SPLIT BRAIN: db2 and db3')


def slurped(text, path='/etc/postgresql/15/main/hotstandby-fenced'):
    return dict(content=base64.b64encode(text.encode('utf-8')).decode('ascii'), source=path, encoding='base64')


FENCED_BY_FAILOVER = json.dumps({'fenced_by': 'hotstandby.postgresql failover.yml', 'at': '2026-12-02T10:00:00Z',
                                 'new_primary': 'db2', 'reason': 'this node was the primary when db2 was promoted; '
                                 'run site.yml with the changed inventory to rejoin it as a standby'}, indent=2)


def test_a_fenced_primary_in_postgres_master_is_refused_with_its_reason():
    infos = {'db1': stopped(standby_signal=False, timeline=1), 'db2': running('primary', timeline=2),
             'db3': running('standby', timeline=2)}
    fenced = {'db1': slurped(FENCED_BY_FAILOVER), 'db2': {'skipped': True}, 'db3': {'skipped': True}}
    refusals = topology_truth(infos, topo(), fenced=fenced)
    assert refusals[0] == (
        'db1 was fenced by failover.yml (this node was the primary when db2 was promoted; run site.yml with the '
        'changed inventory to rejoin it as a standby, at 2026-12-02T10:00:00Z, new primary db2): it is no longer the '
        'primary. Nothing is changed: put the new primary in postgres_master and db1 in postgres_standby, and '
        'site.yml rejoins it as a standby (if db1 is to be the primary after all, remove '
        '/etc/postgresql/15/main/hotstandby-fenced first).')


@pytest.mark.parametrize('marker, reason', [('fenced by hand\n  for the test\n', '(fenced by hand for the test)'),
                                            ('', '(its marker gives no reason)'),
                                            ('{"at": "x"}', '({"at": "x"})')])
def test_a_fenced_marker_of_any_text(marker, reason):
    refusals = topology_truth(healthy(), topo(), fenced={'db1': marker})
    assert len(refusals) == 1 and refusals[0].startswith('db1 was fenced by failover.yml %s: ' % reason)
    assert 'remove' not in refusals[0]


def test_a_fenced_marker_on_a_standby_is_no_refusal_and_no_marker_is_fine():
    infos = {'db1': running('primary', timeline=2), 'db2': stopped(standby_signal=False, timeline=1),
             'db3': running('standby')}
    fenced = {'db1': {'changed': False, 'skipped': True, 'skip_reason': 'Conditional result was False'},
              'db2': slurped(FENCED_BY_FAILOVER)}
    assert topology_truth(infos, topo(), fenced=fenced) == []
    assert topology_truth(infos, topo(), fenced={'db1': None}) == []
    assert topology_truth(infos, topo(), fenced={'db1': {'failed': True, 'msg': 'file not found'}}) == []


def test_needs_a_topology():
    with pytest.raises(AnsibleFilterError):
        topology_truth({}, {})
    with pytest.raises(AnsibleFilterError):
        topology_rejoins({}, {})
    with pytest.raises(AnsibleFilterError):
        topology_truth(healthy(), topo(), fenced=['db1'])


def test_both_filters_are_registered():
    assert set(FilterModule().filters()) == {'topology_truth', 'topology_rejoins'}


def test_a_fenced_marker_as_pg_replication_info_read_it():
    """The truth read's files entry: the reason and the path to remove, as from a slurp; no marker, no refusal."""
    path = '/etc/postgresql/15/main/hotstandby-fenced'
    refusals = topology_truth(healthy(), topo(), fenced={'db1': dict(path=path, exists=True,
                                                                     content=FENCED_BY_FAILOVER)})
    assert len(refusals) == 1
    assert refusals[0].startswith('db1 was fenced by failover.yml (this node was the primary when db2 was promoted')
    assert refusals[0].endswith('(if db1 is to be the primary after all, remove %s first).' % path)
    empty = topology_truth(healthy(), topo(), fenced={'db1': dict(path=path, exists=True, content='')})
    assert len(empty) == 1 and '(its marker gives no reason)' in empty[0]
    for none in (dict(path=path, exists=False, content=None), {}):
        assert topology_truth(healthy(), topo(), fenced={'db1': none}) == []
