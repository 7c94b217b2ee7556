"""Verify a hot standby pair built by playbooks/site.yml: real state only.

Every assertion reads the servers themselves (catalog views, files, processes, a row written on the
primary and read back on each standby); nothing here trusts that a task ran. The fixtures (primary,
standby: one run per standby of the inventory) are in molecule/conftest.py, the helpers in labhost.py.
"""
import configparser
import ipaddress
import os
import re
import time
import uuid

import pytest
from labhost import (cluster, conninfo_fields, exposed, files_holding, group_hosts, hostvar, name_of, node, psql,
                     psql_json, psql_result, replication_info, secret_forms, sql_literal, standby_names, wait_for)

PRIMARY = group_hosts("postgres_master")
# in inventory order (the order the roles see in groups['postgres_standby'])
STANDBYS = standby_names()
CATCH_UP_SECONDS = 60
TLS = bool(PRIMARY) and bool(hostvar(PRIMARY[0], "postgres_tls", False))
LAB_CA_KEY = "/etc/postgresql/hotstandby-lab-ca/ca.key"
# the settings the collection's drop-in sets on every node (roles/postgres/vars/main.yml)
MANAGED_SETTINGS = ("listen_addresses", "wal_level", "max_wal_senders", "max_replication_slots",
                    "password_encryption", "hot_standby", "wal_log_hints")
# the columns of pg_hba_file_rules from PostgreSQL 13 on (15 adds rule_number and file_name)
HBA_COLUMNS = "line_number, type, database, user_name, address, netmask, auth_method, error"

tls_only = pytest.mark.skipif(not TLS, reason="the scenario does not use TLS (postgres_tls)")


def upstream_of(name):
    """The host a standby streams from: its postgres_standby_upstream or the primary."""
    return hostvar(name, "postgres_standby_upstream", PRIMARY[0])


def address_of(name):
    facts = node(name).ansible("setup", "gather_subset=network")["ansible_facts"]
    return facts["ansible_default_ipv4"]["address"]


def replication_view(upstream, name):
    """The upstream's pg_stat_replication row for a standby, with its TLS state."""
    rows = psql_json(node(upstream), "SELECT application_name, state, sync_state, coalesce(s.ssl, false) AS ssl "
                                     "FROM pg_stat_replication LEFT JOIN pg_stat_ssl s USING (pid)")
    return next((r for r in rows if r["application_name"] == name), None)


def hba_rules(host):
    rules = psql_json(host, f"SELECT {HBA_COLUMNS} FROM pg_hba_file_rules")
    assert rules, f"{name_of(host)}: pg_hba_file_rules is empty"
    return rules


def hba_network(rule):
    """A rule's address and netmask as a network; None for a local (socket) rule and for an address that is
    not an IP address (all, samehost, samenet, a host name) or a netmask that is not a prefix."""
    try:
        address = ipaddress.ip_address(rule["address"])
        mask = ipaddress.ip_address(rule["netmask"])
        net = ipaddress.ip_network(f"{address}/{bin(int(mask)).count('1')}", strict=False)
    except ValueError:
        return None
    return net if net.netmask == mask else None


def is_local_or_loopback(rule):
    net = hba_network(rule)
    return rule["type"] == "local" or (net is not None and net.is_loopback)


def is_single_address(rule):
    """/32 (255.255.255.255) or /128 (ffff:...:ffff)."""
    net = hba_network(rule)
    return net is not None and net.prefixlen == net.max_prefixlen


def server_major(host):
    """The running server's major version as the server reports it, as the PG_VERSION of its data directory
    says, as the path of its postmaster's binary shows, and as pg_lsclusters lists the cluster."""
    data_dir = psql(host, "SHOW data_directory")
    postmaster = host.check_output("head -n 1 %s", f"{data_dir}/postmaster.pid").strip()
    # the binary the postmaster runs (/proc/<pid>/exe, readable by its owner), else its argv[0]
    exe = host.run("runuser -u postgres -- readlink /proc/%s/exe", postmaster)
    binary = exe.stdout.strip() if exe.rc == 0 and exe.stdout.strip() else \
        host.check_output("tr '\\0' '\\n' < /proc/%s/cmdline | head -n 1", postmaster).strip()
    m = re.fullmatch(r"/usr/lib/postgresql/(\d+)/bin/postgres(?: \(deleted\))?", binary)
    assert m, f"{name_of(host)}: the postmaster (pid {postmaster}) runs {binary!r}"
    return dict(reported=int(psql(host, "SHOW server_version_num")) // 10000,
                pg_version=int(host.check_output("cat %s", f"{data_dir}/PG_VERSION").strip()),
                binary=int(m.group(1)), cluster=int(cluster(host)["version"]))


