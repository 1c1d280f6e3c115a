"""`deploygen diff --root ROOT` on a tree someone else controls.

Promises: nothing outside ROOT is read or shown (a symlink means what it means
on the server, with ROOT as /), only regular files are read (a FIFO never
blocks, a directory is no traceback), what is printed is bounded and carries
no terminal control characters, and a broken installed manifest is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
import yaml

from tests.conftest import BASE_SITE
from tests.hostile.conftest import LOCATED, run_deploygen

CANARY = "canary-4f1c9e: the content of a file outside ROOT"
NGINX = "etc/nginx/sites-available/shop.conf"
UNIT = "etc/systemd/system/shop.service"
ENV = "etc/deploygen/shop/flask.env"
MANIFEST = "etc/deploygen/shop/manifest.json"


@pytest.fixture
def installed(tmp_path):
    """A site file and ROOT holding exactly what render writes for it."""
    site = tmp_path / "shop.yaml"
    site.write_text(yaml.safe_dump(BASE_SITE, sort_keys=False))
    out = tmp_path / "out"
    result = run_deploygen("render", site, "-o", out)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "server"
    shutil.copytree(out / "shop" / "root", root)
    return site, root


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "outside" / "secret"
    path.parent.mkdir()
    path.write_text(CANARY + "\n")
    return path


def _diff(site, root):
    result = run_deploygen("diff", site, "--root", root)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 1), (result.returncode, result.stderr[-2000:])
    return result


def _states(stdout: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[1] for line in stdout.splitlines() if line.startswith("shop: ")}


def _replace(root, target, make):
    path = root / target
    path.unlink()
    make(path)
    return path


def test_an_untouched_install_is_same(installed):
    site, root = installed
    result = _diff(site, root)
    assert result.returncode == 0
    assert set(_states(result.stdout).values()) == {"same"}


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_a_symlink_out_of_root_is_resolved_inside_root(installed, canary, form):
    site, root = installed
    link = root / NGINX
    target = str(canary) if form == "absolute" else "../" * 20 + str(canary).lstrip("/")
    _replace(root, NGINX, lambda p: p.symlink_to(target))
    result = _diff(site, root)
    assert CANARY not in result.stdout + result.stderr
    assert "canary-4f1c9e" not in result.stdout + result.stderr
    # On the server the link points at /…/outside/secret, which ROOT does not have.
    assert _states(result.stdout)[f"/{NGINX}"] == "missing"
    assert result.returncode == 1
    assert link.is_symlink()  # diff never changes ROOT


def test_the_link_target_is_read_from_root_not_from_this_machine(installed, canary):
    site, root = installed
    inside = root / str(canary).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("server { listen 80; }  # the server's own file at that path\n")
    _replace(root, NGINX, lambda p: p.symlink_to(canary))
    result = _diff(site, root)
    assert CANARY not in result.stdout + result.stderr
    assert _states(result.stdout)[f"/{NGINX}"] == "edited"  # the installed manifest lists it
    assert "-server { listen 80; }  # the server's own file at that path" in result.stdout


def test_a_symlinked_folder_out_of_root_stays_in_root(installed, canary):
    site, root = installed
    shutil.rmtree(root / "etc/deploygen/shop")
    (root / "etc/deploygen/shop").symlink_to(canary.parent)
    (canary.parent / "flask.env").write_text(CANARY + "\n")
    result = _diff(site, root)
    assert CANARY not in result.stdout + result.stderr
    assert _states(result.stdout)[f"/{ENV}"] == "missing"


def test_a_symlink_that_stays_inside_root_is_followed(installed):
    site, root = installed
    kept = root / "srv/units/shop.service"
    kept.parent.mkdir(parents=True)
    shutil.copy(root / UNIT, kept)
    _replace(root, UNIT, lambda p: p.symlink_to("/srv/units/shop.service"))  # absolute: ROOT is /
    shutil.move(root / ENV, root / "etc/deploygen/flask.env.real")
    (root / ENV).symlink_to("../flask.env.real")
    result = _diff(site, root)
    states = _states(result.stdout)
    assert states[f"/{UNIT}"] == "same" and states[f"/{ENV}"] == "same"
    assert result.returncode == 0


def test_a_fifo_is_not_a_file_and_never_blocks(installed):
    site, root = installed
    _replace(root, ENV, os.mkfifo)
    result = _diff(site, root)  # run_deploygen's timeout fails the test if it blocks
    assert _states(result.stdout)[f"/{ENV}"] == "not-a-file"
    assert "a FIFO" in result.stdout
    assert result.returncode == 1


def test_a_directory_is_not_a_file(installed):
    site, root = installed
    _replace(root, UNIT, lambda p: p.mkdir())
    result = _diff(site, root)
    assert _states(result.stdout)[f"/{UNIT}"] == "not-a-file"
    assert "a directory" in result.stdout


def test_a_socket_is_not_a_file(installed, tmp_path):
    site, root = installed
    # AF_UNIX paths are short: bind in a short folder, then move the socket file into ROOT.
    short = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(short))
        os.replace(short, _replace(root, ENV, lambda p: None))
        result = _diff(site, root)
    assert _states(result.stdout)[f"/{ENV}"] == "not-a-file"
    assert "a socket" in result.stdout


def test_a_device_is_not_a_file(installed):
    site, root = installed
    _replace(root, ENV, lambda p: p.symlink_to("/dev/zero"))  # ROOT/dev/zero: not there
    assert _states(_diff(site, root).stdout)[f"/{ENV}"] == "missing"
    (root / "dev").mkdir()
    try:
        os.mknod(root / "dev/zero", 0o600 | 0o020000, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    result = _diff(site, root)
    assert _states(result.stdout)[f"/{ENV}"] == "not-a-file"
    assert "a character device" in result.stdout


def test_a_file_over_the_cap_is_unreadable_and_not_read(installed):
    site, root = installed
    big = root / NGINX
    with open(big, "wb") as f:  # sparse: 2 GiB on disk costs nothing, and read whole would fail the limit
        f.truncate(2 << 30)
    result = _diff(site, root)
    assert _states(result.stdout)[f"/{NGINX}"] == "unreadable"
    assert "more than the" in result.stdout
    assert len(result.stdout) < 20_000


def test_a_symlink_loop_is_unreadable(installed):
    site, root = installed
    _replace(root, NGINX, lambda p: p.symlink_to("shop.conf"))
    result = _diff(site, root)
    assert _states(result.stdout)[f"/{NGINX}"] == "unreadable"
    assert "symbolic links" in result.stdout


def test_a_binary_file_is_not_printed(installed):
    site, root = installed
    (root / NGINX).write_bytes(b"\x1b]0;owned\x07\x1b[2J" + os.urandom(4096))
    result = _diff(site, root)
    assert _states(result.stdout)[f"/{NGINX}"] == "edited"
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "not shown" in result.stdout


def test_a_huge_text_file_gives_a_bounded_diff(installed):
    site, root = installed
    (root / NGINX).write_text("x\n" * 500_000)  # just under the 1 MiB cap
    (root / UNIT).write_text("y" * 900_000 + "\n")  # one very long line
    result = _diff(site, root)
    assert _states(result.stdout)[f"/{NGINX}"] == "edited"
    assert "too many to compare" in result.stdout
    assert len(result.stdout) < 50_000


@pytest.mark.parametrize("manifest", [
    b"[]", b'{"files": 3}', b'{"files": [3, null, {"target": 1, "sha256": []}, {"target": "/x"}]}',
    b'"files"', b"null", b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000,
])
def test_a_broken_installed_manifest_is_ignored(installed, manifest):
    site, root = installed
    (root / MANIFEST).write_bytes(manifest)
    (root / NGINX).write_text((root / NGINX).read_text() + "client_max_body_size 1m;  # by hand\n")
    result = _diff(site, root)
    states = _states(result.stdout)
    assert states[f"/{NGINX}"] == "edited"  # its header still says deploygen wrote it
    assert states[f"/{ENV}"] == "same"


@pytest.mark.parametrize("make", [os.mkfifo, lambda p: p.mkdir(), lambda p: p.symlink_to("/etc/shadow")])
def test_a_manifest_that_is_no_file_is_ignored(installed, make):
    site, root = installed
    _replace(root, MANIFEST, make)
    result = _diff(site, root)
    assert result.returncode == 0
    assert set(_states(result.stdout).values()) == {"same"}


def test_a_root_that_is_no_folder_is_bad_input(installed, tmp_path):
    site, _ = installed
    result = run_deploygen("diff", site, "--root", tmp_path / "no-such-server")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert LOCATED.match(line) and "--root" in line


def test_a_manifest_naming_other_paths_is_not_followed(installed, canary):
    """The manifest's targets only vouch for checksums; diff reads the site's own paths."""
    site, root = installed
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["files"].append({"target": str(canary), "sha256": "0" * 64})
    (root / MANIFEST).write_text(json.dumps(manifest))
    result = _diff(site, root)
    assert CANARY not in result.stdout and str(canary) not in result.stdout


def _swapped_tree(tmp_path, canary):
    """ROOT/etc/deploygen/shop a real folder, and beside it a link to the canary's folder outside."""
    root = tmp_path / "server"
    folder = root / "etc/deploygen/shop"
    folder.mkdir(parents=True)
    (folder / "flask.env").write_text("FLASK_X=1\n")
    (canary.parent / "flask.env").write_text(CANARY + "\n")
    (root / "etc/deploygen/link").symlink_to(canary.parent)
    return root, folder


