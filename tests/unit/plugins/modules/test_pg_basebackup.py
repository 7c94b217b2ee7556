# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import fcntl
import json
import os
import subprocess
import sys
import tempfile

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.hotstandby.postgresql.plugins.modules import pg_basebackup as m
from ansible_collections.hotstandby.postgresql.plugins.module_utils import basebackup, common
from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import ModuleFailure
from ansible_collections.hotstandby.postgresql.plugins.module_utils.datadir import (
    MARKER, DataDirLock, read_system_identifier)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.libpq import (
    TMP_PASS_PREFIX, build_conninfo, parse_conninfo, pgpass_escape)
from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import conf_get
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.clusters import (
    OTHER_SYSID, PRIMARY_SYSID, write_cluster)
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.modules.harness import (
    NO_LOG_MASK, PwEntry, make_lab, run_main)

PASSWORD = 'p\'a"s\\s:w @rd'


# ---------------------------------------------------------------------------
# fakes
# ---------------------------------------------------------------------------

class FakePostgres(object):
    """Stands in for run_command: answers psql / pg_basebackup / pg_verifybackup calls."""

    def __init__(self):
        self.calls = []
        self.passwords = []  # PGPASSWORD of each psql / pg_basebackup call
        self.sysid = PRIMARY_SYSID
        self.version_num = 150018
        self.wal_level = 'replica'
        self.max_wal_senders = 10
        self.max_replication_slots = 10
        self.connect_error = None
        self.slot_exists = False
        self.basebackup_error = None
        self.basebackup_rc = 1
        self.verify_error = None
        self.binary_version = '15.18'
        self.dropped = []
        self.created = []
        self.manifest = True

    def __call__(self, args, environ_update=None, cwd=None, check_rc=False, **kwargs):
        args = list(args)
        env = environ_update or {}
        self.calls.append((args, dict(env)))
        if os.path.basename(args[0]) == 'runuser':  # runuser -u owner -- program ...
            args = args[args.index('--') + 1:]
        prog = os.path.basename(args[0])
        if prog in ('psql', 'pg_basebackup') and '--version' not in args:
            self.passwords.append(env.get('PGPASSWORD'))
        if prog == 'psql':
            return self.psql(args)
        if prog == 'pg_basebackup':
            if '--version' in args:
                return 0, 'pg_basebackup (PostgreSQL) %s (Debian)\n' % self.binary_version, ''
            return self.basebackup(args)
        if prog == 'pg_verifybackup':
            if self.verify_error:
                return 1, '', self.verify_error
            return 0, 'backup successfully verified\n', ''
        raise AssertionError('unexpected command %r' % args)

    def psql(self, args):
        cmds = [args[i + 1] for i, a in enumerate(args) if a == '-c']
        if self.connect_error:
            return 2, '', self.connect_error
        if cmds[0] == 'IDENTIFY_SYSTEM':
            out = '%s|1|0/17420F0|\n%s\n%d\n%d\n%d\n' % (self.sysid, self.wal_level, self.version_num,
                                                         self.max_wal_senders, self.max_replication_slots)
            return 0, out, ''
        if cmds[0].startswith('READ_REPLICATION_SLOT'):
            return 0, ('physical|0/3000000|1\n' if self.slot_exists else '||\n'), ''
        if cmds[0].startswith('DROP_REPLICATION_SLOT'):
            self.dropped.append(cmds[0].split()[1])
            return 0, '', ''
        if cmds[0].startswith('CREATE_REPLICATION_SLOT'):
            self.created.append(cmds[0].split()[1])
            return 0, '%s|0/3000000||\n' % cmds[0].split()[1], ''
        raise AssertionError('unexpected psql commands %r' % cmds)

    def basebackup(self, args):
        target = args[args.index('-D') + 1]
        if self.basebackup_error is not None:
            return self.basebackup_rc, '', self.basebackup_error
        if os.path.exists(target):
            assert not os.listdir(target), 'pg_basebackup target must be empty'
        else:
            os.mkdir(target, 0o700)
        os.rmdir(target)
        write_cluster(target, sysid=self.sysid, version='%d' % (self.version_num // 10000),
                      conninfo=None)
        with open(os.path.join(target, 'base', '1', '16400'), 'wb') as f:
            f.write(b'x' * 8192)
        if self.manifest:
            with open(os.path.join(target, 'backup_manifest'), 'w') as f:
                f.write('{}')
        open(os.path.join(target, 'backup_label'), 'w').close()
        return 0, '', ''

    def commands(self, prog):
        return [c for c, e in self.calls if os.path.basename(c[0]) == prog]

    def environments(self, prog):
        return [e for c, e in self.calls if os.path.basename(c[0]) == prog]


# what pg_basebackup --progress writes around its messages when its stderr is a file
PROGRESS_BEFORE = 'waiting for checkpoint\n    0/30000 kB (0%), 0/1 tablespace\n12000/30000 kB (40%), 0/1 tablespace\n'
PROGRESS_AFTER = '30000/30000 kB (100%), 1/1 tablespace\n'


class FakeRunToFile(object):
    """Stands in for run_as_to_file: runs the command through the run_command fake (same prefix, environment and
    cwd as run_as) and writes what it said into the file, between progress lines; records each file."""

    def __init__(self, fake):
        self.fake = fake
        self.files = []  # (path, whether its directory existed, whether the file existed before)

    def __call__(self, module, prefix, args, path, password=None):
        env = dict(common.C_ENV, PGPASSWORD=password) if password is not None else dict(common.C_ENV)
        self.files.append((path, os.path.isdir(os.path.dirname(path)), os.path.lexists(path)))
        rc, out, err = self.fake(list(prefix) + list(args), environ_update=env, cwd='/')
        text = out + PROGRESS_BEFORE + err + ('\n' if err and not err.endswith('\n') else '') + \
            (PROGRESS_AFTER if rc == 0 else '')
        with open(path, 'w') as f:
            f.write(text)
        return rc, '', text


@pytest.fixture
def lab(tmp_path, monkeypatch):
    lab = make_lab(tmp_path, monkeypatch, FakePostgres(), ('psql', 'pg_basebackup', 'pg_verifybackup'),
                   'standby1.example.com')
    lab.staging = str(tmp_path / 'pg' / '.main.hotstandby-staging')
    lab.lock = str(tmp_path / 'pg' / '.main.hotstandby-lock')
    lab.to_file = FakeRunToFile(lab.fake)
    monkeypatch.setattr(m, 'run_as_to_file', lab.to_file)
    return lab


def run_module(lab, capsys, check=False, diff=False, **params):
    args = dict(data_dir=lab.data_dir, primary_host='10.0.0.11', primary_port=5432, user='replicator',
                password=PASSWORD, bin_dir=lab.bin)
    args.update(params)
    result, invocation = run_main(m.main, args, capsys, check, diff)
    # the invocation echo shows the masked password parameter itself; everything else must not mention it
    assert invocation is None or invocation['module_args']['password'] == NO_LOG_MASK
    return result


def tree(path, dir_mtimes=False):
    """Snapshot of names, modes, and sizes and mtimes of files below path.

    Directory mtimes are left out unless asked for: a real run creates and removes its lock file next to the data
    directory. With them, a file that was created and removed again shows as well.
    """
    snap = {}
    for root, dirs, files in os.walk(str(path)):
        for name in dirs:
            st = os.lstat(os.path.join(root, name))
            snap[os.path.join(root, name)] = (st.st_mode, st.st_mtime_ns) if dir_mtimes else st.st_mode
        for name in files:
            st = os.lstat(os.path.join(root, name))
            snap[os.path.join(root, name)] = (st.st_size, st.st_mode, st.st_mtime_ns)
    return snap


def assert_no_password(result, lab=None):
    raw = result['_raw']
    assert PASSWORD not in raw
    assert NO_LOG_MASK not in raw
    assert pgpass_escape(PASSWORD) not in raw
    assert 'w @rd' not in raw
    if lab is not None:
        for args, env in lab.fake.calls:
            assert not any('w @rd' in a for a in args)
            # the password is only in the environment variable meant for it
            assert not any('w @rd' in v for k, v in env.items() if k != 'PGPASSWORD')


# ---------------------------------------------------------------------------
# preflight error mapping
# ---------------------------------------------------------------------------

CONN = 'psql: error: connection to server at "10.0.0.11", port 5432 failed: '


@pytest.mark.parametrize('stderr, expect', [
    (CONN + 'FATAL:  password authentication failed for user "replicator"', 'postgres_replication_password'),
    (CONN + 'fe_sendauth: no password supplied', 'postgres_replication_password'),
    (CONN + 'FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.12", user "replicator", '
            'no encryption', 'host replication replicator <standby address>/32'),
    (CONN + 'FATAL:  pg_hba.conf rejects replication connection for host "10.0.0.12", user "replicator", '
            'no encryption', 'host replication replicator <standby address>/32'),
    (CONN + 'FATAL:  must have replication permission to start WAL sender', 'ALTER ROLE replicator REPLICATION'),
    (CONN + 'FATAL:  must be superuser or replication role to start walsender', 'ALTER ROLE replicator REPLICATION'),
    (CONN + 'FATAL:  permission denied to start WAL sender\nDETAIL:  Only roles with the REPLICATION attribute '
            'may start a WAL sender process.', 'ALTER ROLE replicator REPLICATION'),
    (CONN + 'FATAL:  role "replicator" does not exist', 'CREATE ROLE replicator LOGIN REPLICATION'),
    (CONN + 'Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
     'listen_addresses'),
    (CONN + 'timeout expired', 'timed out'),
    ('psql: error: could not translate host name "db9" to address: Name or service not known', 'DNS'),
    (CONN + 'FATAL:  number of requested standby connections exceeds max_wal_senders (currently 0)',
     'max_wal_senders'),
    (CONN + 'server does not support SSL, but SSL was required', 'sslmode'),
    (CONN + 'FATAL:  sorry, too many clients already', 'max_connections'),
])
def test_preflight_error_mapping(lab, capsys, stderr, expect):
    lab.fake.connect_error = stderr
    result = run_module(lab, capsys)
    assert result['failed']
    assert expect in result['msg']
    assert 'nothing was changed' in result['msg']
    assert not os.path.exists(lab.data_dir)
    assert not os.path.exists(lab.passfile)
    assert os.listdir(lab.home) == []  # no passfile of any kind
    assert_no_password(result, lab)


@pytest.mark.parametrize('attr, value, expect', [
    ('wal_level', 'minimal', 'wal_level = replica'),
    ('max_wal_senders', 0, 'max_wal_senders = 0'),
    ('version_num', 120015, 'PostgreSQL 13 and newer'),
])
def test_preflight_primary_settings(lab, capsys, attr, value, expect):
    setattr(lab.fake, attr, value)
    result = run_module(lab, capsys)
    assert result['failed']
    assert expect in result['msg']
    assert not lab.fake.commands('pg_basebackup')


def test_preflight_no_slots(lab, capsys):
    lab.fake.max_replication_slots = 0
    result = run_module(lab, capsys, slot='s1')
    assert result['failed'] and 'max_replication_slots = 0' in result['msg']


def test_major_version_mismatch(lab, capsys):
    lab.fake.version_num = 160004
    result = run_module(lab, capsys)
    assert result['failed']
    assert 'install postgresql-16' in result['msg']
    assert 'PostgreSQL 15' in result['msg']
    assert not os.path.exists(lab.data_dir)


def test_missing_binaries_lists_installed(lab, capsys, monkeypatch, tmp_path):
    lib = tmp_path / 'lib'
    for v in ('13', '15'):
        b = lib / v / 'bin'
        b.mkdir(parents=True)
        for prog in ('psql', 'pg_basebackup'):
            (b / prog).write_text('#!/bin/sh\n')
            (b / prog).chmod(0o755)
    monkeypatch.setattr(basebackup, 'DEBIAN_LIB', str(lib))
    lab.fake.version_num = 160004
    result = run_module(lab, capsys, bin_dir=None)
    assert result['failed']
    assert 'install postgresql-16 on the standby' in result['msg']
    assert 'PostgreSQL 15, PostgreSQL 13' in result['msg']
    # psql of the newest installed version was used for the preflight
    assert lab.fake.commands('psql')[0][0] == str(lib / '15' / 'bin' / 'psql')


def test_psql_conninfo_and_password_only_in_environment(lab, capsys):
    run_module(lab, capsys, application_name="my app's", sslmode='verify-full', sslrootcert='/etc/ssl/ca.crt',
               connect_timeout=7)
    args, env = lab.fake.calls[0]
    conninfo = args[args.index('ON_ERROR_STOP=1') + 1]
    parsed = parse_conninfo(conninfo)
    assert parsed == {'host': '10.0.0.11', 'port': '5432', 'user': 'replicator', 'dbname': 'replication',
                      'replication': 'true', 'application_name': "my app's", 'sslmode': 'verify-full',
                      'sslrootcert': '/etc/ssl/ca.crt', 'connect_timeout': '7'}
    assert '-w' in args
    assert env['PGPASSWORD'] == PASSWORD and 'PGPASSFILE' not in env
    assert lab.fake.passwords and all(p == PASSWORD for p in lab.fake.passwords)  # psql and pg_basebackup alike
    assert not [n for n in os.listdir(lab.home) if n.startswith(TMP_PASS_PREFIX)]


# ---------------------------------------------------------------------------
# decisions
# ---------------------------------------------------------------------------

def test_missing_clones(lab, capsys):
    result = run_module(lab, capsys, diff=True)
    assert result['changed'] and result['case'] == 'missing' and result['action'] == 'clone'
    assert result['verified'] is True
    assert result['bytes'] > 8192 and result['seconds'] >= 0
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))
    assert oct(os.stat(lab.data_dir).st_mode & 0o777) == '0o700'
    assert not os.path.exists(lab.staging)
    with open(os.path.join(lab.data_dir, 'postgresql.auto.conf')) as f:
        auto = f.read()
    ci = parse_conninfo(conf_get(auto, 'primary_conninfo'))
    assert ci == {'host': '10.0.0.11', 'port': '5432', 'user': 'replicator', 'passfile': lab.passfile,
                  'application_name': 'standby1', 'sslmode': 'prefer', 'connect_timeout': '10'}
    assert 'w @rd' not in auto
    with open(lab.passfile) as f:
        assert f.read() == '10.0.0.11:5432:replication:replicator:%s\n' % pgpass_escape(PASSWORD)
    assert oct(os.stat(lab.passfile).st_mode & 0o777) == '0o600'
    bb = lab.fake.commands('pg_basebackup')[-1]
    assert bb[bb.index('-X') + 1] == 'stream' and bb[bb.index('-c') + 1] == 'fast'
    assert '--no-password' in bb and '-R' not in bb and '-S' not in bb
    assert bb[bb.index('-D') + 1] == os.path.join(lab.staging, 'data')
    assert 'standby.signal: present' in result['diff']['after']
    assert_no_password(result, lab)