def test_both_services_active(primary, standby):
    for host in (primary, standby):
        c = cluster(host)
        assert c["status"].startswith("online"), (name_of(host), c["status"])
        unit = host.service(c["service"])
        assert unit.is_running
        assert unit.is_enabled


def test_same_major_version(primary, standby):
    """The standby's server runs the primary's major version, by its own report, its data directory's
    PG_VERSION and the binary of its postmaster. Every host of our scenarios runs one image (the faults
    scenario's trixie standby is refused before anything is installed), so this can fail here only if a
    standby ran another installed version than its cluster says: a consistency check of the servers' reports."""
    want = server_major(primary)
    got = server_major(standby)
    assert len(set(want.values())) == 1, (name_of(primary), want)
    assert got == want, (name_of(standby), got, name_of(primary), want)


def test_upstream_reports_standby_streaming(standby):
    name = name_of(standby)
    row = replication_view(upstream_of(name), name)
    assert row and row["state"] == "streaming", row
    mode = hostvar(name, "postgres_synchronous_mode", "async")
    direct = upstream_of(name) == PRIMARY[0]
    expected = {"async": {"async"}, "sync": {"sync", "potential"}, "quorum": {"quorum"}}[mode if direct else "async"]
    assert row["sync_state"] in expected, (mode, row)
    if hostvar(name, "postgres_tls", False):
        assert row["ssl"] is True, row


def test_standby_uses_its_slot_on_its_upstream(standby):
    """The slot held by this standby's own WAL sender (pg_stat_replication.pid = active_pid) is its slot."""
    name = name_of(standby)
    expected = hostvar(name, "postgres_standby_slot_name", re.sub("[^a-z0-9_]", "_", name.lower()))
    held = psql_json(node(upstream_of(name)), "SELECT s.slot_name, s.slot_type, s.active "
                                              "FROM pg_replication_slots s JOIN pg_stat_replication r "
                                              "ON r.pid = s.active_pid "
                                              f"WHERE r.application_name = {sql_literal(name)}")
    assert held == [dict(slot_name=expected, slot_type="physical", active=True)], held


def test_standby_is_in_recovery(primary, standby):
    assert psql(primary, "SELECT pg_is_in_recovery()") == "f"
    assert psql(standby, "SELECT pg_is_in_recovery()") == "t"


def test_row_written_on_primary_is_read_on_standby(primary, standby):
    token = uuid.uuid4().hex
    psql(primary, "CREATE TABLE IF NOT EXISTS hotstandby_verify (token text PRIMARY KEY)")
    psql(primary, f"INSERT INTO hotstandby_verify VALUES ('{token}')")
    deadline = time.monotonic() + CATCH_UP_SECONDS
    seen = ""
    while time.monotonic() < deadline:
        seen = psql(standby, f"SELECT token FROM hotstandby_verify WHERE token = '{token}'", check=False)
        if seen == token:
            break
        time.sleep(1)
    assert seen == token, f"row {token} not replayed on {name_of(standby)} within {CATCH_UP_SECONDS}s"


def test_write_on_standby_fails_read_only(standby):
    cmd = psql_result(standby, "CREATE TABLE hotstandby_must_fail (id int)")
    assert cmd.rc != 0
    assert "read-only transaction" in cmd.stderr


def test_no_trust_and_no_open_network_in_pg_hba(primary, standby):
    """No trust on any line; every line for TCP connections names one address (/32 or /128), except loopback
    lines (Debian's 127.0.0.1/32 and ::1/128) and reject lines (they open nothing)."""
    for host in (primary, standby):
        for rule in hba_rules(host):
            where = (name_of(host), rule)
            assert rule["error"] is None, where
            assert rule["auth_method"] != "trust", where
            if rule["type"] == "local" or rule["auth_method"] == "reject":
                continue
            assert rule["address"] not in ("all", "samehost", "samenet"), where
            assert hba_network(rule) is not None, where  # an IP address and netmask, not a host name
            assert is_local_or_loopback(rule) or is_single_address(rule), where


