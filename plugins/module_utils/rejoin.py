# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rejoining a stopped cluster to a new upstream: timeline histories, the decision (none, rewind, clone, refuse),
pg_rewind's command line and errors, and the copy of diverged data kept before a rewind.

decide() and the parsers are pure; the rest only reads the file system, except move_signal_files().
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import killing_signal
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import dir_size, listdir_or_empty
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import explain_libpq_error
from ansible_collections.hotstandby.postgresql.plugins.module_utils.replication import int_to_lsn, lsn_to_int

METHODS = ('none', 'rewind', 'clone', 'refuse')
SIGNAL_FILES = ('standby.signal', 'recovery.signal')
SIGNAL_SUFFIX = '.hotstandby-rejoin'
COPY_MARGIN = 0.05  # free space a copy needs beyond the size of the data directory


# -- timeline histories ----------------------------------------------------------

def parse_timeline_history(text):
    """The entries of a timeline history file (TIMELINE_HISTORY's content, or pg_wal/<TLI>.history), in order.

    Each is a dict: timeline (a parent timeline), switchpoint (the WAL location where it ended, normalised) and
    reason. Blank lines and # comments are skipped, as the server does. Raises ValueError for anything else.
    """
    entries = []
    for line in (text or '').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        fields = re.split(r'\s+', line, 2)
        if len(fields) < 2 or not fields[0].isdigit():
            raise ValueError('not a timeline history line: %r' % line)
        tli = int(fields[0])
        if entries and tli <= entries[-1]['timeline']:
            raise ValueError('timeline IDs must be in increasing sequence: %r' % line)
        entries.append(dict(timeline=tli, switchpoint=int_to_lsn(lsn_to_int(fields[1])),
                            reason=fields[2] if len(fields) > 2 else ''))
    return entries


def timeline_ranges(history, timeline):
    """[(tli, begin, end)] of the timelines leading to timeline (history: its parsed history file), as integers;
    the end of timeline itself is None (not left)."""
    ranges, begin = [], 0
    for entry in history:
        end = lsn_to_int(entry['switchpoint'])
        ranges.append((entry['timeline'], begin, end))
        begin = end
    return ranges + [(timeline, begin, None)]


def local_ranges(timeline, local_history, upstream_ranges):
    """The timeline ranges of this node: from its own history file when it has one, else (a missing file) as far as
    the upstream's history describes this node's timeline; None when nothing is known about it."""
    if timeline == 1:
        return [(1, 0, None)]
    if local_history is not None:
        return timeline_ranges(local_history, timeline)
    for i, (tli, begin, dummy) in enumerate(upstream_ranges):
        if tli == timeline:
            return upstream_ranges[:i] + [(tli, begin, None)]
    return None


def common_ancestor(mine, theirs):
    """(tli, fork) of the newest timeline both range lists share (same ID and same begin), as pg_rewind's
    findCommonAncestorTimeline: fork is where the first of the two left it (None: neither did). None if none."""
    i = 0
    while i < len(mine) and i < len(theirs) and mine[i][:2] == theirs[i][:2]:
        i += 1
    if i == 0:
        return None
    ends = [e for e in (mine[i - 1][2], theirs[i - 1][2]) if e is not None]
    return mine[i - 1][0], min(ends) if ends else None


# -- the decision ------------------------------------------------------------------

def _result(method, reason, local, fork=None, start=None, end=None, size=0):
    return dict(method=method, reason=reason, fork_lsn=None if fork is None else int_to_lsn(fork),
                local_end_lsn=local['end_lsn'], discarded=dict(start=start, end=end, bytes=size))