def test_clone_writes_its_progress_into_the_staging_directory(lab, capsys):
    result = run_module(lab, capsys)
    assert result['action'] == 'clone' and not result.get('failed')
    bb = lab.fake.commands('pg_basebackup')[-1]
    assert bb[-1] == '--progress'
    # a new file in the staging directory, which the module removes (with it) once the clone is in place
    assert lab.to_file.files == [(os.path.join(lab.staging, 'progress.log'), True, False)]
    assert not os.path.exists(lab.staging)
    assert lab.fake.passwords[-1] == PASSWORD  # pg_basebackup still gets the password in its environment only
    assert_no_password(result, lab)


def test_empty_dir_clones(lab, capsys):
    os.mkdir(lab.data_dir)
    result = run_module(lab, capsys)
    assert result['case'] == 'empty' and result['action'] == 'clone' and result['moved_to'] is None
    assert os.path.isfile(os.path.join(lab.data_dir, 'PG_VERSION'))


def test_pristine_moved_aside_even_with_fail_policy(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID)
    result = run_module(lab, capsys)
    assert result['case'] == 'pristine' and result['action'] == 'clone'
    assert result['moved_to'].startswith(lab.data_dir + '.moved-')
    assert os.path.isdir(result['moved_to'])
    assert read_system_identifier(result['moved_to']) == OTHER_SYSID
    assert read_system_identifier(lab.data_dir) == PRIMARY_SYSID


