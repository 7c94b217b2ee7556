# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess
from collections import namedtuple

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils import rejoin
from ansible_collections.hotstandby.postgresql.plugins.module_utils.rejoin import (
    common_ancestor, copy_data_dir, copy_problem, decide, explain_rewind_error, local_ranges, missing_wal,
    move_signal_files, moved_signal_path, parse_timeline_history, rewind_args, rewind_did_nothing, timeline_ranges)

SYSID = '7714269775029075042'
# as TIMELINE_HISTORY sent them (a real 15.18): the server copies the parent's file and appends "\n<line>\n"
HISTORY_2 = '1\t0/40000A0\tno recovery target specified\n'
HISTORY_3 = '1\t0/40000A0\tno recovery target specified\n\n2\t0/4001010\tno recovery target specified\n'
# another timeline 3, made by a second promotion from timeline 2 (timeline IDs collide)
HISTORY_3_OTHER = '1\t0/40000A0\tno recovery target specified\n\n2\t0/117C8780\tno recovery target specified\n'
# a timeline 3 that forked from timeline 1 later than timeline 2 did (two standbys promoted)
HISTORY_3_SIBLING = '1\t0/5000000\tno recovery target specified\n'


def node(**kwargs):
    """A stopped node: by default a former primary, shut down cleanly at 0/4000028 on timeline 1."""
    base = dict(system_identifier=SYSID, major=15, timeline=1, end_lsn='0/4000028', end_is_record_start=True,
                wal_log_hints=True, data_checksum_version=0)
    base.update(kwargs)
    return base


def upstream(**kwargs):
    base = dict(system_identifier=SYSID, major=15, timeline=2, xlogpos='0/5000000', full_page_writes=True)
    base.update(kwargs)
    return base


def h(text):
    return parse_timeline_history(text)


# -- timeline histories ------------------------------------------------------------

def test_parse_timeline_history():
    assert h(HISTORY_3) == [
        dict(timeline=1, switchpoint='0/40000A0', reason='no recovery target specified'),
        dict(timeline=2, switchpoint='0/4001010', reason='no recovery target specified')]
    assert h('# comment\n  \n1\t0/0400_00A0\n'.replace('_', '')) == [
        dict(timeline=1, switchpoint='0/40000A0', reason='')]
    assert h('1\t0/3000060\tbefore 2026-01-26 10:00:00+00\n2 0/5000000 at restore point "a b"\n')[1]['reason'] == \
        'at restore point "a b"'
    assert h('') == [] and h(None) == []


@pytest.mark.parametrize('text', ['x\t0/1\n', '1\n', '1\tnot-an-lsn\n', '2\t0/1\n1\t0/2\n'])
def test_parse_timeline_history_refuses_garbage(text):
    with pytest.raises(ValueError):
        parse_timeline_history(text)


def test_timeline_ranges_and_common_ancestor():
    theirs = timeline_ranges(h(HISTORY_3), 3)
    assert theirs == [(1, 0, 0x40000A0), (2, 0x40000A0, 0x4001010), (3, 0x4001010, None)]
    assert common_ancestor([(1, 0, None)], theirs) == (1, 0x40000A0)
    assert common_ancestor(theirs, theirs) == (3, None)
    assert common_ancestor(timeline_ranges(h(HISTORY_3_OTHER), 3), theirs) == (2, 0x4001010)
    assert common_ancestor([(5, 0, None)], theirs) is None
    assert local_ranges(2, None, theirs) == [(1, 0, 0x40000A0), (2, 0x40000A0, None)]
    assert local_ranges(4, None, theirs) is None
    assert local_ranges(1, None, theirs) == [(1, 0, None)]


# -- decide() ---------------------------------------------------------------------------

