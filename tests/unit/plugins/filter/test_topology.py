# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.hotstandby.postgresql.plugins.filter import topology as t

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
MAX = t.MAX_CASCADE_DEPTH


def facts(address):
    return {'ansible_facts': {'default_ipv4': {'address': address}}}


def make(standbys=None, master=('pg0',), hostvars=None, **kwargs):
    """Topology of one primary pg0 (10.0.0.10) and standbys (name -> extra vars)."""
    if standbys is None:
        standbys = {'pg1': {}, 'pg2': {}}
    groups = {'all': ['unrelated'], 'postgres_standby': list(standbys)}
    if master is not None:
        groups['postgres_master'] = list(master)
    hv = {'unrelated': facts('10.9.9.9')}
    for number, host in enumerate(groups.get('postgres_master', [])):
        hv[host] = facts('10.0.0.%d' % (10 + number))
    for number, (host, extra) in enumerate(standbys.items()):
        hv.setdefault(host, facts('10.0.1.%d' % (number + 1)))
        hv[host].update(extra)
    if hostvars:
        for host, extra in hostvars.items():
            hv.setdefault(host, {}).update(extra)
    return t.topology(groups, hv, **kwargs)


def only_error(result, *fragments):
    assert len(result['errors']) == 1, result['errors']
    for fragment in fragments:
        assert fragment in result['errors'][0], result['errors'][0]
    return result['errors'][0]


def chain(length):
    """Standbys s1 .. s<length>, each cascading from the one before."""
    standbys = {'s1': {}}
    for number in range(2, length + 1):
        standbys['s%d' % number] = {'postgres_standby_upstream': 's%d' % (number - 1)}
    return standbys


# --- the plain case --------------------------------------------------------

def test_plain_pair():
    r = make({'pg1': {}})
    assert r['errors'] == []
    assert r['primary'] == 'pg0'
    assert r['max_depth'] == MAX == 3
    assert r['standbys'] == ['pg1']
    assert r['tiers'] == {'1': ['pg1'], '2': [], '3': []}
    assert r['synchronous_candidates'] == ['pg1']
    assert r['synchronous_standby_names'] == ''
    assert r['hosts'] == {
        'pg0': {'role': 'primary', 'upstream': None, 'tier': 0, 'slot': None, 'application_name': 'pg0',
                'address': '10.0.0.10', 'upstream_address': None, 'downstream': ['pg1'],
                'expected_sync_states': None},
        'pg1': {'role': 'standby', 'upstream': 'pg0', 'tier': 1, 'slot': 'pg1', 'application_name': 'pg1',
                'address': '10.0.1.1', 'upstream_address': '10.0.0.10', 'downstream': [],
                'expected_sync_states': ['async']},
    }
    # plain data only
    assert json.loads(json.dumps(r)) == r


def test_hosts_in_neither_group_are_ignored():
    r = make()
    assert 'unrelated' not in r['hosts']
    assert sorted(r['hosts']) == ['pg0', 'pg1', 'pg2']


def test_every_tier_key_present_even_when_empty():
    r = make({'pg1': {}})
    assert sorted(r['tiers']) == [str(n) for n in range(1, MAX + 1)]


def test_programming_errors_raise():
    with pytest.raises(AnsibleFilterError):
        t.topology(['postgres_master'], {})
    with pytest.raises(AnsibleFilterError):
        t.topology({'postgres_master': ['a']}, ['a'])
    with pytest.raises(AnsibleFilterError):
        t.topology({'postgres_master': 'a'}, {})


def test_filter_module():
    filters = t.FilterModule().filters()
    assert filters['topology'] is t.topology
    assert filters['hba_rules'] is t.hba_rules


# --- 1.-3. groups ------------------------------------------------------------

def test_no_primary():
    r = make(master=())
    msg = only_error(r, 'postgres_master', 'exactly one host', 'holds 0: none')
    assert 'move the other hosts to postgres_standby' in msg
    assert r['primary'] is None
    # standbys are still worked out; their upstream (the primary) is unknown
    assert r['hosts']['pg1']['upstream'] is None
    assert r['hosts']['pg1']['upstream_address'] is None
    assert r['hosts']['pg1']['tier'] == 1
    assert r['hosts']['pg1']['slot'] == 'pg1'
    assert r['tiers']['1'] == ['pg1', 'pg2']


def test_missing_master_group():
    r = make(master=None)
    only_error(r, 'postgres_master', 'holds 0')


