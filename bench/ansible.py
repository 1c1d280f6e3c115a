"""`deploygen ansible`'s playbook against the usual way of deploying the same files.

    python3 bench/ansible.py [--hosts 2] [--sites 10] [--runs 1]

Each host (ansible_connection=local, its `/` a temporary folder in root's home) gets SITES generated sites
(bench/generate.py, made deployable here: this Python's venv, no TLS, their secrets files
written). Two playbooks deploy the very same rendered files:

- deploygen's: `deploygen ansible FLEET -o DIR`, then `ansible-playbook -i DIR/inventory.yml
  DIR/site.yml` (one find of what is installed, copy with validate: and backup: for what
  differs, the secrets checks, the sites-enabled links, the record for rollback.yml);
- the usual way, as popular roles write it: a `file` task per folder, a `template` task per
  file (the rendered file as its template, in `{% raw %}`), owner, group, mode and backup as
  deploygen's, a `file` task per link, the same handlers; no validation, no secrets check.

Both run twice: into empty roots, then again with nothing to change. Printed: wall time,
tasks in the playbook, and task runs (one per host, task and loop item that ran a module,
skipped ones not counted), from ansible-playbook's own output. Services and PostgreSQL stay
off (deploygen_manage_services/postgres: false), as in the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
# A line per module run: `ok: [web1]`, `changed: [web1] => (item=...)`; not `skipping:`.
RAN = re.compile(r"^(ok|changed): \[", re.MULTILINE)

USUAL = """\
# The usual way: a template task per file, as popular roles do.
- name: Deploy the sites, a template per file
  hosts: all
  gather_facts: false
  serial: 1
  tasks:
    - name: Folders
      ansible.builtin.file:
        path: "{{ root }}{{ item }}"
        state: directory
        owner: root
        group: root
        mode: "0755"
      loop: "{{ usual_folders }}"
    - name: Files
      ansible.builtin.template:
        src: "{{ playbook_dir }}/{{ item.src }}"
        dest: "{{ root }}{{ item.dest }}"
        owner: root
        group: root
        mode: "{{ item.mode }}"
        backup: true
      loop: "{{ usual_files }}"
      loop_control:
        label: "{{ item.dest }}"
      notify: [Reload systemd, Restart the sites, Test the nginx configuration, Reload nginx]
    - name: Links
      ansible.builtin.file:
        src: "../sites-available/{{ item }}.conf"
        dest: "{{ root }}/etc/nginx/sites-enabled/{{ item }}.conf"
        state: link
      loop: "{{ usual_sites }}"
      notify: [Test the nginx configuration, Reload nginx]
  handlers:
    - name: Reload systemd
      ansible.builtin.systemd_service:
        daemon_reload: true
      when: manage_services | bool
    - name: Restart the sites
      ansible.builtin.systemd_service:
        name: "{{ item }}.service"
        state: restarted
      loop: "{{ usual_sites }}"
      when: manage_services | bool
    - name: Test the nginx configuration
      ansible.builtin.command: nginx -t
      when: manage_services | bool
    - name: Reload nginx
      ansible.builtin.systemd_service:
        name: nginx
        state: reloaded
      when: manage_services | bool
"""


def sites(scratch: Path, count: int) -> Path:
    """`count` generated sites, deployable on this machine: units whose ExecStart exists (this
    Python's venv, for systemd-analyze verify), no TLS (no certificate for nginx -t to load)."""
    folder = scratch / "sites"
    subprocess.run([sys.executable, str(REPO / "bench" / "generate.py"), str(count), str(folder)], check=True,
                   capture_output=True)
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        data.pop("tls", None)
        data["app"]["venv"] = sys.prefix
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def write_secrets(root: Path, site: str) -> None:
    path = root / "etc" / site / "secrets.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("FLASK_SECRET_KEY=bench-only-0123456789abcdef0123456789abcdef0123456789\n"
                    f"DATABASE_URL=postgresql://{site}@db.internal/{site}_db\n")
    os.chown(path, 0, 0)
    path.chmod(0o600)  # as check-secrets wants it: root's alone


def usual_project(deploy: Path, out: Path) -> Path:
    """The same files, as the usual way's playbook and its host vars (from deploygen's host_vars)."""
    out.mkdir()
    (out / "usual.yml").write_text(USUAL)
    for host_vars in sorted((deploy / "host_vars").glob("*.yml")):
        data = yaml.safe_load(host_vars.read_text().replace("!unsafe ", ""))
        files = []
        for f in data["deploygen_files"]:
            template = out / "templates" / f["src"]
            template.parent.mkdir(parents=True, exist_ok=True)
            template.write_text("{% raw %}" + (deploy / f["src"]).read_text() + "{% endraw %}")
            files.append({"src": f"templates/{f['src']}", "dest": f["dest"], "mode": f["mode"]})
        folders = sorted({str(Path(f["dest"]).parent) for f in files} | {"/etc/nginx/sites-enabled"})
        (out / "host_vars").mkdir(exist_ok=True)
        (out / "host_vars" / host_vars.name).write_text(yaml.safe_dump(
            {"usual_files": files, "usual_folders": folders,
             "usual_sites": [s["name"] for s in data["deploygen_sites"]]}))
    return out


