"""Every option of the README's table that one pair can take, set to a non-default value in an INI inventory.

The tests run in file order on two bare containers (opt-opt_primary, opt-opt_standby), with private_role_vars on:
check mode on bare hosts, the build, what each option did on the servers, check mode on the built pair, a
hand-made drift (shown, not changed), the real runs that repair it and then change nothing, and a port change
of the running pair. Every assertion reads the servers (SHOW, pg_lsclusters, pg_stat_replication, files).
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from labhost import ansible_env, dock, playbook_cmd, psql, run_playbook, sh, sha256, wait_for

PLAYBOOK = "hotstandby.postgresql.site"
PRIMARY, STANDBY = "opt-primary", "opt-standby"
# TEST ONLY: throwaway molecule containers, never use elsewhere.
PASSWORD = "options-test-only-Hs7p2-not-a-secret"
VERSION, CLUSTER, USER, SLOT = "15", "prod", "repl_ops", "opt_custom_slot"
DROPIN = f"/etc/postgresql/{VERSION}/{CLUSTER}/conf.d/50-hotstandby.conf"
SYNC_DROPIN = f"/etc/postgresql/{VERSION}/{CLUSTER}/conf.d/60-hotstandby-synchronous.conf"
HBA = f"/etc/postgresql/{VERSION}/{CLUSTER}/pg_hba.conf"
PASSFILE = "/var/lib/postgresql/.pgpass_replication"
LOG = f"/var/log/postgresql/postgresql-{VERSION}-{CLUSTER}.log"
SETTINGS = '{"work_mem": "8MB", "shared_buffers": "48MB"}'  # shared_buffers needs a restart


def address_of(name):
    out = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                          name], check=True, capture_output=True, text=True).stdout.strip()
    assert out, f"no address for {name}"
    return out


def ini_inventory(port, mode="sync"):
    """The INI inventory: [all:vars] values are strings, as users write them."""
    return f"""[postgres_master]
{PRIMARY}

[postgres_standby]
{STANDBY} postgres_standby_slot_name={SLOT} postgres_standby_address={address_of(STANDBY)}

[all:vars]
ansible_connection=community.docker.docker
ansible_python_interpreter=/usr/bin/python3
postgres_replication_password={PASSWORD}
postgres_replication_user={USER}
postgres_version={VERSION}
postgres_cluster_name={CLUSTER}
postgres_port={port}
postgres_listen_addresses=0.0.0.0
postgres_primary_address={PRIMARY}
postgres_settings={SETTINGS}
postgres_master_settings={{"log_min_duration_statement": "250ms"}}
postgres_standby_settings={{"max_standby_streaming_delay": "45s"}}
postgres_max_slot_wal_keep_size=1GB
postgres_max_wal_senders=12
postgres_max_replication_slots=12
postgres_replication_sslmode=verify-full
postgres_tls=true
postgres_tls_lab_ca=true
postgres_synchronous_mode={mode}
postgres_synchronous_count=1
postgres_standby_existing_data=move_aside
postgres_standby_checkpoint=spread
postgres_standby_clone_max_rate=1M
postgres_standby_verify=false
postgres_standby_wait_timeout=240
postgres_standby_clone_timeout=7200
postgres_standby_max_lag_bytes=8388608
postgres_standby_hot_standby_feedback=false
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("options")


def site(workdir, name, *args, port=5433, mode="sync"):
    path = Path(workdir) / "inventory.ini"
    path.write_text(ini_inventory(port, mode))
    env = ansible_env()
    env["ANSIBLE_PRIVATE_ROLE_VARS"] = "True"
    run = run_playbook(playbook_cmd(PLAYBOOK, *args, inventories=[str(path)]), env=env, timeout=900, cwd=workdir,
                       log_path=Path(workdir) / f"{name}.log", name=name, hosts={PRIMARY, STANDBY})
    assert PASSWORD not in run.output
    return run


def assert_changed(run, expected):
    for host in (PRIMARY, STANDBY):
        counts = run.counts(host)
        assert counts, f"{host} has no recap line: {run.tail()}"
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts)
        if expected == 0:
            assert counts["changed"] == 0, f"{host} changed: {counts}\n{run.tail()}"


def show(host, name, port):
    return psql(host, f"SHOW {name}", port=port)


