#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is the documentation of an action plugin (plugins/action/pg_basebackup_wait.py): there is no module code.

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: pg_basebackup_wait
short_description: Wait for a clone by M(hotstandby.postgresql.pg_basebackup) that runs in the background, showing its progress
version_added: 0.1.0
description:
  - >-
    Waits for an asynchronous job (C(async) with C(poll: 0)) of M(hotstandby.postgresql.pg_basebackup) to finish, as
    an M(ansible.builtin.async_status) C(until) loop would, and prints the progress of the clone to the play's output
    meanwhile, one line every O(report_every) seconds, such as "db2: cloning from db1: 1234/5678 MB (21%), 40 s,
    28 MB/s" - the MB copied, the upstream's estimate of the total, the time waited and the copy rate since the
    previous line.
  - The figures come from the last line of O(progress_file), which the module's C(pg_basebackup --progress) writes.
    Before there is one (the job has not created its staging directory yet) the line says
    C(waiting for pg_basebackup to start); while the upstream makes its checkpoint, it says so.
  - Checks the job with M(ansible.builtin.async_status) every O(poll) seconds. When it has finished, the result of
    the task is the job's result, that of M(hotstandby.postgresql.pg_basebackup) with all its keys (a failed
    clone fails this task with the module's message). The job's status file on the host is left, as after an
    M(ansible.builtin.async_status) loop (removing it would cost one more module run). A job that Ansible ended at its C(async) time limit
    fails with a message that names the setting to raise.
  - Fails after O(timeout) seconds if the job has not finished; the clone then goes on in the background.
  - Reads the progress file with C(tail) as the C(become) user (the file is readable by the user the module ran
    as). The replication password is never among its arguments, and the progress lines hold only figures.
author:
  - Hotstandby PostgreSQL maintainers (@hotstandby)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: none
    details:
      - In check mode the task is skipped (a clone in check mode does not run in the background, there is no job).
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  jid:
    description:
      - >-
        The job id of the asynchronous run of M(hotstandby.postgresql.pg_basebackup), C(ansible_job_id) in the
        result that the task with C(async) and C(poll: 0) registered.
    type: str
    required: true
  progress_file:
    description:
      - Absolute path on the host of the progress file of the clone, C(progress.log) in the module's staging
        directory next to its C(data_dir) - C(<parent>/.<basename>.hotstandby-staging/progress.log), for example
        C(/var/lib/postgresql/15/.main.hotstandby-staging/progress.log) for C(/var/lib/postgresql/15/main).
        If C(data_dir) is a symbolic link, the parent and name are those of the directory it points to.
      - A missing or empty file is not an error; the file goes away with the staging directory when the clone
        is in place.
    type: str
    required: true
  upstream:
    description:
      - The upstream server the standby is cloned from, as the progress lines name it (C(cloning from <upstream>)).
      - If omitted, the lines say only C(cloning).
    type: str
  timeout:
    description:
      - Seconds to wait at most; use the C(async) value of the clone task. The hotstandby.postgresql roles pass
        C(postgres_standby_clone_timeout).
    type: int
    default: 86400
  poll:
    description:
      - Seconds between two checks of the job; the task ends at most that long after the clone.
    type: int
    default: 1
  report_every:
    description:
      - Seconds between two progress lines. V(0) prints none.
    type: int
    default: 10
notes:
  - Each check runs M(ansible.builtin.async_status) on the host, as an C(until) loop of it would.
  - The progress lines are printed by the controller as the checks go on; with C(no_log) they are not printed.
seealso:
  - module: hotstandby.postgresql.pg_basebackup
  - module: ansible.builtin.async_status
  - name: Asynchronous actions and polling
    description: Running tasks in the background with C(async) and C(poll).
    link: https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_async.html
'''

EXAMPLES = r'''
- name: Clone the primary in the background
  hotstandby.postgresql.pg_basebackup:
    data_dir: /var/lib/postgresql/15/main
    primary_host: 10.0.0.11
    user: replicator
    password: "{{ postgres_replication_password }}"
    slot: standby1
  async: 86400
  poll: 0
  register: clone_job

- name: Wait for the clone, printing its progress every 30 seconds
  hotstandby.postgresql.pg_basebackup_wait:
    jid: "{{ clone_job.ansible_job_id }}"
    progress_file: /var/lib/postgresql/15/.main.hotstandby-staging/progress.log
    upstream: 10.0.0.11
    timeout: 86400
    report_every: 30
  register: clone

- name: Show what the clone did
  ansible.builtin.debug:
    msg: "{{ clone.msg }}"
'''

RETURN = r'''
finished:
  description: Whether the job has finished (always true when the task succeeds).
  returned: always
  type: bool
  sample: true
ansible_job_id:
  description: The job id (O(jid)).
  returned: always
  type: str
  sample: "j861455297574.25911"
msg:
  description:
    - The message of M(hotstandby.postgresql.pg_basebackup), or why the wait failed.
    - The result holds every other return value of M(hotstandby.postgresql.pg_basebackup) as well (C(case),
      C(action), C(bytes), C(verify_note) and the others), as the job returned them.
  returned: always
  type: str
  sample: cloned 10.0.0.11:5432 (PostgreSQL 15, 31684091 bytes in 2.4 s) into /var/lib/postgresql/15/main; start the server
'''
