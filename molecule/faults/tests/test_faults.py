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
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
from labhost import dock, psql, sh

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
PRIMARY = "flt-primary"
STANDBY = "flt-standby"
TRIXIE = "flt-trixie"
NETWORK = "hotstandby-flt"
SITE = "hotstandby.postgresql.site"
PASSWORD = "molecule-faults-test-only-not-a-secret"  # the scenario's throwaway group_vars value
SLOT = "flt_standby"
TEMP_PORT = 5499
CATCH_UP = 120
WORK_DIR = tempfile.mkdtemp(prefix="hotstandby-faults-test-")
atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)
REPO_ROOT = os.environ.get("LAB_REPO_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def ansible_env():
    env = dict(os.environ)
    if os.environ.get("HOTSTANDBY_COLLECTIONS_PATH"):
        env["ANSIBLE_COLLECTIONS_PATH"] = os.environ["HOTSTANDBY_COLLECTIONS_PATH"]
    env.update(ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return env


def site_cmd(*args, extra_inventory=None):
    cmd = ["ansible-playbook", "-i", INVENTORY]
    if extra_inventory:
        path = os.path.join(WORK_DIR, f"inventory-{uuid.uuid4().hex[:8]}.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(extra_inventory)
        cmd += ["-i", path]
    return cmd + [SITE] + list(args)


class Run:
    """A finished site playbook run."""

    def __init__(self, rc, output):
        self.rc = rc
        self.output = output

    def recap(self, host):
        m = re.search(r"^%s\s*:\s*(.*)$" % re.escape(host), self.output, re.M)
        return dict(re.findall(r"(\w+)=(\d+)", m.group(1))) if m else {}

    def failed(self, host):
        r = self.recap(host)
        return int(r.get("failed", 0)) + int(r.get("unreachable", 0)) > 0

    def tail(self, n=6000):
        return self.output[-n:]


def site(*args, extra_inventory=None, timeout=900):
    proc = subprocess.run(site_cmd(*args, extra_inventory=extra_inventory), env=ansible_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout + proc.stderr)


def start_site(*args, extra_inventory=None):
    log = open(os.path.join(WORK_DIR, f"site-{uuid.uuid4().hex[:8]}.log"), "w+", encoding="utf-8")
    proc = subprocess.Popen(site_cmd(*args, extra_inventory=extra_inventory), env=ansible_env(), stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    return proc, log


def finish_site(proc, log, timeout=900):
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    out = log.read()
    log.close()
    return Run(rc, out)


def cluster(host):
    ver, name, _port, status, _owner, data_dir = host.check_output("pg_lsclusters -h").split()[:6]
    return dict(version=ver, name=name, status=status, data_dir=data_dir,
                service=f"postgresql@{ver}-{name}", bin=f"/usr/lib/postgresql/{ver}/bin",
                parent=os.path.dirname(data_dir))


def wait_for(what, predicate, timeout=CATCH_UP, interval=1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except AssertionError as exc:  # a host that is still starting
            last = exc
        if last is True:
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last})")


def streaming(primary):
    return psql(primary, f"SELECT state FROM pg_stat_replication WHERE application_name = '{STANDBY}'",
                check=False) == "streaming"


def row_replicates(primary, standby):
    token = uuid.uuid4().hex
    psql(primary, "CREATE TABLE IF NOT EXISTS faults_verify (token text)")
    psql(primary, f"INSERT INTO faults_verify VALUES ('{token}')")
    wait_for("row replayed on the standby",
             lambda: psql(standby, f"SELECT token FROM faults_verify WHERE token = '{token}'", check=False) == token)


def data_state(standby):
    """The standby's data directory as a clone or a settings rewrite would change it, and its passfile."""
    c = cluster(standby)
    files = sh(standby, "find %s -maxdepth 1 -type f -printf '%%P %%T@ %%s %%i\\n'; stat -c 'DIR %%i' %s",
               c["data_dir"], c["data_dir"])
    sysid = sh(standby, f"{c['bin']}/pg_controldata %s | sed -n 's/^Database system identifier: *//p'",
               c["data_dir"]).strip()
    passfile = sh(standby, "sha256sum /var/lib/postgresql/.pgpass_replication").split()[0]
    siblings = sh(standby, "ls -A %s", c["parent"]).split()
    return dict(files=sorted(files.splitlines()), sysid=sysid, passfile=passfile, siblings=siblings)


def primary_state(primary):
    c = cluster(primary)
    return dict(
        slots=psql(primary, "SELECT string_agg(slot_name || ':' || slot_type, ',' ORDER BY slot_name) "
                   "FROM pg_replication_slots"),
        role=psql(primary, "SELECT md5(rolpassword) || rolreplication::text FROM pg_authid "
                  "WHERE rolname = 'replicator'"),
        hba=sh(primary, "sha256sum /etc/postgresql/%s/%s/pg_hba.conf", c["version"], c["name"]).split()[0],
        conf=sh(primary, "cat /etc/postgresql/%s/%s/conf.d/*.conf | sha256sum", c["version"], c["name"]).split()[0],
        sysid=psql(primary, "SELECT system_identifier FROM pg_control_system()"),
        postmaster=psql(primary, "SELECT pg_postmaster_start_time()"),
        recovery=psql(primary, "SELECT pg_is_in_recovery()"))


def tree_state(host, path):
    return sorted(sh(host, "find %s -printf '%%P %%y %%m %%s %%T@\\n'", path).splitlines())


def staging_dirs(standby):
    c = cluster(standby)
    return sh(standby, "find %s -maxdepth 1 -name '.*hotstandby-staging*'", c["parent"]).split()


def processes(host):
    procs = {}
    for line in host.run("ps -eo pid=,ppid=,args=").stdout.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3:
            procs[int(fields[0])] = (int(fields[1]), fields[2])
    return procs


def basebackups(host):
    """(pid, ppid) of the running pg_basebackup processes."""
    return [(pid, ppid) for pid, (ppid, args) in processes(host).items()
            if os.path.basename(args.split()[0]) == "pg_basebackup"]


@pytest.fixture(scope="module")
def primary():
    return dock(PRIMARY)


@pytest.fixture(scope="module")
def standby():
    return dock(STANDBY)


@pytest.fixture(scope="module", autouse=True)
def pair_streams_at_start(primary, standby):
    wait_for("the converged standby streaming", lambda: streaming(primary))


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
    assert run.recap(PRIMARY).get("changed") == "0" and not run.recap(STANDBY), run.tail()
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
    assert primary_state(primary) == before
    wait_for("the standby streaming again after its container restarted", lambda: streaming(primary))


def test_limit_without_the_primary_is_refused_before_any_change(primary, standby):
    before = data_state(standby), primary_state(primary)
    run = site("--limit", STANDBY)
    assert run.rc != 0 and run.failed(STANDBY), run.tail()
    assert f"--limit leaves out the primary {PRIMARY}" in run.output, run.tail()
    assert run.recap(STANDBY).get("changed") == "0", run.tail()
    assert (data_state(standby), primary_state(primary)) == before


def test_wrong_password_names_the_cause_and_changes_nothing(primary, standby):
    before = data_state(standby), primary_state(primary)
    wrong = "wrong-" + uuid.uuid4().hex
    # only the standby has the wrong password: the primary keeps the right one
    run = site(extra_inventory=f"all:\n  hosts:\n    {STANDBY}:\n      postgres_replication_password: {wrong}\n")
    assert run.rc != 0 and run.failed(STANDBY) and not run.failed(PRIMARY), run.tail()
    assert "password authentication" in run.output and "postgres_replication_password" in run.output, run.tail()
    assert wrong not in run.output and PASSWORD not in run.output
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


class Sampler(threading.Thread):
    """Collects every command line seen on the hosts while a run is going on."""

    def __init__(self, hosts):
        super().__init__(daemon=True)
        self.hosts = hosts
        self.cmdlines = set()
        self.samples = 0
        self.during_clone = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for name in self.hosts:
                out = subprocess.run(["docker", "exec", name, "ps", "-eo", "args="], capture_output=True,
                                     text=True, check=False).stdout
                lines = out.splitlines()
                self.cmdlines.update(lines)
                self.samples += 1
                if any(os.path.basename(line.split()[0]) == "pg_basebackup" for line in lines if line.strip()):
                    self.during_clone += 1
            time.sleep(0.2)


@pytest.fixture(scope="module")
def loaded_rerun(bench, primary, standby):
    """Re-run site.yml (-vvv) after the interrupted clone while pgbench writes to the primary throughout."""
    c = cluster(primary)
    runuser_pid = sh(primary, f"runuser -u postgres -- {c['bin']}/pgbench -n -c 2 -j 1 -T 1200 fltbench "
                              ">/tmp/fltbench.log 2>&1 & echo $!").strip()
    wait_for("pgbench running", lambda: bool(sh(primary, "ps -o pid= --ppid %s", runuser_pid).strip()), 30, 0.2)
    pgbench_pid = sh(primary, "ps -o pid= --ppid %s", runuser_pid).strip()
    history_at_start = int(psql(primary, "SELECT count(*) FROM pgbench_history", db="fltbench"))
    sampler = Sampler([PRIMARY, STANDBY])
    sampler.start()
    try:
        run = site("-vvv")
    finally:
        sampler.stop.set()
        sampler.join(30)
        alive_at_end = primary.run("kill -0 %s", pgbench_pid).rc == 0
        # TERM: a background job of a non-interactive shell ignores INT
        primary.run("kill -TERM %s", pgbench_pid)
        wait_for("pgbench stopped", lambda: primary.run("kill -0 %s", pgbench_pid).rc != 0, 60, 0.5)
    history_at_end = int(psql(primary, "SELECT count(*) FROM pgbench_history", db="fltbench"))
    return dict(run=run, sampler=sampler, alive_at_end=alive_at_end, history_at_start=history_at_start,
                history_at_end=history_at_end)


def test_rerun_after_interrupted_clone_converges(loaded_rerun, primary, standby):
    run = loaded_rerun["run"]
    assert run.rc == 0, run.tail()
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
    sampler = loaded_rerun["sampler"]
    assert sampler.during_clone > 0, "no sample saw pg_basebackup running"
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
    sampler = loaded_rerun["sampler"]
    assert sampler.samples > 10
    leaked = [c for c in sampler.cmdlines if PASSWORD in c]
    assert not leaked, leaked


@pytest.mark.parametrize("name", [PRIMARY, STANDBY])
def test_password_only_in_files_of_postgres_and_root(loaded_rerun, name):
    host = dock(name)
    found = host.run("grep -rlsF --devices=skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -e %s / "
                     "| xargs -r stat -c '%%n %%U %%G %%a'", PASSWORD).stdout.splitlines()
    exposed = []
    for line in found:
        path, owner, group, mode = line.rsplit(" ", 3)
        mode = int(mode, 8)
        if mode & 0o004 or (mode & 0o040 and group not in ("root", "postgres")) \
                or (mode & 0o400 and owner not in ("root", "postgres")):
            exposed.append(line)
    assert not exposed, exposed


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
    run = site()
    assert run.rc == 0, run.tail()
    assert psql(primary, f"SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{SLOT}'") != "lost"
    moved = [s for s in sh(standby, "ls -A %s", c["parent"]).split() if s not in siblings]
    assert len(moved) == 1 and ".moved-" in moved[0], moved  # re-cloned; the old copy moved aside, not deleted
    wait_for("re-cloned standby streaming", lambda: streaming(primary))
    row_replicates(primary, standby)
    sh(standby, "rm -rf %s", os.path.join(c["parent"], moved[0]))
