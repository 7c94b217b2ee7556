"""The pg_basebackup module's real behaviour, against the real primary built by converge.

Every test calls the module the way a user would (``ansible -m hotstandby.postgresql.pg_basebackup``
with the molecule inventory, so the collection comes from HOTSTANDBY_COLLECTIONS_PATH: the clone
under ``make molecule``, the installed artifact under ``make test``) and then reads the real state
of both containers (files, catalog views, processes) through ``docker exec``.

The tests share the containers and run in file order:
  check/diff mode -> re-run copies nothing -> wrong password -> foreign data refused, then moved
  aside -> interrupted clone (pg_basebackup killed: the module cleans up) -> interrupted clone (the
  module's process group killed), then re-run -> killed module's leftover cleaned by the next run
  -> the pair still streams. The primary and standby fixtures are in molecule/conftest.py.
Clones other than the standby's own go to sibling data directories of the standby's, so the real
standby keeps streaming throughout; they use their own slot (or a temporary one) and are removed
again at the end.
"""
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest
from labhost import (ansible_env, basebackups, cluster, conninfo_fields, playbook_cmd, primary_state, processes, psql,
                     sh, sha256, top_files, tree_state)

PRIMARY = "mod-primary"
STANDBY = "mod-standby"
MODULE = "hotstandby.postgresql.pg_basebackup"
# the password comes from the inventory (templated by ansible), never from this file
PASSWORD_VAR = "{{ postgres_replication_password }}"
WRONG_PASSWORD = "wrong-" + uuid.uuid4().hex
TEMP_PORT = 5499
WORK_DIR = tempfile.mkdtemp(prefix="hotstandby-module-test-")
atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)
PLAYBOOK = os.path.join(WORK_DIR, "run_module.yml")


RUN_PLAYBOOK = """
- name: Run the module once on the standby and keep its result
  hosts: %s
  gather_facts: false
  become: true
  tasks:
    - name: Call the module with the test's arguments
      hotstandby.postgresql.pg_basebackup: "{{ hotstandby_module_args }}"
      register: hotstandby_result
      ignore_errors: true
    - name: Keep the module's own result (also under --check)
      ansible.builtin.copy:
        content: "{{ hotstandby_result | to_json }}"
        dest: "{{ hotstandby_result_file }}"
        mode: "0600"
      delegate_to: localhost
      become: false
      check_mode: false
""" % STANDBY
with open(PLAYBOOK, "w", encoding="utf-8") as _f:
    _f.write(RUN_PLAYBOOK)


def _module_cmd(args, check=False, diff=False):
    """ansible-playbook command that runs the module with args and writes its registered result to a file.

    The registered result is the module's own return (ad hoc callbacks drop 'diff'/'failed' or overwrite
    the module's 'action' with the task's).
    """
    run_dir = tempfile.mkdtemp(dir=WORK_DIR)
    with open(os.path.join(run_dir, "vars.json"), "w", encoding="utf-8") as f:
        json.dump(dict(hotstandby_module_args=args, hotstandby_result_file=os.path.join(run_dir, "result.json")), f)
    cmd = playbook_cmd(PLAYBOOK, "-e", "@" + os.path.join(run_dir, "vars.json"))
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    return cmd, run_dir


def _parse(run_dir, stdout, stderr):
    path = os.path.join(run_dir, "result.json")
    assert os.path.exists(path), f"no result from ansible-playbook: {stdout} {stderr}"
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    return json.loads(raw), raw + stdout + stderr


