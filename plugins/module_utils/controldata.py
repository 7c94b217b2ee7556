# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A stopped cluster seen through pg_controldata: its state, timeline and where its WAL ends.

Pure functions (no module, no program run): the caller runs pg_controldata -D <data_dir> in the C locale and
passes its output. WAL locations are compared as integers with module_utils.replication's LSN helpers.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

from ansible_collections.hotstandby.postgresql.plugins.module_utils.replication import int_to_lsn, lsn_to_int

# the states of a cleanly stopped cluster: a primary's shutdown checkpoint, or a standby's shutdown restartpoint
CLEAN_STATES = ('shut down', 'shut down in recovery')

# pg_controldata line -> (key, type); 'lsn' values are normalised ('0/040000A0' -> '0/40000A0')
FIELDS = {
    'pg_control version number': ('control_version', int),
    'Database system identifier': ('system_identifier', str),
    'Database cluster state': ('state', str),
    'Latest checkpoint location': ('checkpoint_lsn', 'lsn'),
    "Latest checkpoint's REDO location": ('redo_lsn', 'lsn'),
    "Latest checkpoint's TimeLineID": ('checkpoint_timeline', int),
    "Latest checkpoint's PrevTimeLineID": ('prev_timeline', int),
    "Latest checkpoint's full_page_writes": ('full_page_writes', bool),
    'Time of latest checkpoint': ('checkpoint_time', str),
    'Minimum recovery ending location': ('min_recovery_lsn', 'lsn'),
    "Min recovery ending loc's timeline": ('min_recovery_timeline', int),
    'wal_level setting': ('wal_level', str),
    'wal_log_hints setting': ('wal_log_hints', bool),
    'Bytes per WAL segment': ('wal_segment_size', int),
    'Data page checksum version': ('data_checksum_version', int),
}
REQUIRED = ('system_identifier', 'state', 'checkpoint_lsn', 'redo_lsn', 'checkpoint_timeline', 'min_recovery_lsn',
            'min_recovery_timeline', 'wal_log_hints', 'data_checksum_version')


def parse_controldata(text):
    """pg_controldata's output (C locale) as a dict: the FIELDS keys (typed), and raw (every line as printed).

    Raises ValueError when a REQUIRED field is missing or malformed (another locale, or not pg_controldata).
    """
    raw = {}
    for line in text.splitlines():
        name, sep, value = line.partition(':')
        if sep:
            raw[name.strip()] = value.strip()
    result = dict(raw=raw)
    for name, (key, kind) in FIELDS.items():
        if name not in raw:
            continue
        value = raw[name]
        try:
            if kind == 'lsn':
                value = int_to_lsn(lsn_to_int(value))
            elif kind is bool:
                if value not in ('on', 'off'):
                    raise ValueError(value)
                value = value == 'on'
            elif kind is int:
                value = int(value)
        except ValueError:
            raise ValueError('pg_controldata printed %s: %r, which is not understood' % (name, raw[name]))
        result[key] = value
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise ValueError('pg_controldata printed no %s (is its output in the C locale?)' % ', '.join(
            n for n, (k, t) in sorted(FIELDS.items()) if k in missing))
    return result


def wal_end(cd):
    """Where the local WAL of a stopped cluster ends (cd: parse_controldata()), as decide() compares it.

    Returns (timeline, end_lsn, end_is_record_start):
      - a cleanly shut down primary ("shut down"): the shutdown checkpoint is its last WAL record; end_lsn is where
        that record starts (Latest checkpoint location), end_is_record_start True, on the checkpoint's timeline;
      - a standby ("shut down in recovery") or a rewound directory: it replayed up to the minimum recovery point
        (pg_rewind takes the same end); end_lsn is that position, end_is_record_start False, on its timeline. If the
        checkpoint record starts at or after it, as without a minimum recovery point (0/0), the checkpoint counts,
        as for a primary.
    """
    ckpt, minrec = lsn_to_int(cd['checkpoint_lsn']), lsn_to_int(cd['min_recovery_lsn'])
    if minrec > ckpt:
        return cd['min_recovery_timeline'] or cd['checkpoint_timeline'], cd['min_recovery_lsn'], False
    return cd['checkpoint_timeline'], cd['checkpoint_lsn'], True


def backup_method(data_dir):
    """The BACKUP METHOD of data_dir/backup_label ('pg_rewind' after a rewind, 'streamed' after pg_basebackup, ...),
    '' for a label without one, None without a backup_label."""
    try:
        with open(os.path.join(data_dir, 'backup_label')) as f:
            text = f.read()
    except (IOError, OSError):
        return None
    m = re.search(r'^BACKUP METHOD:\s*(\S+)', text, re.M)
    return m.group(1) if m else ''


def cluster_name(data_dir, config_file=None):
    """(version, name) of a Debian cluster from /etc/postgresql/<v>/<name>/... or /var/lib/postgresql/<v>/<name>."""
    for path, pattern in ((config_file or '', r'^/etc/postgresql/(\d+)/([^/]+)/'),
                          (data_dir, r'^/var/lib/postgresql/(\d+)/([^/]+)/?$')):
        m = re.match(pattern, path)
        if m:
            return m.group(1), m.group(2)
    return None


def state_problem(cd, data_dir, running_pid=None, label_method=None, config_file=None):
    """None when the stopped cluster cd of data_dir can be rejoined as it is, else the message saying what to do.

    Accepted: a clean shutdown (CLEAN_STATES), and a directory that pg_rewind rewound and that was not started since
    ("in archive recovery" with pg_rewind's backup_label). running_pid: a live postmaster of data_dir.
    """
    state = cd['state']
    debian = cluster_name(data_dir, config_file)
    if running_pid:
        return ('a PostgreSQL server (pid %d) is running in %s: stop it first (%s), then run again; if it already '
                'streams from the new upstream, there is nothing to rejoin'
                % (running_pid, data_dir, 'systemctl stop postgresql@%s-%s' % debian if debian else
                   'pg_ctl stop -D %s -m fast' % data_dir))
    if state in CLEAN_STATES or (state == 'in archive recovery' and label_method == 'pg_rewind'):
        return None
    if label_method is not None and label_method != 'pg_rewind':
        return ('%s holds a base backup that was never started (backup_label, Database cluster state "%s"): if it is '
                'a clone of the new upstream, start it as a standby; otherwise clone it anew with pg_basebackup'
                % (data_dir, state))
    if debian:
        how = 'pg_ctlcluster %s %s start; pg_ctlcluster %s %s stop -m fast' % (debian + debian)
    else:
        how = 'pg_ctl start -D %s; pg_ctl stop -D %s -m fast' % (data_dir, data_dir)
    return ('%s was not shut down cleanly (Database cluster state "%s": it crashed or was stopped with -m immediate): '
            'start and stop it cleanly once (%s) so that its WAL is consistent, then run again; keep clients away '
            'meanwhile, since without standby.signal it starts as a primary. Nothing was changed'
            % (data_dir, state, how))
