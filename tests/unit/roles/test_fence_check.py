# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The start-time fencing guard, roles/postgres/files/hotstandby_fence_check.py (it runs on the nodes: loaded from
its path, no ansible_collections import in it)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import json
import os
import subprocess

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils.controldata import parse_controldata
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.controldata_samples import (
    PG13_SHUT_DOWN, PG15_REWOUND, PG15_SHUT_DOWN, PG17_SHUT_DOWN_IN_RECOVERY)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SCRIPT = os.path.join(ROOT, 'roles', 'postgres', 'files', 'hotstandby_fence_check.py')

_spec = importlib.util.spec_from_file_location('hotstandby_fence_check', SCRIPT)
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)

SYSID = '7714269775029075042'
LOCAL = (SYSID, 2)
DB2 = dict(name='db2', host='10.0.0.2', port=5432)
DB3 = dict(name='db3', host='10.0.0.3', port=5433)


def answer(peer, timeline, system_id=SYSID):
    return dict(peer=peer, system_id=system_id, timeline=timeline)


def error(peer, text='Connection refused'):
    return dict(peer=peer, error=text)


class Proc(object):
    def __init__(self, returncode=0, stdout='', stderr=''):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def make_config(tmp_path, peers=(DB2, DB3), strict=False, timeout=5):
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    return dict(cluster='15-main', data_dir=str(data_dir), bin_dir='/usr/lib/postgresql/15/bin',
                psql='/usr/lib/postgresql/15/bin/psql', peers=[dict(p) for p in peers], user='replicator',
                passfile='/var/lib/postgresql/15/.main.hotstandby-fence.pgpass', sslmode='prefer', sslrootcert=None,
                timeout=timeout, strict=strict, marker=str(tmp_path / 'hotstandby-fenced'))


# pg_controldata

@pytest.mark.parametrize('text', [PG13_SHUT_DOWN, PG15_SHUT_DOWN, PG15_REWOUND, PG17_SHUT_DOWN_IN_RECOVERY])
def test_controldata_reads_what_module_utils_reads(text):
    cd = parse_controldata(text)
    assert fc.parse_controldata(text) == (cd['system_identifier'], cd['checkpoint_timeline'])


def test_controldata_values():
    assert fc.parse_controldata(PG13_SHUT_DOWN) == ('6944164352281870378', 1)


@pytest.mark.parametrize('text, match', [
    ('', 'printed no Database system identifier'),
    ('Datenbanksystemidentifikation:  6944164352281870378\n', 'C locale'),
    (PG13_SHUT_DOWN.replace("Latest checkpoint's TimeLineID:       1", "Latest checkpoint's TimeLineID:       x"),
     'not understood'),
    (PG13_SHUT_DOWN.replace('6944164352281870378', 'abc'), 'not understood'),
])
def test_controldata_malformed(text, match):
    with pytest.raises(ValueError, match=match):
        fc.parse_controldata(text)


# IDENTIFY_SYSTEM

def test_identify_system():
    assert fc.parse_identify_system('7714269775029075042|3|0/3000148|\n') == (SYSID, 3)
    assert fc.parse_identify_system('\n7714269775029075042|12|0/3000148|postgres\n\n') == (SYSID, 12)


@pytest.mark.parametrize('text', ['', 'hello', '7714269775029075042|x|0/1|', 'abc|3|0/1|', '1|2|3|\n4|5|6|',
                                  '7714269775029075042|3'])
def test_identify_system_malformed(text):
    with pytest.raises(ValueError):
        fc.parse_identify_system(text)


# the decision

def test_standby_signal_starts_even_with_marker():
    code, msg = fc.decide_early('15-main', marker_text='{"reason": "x"}', signal_file='standby.signal')
    assert code == 0 and 'standby.signal' in msg and 'standby' in msg


def test_marker_refuses():
    marker = json.dumps(dict(fenced_by='hotstandby.postgresql failover.yml', at='2026-12-01T10:00:00Z',
                             new_primary='db2', reason='this node was the primary when db2 was promoted'))
    code, msg = fc.decide_early('15-main', marker_text=marker)
    assert code == 1
    assert 'refusing to start 15-main' in msg and 'new primary db2' in msg and '2026-12-01T10:00:00Z' in msg
    assert 'run site.yml with the updated inventory to rejoin it as a standby' in msg


def test_marker_as_plain_text():
    code, msg = fc.decide_early('15-main', marker_text='fenced by hand\nafter the outage\n')
    assert code == 1 and 'fenced by hand after the outage' in msg


def test_nothing_early():
    assert fc.decide_early('15-main') is None


def test_ahead_peer_same_system_refuses():
    code, msg = fc.decide('15-main', LOCAL, [answer(DB2, 3), error(DB3)])
    assert code == 1
    assert msg.startswith('refusing to start 15-main as a primary: db2 (10.0.0.2:5432) is on timeline 3 of system '
                          + SYSID + ", this node's last checkpoint is on timeline 2: a failover happened")
    assert 'names db2 the primary' in msg


