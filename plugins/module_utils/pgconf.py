# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading and writing postgresql.conf / postgresql.auto.conf, and the standby settings of a data directory."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

from ansible_collections.hotstandby.postgresql.plugins.module_utils.common import chown, write_file_atomic


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


def read_standby_settings(data_dir):
    """The standby settings of a data directory.

    A dict: signal (standby.signal present), conninfo (primary_conninfo or None), slot (primary_slot_name or
    None) and auto_text (the text of postgresql.auto.conf, empty when it cannot be read).
    """
    try:
        with open(os.path.join(data_dir, 'postgresql.auto.conf')) as f:
            text = f.read()
    except (IOError, OSError):
        text = ''
    return dict(
        signal=os.path.exists(os.path.join(data_dir, 'standby.signal')),
        conninfo=conf_get(text, 'primary_conninfo'),
        slot=conf_get(text, 'primary_slot_name') or None,
        auto_text=text)


def standby_settings_text(signal, conninfo, slot):
    """The standby settings as the lines of a diff."""
    return 'standby.signal: %s\nprimary_conninfo = %s\nprimary_slot_name = %s\n' % (
        'present' if signal else 'absent',
        conf_quote(conninfo) if conninfo is not None else '(not set)',
        conf_quote(slot) if slot else '(not set)')


def write_standby_settings(data_dir, current, conninfo, slot, owner=None):
    """Create standby.signal and set primary_conninfo / primary_slot_name (None: removed) in data_dir.

    current is what read_standby_settings(data_dir) returned; postgresql.auto.conf is only rewritten if it changes.
    """
    signal = os.path.join(data_dir, 'standby.signal')
    if not os.path.exists(signal):
        os.close(os.open(signal, os.O_WRONLY | os.O_CREAT, 0o600))
        chown(signal, owner)
    new_text = conf_set(current['auto_text'], [('primary_conninfo', conninfo), ('primary_slot_name', slot)])
    if new_text != current['auto_text']:
        write_file_atomic(os.path.join(data_dir, 'postgresql.auto.conf'), new_text, owner)


def config_files(config_file, data_dir):
    """The files a server reads its settings from, in order: config_file (None: data_dir/postgresql.conf), the
    *.conf files of each directory its include_dir lines name (relative to its directory, in name order, as the
    server reads them), then data_dir/postgresql.auto.conf. Nested includes are not followed."""
    main = config_file or os.path.join(data_dir, 'postgresql.conf')
    files = [main]
    try:
        with open(main) as f:
            text = f.read()
    except (IOError, OSError):
        text = ''
    pattern = _setting_re('include_dir')
    for line in text.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        directory = os.path.join(os.path.dirname(main), conf_unquote(m.group(2)))
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith('.conf') and not n.startswith('.'))
        except OSError:
            continue
        files += [os.path.join(directory, n) for n in names]
    return files + [os.path.join(data_dir, 'postgresql.auto.conf')]


def read_setting(name, config_file, data_dir):
    """The value of setting name in effect for the files config_files() lists (the last one wins), or None.

    An empty value (name = '') counts as not set.
    """
    value = None
    for path in config_files(config_file, data_dir):
        try:
            with open(path) as f:
                found = conf_get(f.read(), name)
        except (IOError, OSError):
            continue
        if found is not None:
            value = found
    return value or None
