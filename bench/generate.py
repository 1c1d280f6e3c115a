"""Write N realistic, valid, non-colliding site files: `python bench/generate.py N DIR`."""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = """\
name: site{i}
domains: [site{i}.example.com, www.site{i}.example.com]
{tls}app:
  framework: flask
  wsgi: "app:app"
  root: /var/www/site{i}
  venv: /var/www/site{i}/venv
  static: /var/www/site{i}/static
  secrets_file: /etc/site{i}/secrets.env
server:
  bind: {bind}
  workers: {workers}
  worker_class: {worker_class}
  threads: {threads}
timeouts:
  request: {request}s
database:
  name: site{i}_db
  role: site{i}
  host: db{host}.internal
  max_connections: 1000
session:
  lifetime: 12h
  cookie: {{name: site{i}_session}}
"""


def site(i: int) -> str:
    threaded = i % 3 == 0
    return TEMPLATE.format(
        i=i,
        tls=(f"tls:\n  certificate: /etc/letsencrypt/live/site{i}/fullchain.pem\n"
             f"  certificate_key: /etc/letsencrypt/live/site{i}/privkey.pem\n") if i % 2 else "",
        bind=f"127.0.0.1:{10000 + i}" if i % 4 else f"unix:/run/site{i}/gunicorn.sock",
        workers=2 + i % 3,
        worker_class="gthread" if threaded else "sync",
        threads=4 if threaded else 1,
        request=(30, 60, 120, 300)[i % 4],
        host=i // 10,
    )


def main() -> None:
    count, folder = int(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"site{i:05d}.yaml").write_text(site(i))


if __name__ == "__main__":
    main()
