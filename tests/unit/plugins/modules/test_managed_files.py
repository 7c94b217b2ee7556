# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat
from types import SimpleNamespace

import pytest

from ansible_collections.hotstandby.postgresql.plugins.modules import managed_files as m
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.modules.harness import run_main


def lookup(known):
    def get(name):
        if name not in known:
            raise KeyError(name)
        return known[name]
    return get


@pytest.fixture
def host(tmp_path, monkeypatch):
    """Users root and postgres are the current user, and so is root's uid 0 for a made directory (chown to oneself
    works without root)."""
    me, mygroup = os.getuid(), os.getgid()
    monkeypatch.setattr(m.pwd, 'getpwnam', lookup({n: SimpleNamespace(pw_uid=me) for n in ('root', 'postgres')}))
    monkeypatch.setattr(m.grp, 'getgrnam', lookup({n: SimpleNamespace(gr_gid=mygroup) for n in ('root', 'postgres')}))
    real_fchown = os.fchown
    monkeypatch.setattr(m.os, 'fchown', lambda fd, uid, gid: real_fchown(fd, me if uid == 0 else uid,
                                                                         mygroup if gid == 0 else gid))
    return tmp_path


def spec(path, content='a = 1\n', mode='0644', **kw):
    return dict(dict(path=str(path), content=content, mode=mode), **kw)


def run(capsys, files, check=False, diff=True):
    return run_main(m.main, dict(files=files), capsys, check=check, diff=diff)[0]


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_writes_new_files_in_one_run_with_their_modes_and_parents(host, capsys):
    conf = host / 'etc' / 'conf.d' / '50-x.conf'
    secret = host / 'home' / '.pgpass'
    result = run(capsys, [spec(conf),
                          spec(secret, content='*:*:*:u:pw\n', mode='0600', owner='postgres', group='postgres')])
    assert result['changed'] is True
    assert conf.read_text() == 'a = 1\n' and mode_of(conf) == 0o644
    assert secret.read_text() == '*:*:*:u:pw\n' and mode_of(secret) == 0o600
    assert mode_of(host / 'etc') == 0o755 and mode_of(host / 'etc' / 'conf.d') == 0o755
    assert [f['differences'] for f in result['files']] == [['missing'], ['missing']]
    # no temporary file left beside them
    assert sorted(os.listdir(str(conf.parent))) == ['50-x.conf']
    assert sorted(os.listdir(str(secret.parent))) == ['.pgpass']


def test_a_second_run_touches_nothing(host, capsys):
    conf = host / 'x.conf'
    run(capsys, [spec(conf)])
    before = os.stat(str(conf))
    result = run(capsys, [spec(conf)])
    after = os.stat(str(conf))
    assert result['changed'] is False
    assert result['diff'] == []
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_new_content_replaces_the_file_atomically_and_shows_a_diff(host, capsys):
    conf = host / 'x.conf'
    run(capsys, [spec(conf)])
    inode = os.stat(str(conf)).st_ino
    result = run(capsys, [spec(conf, content='a = 2\n')])
    assert result['changed'] is True
    assert result['files'][0]['differences'] == ['content']
    assert conf.read_text() == 'a = 2\n'
    assert os.stat(str(conf)).st_ino != inode  # a new file renamed over the old one, not rewritten in place
    (d,) = result['diff']
    assert (d['before'], d['after']) == ('a = 1\n', 'a = 2\n')
    assert str(conf) in d['before_header'] and '0644' in d['after_header']


def test_only_the_mode_is_set_when_only_the_mode_differs(host, capsys):
    conf = host / 'x.conf'
    run(capsys, [spec(conf)])
    os.chmod(str(conf), 0o666)
    inode = os.stat(str(conf)).st_ino
    result = run(capsys, [spec(conf)])
    assert result['files'][0]['differences'] == ['mode']
    assert mode_of(conf) == 0o644
    (d,) = result['diff']
    assert (d['before']['mode'], d['after']['mode']) == ('0666', '0644')
    assert d['before']['path'] == d['after']['path'] == str(conf)
    assert os.stat(str(conf)).st_ino == inode


