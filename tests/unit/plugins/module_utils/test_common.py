# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import C_ENV, killing_signal, run_as


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
