# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The PostgreSQL client programs on a standby: finding them, checking the upstream, running pg_basebackup."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import shutil
import signal
import time

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import C_ENV, ModuleFailure, killing_signal
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import empty_dir
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import explain_libpq_error

DEBIAN_LIB = '/usr/lib/postgresql'
MIN_MAJOR = 13
SLOT_RE = re.compile(r'^[a-z0-9_]{1,63}$')
# what the preflight asks the upstream over a replication connection (read-only)
PREFLIGHT_COMMANDS = ['IDENTIFY_SYSTEM', 'SHOW wal_level', 'SHOW server_version_num', 'SHOW max_wal_senders',
                      'SHOW max_replication_slots']
# the lines of pg_basebackup --progress without --verbose (in the C locale): "waiting for checkpoint", then at
# most one a second like "123456/1048576 kB (11%), 0/1 tablespace" (the done figure padded to the width of the
# total; "tablespaces" for more than one)
CHECKPOINT_LINE = 'waiting for checkpoint'
PROGRESS_RE = re.compile(r'^\s*(?P<done>\d+)/(?P<total>\d+) kB \((?P<percent>\d+)%\), '
                         r'(?P<spc_done>\d+)/(?P<spc_total>\d+) tablespaces?(?:\s.*)?$')


def installed_versions():
    """The major versions installed under DEBIAN_LIB, newest first."""
    try:
        names = os.listdir(DEBIAN_LIB)
    except OSError:
        return []
    return sorted((n for n in names if n.isdigit()), key=int, reverse=True)


def find_psql(module, bin_dir=None):
    """psql of bin_dir, else of the newest installed version, else from PATH."""
    if bin_dir:
        candidates = [os.path.join(bin_dir, 'psql')]
    else:
        candidates = [os.path.join(DEBIAN_LIB, v, 'bin', 'psql') for v in installed_versions()]
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    found = module.get_bin_path('psql')
    if found:
        return found
    raise ModuleFailure('no psql found (looked in %s and PATH): install the PostgreSQL client package of the '
                        'primary\'s major version (postgresql-client-<major>) or set bin_dir'
                        % ', '.join(candidates or [DEBIAN_LIB]))


def find_bin_dir(module, major, bin_dir=None):
    """The bin directory whose pg_basebackup is of that major version (bin_dir, or the Debian layout)."""
    given = bin_dir
    bin_dir = bin_dir or os.path.join(DEBIAN_LIB, '%d' % major, 'bin')
    pgbb = os.path.join(bin_dir, 'pg_basebackup')
    if not os.access(pgbb, os.X_OK):
        found = [v for v in installed_versions()
                 if os.access(os.path.join(DEBIAN_LIB, v, 'bin', 'pg_basebackup'), os.X_OK)]
        raise ModuleFailure('the primary runs PostgreSQL %d but %s does not exist on this standby (installed here: '
                            '%s): install postgresql-%d on the standby%s'
                            % (major, pgbb, ', '.join('PostgreSQL %s' % v for v in found) or 'none', major,
                               '' if not given else ' or fix bin_dir'))
    rc, out, err = module.run_command([pgbb, '--version'], environ_update=C_ENV)
    m = re.search(r'(\d+)(?:\.\d+)?', out or '')
    if rc != 0 or not m:
        raise ModuleFailure('could not run "%s --version": %s' % (pgbb, (err or out).strip()))
    if int(m.group(1)) != major:
        raise ModuleFailure('major version mismatch: the primary runs PostgreSQL %d but %s is PostgreSQL %s; a '
                            'standby needs the same major version: install postgresql-%d on the standby and set '
                            'bin_dir to its bin directory' % (major, pgbb, m.group(1), major))
    return bin_dir


def check_params(slot, password, max_rate):
    """Raise ModuleFailure for a slot name, password or max_rate that cannot be used."""
    if slot and not SLOT_RE.match(slot):
        raise ModuleFailure('invalid slot name "%s": use only lower-case letters, digits and underscores (at most 63)'
                            % slot)
    if '\n' in password or '\r' in password:
        raise ModuleFailure('the password contains a line break, which a libpq passfile cannot hold: choose a '
                            'password without line breaks')
    if max_rate and not re.match(r'^[0-9]+[kM]?$', max_rate):
        raise ModuleFailure('invalid max_rate "%s": use pg_basebackup -r syntax, a number of kilobytes per second '
                            'with an optional k or M suffix, e.g. 32768k or 100M' % max_rate)