def test_standby_noop(lab, capsys):
    run_module(lab, capsys)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, diff=True)
    assert result['case'] == 'standby' and result['action'] == 'none' and not result['changed']
    assert not result['settings_changed'] and not result['passfile_changed']
    assert tree(lab.tmp) == before
    assert len(lab.fake.commands('pg_basebackup')) == 2  # first clone + one --version, no second clone
    assert result['diff']['before'] == result['diff']['after']


def test_standby_changed_settings(lab, capsys):
    run_module(lab, capsys)
    result = run_module(lab, capsys, diff=True, application_name='other', slot='s1')
    assert result['case'] == 'standby' and result['action'] == 'update_settings' and result['changed']
    assert result['settings_changed'] and not result['passfile_changed']
    with open(os.path.join(lab.data_dir, 'postgresql.auto.conf')) as f:
        auto = f.read()
    assert parse_conninfo(conf_get(auto, 'primary_conninfo'))['application_name'] == 'other'
    assert conf_get(auto, 'primary_slot_name') == 's1'
    assert "primary_slot_name = 's1'" in result['diff']['after']
    assert 'primary_slot_name = (not set)' in result['diff']['before']
    assert_no_password(result, lab)


def test_standby_password_rotation_changes_only_passfile(lab, capsys):
    run_module(lab, capsys)
    result = run_module(lab, capsys, diff=True, password='new:secret')
    assert result['changed'] and result['passfile_changed'] and not result['settings_changed']
    assert result['action'] == 'update_settings'
    with open(lab.passfile) as f:
        assert f.read() == '10.0.0.11:5432:replication:replicator:new\\:secret\n'
    assert 'new:secret' not in result['_raw'] and NO_LOG_MASK not in result['_raw']


def test_passfile_keeps_other_lines(lab, capsys):
    with open(lab.passfile, 'w') as f:
        f.write('# mine\nother:5432:*:bob:x\n10.0.0.11:5432:replication:replicator:old\n')
    os.chmod(lab.passfile, 0o600)
    run_module(lab, capsys)
    with open(lab.passfile) as f:
        assert f.read() == ('# mine\nother:5432:*:bob:x\n10.0.0.11:5432:replication:replicator:%s\n'
                            % pgpass_escape(PASSWORD))


def test_standby_slot_missing_refused_before_reclone(lab, capsys):
    write_cluster(lab.data_dir, standby=True, slot='s1',
                  conninfo=build_conninfo([('host', '10.0.0.11'), ('port', 5432), ('user', 'replicator')]))
    before = tree(lab.tmp)
    result = run_module(lab, capsys, slot='s1', reclone=True)
    assert result['failed'] and result['case'] == 'standby' and not result['changed']
    assert 'nothing was copied' in result['msg'] and 'must exist on the upstream' in result['msg']
    assert 'community.postgresql.postgresql_slot' in result['msg']
    assert not lab.fake.created and not [c for c in lab.fake.commands('pg_basebackup') if '--version' not in c]
    assert tree(lab.tmp) == before and result['moved_to'] is None


def test_standby_slot_missing_warns(lab, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, msg, **kw: warnings.append(msg))
    write_cluster(lab.data_dir, standby=True, slot='s1',
                  conninfo=build_conninfo([('host', '10.0.0.11'), ('port', 5432), ('user', 'replicator')]))
    result = run_module(lab, capsys, slot='s1')
    assert not lab.fake.created and result['case'] == 'standby' and not result.get('failed')
    assert any('does not exist on the primary' in w for w in warnings)
    assert any('must exist on the upstream' in w for w in warnings)
    assert not any('w @rd' in w for w in warnings)


def test_foreign_fail_message(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID, user_data=True)
    before = tree(lab.tmp)
    result = run_module(lab, capsys)
    assert result['failed'] and result['case'] == 'foreign' and not result['changed']
    msg = result['msg']
    assert lab.data_dir in msg
    assert 'a PostgreSQL 15 cluster with system identifier %s' % OTHER_SYSID in msg
    assert 'not a standby of primary 10.0.0.11:5432 (system identifier %s)' % PRIMARY_SYSID in msg
    assert 'existing_data: move_aside' in msg
    assert result['moved_to'] is None
    assert tree(lab.tmp) == before


@pytest.mark.parametrize('kwargs, expect', [
    (dict(sysid=PRIMARY_SYSID), 'not in standby mode'),
    (dict(sysid=PRIMARY_SYSID, standby=True, conninfo='host=10.9.9.9 port=5432'), 'points at 10.9.9.9:5432'),
    (dict(sysid=OTHER_SYSID, standby=True, conninfo='host=10.9.9.9'), 'in recovery/standby mode'),
    (dict(sysid=OTHER_SYSID, extra_db=True), 'base/16384'),
    (dict(sysid=OTHER_SYSID, tablespace=True), 'pg_tblspc'),
])
def test_foreign_variants(lab, capsys, kwargs, expect):
    write_cluster(lab.data_dir, **kwargs)
    result = run_module(lab, capsys)
    assert result['failed'] and result['case'] == 'foreign'
    assert expect in result['msg']


def test_foreign_stray_files(lab, capsys):
    os.makedirs(lab.data_dir)
    open(os.path.join(lab.data_dir, 'notes.txt'), 'w').close()
    result = run_module(lab, capsys)
    assert result['failed'] and 'not a PostgreSQL data directory (1 entries: notes.txt)' in result['msg']


def test_foreign_move_aside(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID, user_data=True)
    result = run_module(lab, capsys, existing_data='move_aside')
    assert result['changed'] and result['case'] == 'foreign' and result['action'] == 'clone'
    assert os.path.exists(os.path.join(result['moved_to'], 'base', '5', '16385'))
    assert read_system_identifier(lab.data_dir) == PRIMARY_SYSID
    assert not os.path.exists(lab.staging)


def test_running_postmaster(lab, capsys, monkeypatch):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID, postmaster_pid=12345)
    monkeypatch.setattr(m, 'postmaster_pid', lambda d: 12345 if os.path.exists(os.path.join(d, 'postmaster.pid'))
                        else None)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, check=True)
    assert not result.get('failed')
    assert result['running'] is True and result['action'] == 'clone' and result['case'] == 'pristine'
    assert result['moved_to'].startswith(lab.data_dir + '.moved-')
    assert tree(lab.tmp) == before
    result = run_module(lab, capsys)
    assert result['failed'] and result['running'] is True
    assert 'stop it first' in result['msg'] and '12345' in result['msg']
    assert result['moved_to'] is None
    assert tree(lab.tmp) == before


def test_leftover_staging_with_marker_cleaned(lab, capsys):
    os.makedirs(os.path.join(lab.staging, 'data', 'base'))
    proc = subprocess.Popen(['true'])
    proc.wait()
    with open(os.path.join(lab.staging, MARKER), 'w') as f:
        json.dump({'pid': proc.pid, 'started_at': 'x', 'primary': '10.0.0.11:5432'}, f)
    result = run_module(lab, capsys)
    assert result['cleaned_staging'] is True and result['action'] == 'clone'
    assert not os.path.exists(lab.staging)
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))


def test_leftover_staging_after_clone_cleaned_on_standby(lab, capsys):
    run_module(lab, capsys)
    os.makedirs(lab.staging)
    with open(os.path.join(lab.staging, MARKER), 'w') as f:
        f.write('{}')
    result = run_module(lab, capsys)
    assert result['case'] == 'standby' and result['cleaned_staging'] and result['changed']
    assert result['action'] == 'update_settings'
    assert not os.path.exists(lab.staging)


def test_staging_without_marker_refused(lab, capsys):
    os.makedirs(os.path.join(lab.staging, 'precious'))
    result = run_module(lab, capsys)
    assert result['failed'] and 'not a staging directory of this module' in result['msg']
    assert os.path.isdir(os.path.join(lab.staging, 'precious'))
    assert not os.path.exists(lab.data_dir)


