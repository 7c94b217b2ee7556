"""The pg_basebackup module's real behaviour, against the real primary built by converge.

Every test calls the module the way a user would (``ansible -m hotstandby.postgresql.pg_basebackup``
with the molecule inventory, so the collection comes from HOTSTANDBY_COLLECTIONS_PATH: the clone
under ``make molecule``, the installed artifact under ``make test``) and then reads the real state
of both containers (files, catalog views, processes) through ``docker exec``.

The tests share the containers and run in file order:
  check/diff mode -> re-run copies nothing -> wrong password -> foreign data refused, then moved
  aside -> interrupted clone, then re-run -> the pair still streams.
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
from labhost import dock, psql, sh

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
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


def _ansible_env():
    env = dict(os.environ)
    collections = os.environ.get("HOTSTANDBY_COLLECTIONS_PATH")
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    env.update(ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return env


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
    cmd = ["ansible-playbook", "-i", INVENTORY, PLAYBOOK, "-e", "@" + os.path.join(run_dir, "vars.json")]
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
    proc = subprocess.run(cmd, env=_ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    return _parse(run_dir, proc.stdout, proc.stderr)


def start_module(args):
    """Start the module in the background (for the interrupted clones); returns (process, run_dir)."""
    cmd, run_dir = _module_cmd(args)
    return subprocess.Popen(cmd, env=_ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True), run_dir


@pytest.fixture(scope="module")
def primary():
    return dock(PRIMARY)


@pytest.fixture(scope="module")
def standby():
    return dock(STANDBY)


@pytest.fixture(scope="module")
def pair(primary, standby):
    """What the site playbook configured: the module arguments that reproduce the standby's own clone."""
    lines = sh(standby, "pg_lsclusters -h").split()
    version, data_dir = lines[0], lines[5]
    conninfo = psql(standby, "SHOW primary_conninfo")
    fields = dict(f.split("=", 1) for f in conninfo.split() if "=" in f)
    slot = psql(standby, "SHOW primary_slot_name")
    base = dict(data_dir=data_dir, primary_host=fields["host"], primary_port=int(fields.get("port", 5432)),
                user=fields["user"], password=PASSWORD_VAR, slot=slot, create_slot=True,
                application_name=STANDBY, bin_dir=f"/usr/lib/postgresql/{version}/bin")
    parent = os.path.dirname(data_dir)
    siblings = sh(standby, "ls -A %s", parent).split()
    return dict(siblings=siblings, version=version, data_dir=data_dir, parent=parent, base=base, slot=slot,
                bin=f"/usr/lib/postgresql/{version}/bin", passfile=fields["passfile"])


def files_state(host, path):
    """name -> (mtime, size, inode) of the top-level files of a directory, plus the directory's inode.

    The top-level files (PG_VERSION, postgresql.auto.conf, standby.signal, backup_manifest, ...) are
    those a clone or a settings rewrite replaces; a running standby does not touch them.
    """
    out = sh(host, "find %s -maxdepth 1 -type f -printf '%%P %%T@ %%s %%i\\n'; stat -c 'DIR %%i' %s", path, path)
    return sorted(out.splitlines())


def tree_state(host, path):
    """Every entry below path with type, mode, size and mtime (for directories no server runs in)."""
    return sorted(sh(host, "find %s -printf '%%P %%y %%m %%s %%T@\\n'", path).splitlines())


def sha(host, path):
    return sh(host, "sha256sum %s", path).split()[0]


