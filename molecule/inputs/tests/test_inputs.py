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
facts). Then the site playbook builds the primary alone (--limit), a standby
setting below what the running primary uses is refused by the check against
the running primary, and last the same inventory without that setting builds
the pair, proving the containers and the happy path work. Tests in this file
depend on this order (pytest keeps the file order).
"""
import collections
import concurrent.futures
from pathlib import Path

import pytest
import yaml
from labhost import ansible_env, cluster, dock, playbook_cmd, psql, run_playbook, sh

PLAYBOOK = "hotstandby.postgresql.site"
PRIMARY, STANDBY1, STANDBY2 = "inp-primary", "inp-standby1", "inp-standby2"
HOSTS = (PRIMARY, STANDBY1, STANDBY2)
# TEST ONLY: throwaway molecule containers, never use elsewhere.
PASSWORD = "inputs-test-only-Zq8v3-not-a-secret"
# A password YAML reads as a number (unquoted digits).
NUMERIC_PASSWORD = 918273645013
PLAYBOOK_TIMEOUT = 900
# the two checks of standby settings against the primary's (roles/postgres_standby): before any change,
# against the primary's planned values (validate.yml), and against the running primary (install.yml)
PLANNED_CHECK = "Refuse standby settings lower than the primary's planned ones"
RUNNING_CHECK = "Refuse standby settings lower than the primary's"


# --- running the playbook --------------------------------------------------


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


def run_case(name, inv, directory, *args):
    """Run the site playbook over the inventory inv (kept in directory as name.yml, its output as name.log).

    The result (labhost.Run) has the run's return code, output, PLAY RECAP, failed results (the JSON
    callback output is read back) and the hosts of the inventory.
    """
    path = Path(directory) / f"{name}.yml"
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    hosts = set(inv["all"]["children"]["postgres_master"]["hosts"]) \
        | set((inv["all"]["children"].get("postgres_standby") or {}).get("hosts", {}))
    return run_playbook(playbook_cmd(PLAYBOOK, *args, inventories=[str(path)]), env=ansible_env(json_results=True),
                        timeout=PLAYBOOK_TIMEOUT, cwd=directory, log_path=Path(directory) / f"{name}.log", name=name,
                        hosts=hosts)


def failed_task(failure):
    """The name of the task a failure came from, without its role prefix."""
    return (failure.task or "").split(" : ")[-1]


# --- what the hosts hold ---------------------------------------------------


def assert_bare(name):
    host = dock(name)
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
    # Two standbys on one slot (as db-1 and db.1 would both be db_1): refused before the primary is touched.
    "slot_names_collide": Case(
        inventory([PRIMARY], [STANDBY1, STANDBY2], hostvars={STANDBY2: {"postgres_standby_slot_name": "inp_standby1"}}),
        [STANDBY1, STANDBY2, "postgres_standby_slot_name", "inp_standby1"], ["unique name"]),
    "invalid_slot_name": Case(
        inventory([PRIMARY], [STANDBY1], hostvars={STANDBY1: {"postgres_standby_slot_name": "Bad-Slot"}}),
        [STANDBY1, "postgres_standby_slot_name", "Bad-Slot"], ["lower-case letters"]),
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
        futures = {name: pool.submit(run_case, name, case.inventory, workdir) for name, case in BARE_CASES.items()}
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
    faked = [(dock(case.host), case.files) for case in OS_CASES.values()]
    try:
        for host, files in faked:
            _fake_release(host, files)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            futures = {name: pool.submit(run_case, name, case.inventory, workdir) for name, case in OS_CASES.items()}
            return {name: future.result() for name, future in futures.items()}
    finally:
        for host, files in faked:
            _restore_release(host, files)
        for name in HOSTS:
            dock(name).check_output("grep -q '^ID=debian' /etc/os-release && ! test -e /etc/redhat-release")


@pytest.mark.parametrize("case", list(OS_CASES))
def test_unsupported_os_refused_before_any_change(os_runs, case):
    assert_refused(os_runs[case], OS_CASES[case].names, OS_CASES[case].hints)


# --- a standby setting below the primary's -----------------------------------


def test_standby_only_option_refused_before_any_change(os_runs, workdir):
    run = run_case("standby_checkpoint_slow",
                   inventory([PRIMARY], [STANDBY1], postgres_standby_checkpoint="slow"), workdir)
    assert_refused(run, ["postgres_standby_checkpoint", "slow"], ["fast, spread"])


def test_standby_setting_below_primary_default_refused_before_any_change(os_runs, workdir):
    """Refused in the first play against the primary's planned value
    (PostgreSQL's default max_connections, 100), before any host is changed."""
    run = run_case("standby_max_connections_10",
                   inventory([PRIMARY], [STANDBY1], postgres_standby_settings={"max_connections": 10}), workdir)
    assert run.rc == 2, run
    assert {failure[0] for failure in run.failures} == {STANDBY1}, run.messages
    assert {failed_task(failure) for failure in run.failures} == {PLANNED_CHECK}, run.failures
    for word in ("max_connections", "10", STANDBY1, PRIMARY, "postgres_standby_settings"):
        assert word in run.messages, f"{word!r} not in:\n{run.messages}"
    assert "Raise it" in run.messages or "leave it unset" in run.messages, run.messages
    assert PASSWORD not in run.output
    assert run.recap[PRIMARY]["failed"] == 0 and run.recap[STANDBY1]["failed"] == 1, run.recap

    assert run.recap[STANDBY1]["changed"] == 0, run.recap
    assert_bare(STANDBY1)
    assert_bare(PRIMARY)


@pytest.fixture(scope="module")
def built_primary(os_runs, workdir):
    """The primary alone, built by the site playbook with the pair's inventory and --limit to the primary
    (the left-out standby's address is read from it; nothing is installed there)."""
    run = run_case("primary_only", inventory([PRIMARY], [STANDBY1]), workdir, "--limit", PRIMARY)
    assert run.rc == 0, run
    assert set(run.recap) == {PRIMARY}, run.recap
    assert psql(dock(PRIMARY), "SELECT pg_is_in_recovery()") == "f"
    assert_bare(STANDBY1)
    assert_bare(STANDBY2)
    return run


def standby_leftovers(name, primary_sysid):
    """What the standby role writes after its check against the running primary, found on the host: the
    managed drop-in (and any other file of the collection), a data directory replaced by a clone (standby.signal,
    the primary's system identifier), one moved aside, a staging directory, the passfile."""
    host = dock(name)
    found = sh(host, "find /etc/postgresql /var/lib/postgresql -maxdepth 4 \\( -name '*hotstandby*' "
                     "-o -name standby.signal -o -name '*.moved-*' -o -name '.pgpass_replication' \\) -print").split()
    for line in host.run("pg_lsclusters -h").stdout.splitlines():
        data_dir = line.split()[5]
        if host.file(f"{data_dir}/global/pg_control").exists:
            ver = line.split()[0]
            sysid = sh(host, f"/usr/lib/postgresql/{ver}/bin/pg_controldata %s "
                             "| sed -n 's/^Database system identifier: *//p'", data_dir).strip()
            if sysid == primary_sysid:
                found.append(f"{data_dir} (a clone of the primary)")
    return found


def test_standby_setting_below_primary_refused_standby_untouched(built_primary, workdir):
    """A standby setting above the primary's planned value but below what the running primary uses (here
    max_connections set there by hand, ALTER SYSTEM) passes the first play's check and is refused by the
    standby role's check against the running primary, before the standby's settings and data are touched.

    The site playbook installs every host's packages before the roles run, so inp-standby1 has the
    PostgreSQL packages (and Debian's own cluster) afterwards, but nothing of the standby role.
    """
    primary = dock(PRIMARY)
    c = cluster(primary)
    primary_sysid = psql(primary, "SELECT system_identifier FROM pg_control_system()")
    psql(primary, "ALTER SYSTEM SET max_connections = 200")
    sh(primary, "systemctl restart %s", c["service"])
    try:
        assert psql(primary, "SHOW max_connections") == "200"
        run = run_case("standby_max_connections_150_running_200",
                       inventory([PRIMARY], [STANDBY1],
                                 hostvars={STANDBY1: {"postgres_standby_settings": {"max_connections": 150}}}),
                       workdir)
    finally:
        psql(primary, "ALTER SYSTEM RESET max_connections")
        sh(primary, "systemctl restart %s", c["service"])
    assert run.rc == 2, run
    assert {failure.host for failure in run.failures} == {STANDBY1}, run.messages
    # the refusal comes from the check against the running primary (install.yml), not the planned one
    assert {failed_task(failure) for failure in run.failures} == {RUNNING_CHECK}, run.failures
    for word in ("max_connections", "150", "200", STANDBY1, PRIMARY, "postgres_standby_settings"):
        assert word in run.messages, f"{word!r} not in:\n{run.messages}"
    assert "Raise it" in run.messages or "leave it unset" in run.messages, run.messages
    assert PASSWORD not in run.output
    assert run.recap[PRIMARY]["failed"] == 0 and run.recap[STANDBY1]["failed"] == 1, run.recap
    assert run.recap[PRIMARY]["changed"] == 0, run.recap
    # the standby is untouched: no drop-in, no clone, nothing moved aside, no staging directory, no passfile
    assert standby_leftovers(STANDBY1, primary_sysid) == [], run
    assert psql(primary, "SELECT pg_is_in_recovery()") == "f"
    assert_bare(STANDBY2)


# --- last: a correct inventory builds the pair ------------------------------


def test_correct_inventory_builds_the_pair(os_runs, workdir):
    """Same hosts as the refused standby above: fixing the input is enough."""
    run = run_case("correct_pair", inventory([PRIMARY], [STANDBY1]), workdir)
    assert run.rc == 0, run
    assert PASSWORD not in run.output
    assert set(run.recap) == {PRIMARY, STANDBY1}, run.recap
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in run.recap.values()), run.recap
    state = psql(dock(PRIMARY), f"SELECT state FROM pg_stat_replication WHERE application_name = '{STANDBY1}'")
    assert state == "streaming", state
    assert psql(dock(STANDBY1), "SELECT pg_is_in_recovery()") == "t"
    assert_bare(STANDBY2)