def test_check_mode_writes_nothing_not_even_a_directory(host, capsys):
    conf = host / 'new' / 'x.conf'
    old = host / 'old.conf'
    old.write_text('a = 1\n')
    os.chmod(str(old), 0o644)
    result = run(capsys, [spec(conf), spec(old, content='a = 3\n')], check=True)
    assert result['changed'] is True
    assert [f['differences'] for f in result['files']] == [['missing'], ['content']]
    assert not (host / 'new').exists()
    assert old.read_text() == 'a = 1\n'
    assert sorted(os.listdir(str(host))) == ['old.conf']
    assert [d['after'] for d in result['diff']] == ['a = 1\n', 'a = 3\n']


def test_no_diff_unless_asked(host, capsys):
    result = run(capsys, [spec(host / 'x.conf')], diff=False)
    assert 'diff' not in result


def test_a_symbolic_link_is_replaced_by_the_file_and_its_target_left_alone(host, capsys):
    target = host / 'target'
    target.write_text('keep\n')
    link = host / 'x.conf'
    os.symlink(str(target), str(link))
    result = run(capsys, [spec(link)])
    assert result['files'][0]['differences'] == ['missing']
    assert not os.path.islink(str(link)) and link.read_text() == 'a = 1\n'
    assert target.read_text() == 'keep\n'


@pytest.mark.parametrize('files, message', [
    ([spec('relative/x.conf')], "path 'relative/x.conf' is not absolute"),
    ([spec('/x.conf', mode='u+rw')], "mode 'u+rw' of /x.conf is not an octal mode"),
    ([spec('/x.conf', mode='0999')], "mode '0999' of /x.conf is not an octal mode"),
    # mode: 0640 unquoted in YAML is the number 416, which must not become mode 0416
    ([spec('/x.conf', mode=0o640)], "mode '416' of /x.conf is not an octal mode"),
    ([spec('/x.conf', owner='nobody-here')], 'the user nobody-here (owner of /x.conf) does not exist'),
    ([spec('/x.conf', group='nobody-here')], 'the group nobody-here (of /x.conf) does not exist'),
])
def test_bad_input_is_refused_before_anything_is_written(host, capsys, files, message):
    good = host / 'good.conf'
    result = run(capsys, [spec(good)] + files)
    assert result['failed'] is True
    assert message in result['msg']
    assert not good.exists()


def test_a_directory_in_the_way_is_refused(host, capsys):
    (host / 'x.conf').mkdir()
    result = run(capsys, [spec(host / 'x.conf')])
    assert result['failed'] is True
    assert 'exists and is not a file: move it out of the way' in result['msg']


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(host, capsys, monkeypatch):
    conf = host / 'x.conf'
    conf.write_text('old\n')

    def refuse(src, dst):
        raise OSError(30, 'Read-only file system')
    monkeypatch.setattr(m.os, 'replace', refuse)
    result = run(capsys, [spec(conf)])
    assert result['failed'] is True
    assert 'could not write %s' % conf in result['msg'] and 'Read-only file system' in result['msg']
    assert conf.read_text() == 'old\n'
    assert sorted(os.listdir(str(host))) == ['x.conf']


def test_a_fifo_in_the_way_is_refused_without_waiting_on_it(host, capsys):
    os.mkfifo(str(host / 'x.conf'))
    result = run(capsys, [spec(host / 'x.conf')])
    assert result['failed'] is True
    assert 'exists and is not a file' in result['msg']


def test_an_unreadable_file_fails_with_a_message(host, capsys, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *a):
        if path.endswith('x.conf'):
            raise PermissionError(13, 'Permission denied')
        return real_open(path, flags, *a)
    monkeypatch.setattr(m.os, 'open', refuse)
    result = run(capsys, [spec(host / 'x.conf')])
    assert result['failed'] is True
    assert 'could not read %s' % (host / 'x.conf') in result['msg'] and 'become' in result['msg']


