# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The roles' argument specs and their defaults/main.yml say the same thing."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PUBLIC_ROLES = ('postgres_master', 'postgres_standby')


def load(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return yaml.safe_load(f) or {}


def defaults_of(role):
    """What the role's variables default to: the shared defaults, then its own."""
    values = dict(load('roles', 'postgres', 'defaults', 'main.yml'))
    values.update(load('roles', role, 'defaults', 'main.yml'))
    return values


def specs_of(role):
    return load('roles', role, 'meta', 'argument_specs.yml')['argument_specs']


@pytest.mark.parametrize('role', PUBLIC_ROLES)
@pytest.mark.parametrize('entry_point', ['main', 'validate'])
def test_spec_defaults_equal_defaults_main(role, entry_point):
    defaults = defaults_of(role)
    options = specs_of(role)[entry_point]['options']
    for name, spec in options.items():
        if 'default' in spec:
            assert name in defaults, '%s: %s has a default in the spec but none in defaults/main.yml' % (role, name)
            assert spec['default'] == defaults[name], '%s %s: %s spec %r != defaults %r' % (
                role, entry_point, name, spec['default'], defaults[name])
        else:
            assert name not in defaults, '%s: %s is in defaults/main.yml but its spec has no default' % (role, name)


@pytest.mark.parametrize('role', PUBLIC_ROLES)
@pytest.mark.parametrize('entry_point', ['main', 'validate'])
def test_every_default_is_specified(role, entry_point):
    options = specs_of(role)[entry_point]['options']
    own = load('roles', role, 'defaults', 'main.yml')
    shared = load('roles', 'postgres', 'defaults', 'main.yml')
    missing = sorted((set(shared) | set(own)) - set(options))
    assert not missing, '%s %s: not in the argument spec: %s' % (role, entry_point, ', '.join(missing))


def test_shared_options_are_specified_alike_in_both_roles():
    shared = load('roles', 'postgres', 'defaults', 'main.yml')
    master = specs_of('postgres_master')['main']['options']
    standby = specs_of('postgres_standby')['main']['options']
    for name in shared:
        assert master[name] == standby[name], name
