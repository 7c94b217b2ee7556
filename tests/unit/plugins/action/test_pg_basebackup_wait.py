# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.hotstandby.postgresql.plugins.action import pg_basebackup_wait as w
from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import strip_progress

PROGRESS = '/var/lib/postgresql/15/.main.hotstandby-staging/progress.log'
STAGING = '/var/lib/postgresql/15/.main.hotstandby-staging'


# ---------------------------------------------------------------------------
# the pure parts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('text, expect', [
    ('', dict(phase='starting')),
    (None, dict(phase='starting')),
    ('\n\n', dict(phase='starting')),
    ('waiting for checkpoint\n', dict(phase='checkpoint')),
    ('waiting for checkpoint\n     0/1048576 kB (0%), 0/1 tablespace\n',
     dict(phase='copying', done_kb=0, total_kb=1048576, percent=0, tablespaces_done=0, tablespaces=1)),
    (' 123456/1048576 kB (11%), 0/1 tablespace\n',
     dict(phase='copying', done_kb=123456, total_kb=1048576, percent=11, tablespaces_done=0, tablespaces=1)),
    ('20/300 kB (6%), 1/3 tablespaces',  # a line not finished yet: no line feed
     dict(phase='copying', done_kb=20, total_kb=300, percent=6, tablespaces_done=1, tablespaces=3)),
    ('1/9 kB (11%), 0/1 tablespace\r9/9 kB (100%), 1/1 tablespace\r',  # a terminal's carriage returns
     dict(phase='copying', done_kb=9, total_kb=9, percent=100, tablespaces_done=1, tablespaces=1)),
    ('pg_basebackup: error: could not read COPY data: server closed the connection\n', dict(phase='running')),
])
def test_parse_progress(text, expect):
    assert w.parse_progress(text) == expect


def test_the_action_and_the_module_know_the_same_progress_lines():
    lines = ['waiting for checkpoint', '     0/1048576 kB (0%), 0/1 tablespace', '9/9 kB (100%), 1/2 tablespaces']
    assert strip_progress('\n'.join(lines) + '\n') == ''
    assert [w.parse_progress(ln)['phase'] for ln in lines] == ['checkpoint', 'copying', 'copying']


@pytest.mark.parametrize('seconds, expect', [
    (0, '0 s'), (40.7, '40 s'), (59, '59 s'), (60, '1 min 00 s'), (725, '12 min 05 s'), (3599, '59 min 59 s'),
    (3600, '1 h 00 min'), (11220, '3 h 07 min'), (-1, '0 s'),
])
def test_format_duration(seconds, expect):
    assert w.format_duration(seconds) == expect


@pytest.mark.parametrize('kb_per_second, expect', [
    (0, '0.0 MB/s'), (512, '0.5 MB/s'), (9.9 * 1024, '9.9 MB/s'), (28 * 1024, '28 MB/s'), (28.6 * 1024, '29 MB/s'),
])
def test_format_rate(kb_per_second, expect):
    assert w.format_rate(kb_per_second) == expect


def copying(done_kb, total_kb=5678 * 1024, percent=21, spc=(0, 1)):
    return dict(phase='copying', done_kb=done_kb, total_kb=total_kb, percent=percent, tablespaces_done=spc[0],
                tablespaces=spc[1])


def test_copy_rate():
    assert w.copy_rate(copying(1200 * 1024), 40) == 1200 * 1024 / 40.0  # the first sample: over the whole wait
    assert w.copy_rate(copying(1500 * 1024), 50, previous=(1200 * 1024, 40)) == 300 * 1024 / 10.0  # since the last
    assert w.copy_rate(copying(10), 0) is None
    assert w.copy_rate(copying(10), 40, previous=(20, 40)) == 10 / 40.0  # no time passed: fall back to the average
    assert w.copy_rate(dict(phase='checkpoint'), 40) is None


