# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import fcntl
import json
import os
import subprocess
import time

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import ModuleFailure
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import (
    MARKER, DataDirLock, classify_data_dir, clear_reclone_marker, conninfo_upstream, dir_size, leftover_staging,
    move_aside, postmaster_pid, read_pg_version, read_system_identifier, reclone_marker_found, remove_file,
    replace_empty_dir, service_hint, sibling_path, user_data_found)
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.clusters import (
    OTHER_SYSID, PRIMARY_SYSID, write_cluster)


def test_read_system_identifier(tmp_path):
    write_cluster(str(tmp_path / 'c'), sysid=PRIMARY_SYSID)
    assert read_system_identifier(str(tmp_path / 'c')) == PRIMARY_SYSID


def test_read_system_identifier_truncated(tmp_path):
    os.makedirs(str(tmp_path / 'c' / 'global'))
    (tmp_path / 'c' / 'global' / 'pg_control').write_bytes(b'1234')
    with pytest.raises(ValueError):
        read_system_identifier(str(tmp_path / 'c'))


def test_read_pg_version(tmp_path):
    write_cluster(str(tmp_path / 'c'), version='16')
    assert read_pg_version(str(tmp_path / 'c')) == '16'
    assert read_pg_version(str(tmp_path / 'none')) is None


def test_user_data_found(tmp_path):
    write_cluster(str(tmp_path / 'a'))
    assert user_data_found(str(tmp_path / 'a')) is None
    write_cluster(str(tmp_path / 'b'), user_data=True)
    assert 'base/5/16385' in user_data_found(str(tmp_path / 'b'))
    write_cluster(str(tmp_path / 'c'), extra_db=True)
    assert 'base/16384' in user_data_found(str(tmp_path / 'c'))
    write_cluster(str(tmp_path / 'd'), tablespace=True)
    assert 'pg_tblspc' in user_data_found(str(tmp_path / 'd'))
    write_cluster(str(tmp_path / 'e'))
    (tmp_path / 'e' / 'notes.txt').write_text('mine')
    assert 'initdb does not create (notes.txt)' in user_data_found(str(tmp_path / 'e'))
    write_cluster(str(tmp_path / 'f'))
    os.makedirs(str(tmp_path / 'f' / 'pg_replslot' / 'old_slot'))
    assert 'pg_replslot (old_slot)' in user_data_found(str(tmp_path / 'f'))


def test_postmaster_pid(tmp_path):
    d = str(tmp_path / 'c')
    write_cluster(d)
    assert postmaster_pid(d) is None
    proc = subprocess.Popen(['sh', '-c', 'sleep 30', 'postgres'])
    try:
        with open(os.path.join(d, 'postmaster.pid'), 'w') as f:
            f.write('%d\n' % proc.pid)
        assert postmaster_pid(d) == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert postmaster_pid(d) is None  # stale pid file
    other = subprocess.Popen(['sleep', '30'])
    time.sleep(0.1)
    try:
        with open(os.path.join(d, 'postmaster.pid'), 'w') as f:
            f.write('%d\n' % other.pid)  # alive, but not a postgres process (pid reuse)
        assert postmaster_pid(d) is None
    finally:
        other.kill()
        other.wait()


def test_service_hint():
    assert service_hint('/var/lib/postgresql/15/main') == 'systemctl stop postgresql@15-main'
    assert 'pg_ctl stop -D /srv/x' in service_hint('/srv/x')


def test_sibling_path():
    assert sibling_path('/var/lib/postgresql/15/main/', '.x') == '/var/lib/postgresql/15/.main.x'


@pytest.mark.parametrize('kwargs, case, expect', [
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='host=10.0.0.11 port=5432'), 'standby', None),
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='hostaddr=10.0.0.11'), 'standby', None),
    (dict(sysid=OTHER_SYSID), 'pristine', None),
    (dict(sysid=PRIMARY_SYSID), 'foreign', 'not in standby mode'),
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='host=10.9.9.9'), 'foreign', 'points at 10.9.9.9:5432'),
    (dict(sysid=OTHER_SYSID, standby=True, conninfo='host=10.9.9.9'), 'foreign', 'primary_conninfo host 10.9.9.9'),
    (dict(sysid=OTHER_SYSID, user_data=True), 'foreign', 'base/5/16385'),
])
def test_classify_data_dir(tmp_path, kwargs, case, expect):
    d = str(tmp_path / 'c')
    write_cluster(d, **kwargs)
    found_case, found = classify_data_dir(d, '10.0.0.11', 5432, PRIMARY_SYSID)
    assert found_case == case
    assert (found is None) if expect is None else (expect in found)


