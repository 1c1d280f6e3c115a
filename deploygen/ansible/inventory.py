"""DIR/inventory.yml: every host of the fleet, and the variables that change where and how."""

from __future__ import annotations

from deploygen.ansible.yaml_text import Template, Unsafe
from deploygen.fleet.load import LoadedFleet

# Every variable site.yml reads, with its default; the first three are the contract's.
DEFAULTS = {
    # Every destination is under this folder: / on a server, a temp folder for a tree.
    "deploygen_root": "/",
    # false: no systemctl, no nginx -t or php-fpm -t, no reload (a tree that is not a live system).
    "deploygen_manage_services": True,
    # false: no PostgreSQL role, database or timeout settings.
    "deploygen_manage_postgres": True,
    # false: no system users or groups (they are the live system's, whatever deploygen_root is).
    "deploygen_manage_users": Template("{{ deploygen_manage_services }}"),
}

HEADER = """\
# Every host of {fleet}, in its order (site.yml deploys them one at a time).
# Variables (all hosts here; set them per host in an inventory of your own, or with -e):
#   deploygen_root             / : every destination is under it
#   deploygen_manage_services  true; false: no systemctl, no nginx -t or php-fpm -t, no reload
#   deploygen_manage_postgres  true; false: no PostgreSQL role, database or settings
#   deploygen_manage_users     deploygen_manage_services; false: no system users or groups
# PostgreSQL, when a site's server is the host's own (database.host localhost or a socket
# folder): over the unix socket as the postgres OS user (become); a database.host elsewhere:
# that host, as role postgres. Each of these overrides that, for every site of a host:
#   deploygen_postgres_login_host, deploygen_postgres_login_unix_socket, deploygen_postgres_port,
#   deploygen_postgres_login_user (postgres), deploygen_postgres_login_password,
#   deploygen_postgres_become (true: become the postgres OS user for a local server),
#   deploygen_postgres_become_method (ansible_become_method, else sudo)
# deploygen_release names this project's files: a host's deploy record says which release
# changed it last, and rollback.yml undoes only its own.
"""


def inventory(fleet: LoadedFleet, generator: str, source: str, release: str) -> tuple[dict, str]:
    """The inventory's data and its header comment; `release` names the project's files."""
    hosts = {}
    for host in fleet.hosts:
        variables: dict = {"ansible_host": Unsafe(host.address)}
        for name in sorted(host.vars):
            value = host.vars[name]
            variables[name] = Unsafe(value) if isinstance(value, str) else value
        hosts[host.name] = variables
    # Which project a host's deploy record (and so rollback.yml) belongs to: not a setting.
    data = {"all": {"hosts": hosts, "vars": {**DEFAULTS, "deploygen_release": release}}}
    header = f"# Written by {generator} from {source}: edit the fleet and run `deploygen ansible` again.\n"
    return data, header + HEADER.format(fleet=source)
