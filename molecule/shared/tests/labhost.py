"""What the molecule verifiers share, in one place.

* the scenario's inventory (molecule's MOLECULE_INVENTORY_FILE): its groups in inventory order, host
  variables, and its hosts as testinfra hosts (``node``), or any container by name (``dock``);
* commands and SQL on a host (``sh``, ``psql``), failing the test with the command's output;
* the host's Debian cluster (``cluster``), the primary's replication state (``primary_state``), and
  snapshots of processes, files and directory trees;
* ansible-playbook runs: the environment, the command line, and what a run reported (``Run``: its
  PLAY RECAP counts and failed results);
* the replication password's written forms and the files that hold one of them.

Importable from every molecule verifier: pytest.ini puts this directory on the Python path (the verifiers
run with the repository as pytest's rootdir). The fixtures built from it (``primary``, ``standby``) are
in molecule/conftest.py, which pytest loads for every verifier below molecule/.
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import psycopg2
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner, itergroup

# the passfile the pg_basebackup module writes by default (in the home of postgres)
PASSFILE = "/var/lib/postgresql/.pgpass_replication"


# ---------------------------------------------------------------------------
# the scenario's inventory and its hosts
# ---------------------------------------------------------------------------

def inventory_file():
    """The inventory molecule wrote for the scenario."""
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert path, "MOLECULE_INVENTORY_FILE is not set: run the verifier through molecule"
    return path


def runner():
    return AnsibleRunner.get_runner(inventory_file())


def group_hosts(group):
    """The hosts of an inventory group in inventory order (the order of groups[group] in a play)."""
    return list(dict.fromkeys(itergroup(runner().inventory, group)))


def standby_names():
    """Every standby: postgres_standby, then postgres_standby_later (scenarios that add hosts to the
    inventory in side_effect keep them there; by verify they are standbys too)."""
    return list(dict.fromkeys(group_hosts("postgres_standby") + group_hosts("postgres_standby_later")))


def hostvar(name, var, default=None):
    """An inventory variable of a host (group_vars and host_vars applied)."""
    return runner().get_variables(name).get(var, default)


def node(name):
    """A host of the scenario's inventory (docker exec through its ansible connection; ``host.ansible`` works)."""
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory_file()}")


def replication_info(name, port=5432, extra=""):
    """hotstandby.postgresql.pg_replication_info's result on a host of the inventory (as the OS user postgres)."""
    return node(name).ansible("hotstandby.postgresql.pg_replication_info",
                              f"login_unix_socket=/var/run/postgresql login_port={port} {extra}".rstrip(),
                              check=False, become=True, become_user="postgres")


def dock(name):
    """The container ``name`` as a testinfra host (docker exec), in the inventory or not."""
    return testinfra.get_host(f"docker://{name}")


def name_of(host):
    """The inventory (or container) name of a testinfra host."""
    return host.backend.hostname


# ---------------------------------------------------------------------------
# commands and SQL
# ---------------------------------------------------------------------------

def sh(host, cmd, *args):
    """Run ``cmd`` (testinfra quotes ``args`` into it); assert it succeeded; return stdout."""
    out = host.run(cmd, *args)
    assert out.rc == 0, f"{name_of(host)}: {cmd % args if args else cmd}: rc={out.rc} {out.stdout} {out.stderr}"
    return out.stdout