@pytest.mark.parametrize("name", PRIMARY + STANDBYS)
def test_replication_allowed_only_from_each_downstream_address(name):
    """Each node allows replication (for any user, 'all' included) only from the standbys streaming from it,
    each from its own address (/32 or /128); local and loopback lines aside."""
    downstream = {address_of(s) for s in STANDBYS if upstream_of(s) == name}
    user = hostvar(name, "postgres_replication_user", "replicator")
    tls = hostvar(name, "postgres_tls", False)
    remote = [r for r in hba_rules(node(name)) if "replication" in r["database"] and not is_local_or_loopback(r)]
    for rule in remote:
        assert rule["address"] in downstream and is_single_address(rule), (downstream, rule)
        assert rule["user_name"] == [user], rule
        assert rule["auth_method"] == "scram-sha-256", rule
        assert rule["type"] == ("hostssl" if tls else "host"), rule
    assert {r["address"] for r in remote} == downstream, remote


def test_replication_password_stored_as_scram(primary):
    row = psql(primary, "SELECT rolreplication, rolcanlogin, left(rolpassword, 14) "
               "FROM pg_authid WHERE rolname = 'replicator'")
    assert row == "t|t|SCRAM-SHA-256$", row


def test_replication_role_can_run_pg_rewind(primary, standby):
    """The grants a non-superuser pg_rewind needs, in the database it connects to, on every node."""
    functions = ("pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)", "pg_read_binary_file(text)",
                 "pg_read_binary_file(text, bigint, bigint, boolean)")
    user = sql_literal(hostvar(name_of(primary), "postgres_replication_user", "replicator"))
    for host in (primary, standby):
        granted = psql(host, f"SELECT string_agg(has_function_privilege({user}, f, 'EXECUTE')::text, ',') "
                             "FROM unnest(ARRAY[" + ", ".join(sql_literal("pg_catalog." + f) for f in functions)
                       + "]) AS f", db="postgres")
        assert granted == "true,true,true,true", (name_of(host), granted)
        # and nothing more: still no superuser
        assert psql(host, f"SELECT rolsuper FROM pg_roles WHERE rolname = {user}") == "f"
    # pg_replication_info's rewind_user check (what site.yml and a switchover read) agrees
    info = replication_info(name_of(standby), extra="rewind_user=" + user.strip("'"))
    assert (info["rewind_user_exists"], info["rewind_grants_missing"]) == (True, []), info
    info = replication_info(name_of(primary), extra="rewind_user=hotstandby_no_such_role")
    assert info["rewind_user_exists"] is False and len(info["rewind_grants_missing"]) == 4, info


def test_managed_dropin_has_header(primary, standby):
    for host, own in ((primary, ()), (standby, ("hot_standby_feedback",))):
        path = f"{cluster(host)['conf_dir']}/conf.d/50-hotstandby.conf"
        dropin = host.file(path)
        assert dropin.exists
        assert "Ansible managed" in dropin.content_string
        # ... and the server took the collection's settings from it
        names = MANAGED_SETTINGS + own
        sources = psql_json(host, "SELECT name, sourcefile FROM pg_settings WHERE name IN ("
                                  + ", ".join(sql_literal(n) for n in names) + ")")
        assert {r["name"]: r["sourcefile"] for r in sources} == dict.fromkeys(names, path), (name_of(host), sources)
    assert psql(standby, "SHOW hot_standby") == "on"
    assert psql(standby, "SHOW hot_standby_feedback") == "on"
    assert psql(primary, "SHOW wal_level") == "replica"
    assert psql(primary, "SHOW password_encryption") == "scram-sha-256"
    # in force, not only written: the primary's control file (what pg_rewind checks) says so
    for host in (primary, standby):
        assert psql(host, "SHOW wal_log_hints") == "on", name_of(host)
    info = cluster(primary)
    controldata = primary.check_output(f"runuser -u postgres -- {info['bin']}/pg_controldata {info['data_dir']}")
    assert re.search(r"^wal_log_hints setting:\s+on$", controldata, re.M), controldata


def test_standby_connection_reads_password_from_private_passfile(standby):
    conninfo = psql(standby, "SHOW primary_conninfo")
    assert "password=" not in conninfo
    assert "passfile=" in conninfo
    passfile = conninfo.split("passfile=")[1].split()[0].strip("'")
    f = standby.file(passfile)
    assert f.exists and f.user == "postgres" and f.mode == 0o600
    auto_conf = standby.file(cluster(standby)["data_dir"] + "/postgresql.auto.conf").content_string
    assert "password" not in auto_conf.replace("passfile", "")