def test_a_link_swapped_in_after_the_plan_gets_no_owner_or_mode(host, capsys, monkeypatch):
    """A postgres-owned directory: a file whose mode differs is replaced by a link to another file between plan()
    and apply(). The other file must keep its mode."""
    conf = host / 'x.conf'
    conf.write_text('a = 1\n')
    os.chmod(str(conf), 0o666)
    victim = host / 'victim'
    victim.write_text('secret\n')
    os.chmod(str(victim), 0o600)
    real_plan = m.ManagedFiles.plan

    def plan_then_swap(self):
        steps = real_plan(self)
        os.unlink(str(conf))
        os.symlink(str(victim), str(conf))
        return steps
    monkeypatch.setattr(m.ManagedFiles, 'plan', plan_then_swap)
    result = run(capsys, [spec(conf)])
    assert result['failed'] is True
    assert mode_of(victim) == 0o600


def test_a_link_is_not_followed_when_reading(host, capsys):
    victim = host / 'victim'
    victim.write_text('secret\n')
    link = host / 'x.conf'
    os.symlink(str(victim), str(link))
    result = run(capsys, [spec(link)], check=True)
    assert 'secret' not in result['_raw']


def run_absent(capsys, files, absent, check=False, diff=True):
    return run_main(m.main, dict(files=files, absent=absent), capsys, check=check, diff=diff)[0]


def test_absent_files_go_in_the_same_run_and_a_missing_one_is_fine(host, capsys):
    conf, old = host / '50-x.conf', host / '60-sync.conf'
    old.write_text("synchronous_standby_names = 'a'\n")
    result = run_absent(capsys, [spec(conf)], [str(old), str(host / 'never-there.conf')])
    assert result['changed'] is True
    assert conf.read_text() == 'a = 1\n' and not old.exists()
    assert result['removed'] == [str(old)]
    assert result['diff'][-1]['before'] == "synchronous_standby_names = 'a'\n"
    assert result['diff'][-1]['after'] == '' and result['diff'][-1]['after_header'].endswith('(absent)')
    again = run_absent(capsys, [spec(conf)], [str(old)])
    assert again['changed'] is False and again['removed'] == [] and again['diff'] == []


def test_absent_in_check_mode_removes_nothing(host, capsys):
    old = host / '60-sync.conf'
    old.write_text('x = 1\n')
    result = run_absent(capsys, [], [str(old)], check=True)
    assert result['changed'] is True and result['removed'] == [str(old)]
    assert old.read_text() == 'x = 1\n'


def test_absent_removes_a_link_and_leaves_its_target(host, capsys):
    target, link = host / 'target.conf', host / 'link.conf'
    target.write_text('keep\n')
    link.symlink_to(target)
    result = run_absent(capsys, [], [str(link)])
    assert result['removed'] == [str(link)]
    assert not os.path.lexists(str(link)) and target.read_text() == 'keep\n'


@pytest.mark.parametrize('make, absent, message', [
    (lambda h: (h / 'd.conf').mkdir(), 'd.conf', 'exists and is not a file: nothing was removed'),
    (lambda h: None, 'relative', "path 'relative' in absent is not absolute"),
    (lambda h: None, 'good.conf', 'is both in files and in absent'),
])
def test_bad_absent_is_refused_before_anything_changes(host, capsys, make, absent, message):
    make(host)
    good = host / 'good.conf'
    path = absent if absent == 'relative' else str(host / absent)
    result = run_absent(capsys, [spec(good)], [path])
    assert result['failed'] is True and message in result['msg']
    assert not good.exists()


def test_nothing_named_is_refused(host, capsys):
    result = run_absent(capsys, [], [])
    assert result['failed'] is True and 'neither files nor absent names a file' in result['msg']
