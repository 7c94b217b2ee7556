# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""pg_controldata output (LC_ALL=C), shared by the unit tests of module_utils.controldata and of pg_rejoin.

The field list and layout are those of PostgreSQL 13 to 17 (18 adds "Default char data signedness"); the values of
PG15_SHUT_DOWN and PG15_REWOUND were printed by a real 15.18 on a former primary after a switchover and after
pg_rewind.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

# PostgreSQL 13: a former primary after a clean fast shutdown, no checksums, wal_log_hints off
PG13_SHUT_DOWN = """\
pg_control version number:            1300
Catalog version number:               202007201
Database system identifier:           6944164352281870378
Database cluster state:               shut down
pg_control last modified:             Mon Jan 26 10:14:59 2026
Latest checkpoint location:           0/5000028
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's REDO WAL file:    000000010000000000000005
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's full_page_writes: on
Latest checkpoint's NextXID:          0:491
Latest checkpoint's NextOID:          24576
Latest checkpoint's NextMultiXactId:  1
Latest checkpoint's NextMultiOffset:  0
Latest checkpoint's oldestXID:        478
Latest checkpoint's oldestXID's DB:   1
Latest checkpoint's oldestActiveXID:  0
Latest checkpoint's oldestMultiXid:   1
Latest checkpoint's oldestMulti's DB: 1
Latest checkpoint's oldestCommitTsXid:0
Latest checkpoint's newestCommitTsXid:0
Time of latest checkpoint:            Mon Jan 26 10:14:59 2026
Fake LSN counter for unlogged rels:   0/3E8
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
Backup start location:                0/0
Backup end location:                  0/0
End-of-backup record required:        no
wal_level setting:                    replica
wal_log_hints setting:                off
max_connections setting:              100
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
track_commit_timestamp setting:       off
Maximum data alignment:               8
Database block size:                  8192
Blocks per segment of large relation: 131072
WAL block size:                       8192
Bytes per WAL segment:                16777216
Maximum length of identifiers:        64
Maximum columns in an index:          32
Maximum size of a TOAST chunk:        1996
Size of a large-object chunk:         2048
Date/time type storage:               64-bit integers
Float8 argument passing:              by value
Data page checksum version:           0
Mock authentication nonce:            1b0c6e9c1f3f7c4b9f1f3a0e25d4e2b7a1c9e8d7f6a5b4c3d2e1f0a9b8c7d6e5
"""

# PostgreSQL 17: a standby left on timeline 2 after a fast shutdown (restartpoint skipped: its minimum recovery
# point is past the checkpoint), data checksums on
PG17_SHUT_DOWN_IN_RECOVERY = """\
pg_control version number:            1700
Catalog version number:               202406281
Database system identifier:           7460019342216473896
Database cluster state:               shut down in recovery
pg_control last modified:             Mon Jan 26 10:20:41 2026
Latest checkpoint location:           0/3000108
Latest checkpoint's REDO location:    0/30000D0
Latest checkpoint's REDO WAL file:    000000020000000000000003
Latest checkpoint's TimeLineID:       2
Latest checkpoint's PrevTimeLineID:   2
Latest checkpoint's full_page_writes: on
Latest checkpoint's NextXID:          0:752
Latest checkpoint's NextOID:          24576
Latest checkpoint's NextMultiXactId:  1
Latest checkpoint's NextMultiOffset:  0
Latest checkpoint's oldestXID:        730
Latest checkpoint's oldestXID's DB:   1
Latest checkpoint's oldestActiveXID:  752
Latest checkpoint's oldestMultiXid:   1
Latest checkpoint's oldestMulti's DB: 1
Latest checkpoint's oldestCommitTsXid:0
Latest checkpoint's newestCommitTsXid:0
Time of latest checkpoint:            Mon Jan 26 10:19:02 2026
Fake LSN counter for unlogged rels:   0/3E8
Minimum recovery ending location:     0/43108F8
Min recovery ending loc's timeline:   2
Backup start location:                0/0
Backup end location:                  0/0
End-of-backup record required:        no
wal_level setting:                    replica
wal_log_hints setting:                off
max_connections setting:              100
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
track_commit_timestamp setting:       off
Maximum data alignment:               8
Database block size:                  8192
Blocks per segment of large relation: 131072
WAL block size:                       8192
Bytes per WAL segment:                16777216
Maximum length of identifiers:        64
Maximum columns in an index:          32
Maximum size of a TOAST chunk:        1996
Size of a large-object chunk:         2048
Date/time type storage:               64-bit integers
Float8 argument passing:              by value
Data page checksum version:           1
Mock authentication nonce:            5a4f0e0b4d9b8c7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e
"""

# PostgreSQL 15.18, a former primary after a switchover (the new primary's timeline 2 starts at 0/40000A0, the end
# of this shutdown checkpoint record)
PG15_SHUT_DOWN = PG13_SHUT_DOWN.replace('6944164352281870378', '7714269775029075042').replace(
    '202007201', '202209061').replace('0/5000028', '0/4000028').replace(
    '000000010000000000000005', '000000010000000000000004').replace('wal_log_hints setting:                off',
                                                                    'wal_log_hints setting:                on')

# PostgreSQL 15.18, the same directory just after pg_rewind (not started since; backup_label BACKUP METHOD:
# pg_rewind)
PG15_REWOUND = PG15_SHUT_DOWN.replace('Database cluster state:               shut down',
                                      'Database cluster state:               in archive recovery').replace(
    'Latest checkpoint location:           0/4000028', 'Latest checkpoint location:           0/4000108').replace(
    "Latest checkpoint's REDO location:    0/4000028", "Latest checkpoint's REDO location:    0/40000D0").replace(
    "Latest checkpoint's TimeLineID:       1", "Latest checkpoint's TimeLineID:       2").replace(
    "Latest checkpoint's PrevTimeLineID:   1", "Latest checkpoint's PrevTimeLineID:   2").replace(
    'Minimum recovery ending location:     0/0', 'Minimum recovery ending location:     0/40001B8').replace(
    "Min recovery ending loc's timeline:   0", "Min recovery ending loc's timeline:   2")

LABELS = {
    'Database system identifier': 'system_identifier', 'Database cluster state': 'state',
    'Latest checkpoint location': 'checkpoint_lsn', "Latest checkpoint's TimeLineID": 'timeline',
    'Minimum recovery ending location': 'min_recovery_lsn', "Min recovery ending loc's timeline": 'min_recovery_tli',
    'wal_log_hints setting': 'wal_log_hints', 'Data page checksum version': 'checksums',
}


def render(base=PG15_SHUT_DOWN, **values):
    """base with the values of some fields replaced (keys: the values of LABELS)."""
    lines = []
    for line in base.splitlines():
        name = line.split(':', 1)[0]
        key = LABELS.get(name)
        if key in values:
            line = '%s:%s%s' % (name, ' ' * (37 - len(name)), values[key])
        lines.append(line)
    return '\n'.join(lines) + '\n'
