#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hotstandby.postgresql contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: managed_files
short_description: Write whole files the collection owns, several in one step, each only when it differs
version_added: 0.1.0
description:
  - Makes each file of O(files) hold exactly O(files[].content), with O(files[].owner), O(files[].group) and
    O(files[].mode). A file that already matches in all four is not touched; one that differs only in its owner,
    group or mode gets those set; any other is written anew.
  - "A file is written whole, never edited: to a temporary file in its own directory, with its owner, group and
    mode set before it is moved over the old one (an atomic rename: a reader sees the old file or the new one,
    and a secret is never readable by others, not even for a moment)."
  - A missing parent directory is made, owned by root with mode C(0755).
  - Each file of O(absent) is removed when it is there, in the same module run (a drop-in that a setting no
    longer needs goes with the write of the one that stays).
  - All the files are one module run. The roles of this collection write a node's settings drop-in and the
    fencing guard's files with it; M(ansible.builtin.template) and M(ansible.builtin.copy) take five remote steps
    for each file. Render a template on the controller with the C(ansible.builtin.template) lookup and pass the
    text as O(files[].content).
author:
  - Hotstandby PostgreSQL maintainers (@hotstandby)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is written, not even a temporary file; the result says what would change.
  diff_mode:
    support: full
    details:
      - The diff holds the old and new text of every file whose text changes, with its owner, group and mode in
        the headers, and the old and new owner, group and mode of a file whose text stays. Use C(no_log) on a task
        whose files hold a secret (a passfile).
  platform:
    platforms: posix
options:
  files:
    description:
      - The files to write.
      - At least one of O(files) and O(absent) must hold a file.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - Absolute path of the file.
        type: path
        required: true
      content:
        description:
          - The whole text of the file (UTF-8).
        type: str
        required: true
      owner:
        description:
          - Name of the user who owns the file. The user must exist.
        type: str
        default: root
      group:
        description:
          - Name of the group of the file. The group must exist.
        type: str
        default: root
      mode:
        description:
          - Permissions in octal, quoted, such as C("0644").
        type: str
        required: true
  absent:
    description:
      - Absolute paths of files to remove. A missing one is fine; a symbolic link is removed, never followed; a
        directory or another kind of file is refused. A path may not be in both O(files) and O(absent).
    type: list
    elements: path
    default: []
notes:
  - Files only (a path that is a directory or another kind of file is refused); symbolic links are not followed
    but replaced.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
'''

EXAMPLES = r'''
- name: Write the guard's program, its configuration and its systemd drop-in
  hotstandby.postgresql.managed_files:
    files:
      - path: /usr/local/lib/hotstandby/fence_check.py
        content: "{{ lookup('ansible.builtin.file', 'fence_check.py', rstrip=false) }}"
        mode: "0644"
      - path: /etc/postgresql/15/main/hotstandby-fence.json
        # "| string": ansible-core before 2.19 would turn a text that starts with { into a dict
        content: "{{ lookup('ansible.builtin.template', 'fence.json.j2') | string }}"
        group: postgres
        mode: "0640"
      - path: /etc/systemd/system/postgresql@15-main.service.d/hotstandby-fence.conf
        content: "{{ lookup('ansible.builtin.template', 'fence.conf.j2') }}"
        mode: "0644"
  notify: Reload the systemd units

- name: Write the primary's settings drop-in, and remove the synchronous one that async mode does not use
  hotstandby.postgresql.managed_files:
    files:
      - path: /etc/postgresql/15/main/conf.d/50-hotstandby.conf
        content: "{{ lookup('ansible.builtin.template', 'hotstandby.conf.j2') }}"
        owner: postgres
        group: postgres
        mode: "0644"
    absent:
      - /etc/postgresql/15/main/conf.d/60-hotstandby-synchronous.conf
'''

RETURN = r'''
files:
  description: Every file of O(files), in order, with what was (in check mode, would be) changed.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
      sample: /etc/postgresql/15/main/conf.d/50-hotstandby.conf
    changed:
      description: Whether the file was (would be) written or its owner, group or mode set.
      type: bool
      sample: true
    differences:
      description: What differed, of C(missing), C(content), C(owner), C(group), C(mode).
      type: list
      elements: str
      sample: [content]
