"""vmcontainer.devenv: detection, test.yaml, status without an image, install
from a loopback CDN with a progress callback, and the test guest booted as
the dev VM with the project at /app (one VM, removed at the end)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

import vmcontainer
from conftest import BOOT_TIMEOUT
from vmcontainer import devenv


def test_exports() -> None:
    assert vmcontainer.devenv is devenv
    for name in devenv.__all__:
        assert hasattr(devenv, name), name
    assert devenv.DevOps.__module__ == "vmcontainer.devenv"


@pytest.mark.parametrize(
    "files,serve,test",
    [
        ({"artisan": "", "composer.json": '{"scripts": {"test": "phpunit"}}'},
         "php artisan octane:start --host=0.0.0.0 --port=8000", "composer test"),
        ({"package.json": '{"scripts": {"dev": "vite", "test": "vitest"}}'},
         "npm run dev -- --host 0.0.0.0", "npm test"),
        ({"package.json": '{"scripts": {"start": "node ."}}'}, "npm start", None),
        ({"go.mod": "module x", "main.go": "package main"}, "go run .", "go test ./..."),
        ({"manage.py": "", "pytest.ini": ""}, "python manage.py runserver 0.0.0.0:8000", "pytest"),
        ({"Taskfile.yml": ""}, "python3 -m http.server 8000", "task test"),
        ({}, "python3 -m http.server 8000", None),
    ],
)
def test_detection(tmp_path: Path, files: dict, serve: str, test: Optional[str]) -> None:  # type: ignore[type-arg]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    assert devenv.detect_serve_command(tmp_path) == serve
    assert devenv.detect_test_command(str(tmp_path)) == test


def test_test_config(tmp_path: Path) -> None:
    assert devenv.load_test_config(tmp_path) is None
    (tmp_path / ".core").mkdir()
    (tmp_path / ".core" / "test.yaml").write_text(
        "version: 1\ncommand: make check\ncommands:\n  - name: unit\n    run: make unit\n"
        "  - name: lint\n    run: make lint\nenv:\n  CI: 'true'\n"
    )
    c = devenv.load_test_config(tmp_path)
    assert c is not None
    assert (c.version, c.command) == (1, "make check")
    assert c.commands == [("unit", "make unit"), ("lint", "make lint")]
    assert c.env == {"CI": "true"}
    assert devenv.detect_test_command(tmp_path) == "make check"
    dev = devenv.DevOps(tmp_path / "home")
    assert dev.test_command(name="unit", project=tmp_path) == "make unit"
    with pytest.raises(vmcontainer.InvalidInputError, match="nope"):
        dev.test_command(name="nope", project=tmp_path)
    (tmp_path / ".core" / "test.yaml").write_text("version: [\n")
    with pytest.raises(vmcontainer.InvalidInputError) as e:
        devenv.load_test_config(tmp_path)
    assert "test.yaml" in str(e.value)


def test_without_an_image(home: Path) -> None:
    dev = devenv.DevOps()
    assert repr(dev) == f"DevOps(home={str(home)!r})"
    assert not dev.is_installed() and not dev.is_running()
    s = dev.status()
    assert not s.installed and not s.running
    assert s.image_version is None and s.container_id is None and s.uptime_secs is None
    assert s.image_path.name.startswith("core-devops-")
    with pytest.raises(vmcontainer.NotFoundError) as e:
        dev.boot()
    assert "core-devops-" in str(e.value) and "vmcontainer dev install" in str(e.value)
    with pytest.raises(vmcontainer.NotRunningError):
        dev.stop()


def test_bad_config_names_the_file(home: Path) -> None:
    (home / "config.yaml").write_text("version: 1\nimages:\n  source: ftp\n")
    with pytest.raises(vmcontainer.InvalidInputError) as e:
        devenv.DevOps()
    assert str(home / "config.yaml") in str(e.value)


# --- a loopback CDN publishing the guest's qcow2 as dev image 1.0.0 -----------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def cdn(guest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, int]]:
    """(url, image size): an HTTP server on 127.0.0.1 in a thread of this
    process, so it only answers while the caller releases the GIL."""
    root = tmp_path_factory.mktemp("cdn")
    name = devenv.DevOps(tmp_path_factory.mktemp("probe")).status().image_path.name
    image = guest / "vmtest.qcow2"
    (root / name).symlink_to(image)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    size = image.stat().st_size
    (root / "manifest.json").write_text(
        json.dumps({"version": "1.0.0", "images": {name: {"sha256": digest, "size": size}}})
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", size
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """The URL of an HTTP server on 127.0.0.1 serving `root`, in a thread of
    this process (it answers while the caller releases the GIL)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_wrong_checksum_or_a_missing_image_raises_its_own_error(home: Path, tmp_path: Path) -> None:
    name = devenv.DevOps(home).status().image_path.name
    image = b"not really a qcow2 image\n" * 1000
    root = tmp_path / "cdn"
    # tampered/: the image with a checksum that does not match its bytes.
    # gone/: a manifest with the right checksum, but no image (HTTP 404).
    for sub, digest, with_image in [
        ("tampered", hashlib.sha256(b"other bytes").hexdigest(), True),
        ("gone", hashlib.sha256(image).hexdigest(), False),
    ]:
        (root / sub).mkdir(parents=True)
        (root / sub / "manifest.json").write_text(
            json.dumps({"version": "1.0.0", "images": {name: {"sha256": digest, "size": len(image)}}})
        )
        if with_image:
            (root / sub / name).write_bytes(image)
    with serve_directory(root) as url:
        (home / "config.yaml").write_text(f"version: 1\nimages:\n  source: cdn\n  cdn:\n    url: {url}/tampered\n")
        dev = devenv.DevOps()
        with pytest.raises(vmcontainer.ChecksumError) as e:
            dev.install()
        assert e.value.kind == "checksum"
        assert "checksum mismatch" in str(e.value)
        assert hashlib.sha256(b"other bytes").hexdigest() in str(e.value)
        assert isinstance(e.value, vmcontainer.DownloadError)
        assert not isinstance(e.value, vmcontainer.CommunicationError)
        assert not dev.is_installed()
        images = home / "images"
        left = [p.name for p in images.iterdir() if not p.name.endswith(".lock")] if images.exists() else []
        assert left == [], left

        (home / "config.yaml").write_text(f"version: 1\nimages:\n  source: cdn\n  cdn:\n    url: {url}/gone\n")
        dev = devenv.DevOps()
        with pytest.raises(vmcontainer.DownloadError) as d:
            dev.install()
        assert type(d.value) is vmcontainer.DownloadError
        assert d.value.kind == "download"
        assert isinstance(d.value, ConnectionError)
        assert "HTTP 404" in str(d.value) and f"{url}/gone/{name}" in str(d.value)
        assert not dev.is_installed()