def test_two_primaries():
    r = make(master=('pg0', 'pgx'))
    only_error(r, 'holds 2: pg0, pgx')
    assert r['primary'] is None
    assert r['hosts']['pgx']['role'] == 'primary'


def test_no_standby():
    r = make({})
    only_error(r, 'postgres_standby is empty or missing', 'hot standbys of pg0')
    assert r['standbys'] == []
    assert r['synchronous_candidates'] == []


def test_missing_standby_group():
    r = t.topology({'postgres_master': ['pg0']}, {'pg0': facts('10.0.0.10')})
    only_error(r, 'postgres_standby is empty or missing')
    assert r['hosts']['pg0']['downstream'] == []


def test_host_in_both_groups():
    r = make({'pg0': {}, 'pg1': {}})
    only_error(r, 'pg0 is in both postgres_master and postgres_standby')
    assert r['standbys'] == ['pg1']
    assert r['hosts']['pg0']['role'] == 'primary'


# --- 4. upstream --------------------------------------------------------------

def test_unknown_upstream():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': 'nosuchhost'}})
    msg = only_error(r, 'postgres_standby_upstream of pg2', "'nosuchhost'", '(pg1)', 'leave it unset')
    assert r['hosts']['pg2']['upstream'] is None
    assert r['hosts']['pg2']['tier'] is None
    assert r['tiers']['1'] == ['pg1']
    assert r['hosts']['pg0']['downstream'] == ['pg1']
    assert 'pg2' not in r['synchronous_candidates']
    assert msg.count('.') >= 1


def test_host_in_neither_group_as_upstream():
    r = make({'pg1': {'postgres_standby_upstream': 'unrelated'}})
    only_error(r, "'unrelated'", 'there is none')


def test_self_upstream():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': 'pg2'}})
    only_error(r, 'postgres_standby_upstream of pg2', 'itself', 'another host of the postgres_standby group (pg1)')
    assert r['hosts']['pg2']['downstream'] == []
    assert r['hosts']['pg2']['tier'] is None


def test_primary_as_upstream():
    r = make({'pg1': {'postgres_standby_upstream': 'pg0'}, 'pg2': {}})
    only_error(r, 'postgres_standby_upstream of pg1', 'the primary', 'unset to stream from the primary')


def test_non_string_upstream():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': ['pg1']}})
    only_error(r, 'postgres_standby_upstream of pg2', 'a list')


def test_standby_behind_an_invalid_upstream_has_no_tier():
    r = make({'pg1': {'postgres_standby_upstream': 'gone'}, 'pg2': {'postgres_standby_upstream': 'pg1'}})
    only_error(r, 'of pg1')
    assert r['hosts']['pg2']['upstream'] == 'pg1'
    assert r['hosts']['pg2']['tier'] is None
    assert r['tiers'] == {'1': [], '2': [], '3': []}


# --- 5. loops -----------------------------------------------------------------

def test_loop_of_two():
    r = make({'pg1': {}, 'a': {'postgres_standby_upstream': 'b'}, 'b': {'postgres_standby_upstream': 'a'}})
    only_error(r, 'loop: a -> b -> a')
    assert r['hosts']['a']['tier'] is None
    assert r['hosts']['b']['tier'] is None
    assert r['hosts']['a']['upstream'] == 'b'
    assert r['tiers']['1'] == ['pg1']


def test_loop_of_three_reported_once_in_order():
    # inventory order c, a, b; the loop a -> b -> c -> a starts at c, the first in inventory order
    r = make({'c': {'postgres_standby_upstream': 'a'},
              'a': {'postgres_standby_upstream': 'b'},
              'b': {'postgres_standby_upstream': 'c'},
              'tail': {'postgres_standby_upstream': 'a'}})
    only_error(r, 'loop: c -> a -> b -> c')
    assert all(r['hosts'][h]['tier'] is None for h in ('a', 'b', 'c', 'tail'))


def test_two_loops_two_errors():
    r = make({'a': {'postgres_standby_upstream': 'b'}, 'b': {'postgres_standby_upstream': 'a'},
              'c': {'postgres_standby_upstream': 'd'}, 'd': {'postgres_standby_upstream': 'c'}})
    assert len(r['errors']) == 2
    assert 'a -> b -> a' in r['errors'][0]
    assert 'c -> d -> c' in r['errors'][1]


# --- 6. depth -------------------------------------------------------------------