def psql_result(host, sql, db="postgres", port=5432, socket=None):
    """One statement as postgres (local socket, or ``socket``): the command's result, whatever it is."""
    extra = f" -h {socket}" if socket else ""
    return host.run(f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {db} -p {port}{extra} -c %s", sql)


def psql(host, sql, db="postgres", port=5432, socket=None, check=True):
    """One statement as postgres; stdout without the trailing newline (asserted to succeed unless check=False)."""
    out = psql_result(host, sql, db=db, port=port, socket=socket)
    if check:
        assert out.rc == 0, f"{name_of(host)}: {sql!r} failed: rc={out.rc} {out.stderr}"
    return out.stdout.strip()


def psql_json(host, query, db="postgres"):
    """The rows of a query as a list of dicts ([] for none)."""
    return json.loads(psql(host, f"SELECT coalesce(json_agg(r), '[]'::json) FROM ({query}) r", db=db))


def sql_literal(text):
    return "'" + str(text).replace("'", "''") + "'"


def cluster(host):
    """The host's one Debian cluster: version, name, port, status, data_dir, service, bin, conf_dir, parent."""
    lines = host.check_output("pg_lsclusters -h").splitlines()
    assert len(lines) == 1, f"{name_of(host)}: expected exactly one cluster, found {lines}"
    ver, name, port, status, owner, data_dir = lines[0].split()[:6]
    return dict(version=ver, name=name, port=port, status=status, owner=owner, data_dir=data_dir,
                service=f"postgresql@{ver}-{name}", bin=f"/usr/lib/postgresql/{ver}/bin",
                conf_dir=f"/etc/postgresql/{ver}/{name}", parent=os.path.dirname(data_dir))


def conninfo_fields(host):
    """The standby's primary_conninfo as a dict (passfile, host, port, user, ...)."""
    conninfo = psql(host, "SHOW primary_conninfo")
    return {k: v.strip("'") for k, v in (f.split("=", 1) for f in conninfo.split() if "=" in f)}


def wait_for(what, predicate, timeout=120, interval=1.0):
    """Wait until predicate() returns True (an AssertionError counts as not yet: a host still starting)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except AssertionError as exc:
            last = exc
        if last is True:
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last})")


# ---------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------

def primary_state(primary):
    """What a run could change on the primary: slots, the replication role, pg_hba (file and rules), the
    conf.d drop-ins, the system identifier, the postmaster's start time and the recovery state."""
    c = cluster(primary)
    return dict(
        slots=psql(primary, "SELECT string_agg(slot_name || ':' || slot_type, ',' ORDER BY slot_name) "
                   "FROM pg_replication_slots"),
        role=psql(primary, "SELECT md5(rolpassword) || rolreplication::text || rolcanlogin::text "
                  "FROM pg_authid WHERE rolname = 'replicator'"),
        hba=sha256(primary, f"{c['conf_dir']}/pg_hba.conf"),
        hba_rules=psql(primary, "SELECT md5(string_agg(line_number || type || array_to_string(database, ',') "
                       "|| coalesce(address, ''), '|' ORDER BY line_number)) FROM pg_hba_file_rules"),
        conf=sh(primary, "cat %s/conf.d/*.conf | sha256sum", c["conf_dir"]).split()[0],
        sysid=psql(primary, "SELECT system_identifier FROM pg_control_system()"),
        postmaster=psql(primary, "SELECT pg_postmaster_start_time()"),
        recovery=psql(primary, "SELECT pg_is_in_recovery()"))


def sha256(host, path):
    return sh(host, "sha256sum %s", path).split()[0]


def top_files(host, path):
    """name, mtime, size and inode of the top-level files of a directory, plus the directory's inode.

    The top-level files (PG_VERSION, postgresql.auto.conf, standby.signal, backup_manifest, ...) are
    those a clone or a settings rewrite replaces; a running standby does not touch them.
    """
    out = sh(host, "find %s -maxdepth 1 -type f -printf '%%P %%T@ %%s %%i\\n'; stat -c 'DIR %%i' %s", path, path)
    return sorted(out.splitlines())


def tree_state(host, path, hashes=False):
    """Every entry below path with type, mode, owner, group, size and mtime, and with hashes=True the
    sha256 of every file (for directories no server writes in)."""
    entries = sh(host, "find %s -printf '%%P %%y %%m %%u %%g %%s %%T@\\n'", path).splitlines()
    if hashes:
        entries += ["sha256 " + line for line in
                    sh(host, "cd %s && find . -type f -exec sha256sum -- {} +", path).splitlines()]
    return sorted(entries)


Proc = collections.namedtuple("Proc", "ppid pgid argv")


def processes(host):
    """pid -> Proc(ppid, pgid, argv) of every process on the host."""
    procs = {}
    for line in host.run("ps -eo pid=,ppid=,pgid=,args=").stdout.splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4:
            procs[int(fields[0])] = Proc(int(fields[1]), int(fields[2]), fields[3].split())
    return procs


def basebackups(host, target=None, procs=None):
    """(pid, ppid) of the running pg_basebackup processes (only those writing into ``target``, if given)."""
    procs = processes(host) if procs is None else procs
    found = []
    for pid, proc in procs.items():
        argv = proc.argv
        if not argv or os.path.basename(argv[0]) != "pg_basebackup":
            continue
        if target is not None and not ("-D" in argv and argv.index("-D") + 1 < len(argv)
                                       and argv[argv.index("-D") + 1] == target):
            continue
        found.append((pid, proc.ppid))
    return found


# ---------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------

def secret_forms(password):
    """The password as it may be written down: as is, as a libpq passfile field (':' and '\\' escaped),
    and inside a JSON string."""
    return sorted({password, password.replace("\\", "\\\\").replace(":", "\\:"), json.dumps(password)[1:-1]})


def files_holding(host, password, attempts=3):
    """(path, owner, group, mode) of every file on the host that holds the password in one of its forms.

    Everything but /proc, /sys and /dev is searched. A grep error fails the test: only files that
    vanished while grep walked the tree (a server's temporary files) are tolerated, by searching again.
    """
    forms = secret_forms(password)
    tops = sh(host, "find / -mindepth 1 -maxdepth 1 -not -type l -not -name proc -not -name sys "
                    "-not -name dev -print").split()
    cmd = "grep -rlF --devices=skip " + " ".join(["-e %s"] * len(forms)) + " -- " + " ".join(["%s"] * len(tops))
    for attempt in range(attempts):
        out = host.run(cmd, *forms, *tops)
        errors = [line for line in out.stderr.splitlines() if line.strip()]
        if out.rc in (0, 1) and not errors:
            break
        vanished = out.rc == 2 and errors and all(line.endswith("No such file or directory") for line in errors)
        assert vanished and attempt + 1 < attempts, \
            f"{name_of(host)}: the search for the password failed (rc={out.rc}): {out.stderr[-3000:]}"
    found = []
    for path in sorted(set(out.stdout.splitlines())):
        owner, group, mode = sh(host, "stat -c '%%U %%G %%a' -- %s", path).split()
        found.append((path, owner, group, int(mode, 8)))
    return found


def exposed(found, trusted=("root", "postgres")):
    """The entries of files_holding() that a user other than root and postgres can read."""
    return [(path, owner, group, oct(mode)) for path, owner, group, mode in found
            if mode & 0o004 or (mode & 0o040 and group not in trusted) or (mode & 0o400 and owner not in trusted)]


# ---------------------------------------------------------------------------
# ansible-playbook runs
# ---------------------------------------------------------------------------

def ansible_env(json_results=False):
    """The environment of an ansible-playbook run: the collection from HOTSTANDBY_COLLECTIONS_PATH (the
    clone, or the artifact under `make test`), no colours; json_results: one JSON line per result."""
    env = dict(os.environ)
    collections_path = env.get("HOTSTANDBY_COLLECTIONS_PATH") or env.get("ANSIBLE_COLLECTIONS_PATH")
    assert collections_path, "run through molecule (or set HOTSTANDBY_COLLECTIONS_PATH)"
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true",
               ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_HOST_KEY_CHECKING="false")
    if json_results:
        # one JSON object per failed result, so the message can be read back, printed on stdout after the
        # banner of its task (molecule's ansible.cfg sends failures to stderr: display_failed_stderr)
        env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                   ANSIBLE_CALLBACK_FORMAT_PRETTY="false", ANSIBLE_DISPLAY_FAILED_STDERR="false")
    return env