def test_a_folder_that_is_a_link_when_opened_is_followed_inside_root(tmp_path, canary):
    """What read_in_root opens is what it resolved itself, folder by folder, at that moment."""
    from deploygen.fs.rootpath import read_in_root

    root, folder = _swapped_tree(tmp_path, canary)
    assert read_in_root(root, "/etc/deploygen/shop/flask.env") == b"FLASK_X=1\n"
    os.rename(folder, root / "etc/deploygen/real")
    os.rename(root / "etc/deploygen/link", folder)  # the folder is now a link to outside ROOT
    with pytest.raises(FileNotFoundError):
        read_in_root(root, "/etc/deploygen/shop/flask.env")
    # The link means ROOT/<canary folder>: that file, when ROOT has it, and never the canary.
    inside = root / str(canary.parent).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "flask.env").write_text("FLASK_Y=2\n")
    assert read_in_root(root, "/etc/deploygen/shop/flask.env") == b"FLASK_Y=2\n"
    # `..` after a link is the parent of where it leads, as for the kernel.
    assert read_in_root(root, f"/etc/deploygen/shop/../{canary.parent.name}/flask.env") == b"FLASK_Y=2\n"
    assert read_in_root(root, "/../../etc/deploygen/real/flask.env") == b"FLASK_X=1\n"


