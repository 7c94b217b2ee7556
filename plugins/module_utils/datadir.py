# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A PostgreSQL data directory seen from outside the server: what it holds, its staging directory and lock."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import struct
import time

from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import ModuleFailure, chown, fsync_dir
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import conninfo_points_at, parse_conninfo
from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import read_standby_settings

# name of the marker file in a staging directory of this collection (JSON: pid, started_at, primary, data_dir, mode)
MARKER = 'HOTSTANDBY_STAGING'
STAGING_SUFFIX = '.hotstandby-staging'
LOCK_SUFFIX = '.hotstandby-lock'
FIRST_NORMAL_OID = 16384
# what initdb and a server that ran on it leave in a data directory (PostgreSQL 13 and newer)
CLUSTER_ENTRIES = frozenset([
    'PG_VERSION', 'base', 'global', 'pg_commit_ts', 'pg_dynshmem', 'pg_logical', 'pg_multixact', 'pg_notify',
    'pg_replslot', 'pg_serial', 'pg_snapshots', 'pg_stat', 'pg_stat_tmp', 'pg_subtrans', 'pg_tblspc', 'pg_twophase',
    'pg_wal', 'pg_xact', 'postgresql.auto.conf', 'postgresql.conf', 'pg_hba.conf', 'pg_ident.conf',
    'postmaster.opts', 'postmaster.pid', 'current_logfiles', 'log'])


