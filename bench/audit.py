"""`deploygen audit --root` of one Debian server with N sites; prints one table.

    python bench/audit.py [--sizes 250,500] [--runs 3]

For each N in --sizes, a tree is written to a fresh folder on /dev/shm, laid out as a Debian
server runs N gunicorn apps behind one nginx:

- etc/nginx/nginx.conf: `events {}` and `http {}` with a few http-level settings
  (proxy_read_timeout 90s among them) and Debian's two includes, `conf.d/*.conf` (empty) and
  `sites-enabled/*`; etc/nginx/proxy_params, Debian's four `proxy_set_header` lines;
- etc/nginx/sites-available/siteK, linked from sites-enabled/siteK (an absolute link, as
  `ln -s /etc/nginx/sites-available/siteK` makes it): an `upstream siteK` on
  unix:/run/siteK/gunicorn.sock and a server block for siteK.example.com whose `location /`
  includes proxy_params and proxies to the upstream, beside a `location /static/` alias;
- etc/systemd/system/siteK.service: User=siteK, WorkingDirectory=/srv/siteK,
  ExecStart=/srv/siteK/venv/bin/gunicorn -c /srv/siteK/gunicorn.conf.py app:app, TimeoutStopSec=45;
- srv/siteK/gunicorn.conf.py: bind on the socket, workers = 3, timeout = 30 + K % 60,
  graceful_timeout = 20.

Each run is the whole command as a user runs it, start-up included: a fresh
`python -m deploygen audit --root TREE --format json`, its JSON written to a file on the same
tmpfs (its `read:` lines, on stderr, to another). Runs are interleaved (one of each N per round)
so that the machine's drift hits every N alike; the table shows the fastest of --runs, its CPU
time (user + system) beside it, and the load average before and after: on a shared host the wall
time is the command's own only when the load is near 0. Every run's output is checked: exit
status 0 or 1 (findings, not bad input), and one app per site, i.e. exactly one
`read: siteK: nginx: FILE:LINE server block, ...` entry for each K. deploygen's bytecode is
compiled first, as `pip install` does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOAL_SECONDS = 3.0  # 500 sites, on 2 cores
GOAL_SITES = 500
GROWTH_SLACK = 1.05  # allowed over linear growth, for noise: 2.1x for twice the sites

NGINX_CONF = """\
user www-data;
worker_processes auto;
pid /run/nginx.pid;

events {
}