def test_replication_connection_uses_the_chosen_sslmode(standby):
    name = name_of(standby)
    conninfo = psql(standby, "SHOW primary_conninfo")
    sslmode = hostvar(name, "postgres_replication_sslmode", "prefer")
    assert f"sslmode={sslmode}" in conninfo, conninfo
    if hostvar(name, "postgres_tls", False):
        assert "sslrootcert=" in conninfo, conninfo


def expected_synchronous_standby_names():
    """synchronous_standby_names for the scenario's mode: '' (async), or FIRST n (sync) / ANY n (quorum)
    with the standbys that stream from the primary itself, quoted, in inventory order."""
    mode = hostvar(PRIMARY[0], "postgres_synchronous_mode", "async")
    if mode == "async":
        return "", []
    count = hostvar(PRIMARY[0], "postgres_synchronous_count", 1)
    direct = [s for s in STANDBYS if upstream_of(s) == PRIMARY[0]]
    keyword = {"sync": "FIRST", "quorum": "ANY"}[mode]
    return f"{keyword} {count} (" + ", ".join('"%s"' % s.replace('"', '""') for s in direct) + ")", direct


def test_synchronous_standby_names_follow_the_mode(primary):
    expected, direct = expected_synchronous_standby_names()
    names = psql(primary, "SHOW synchronous_standby_names")
    assert names == expected, (names, expected)
    for name in direct:
        row = replication_view(PRIMARY[0], name)
        assert row and row["state"] == "streaming", (name, row)


# ---------------------------------------------------------------------------
# secrets, where the scenario has TLS keys (quorum_tls)
# ---------------------------------------------------------------------------

@tls_only
@pytest.mark.parametrize("name", PRIMARY + STANDBYS)
def test_tls_private_keys_are_private(name):
    """server.key: postgres, 0600, the key the server uses. The lab CA's ca.key: root, 0600, in a root-only
    directory, on the primary only (it signs there; it never leaves it)."""
    host = node(name)
    key_path = f"{cluster(host)['conf_dir']}/tls/server.key"
    assert psql(host, "SHOW ssl") == "on"
    assert psql(host, "SHOW ssl_key_file") == key_path
    key = host.file(key_path)
    assert key.is_file and (key.user, key.mode) == ("postgres", 0o600), (key_path, key.user, oct(key.mode))
    ca_key = host.file(LAB_CA_KEY)
    if name == PRIMARY[0] and hostvar(name, "postgres_tls_lab_ca", False):
        assert ca_key.is_file and (ca_key.user, ca_key.mode) == ("root", 0o600), (ca_key.user, oct(ca_key.mode))
        ca_dir = host.file(os.path.dirname(LAB_CA_KEY))
        assert (ca_dir.user, ca_dir.mode) == ("root", 0o700), (ca_dir.user, oct(ca_dir.mode))
    else:
        assert not ca_key.exists, f"{name} holds the lab CA's private key {LAB_CA_KEY}"


@tls_only
@pytest.mark.parametrize("name", PRIMARY + STANDBYS)
def test_password_only_in_files_of_postgres_and_root(name):
    """No file that others than root and postgres can read holds the replication password (in any of its
    written forms); on a standby the search must find its passfile (the positive control)."""
    password = hostvar(name, "postgres_replication_password")
    assert isinstance(password, str) and password, "no postgres_replication_password in the inventory"
    host = node(name)
    found = files_holding(host, password)
    assert not exposed(found), exposed(found)
    if name in STANDBYS:
        passfile = conninfo_fields(host)["passfile"]
        assert passfile in [path for path, *dummy in found], (passfile, found)


def ansible_log_path():
    """The log file ansible writes (ANSIBLE_LOG_PATH, or log_path in the ansible.cfg molecule uses), if any."""
    path = os.environ.get("ANSIBLE_LOG_PATH")
    if not path and os.environ.get("ANSIBLE_CONFIG"):
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(os.environ["ANSIBLE_CONFIG"])
        path = cfg.get("defaults", "log_path", fallback=None)
    return os.path.expanduser(path) if path else None


@tls_only
def test_password_not_in_the_converge_log():
    """Molecule keeps no log of its converge run unless ansible is told to write one: then it is searched."""
    path = ansible_log_path()
    if not path or not os.path.isfile(path):
        pytest.skip("no ansible log of the converge run (set ANSIBLE_LOG_PATH to keep one)")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    leaked = [form for form in secret_forms(hostvar(PRIMARY[0], "postgres_replication_password")) if form in text]
    assert not leaked, f"the replication password is in {path}"


