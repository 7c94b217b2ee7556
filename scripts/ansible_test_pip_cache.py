"""Cache the offline get-pip stand-in where ansible-test looks for it.

Usage: python ansible_test_pip_cache.py STAND_IN.py
Writes ~/.ansible/test/cache/get_pip_<version>.py for the pip version this
ansible-test bootstraps, unless a bootstrap script is already cached there.
"""
from __future__ import annotations

import os
import re
import shutil
import sys

import ansible_test


def main():
    """Copy the stand-in into ansible-test's cache under the expected name."""
    source = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
    with open(source, encoding='utf-8') as handle:
        match = re.search(r"pip='([0-9.]+)'", handle.read())
    if not match:
        sys.exit(f'ansible_test_pip_cache: cannot find the pip version ansible-test bootstraps in {source}')
    target = os.path.expanduser(f"~/.ansible/test/cache/get_pip_{match.group(1).replace('.', '_')}.py")
    if os.path.exists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(sys.argv[1], target + '.tmp')
    os.replace(target + '.tmp', target)
    print(f'ansible_test_pip_cache: cached {sys.argv[1]} as {target}')


if __name__ == '__main__':
    main()