@pytest.mark.parametrize('progress, elapsed, rate, expect', [
    (copying(1234 * 1024 + 1000), 40, 28 * 1024,
     'hs-standby: cloning from hs-primary: 1234/5678 MB (21%), 40 s, 28 MB/s'),
    (copying(1234 * 1024, spc=(1, 3)), 40, None,
     'hs-standby: cloning from hs-primary: 1234/5678 MB (21%), tablespace 1/3, 40 s'),
    (dict(phase='starting'), 10, None, 'hs-standby: cloning from hs-primary: waiting for pg_basebackup to start, 10 s'),
    (dict(phase='checkpoint'), 20, None,
     'hs-standby: cloning from hs-primary: waiting for the checkpoint on the upstream, 20 s'),
    (dict(phase='running'), 30, None,
     'hs-standby: cloning from hs-primary: pg_basebackup is running (no progress figures in its last line), 30 s'),
])
def test_format_report(progress, elapsed, rate, expect):
    assert w.format_report('hs-standby', 'hs-primary', progress, elapsed, rate) == expect


def test_format_report_without_upstream():
    assert w.format_report('db2', None, dict(phase='starting'), 0) == 'db2: cloning: waiting for pg_basebackup to start, 0 s'


def test_timeout_message_names_the_setting_the_job_and_the_staging_directory():
    msg = w.timeout_message(7200, 'j1.2', PROGRESS)
    assert 'within 7200 s' in msg and 'postgres_standby_clone_timeout' in msg
    assert 'keeps running in the background as async job j1.2' in msg
    assert 'staging directory is %s ' % STAGING in msg


def test_finished_result_keeps_every_key_of_the_job():
    job = dict(changed=True, action='clone', msg='cloned', verify_note='backup successfully verified', bytes=5,
               finished=1, started=1, ansible_job_id='j1', invocation=dict(module_args=dict(password='********')))
    result = w.finished_result(job, PROGRESS)
    assert result == dict(job, finished=True, started=True)
    assert result['finished'] is True
    failed = dict(failed=True, msg='cloning failed, /d was not changed: ...', finished=True, changed=False)
    assert w.finished_result(failed, PROGRESS) == failed


def test_finished_result_of_a_job_killed_at_its_async_limit():
    killed = dict(msg='Timeout exceeded', failed=True, child_pid=4242, finished=True, ansible_job_id='j1',
                  exception='the error summary ansible-core 2.19 made of the old msg')
    result = w.finished_result(killed, PROGRESS)
    assert result['failed'] and result['child_pid'] == 4242 and 'exception' not in result
    assert 'postgres_standby_clone_timeout' in result['msg'] and STAGING in result['msg']
    assert 'Timeout exceeded' not in result['msg']
    # the same words from the module itself are the module's message
    own = dict(msg='Timeout exceeded', failed=True, finished=True)
    assert w.finished_result(own, PROGRESS)['msg'] == 'Timeout exceeded'


# ---------------------------------------------------------------------------
# the action: a fake clock, job and host
# ---------------------------------------------------------------------------

class Task(object):
    def __init__(self, args, check_mode=False, no_log=False):
        self.args = args
        self.async_val = 0
        self.check_mode = check_mode
        self.no_log = no_log
        self.action = 'hotstandby.postgresql.pg_basebackup_wait'


class Shell(object):
    tmpdir = None


class Connection(object):
    _shell = Shell()