# --- pg_replication_info on every node (every suite of the matrix: PostgreSQL 13, 15, 17, 18) -----------

LSN = re.compile(r"^[0-9A-F]+/[0-9A-F]+$")


def own_row(upstream, name):
    rows = [r for r in replication_info(upstream)["replication"] if r["application_name"] == name]
    assert len(rows) == 1, rows
    return rows[0]


def write_some_wal(primary, rows=20000):
    psql(primary, "CREATE TABLE IF NOT EXISTS hs_info_fill (g int, pad text)")
    psql(primary, f"INSERT INTO hs_info_fill SELECT g, md5(g::text) FROM generate_series(1, {rows}) g")


def test_pg_replication_info_on_the_primary(primary):
    info = replication_info(name_of(primary))
    assert info["role"] == "primary" and info["in_recovery"] is False and info["connected"] is True
    assert isinstance(info["timeline"], int) and info["timeline"] >= 1
    assert LSN.match(info["current_wal_lsn"]) and info["wal_receiver"] is None
    assert info["system_identifier"] == psql(primary, "SELECT system_identifier FROM pg_control_system()")
    assert info["server_version_num"] == int(psql(primary, "SHOW server_version_num"))
    direct = [s for s in STANDBYS if upstream_of(s) == PRIMARY[0]]
    names = sorted(r["application_name"] for r in info["replication"] if r["state"] == "streaming")
    assert names == sorted(direct), info["replication"]
    for row in info["replication"]:
        assert isinstance(row["replay_lag_bytes"], int) and row["replay_lag_bytes"] >= 0, row
        assert LSN.match(row["sent_lsn"]) and LSN.match(row["replay_lsn"]), row
    slots = dict((s["slot_name"], s) for s in info["slots"])
    for name in direct:
        slot = slots[hostvar(name, "postgres_standby_slot_name", re.sub("[^a-z0-9_]", "_", name.lower()))]
        assert slot["active"] is True and slot["wal_status"] in ("reserved", "extended"), slot
        assert isinstance(slot["retained_bytes"], int) and isinstance(slot["safe_wal_size"], (int, type(None)))
        assert "invalidation_reason" in slot


def test_pg_replication_info_paused_replay_lags_in_bytes_while_streaming(primary, standby):
    name, upstream = name_of(standby), upstream_of(name_of(standby))
    psql(standby, "SELECT pg_wal_replay_pause()")
    try:
        write_some_wal(primary)
        wait_for("replay lag in bytes on the upstream", lambda: (
            own_row(upstream, name)["state"] == "streaming" and own_row(upstream, name)["replay_lag_bytes"] > 0),
            CATCH_UP_SECONDS, 1)
        mine = replication_info(name)
        assert mine["role"] == "standby" and mine["replay_paused"] is True
        assert mine["wal_receiver"]["status"] == "streaming" and mine["replay_lag_bytes"] > 0
        assert "password" not in (mine["primary_conninfo"] or "").replace("passfile", "")
    finally:
        psql(standby, "SELECT pg_wal_replay_resume()")
    wait_for("no replay lag after resume", lambda: own_row(upstream, name)["replay_lag_bytes"] == 0,
             CATCH_UP_SECONDS, 1)
    assert replication_info(name)["replay_paused"] is False


def test_pg_replication_info_slot_retains_wal_while_its_standby_is_stopped(primary, standby):
    name, upstream = name_of(standby), upstream_of(name_of(standby))
    slot_name = psql(standby, "SHOW primary_slot_name")
    service = cluster(standby)["service"]

    def retained():
        slot = [s for s in replication_info(upstream)["slots"] if s["slot_name"] == slot_name][0]
        return slot["active"], slot["retained_bytes"]
    standby.run("systemctl stop %s", service)
    try:
        wait_for("the slot inactive", lambda: retained()[0] is False, CATCH_UP_SECONDS, 1)
        before = retained()[1]
        write_some_wal(primary)
        if upstream != PRIMARY[0]:
            time.sleep(3)  # the cascading upstream replays it first
        wait_for("the slot retaining more WAL", lambda: retained()[1] > before, CATCH_UP_SECONDS, 1)
    finally:
        standby.run("systemctl start %s", service)
    wait_for("streaming again", lambda: own_row(upstream, name)["state"] == "streaming", CATCH_UP_SECONDS, 1)