def primary_state(primary):
    return dict(
        slots=psql(primary, "SELECT string_agg(slot_name || ':' || slot_type, ',' ORDER BY slot_name) "
                   "FROM pg_replication_slots"),
        role=psql(primary, "SELECT md5(rolpassword) || rolreplication::text || rolcanlogin::text "
                  "FROM pg_authid WHERE rolname = 'replicator'"),
        hba=psql(primary, "SELECT md5(string_agg(line_number || type || array_to_string(database, ',') "
                 "|| coalesce(address, ''), '|' ORDER BY line_number)) FROM pg_hba_file_rules"),
        sysid=psql(primary, "SELECT system_identifier FROM pg_control_system()"),
        recovery=psql(primary, "SELECT pg_is_in_recovery()"))


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
    before = files_state(standby, pair["data_dir"]), sha(standby, pair["passfile"]), primary_state(primary)
    result, raw = run_module(pair["base"], check=True, diff=True)
    assert not result.get("failed"), result["msg"]
    assert result["case"] == "standby" and result["action"] == "none" and result["changed"] is False
    assert result["system_identifier"] == primary_state(primary)["sysid"]
    diff = result["diff"]
    assert "standby.signal: present" in diff["after"] and "primary_conninfo = " in diff["after"]
    assert f"primary_slot_name = '{pair['slot']}'" in diff["after"]
    assert "passfile=" in diff["after"] and "password" not in diff["after"].replace("passfile", "")
    assert_no_password(raw)
    assert (files_state(standby, pair["data_dir"]), sha(standby, pair["passfile"]), primary_state(primary)) == before


def test_rerun_copies_nothing(pair, standby, primary):
    before = dict(files=files_state(standby, pair["data_dir"]), passfile=sha(standby, pair["passfile"]),
                  primary=primary_state(primary), receiver=receiver_pid(standby),
                  moved=moved_dirs(standby, pair["parent"], os.path.basename(pair["data_dir"])))
    result, raw = run_module(pair["base"], diff=True)
    assert not result.get("failed"), result["msg"]
    assert result["changed"] is False
    assert result["case"] == "standby" and result["action"] == "none"
    assert result["bytes"] == 0 and result["moved_to"] is None and result["slot_created"] is False
    assert "nothing to do" in result["msg"]
    after = dict(files=files_state(standby, pair["data_dir"]), passfile=sha(standby, pair["passfile"]),
                 primary=primary_state(primary), receiver=receiver_pid(standby),
                 moved=moved_dirs(standby, pair["parent"], os.path.basename(pair["data_dir"])))
    assert after == before  # same directory inode, same file mtimes, same WAL receiver: nothing was copied
    assert not standby.file(os.path.join(pair["parent"], "." + os.path.basename(pair["data_dir"])
                                         + ".hotstandby-staging")).exists
    assert_no_password(raw)


def test_wrong_password_changes_nothing(pair, standby, primary):
    before = dict(files=files_state(standby, pair["data_dir"]), passfile=sha(standby, pair["passfile"]),
                  primary=primary_state(primary), receiver=receiver_pid(standby))
    result, raw = run_module(dict(pair["base"], password=WRONG_PASSWORD))
    assert result.get("failed") is True
    assert result["changed"] is False
    msg = result["msg"]
    assert "password authentication" in msg and "failed" in msg, msg
    assert "postgres_replication_password" in msg and "nothing was changed" in msg, msg
    assert pair["base"]["primary_host"] in msg
    after = dict(files=files_state(standby, pair["data_dir"]), passfile=sha(standby, pair["passfile"]),
                 primary=primary_state(primary), receiver=receiver_pid(standby))
    assert after == before
    assert standby_streams(primary) == "streaming"
    assert_no_password(raw)
    # no temporary passfile left behind in the owner's home
    assert not sh(standby, "find /var/lib/postgresql -maxdepth 1 -name '.hotstandby-pgpass-*'").strip()


def test_primary_down_gives_a_clear_error_and_changes_nothing(pair, standby, primary):
    service = "postgresql@%s-%s" % (pair["version"], os.path.basename(pair["data_dir"]))
    before = dict(files=files_state(standby, pair["data_dir"]), passfile=sha(standby, pair["passfile"]))
    sh(primary, "systemctl stop %s", service)
    try:
        result, raw = run_module(pair["base"])
    finally:
        sh(primary, "systemctl start %s", service)
    assert result.get("failed") is True and result["changed"] is False
    msg = result["msg"]
    assert "could not connect to the primary %s:5432" % pair["base"]["primary_host"] in msg, msg
    assert "is the primary up" in msg and "nothing was changed" in msg, msg
    assert dict(files=files_state(standby, pair["data_dir"]), passfile=sha(standby, pair["passfile"])) == before
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
    args = {k: v for k, v in pair["base"].items() if k not in ("slot", "create_slot")}
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

