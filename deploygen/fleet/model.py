"""The fleet file: hosts, the sites each runs, and the facts of each host deploygen needs."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from deploygen.sitefile.fields import PosixName
from deploygen.sitefile.model import Strict

# An inventory alias: a folder of the Ansible project and of `render`'s output, and a name in
# Ansible's inventory, so nothing a path or YAML could read as more than a name.
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# What Ansible connects to: a DNS name or an IP address (v4, or v6 without brackets).
_ADDRESS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45}")
# Inventory variables a fleet may set per host: how Ansible reaches and becomes root on it.
# Not ssh's own options (ansible_ssh_args, _common_args, _extra_args: a ProxyCommand= runs any
# command on the machine that runs the playbook) nor the programs Ansible runs (*_executable,
# ansible_become_exe): a fleet file someone else wrote must not choose those.
INVENTORY_VARIABLES = ("ansible_user", "ansible_port", "ansible_ssh_private_key_file", "ansible_connection",
                       "ansible_python_interpreter", "ansible_pipelining", "ansible_become",
                       "ansible_become_user", "ansible_become_method")
_VARIABLE = re.compile("|".join(INVENTORY_VARIABLES))
# A value must stay one plain value: no line break, and nothing Ansible would template.
_TEMPLATE_MARKS = ("{{", "{%", "{#")


def _pattern(compiled: re.Pattern, what: str, hint: str):
    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("value", f"{value!r} is not a valid {what}: {hint}")
        return value

    return AfterValidator(check)


HostAlias = Annotated[str, _pattern(_HOST, "host name", "letters, digits, _ or -, up to 63, starting with a "
                                    "letter or digit (it names a folder and an inventory host)")]
Address = Annotated[str, _pattern(_ADDRESS, "address", "a DNS name or an IP address")]


def _plain(value: str) -> str:
    if any(not c.isprintable() for c in value) or any(mark in value for mark in _TEMPLATE_MARKS):
        raise PydanticCustomError("value", "must be one line of printable text without {{, {% or {#: "
                                  "Ansible would run what a template holds")
    return value


InventoryValue = Annotated[str | int | bool, Field(union_mode="left_to_right")]
SitePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_plain)]


class PostgresFacts(Strict):
    """One PostgreSQL server: what the connection budget and the rendered SQL depend on."""

    max_connections: int | None = Field(None, ge=1, le=262_143, description="the server's max_connections; "
                                        "unset: each site's database.max_connections")
    superuser_reserved_connections: int | None = Field(None, ge=0, le=262_143)
    version: int | None = Field(None, ge=10, le=99, description="the server's major version: settings it "
                                "does not know are left out of the SQL (idle_session_timeout is 14+)")


class Host(Strict):
    """One server of the fleet."""

    address: Address = Field(description="what Ansible connects to (ansible_host)")
    sites: list[SitePath] = Field(min_length=1, description="site files or folders of them, relative to "
                                  "the fleet file")
    nginx_user: PosixName = Field("www-data", description="the user nginx's workers run as (Debian: "
                                  "www-data); joins the group of every app it reaches through a socket")
    postgres: PostgresFacts | None = Field(None, description="this host's own PostgreSQL: the server of its "
                                           "sites whose database.host is localhost or a socket folder")
    vars: dict[Annotated[str, _pattern(_VARIABLE, "inventory variable", "one of " + ", ".join(INVENTORY_VARIABLES))],
               Annotated[InventoryValue, AfterValidator(lambda v: _plain(v) if isinstance(v, str) else v)]] = Field(
        default_factory=dict, description="Ansible connection variables of this host (ansible_user, ansible_port)")


class Fleet(Strict):
    """Every host, the sites each runs, and the PostgreSQL servers hosts share."""

    hosts: dict[HostAlias, Host] = Field(min_length=1)
    postgres_servers: dict[Address, PostgresFacts] = Field(
        default_factory=dict, description="servers sites reach by address (their database.host), whichever "
        "hosts they run on")

    @field_validator("hosts")
    @classmethod
    def _distinct_folders(cls, hosts: dict[str, Host]) -> dict[str, Host]:
        # Host folders of render's output and the Ansible project: names that differ only in
        # case would be one folder on a case-insensitive file system.
        seen: dict[str, str] = {}
        for name in hosts:
            if name.lower() in seen:
                raise PydanticCustomError("value", f"hosts {seen[name.lower()]!r} and {name!r} differ only in "
                                          "case: each names a folder")
            seen[name.lower()] = name
        return hosts
