# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Wait for a pg_basebackup module run in the background (async) and show the clone's progress meanwhile.

The module documentation is plugins/modules/pg_basebackup_wait.py. The parts without Ansible (parsing a progress
line, the report, the messages) are the module-level functions; ActionModule only polls and reads.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
# the lines pg_basebackup --progress writes: the module's own filter of its messages knows them too
from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import CHECKPOINT_LINE, PROGRESS_RE

display = Display()

TIMEOUT_OPTION = 'postgres_standby_clone_timeout'
# the result async_wrapper leaves when it killed a job at its async time limit
WRAPPER_TIMEOUT_MSG = 'Timeout exceeded'

ARGUMENT_SPEC = dict(
    jid=dict(type='str', required=True),
    progress_file=dict(type='str', required=True),
    upstream=dict(type='str'),
    timeout=dict(type='int', default=86400),
    poll=dict(type='int', default=1),
    report_every=dict(type='int', default=10),
)


def last_line(text):
    """The last non-blank line of text (a line feed or a terminal's carriage return ends a line), or ''."""
    for line in reversed(re.split(r'[\r\n]', text or '')):
        if line.strip():
            return line.strip()
    return ''


def parse_progress(text):
    """What the last line of pg_basebackup's output says.

    Returns a dict with phase: 'starting' (no output yet), 'checkpoint' (waiting for the upstream's checkpoint),
    'copying' (then also done_kb, total_kb, percent, tablespaces_done, tablespaces) or 'running' (a line that is
    not a progress line, such as a message; it is not repeated).
    """
    line = last_line(text)
    if not line:
        return dict(phase='starting')
    if line == CHECKPOINT_LINE:
        return dict(phase='checkpoint')
    m = PROGRESS_RE.match(line)
    if not m:
        return dict(phase='running')
    return dict(phase='copying', done_kb=int(m.group('done')), total_kb=int(m.group('total')),
                percent=int(m.group('percent')), tablespaces_done=int(m.group('spc_done')),
                tablespaces=int(m.group('spc_total')))