def run_module(args, check=False, diff=False):
    """Run the module on the standby; return (its result, raw result and playbook output)."""
    cmd, run_dir = _module_cmd(args, check, diff)
    proc = subprocess.run(cmd, env=ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    return _parse(run_dir, proc.stdout, proc.stderr)


def start_module(args):
    """Start the module in the background (for the interrupted clones); returns (process, run_dir)."""
    cmd, run_dir = _module_cmd(args)
    return subprocess.Popen(cmd, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True), run_dir


# the primary and standby fixtures (mod-primary, mod-standby from the inventory) are in molecule/conftest.py

@pytest.fixture(scope="module")
def pair(primary, standby):
    """What the site playbook configured: the module arguments that reproduce the standby's own clone."""
    c = cluster(standby)
    version, data_dir = c["version"], c["data_dir"]
    fields = conninfo_fields(standby)
    slot = psql(standby, "SHOW primary_slot_name")
    base = dict(data_dir=data_dir, primary_host=fields["host"], primary_port=int(fields.get("port", 5432)),
                user=fields["user"], password=PASSWORD_VAR, slot=slot,
                application_name=STANDBY, bin_dir=f"/usr/lib/postgresql/{version}/bin")
    parent = os.path.dirname(data_dir)
    siblings = sh(standby, "ls -A %s", parent).split()
    return dict(siblings=siblings, version=version, data_dir=data_dir, parent=parent, base=base, slot=slot,
                bin=f"/usr/lib/postgresql/{version}/bin", passfile=fields["passfile"])


def standby_streams(primary):
    return psql(primary, f"SELECT state FROM pg_stat_replication WHERE application_name = '{STANDBY}'")


def receiver_pid(standby):
    return psql(standby, "SELECT pid FROM pg_stat_wal_receiver")


def moved_dirs(host, parent, base):
    return sorted(sh(host, "find %s -maxdepth 1 -name %s", parent, base + ".moved-*").split())


def assert_no_password(raw):
    assert "molecule-test-only-not-a-secret" not in raw
    assert WRONG_PASSWORD not in raw


def make_foreign_cluster(standby, pair, path, token):
    """initdb a second cluster into path, create a marker table in it, stop it again."""
    sh(standby, "rm -rf %s", path)
    sh(standby, f"runuser -u postgres -- {pair['bin']}/initdb -D %s --auth-local=peer --auth-host=reject >/dev/null", path)
    sh(standby, f"runuser -u postgres -- {pair['bin']}/pg_ctl -D %s -w -l /tmp/foreign.log "
                f"-o '-p {TEMP_PORT} -k /tmp -c listen_addresses=localhost' start >/dev/null", path)
    try:
        psql(standby, f"CREATE TABLE hotstandby_marker (token text); INSERT INTO hotstandby_marker VALUES ('{token}')",
             port=TEMP_PORT, socket="/tmp")
    finally:
        sh(standby, f"runuser -u postgres -- {pair['bin']}/pg_ctl -D %s -w -m fast stop >/dev/null", path)


def read_marker(standby, pair, path):
    """Start a temporary server on a copy of a cluster and read its marker table."""
    sh(standby, f"runuser -u postgres -- {pair['bin']}/pg_ctl -D %s -w -l /tmp/moved.log "
                f"-o '-p {TEMP_PORT} -k /tmp -c listen_addresses=localhost' start >/dev/null", path)
    try:
        return psql(standby, "SELECT token FROM hotstandby_marker", port=TEMP_PORT, socket="/tmp")
    finally:
        sh(standby, f"runuser -u postgres -- {pair['bin']}/pg_ctl -D %s -w -m fast stop >/dev/null", path)


# ---------------------------------------------------------------------------
# the standby built by converge
# ---------------------------------------------------------------------------

def test_check_mode_reports_standby_and_diff_hides_password(pair, standby, primary):
    before = top_files(standby, pair["data_dir"]), sha256(standby, pair["passfile"]), primary_state(primary)
    result, raw = run_module(pair["base"], check=True, diff=True)
    assert not result.get("failed"), result["msg"]
    assert result["case"] == "standby" and result["action"] == "none" and result["changed"] is False
    assert result["system_identifier"] == primary_state(primary)["sysid"]
    diff = result["diff"]
    assert "standby.signal: present" in diff["after"] and "primary_conninfo = " in diff["after"]
    assert f"primary_slot_name = '{pair['slot']}'" in diff["after"]
    assert "passfile=" in diff["after"] and "password" not in diff["after"].replace("passfile", "")
    assert_no_password(raw)
    assert (top_files(standby, pair["data_dir"]), sha256(standby, pair["passfile"]), primary_state(primary)) == before


def test_rerun_copies_nothing(pair, standby, primary):
    before = dict(files=top_files(standby, pair["data_dir"]), passfile=sha256(standby, pair["passfile"]),
                  primary=primary_state(primary), receiver=receiver_pid(standby),
                  moved=moved_dirs(standby, pair["parent"], os.path.basename(pair["data_dir"])))
    result, raw = run_module(pair["base"], diff=True)
    assert not result.get("failed"), result["msg"]
    assert result["changed"] is False
    assert result["case"] == "standby" and result["action"] == "none"
    assert result["bytes"] == 0 and result["moved_to"] is None
    assert "nothing to do" in result["msg"]
    after = dict(files=top_files(standby, pair["data_dir"]), passfile=sha256(standby, pair["passfile"]),
                 primary=primary_state(primary), receiver=receiver_pid(standby),
                 moved=moved_dirs(standby, pair["parent"], os.path.basename(pair["data_dir"])))
    assert after == before  # same directory inode, same file mtimes, same WAL receiver: nothing was copied
    assert not standby.file(os.path.join(pair["parent"], "." + os.path.basename(pair["data_dir"])
                                         + ".hotstandby-staging")).exists
    assert_no_password(raw)


def test_wrong_password_changes_nothing(pair, standby, primary):
    before = dict(files=top_files(standby, pair["data_dir"]), passfile=sha256(standby, pair["passfile"]),
                  primary=primary_state(primary), receiver=receiver_pid(standby))
    result, raw = run_module(dict(pair["base"], password=WRONG_PASSWORD))
    assert result.get("failed") is True
    assert result["changed"] is False
    msg = result["msg"]
    assert "password authentication" in msg and "failed" in msg, msg
    assert "postgres_replication_password" in msg and "nothing was changed" in msg, msg
    assert pair["base"]["primary_host"] in msg
    after = dict(files=top_files(standby, pair["data_dir"]), passfile=sha256(standby, pair["passfile"]),
                 primary=primary_state(primary), receiver=receiver_pid(standby))
    assert after == before
    assert standby_streams(primary) == "streaming"
    assert_no_password(raw)
    # no temporary passfile left behind in the owner's home
    assert not sh(standby, "find /var/lib/postgresql -maxdepth 1 -name '.hotstandby-pgpass-*'").strip()


def test_primary_down_gives_a_clear_error_and_changes_nothing(pair, standby, primary):
    service = "postgresql@%s-%s" % (pair["version"], os.path.basename(pair["data_dir"]))
    before = dict(files=top_files(standby, pair["data_dir"]), passfile=sha256(standby, pair["passfile"]))
    sh(primary, "systemctl stop %s", service)
    try:
        result, raw = run_module(pair["base"])
    finally:
        sh(primary, "systemctl start %s", service)
    assert result.get("failed") is True and result["changed"] is False
    msg = result["msg"]
    assert "could not connect to the primary %s:5432" % pair["base"]["primary_host"] in msg, msg
    assert "is the primary up" in msg and "nothing was changed" in msg, msg
    assert dict(files=top_files(standby, pair["data_dir"]), passfile=sha256(standby, pair["passfile"])) == before
    assert_no_password(raw)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and standby_streams(primary) != "streaming":
        time.sleep(1)
    assert standby_streams(primary) == "streaming"


# ---------------------------------------------------------------------------
# foreign data next to the standby
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def foreign(pair, standby):
    path = os.path.join(pair["parent"], "foreign")
    token = uuid.uuid4().hex
    make_foreign_cluster(standby, pair, path, token)
    # the clone into it uses a temporary slot: the standby's own slot stays with the standby
    args = {k: v for k, v in pair["base"].items() if k != "slot"}
    args.update(data_dir=path, application_name="mod-foreign")
    yield dict(path=path, token=token, args=args, tree=tree_state(standby, path))
    sh(standby, "rm -rf %s %s.moved-*", path, path)


def test_foreign_data_refused_by_default(foreign, standby, primary, pair):
    before_primary = primary_state(primary)
    result, raw = run_module(foreign["args"])
    assert result.get("failed") is True and result["changed"] is False
    assert result["case"] == "foreign" and result["moved_to"] is None
    msg = result["msg"]
    assert foreign["path"] in msg and "left untouched" in msg and "existing_data: move_aside" in msg, msg
    assert "hotstandby_marker" not in msg  # it names what it found, not table contents
    assert "not a standby of primary" in msg
    assert tree_state(standby, foreign["path"]) == foreign["tree"]
    assert moved_dirs(standby, pair["parent"], "foreign") == []
    assert primary_state(primary) == before_primary
    assert_no_password(raw)


def test_foreign_data_check_mode_reports_move(foreign, standby, primary):
    before_primary = primary_state(primary)
    result, raw = run_module(dict(foreign["args"], existing_data="move_aside"), check=True, diff=True)
    assert not result.get("failed"), result["msg"]
    assert result["case"] == "foreign" and result["action"] == "clone" and result["changed"] is True
    assert result["moved_to"].startswith(foreign["path"] + ".moved-")
    assert "would clone" in result["msg"]
    assert "will be moved to" in result["diff"]["before"]
    assert "primary_conninfo = " in result["diff"]["after"]
    assert tree_state(standby, foreign["path"]) == foreign["tree"]
    assert not standby.file(result["moved_to"]).exists
    assert primary_state(primary) == before_primary
    assert_no_password(raw)


def test_foreign_data_moved_aside_on_request(foreign, standby, primary, pair):
    try:
        check_foreign_moved_aside(foreign, standby, primary, pair)
    finally:
        sh(standby, "rm -rf %s %s.moved-*", foreign["path"], foreign["path"])


def check_foreign_moved_aside(foreign, standby, primary, pair):
    result, raw = run_module(dict(foreign["args"], existing_data="move_aside"))
    assert not result.get("failed"), result["msg"]
    assert result["changed"] is True and result["case"] == "foreign" and result["action"] == "clone"
    moved = result["moved_to"]
    assert moved and moved.startswith(foreign["path"] + ".moved-")
    assert moved_dirs(standby, pair["parent"], "foreign") == [moved]
    # the moved copy is the old cluster, file for file (a rename keeps mtimes)
    assert tree_state(standby, moved) == foreign["tree"]
    # ... and still a working cluster holding the marker row
    assert read_marker(standby, pair, moved) == foreign["token"]
    # the data directory is now a clone of the primary in standby mode
    sysid = sh(standby, f"{pair['bin']}/pg_controldata %s | sed -n 's/^Database system identifier: *//p'",
               foreign["path"]).strip()
    assert sysid == primary_state(primary)["sysid"]
    assert standby.file(os.path.join(foreign["path"], "standby.signal")).exists
    assert result["verified"] is True and result["bytes"] > 0
    assert not standby.file(os.path.join(pair["parent"], ".foreign.hotstandby-staging")).exists
    assert_no_password(raw)
    # a clone with a temporary slot leaves no slot behind
    assert primary_state(primary)["slots"] == f"{pair['slot']}:physical"


# ---------------------------------------------------------------------------
# interrupted clone
# ---------------------------------------------------------------------------

def basebackup_processes(standby, target, procs=None):
    """(pid, ppid) of the pg_basebackup processes writing into target."""
    return basebackups(standby, target, procs)


def module_of(table, bb):
    """The pid of the module process that runs the main pg_basebackup of bb (None if there is none yet).

    module (python) -> runuser -> pg_basebackup -> its WAL streaming child
    """
    pids = {pid for pid, dummy in bb}
    module_pid = None
    for dummy, ppid in bb:
        if ppid not in pids:
            up = table.get(ppid)
            if up and up.argv and os.path.basename(up.argv[0]) == "runuser":
                module_pid = up.ppid
            elif up:
                module_pid = ppid
    return module_pid


def exec_root(table, pid):
    """The process docker exec started (its parent is 0 inside the container) that pid descends from."""
    while pid in table and table[pid].ppid != 0:
        pid = table[pid].ppid
    return pid


# kill a process group inside the container (no shell's kill builtin: dash has no "--")
KILLPG = "import os, signal, sys; os.killpg(int(sys.argv[1]), signal.SIGKILL)"


@pytest.fixture(scope="module")
def big_primary(primary, pair):
    """Enough data on the primary that a rate-limited clone takes several seconds."""
    sh(primary, "runuser -u postgres -- createdb modbench 2>/dev/null || true")
    sh(primary, f"runuser -u postgres -- {pair['bin']}/pgbench -q -i -s 8 modbench >/dev/null 2>&1")
    return int(psql(primary, "SELECT sum(pg_database_size(oid)) FROM pg_database"))


def test_interrupted_clone_fails_clearly_and_leaves_nothing(big_primary, pair, standby, primary):
    path = os.path.join(pair["parent"], "interrupted")
    staging = os.path.join(pair["parent"], ".interrupted.hotstandby-staging")
    target = os.path.join(staging, "data")
    args = dict(pair["base"], data_dir=path, slot="mod_interrupted",
                application_name="mod-interrupted", max_rate="8M")
    # the roles own slots: the module uses the one made for it and never creates or drops one
    psql(primary, "SELECT pg_create_physical_replication_slot('mod_interrupted', true) "
                  "WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'mod_interrupted')")
    before_slots = primary_state(primary)["slots"]
    proc, run_dir = start_module(args)
    try:
        victim = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            procs = basebackup_processes(standby, target)
            pids = {pid for pid, _cmd in procs}
            size = standby.run("du -sm %s", target)
            copied = int(size.stdout.split()[0]) if size.rc == 0 and size.stdout else 0
            # the main pg_basebackup (its WAL streaming child has it as parent); mid-copy: some data is there
            parents = [p for p, pp in procs if pp not in pids]
            if parents and copied >= 24:
                victim = parents[0]
                break
            time.sleep(0.5)
        assert victim, f"no pg_basebackup copying into {target} seen (primary holds {big_primary} bytes)"
        # the slot exists while the clone runs
        assert "mod_interrupted" in primary_state(primary)["slots"]
        sh(standby, "kill -KILL %s", str(victim))
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result, raw = _parse(run_dir, stdout, stderr)
    assert result.get("failed") is True, result
    msg = result["msg"]
    assert "cloning failed" in msg and f"{path} was not changed" in msg, msg
    assert "killed by SIGKILL" in msg, msg
    assert "dropped" not in msg, msg
    assert result["changed"] is False
    # nothing left: no data directory, no staging directory, no WAL streamer, no slot
    assert not standby.file(path).exists
    assert not standby.file(staging).exists
    assert basebackup_processes(standby, target) == []
    assert primary_state(primary)["slots"] == before_slots
    assert_no_password(raw)


def test_rerun_after_interrupted_clone_converges(big_primary, pair, standby, primary):
    """A clone interrupted while pg_basebackup copies, the module's whole process group killed (as when the
    session that runs it is lost), leaves its staging directory behind; the next run removes the leftover and
    clones into the same data directory with the same slot, and a run after it changes nothing."""
    path = os.path.join(pair["parent"], "interrupted")
    staging = os.path.join(pair["parent"], ".interrupted.hotstandby-staging")
    lock = os.path.join(pair["parent"], ".interrupted.hotstandby-lock")
    target = os.path.join(staging, "data")
    # the clone's own slot, made beforehand as the roles make a standby's slot (so the test does not depend on
    # whether the module may create slots)
    args = dict(pair["base"])
    args.update(data_dir=path, slot="mod_interrupted", application_name="mod-interrupted")
    psql(primary, "SELECT pg_create_physical_replication_slot('mod_interrupted', true) "
                  "WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'mod_interrupted')")
    try:
        proc, dummy = start_module(dict(args, max_rate="8M"))
        try:
            victim = table = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                table = processes(standby)
                size = standby.run("du -sm %s", target)
                copied = int(size.stdout.split()[0]) if size.rc == 0 and size.stdout.strip() else 0
                victim = module_of(table, basebackup_processes(standby, target, table))
                if victim and copied >= 16:  # mid-copy: some data is there
                    break
                victim = None
                time.sleep(0.5)
            assert victim, f"no pg_basebackup copying into {target} seen (primary holds {big_primary} bytes)"
            comm = sh(standby, "tr '\\0' ' ' < /proc/%s/cmdline", str(victim))
            assert "python" in comm, comm
            # the module's process group is its docker exec's: every process in it descends from that exec
            assert victim in table, (victim, table)
            pgid, root = table[victim].pgid, exec_root(table, victim)
            group = [pid for pid, p in table.items() if p.pgid == pgid]
            assert pgid > 1 and root != 1 and {exec_root(table, pid) for pid in group} == {root}, (pgid, root, group)
            sh(standby, "python3 -c %s %s", KILLPG, str(pgid))
            proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        # interrupted for real: the staging directory (with its marker) is left, the data directory is not there
        assert standby.file(os.path.join(staging, "HOTSTANDBY_STAGING")).exists
        assert not standby.file(path).exists

        result, raw = run_module(args)
        assert not result.get("failed"), result["msg"]
        assert result["changed"] is True and result["case"] == "missing" and result["action"] == "clone"
        assert result["verified"] is True
        assert result["cleaned_staging"] is True  # the interrupted run's leftover was removed first
        assert not standby.file(staging).exists
        assert basebackup_processes(standby, target) == []
        assert standby.file(os.path.join(path, "standby.signal")).exists
        assert sh(standby, "stat -c %%U:%%a %s", path).strip() == "postgres:700"
        # the slot of the interrupted clone is the clone's slot, the only new one
        assert primary_state(primary)["slots"] == ",".join(sorted([f"{pair['slot']}:physical",
                                                                   "mod_interrupted:physical"]))
        # no temporary passfile of the killed run is left next to the passfile
        assert not sh(standby, "find %s -maxdepth 1 -name '.hotstandby-pgpass-*'",
                      os.path.dirname(pair["passfile"])).strip()
        # a second run is a no-op on the clone
        again, dummy = run_module(args)
        assert again["changed"] is False and again["case"] == "standby" and again["action"] == "none"
        assert_no_password(raw)
    finally:
        sh(standby, "rm -rf %s %s %s", path, staging, lock)
        psql(primary, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                      "WHERE slot_name = 'mod_interrupted' AND NOT active")


def test_killed_module_leftover_is_cleaned_by_the_next_run(pair, standby, primary):
    """The module itself dies (not only pg_basebackup): its staging directory survives; the next run removes it."""
    path = os.path.join(pair["parent"], "orphaned")
    staging = os.path.join(pair["parent"], ".orphaned.hotstandby-staging")
    target = os.path.join(staging, "data")
    args = {k: v for k, v in pair["base"].items() if k != "slot"}
    args.update(data_dir=path, application_name="mod-orphaned", max_rate="8M")
    proc, dummy = start_module(args)
    try:
        deadline = time.monotonic() + 120
        module_pid = None
        while time.monotonic() < deadline and proc.poll() is None:
            table = processes(standby)
            module_pid = module_of(table, basebackup_processes(standby, target, table))
            if module_pid:
                break
            time.sleep(0.5)
        assert module_pid, "the clone did not start"
        comm = sh(standby, "tr '\\0' ' ' < /proc/%s/cmdline", str(module_pid))
        assert "python" in comm, comm
        sh(standby, "kill -KILL %s", str(module_pid))
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    try:
        assert standby.file(staging).exists  # left behind by the killed run, with its marker
        assert standby.file(os.path.join(staging, "HOTSTANDBY_STAGING")).exists
        args.pop("max_rate")
        result, raw = run_module(args)
        assert not result.get("failed"), result["msg"]
        assert result["cleaned_staging"] is True and result["action"] == "clone"
        assert not standby.file(staging).exists
        assert basebackup_processes(standby, target) == []
        assert standby.file(os.path.join(path, "standby.signal")).exists
        assert primary_state(primary)["slots"] == f"{pair['slot']}:physical"
        assert_no_password(raw)
    finally:
        sh(standby, "rm -rf %s %s", path, staging)


def test_pair_still_streams(pair, primary, standby):
    token = uuid.uuid4().hex
    psql(primary, "CREATE TABLE IF NOT EXISTS module_verify (token text)")
    psql(primary, f"INSERT INTO module_verify VALUES ('{token}')")
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline and seen != token:
        seen = standby.run(f"runuser -u postgres -- psql -XAtq -c \"SELECT token FROM module_verify "
                           f"WHERE token = '{token}'\"").stdout.strip()
        time.sleep(0.5)
    assert seen == token
    assert standby_streams(primary) == "streaming"
    assert primary_state(primary)["slots"] == f"{pair['slot']}:physical"
    # nothing left next to the data directory but what converge left there
    assert sh(standby, "ls -A %s", pair["parent"]).split() == pair["siblings"]