class Host(object):
    """The job (finished at done_at, with result), the progress file (lines by time) and the clock."""

    def __init__(self, monkeypatch, done_at=None, result=None, progress=None):
        self.now = 1000.0
        self.start = self.now
        self.done_at = done_at
        if result is None:
            result = dict(changed=True, action='clone', msg='cloned', verify_note='backup successfully verified')
        self.result = result
        self.progress = progress or {}  # seconds after start -> the file's content from then on (None: missing)
        self.modules = []
        self.commands = []
        self.shown = []
        monkeypatch.setattr(w.time, 'monotonic', lambda: self.now)
        monkeypatch.setattr(w.time, 'sleep', self.sleep)
        monkeypatch.setattr(w.display, 'display', lambda msg, *a, **k: self.shown.append((self.now - self.start, msg)))

    def sleep(self, seconds):
        assert 0 <= seconds <= 60
        self.now += seconds

    def execute_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        self.modules.append((module_name, dict(module_args)))
        assert module_name == 'ansible.builtin.async_status'
        assert module_args['_async_dir'] == '/root/.ansible_async'
        if module_args['mode'] == 'cleanup':
            return dict(ansible_job_id=module_args['jid'], erased='/root/.ansible_async/' + module_args['jid'])
        if self.done_at is not None and self.now - self.start >= self.done_at:
            return dict(self.result, finished=True, ansible_job_id=module_args['jid'])
        return dict(started=True, finished=False, ansible_job_id=module_args['jid'], results_file='/x')

    def low_level(self, cmd, sudoable=False, **kwargs):
        self.commands.append((cmd, sudoable))
        content = None
        for at in sorted(self.progress):
            if self.now - self.start >= at:
                content = self.progress[at]
        if content is None:
            return dict(rc=1, stdout='', stderr="tail: cannot open '%s' for reading: No such file" % PROGRESS)
        return dict(rc=0, stdout=content.splitlines(True)[-1] if content else '', stderr='')

    def action(self, args, **task):
        action = w.ActionModule(Task(args, **task), Connection(), None, None, None)
        action._execute_module = self.execute_module
        action._low_level_execute_command = self.low_level
        action.get_shell_option = lambda option, default=None: default
        action._remote_expand_user = lambda path, sudoable=True: path.replace('~', '/root')
        return action

    def status_calls(self):
        return [a for n, a in self.modules if a['mode'] == 'status']


ARGS = dict(jid='j861455297574.25911', progress_file=PROGRESS, upstream='hs-primary', timeout=7200)
TASK_VARS = dict(inventory_hostname='hs-standby')


def test_waits_reports_and_returns_the_jobs_result(monkeypatch):
    host = Host(monkeypatch, done_at=45, progress={
        5: '', 12: 'waiting for checkpoint\n',
        25: 'waiting for checkpoint\n     0/5814272 kB (0%), 0/1 tablespace\n1048576/5814272 kB (18%), 0/1 tablespace\n',
        38: '2097152/5814272 kB (36%), 0/1 tablespace\n'})
    result = host.action(dict(ARGS)).run(task_vars=TASK_VARS)
    assert result == dict(changed=True, action='clone', msg='cloned', verify_note='backup successfully verified',
                          finished=True, ansible_job_id=ARGS['jid'])
    assert host.shown == [
        (10, 'hs-standby: cloning from hs-primary: waiting for pg_basebackup to start, 10 s'),
        (20, 'hs-standby: cloning from hs-primary: waiting for the checkpoint on the upstream, 20 s'),
        (30, 'hs-standby: cloning from hs-primary: 1024/5678 MB (18%), 30 s, 34 MB/s'),
        (40, 'hs-standby: cloning from hs-primary: 2048/5678 MB (36%), 40 s, 102 MB/s'),
    ]
    assert host.commands == [('test -f %s && test ! -L %s && tail -n 1 -- %s' % ((PROGRESS,) * 3), True)] * 4
    # polled every second until the job was done; its status file is left (no extra module run)
    assert len(host.status_calls()) == 46
    assert host.modules[-1] == ('ansible.builtin.async_status',
                                dict(jid=ARGS['jid'], mode='status', _async_dir='/root/.ansible_async'))
    for name, args in host.modules:
        assert set(args) == {'jid', 'mode', '_async_dir'}


