"""Servers the Ansible tests start: sshd and PostgreSQL on 127.0.0.1, in temporary folders.

Each runs in the foreground as a child of the test process, which the kernel kills if the
test process dies, even of SIGKILL (deploygen.parent_death); `stop()` (a fixture's teardown,
a `with` block's exit) kills it and removes its folder whatever happened.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from deploygen.parent_death import die_with_parent

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s: {log.read_text(errors='replace')}")


def _as_child_of(parent: int, user: pwd.struct_passwd | None = None):
    """preexec_fn: become `user` (if given), then die with `parent` (after: a change of user
    clears the parent-death signal)."""

    def preexec() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        die_with_parent(signal.SIGKILL, parent)

    return preexec


class _Server:
    """A server in a `with` block: started on entry, stopped on exit, also when starting fails."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill(proc: subprocess.Popen | None, first: int = signal.SIGKILL) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(first)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Sshd(_Server):
    """`sshd -D` on 127.0.0.1:PORT with a temporary host key, one authorized client key, no PAM.

    `inventory_vars()` are what an inventory host needs to reach it as the current user.
    """

    def __init__(self, sshd: str, ssh_keygen: str, ssh: str) -> None:
        self.sshd, self.ssh_keygen, self.ssh = sshd, ssh_keygen, ssh
        self.base = Path(tempfile.mkdtemp(prefix="deploygen-sshd-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> Self:
        base = self.base
        for key in ("host_key", "client_key"):
            subprocess.run([self.ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(base / key)],
                           check=True, capture_output=True, timeout=30)
        shutil.copy(base / "client_key.pub", base / "authorized_keys")
        host_public = (base / "host_key.pub").read_text().split()
        # sshd refuses to start without its privilege separation folder (the service makes it).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = base / "sshd.log"
        for _ in range(5):  # a port taken between free_port() and sshd's bind: try another
            self.port = free_port()
            (base / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_public[0]} {host_public[1]}\n")
            (base / "sshd_config").write_text(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
                f"PidFile {base / 'sshd.pid'}\nAuthorizedKeysFile {base / 'authorized_keys'}\n"
                "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
            with open(log, "wb") as out:
                self.proc = subprocess.Popen(
                    [self.sshd, "-D", "-e", "-f", str(base / "sshd_config")], stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=_as_child_of(os.getpid()))  # noqa: PLW1509
            try:
                _wait_for_port(self.port, self.proc, "sshd", log)
                return self
            except RuntimeError:
                if self.proc.poll() is None:
                    raise
                if "Address already in use" not in log.read_text(errors="replace"):
                    raise
        raise RuntimeError("sshd found no free port")

    def inventory_vars(self) -> dict:
        base = self.base
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": pwd.getpwuid(os.getuid()).pw_name,
            "ansible_ssh_private_key_file": str(base / "client_key"),
            # One master connection per host, its socket here: stop() closes them all.
            "ansible_ssh_args": f"-o ControlMaster=auto -o ControlPersist=30s -o ControlPath={base}/cm-%C "
                                f"-o UserKnownHostsFile={base / 'known_hosts'} -o StrictHostKeyChecking=yes",
            "ansible_pipelining": True,
            "ansible_ssh_transfer_method": "piped",  # over the open connection: no sftp session per file
        }

    def stop(self) -> None:
        try:
            for master in self.base.glob("cm-*"):
                subprocess.run([self.ssh, "-o", f"ControlPath={master}", "-O", "exit", "127.0.0.1"],
                               capture_output=True, timeout=10, check=False)
        finally:
            _kill(self.proc)
            shutil.rmtree(self.base, ignore_errors=True)



class Postgres(_Server):
    """A throwaway PostgreSQL 15 cluster: trust authentication, 127.0.0.1:PORT, socket in its folder.

    As root the server runs as the `postgres` OS user (PostgreSQL refuses root); the superuser
    role is `postgres` either way.
    """

    def __init__(self) -> None:
        # Not under pytest's tmp folders: those are private (0700) to the user running the tests.
        self.base = Path(tempfile.mkdtemp(prefix="deploygen-pg-"))
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def start(self) -> Self:
        data, log = self.base / "data", self.base / "server.log"
        if self.owner is not None:
            os.chown(self.base, self.owner.pw_uid, self.owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"] if self.owner is not None else []
        subprocess.run([*as_owner, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "--no-instructions"], check=True, capture_output=True, timeout=120)
        self.port = free_port()
        with open(log, "wb") as out:
            if self.owner is not None:
                os.chown(log, self.owner.pw_uid, self.owner.pw_gid)
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.base),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_as_child_of(os.getpid(), self.owner))  # noqa: PLW1509
        _wait_for_port(self.port, self.proc, "postgres", log, timeout=60)
        return self

    def connect(self, user: str = "postgres", dbname: str = "postgres"):
        import psycopg

        for _ in range(100):  # listening is not yet accepting connections
            try:
                return psycopg.connect(host="127.0.0.1", port=self.port, user=user, dbname=dbname,
                                       autocommit=True, connect_timeout=5)
            except psycopg.OperationalError as exc:
                if "starting up" not in str(exc):
                    raise
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not finish starting")

    def stop(self) -> None:
        try:
            _kill(self.proc, signal.SIGINT)  # fast shutdown
        finally:
            shutil.rmtree(self.base, ignore_errors=True)



def _dies_with_us(sig: int):
    """preexec_fn: the kernel sends `sig` when the test process ends. Servers that run children of
    their own get a signal they stop them on, where SIGKILL would orphan them."""
    parent = os.getpid()
    return lambda: die_with_parent(sig, parent)


def _stop_group(proc: subprocess.Popen | None, sig: int) -> None:
    """`sig` to the leader of a session started for it, then SIGKILL to whatever is left of its
    process group: a server's children (FPM's pool, nginx's workers) keep the group."""
    if proc is None:
        return
    _kill(proc, sig)
    deadline = time.monotonic() + 10
    while (members := _live_members(proc.pid)) and time.monotonic() < deadline:
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def _live_members(pgid: int) -> list[int]:
    """Live processes of a group, from /proc: killpg cannot tell, it also reaches zombies, which an
    init that reaps no orphans keeps for ever."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        state, _, pgrp = stat[stat.rindex(b")") + 2:].split(b" ", 3)[:3]
        if int(pgrp) == pgid and state != b"Z":
            found.append(int(entry.name))
    return found


def _can_connect(address: str) -> bool:
    """Whether something accepts on `address`: a socket path, or HOST:PORT."""
    if address.startswith("/"):
        family, target = socket.AF_UNIX, address
    else:
        host, port = address.rsplit(":", 1)
        family, target = socket.AF_INET, (host, int(port))
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(target)
        except OSError:
            return False
    return True


class PhpFpm(_Server):
    """`php-fpm --nodaemonize` on one config file (a rendered pool, adapted), in the foreground.

    Its prefix (`-p`) is a temporary folder: the config, `log/php-fpm.log` (FPM's error_log, where
    the master and `catch_workers_output` write). As root the master stays root and forks the
    pool's children as the pool's user, as Debian's service runs it. The master re-executes
    itself on SIGUSR2 (a reload) under the same pid, so `pid` and the stop below hold across it.
    """

    READY = "ready to handle connections"

    def __init__(self, php_fpm: str, config: str, listen: str, env: dict[str, str] | None = None) -> None:
        self.php_fpm = php_fpm
        self.base = Path(tempfile.mkdtemp(prefix="deploygen-fpm-"))
        self.config_text, self.listen, self.env = config, listen, env
        self.config = self.base / "php-fpm.conf"
        self.log_file = self.base / "log" / "php-fpm.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Self:
        (self.base / "log").mkdir()
        self.config.write_text(self.config_text)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(self.env or {})}
        self.proc = subprocess.Popen(
            [self.php_fpm, "--nodaemonize", "--fpm-config", str(self.config), "-p", str(self.base)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
            # SIGTERM: the master then ends its children too (SIGKILL would leave them serving).
            preexec_fn=_dies_with_us(signal.SIGTERM))  # noqa: PLW1509
        self.wait_ready(1)
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def wait_ready(self, count: int, timeout: float = 20) -> None:
        """Until the master has said it is ready `count` times (once per start or reload) and accepts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"php-fpm exited with {self.proc.returncode}: {self.log()}")
            if self.log().count(self.READY) >= count and _can_connect(self.listen):
                return
            time.sleep(0.02)
        raise RuntimeError(f"php-fpm was not ready on {self.listen} within {timeout}s: {self.log()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        try:
            _stop_group(self.proc, signal.SIGTERM)  # FPM's immediate stop
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class Nginx(_Server):
    """nginx in the foreground on one server block (its `listen` already 127.0.0.1:`port`).

    The main config, pid, error log and temp folders are in a temporary folder that the workers
    can use: as root they run as `user` (Debian's www-data, which a pool's listen.owner names),
    otherwise as the current user.
    """

    TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

    def __init__(self, nginx: str, site_conf: str, port: int, user: str | None = None) -> None:
        self.nginx = nginx
        self.base = Path(tempfile.mkdtemp(prefix="deploygen-nginx-"))
        os.chmod(self.base, 0o755)
        self.site_conf, self.port = site_conf, port
        self.user = user if os.geteuid() == 0 else None
        self.error_log = self.base / "error.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Self:
        base = self.base
        for temp in self.TEMP_PATHS:
            (base / temp).mkdir()
            os.chmod(base / temp, 0o777)
        (base / "site.conf").write_text(self.site_conf)
        user = f"user {self.user};\n" if self.user else ""
        (base / "nginx.conf").write_text(
            f"daemon off;\n{user}pid {base}/nginx.pid;\nerror_log {self.error_log} warn;\nworker_processes 1;\n"
            "events { worker_connections 256; }\nhttp {\n    access_log off;\n"
            + "".join(f"    {t}_temp_path {base}/{t};\n" for t in self.TEMP_PATHS)
            + f"    include {base}/site.conf;\n}}\n")
        self.proc = subprocess.Popen(
            [self.nginx, "-c", str(base / "nginx.conf"), "-p", f"{base}/", "-e", str(self.error_log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
            # SIGTERM is nginx's fast shutdown, in which the master ends its workers.
            preexec_fn=_dies_with_us(signal.SIGTERM))  # noqa: PLW1509
        _wait_for_port(self.port, self.proc, "nginx", self.error_log)
        return self

    def log(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def stop(self) -> None:
        try:
            _stop_group(self.proc, signal.SIGTERM)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
