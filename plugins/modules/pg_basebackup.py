#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_basebackup
short_description: Turn a host into a streaming-replication standby of a PostgreSQL primary, safely and idempotently
version_added: 0.1.0
description:
  - Runs on the B(standby) host, normally as C(root) with C(become), and performs the base-backup handoff
    from the primary the way a careful DBA would do it by hand.
  - Connects to the primary through a replication connection (C(psql) as O(owner)) and checks, before a single
    byte is copied, that the credentials, C(pg_hba.conf), the C(REPLICATION) attribute, C(wal_level),
    C(max_wal_senders) and the major version of the local binaries are all usable.
    Every problem found is reported with what was found and what to do next.
  - Reads O(data_dir) and classifies it (returned as RV(case)) as V(missing), V(empty), V(standby) (already a
    standby of this primary, nothing is copied), V(pristine) (a freshly initdb'ed cluster without user data,
    such as the C(main) cluster the Debian package creates) or V(foreign) (anything else).
  - A V(standby) data directory is only reconciled - C(primary_conninfo), C(primary_slot_name), C(standby.signal)
    and the passfile are rewritten if they differ (RV(settings_changed)); the caller should then reload the server.
  - Otherwise the primary is cloned with C(pg_basebackup) into a staging directory next to O(data_dir)
    (C(<parent>/.<basename>.hotstandby-staging/data)), optionally verified with C(pg_verifybackup), given its
    standby settings, and only then renamed into place. An interrupted run never leaves a half-copied O(data_dir);
    the next run removes the leftover staging directory (it carries a C(HOTSTANDBY_STAGING) marker file) and starts over.
  - A V(pristine) directory is renamed aside to C(<data_dir>.moved-<UTC timestamp>) and replaced.
    A V(foreign) directory is only renamed aside with O(existing_data=move_aside), otherwise the module fails.
    The module never deletes anything except its own staging directory.
  - The password is passed to C(pg_basebackup) and C(psql) only through a temporary mode C(0600) passfile;
    it never appears on a command line, in C(postgresql.auto.conf), in the result or in the diff.
    The standby's own ongoing connection uses O(passfile).
  - There is no internal timeout; a clone of a large cluster may run for hours, use C(async) for that.
  - Supports PostgreSQL 13 and newer, with the Debian/Ubuntu layout of binaries
    (C(/usr/lib/postgresql/<major>/bin)) unless O(bin_dir) is given.
author:
  - Hotstandby PostgreSQL maintainers (@hotstandby)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Connects to the primary read-only (C(IDENTIFY_SYSTEM), C(SHOW)) to classify O(data_dir) and reports
        what would happen (RV(case), RV(action), RV(moved_to), RV(running)) without changing anything.
  diff_mode:
    support: full
    details:
      - Shows the standby settings (presence of C(standby.signal), C(primary_conninfo), C(primary_slot_name)) and the
        state of the passfile entry before and after. The password is never shown.
  platform:
    platforms: posix
options:
  data_dir:
    description:
      - Data directory of the standby, for example C(/var/lib/postgresql/15/main).
      - If it is a symbolic link, the directory it points to is used.
      - If it is a mount point it cannot be renamed; see O(existing_data).
    type: path
    required: true
  primary_host:
    description:
      - Host name or IP address of the primary, as the standby should connect to it.
      - Written into C(primary_conninfo) and into the host field of the O(passfile) entry.
    type: str
    required: true
  primary_port:
    description:
      - TCP port of the primary.
    type: int
    default: 5432
  user:
    description:
      - Name of the replication role on the primary (it needs the C(REPLICATION) attribute).
    type: str
    required: true
  password:
    description:
      - Password of O(user).
      - Used through temporary passfiles and written into O(passfile); never placed on a command line.
    type: str
    required: true
  slot:
    description:
      - Name of a physical replication slot on the primary to be used by the clone and by the standby
        (C(primary_slot_name)).
      - Lower-case letters, digits and underscores, at most 63 characters.
      - If omitted, the clone uses a temporary slot and no C(primary_slot_name) is configured
        (an existing one is removed).
    type: str
  create_slot:
    description:
      - Create O(slot) together with the clone (C(pg_basebackup -C -S)). Requires O(slot).
      - If the clone fails after the slot was created, the slot is dropped again.
      - If the primary is PostgreSQL 15 or newer, the module checks first whether the slot exists; an existing
        slot is reused, and for an existing standby a missing slot is created (C(CREATE_REPLICATION_SLOT)).
      - If V(false), O(slot) must already exist on the primary.
    type: bool
    default: false
  application_name:
    description:
      - C(application_name) of the standby's connection (as used in C(synchronous_standby_names) and
        shown in C(pg_stat_replication)).
      - Defaults to the short host name of the standby.
    type: str
  checkpoint:
    description:
      - Checkpoint mode at the start of the backup (C(pg_basebackup -c)).
    type: str
    choices: [fast, spread]
    default: fast
  max_rate:
    description:
      - Maximum transfer rate of the clone, in C(pg_basebackup -r) syntax, for example V(100M) or V(32768k).
    type: str
  wal_method:
    description:
      - How the WAL needed by the clone is included (C(pg_basebackup -X)).
    type: str
    choices: [stream, fetch]
    default: stream
  verify:
    description:
      - Run C(pg_verifybackup) on the staged copy before it is moved into place; a failed verification
        fails the module and leaves O(data_dir) untouched.
      - Skipped (and explained in RV(verify_note)) when C(pg_verifybackup) or the C(backup_manifest) is missing.
    type: bool
    default: true
  connect_timeout:
    description:
      - C(connect_timeout) in seconds, for the checks, for the clone and in C(primary_conninfo).
    type: int
    default: 10
  sslmode:
    description:
      - libpq C(sslmode) for the checks, the clone and C(primary_conninfo).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  sslrootcert:
    description:
      - File with the CA certificate(s) to verify the primary's server certificate (libpq C(sslrootcert)).
      - Used for the checks and the clone, and written into C(primary_conninfo). Must be readable by O(owner).
    type: path
  bin_dir:
    description:
      - Directory with the PostgreSQL client binaries (C(pg_basebackup), C(psql), C(pg_verifybackup)).
      - Defaults to C(/usr/lib/postgresql/<major>/bin), where C(<major>) is the primary's major version.
        If that does not exist the module fails and lists the versions that are installed.
      - If given, its C(pg_basebackup) must be of the primary's major version.
    type: path
  existing_data:
    description:
      - What to do when O(data_dir) holds real data that is not a standby of this primary (RV(case=foreign)).
      - V(fail) stops with a message describing what was found.
      - V(move_aside) renames the directory to C(<data_dir>.moved-<YYYYmmddTHHMMSSZ>) and clones.
        Nothing is deleted; remove the moved directory yourself when you no longer need it.
      - A V(pristine) directory is always moved aside, regardless of this option. Pristine means - PG_VERSION
        present, no database directory or relation file with an OID of 16384 or above, no tablespace, no replication
        slot, no file that initdb does not create, and no standby.signal, recovery.signal or backup_label.
      - A running server in a directory that would be moved makes the module fail (in check mode it reports
        RV(running=true) instead); stop the server first.
      - If O(data_dir) is a mount point it cannot be renamed. The module then only clones into it when it is
        empty, or when it holds an interrupted clone of this module (marked by the staging marker file); in
        that case the interrupted clone's files are removed from the mount point before cloning again.
        Any other content of a mount point makes the module fail; using a sub-directory of the mount as
        O(data_dir) is recommended.
    type: str
    choices: [fail, move_aside]
    default: fail
  reclone:
    description:
      - Clone again even when O(data_dir) is already a standby of this primary (RV(case=standby)), for example
        because the standby fell so far behind that the primary no longer has the WAL it needs (its slot was
        lost).
      - The existing directory is renamed aside to C(<data_dir>.moved-<YYYYmmddTHHMMSSZ>) like with
        O(existing_data=move_aside), never deleted; the result has RV(case=standby), RV(action=clone) and
        RV(moved_to).
      - The server running in O(data_dir) must be stopped first (in check mode RV(running) says whether it runs).
      - Does not change how other cases are handled; a V(foreign) directory still follows O(existing_data).
    type: bool
    default: false
  owner:
    description:
      - Operating system user that owns O(data_dir) and runs C(pg_basebackup), C(psql) and C(pg_verifybackup)
        (through C(runuser) when the module runs as C(root)).
    type: str
    default: postgres
  passfile:
    description:
      - Passfile used by the standby's ongoing replication connection (C(passfile=...) in C(primary_conninfo)).
      - Defaults to C(.pgpass_replication) in the home directory of O(owner).
      - The module manages the line C(host:port:replication:user:password) for O(primary_host), O(primary_port)
        and O(user) (with C(\) and C(:) escaped as libpq requires) and keeps any other lines. The file is written
        atomically, owned by O(owner), mode C(0600).
      - A change of this file (for example a password rotation) is reported as changed even when nothing is cloned.
    type: path
