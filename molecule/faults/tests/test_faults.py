"""The site playbook under real faults.

Each test sets a fault up for real on the pair that converge built, runs the site playbook
(``ansible-playbook hotstandby.postgresql.site`` with this scenario's inventory; the collection comes
from HOTSTANDBY_COLLECTIONS_PATH, so ``make test`` exercises the installed artifact), and asserts the
outcome on the real hosts through ``docker exec``. The tests share the containers and run in file
order; each one leaves a streaming pair behind for the next:

  restarts -> wrong password -> primary unreachable -> primary down -> version mismatch (trixie)
  -> interrupted clone -> re-run under write load with -vvv (convergence, checksums, secrets)
  -> foreign data (refused, then moved aside) -> lost standby (slot lost, primary bounded, re-clone)
"""
import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest
from labhost import (PASSFILE, basebackups, cluster, conninfo_fields, dock, exposed, files_holding, finish_playbook,
                     inventory_file, playbook_cmd, primary_state, psql, run_playbook, secret_forms, sh, sha256,
                     start_playbook, top_files, tree_state, wait_for)

INVENTORY = inventory_file()
PRIMARY = "flt-primary"
STANDBY = "flt-standby"
TRIXIE = "flt-trixie"
NETWORK = "hotstandby-flt"
SITE = "hotstandby.postgresql.site"
PASSWORD = "molecule-faults-test-only-not-a-secret"  # the scenario's throwaway group_vars value
SLOT = "flt_standby"
TEMP_PORT = 5499
CATCH_UP = 120
BENCH_TPS = 5  # pgbench's rate in the loaded re-run; measured: 15-16KB of WAL a transaction after a checkpoint
WORK_DIR = tempfile.mkdtemp(prefix="hotstandby-faults-test-")
atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)
REPO_ROOT = os.environ.get("LAB_REPO_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))


# ---------------------------------------------------------------------------
# helpers (the shared ones are in labhost.py, the primary/standby fixtures in molecule/conftest.py)
# ---------------------------------------------------------------------------

def site_cmd(*args, extra_inventory=None):
    inventories = [INVENTORY]
    if extra_inventory:
        path = os.path.join(WORK_DIR, f"inventory-{uuid.uuid4().hex[:8]}.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(extra_inventory)
        inventories.append(path)
    return playbook_cmd(SITE, *args, inventories=inventories)


def site(*args, extra_inventory=None, timeout=900):
    return run_playbook(site_cmd(*args, extra_inventory=extra_inventory), timeout=timeout, name="site.yml")


def start_site(*args, extra_inventory=None):
    return start_playbook(site_cmd(*args, extra_inventory=extra_inventory),
                          os.path.join(WORK_DIR, f"site-{uuid.uuid4().hex[:8]}.log"))


def finish_site(proc, log, timeout=900):
    return finish_playbook(proc, log, timeout=timeout, name="site.yml")


def changed(run, host):
    """The host's changed count in the run's PLAY RECAP (None if it has no recap line)."""
    return run.counts(host).get("changed")


def streaming(primary):
    return psql(primary, f"SELECT state FROM pg_stat_replication WHERE application_name = '{STANDBY}'",
                check=False) == "streaming"


def row_replicates(primary, standby):
    token = uuid.uuid4().hex
    psql(primary, "CREATE TABLE IF NOT EXISTS faults_verify (token text)")
    psql(primary, f"INSERT INTO faults_verify VALUES ('{token}')")
    wait_for("row replayed on the standby",
             lambda: psql(standby, f"SELECT token FROM faults_verify WHERE token = '{token}'", check=False) == token,
             CATCH_UP)


def data_state(standby):
    """What a clone, a settings rewrite or a passfile rewrite would change on the standby: the top-level files
    of its data directory, its system identifier, its passfile, the entries next to the data directory, and
    its configuration directory /etc/postgresql/<version>/<cluster>, file for file (mode, owner, mtime, sha256)."""
    c = cluster(standby)
    sysid = sh(standby, f"{c['bin']}/pg_controldata %s | sed -n 's/^Database system identifier: *//p'",
               c["data_dir"]).strip()
    return dict(files=top_files(standby, c["data_dir"]), sysid=sysid, passfile=sha256(standby, PASSFILE),
                siblings=sh(standby, "ls -A %s", c["parent"]).split(),
                config=tree_state(standby, c["conf_dir"], hashes=True))


def staging_dirs(standby):
    c = cluster(standby)
    return sh(standby, "find %s -maxdepth 1 -name '.*hotstandby-staging*'", c["parent"]).split()


@pytest.fixture(scope="module", autouse=True)
def pair_streams_at_start(primary, standby):
    wait_for("the converged standby streaming", lambda: streaming(primary), CATCH_UP)


# ---------------------------------------------------------------------------
# 6. restarts: the standby reconnects with no play run
# ---------------------------------------------------------------------------

def test_restart_of_primary_service_standby_reconnects(primary, standby):
    before = psql(primary, "SELECT pg_postmaster_start_time()")
    sh(primary, "systemctl restart %s", cluster(primary)["service"])
    assert psql(primary, "SELECT pg_postmaster_start_time()") != before
    wait_for("standby streaming again after the primary restarted", lambda: streaming(primary))
    row_replicates(primary, standby)


def test_restart_of_standby_container_reconnects(primary, standby):
    subprocess.run(["docker", "restart", STANDBY], check=True, capture_output=True, timeout=180)
    wait_for("standby container's cluster online",
             lambda: cluster(dock(STANDBY))["status"].startswith("online"))
    assert psql(standby, "SELECT pg_is_in_recovery()") == "t"
    wait_for("standby streaming again after its container restarted", lambda: streaming(primary))
    row_replicates(primary, standby)


# ---------------------------------------------------------------------------
# 4. --limit, wrong password, primary unreachable, primary down, version mismatch
# ---------------------------------------------------------------------------

def test_limit_to_the_primary_leaves_the_standby_streaming(primary, standby):
    """--limit without the standby: its pg_hba line is kept (its address is read from it)."""
    before = data_state(standby), primary_state(primary)
    run = site("--limit", PRIMARY)
    assert run.rc == 0, run.tail()
    assert changed(run, PRIMARY) == 0 and STANDBY not in run.recap, run.tail()
    assert (data_state(standby), primary_state(primary)) == before
    assert streaming(primary)


def test_limit_to_the_primary_with_the_standby_down_names_it(primary, standby):
    before = primary_state(primary)
    subprocess.run(["docker", "stop", STANDBY], check=True, capture_output=True, timeout=180)
    try:
        run = site("--limit", PRIMARY)
    finally:
        subprocess.run(["docker", "start", STANDBY], check=True, capture_output=True, timeout=180)
    assert run.rc != 0 and run.failed(PRIMARY), run.tail()
    for word in (STANDBY, "--limit", "postgres_standby_address"):
        assert word in run.output, run.tail()
    # refused before any change: the primary's recap and state, and nothing ran on the left-out standby
    assert changed(run, PRIMARY) == 0 and STANDBY not in run.recap, run.tail()
    assert primary_state(primary) == before
    wait_for("the standby streaming again after its container restarted", lambda: streaming(primary))


def test_limit_without_the_primary_is_refused_before_any_change(primary, standby):
    before = data_state(standby), primary_state(primary)
    run = site("--limit", STANDBY)
    assert run.rc != 0 and run.failed(STANDBY), run.tail()
    assert f"--limit leaves out the primary {PRIMARY}" in run.output, run.tail()
    assert changed(run, STANDBY) == 0, run.tail()
    assert (data_state(standby), primary_state(primary)) == before


def test_wrong_password_names_the_cause_and_changes_nothing(primary, standby):
    before = data_state(standby), primary_state(primary)
    wrong = "wrong-" + uuid.uuid4().hex
    # only the standby has the wrong password: the primary keeps the right one
    run = site(extra_inventory=f"all:\n  hosts:\n    {STANDBY}:\n      postgres_replication_password: {wrong}\n")
    assert run.rc != 0 and run.failed(STANDBY) and not run.failed(PRIMARY), run.tail()
    assert "password authentication" in run.output and "postgres_replication_password" in run.output, run.tail()
    assert wrong not in run.output and PASSWORD not in run.output
    # nothing changed: neither host's recap counts a change, and both hosts' states are as before
    assert changed(run, STANDBY) == 0 and changed(run, PRIMARY) == 0, run.tail()
    assert (data_state(standby), primary_state(primary)) == before
    assert streaming(primary)


def test_primary_unreachable_names_the_cause_and_changes_nothing(primary, standby):
    address = subprocess.run(["docker", "inspect", "-f",
                              "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % NETWORK, PRIMARY],
                             check=True, capture_output=True, text=True).stdout.strip()
    assert address
    before = data_state(standby), primary_state(primary)
    subprocess.run(["docker", "network", "disconnect", NETWORK, PRIMARY], check=True, capture_output=True)
    try:
        # the standbys still connect to the primary's (now unreachable) address
        run = site("-e", f"postgres_primary_address={address}")
    finally:
        subprocess.run(["docker", "network", "connect", "--ip", address, NETWORK, PRIMARY], check=True,
                       capture_output=True)
    assert run.rc != 0 and run.failed(STANDBY), run.tail()
    assert f"{address}:5432" in run.output, run.tail()
    assert re.search(r"timed out|could not connect|No route to host", run.output), run.tail()
    assert changed(run, STANDBY) == 0, run.tail()
    assert (data_state(standby), primary_state(primary)) == before
    wait_for("standby streaming again after the primary is reachable", lambda: streaming(primary))


def test_primary_down_names_the_host_and_changes_nothing(primary, standby):
    before = data_state(standby)
    subprocess.run(["docker", "stop", PRIMARY], check=True, capture_output=True, timeout=180)
    try:
        run = site()
    finally:
        subprocess.run(["docker", "start", PRIMARY], check=True, capture_output=True, timeout=180)
    assert run.rc != 0 and run.failed(PRIMARY), run.tail()
    assert re.search(r"%s.*(UNREACHABLE|not running)" % PRIMARY, run.output, re.S), run.tail()
    assert changed(run, STANDBY) == 0, run.tail()
    assert data_state(standby) == before
    # 6. the primary's container came back: the standby reconnects on its own
    wait_for("primary cluster online", lambda: cluster(dock(PRIMARY))["status"].startswith("online"))
    wait_for("standby streaming again after the primary's container restarted", lambda: streaming(primary))
    row_replicates(primary, standby)


@pytest.fixture(scope="module")
def trixie_run(primary):
    """site.yml with a third, trixie standby: its release ships PostgreSQL 17, not the primary's 15."""
    image = subprocess.run(["docker", "image", "inspect", "hotstandby-lab/debian:trixie"], capture_output=True,
                           check=False)
    if image.returncode != 0:
        pytest.skip("no local hotstandby-lab/debian:trixie image (scripts/lab image trixie builds it)")
    lab = os.path.join(REPO_ROOT, "scripts", "lab")
    c = cluster(primary)
    before = primary_state(primary)
    subprocess.run([lab, "up", TRIXIE, "--suite", "trixie", "--network", NETWORK], check=True, capture_output=True,
                   timeout=300)
    try:
        inventory = (f"postgres_standby:\n  hosts:\n    {TRIXIE}:\n      ansible_connection: community.docker.docker\n"
                     f"      ansible_python_interpreter: /usr/bin/python3\n")
        run = site(extra_inventory=inventory)
        after = primary_state(primary)
        installed = dock(TRIXIE).run("test -e /var/lib/postgresql").rc == 0
    finally:
        subprocess.run([lab, "down", TRIXIE], check=False, capture_output=True, timeout=120)
        # undo what the primary was given for the standby that cannot exist, so the next tests start clean
        slot = TRIXIE.replace("-", "_")
        psql(primary, f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                      f"WHERE slot_name = '{slot}' AND NOT active")
        sh(primary, "sed -i '/replication for %s$/d' /etc/postgresql/%s/%s/pg_hba.conf", TRIXIE, c["version"], c["name"])
        psql(primary, "SELECT pg_reload_conf()")
    return dict(run=run, before=before, after=after, installed=installed)


def test_version_mismatch_names_the_cause(trixie_run, primary):
    run = trixie_run["run"]
    assert run.rc != 0 and run.failed(TRIXIE), run.tail()
    # refused in the first play, naming both releases and what to do
    for words in ("runs Debian trixie", "runs Debian bookworm", "must run the primary", "postgres_version"):
        assert words in run.output, (words, run.tail())
    assert not trixie_run["installed"]  # nothing installed, nothing cloned on the trixie host
    assert streaming(primary)  # the existing standby is unaffected


def test_version_mismatch_leaves_the_primary_unchanged(trixie_run):
    assert not trixie_run["run"].failed(PRIMARY), trixie_run["run"].tail()
    assert changed(trixie_run["run"], PRIMARY) == 0, trixie_run["run"].tail()
    assert trixie_run["after"] == trixie_run["before"]


# ---------------------------------------------------------------------------
# 1. interrupted clone, 2. writes during the clone, 7. secrets
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bench(primary):
    """A primary big enough that cloning takes several seconds."""
    c = cluster(primary)
    psql(primary, "DROP DATABASE IF EXISTS fltbench")
    psql(primary, "CREATE DATABASE fltbench")
    sh(primary, f"runuser -u postgres -- {c['bin']}/pgbench -q -i -s 12 fltbench >/dev/null 2>&1")
    yield dict(size=int(psql(primary, "SELECT pg_database_size('fltbench')")), bin=c["bin"])


def wipe_standby(standby):
    c = cluster(standby)
    sh(standby, "systemctl stop %s", c["service"])
    sh(standby, "rm -rf %s", c["data_dir"])


def test_interrupted_clone_fails_clearly_and_leaves_nothing(bench, primary, standby):
    slots_before = primary_state(primary)["slots"]
    wipe_standby(standby)
    proc, log = start_site()
    victim = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            running = basebackups(standby)
            pids = {pid for pid, _cmd in running}
            main = [p for p, pp in running if pp not in pids]
            size = standby.run("du -sm %s", cluster(standby)["parent"])
            copied = int(size.stdout.split()[0]) if size.rc == 0 and size.stdout.strip() else 0
            if main and copied >= 40:
                victim = main[0]
                break
            time.sleep(0.3)
        assert victim, f"no pg_basebackup seen copying (primary database {bench['size']} bytes)"
        sh(standby, "kill -KILL %s", str(victim))
    finally:
        run = finish_site(proc, log)
    assert run.rc != 0 and run.failed(STANDBY) and not run.failed(PRIMARY), run.tail()
    assert "pg_basebackup was killed by SIGKILL" in run.output and "was not changed" in run.output, run.tail()
    assert staging_dirs(standby) == []
    assert not standby.file(cluster(standby)["data_dir"]).exists
    assert basebackups(standby) == []
    assert primary_state(primary)["slots"] == slots_before  # the standby's own slot, nothing more
    assert psql(primary, "SELECT count(*) FROM pg_replication_slots WHERE temporary") == "0"


# Polls /proc/*/cmdline inside a container until the stop file appears (or the time limit passes): every
# command line not seen before goes to the output file as one JSON line, at once; a last line counts the
# polls and those that saw a pg_basebackup. It runs niced, so that it yields the CPU to the run it watches.
ARGV_SAMPLER = r"""
import json, os, sys, time
out, stop, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.umask(0o077)
os.nice(10)
seen = set()
samples = clone = 0
deadline = time.monotonic() + limit
with open(out, "w") as f:
    f.flush()
    while not os.path.exists(stop) and time.monotonic() < deadline:
        busy = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as c:
                    raw = c.read()
            except OSError:
                continue
            if os.path.basename(raw.split(b"\0")[0]) == b"pg_basebackup":
                busy = True
            line = raw.rstrip(b"\0").replace(b"\0", b" ")
            if line and line not in seen:
                seen.add(line)
                f.write(json.dumps({"cmdline": line.decode("utf-8", "replace")}) + "\n")
                f.flush()
        samples += 1
        clone += busy
        time.sleep(0.002)
    f.write(json.dumps({"samples": samples, "during_clone": clone}) + "\n")
"""


class ArgvSampler:
    """Every command line that appears in a container while a run goes on, short-lived processes included:
    a loop inside the container reads /proc/*/cmdline (ARGV_SAMPLER) until stop() is called."""

    def __init__(self, name, limit=1800):
        self.name = name
        self.out = f"/tmp/.hotstandby-argv-{uuid.uuid4().hex[:8]}"
        self.stop_file = self.out + ".stop"
        self.cmdlines = set()
        self.samples = 0
        self.during_clone = 0
        self.proc = subprocess.Popen(["docker", "exec", name, "python3", "-c", ARGV_SAMPLER, self.out,
                                      self.stop_file, str(limit)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)

        def started():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the argv sampler on {name} ended: {self.proc.communicate()[1]}")
            return dock(name).run("test -e %s", self.out).rc == 0
        wait_for(f"the argv sampler running on {name}", started, 30, 0.1)

    def stop(self):
        """Stop the loop and read what it saw (samples stays 0 if it did not finish its output)."""
        host = dock(self.name)
        try:
            host.run("touch %s", self.stop_file)
            self.proc.communicate(timeout=60)
        finally:
            if self.proc.poll() is None:  # the docker client only: the stop file stays for the loop inside
                self.proc.kill()
                self.proc.communicate()
            else:
                host.run("rm -f %s", self.stop_file)
            lines = host.run("cat %s", self.out).stdout.splitlines()
            host.run("rm -f %s", self.out)
        records = [json.loads(line) for line in lines if line.strip()]
        self.cmdlines = {r["cmdline"] for r in records if "cmdline" in r}
        if records and "samples" in records[-1]:
            self.samples = records[-1]["samples"]
            self.during_clone = records[-1]["during_clone"]


@pytest.fixture(scope="module")
def loaded_rerun(bench, primary, standby):
    """Re-run site.yml (-vvv) after the interrupted clone while pgbench writes to the primary throughout."""
    c = cluster(primary)
    # At a fixed rate (-R, transactions per second): the WAL this writes does not grow with the speed of
    # the machine. The standby's slot stays inactive from the interrupted clone until the re-clone, and
    # this scenario lets a slot keep only 64MB (the lost-standby case below); unbounded, pgbench on a
    # slower machine wrote that much before the standby streamed again, and the run failed on a lost slot.
    start_lsn = psql(primary, "SELECT pg_current_wal_lsn()")
    runuser_pid = sh(primary, f"runuser -u postgres -- {c['bin']}/pgbench -n -c 2 -j 1 -R {BENCH_TPS} -T 1200 "
                              "fltbench >/tmp/fltbench.log 2>&1 & echo $!").strip()
    wait_for("pgbench running", lambda: bool(sh(primary, "ps -o pid= --ppid %s", runuser_pid).strip()), 30, 0.2)
    pgbench_pid = sh(primary, "ps -o pid= --ppid %s", runuser_pid).strip()
    history_at_start = int(psql(primary, "SELECT count(*) FROM pgbench_history", db="fltbench"))
    samplers = []
    try:
        for name in (PRIMARY, STANDBY):
            samplers.append(ArgvSampler(name))
        run = site("-vvv")
    finally:
        alive_at_end = primary.run("kill -0 %s", pgbench_pid).rc == 0
        for sampler in samplers:
            sampler.stop()
        # TERM: a background job of a non-interactive shell ignores INT
        primary.run("kill -TERM %s", pgbench_pid)
        wait_for("pgbench stopped", lambda: primary.run("kill -0 %s", pgbench_pid).rc != 0, 60, 0.5)
    history_at_end = int(psql(primary, "SELECT count(*) FROM pgbench_history", db="fltbench"))
    wal_written = int(psql(primary, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}')"))
    print(f"loaded re-run: rc={run.rc} in {run.seconds:.0f} s, {history_at_end - history_at_start} pgbench transactions, {wal_written} bytes of WAL")
    return dict(run=run, samplers=samplers, alive_at_end=alive_at_end, history_at_start=history_at_start,
                history_at_end=history_at_end, wal_written=wal_written)


def test_rerun_after_interrupted_clone_converges(loaded_rerun, primary, standby):
    run = loaded_rerun["run"]
    assert run.rc == 0, f"{loaded_rerun['wal_written']} bytes of WAL written during the run\n{run.tail()}"
    assert not run.failed(STANDBY) and not run.failed(PRIMARY)
    assert streaming(primary)
    assert staging_dirs(standby) == []
    assert primary_state(primary)["slots"] == f"{SLOT}:physical"
    assert psql(primary, f"SELECT active FROM pg_replication_slots WHERE slot_name = '{SLOT}'") == "t"
    assert psql(standby, "SELECT pg_is_in_recovery()") == "t"


def checksums(host):
    sql = ("SELECT (SELECT count(*) || ':' || sum(abalance) || ':' || sum(hashtext(aid || ':' || abalance)) "
           "FROM pgbench_accounts) || '|' || "
           "(SELECT count(*) || ':' || sum(bbalance) FROM pgbench_branches) || '|' || "
           "(SELECT count(*) || ':' || sum(tbalance) FROM pgbench_tellers) || '|' || "
           "(SELECT count(*) || ':' || coalesce(sum(delta), 0) || ':' || coalesce(sum(hashtext(tid || ':' || bid || "
           "':' || aid || ':' || delta || ':' || mtime)), 0) FROM pgbench_history)")
    return psql(host, sql, db="fltbench")


def test_writes_during_the_clone_arrive_on_the_standby(loaded_rerun, primary, standby):
    assert sum(s.during_clone for s in loaded_rerun["samplers"]) > 0, "no sample saw pg_basebackup running"
    # pgbench wrote for the whole run, the clone included
    assert loaded_rerun["alive_at_end"], "pgbench stopped before the run ended"
    assert loaded_rerun["history_at_end"] > loaded_rerun["history_at_start"]
    end_lsn = psql(primary, "SELECT pg_current_wal_lsn()")
    wait_for("standby replay caught up with the primary's LSN at the end of the load",
             lambda: psql(standby, f"SELECT pg_last_wal_replay_lsn() >= '{end_lsn}'::pg_lsn") == "t")
    assert checksums(primary) == checksums(standby)


def test_password_not_in_verbose_output(loaded_rerun):
    run = loaded_rerun["run"]
    assert "<ESTABLISH" in run.output or "ESTABLISH" in run.output  # it was really -vvv
    assert PASSWORD not in run.output


def test_password_not_on_any_command_line(loaded_rerun):
    """No process on either host, however short-lived, had the password (in any written form) in its argv."""
    samplers = loaded_rerun["samplers"]
    # samples is 0 for a sampler that did not finish its output
    assert all(s.samples > 10 for s in samplers), [(s.name, s.samples) for s in samplers]
    leaked = [(s.name, c) for s in samplers for c in s.cmdlines if any(form in c for form in secret_forms(PASSWORD))]
    assert not leaked, leaked


@pytest.mark.parametrize("name", [PRIMARY, STANDBY])
def test_password_only_in_files_of_postgres_and_root(loaded_rerun, name):
    """No file that others than root and postgres can read holds the password (any written form); on the
    standby the search must find its passfile (the positive control: a broken search finds nothing)."""
    host = dock(name)
    found = files_holding(host, PASSWORD)
    assert not exposed(found), exposed(found)
    if name == STANDBY:
        passfile = conninfo_fields(host)["passfile"]
        assert passfile in [path for path, *dummy in found], (passfile, found)


# ---------------------------------------------------------------------------
# 3. foreign data
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def foreign(primary, standby):
    """The standby's data directory holds another cluster with a marker table."""
    psql(primary, "DROP DATABASE IF EXISTS fltbench")  # quicker clones from here on
    c = cluster(standby)
    token = uuid.uuid4().hex
    wipe_standby(standby)
    sh(standby, f"runuser -u postgres -- {c['bin']}/initdb -D %s --auth-local=peer --auth-host=reject >/dev/null",
       c["data_dir"])
    start = (f"runuser -u postgres -- {c['bin']}/pg_ctl -D %s -w -l /tmp/foreign.log "
             f"-o '-p {TEMP_PORT} -k /tmp -c listen_addresses=localhost' start >/dev/null")
    stop = f"runuser -u postgres -- {c['bin']}/pg_ctl -D %s -w -m fast stop >/dev/null"
    sh(standby, start, c["data_dir"])
    try:
        psql(standby, f"CREATE TABLE hotstandby_marker (token text); INSERT INTO hotstandby_marker "
                      f"VALUES ('{token}')", port=TEMP_PORT, socket="/tmp")
    finally:
        sh(standby, stop, c["data_dir"])
    return dict(token=token, data_dir=c["data_dir"], tree=tree_state(standby, c["data_dir"]), start=start,
                stop=stop, siblings=sh(standby, "ls -A %s", c["parent"]).split(), parent=c["parent"])


def test_foreign_data_refused_by_default(foreign, primary, standby):
    before = primary_state(primary)
    run = site()
    assert run.rc != 0 and run.failed(STANDBY) and not run.failed(PRIMARY), run.tail()
    assert f"{foreign['data_dir']} holds" in run.output and "existing_data: move_aside" in run.output, run.tail()
    assert changed(run, STANDBY) == 0, run.tail()  # refused before anything on the standby changed
    assert tree_state(standby, foreign["data_dir"]) == foreign["tree"]
    assert sh(standby, "ls -A %s", foreign["parent"]).split() == foreign["siblings"]
    assert primary_state(primary) == before


def test_foreign_data_moved_aside_on_request(foreign, primary, standby):
    run = site("-e", "postgres_standby_existing_data=move_aside")
    assert run.rc == 0, run.tail()
    moved = [s for s in sh(standby, "ls -A %s", foreign["parent"]).split() if s not in foreign["siblings"]]
    assert len(moved) == 1 and moved[0].startswith(os.path.basename(foreign["data_dir"]) + ".moved-"), moved
    moved = os.path.join(foreign["parent"], moved[0])
    assert moved in run.output  # the play reports where the old data went
    assert tree_state(standby, moved) == foreign["tree"]
    sh(standby, foreign["start"], moved)
    try:
        assert psql(standby, "SELECT token FROM hotstandby_marker", port=TEMP_PORT, socket="/tmp") == foreign["token"]
    finally:
        sh(standby, foreign["stop"], moved)
    assert streaming(primary)
    row_replicates(primary, standby)
    sh(standby, "rm -rf %s", moved)


# ---------------------------------------------------------------------------
# 5. lost standby
# ---------------------------------------------------------------------------

def test_lost_standby_primary_stays_bounded_and_rerun_reclones(primary, standby):
    c = cluster(standby)
    siblings = sh(standby, "ls -A %s", c["parent"]).split()
    sh(standby, "systemctl stop %s", c["service"])
    start_lsn = psql(primary, "SELECT pg_current_wal_lsn()")
    # write far more WAL than max_slot_wal_keep_size (64MB) + max_wal_size (96MB) while the standby is away
    for dummy in range(4):
        psql(primary, "CREATE TABLE IF NOT EXISTS lost_fill AS SELECT 0 AS g, '' AS pad WITH NO DATA")
        psql(primary, "INSERT INTO lost_fill SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, 100000) g")
        psql(primary, "SELECT pg_switch_wal()")
        psql(primary, "CHECKPOINT")
    written = int(psql(primary, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}')"))
    assert written > 200 * 1024 * 1024, written

    def slot_lost():
        status = psql(primary, f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{SLOT}'")
        if status != "lost":
            psql(primary, "SELECT pg_switch_wal()")
            psql(primary, "CHECKPOINT")
        return status == "lost" or status
    wait_for("the standby's slot lost", slot_lost, 60, 1)
    pg_wal = int(psql(primary, "SELECT sum(size) FROM pg_ls_waldir()"))
    assert pg_wal < (64 + 96 + 64) * 1024 * 1024, f"pg_wal holds {pg_wal} bytes after writing {written}"
    assert psql(primary, "SELECT pg_is_in_recovery()") == "f"
    psql(primary, "DROP TABLE lost_fill")
    # The first re-clone fails (pg_basebackup made to exit 1 on the standby): the slot is made anew, so
    # only the standby's marker still says it must be cloned again.
    marker = os.path.join(c["parent"], f".{c['name']}.hotstandby-reclone")
    real = os.path.join(c["bin"], "pg_basebackup")
    fake = (f'#!/bin/sh\ncase "$1" in --version|-V) exec {real}.real "$@";; esac\n'
            'echo "injected failure" >&2\nexit 1\n')
    sh(standby, "mv %s %s.real && printf '%%s' %s > %s && chmod 755 %s", real, real, fake, real, real)
    try:
        failed = site()
    finally:
        sh(standby, "mv -f %s.real %s", real, real)
    assert failed.rc != 0, failed.tail()
    assert "injected failure" in failed.output, failed.tail()
    assert psql(primary, f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{SLOT}'") not in ("", "lost")
    assert standby.file(marker).exists, "the failed re-clone left no marker: the next run would not clone"
    assert [s for s in sh(standby, "ls -A %s", c["parent"]).split() if s not in siblings] == [
        os.path.basename(marker)]  # nothing moved aside yet, no staging left
    # The next run clones again without any manual step.
    run = site()
    assert run.rc == 0, run.tail()
    assert not standby.file(marker).exists
    assert psql(primary, f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{SLOT}'") != "lost"
    moved = [s for s in sh(standby, "ls -A %s", c["parent"]).split() if s not in siblings]
    assert len(moved) == 1 and ".moved-" in moved[0], moved  # re-cloned; the old copy moved aside, not deleted
    wait_for("re-cloned standby streaming", lambda: streaming(primary))
    row_replicates(primary, standby)
    sh(standby, "rm -rf %s", os.path.join(c["parent"], moved[0]))