@pytest.fixture(scope="module")
def opt_primary():
    return dock(PRIMARY)


@pytest.fixture(scope="module")
def opt_standby():
    return dock(STANDBY)


def test_check_mode_on_bare_hosts_says_so_and_changes_nothing(workdir, opt_primary, opt_standby):
    run = site(workdir, "check-bare", "--check", "--diff")
    assert run.rc == 0, run.tail()
    assert_changed(run, 0)
    for name in (PRIMARY, STANDBY):
        assert f"Check mode: {name} has no PostgreSQL server yet" in run.output, run.tail()
    for host in (opt_primary, opt_standby):
        assert not host.file("/etc/postgresql").exists
        assert not host.file("/var/lib/postgresql").exists


@pytest.fixture(scope="module")
def built(workdir, opt_primary, opt_standby):
    run = site(workdir, "build")
    assert run.rc == 0, run.tail()
    return run


def test_cluster_name_and_port(built, opt_primary, opt_standby):
    for host, status in ((opt_primary, "online"), (opt_standby, "online,recovery")):
        lines = sh(host, "pg_lsclusters -h").splitlines()
        assert len(lines) == 1, lines  # the named cluster only: Debian's "main" was never made
        assert lines[0].split()[:4] == [VERSION, CLUSTER, "5433", status], lines
        assert show(host, "port", 5433) == "5433"
        assert not host.file(f"/etc/postgresql/{VERSION}/main").exists


def test_settings_took_effect(built, opt_primary, opt_standby):
    for host in (opt_primary, opt_standby):
        assert show(host, "listen_addresses", 5433) == "0.0.0.0"
        assert show(host, "max_wal_senders", 5433) == "12"
        assert show(host, "max_replication_slots", 5433) == "12"
        assert show(host, "max_slot_wal_keep_size", 5433) == "1GB"
        assert show(host, "work_mem", 5433) == "8MB"
        assert show(host, "shared_buffers", 5433) == "48MB"
        assert show(host, "ssl", 5433) == "on"
        assert psql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart", port=5433) == "0"
    assert show(opt_primary, "log_min_duration_statement", 5433) == "250ms"
    assert show(opt_standby, "log_min_duration_statement", 5433) == "-1"
    assert show(opt_standby, "max_standby_streaming_delay", 5433) == "45s"
    assert show(opt_standby, "hot_standby_feedback", 5433) == "off"


def test_replication_uses_the_options(built, opt_primary, opt_standby):
    row = psql(opt_primary, "SELECT r.usename, r.client_addr, r.state, r.sync_state, s.ssl, "
               "(SELECT active_pid FROM pg_replication_slots WHERE slot_name = '%s') = r.pid "
               "FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) "
               "WHERE r.application_name = '%s'" % (SLOT, STANDBY), port=5433)
    assert row.split("|") == [USER, address_of(STANDBY), "streaming", "sync", "t", "t"], row
    assert show(opt_primary, "synchronous_standby_names", 5433) == f'FIRST 1 ("{STANDBY}")'
    conninfo = show(opt_standby, "primary_conninfo", 5433)
    for part in (f"host={PRIMARY}", "port=5433", f"user={USER}", "sslmode=verify-full", f"passfile={PASSFILE}"):
        assert part in conninfo.split(), conninfo
    assert "password" not in conninfo.replace("passfile", "")
    assert show(opt_standby, "primary_slot_name", 5433) == SLOT
    entries = sh(opt_standby, "cat %s", PASSFILE).splitlines()
    assert any(e.startswith(f"{PRIMARY}:5433:replication:{USER}:") for e in entries), len(entries)
    token = os.urandom(8).hex()
    psql(opt_primary, f"CREATE TABLE IF NOT EXISTS opt_rows (t text); INSERT INTO opt_rows VALUES ('{token}')", port=5433)
    wait_for("the row on the standby",
             lambda: psql(opt_standby, f"SELECT count(*) FROM opt_rows WHERE t = '{token}'", port=5433, check=False) == "1")


def test_spread_checkpoint_and_no_verification(built, opt_primary):
    log = sh(opt_primary, "cat %s", LOG)
    starts = [line for line in log.splitlines() if "checkpoint starting:" in line]
    # pg_basebackup's checkpoint: "force wait" when spread, "immediate force wait" when fast
    assert any(line.rstrip().endswith("checkpoint starting: force wait") for line in starts), starts
    assert not any("immediate force wait" in line for line in starts), starts
    assert "verification disabled (verify: false)" in built.output


