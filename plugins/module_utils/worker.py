# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The frame of the modules that make a data directory a standby of an upstream (pg_basebackup, pg_rejoin): the
owner and the passfile, running programs as the owner, the lock, the results of a failure and of a success, and
main()."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import socket

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.hotstandby.postgresql.plugins.module_utils.basebackup import check_params, psql_args
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import ModuleFailure, owner_account, run_as
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import DataDirLock
from ansible_collections.hotstandby.postgresql.plugins.module_utils.standby import upstream_conninfo


class DataDirWorker(object):
    """plan() reads the data directory and the upstream and decides, changing nothing; apply(plan) does it.

    A subclass sets RESULT (the keys and defaults of every result) and KEPT (the result key that names what a run
    puts aside: a failure result shows it only when self.kept says it was really made, or in check mode), sets
    self.outcome in __init__, and defines plan(), apply() and unexpected().
    """

    RESULT = {}
    KEPT = None

    def __init__(self, module):
        self.module = module
        self.p = p = module.params
        self.host, self.port, self.user, self.slot = p['primary_host'], p['primary_port'], p['user'], p['slot']
        self.where = '%s:%s' % (self.host, self.port)
        self.app_name = p['application_name'] or socket.gethostname().split('.')[0]
        self.data_dir = os.path.realpath(p['data_dir'])
        self.lock = DataDirLock(self.data_dir)
        self.owner = self.passfile = self.bin_dir = self.psql_bin = None
        self.runuser = []
        self.touched = self.kept = False  # for a failure result: what was changed on this host
        self.outcome = dict(self.RESULT)

    # -- reading -------------------------------------------------------------

    def prepare(self):
        """Check the parameters and the owner; reads only."""
        uid, gid, home, self.runuser = owner_account(self.module, self.p['owner'], self.data_dir)
        self.owner = (uid, gid)
        self.passfile = self.p['passfile'] or os.path.join(home, '.pgpass_replication')
        if 'passfile' in self.RESULT:
            self.outcome['passfile'] = self.passfile
        check_params(self.slot, self.p['password'], self.p.get('max_rate'))
        self.check_directories()
        if not os.path.isdir(os.path.dirname(self.passfile) or '/'):
            raise ModuleFailure('the directory %s for the passfile does not exist: create it (owned by %s) or set '
                                'passfile' % (os.path.dirname(self.passfile) or '/', self.p['owner']))

    def check_directories(self):
        """Raise ModuleFailure for a directory the run needs (other than the passfile's) that does not exist."""

    def run(self, args, password=False):
        """Run a PostgreSQL program as owner; the password reaches it only in its environment."""
        return run_as(self.module, self.runuser, args, self.p['password'] if password else None)

    def replication_sql(self, commands):
        """Run replication-protocol commands on the upstream; return (rc, rows of all commands, stderr)."""
        conninfo = upstream_conninfo(self.p, self.app_name, replication=True)
        return self.run(psql_args(self.psql_bin, conninfo, commands), password=True)

    # -- results ---------------------------------------------------------------

    def unexpected(self, error):
        """The message of a failure by an unexpected IOError or OSError (error: its text)."""
        return 'unexpected error: %s' % error

    def fail(self, msg):
        """fail_json with the result keys gathered so far; changed only when something was really changed."""
        result = dict((k, v) for k, v in self.outcome.items() if k in self.RESULT and k != 'msg')
        if not self.kept and not self.module.check_mode:
            result[self.KEPT] = None
        result['changed'] = self.touched
        self.module.fail_json(msg=msg, **result)

    def exit(self):
        result = dict((k, v) for k, v in self.outcome.items() if k in self.RESULT)
        if self.module._diff and self.outcome.get('diff'):
            result['diff'] = self.outcome['diff']
        self.module.exit_json(**result)


def run_worker(worker):
    """The main() of a module with a DataDirWorker: prepare, then, holding the lock of the data directory, plan and
    (unless in check mode) apply; end with the result."""
    module = worker.module
    try:
        worker.prepare()
        with worker.lock.held(module.check_mode):
            plan = worker.plan()
            if not module.check_mode:
                worker.apply(plan)
    except ModuleFailure as e:
        worker.fail(to_native(e))
    except (IOError, OSError) as e:
        worker.fail(worker.unexpected(to_native(e)))
    worker.exit()