def ansible_playbook():
    """The virtualenv's ansible-playbook (next to the Python running the tests), else the one on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return local if os.path.exists(local) else shutil.which("ansible-playbook") or "ansible-playbook"


def playbook_cmd(playbook, *args, inventories=None):
    """ansible-playbook -i INVENTORY... PLAYBOOK ARGS (default: the scenario's inventory)."""
    cmd = [ansible_playbook()]
    for path in inventories or [inventory_file()]:
        cmd += ["-i", path]
    return cmd + [playbook] + list(args)


_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+[ \t]*)+)$", re.M)
_TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]")
# "fatal: [host]: FAILED! => {...}", and per loop item "failed: [host] (item=x) => {...}"
_FAILED = re.compile(r"^(?:fatal|failed): \[([^\]]+)\](?::| \(item=.*?\)) (?:FAILED! )?=> (\{.*\})\s*$")

Failure = collections.namedtuple("Failure", "host task msg")


def parse_recap(output):
    """host -> {ok, changed, unreachable, failed, skipped, rescued, ignored} of the last PLAY RECAP."""
    start = output.rfind("PLAY RECAP")
    if start < 0:
        return {}
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in _RECAP_LINE.findall(output[start:])}


def parse_failures(output):
    """Failure(host, task, msg) of every failed result printed as JSON (ansible_env(json_results=True)); task
    is the banner printed before it (None if the failures went to another stream than the banners)."""
    failures = []
    task = None
    for line in output.splitlines():
        m = _TASK.match(line)
        if m:
            task = m.group(1)
            continue
        m = _FAILED.match(line)
        if m:
            host, result = m.groups()
            try:
                data = json.loads(result)
            except json.JSONDecodeError:
                data = None
            msg = data.get("msg", result) if isinstance(data, dict) else result
            failures.append(Failure(host, task, str(msg)))
    return failures