def test_clone_max_rate_throttles_and_the_wait_shows_progress(built):
    # The play's output while it waited: pg_basebackup --progress figures, not retry lines. Reports come
    # every 10 s; an unthrottled clone of this small primary copies in about a second, so a report caught
    # mid-copy means the 1M limit held the copy back.
    lines = re.findall(rf"{STANDBY}: cloning from {PRIMARY}: (\d+)/(\d+) MB \((\d+)%\)", built.output)
    assert any(0 < int(pct) < 100 for done_mb, total, pct in lines), (lines, built.tail())
    assert all(int(done_mb) <= int(total) for done_mb, total, pct in lines), lines
    assert "FAILED - RETRYING" not in built.output


def test_check_diff_on_the_built_pair_changes_nothing(built, workdir):
    run = site(workdir, "check-built", "--check", "--diff")
    assert run.rc == 0, run.tail()
    assert_changed(run, 0)


@pytest.fixture(scope="module")
def drifted(built, workdir, opt_primary):
    sh(opt_primary, "sed -i \"s/^work_mem = .*/work_mem = '9MB'/\" %s", DROPIN)
    sh(opt_primary, "sed -i '/hotstandby.postgresql: replication for %s/d' %s", STANDBY, HBA)
    before = sha256(opt_primary, DROPIN), sha256(opt_primary, HBA)
    run = site(workdir, "check-drift", "--check", "--diff")
    return dict(run=run, before=before)


def test_drift_is_shown_and_not_changed(drifted, opt_primary):
    run = drifted["run"]
    assert run.rc == 0, run.tail()
    assert run.counts(PRIMARY)["changed"] >= 2, run.counts(PRIMARY)
    assert "-work_mem = '9MB'" in run.output and "+work_mem = '8MB'" in run.output, run.tail()
    assert f"replication for {STANDBY}" in run.output
    assert (sha256(opt_primary, DROPIN), sha256(opt_primary, HBA)) == drifted["before"]
    assert show(opt_primary, "work_mem", 5433) == "8MB"


def test_real_runs_repair_the_drift_then_change_nothing(drifted, workdir, opt_primary):
    run = site(workdir, "repair")
    assert run.rc == 0, run.tail()
    assert "work_mem = '8MB'" in sh(opt_primary, "cat %s", DROPIN)
    assert f"replication for {STANDBY}" in sh(opt_primary, "cat %s", HBA)
    again = site(workdir, "rerun")
    assert again.rc == 0, again.tail()
    assert_changed(again, 0)


def test_port_change_of_the_running_pair_converges(drifted, workdir, opt_primary, opt_standby):
    run = site(workdir, "port-5434", port=5434)
    assert run.rc == 0, run.tail()
    for host, status in ((opt_primary, "online"), (opt_standby, "online,recovery")):
        assert sh(host, "pg_lsclusters -h").split()[:4] == [VERSION, CLUSTER, "5434", status]
    assert "port=5434" in show(opt_standby, "primary_conninfo", 5434).split()
    wait_for("the standby streaming on the new port", lambda: psql(
        opt_primary, f"SELECT state FROM pg_stat_replication WHERE application_name = '{STANDBY}'",
        port=5434, check=False) == "streaming")
    again = site(workdir, "port-5434-rerun", port=5434)
    assert again.rc == 0, again.tail()
    assert_changed(again, 0)


def test_async_mode_removes_the_synchronous_dropin(drifted, workdir, opt_primary):
    """sync -> async: the synchronous drop-in goes (with the write of the main one) and commits stop waiting."""
    assert "synchronous_standby_names" in sh(opt_primary, "cat %s", SYNC_DROPIN)
    run = site(workdir, "async", port=5434, mode="async")
    assert run.rc == 0, run.tail()
    assert sh(opt_primary, "test -e %s && echo there || echo gone", SYNC_DROPIN).strip() == "gone"
    assert "synchronous_standby_names = ''" in sh(opt_primary, "cat %s", DROPIN)
    assert show(opt_primary, "synchronous_standby_names", 5434) == ""
