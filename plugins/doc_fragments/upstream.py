# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The connection of a standby to its upstream server (the primary, or the standby a cascading standby
    # streams from): used by the module's own checks and copies, and written into primary_conninfo.
    DOCUMENTATION = r'''
options:
  primary_host:
    description:
      - Host name or IP address of the upstream server (the primary, or the standby that a cascading standby
        streams from), as this standby should connect to it.
      - Written into C(primary_conninfo) and into the host field of the O(passfile) entry.
    type: str
    required: true
  primary_port:
    description:
      - TCP port of the upstream server.
    type: int
    default: 5432
  user:
    description:
      - Name of the replication role on the upstream server (it needs the C(REPLICATION) attribute).
    type: str
    required: true
  password:
    description:
      - Password of O(user).
      - Given to the PostgreSQL programs the module runs (C(psql), C(pg_basebackup), C(pg_rewind)) only in their
        environment (C(PGPASSWORD)), in check mode as well, and written into O(passfile) (not in check mode). It is
        never placed on a command line or into a temporary file.
    type: str
    required: true
  connect_timeout:
    description:
      - C(connect_timeout) in seconds, for every connection the module makes to the upstream server and in
        C(primary_conninfo).
    type: int
    default: 10
  sslmode:
    description:
      - libpq C(sslmode) for the module's connections to the upstream server and in C(primary_conninfo).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  sslrootcert:
    description:
      - File with the CA certificate(s) to verify the upstream server's certificate (libpq C(sslrootcert)).
      - Used for the module's connections and written into C(primary_conninfo). Must be readable by O(owner).
    type: path
  passfile:
    description:
      - Passfile used by the standby's ongoing replication connection (C(passfile=...) in C(primary_conninfo)).
      - Defaults to C(.pgpass_replication) in the home directory of O(owner); its directory must exist.
      - The module manages the line C(host:port:replication:user:password) for O(primary_host), O(primary_port)
        and O(user) (with C(\) and C(:) escaped as libpq requires) and keeps any other lines. The file is written
        atomically, owned by O(owner), mode C(0600).
      - A change of this file (for example a password rotation) is reported as changed even when nothing else
        changes.
    type: path
'''