class Run:
    """One finished ansible-playbook run: its return code, output, PLAY RECAP and failed results."""

    def __init__(self, rc, output, name="ansible-playbook", seconds=0.0, hosts=None):
        self.rc = rc
        self.output = output
        self.name = name
        self.seconds = seconds
        self.recap = parse_recap(output)
        self.failures = parse_failures(output)
        # the hosts the run was for (default: those in its recap)
        self.hosts = sorted(hosts) if hosts is not None else sorted(self.recap)

    def counts(self, host):
        """The host's PLAY RECAP counts ({} if it has no recap line)."""
        return self.recap.get(host, {})

    def failed(self, host):
        counts = self.counts(host)
        return counts.get("failed", 0) + counts.get("unreachable", 0) > 0

    @property
    def messages(self):
        return "\n".join(f"[{f.host}] {f.msg}" for f in self.failures)

    def tail(self, n=6000):
        return self.output[-n:]

    def __repr__(self):
        tail = "\n".join(self.output.splitlines()[-40:])
        return f"<{self.name}: rc={self.rc} in {self.seconds:.0f}s>\n{tail}"


def run_playbook(cmd, env=None, timeout=900, cwd=None, log_path=None, name="ansible-playbook", hosts=None):
    """Run an ansible-playbook command line to its end; the output is kept in log_path if given."""
    started = time.monotonic()
    proc = subprocess.run(cmd, env=ansible_env() if env is None else env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    if log_path:
        with open(log_path, "w", encoding="utf-8") as f:
            f.write(output)
    return Run(proc.returncode, output, name=name, seconds=time.monotonic() - started, hosts=hosts)


def start_playbook(cmd, log_path, env=None):
    """Start an ansible-playbook command line in the background, its output going to log_path."""
    log = open(log_path, "w+", encoding="utf-8")
    proc = subprocess.Popen(cmd, env=ansible_env() if env is None else env, stdout=log, stderr=subprocess.STDOUT,
                            text=True)
    return proc, log


def finish_playbook(proc, log, timeout=900, name="ansible-playbook"):
    """Wait for a run of start_playbook (killed after timeout) and return it as a Run."""
    started = time.monotonic()
    try:
        rc = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    out = log.read()
    log.close()
    return Run(rc, out, name=name, seconds=time.monotonic() - started)


class Writer(threading.Thread):
    """Inserts numbered rows into table (one column n), one per commit, through conninfo (every node,
    target_session_attrs=read-write) as user, reconnecting on any error; a row counts only once its commit
    returned (acked). With lsns, the server's WAL position read right after each acknowledged commit (at or after
    the end of its commit record) is kept in lsn_after[n]."""

    def __init__(self, conninfo, user, password, table, seconds=240, lsns=False):
        super().__init__(daemon=True)
        self.conninfo = f"{conninfo} dbname=postgres user={user} password={password} connect_timeout=2"
        self.insert, self.seconds, self.lsns = f"INSERT INTO {table} VALUES (%s)", seconds, lsns
        self.acked, self.errors, self.stop, self.n = [], 0, threading.Event(), 0
        self.times, self.lsn_after = [], {}

    def run(self):
        conn = None
        deadline = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < deadline and self.n < 100000:
            self.n += 1
            try:
                if conn is None:
                    conn = psycopg2.connect(self.conninfo)
                with conn.cursor() as cur:
                    cur.execute(self.insert, (self.n,))
                conn.commit()
                self.acked.append(self.n)
                self.times.append(time.monotonic())
                if self.lsns:
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_current_wal_lsn()::text")
                        self.lsn_after[self.n] = cur.fetchone()[0]
                    conn.commit()
            except psycopg2.Error:
                self.errors += 1
                try:
                    if conn is not None:
                        conn.close()
                except psycopg2.Error:
                    pass
                conn = None
                time.sleep(0.1)
            time.sleep(0.01)

    def longest_gap(self):
        return max((b - a for a, b in zip(self.times, self.times[1:])), default=0.0)


# ---------------------------------------------------------------------------
# a node's replication state, by container name (day-two scenarios)
# ---------------------------------------------------------------------------

def in_recovery(name):
    return psql(dock(name), "SELECT pg_is_in_recovery()")


def started_at(name):
    return psql(dock(name), "SELECT pg_postmaster_start_time()")


def timeline(name):
    """The timeline of the node's last checkpoint (or restart point)."""
    return int(psql(dock(name), "SELECT timeline_id FROM pg_control_checkpoint()"))


def streams_from(upstream, name):
    """Whether upstream reports name's replication connection as streaming."""
    return psql(dock(upstream), "SELECT count(*) FROM pg_stat_replication "
                                f"WHERE application_name = '{name}' AND state = 'streaming'") == "1"