def test_staging_of_live_run_refused(lab, capsys):
    """Another run holds the lock: refused at once, in check mode as well; released: the run proceeds."""
    os.makedirs(lab.staging)
    with open(os.path.join(lab.staging, MARKER), 'w') as f:
        json.dump({'pid': os.getpid(), 'started_at': 'x'}, f)
    other = DataDirLock(lab.data_dir)
    other.acquire()
    try:
        before = tree(lab.tmp)
        result = run_module(lab, capsys)
        assert result['failed'] and 'is cloning into' in result['msg'] and not result['changed']
        assert 'another run of this module (pid %d' % os.getpid() in result['msg'] and lab.lock in result['msg']
        assert os.path.isdir(lab.staging)
        check = run_module(lab, capsys, check=True)
        assert check['failed'] and 'is cloning into' in check['msg']
        assert tree(lab.tmp) == before
        assert not lab.fake.calls  # refused before connecting to the primary
    finally:
        other.release()
    result = run_module(lab, capsys)
    assert not result.get('failed') and result['cleaned_staging'] and result['action'] == 'clone'
    assert not os.path.exists(lab.staging) and not os.path.exists(lab.lock)


def test_lock_taken_through_flock_of_the_lock_file(lab, capsys):
    """A plain flock on the lock file (any process) is what excludes a run."""
    fd = os.open(lab.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = run_module(lab, capsys)
        assert result['failed'] and 'holds the lock %s' % lab.lock in result['msg']
        assert not os.path.exists(lab.data_dir)
    finally:
        os.close(fd)
    result = run_module(lab, capsys)
    assert not result.get('failed') and result['action'] == 'clone'
    assert not os.path.exists(lab.lock)


def test_marker_pid_of_a_live_process_does_not_block(lab, capsys):
    """The pid in a staging marker may belong to a live python process by reuse: only the lock counts."""
    os.makedirs(lab.staging)
    proc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
    try:
        with open(os.path.join(lab.staging, MARKER), 'w') as f:
            json.dump({'pid': proc.pid, 'started_at': 'x'}, f)
        result = run_module(lab, capsys)
    finally:
        proc.kill()
        proc.wait()
    assert not result.get('failed') and result['cleaned_staging'] and result['action'] == 'clone'
    assert not os.path.exists(lab.staging)


def test_stale_lock_file_of_a_killed_run_does_not_block(lab, capsys):
    with open(lab.lock, 'w') as f:
        json.dump({'pid': os.getpid(), 'started_at': 'x'}, f)
    assert not run_module(lab, capsys, check=True).get('failed')
    assert os.path.exists(lab.lock)  # check mode leaves it alone
    result = run_module(lab, capsys)
    assert not result.get('failed') and result['action'] == 'clone'
    assert not os.path.exists(lab.lock)


def test_mountpoint_with_data_refused(lab, capsys, monkeypatch):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID)
    real = os.path.ismount
    monkeypatch.setattr(m.os.path, 'ismount', lambda p: p == lab.data_dir or real(p))
    result = run_module(lab, capsys, existing_data='move_aside')
    assert result['failed'] and 'is a mount point' in result['msg'] and 'sub-directory' in result['msg']
    assert read_system_identifier(lab.data_dir) == OTHER_SYSID


def test_mountpoint_empty_cloned_in_place(lab, capsys, monkeypatch):
    os.makedirs(lab.data_dir)
    real = os.path.ismount
    monkeypatch.setattr(m.os.path, 'ismount', lambda p: p == lab.data_dir or real(p))
    result = run_module(lab, capsys)
    assert result['changed'] and result['case'] == 'empty'
    bb = lab.fake.commands('pg_basebackup')[-1]
    assert bb[bb.index('-D') + 1] == lab.data_dir
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))
    assert not os.path.exists(lab.staging)
    # in place too, the progress goes to the staging directory: the mount point gets nothing but the clone
    assert lab.to_file.files == [(os.path.join(lab.staging, 'progress.log'), True, False)]
    assert 'progress.log' not in os.listdir(lab.data_dir)


def test_mountpoint_interrupted_in_place_clone_recovered(lab, capsys, monkeypatch):
    os.makedirs(os.path.join(lab.data_dir, 'base'))
    open(os.path.join(lab.data_dir, 'PG_VERSION'), 'w').close()
    os.makedirs(lab.staging)
    with open(os.path.join(lab.staging, MARKER), 'w') as f:
        json.dump({'pid': 1 << 22, 'mode': 'in_place'}, f)
    real = os.path.ismount
    monkeypatch.setattr(m.os.path, 'ismount', lambda p: p == lab.data_dir or real(p))
    result = run_module(lab, capsys, check=True)
    assert result['case'] == 'empty' and result['cleaned_staging'] and result['action'] == 'clone'
    assert os.path.isdir(lab.staging)
    result = run_module(lab, capsys)
    assert result['cleaned_staging'] and result['changed']
    assert read_system_identifier(lab.data_dir) == PRIMARY_SYSID


def test_check_mode_changes_nothing(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID, user_data=True)
    before = tree(lab.tmp)
    lab.fake.slot_exists = True
    result = run_module(lab, capsys, check=True, diff=True, existing_data='move_aside', slot='s1')
    assert result['changed'] and result['action'] == 'clone' and result['case'] == 'foreign'
    assert result['moved_to'].startswith(lab.data_dir + '.moved-')
    assert tree(lab.tmp) == before
    assert not lab.fake.commands('pg_verifybackup')
    assert not [c for c in lab.fake.commands('pg_basebackup') if '--version' not in c]
    assert not lab.fake.created and not lab.fake.dropped
    assert_no_password(result, lab)


def test_check_mode_standby_changes_nothing(lab, capsys):
    run_module(lab, capsys)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, check=True, diff=True, password='rotated', slot='s2')
    assert result['changed'] and result['settings_changed'] and result['passfile_changed']
    assert tree(lab.tmp) == before
    assert 'rotated' not in result['_raw']


# ---------------------------------------------------------------------------
# follow: re-point a standby of the same system at a new upstream
# ---------------------------------------------------------------------------

OLD_CONNINFO = build_conninfo([('host', 'db1'), ('port', 5432), ('user', 'replicator'),
                               ('application_name', 'standby1')])
OLD_PASSFILE = 'db1:5432:replication:replicator:old\n'


def write_sibling(lab, running=False, monkeypatch=None, **kwargs):
    """A standby of the primary's system still streaming from the old primary db1:5432 (its passfile has db1's
    entry); running: its server runs."""
    write_cluster(lab.data_dir, standby=True, conninfo=OLD_CONNINFO, slot='s1',
                  postmaster_pid=12345 if running else None, **kwargs)
    with open(lab.passfile, 'w') as f:
        f.write(OLD_PASSFILE)
    os.chmod(lab.passfile, 0o600)
    if running:
        monkeypatch.setattr(m, 'postmaster_pid', lambda d: 12345 if d == lab.data_dir else None)


def auto_conf(lab):
    with open(os.path.join(lab.data_dir, 'postgresql.auto.conf')) as f:
        return f.read()


def test_follow_repoints_a_running_standby(lab, capsys, monkeypatch):
    write_sibling(lab, running=True, monkeypatch=monkeypatch)
    lab.fake.slot_exists = True
    data = dict((k, v) for k, v in tree(lab.data_dir).items() if not k.endswith('postgresql.auto.conf'))
    result = run_module(lab, capsys, diff=True, follow=True, slot='s3')
    assert not result.get('failed') and result['changed']
    assert result['case'] == 'standby' and result['action'] == 'update_settings'
    assert result['followed'] is True and result['running'] is True
    assert result['settings_changed'] and result['passfile_changed']
    assert result['moved_to'] is None and result['bytes'] == 0
    assert 're-pointed from db1:5432 (reload the server)' in result['msg'] and 'would' not in result['msg']
    assert not [c for c in lab.fake.commands('pg_basebackup') if '--version' not in c]  # no clone
    auto = auto_conf(lab)
    ci = parse_conninfo(conf_get(auto, 'primary_conninfo'))
    assert (ci['host'], ci['port'], ci['passfile']) == ('10.0.0.11', '5432', lab.passfile)
    assert conf_get(auto, 'primary_slot_name') == 's3'
    with open(lab.passfile) as f:
        assert f.read() == OLD_PASSFILE + '10.0.0.11:5432:replication:replicator:%s\n' % pgpass_escape(PASSWORD)
    # nothing else of the data directory was touched, the server's postmaster.pid included
    assert dict((k, v) for k, v in tree(lab.data_dir).items() if not k.endswith('postgresql.auto.conf')) == data
    diff = result['diff']
    assert '# upstream: db1:5432 -> 10.0.0.11:5432' in diff['before']
    assert 'host=db1' in diff['before'] and 'host=10.0.0.11' in diff['after']
    assert "primary_slot_name = 's1'" in diff['before'] and "primary_slot_name = 's3'" in diff['after']
    assert_no_password(result, lab)
    before = tree(lab.tmp)
    again = run_module(lab, capsys, follow=True, slot='s3')  # converged: now a standby of the new upstream
    assert again['action'] == 'none' and not again['changed'] and again['followed'] is False
    assert 'already a standby of 10.0.0.11:5432' in again['msg']
    assert tree(lab.tmp) == before