notes:
  - The module does not start, stop or reload the server. Call it in check mode first and stop the service when
    RV(running) is true and RV(action) is V(clone); reload the service when RV(settings_changed) is true;
    start it after a clone.
  - The replication role needs a C(host replication) line in the primary's C(pg_hba.conf) for the standby's address.
  - The system identifier of an existing data directory is read directly from C(global/pg_control).
  - When C(pg_basebackup) dies (or a previous run was killed), the module terminates leftover C(pg_basebackup)
    processes that still write into its own staging directory (the WAL streaming child of C(pg_basebackup) outlives
    a killed parent) before it removes the staging directory or drops a slot it created.
seealso:
  - name: pg_basebackup
    description: The PostgreSQL program used for the clone.
    link: https://www.postgresql.org/docs/current/app-pgbasebackup.html
  - name: Streaming replication
    description: Setting up a standby server.
    link: https://www.postgresql.org/docs/current/warm-standby.html
  - module: community.postgresql.postgresql_slot
'''

EXAMPLES = r'''
- name: Find out whether the standby would be cloned while its server runs
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.11
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: standby1
    create_slot: true
  check_mode: true
  register: basebackup_plan

- name: Stop the server before the clone replaces its data directory
  ansible.builtin.service:
    name: postgresql@15-main
    state: stopped
  when: basebackup_plan.action == 'clone' and basebackup_plan.running

- name: Clone the primary, or reconcile the settings of an existing standby
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.11
    primary_port: 5432
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: standby1
    create_slot: true
    max_rate: 200M
    sslmode: verify-full
    sslrootcert: /etc/postgresql-common/root.crt
  async: 86400
  poll: 30
  register: basebackup

- name: Reload after changed settings
  ansible.builtin.service:
    name: postgresql@15-main
    state: reloaded
  when: basebackup.settings_changed and basebackup.action != 'clone'

- name: Replace whatever is in the data directory (it is renamed aside, not deleted)
  hotstandby.postgresql.pg_basebackup:
    data_dir: /srv/pgdata/15/main
    primary_host: db1.example.com
    user: replicator
    password: "{{ postgres_replication_password }}"
    existing_data: move_aside
    bin_dir: /usr/lib/postgresql/15/bin
'''

RETURN = r'''
case:
  description:
    - Classification of O(data_dir) before the run.
    - V(missing) does not exist, V(empty) exists without entries, V(standby) is a standby of this primary,
      V(pristine) is a freshly initialised cluster without user data, V(foreign) is anything else.
  returned: always
  type: str
  sample: pristine
action:
  description:
    - What was done (or would be done in check mode).
    - V(clone) copied the primary, V(update_settings) only rewrote standby settings, the passfile or removed a
      leftover staging directory, V(none) changed nothing.
  returned: always
  type: str
  sample: clone
moved_to:
  description: Where the previous content of O(data_dir) was (or would be) renamed to, or C(null).
  returned: always
  type: str
  sample: /var/lib/postgresql/15/main.moved-20260126T101500Z
cleaned_staging:
  description: Whether a leftover staging directory of an interrupted run was (or would be) removed.
  returned: always
  type: bool
  sample: false
bytes:
  description: Size of the copied data directory in bytes (sum of the file sizes of the clone); C(0) without clone.
  returned: always
  type: int
  sample: 31684091
seconds:
  description: Duration of the C(pg_basebackup) run in seconds; C(0.0) without clone.
  returned: always
  type: float
  sample: 2.41
bytes_per_second:
  description: RV(bytes) divided by RV(seconds); C(0) without clone.
  returned: always
  type: int
  sample: 13146925
system_identifier:
  description: Database system identifier of the primary, as reported by C(IDENTIFY_SYSTEM).
  returned: always
  type: str
  sample: "7712491459935377245"
primary_version:
  description: Major version of the primary.
  returned: always
  type: int
  sample: 15
slot:
  description: The replication slot configured for the standby, or C(null).
  returned: always
  type: str
  sample: standby1
slot_created:
  description: Whether the module created O(slot) on the primary (together with the clone, or for an existing standby).
  returned: always
  type: bool
  sample: true
data_dir:
  description: The data directory (after resolving a symbolic link).
  returned: always
  type: str
  sample: /var/lib/postgresql/15/main
staging_dir:
  description: The staging directory used (or that would be used) for the clone.
  returned: always
  type: str
  sample: /var/lib/postgresql/15/.main.hotstandby-staging
verified:
  description: Whether C(pg_verifybackup) verified the clone successfully.
  returned: always
  type: bool
  sample: true
verify_note:
  description: Why verification was skipped, or a short result of it; empty when nothing was cloned.
  returned: always
  type: str
  sample: backup successfully verified
settings_changed:
  description:
    - Whether C(standby.signal), C(primary_conninfo) or C(primary_slot_name) of an existing standby were (or would be)
      rewritten. The server must then be reloaded. Also true after a clone.
  returned: always
  type: bool
  sample: false
passfile_changed:
  description: Whether the entry in O(passfile) was (or would be) written or changed.
  returned: always
  type: bool
  sample: false
passfile:
  description: Path of the passfile used by the standby.
  returned: always
  type: str
  sample: /var/lib/postgresql/.pgpass_replication
primary_conninfo:
  description: The C(primary_conninfo) of the standby (contains no password).
  returned: always
  type: str
  sample: host=10.0.0.11 port=5432 user=replicator passfile=/var/lib/postgresql/.pgpass_replication application_name=db2
running:
  description:
    - Whether a server is running in O(data_dir) (a live C(postmaster.pid)). In check mode a running server in a
      directory that would be moved aside is reported here instead of failing.
  returned: always
  type: bool
  sample: false
msg:
  description: Human-readable summary.
  returned: always
  type: str
  sample: cloned 10.0.0.11:5432 (PostgreSQL 15) into /var/lib/postgresql/15/main