def test_depth_exactly_max_is_fine():
    r = make(chain(MAX))
    assert r['errors'] == []
    for number in range(1, MAX + 1):
        assert r['tiers'][str(number)] == ['s%d' % number]
        assert r['hosts']['s%d' % number]['tier'] == number


def test_depth_max_plus_one_is_an_error():
    r = make(chain(MAX + 1))
    path = ' -> '.join(['s%d' % n for n in range(MAX + 1, 0, -1)] + ['pg0'])
    only_error(r, 's%d' % (MAX + 1), path, 'at most %d standbys deep' % MAX)
    assert r['hosts']['s%d' % (MAX + 1)]['tier'] == MAX + 1
    assert all('s%d' % (MAX + 1) not in hosts for hosts in r['tiers'].values())


def test_depth_max_plus_two_is_one_error_naming_the_standbys_behind():
    r = make(chain(MAX + 2))
    only_error(r, 'from s%d' % (MAX + 1), 'behind it, s%d' % (MAX + 2))


# --- 7./8. slots --------------------------------------------------------------

def test_default_slot_names():
    r = make({'DB-West.example.com': {}, 'db_2': {}})
    assert r['errors'] == []
    assert r['hosts']['DB-West.example.com']['slot'] == 'db_west_example_com'
    assert r['hosts']['DB-West.example.com']['application_name'] == 'DB-West.example.com'
    assert r['hosts']['db_2']['slot'] == 'db_2'


def test_explicit_slot_name():
    r = make({'pg1': {'postgres_standby_slot_name': 'west'}})
    assert r['errors'] == []
    assert r['hosts']['pg1']['slot'] == 'west'


def test_default_slot_collision():
    r = make({'db-1': {}, 'db.1': {}, 'pg2': {}})
    msg = only_error(r, 'db-1', 'db.1', "'db_1'", 'postgres_standby_slot_name')
    assert 'pg2' not in msg


def test_explicit_slot_collides_with_default():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_slot_name': 'pg1'}})
    only_error(r, 'pg1 (from its inventory name)', 'pg2 (postgres_standby_slot_name)', "'pg1'")


def test_three_way_collision_is_one_error():
    r = make({'a-b': {}, 'a.b': {}, 'c': {'postgres_standby_slot_name': 'a_b'}})
    only_error(r, 'a-b', 'a.b', 'c (postgres_standby_slot_name)')


@pytest.mark.parametrize('name', ['Upper', 'with-dash', 'x' * 64, '', 'slot\n', 'a b'])
def test_invalid_explicit_slot_name(name):
    r = make({'pg1': {'postgres_standby_slot_name': name}})
    only_error(r, 'postgres_standby_slot_name of pg1', 'not a valid replication slot name')


def test_longest_explicit_slot_name_is_valid():
    r = make({'pg1': {'postgres_standby_slot_name': 'x' * 63}})
    assert r['errors'] == []


@pytest.mark.parametrize('name, kind', [(123, 'a number'), (True, 'a boolean'), (None, 'null'), (['a'], 'a list')])
def test_non_string_slot_name(name, kind):
    r = make({'pg1': {'postgres_standby_slot_name': name}})
    only_error(r, 'postgres_standby_slot_name of pg1', 'must be a string', kind, 'quote')
    assert r['hosts']['pg1']['slot'] is None


def test_long_default_slot_name():
    host = 'h' * 60 + '.example'
    r = make({host: {}})
    only_error(r, host, '68 characters', 'at most 63', 'Set postgres_standby_slot_name')
    r = make({host: {'postgres_standby_slot_name': 'short'}})
    assert r['errors'] == []


def test_slot_name_regex():
    assert t.SLOT_NAME_RE.pattern == r'^[a-z0-9_]{1,63}$'


# --- 9. synchronous replication ------------------------------------------------------

def test_sync_names_async():
    r = make(synchronous_mode='async', synchronous_count='not checked')
    assert r['errors'] == []
    assert r['synchronous_standby_names'] == ''


def test_sync_names_sync():
    r = make(synchronous_mode='sync', synchronous_count=1)
    assert r['errors'] == []
    assert r['synchronous_standby_names'] == 'FIRST 1 ("pg1", "pg2")'


def test_sync_names_quorum_count_as_string():
    r = make(synchronous_mode='quorum', synchronous_count='2')
    assert r['errors'] == []
    assert r['synchronous_standby_names'] == 'ANY 2 ("pg1", "pg2")'