http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    keepalive_timeout 65;
    client_max_body_size 10m;

    proxy_connect_timeout 5s;
    proxy_send_timeout 60s;
    proxy_read_timeout 90s;

    access_log /var/log/nginx/access.log;
    error_log /var/log/nginx/error.log;

    include /etc/nginx/conf.d/*.conf;
    include /etc/nginx/sites-enabled/*;
}
"""

# Debian's /etc/nginx/proxy_params, as the nginx-common package ships it.
PROXY_PARAMS = """\
proxy_set_header Host $http_host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
"""

SITE = """\
upstream {name} {{
    server unix:/run/{name}/gunicorn.sock;
}}

server {{
    listen 80;
    listen [::]:80;
    server_name {name}.example.com;

    access_log /var/log/nginx/{name}.access.log;

    location /static/ {{
        alias /srv/{name}/static/;
    }}

    location / {{
        include proxy_params;
        proxy_pass http://{name};
    }}
}}
"""

UNIT = """\
[Unit]
Description=gunicorn daemon for {name}
After=network.target

[Service]
User={name}
Group=www-data
WorkingDirectory=/srv/{name}
ExecStart=/srv/{name}/venv/bin/gunicorn -c /srv/{name}/gunicorn.conf.py app:app
TimeoutStopSec=45

[Install]
WantedBy=multi-user.target
"""

GUNICORN = """\
bind = "unix:/run/{name}/gunicorn.sock"
workers = 3
timeout = {timeout}
graceful_timeout = 20
"""

# One `read` entry per app found: "read: site7: nginx: /.../sites-available/site7:5 server block, location / -> ..."
SERVER_BLOCK_READ = re.compile(r"read: (\S+): nginx: .* server block")


def build_tree(root: Path, sites: int) -> int:
    """Write the server tree of `sites` sites under `root`; how many files (links included) it holds."""
    nginx = root / "etc" / "nginx"
    units = root / "etc" / "systemd" / "system"
    for folder in (nginx / "conf.d", nginx / "sites-available", nginx / "sites-enabled", units):
        folder.mkdir(parents=True)
    (nginx / "nginx.conf").write_text(NGINX_CONF)
    (nginx / "proxy_params").write_text(PROXY_PARAMS)
    for k in range(sites):
        name = f"site{k}"
        (nginx / "sites-available" / name).write_text(SITE.format(name=name))
        (nginx / "sites-enabled" / name).symlink_to(f"/etc/nginx/sites-available/{name}")
        (units / f"{name}.service").write_text(UNIT.format(name=name))
        app = root / "srv" / name
        app.mkdir(parents=True)
        (app / "gunicorn.conf.py").write_text(GUNICORN.format(name=name, timeout=30 + k % 60))
    return 2 + 4 * sites


def run_once(argv: list[str], stdout: Path, stderr: Path) -> tuple[float, float, int, int]:
    """Wall seconds, CPU seconds (user + system), peak RSS (KiB) and exit status of one child."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def check(stdout: Path, stderr: Path, status: int, sites: int) -> None:
    """Exit status 0 or 1, and exactly one server block read for each site."""
    if status not in (0, 1):
        tail = stderr.read_text(errors="replace")[-2000:]
        raise SystemExit(f"bench: audit of {sites} sites exited with {status}:\n{tail}")
    found: dict[str, int] = {}
    for entry in json.loads(stdout.read_text()):
        if entry.get("severity") == "read":
            match = SERVER_BLOCK_READ.match(entry.get("message", ""))
            if match:
                found[match.group(1)] = found.get(match.group(1), 0) + 1
    expected = {f"site{k}" for k in range(sites)}
    if found.keys() != expected or any(count != 1 for count in found.values()):
        missing = sorted(expected - found.keys())[:5]
        extra = sorted(found.keys() - expected)[:5]
        twice = sorted(name for name, count in found.items() if count > 1)[:5]
        raise SystemExit(f"bench: audit of {sites} sites found {len(found)} apps by their server block "
                         f"(missing {missing}, unexpected {extra}, twice {twice})")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,500", help="comma-separated site counts")
    parser.add_argument("--runs", type=int, default=3, help="runs of each size; the fastest is shown")
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.sizes.split(",")})
    py = sys.executable
    scratch = Path(tempfile.mkdtemp(prefix="deploygen-audit-bench-",
                                    dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    subprocess.run([py, "-m", "compileall", "-q", str(REPO / "deploygen")], check=True)
    try:
        trees = {n: scratch / f"server{n}" for n in sizes}
        files = {n: build_tree(trees[n], n) for n in sizes}
        walls: dict[int, list[float]] = {n: [] for n in sizes}
        cpus: dict[int, list[float]] = {n: [] for n in sizes}
        rss: dict[int, int] = {n: 0 for n in sizes}
        statuses: dict[int, set[int]] = {n: set() for n in sizes}
        load = os.getloadavg()[0]  # other work on the machine: wall time is only this command's when it is ~0
        for round_ in range(args.runs):
            for n in sizes:
                out, err = scratch / f"audit{n}.json", scratch / f"audit{n}.err"
                wall, cpu, peak, status = run_once(
                    [py, "-m", "deploygen", "audit", "--root", str(trees[n]), "--format", "json"], out, err)
                check(out, err, status, n)
                walls[n].append(wall)
                cpus[n].append(cpu)
                rss[n] = max(rss[n], peak)
                statuses[n].add(status)
            print(f"bench: round {round_ + 1} of {args.runs} done", file=sys.stderr)
        children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        report(sizes, files, walls, cpus, rss, statuses, children_rss, args.runs, load)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report(sizes, files, walls, cpus, rss, statuses, children_rss: int, runs: int, load: float) -> None:
    print(f"\nmachine: {cores()} cores, Python {sys.version.split()[0]}, load average {load:.2f} before the "
          f"runs, {os.getloadavg()[0]:.2f} after; `deploygen audit --root TREE --format json`, fastest of {runs}")
    print(f"\n{'N':>5}  {'files':>6}  {'seconds':>7}  {'median':>6}  {'slowest':>7}  {'CPU':>6}  {'ms/site':>7}  "
          f"{'growth':>6}  {'CPU growth':>10}  {'peak RSS':>8}  exit")
    smallest = sizes[0]
    for n in sizes:
        best = min(walls[n])
        growth = f"{best / min(walls[smallest]):.2f}x" if n != smallest else "-"
        cpu_growth = f"{min(cpus[n]) / min(cpus[smallest]):.2f}x" if n != smallest else "-"
        print(f"{n:>5}  {files[n]:>6}  {best:>6.2f}s  {statistics.median(walls[n]):>5.2f}s  {max(walls[n]):>6.2f}s  "
              f"{min(cpus[n]):>5.2f}s  {best * 1000 / n:>7.2f}  {growth:>6}  {cpu_growth:>10}  "
              f"{rss[n] / 1024:>5.0f} MB  {','.join(map(str, sorted(statuses[n])))}")
    print("\nseconds: the fastest run's wall time, start-up included; CPU: the least user + system time of "
          "any run; growth: fastest against fastest (CPU: least against least) of the smallest N")
    print(f"\nevery run found one app per site (one `read: siteK: nginx: ... server block` each); "
          f"peak RSS of any child, getrusage(RUSAGE_CHILDREN).ru_maxrss: {children_rss / 1024:.0f} MB")
    goals = []
    if GOAL_SITES in sizes:
        best = min(walls[GOAL_SITES])
        goals.append((f"audit {GOAL_SITES} sites = {best:.2f}s fastest on {cores()} cores", best < GOAL_SECONDS,
                      f"< {GOAL_SECONDS:.0f} s on 2 cores"))
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        growth = min(walls[large]) / min(walls[small])
        linear = large / small
        goals.append((f"audit {large} / {small} sites = {growth:.2f}x (linear: {linear:.1f}x)",
                      growth <= GROWTH_SLACK * linear, f"<= {GROWTH_SLACK * linear:.1f}x"))
    print("\ngoals:")
    for text, met, goal in goals:
        print(f"  {'PASS' if met else 'FAIL'}  {text}  (goal {goal})")


if __name__ == "__main__":
    main()