def utc_stamp():
    """The current UTC time as YYYYmmddTHHMMSSZ."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')


def sibling_path(data_dir, suffix):
    """<parent>/.<basename><suffix>: where the staging directory and the lock file of data_dir are."""
    parent, base = os.path.split(data_dir.rstrip('/'))
    return os.path.join(parent, '.%s%s' % (base, suffix))


def read_system_identifier(data_dir):
    """Read the database system identifier from global/pg_control (first 8 bytes, native byte order)."""
    path = os.path.join(data_dir, 'global', 'pg_control')
    with open(path, 'rb') as f:
        head = f.read(8)
    if len(head) < 8:
        raise ValueError('%s is truncated' % path)
    return '%d' % struct.unpack('=Q', head)[0]


def read_pg_version(data_dir):
    """The content of PG_VERSION (the major version, e.g. '15'), or None."""
    try:
        with open(os.path.join(data_dir, 'PG_VERSION')) as f:
            return f.read().strip()
    except (IOError, OSError):
        return None


def postmaster_pid(data_dir):
    """Pid of a live postmaster using data_dir, or None."""
    path = os.path.join(data_dir, 'postmaster.pid')
    try:
        with open(path) as f:
            first = f.readline().strip()
        pid = int(first)
    except (IOError, OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except OSError as e:
        if e.errno == errno.EPERM:  # exists, owned by someone else
            return pid
        return None
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmdline = f.read()
        if cmdline and b'postgres' not in cmdline and b'postmaster' not in cmdline:
            return None  # the pid was reused by an unrelated process: stale postmaster.pid
    except (IOError, OSError):
        pass
    return pid


def service_hint(data_dir):
    """How to stop the server of data_dir."""
    m = re.match(r'^%s/(\d+)/([^/]+)/?$' % re.escape('/var/lib/postgresql'), data_dir)
    if m:
        return 'systemctl stop postgresql@%s-%s' % (m.group(1), m.group(2))
    return 'pg_ctl stop -D %s (or stop its service)' % data_dir


def listdir_or_empty(path):
    """The entries of a directory, or none where it cannot be read."""
    try:
        return os.listdir(path)
    except OSError:
        return []


def user_data_found(data_dir):
    """Describe user data in a cluster directory (databases, relations, tablespaces), or None."""
    base = os.path.join(data_dir, 'base')
    findings = []
    for db in sorted(listdir_or_empty(base)):
        if db.isdigit() and int(db) >= FIRST_NORMAL_OID:
            findings.append('database directory base/%s' % db)
            continue
        dbpath = os.path.join(base, db)
        if not os.path.isdir(dbpath):
            continue
        for name in os.listdir(dbpath):
            m = re.match(r'^(?:t\d+_)?(\d+)', name)
            if m and int(m.group(1)) >= FIRST_NORMAL_OID:
                findings.append('relation file base/%s/%s' % (db, name))
                break
    tblspc = listdir_or_empty(os.path.join(data_dir, 'pg_tblspc'))
    if tblspc:
        findings.append('tablespaces in pg_tblspc (%s)' % ', '.join(sorted(tblspc)))
    slots = listdir_or_empty(os.path.join(data_dir, 'pg_replslot'))
    if slots:
        findings.append('replication slots in pg_replslot (%s)' % ', '.join(sorted(slots)))
    stray = sorted(n for n in listdir_or_empty(data_dir) if n not in CLUSTER_ENTRIES)
    if stray:
        findings.append('files that initdb does not create (%s%s)' % (', '.join(stray[:5]),
                                                                      ', ...' if len(stray) > 5 else ''))
    return '; '.join(findings[:5]) if findings else None


def _conninfo_fields(conninfo):
    try:
        return parse_conninfo(conninfo or '')
    except ValueError:
        return {}


def conninfo_upstream(conninfo):
    """host:port that a primary_conninfo connects to, for messages ('(no host)' when it names none)."""
    ci = _conninfo_fields(conninfo)
    return '%s:%s' % (ci.get('host') or ci.get('hostaddr') or '(no host)', ci.get('port') or '5432')


def classify_data_dir(data_dir, host, port, system_identifier, follow=False):
    """Classify data_dir against the primary host:port with that system identifier.

    Returns (case, found): case is missing, empty, standby, pristine or foreign; found describes a foreign
    directory (None otherwise). Only reads.

    follow: a directory of that system identifier in standby mode whose primary_conninfo names another host:port
    (a sibling of a promoted standby, still pointing at the old primary) is a standby too, to be re-pointed; a
    directory of that system not in standby mode (a former primary) stays foreign.
    """
    d = data_dir
    if not os.path.lexists(d):
        return 'missing', None
    if not os.path.isdir(d):
        return 'foreign', 'a %s, not a directory' % ('file' if os.path.isfile(d) else 'special file')
    entries = sorted(os.listdir(d))
    if not entries:
        return 'empty', None
    version = read_pg_version(d)
    primary_desc = 'primary %s:%s (system identifier %s)' % (host, port, system_identifier)
    if version is None:
        shown = ', '.join(entries[:5]) + (', ...' if len(entries) > 5 else '')
        return 'foreign', ('a non-empty directory that is not a PostgreSQL data directory (%d entries: %s), not a '
                           'standby of %s' % (len(entries), shown, primary_desc))
    try:
        sysid = read_system_identifier(d)
    except (IOError, OSError, ValueError):
        return 'foreign', ('an incomplete PostgreSQL %s data directory (PG_VERSION but no readable global/'
                           'pg_control), not a standby of %s' % (version, primary_desc))
    settings = read_standby_settings(d)
    ci = _conninfo_fields(settings['conninfo'])
    what = 'a PostgreSQL %s cluster with system identifier %s' % (version, sysid)
    if sysid == system_identifier:
        if settings['signal'] and conninfo_points_at(settings['conninfo'], host, port):
            return 'standby', None
        names_host = bool(ci.get('host') or ci.get('hostaddr'))
        if settings['signal'] and follow and names_host:
            return 'standby', None  # streams (or tries to) from another upstream of the same system: re-pointed
        if settings['signal']:
            if not follow:
                hint = '; to re-point it at %s:%s (a sibling after a switchover or failover) set follow: true' % (
                    host, port)
            else:
                hint = '; follow re-points only a standby whose primary_conninfo names a host'
            return 'foreign', ('%s (the primary\'s) in standby mode, but its primary_conninfo points at %s, '
                               'not at %s:%s; it is not a standby of %s%s' % (
                                   what, conninfo_upstream(settings['conninfo']), host, port, primary_desc, hint))
        return 'foreign', ('%s (the primary\'s) that is not in standby mode (no standby.signal: a promoted standby '
                           'or a former primary, whose history may have diverged), not a standby of %s%s'
                           % (what, primary_desc, '; follow re-points only standbys: a former primary rejoins with '
                              'hotstandby.postgresql.pg_rejoin' if follow else ''))
    if settings['signal'] or os.path.exists(os.path.join(d, 'recovery.signal')) or \
            os.path.exists(os.path.join(d, 'backup_label')):
        return 'foreign', ('%s in recovery/standby mode (primary_conninfo host %s), not a standby of %s'
                           % (what, ci.get('host') or '(none)', primary_desc))
    data = user_data_found(d)
    if data is None:
        return 'pristine', None
    return 'foreign', ('%s holding data that a fresh initdb does not have (%s), not a standby of %s'
                       % (what, data, primary_desc))


def dir_size(path):
    """Sum of the sizes of the regular files below path."""
    total = 0
    for root, dummy, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def empty_dir(path):
    """Remove everything in the directory path (not path itself)."""
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry)
        else:
            os.unlink(entry)


def read_staging_marker(staging):
    """The marker of a staging directory: its dict, {} when unreadable as JSON, None when there is none."""
    try:
        with open(os.path.join(staging, MARKER)) as f:
            marker = json.load(f)
    except ValueError:
        return {}
    except (IOError, OSError):
        return None
    return marker if isinstance(marker, dict) else {}


def create_staging(staging, marker, owner=None):
    """Create the staging directory (mode 0700) with its marker file, durably."""
    os.mkdir(staging, 0o700)
    chown(staging, owner)
    with open(os.path.join(staging, MARKER), 'w') as f:
        json.dump(marker, f)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(os.path.dirname(staging))


def leftover_staging(staging, data_dir):
    """(leftover, in_place): whether a staging directory of an interrupted run exists, and whether it marks a
    clone directly into data_dir as a mount point. Raises ModuleFailure for a staging path that is not ours."""
    if not os.path.lexists(staging):
        return False, False
    marker = read_staging_marker(staging)
    if marker is None or not os.path.isdir(staging) or os.path.islink(staging):
        raise ModuleFailure('%s exists but is not a staging directory of this module (no %s marker file in it): it is '
                            'left alone; move or remove it yourself, then run again' % (staging, MARKER))
    return True, marker.get('mode') == 'in_place' and os.path.isdir(data_dir) and os.path.ismount(data_dir)


def move_aside(data_dir, dest):
    """Rename data_dir to dest (or dest-1, dest-2, ... if that exists); return where it went."""
    candidate = dest
    i = 1
    while os.path.lexists(candidate):
        candidate = '%s-%d' % (dest, i)
        i += 1
    os.rename(data_dir, candidate)
    return candidate


def reclone_marker_found(path):
    """Whether a re-clone marker file (or symbolic link) exists at path (None: no marker configured)."""
    if path and os.path.isdir(path):
        raise ModuleFailure('reclone_marker %s is a directory: it must be a file, or absent' % path)
    return bool(path) and os.path.lexists(path)


def remove_file(path):
    """Remove the file path durably (fsync of its directory); a missing file is fine."""
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    fsync_dir(os.path.dirname(path) or '.')


class DataDirLock(object):
    """An exclusive flock on <parent>/.<basename>.hotstandby-lock, held for the whole of a run.

    The file holds the holder's pid and start time, for the message of a run that is refused. The holder
    removes it before it releases the lock; a file left by a killed run is harmless (nobody holds its lock).
    A check-mode run only tests an existing file (read-only, shared lock) and creates nothing.
    """

    def __init__(self, data_dir, wait=0.5):
        self.data_dir = data_dir
        self.path = sibling_path(data_dir, LOCK_SUFFIX)
        self.wait = wait  # a concurrent check-mode test holds a shared lock for a moment only
        self.fd = None

    @contextlib.contextmanager
    def held(self, check_mode=False):
        if check_mode:
            self.probe()
            yield self
            return
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def _open(self, flags):
        try:
            fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            if e.errno == errno.ENOENT and not flags & os.O_CREAT:
                return None
            raise ModuleFailure('the lock file %s cannot be opened (%s): it must be a regular file this module '
                                'creates; remove it if no run of this module is active, then run again'
                                % (self.path, to_native(e.strerror)))
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            os.close(fd)
            raise ModuleFailure('the lock file %s is not a regular file with one name: remove it if no run of this '
                                'module is active, then run again' % self.path)
        return fd

    @staticmethod
    def _flock(fd, kind):
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except (IOError, OSError) as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise

    def _busy(self, fd):
        try:
            holder = json.loads(to_native(os.pread(fd, 4096, 0), errors='surrogate_or_replace') or '{}')
        except (OSError, ValueError):
            holder = {}
        if not isinstance(holder, dict):
            holder = {}
        os.close(fd)
        return ModuleFailure(
            'another run of this module (pid %s, started %s) holds the lock %s: it is cloning into or '
            'reconfiguring %s right now. Wait for that run to finish (or for process %s to end), then run again'
            % (holder.get('pid', 'unknown'), holder.get('started_at', 'at an unknown time'), self.path,
               self.data_dir, holder.get('pid', 'unknown')))

    def probe(self):
        """Check mode: raise ModuleFailure when another run holds the lock; create nothing."""
        fd = self._open(os.O_RDONLY)
        if fd is None:
            return  # no lock file: nobody holds it
        if not self._flock(fd, fcntl.LOCK_SH):
            raise self._busy(fd)
        os.close(fd)  # releases the shared lock

    def acquire(self):
        """Take the lock (creating the file) or raise ModuleFailure naming the holder."""
        deadline = time.time() + self.wait
        while True:
            fd = self._open(os.O_RDWR | os.O_CREAT)
            if self._flock(fd, fcntl.LOCK_EX):
                try:
                    now = os.stat(self.path)
                except OSError:
                    now = None
                st = os.fstat(fd)
                if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                    break
                os.close(fd)  # the previous holder removed this file before it released it: open anew
                continue
            if time.time() >= deadline:
                raise self._busy(fd)
            os.close(fd)
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, to_bytes(json.dumps(dict(pid=os.getpid(), started_at=utc_stamp(), data_dir=self.data_dir))),
                  0)
        self.fd = fd

    def release(self):
        """Remove the lock file and release the lock."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def replace_empty_dir(data_dir, staging):
    """Remove the data directory that was empty when the clone in staging was planned, to put the clone there."""
    try:
        os.rmdir(data_dir)
    except OSError as e:
        raise ModuleFailure('%s was empty before the clone but could not be replaced (%s): something was put into it '
                            'meanwhile. The clone in %s is discarded on the next run; check %s, empty it and run again'
                            % (data_dir, to_native(e), staging, data_dir))


def clear_reclone_marker(path, data_dir):
    """Remove the re-clone marker once the clone it asked for is in data_dir."""
    try:
        remove_file(path)
    except OSError as e:
        raise ModuleFailure('cloned into %s, but the reclone marker %s could not be removed (%s): remove it yourself, '
                            'or the next run clones again' % (data_dir, path, to_native(e)))
