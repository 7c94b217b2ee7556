# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A standby and its upstream server: the connection options (doc fragment hotstandby.postgresql.upstream), the
connection strings, and the standby settings and passfile entry a data directory needs to stream from it.

Shared by the modules that make a data directory a standby (pg_basebackup, pg_rejoin).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import write_file_atomic
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import (
    build_conninfo, parse_conninfo, pgpass_state)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import (
    read_standby_settings, standby_settings_text, write_standby_settings)

# the options of the doc fragment hotstandby.postgresql.upstream
UPSTREAM_SPEC = dict(
    primary_host=dict(type='str', required=True),
    primary_port=dict(type='int', default=5432),
    user=dict(type='str', required=True),
    password=dict(type='str', required=True, no_log=True),
    connect_timeout=dict(type='int', default=10),
    sslmode=dict(type='str', default='prefer',
                 choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
    sslrootcert=dict(type='path'),
    passfile=dict(type='path', no_log=False),
)


def upstream_conninfo(params, application_name, replication=False, passfile=None, dbname=None):
    """The connection string to the upstream the module parameters (UPSTREAM_SPEC) describe; never with a password.

    replication: a walsender connection (dbname=replication replication=true) for replication commands; dbname: a
    normal connection to that database (pg_rewind's source); passfile: the standby's own primary_conninfo.
    """
    pairs = [('host', params['primary_host']), ('port', params['primary_port']), ('user', params['user']),
             ('passfile', passfile)]
    if replication:
        pairs += [('dbname', 'replication'), ('replication', 'true')]
    elif dbname:
        pairs.append(('dbname', dbname))
    return build_conninfo(pairs + [
        ('application_name', application_name), ('sslmode', params['sslmode']),
        ('sslrootcert', params['sslrootcert']), ('connect_timeout', params['connect_timeout'])])


def passfile_state(passfile, params, owner):
    """(new_text, state, changed) of the upstream's entry host:port:replication:user in the passfile.

    state is missing, outdated or current; changed is also true for another mode than 0600 or (as root) another
    owner than owner (uid, gid).
    """
    return pgpass_state(passfile, params['primary_host'], params['primary_port'], 'replication', params['user'],
                        params['password'], owner[0] if os.geteuid() == 0 else None)


def passfile_diff(passfile, params, state):
    """(before, after) diff lines of the passfile entry in state (the password is never shown)."""
    entry = '# passfile %s: entry for %s:%s:replication:%s is ' % (
        passfile, params['primary_host'], params['primary_port'], params['user'])
    return entry + state + '\n', entry + 'current\n'


def write_passfile(passfile, params, owner):
    """Write the upstream's entry into the passfile (atomically, mode 0600, owned by owner) unless it is current.

    Returns whether the file was written.
    """
    new, dummy, changed = passfile_state(passfile, params, owner)
    if changed:
        write_file_atomic(passfile, new, owner)
    return changed


def settings_plan(data_dir, conninfo, slot):
    """Compare the standby settings of data_dir with standby.signal, primary_conninfo = conninfo and
    primary_slot_name = slot (None: not set). Only reads.

    Returns a dict: current (what read_standby_settings() found), changed, and before / after (diff lines). A
    primary_conninfo with the same parameters in another order or quoting counts as unchanged and is kept as it is.
    """
    cur = read_standby_settings(data_dir)
    try:
        same_ci = parse_conninfo(cur['conninfo'] or '') == parse_conninfo(conninfo)
    except ValueError:
        same_ci = False
    return dict(current=cur, changed=not (cur['signal'] and same_ci and cur['slot'] == (slot or None)),
                before=standby_settings_text(cur['signal'], cur['conninfo'], cur['slot']),
                after=standby_settings_text(True, cur['conninfo'] if same_ci else conninfo, slot or None))


def make_standby(data_dir, conninfo, slot, owner=None, current=None):
    """Give data_dir standby.signal, primary_conninfo and primary_slot_name (None: removed), as settings_plan()
    compared them. current: what read_standby_settings() returned (read anew when None)."""
    write_standby_settings(data_dir, read_standby_settings(data_dir) if current is None else current, conninfo,
                           slot or None, owner)
