"""Day two on a primary and two standbys: what pg_replication_info and status.yml say, a standby removed from
the inventory, and a stale inventory after a standby was promoted by hand.

The tests run in file order and share the pair converge built; the last ones change it for good (a standby
leaves the inventory, another is promoted). Every assertion reads the servers or the playbooks' own output.
"""
import json
import os
import re
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

from labhost import (ansible_env, cluster, dock, inventory_file, playbook_cmd, psql, run_playbook, sh, tree_state,
                     wait_for)

PRIMARY, STANDBY1, STANDBY2 = "dt-primary", "dt-standby1", "dt-standby2"
HOSTS = (PRIMARY, STANDBY1, STANDBY2)
WORK_DIR = tempfile.mkdtemp(prefix="hotstandby-daytwo-")
SITE, STATUS = "hotstandby.postgresql.site", "hotstandby.postgresql.status"
PASSWORD = "molecule-test-only-not-a-secret"

INFO_PLAYBOOK = os.path.join(WORK_DIR, "info.yml")
with open(INFO_PLAYBOOK, "w", encoding="utf-8") as _f:
    _f.write("""
- name: Read pg_replication_info on one node and keep its result
  hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: Read the replication state
      hotstandby.postgresql.pg_replication_info:
        login_unix_socket: /var/run/postgresql
      become: true
      become_user: postgres
      register: info
    - name: Keep the module's own result
      ansible.builtin.copy:
        content: "{{ info | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      delegate_to: localhost
      check_mode: false
""")

CLONE_PLAYBOOK = os.path.join(WORK_DIR, "clone.yml")
with open(CLONE_PLAYBOOK, "w", encoding="utf-8") as _f:
    _f.write("""
- name: A slow clone of the primary into a scratch directory on a standby
  hosts: "{{ target }}"
  gather_facts: false
  become: true
  tasks:
    - name: Clone
      hotstandby.postgresql.pg_basebackup: "{{ clone_args }}"
""")


