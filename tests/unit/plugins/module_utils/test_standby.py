# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import (
    build_conninfo, parse_conninfo, pgpass_line)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import read_standby_settings
from ansible_collections.hotstandby.postgresql.plugins.module_utils.standby import (
    UPSTREAM_SPEC, make_standby, passfile_diff, passfile_state, settings_plan, upstream_conninfo, write_passfile)
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.clusters import write_cluster

PARAMS = dict(primary_host='10.0.0.12', primary_port=5433, user='replicator', password='s3:cr\\et',
              connect_timeout=10, sslmode='verify-full', sslrootcert='/etc/ssl/root ca.crt', passfile=None)
OWNER = (os.getuid(), os.getgid())


def test_upstream_spec_matches_the_doc_fragment_options():
    assert sorted(UPSTREAM_SPEC) == ['connect_timeout', 'passfile', 'password', 'primary_host', 'primary_port',
                                     'sslmode', 'sslrootcert', 'user']
    assert UPSTREAM_SPEC['password']['no_log'] is True


def test_upstream_conninfo_forms():
    assert upstream_conninfo(PARAMS, 'db1', replication=True) == (
        "host=10.0.0.12 port=5433 user=replicator dbname=replication replication=true application_name=db1 "
        "sslmode=verify-full sslrootcert='/etc/ssl/root ca.crt' connect_timeout=10")
    assert parse_conninfo(upstream_conninfo(PARAMS, 'db1', dbname='postgres'))['dbname'] == 'postgres'
    standby = parse_conninfo(upstream_conninfo(PARAMS, 'db1', passfile='/var/lib/postgresql/.pgpass_replication'))
    assert standby['passfile'] == '/var/lib/postgresql/.pgpass_replication' and 'dbname' not in standby
    for text in (upstream_conninfo(PARAMS, 'db1', True), upstream_conninfo(PARAMS, 'db1', dbname='postgres')):
        assert 'password' not in text and 's3' not in text


def test_passfile_state_and_write(tmp_path):
    path = str(tmp_path / 'pgpass')
    new, state, changed = passfile_state(path, PARAMS, OWNER)
    assert (state, changed) == ('missing', True)
    assert new == pgpass_line('10.0.0.12', 5433, 'replication', 'replicator', PARAMS['password']) + '\n'
    assert passfile_diff(path, PARAMS, state) == (
        '# passfile %s: entry for 10.0.0.12:5433:replication:replicator is missing\n' % path,
        '# passfile %s: entry for 10.0.0.12:5433:replication:replicator is current\n' % path)
    assert write_passfile(path, PARAMS, OWNER) is True
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert passfile_state(path, PARAMS, OWNER)[1:] == ('current', False)
    assert write_passfile(path, PARAMS, OWNER) is False
    assert passfile_state(path, dict(PARAMS, password='new'), OWNER)[1:] == ('outdated', True)


def test_settings_plan_and_make_standby(tmp_path):
    d = str(tmp_path / 'main')
    write_cluster(d, conninfo='host=old port=5432 user=replicator')
    want = upstream_conninfo(PARAMS, 'db1', passfile='/p')
    plan = settings_plan(d, want, 'db1')
    assert plan['changed'] and plan['current']['conninfo'] == 'host=old port=5432 user=replicator'
    assert plan['before'].startswith('standby.signal: absent\n') and 'primary_slot_name = (not set)' in plan['before']
    assert "primary_slot_name = 'db1'" in plan['after'] and 'standby.signal: present' in plan['after']
    make_standby(d, want, 'db1', OWNER, plan['current'])
    cur = read_standby_settings(d)
    assert (cur['signal'], cur['conninfo'], cur['slot']) == (True, want, 'db1')
    assert settings_plan(d, want, 'db1')['changed'] is False
    # the same parameters in another order count as unchanged
    shuffled = build_conninfo(reversed(list(parse_conninfo(want).items())))
    assert shuffled != want
    assert settings_plan(d, shuffled, 'db1')['changed'] is False
    make_standby(d, want, None)  # reads the settings itself; the slot is removed
    assert read_standby_settings(d)['slot'] is None
