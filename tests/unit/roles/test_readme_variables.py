# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's "Variables you are likely to set" table, the argument specs and defaults/main.yml agree."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
ROLES = ('postgres_master', 'postgres_standby')
HOST_VARS = ('postgres_standby_upstream', 'postgres_standby_slot_name', 'postgres_standby_address')


def load(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return yaml.safe_load(f) or {}


def readme_rows():
    """(names, defaults) of every row of the README's variable table."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    section = text.split('## Variables you are likely to set', 1)[1].split('\n## ', 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) < 3 or not cells[0].startswith('`'):
            continue
        names = re.findall(r'`([a-z_]+)`', cells[0])
        defaults = [d.strip() for d in cells[1].split(' / ')]
        rows.append((names, defaults))
    return rows


def parsed(raw):
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def all_defaults():
    values = dict(load('roles', 'postgres', 'defaults', 'main.yml'))
    for role in ROLES:
        values.update(load('roles', role, 'defaults', 'main.yml'))
    return values


def all_options():
    options = {}
    for role in ROLES:
        options.update(load('roles', role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options'])
    return options


def test_table_has_rows():
    assert len(readme_rows()) >= 15


def test_every_documented_variable_is_specified_with_its_default():
    defaults, options = all_defaults(), all_options()
    for names, shown in readme_rows():
        for i, name in enumerate(names):
            if name in HOST_VARS:
                assert name in options, name
                continue
            assert name in options, 'README documents %s, which no argument spec has' % name
            value = shown[i] if len(shown) == len(names) else shown[0]
            if value.startswith('`') and value.endswith('`'):
                raw = value.strip('`')
                assert name in defaults, '%s: README says default %s; defaults/main.yml has none' % (name, value)
                assert str(defaults[name]) == raw or defaults[name] == parsed(raw), (name, value, defaults[name])
                assert options[name].get('default') == defaults[name], name
            else:
                # a described default: required, or computed when left empty
                assert defaults.get(name, '') in ('', None), (name, value, defaults.get(name))


def test_every_public_default_is_in_the_table():
    documented = set(n for row in readme_rows() for n in row[0])
    for name in all_defaults():
        assert name in documented, '%s has a default but no row in the README table' % name
