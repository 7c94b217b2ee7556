# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.hotstandby.postgresql.plugins.module_utils.controldata import (
    backup_method, cluster_name, parse_controldata, state_problem, wal_end)
from ansible_collections.hotstandby.postgresql.tests.unit.plugins.module_utils.controldata_samples import (
    PG13_SHUT_DOWN, PG15_REWOUND, PG15_SHUT_DOWN, PG17_SHUT_DOWN_IN_RECOVERY, render)


def test_parse_pg13_former_primary():
    cd = parse_controldata(PG13_SHUT_DOWN)
    assert dict((k, v) for k, v in cd.items() if k != 'raw') == dict(
        control_version=1300, system_identifier='6944164352281870378', state='shut down', checkpoint_lsn='0/5000028',
        redo_lsn='0/5000028', checkpoint_timeline=1, prev_timeline=1, full_page_writes=True,
        checkpoint_time='Mon Jan 26 10:14:59 2026', min_recovery_lsn='0/0', min_recovery_timeline=0,
        wal_level='replica', wal_log_hints=False, wal_segment_size=16777216, data_checksum_version=0)
    assert cd['raw']["Latest checkpoint's oldestCommitTsXid"] == '0'  # no space after the colon
    assert cd['raw']['pg_control last modified'] == 'Mon Jan 26 10:14:59 2026'  # colons in the value
    assert wal_end(cd) == (1, '0/5000028', True)


def test_parse_pg17_standby_shut_down_in_recovery():
    cd = parse_controldata(PG17_SHUT_DOWN_IN_RECOVERY)
    assert (cd['control_version'], cd['state'], cd['checkpoint_lsn'], cd['redo_lsn']) == (
        1700, 'shut down in recovery', '0/3000108', '0/30000D0')
    assert (cd['min_recovery_lsn'], cd['min_recovery_timeline'], cd['checkpoint_timeline']) == ('0/43108F8', 2, 2)
    assert (cd['wal_log_hints'], cd['data_checksum_version']) == (False, 1)
    assert wal_end(cd) == (2, '0/43108F8', False)  # it replayed up to its minimum recovery point


def test_parse_pg15_rewound_and_padded_lsns():
    cd = parse_controldata(PG15_REWOUND)
    assert cd['state'] == 'in archive recovery' and wal_end(cd) == (2, '0/40001B8', False)
    padded = parse_controldata(render(checkpoint_lsn='0/040000A0', min_recovery_lsn='00000000/00000000'))
    assert (padded['checkpoint_lsn'], padded['min_recovery_lsn']) == ('0/40000A0', '0/0')


def test_wal_end_checkpoint_after_the_minimum_recovery_point_counts_as_a_record_start():
    cd = parse_controldata(render(PG17_SHUT_DOWN_IN_RECOVERY, min_recovery_lsn='0/3000000', min_recovery_tli='2'))
    assert wal_end(cd) == (2, '0/3000108', True)


@pytest.mark.parametrize('text, expect', [
    (PG15_SHUT_DOWN.replace('Database cluster state', 'Zustand des Datenbank-Clusters'), 'Database cluster state'),
    ('', 'C locale'),
    (render(checkpoint_lsn='0/XYZ'), "Latest checkpoint location: '0/XYZ'"),
    (render(wal_log_hints='maybe'), 'wal_log_hints setting'),
])
def test_parse_refuses_what_it_does_not_understand(text, expect):
    with pytest.raises(ValueError, match=expect):
        parse_controldata(text)


def test_backup_method(tmp_path):
    d = str(tmp_path)
    assert backup_method(d) is None
    (tmp_path / 'backup_label').write_text('START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\n'
                                           'CHECKPOINT LOCATION: 0/4000028\nBACKUP METHOD: pg_rewind\n'
                                           'BACKUP FROM: standby\n')
    assert backup_method(d) == 'pg_rewind'
    (tmp_path / 'backup_label').write_text('START WAL LOCATION: 0/2000028\n')
    assert backup_method(d) == ''


def test_cluster_name():
    assert cluster_name('/var/lib/postgresql/15/main') == ('15', 'main')
    assert cluster_name('/srv/pg', '/etc/postgresql/13/other/postgresql.conf') == ('13', 'other')
    assert cluster_name('/srv/pg') is None


def test_state_problem_accepts_clean_and_rewound_states():
    d = '/var/lib/postgresql/15/main'
    assert state_problem(parse_controldata(PG15_SHUT_DOWN), d) is None
    assert state_problem(parse_controldata(PG17_SHUT_DOWN_IN_RECOVERY), d) is None
    assert state_problem(parse_controldata(PG15_REWOUND), d, label_method='pg_rewind') is None


def test_state_problem_running_server():
    msg = state_problem(parse_controldata(render(state='in production')), '/var/lib/postgresql/15/main', 4242)
    assert 'pid 4242' in msg and 'stop it first (systemctl stop postgresql@15-main)' in msg


@pytest.mark.parametrize('state', ['in production', 'in archive recovery', 'in crash recovery', 'shutting down'])
def test_state_problem_unclean_shutdown(state):
    msg = state_problem(parse_controldata(render(state=state)), '/var/lib/postgresql/15/main')
    assert 'not shut down cleanly (Database cluster state "%s"' % state in msg
    assert 'pg_ctlcluster 15 main start; pg_ctlcluster 15 main stop -m fast' in msg and 'then run again' in msg
    other = state_problem(parse_controldata(render(state=state)), '/srv/pg')
    assert 'pg_ctl start -D /srv/pg; pg_ctl stop -D /srv/pg -m fast' in other


def test_state_problem_unstarted_base_backup():
    msg = state_problem(parse_controldata(render(state='in production')), '/srv/pg', label_method='streamed')
    assert 'base backup that was never started' in msg
