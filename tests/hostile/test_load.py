"""Hostile site files: each is refused with located lines, in bounded memory and CPU, and
nothing is written (an earlier render in the output folder stays as it was).

Static cases are files in `cases/`, each starting with `# expect: KEY | FRAGMENT`: the start
of the key path a reported problem names (empty: any) and a fragment of its message. Cases
that cannot be files in a repository (a FIFO, a device, 50 MB) are made here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile.conftest import assert_bad_input, run_deploygen

CASES = Path(__file__).parent / "cases"
SITE = Path(__file__).resolve().parents[2] / "sites" / "dokon.yaml"


def _expectation(case: Path) -> tuple[str, str]:
    first = case.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("# expect: "), f"{case.name} does not say what it expects"
    key, fragment = first[len("# expect: "):].split(" | ")
    return key.strip(), fragment.strip()


@pytest.mark.parametrize("case", sorted(CASES.glob("*.yaml")), ids=lambda p: p.stem)
def test_hostile_site_file_is_refused(case, earlier_output):
    key, fragment = _expectation(case)
    result = run_deploygen("render", case, "-o", earlier_output.path)
    problems = assert_bad_input(result)
    matching = [m for m in problems if (m["key"] or "").startswith(key) and fragment in m["msg"]]
    assert matching, result.stderr[-2000:]
    assert all(m["file"] == str(case) for m in problems)
    earlier_output.intact()


def test_every_case_fires_the_check_it_names(tmp_path):
    """The cases are not refused for a reason they did not mean: dokon itself renders."""
    result = run_deploygen("render", SITE, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr


def test_a_fifo_as_site_file_is_refused_without_waiting(tmp_path, earlier_output):
    fifo = tmp_path / "site.yaml"
    os.mkfifo(fifo)
    [problem] = assert_bad_input(run_deploygen("render", fifo, "-o", earlier_output.path))
    assert "a FIFO, not a regular file" in problem["msg"]
    earlier_output.intact()


def test_a_fifo_in_a_sites_folder_is_reported_not_read(tmp_path, earlier_output):
    folder = tmp_path / "sites"
    folder.mkdir()
    os.mkfifo(folder / "stuck.yaml")
    (folder / "dokon.yaml").write_text(SITE.read_text())
    [problem] = assert_bad_input(run_deploygen("render", folder, "-o", earlier_output.path))
    assert problem["file"].endswith("stuck.yaml") and "a FIFO, not a regular file" in problem["msg"]
    earlier_output.intact()


def test_text_that_is_not_utf8_is_located_at_its_byte(tmp_path):
    site = tmp_path / "latin1.yaml"
    site.write_bytes(SITE.read_bytes().replace(b"dokon.uz,", "dükkan.uz,".encode("latin-1"), 1))
    [problem] = assert_bad_input(run_deploygen("validate", site))
    line = SITE.read_text().splitlines().index(next(x for x in SITE.read_text().splitlines() if "dokon.uz," in x))
    assert (int(problem["line"]), problem["msg"]) == (line + 1, "byte 0xfc is not UTF-8 text: save the site file as UTF-8")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused(device, earlier_output):
    [problem] = assert_bad_input(run_deploygen("render", device, "-o", earlier_output.path))
    assert "character device, not a regular file" in problem["msg"]
    earlier_output.intact()


def test_a_50_mb_site_file_is_refused_before_it_is_read(tmp_path, earlier_output):
    huge = tmp_path / "huge.yaml"
    with huge.open("w") as f:
        f.write(SITE.read_text())
        f.write("# " + "x" * (50 << 20) + "\n")
    [problem] = assert_bad_input(run_deploygen("render", huge, "-o", earlier_output.path))
    assert "more than the 1048576 bytes allowed" in problem["msg"]
    earlier_output.intact()


def test_a_huge_bad_value_is_not_echoed_whole(tmp_path, earlier_output):
    site = tmp_path / "big.yaml"
    site.write_text(SITE.read_text().replace("root: /var/www/dokon\n", f"root: {'a' * 900_000}\n", 1))
    [problem] = assert_bad_input(run_deploygen("render", site, "-o", earlier_output.path))
    assert problem["key"] == "app.root" and "900000 characters" in problem["msg"]
    earlier_output.intact()


def test_a_symlink_loop_in_a_sites_folder(tmp_path, earlier_output):
    folder = tmp_path / "sites"
    folder.mkdir()
    (folder / "a.yaml").symlink_to(folder / "b.yaml")
    (folder / "b.yaml").symlink_to(folder / "a.yaml")
    (folder / "dokon.yaml").write_text(SITE.read_text())
    result = run_deploygen("render", folder / "a.yaml", folder, "-o", earlier_output.path)
    problems = assert_bad_input(result)
    assert [Path(p["file"]).name for p in problems] == ["a.yaml", "b.yaml"]  # a.yaml named twice, read once
    assert all("Too many levels of symbolic links" in p["msg"] for p in problems)
    earlier_output.intact()


@pytest.mark.parametrize("name", ["evil\nimport os.yaml", "a\rb.yaml", "line\u2028sep.yaml", "ff\x0c.yaml",
                                  "bidi\u202e.yaml", "back\\slash.yaml", "esc\x1b[31m.yaml",
                                  "coding=utf-7 +AAo-x.yaml", "dükkan.yaml"])
def test_a_site_file_name_that_could_leave_its_comment_is_refused(tmp_path, earlier_output, name):
    site = tmp_path / name
    site.write_text(SITE.read_text())
    [problem] = assert_bad_input(run_deploygen("render", site, "-o", earlier_output.path))
    assert "rename it" in problem["msg"]
    earlier_output.intact()


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_bad_input_is_carried_by_every_format(fmt, tmp_path):
    import json

    site = CASES / "duplicate-key.yaml"
    result = run_deploygen("validate", "--format", fmt, site, SITE)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    if fmt == "json":
        [entry] = json.loads(result.stdout)
        assert entry["file"] == str(site) and entry["line"] == 3 and entry["key"] == "name"
        assert entry["severity"] == "error" and entry["code"] is None and "duplicate key" in entry["message"]
    else:
        [line] = result.stdout.splitlines()
        assert line.startswith(f"::error file={site},line=3,col=1,title=bad input::name: duplicate key")


@pytest.mark.parametrize(("text", "fragment"), [
    ("a: " + "[" * 500_000 + "]" * 500_000 + "\n", "nested deeper than 32 levels"),  # SIGSEGV in libyaml once
    ("a: " + "{a: " * 200_000 + "b" + "}" * 200_000 + "\n", "nested deeper than 32 levels"),
    ("".join(" " * i + "k:\n" for i in range(1400)) + " " * 1400 + "v\n", "nested deeper than 32 levels"),
    ("a: [" + ",".join(["1"] * 300_000) + "]\n", "more than 20000 values"),
], ids=["brackets-500k-deep", "maps-200k-deep", "indentation-1400-deep", "list-300k-wide"])
def test_nesting_that_would_overflow_the_composer_is_refused_first(tmp_path, earlier_output, text, fragment):
    site = tmp_path / "deep.yaml"
    site.write_text(text)
    [problem] = assert_bad_input(run_deploygen("render", site, "-o", earlier_output.path))
    assert fragment in problem["msg"]
    earlier_output.intact()