def info(name):
    """pg_replication_info's result on a node (its registered result)."""
    path = os.path.join(WORK_DIR, f"info-{uuid.uuid4().hex[:8]}.json")
    proc = subprocess.run(playbook_cmd(INFO_PLAYBOOK, "-e", f"target={name}", "-e", f"result_file={path}"),
                          env=ansible_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def status(*args, inventories=None):
    return run_playbook(playbook_cmd(STATUS, *args, inventories=inventories), timeout=300, name="status.yml")


def site(*args, inventories=None):
    run = run_playbook(playbook_cmd(SITE, *args, inventories=inventories), timeout=900, name="site.yml")
    assert PASSWORD not in run.output
    return run


def lsn(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def row_of(result, name):
    rows = [r for r in result["replication"] if r["application_name"] == name]
    assert len(rows) == 1, result["replication"]
    return rows[0]


def inventory_without(*names, swap=False):
    """The scenario's inventory less the given standbys (swap: the first standby is the primary instead)."""
    with open(inventory_file(), encoding="utf-8") as f:
        inv = yaml.safe_load(f)
    # molecule writes the groups at the top level (older layouts: under all.children)
    children = (inv.get("all") or {}).get("children") or inv
    for name in names:
        children["postgres_standby"]["hosts"].pop(name, None)
    if swap:
        children["postgres_master"]["hosts"], children["postgres_standby"]["hosts"] = (
            {STANDBY1: children["postgres_standby"]["hosts"].pop(STANDBY1)},
            dict(children["postgres_master"]["hosts"], **children["postgres_standby"]["hosts"]))
    # molecule keeps the scenario's group_vars beside its inventory file: they travel with the copy
    group_vars = os.path.join(os.path.dirname(inventory_file()), "group_vars")
    for name in sorted(os.listdir(group_vars)) if os.path.isdir(group_vars) else []:
        with open(os.path.join(group_vars, name), encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
        group = os.path.splitext(name)[0]
        target = inv.setdefault("all", {}) if group == "all" else children.setdefault(group, {})
        target.setdefault("vars", {}).update(values)
    path = os.path.join(WORK_DIR, f"inventory-{uuid.uuid4().hex[:8]}.yml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(inv, f)
    return [path]


def start_time(host):
    return psql(host, "SELECT pg_postmaster_start_time()")


def moved_dirs(host):
    c = cluster(host)
    return sorted(sh(host, "find %s -maxdepth 1 -name '*.moved-*' -o -maxdepth 1 -name '*.diverged*'",
                     c["parent"]).split())


@pytest.fixture(scope="module")
def nodes():
    return dict((name, dock(name)) for name in HOSTS)


# --- pg_replication_info ------------------------------------------------------------

def test_module_on_the_primary(nodes):
    result = info(PRIMARY)
    assert result["changed"] is False and result["connected"] is True
    assert result["role"] == "primary" and result["in_recovery"] is False
    assert isinstance(result["timeline"], int) and result["timeline"] >= 1
    assert re.match(r"^[0-9A-F]+/[0-9A-F]+$", result["current_wal_lsn"])
    assert result["system_identifier"] == psql(nodes[PRIMARY], "SELECT system_identifier FROM pg_control_system()")
    for name in (STANDBY1, STANDBY2):
        row = row_of(result, name)
        assert row["state"] == "streaming", row
        assert isinstance(row["replay_lag_bytes"], int) and row["replay_lag_bytes"] >= 0, row
        assert row["sync_state"] == "async"
    slots = dict((s["slot_name"], s) for s in result["slots"])
    for slot in ("dt_standby1", "dt_standby2"):
        assert slots[slot]["active"] is True and slots[slot]["wal_status"] in ("reserved", "extended"), slots[slot]
        assert isinstance(slots[slot]["retained_bytes"], int)
    assert result["wal_receiver"] is None and result["replay_lsn"] is None
    assert result["synchronous_standby_names"] == ""


def test_module_on_a_standby(nodes):
    result = info(STANDBY1)
    assert result["role"] == "standby" and result["in_recovery"] is True
    receiver = result["wal_receiver"]
    assert receiver["status"] == "streaming" and receiver["sender_port"] == 5432, receiver
    assert receiver["slot_name"] == "dt_standby1"
    assert result["replay_paused"] is False
    assert lsn(result["receive_lsn"]) >= lsn(result["replay_lsn"])
    assert "password" not in (result["primary_conninfo"] or "").replace("passfile", "")
    assert "password" not in json.dumps(receiver).replace("passfile", "")
    assert result["current_wal_lsn"] is None and result["replication"] == []


@pytest.fixture(scope="module")
def paused(nodes):
    """Replay paused on STANDBY1 while the primary writes: its replay lags, its state stays streaming."""
    psql(nodes[STANDBY1], "SELECT pg_wal_replay_pause()")
    psql(nodes[PRIMARY], "CREATE TABLE dt_fill AS SELECT g, md5(g::text) AS pad FROM generate_series(1, 50000) g")
    yield
    # (by the end of the module the standby may have been promoted: no recovery to resume)
    psql(nodes[STANDBY1], "SELECT pg_wal_replay_resume()", check=False)


def test_replay_paused_shows_byte_lag_and_stays_streaming(paused, nodes):
    def lagging():
        row = row_of(info(PRIMARY), STANDBY1)
        return row["state"] == "streaming" and row["replay_lag_bytes"] > 1000000
    wait_for("the paused standby lagging on the primary", lagging, 60, 2)
    row = row_of(info(PRIMARY), STANDBY1)
    assert row["state"] == "streaming" and row["replay_lag_bytes"] > 1000000, row
    assert row["write_lag_bytes"] == 0 or row["write_lag_bytes"] < row["replay_lag_bytes"]
    standby = info(STANDBY1)
    assert standby["replay_paused"] is True and standby["replay_lag_bytes"] > 1000000


def test_status_fails_on_replay_past_the_lag_bound(paused):
    run = status("-e", json.dumps({"postgres_standby_max_lag_bytes": 100000}))
    assert run.rc != 0, run.tail()
    assert f"{STANDBY1} is LAGGING" in run.output, run.tail()


def test_lag_returns_to_zero_after_resume(nodes):
    psql(nodes[STANDBY1], "SELECT pg_wal_replay_resume()")
    wait_for("the standby caught up", lambda: row_of(info(PRIMARY), STANDBY1)["replay_lag_bytes"] == 0, 60, 2)
    assert info(STANDBY1)["replay_paused"] is False


def test_status_on_a_healthy_pair(nodes):
    run = status()
    assert run.rc == 0, run.tail()
    for name in HOSTS:
        assert re.search(rf"^\s*\S*\s*ok\s+{name}\s", run.output, re.M) or f"ok  {name}" in run.output, run.tail()
    assert "No problems" in run.output
    assert "target_session_attrs=read-write" in run.output
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap
    # kept for the README's example and the wall time on 1 primary + 2 standbys
    with open(os.path.join(tempfile.gettempdir(), "hotstandby-daytwo-status.log"), "w", encoding="utf-8") as f:
        f.write(f"status.yml on 1 primary + 2 standbys: {run.seconds:.1f} s\n{run.output}")


def test_status_as_json(nodes):
    run = run_playbook(playbook_cmd(STATUS, "-e", "postgres_status_format=json"),
                       env=ansible_env(json_results=True), timeout=300, name="status.yml json")
    assert run.rc == 0, run.tail()
    parsed = []
    for line in run.output.splitlines():
        if '=> {"msg": ' in line:
            msg = json.loads(line.split("=> ", 1)[1])["msg"]
            doc = json.loads(msg) if isinstance(msg, str) and msg.startswith("{") else msg
            if isinstance(doc, dict) and "rows" in doc:
                parsed.append(doc)
    assert parsed, run.tail()
    doc = parsed[-1]
    assert sorted(r["host"] for r in doc["rows"]) == sorted(HOSTS)
    assert doc["problems"] == []


def test_slot_retains_wal_while_its_standby_is_stopped_and_status_fails(nodes):
    c = cluster(nodes[STANDBY2])
    sh(nodes[STANDBY2], "systemctl stop %s", c["service"])
    try:
        before = [s for s in info(PRIMARY)["slots"] if s["slot_name"] == "dt_standby2"][0]["retained_bytes"]
        psql(nodes[PRIMARY], "INSERT INTO dt_fill SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
        after = [s for s in info(PRIMARY)["slots"] if s["slot_name"] == "dt_standby2"][0]
        assert after["active"] is False and after["retained_bytes"] > before + 1000000, (before, after)
        run = status()
        assert run.rc != 0, run.tail()
        assert f"{STANDBY2} is NOT STREAMING" in run.output, run.tail()
    finally:
        sh(nodes[STANDBY2], "systemctl start %s", c["service"])
    wait_for("standby2 streaming again", lambda: row_of(info(PRIMARY), STANDBY2)["state"] == "streaming", 60, 2)


# --- a clone in progress ------------------------------------------------------------

def test_status_shows_a_running_clone_with_its_progress(nodes):
    primary = nodes[PRIMARY]
    sh(primary, "runuser -u postgres -- createdb dt_bench && runuser -u postgres -- "
                "/usr/lib/postgresql/%s/bin/pgbench -q -i -s 25 dt_bench >/dev/null 2>&1", cluster(primary)["version"])
    scratch = os.path.join(cluster(nodes[STANDBY2])["parent"], "dt_scratch")
    address = sh(primary, "hostname -I").split()[0]
    args = dict(data_dir=scratch, primary_host=address, user="replicator", password=PASSWORD, max_rate="8M",
                application_name=STANDBY2, verify=False)
    path = os.path.join(WORK_DIR, "clone-vars.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dict(target=STANDBY2, clone_args=args), f)
    proc = subprocess.Popen(playbook_cmd(CLONE_PLAYBOOK, "-e", "@" + path), env=ansible_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("the clone streaming", lambda: any(
            p["phase"] == "streaming database files" for p in info(PRIMARY)["basebackup_progress"]), 90, 1)
        run = status()
        found = re.findall(rf"([0-9.]+)% from {PRIMARY}", run.output)
        assert found, run.tail()
        assert 0 < float(found[0]) < 100, found
        assert f"{STANDBY2} is being cloned from {PRIMARY}" in run.output
    finally:
        proc.kill()
        proc.communicate()
        # ([p]: the pattern does not match this shell's own command line)
        sh(nodes[STANDBY2], "pkill -f '[p]g_basebackup.*dt_scratch' || true")
        time.sleep(2)
        sh(nodes[STANDBY2], "rm -rf %s %s/.dt_scratch.hotstandby-*", scratch, os.path.dirname(scratch))
        psql(primary, "DROP DATABASE dt_bench")


# --- a standby removed from the inventory ---------------------------------------------

HAND_LINE = "host replication replicator 10.99.99.99/32 scram-sha-256"


@pytest.fixture(scope="module")
def hand_made(nodes):
    primary = nodes[PRIMARY]
    c = cluster(primary)
    psql(primary, "SELECT pg_create_physical_replication_slot('hand_made_slot')")
    # as an operator would: echo >> (the file must end with a newline for that to be a line of its own)
    sh(primary, "echo %s >> %s", HAND_LINE, os.path.join(c["conf_dir"], "pg_hba.conf"))
    return os.path.join(c["conf_dir"], "pg_hba.conf")


def slots(host):
    return psql(host, "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots").split(",")


def test_a_removed_standby_that_still_streams_is_reported_and_kept(hand_made, nodes):
    run = site(inventories=inventory_without(STANDBY2))
    assert run.rc == 0, run.tail()
    assert f"{STANDBY2} is no longer a standby of {PRIMARY} in the inventory but still streams" in run.output
    assert "dt_standby2" in slots(nodes[PRIMARY])
    assert f"replication for {STANDBY2}" in sh(nodes[PRIMARY], "cat %s", hand_made)


def test_a_removed_standby_loses_its_slot_and_line_but_hand_made_ones_stay(hand_made, nodes):
    sh(nodes[STANDBY2], "systemctl stop %s", cluster(nodes[STANDBY2])["service"])
    run = site(inventories=inventory_without(STANDBY2))
    assert run.rc == 0, run.tail()
    names = slots(nodes[PRIMARY])
    assert "dt_standby2" not in names and "hand_made_slot" in names and "dt_standby1" in names, names
    hba = sh(nodes[PRIMARY], "cat %s", hand_made)
    record = sh(nodes[PRIMARY], "cat %s", os.path.join(os.path.dirname(hand_made), "hotstandby-downstream.json"))
    removal = run.output[run.output.find("Remove the pg_hba lines of removed standbys"):][:1500]
    assert f"replication for {STANDBY2}" not in hba, (hba, record, removal)
    assert HAND_LINE in hba and f"replication for {STANDBY1}" in hba, hba
    assert STANDBY2 not in record, record
    assert psql(nodes[PRIMARY], "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL") == "0"
    again = site(inventories=inventory_without(STANDBY2))
    assert again.rc == 0 and again.counts(PRIMARY)["changed"] == 0, again.tail()


# --- a stale inventory ------------------------------------------------------------------

@pytest.fixture(scope="module")
def promoted(nodes):
    """STANDBY1 promoted by hand and written to, the old primary still running: a split brain."""
    c = cluster(nodes[STANDBY1])
    sh(nodes[STANDBY1], "pg_ctlcluster %s %s promote", c["version"], c["name"])
    wait_for("the promoted standby writable", lambda: psql(nodes[STANDBY1], "SELECT pg_is_in_recovery()") == "f")
    token = uuid.uuid4().hex
    psql(nodes[STANDBY1], f"CREATE TABLE dt_after_promote (t text); INSERT INTO dt_after_promote VALUES ('{token}')")
    return token


def snapshot(nodes):
    state = {}
    for name in (PRIMARY, STANDBY1):
        c = cluster(nodes[name])
        state[name] = dict(conf=tree_state(nodes[name], c["conf_dir"], hashes=True), moved=moved_dirs(nodes[name]),
                           status=c["status"])
        if "online" in c["status"]:
            state[name]["started"] = start_time(nodes[name])
    return state


def test_site_with_the_old_inventory_refuses_the_split_brain_and_changes_nothing(promoted, nodes):
    before = snapshot(nodes)
    run = site(inventories=inventory_without(STANDBY2))
    assert run.rc != 0, run.tail()
    assert "SPLIT BRAIN" in run.output and PRIMARY in run.output and STANDBY1 in run.output
    assert f"{STANDBY1} is in postgres_standby but is a running primary of the same system as {PRIMARY}" \
        in run.output, run.tail()
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap
    assert snapshot(nodes) == before
    assert psql(nodes[STANDBY1], "SELECT t FROM dt_after_promote") == promoted


def test_fixed_inventory_keeps_the_new_primary_and_rejoins_the_old_one(promoted, nodes):
    """With the inventory fixed, site.yml rejoins the stopped old primary as a standby of the one promoted by hand
    (pg_rejoin: rewind, or nothing to undo), without restarting the new primary."""
    c = cluster(nodes[PRIMARY])
    sh(nodes[PRIMARY], "systemctl stop %s", c["service"])
    started = start_time(nodes[STANDBY1])
    run = site(inventories=inventory_without(STANDBY2, swap=True))
    assert run.rc == 0, run.tail()
    assert re.search(re.escape(PRIMARY) + r": [^\n]*; method (none|rewind)", run.output), run.tail()
    assert start_time(nodes[STANDBY1]) == started  # the new primary was not restarted
    assert psql(nodes[STANDBY1], "SELECT pg_is_in_recovery()") == "f"
    wait_for("the old primary in recovery",
             lambda: psql(nodes[PRIMARY], "SELECT pg_is_in_recovery()", check=False) == "t", 60)
    wait_for("the promoted standby's row on the old primary",
             lambda: psql(nodes[PRIMARY], "SELECT t FROM dt_after_promote", check=False) == promoted, 60)
    assert psql(nodes[STANDBY1], "SELECT t FROM dt_after_promote") == promoted
