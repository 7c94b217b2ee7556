"""Wrong inventories and inputs stop the site playbook before any change.

Each case writes its own small inventory over the scenario's three bare
containers (docker connection) and runs the collection's site playbook,
``hotstandby.postgresql.site``, as ``ansible-playbook`` would be run by a user:
from the clone or from the installed artifact, whichever ANSIBLE_COLLECTIONS_PATH
(set by molecule from HOTSTANDBY_COLLECTIONS_PATH) points at. For every case:

* the playbook fails (rc 2: a task failed, no host unreachable, no crash);
* the failure message names the variable or host and says what to do;
* the output never contains the replication password;
* nothing changed: the recap shows changed=0 for every host, and no host has
  a PostgreSQL package, /etc/postgresql or /var/lib/postgresql.

The cases that need bare hosts run first (concurrently: they only gather
facts). Then the cases that need a built primary, and last one correct
inventory that builds a pair, proving the containers and the happy path work.
Tests in this file depend on this order (pytest keeps the file order).
"""
import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra
import yaml

PLAYBOOK = "hotstandby.postgresql.site"
PRIMARY, STANDBY1, STANDBY2 = "inp-primary", "inp-standby1", "inp-standby2"
HOSTS = (PRIMARY, STANDBY1, STANDBY2)
# TEST ONLY: throwaway molecule containers, never use elsewhere.
PASSWORD = "inputs-test-only-Zq8v3-not-a-secret"
# A password YAML reads as a number (unquoted digits).
NUMERIC_PASSWORD = 918273645013
PLAYBOOK_TIMEOUT = 900

_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# "fatal: [host]: FAILED! => {...}", and per loop item "failed: [host] (item=x) => {...}"
_FAILED = re.compile(r"^(?:fatal|failed): \[([^\]]+)\](?::| \(item=.*?\)) (?:FAILED! )?=> (\{.*\})\s*$", re.M)


# --- running the playbook --------------------------------------------------


def _ansible_playbook():
    local = Path(sys.executable).parent / "ansible-playbook"
    return str(local) if local.exists() else shutil.which("ansible-playbook")


def _env():
    env = dict(os.environ)
    collections = env.get("HOTSTANDBY_COLLECTIONS_PATH") or env.get("ANSIBLE_COLLECTIONS_PATH")
    assert collections, "run through molecule (or set HOTSTANDBY_COLLECTIONS_PATH)"
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOLOR="true",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        # one JSON object per failed result, so the message can be read back
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_CALLBACK_FORMAT_PRETTY="false",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_HOST_KEY_CHECKING="false",
    )
    return env


def inventory(masters, standbys, password=PASSWORD, hostvars=None, **group_vars):
    """A YAML inventory over the scenario's containers (docker connection)."""
    all_vars = {
        "ansible_connection": "community.docker.docker",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    if password is not None:
        all_vars["postgres_replication_password"] = password
    all_vars.update(group_vars)
    hostvars = hostvars or {}
    children = {"postgres_master": {"hosts": {h: hostvars.get(h) for h in masters}}}
    if standbys is not None:
        children["postgres_standby"] = {"hosts": {h: hostvars.get(h) for h in standbys}}
    return {"all": {"vars": all_vars, "children": children}}


class Run:
    """One ansible-playbook run: its return code, output and what it reported."""

    def __init__(self, name, inv, directory):
        self.name = name
        self.inventory = inv
        self.hosts = sorted(set(inv["all"]["children"]["postgres_master"]["hosts"])
                            | set((inv["all"]["children"].get("postgres_standby") or {}).get("hosts", {})))
        path = Path(directory) / f"{name}.yml"
        path.write_text(yaml.safe_dump(inv, sort_keys=False))
        started = time.monotonic()
        proc = subprocess.run(
            [_ansible_playbook(), "-i", str(path), PLAYBOOK],
            env=_env(), cwd=directory, capture_output=True, text=True,
            timeout=PLAYBOOK_TIMEOUT, check=False,
        )
        self.seconds = time.monotonic() - started
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        (Path(directory) / f"{name}.log").write_text(self.output)
        self.recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]),
                             "failed": int(m[4])} for m in _RECAP.findall(self.output)}
        self.failures = []  # (host, msg)
        for host, result in _FAILED.findall(self.output):
            try:
                msg = json.loads(result).get("msg", result)
            except json.JSONDecodeError:
                msg = result
            self.failures.append((host, str(msg)))

    @property
    def messages(self):
        return "\n".join(f"[{h}] {m}" for h, m in self.failures)

    def __repr__(self):
        tail = "\n".join(self.output.splitlines()[-40:])
        return f"<{self.name}: rc={self.rc} in {self.seconds:.0f}s>\n{tail}"


