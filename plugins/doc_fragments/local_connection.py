# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # A psycopg2 connection to the PostgreSQL server on the managed host, with the option names of
    # community.postgresql, so that module_defaults and habits carry over.
    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The role to connect as.
      - "With the defaults the module connects over the local socket with peer authentication, so run it as the
        operating system user of that name (C(become: true), C(become_user: postgres))."
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Not needed for peer authentication over the local socket.
      - It is given to libpq only, never returned or logged.
    type: str
    default: ''
  login_host:
    description:
      - Host name or address of the server. Empty connects over the local socket (see O(login_unix_socket)).
      - Wins over O(login_unix_socket) when both are set.
    type: str
    default: ''
  login_unix_socket:
    description:
      - Directory of the server's local socket, for example C(/var/run/postgresql) (Debian's).
      - Empty uses the directory libpq was built with, which is the same on Debian.
    type: str
    default: ''
  login_port:
    description:
      - Port of the server (also the number in the name of its local socket file).
    type: int
    default: 5432
    aliases: [port]
  login_db:
    description:
      - The database to connect to. Any database does; the module reads only cluster-wide views and functions.
    type: str
    default: postgres
    aliases: [db]
  connect_params:
    description:
      - "Further libpq connection parameters, for example C({connect_timeout: 5, sslmode: require})."
      - They take precedence over the options above.
    type: dict
    default: {}
notes:
  - The module uses C(psycopg2) on the managed host (Debian package C(python3-psycopg2), which the roles of this
    collection install on every node).
requirements:
  - psycopg2
'''