def processes(standby):
    """pid -> (ppid, argv) of every process on the host."""
    procs = {}
    for line in standby.run("ps -eo pid=,ppid=,args=").stdout.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3:
            procs[int(fields[0])] = (int(fields[1]), fields[2].split())
    return procs


def basebackup_processes(standby, target, procs=None):
    """(pid, ppid) of the pg_basebackup processes writing into target."""
    procs = processes(standby) if procs is None else procs
    return [(pid, ppid) for pid, (ppid, argv) in procs.items()
            if argv and os.path.basename(argv[0]) == "pg_basebackup" and "-D" in argv
            and argv.index("-D") + 1 < len(argv) and argv[argv.index("-D") + 1] == target]


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
    args = dict(pair["base"], data_dir=path, slot="mod_interrupted", create_slot=True,
                application_name="mod-interrupted", max_rate="8M")
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
    assert 'slot "mod_interrupted" created for the clone was dropped again' in msg, msg
    assert result["changed"] is False
    # nothing left: no data directory, no staging directory, no WAL streamer, no slot
    assert not standby.file(path).exists
    assert not standby.file(staging).exists
    assert basebackup_processes(standby, target) == []
    assert primary_state(primary)["slots"] == before_slots
    assert_no_password(raw)


def test_rerun_after_interrupted_clone_converges(pair, standby, primary):
    path = os.path.join(pair["parent"], "interrupted")
    staging = os.path.join(pair["parent"], ".interrupted.hotstandby-staging")
    args = dict(pair["base"], data_dir=path, slot="mod_interrupted", create_slot=True,
                application_name="mod-interrupted")
    try:
        result, raw = run_module(args)
        assert not result.get("failed"), result["msg"]
        assert result["changed"] is True and result["case"] == "missing" and result["action"] == "clone"
        assert result["verified"] is True and result["slot_created"] is True
        assert result["cleaned_staging"] is False
        assert not standby.file(staging).exists
        assert standby.file(os.path.join(path, "standby.signal")).exists
        assert sh(standby, "stat -c %%U:%%a %s", path).strip() == "postgres:700"
        # the slot the clone created is the only new one; a second run is a no-op on the clone
        assert primary_state(primary)["slots"] == ",".join(sorted([f"{pair['slot']}:physical",
                                                                   "mod_interrupted:physical"]))
        again, dummy = run_module(args)
        assert again["changed"] is False and again["case"] == "standby" and again["action"] == "none"
        assert_no_password(raw)
    finally:
        sh(standby, "rm -rf %s", path)
        psql(primary, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                      "WHERE slot_name = 'mod_interrupted' AND NOT active")


def test_killed_module_leftover_is_cleaned_by_the_next_run(pair, standby, primary):
    """The module itself dies (not only pg_basebackup): its staging directory survives; the next run removes it."""
    path = os.path.join(pair["parent"], "orphaned")
    staging = os.path.join(pair["parent"], ".orphaned.hotstandby-staging")
    target = os.path.join(staging, "data")
    args = {k: v for k, v in pair["base"].items() if k not in ("slot", "create_slot")}
    args.update(data_dir=path, application_name="mod-orphaned", max_rate="8M")
    proc, run_dir = start_module(args)
    try:
        deadline = time.monotonic() + 120
        module_pid = None
        while time.monotonic() < deadline and proc.poll() is None:
            table = processes(standby)
            bb = basebackup_processes(standby, target, table)
            pids = {pid for pid, _cmd in bb}
            # module (python) -> runuser -> pg_basebackup -> its WAL streaming child
            for dummy, ppid in bb:
                if ppid not in pids:
                    up = table.get(ppid)
                    if up and os.path.basename(up[1][0]) == "runuser":
                        module_pid = up[0]
                    elif up:
                        module_pid = ppid
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
