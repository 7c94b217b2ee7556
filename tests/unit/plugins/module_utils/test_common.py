# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import signal
import stat
import threading
import time

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import (
    C_ENV, killing_signal, run_as, run_as_to_file)


class Module(object):
    def __init__(self):
        self.calls = []

    def run_command(self, args, environ_update=None, cwd=None):
        self.calls.append((args, environ_update, cwd))
        return 0, '', ''


def test_run_as_puts_the_password_into_the_environment_only():
    module = Module()
    run_as(module, ['/usr/sbin/runuser', '-u', 'postgres', '--'], ('psql', '-c', 'SELECT 1'), 'se cret')
    run_as(module, [], ['pg_controldata', '-D', '/d'])
    (args, env, cwd), (args2, env2, cwd2) = module.calls
    assert args == ['/usr/sbin/runuser', '-u', 'postgres', '--', 'psql', '-c', 'SELECT 1'] and cwd == '/'
    assert env == dict(C_ENV, PGPASSWORD='se cret')
    assert args2 == ['pg_controldata', '-D', '/d'] and env2 == C_ENV and 'PGPASSWORD' not in env2


def test_killing_signal_from_the_exit_status():
    assert killing_signal(-9) == (9, 'SIGKILL')  # the program itself
    assert killing_signal(143) == (15, 'SIGTERM')  # a child of runuser
    assert killing_signal(-200) == (200, 'signal 200')
    assert [killing_signal(rc) for rc in (0, 1, 2, 128, 128 + 65)] == [None] * 5


def test_run_as_to_file_writes_both_streams_into_a_new_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv('LANG', 'de_DE.UTF-8')
    path = str(tmp_path / 'progress.log')
    script = 'echo out; echo err >&2; printf "%s|%s|%s|" "$PGPASSWORD" "$LANG" "$LC_ALL" >&2; pwd >&2; exit 3'
    rc, out, err = run_as_to_file(None, [], ['/bin/sh', '-c', script], path, password='se cret')
    assert (rc, out) == (3, '')
    assert err == 'out\nerr\nse cret|C|C|/\n'
    with open(path) as f:
        assert f.read() == err
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert run_as_to_file(None, [], ['/bin/sh', '-c', 'printf "%s" "${PGPASSWORD-unset}"'],
                          str(tmp_path / 'other.log'))[2] == 'unset'


def test_run_as_to_file_prefix_and_password_never_on_the_command_line(tmp_path):
    # the prefix (runuser -u owner -- in the module) comes first; the password is not an argument
    rc, out, err = run_as_to_file(None, ['/bin/sh', '-c', 'printf "%s|" "$@"', 'sh'], ['a b', 'c'],
                                  str(tmp_path / 'p.log'), password='se cret')
    assert (rc, err) == (0, 'a b|c|')


@pytest.mark.parametrize('kind', ['file', 'symlink'])
def test_run_as_to_file_never_writes_through_an_existing_name(tmp_path, kind):
    victim = tmp_path / 'victim'
    victim.write_text('keep')
    path = tmp_path / 'progress.log'
    if kind == 'symlink':
        path.symlink_to(victim)
    else:
        path.write_text('old')
    with pytest.raises(OSError):
        run_as_to_file(None, [], ['/bin/sh', '-c', 'echo x'], str(path))
    assert victim.read_text() == 'keep'


def test_run_as_to_file_output_is_readable_while_the_program_runs(tmp_path):
    path = str(tmp_path / 'progress.log')
    go = tmp_path / 'go'
    script = 'echo "1/2 kB (50%), 0/1 tablespace" >&2; while [ ! -e "$0" ]; do sleep 0.05; done; echo done >&2'
    results = []
    worker = threading.Thread(target=lambda: results.append(
        run_as_to_file(None, [], ['/bin/sh', '-c', script, str(go)], path)))
    worker.start()
    try:
        seen = ''
        deadline = time.time() + 10
        while time.time() < deadline and not seen:
            if os.path.exists(path):
                with open(path) as f:
                    seen = f.read()
            time.sleep(0.02)
        assert seen == '1/2 kB (50%), 0/1 tablespace\n' and not results
    finally:
        go.write_text('')
        worker.join(10)
    assert results == [(0, '', '1/2 kB (50%), 0/1 tablespace\ndone\n')]


def test_run_as_to_file_does_not_wait_for_a_child_that_outlives_the_program(tmp_path):
    # like pg_basebackup's WAL streaming child when its parent is killed: it keeps the output file open
    start = time.time()
    rc, out, err = run_as_to_file(None, [], ['/bin/sh', '-c', 'sleep 30 & echo $!; exit 1'], str(tmp_path / 'p.log'))
    try:
        assert rc == 1 and time.time() - start < 10
    finally:
        os.kill(int(err.split()[0]), signal.SIGKILL)


def test_run_as_to_file_reports_a_killing_signal_and_a_missing_program(tmp_path):
    rc, out, err = run_as_to_file(None, [], ['/bin/sh', '-c', 'echo partial >&2; kill -9 $$'],
                                  str(tmp_path / 'a.log'))
    assert rc == -9 and killing_signal(rc) == (9, 'SIGKILL') and err == 'partial\n'
    rc, out, err = run_as_to_file(None, [], [str(tmp_path / 'missing')], str(tmp_path / 'b.log'))
    assert rc == 127 and 'could not run %s' % (tmp_path / 'missing') in err


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/runuser'), reason='needs root and runuser')
def test_run_as_to_file_through_runuser(tmp_path):
    """For real: a program that runuser starts as another user gets the password in its environment and writes
    into the file that root opened for it; the file stays root's (the module reads it, and so does root)."""
    path = str(tmp_path / 'progress.log')
    rc, out, err = run_as_to_file(None, ['/usr/sbin/runuser', '-u', 'nobody', '--'],
                                  ['/bin/sh', '-c', 'id -un >&2; printf "%s" "$PGPASSWORD"'], path, password='se cret')
    assert (rc, err) == (0, 'nobody\nse cret')
    st = os.stat(path)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