removed:
  description: The paths of O(absent) that were there and were (in check mode, would be) removed.
  returned: always
  type: list
  elements: str
  sample: [/etc/postgresql/15/main/conf.d/60-hotstandby-synchronous.conf]
'''

import errno
import grp
import os
import pwd
import re
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

MODE = re.compile(r'^0[0-7]{3}$')


class ManagedFiles(object):
    """Decides in plan() (reads only) and writes in apply(plan)."""

    def __init__(self, module):
        self.module = module

    def wanted(self, spec):
        path = spec['path']
        if not os.path.isabs(path):
            self.module.fail_json(msg='managed_files: path %r is not absolute: give the full path of the file.' % path)
        if not MODE.match(spec['mode']):
            self.module.fail_json(msg='managed_files: mode %r of %s is not an octal mode such as "0644": quote it '
                                      'in YAML, with its leading zero.' % (spec['mode'], path))
        try:
            uid = pwd.getpwnam(spec['owner']).pw_uid
        except KeyError:
            self.module.fail_json(msg='managed_files: the user %s (owner of %s) does not exist on this host: create '
                                      'it first (the postgres user comes with the PostgreSQL packages).'
                                      % (spec['owner'], path))
        try:
            gid = grp.getgrnam(spec['group']).gr_gid
        except KeyError:
            self.module.fail_json(msg='managed_files: the group %s (of %s) does not exist on this host: create it '
                                      'first.' % (spec['group'], path))
        return dict(path=path, content=to_bytes(spec['content'], errors='surrogate_or_strict'), uid=uid, gid=gid,
                    mode=int(spec['mode'], 8), owner=spec['owner'], group=spec['group'])

    def current(self, path):
        """(stat result, bytes) of path; (None, None) when it is missing; (stat, None) when it is no file (a
        symbolic link is never followed, a FIFO never waited on)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None, None
        except OSError as e:
            if e.errno == errno.ELOOP:
                return os.lstat(path), None
            self.module.fail_json(msg='managed_files: could not read %s: %s. Run the task with become (the files '
                                      'belong to root or postgres).' % (path, e))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return st, None
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return st, b''.join(chunks)
                chunks.append(chunk)
        finally:
            os.close(fd)

    def plan(self):
        steps = []
        for spec in self.module.params['files']:
            want = self.wanted(spec)
            st, data = self.current(want['path'])
            if st is not None and data is None and not stat.S_ISLNK(st.st_mode):
                self.module.fail_json(msg='managed_files: %s exists and is not a file: move it out of the way (the '
                                          'collection writes a file there).' % want['path'])
            if st is None or stat.S_ISLNK(st.st_mode):
                differences = ['missing']
            else:
                differences = [name for name, differs in (
                    ('content', data != want['content']), ('owner', st.st_uid != want['uid']),
                    ('group', st.st_gid != want['gid']), ('mode', stat.S_IMODE(st.st_mode) != want['mode']))
                    if differs]
            steps.append(dict(want=want, stat=st, data=data, differences=differences))
        return steps

    def plan_absent(self):
        """[(path, stat, bytes or None)] of the files of absent that are there (read only)."""
        written = set(spec['path'] for spec in self.module.params['files'])
        there = []
        for path in self.module.params['absent']:
            if not os.path.isabs(path):
                self.module.fail_json(msg='managed_files: path %r in absent is not absolute: give the full path of '
                                          'the file.' % path)
            if path in written:
                self.module.fail_json(msg='managed_files: %s is both in files and in absent: keep it in one of '
                                          'them.' % path)
            st, data = self.current(path)
            if st is None:
                continue
            if data is None and not stat.S_ISLNK(st.st_mode):
                self.module.fail_json(msg='managed_files: %s (in absent) exists and is not a file: nothing was '
                                          'removed; remove it by hand if it is not needed.' % path)
            there.append((path, st, data))
        return there

    @staticmethod
    def attributes(st):
        """Owner and group names (numbers when unknown) and the octal mode of a stat result."""
        def name(lookup, number):
            try:
                return lookup(number)[0]
            except KeyError:
                return str(number)
        return dict(owner=name(pwd.getpwuid, st.st_uid), group=name(grp.getgrgid, st.st_gid),
                    mode='%04o' % stat.S_IMODE(st.st_mode))

    def header(self, path, st):
        if st is None:
            return '%s (missing)' % path
        return '%(path)s (now %(owner)s:%(group)s %(mode)s)' % dict(self.attributes(st), path=path)

    def diff(self, steps):
        out = []
        for step in steps:
            if not step['differences']:
                continue
            want, st = step['want'], step['stat']
            if 'missing' not in step['differences'] and 'content' not in step['differences']:
                # the same text: the owner, group and mode that change
                out.append(dict(
                    before=dict(self.attributes(st), path=want['path']),
                    after=dict(path=want['path'], owner=want['owner'], group=want['group'],
                               mode='%04o' % want['mode'])))
                continue
            out.append(dict(
                before_header=self.header(want['path'], step['stat']),
                after_header='%s (wanted %s:%s %04o)' % (want['path'], want['owner'], want['group'], want['mode']),
                before=to_text(step['data'] or b'', errors='surrogate_or_replace'),
                after=to_text(want['content'], errors='surrogate_or_replace')))
        return out

    def diff_absent(self, there):
        return [dict(before_header=self.header(path, st), after_header='%s (absent)' % path,
                     before=to_text(data or b'', errors='surrogate_or_replace'), after='')
                for path, st, data in there]

    def remove(self, there, steps):
        for path, st, dummy in there:
            try:
                now = os.lstat(path)
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                    self.module.fail_json(msg='managed_files: %s was replaced while the module ran: it was not '
                                              'removed; run again.' % path, files=self.result(steps))
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                self.module.fail_json(msg='managed_files: could not remove %s: %s. Run the task with become (the '
                                          'files belong to root or postgres).' % (path, e), files=self.result(steps))

    def set_attributes(self, step):
        """Owner, group and mode of the file plan() read, through a descriptor (never through a symbolic link that
        someone put in its place since: the directory may belong to postgres)."""
        want, path = step['want'], step['want']['path']
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (step['stat'].st_dev, step['stat'].st_ino):
                self.module.fail_json(msg='managed_files: %s was replaced while the module ran: nothing was set; run '
                                          'again.' % path, files=self.result([step]))
            os.fchown(fd, want['uid'], want['gid'])
            os.fchmod(fd, want['mode'])
        finally:
            os.close(fd)

    @staticmethod
    def make_parents(directory):
        missing = []
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for path in reversed(missing):
            os.mkdir(path, 0o700)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
            try:
                os.fchown(fd, 0, 0)
                os.fchmod(fd, 0o755)
            finally:
                os.close(fd)

    def apply(self, steps):
        for step in steps:
            want, differences = step['want'], step['differences']
            if not differences:
                continue
            path = want['path']
            try:
                if 'missing' not in differences and 'content' not in differences:
                    self.set_attributes(step)
                    continue
                directory = os.path.dirname(path)
                self.make_parents(directory)
                fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
                try:
                    # mkstemp made it 0600: owner and mode are set before any byte is in it
                    os.fchown(fd, want['uid'], want['gid'])
                    os.fchmod(fd, want['mode'])
                    with os.fdopen(fd, 'wb') as f:
                        f.write(want['content'])
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, path)
                except BaseException:
                    if os.path.lexists(tmp):
                        os.unlink(tmp)
                    raise
            except OSError as e:
                self.module.fail_json(msg='managed_files: could not write %s: %s. Run the task with become (the '
                                          'files belong to root or postgres), and check that the file system is '
                                          'writable.' % (path, e), files=self.result(steps))

    @staticmethod
    def result(steps):
        return [dict(path=s['want']['path'], changed=bool(s['differences']), differences=s['differences'])
                for s in steps]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                content=dict(type='str', required=True),
                owner=dict(type='str', default='root'),
                group=dict(type='str', default='root'),
                mode=dict(type='str', required=True),
            )),
            absent=dict(type='list', elements='path', default=[]),
        ),
        supports_check_mode=True,
    )
    if not module.params['files'] and not module.params['absent']:
        module.fail_json(msg='managed_files: neither files nor absent names a file: give at least one.')
    files = ManagedFiles(module)
    steps = files.plan()
    there = files.plan_absent()
    if not module.check_mode:
        files.apply(steps)
        files.remove(there, steps)
    result = dict(changed=any(s['differences'] for s in steps) or bool(there), files=files.result(steps),
                  removed=[path for path, dummy, dummy in there])
    if module._diff:
        result['diff'] = files.diff(steps) + files.diff_absent(there)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
