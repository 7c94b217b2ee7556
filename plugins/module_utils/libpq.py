# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""libpq connection strings, password files and error messages."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from ansible.module_utils.common.text.converters import to_native

# prefix of the temporary passfiles that versions before the module split wrote next to the passfile
TMP_PASS_PREFIX = '.hotstandby-pgpass-'


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
    """Parse a libpq connection string (key=value form or postgres:// URI) into a dict.

    Raises ValueError for a malformed key=value string.
    """
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
    """The parameters of a postgres:// URI (a password in the user part is left out)."""
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


def conninfo_without_password(text):
    """The connection string text (key=value form or URI) rebuilt in key=value form without its password.

    Keeps the order of the other parameters. Raises ValueError for a malformed string.
    """
    return build_conninfo((k, v) for k, v in parse_conninfo(text).items() if k != 'password')


def conninfo_points_at(text, host, port):
    """Whether the connection string text connects to host:port (host compared case-insensitively)."""
    try:
        ci = parse_conninfo(text or '')
    except ValueError:
        return False
    found = (ci.get('host') or ci.get('hostaddr') or '').lower()
    return found == host.lower() and (ci.get('port') or '5432') == '%s' % port


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
    """A password file line for these fields (escaped)."""
    return ':'.join(pgpass_escape(f) for f in (host, port, database, user, password))


def pgpass_update(old, host, port, database, user, password):
    """Return (new_text, state) for a password file whose text is old (None: no file).

    The line for host:port:database:user is replaced by (or appended as) the last line, all other lines are kept.
    state is 'current' (new_text == old), 'outdated' (the line was there with other content) or 'missing'.
    """
    key = [host, '%s' % port, database, user]
    kept = []
    has_key = False
    for line in (old or '').splitlines():
        if not line.startswith('#') and pgpass_split(line)[:4] == key:
            has_key = True
            continue
        kept.append(line)
    new = '\n'.join(kept + [pgpass_line(host, port, database, user, password)]) + '\n'
    if old == new:
        return new, 'current'
    return new, 'outdated' if has_key else 'missing'


def pgpass_state(path, host, port, database, user, password, uid=None):
    """(new_text, state, changed) for the line of host:port:database:user in the password file path.

    state is that of pgpass_update; changed is also true when the file has another mode than 0600 or (uid given)
    another owner than uid.
    """
    try:
        with open(path, 'rb') as f:
            old = to_native(f.read(), errors='surrogate_or_strict')
    except (IOError, OSError):
        old = None
    new, state = pgpass_update(old, host, port, database, user, password)
    try:
        st = os.stat(path)
    except OSError:
        return new, state, state != 'current'
    return new, state, state != 'current' or st.st_mode & 0o777 != 0o600 or (uid is not None and st.st_uid != uid)


def sweep_temp_passfiles(directory):
    """Remove temporary passfiles (TMP_PASS_PREFIX<pid>-*) of older module versions whose run is gone."""
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
            if e.errno == 1:  # EPERM: that run is alive
                continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


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
