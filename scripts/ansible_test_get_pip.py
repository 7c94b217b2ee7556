"""Offline stand-in for get-pip.py, for ansible-test's virtual environments.

ansible-test puts pip into each virtual environment it creates by running a
get-pip.py it downloads from a host this project's CI cannot reach, unless a
copy is cached in ~/.ansible/test/cache. `make sanity` caches this script
there instead: it bootstraps pip from the standard library (ensurepip) and
lets that pip install the requested pip version from the package index.
"""
from __future__ import annotations

import subprocess
import sys

# get-pip.py flags that ensurepip + pip install have no use for
IGNORED = ('--no-setuptools', '--no-wheel')


def main():
    """Bootstrap pip, then install what ansible-test asked get-pip.py for."""
    args = [arg for arg in sys.argv[1:] if arg not in IGNORED]
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--quiet'] + args)


if __name__ == '__main__':
    main()
