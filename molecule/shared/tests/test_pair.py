"""Verify a hot standby pair built by playbooks/site.yml: real state only.

Every assertion reads the servers themselves (catalog views, files, a row
written on the primary and read back on each standby); nothing here trusts
that a task ran.
"""
import json
import os
import re
import time
import uuid

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
PRIMARY = RUNNER.get_hosts("postgres_master")
# Scenarios that grow the inventory in side_effect (scale-out) keep the hosts
# they add in postgres_standby_later: by verify they are standbys too.
STANDBYS = RUNNER.get_hosts("postgres_standby") + RUNNER.get_hosts("postgres_standby_later")
CATCH_UP_SECONDS = 60


def _host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def hostvar(name, var, default=None):
    """An inventory variable of a host (group_vars and host_vars applied)."""
    return RUNNER.get_variables(name).get(var, default)


def upstream_of(name):
    """The host a standby streams from: its postgres_standby_upstream or the primary."""
    return hostvar(name, "postgres_standby_upstream", PRIMARY[0])


def address_of(name):
    facts = _host(name).ansible("setup", "gather_subset=network")["ansible_facts"]
    return facts["ansible_default_ipv4"]["address"]


def replication_view(upstream, name):
    """The upstream's pg_stat_replication row for a standby, with its TLS state."""
    rows = json.loads(psql(_host(upstream), "SELECT json_agg(r) FROM (SELECT application_name, state, "
                           "sync_state, coalesce(s.ssl, false) AS ssl FROM pg_stat_replication "
                           "LEFT JOIN pg_stat_ssl s USING (pid)) r").stdout.strip() or "null") or []
    return next((r for r in rows if r["application_name"] == name), None)


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


def test_upstream_reports_standby_streaming(standby):
    name = standby[0]
    row = replication_view(upstream_of(name), name)
    assert row and row["state"] == "streaming", row
    mode = hostvar(name, "postgres_synchronous_mode", "async")
    direct = upstream_of(name) == PRIMARY[0]
    expected = {"async": {"async"}, "sync": {"sync", "potential"}, "quorum": {"quorum"}}[mode if direct else "async"]
    assert row["sync_state"] in expected, (mode, row)
    if hostvar(name, "postgres_tls", False):
        assert row["ssl"] is True, row


def test_standby_uses_its_slot_on_its_upstream(standby):
    name = standby[0]
    active = psql(_host(upstream_of(name)), "SELECT slot_name FROM pg_replication_slots "
                  "WHERE active AND slot_type = 'physical'").stdout.split()
    expected = hostvar(name, "postgres_standby_slot_name", re.sub("[^a-z0-9_]", "_", name.lower()))
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


@pytest.mark.parametrize("node", PRIMARY + STANDBYS)
def test_replication_allowed_only_from_each_downstream_address(node):
    """Each node allows replication only from the standbys streaming from it, /32 each."""
    downstream = [s for s in STANDBYS if upstream_of(s) == node]
    rules = json.loads(psql(_host(node), "SELECT json_agg(r) FROM (SELECT type, address, netmask, auth_method "
                            "FROM pg_hba_file_rules WHERE 'replicator' = ANY(user_name) "
                            "AND 'replication' = ANY(database)) r").stdout.strip() or "null") or []
    assert {r["address"] for r in rules} == {address_of(s) for s in downstream}, rules
    tls = hostvar(node, "postgres_tls", False)
    for rule in rules:
        assert rule["netmask"] == "255.255.255.255", rule
        assert rule["auth_method"] == "scram-sha-256", rule
        assert rule["type"] == ("hostssl" if tls else "host"), rule


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


def test_replication_connection_uses_the_chosen_sslmode(standby):
    name, host = standby
    conninfo = psql(host, "SHOW primary_conninfo").stdout.strip()
    sslmode = hostvar(name, "postgres_replication_sslmode", "prefer")
    assert f"sslmode={sslmode}" in conninfo, conninfo
    if hostvar(name, "postgres_tls", False):
        assert "sslrootcert=" in conninfo, conninfo


def test_synchronous_standby_names_follow_the_mode(primary):
    mode = hostvar(PRIMARY[0], "postgres_synchronous_mode", "async")
    count = hostvar(PRIMARY[0], "postgres_synchronous_count", 1)
    names = psql(primary, "SHOW synchronous_standby_names").stdout.strip()
    direct = sorted(s for s in STANDBYS if upstream_of(s) == PRIMARY[0])
    if mode == "async":
        assert names == "", names
    else:
        keyword = "FIRST" if mode == "sync" else "ANY"
        assert names.startswith(f"{keyword} {count} ("), names
        assert sorted(re.findall(r'"([^"]+)"', names)) == direct, names