def decide(local, upstream, history, local_history=None):
    """What it takes for this stopped node (local) to stream from upstream. Pure.

    local: system_identifier, major, timeline, end_lsn, end_is_record_start (controldata.wal_end()),
    wal_log_hints (bool), data_checksum_version (int). upstream: system_identifier, major, timeline, xlogpos
    (IDENTIFY_SYSTEM), full_page_writes (bool or None). history: the parsed history of the upstream's timeline
    ([] on timeline 1); local_history: the node's own parsed history file, None when it has none.

    Returns a dict: method (none, rewind, clone, refuse), reason (a sentence), fork_lsn, local_end_lsn and
    discarded (start, end, bytes: the WAL this node has past what the upstream shares with it; bytes 0 when nothing
    is lost, None when unknown).

    The local WAL has diverged from the upstream's timeline when it goes past the fork, the switchpoint where the
    upstream's history left this node's timeline. When end_lsn is where the last record starts (a shutdown
    checkpoint), it has diverged when end_lsn >= fork: the switchpoint is the end of the last record the promoted
    standby replayed, so a shutdown checkpoint starting before it was replayed there (it then ends exactly at the
    switchpoint), and nothing was written after it. When end_lsn is a replay position (a standby's minimum recovery
    point), it has diverged when end_lsn > fork, as pg_rewind compares. bytes counts from the fork to end_lsn, so the
    shutdown checkpoint alone (which holds no data) counts 0.
    """
    sysid, tli, up_tli = local['system_identifier'], local['timeline'], upstream['timeline']
    if sysid != upstream['system_identifier']:
        return dict(_result('clone', 'the upstream is another cluster (system identifier %s, this data directory %s): '
                            'nothing can be rewound, the node must be cloned' % (upstream['system_identifier'], sysid),
                            local), discarded=dict(start=None, end=None, bytes=None))
    if local['major'] != upstream['major']:
        return _result('clone', 'the upstream runs PostgreSQL %s and this data directory is PostgreSQL %s: the node '
                       'must be cloned' % (upstream['major'], local['major']), local, size=None)
    if tli > up_tli:
        return _result('refuse', 'the upstream is on timeline %d, older than this node\'s %d: this node may be the '
                       'newer primary; check the topology' % (up_tli, tli), local)
    theirs = timeline_ranges(history, up_tli)
    mine = local_ranges(tli, local_history, theirs)
    common = common_ancestor(mine, theirs) if mine else None
    end = lsn_to_int(local['end_lsn'])
    if common is None:
        return _result('clone', 'the timeline history of the upstream (timeline %d) and that of this node (timeline '
                       '%d) have no common ancestor: the node must be cloned' % (up_tli, tli), local,
                       end=local['end_lsn'], size=None)
    shared, fork = common
    if fork is None:  # the same timeline, with the same history
        xlogpos = lsn_to_int(upstream['xlogpos'])
        if end <= xlogpos:
            return _result('none', 'this node is on the upstream\'s timeline %d and its WAL ends at %s, not past the '
                           'upstream\'s %s: it can stream from there' % (tli, local['end_lsn'], upstream['xlogpos']),
                           local)
        return _result('clone', 'this node is ahead of its upstream on the same timeline %d (its WAL ends at %s, the '
                       'upstream\'s at %s), which pg_rewind cannot undo: the node must be cloned (or, if the upstream '
                       'is still catching up, wait and run again)' % (tli, local['end_lsn'], upstream['xlogpos']),
                       local, start=upstream['xlogpos'], end=local['end_lsn'], size=end - xlogpos)
    diverged = end >= fork if local['end_is_record_start'] else end > fork
    where = ('the upstream\'s timeline %d left timeline %d at %s' % (up_tli, shared, int_to_lsn(fork))
             if shared == tli else 'timeline %d here and on the upstream have different histories (they part at %s '
             'on timeline %d)' % (tli, int_to_lsn(fork), shared))
    if not diverged:
        return _result('none', '%s and this node\'s WAL ends at %s, before that: the upstream has everything this node '
                       'has' % (where, local['end_lsn']), local, fork)
    lost = dict(fork=fork, start=int_to_lsn(fork), end=local['end_lsn'], size=max(0, end - fork))
    if not (local['wal_log_hints'] or local['data_checksum_version']):
        return _result('clone', '%s and this node went on to %s; pg_rewind needs wal_log_hints or data checksums, '
                       'which this node has not: the node must be cloned' % (where, local['end_lsn']), local, **lost)
    if upstream.get('full_page_writes') is False:
        return _result('clone', '%s and this node went on to %s; pg_rewind needs full_page_writes = on on the '
                       'upstream: set it there, or clone the node' % (where, local['end_lsn']), local, **lost)
    return _result('rewind', '%s and this node went on to %s: its WAL after the fork is undone with pg_rewind'
                   % (where, local['end_lsn']), local, **lost)