def test_read_in_root_looks_up_no_path_past_root(tmp_path, monkeypatch):
    """After ROOT itself, every lookup is one name relative to the folder just opened, never
    followed by the kernel: nothing a swap can redirect between resolving and opening."""
    from deploygen.fs import rootpath

    root = tmp_path / "server"
    (root / "srv/units").mkdir(parents=True)
    (root / "srv/units/shop.service").write_text("[Service]\n")
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/shop.service").symlink_to("/srv/units/../units/shop.service")
    calls = []
    real_open, real_readlink = os.open, os.readlink

    def spy_open(name, flags, mode=0o777, *, dir_fd=None):
        calls.append(("open", name, flags, dir_fd))
        return real_open(name, flags, mode, dir_fd=dir_fd)

    def spy_readlink(name, *, dir_fd=None):
        calls.append(("readlink", name, os.O_NOFOLLOW, dir_fd))
        return real_readlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(rootpath.os, "open", spy_open)
    monkeypatch.setattr(rootpath.os, "readlink", spy_readlink)
    assert rootpath.read_in_root(root, "/etc/systemd/system/shop.service") == b"[Service]\n"
    monkeypatch.undo()
    assert calls[0][1] == root and calls[0][3] is None
    # The link is read by name, then its target walked from ROOT again: `..` is a folder popped, not a lookup.
    assert [name for call, name, _, _ in calls[1:] if call == "open"] == [
        "etc", "systemd", "system", "srv", "units", "units", "shop.service"]
    for call, name, flags, dir_fd in calls[1:]:
        assert dir_fd is not None and "/" not in name and name not in ("", ".."), (call, name)
        assert flags & os.O_NOFOLLOW, (call, name)


def test_read_in_root_refuses_what_is_no_regular_file(tmp_path):
    from deploygen.fs.rootpath import MAX_SYMLINKS, read_in_root

    root = tmp_path / "server"
    (root / "d").mkdir(parents=True)
    os.mkfifo(root / "fifo")
    (root / "loop").symlink_to("loop")
    chain = [f"l{i}" for i in range(MAX_SYMLINKS + 1)]
    for here, there in zip(chain, chain[1:] + ["d"]):
        (root / here).symlink_to(there)
    for path, reason in (("/", "a directory"), ("/d/..", "a directory"), ("/fifo", "a FIFO"),
                         ("/loop", "symbolic links"), ("/l0", "symbolic links"), ("/d/x", "No such file"),
                         ("/fifo/x", "Not a directory"), ("/a\0b", "NUL")):
        with pytest.raises(OSError) as exc:
            read_in_root(root, path)
        assert reason in exc.value.strerror, (path, exc.value)


def _race(root, folder, read, seconds=2.0):
    """`read()` in a loop while another thread swaps `folder` for a link out of ROOT and back."""
    import threading
    import time

    real, link = folder.parent / "real", folder.parent / "link"
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            os.rename(folder, real)
            os.rename(link, folder)
            os.rename(folder, link)
            os.rename(real, folder)

    swapper = threading.Thread(target=swap)
    swapper.start()
    seen = set()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.add(read())
    finally:
        stop.set()
        swapper.join()
    return seen


def test_a_folder_swapped_for_a_link_while_reading_never_leads_out(tmp_path, canary):
    """The race itself, for a bounded time: resolving and opening are one walk by descriptors."""
    from deploygen.render import drift

    root, folder = _swapped_tree(tmp_path, canary)
    seen = _race(root, folder, lambda: drift.read_installed(root, "/etc/deploygen/shop/flask.env").content)
    assert not any(CANARY.encode() in (content or b"") for content in seen)
    assert b"FLASK_X=1\n" in seen  # the race was run, not only lost