@pytest.mark.parametrize('kwargs, case, expect', [
    # a sibling of the promoted standby, still pointing at the old primary: re-pointed
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='host=db1 port=5432 user=replicator'), 'standby', None),
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='hostaddr=10.0.0.9 port=5433'), 'standby', None),
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='host=10.0.0.11 port=5432'), 'standby', None),
    # a former primary (or a promoted standby): pg_rejoin's job, not follow's
    (dict(sysid=PRIMARY_SYSID), 'foreign', 'pg_rejoin'),
    (dict(sysid=PRIMARY_SYSID, standby=True), 'foreign', 'names a host'),  # no primary_conninfo
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='user=replicator'), 'foreign', 'names a host'),
    (dict(sysid=OTHER_SYSID, standby=True, conninfo='host=db1'), 'foreign', 'primary_conninfo host db1'),
    (dict(sysid=OTHER_SYSID), 'pristine', None),
])
def test_classify_data_dir_follow(tmp_path, kwargs, case, expect):
    d = str(tmp_path / 'c')
    write_cluster(d, **kwargs)
    found_case, found = classify_data_dir(d, '10.0.0.11', 5432, PRIMARY_SYSID, follow=True)
    assert found_case == case
    assert (found is None) if expect is None else (expect in found)


def test_classify_data_dir_without_follow_names_it(tmp_path):
    d = str(tmp_path / 'c')
    write_cluster(d, sysid=PRIMARY_SYSID, standby=True, conninfo='host=db1 port=5433')
    case, found = classify_data_dir(d, '10.0.0.11', 5432, PRIMARY_SYSID)
    assert case == 'foreign' and 'points at db1:5433, not at 10.0.0.11:5432' in found
    assert 'set follow: true' in found
    write_cluster(str(tmp_path / 'p'), sysid=PRIMARY_SYSID)
    case, found = classify_data_dir(str(tmp_path / 'p'), '10.0.0.11', 5432, PRIMARY_SYSID)
    assert case == 'foreign' and 'not in standby mode' in found and 'follow' not in found


def test_conninfo_upstream():
    assert conninfo_upstream('host=db1 port=5433 user=x') == 'db1:5433'
    assert conninfo_upstream('hostaddr=10.0.0.9') == '10.0.0.9:5432'
    assert conninfo_upstream(None) == '(no host):5432'
    assert conninfo_upstream("host='unterminated") == '(no host):5432'


def test_classify_data_dir_other_kinds(tmp_path):
    d = str(tmp_path / 'c')
    assert classify_data_dir(d, 'h', 5432, PRIMARY_SYSID) == ('missing', None)
    os.mkdir(d)
    assert classify_data_dir(d, 'h', 5432, PRIMARY_SYSID) == ('empty', None)
    (tmp_path / 'c' / 'PG_VERSION').write_text('15\n')
    case, found = classify_data_dir(d, 'h', 5432, PRIMARY_SYSID)
    assert case == 'foreign' and 'incomplete PostgreSQL 15 data directory' in found
    (tmp_path / 'f').write_text('x')
    assert classify_data_dir(str(tmp_path / 'f'), 'h', 5432, PRIMARY_SYSID)[1] == 'a file, not a directory'


def test_dir_size(tmp_path):
    (tmp_path / 'a').write_bytes(b'x' * 10)
    (tmp_path / 'd').mkdir()
    (tmp_path / 'd' / 'b').write_bytes(b'x' * 5)
    os.symlink('/etc/passwd', str(tmp_path / 'l'))
    assert dir_size(str(tmp_path)) == 15


def test_leftover_staging(tmp_path):
    staging, data_dir = str(tmp_path / '.main.hotstandby-staging'), str(tmp_path / 'main')
    assert leftover_staging(staging, data_dir) == (False, False)
    os.mkdir(staging)
    with pytest.raises(ModuleFailure, match='not a staging directory of this module'):
        leftover_staging(staging, data_dir)
    with open(os.path.join(staging, MARKER), 'w') as f:
        json.dump({'mode': 'in_place'}, f)
    assert leftover_staging(staging, data_dir) == (True, False)  # data_dir is no mount point


def test_move_aside(tmp_path):
    for name in ('a', 'b'):
        os.mkdir(str(tmp_path / name))
    os.mkdir(str(tmp_path / 'dest'))
    assert move_aside(str(tmp_path / 'a'), str(tmp_path / 'dest')) == str(tmp_path / 'dest-1')
    assert move_aside(str(tmp_path / 'b'), str(tmp_path / 'dest')) == str(tmp_path / 'dest-2')


def test_reclone_marker_found_and_removed(tmp_path):
    marker = str(tmp_path / 'reclone')
    assert reclone_marker_found(None) is False
    assert reclone_marker_found(marker) is False
    open(marker, 'w').close()
    assert reclone_marker_found(marker) is True
    remove_file(marker)
    remove_file(marker)  # already gone: fine
    assert not os.path.exists(marker)
    os.mkdir(marker)
    with pytest.raises(ModuleFailure, match='is a directory'):
        reclone_marker_found(marker)


