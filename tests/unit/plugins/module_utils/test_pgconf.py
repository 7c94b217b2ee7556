# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import (
    conf_get, conf_quote, conf_set, conf_unquote, read_standby_settings, standby_settings_text,
    write_standby_settings)
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.clusters import write_cluster


@pytest.mark.parametrize('value', ['simple', "it's", 'back\\slash', "both \\' mixed", 'tab\there'])
def test_conf_quote_roundtrip(value):
    assert conf_unquote(conf_quote(value)) == value


def test_conf_quote_doubles_quotes_and_backslashes():
    assert conf_quote("a'b\\c") == "'a''b\\\\c'"


def test_conf_unquote_forms():
    assert conf_unquote("'a\\nb\\101'") == 'a\nbA'
    assert conf_unquote('  4MB   # comment') == '4MB'


def test_conf_get_last_wins_and_set_replaces():
    text = ("# comment\nprimary_conninfo = 'host=a'\nwork_mem = '4MB'\nPRIMARY_CONNINFO='host=b'\n"
            "primary_slot_name = 'old'\n")
    assert conf_get(text, 'primary_conninfo') == 'host=b'
    new = conf_set(text, [('primary_conninfo', "host=c user='x y'"), ('primary_slot_name', None)])
    assert new.count('primary_conninfo') == 1
    assert 'primary_slot_name' not in new
    assert "work_mem = '4MB'" in new
    assert conf_get(new, 'primary_conninfo') == "host=c user='x y'"
    appended = conf_set('', [('primary_slot_name', 's1')])
    assert appended == "primary_slot_name = 's1'\n"


def test_standby_settings_read_and_write(tmp_path):
    d = str(tmp_path / 'c')
    write_cluster(d)
    cur = read_standby_settings(d)
    assert (cur['signal'], cur['conninfo'], cur['slot']) == (False, None, None)
    write_standby_settings(d, cur, "host=db1 application_name='a b'", 's1')
    cur = read_standby_settings(d)
    assert (cur['signal'], cur['conninfo'], cur['slot']) == (True, "host=db1 application_name='a b'", 's1')
    assert oct(os.stat(os.path.join(d, 'postgresql.auto.conf')).st_mode & 0o777) == '0o600'
    write_standby_settings(d, cur, 'host=db1', None)
    assert read_standby_settings(d)['slot'] is None
    assert read_standby_settings(str(tmp_path / 'none'))['auto_text'] == ''


def test_standby_settings_text():
    assert standby_settings_text(True, "host='a b'", None) == (
        "standby.signal: present\nprimary_conninfo = 'host=''a b'''\nprimary_slot_name = (not set)\n")
    assert 'primary_conninfo = (not set)' in standby_settings_text(False, None, 's')


def test_read_setting_follows_include_dir_and_auto_conf(tmp_path):
    from ansible_collections.hotstandby.postgresql.plugins.module_utils.pgconf import config_files, read_setting
    etc = tmp_path / 'etc'
    (etc / 'conf.d').mkdir(parents=True)
    data = tmp_path / 'data'
    data.mkdir()
    conf = etc / 'postgresql.conf'
    conf.write_text("#restore_command = ''\nrestore_command = 'cp /a/%f %p'\ninclude_dir = 'conf.d'\n")
    assert read_setting('restore_command', str(conf), str(data)) == 'cp /a/%f %p'
    (etc / 'conf.d' / '20-b.conf').write_text("restore_command = 'cp /b/%f %p'\n")
    (etc / 'conf.d' / '10-a.conf').write_text("restore_command = 'cp /c/%f %p'\n")
    (etc / 'conf.d' / '.hidden.conf').write_text("restore_command = 'hidden'\n")
    (etc / 'conf.d' / 'notes.txt').write_text("restore_command = 'txt'\n")
    assert config_files(str(conf), str(data)) == [str(conf), str(etc / 'conf.d' / '10-a.conf'),
                                                  str(etc / 'conf.d' / '20-b.conf'),
                                                  str(data / 'postgresql.auto.conf')]
    assert read_setting('restore_command', str(conf), str(data)) == 'cp /b/%f %p'
    (data / 'postgresql.auto.conf').write_text("restore_command = ''\n")
    assert read_setting('restore_command', str(conf), str(data)) is None  # empty: not set
    assert read_setting('restore_command', None, str(data)) is None  # data/postgresql.conf does not exist
    (data / 'postgresql.conf').write_text("restore_command = 'in data'\n")
    (data / 'postgresql.auto.conf').write_text('')
    assert read_setting('restore_command', None, str(data)) == 'in data'