# --- what the hosts hold ---------------------------------------------------


def _host(name):
    return testinfra.get_host(f"docker://{name}")


def assert_bare(name):
    host = _host(name)
    pkgs = host.run("dpkg-query -W -f='${Package} ${Status}\\n' 'postgresql*'").stdout
    installed = [line.split()[0] for line in pkgs.splitlines() if line.endswith("install ok installed")]
    assert not installed, f"{name} has PostgreSQL packages installed: {installed}"
    for path in ("/etc/postgresql", "/var/lib/postgresql"):
        assert not host.file(path).exists, f"{name}: {path} exists"


def assert_refused(run, names, hints):
    """The common checks of a refused input (see the module docstring)."""
    assert run.rc == 2, run
    assert run.failures, f"no failed task in the output: {run!r}"
    for word in names:
        assert word in run.messages, f"{word!r} not named in the message(s):\n{run.messages}"
    assert any(hint in run.messages for hint in hints), \
        f"no hint of what to do ({hints}) in the message(s):\n{run.messages}"
    assert PASSWORD not in run.output
    assert str(NUMERIC_PASSWORD) not in run.output
    assert set(run.recap) == set(run.hosts), (run.recap, run)
    for host, counts in run.recap.items():
        assert counts["changed"] == 0, f"{host} changed: {counts} {run!r}"
        assert counts["unreachable"] == 0, f"{host} unreachable: {counts} {run!r}"
    for name in HOSTS:
        assert_bare(name)


# --- cases on bare hosts ---------------------------------------------------

# names: words the message must contain; hints: at least one must appear.
Case = collections.namedtuple("Case", "inventory names hints")