# ---------------------------------------------------------------------------
# the lock
# ---------------------------------------------------------------------------

def test_lock_excludes_a_second_run_and_is_removed(tmp_path):
    data_dir = str(tmp_path / 'main')
    first, second = DataDirLock(data_dir, wait=0.1), DataDirLock(data_dir, wait=0.1)
    assert first.path == str(tmp_path / '.main.hotstandby-lock')
    first.acquire()
    try:
        with open(first.path) as f:
            holder = json.load(f)
        assert holder['pid'] == os.getpid() and holder['data_dir'] == data_dir
        with pytest.raises(ModuleFailure) as e:
            second.acquire()
        assert 'another run of this module (pid %d, started %s)' % (os.getpid(), holder['started_at']) in str(e.value)
        assert first.path in str(e.value) and 'is cloning into or reconfiguring %s' % data_dir in str(e.value)
        with pytest.raises(ModuleFailure):
            second.probe()  # check mode sees it as well
    finally:
        first.release()
    assert not os.path.exists(first.path)
    second.acquire()
    second.release()
    assert os.listdir(str(tmp_path)) == []


def test_lock_check_mode_creates_nothing(tmp_path):
    lock = DataDirLock(str(tmp_path / 'main'))
    with lock.held(check_mode=True):
        assert os.listdir(str(tmp_path)) == []
    assert os.listdir(str(tmp_path)) == []


def test_lock_left_by_a_killed_run_holds_nothing(tmp_path):
    lock = DataDirLock(str(tmp_path / 'main'))
    with open(lock.path, 'w') as f:
        json.dump({'pid': 1, 'started_at': 'long ago'}, f)  # pid 1 is alive, but holds no lock: a reused pid
    lock.probe()
    with lock.held():
        with open(lock.path) as f:
            assert json.load(f)['pid'] == os.getpid()
    assert not os.path.exists(lock.path)


def test_lock_held_through_a_raw_flock(tmp_path):
    lock = DataDirLock(str(tmp_path / 'main'), wait=0.1)
    fd = os.open(lock.path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(ModuleFailure, match='pid unknown'):
            lock.acquire()
    finally:
        os.close(fd)
    lock.acquire()
    lock.release()


def test_lock_replaced_while_waiting_is_taken_anew(tmp_path, monkeypatch):
    lock = DataDirLock(str(tmp_path / 'main'))
    real_flock = fcntl.flock
    calls = []

    def flock(fd, op):
        if not calls:  # the previous holder removes the file between our open and our flock
            os.unlink(lock.path)
        calls.append(op)
        return real_flock(fd, op)
    monkeypatch.setattr(fcntl, 'flock', flock)
    lock.acquire()
    assert len(calls) == 2 and os.path.exists(lock.path)
    st, fst = os.stat(lock.path), os.fstat(lock.fd)
    assert (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
    lock.release()


@pytest.mark.parametrize('make', ['symlink', 'hardlink', 'directory'])
def test_lock_refuses_what_is_not_its_file(tmp_path, make):
    lock = DataDirLock(str(tmp_path / 'main'))
    target = tmp_path / 'precious'
    target.write_text('keep')
    if make == 'symlink':
        os.symlink(str(target), lock.path)
    elif make == 'hardlink':
        os.link(str(target), lock.path)
    else:
        os.mkdir(lock.path)
    with pytest.raises(ModuleFailure, match='lock file'):
        lock.acquire()
    with pytest.raises(ModuleFailure, match='lock file'):
        lock.probe()
    assert target.read_text() == 'keep'


def test_replace_empty_dir(tmp_path):
    data = tmp_path / 'main'
    data.mkdir()
    replace_empty_dir(str(data), str(tmp_path / 'main.staging'))
    assert not data.exists()
    # something put into it since the plan: refused, and it stays
    data.mkdir()
    (data / 'PG_VERSION').write_text('15\n')
    with pytest.raises(ModuleFailure) as e:
        replace_empty_dir(str(data), str(tmp_path / 'main.staging'))
    assert 'was empty before the clone but could not be replaced' in str(e.value)
    assert 'main.staging is discarded on the next run' in str(e.value)
    assert (data / 'PG_VERSION').exists()


def test_clear_reclone_marker(tmp_path):
    marker = tmp_path / '.main.hotstandby-reclone'
    marker.write_text('x')
    clear_reclone_marker(str(marker), '/d')
    assert not marker.exists()
    clear_reclone_marker(str(marker), '/d')  # already gone: fine
    marker.mkdir()
    (marker / 'f').write_text('x')
    with pytest.raises(ModuleFailure) as e:
        clear_reclone_marker(str(marker), '/d')
    assert 'cloned into /d, but the reclone marker' in str(e.value) and 'the next run clones again' in str(e.value)