def test_highest_ahead_peer_is_named():
    code, msg = fc.decide('15-main', LOCAL, [answer(DB2, 3), answer(DB3, 4)])
    assert code == 1 and 'db3 (10.0.0.3:5433) is on timeline 4' in msg


def test_ahead_peer_of_another_system_is_ignored():
    code, msg = fc.decide('15-main', LOCAL, [answer(DB2, 9, system_id='1234')])
    assert code == 0 and 'another system 1234' in msg and 'starting' in msg


def test_equal_timeline_starts():
    code, msg = fc.decide('15-main', LOCAL, [answer(DB2, 2), answer(DB3, 1)])
    assert code == 0 and msg.startswith('no peer is ahead of 15-main') and 'db2 (10.0.0.2:5432) timeline 2' in msg


def test_some_answer_some_not_starts_and_names_the_silent():
    code, msg = fc.decide('15-main', LOCAL, [answer(DB2, 2), error(DB3, 'timeout expired')], strict=True)
    assert code == 0 and 'no answer from db3 (10.0.0.3:5433): timeout expired' in msg


def test_no_answer_starts():
    code, msg = fc.decide('15-main', LOCAL, [error(DB2), error(DB3, 'no pg_hba.conf entry')])
    assert code == 0
    assert msg.startswith('no peer answered, starting 15-main')
    assert 'db2 (10.0.0.2:5432): Connection refused' in msg and 'db3 (10.0.0.3:5433): no pg_hba.conf entry' in msg


def test_no_answer_strict_refuses():
    code, msg = fc.decide('15-main', LOCAL, [error(DB2), error(DB3)], strict=True)
    assert code == 1 and 'postgres_fence_strict' in msg and 'Bring a peer up' in msg
    assert 'systemctl edit postgresql@15-main.service' in msg


def test_no_peers_starts():
    assert fc.decide('15-main', LOCAL, [], strict=True)[0] == 0


# asking a peer

def test_peer_conninfo_has_no_password():
    config = dict(user='replicator', passfile='/var/lib/postgresql/15/.p', sslmode='verify-full',
                  sslrootcert='/etc/postgresql/15/main/tls/ca.crt')
    conninfo = fc.peer_conninfo(DB2, config, 4)
    assert conninfo == ('host=10.0.0.2 port=5432 user=replicator dbname=replication replication=true '
                        'passfile=/var/lib/postgresql/15/.p connect_timeout=4 sslmode=verify-full '
                        'sslrootcert=/etc/postgresql/15/main/tls/ca.crt application_name=hotstandby-fence')
    assert 'password' not in conninfo.replace('passfile', '')
    assert fc.conninfo_quote("a b'c\\") == "'a b\\'c\\\\'"


def test_ask_peer_runs_psql_with_an_argument_list(monkeypatch):
    monkeypatch.setenv('PGPASSWORD', 'secret')
    calls = []

    def run(argv, **kw):
        calls.append((argv, kw))
        return Proc(stdout='%s|3|0/3000148|\n' % SYSID)

    config = dict(psql='/usr/bin/psql', user='r', passfile='/p', timeout=5)
    result = fc.ask_peer(DB2, config, deadline=100.0, run=run, clock=lambda: 95.0)
    assert result == answer(DB2, 3)
    argv, kw = calls[0]
    assert argv[0] == '/usr/bin/psql' and argv[-2:] == ['-c', 'IDENTIFY_SYSTEM'] and 'connect_timeout=5' in argv[-3]
    assert 'PGPASSWORD' not in kw['env'] and kw['env']['LC_ALL'] == 'C' and kw['timeout'] == 6


def test_ask_peer_timeout():
    def run(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw['timeout'])

    result = fc.ask_peer(DB2, dict(psql='psql', user='r', passfile='/p', timeout=5), 100.0, run=run,
                         clock=lambda: 95.0)
    assert result == error(DB2, 'no answer within 5s')


def test_ask_peer_missing_psql():
    def run(argv, **kw):
        raise OSError(2, 'No such file or directory')

    result = fc.ask_peer(DB2, dict(psql='/nope/psql', user='r', passfile='/p', timeout=5), 100.0, run=run,
                         clock=lambda: 95.0)
    assert result['error'].startswith('cannot run /nope/psql')


def test_ask_peer_final_error_is_not_retried():
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        return Proc(2, stderr='psql: error: connection to server at "10.0.0.2", port 5432 failed: FATAL:  no '
                              'pg_hba.conf entry for replication connection from host "10.0.0.1", user "r"\n')

    result = fc.ask_peer(DB2, dict(psql='psql', user='r', passfile='/p', timeout=5), 100.0, run=run,
                         clock=lambda: 95.0)
    assert len(calls) == 1 and 'no pg_hba.conf entry' in result['error'] and not result['error'].startswith('psql')


def test_ask_peer_retries_a_refused_connection_until_it_answers():
    now = [90.0]
    replies = [Proc(2, stderr='psql: error: connection to server at "10.0.0.2", port 5432 failed: Connection '
                              'refused\n\tIs the server running on that host and accepting TCP/IP connections?\n'),
               Proc(2, stderr='psql: error: FATAL:  the database system is starting up\n'),
               Proc(stdout='%s|3|0/3000148|\n' % SYSID)]

    def sleep(seconds):
        now[0] += seconds

    result = fc.ask_peer(DB2, dict(psql='psql', user='r', passfile='/p', timeout=10), 100.0,
                         run=lambda argv, **kw: replies.pop(0), clock=lambda: now[0], sleep=sleep)
    assert result == answer(DB2, 3) and now[0] == 92.0