# (id, local, upstream, upstream history, local history, method, fork_lsn, discarded (start, end, bytes))
CASES = [
    ('other cluster', node(system_identifier='7000000000000000001'), upstream(), HISTORY_2, None,
     'clone', None, (None, None, None)),
    ('other major version', node(major=13), upstream(), HISTORY_2, None, 'clone', None, (None, None, None)),
    ('upstream on an older timeline', node(timeline=3), upstream(), HISTORY_2, None, 'refuse', None, (None, None, 0)),
    ('same timeline, behind', node(), upstream(timeline=1), '', None, 'none', None, (None, None, 0)),
    ('same timeline, at the upstream position', node(end_lsn='0/5000000'), upstream(timeline=1), '', None,
     'none', None, (None, None, 0)),
    ('same timeline, ahead', node(end_lsn='0/5000100'), upstream(timeline=1), '', None,
     'clone', None, ('0/5000000', '0/5000100', 0x100)),
    ('clean switchover: the checkpoint starts before the switchpoint', node(), upstream(), HISTORY_2, None,
     'none', '0/40000A0', (None, None, 0)),
    ('the new primary missed the shutdown checkpoint', node(end_lsn='0/40000A0'), upstream(), HISTORY_2, None,
     'rewind', '0/40000A0', ('0/40000A0', '0/40000A0', 0)),
    ('former primary went on writing', node(end_lsn='0/4622038'), upstream(), HISTORY_2, None,
     'rewind', '0/40000A0', ('0/40000A0', '0/4622038', 0x4622038 - 0x40000A0)),
    ('standby replayed up to the switchpoint', node(end_lsn='0/40000A0', end_is_record_start=False), upstream(),
     HISTORY_2, None, 'none', '0/40000A0', (None, None, 0)),
    ('standby replayed past the switchpoint', node(end_lsn='0/40000A1', end_is_record_start=False), upstream(),
     HISTORY_2, None, 'rewind', '0/40000A0', ('0/40000A0', '0/40000A1', 1)),
    ('two switchovers: an old timeline, not diverged', node(), upstream(timeline=3), HISTORY_3, None,
     'none', '0/40000A0', (None, None, 0)),
    ('two switchovers: a standby on timeline 2 past the second fork',
     node(timeline=2, end_lsn='0/43108F8', end_is_record_start=False), upstream(timeline=3), HISTORY_3, h(HISTORY_2),
     'rewind', '0/4001010', ('0/4001010', '0/43108F8', 0x43108F8 - 0x4001010)),
    ('a timeline the upstream does not know, no local history file', node(timeline=2, end_lsn='0/4100000'),
     upstream(timeline=3), HISTORY_3_SIBLING, None, 'clone', None, (None, '0/4100000', None)),
    ('a sibling timeline, known from the local history file',
     node(timeline=2, end_lsn='0/4100000'), upstream(timeline=3), HISTORY_3_SIBLING, h(HISTORY_2),
     'rewind', '0/40000A0', ('0/40000A0', '0/4100000', 0x4100000 - 0x40000A0)),
    ('colliding timeline IDs (same number, other history)',
     node(timeline=3, end_lsn='0/400EA50', end_is_record_start=False), upstream(timeline=3, xlogpos='0/12000000'),
     HISTORY_3_OTHER, h(HISTORY_3), 'rewind', '0/4001010', ('0/4001010', '0/400EA50', 0x400EA50 - 0x4001010)),
    ('same timeline and the same history file', node(timeline=3, end_lsn='0/4001200'),
     upstream(timeline=3), HISTORY_3, h(HISTORY_3), 'none', None, (None, None, 0)),
    ('no common ancestor at all', node(), upstream(timeline=6), '5\t0/9000000\n', None,
     'clone', None, (None, '0/4000028', None)),
    ('diverged without wal_log_hints or checksums', node(end_lsn='0/4622038', wal_log_hints=False), upstream(),
     HISTORY_2, None, 'clone', '0/40000A0', ('0/40000A0', '0/4622038', 0x4622038 - 0x40000A0)),
    ('diverged with checksums only', node(end_lsn='0/4622038', wal_log_hints=False, data_checksum_version=1),
     upstream(), HISTORY_2, None, 'rewind', '0/40000A0', ('0/40000A0', '0/4622038', 0x4622038 - 0x40000A0)),
    ('not diverged, and without wal_log_hints: nothing to rewind', node(wal_log_hints=False), upstream(), HISTORY_2,
     None, 'none', '0/40000A0', (None, None, 0)),
    ('upstream without full_page_writes', node(end_lsn='0/4622038'), upstream(full_page_writes=False), HISTORY_2,
     None, 'clone', '0/40000A0', ('0/40000A0', '0/4622038', 0x4622038 - 0x40000A0)),
    ('full_page_writes unknown', node(end_lsn='0/4622038'), upstream(full_page_writes=None), HISTORY_2, None,
     'rewind', '0/40000A0', ('0/40000A0', '0/4622038', 0x4622038 - 0x40000A0)),
]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_decide(case):
    name, local, up, history, local_history, method, fork, lost = case
    result = decide(local, up, h(history), local_history)
    assert (result['method'], result['fork_lsn']) == (method, fork), result['reason']
    assert (result['discarded']['start'], result['discarded']['end'], result['discarded']['bytes']) == lost
    assert result['local_end_lsn'] == local['end_lsn']
    assert result['reason'] and result['reason'][0].islower()