def configure(home: Path, url: str, guest: Path) -> None:
    (home / "config.yaml").write_text(
        f"version: 1\nimages:\n  source: cdn\n  cdn:\n    url: {url}\n"
        f"dev:\n  memory: 512\n  cpus: 1\n  ssh_key: {guest / 'id_ed25519'}\n"
    )


def test_a_raising_progress_callback_stops_the_install(
    home: Path, cdn: Tuple[str, int], guest: Path
) -> None:
    url, _ = cdn
    configure(home, url, guest)
    dev = devenv.DevOps()

    def progress(done: int, total: Optional[int]) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        dev.install(progress)
    assert not dev.is_installed()
    # Nothing half-installed is left in the way.
    report = dev.install()
    assert dev.is_installed() and not report.already_installed


@pytest.fixture(scope="module")
def dev_vm(
    module_home: Path, cdn: Tuple[str, int], guest: Path
) -> Iterator[Tuple[devenv.DevOps, int, List[Tuple[int, int, Optional[int]]]]]:
    url, size = cdn
    configure(module_home, url, guest)
    dev = devenv.DevOps(module_home)
    calls: List[Tuple[int, int, Optional[int]]] = []
    report = dev.install(lambda done, total: calls.append((threading.get_ident(), done, total)))
    assert report.size == size
    try:
        yield dev, size, calls
    finally:
        m = vmcontainer.Manager(module_home)
        for c in m.list():
            m.remove(c.id, force=True)


def test_install_from_the_cdn(dev_vm: Tuple[devenv.DevOps, int, List[Tuple[int, int, Optional[int]]]]) -> None:
    dev, size, calls = dev_vm
    assert calls, "the progress callback was never called"
    assert {tid for tid, _, _ in calls} == {threading.get_ident()}, "progress ran on another thread"
    assert calls[-1][1:] == (size, size)
    assert [d for _, d, _ in calls] == sorted(d for _, d, _ in calls)
    assert dev.is_installed()
    again = dev.install()
    assert again.already_installed and again.version == "1.0.0" and again.source == "cdn"
    assert len(again.sha256) == 64 and again.path.stat().st_size == size
    u = dev.check_update()
    assert (u.current, u.latest, u.has_update) == ("1.0.0", "1.0.0", False)
    assert dev.update() is None


def test_boot_the_dev_vm_with_the_project(
    dev_vm: Tuple[devenv.DevOps, int, List[Tuple[int, int, Optional[int]]]],
    module_home: Path,
    tmp_path: Path,
) -> None:
    dev, _, _ = dev_vm
    project = tmp_path / "project"
    project.mkdir()
    (project / "marker.txt").write_text("project shared at /app\n")
    started = time.monotonic()
    c = dev.boot(project=project, ready_timeout=BOOT_TIMEOUT)
    print(f"dev boot took {time.monotonic() - started:.1f}s")
    assert c.name == "core-dev" and c.status == "running"
    assert (c.memory, c.cpus) == (512, 1)
    with pytest.raises(vmcontainer.ContainerRunningError):
        dev.boot(project=project)
    s = dev.status()
    assert s.installed and s.running and s.image_version == "1.0.0"
    assert s.container_id == c.id and s.project == project
    assert s.ssh_port and s.uptime_secs is not None
    assert dev.is_running()
    m = vmcontainer.Manager(module_home)
    r = m.exec("core-dev", ["cat", "/app/marker.txt"])
    assert (r.exit_code, r.stdout) == (0, b"project shared at /app\n")
    assert dev.test(["sh", "-c", "test -f marker.txt && exit 3"], project=project) == 3
    stopped = dev.stop()
    assert stopped.status == "stopped" and not dev.is_running()
