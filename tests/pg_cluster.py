"""A throwaway PostgreSQL 15 cluster for the tests that need a real server.

Import the `postgres` fixture into a test module (`from pg_cluster import postgres`): one
cluster per module, on 127.0.0.1 and a free port, its data and socket in a temporary folder,
stopped and removed whatever happens. A missing binary skips locally and fails under CI=true.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import UNDER_CI, require_binary

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TOOL_TIMEOUT = 60


def _run(args: list) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def _explain(proc: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(proc.args)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@dataclass(frozen=True)
class Cluster:
    """A running throwaway PostgreSQL cluster, reachable on 127.0.0.1:port and over the unix
    socket in `socket_dir`."""

    psql: str
    port: int
    socket_dir: Path | None = None

    def query(self, *sql: str, user: str = "postgres", database: str = "postgres",
              file: Path | None = None, quiet: bool = True) -> subprocess.CompletedProcess:
        """Run statements (each -c) or a file (-f) with ON_ERROR_STOP, unaligned, tuples only.

        Args:
            sql: statements, each passed as its own -c.
            user: the role to connect as (trust authentication).
            database: the database to connect to, passed verbatim (no case folding).
            file: an SQL file to run instead of or after the statements.
            quiet: psql's -q; without it psql prints each command's tag (`CREATE ROLE`).
        """
        args = [self.psql, "-X", *(["-q"] if quiet else []), "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", self.port, "-U", user, "-d", database]
        for statement in sql:
            args += ["-c", statement]
        if file is not None:
            args += ["-f", file]
        # PG* variables of the caller would redirect the connection.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT, check=False)


def _require_os_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        message = f"OS user {name!r} does not exist (the PostgreSQL server package creates it)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL 15 cluster for this module, stopped and removed whatever happens.

    As root (CI, the Debian box) the server runs as the `postgres` OS user,
    since PostgreSQL refuses to run as root; otherwise as the current user.
    The superuser role is `postgres` either way.
    """
    initdb = require_binary("initdb", str(PG_BIN / "initdb"))
    pg_ctl = require_binary("pg_ctl", str(PG_BIN / "pg_ctl"))
    psql = require_binary("psql", str(PG_BIN / "psql"))
    as_postgres: list[str] = []
    owner = None
    if os.geteuid() == 0:
        as_postgres = [require_binary("runuser"), "-u", "postgres", "--"]
        owner = _require_os_user("postgres")
    # Not under pytest's tmp dirs: those are private to the user running the
    # tests (0700), and the server must reach its data and socket directories.
    base = Path(tempfile.mkdtemp(prefix="deploygen-pg-"))
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, log = base / "data", base / "server.log"
    try:
        proc = _run([*as_postgres, initdb, "-D", data, "-A", "trust", "-U", "postgres",
                     "--no-sync", "--no-instructions"])
        assert proc.returncode == 0, _explain(proc)
        port = _free_port()
        # fsync off: the cluster is thrown away, and it keeps the module fast.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
        # -l: without it the server inherits our pipes and the run never returns.
        proc = _run([*as_postgres, pg_ctl, "-D", data, "-l", log, "-o", options, "-w", "-t", "30", "start"])
        assert proc.returncode == 0, _explain(proc) + (log.read_text() if log.exists() else "")
        yield Cluster(psql, port, base)
    finally:
        # Harmless when the server never started; vital when start timed out.
        _run([*as_postgres, pg_ctl, "-D", data, "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)