def psql_args(psql, conninfo, commands):
    """The psql command line that runs commands (one -c each) on conninfo: unaligned, without headers, never
    prompting for a password (it comes from PGPASSWORD), stopping at the first error."""
    args = [psql, '-X', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', conninfo]
    for c in commands:
        args += ['-c', c]
    return args


def read_upstream(sql, host, port, user):
    """Ask the upstream host:port PREFLIGHT_COMMANDS through sql (commands -> (rc, psql -A -t output, stderr)).

    Returns a dict: system_identifier, timeline, xlogpos (its WAL flush position), wal_level, version_num, major,
    max_wal_senders, max_replication_slots. Raises ModuleFailure with guidance when the connection fails.
    """
    rc, out, err = sql(PREFLIGHT_COMMANDS)
    if rc != 0:
        raise ModuleFailure('preflight check failed, nothing was changed: ' +
                            explain_libpq_error(err, host, port, user))
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        ident = lines[0].split('|')
        info = dict(system_identifier=ident[0], timeline=int(ident[1]), xlogpos=ident[2], wal_level=lines[1].strip(),
                    version_num=int(lines[2]), max_wal_senders=int(lines[3]), max_replication_slots=int(lines[4]))
    except (IndexError, ValueError):
        raise ModuleFailure('unexpected answer from the primary %s:%s to IDENTIFY_SYSTEM/SHOW: %r' % (host, port, out))
    info['major'] = info['version_num'] // 10000
    return info


def check_upstream(info, where, slot=None):
    """Raise ModuleFailure with guidance when no standby can be made from the upstream described by info."""
    if info['major'] < MIN_MAJOR:
        raise ModuleFailure('the primary %s runs PostgreSQL %s; this module supports PostgreSQL %d and newer'
                            % (where, info['major'], MIN_MAJOR))
    if info['wal_level'] == 'minimal':
        raise ModuleFailure('the primary %s has wal_level = minimal, which does not allow a standby: set '
                            'wal_level = replica on the primary and restart it' % where)
    if info['max_wal_senders'] < 1:
        raise ModuleFailure('the primary %s has max_wal_senders = 0: set it to at least 2 (one for the clone, one '
                            'per standby) and restart the primary' % where)
    if slot and info['max_replication_slots'] < 1:
        raise ModuleFailure('slot "%s" requested, but the primary %s has max_replication_slots = 0: raise it and '
                            'restart the primary' % (slot, where))


def slot_exists(sql, slot, where):
    """Whether the physical slot exists on the upstream (READ_REPLICATION_SLOT through sql, PostgreSQL 15+)."""
    rc, out, err = sql(['READ_REPLICATION_SLOT %s' % slot])
    if rc != 0:
        raise ModuleFailure('checking slot "%s" on the primary %s failed: %s' % (slot, where, err.strip()))
    kind = (out.strip().split('|') + [''])[0]
    if kind and kind != 'physical':
        raise ModuleFailure('slot "%s" on the primary %s is a %s slot; a physical slot is needed: choose another slot '
                            'name' % (slot, where, kind))
    return bool(kind)


def read_timeline(sql, timeline, where):
    """(full_page_writes, history) of the upstream where, on its timeline (from IDENTIFY_SYSTEM), through sql.

    history is the text of the upstream's history file of that timeline (TIMELINE_HISTORY), '' on timeline 1,
    which has none. full_page_writes is a bool.
    """
    commands = ['SHOW full_page_writes'] + (['TIMELINE_HISTORY %d' % timeline] if timeline > 1 else [])
    rc, out, err = sql(commands)
    if rc != 0:
        raise ModuleFailure('reading the timeline history of the upstream %s failed, nothing was changed: %s'
                            % (where, err.strip()))
    first, dummy, rest = out.partition('\n')
    if first.strip() not in ('on', 'off') or (timeline > 1 and '|' not in rest):
        raise ModuleFailure('unexpected answer from the upstream %s to SHOW full_page_writes / TIMELINE_HISTORY %d: '
                            '%r' % (where, timeline, out))
    history = rest.partition('|')[2] if timeline > 1 else ''
    if re.match(r'^\\x(?:[0-9a-fA-F]{2})*\s*$', history):  # a server that labels the content bytea
        history = to_native(bytes.fromhex(history.strip()[2:]), errors='surrogate_or_replace')
    return first.strip() == 'on', history


def missing_slot_advice(slot):
    """What to do about a slot that the upstream does not have."""
    return ('the slot must exist on the upstream server before the standby uses it: create it there with '
            'community.postgresql.postgresql_slot (slot_type: physical; the hotstandby.postgresql roles do this) or '
            'with SELECT pg_create_physical_replication_slot(\'%s\', true)' % slot)


def basebackup_args(bin_dir, target, conninfo, wal_method, checkpoint, max_rate=None, slot=None, progress=False):
    """The pg_basebackup command line (the password never is on it: it comes from PGPASSWORD).

    progress adds --progress: pg_basebackup then writes PROGRESS_RE lines (and "waiting for checkpoint" first) to
    its stderr, at most one a second, each ending with a line feed when stderr is not a terminal.
    """
    args = [os.path.join(bin_dir, 'pg_basebackup'), '-D', target, '-d', conninfo, '-X', wal_method,
            '-c', checkpoint, '--no-password']
    if max_rate:
        args += ['-r', max_rate]
    if slot:
        args += ['-S', slot]
    if progress:
        args.append('--progress')
    return args


def is_progress_line(line):
    """Whether line (without its line end) is one that pg_basebackup --progress writes (not a message)."""
    line = line.strip()
    return line == CHECKPOINT_LINE or bool(PROGRESS_RE.match(line))


def strip_progress(err):
    """The stderr text of a pg_basebackup --progress run without its progress lines: its messages only, as a run
    without --progress would have written them (a terminal's carriage returns count as line ends too)."""
    return ''.join(ln for ln in err.splitlines(True) if not is_progress_line(ln))


def verify_backup(run, bin_dir, target, enabled=True):
    """Run pg_verifybackup on target through run (args -> (rc, out, err)).

    Returns (verified, note): verified is None when verification was skipped (note says why), False when it failed
    (note is its output).
    """
    tool = os.path.join(bin_dir, 'pg_verifybackup')
    if not enabled:
        return None, 'verification disabled (verify: false)'
    if not os.access(tool, os.X_OK):
        return None, 'skipped: %s not found' % tool
    if not os.path.exists(os.path.join(target, 'backup_manifest')):
        return None, 'skipped: pg_basebackup wrote no backup_manifest'
    rc, out, err = run([tool, target])
    if rc != 0:
        return False, (err or out).strip()
    return True, 'backup successfully verified'


def explain_basebackup_error(err, rc, slot, staging, host, port, user):
    """Guidance for a failed pg_basebackup (rc: its exit status as run_command reports it)."""
    low = err.lower()
    killed = killing_signal(rc)  # pg_basebackup itself only exits with 0 or 1
    if killed:
        signum, name = killed
        return ('pg_basebackup was killed by %s (signal %d) before it finished (stopped by hand, by the OOM '
                'killer or by a shutdown?); the partial copy was discarded, run again to clone anew%s'
                % (name, signum, ('. It said: %s' % err.strip()) if err.strip() else ''))
    if slot and 'does not exist' in low and 'slot' in low:
        return ('the replication slot "%s" does not exist on the primary: %s. pg_basebackup said: %s'
                % (slot, missing_slot_advice(slot), err.strip()))
    if slot and 'is active for pid' in low:
        return ('the replication slot "%s" is in use by another connection (another standby?): choose a slot '
                'name of its own for this standby. pg_basebackup said: %s' % (slot, err.strip()))
    if 'no space left' in low:
        return ('the file system of %s ran out of space during the clone: free space (the clone needs the size '
                'of the primary plus WAL). pg_basebackup said: %s' % (staging, err.strip()))
    if 'fatal' in low or 'could not connect' in low or 'connection to server' in low:
        return explain_libpq_error(err, host, port, user)
    return 'pg_basebackup failed: %s' % err.strip()


def basebackup_pids(target):
    """Pids of pg_basebackup processes whose -D is target (the WAL streaming child survives a killed parent)."""
    pids = []
    try:
        entries = os.listdir('/proc')
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                argv = to_native(f.read(), errors='surrogate_or_strict').split('\0')
        except (IOError, OSError):
            continue
        if not argv or os.path.basename(argv[0]) != 'pg_basebackup' or '-D' not in argv:
            continue
        i = argv.index('-D')
        if i + 1 < len(argv) and os.path.normpath(argv[i + 1]) == os.path.normpath(target):
            pids.append(int(entry))
    return pids


def stop_basebackup(target, wait=10.0):
    """Terminate leftover pg_basebackup processes writing into target; return how many there were."""
    pids = basebackup_pids(target)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.time() + wait
    while pids and time.time() < deadline:
        time.sleep(0.2)
        pids = [p for p in basebackup_pids(target) if p in pids]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)


