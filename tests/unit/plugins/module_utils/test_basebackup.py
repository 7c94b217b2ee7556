# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import (
    PREFLIGHT_COMMANDS, basebackup_args, basebackup_pids, check_params, check_upstream, clone_done_message,
    clone_plan_text, discard_clone, explain_basebackup_error, is_progress_line, read_upstream, settings_message,
    slot_exists, stop_basebackup, strip_progress, verify_backup)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import ModuleFailure

ANSWER = '7712491459935377245|1|0/17420F0|\nreplica\n150018\n10\n10\n'


def test_stop_basebackup_terminates_only_processes_writing_into_target(tmp_path):
    target = str(tmp_path / 'staging' / 'data')
    code = 'import time; time.sleep(30)'
    ours = subprocess.Popen(['pg_basebackup', '-c', code, '-D', target], executable=sys.executable)
    other = subprocess.Popen(['pg_basebackup', '-c', code, '-D', str(tmp_path / 'elsewhere')],
                             executable=sys.executable)
    try:
        for dummy in range(100):
            if ours.pid in basebackup_pids(target):
                break
            time.sleep(0.01)
        assert basebackup_pids(target) == [ours.pid]
        stop_basebackup(target, wait=5)
        assert ours.wait(timeout=5) is not None
        assert other.poll() is None
    finally:
        for p in (ours, other):
            if p.poll() is None:
                p.kill()
            p.wait()


def test_read_upstream():
    sent = []

    def sql(commands):
        sent.append(commands)
        return 0, ANSWER, ''
    info = read_upstream(sql, 'db1', 5432, 'rep')
    assert sent == [PREFLIGHT_COMMANDS]
    assert info == dict(system_identifier='7712491459935377245', timeline=1, xlogpos='0/17420F0', wal_level='replica',
                        version_num=150018, major=15, max_wal_senders=10, max_replication_slots=10)
    with pytest.raises(ModuleFailure, match='unexpected answer from the primary db1:5432'):
        read_upstream(lambda c: (0, 'garbage', ''), 'db1', 5432, 'rep')
    with pytest.raises(ModuleFailure, match='preflight check failed, nothing was changed: .*timed out'):
        read_upstream(lambda c: (2, '', 'timeout expired'), 'db1', 5432, 'rep')


@pytest.mark.parametrize('change, slot, expect', [
    (dict(major=12), None, 'PostgreSQL 13 and newer'),
    (dict(wal_level='minimal'), None, 'wal_level = replica'),
    (dict(max_wal_senders=0), None, 'max_wal_senders = 0'),
    (dict(max_replication_slots=0), 's1', 'max_replication_slots = 0'),
])
def test_check_upstream(change, slot, expect):
    info = read_upstream(lambda c: (0, ANSWER, ''), 'db1', 5432, 'rep')
    check_upstream(info, 'db1:5432', 's1')
    info.update(change)
    with pytest.raises(ModuleFailure, match=expect):
        check_upstream(info, 'db1:5432', slot)


def test_slot_exists():
    assert slot_exists(lambda c: (0, 'physical|0/3000000|1\n', ''), 's1', 'db1:5432') is True
    assert slot_exists(lambda c: (0, '||\n', ''), 's1', 'db1:5432') is False
    with pytest.raises(ModuleFailure, match='is a logical slot'):
        slot_exists(lambda c: (0, 'logical|0/3000000|1\n', ''), 's1', 'db1:5432')
    with pytest.raises(ModuleFailure, match='checking slot "s1" on the primary db1:5432 failed'):
        slot_exists(lambda c: (1, '', 'ERROR: syntax error'), 's1', 'db1:5432')


@pytest.mark.parametrize('args, expect', [
    (('Bad-Name', 'pw', None), 'invalid slot name'),
    (('s1', 'two\nlines', None), 'line break'),
    (('s1', 'pw', '100 MB'), 'invalid max_rate'),
])
def test_check_params(args, expect):
    check_params('s1', 'pw', '32768k')
    with pytest.raises(ModuleFailure, match=expect):
        check_params(*args)


def test_basebackup_args_never_create_a_slot():
    args = basebackup_args('/b', '/t', 'host=db1', 'stream', 'fast', '100M', 's1')
    assert args == ['/b/pg_basebackup', '-D', '/t', '-d', 'host=db1', '-X', 'stream', '-c', 'fast', '--no-password',
                    '-r', '100M', '-S', 's1']
    assert '-S' not in basebackup_args('/b', '/t', 'host=db1', 'fetch', 'spread')


def test_basebackup_args_progress():
    assert '--progress' not in basebackup_args('/b', '/t', 'host=db1', 'stream', 'fast', '100M', 's1')
    args = basebackup_args('/b', '/t', 'host=db1', 'stream', 'fast', None, 's1', progress=True)
    assert args == ['/b/pg_basebackup', '-D', '/t', '-d', 'host=db1', '-X', 'stream', '-c', 'fast', '--no-password',
                    '-S', 's1', '--progress']
    assert '-v' not in args and '--verbose' not in args  # the progress lines then carry file names: not parsed