BARE_CASES = {
    "missing_password": Case(
        inventory([PRIMARY], [STANDBY1], password=None),
        ["postgres_replication_password", "not set"], ["ansible-vault", "define it"]),
    "empty_password": Case(
        inventory([PRIMARY], [STANDBY1], password=""),
        ["postgres_replication_password", "empty"], ["ansible-vault", "define it"]),
    "numeric_password": Case(
        inventory([PRIMARY], [STANDBY1], password=NUMERIC_PASSWORD),
        ["postgres_replication_password", "string"], ["quote"]),
    "unknown_sync_mode": Case(
        inventory([PRIMARY], [STANDBY1], postgres_synchronous_mode="semi"),
        ["postgres_synchronous_mode", "semi"], ["async, sync, quorum"]),
    "zero_standbys": Case(
        inventory([PRIMARY], None),
        ["postgres_standby"], ["Add the hosts"]),
    "empty_standby_group": Case(
        inventory([PRIMARY], []),
        ["postgres_standby"], ["Add the hosts"]),
    "two_masters": Case(
        inventory([PRIMARY, STANDBY1], [STANDBY2]),
        ["postgres_master", PRIMARY, STANDBY1], ["exactly one host"]),
    "primary_also_standby": Case(
        inventory([PRIMARY], [PRIMARY, STANDBY1]),
        [PRIMARY, "postgres_master", "postgres_standby"], ["either the primary or a standby"]),
    "postgres_version_12": Case(
        inventory([PRIMARY], [STANDBY1], postgres_version=12),
        ["postgres_version", "12"], ["Set postgres_version"]),
    "upstream_not_a_standby": Case(
        inventory([PRIMARY], [STANDBY1, STANDBY2], hostvars={STANDBY2: {"postgres_standby_upstream": PRIMARY}}),
        ["postgres_standby_upstream", STANDBY2, PRIMARY], ["leave it unset"]),
    "upstream_unknown_host": Case(
        inventory([PRIMARY], [STANDBY1], hostvars={STANDBY1: {"postgres_standby_upstream": "inp-nowhere"}}),
        ["postgres_standby_upstream", STANDBY1, "inp-nowhere"], ["leave it unset"]),
    "cascade_loop": Case(
        inventory([PRIMARY], [STANDBY1, STANDBY2],
                  hostvars={STANDBY1: {"postgres_standby_upstream": STANDBY2},
                            STANDBY2: {"postgres_standby_upstream": STANDBY1}}),
        ["postgres_standby_upstream", "loop"], ["Point postgres_standby_upstream"]),
    "sync_count_above_standbys": Case(
        inventory([PRIMARY], [STANDBY1, STANDBY2],
                  postgres_synchronous_mode="sync", postgres_synchronous_count=3),
        ["postgres_synchronous_count", "3"], ["between 1 and 2"]),
    # The primary's planned value (its postgres_settings), not PostgreSQL's default.
    "standby_below_primary_planned_setting": Case(
        inventory([PRIMARY], [STANDBY1],
                  hostvars={PRIMARY: {"postgres_settings": {"max_connections": 200}},
                            STANDBY1: {"postgres_standby_settings": {"max_connections": 150}}}),
        ["max_connections", "150", "200", STANDBY1, PRIMARY, "postgres_standby_settings"],
        ["Raise it", "leave it unset"]),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("inputs")


@pytest.fixture(scope="module")
def bare_runs(workdir):
    """Run every bare-host case at once: they only gather facts and validate."""
    for name in HOSTS:
        assert_bare(name)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(Run, name, case.inventory, workdir) for name, case in BARE_CASES.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", list(BARE_CASES))
def test_refused_before_any_change(bare_runs, case):
    assert_refused(bare_runs[case], BARE_CASES[case].names, BARE_CASES[case].hints)


# --- unsupported operating systems ------------------------------------------
#
# Every image here is Debian 12: no other OS can run in this lab. The
# validation reads the facts Ansible gathers from the host's release files, so
# the test makes one host's release files describe another OS for the length
# of one run (restored afterwards; the host still is Debian underneath). This
# exercises the real fact gathering and the real validation task; what it
# cannot show is how a real Rocky or buster host would behave after a
# (hypothetical) pass, which is the point: it must never get there.

ROCKY_OS_RELEASE = """NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
"""

BUSTER_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 10 (buster)"
NAME="Debian GNU/Linux"
VERSION_ID="10"
VERSION="10 (buster)"
VERSION_CODENAME=buster
ID=debian
"""

# host: the faked host; files: {path: content} while the case runs.
OsCase = collections.namedtuple("OsCase", "host files inventory names hints")

OS_CASES = {
    "os_rocky_linux": OsCase(
        STANDBY2, {"/etc/os-release": ROCKY_OS_RELEASE,
                   "/etc/redhat-release": "Rocky Linux release 9.4 (Blue Onyx)\n"},
        inventory([STANDBY1], [STANDBY2]),
        [STANDBY2, "Rocky", "RedHat"], ["supports Debian 11"]),
    "os_debian_10": OsCase(
        PRIMARY, {"/etc/os-release": BUSTER_OS_RELEASE, "/etc/debian_version": "10.13\n"},
        inventory([PRIMARY], [STANDBY1]),
        [PRIMARY, "Debian", "10.13"], ["supports Debian 11"]),
}


def _fake_release(host, files):
    for path, content in files.items():
        backup = f"/root/inputs-test{path.replace('/', '_')}"
        host.check_output(f"if [ -e {path} ] || [ -L {path} ]; then mv {path} {backup}; fi")
        host.check_output(f"printf %s {_quote(content)} > {path}")


def _restore_release(host, files):
    for path in files:
        backup = f"/root/inputs-test{path.replace('/', '_')}"
        host.run(f"rm -f {path}; if [ -e {backup} ] || [ -L {backup} ]; then mv {backup} {path}; fi")


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def os_runs(bare_runs, workdir):
    """Both OS cases at once: each fakes a different host, used by no other run."""
    faked = [(_host(case.host), case.files) for case in OS_CASES.values()]
    try:
        for host, files in faked:
            _fake_release(host, files)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = {name: pool.submit(Run, name, case.inventory, workdir) for name, case in OS_CASES.items()}
            return {name: future.result() for name, future in futures.items()}
    finally:
        for host, files in faked:
            _restore_release(host, files)
        for name in HOSTS:
            _host(name).check_output("grep -q '^ID=debian' /etc/os-release && ! test -e /etc/redhat-release")


@pytest.mark.parametrize("case", list(OS_CASES))
def test_unsupported_os_refused_before_any_change(os_runs, case):
    assert_refused(os_runs[case], OS_CASES[case].names, OS_CASES[case].hints)


# --- cases that need a built primary ----------------------------------------


def test_standby_only_option_refused_before_any_change(os_runs, workdir):
    run = Run("standby_checkpoint_slow",
              inventory([PRIMARY], [STANDBY1], postgres_standby_checkpoint="slow"), workdir)
    assert_refused(run, ["postgres_standby_checkpoint", "slow"], ["fast, spread"])


def _psql(host, sql):
    return host.check_output("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c %s", sql)


def test_standby_setting_below_primary_refused_standby_untouched(os_runs, workdir):
    """Refused in the first play against the primary's planned value
    (PostgreSQL's default max_connections, 100), before any host is changed.

    The same check runs again against the running primary before the
    standby's settings and data are touched.
    """
    run = Run("standby_max_connections_10",
              inventory([PRIMARY], [STANDBY1], postgres_standby_settings={"max_connections": 10}), workdir)
    assert run.rc == 2, run
    assert {failure[0] for failure in run.failures} == {STANDBY1}, run.messages
    for word in ("max_connections", "10", STANDBY1, PRIMARY, "postgres_standby_settings"):
        assert word in run.messages, f"{word!r} not in:\n{run.messages}"
    assert "Raise it" in run.messages or "leave it unset" in run.messages, run.messages
    assert PASSWORD not in run.output
    assert run.recap[PRIMARY]["failed"] == 0 and run.recap[STANDBY1]["failed"] == 1, run.recap

    assert run.recap[STANDBY1]["changed"] == 0, run.recap
    assert_bare(STANDBY1)
    assert_bare(PRIMARY)


# --- last: a correct inventory builds the pair ------------------------------


def test_correct_inventory_builds_the_pair(os_runs, workdir):
    """Same hosts as the refused standby above: fixing the input is enough."""
    run = Run("correct_pair", inventory([PRIMARY], [STANDBY1]), workdir)
    assert run.rc == 0, run
    assert PASSWORD not in run.output
    assert set(run.recap) == {PRIMARY, STANDBY1}, run.recap
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in run.recap.values()), run.recap
    state = _psql(_host(PRIMARY), f"SELECT state FROM pg_stat_replication WHERE application_name = '{STANDBY1}'")
    assert state == "streaming", state
    assert _psql(_host(STANDBY1), "SELECT pg_is_in_recovery()") == "t"
    assert_bare(STANDBY2)