def test_a_failed_clone_fails_the_task_with_the_modules_result(monkeypatch):
    job = dict(failed=True, changed=False, msg='cloning failed, /var/lib/postgresql/15/main was not changed: '
                                               'pg_basebackup failed: pg_basebackup: error: boom', moved_to=None)
    host = Host(monkeypatch, done_at=3, result=job)
    result = host.action(dict(ARGS)).run(task_vars=TASK_VARS)
    assert result == dict(job, finished=True, ansible_job_id=ARGS['jid'])
    assert [m[1]['mode'] for m in host.modules] == ['status'] * len(host.modules)
    assert host.shown == [] and host.commands == []  # done before the first report


def test_timeout_fails_and_leaves_the_job_alone(monkeypatch):
    host = Host(monkeypatch, done_at=None, progress={0: '10/20 kB (50%), 0/1 tablespace\n'})
    result = host.action(dict(ARGS, timeout=25, poll=2, report_every=10)).run(task_vars=TASK_VARS)
    assert result['failed'] and result['finished'] is False and not result['changed']
    assert 'within 25 s' in result['msg'] and 'postgres_standby_clone_timeout' in result['msg']
    assert 'keeps running in the background' in result['msg'] and STAGING in result['msg']
    assert host.now - host.start == 25  # the last sleep is cut to the deadline
    assert [m[1]['mode'] for m in host.modules] == ['status'] * len(host.modules)  # no cleanup of a running job
    assert [t for t, msg in host.shown] == [10, 20]


def test_job_file_missing_is_returned_as_it_is(monkeypatch):
    host = Host(monkeypatch)
    missing = dict(failed=True, msg='could not find job', ansible_job_id=ARGS['jid'], started=True, finished=True)
    host.execute_module = lambda module_name=None, module_args=None, **k: (
        host.modules.append((module_name, dict(module_args))) or dict(missing))
    result = host.action(dict(ARGS)).run(task_vars=TASK_VARS)
    assert result == missing
    assert [a['mode'] for n, a in host.modules] == ['status']


def test_report_every_zero_reads_no_progress_and_no_log_prints_none(monkeypatch):
    host = Host(monkeypatch, done_at=35, progress={0: '10/20 kB (50%), 0/1 tablespace\n'})
    assert host.action(dict(ARGS, report_every=0)).run(task_vars=TASK_VARS)['finished']
    assert host.commands == [] and host.shown == []
    host = Host(monkeypatch, done_at=35, progress={0: '10/20 kB (50%), 0/1 tablespace\n'})
    assert host.action(dict(ARGS), no_log=True).run(task_vars=TASK_VARS)['finished']
    assert host.shown == []


def test_a_path_is_quoted_for_the_shell(monkeypatch):
    host = Host(monkeypatch, done_at=11)
    host.action(dict(ARGS, progress_file="/srv/my data/.main.hotstandby-staging/progress.log")).run(
        task_vars=TASK_VARS)
    quoted = "'/srv/my data/.main.hotstandby-staging/progress.log'"
    assert host.commands == [('test -f %s && test ! -L %s && tail -n 1 -- %s' % ((quoted,) * 3), True)]


def test_check_mode_is_skipped(monkeypatch):
    host = Host(monkeypatch, done_at=0)
    result = host.action(dict(ARGS), check_mode=True).run(task_vars=TASK_VARS)
    assert result['skipped'] and host.modules == []


@pytest.mark.parametrize('args, expect', [
    (dict(poll=0), 'poll must be at least 1'),
    (dict(timeout=0), 'timeout must be at least 1'),
    (dict(report_every=-1), 'report_every must be 0'),
    (dict(jid=None), 'jid'),
    (dict(password='secret'), 'password'),
])
def test_invalid_arguments(monkeypatch, args, expect):
    host = Host(monkeypatch, done_at=0)
    task_args = dict(ARGS, **args)
    task_args = dict((k, v) for k, v in task_args.items() if v is not None)
    with pytest.raises(AnsibleActionFail, match=expect):
        host.action(task_args).run(task_vars=TASK_VARS)
    assert host.modules == []