def test_sync_candidates_leave_out_cascading_standbys():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': 'pg1'}, 'pg3': {}},
             synchronous_mode='sync', synchronous_count=2)
    assert r['errors'] == []
    assert r['synchronous_candidates'] == ['pg1', 'pg3']
    assert r['synchronous_standby_names'] == 'FIRST 2 ("pg1", "pg3")'


def test_sync_count_too_high():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': 'pg1'}},
             synchronous_mode='sync', synchronous_count=2)
    only_error(r, 'postgres_synchronous_count', '1 standby(s) stream from the primary (pg1)',
               'between 1 and 1', 'postgres_synchronous_mode async')


@pytest.mark.parametrize('count', [0, '0', -1])
def test_sync_count_zero(count):
    r = make(synchronous_mode='quorum', synchronous_count=count)
    only_error(r, 'postgres_synchronous_count', 'between 1 and 2')


@pytest.mark.parametrize('count', ['two', '1.5', 1.5, None, True])
def test_sync_count_not_an_integer(count):
    r = make(synchronous_mode='sync', synchronous_count=count)
    only_error(r, 'postgres_synchronous_count', 'not a whole number')
    assert r['synchronous_standby_names'] == ''


@pytest.mark.parametrize('mode', ['synchronous', 'SYNC', '', None])
def test_sync_mode_invalid(mode):
    r = make(synchronous_mode=mode)
    only_error(r, 'postgres_synchronous_mode', 'async, sync or quorum')
    assert r['synchronous_standby_names'] == ''


@pytest.mark.parametrize('mode, direct', [('async', ['async']), ('sync', ['sync', 'potential']), ('quorum', ['quorum'])])
def test_expected_sync_states(mode, direct):
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': 'pg1'}}, synchronous_mode=mode)
    assert r['errors'] == []
    assert r['hosts']['pg1']['expected_sync_states'] == direct
    assert r['hosts']['pg2']['expected_sync_states'] == ['async']
    assert r['hosts']['pg0']['expected_sync_states'] is None


# --- tiers and downstream --------------------------------------------------------------

def test_tiers_and_downstream():
    r = make({'a': {}, 'b': {'postgres_standby_upstream': 'a'}, 'c': {},
              'd': {'postgres_standby_upstream': 'b'}, 'e': {'postgres_standby_upstream': 'a'}})
    assert r['errors'] == []
    assert r['tiers'] == {'1': ['a', 'c'], '2': ['b', 'e'], '3': ['d']}
    assert r['hosts']['pg0']['downstream'] == ['a', 'c']
    assert r['hosts']['a']['downstream'] == ['b', 'e']
    assert r['hosts']['b']['downstream'] == ['d']
    assert r['hosts']['c']['downstream'] == []
    assert r['hosts']['d']['upstream'] == 'b'
    assert r['hosts']['e']['tier'] == 2


# --- 10. addresses -------------------------------------------------------------------

def test_addresses_from_facts():
    r = make({'pg1': {}, 'pg2': {'postgres_standby_upstream': 'pg1'}})
    assert r['hosts']['pg0']['address'] == '10.0.0.10'
    assert r['hosts']['pg1']['address'] == '10.0.1.1'
    assert r['hosts']['pg1']['upstream_address'] == '10.0.0.10'
    assert r['hosts']['pg2']['upstream_address'] == '10.0.1.1'


def test_address_overrides():
    r = make({'pg1': {'postgres_standby_address': '192.0.2.1'}, 'pg2': {'postgres_standby_upstream': 'pg1'}},
             primary_address='db.example.com')
    assert r['hosts']['pg0']['address'] == 'db.example.com'
    assert r['hosts']['pg1']['address'] == '192.0.2.1'
    assert r['hosts']['pg1']['upstream_address'] == 'db.example.com'
    # a cascaded standby connects to its upstream standby's address
    assert r['hosts']['pg2']['upstream_address'] == '192.0.2.1'
    assert r['hosts']['pg2']['address'] == '10.0.1.2'


def test_empty_primary_address_uses_the_fact():
    r = make(primary_address='')
    assert r['hosts']['pg1']['upstream_address'] == '10.0.0.10'