@pytest.mark.parametrize('line', [
    'waiting for checkpoint',
    '     0/1048576 kB (0%), 0/1 tablespace',  # the done figure is padded to the width of the total
    '123456/1048576 kB (11%), 0/1 tablespace',
    '1048576/1048576 kB (100%), 1/1 tablespace\n',
    '20/300 kB (6%), 1/3 tablespaces',
    '30/30 kB (100%), 1/1 tablespace (...base/16384/16385         )',  # --verbose: with a file name
    '30/30 kB (100%), 1/1 tablespace\r',  # a terminal's line
])
def test_is_progress_line(line):
    assert is_progress_line(line)


@pytest.mark.parametrize('line', [
    'pg_basebackup: error: could not connect to server',
    'pg_basebackup: waiting for checkpoint to complete',
    'pg_basebackup: warning: 30/30 kB (100%), 1/1 tablespace',
    '123 kB (11%), 0/1 tablespace',
    '',
])
def test_is_not_progress_line(line):
    assert not is_progress_line(line)


def test_strip_progress_keeps_the_messages_as_they_were():
    messages = ('pg_basebackup: error: could not read COPY data: server closed the connection unexpectedly\n'
                '\tThis probably means the server terminated abnormally\n'
                'pg_basebackup: removing contents of data directory "/d"\n')
    first, rest = messages.split('\t', 1)
    # the progress lines come first, and between messages (the WAL streaming child writes to the same stderr)
    err = ('waiting for checkpoint\n     0/1048576 kB (0%), 0/1 tablespace\n'
           '123456/1048576 kB (11%), 0/1 tablespace\n' + first + '123456/1048576 kB (11%), 0/1 tablespace\n\t' + rest)
    assert strip_progress(err) == messages
    # a terminal's progress lines (carriage returns) go as well; so does everything of a run without messages
    assert strip_progress('waiting for checkpoint\r  0/9 kB (0%), 0/1 tablespace\r9/9 kB (100%), 1/1 tablespace\n'
                          'pg_basebackup: error: boom\n') == 'pg_basebackup: error: boom\n'
    assert strip_progress('waiting for checkpoint\n9/9 kB (100%), 1/1 tablespace\n') == ''
    assert strip_progress('') == ''
    assert strip_progress(messages) == messages
    # what the module then says is what it said for the same messages without --progress
    assert explain_basebackup_error(strip_progress(err), 1, None, '/x', 'db1', 5432, 'rep') == \
        explain_basebackup_error(messages, 1, None, '/x', 'db1', 5432, 'rep')


@pytest.mark.parametrize('err, rc, expect', [
    ('', -9, 'killed by SIGKILL (signal 9)'),
    ('Killed', 137, 'killed by SIGKILL (signal 9)'),
    ('pg_basebackup: error: replication slot "s1" does not exist', 1, 'must exist on the upstream server'),
    ('pg_basebackup: error: replication slot "s1" is active for pid 77', 1, 'in use by another connection'),
    ('pg_basebackup: error: could not write: No space left on device', 1, 'ran out of space'),
    ('pg_basebackup: error: something', 1, 'pg_basebackup failed: pg_basebackup: error: something'),
])
def test_explain_basebackup_error(err, rc, expect):
    assert expect in explain_basebackup_error(err, rc, 's1', '/x/.main.hotstandby-staging', 'db1', 5432, 'rep')


