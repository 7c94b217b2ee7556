# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the modules of hotstandby.postgresql share beyond PostgreSQL: the failure, the environment, file writes."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
import signal
import subprocess
import tempfile

from ansible.module_utils.common.text.converters import to_bytes, to_native

# the environment of every PostgreSQL program the modules run: messages in English, parseable output
C_ENV = {'LC_ALL': 'C', 'LC_MESSAGES': 'C', 'LANG': 'C', 'LANGUAGE': 'C'}


class ModuleFailure(Exception):
    """Raised for any condition that must end the run with fail_json (the message is for the user)."""


def owner_account(module, name, data_dir):
    """(uid, gid, home, prefix) of the operating system user name that owns data_dir.

    prefix runs a program as that user: runuser -u name -- when the module runs as root (runuser without -l keeps
    the environment, so what the module passes there, such as PGPASSWORD, reaches the program), nothing when it
    runs as that user. Raises ModuleFailure otherwise, or when the user does not exist.
    """
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise ModuleFailure('the owner "%s" does not exist on this host: install the PostgreSQL server package (it '
                            'creates the postgres user) or set owner to the user that should own %s' % (name, data_dir))
    euid = os.geteuid()
    if euid == 0 and pw.pw_uid != 0:
        prefix = [module.get_bin_path('runuser', required=True), '-u', name, '--']
    elif euid == pw.pw_uid:
        prefix = []
    else:
        raise ModuleFailure('the module runs as uid %d but must run as root (become: true) or as the owner "%s" of '
                            'the data directory' % (euid, name))
    return pw.pw_uid, pw.pw_gid, pw.pw_dir, prefix


def run_as(module, prefix, args, password=None):
    """Run a program through prefix (owner_account's, e.g. runuser -u postgres --) in the C locale, from /.

    A password reaches the program only in its environment (PGPASSWORD), never on its command line.
    """
    env = dict(C_ENV, PGPASSWORD=password) if password is not None else dict(C_ENV)
    return module.run_command(list(prefix) + list(args), environ_update=env, cwd='/')


def run_as_to_file(module, prefix, args, path, password=None):
    """Run a program like run_as, but with its stdout and stderr going to a new file path (mode 0600, owned by
    the module's user: created exclusively, never through a symbolic link). Returns (rc, '', the text of path).

    The output goes to the file as the program writes it, so that someone else can read it meanwhile (e.g. the
    progress of a long run). No pipe is used: a child that outlives the program (pg_basebackup's WAL streaming
    process) cannot keep the call waiting. rc is negative when a signal killed the program, as with run_command.
    """
    env = dict(os.environ)
    env.update(C_ENV)
    if password is not None:
        env['PGPASSWORD'] = password
    cmd = list(prefix) + list(args)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env, cwd='/',
                                    close_fds=True)
        except OSError as e:
            return 127, '', 'could not run %s: %s' % (cmd[0], to_native(e))
        rc = proc.wait()
    finally:
        os.close(fd)
    with open(path, 'rb') as f:
        return rc, '', to_native(f.read(), errors='surrogate_or_replace')


def killing_signal(rc):
    """(number, name) of the signal that killed a program, from its exit status rc as run_command reports it, or None.

    A negative rc: killed by that signal; above 128: runuser (or a shell) reports a child killed by rc - 128.
    """
    signum = -rc if rc < 0 else rc - 128 if 128 < rc < 128 + 65 else None
    if not signum:
        return None
    try:
        return signum, signal.Signals(signum).name
    except ValueError:
        return signum, 'signal %d' % signum


def fsync_dir(path):
    """fsync a directory (after a rename or unlink in it), ignoring errors."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def chown(path, owner):
    """lchown path to owner (uid, gid) when running as root."""
    if owner and os.geteuid() == 0:
        os.lchown(path, owner[0], owner[1])


def write_file_atomic(path, content, owner=None, mode=0o600):
    """Write content to path through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, mode)
        if owner and os.geteuid() == 0:
            os.fchown(fd, owner[0], owner[1])
        os.write(fd, to_bytes(content))
        os.fsync(fd)
    except Exception:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