def test_unknown_addresses_are_not_errors():
    groups = {'postgres_master': ['pg0'], 'postgres_standby': ['pg1', 'pg2', 'pg3', 'pg4']}
    hostvars = {'pg0': {}, 'pg1': {'ansible_facts': {}}, 'pg2': {'ansible_facts': {'default_ipv4': {}}},
                'pg3': {'postgres_standby_upstream': 'pg1'}}  # pg4 has no hostvars at all
    r = t.topology(groups, hostvars)
    assert r['errors'] == []
    assert r['hosts']['pg0']['address'] is None
    for host in ('pg1', 'pg2', 'pg3', 'pg4'):
        assert r['hosts'][host]['address'] is None
        assert r['hosts'][host]['upstream_address'] is None
    assert r['hosts']['pg3']['tier'] == 2


def test_primary_address_known_only_through_override():
    r = t.topology({'postgres_master': ['pg0'], 'postgres_standby': ['pg1']}, {'pg0': {}, 'pg1': {}},
                   primary_address='10.1.1.1')
    assert r['hosts']['pg1']['upstream_address'] == '10.1.1.1'


class _Raising(dict):
    """A host's variables whose value raises on access, as HostVars do for undefined templates."""

    def __getitem__(self, key):
        if key == 'postgres_standby_upstream':
            raise RuntimeError("'nonexistent' is undefined")
        return dict.__getitem__(self, key)


def test_undefined_values_count_as_missing():
    from jinja2 import Undefined
    hostvars = {'pg0': facts('10.0.0.10'),
                'pg1': _Raising(postgres_standby_upstream='{{ nonexistent }}', postgres_standby_slot_name=Undefined(),
                                **facts('10.0.1.1'))}
    r = t.topology({'postgres_master': ['pg0'], 'postgres_standby': ['pg1']}, hostvars)
    assert r['errors'] == []
    assert r['hosts']['pg1']['upstream'] == 'pg0'
    assert r['hosts']['pg1']['slot'] == 'pg1'


# --- hba_rules -------------------------------------------------------------------------

def _hba_topology():
    return make({'pg1': {}, 'pg2': {'postgres_standby_address': '2001:db8::2'}, 'pg3': {'postgres_standby_upstream': 'pg1'}})


@pytest.mark.parametrize('tls', [True, 'true', 'yes', 'On', '1', 1])
def test_hba_rules_tls(tls):
    assert t.hba_rules(_hba_topology(), 'pg0', tls) == [
        {'contype': 'hostssl', 'address': '10.0.1.1/32', 'comment': 'hotstandby.postgresql: replication for pg1'},
        {'contype': 'host', 'address': '10.0.1.1/32', 'state': 'absent'},
        {'contype': 'hostssl', 'address': '2001:db8::2/128', 'comment': 'hotstandby.postgresql: replication for pg2'},
        {'contype': 'host', 'address': '2001:db8::2/128', 'state': 'absent'},
    ]


@pytest.mark.parametrize('tls', [False, 'false', 'False', 'no', 'off', '0', 0])
def test_hba_rules_no_tls(tls):
    assert t.hba_rules(_hba_topology(), 'pg1', tls) == [
        {'contype': 'host', 'address': '10.0.1.3/32', 'comment': 'hotstandby.postgresql: replication for pg3'},
        {'contype': 'hostssl', 'address': '10.0.1.3/32', 'state': 'absent'},
    ]


def test_hba_rules_without_downstream():
    topo = _hba_topology()
    assert t.hba_rules(topo, 'pg2', True) == []
    assert t.hba_rules(topo, 'unrelated', True) == []


def test_hba_rules_unknown_address_raises():
    topo = t.topology({'postgres_master': ['pg0'], 'postgres_standby': ['pg1']}, {'pg0': facts('10.0.0.10'), 'pg1': {}})
    with pytest.raises(AnsibleFilterError, match='pg1.*postgres_standby_address.*facts'):
        t.hba_rules(topo, 'pg0', False)


def test_hba_rules_bad_input_raises():
    with pytest.raises(AnsibleFilterError):
        t.hba_rules(_hba_topology(), 'pg0', 'maybe')
    with pytest.raises(AnsibleFilterError):
        t.hba_rules(['not', 'a', 'topology'], 'pg0', True)


# --- the playbook has one play per tier --------------------------------------------------

def test_site_yml_has_one_play_per_tier():
    with open(os.path.join(REPO_ROOT, 'playbooks', 'site.yml')) as handle:
        plays = yaml.safe_load(handle)
    tiers = []
    for play in plays:
        hosts = play.get('hosts')
        if isinstance(hosts, str) and 'postgres_standby_tier_' in hosts:
            tiers.extend(int(number) for number in re.findall(r'postgres_standby_tier_(\d+)', hosts))
    assert tiers == list(range(1, MAX + 1))