def format_duration(seconds):
    """40 s, 12 min 05 s, 3 h 07 min."""
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return '%d s' % seconds
    if seconds < 3600:
        return '%d min %02d s' % (seconds // 60, seconds % 60)
    return '%d h %02d min' % (seconds // 3600, seconds % 3600 // 60)


def format_rate(kb_per_second):
    """MB/s with one decimal below 10 MB/s, whole ones above."""
    mb = kb_per_second / 1024.0
    return ('%.1f MB/s' if mb < 10 else '%.0f MB/s') % mb


def copy_rate(progress, elapsed, previous=None):
    """kB/s of a copying progress: since the previous sample (done_kb, at elapsed) when there is one, else over the
    whole elapsed time; None when it cannot be told."""
    if progress.get('phase') != 'copying':
        return None
    if previous is not None and elapsed > previous[1] and progress['done_kb'] >= previous[0]:
        return (progress['done_kb'] - previous[0]) / float(elapsed - previous[1])
    if elapsed > 0:
        return progress['done_kb'] / float(elapsed)
    return None


def format_report(host, upstream, progress, elapsed, rate=None):
    """The progress line of host, e.g. 'hs-standby: cloning from hs-primary: 1234/5678 MB (21%), 40 s, 28 MB/s'."""
    head = '%s: cloning%s: ' % (host, ' from %s' % upstream if upstream else '')
    phase = progress.get('phase')
    took = format_duration(elapsed)
    if phase == 'copying':
        text = '%d/%d MB (%d%%)' % (progress['done_kb'] // 1024, progress['total_kb'] // 1024, progress['percent'])
        if progress.get('tablespaces', 1) > 1:
            text += ', tablespace %d/%d' % (progress['tablespaces_done'], progress['tablespaces'])
        text += ', %s' % took
        if rate is not None:
            text += ', %s' % format_rate(rate)
        return head + text
    if phase == 'checkpoint':
        return head + 'waiting for the checkpoint on the upstream, %s' % took
    if phase == 'running':
        return head + 'pg_basebackup is running (no progress figures in its last line), %s' % took
    return head + 'waiting for pg_basebackup to start, %s' % took


def timeout_message(timeout, jid, progress_file):
    """Why the wait gave up while the clone still runs."""
    return ('the clone did not finish within %d s (the timeout option; %s in the hotstandby.postgresql roles). It '
            'keeps running in the background as async job %s, until it finishes or its async time limit ends it; '
            'its staging directory is %s (a run that finds it left over removes it and clones anew). Raise %s for '
            'a large primary or a slow link, or wait for the job and run again'
            % (timeout, TIMEOUT_OPTION, jid, os.path.dirname(progress_file), TIMEOUT_OPTION))


def killed_at_limit_message(progress_file):
    """The message for a job that async_wrapper killed at its time limit."""
    return ('the clone was ended by its async time limit (%s in the hotstandby.postgresql roles) before it finished; '
            'its staging directory %s is left and the next run removes it and clones anew: raise %s for a large '
            'primary or a slow link' % (TIMEOUT_OPTION, os.path.dirname(progress_file), TIMEOUT_OPTION))


def finished_result(status, progress_file):
    """The result of the task for a finished job: the job's own result (all its keys), with the message of a job
    killed at its async time limit naming the setting to raise."""
    result = dict(status)
    for key in ('started', 'finished'):
        if key in result:
            result[key] = bool(result[key])
    if result.get('failed') and result.get('msg') == WRAPPER_TIMEOUT_MSG and 'child_pid' in result:
        result['msg'] = killed_at_limit_message(progress_file)
        # ansible-core 2.19 keeps the error summary of a failed result (made from the old msg) in 'exception'
        # and shows that: without it, the task's error is made from the new msg
        result.pop('exception', None)
    return result


class ActionModule(ActionBase):
    """Poll ansible.builtin.async_status every poll seconds, print the progress every report_every seconds."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = dict()
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        for name in ('timeout', 'poll'):
            if args[name] < 1:
                raise AnsibleActionFail('%s must be at least 1 (seconds), not %d' % (name, args[name]))
        if args['report_every'] < 0:
            raise AnsibleActionFail('report_every must be 0 (no progress lines) or more seconds, not %d'
                                    % args['report_every'])
        if self._task.check_mode:
            # a clone in check mode runs in the foreground (async cannot check): there is no job to wait for
            result.update(skipped=True, msg='check mode: there is no job to wait for')
            return result
        try:
            result.update(self.wait(args, task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def async_status(self, jid, task_vars, mode='status'):
        # what the async_status action plugin adds: the job directory of the (become) user on the host
        async_dir = self._remote_expand_user(self.get_shell_option('async_dir', default='~/.ansible_async'))
        return self._execute_module(module_name='ansible.builtin.async_status', task_vars=task_vars,
                                    module_args=dict(jid=jid, mode=mode, _async_dir=async_dir))

    def read_progress(self, path):
        """The parsed last line of the progress file (phase 'starting' when it is missing or empty)."""
        # a regular file only (tail on a FIFO would block), never through a symlink
        quoted = shlex.quote(path)
        res = self._low_level_execute_command('test -f %s && test ! -L %s && tail -n 1 -- %s' % (quoted, quoted, quoted),
                                              sudoable=True)
        if res.get('rc') != 0:
            return dict(phase='starting')
        return parse_progress(to_text(res.get('stdout', ''), errors='surrogate_or_replace'))

    def wait(self, args, task_vars):
        jid, path = args['jid'], args['progress_file']
        host = task_vars.get('inventory_hostname') or self._play_context.remote_addr
        start = time.monotonic()
        deadline = start + args['timeout']
        next_report = start + args['report_every'] if args['report_every'] else None
        previous = None  # (done_kb, elapsed) of the last report while copying
        while True:
            status = self.async_status(jid, task_vars)
            if status.get('finished') or status.get('failed'):
                # The job file stays (as after an async_status loop): removing it would cost another module run
                # on the host while the standby waits to start.
                return finished_result(status, path)
            now = time.monotonic()
            if now >= deadline:
                return dict(failed=True, changed=False, finished=False, ansible_job_id=jid,
                            msg=timeout_message(args['timeout'], jid, path))
            if next_report is not None and now >= next_report:
                progress = self.read_progress(path)
                elapsed = time.monotonic() - start
                rate = copy_rate(progress, elapsed, previous)
                if progress['phase'] == 'copying':
                    previous = (progress['done_kb'], elapsed)
                if not self._task.no_log:
                    display.display(format_report(host, args['upstream'], progress, elapsed, rate))
                while next_report <= now:
                    next_report += args['report_every']
            time.sleep(max(0, min(args['poll'], deadline - time.monotonic())))
