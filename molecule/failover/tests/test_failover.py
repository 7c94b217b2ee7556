"""Failover on a primary and two standbys (sync mode, FIRST 1), two rounds on the same containers.

The tests run in file order on the pair converge built. Round 1: the primary container is killed (docker kill)
under a client write loop, after fo-standby2 stopped receiving (so fo-standby1 is the most advanced) and after
fo-standby1 stopped receiving too (so the old primary holds WAL of a commit nobody acknowledged: diverged WAL).
The refusals run while it is down; failover.yml then promotes fo-standby1. The old container comes back
(docker start): the start-time guard must refuse to start it as a primary. site.yml with the changed inventory
rejoins it, keeping a copy of what it discards. Round 2: only PostgreSQL is killed on the new primary (the
container keeps running): failover.yml masks its service; site.yml rejoins it with
postgres_rejoin_discard_diverged=true (no copy). Every assertion reads the servers or the playbooks' own output.
"""
import json
import os
import re
import shlex
import subprocess
import tempfile
import time

import pytest

from labhost import (Writer, cluster, dock, in_recovery, inventory_file, playbook_cmd, psql, run_playbook, sh, started_at,
                     streams_from, timeline, wait_for)

PRIMARY, STANDBY1, STANDBY2 = "fo-primary", "fo-standby1", "fo-standby2"
HOSTS = (PRIMARY, STANDBY1, STANDBY2)
NETWORK = "hotstandby-molecule-fo"
PASSWORD = "molecule-test-only-failover"
FAILOVER, SITE = "hotstandby.postgresql.failover", "hotstandby.postgresql.site"
WORK_DIR = tempfile.mkdtemp(prefix="hotstandby-failover-")
WRITER, WRITER_PASSWORD = "fo_writer", "molecule-test-only-writer"
MARKER = "/etc/postgresql/*/main/hotstandby-fenced"


