"""Error paths: the right exception class, with the core's message naming
the input; bad input starts nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

import vmcontainer


def qemu_processes_for(home: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "qemu" in l and str(home) in l]


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.get("feedface"),
        lambda m: m.stop("feedface"),
        lambda m: m.start("feedface"),
        lambda m: m.remove("feedface"),
        lambda m: m.remove("feedface", force=True),
        lambda m: m.logs("feedface"),
        lambda m: m.logs("feedface", follow=True),
        lambda m: m.exec("feedface", ["true"]),
        lambda m: m.wait_ready("feedface", timeout=1),
        lambda m: m.inspect("feedface"),
    ],
    ids=["get", "stop", "start", "remove", "remove-force", "logs", "follow", "exec", "wait_ready", "inspect"],
)
def test_unknown_id_is_not_found_naming_it(
    manager: vmcontainer.Manager, call: Callable[[vmcontainer.Manager], Any]
) -> None:
    with pytest.raises(vmcontainer.NotFoundError) as e:
        call(manager)
    assert "feedface" in str(e.value)
    assert str(e.value) == "container not found: feedface"
    assert e.value.kind == "not_found"
    assert isinstance(e.value, vmcontainer.VmContainerError)


def test_missing_image(manager: vmcontainer.Manager, tmp_path: Path) -> None:
    missing = tmp_path / "nope.iso"
    with pytest.raises(vmcontainer.InvalidInputError) as e:
        manager.run(missing)
    assert str(missing) in str(e.value)
    assert "image not found" in str(e.value)


def test_unknown_image_format(manager: vmcontainer.Manager, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(vmcontainer.InvalidInputError, match="unknown image format"):
        manager.run(f)


BAD_OPTIONS: Dict[str, Dict[str, Any]] = {
    "memory=0": dict(memory=0),
    "memory<0": dict(memory=-1),
    "cpus=0": dict(cpus=0),
    "port 70000": dict(ports={70000: 80}),
    "guest port 70000": dict(ports={8080: 70000}),
    "port 0": dict(ports={0: 80}),
    "port key with too many fields": dict(ports={"1.2.3.4:5:6": 80}),
    "ssh port 70000": dict(ssh_port=70000),
    "bad name": dict(name="no spaces allowed"),
    "bad bind address": dict(bind_address="not-an-ip"),
    "missing volume": dict(volumes={"/definitely/not/here": "/data"}),
    "missing key": dict(ssh_key="/definitely/not/here/id_ed25519"),
}
EXPECTED_IN_MESSAGE = {
    "memory=0": "memory",
    "memory<0": "-1",
    "cpus=0": "cpus",
    "port 70000": "70000",
    "guest port 70000": "70000",
    "port 0": "0:80",
    "port key with too many fields": "4 fields",
    "ssh port 70000": "70000",
    "bad name": "no spaces allowed",
    "bad bind address": "not-an-ip",
    "missing volume": "/definitely/not/here",
    "missing key": "/definitely/not/here/id_ed25519",
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_run_options_raise_and_start_nothing(
    manager: vmcontainer.Manager, home: Path, guest: Path, case: str
) -> None:
    options = {"ssh_key": guest / "id_ed25519", **BAD_OPTIONS[case]}
    with pytest.raises(vmcontainer.InvalidInputError) as e:
        manager.run(guest / "vmtest-kernel", **options)
    assert EXPECTED_IN_MESSAGE[case] in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)
    assert manager.list() == []
    assert qemu_processes_for(home) == []


def test_wrong_types_are_type_errors(manager: vmcontainer.Manager, guest: Path) -> None:
    with pytest.raises(TypeError):
        manager.run(guest / "vmtest-kernel", ports="8080:80")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        manager.exec("x", "ls")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        manager.run(guest / "vmtest-kernel", "name")  # type: ignore[misc]


def test_bad_timeouts(manager: vmcontainer.Manager) -> None:
    with pytest.raises(vmcontainer.InvalidInputError, match="timeout"):
        manager.wait_ready("x", timeout=-1)
    with pytest.raises(vmcontainer.InvalidInputError, match="timeout"):
        manager.stop("x", timeout=float("nan"))


def test_exec_needs_a_command(home: Path, manager: vmcontainer.Manager) -> None:
    with pytest.raises(vmcontainer.InvalidInputError, match="command"):
        manager.exec("anything", [])


def test_hypervisor_errors() -> None:
    with pytest.raises(vmcontainer.InvalidInputError) as e:
        vmcontainer.get_hypervisor("virtualbox")
    assert "virtualbox" in str(e.value)
    with pytest.raises(vmcontainer.HypervisorUnavailableError) as e2:
        vmcontainer.get_hypervisor("hyperkit")
    assert "hyperkit" in str(e2.value)
    with pytest.raises(vmcontainer.InvalidInputError):
        vmcontainer.Manager(hypervisor="virtualbox")


def test_no_hypervisor_on_path(home: Path, guest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(vmcontainer.HypervisorUnavailableError) as e:
        vmcontainer.detect_hypervisor()
    assert "qemu" in str(e.value).lower()
    m = vmcontainer.Manager()  # still usable for listing
    assert m.list() == []
    with pytest.raises(vmcontainer.HypervisorUnavailableError):
        m.run(guest / "vmtest-kernel")


def test_home_under_a_file_is_a_host_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    m = vmcontainer.Manager(blocker / "home")
    with pytest.raises(vmcontainer.HostOSError) as e:
        m.list()
    assert str(blocker / "home" / "containers.json") in str(e.value)
    assert isinstance(e.value, OSError)
