"""Fixtures of every molecule verifier, from the scenario's inventory.

pytest loads this file for each verifier below molecule/ (molecule/shared/tests, molecule/faults/tests,
...): molecule runs testinfra with the repository as rootdir (pytest.ini), and pytest collects the
conftest.py files of every directory between the rootdir and a test file. The helpers are in
molecule/shared/tests/labhost.py (on the Python path through pytest.ini).

primary: the one host of postgres_master. standby: every standby of the inventory (postgres_standby,
then postgres_standby_later), one module-scoped parameter each, named by the host.
"""
import pytest

import labhost


@pytest.fixture(scope="module")
def primary():
    """The primary: the one host of postgres_master."""
    names = labhost.group_hosts("postgres_master")
    assert len(names) == 1, f"expected exactly one host in postgres_master, found {names}"
    return labhost.node(names[0])


@pytest.fixture(scope="module")
def standby(request):
    """One standby of the inventory (the tests that use it run once per standby)."""
    return labhost.node(request.param)


def pytest_generate_tests(metafunc):
    """Give every test that uses the standby fixture (directly or through another fixture) one run per standby."""
    if "standby" in metafunc.fixturenames:
        names = labhost.standby_names()
        # An empty list would skip such tests silently: a test that cannot fail.
        assert names, f"{metafunc.function.__name__} uses the standby fixture, but the inventory has no standby"
        metafunc.parametrize("standby", names, ids=names, indirect=True, scope="module")
