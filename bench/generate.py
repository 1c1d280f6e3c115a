"""Write N realistic, valid, non-colliding site files: `python bench/generate.py N DIR [--framework KIND]`.

KIND is flask (the default) or django. The Django sites vary what a Django site varies: the
session engine (db, cached_db on Redis, signed cookies, files), an idle timeout or an
absolute age, persistent connections or Django 5.1's psycopg pool.
"""

from __future__ import annotations

import argparse
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


DJANGO_TEMPLATE = """\
name: site{i}
domains: [site{i}.example.com, www.site{i}.example.com]
{tls}app:
  framework: django
  wsgi: "site{i}.wsgi:application"
  root: /srv/site{i}
  venv: /srv/site{i}/venv
  static: /srv/site{i}/static
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
  {age}
  store: {store}
  cookie: {{name: site{i}_session}}
{django}"""

# Engines in the proportions of a fleet: most keep sessions in the database.
_STORES = ("db", "db", "cached_db", "signed_cookies", "db", "file")


def django_site(i: int) -> str:
    threaded = i % 3 == 0
    return DJANGO_TEMPLATE.format(
        i=i,
        tls=(f"tls:\n  certificate: /etc/letsencrypt/live/site{i}/fullchain.pem\n"
             f"  certificate_key: /etc/letsencrypt/live/site{i}/privkey.pem\n") if i % 2 else "",
        bind=f"127.0.0.1:{10000 + i}" if i % 4 else f"unix:/run/site{i}/gunicorn.sock",
        workers=2 + i % 3,
        worker_class="gthread" if threaded else "sync",
        threads=4 if threaded else 1,
        request=(30, 60, 120, 300)[i % 4],
        host=i // 10,
        age="idle_timeout: 30m" if i % 2 else "lifetime: 12h",
        store=_STORES[i % len(_STORES)],
        django="django: {pool: true}\n" if i % 5 == 0 else "",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--framework", choices=("flask", "django"), default="flask")
    args = parser.parse_args()
    make = django_site if args.framework == "django" else site
    args.folder.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        (args.folder / f"site{i:05d}.yaml").write_text(make(i))


if __name__ == "__main__":
    main()
