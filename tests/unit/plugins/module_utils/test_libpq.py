# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils import libpq
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import (
    build_conninfo, conninfo_points_at, conninfo_quote, conninfo_without_password, explain_libpq_error,
    parse_conninfo, pgpass_escape, pgpass_line, pgpass_split, pgpass_state, pgpass_update, sweep_temp_passfiles)


@pytest.mark.parametrize('value, expected', [
    ('10.0.0.1', '10.0.0.1'),
    ('', "''"),
    ('a b', "'a b'"),
    ("o'neil", "'o\\'neil'"),
    ('back\\slash', "'back\\\\slash'"),
    ('/var/lib/postgresql/.pgpass_replication', '/var/lib/postgresql/.pgpass_replication'),
])
def test_conninfo_quote(value, expected):
    assert conninfo_quote(value) == expected


@pytest.mark.parametrize('value', ['plain', 'with space', "qu'ote", 'back\\slash', "all ' \\ = @ :", ''])
def test_conninfo_roundtrip(value):
    ci = build_conninfo([('host', 'h'), ('application_name', value), ('port', 5432)])
    assert parse_conninfo(ci) == {'host': 'h', 'application_name': value, 'port': '5432'}


def test_parse_conninfo_forms():
    assert parse_conninfo("host = db1  port=5433 user='rep user'") == {
        'host': 'db1', 'port': '5433', 'user': 'rep user'}
    assert parse_conninfo('postgresql://rep@db1:5433/replication?sslmode=require') == {
        'user': 'rep', 'host': 'db1', 'port': '5433', 'dbname': 'replication', 'sslmode': 'require'}
    with pytest.raises(ValueError):
        parse_conninfo('host')
    with pytest.raises(ValueError):
        parse_conninfo("host='unterminated")


def test_parse_conninfo_uri_ipv6_and_password():
    assert parse_conninfo('postgres://rep:secret@[fd00::1]:5433') == {'user': 'rep', 'host': 'fd00::1',
                                                                      'port': '5433'}


@pytest.mark.parametrize('text, expected', [
    ("host=db1 port=5432 user=rep password='s3 cret' application_name=db2",
     'host=db1 port=5432 user=rep application_name=db2'),
    ("host=db1 password=x passfile='/var/lib/postgresql/my pass'", "host=db1 passfile='/var/lib/postgresql/my pass'"),
    ('postgresql://rep:secret@db1:5433/replication?password=other&sslmode=require',
     'user=rep port=5433 host=db1 dbname=replication sslmode=require'),
    ('host=db1', 'host=db1'),
    ('', ''),
])
def test_conninfo_without_password(text, expected):
    assert conninfo_without_password(text) == expected
    assert 'secret' not in conninfo_without_password(text)


def test_conninfo_without_password_malformed():
    with pytest.raises(ValueError):
        conninfo_without_password("host='unterminated password=x")


def test_conninfo_points_at():
    assert conninfo_points_at('host=DB1 port=5432 user=rep', 'db1', 5432)
    assert conninfo_points_at('hostaddr=10.0.0.11', '10.0.0.11', 5432)
    assert not conninfo_points_at('host=db1 port=5433', 'db1', 5432)
    assert not conninfo_points_at("host='broken", 'db1', 5432)
    assert not conninfo_points_at(None, 'db1', 5432)


@pytest.mark.parametrize('password, escaped', [
    ("p'a\"s\\s:w @rd", "p'a\"s\\\\s\\:w @rd"),
    ('a:b', 'a\\:b'),
    ('a\\b', 'a\\\\b'),
    ('user@host pw', 'user@host pw'),
    ('\\:', '\\\\\\:'),
])
def test_pgpass_escaping(password, escaped):
    assert pgpass_escape(password) == escaped
    line = pgpass_line('db:1', 5432, 'replication', 'rep', password)
    assert pgpass_split(line) == ['db:1', '5432', 'replication', 'rep', password]


def test_pgpass_update_states():
    new, state = pgpass_update(None, 'db1', 5432, 'replication', 'rep', 'pw')
    assert (new, state) == ('db1:5432:replication:rep:pw\n', 'missing')
    assert pgpass_update(new, 'db1', 5432, 'replication', 'rep', 'pw') == (new, 'current')
    old = '# mine\nother:5432:*:bob:x\ndb1:5432:replication:rep:old\n'
    new, state = pgpass_update(old, 'db1', 5432, 'replication', 'rep', 'n:w')
    assert state == 'outdated'
    assert new == '# mine\nother:5432:*:bob:x\ndb1:5432:replication:rep:n\\:w\n'


def test_pgpass_state_mode_and_owner(tmp_path):
    path = str(tmp_path / 'pass')
    assert pgpass_state(path, 'db1', 5432, 'replication', 'rep', 'pw')[1:] == ('missing', True)
    with open(path, 'w') as f:
        f.write('db1:5432:replication:rep:pw\n')
    os.chmod(path, 0o644)
    assert pgpass_state(path, 'db1', 5432, 'replication', 'rep', 'pw')[1:] == ('current', True)
    os.chmod(path, 0o600)
    assert pgpass_state(path, 'db1', 5432, 'replication', 'rep', 'pw')[1:] == ('current', False)
    assert pgpass_state(path, 'db1', 5432, 'replication', 'rep', 'pw', uid=os.getuid() + 1)[1:] == ('current', True)


def test_sweep_temp_passfiles(tmp_path):
    dead = subprocess.Popen(['true'])
    dead.wait()
    stale = tmp_path / ('%s%d-abc' % (libpq.TMP_PASS_PREFIX, dead.pid))
    live = tmp_path / ('%s%d-abc' % (libpq.TMP_PASS_PREFIX, os.getpid()))
    unrelated = tmp_path / '.pgpass'
    for f in (stale, live, unrelated):
        f.write_text('x')
    sweep_temp_passfiles(str(tmp_path))
    assert not stale.exists() and live.exists() and unrelated.exists()


CONN = 'psql: error: connection to server at "10.0.0.11", port 5432 failed: '


@pytest.mark.parametrize('stderr, expect', [
    (CONN + 'FATAL:  password authentication failed for user "replicator"', 'postgres_replication_password'),
    (CONN + 'FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.12"', 'host replication'),
    (CONN + 'timeout expired', 'timed out'),
    ('something else entirely', 'connecting to the primary 10.0.0.11:5432 as "replicator" failed'),
])
def test_explain_libpq_error(stderr, expect):
    assert expect in explain_libpq_error(stderr, '10.0.0.11', 5432, 'replicator')
