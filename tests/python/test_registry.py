"""Manager.push/pull/pulled_images/export_kubevirt against a real registry:
Debian's docker-registry (the CNCF distribution registry) on a loopback
port with filesystem storage, started by the fixture below. No VM boots:
push and pull move the test guest's image files, and the export renders a
VirtualMachine for an image. Ctrl-C interrupts a pull from a registry that
never answers."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

import vmcontainer


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`127.0.0.1:PORT` of a fresh registry; fails (never skips) when
    docker-registry is not installed (scripts/deps.sh installs it)."""
    exe = shutil.which("docker-registry")
    assert exe, "docker-registry is not installed (apt-get install docker-registry)"
    d = tmp_path_factory.mktemp("registry")
    config = d / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {d / 'data'}\n"
        "http:\n  addr: 127.0.0.1:0\n"
    )
    p = subprocess.Popen([exe, "serve", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        addr: Optional[str] = None
        deadline = time.monotonic() + 30
        while addr is None and time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on (127\.0\.0\.1:\d+)", line)
            addr = m.group(1) if m else None
        assert addr, "docker-registry did not start"
        # Keep draining its log so it never blocks on a full pipe.
        threading.Thread(target=p.stderr.read, daemon=True).start()
        yield addr
    finally:
        p.kill()
        p.wait()


def qcow2(guest: Path) -> Path:
    [disk, *_] = sorted(guest.glob("*.qcow2"))
    return disk


def kernel(guest: Path) -> Path:
    [k, *_] = sorted(guest.glob("*-kernel"))
    return k


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Recorder:
    def __init__(self) -> None:
        self.calls: List[Tuple[int, Optional[int]]] = []
        self.thread = threading.get_ident()
        self.threads: set[int] = set()

    def __call__(self, done: int, total: Optional[int]) -> None:
        self.calls.append((done, total))
        self.threads.add(threading.get_ident())


def test_push_pull_roundtrip_with_progress(
    tmp_path: Path, guest: Path, registry: str, manager: vmcontainer.Manager
) -> None:
    disk = qcow2(guest)
    ref = f"{registry}/faces/python-disk:v1"
    rec = Recorder()
    pushed = manager.push(disk, ref, progress=rec)
    assert isinstance(pushed, vmcontainer.PushReport)
    assert pushed.reference == ref
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pushed.digest), pushed.digest
    assert (pushed.format, pushed.kind) == ("qcow2", "vmcontainer")
    assert pushed.size == disk.stat().st_size
    assert rec.calls and rec.calls[-1] == (pushed.size, pushed.size), rec.calls[-3:]
    assert rec.threads == {rec.thread}, "progress ran on another thread"

    # A second home pulls it: every byte arrives and matches.
    other = vmcontainer.Manager(tmp_path / "other")
    rec = Recorder()
    pulled = other.pull(ref, progress=rec)
    assert isinstance(pulled, vmcontainer.PulledImage)
    assert (pulled.reference, pulled.digest, pulled.format) == (ref, pushed.digest, "qcow2")
    assert not pulled.already_present and pulled.downloaded == disk.stat().st_size
    assert pulled.path.is_file() and pulled.path.is_relative_to(tmp_path / "other")
    assert sha256(pulled.path) == sha256(disk)
    assert rec.calls and rec.calls[-1][0] == pulled.downloaded
    assert [(i.reference, i.digest, i.path) for i in other.pulled_images()] == [
        (ref, pushed.digest, pulled.path)
    ]
    # Pulled again: nothing moves. By digest: the same content.
    again = other.pull(ref)
    assert again.already_present and again.downloaded == 0 and again.path == pulled.path
    by_digest = other.pull(f"{registry}/faces/python-disk@{pushed.digest}")
    assert by_digest.digest == pushed.digest and sha256(by_digest.path) == sha256(disk)


def test_kernel_triplet_and_kubevirt_export(
    guest: Path, registry: str, manager: vmcontainer.Manager
) -> None:
    k = kernel(guest)
    pushed = manager.push(k, f"{registry}/faces/python-kernel:v1")
    assert pushed.format == "kernel+initrd"
    pulled = manager.pull(pushed.reference)
    assert pulled.path.name.endswith("-kernel") and sha256(pulled.path) == sha256(k)

    disk = qcow2(guest)
    cd = f"{registry}/faces/python-containerdisk:v1"
    # Before a containerDisk exists the error says how to make one.
    with pytest.raises(vmcontainer.InvalidInputError, match="containerdisk"):
        manager.export_kubevirt(str(disk))
    report = manager.push(disk, cd, containerdisk=True)
    assert report.kind == "containerdisk"
    yaml = manager.export_kubevirt(str(disk))
    assert "apiVersion: kubevirt.io/v1" in yaml and "kind: VirtualMachine" in yaml
    assert re.search(rf"image: ['\"]?{re.escape(cd)}", yaml), yaml
    other = f"{registry}/faces/other:v2"
    named = manager.export_kubevirt(str(disk), image_ref=other)
    assert re.search(rf"image: ['\"]?{re.escape(other)}", named), named
    with pytest.raises(vmcontainer.NotFoundError, match="no-such-thing"):
        manager.export_kubevirt("no-such-thing")


def test_bad_input(guest: Path, registry: str, manager: vmcontainer.Manager) -> None:
    with pytest.raises(vmcontainer.DownloadError, match="python-missing"):
        manager.pull(f"{registry}/faces/python-missing:v1")
    with pytest.raises(vmcontainer.InvalidInputError, match="reference"):
        manager.push(qcow2(guest), f"{registry}/../etc:v1")
    with pytest.raises(vmcontainer.InvalidInputError):
        manager.pull("127.0.0.1:1/Upper/Case:v1")
    # A registry that is down.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(vmcontainer.DownloadError, match=f"127.0.0.1:{port}"):
        manager.pull(f"127.0.0.1:{port}/faces/x:v1")
    assert manager.pulled_images() == []


def test_ctrl_c_interrupts_a_pull(tmp_path: Path) -> None:
    """A registry that accepts connections and never answers: the pull
    blocks until SIGINT, which raises KeyboardInterrupt at once."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        code = f"""
            import vmcontainer
            m = vmcontainer.Manager({str(tmp_path / 'home')!r})
            print("ready", flush=True)
            try:
                m.pull("127.0.0.1:{port}/faces/hang:v1")
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            """
        p = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
            time.sleep(1.0)
            assert p.poll() is None, "the pull returned from a registry that never answers"
            started = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
            assert time.monotonic() - started < 5
            assert "interrupted" in out, err
        finally:
            p.kill()
            p.wait()