def test_follow_false_refuses_the_same_directory_as_foreign(lab, capsys, monkeypatch):
    write_sibling(lab, running=True, monkeypatch=monkeypatch)
    before = tree(lab.tmp)
    result = run_module(lab, capsys)
    assert result['failed'] and result['case'] == 'foreign' and not result['changed']
    assert 'points at db1:5432, not at 10.0.0.11:5432' in result['msg'] and 'set follow: true' in result['msg']
    assert result['followed'] is False and result['moved_to'] is None
    assert tree(lab.tmp) == before


def test_follow_refuses_a_former_primary(lab, capsys):
    write_cluster(lab.data_dir, sysid=PRIMARY_SYSID, conninfo=OLD_CONNINFO)  # no standby.signal
    before = tree(lab.tmp)
    for check in (True, False):
        result = run_module(lab, capsys, check=check, follow=True)
        assert result['failed'] and result['case'] == 'foreign' and not result['changed']
        assert 'not in standby mode' in result['msg'] and 'hotstandby.postgresql.pg_rejoin' in result['msg']
        assert result['followed'] is False
        assert tree(lab.tmp) == before


def test_follow_check_mode_changes_nothing(lab, capsys, monkeypatch):
    write_sibling(lab, running=True, monkeypatch=monkeypatch)
    before = tree(lab.tmp, dir_mtimes=True)
    result = run_module(lab, capsys, check=True, diff=True, follow=True)
    assert result['changed'] and result['followed'] is True and result['running'] is True
    assert result['case'] == 'standby' and result['action'] == 'update_settings'
    assert result['settings_changed'] and result['passfile_changed']
    assert 'would be re-pointed from db1:5432 (reload the server)' in result['msg']
    assert '# upstream: db1:5432 -> 10.0.0.11:5432' in result['diff']['after']
    assert 'primary_slot_name = (not set)' in result['diff']['after']  # no slot given: it would be removed
    assert tree(lab.tmp, dir_mtimes=True) == before
    assert conf_get(auto_conf(lab), 'primary_conninfo') == OLD_CONNINFO
    assert_no_password(result, lab)


def test_follow_with_missing_slot_refused_before_repointing(lab, capsys, monkeypatch):
    write_sibling(lab, running=True, monkeypatch=monkeypatch)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, follow=True, slot='s3')
    assert result['failed'] and not result['changed'] and result['followed'] is False
    assert 'does not exist on the new upstream 10.0.0.11:5432' in result['msg']
    assert 'still points at db1:5432' in result['msg'] and 'must exist on the upstream' in result['msg']
    assert tree(lab.tmp) == before


def test_follow_with_reclone_clones_instead(lab, capsys):
    write_sibling(lab)
    result = run_module(lab, capsys, diff=True, follow=True, reclone=True)
    assert result['action'] == 'clone' and result['case'] == 'standby' and result['followed'] is False
    assert 'standby of db1:5432, cloned again' in result['diff']['before']
    assert os.path.isdir(result['moved_to'])
    assert parse_conninfo(conf_get(auto_conf(lab), 'primary_conninfo'))['host'] == '10.0.0.11'


def test_follow_keeps_other_cases(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID, standby=True, conninfo=OLD_CONNINFO)  # another system
    result = run_module(lab, capsys, follow=True)
    assert result['failed'] and result['case'] == 'foreign' and 'in recovery/standby mode' in result['msg']
    run_module(lab, capsys, follow=True, existing_data='move_aside')
    result = run_module(lab, capsys, follow=True)  # already a standby of this upstream: nothing to do
    assert result['case'] == 'standby' and result['action'] == 'none' and result['followed'] is False


# ---------------------------------------------------------------------------
# slots and clone failures
# ---------------------------------------------------------------------------

def test_slot_clone_args(lab, capsys):
    lab.fake.slot_exists = True
    result = run_module(lab, capsys, slot='standby1', max_rate='100M', wal_method='fetch', checkpoint='spread')
    bb = lab.fake.commands('pg_basebackup')[-1]
    assert bb[bb.index('-S') + 1] == 'standby1' and '-C' not in bb
    assert bb[bb.index('-r') + 1] == '100M'
    assert bb[bb.index('-X') + 1] == 'fetch' and bb[bb.index('-c') + 1] == 'spread'
    assert 'slot_created' not in result
    with open(os.path.join(lab.data_dir, 'postgresql.auto.conf')) as f:
        assert conf_get(f.read(), 'primary_slot_name') == 'standby1'


def test_existing_slot_reused(lab, capsys):
    lab.fake.slot_exists = True
    result = run_module(lab, capsys, slot='standby1')
    bb = lab.fake.commands('pg_basebackup')[-1]
    assert '-S' in bb and '-C' not in bb
    assert 'slot_created' not in result


def test_failed_clone_never_drops_the_slot(lab, capsys):
    lab.fake.slot_exists = True
    lab.fake.basebackup_error = 'pg_basebackup: error: could not read COPY data: server closed the connection'
    result = run_module(lab, capsys, slot='standby1')
    assert result['failed']
    assert lab.fake.dropped == [] and lab.fake.created == []
    assert 'dropped' not in result['msg'] and 'was not changed' in result['msg']
    assert not os.path.exists(lab.data_dir) and not os.path.exists(lab.staging)
    assert not result['changed']


# a pg_basebackup for run_as_to_file to run for real: progress lines to stderr, then a clone (or an error)
STAND_IN = """#!%(python)s
import os, sys
sys.path[:0] = [%(collections)r]
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.clusters import write_cluster
args = sys.argv[1:]
target = args[args.index('-D') + 1]
with open(%(seen)r, 'w') as f:
    f.write('%%s|%%s|%%s|%%s' %% ('--progress' in args, os.environ.get('PGPASSWORD') == %(password)r,
                              os.environ.get('LC_ALL'), os.getcwd()))
sys.stderr.write('waiting for checkpoint\\n     0/100 kB (0%%), 0/1 tablespace\\n')
sys.stderr.flush()
if os.path.exists(%(fail)r):
    sys.stderr.write('pg_basebackup: error: could not connect to server: Connection refused\\n')
    sys.exit(1)
if os.path.isdir(target):
    os.rmdir(target)
write_cluster(target, sysid=%(sysid)r)
with open(os.path.join(target, 'backup_manifest'), 'w') as f:
    f.write('{}')
sys.stderr.write('100/100 kB (100%%), 1/1 tablespace\\n')
"""


@pytest.mark.parametrize('fail', [False, True])
def test_clone_through_a_real_pg_basebackup_process(lab, capsys, monkeypatch, fail):
    """The module's own run_as_to_file (not the fake): a process with the password in its environment, the C locale
    and / as cwd, its output in the staging directory's progress.log, the file gone afterwards."""
    monkeypatch.setattr(m, 'run_as_to_file', common.run_as_to_file)
    seen, fail_flag = str(lab.tmp / 'seen'), str(lab.tmp / 'fail')
    # the directory that holds ansible_collections/hotstandby/postgresql/plugins/modules/pg_basebackup.py
    collections = os.path.abspath(os.path.join(os.path.dirname(m.__file__), *['..'] * 5))
    script = os.path.join(lab.bin, 'pg_basebackup')
    with open(script, 'w') as f:
        f.write(STAND_IN % dict(python=sys.executable, collections=collections, seen=seen, password=PASSWORD,
                                fail=fail_flag, sysid=PRIMARY_SYSID))
    if fail:
        open(fail_flag, 'w').close()
    files = []
    real_open = os.open
    monkeypatch.setattr(common.os, 'open', lambda path, *a, **k: files.append(path) or real_open(path, *a, **k))
    result = run_module(lab, capsys)
    with open(seen) as f:
        assert f.read() == 'True|True|C|/'
    assert os.path.join(lab.staging, 'progress.log') in files
    assert not os.path.exists(lab.staging)
    if fail:
        assert result['failed'] and not result['changed']
        assert 'could not connect to server: Connection refused' in result['msg']
        assert ' kB (' not in result['msg'] and 'waiting for checkpoint' not in result['msg']
        assert not os.path.exists(lab.data_dir)
    else:
        assert result['action'] == 'clone' and not result.get('failed'), result['msg']
        assert read_system_identifier(lab.data_dir) == PRIMARY_SYSID
        assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))
    assert_no_password(result, lab)