def run(command: list[str], cwd: Path) -> tuple[float, int, dict]:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PYTHONDONTWRITEBYTECODE": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(command)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    recap = {m[0]: (int(m[1]), int(m[2])) for m in RECAP.findall(proc.stdout)}
    return seconds, len(RAN.findall(proc.stdout)), recap


def tasks_in(playbook: Path, also: tuple[Path, ...] = ()) -> int:
    def count(items) -> int:
        return sum(count(t["block"]) + count(t.get("always", [])) if "block" in t else 1 for t in items)

    plays = yaml.safe_load(playbook.read_text())
    total = sum(count(p.get("tasks", [])) for p in plays)
    return total + sum(len(yaml.safe_load(p.read_text())) for p in also)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--sites", type=int, default=10, help="sites per host")
    parser.add_argument("--runs", type=int, default=1, help="rounds of (first run, second run) per way")
    args = parser.parse_args()
    playbook = shutil.which("ansible-playbook")
    if playbook is None:
        sys.exit("bench: ansible-playbook is not installed: pip install 'deploygen[ansible]'")
    hosts = [f"web{i + 1}" for i in range(args.hosts)]
    results: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    # In root's home, not /tmp: check-secrets refuses a secrets file below a folder others may write in.
    with tempfile.TemporaryDirectory(prefix="deploygen-bench-ansible-", dir=Path.home()) as tmp:
        scratch = Path(tmp)
        folder = sites(scratch, args.hosts * args.sites)
        files = sorted(folder.glob("*.yaml"))
        names = [yaml.safe_load(p.read_text())["name"] for p in files]
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        fleet = {"hosts": {host: {"address": "127.0.0.1", "vars": local,
                                  "sites": [f"sites/{p.name}" for p in files[i * args.sites:(i + 1) * args.sites]]}
                           for i, host in enumerate(hosts)}}
        (scratch / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
        deploy = scratch / "deploy"
        proc = subprocess.run([sys.executable, "-m", "deploygen", "ansible", str(scratch / "fleet.yaml"),
                               "-o", str(deploy)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"bench: deploygen ansible failed:\n{proc.stderr}")
        usual = usual_project(deploy, scratch / "usual")
        ways = {
            "deploygen ansible (site.yml)": (deploy / "site.yml", tasks_in(deploy / "site.yml", (deploy / "handlers.yml",))),
            "the usual way (template per file)": (usual / "usual.yml", tasks_in(usual / "usual.yml") + 4),
        }
        for round_ in range(args.runs):
            for way, (book, _) in ways.items():
                roots = {host: scratch / f"root-{round_}-{way.split()[0]}-{host}" for host in hosts}
                inventory = scratch / f"inventory-{round_}-{way.split()[0]}.yml"
                host_vars = {}
                for i, (host, root) in enumerate(roots.items()):
                    root.mkdir()
                    for name in names[i * args.sites:(i + 1) * args.sites]:
                        write_secrets(root, name)
                    host_vars[host] = {"deploygen_root": f"{root}/", "root": str(root), **local}
                inventory.write_text(yaml.safe_dump({"all": {"hosts": host_vars, "vars": {
                    "deploygen_manage_services": False, "deploygen_manage_postgres": False,
                    "manage_services": False}}}))
                command = [playbook, "-i", str(deploy / "inventory.yml"), "-i", str(inventory), str(book)]
                if book.parent == usual:
                    command = [playbook, "-i", str(inventory), str(book)]
                for which in ("first run", "second run"):
                    seconds, ran, recap = run(command, scratch)
                    changed = sum(c for _, c in recap.values())
                    if which == "second run" and changed:
                        sys.exit(f"bench: {way}: the second run changed {changed}")
                    results.setdefault((way, which), []).append((seconds, ran, changed))
    print(f"{args.hosts} hosts x {args.sites} sites, ansible_connection=local, "
          f"{os.cpu_count()} cores; median of {args.runs} round(s)\n")
    print(f"| {'way':<36} | {'tasks':>5} | {'run':<10} | {'wall time':>9} | {'task runs':>9} | {'changed':>7} |")
    print(f"|{'-' * 38}|{'-' * 6}:|{'-' * 12}|{'-' * 10}:|{'-' * 10}:|{'-' * 8}:|")
    for way, (_, tasks) in ways.items():
        for which in ("first run", "second run"):
            rows = results[(way, which)]
            seconds = statistics.median(r[0] for r in rows)
            print(f"| {way:<36} | {tasks:>5} | {which:<10} | {seconds:>8.1f}s | {rows[0][1]:>9} | {rows[0][2]:>7} |")


if __name__ == "__main__":
    main()