def discard_clone(staging, data_dir, in_place, ignore_errors=False):
    """Remove an unfinished clone of this module: stop the pg_basebackup processes still writing into it, remove
    its files (in_place: the content of the mount point data_dir) and the staging directory."""
    stop_basebackup(data_dir if in_place else os.path.join(staging, 'data'))
    if in_place:
        empty_dir(data_dir)
    shutil.rmtree(staging, ignore_errors=ignore_errors)


def settings_message(plan, data_dir, passfile, where, system_identifier, done):
    """The msg of a run on a standby that is kept (settings, passfile, leftover staging, re-point): done or planned."""
    parts = []
    if plan['settings_changed']:
        parts.append('standby settings %s rewritten%s' % ('were' if done else 'would be',
                                                          '' if plan['followed'] else ' (reload the server)'))
    if plan['passfile_changed']:
        parts.append('passfile %s %s written' % (passfile, 'was' if done else 'would be'))
    if plan['cleaned_staging']:
        parts.append('leftover staging directory %s' % ('removed' if done else 'would be removed'))
    if plan['followed']:
        parts.append('%sre-pointed from %s (reload the server)' % ('' if done else 'would be ', plan['previous_upstream']))
        return '%s is a standby of the same system (identifier %s) as %s; %s' % (
            data_dir, system_identifier, where, '; '.join(parts))
    return '%s is already a standby of %s; %s' % (data_dir, where, '; '.join(parts) if parts else 'nothing to do')