@pytest.mark.parametrize('in_place', [False, True])
def test_failed_clone_message_quotes_pg_basebackup_without_its_progress_lines(lab, capsys, monkeypatch, in_place):
    if in_place:
        os.makedirs(lab.data_dir)
        real = os.path.ismount
        monkeypatch.setattr(m.os.path, 'ismount', lambda p: p == lab.data_dir or real(p))
    lab.fake.basebackup_error = ('pg_basebackup: error: could not read COPY data: server closed the connection '
                                 'unexpectedly\npg_basebackup: removing data directory "x"\n')
    result = run_module(lab, capsys)
    assert result['failed'] and not result['changed']
    assert result['msg'] == ('cloning failed, %s was not changed: pg_basebackup failed: pg_basebackup: error: could '
                             'not read COPY data: server closed the connection unexpectedly\npg_basebackup: removing '
                             'data directory "x"' % lab.data_dir)
    assert ' kB (' not in result['msg'] and 'waiting for checkpoint' not in result['msg']
    assert not os.path.exists(lab.staging)  # the progress file went with the staging directory
    assert os.listdir(lab.data_dir) == [] if in_place else not os.path.exists(lab.data_dir)


def test_failed_verify_keeps_target(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID)
    lab.fake.slot_exists = True
    lab.fake.verify_error = 'pg_verifybackup: error: "base/1/1259" has size 0 on disk but size 8192 in the manifest'
    result = run_module(lab, capsys, slot='standby1')
    assert result['failed'] and 'pg_verifybackup' in result['msg'] and not lab.fake.dropped
    assert read_system_identifier(lab.data_dir) == OTHER_SYSID
    assert not os.path.exists(lab.staging)


def test_missing_slot_refused_before_copy(lab, capsys):
    result = run_module(lab, capsys, slot='standby1')
    assert result['failed'] and 'nothing was copied' in result['msg'] and 'must exist on the upstream' in result['msg']
    assert not [c for c in lab.fake.commands('pg_basebackup') if '--version' not in c]
    assert not os.path.exists(lab.data_dir) and not os.path.exists(lab.staging)
    check = run_module(lab, capsys, check=True, slot='standby1')
    assert check['failed'] and 'must exist on the upstream' in check['msg']


def test_failed_clone_missing_slot_before_15_does_not_drop(lab, capsys):
    lab.fake.basebackup_error = 'pg_basebackup: error: replication slot "standby1" does not exist'
    lab.fake.version_num = 140010
    lab.fake.binary_version = '14.10'
    result = run_module(lab, capsys, slot='standby1')
    assert result['failed'] and not lab.fake.dropped
    assert 'must exist on the upstream' in result['msg']
    assert not lab.fake.commands('psql')[1:]  # PostgreSQL 14: no READ_REPLICATION_SLOT


def test_verify_skipped_without_manifest(lab, capsys):
    lab.fake.manifest = False
    result = run_module(lab, capsys)
    assert result['verified'] is False and 'no backup_manifest' in result['verify_note']


def test_verify_disabled(lab, capsys):
    result = run_module(lab, capsys, verify=False)
    assert result['verified'] is False and 'disabled' in result['verify_note']
    assert not lab.fake.commands('pg_verifybackup')


@pytest.mark.parametrize('params, expect', [
    (dict(slot='Bad-Name'), 'invalid slot name'),
    (dict(create_slot=True), 'Unsupported parameters'),  # the option is gone: the roles create the slots
    (dict(max_rate='100 MB'), 'invalid max_rate'),
    (dict(password='two\nlines'), 'line break'),
])
def test_parameter_validation(lab, capsys, params, expect):
    result = run_module(lab, capsys, **params)
    assert result['failed'] and expect in result['msg']


def test_temp_passfiles_of_older_versions_swept_in_real_runs_only(lab, capsys):
    dead = subprocess.Popen(['true'])
    dead.wait()
    stale = os.path.join(lab.home, '%s%d-abc' % (TMP_PASS_PREFIX, dead.pid))
    with open(stale, 'w') as f:
        f.write('*:*:*:replicator:old\n')
    run_module(lab, capsys, check=True)
    assert os.path.exists(stale)
    run_module(lab, capsys)
    assert not os.path.exists(stale)


def fail_rename_of_staging(monkeypatch):
    """The move of the finished clone into place fails (as on a full disk)."""
    real_rename = os.rename

    def rename(src, dst):
        if src.endswith(os.path.join('.main.hotstandby-staging', 'data')):
            raise OSError(28, 'No space left on device')
        return real_rename(src, dst)
    monkeypatch.setattr(m.os, 'rename', rename)


def test_unexpected_os_error_reports_moved_directory(lab, capsys, monkeypatch):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID)
    fail_rename_of_staging(monkeypatch)
    result = run_module(lab, capsys)
    assert result['failed'] and result['changed']
    assert 'unexpected error' in result['msg'] and 'moved to %s' % result['moved_to'] in result['msg']
    assert read_system_identifier(result['moved_to']) == OTHER_SYSID


# ---------------------------------------------------------------------------
# reclone
# ---------------------------------------------------------------------------

def test_reclone_moves_standby_aside_and_clones(lab, capsys):
    lab.fake.slot_exists = True
    run_module(lab, capsys, slot='standby1')
    with open(os.path.join(lab.data_dir, 'old-standby-file'), 'w') as f:
        f.write('kept')
    result = run_module(lab, capsys, diff=True, slot='standby1', reclone=True)
    assert result['changed'] and result['case'] == 'standby' and result['action'] == 'clone'
    assert result['moved_to'].startswith(lab.data_dir + '.moved-')
    with open(os.path.join(result['moved_to'], 'old-standby-file')) as f:
        assert f.read() == 'kept'
    assert not os.path.exists(os.path.join(lab.data_dir, 'old-standby-file'))
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))
    assert not os.path.exists(lab.staging)
    clones = [c for c in lab.fake.commands('pg_basebackup') if '--version' not in c]
    assert len(clones) == 2 and '-C' not in clones[-1]  # the existing slot is reused
    assert 'cloned again (reclone' in result['diff']['before']
    assert 'previous standby data directory was moved to %s' % result['moved_to'] in result['msg']
    assert_no_password(result, lab)


def test_reclone_with_missing_slot_refused_before_copy(lab, capsys):
    lab.fake.slot_exists = True
    run_module(lab, capsys, slot='standby1')
    lab.fake.slot_exists = False  # e.g. the primary dropped a lost slot and has not made it anew yet
    before = tree(lab.tmp)
    result = run_module(lab, capsys, slot='standby1', reclone=True)
    assert result['failed'] and 'nothing was copied' in result['msg'] and 'must exist on the upstream' in result['msg']
    assert len([c for c in lab.fake.commands('pg_basebackup') if '--version' not in c]) == 1
    assert tree(lab.tmp) == before and result['moved_to'] is None


def test_reclone_check_mode_changes_nothing(lab, capsys):
    run_module(lab, capsys)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, check=True, diff=True, reclone=True)
    assert result['changed'] and result['case'] == 'standby' and result['action'] == 'clone'
    assert result['moved_to'].startswith(lab.data_dir + '.moved-')
    assert tree(lab.tmp) == before
    assert 'would clone' in result['msg']