def test_verify_backup(tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    target = tmp_path / 'data'
    target.mkdir()
    calls = []

    def run(args):
        calls.append(args)
        return (1, '', 'damaged') if len(calls) > 1 else (0, 'ok', '')
    assert verify_backup(run, str(bindir), str(target), enabled=False) == (None, 'verification disabled (verify: false)')
    assert verify_backup(run, str(bindir), str(target))[0] is None  # no pg_verifybackup
    tool = bindir / 'pg_verifybackup'
    tool.write_text('#!/bin/sh\n')
    tool.chmod(0o755)
    assert 'no backup_manifest' in verify_backup(run, str(bindir), str(target))[1]
    (target / 'backup_manifest').write_text('{}')
    assert verify_backup(run, str(bindir), str(target)) == (True, 'backup successfully verified')
    assert verify_backup(run, str(bindir), str(target)) == (False, 'damaged')
    assert calls[0] == [str(tool), str(target)]


def test_discard_clone(tmp_path):
    staging = tmp_path / '.main.hotstandby-staging'
    (staging / 'data' / 'base').mkdir(parents=True)
    mount = tmp_path / 'main'
    (mount / 'base').mkdir(parents=True)
    (mount / 'PG_VERSION').write_text('15')
    discard_clone(str(staging), str(mount), in_place=True)
    assert not staging.exists() and mount.is_dir() and os.listdir(str(mount)) == []
    discard_clone(str(staging), str(mount), in_place=False, ignore_errors=True)  # nothing left: fine


def test_psql_args():
    from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import psql_args
    assert psql_args('/b/psql', 'host=h replication=true', ['IDENTIFY_SYSTEM', 'SHOW wal_level']) == [
        '/b/psql', '-X', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', 'host=h replication=true',
        '-c', 'IDENTIFY_SYSTEM', '-c', 'SHOW wal_level']


def test_read_timeline():
    from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import read_timeline
    sent = []
    # what psql -X -A -t printed for a real 15.18 on timeline 3 (the content ends with a newline, then the row's)
    answer = ('on\n00000003.history|1\t0/40000A0\tno recovery target specified\n\n'
              '2\t0/4001010\tno recovery target specified\n\n')

    def sql(commands):
        sent.append(commands)
        return 0, answer if len(commands) > 1 else 'off\n', ''
    assert read_timeline(sql, 3, 'db2:5432') == (True, '1\t0/40000A0\tno recovery target specified\n\n'
                                                       '2\t0/4001010\tno recovery target specified\n\n')
    assert read_timeline(sql, 1, 'db2:5432') == (False, '')
    assert sent == [['SHOW full_page_writes', 'TIMELINE_HISTORY 3'], ['SHOW full_page_writes']]
    hexed = 'on\n00000002.history|\\x' + '1\t0/40000A0\treason\n'.encode().hex() + '\n'
    assert read_timeline(lambda c: (0, hexed, ''), 2, 'db2') == (True, '1\t0/40000A0\treason\n')
    with pytest.raises(ModuleFailure, match='reading the timeline history of the upstream db2 failed'):
        read_timeline(lambda c: (1, '', 'ERROR:  could not open file "pg_wal/00000002.history"'), 2, 'db2')
    with pytest.raises(ModuleFailure, match='unexpected answer'):
        read_timeline(lambda c: (0, 'on\n', ''), 2, 'db2')


def kept(**changes):
    plan = dict(settings_changed=False, passfile_changed=False, cleaned_staging=False, followed=False,
                previous_upstream=None)
    plan.update(changes)
    return plan


@pytest.mark.parametrize('plan, done, expect', [
    (kept(), False, '/d is already a standby of p:5432; nothing to do'),
    (kept(settings_changed=True, passfile_changed=True), False,
     '/d is already a standby of p:5432; standby settings would be rewritten (reload the server); '
     'passfile /pf would be written'),
    (kept(settings_changed=True, cleaned_staging=True), True,
     '/d is already a standby of p:5432; standby settings were rewritten (reload the server); '
     'leftover staging directory removed'),
    (kept(settings_changed=True, followed=True, previous_upstream='old:5432'), False,
     '/d is a standby of the same system (identifier 42) as p:5432; standby settings would be rewritten; '
     'would be re-pointed from old:5432 (reload the server)'),
    (kept(settings_changed=True, followed=True, previous_upstream='old:5432'), True,
     '/d is a standby of the same system (identifier 42) as p:5432; standby settings were rewritten; '
     're-pointed from old:5432 (reload the server)'),
])
def test_settings_message(plan, done, expect):
    assert settings_message(plan, '/d', '/pf', 'p:5432', '42', done) == expect


@pytest.mark.parametrize('case, found, moved_to, previous, running, before, msg', [
    ('missing', None, None, None, False, 'does not exist', 'would clone p:5432 (PostgreSQL 15) into /d'),
    ('empty', None, None, None, False, 'empty', 'would clone p:5432 (PostgreSQL 15) into /d'),
    ('pristine', None, '/d.moved-X', None, True, 'pristine cluster without user data (will be moved to /d.moved-X)',
     'would clone p:5432 (PostgreSQL 15) into /d after moving the pristine data directory to /d.moved-X; '
     'a server is running there and must be stopped first'),
    ('foreign', 'a cluster of system 7', '/d.moved-X', None, False, 'a cluster of system 7 (will be moved to /d.moved-X)',
     'would clone p:5432 (PostgreSQL 15) into /d after moving the foreign data directory to /d.moved-X'),
    ('standby', None, '/d.moved-X', None, False, 'standby of p:5432, cloned again (reclone; will be moved to /d.moved-X)',
     'would clone p:5432 (PostgreSQL 15) into /d after moving the standby data directory to /d.moved-X'),
    ('standby', None, '/d.moved-X', 'old:5432', False,
     'standby of old:5432, cloned again (reclone; will be moved to /d.moved-X)',
     'would clone p:5432 (PostgreSQL 15) into /d after moving the standby data directory to /d.moved-X'),
])
def test_clone_plan_text(case, found, moved_to, previous, running, before, msg):
    assert clone_plan_text(case, '/d', 'p:5432', '42', 15, found, moved_to, previous, running) == (
        'data directory /d: %s\n' % before, 'data directory /d: clone of p:5432 (system identifier 42)\n', msg)


def test_clone_done_message():
    assert clone_done_message('p:5432', 15, 1024, 2.345, '/d', 'empty', None) == (
        'cloned p:5432 (PostgreSQL 15, 1024 bytes in 2.3 s) into /d; start the server')
    assert clone_done_message('p:5432', 15, 1024, 2.0, '/d', 'foreign', '/d.moved-X') == (
        'cloned p:5432 (PostgreSQL 15, 1024 bytes in 2.0 s) into /d (the previous foreign data directory was moved '
        'to /d.moved-X); start the server')