# -- pg_rewind -----------------------------------------------------------------------

def rewind_args(bin_dir, data_dir, source, major, config_file=None, restore=False, dry_run=False):
    """pg_rewind's command line (the password is never on it: it comes from PGPASSWORD).

    --no-ensure-shutdown: the module has checked the clean shutdown and never lets pg_rewind run crash recovery.
    """
    args = [os.path.join(bin_dir, 'pg_rewind'), '--target-pgdata', data_dir, '--source-server', source,
            '--no-ensure-shutdown']
    if major >= 15 and config_file:
        args.append('--config-file=%s' % config_file)
    if restore:
        args.append('--restore-target-wal')
    args.append('--dry-run' if dry_run else '--progress')
    return args


def missing_wal(err):
    """Whether pg_rewind's stderr says that it misses WAL of the target."""
    low = err.lower()
    return ('could not open file' in low and 'pg_wal' in low) or 'could not read wal record' in low or \
        'could not find previous wal record' in low


def explain_rewind_error(err, rc, host, port, user):
    """(guidance, needs_clone) for a failed pg_rewind; needs_clone: only a new clone can help."""
    text = err.strip()
    low = text.lower()
    killed = killing_signal(rc)
    if killed:
        return ('pg_rewind was killed by %s before it finished; the data directory may be unusable: clone the node '
                'anew. pg_rewind said: %s' % (killed[1], text), True)
    if 'could not find common ancestor' in low or 'from different systems' in low:
        return ('the histories of this node and the upstream have no common ancestor: clone the node anew. pg_rewind '
                'said: %s' % text, True)
    if 'restore_command is not set' in low:
        return ('pg_rewind found no restore_command in the target\'s configuration: set it, or run with '
                'restore_target_wal: false. pg_rewind said: %s' % text, False)
    if missing_wal(err):
        return ('pg_rewind needs WAL of this node from before the fork that is no longer in its pg_wal: configure '
                'restore_command (with restore_target_wal: true) so that it is fetched from the archive, or clone the '
                'node anew. pg_rewind said: %s' % text, True)
    if 'permission denied for function' in low or 'must be superuser' in low:
        return ('role "%s" may not read files on the upstream %s:%s: run there, in database postgres, GRANT EXECUTE '
                'ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean), pg_catalog.pg_stat_file(text, boolean), '
                'pg_catalog.pg_read_binary_file(text), pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) '
                'TO %s. pg_rewind said: %s' % (user, host, port, user, text), False)
    if 'no pg_hba.conf entry' in low:
        return ('the upstream %s:%s has no pg_hba.conf entry that lets role "%s" connect to database postgres from '
                'this node (pg_rewind uses a normal connection, not a replication one): add "host postgres %s '
                '<address>/32 scram-sha-256" there and reload it. pg_rewind said: %s' % (host, port, user, user, text),
                False)
    if 'full_page_writes must be enabled' in low or 'must not be in recovery' in low:
        return ('the upstream %s:%s cannot be the source of a rewind (full_page_writes must be on; before PostgreSQL '
                '14 it must be a primary): fix that, or clone the node. pg_rewind said: %s' % (host, port, text), False)
    if 'must be shut down cleanly' in low:
        return ('pg_rewind found the target not cleanly shut down: stop it cleanly and run again. pg_rewind said: %s'
                % text, False)
    if 'connection to server' in low or 'could not connect' in low or 'fatal:' in low:
        return (explain_libpq_error(err, host, port, user), False)
    return ('pg_rewind failed, the data directory may be unusable: clone the node anew. pg_rewind said: %s' % text,
            True)