def inventory(path, primary, standbys):
    """An INI inventory as an operator writes it after failover.yml printed the change."""
    lines = ["[postgres_master]", primary, "", "[postgres_standby]", *standbys, "", "[all:vars]",
             "ansible_connection=community.docker.docker", "ansible_python_interpreter=/usr/bin/python3",
             f"postgres_replication_password={PASSWORD}", "postgres_synchronous_mode=sync",
             "postgres_failover_timeout=45", 'postgres_settings={"wal_receiver_timeout": "5s"}', ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


ROUND1 = inventory(os.path.join(WORK_DIR, "round1.ini"), STANDBY1, [PRIMARY, STANDBY2])
ROUND2 = inventory(os.path.join(WORK_DIR, "round2.ini"), PRIMARY, [STANDBY1, STANDBY2])


def node(name):
    return dock(name)


def playbook(which, *args, inventories=None, timeout=600):
    run = run_playbook(playbook_cmd(which, *args, inventories=inventories), timeout=timeout, name=which)
    assert PASSWORD not in run.output
    return run


def receiver(name):
    """The pid of the WAL receiver on name, or None."""
    found = node(name).run("pgrep -f '^postgres: .*walreceiver'")
    return found.stdout.split()[0] if found.rc == 0 and found.stdout.split() else None


def stop_receiving(name):
    pid = receiver(name)
    assert pid, f"no WAL receiver on {name}"
    sh(node(name), f"kill -STOP {pid}")
    return pid


def pad(name, local=False):
    """About 30 MB of WAL in one commit on name: more than the socket buffers hold for a stopped WAL receiver.
    local: committed without waiting for a synchronous standby (synchronous_commit = local)."""
    setting = "SET synchronous_commit = local; " if local else ""
    psql(node(name), f"{setting}INSERT INTO fo_pad SELECT g FROM generate_series(1, 600000) g")


def not_streaming(name):
    return psql(node(name), "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'",
                check=False) == "0"


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def ahead_of_rejoined(run, host):
    """The discarded range the rejoin of host reported: (start, end, bytes)."""
    found = re.search(re.escape(host) + r": [^\n]*?WAL discarded ([0-9A-F]+/[0-9A-F]+) to ([0-9A-F]+/[0-9A-F]+) "
                      r"\(([0-9]+) bytes\)", run.output)
    return found.groups() if found else None


def lsn(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def fork_of(run):
    """The LSN where failover.yml says the new primary's timeline forks from the old one."""
    found = re.search(r"Its timeline forks from the old one at ([0-9A-F]+/[0-9A-F]+)", run.output)
    return found.group(1) if found else None


def unchanged(run):
    return all(run.counts(h).get("changed", 0) == 0 for h in HOSTS)


@pytest.fixture(scope="module")
def prepared():
    """A login role for the client and its table, and a pg_hba line for the controller's address on every node."""
    gateway = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", NETWORK)
    psql(node(PRIMARY), f"CREATE ROLE {WRITER} LOGIN PASSWORD '{WRITER_PASSWORD}'")
    psql(node(PRIMARY), "CREATE TABLE fo_rows (n int PRIMARY KEY); CREATE TABLE fo_marks (t text); CREATE TABLE fo_pad (n int); "
                        f"GRANT INSERT, SELECT ON fo_rows, fo_marks TO {WRITER}")
    for name in HOSTS:
        hba = psql(node(name), "SHOW hba_file")
        sh(node(name), f"echo 'host postgres {WRITER} {gateway}/32 scram-sha-256' >> {hba}")
        psql(node(name), "SELECT pg_reload_conf()")
    status = run_playbook(playbook_cmd("hotstandby.postgresql.status"), timeout=300, name="status.yml")
    found = re.search(r"(host=\S+ port=\S+ dbname=postgres target_session_attrs=read-write)", status.output)
    assert found, status.tail()
    return dict(started={n: started_at(n) for n in HOSTS}, timeline=timeline(PRIMARY), conninfo=found.group(1))


def test_refused_while_the_primary_runs(prepared):
    run = playbook(FAILOVER)
    assert run.rc != 0 and "this is not a failover" in run.output and "switchover.yml" in run.output, run.tail()
    assert unchanged(run), run.tail()
    assert in_recovery(PRIMARY) == "f" and started_at(PRIMARY) == prepared["started"][PRIMARY]
    # --force never overrides a running primary
    forced = playbook(FAILOVER, "-e", '{"postgres_failover_force": true}')
    assert forced.rc != 0 and "this is not a failover" in forced.output, forced.tail()
    assert in_recovery(PRIMARY) == "f" and in_recovery(STANDBY1) == "t"


def test_refused_while_a_standby_still_streams_from_a_primary_ansible_cannot_reach(prepared):
    """The primary runs and both standbys stream from it, but Ansible cannot reach it (its connection names a
    container that does not exist, as a dead SSH route or a wrong address would): promoting now would make two
    primaries, so failover.yml refuses, --force aside, before any change."""
    cut = os.path.join(WORK_DIR, "primary-unreachable.ini")
    with open(cut, "w", encoding="utf-8") as f:
        f.write(f"[postgres_master]\n{PRIMARY} ansible_docker_host=fo-primary-not-reachable\n")
    assert streams_from(PRIMARY, STANDBY1) and streams_from(PRIMARY, STANDBY2)
    run = playbook(FAILOVER, inventories=[inventory_file(), cut])
    assert run.rc != 0, run.tail()
    assert "but the WAL receiver of" in run.output and "still streams" in run.output, run.tail()
    assert "promoting a standby now may make two primaries" in run.output, run.tail()
    assert unchanged(run), run.tail()
    assert in_recovery(PRIMARY) == "f" and started_at(PRIMARY) == prepared["started"][PRIMARY]
    assert all(in_recovery(n) == "t" and started_at(n) == prepared["started"][n] for n in (STANDBY1, STANDBY2))


# -- round 1: the primary's container is killed under a write loop ------------------------------------------------

@pytest.fixture(scope="module")
def killed(prepared):
    writer = Writer(prepared["conninfo"], WRITER, WRITER_PASSWORD, "fo_rows", seconds=400)
    writer.start()
    wait_for("the writer's first commits", lambda: len(writer.acked) >= 50, 60)
    paused = [(STANDBY2, stop_receiving(STANDBY2))]
    # commits go on (fo-standby1 is the synchronous standby): fo-standby2 falls behind
    pad(PRIMARY)
    count = len(writer.acked)
    wait_for("commits while fo-standby2 does not receive", lambda: len(writer.acked) >= count + 50, 60)
    paused.append((STANDBY1, stop_receiving(STANDBY1)))
    # committed on the primary only (not synchronously): WAL only the old primary has; the writer's next commit
    # waits for fo-standby1 and is never acknowledged
    pad(PRIMARY, local=True)
    time.sleep(1)
    acked_at_kill = list(writer.acked)
    docker("kill", PRIMARY)
    for name, pid in paused:
        node(name).run(f"kill -CONT {pid}")
    for name in (STANDBY1, STANDBY2):
        wait_for(f"{name} notices the primary is gone", lambda n=name: not_streaming(n), 60)
    return dict(writer=writer, acked_at_kill=acked_at_kill)


def test_refusals_while_the_primary_is_down(killed):
    run = playbook(FAILOVER, "-e", "postgres_failover_to=fo-nosuch")
    assert run.rc != 0 and "fo-nosuch" in run.output and "not a standby of the inventory" in run.output, run.tail()
    assert unchanged(run), run.tail()
    behind = playbook(FAILOVER, "-e", f"postgres_failover_to={STANDBY2}")
    assert behind.rc != 0 and f"{STANDBY2} has received" in behind.output, behind.tail()
    assert f"bytes less WAL than {STANDBY1}" in behind.output, behind.tail()
    assert unchanged(behind), behind.tail()
    alone = playbook(FAILOVER, "--limit", PRIMARY)
    assert alone.rc != 0 and "No standby of the inventory answers" in alone.output, alone.tail()
    check = playbook(FAILOVER, "--check", "--diff")
    assert check.rc == 0 and "End a check run here" in check.output, check.tail()
    assert unchanged(check), check.tail()
    assert in_recovery(STANDBY1) == "t" and in_recovery(STANDBY2) == "t"


@pytest.fixture(scope="module")
def failed_over(killed, prepared):
    run = playbook(FAILOVER)
    writer = killed["writer"]
    count = len(writer.acked)
    if run.rc == 0:
        wait_for("commits on the new primary", lambda: len(writer.acked) >= count + 100, 90)
    writer.stop.set()
    writer.join(30)
    return dict(run=run, writer=writer, acked_at_kill=killed["acked_at_kill"], started=prepared["started"],
                timeline=prepared["timeline"])


def test_failover_promotes_the_most_advanced_standby(failed_over):
    run = failed_over["run"]
    assert run.rc == 0, run.tail()
    assert in_recovery(STANDBY1) == "f" and timeline(STANDBY1) == failed_over["timeline"] + 1
    taking = re.search(r"taking writes ([0-9.]+) s after failover.yml started", run.output)
    assert taking, run.tail()
    assert f"Move {STANDBY1} from postgres_standby to postgres_master." in run.output, run.tail()
    measured = (f"failover: new primary taking writes {taking.group(1)} s after failover.yml started, "
                f"failover.yml {run.seconds:.1f} s, {failed_over['writer'].errors} client errors, "
                f"{len(failed_over['writer'].acked)} commits acknowledged\n")
    with open(os.path.join(os.environ.get("HOTSTANDBY_MEASURE_DIR", WORK_DIR), "failover-measured.txt"), "a",
              encoding="utf-8") as f:
        f.write(measured)


def test_no_acknowledged_commit_is_lost(failed_over):
    acked = failed_over["writer"].acked
    assert len(acked) >= len(failed_over["acked_at_kill"]) + 100
    on_new = set(int(n) for n in psql(node(STANDBY1), "SELECT n FROM fo_rows").split())
    missing = sorted(set(acked) - on_new)
    assert not missing, f"{len(missing)} acknowledged rows missing on the new primary: {missing[:20]}"


def test_the_other_standby_follows_without_restart(failed_over):
    wait_for("fo-standby2 streams from the new primary", lambda: streams_from(STANDBY1, STANDBY2), 60)
    assert started_at(STANDBY2) == failed_over["started"][STANDBY2]
    token = f"after-{time.time()}"
    psql(node(STANDBY1), f"INSERT INTO fo_marks VALUES ('{token}')")
    wait_for("the row on fo-standby2",
             lambda: psql(node(STANDBY2), f"SELECT count(*) FROM fo_marks WHERE t = '{token}'") == "1", 60)
    # commits wait for a standby that is there, never only for the lost one
    assert psql(node(STANDBY1), "SHOW synchronous_standby_names").startswith("FIRST 1 (")


def test_a_second_failover_is_a_noop(failed_over):
    run = playbook(FAILOVER)
    assert run.rc == 0 and "already has its primary" in run.output, run.tail()
    assert unchanged(run), run.tail()


def test_the_guard_refuses_the_returning_primary(failed_over):
    docker("start", PRIMARY)

    def booted():
        return node(PRIMARY).run("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    wait_for("the old primary's container boots", booted, 120)
    service = cluster(node(PRIMARY))["service"]
    decided = ("failed", "inactive", "active")
    wait_for("its PostgreSQL start is decided",
             lambda: node(PRIMARY).run(f"systemctl is-active {service}").stdout.strip() in decided, 60)
    assert node(PRIMARY).run(f"systemctl is-active {service}").stdout.strip() != "active"
    journal = sh(node(PRIMARY), f"journalctl -u {service} --no-pager -b")
    assert "refusing to start" in journal and STANDBY1 in journal and "timeline" in journal, journal[-3000:]
    write = node(PRIMARY).run("runuser -u postgres -- psql -XAtc \"INSERT INTO fo_marks VALUES ('nope')\"")
    assert write.rc != 0


def test_site_refuses_the_old_inventory(failed_over):
    run = playbook(SITE, timeout=900)
    assert run.rc != 0 and f"{STANDBY1} is in postgres_standby but is a running primary" in run.output, run.tail()
    assert unchanged(run), run.tail()


def test_site_rejoins_the_old_primary_and_keeps_a_copy(failed_over):
    copies = sh(node(PRIMARY), "ls -d /var/lib/postgresql/*/main.diverged-* 2>/dev/null || true")
    assert copies == ""
    started = started_at(STANDBY1)
    run = playbook(SITE, inventories=[ROUND1], timeout=900)
    assert run.rc == 0, run.tail()
    assert started_at(STANDBY1) == started, "site.yml restarted the new primary"
    assert in_recovery(PRIMARY) == "t"
    wait_for("the old primary streams from the new one", lambda: streams_from(STANDBY1, PRIMARY), 60)
    discarded = ahead_of_rejoined(run, PRIMARY)
    assert discarded and int(discarded[2]) > 0, run.tail()
    copies = sh(node(PRIMARY), "ls -d /var/lib/postgresql/*/main.diverged-* 2>/dev/null || true").strip()
    assert copies and copies in run.output, (copies, run.tail())
    token = f"rejoined-{time.time()}"
    psql(node(STANDBY1), f"INSERT INTO fo_marks VALUES ('{token}')")
    wait_for("the row on the old primary",
             lambda: psql(node(PRIMARY), f"SELECT count(*) FROM fo_marks WHERE t = '{token}'") == "1", 60)
    again = playbook(SITE, inventories=[ROUND1], timeout=900)
    assert again.rc == 0 and unchanged(again), again.tail()


# -- round 2: only PostgreSQL dies on the new primary; the host answers ---------------------------------------------

def test_round2_fences_a_reachable_primary_and_rejoin_can_discard(failed_over):
    # fo-primary is the most advanced (fo-standby2 stops receiving first); then the primary commits one row
    # locally that no standby receives (synchronous_commit = local), and its PostgreSQL is killed
    paused = [(STANDBY2, stop_receiving(STANDBY2))]
    pad(STANDBY1)
    psql(node(STANDBY1), "INSERT INTO fo_marks VALUES ('only-fo-primary-and-standby1')")
    wait_for("the row on fo-primary",
             lambda: psql(node(PRIMARY), "SELECT count(*) FROM fo_marks WHERE t = 'only-fo-primary-and-standby1'")
             == "1", 60)
    paused.append((PRIMARY, stop_receiving(PRIMARY)))
    # after more WAL than the stopped receiver's socket buffers hold: no standby gets this row
    pad(STANDBY1, local=True)
    # its commit record ends before this position; the commit was acknowledged to this client only
    lost_at = psql(node(STANDBY1), "SET synchronous_commit = local; INSERT INTO fo_marks VALUES ('diverged'); "
                                   "SELECT pg_current_wal_insert_lsn()")
    service = cluster(node(STANDBY1))["service"]
    sh(node(STANDBY1), "kill -9 $(head -1 /var/lib/postgresql/*/main/postmaster.pid)")
    for name, pid in paused:
        node(name).run(f"kill -CONT {pid}")
    for name in (PRIMARY, STANDBY2):
        wait_for(f"{name} notices the primary is gone", lambda n=name: not_streaming(n), 60)

    run = playbook(FAILOVER, inventories=[ROUND1])
    assert run.rc == 0, run.tail()
    assert in_recovery(PRIMARY) == "f"
    # what failover.yml reports as missing on the new primary covers the commit only the fenced node has
    fork = fork_of(run)
    assert fork and lsn(fork) < lsn(lost_at), (fork, lost_at, run.tail())
    assert "stopped and masked" in run.output, run.tail()
    assert node(STANDBY1).run(f"systemctl is-enabled {service}").stdout.strip() == "masked"
    assert node(STANDBY1).run(f"systemctl start {service}").rc != 0
    assert node(STANDBY1).run("runuser -u postgres -- psql -XAtc 'SELECT 1'").rc != 0
    assert sh(node(STANDBY1), f"ls {MARKER}")
    wait_for("fo-standby2 streams from fo-primary", lambda: streams_from(PRIMARY, STANDBY2), 60)
    assert psql(node(PRIMARY), "SELECT count(*) FROM fo_marks WHERE t = 'only-fo-primary-and-standby1'") == "1"

    refused = playbook(SITE, inventories=[ROUND1], timeout=900)
    assert refused.rc != 0, refused.tail()
    assert unchanged(refused), refused.tail()

    copies = sh(node(STANDBY1), "ls -d /var/lib/postgresql/*/main.diverged-* 2>/dev/null || true")
    rejoin = playbook(SITE, "-e", '{"postgres_rejoin_discard_diverged": true}', inventories=[ROUND2], timeout=900)
    assert rejoin.rc == 0, rejoin.tail()
    discarded = ahead_of_rejoined(rejoin, STANDBY1)
    assert discarded and int(discarded[2]) > 0, rejoin.tail()
    # the range the rejoin discarded starts where the timelines fork and holds the lost commit
    assert discarded[0] == fork and lsn(discarded[0]) < lsn(lost_at) <= lsn(discarded[1]), (discarded, lost_at)
    # the operator accepted the loss: no copy was made
    assert sh(node(STANDBY1), "ls -d /var/lib/postgresql/*/main.diverged-* 2>/dev/null || true") == copies
    assert node(STANDBY1).run(f"systemctl is-enabled {service}").stdout.strip() != "masked"
    assert not sh(node(STANDBY1), f"ls {MARKER} 2>/dev/null || true")
    wait_for("the rewound node streams from fo-primary", lambda: streams_from(PRIMARY, STANDBY1), 60)
    # the row only the fenced node had is gone with the WAL it discarded, as on the new primary
    assert psql(node(PRIMARY), "SELECT count(*) FROM fo_marks WHERE t = 'diverged'") == "0"
    assert psql(node(STANDBY1), "SELECT count(*) FROM fo_marks WHERE t = 'diverged'") == "0"


def test_strict_fencing_refuses_a_start_when_no_peer_answers(failed_over):
    """With no peer answering, the guard lets a primary start by default and refuses with postgres_fence_strict:
    true (written by site.yml into its configuration). Run by hand on fo-primary's installed guard, with its
    configuration's peers moved to a port nobody listens on."""
    config = sh(node(PRIMARY), "ls /etc/postgresql/*/main/hotstandby-fence.json").strip()
    for strict in (False, True):
        if strict:
            run = playbook(SITE, "-e", '{"postgres_fence_strict": true}', inventories=[ROUND2], timeout=900)
            assert run.rc == 0, run.tail()
        settings = json.loads(sh(node(PRIMARY), f"cat {config}"))
        assert settings["strict"] is strict and {p["name"] for p in settings["peers"]} == {STANDBY1, STANDBY2}
        lonely = dict(settings, timeout=3, peers=[dict(p, port=1) for p in settings["peers"]])
        sh(node(PRIMARY), f"echo {shlex.quote(json.dumps(lonely))} > /tmp/fence-lonely.json")
        check = node(PRIMARY).run("python3 -I /usr/local/lib/hotstandby/fence-check.py /tmp/fence-lonely.json")
        assert (check.rc != 0) == strict, (strict, check.rc, check.stderr)
        assert "no peer answered" in (check.stderr + check.stdout).lower(), check.stderr


# -- round 3: async mode, the container of the primary killed ---------------------------------------------------

def test_round3_in_async_mode_the_fork_lsn_tells_which_commits_are_lost(failed_over, prepared):
    """Async: commits do not wait for a standby, so those the standbys never received are lost with the primary.
    failover.yml's fork LSN must tell them: every acknowledged commit missing on the new primary ended after it."""
    asynchronous = ("-e", "postgres_synchronous_mode=async")
    run = playbook(SITE, *asynchronous, inventories=[ROUND2], timeout=900)
    assert run.rc == 0 and psql(node(PRIMARY), "SHOW synchronous_standby_names") == "", run.tail()
    writer = Writer(prepared["conninfo"], WRITER, WRITER_PASSWORD, "fo_rows", seconds=300, lsns=True)
    psql(node(PRIMARY), "TRUNCATE fo_rows")
    writer.start()
    try:
        wait_for("the writer's first commits", lambda: len(writer.acked) >= 50, 60)
        paused = [(name, stop_receiving(name)) for name in (STANDBY1, STANDBY2)]
        pad(PRIMARY)
        count = len(writer.acked)
        # acknowledged at once: no standby receives them
        wait_for("commits no standby receives", lambda: len(writer.acked) >= count + 50, 60)
        # a checkpoint in a new WAL segment, after the fork: crash recovery needs only WAL from there on, the
        # rewind also the WAL before the fork (the next test removes it)
        psql(node(PRIMARY), "SELECT pg_switch_wal()")
        psql(node(PRIMARY), "CHECKPOINT")
        docker("kill", PRIMARY)
        for name, pid in paused:
            node(name).run(f"kill -CONT {pid}")
        for name in (STANDBY1, STANDBY2):
            wait_for(f"{name} notices the primary is gone", lambda n=name: not_streaming(n), 60)
        acked = list(writer.acked)
        failover = playbook(FAILOVER, *asynchronous, inventories=[ROUND2])
        assert failover.rc == 0, failover.tail()
    finally:
        writer.stop.set()
        writer.join(30)
    new = next(name for name in (STANDBY1, STANDBY2) if in_recovery(name) == "f")
    fork = fork_of(failover)
    assert fork, failover.tail()
    on_new = set(int(n) for n in psql(node(new), "SELECT n FROM fo_rows").split())
    missing = sorted(set(acked) - on_new)
    assert len(missing) >= 50, (len(missing), fork)
    early = [n for n in missing if n in writer.lsn_after and lsn(writer.lsn_after[n]) <= lsn(fork)]
    assert not early, f"acknowledged commits that ended before the reported fork {fork} are missing: {early[:10]}"


def test_round3_the_rejoin_falls_back_to_a_clone_when_the_rewind_is_impossible(failed_over):
    """The old primary comes back (its guard keeps PostgreSQL down) without the WAL from before the fork that
    pg_rewind needs (removed by hand: as if archived and recycled), but with the WAL its crash recovery needs:
    site.yml with the new inventory recovers it, finds the rewind impossible, and clones it instead, its old data
    directory moved aside (never deleted); it then streams from the new primary."""
    new = next(name for name in (STANDBY1, STANDBY2) if in_recovery(name) == "f")
    other = STANDBY2 if new == STANDBY1 else STANDBY1
    docker("start", PRIMARY)
    wait_for("systemd on the old primary", lambda: node(PRIMARY).run("systemctl is-system-running").stdout.strip()
             in ("running", "degraded"), 120)
    service = cluster(node(PRIMARY))["service"]
    wait_for("the guard keeps the old primary down",
             lambda: node(PRIMARY).run(f"systemctl is-active {service}").stdout.strip() in ("failed", "inactive"), 60)
    data, bindir = cluster(node(PRIMARY))["data_dir"], cluster(node(PRIMARY))["bin"]
    redo = re.search(r"REDO WAL file:\s+([0-9A-F]{24})", sh(node(PRIMARY), f"{bindir}/pg_controldata {data}")).group(1)
    segments = sh(node(PRIMARY), f"ls {data}/pg_wal").split()
    old = [f for f in segments if re.fullmatch(r"[0-9A-F]{24}", f) and f < redo]
    assert old, (redo, segments)
    sh(node(PRIMARY), "cd %s/pg_wal && rm -f %s" % (data, " ".join(old)))
    aside = sh(node(PRIMARY), f"ls -d {data}.moved-* 2>/dev/null || true").split()
    round3 = inventory(os.path.join(WORK_DIR, "round3.ini"), new, [PRIMARY, other])
    run = playbook(SITE, "-e", "postgres_synchronous_mode=async", inventories=[round3], timeout=900)
    assert run.rc == 0, run.tail()
    assert "pg_rewind needs WAL of this node from before the fork" in run.output, run.tail()
    assert "(then cloned, the old data directory moved aside)" in run.output, run.tail()
    moved = [d for d in sh(node(PRIMARY), f"ls -d {data}.moved-* 2>/dev/null || true").split() if d not in aside]
    assert len(moved) == 1, (moved, run.tail())
    # the old data directory, with its diverged WAL, is kept as it was
    assert node(PRIMARY).file(f"{moved[0]}/PG_VERSION").exists and node(PRIMARY).file(f"{moved[0]}/pg_wal").is_directory
    assert in_recovery(PRIMARY) == "t"
    wait_for("the old primary streams from the new one", lambda: streams_from(new, PRIMARY), 60)
    token = f"cloned-{time.time()}"
    psql(node(new), f"INSERT INTO fo_marks VALUES ('{token}')")
    wait_for("the row on the old primary",
             lambda: psql(node(PRIMARY), f"SELECT count(*) FROM fo_marks WHERE t = '{token}'") == "1", 60)