'''

import datetime
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

MARKER = 'HOTSTANDBY_STAGING'
TMP_PASS_PREFIX = '.hotstandby-pgpass-'
FIRST_NORMAL_OID = 16384
MIN_MAJOR = 13
SLOT_RE = re.compile(r'^[a-z0-9_]{1,63}$')
DEBIAN_LIB = '/usr/lib/postgresql'
# what initdb and a server that ran on it leave in a data directory (PostgreSQL 13 and newer)
CLUSTER_ENTRIES = frozenset([
    'PG_VERSION', 'base', 'global', 'pg_commit_ts', 'pg_dynshmem', 'pg_logical', 'pg_multixact', 'pg_notify',
    'pg_replslot', 'pg_serial', 'pg_snapshots', 'pg_stat', 'pg_stat_tmp', 'pg_subtrans', 'pg_tblspc', 'pg_twophase',
    'pg_wal', 'pg_xact', 'postgresql.auto.conf', 'postgresql.conf', 'pg_hba.conf', 'pg_ident.conf',
    'postmaster.opts', 'postmaster.pid', 'current_logfiles', 'log'])
C_ENV = {'LC_ALL': 'C', 'LC_MESSAGES': 'C', 'LANG': 'C', 'LANGUAGE': 'C'}


class ModuleFailure(Exception):
    """Raised for any condition that must end the run with fail_json."""


# ---------------------------------------------------------------------------
# Quoting and parsing helpers (pure functions, unit-tested)
# ---------------------------------------------------------------------------

def conninfo_quote(value):
    """Quote a value for a libpq key=value connection string."""
    value = '%s' % value
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace('\\', '\\\\').replace("'", "\\'") + "'"


def build_conninfo(pairs):
    """Build a conninfo string from (key, value) pairs, skipping None values."""
    return ' '.join('%s=%s' % (k, conninfo_quote(v)) for k, v in pairs if v is not None)


def parse_conninfo(text):
    """Parse a libpq connection string (key=value form or postgres:// URI) into a dict."""
    text = text or ''
    if re.match(r'^\s*postgres(ql)?://', text):
        return _parse_conninfo_uri(text.strip())
    result = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] != '=' and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != '=':
            raise ValueError('missing "=" after "%s" in connection info string' % key)
        i += 1
        while i < n and text[i].isspace():
            i += 1
        buf = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ValueError('unterminated quoted string in connection info string')
                c = text[i]
                if c == '\\' and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                elif c == "'":
                    i += 1
                    break
                else:
                    buf.append(c)
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == '\\' and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                else:
                    buf.append(text[i])
                    i += 1
        result[key] = ''.join(buf)
    return result


def _parse_conninfo_uri(uri):
    try:
        from urllib.parse import urlsplit, unquote, parse_qsl
    except ImportError:  # pragma: no cover - Python 2 is not supported
        raise ValueError('cannot parse URI connection strings')
    parts = urlsplit(uri)
    result = {}
    netloc = parts.netloc
    if '@' in netloc:
        auth, netloc = netloc.rsplit('@', 1)
        if ':' in auth:
            auth = auth.split(':', 1)[0]
        if auth:
            result['user'] = unquote(auth)
    host = netloc
    if netloc.startswith('['):
        end = netloc.find(']')
        host = netloc[1:end]
        rest = netloc[end + 1:]
        if rest.startswith(':') and rest[1:]:
            result['port'] = rest[1:]
    elif ':' in netloc:
        host, port = netloc.rsplit(':', 1)
        if port:
            result['port'] = port
    if host:
        result['host'] = unquote(host)
    if parts.path and parts.path != '/':
        result['dbname'] = unquote(parts.path[1:])
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        result[key] = value
    return result


def conf_quote(value):
    """Quote a string for postgresql.conf / postgresql.auto.conf (like ALTER SYSTEM does)."""
    return "'" + value.replace('\\', '\\\\').replace("'", "''") + "'"


def conf_unquote(raw):
    """Return the value of a postgresql.conf setting from the text after '='."""
    raw = raw.strip()
    if raw.startswith("'"):
        out = []
        i = 1
        n = len(raw)
        while i < n:
            c = raw[i]
            if c == "'":
                if i + 1 < n and raw[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                return ''.join(out)
            if c == '\\' and i + 1 < n:
                nxt = raw[i + 1]
                simple = {'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
                if nxt in simple:
                    out.append(simple[nxt])
                    i += 2
                elif nxt in '01234567':
                    m = re.match(r'[0-7]{1,3}', raw[i + 1:])
                    out.append(chr(int(m.group(0), 8)))
                    i += 1 + len(m.group(0))
                else:
                    out.append(nxt)
                    i += 2
                continue
            out.append(c)
            i += 1
        return ''.join(out)
    return raw.split('#', 1)[0].strip()


def _setting_re(name):
    return re.compile(r'^\s*%s\s*(=\s*|\s+)(.*)$' % re.escape(name), re.IGNORECASE)


def conf_get(text, name):
    """Value of the last occurrence of setting name in a configuration file text, or None."""
    value = None
    pattern = _setting_re(name)
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            value = conf_unquote(m.group(2))
    return value


def conf_set(text, settings):
    """Set (or remove, for value None) settings in a configuration file text.

    The first occurrence of a setting is replaced in place, later duplicates are dropped,
    missing settings are appended. Returns the new text.
    """
    lines = text.splitlines()
    done = set()
    out = []
    for line in lines:
        handled = False
        for name, value in settings:
            if _setting_re(name).match(line):
                handled = True
                if name not in done and value is not None:
                    out.append('%s = %s' % (name, conf_quote(value)))
                done.add(name)
                break
        if not handled:
            out.append(line)
    for name, value in settings:
        if name not in done and value is not None:
            out.append('%s = %s' % (name, conf_quote(value)))
    return '\n'.join(out) + '\n' if out else ''


def pgpass_escape(value):
    """Escape a field of a libpq password file."""
    return ('%s' % value).replace('\\', '\\\\').replace(':', '\\:')


def pgpass_split(line):
    """Split a password file line into its (unescaped) fields."""
    fields = []
    buf = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == '\\' and i + 1 < len(line):
            buf.append(line[i + 1])
            i += 2
            continue
        if c == ':' and len(fields) < 4:
            fields.append(''.join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    fields.append(''.join(buf))
    return fields


def pgpass_line(host, port, database, user, password):
    return ':'.join(pgpass_escape(f) for f in (host, port, database, user, password))


def explain_libpq_error(stderr, host, port, user):
    """Translate libpq / server errors into guidance. Returns a message (never containing the password)."""
    err = (stderr or '').strip()
    low = err.lower()
    where = '%s:%s' % (host, port)
    if 'password authentication failed' in low or 'no password supplied' in low:
        return ('password authentication for replication role "%s" failed on the primary %s: check '
                'postgres_replication_password (the password option) against the password of the role on the '
                'primary (ALTER ROLE %s PASSWORD ...). Server said: %s' % (user, where, user, err))
    if 'no pg_hba.conf entry' in low or 'pg_hba.conf rejects' in low:
        return ('the primary %s has no pg_hba.conf entry that allows a replication connection from this standby '
                'for role "%s": add a line like "host replication %s <standby address>/32 scram-sha-256" to '
                'pg_hba.conf on the primary and reload it. Server said: %s' % (where, user, user, err))
    if 'must have replication permission' in low or 'permission denied to start wal sender' in low or \
            'must be superuser or replication role' in low:
        return ('role "%s" is not allowed to start a replication connection on the primary %s: run '
                '"ALTER ROLE %s REPLICATION" on the primary. Server said: %s' % (user, where, user, err))
    if 'role "%s" does not exist' % user.lower() in low or ('role "' in low and 'does not exist' in low):
        return ('the replication role "%s" does not exist on the primary %s: create it with '
                '"CREATE ROLE %s LOGIN REPLICATION PASSWORD ...". Server said: %s' % (user, where, user, err))
    if 'number of requested standby connections exceeds max_wal_senders' in low or \
            'max_wal_senders' in low:
        return ('the primary %s has no free WAL sender: raise max_wal_senders on the primary (restart needed) '
                'or stop other replication clients. Server said: %s' % (where, err))
    if 'remaining connection slots are reserved' in low or 'too many clients' in low:
        return ('the primary %s refuses new connections (connection limit reached): raise max_connections '
                'or close connections. Server said: %s' % (where, err))
    if 'timeout expired' in low:
        return ('connecting to the primary %s timed out: is the primary up, does it listen on that address '
                '(listen_addresses), and does a firewall let this standby reach port %s? Server said: %s'
                % (where, port, err))
    if 'could not translate host name' in low or 'name or service not known' in low or \
            'temporary failure in name resolution' in low:
        return ('the host name of the primary "%s" cannot be resolved on this standby: check primary_host and DNS '
                '/ /etc/hosts. libpq said: %s' % (host, err))
    if 'ssl' in low or 'certificate' in low:
        return ('the TLS connection to the primary %s failed: check sslmode, sslrootcert and the primary\'s '
                'certificate (ssl = on on the primary). libpq said: %s' % (where, err))
    if 'connection refused' in low or 'could not connect' in low or 'no route to host' in low or \
            'network is unreachable' in low or ('connection to server' in low and 'failed' in low):
        return ('could not connect to the primary %s: is the primary up, is listen_addresses set so that it '
                'listens on that address, is the port right, and does no firewall block it? libpq said: %s'
                % (where, err))
    return 'connecting to the primary %s as "%s" failed: %s' % (where, user, err)


def utc_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')


def read_system_identifier(data_dir):
    """Read the database system identifier from global/pg_control (first 8 bytes, native byte order)."""
    path = os.path.join(data_dir, 'global', 'pg_control')
    with open(path, 'rb') as f:
        head = f.read(8)
    if len(head) < 8:
        raise ValueError('%s is truncated' % path)
    return '%d' % struct.unpack('=Q', head)[0]


def read_pg_version(data_dir):
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
        if e.errno == 1:  # EPERM: exists, owned by someone else
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


def dir_size(path):
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


def service_hint(data_dir, major):
    m = re.match(r'^%s/(\d+)/([^/]+)/?$' % re.escape('/var/lib/postgresql'), data_dir)
    if m:
        return 'systemctl stop postgresql@%s-%s' % (m.group(1), m.group(2))
    return 'pg_ctl stop -D %s (or stop its service)' % data_dir


# ---------------------------------------------------------------------------
# The work
# ---------------------------------------------------------------------------

class BaseBackup(object):

    def __init__(self, module):
        self.module = module
        p = module.params
        self.p = p
        self.host = p['primary_host']
        self.port = p['primary_port']
        self.user = p['user']
        self.password = p['password']
        self.slot = p['slot']
        self.app_name = p['application_name'] or socket.gethostname().split('.')[0]
        self.given_dir = p['data_dir']
        self.data_dir = os.path.realpath(p['data_dir'])
        parent, base = os.path.split(self.data_dir.rstrip('/'))
        self.parent = parent
        self.staging = os.path.join(parent, '.%s.hotstandby-staging' % base)
        self.staged_data = os.path.join(self.staging, 'data')
        self.primary = None
        self.bin_dir = None
        self.moved = False
        self.touched = False  # anything on this host or the primary was changed (for failure results)
        self.result = dict(
            changed=False, case=None, action='none', moved_to=None, cleaned_staging=False, bytes=0,
            seconds=0.0, bytes_per_second=0, system_identifier=None, primary_version=None, slot=self.slot,
            slot_created=False, data_dir=self.data_dir, staging_dir=self.staging, verified=False, verify_note='',
            settings_changed=False, passfile_changed=False, passfile=None, primary_conninfo=None,
            running=False, msg='')
        self.diff = dict(before='', after='')

    # -- helpers -----------------------------------------------------------

    def fail(self, msg):
        raise ModuleFailure(msg)

    def setup_owner(self):
        try:
            pw = pwd.getpwnam(self.p['owner'])
        except KeyError:
            self.fail('the owner "%s" does not exist on this host: install the PostgreSQL server package (it creates '
                      'the postgres user) or set owner to the user that should own %s'
                      % (self.p['owner'], self.data_dir))
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        self.passfile = self.p['passfile'] or os.path.join(self.home, '.pgpass_replication')
        self.result['passfile'] = self.passfile
        euid = os.geteuid()
        if euid == 0 and self.uid != 0:
            self.runuser = [self.module.get_bin_path('runuser', required=True), '-u', self.p['owner'], '--']
        elif euid == self.uid:
            self.runuser = []
        else:
            self.fail('the module runs as uid %d but must run as root (become: true) or as the owner "%s" '
                      'of the data directory' % (euid, self.p['owner']))

    def run(self, args, env=None, check_rc=False):
        environ = dict(C_ENV)
        environ.update(env or {})
        return self.module.run_command(self.runuser + list(args), environ_update=environ, cwd='/',
                                       check_rc=check_rc)

    def chown(self, path):
        if os.geteuid() == 0:
            os.lchown(path, self.uid, self.gid)

    def temp_passfile(self):
        """Create a temporary 0600 passfile owned by owner; the caller removes it."""
        directory = os.path.dirname(self.passfile) or '/'
        if not os.path.isdir(directory):
            self.fail('the directory %s for the passfile does not exist: create it (owned by %s) or set passfile'
                      % (directory, self.p['owner']))
        self.sweep_temp_passfiles(directory)
        fd, path = tempfile.mkstemp(prefix='%s%d-' % (TMP_PASS_PREFIX, os.getpid()), dir=directory)
        try:
            os.fchmod(fd, 0o600)
            if os.geteuid() == 0:
                os.fchown(fd, self.uid, self.gid)
            os.write(fd, to_bytes(pgpass_line('*', '*', '*', self.user, self.password) + '\n'))
        finally:
            os.close(fd)
        return path

    @staticmethod
    def sweep_temp_passfiles(directory):
        """Remove temporary passfiles left behind by runs that were killed (their pid is gone)."""
        try:
            names = os.listdir(directory)
        except OSError:
            return
        for name in names:
            m = re.match(r'^%s(\d+)-' % re.escape(TMP_PASS_PREFIX), name)
            if not m:
                continue
            try:
                os.kill(int(m.group(1)), 0)
                continue
            except OSError as e:
                if e.errno == 1:
                    continue
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass

    def conninfo(self, replication):
        pairs = [('host', self.host), ('port', self.port), ('user', self.user)]
        if replication:
            pairs += [('dbname', 'replication'), ('replication', 'true')]
        pairs += [('application_name', self.app_name), ('sslmode', self.p['sslmode']),
                  ('sslrootcert', self.p['sslrootcert']), ('connect_timeout', self.p['connect_timeout'])]
        return build_conninfo(pairs)

    def desired_primary_conninfo(self):
        return build_conninfo([
            ('host', self.host), ('port', self.port), ('user', self.user), ('passfile', self.passfile),
            ('application_name', self.app_name), ('sslmode', self.p['sslmode']),
            ('sslrootcert', self.p['sslrootcert']), ('connect_timeout', self.p['connect_timeout'])])

    def psql_path(self):
        if self.p['bin_dir']:
            candidates = [os.path.join(self.p['bin_dir'], 'psql')]
        else:
            candidates = [os.path.join(DEBIAN_LIB, v, 'bin', 'psql') for v in self.installed_versions()]
        for c in candidates:
            if os.access(c, os.X_OK):
                return c
        found = self.module.get_bin_path('psql')
        if found:
            return found
        self.fail('no psql found (looked in %s and PATH): install the PostgreSQL client package of the primary\'s '
                  'major version (postgresql-client-<major>) or set bin_dir' % ', '.join(candidates or [DEBIAN_LIB]))

    def installed_versions(self):
        try:
            names = os.listdir(DEBIAN_LIB)
        except OSError:
            return []
        return sorted((n for n in names if n.isdigit()), key=int, reverse=True)

    def replication_sql(self, commands, psql=None, passfile=None):
        """Run replication-protocol commands; return (rc, rows per command flattened, stderr)."""
        args = [psql or self.psql, '-X', '-A', '-t', '-w', '-v', 'ON_ERROR_STOP=1', self.conninfo(True)]
        for c in commands:
            args += ['-c', c]
        rc, out, err = self.run(args, env={'PGPASSFILE': passfile or self.tmp_pass})
        return rc, out, err

    # -- reading state -----------------------------------------------------

    def preflight(self):
        self.psql = self.psql_path()
        cmds = ['IDENTIFY_SYSTEM', 'SHOW wal_level', 'SHOW server_version_num', 'SHOW max_wal_senders',
                'SHOW max_replication_slots']
        rc, out, err = self.replication_sql(cmds)
        if rc != 0:
            self.fail('preflight check failed, nothing was changed: ' +
                      explain_libpq_error(err, self.host, self.port, self.user))
        lines = [ln for ln in out.splitlines() if ln.strip()]
        try:
            ident = lines[0].split('|')
            info = dict(system_identifier=ident[0], timeline=int(ident[1]), wal_level=lines[1].strip(),
                        version_num=int(lines[2]), max_wal_senders=int(lines[3]),
                        max_replication_slots=int(lines[4]))
        except (IndexError, ValueError):
            self.fail('unexpected answer from the primary %s:%s to IDENTIFY_SYSTEM/SHOW: %r'
                      % (self.host, self.port, out))
        info['major'] = info['version_num'] // 10000
        self.primary = info
        self.result['system_identifier'] = info['system_identifier']
        self.result['primary_version'] = info['major']
        where = '%s:%s' % (self.host, self.port)
        if info['major'] < MIN_MAJOR:
            self.fail('the primary %s runs PostgreSQL %s; this module supports PostgreSQL %d and newer'
                      % (where, info['major'], MIN_MAJOR))
        if info['wal_level'] == 'minimal':
            self.fail('the primary %s has wal_level = minimal, which does not allow a standby: set '
                      'wal_level = replica on the primary and restart it' % where)
        if info['max_wal_senders'] < 1:
            self.fail('the primary %s has max_wal_senders = 0: set it to at least 2 (one for the clone, one '
                      'per standby) and restart the primary' % where)
        info['slot_exists'] = None
        if self.slot:
            if info['max_replication_slots'] < 1:
                self.fail('slot "%s" requested, but the primary %s has max_replication_slots = 0: raise it and '
                          'restart the primary' % (self.slot, where))
            if info['major'] >= 15:
                rc, out, err = self.replication_sql(['READ_REPLICATION_SLOT %s' % self.slot])
                if rc != 0:
                    self.fail('checking slot "%s" on the primary %s failed: %s' % (self.slot, where, err.strip()))
                kind = (out.strip().split('|') + [''])[0]
                if kind and kind != 'physical':
                    self.fail('slot "%s" on the primary %s is a %s slot; a physical slot is needed: choose another '
                              'slot name' % (self.slot, where, kind))
                info['slot_exists'] = bool(kind)
        return info

    def find_bin_dir(self):
        major = self.primary['major']
        if self.p['bin_dir']:
            bin_dir = self.p['bin_dir']
        else:
            bin_dir = os.path.join(DEBIAN_LIB, '%d' % major, 'bin')
        pgbb = os.path.join(bin_dir, 'pg_basebackup')
        if not os.access(pgbb, os.X_OK):
            found = [v for v in self.installed_versions()
                     if os.access(os.path.join(DEBIAN_LIB, v, 'bin', 'pg_basebackup'), os.X_OK)]
            self.fail('the primary runs PostgreSQL %d but %s does not exist on this standby (installed here: %s): '
                      'install postgresql-%d on the standby%s'
                      % (major, pgbb, ', '.join('PostgreSQL %s' % v for v in found) or 'none', major,
                         '' if not self.p['bin_dir'] else ' or fix bin_dir'))
        rc, out, err = self.module.run_command([pgbb, '--version'], environ_update=C_ENV)
        m = re.search(r'(\d+)(?:\.\d+)?', out or '')
        if rc != 0 or not m:
            self.fail('could not run "%s --version": %s' % (pgbb, (err or out).strip()))
        if int(m.group(1)) != major:
            self.fail('major version mismatch: the primary runs PostgreSQL %d but %s is PostgreSQL %s; a standby '
                      'needs the same major version: install postgresql-%d on the standby and set bin_dir to its '
                      'bin directory' % (major, pgbb, m.group(1), major))
        self.bin_dir = bin_dir
        return bin_dir

    def standby_settings(self, data_dir):
        """Return dict describing the standby settings of an existing data directory."""
        auto = os.path.join(data_dir, 'postgresql.auto.conf')
        try:
            with open(auto) as f:
                text = f.read()
        except (IOError, OSError):
            text = ''
        return dict(
            signal=os.path.exists(os.path.join(data_dir, 'standby.signal')),
            conninfo=conf_get(text, 'primary_conninfo'),
            slot=conf_get(text, 'primary_slot_name') or None,
            auto_text=text)

    def points_at_primary(self, conninfo):
        try:
            ci = parse_conninfo(conninfo or '')
        except ValueError:
            return False
        host = (ci.get('host') or ci.get('hostaddr') or '').lower()
        port = ci.get('port') or '5432'
        return host == self.host.lower() and port == '%s' % self.port

    def classify(self):
        d = self.data_dir
        if not os.path.lexists(d):
            return 'missing', None
        if not os.path.isdir(d):
            return 'foreign', 'a %s, not a directory' % ('file' if os.path.isfile(d) else 'special file')
        entries = sorted(os.listdir(d))
        if not entries:
            return 'empty', None
        version = read_pg_version(d)
        primary_desc = 'primary %s:%s (system identifier %s)' % (
            self.host, self.port, self.primary['system_identifier'])
        if version is None:
            shown = ', '.join(entries[:5]) + (', ...' if len(entries) > 5 else '')
            return 'foreign', ('a non-empty directory that is not a PostgreSQL data directory (%d entries: %s), not a '
                               'standby of %s' % (len(entries), shown, primary_desc))
        try:
            sysid = read_system_identifier(d)
        except (IOError, OSError, ValueError):
            return 'foreign', ('an incomplete PostgreSQL %s data directory (PG_VERSION but no readable global/'
                               'pg_control), not a standby of %s' % (version, primary_desc))
        settings = self.standby_settings(d)
        what = 'a PostgreSQL %s cluster with system identifier %s' % (version, sysid)
        if sysid == self.primary['system_identifier']:
            if settings['signal'] and self.points_at_primary(settings['conninfo']):
                return 'standby', None
            if settings['signal']:
                ci = {}
                try:
                    ci = parse_conninfo(settings['conninfo'] or '')
                except ValueError:
                    pass
                return 'foreign', ('%s (the primary\'s) in standby mode, but its primary_conninfo points at %s:%s, '
                                   'not at %s:%s; it is not a standby of %s' % (
                                       what, ci.get('host') or ci.get('hostaddr') or '(no host)',
                                       ci.get('port') or '5432', self.host, self.port, primary_desc))
            return 'foreign', ('%s (the primary\'s) that is not in standby mode (no standby.signal: a promoted standby '
                               'or a former primary, whose history may have diverged), not a standby of %s'
                               % (what, primary_desc))
        if settings['signal'] or os.path.exists(os.path.join(d, 'recovery.signal')) or \
                os.path.exists(os.path.join(d, 'backup_label')):
            ci = {}
            try:
                ci = parse_conninfo(settings['conninfo'] or '')
            except ValueError:
                pass
            return 'foreign', ('%s in recovery/standby mode (primary_conninfo host %s), not a standby of %s'
                               % (what, ci.get('host') or '(none)', primary_desc))
        data = user_data_found(d)
        if data is None:
            return 'pristine', None
        return 'foreign', ('%s holding data that a fresh initdb does not have (%s), not a standby of %s'
                           % (what, data, primary_desc))

    # -- staging -----------------------------------------------------------

    def read_marker(self):
        try:
            with open(os.path.join(self.staging, MARKER)) as f:
                return json.load(f)
        except ValueError:
            return {}
        except (IOError, OSError):
            return None

    def check_staging(self):
        """Deal with a leftover staging directory.

        Returns (cleaned, in_place): cleaned is True when a leftover is (or in check mode would be) removed,
        in_place is True when it marked an interrupted clone directly into a mount point.
        """
        if not os.path.lexists(self.staging):
            return False, False
        marker = self.read_marker()
        if marker is None or not os.path.isdir(self.staging) or os.path.islink(self.staging):
            self.fail('%s exists but is not a staging directory of this module (no %s marker file in it): it is '
                      'left alone; move or remove it yourself, then run again' % (self.staging, MARKER))
        pid = marker.get('pid')
        if isinstance(pid, int) and pid != os.getpid():
            try:
                with open('/proc/%d/cmdline' % pid, 'rb') as f:
                    cmd = f.read()
            except (IOError, OSError):
                cmd = b''
            if b'python' in cmd or b'ansible' in cmd.lower():
                self.fail('another run of this module (pid %d, started %s) is cloning into %s right now: wait '
                          'for it to finish' % (pid, marker.get('started_at'), self.staging))
        in_place = marker.get('mode') == 'in_place' and os.path.isdir(self.data_dir) and \
            os.path.ismount(self.data_dir)
        if self.module.check_mode:
            return True, in_place
        stop_basebackup(self.data_dir if in_place else self.staged_data)
        if in_place:
            # an interrupted clone directly into a mount point: its files are this module's own
            pid = postmaster_pid(self.data_dir)
            if pid:
                self.fail('a server (pid %d) is running in %s, which holds an interrupted clone: stop it (%s) and '
                          'run again' % (pid, self.data_dir, service_hint(self.data_dir, None)))
            self.empty_dir(self.data_dir)
        shutil.rmtree(self.staging)
        self.touched = True
        return True, in_place

    @staticmethod
    def empty_dir(path):
        for name in os.listdir(path):
            entry = os.path.join(path, name)
            if os.path.isdir(entry) and not os.path.islink(entry):
                shutil.rmtree(entry)
            else:
                os.unlink(entry)

    def create_staging(self, in_place):
        os.mkdir(self.staging, 0o700)
        self.chown(self.staging)
        marker = dict(pid=os.getpid(), started_at=utc_stamp(), primary='%s:%s' % (self.host, self.port),
                      data_dir=self.data_dir, mode='in_place' if in_place else 'staged')
        path = os.path.join(self.staging, MARKER)
        with open(path, 'w') as f:
            json.dump(marker, f)
            f.flush()
            os.fsync(f.fileno())
        self.fsync_dir(self.parent)

    @staticmethod
    def fsync_dir(path):
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

    # -- writing settings ---------------------------------------------------

    def write_file_atomic(self, path, content, mode=0o600):
        directory = os.path.dirname(path)
        fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
        try:
            os.fchmod(fd, mode)
            if os.geteuid() == 0:
                os.fchown(fd, self.uid, self.gid)
            os.write(fd, to_bytes(content))
            os.fsync(fd)
        except Exception:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)

    def passfile_state(self):
        """Return (new_text, state) for the managed passfile; state is missing/outdated/current."""
        try:
            with open(self.passfile, 'rb') as f:
                old = to_native(f.read(), errors='surrogate_or_strict')
        except (IOError, OSError):
            old = None
        ours = pgpass_line(self.host, self.port, 'replication', self.user, self.password)
        key = [self.host, '%s' % self.port, 'replication', self.user]
        kept = []
        has_key = False
        for line in (old or '').splitlines():
            if not line.startswith('#') and pgpass_split(line)[:4] == key:
                has_key = True
                continue
            kept.append(line)
        new = '\n'.join(kept + [ours]) + '\n'
        if old == new:
            return new, 'current'
        return new, 'outdated' if has_key else 'missing'

    def passfile_needs_mode_fix(self):
        try:
            st = os.stat(self.passfile)
        except OSError:
            return False
        return stat.S_IMODE(st.st_mode) != 0o600 or (os.geteuid() == 0 and st.st_uid != self.uid)

    def settings_text(self, signal, conninfo, slot):
        return 'standby.signal: %s\nprimary_conninfo = %s\nprimary_slot_name = %s\n' % (
            'present' if signal else 'absent',
            conf_quote(conninfo) if conninfo is not None else '(not set)',
            conf_quote(slot) if slot else '(not set)')

    def apply_standby_settings(self, data_dir, current):
        """Write standby.signal and primary_conninfo / primary_slot_name into data_dir."""
        signal = os.path.join(data_dir, 'standby.signal')
        if not os.path.exists(signal):
            fd = os.open(signal, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            self.chown(signal)
        new_text = conf_set(current['auto_text'], [('primary_conninfo', self.desired_primary_conninfo()),
                                                   ('primary_slot_name', self.slot)])
        if new_text != current['auto_text']:
            self.write_file_atomic(os.path.join(data_dir, 'postgresql.auto.conf'), new_text)

    # -- cloning -----------------------------------------------------------

    def drop_slot(self):
        for dummy in range(20):
            rc, out, err = self.replication_sql(['DROP_REPLICATION_SLOT %s' % self.slot])
            if rc == 0 or 'is active' not in err:
                break
            time.sleep(0.5)  # the primary has not yet noticed that the clone's WAL sender connection is gone
        if rc == 0:
            return 'the replication slot "%s" created for the clone was dropped again' % self.slot
        if 'does not exist' in err:
            return 'the replication slot "%s" had not been created' % self.slot
        return ('the replication slot "%s" created for the clone could NOT be dropped (%s): drop it on the primary '
                'with SELECT pg_drop_replication_slot(\'%s\') or it will retain WAL'
                % (self.slot, err.strip(), self.slot))

    def explain_basebackup_error(self, err, rc=1):
        low = err.lower()
        # a negative rc: killed by that signal; above 128: runuser (or a shell) reports a child killed by rc - 128
        # (pg_basebackup itself only exits with 0 or 1)
        signum = -rc if rc < 0 else rc - 128 if 128 < rc < 128 + 65 else None
        if signum:
            try:
                name = signal.Signals(signum).name
            except ValueError:
                name = 'signal %d' % signum
            return ('pg_basebackup was killed by %s (signal %d) before it finished (stopped by hand, by the OOM '
                    'killer or by a shutdown?); the partial copy was discarded, run again to clone anew%s'
                    % (name, signum, ('. It said: %s' % err.strip()) if err.strip() else ''))
        if self.slot and 'already exists' in low and 'slot' in low:
            return ('the replication slot "%s" already exists on the primary: set create_slot: false to use it, or '
                    'drop it on the primary (SELECT pg_drop_replication_slot(\'%s\')) if it is stale. '
                    'pg_basebackup said: %s' % (self.slot, self.slot, err.strip()))
        if self.slot and 'does not exist' in low and 'slot' in low:
            return ('the replication slot "%s" does not exist on the primary: set create_slot: true, or create it '
                    'on the primary with SELECT pg_create_physical_replication_slot(\'%s\'). pg_basebackup said: %s'
                    % (self.slot, self.slot, err.strip()))
        if self.slot and 'is active for pid' in low:
            return ('the replication slot "%s" is in use by another connection (another standby?): choose a slot '
                    'name of its own for this standby. pg_basebackup said: %s' % (self.slot, err.strip()))
        if 'no space left' in low:
            return ('the file system of %s ran out of space during the clone: free space (the clone needs the size '
                    'of the primary plus WAL). pg_basebackup said: %s' % (self.staging, err.strip()))
        if 'fatal' in low or 'could not connect' in low or 'connection to server' in low:
            return explain_libpq_error(err, self.host, self.port, self.user)
        return 'pg_basebackup failed: %s' % err.strip()

    def basebackup_args(self, target, create):
        args = [os.path.join(self.bin_dir, 'pg_basebackup'), '-D', target, '-d', self.conninfo(False),
                '-X', self.p['wal_method'], '-c', self.p['checkpoint'], '--no-password']
        if self.p['max_rate']:
            args += ['-r', self.p['max_rate']]
        if self.slot:
            args += ['-S', self.slot]
            if create:
                args.append('-C')
        return args

    def clone(self, case, in_place):
        """Copy the primary into staging (or in place), verify, configure, move into place."""
        create = bool(self.slot and self.p['create_slot'] and self.primary.get('slot_exists') is not True)
        target = self.data_dir if in_place else self.staged_data
        self.create_staging(in_place)
        if in_place:
            os.chmod(self.data_dir, 0o700)
            self.chown(self.data_dir)
        args = self.basebackup_args(target, create)
        start = time.time()
        rc, out, err = self.run(args, env={'PGPASSFILE': self.tmp_pass})
        seconds = time.time() - start
        if rc != 0:
            stop_basebackup(target)
            note = self.drop_slot() if create else ''
            self.cleanup_failed(in_place)
            self.fail('cloning failed, %s was not changed: %s%s' % (
                self.given_dir, self.explain_basebackup_error(err, rc), ('; ' + note) if note else ''))
        self.result['slot_created'] = create
        self.result['seconds'] = round(seconds, 3)
        self.result['bytes'] = dir_size(target)
        self.result['bytes_per_second'] = int(self.result['bytes'] / seconds) if seconds > 0 else 0
        self.verify(target, create, in_place)
        self.apply_standby_settings(target, self.standby_settings(target))
        self.write_passfile()
        if not in_place:
            if case in ('pristine', 'foreign', 'standby'):
                self.move_aside()
            elif case == 'empty':
                try:
                    os.rmdir(self.data_dir)
                except OSError as e:
                    self.fail('%s was empty before the clone but could not be replaced (%s): something was put '
                              'into it meanwhile. The clone in %s is discarded on the next run; check %s, empty '
                              'it and run again' % (self.data_dir, to_native(e), self.staging, self.data_dir))
            os.rename(self.staged_data, self.data_dir)
        os.chmod(self.data_dir, 0o700)
        self.chown(self.data_dir)
        self.fsync_dir(self.parent)
        shutil.rmtree(self.staging)

    def cleanup_failed(self, in_place):
        if in_place:
            self.empty_dir(self.data_dir)
        shutil.rmtree(self.staging, ignore_errors=True)

    def verify(self, target, created_slot, in_place):
        if not self.p['verify']:
            self.result['verify_note'] = 'verification disabled (verify: false)'
            return
        tool = os.path.join(self.bin_dir, 'pg_verifybackup')
        if not os.access(tool, os.X_OK):
            self.result['verify_note'] = 'skipped: %s not found' % tool
            return
        if not os.path.exists(os.path.join(target, 'backup_manifest')):
            self.result['verify_note'] = 'skipped: pg_basebackup wrote no backup_manifest'
            return
        rc, out, err = self.run([tool, target])
        if rc != 0:
            note = self.drop_slot() if created_slot else ''
            self.cleanup_failed(in_place)
            self.fail('pg_verifybackup found the clone damaged, %s was not changed and the staged copy was removed: '
                      '%s%s' % (self.given_dir, (err or out).strip(), ('; ' + note) if note else ''))
        self.result['verified'] = True
        self.result['verify_note'] = 'backup successfully verified'

    def move_aside(self):
        dest = self.result['moved_to']
        if os.path.lexists(dest):
            i = 1
            while os.path.lexists('%s-%d' % (dest, i)):
                i += 1
            dest = '%s-%d' % (dest, i)
        os.rename(self.data_dir, dest)
        self.result['moved_to'] = dest
        self.moved = self.touched = True

    def write_passfile(self):
        new, state = self.passfile_state()
        if state != 'current' or self.passfile_needs_mode_fix():
            self.write_file_atomic(self.passfile, new)
            self.touched = True
            return True
        return False

    def create_missing_slot(self):
        rc, out, err = self.replication_sql(['CREATE_REPLICATION_SLOT %s PHYSICAL RESERVE_WAL' % self.slot])
        self.touched = self.touched or rc == 0
        if rc != 0:
            self.fail('creating the replication slot "%s" on the primary %s:%s failed: %s'
                      % (self.slot, self.host, self.port, err.strip()))

    # -- main decision -------------------------------------------------------

    def execute(self):
        r = self.result
        check = self.module.check_mode
        self.setup_owner()
        if self.slot and not SLOT_RE.match(self.slot):
            self.fail('invalid slot name "%s": use only lower-case letters, digits and underscores (at most 63)'
                      % self.slot)
        if '\n' in self.password or '\r' in self.password:
            self.fail('the password contains a line break, which a libpq passfile cannot hold: choose a password '
                      'without line breaks')
        if self.p['max_rate'] and not re.match(r'^[0-9]+[kM]?$', self.p['max_rate']):
            self.fail('invalid max_rate "%s": use pg_basebackup -r syntax, a number of kilobytes per second with an '
                      'optional k or M suffix, e.g. 32768k or 100M' % self.p['max_rate'])
        if self.p['create_slot'] and not self.slot:
            self.fail('create_slot: true needs a slot name (slot)')
        if not os.path.isdir(self.parent):
            self.fail('the parent directory %s of data_dir does not exist: install the PostgreSQL server package '
                      'or create it (owned by %s)' % (self.parent, self.p['owner']))
        self.tmp_pass = self.temp_passfile()
        try:
            self.preflight()
            self.decide_and_act(check)
        finally:
            try:
                os.unlink(self.tmp_pass)
            except OSError:
                pass
        r['primary_conninfo'] = self.desired_primary_conninfo()
        return r

    def decide_and_act(self, check):
        r = self.result
        r['cleaned_staging'], leftover_in_place = self.check_staging()
        if leftover_in_place and check:
            case, found = 'empty', None  # the interrupted clone in the mount point would be removed first
        else:
            case, found = self.classify()
        r['case'] = case
        mount = os.path.isdir(self.data_dir) and os.path.ismount(self.data_dir)
        pid = postmaster_pid(self.data_dir) if case in ('standby', 'pristine', 'foreign') else None
        r['running'] = bool(pid)
        desired_ci = self.desired_primary_conninfo()
        dummy, pass_state = self.passfile_state()
        pass_changed = pass_state != 'current' or self.passfile_needs_mode_fix()
        pass_before = '# passfile %s: entry for %s:%s:replication:%s is %s\n' % (
            self.passfile, self.host, self.port, self.user, pass_state)
        pass_after = '# passfile %s: entry for %s:%s:replication:%s is current\n' % (
            self.passfile, self.host, self.port, self.user)

        if case == 'standby' and not self.p['reclone']:
            cur = self.standby_settings(self.data_dir)
            want_slot = self.slot or None
            try:
                same_ci = parse_conninfo(cur['conninfo'] or '') == parse_conninfo(desired_ci)
            except ValueError:
                same_ci = False
            settings_changed = not (cur['signal'] and same_ci and cur['slot'] == want_slot)
            self.diff['before'] = self.settings_text(cur['signal'], cur['conninfo'], cur['slot']) + pass_before
            self.diff['after'] = self.settings_text(True, desired_ci if not same_ci else cur['conninfo'],
                                                    want_slot) + pass_after
            slot_missing = bool(self.slot and self.primary.get('slot_exists') is False)
            if slot_missing and not self.p['create_slot']:
                self.module.warn('the replication slot "%s" does not exist on the primary %s:%s, so this standby '
                                 'cannot stream: create it (SELECT pg_create_physical_replication_slot(\'%s\', true)) '
                                 'or set create_slot: true' % (self.slot, self.host, self.port, self.slot))
            create_slot = slot_missing and self.p['create_slot']
            r['settings_changed'] = settings_changed
            r['passfile_changed'] = pass_changed
            r['slot_created'] = create_slot
            changed = settings_changed or pass_changed or create_slot or r['cleaned_staging']
            r['changed'] = bool(changed)
            r['action'] = 'update_settings' if changed else 'none'
            if not check:
                if create_slot:
                    self.create_missing_slot()
                if settings_changed:
                    self.apply_standby_settings(self.data_dir, cur)
                    self.touched = True
                if pass_changed:
                    self.write_passfile()
            parts = []
            if settings_changed:
                parts.append('standby settings %s rewritten (reload the server)' % ('would be' if check else 'were'))
            if pass_changed:
                parts.append('passfile %s %s written' % (self.passfile, 'would be' if check else 'was'))
            if create_slot:
                parts.append('replication slot "%s" %s created' % (self.slot, 'would be' if check else 'was'))
            if r['cleaned_staging']:
                parts.append('leftover staging directory %s' % ('would be removed' if check else 'removed'))
            r['msg'] = '%s is already a standby of %s:%s; %s' % (
                self.data_dir, self.host, self.port, '; '.join(parts) if parts else 'nothing to do')
            return

        # everything else leads to a clone
        in_place = False
        if mount:
            if case == 'empty':
                in_place = True
            else:
                self.fail('%s is a mount point and holds %s; a mount point cannot be renamed aside, so the module '
                          'cannot replace it: empty it yourself (keep a copy if you need one), or better use a '
                          'sub-directory of the mount as data_dir (e.g. %s/data)'
                          % (self.data_dir, found or 'a %s PostgreSQL cluster' % case, self.data_dir))
        if case == 'foreign' and self.p['existing_data'] == 'fail':
            self.fail('%s holds %s. It is left untouched. To replace it, set existing_data: move_aside (it will be '
                      'renamed to %s.moved-<timestamp>, not deleted), or move it away yourself, then run again.'
                      % (self.data_dir, found, self.data_dir))
        if case in ('pristine', 'foreign', 'standby'):
            r['moved_to'] = '%s.moved-%s' % (self.data_dir, utc_stamp())
            if pid:
                if not check:
                    self.fail('a PostgreSQL server (pid %d) is running in %s, which would have to be moved aside for '
                              'the clone: stop it first (%s), then run again'
                              % (pid, self.data_dir, service_hint(self.data_dir, self.primary['major'])))
        if self.slot and not self.p['create_slot'] and self.primary.get('slot_exists') is False:
            self.fail('the replication slot "%s" does not exist on the primary %s:%s, nothing was copied: set '
                      'create_slot: true, or create it on the primary with '
                      'SELECT pg_create_physical_replication_slot(\'%s\')' % (self.slot, self.host, self.port, self.slot))
        self.find_bin_dir()
        r['action'] = 'clone'
        r['changed'] = True
        r['settings_changed'] = True
        r['passfile_changed'] = pass_changed
        before = 'data directory %s: %s\n' % (self.data_dir, {
            'missing': 'does not exist', 'empty': 'empty',
            'pristine': 'pristine cluster without user data (will be moved to %s)' % r['moved_to'],
            'foreign': (found or '') + ' (will be moved to %s)' % r['moved_to'],
            'standby': 'standby of %s:%s, cloned again (reclone; will be moved to %s)' % (
                self.host, self.port, r['moved_to'])}[case])
        self.diff['before'] = before + pass_before
        self.diff['after'] = ('data directory %s: clone of %s:%s (system identifier %s)\n'
                              % (self.data_dir, self.host, self.port, self.primary['system_identifier'])
                              + self.settings_text(True, desired_ci, self.slot) + pass_after)
        if check:
            r['msg'] = 'would clone %s:%s (PostgreSQL %d) into %s%s%s' % (
                self.host, self.port, self.primary['major'], self.data_dir,
                ' after moving the %s data directory to %s' % (case, r['moved_to']) if r['moved_to'] else '',
                '; a server is running there and must be stopped first' if pid else '')
            return
        self.clone(case, in_place)
        r['msg'] = 'cloned %s:%s (PostgreSQL %d, %d bytes in %.1f s) into %s%s; start the server' % (
            self.host, self.port, self.primary['major'], r['bytes'], r['seconds'], self.data_dir,
            ' (the previous %s data directory was moved to %s)' % (case, r['moved_to']) if r['moved_to'] else '')


def fail(module, worker, msg):
    """fail_json with the result keys gathered so far; changed only when something was really changed."""
    result = dict((k, v) for k, v in worker.result.items() if k != 'msg')
    if not worker.moved and not module.check_mode:
        result['moved_to'] = None
    result['changed'] = worker.touched
    module.fail_json(msg=msg, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_dir=dict(type='path', required=True),
            primary_host=dict(type='str', required=True),
            primary_port=dict(type='int', default=5432),
            user=dict(type='str', required=True),
            password=dict(type='str', required=True, no_log=True),
            slot=dict(type='str'),
            create_slot=dict(type='bool', default=False),
            application_name=dict(type='str'),
            checkpoint=dict(type='str', choices=['fast', 'spread'], default='fast'),
            max_rate=dict(type='str'),
            wal_method=dict(type='str', choices=['stream', 'fetch'], default='stream'),
            verify=dict(type='bool', default=True),
            connect_timeout=dict(type='int', default=10),
            sslmode=dict(type='str', default='prefer',
                         choices=['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']),
            sslrootcert=dict(type='path'),
            bin_dir=dict(type='path'),
            existing_data=dict(type='str', choices=['fail', 'move_aside'], default='fail'),
            reclone=dict(type='bool', default=False),
            owner=dict(type='str', default='postgres'),
            passfile=dict(type='path', no_log=False),
        ),
        supports_check_mode=True,
    )
    worker = BaseBackup(module)
    try:
        result = worker.execute()
    except ModuleFailure as e:
        fail(module, worker, to_native(e))
    except (IOError, OSError) as e:
        where = ('the previous data directory was moved to %s' % worker.result['moved_to'] if worker.moved
                 else '%s was not moved' % worker.data_dir)
        fail(module, worker, 'unexpected error: %s; %s. A staging directory %s, if left, is removed on the next '
                             'run' % (to_native(e), where, worker.staging))
    if module._diff:
        result['diff'] = worker.diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
