"""Verify a hot standby pair built by playbooks/site.yml: real state only.

Every assertion reads the servers themselves (catalog views, files, a row
written on the primary and read back on each standby); nothing here trusts
that a task ran.
"""
import json
import os
import time
import uuid

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
PRIMARY = RUNNER.get_hosts("postgres_master")
STANDBYS = RUNNER.get_hosts("postgres_standby")
CATCH_UP_SECONDS = 60


def _host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def psql(host, sql, check=True):
    """Run one statement as postgres over the local socket; return stdout."""
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c %s", sql)
    if check:
        assert cmd.rc == 0, f"{host.backend.hostname}: {sql!r} failed: {cmd.stderr}"
    return cmd


def cluster(host):
    """The host's one Debian cluster as (version, name, status, data_dir)."""
    lines = host.check_output("pg_lsclusters -h").splitlines()
    assert len(lines) == 1, f"expected exactly one cluster, found {lines}"
    ver, name, _port, status, _owner, data_dir = lines[0].split()[:6]
    return ver, name, status, data_dir


@pytest.fixture(scope="module")
def primary():
    assert len(PRIMARY) == 1, PRIMARY
    return _host(PRIMARY[0])


@pytest.fixture(scope="module", params=STANDBYS)
def standby(request):
    return request.param, _host(request.param)


def test_both_services_active(primary, standby):
    for host in (primary, standby[1]):
        ver, name, status, _data_dir = cluster(host)
        assert status.startswith("online"), (host.backend.hostname, status)
        unit = host.service(f"postgresql@{ver}-{name}")
        assert unit.is_running
        assert unit.is_enabled


def test_same_major_version(primary, standby):
    assert cluster(primary)[0] == cluster(standby[1])[0]


def test_primary_reports_standby_streaming(primary, standby):
    name = standby[0]
    rows = psql(primary, "SELECT json_agg(r) FROM (SELECT application_name, state "
                "FROM pg_stat_replication) r").stdout.strip()
    reported = {r["application_name"]: r["state"] for r in json.loads(rows or "[]") or []}
    assert reported.get(name) == "streaming", reported


def test_standby_uses_its_slot(primary, standby):
    name = standby[0]
    active = psql(primary, "SELECT slot_name FROM pg_replication_slots "
                  "WHERE active AND slot_type = 'physical'").stdout.split()
    expected = name.lower().replace("-", "_").replace(".", "_")
    assert expected in active, active


def test_standby_is_in_recovery(primary, standby):
    assert psql(primary, "SELECT pg_is_in_recovery()").stdout.strip() == "f"
    assert psql(standby[1], "SELECT pg_is_in_recovery()").stdout.strip() == "t"


def test_row_written_on_primary_is_read_on_standby(primary, standby):
    token = uuid.uuid4().hex
    psql(primary, "CREATE TABLE IF NOT EXISTS hotstandby_verify (token text PRIMARY KEY)")
    psql(primary, f"INSERT INTO hotstandby_verify VALUES ('{token}')")
    deadline = time.monotonic() + CATCH_UP_SECONDS
    seen = ""
    while time.monotonic() < deadline:
        cmd = psql(standby[1], f"SELECT token FROM hotstandby_verify WHERE token = '{token}'", check=False)
        seen = cmd.stdout.strip()
        if seen == token:
            break
        time.sleep(1)
    assert seen == token, f"row {token} not replayed on {standby[0]} within {CATCH_UP_SECONDS}s"


def test_write_on_standby_fails_read_only(standby):
    cmd = psql(standby[1], "CREATE TABLE hotstandby_must_fail (id int)", check=False)
    assert cmd.rc != 0
    assert "read-only transaction" in cmd.stderr


def test_no_trust_and_no_open_network_in_pg_hba(primary, standby):
    for host in (primary, standby[1]):
        rules = json.loads(psql(host, "SELECT json_agg(r) FROM (SELECT type, address, netmask, "
                                "auth_method, error FROM pg_hba_file_rules) r").stdout)
        assert rules, "pg_hba_file_rules is empty"
        for rule in rules:
            assert rule["error"] is None, rule
            if rule["type"].startswith("host"):
                assert rule["auth_method"] != "trust", rule
                assert not (rule["address"] == "0.0.0.0" and rule["netmask"] == "0.0.0.0"), rule
                assert rule["address"] not in ("all", "0.0.0.0/0", "::/0"), rule


def test_replication_allowed_only_from_each_standby_address(primary):
    rules = json.loads(psql(primary, "SELECT json_agg(r) FROM (SELECT address, netmask, auth_method "
                            "FROM pg_hba_file_rules WHERE 'replicator' = ANY(user_name) "
                            "AND 'replication' = ANY(database)) r").stdout)
    addresses = {_host(s).ansible("setup", "gather_subset=network")["ansible_facts"]
                 ["ansible_default_ipv4"]["address"] for s in STANDBYS}
    assert {r["address"] for r in rules} == addresses, rules
    for rule in rules:
        assert rule["netmask"] == "255.255.255.255", rule
        assert rule["auth_method"] == "scram-sha-256", rule


def test_replication_password_stored_as_scram(primary):
    row = psql(primary, "SELECT rolreplication, rolcanlogin, left(rolpassword, 14) "
               "FROM pg_authid WHERE rolname = 'replicator'").stdout.strip()
    assert row == "t|t|SCRAM-SHA-256$", row


def test_managed_dropin_has_header(primary, standby):
    for host in (primary, standby[1]):
        ver, name = cluster(host)[:2]
        dropin = host.file(f"/etc/postgresql/{ver}/{name}/conf.d/50-hotstandby.conf")
        assert dropin.exists
        assert "Ansible managed" in dropin.content_string
    assert psql(standby[1], "SHOW hot_standby").stdout.strip() == "on"
    assert psql(standby[1], "SHOW hot_standby_feedback").stdout.strip() == "on"
    assert psql(primary, "SHOW wal_level").stdout.strip() == "replica"
    assert psql(primary, "SHOW password_encryption").stdout.strip() == "scram-sha-256"


def test_standby_connection_reads_password_from_private_passfile(standby):
    host = standby[1]
    conninfo = psql(host, "SHOW primary_conninfo").stdout.strip()
    assert "password=" not in conninfo
    assert "passfile=" in conninfo
    passfile = conninfo.split("passfile=")[1].split()[0].strip("'")
    f = host.file(passfile)
    assert f.exists and f.user == "postgres" and f.mode == 0o600
    auto_conf = host.file(cluster(host)[3] + "/postgresql.auto.conf").content_string
    assert "password" not in auto_conf.replace("passfile", "")