def test_max_depth_is_documented():
    doc = yaml.safe_load(t.DOCUMENTATION)
    assert doc['name'] == 'topology'
    assert 'MAX_CASCADE_DEPTH' in ' '.join(doc['description'])


# --- downstream_changes ----------------------------------------------------------------

def test_downstream_changes_first_record_lists_the_current_downstream():
    r = t.downstream_changes(_hba_topology(), 'pg0', None, [])
    assert r['drop'] == [] and r['kept'] == []
    assert r['record'] == {'downstream': {'pg1': {'slot': 'pg1', 'address': '10.0.1.1'},
                                          'pg2': {'slot': 'pg2', 'address': '2001:db8::2'}}}


def test_downstream_changes_drops_a_removed_standby_that_does_not_stream():
    record = {'downstream': {'pg1': {'slot': 'pg1', 'address': '10.0.1.1'},
                             'gone': {'slot': 'gone_slot', 'address': '10.0.9.9'}}}
    r = t.downstream_changes(_hba_topology(), 'pg0', record, ['pg1'])
    assert r['drop'] == [{'host': 'gone', 'slot': 'gone_slot', 'address': '10.0.9.9', 'hba_rules': [
        {'contype': 'host', 'address': '10.0.9.9/32', 'state': 'absent'},
        {'contype': 'hostssl', 'address': '10.0.9.9/32', 'state': 'absent'}]}]
    assert r['kept'] == []
    assert 'gone' not in r['record']['downstream'] and 'pg2' in r['record']['downstream']


def test_downstream_changes_keeps_a_removed_standby_that_still_streams():
    record = {'downstream': {'gone': {'slot': 'gone_slot', 'address': '10.0.9.9'}}}
    r = t.downstream_changes(_hba_topology(), 'pg0', record, ['gone_slot', 'pg1'])
    assert r['drop'] == []
    assert r['kept'] == [{'host': 'gone', 'slot': 'gone_slot', 'address': '10.0.9.9'}]
    assert r['record']['downstream']['gone'] == {'slot': 'gone_slot', 'address': '10.0.9.9'}


def test_downstream_changes_a_standby_moved_to_another_upstream_goes_from_the_old_one():
    record = {'downstream': {'pg3': {'slot': 'pg3', 'address': '10.0.1.3'}}}
    r = t.downstream_changes(_hba_topology(), 'pg2', record, [])
    assert r['drop'] == [{'host': 'pg3', 'slot': 'pg3', 'address': '10.0.1.3', 'hba_rules': [
        {'contype': 'host', 'address': '10.0.1.3/32', 'state': 'absent'},
        {'contype': 'hostssl', 'address': '10.0.1.3/32', 'state': 'absent'}]}]
    assert r['record'] == {'downstream': {}}


@pytest.mark.parametrize('record', [None, '', {}, {'downstream': None}, {'downstream': 'x'}])
def test_downstream_changes_tolerates_no_record(record):
    r = t.downstream_changes(_hba_topology(), 'pg1', record, [])
    assert r['drop'] == [] and r['record'] == {'downstream': {'pg3': {'slot': 'pg3', 'address': '10.0.1.3'}}}


@pytest.mark.parametrize('host, record, write', [
    # no record and no downstream standby (a leaf standby): no file
    ('pg3', None, False),
    # no record yet, standbys to record: the first record
    ('pg0', None, True),
    # an empty record kept before stays as it is
    ('pg3', {'downstream': {}}, False),
    # the same record: nothing to write
    ('pg1', {'downstream': {'pg3': {'slot': 'pg3', 'address': '10.0.1.3'}}}, False),
    # a standby gone from the record: written, also when the new record is empty
    ('pg3', {'downstream': {'gone': {'slot': 'gone', 'address': '10.0.9.9'}}}, True),
    # an unreadable record is replaced
    ('pg3', {'downstream': 'x'}, True),
])
def test_downstream_changes_says_when_the_record_is_written(host, record, write):
    assert t.downstream_changes(_hba_topology(), host, record, [])['write'] is write


def test_downstream_changes_needs_a_topology():
    with pytest.raises(AnsibleFilterError):
        t.downstream_changes({'x': 1}, 'pg0')