def rewind_did_nothing(out):
    """Whether pg_rewind's output says it had nothing to do (the upstream's pg_control still showed this node's
    timeline: before PostgreSQL 16 pg_rewind reads the timeline there, which a promotion updates only at the next
    checkpoint)."""
    low = out.lower()
    return 'no rewind required' in low or 'source and target cluster are on the same timeline' in low


# -- the copy of diverged data ----------------------------------------------------------------

def copy_problem(data_dir, copy_dir):
    """None when a copy of data_dir can be made at copy_dir, else the reason (nothing is written). Tablespaces are
    refused (a copy of pg_tblspc holds only their links); a pg_wal that is a link is copied as a directory."""
    parent = os.path.dirname(copy_dir.rstrip('/')) or '/'
    if os.path.lexists(copy_dir):
        return '%s exists already: remove it or set another copy_dir' % copy_dir
    if not os.path.isdir(parent):
        return 'the directory %s for the copy does not exist: create it or set another copy_dir' % parent
    spaces = sorted(listdir_or_empty(os.path.join(data_dir, 'pg_tblspc')))
    if spaces:
        return ('%s has tablespaces (pg_tblspc: %s), which the copy would not hold: keep a copy of them yourself and '
                'run with discard_diverged: true' % (data_dir, ', '.join(spaces)))
    need = copy_size(data_dir)
    st = os.statvfs(parent)
    free = st.f_bavail * st.f_frsize
    if free < need * (1 + COPY_MARGIN):
        return ('not enough free space in %s for a copy of %s (%d bytes needed with a margin of %d%%, %d free): free '
                'space, set copy_dir on a file system with room, or run with discard_diverged: true to rewind '
                'without keeping a copy' % (parent, data_dir, need, int(COPY_MARGIN * 100), free))
    return None


def copy_size(data_dir):
    """Bytes of the files of data_dir, with those of its pg_wal when that is a link to elsewhere."""
    wal = os.path.join(data_dir, 'pg_wal')
    return dir_size(data_dir) + (dir_size(os.path.realpath(wal)) if os.path.islink(wal) else 0)


def copy_data_dir(run, cp, data_dir, copy_dir):
    """Copy data_dir to copy_dir with cp -a --reflink=auto (owners, modes and times kept; reflinks where the file
    system has them) through run (args -> (rc, out, err)); a linked pg_wal is copied in place of its link.

    Returns (rc, stderr) of the first cp that failed, or (0, ''). A partial copy is left for the caller.
    """
    rc, out, err = run([cp, '-a', '--reflink=auto', '--', data_dir, copy_dir])
    wal = os.path.join(data_dir, 'pg_wal')
    if rc == 0 and os.path.islink(wal):
        os.unlink(os.path.join(copy_dir, 'pg_wal'))
        rc, out, err = run([cp, '-a', '--reflink=auto', '--', os.path.realpath(wal), os.path.join(copy_dir, 'pg_wal')])
    return rc, err


def signal_files(data_dir):
    """The recovery signal files in data_dir."""
    return [n for n in SIGNAL_FILES if os.path.lexists(os.path.join(data_dir, n))]


def moved_signal_path(data_dir, name):
    """Where a signal file is moved while pg_rewind runs: next to data_dir (pg_rewind removes the target's files
    that the source does not have)."""
    parent, base = os.path.split(data_dir.rstrip('/'))
    return os.path.join(parent, '.%s.%s%s' % (base, name, SIGNAL_SUFFIX))


def move_signal_files(data_dir):
    """Move the signal files out of data_dir; return the (original, moved) paths."""
    moved = []
    for name in signal_files(data_dir):
        pair = (os.path.join(data_dir, name), moved_signal_path(data_dir, name))
        os.replace(*pair)
        moved.append(pair)
    return moved