def test_reclone_refuses_running_server(lab, capsys, monkeypatch):
    run_module(lab, capsys)
    with open(os.path.join(lab.data_dir, 'postmaster.pid'), 'w') as f:
        f.write('12345\n')
    monkeypatch.setattr(m, 'postmaster_pid', lambda d: 12345 if os.path.exists(os.path.join(d, 'postmaster.pid'))
                        else None)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, check=True, reclone=True)
    assert not result.get('failed') and result['running'] is True and result['action'] == 'clone'
    result = run_module(lab, capsys, reclone=True)
    assert result['failed'] and 'stop it first' in result['msg'] and not result['changed']
    assert result['moved_to'] is None
    assert tree(lab.tmp) == before


def test_reclone_without_standby_is_an_ordinary_clone(lab, capsys):
    result = run_module(lab, capsys, reclone=True)
    assert result['case'] == 'missing' and result['action'] == 'clone' and result['moved_to'] is None


def test_reclone_keeps_foreign_policy(lab, capsys):
    write_cluster(lab.data_dir, sysid=OTHER_SYSID, user_data=True)
    before = tree(lab.tmp)
    result = run_module(lab, capsys, reclone=True)
    assert result['failed'] and result['case'] == 'foreign' and 'existing_data: move_aside' in result['msg']
    assert tree(lab.tmp) == before


def test_reclone_refused_on_mount_point(lab, capsys, monkeypatch):
    run_module(lab, capsys)
    real = os.path.ismount
    monkeypatch.setattr(m.os.path, 'ismount', lambda p: p == lab.data_dir or real(p))
    result = run_module(lab, capsys, reclone=True)
    assert result['failed'] and 'is a mount point' in result['msg']
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))


@pytest.mark.parametrize('rc, stderr', [(-9, ''), (137, 'Killed')])  # direct child / through runuser
def test_killed_basebackup_names_the_signal(lab, capsys, rc, stderr):
    lab.fake.basebackup_error = stderr
    lab.fake.basebackup_rc = rc
    lab.fake.slot_exists = True
    result = run_module(lab, capsys, slot='standby1')
    assert result['failed'] and not result['changed']
    assert 'pg_basebackup was killed by SIGKILL (signal 9)' in result['msg']
    assert 'was not changed' in result['msg'] and not lab.fake.dropped
    assert not os.path.exists(lab.data_dir) and not os.path.exists(lab.staging)


# ---------------------------------------------------------------------------
# the password: only in the environment of the programs, never in a file, never on argv
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('scenario', ['clone', 'update_settings', 'follow'])
def test_check_mode_writes_no_file_anywhere_and_no_password_on_argv(lab, capsys, monkeypatch, scenario):
    if scenario == 'clone':
        write_cluster(lab.data_dir, sysid=OTHER_SYSID)  # pristine: would be moved aside and cloned
        params = {}
    elif scenario == 'follow':
        write_sibling(lab)  # would be re-pointed: settings and passfile
        params = dict(follow=True, slot='s3')
        lab.fake.slot_exists = True
    else:
        run_module(lab, capsys)
        params = dict(password='rotated', slot='s2')  # would rewrite the settings and the passfile
        lab.fake.slot_exists = True
    tmpdir = lab.tmp / 'tmp'
    tmpdir.mkdir()
    monkeypatch.setenv('TMPDIR', str(tmpdir))
    monkeypatch.setattr(tempfile, 'tempdir', str(tmpdir))
    lab.fake.calls[:] = []
    written = []
    real_os_open = os.open

    def spy_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            written.append(path)
        return real_os_open(path, flags, *args, **kwargs)
    before = tree(lab.tmp, dir_mtimes=True)  # with directory mtimes: a file created and removed again shows
    with pytest.MonkeyPatch.context() as spy:
        spy.setattr(os, 'open', spy_open)
        spy.setattr(tempfile, 'mkstemp', lambda *a, **k: written.append(('mkstemp', a, k)))
        result = run_module(lab, capsys, check=True, diff=True, **params)
    assert result['action'] == ('update_settings' if scenario == 'follow' else scenario) and result['changed']
    assert result['followed'] == (scenario == 'follow')
    assert tree(lab.tmp, dir_mtimes=True) == before
    assert written == []
    password = params.get('password', PASSWORD)
    connecting = [(a, e) for a, e in lab.fake.calls if os.path.basename(a[0]) == 'psql']
    assert connecting
    for args, env in lab.fake.calls:
        assert not any(password in a or pgpass_escape(password) in a for a in args)
        assert not any('PGPASSWORD' in a for a in args)
        assert 'PGPASSFILE' not in env
    for args, env in connecting:
        assert env['PGPASSWORD'] == password
    assert password not in result['_raw']


def test_password_reaches_programs_run_through_runuser(lab, capsys, monkeypatch):
    monkeypatch.setattr(common.pwd, 'getpwnam', lambda name: PwEntry(
        pw_name=name, pw_passwd='x', pw_uid=4242, pw_gid=4242, pw_gecos='', pw_dir=lab.home, pw_shell='/bin/sh'))
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False, opt_dirs=None: '/usr/sbin/' + name if name == 'runuser'
                        else None)
    result = run_module(lab, capsys, check=True)
    assert result['action'] == 'clone'
    psql = [(a, e) for a, e in lab.fake.calls if '-X' in a]
    assert psql
    for args, env in psql:
        assert args[:4] == ['/usr/sbin/runuser', '-u', 'postgres', '--'] and '-l' not in args[:4]
        assert env['PGPASSWORD'] == PASSWORD
        assert not any('w @rd' in a for a in args)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists('/usr/sbin/runuser'),
                    reason='needs root and runuser')
def test_runuser_keeps_pgpassword_in_the_environment(tmp_path):
    """For real: what run() passes in the environment reaches a program that runuser starts as another user."""
    args = dict(data_dir=str(tmp_path / 'main'), primary_host='h', user='u', password=PASSWORD, owner='nobody',
                _ansible_check_mode=True)
    with patch_module_args(args):
        module = basic.AnsibleModule(argument_spec=m.ARGUMENT_SPEC, supports_check_mode=True)
    worker = m.BaseBackup(module)
    worker.runuser = common.owner_account(module, 'nobody', worker.data_dir)[3]
    assert worker.runuser[1:] == ['-u', 'nobody', '--']
    rc, out, err = worker.run(['/bin/sh', '-c', 'id -un; printf "%s" "$PGPASSWORD"; printf "|%s" "$LC_ALL"'],
                              password=True)
    assert (rc, out) == (0, 'nobody\n%s|C' % PASSWORD), err
    rc, out, err = worker.run(['/bin/sh', '-c', 'printf "%s" "${PGPASSWORD-unset}"'])
    assert out == 'unset'


# ---------------------------------------------------------------------------
# reclone_marker
# ---------------------------------------------------------------------------

def test_reclone_marker_reclones_and_is_removed_after_success(lab, capsys):
    marker = str(lab.tmp / 'pg' / 'reclone-needed')
    run_module(lab, capsys, reclone_marker=marker)
    open(marker, 'w').close()
    before = tree(lab.tmp)
    check = run_module(lab, capsys, check=True, reclone_marker=marker)
    assert check['reclone_marker_found'] is True and check['action'] == 'clone' and check['case'] == 'standby'
    assert tree(lab.tmp) == before and os.path.exists(marker)
    result = run_module(lab, capsys, reclone_marker=marker)
    assert result['reclone_marker_found'] is True and result['action'] == 'clone' and result['changed']
    assert result['moved_to'].startswith(lab.data_dir + '.moved-') and os.path.isdir(result['moved_to'])
    assert not os.path.exists(marker)
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))
    again = run_module(lab, capsys, reclone_marker=marker)
    assert again['reclone_marker_found'] is False and again['action'] == 'none' and not again['changed']


def test_reclone_marker_absent_changes_nothing(lab, capsys):
    run_module(lab, capsys)
    result = run_module(lab, capsys, reclone_marker=str(lab.tmp / 'no-such-marker'))
    assert result['reclone_marker_found'] is False and result['action'] == 'none'
    assert run_module(lab, capsys)['reclone_marker_found'] is False