@pytest.mark.parametrize('name, expect', [
    ('other cluster', 'another cluster (system identifier %s, this data directory 7000000000000000001)' % SYSID),
    ('upstream on an older timeline', "the upstream is on timeline 2, older than this node's 3: this node may be the "
                                      "newer primary; check the topology"),
    ('same timeline, ahead', 'ahead of its upstream on the same timeline 1'),
    ('a timeline the upstream does not know, no local history file', 'no common ancestor'),
    ('colliding timeline IDs (same number, other history)', 'timeline 3 here and on the upstream have different '
                                                            'histories (they part at 0/4001010 on timeline 2)'),
    ('diverged without wal_log_hints or checksums', 'pg_rewind needs wal_log_hints or data checksums'),
    ('former primary went on writing', "the upstream's timeline 2 left timeline 1 at 0/40000A0 and this node went on "
                                       "to 0/4622038"),
])
def test_decide_reasons(name, expect):
    local, up, history, local_history = [c for c in CASES if c[0] == name][0][1:5]
    assert expect in decide(local, up, h(history), local_history)['reason']


def test_decide_is_pure():
    local, up, history = node(end_lsn='0/4622038'), upstream(), h(HISTORY_2)
    copies = (dict(local), dict(up), list(history))
    assert decide(local, up, history) == decide(local, up, history)
    assert (local, up, history) == copies


# -- pg_rewind ---------------------------------------------------------------------------

def test_rewind_args():
    ci = 'host=db2 port=5432 user=replicator dbname=postgres'
    assert rewind_args('/b', '/d', ci, 13, '/etc/postgresql/13/main/postgresql.conf', True) == [
        '/b/pg_rewind', '--target-pgdata', '/d', '--source-server', ci, '--no-ensure-shutdown',
        '--restore-target-wal', '--progress']
    assert rewind_args('/b', '/d', ci, 15, '/etc/postgresql/15/main/postgresql.conf', dry_run=True) == [
        '/b/pg_rewind', '--target-pgdata', '/d', '--source-server', ci, '--no-ensure-shutdown',
        '--config-file=/etc/postgresql/15/main/postgresql.conf', '--dry-run']
    assert '--config-file' not in ' '.join(rewind_args('/b', '/d', ci, 17))


# stderr of a real pg_rewind 15.18 where marked (*)
MISSING_WAL = ('pg_rewind: servers diverged at WAL location 0/40000A0 on timeline 1\n'
               'pg_rewind: error: could not open file "/d/pg_wal/000000010000000000000004": No such file or directory\n'
               'pg_rewind: error: could not read WAL record at 0/4622038\n')  # (*)


@pytest.mark.parametrize('err, rc, expect, needs_clone', [
    ('pg_rewind: error: could not find common ancestor of the source and target cluster\'s timelines', 1,
     'no common ancestor', True),
    ('pg_rewind: error: source and target clusters are from different systems', 1, 'no common ancestor', True),
    (MISSING_WAL, 1, 'configure restore_command', True),
    ('pg_rewind: error: could not find previous WAL record at 0/10FFFFB0', 1, 'configure restore_command', True),
    ('pg_rewind: error: restore_command is not set in the target cluster', 1, 'restore_target_wal: false',
     False),  # (*)
    ('pg_rewind: error: could not fetch remote file "global/pg_control": ERROR:  permission denied for function '
     'pg_read_binary_file', 1, 'GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean)', False),  # (*)
    ('pg_rewind: error: connection to server at "10.0.0.12", port 5432 failed: FATAL:  no pg_hba.conf entry for '
     'host "10.0.0.11", user "replicator", database "postgres", SSL encryption', 1,
     'host postgres replicator <address>/32 scram-sha-256', False),
    ('pg_rewind: error: connection to server at "10.0.0.12", port 5432 failed: Connection refused', 1,
     'could not connect to the primary 10.0.0.12:5432', False),  # (*)
    ('pg_rewind: error: full_page_writes must be enabled in the source server', 1, 'full_page_writes must be on',
     False),
    ('pg_rewind: error: source server must not be in recovery mode', 1, 'before PostgreSQL 14 it must be a primary',
     False),
    ('pg_rewind: error: target server must be shut down cleanly', 1, 'stop it cleanly', False),  # (*)
    ('', -9, 'killed by SIGKILL', True),
    ('', 137, 'killed by SIGKILL', True),
    ('pg_rewind: error: could not write file "base/1/1259": No space left on device', 1, 'may be unusable', True),
])
def test_explain_rewind_error(err, rc, expect, needs_clone):
    why, clone = explain_rewind_error(err, rc, '10.0.0.12', 5432, 'replicator')
    assert expect in why and clone is needs_clone


