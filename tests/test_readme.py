"""README.md cannot drift: every ```console block is run and must print what it shows.

A console block is a session: `$ COMMAND` lines, each followed by what it prints (stdout and
stderr, as a terminal shows them). The blocks run in README order, in one copy of the
repository's shipped files (sites/, fleet.yaml), so a later block sees what an earlier one
rendered. A line `...` stands for any lines (a drill's timings). Blocks in ```sh are
instructions for a server or a fresh machine (installs, rsync, systemctl) and are not run;
every shipped file any block names must exist.

`UPDATE_README=1 python -m pytest tests/test_readme.py` writes what the commands print into
README.md; read the diff before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"
SHIPPED = ("sites", "fleet.yaml")
_BLOCK = re.compile(r"^```console\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


@dataclass
class Command:
    line: int  # of the `$ ` line in README.md
    command: str
    shown: list[str]


def _commands(text: str) -> list[Command]:
    commands: list[Command] = []
    for block in _BLOCK.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        for offset, line in enumerate(block[1].splitlines()):
            if line.startswith("$ "):
                commands.append(Command(first + offset, line[2:], []))
            elif commands and commands[-1].line >= first:
                commands[-1].shown.append(line)
            else:
                raise AssertionError(f"README.md:{first + offset}: a console block starts with `$ COMMAND`")
    return commands


def _matches(shown: list[str], printed: list[str]) -> bool:
    """`shown` equals `printed`, a `...` line standing for any lines (none included)."""
    if not shown:
        return not printed
    if shown[0] == "...":
        return any(_matches(shown[1:], printed[i:]) for i in range(len(printed) + 1))
    return bool(printed) and shown[0] == printed[0] and _matches(shown[1:], printed[1:])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy2(source, folder / name)
    return folder


def _run(command: str, cwd: Path) -> list[str]:
    # The console script of this Python first on PATH; unbuffered, so that stdout and stderr
    # interleave as they do on a terminal; no colour, as in a pipe.
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
           "NO_COLOR": "1", "COLUMNS": "100"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False, env=env)
    return proc.stdout.rstrip("\n").splitlines() if proc.stdout.strip() else []


def test_every_console_block_prints_what_it_shows(workspace):
    text = README.read_text()
    commands = _commands(text)
    assert commands, "README.md shows no console session"
    wrong = []
    printed_all = []
    for command in commands:
        printed = _run(command.command, workspace)
        printed_all.append(printed)
        if not _matches(command.shown, printed):
            wrong.append(f"README.md:{command.line}: $ {command.command}\n--- shown\n" + "\n".join(command.shown)
                         + "\n--- printed\n" + "\n".join(printed))
    if wrong and os.environ.get("UPDATE_README") == "1":
        _update(text, commands, printed_all)
        pytest.skip("README.md rewritten with what the commands print: read the diff")
    assert not wrong, "\n\n".join(wrong)


def _update(text: str, commands: list[Command], printed: list[list[str]]) -> None:
    lines = text.split("\n")
    # From the last command up, so that earlier line numbers stay right.
    for command, output in sorted(zip(commands, printed), key=lambda pair: -pair[0].line):
        if _matches(command.shown, output):
            continue
        start = command.line  # index of the line after the `$ ` line
        lines[start:start + len(command.shown)] = output
    README.write_text("\n".join(lines))


def test_every_file_an_example_names_ships():
    text = README.read_text()
    named = set(re.findall(r"(?<![\w/.-])((?:sites/[\w.-]+\.ya?ml)|fleet\.yaml)\b", text))
    assert named, "README.md names no shipped site file"
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, f"README.md names files that do not ship: {missing}"
