"""The PHP kind live: the rendered pool in a real php-fpm8.2, behind the rendered nginx, on PostgreSQL.

The site is sites/yayin.yaml's shape with the budget scaled down (`timeouts: {request: 3s}`,
`session: {idle_timeout: 3s}`), so every value deploygen derives from it is small and real:
request_terminate_timeout 3 s, process_control_timeout 3 s, fastcgi_read_timeout 3.3 s,
statement_timeout 2.7 s, gc_maxlifetime 3 s. A test runs php-fpm8.2 in the foreground
(`--nodaemonize --fpm-config FILE -p PREFIX`: local_servers.PhpFpm) on the rendered pool, and
nginx (local_servers.Nginx) on the rendered server block, adapted only in where things are: the
socket, the session folder and nginx's listen move into a temporary folder, every timeout stays
as rendered. PostgreSQL is pg_cluster's throwaway cluster, with the rendered bootstrap and
postgres.sql applied. The scripts are tests/php_app/*.php.

As root (the Debian box, CI) the masters run as root and the pool's children as www-data, as
Debian's services run them. Every server dies with the test process (a parent-death signal)
and is stopped, and its folder removed, when its test ends, also on failure. A missing binary
skips locally and fails under CI=true.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pg_cluster
import pytest
from click.testing import CliRunner
from conftest import merge, require_binary
from local_servers import Nginx, PhpFpm, free_port
from test_php_real import (
    POOL_GROUP,
    POOL_USER,
    Rendered,
    local_pool,
    php_fpm_binary,
    php_site,
    replace_line,
    replace_once,
    write_site,
)
from test_real_tools import effective

from deploygen.cli import main
from deploygen.derive.settings import Effective

postgres = pg_cluster.postgres  # this module's cluster

HERE = Path(__file__).resolve().parent
NAME = "phplive"
SECRET = "not-a-real-password"  # what the site's secrets file (env[...] lines the pool includes) holds
# In the master's environment under the app's own name: the pool's include, not the master, gives it.
SECRET_ENV = "DATABASE_PASSWORD"
# In the master's environment but not passed to the pool: clear_env must keep it from the app.
MASTER_ONLY_ENV = "PHPLIVE_MASTER_ONLY"
SLACK = 0.35  # scheduling and HTTP round trips on a loaded 2-core box, in seconds


# -- the site, rendered once ----------------------------------------------------


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A folder every user can enter (pytest's are private to root): the pool's children and
    nginx's workers read the document root, the children write the session folders."""
    folder = Path(tempfile.mkdtemp(prefix="deploygen-php-live-"))
    try:
        os.chmod(folder, 0o755)
        public = folder / "app" / "public"
        public.mkdir(parents=True)
        for script in sorted((HERE / "php_app").glob("*.php")):
            shutil.copy(script, public / script.name)
            os.chmod(public / script.name, 0o644)
        for part in (folder / "app", public):
            os.chmod(part, 0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def live_data(base: Path, **sections) -> dict:
    data = php_site(NAME, base / "app",
                    server={"bind": f"unix:/run/{NAME}/php-fpm.sock", "pm": "static", "max_children": 4},
                    timeouts={"request": "3s"},
                    session={"idle_timeout": "3s"})
    data["app"]["secrets_file"] = f"/etc/{NAME}/secrets.conf"
    return merge(data, sections)


def render_in(base: Path, data: dict, *extra: str):
    """`deploygen render` of `data` in a folder of its own: (Rendered, click's result)."""
    folder = Path(tempfile.mkdtemp(prefix="render-", dir=base))
    site = write_site(folder, data)
    result = CliRunner().invoke(main, ["render", str(site), "-o", str(folder / "out"), *extra],
                                catch_exceptions=False)
    manifests = list((folder / "out").glob("*/manifest.json"))
    assert len(manifests) == 1, result.stderr
    files = {e["target"]: manifests[0].parent / e["path"] for e in json.loads(manifests[0].read_text())["files"]}
    return Rendered(data["name"], site, effective(site), files, folder), result


def render_ok(base: Path, data: dict) -> Rendered:
    rendered, result = render_in(base, data)
    assert result.exit_code == 0, result.stderr
    return rendered


@pytest.fixture(scope="module")
def site(base, postgres) -> Rendered:
    """The live site, its database reached over TCP; the rendered SQL applied as the superuser."""
    data = live_data(base, database={"name": NAME, "role": NAME, "host": "127.0.0.1", "port": postgres.port})
    rendered = render_ok(base, data)
    for target, database in ((f"/etc/deploygen/{NAME}/postgres-bootstrap.sql", "postgres"),
                             (f"/etc/deploygen/{NAME}/postgres.sql", NAME)):
        proc = postgres.query(file=rendered.file(target), database=database)
        assert proc.returncode == 0, proc.stderr
    return rendered


# -- the servers --------------------------------------------------------------------


@dataclass
class Reply:
    status: int | None  # None: no HTTP answer at all (reset, closed)
    body: str
    seconds: float
    error: str | None = None
    set_cookies: list[str] = field(default_factory=list)

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Stack:
    rendered: Rendered
    fpm: PhpFpm
    nginx: Nginx
    sessions: Path

    @property
    def eff(self) -> Effective:
        return self.rendered.eff

    def get(self, path: str, cookie: str | None = None, timeout: float = 20) -> Reply:
        headers = {"Host": f"{NAME}.example.org"}
        if cookie:
            headers["Cookie"] = cookie
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
            return Reply(response.status, body, time.monotonic() - start,
                         set_cookies=response.headers.get_all("Set-Cookie") or [])
        except (OSError, http.client.HTTPException) as exc:
            return Reply(None, "", time.monotonic() - start, error=repr(exc))
        finally:
            conn.close()

    def logs(self) -> str:
        return f"--- php-fpm log\n{self.fpm.log()}\n--- nginx error log\n{self.nginx.log()}"


def nginx_site(rendered: Rendered, socket: Path, port: int) -> str:
    """The rendered server block on 127.0.0.1:port (its IPv6 listen dropped), the upstream at `socket`."""
    text = rendered.nginx.read_text()
    text = replace_once(text, "    listen 80;\n", f"    listen 127.0.0.1:{port};\n")
    text = replace_once(text, "    listen [::]:80;\n", "")
    return replace_once(text, f"server unix:{rendered.eff.value('php-fpm.listen')} ",
                        f"server unix:{socket} ")


def pool_account() -> pwd.struct_passwd | None:
    return pwd.getpwnam(POOL_USER) if os.geteuid() == 0 else None


@contextmanager
def launch(rendered: Rendered, base: Path) -> Iterator[Stack]:
    """php-fpm on the rendered pool and nginx on the rendered server block, in a folder of their own."""
    php_fpm = php_fpm_binary()
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    folder = Path(tempfile.mkdtemp(prefix="stack-", dir=base))
    os.chmod(folder, 0o755)
    sessions, socket = folder / "sessions", folder / "run" / "php-fpm.sock"
    sessions.mkdir(mode=0o700)
    socket.parent.mkdir(mode=0o755)
    if (account := pool_account()) is not None:
        os.chown(sessions, account.pw_uid, account.pw_gid)
    pool = local_pool(rendered.pool.read_text(), listen=str(socket), session_dir=sessions)
    secrets = folder / "secrets.conf"
    secrets.write_text(f'env[DATABASE_PASSWORD] = "{SECRET}"\n')
    os.chmod(secrets, 0o600)
    pool = replace_line(pool, "include", f"include = {secrets}")
    env = {SECRET_ENV: "the master's", MASTER_ONLY_ENV: "the master's"}
    port = free_port()
    with PhpFpm(php_fpm, pool, str(socket), env=env) as fpm, \
            Nginx(nginx, nginx_site(rendered, socket, port), port, user=rendered.eff.value("nginx.user")) as ng:
        yield Stack(rendered, fpm, ng, sessions)


@pytest.fixture
def stack(site, base) -> Iterator[Stack]:
    with launch(site, base) as s:
        yield s


# -- helpers --------------------------------------------------------------------

_TIMED_OUT = re.compile(r"child (\d+), script '[^']*' \(request: \"GET ([^\"]*)\"\) "
                        r"execution timed out \(([\d.]+) sec\), terminating")


def timed_out(log: str) -> dict[str, float]:
    """{request URI: seconds FPM says it ran} for each request FPM ended at request_terminate_timeout."""
    return {uri: float(seconds) for _, uri, seconds in _TIMED_OUT.findall(log)}


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (result := predicate()) and time.monotonic() < deadline:
        time.sleep(step)
    return result


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def staggered(stack: Stack, paths: list[str], gap: float) -> list[Reply]:
    """The requests at once, each started `gap` seconds after the one before."""
    with ThreadPoolExecutor(len(paths)) as pool:
        futures = []
        for i, path in enumerate(paths):
            if i:
                time.sleep(gap)
            futures.append(pool.submit(stack.get, path))
        return [f.result() for f in futures]


def seconds(eff: Effective, key: str) -> float:
    return eff.value(key).ms / 1000


# -- request_terminate_timeout against fastcgi_read_timeout -------------------------


def past_terminate(stack: Stack) -> tuple[list[Reply], dict[str, float], float]:
    """Two requests that sleep past request_terminate_timeout, half of FPM's heartbeat apart (it
    checks the limit every third of it, test_php_real measures): FPM's timer fires for both at
    the same moments, so one of them runs at least half a heartbeat past the limit."""
    terminate = seconds(stack.eff, "php-fpm.request_terminate_timeout")
    heartbeat = terminate / 3
    paths = ["/sleep.php?s=10&r=a", "/sleep.php?s=10&r=b"]
    replies = staggered(stack, paths, heartbeat / 2)
    # A request nginx gave up on still runs until FPM's next check.
    ended = wait_for(lambda: (found := timed_out(stack.fpm.log())) and len(found) == 2 and found,
                     terminate + heartbeat + 1)
    assert ended and sorted(ended) == paths, stack.logs()
    for path in paths:
        assert terminate <= ended[path] < terminate + heartbeat + SLACK, (path, ended, stack.logs())
    return replies, ended, heartbeat


def test_request_past_terminate_timeout_ends_as_fpms_502_before_nginxs_504(stack):
    eff = stack.eff
    terminate = seconds(eff, "php-fpm.request_terminate_timeout")
    read = seconds(eff, "nginx.fastcgi_read_timeout")
    # terminate + FPM's heartbeat (a third) + a tenth: nginx outwaits FPM's latest check.
    assert (terminate, read) == (3, 4.3)
    replies, ended, heartbeat = past_terminate(stack)
    for reply, path in zip(replies, sorted(ended)):
        # FPM's SIGTERM to the child: nginx reads a reset, at the moment FPM ended it.
        assert reply.status == 502, (reply, stack.logs())
        assert abs(reply.seconds - ended[path]) < SLACK, (reply, ended)
    log = stack.nginx.log()
    assert "upstream timed out" not in log, log
    assert log.count("recv() failed (104: Connection reset by peer)") == len(replies), log


def test_with_nginx_waiting_past_fpms_heartbeat_every_request_ends_as_fpms_502(site, base):
    """The chain as deploygen means it, nginx's wait written wide enough (terminate + a heartbeat +
    a margin): every request past request_terminate_timeout ends as FPM's 502, none as 504."""
    data = live_data(base, timeouts={"nginx": {"fastcgi_read_timeout": "5s"}})
    rendered = render_ok(base, data)
    assert seconds(rendered.eff, "php-fpm.request_terminate_timeout") == 3
    with launch(rendered, base) as s:
        replies, ended, _ = past_terminate(s)
        for reply, path in zip(replies, sorted(ended)):
            assert reply.status == 502, (reply, s.logs())
            assert abs(reply.seconds - ended[path]) < SLACK, (reply, ended)
            assert reply.seconds < seconds(rendered.eff, "nginx.fastcgi_read_timeout"), reply
        log = s.nginx.log()
        assert log.count("recv() failed (104: Connection reset by peer)") == 2, log
        assert "upstream timed out" not in log, log
        assert wait_for(lambda: s.fpm.log().count("exited on signal 15 (SIGTERM)") == 2, 2), s.fpm.log()


# -- statement_timeout ---------------------------------------------------------------


def test_long_query_ends_with_postgres_57014_before_fpms_limit(stack):
    eff = stack.eff
    statement = seconds(eff, "postgres.statement_timeout")
    terminate = seconds(eff, "php-fpm.request_terminate_timeout")
    assert statement == 2.7 and statement < terminate

    quick = stack.get("/query.php?s=0")
    assert quick.status == 200, (quick, stack.logs())
    settings = quick.json()["settings"]
    # "client": the DSN's options (env[DATABASE_DSN]) set them for this connection.
    assert settings == {name: {"ms": eff.value(f"postgres.{name}").ms, "source": "client"}
                        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")}

    slow = stack.get("/query.php?s=10")
    assert slow.status == 500, (slow, stack.logs())
    answer = slow.json()
    assert answer["sqlstate"] == "57014", answer
    assert "canceling statement due to statement timeout" in answer["message"], answer
    assert statement <= answer["elapsed"] < min(statement + SLACK, terminate), answer
    assert slow.seconds < terminate + SLACK, slow
    assert timed_out(stack.fpm.log()) == {}, stack.logs()


# -- reload and stop -------------------------------------------------------------------


def in_flight(stack: Stack, sig: int, *, after: float = 0.5, sleep: float = 2) -> Reply:
    """A request that sleeps `sleep` seconds, `sig` sent to FPM's master `after` seconds into it."""
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(stack.get, f"/sleep.php?s={sleep:g}")
        time.sleep(after)
        stack.fpm.signal(sig)
        return future.result()


def test_graceful_reload_lets_the_request_in_flight_finish(stack):
    """Debian's ExecReload (kill -USR2 $MAINPID) with process_control_timeout = request_terminate_timeout."""
    assert seconds(stack.eff, "php-fpm.process_control_timeout") == 3
    before = stack.get("/sleep.php?s=0").json()["pid"]
    reply = in_flight(stack, signal.SIGUSR2)
    assert reply.status == 200, (reply, stack.logs())
    assert reply.json()["slept"] >= 2 and 2 <= reply.seconds < 2 + SLACK, reply
    stack.fpm.wait_ready(2)
    assert "Reloading in progress" in stack.fpm.log()
    after = stack.get("/sleep.php?s=0")
    assert after.status == 200 and after.json()["pid"] != before, (after, before)  # new children


def test_reload_with_process_control_timeout_0_cuts_the_request(base):
    data = live_data(base, timeouts={"php-fpm": {"process_control_timeout": 0}})
    validate = CliRunner().invoke(main, ["validate", str(write_site(Path(tempfile.mkdtemp(dir=base)), data))])
    assert validate.exit_code == 1 and " DG804 error " in validate.stdout, validate.output
    # --force: what a site that silenced the rule would run.
    rendered, result = render_in(base, data, "--force")
    assert result.exit_code == 1, result.stderr
    assert seconds(rendered.eff, "php-fpm.process_control_timeout") == 0
    with launch(rendered, base) as s:
        reply = in_flight(s, signal.SIGUSR2)
        assert reply.status in (502, None), (reply, s.logs())
        assert reply.seconds < 0.5 + SLACK, reply
        s.fpm.wait_ready(2)
        assert s.get("/sleep.php?s=0").status == 200


def dropin_kill_signal(rendered: Rendered) -> signal.Signals:
    found = re.search(r"^KillSignal=(SIG[A-Z]+)$", rendered.dropin.read_text(), re.MULTILINE)
    assert found, rendered.dropin.read_text()
    return signal.Signals[found.group(1)]


def test_stop_with_the_dropins_kill_signal_lets_the_request_finish(stack):
    """systemctl stop sends the drop-in's KillSignal (SIGQUIT: FPM's graceful stop)."""
    sig = dropin_kill_signal(stack.rendered)
    assert sig == signal.SIGQUIT
    reply = in_flight(stack, sig)
    assert reply.status == 200 and 2 <= reply.seconds < 2 + SLACK, (reply, stack.logs())
    timeout_stop = seconds(stack.eff, "systemd.TimeoutStopSec")
    assert stack.fpm.proc.wait(timeout=timeout_stop) == 0, stack.logs()


def test_stop_with_systemds_default_sigterm_cuts_the_request(stack):
    """Without the drop-in, systemd stops Debian's php8.2-fpm.service with SIGTERM."""
    reply = in_flight(stack, signal.SIGTERM)
    assert reply.status in (502, None), (reply, stack.logs())
    assert reply.seconds < 0.5 + SLACK, reply


# -- what the pool passes to PHP ------------------------------------------------------


def test_pool_values_reach_php_and_cannot_be_changed_by_the_app(stack):
    eff = stack.eff
    ini = {
        "max_execution_time": str(eff.value("php.max_execution_time").seconds),
        "session.save_handler": "files",
        "session.save_path": str(stack.sessions),
        "session.gc_maxlifetime": str(eff.value("php.session.gc_maxlifetime").seconds),
        "session.cookie_lifetime": "0",
        "session.gc_probability": "0",
        "session.use_strict_mode": "1",
        "session.use_only_cookies": "1",
        "session.cookie_httponly": "1",
        "session.cookie_secure": "0",
        "session.cookie_samesite": "Lax",
        "session.name": "PHPSESSID",
        "session.lazy_write": "1",  # PHP's default, which the read-only story below rests on
    }
    env = ["DATABASE_DSN", "DATABASE_USER", "DATABASE_PASSWORD", MASTER_ONLY_ENV]
    reply = stack.get(f"/ini.php?ini={','.join(ini)}&env={','.join(env)}"
                      "&set=session.gc_maxlifetime,max_execution_time")
    assert reply.status == 200, (reply, stack.logs())
    answer = reply.json()
    assert answer["ini"] == ini
    assert answer["env"] == {"DATABASE_DSN": eff.value("php.DATABASE_DSN"), "DATABASE_USER": NAME,
                             "DATABASE_PASSWORD": SECRET, MASTER_ONLY_ENV: False}
    assert answer["set"] == {"session.gc_maxlifetime": False, "max_execution_time": False}


# -- sessions: seed 002 scaled down -------------------------------------------------------


def session_cookie(reply: Reply, name: str) -> str | None:
    for header in reply.set_cookies:
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


def cleaner(stack: Stack) -> subprocess.CompletedProcess:
    """The rendered cleanup unit's ExecStart (its folder moved to this stack's), as its User and Group."""
    unit = stack.rendered.cleanup("service").read_text()
    fields = dict(re.findall(r"^(ExecStart|User|Group)=(.*)$", unit, re.MULTILINE))
    words = shlex.split(fields["ExecStart"])  # systemd's own quoting rules, for these words
    folder = stack.eff.value("php.session.save_path")
    assert words.count(folder) == 1, words
    words[words.index(folder)] = str(stack.sessions)
    account = {}
    if os.geteuid() == 0:
        # The unit's own account is the site's, which this machine lacks: the pool's stand-in.
        assert (fields["User"], fields["Group"]) == (NAME, NAME), fields
        account = {"user": POOL_USER, "group": POOL_GROUP, "extra_groups": []}
    return subprocess.run(words, capture_output=True, text=True, timeout=30, check=False, **account)


def test_read_only_session_slides_and_the_cleaner_removes_only_idle_ones(stack):
    eff = stack.eff
    idle = seconds(eff, "php.session.gc_maxlifetime")
    assert idle == 3 and eff.value("php.session.gc_probability") == 0
    assert "-mmin +0.05 " in stack.rendered.cleanup("service").read_text()  # 3 s, in find's minutes
    name = eff.value("php.session.name")

    def login(value: str) -> str:
        reply = stack.get(f"/session.php?set={value}")
        assert reply.status == 200, (reply, stack.logs())
        sid = session_cookie(reply, name)
        assert sid and reply.json() == {"id": sid, "v": value}, reply
        assert (stack.sessions / f"sess_{sid}").is_file()
        return sid

    def read(sid: str) -> Reply:
        reply = stack.get("/session.php", cookie=f"{name}={sid}")
        assert reply.status == 200, (reply, stack.logs())
        return reply

    start = time.monotonic()
    reader, waiter = login("publisher"), login("waiter")
    waiter_mtime = (stack.sessions / f"sess_{waiter}").stat().st_mtime
    for second in range(1, 9):
        sleep_until(start + second)
        before = time.time()
        reply = read(reader)
        # Never written (lazy_write, nothing changed), yet the file's time moves: PHP touches it.
        assert reply.json() == {"id": reader, "v": "publisher"} and reply.set_cookies == [], reply
        assert (stack.sessions / f"sess_{reader}").stat().st_mtime >= before - 0.05
        if second == 5:
            waiter_file = stack.sessions / f"sess_{waiter}"
            # Nothing but the cleaner removes an expired file (gc_probability 0).
            assert waiter_file.stat().st_mtime == waiter_mtime
            fresh = login("fresh")
            swept = cleaner(stack)
            assert swept.returncode == 0 and swept.stderr == "", swept
            assert not waiter_file.exists()
            assert (stack.sessions / f"sess_{reader}").is_file() and (stack.sessions / f"sess_{fresh}").is_file()
            lost = read(waiter)
            # Strict mode: the stale id is not taken up again; a new, empty session is issued.
            renewed = session_cookie(lost, name)
            assert lost.json()["v"] is None and renewed and renewed != waiter, lost
            assert read(fresh).json() == {"id": fresh, "v": "fresh"}
    swept = cleaner(stack)
    assert swept.returncode == 0, swept
    assert time.monotonic() - start >= 8 > idle
    assert read(reader).json() == {"id": reader, "v": "publisher"}