def test_missing_wal_and_did_nothing():
    assert missing_wal(MISSING_WAL) and not missing_wal('pg_rewind: error: could not open file "global/pg_control"')
    assert rewind_did_nothing('pg_rewind: servers diverged at WAL location 0/40000A0 on timeline 1\n'
                              'pg_rewind: no rewind required\n')  # (*)
    assert rewind_did_nothing('pg_rewind: source and target cluster are on the same timeline\n')
    assert not rewind_did_nothing('pg_rewind: rewinding from last common checkpoint at 0/4000028 on timeline 1\n'
                                  'pg_rewind: Done!\n')


# -- the copy -------------------------------------------------------------------------------

StatVfs = namedtuple('StatVfs', 'f_bavail f_frsize')


def make_data_dir(path, size=1000):
    os.makedirs(os.path.join(path, 'base', '1'))
    os.makedirs(os.path.join(path, 'pg_tblspc'))
    os.makedirs(os.path.join(path, 'pg_wal'))
    with open(os.path.join(path, 'base', '1', '1259'), 'wb') as f:
        f.write(b'x' * size)


def test_copy_problem(tmp_path, monkeypatch):
    d = str(tmp_path / 'main')
    make_data_dir(d, 1000)
    copy = str(tmp_path / 'main.diverged-20260126T101500Z')
    assert copy_problem(d, copy) is None
    monkeypatch.setattr(rejoin.os, 'statvfs', lambda p: StatVfs(f_bavail=1049, f_frsize=1))
    assert 'not enough free space in %s for a copy of %s (1000 bytes needed' % (tmp_path, d) in copy_problem(d, copy)
    monkeypatch.setattr(rejoin.os, 'statvfs', lambda p: StatVfs(f_bavail=1050, f_frsize=1))
    assert copy_problem(d, copy) is None
    assert 'does not exist' in copy_problem(d, str(tmp_path / 'nowhere' / 'copy'))
    os.mkdir(copy)
    assert 'exists already' in copy_problem(d, copy)
    os.symlink('/srv/ts', os.path.join(d, 'pg_tblspc', '16390'))
    assert 'tablespaces (pg_tblspc: 16390)' in copy_problem(d, str(tmp_path / 'other'))


def test_copy_size_counts_a_linked_pg_wal(tmp_path, monkeypatch):
    d = str(tmp_path / 'main')
    make_data_dir(d, 1000)
    os.rmdir(os.path.join(d, 'pg_wal'))
    os.makedirs(str(tmp_path / 'wal'))
    (tmp_path / 'wal' / '000000010000000000000004').write_bytes(b'w' * 500)
    os.symlink(str(tmp_path / 'wal'), os.path.join(d, 'pg_wal'))
    assert rejoin.copy_size(d) == 1500


def run_for_real(args):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return p.returncode, p.stdout, p.stderr


def test_copy_data_dir(tmp_path):
    d = str(tmp_path / 'main')
    make_data_dir(d)
    os.rmdir(os.path.join(d, 'pg_wal'))
    os.makedirs(str(tmp_path / 'wal'))
    (tmp_path / 'wal' / '000000010000000000000004').write_bytes(b'w' * 500)
    os.symlink(str(tmp_path / 'wal'), os.path.join(d, 'pg_wal'))
    os.chmod(d, 0o700)
    copy = str(tmp_path / 'copy')
    assert copy_data_dir(run_for_real, 'cp', d, copy) == (0, '')
    assert os.path.isdir(os.path.join(copy, 'pg_wal')) and not os.path.islink(os.path.join(copy, 'pg_wal'))
    assert os.path.getsize(os.path.join(copy, 'pg_wal', '000000010000000000000004')) == 500
    assert os.path.getsize(os.path.join(copy, 'base', '1', '1259')) == 1000
    assert os.stat(copy).st_mode & 0o777 == 0o700
    rc, err = copy_data_dir(run_for_real, 'cp', str(tmp_path / 'missing'), str(tmp_path / 'copy2'))
    assert rc != 0 and 'missing' in err


def test_move_signal_files(tmp_path):
    d = str(tmp_path / 'main')
    make_data_dir(d)
    open(os.path.join(d, 'standby.signal'), 'w').close()
    moved = move_signal_files(d)
    assert moved == [(os.path.join(d, 'standby.signal'), str(tmp_path / '.main.standby.signal.hotstandby-rejoin'))]
    assert not os.path.exists(os.path.join(d, 'standby.signal')) and os.path.exists(moved[0][1])
    assert moved_signal_path(d + '/', 'recovery.signal') == str(tmp_path / '.main.recovery.signal.hotstandby-rejoin')
    assert move_signal_files(d) == []
