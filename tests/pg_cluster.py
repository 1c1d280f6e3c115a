"""A throwaway PostgreSQL 15 cluster for the tests that need a real server.

Import the `postgres` fixture into a test module (`from pg_cluster import postgres`): one
cluster per module, on 127.0.0.1 and a free port, its data and socket in a temporary folder,
stopped and removed whatever happens. A missing binary skips locally and fails under CI=true.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
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


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL 15 cluster for this module (local_servers.Postgres: a foreground server that
    the kernel stops with the test process, even one killed with SIGKILL), stopped and removed
    whatever happens.

    As root (CI, the Debian box) the server runs as the `postgres` OS user,
    since PostgreSQL refuses to run as root; otherwise as the current user.
    The superuser role is `postgres` either way.
    """
    from local_servers import Postgres

    require_binary("initdb", str(PG_BIN / "initdb"))
    require_binary("postgres", str(PG_BIN / "postgres"))
    psql = require_binary("psql", str(PG_BIN / "psql"))
    if os.geteuid() == 0:
        require_binary("runuser")
        _require_os_user("postgres")
    with Postgres() as server:
        cluster = Cluster(psql, server.port, server.base)
        # Listening comes before accepting: "the database system is starting up" for a moment.
        for _ in range(200):
            if cluster.query("SELECT 1").returncode == 0:
                break
            time.sleep(0.05)
        yield cluster