def clone_plan_text(case, data_dir, where, system_identifier, major, found, moved_to, previous_upstream, running):
    """(the diff's first line before, its first line after, the msg) of a planned clone of where into data_dir."""
    before = 'data directory %s: %s\n' % (data_dir, {
        'missing': 'does not exist', 'empty': 'empty',
        'pristine': 'pristine cluster without user data (will be moved to %s)' % moved_to,
        'foreign': (found or '') + ' (will be moved to %s)' % moved_to,
        'standby': 'standby of %s, cloned again (reclone; will be moved to %s)' % (previous_upstream or where,
                                                                                   moved_to)}[case])
    after = 'data directory %s: clone of %s (system identifier %s)\n' % (data_dir, where, system_identifier)
    msg = 'would clone %s (PostgreSQL %d) into %s%s%s' % (
        where, major, data_dir, ' after moving the %s data directory to %s' % (case, moved_to) if moved_to else '',
        '; a server is running there and must be stopped first' if running else '')
    return before, after, msg


def clone_done_message(where, major, size, seconds, data_dir, case, moved_to):
    """The msg of a clone that is in place."""
    return 'cloned %s (PostgreSQL %d, %d bytes in %.1f s) into %s%s; start the server' % (
        where, major, size, seconds, data_dir,
        ' (the previous %s data directory was moved to %s)' % (case, moved_to) if moved_to else '')