def test_ask_peer_gives_up_at_the_deadline():
    now = [90.0]

    def sleep(seconds):
        now[0] += seconds

    result = fc.ask_peer(DB2, dict(psql='psql', user='r', passfile='/p', timeout=10), 100.0,
                         run=lambda argv, **kw: Proc(2, stderr='psql: error: ... failed: Connection refused\n'),
                         clock=lambda: now[0], sleep=sleep)
    assert result['error'].endswith('Connection refused') and 99.0 <= now[0] <= 100.0


def test_ask_peer_malformed_answer():
    result = fc.ask_peer(DB2, dict(psql='psql', user='r', passfile='/p', timeout=5), 100.0,
                         run=lambda argv, **kw: Proc(stdout='garbage\n'), clock=lambda: 95.0)
    assert 'not understood' in result['error']


def test_ask_peers_in_parallel_and_bounded():
    def ask(peer, config, deadline):
        if peer is config['peers'][1]:
            import time
            time.sleep(30)  # never answers in time: a daemon thread, left behind
        return answer(peer, 2)

    config = dict(peers=[dict(DB2), dict(DB3)], timeout=1, _local=LOCAL)
    answers = fc.ask_peers(config['peers'], config, ask=ask)
    assert answers[0] == answer(config['peers'][0], 2)
    assert answers[1] == error(config['peers'][1], 'no answer within 1s')


def test_ask_peers_stops_once_one_is_ahead():
    def ask(peer, config, deadline):
        if peer is config['peers'][0]:
            import time
            time.sleep(30)
        return answer(peer, 3)

    config = dict(peers=[dict(DB2), dict(DB3)], timeout=20, _local=LOCAL)
    answers = fc.ask_peers(config['peers'], config, ask=ask)
    assert answers == [answer(config['peers'][1], 3)]


def test_ask_peers_reports_a_guard_bug_as_an_error():
    def ask(peer, config, deadline):
        raise KeyError('oops')

    config = dict(peers=[dict(DB2)], timeout=1, _local=LOCAL)
    assert fc.ask_peers(config['peers'], config, ask=ask)[0]['error'].startswith('guard error')


# the whole check

def controldata_run(text=PG15_SHUT_DOWN, returncode=0):
    def run(argv, **kw):
        assert argv[0].endswith('/pg_controldata') and kw['env']['LC_ALL'] == 'C'
        return Proc(returncode, stdout=text, stderr='pg_controldata: error: could not open file\n')
    return run


def test_check_standby_signal_asks_nobody(tmp_path):
    config = make_config(tmp_path)
    (tmp_path / 'data' / 'standby.signal').write_text('')
    (tmp_path / 'hotstandby-fenced').write_text('{}')

    def never(*a, **kw):
        raise AssertionError('must not run')

    assert fc.check(config, run=never, ask=never)[0] == 0


def test_check_marker(tmp_path):
    config = make_config(tmp_path)
    (tmp_path / 'hotstandby-fenced').write_text('{"new_primary": "db2"}')
    code, msg = fc.check(config, run=controldata_run())
    assert code == 1 and 'fenced' in msg


def test_check_refuses_behind_a_promoted_peer(tmp_path):
    config = make_config(tmp_path)
    code, msg = fc.check(config, run=controldata_run(),
                         ask=lambda peer, config, deadline: answer(peer, 2 if peer['name'] == 'db2' else 1))
    # PG15_SHUT_DOWN's checkpoint is on timeline 1: db2 on 2 is ahead
    assert code == 1 and 'db2 (10.0.0.2:5432) is on timeline 2' in msg


def test_check_starts_without_a_controldata(tmp_path):
    code, msg = fc.check(make_config(tmp_path), run=controldata_run('', returncode=1))
    assert code == 0 and 'cannot judge' in msg
    strict = tmp_path / 'strict'
    strict.mkdir()
    code, msg = fc.check(make_config(strict, strict=True), run=controldata_run('', returncode=1))
    assert code == 1 and 'postgres_fence_strict' in msg


def test_main_reads_the_config_and_writes_stderr(tmp_path, capsys, monkeypatch):
    config = make_config(tmp_path, peers=())
    path = tmp_path / 'hotstandby-fence.json'
    path.write_text(json.dumps(config))
    monkeypatch.setattr(fc.subprocess, 'run', controldata_run())
    assert fc.main([str(path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith('hotstandby fence: 15-main has no peers to ask')


def test_main_bad_config_starts(tmp_path, capsys):
    path = tmp_path / 'hotstandby-fence.json'
    path.write_text('{"cluster": "15-main"}')
    assert fc.main([str(path)]) == 0
    assert 'lacks data_dir' in capsys.readouterr().err
    assert fc.main([]) == 2
