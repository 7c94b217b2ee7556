# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Running a module's main() in a unit test, and the host the tests of pg_basebackup and pg_rejoin run on."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import socket
from collections import namedtuple

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.hotstandby.postgresql.plugins.module_utils import common

NO_LOG_MASK = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'

PwEntry = namedtuple('PwEntry', 'pw_name pw_passwd pw_uid pw_gid pw_gecos pw_dir pw_shell')


class Lab(object):
    """What a test needs to know of the host make_lab set up."""


def make_lab(tmp_path, monkeypatch, fake, programs, hostname):
    """A host below tmp_path: the owner's home, a bin directory with programs (scripts that exit 99: fake stands in
    for run_command), the parent pg of the data directory pg/main, the current user as owner (no runuser, chown and
    fchown are no-ops), and hostname as the host name."""
    home = tmp_path / 'home'
    home.mkdir()
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for prog in programs:
        p = bindir / prog
        p.write_text('#!/bin/sh\nexit 99\n')
        p.chmod(0o755)
    (tmp_path / 'pg').mkdir()
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, *a, **k: fake(*a, **k))
    pw = dict(pw_passwd='x', pw_uid=os.getuid(), pw_gid=os.getgid(), pw_gecos='', pw_dir=str(home), pw_shell='/bin/sh')
    monkeypatch.setattr(common.pwd, 'getpwnam', lambda name: PwEntry(pw_name=name, **pw))
    monkeypatch.setattr(socket, 'gethostname', lambda: hostname)
    lab = Lab()
    lab.tmp = tmp_path
    lab.home = str(home)
    lab.bin = str(bindir)
    lab.fake = fake
    lab.data_dir = str(tmp_path / 'pg' / 'main')
    lab.passfile = str(home / '.pgpass_replication')
    return lab


def run_main(main, args, capsys, check=False, diff=None):
    """Run main() with the module arguments args (in check mode, with diff unless None) until it exits.

    Returns its JSON result without the invocation echo, plus _raw (that result as JSON text), and the echo (or None).
    """
    args = dict(args, _ansible_check_mode=check)
    if diff is not None:
        args['_ansible_diff'] = diff
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            main()
    result = json.loads(capsys.readouterr().out)
    invocation = result.pop('invocation', None)
    result['_raw'] = json.dumps(result)
    return result, invocation
