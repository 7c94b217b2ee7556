"""What the fault and module verifiers share: reach a lab container through
docker and run commands and SQL in it, failing the test with the command's
output when one fails.

Importable from every molecule verifier: pytest.ini puts this directory on
the Python path (the verifiers run with the repository as pytest's rootdir).
"""
import testinfra


def dock(name):
    """The container ``name`` as a testinfra host (docker exec)."""
    return testinfra.get_host(f"docker://{name}")


def sh(host, cmd, *args):
    """Run ``cmd`` (testinfra quotes ``args`` into it); assert it succeeded; return stdout."""
    out = host.run(cmd, *args)
    assert out.rc == 0, f"{cmd % args if args else cmd}: rc={out.rc} {out.stdout} {out.stderr}"
    return out.stdout


def psql(host, sql, db="postgres", port=5432, socket=None, check=True):
    """One statement as postgres (local socket, or ``socket``); stdout without the trailing newline."""
    extra = f" -h {socket}" if socket else ""
    out = host.run(f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {db} -p {port}{extra} -c %s", sql)
    if check:
        assert out.rc == 0, f"{sql}: rc={out.rc} {out.stderr}"
    return out.stdout.strip()