@pytest.mark.parametrize('failure', ['basebackup', 'verify', 'rename', 'running'])
def test_reclone_marker_kept_when_the_reclone_fails(lab, capsys, failure):
    marker = str(lab.tmp / 'pg' / 'reclone-needed')
    run_module(lab, capsys)
    open(marker, 'w').close()
    monkeypatch = pytest.MonkeyPatch()  # undone before the second run (the lab's own patches stay)
    if failure == 'basebackup':
        lab.fake.basebackup_error = 'pg_basebackup: error: could not read COPY data: server closed the connection'
    elif failure == 'verify':
        lab.fake.verify_error = 'pg_verifybackup: error: checksum mismatch for file "base/1/1259"'
    elif failure == 'rename':  # interrupted after the standby was moved aside (as a killed run would be)
        fail_rename_of_staging(monkeypatch)
    else:
        monkeypatch.setattr(m, 'postmaster_pid', lambda d: 12345 if d == lab.data_dir else None)
    result = run_module(lab, capsys, reclone_marker=marker)
    assert result['failed'] and result['reclone_marker_found'] is True
    assert os.path.exists(marker)
    monkeypatch.undo()
    lab.fake.basebackup_error = lab.fake.verify_error = None
    result = run_module(lab, capsys, reclone_marker=marker)  # the next run does the re-clone again
    assert not result.get('failed') and result['action'] == 'clone' and result['reclone_marker_found'] is True
    assert not os.path.exists(marker)


def test_reclone_marker_for_a_new_standby_is_consumed_by_its_clone(lab, capsys):
    marker = str(lab.tmp / 'pg' / 'reclone-needed')
    open(marker, 'w').close()
    result = run_module(lab, capsys, reclone_marker=marker)
    assert result['case'] == 'missing' and result['action'] == 'clone' and result['reclone_marker_found'] is True
    assert not os.path.exists(marker)


def test_reclone_marker_directory_refused(lab, capsys):
    marker = str(lab.tmp / 'pg' / 'reclone-needed')
    os.mkdir(marker)
    result = run_module(lab, capsys, reclone_marker=marker)
    assert result['failed'] and 'is a directory' in result['msg'] and not os.path.exists(lab.data_dir)


def test_reclone_marker_that_cannot_be_removed(lab, capsys, monkeypatch):
    marker = str(lab.tmp / 'pg' / 'reclone-needed')
    open(marker, 'w').close()
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if path == marker:
            raise OSError(13, 'Permission denied')
        return real_unlink(path, *args, **kwargs)
    monkeypatch.setattr(os, 'unlink', unlink)
    result = run_module(lab, capsys, reclone_marker=marker)
    assert result['failed'] and result['changed'] and 'the next run clones again' in result['msg']
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))


# ---------------------------------------------------------------------------
# plan() and apply()
# ---------------------------------------------------------------------------

def make_worker(lab, check=False, **params):
    args = dict(data_dir=lab.data_dir, primary_host='10.0.0.11', primary_port=5432, user='replicator',
                password=PASSWORD, bin_dir=lab.bin)
    args.update(params)
    args['_ansible_check_mode'] = check
    with patch_module_args(args):
        module = basic.AnsibleModule(argument_spec=m.ARGUMENT_SPEC, supports_check_mode=True)
    worker = m.BaseBackup(module)
    worker.prepare()
    return worker


def set_up(lab, capsys, monkeypatch, state):
    """Put the data directory into a state; return the module parameters and what plan() decides."""
    if state == 'missing':
        return {}, ('missing', 'clone')
    if state == 'empty':
        os.makedirs(lab.data_dir)
        return {}, ('empty', 'clone')
    if state == 'pristine':
        write_cluster(lab.data_dir, sysid=OTHER_SYSID)
        return {}, ('pristine', 'clone')
    if state == 'foreign':
        write_cluster(lab.data_dir, sysid=OTHER_SYSID, user_data=True)
        return dict(existing_data='move_aside'), ('foreign', 'clone')
    if state == 'follow':
        write_sibling(lab, running=True, monkeypatch=monkeypatch)
        return dict(follow=True), ('standby', 'update_settings')
    run_module(lab, capsys)
    if state == 'standby':
        return {}, ('standby', 'none')
    if state == 'standby_changed':
        return dict(password='rotated', application_name='other'), ('standby', 'update_settings')
    if state == 'reclone':
        return dict(reclone=True), ('standby', 'clone')
    if state == 'reclone_marker':
        open(str(lab.tmp / 'pg' / 'marker'), 'w').close()
        return dict(reclone_marker=str(lab.tmp / 'pg' / 'marker')), ('standby', 'clone')
    if state == 'leftover_staging':
        os.makedirs(os.path.join(lab.staging, 'data', 'base'))
        with open(os.path.join(lab.staging, MARKER), 'w') as f:
            json.dump({'pid': 1 << 22, 'mode': 'staged'}, f)
        return {}, ('standby', 'update_settings')
    if state == 'running':
        monkeypatch.setattr(m, 'postmaster_pid', lambda d: 12345 if d == lab.data_dir else None)
        return dict(reclone=True), ('standby', 'clone')
    raise AssertionError(state)


STATES = ['missing', 'empty', 'pristine', 'foreign', 'follow', 'standby', 'standby_changed', 'reclone',
          'reclone_marker', 'leftover_staging', 'running']


@pytest.mark.parametrize('state', STATES)
def test_plan_has_no_side_effects(lab, capsys, monkeypatch, state):
    params, (case, action) = set_up(lab, capsys, monkeypatch, state)
    worker = make_worker(lab, **params)  # a real run's worker: plan() alone must not change anything either
    calls = len(lab.fake.calls)
    before = tree(lab.tmp, dir_mtimes=True)
    plan = worker.plan()
    assert tree(lab.tmp, dir_mtimes=True) == before
    assert (plan['case'], plan['action']) == (case, action)
    assert plan['changed'] == (action != 'none') and plan['msg']
    if action == 'clone':
        assert plan['msg'].startswith('would clone')
    elif state == 'follow':
        assert 'would be re-pointed from db1:5432' in plan['msg']
    else:
        assert 'already a standby' in plan['msg']
    assert plan['followed'] == (state == 'follow')
    assert plan['diff']['before'] and plan['diff']['after']
    assert plan['blocked'] if state == 'running' else not plan['blocked']
    assert plan['cleaned_staging'] == (state == 'leftover_staging')
    assert plan['reclone_marker_found'] == (state == 'reclone_marker')
    new = lab.fake.calls[calls:]
    assert [os.path.basename(a[0]) for a, e in new if '--version' not in a] == ['psql']  # the preflight only
    assert not lab.fake.created and not lab.fake.dropped
    assert PASSWORD not in json.dumps(dict((k, v) for k, v in plan.items() if k != 'current'))
    again = worker.plan()  # planning again decides the same
    same = [k for k in m.RESULT if k not in ('moved_to', 'msg')]
    assert [again[k] for k in same] == [plan[k] for k in same]


@pytest.mark.parametrize('state', STATES)
def test_apply_does_what_the_plan_says(lab, capsys, monkeypatch, state):
    params, (case, action) = set_up(lab, capsys, monkeypatch, state)
    worker = make_worker(lab, **params)
    plan = worker.plan()
    if state == 'running':
        before = tree(lab.tmp)
        with pytest.raises(ModuleFailure, match='stop it first'):
            worker.apply(plan)
        assert tree(lab.tmp) == before and not worker.touched
        return
    before = tree(lab.tmp)
    assert worker.apply(plan) is plan
    assert not os.path.exists(lab.staging)
    if action == 'none':
        assert tree(lab.tmp) == before and not worker.touched
        return
    assert worker.touched or action == 'clone'
    assert os.path.isfile(os.path.join(lab.data_dir, 'standby.signal'))
    if action == 'clone':
        assert plan['msg'].startswith('cloned') and plan['bytes'] > 0 and plan['verified']
        assert read_system_identifier(lab.data_dir) == PRIMARY_SYSID
        assert bool(plan['moved_to']) == (case in ('pristine', 'foreign', 'standby'))
        if plan['moved_to']:
            assert os.path.isdir(plan['moved_to'])
    else:
        assert 'would' not in plan['msg'] and ('were rewritten' in plan['msg'] or 'removed' in plan['msg'])
    assert not os.path.exists(str(lab.tmp / 'pg' / 'marker'))
    again = make_worker(lab, **params).plan()  # converged
    assert again['action'] == 'none' or params.get('reclone')
