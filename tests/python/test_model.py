"""Containers read from the state file, without booting anything."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict

import pytest

import vmcontainer


def write_state(home: Path, containers: Dict[str, Dict[str, Any]]) -> None:
    (home / "containers.json").write_text(json.dumps({"containers": containers}))
    os.chmod(home / "containers.json", 0o600)


def record(cid: str, **kw: Any) -> Dict[str, Any]:
    r: Dict[str, Any] = {
        "id": cid,
        "name": kw.pop("name", cid),
        "image": "/images/x.iso",
        "status": "stopped",
        "pid": 0,
        "started_at": "2025-01-02T03:04:05Z",
    }
    r.update(kw)
    return r


def test_go_container_record_converts_to_python_types(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(
        home,
        {
            "abc12345": record(
                "abc12345",
                name="web",
                ports={"8080": 80, "2222": 22},
                memory=2048,
                cpus=2,
                started_at="2025-01-02T03:04:05.5+02:00",
                something_from_go={"kept": True},
            )
        },
    )
    [c] = manager.list()
    assert isinstance(c, vmcontainer.Container)
    assert (c.id, c.name, c.image, c.status, c.pid) == ("abc12345", "web", "/images/x.iso", "stopped", 0)
    assert c.ports == {8080: 80, 2222: 22}
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in c.ports.items())
    assert (c.memory, c.cpus) == (2048, 2)
    assert c.started_at.tzinfo is not None
    assert c.started_at == datetime(2025, 1, 2, 1, 4, 5, 500000, tzinfo=timezone.utc)
    assert c.started_at.utcoffset() == timedelta(0)
    assert c.stopped_at is None and c.format is None and c.ssh_key is None
    assert c.volumes == {}
    r = repr(c)
    assert r.startswith("Container(id='abc12345', name='web', status='stopped'"), r
    # Listing wrote nothing: unknown fields and the file stay as they were.
    assert json.loads((home / "containers.json").read_text())["containers"]["abc12345"][
        "something_from_go"
    ] == {"kept": True}


def test_new_fields_and_formats(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(
        home,
        {
            "0000aaaa": record(
                "0000aaaa",
                format="kernel+initrd",
                ssh_port=40022,
                ssh_key="/k/id",
                volumes={"/srv/data": "/data"},
                hypervisor="qemu",
                accel="tcg",
                exit_code=0,
                stopped_at="2025-01-02T04:00:00Z",
                bind_address="0.0.0.0",
            )
        },
    )
    c = manager.get("0000aaaa")
    assert c.format == "kernel+initrd"
    assert (c.ssh_port, c.ssh_key, c.volumes) == (40022, "/k/id", {"/srv/data": "/data"})
    assert (c.hypervisor, c.accel, c.exit_code, c.bind_address) == ("qemu", "tcg", 0, "0.0.0.0")
    assert c.stopped_at == datetime(2025, 1, 2, 4, tzinfo=timezone.utc)
    assert c == manager.get("0000aaaa")


def test_dead_running_container_is_reconciled_to_stopped(home: Path, manager: vmcontainer.Manager) -> None:
    # PID 1 is alive but is not this container's hypervisor.
    write_state(home, {"deadbeef": record("deadbeef", status="running", pid=1, pid_start_time=1)})
    assert manager.get("deadbeef").status == "stopped"
    assert manager.list()[0].status == "stopped"


def test_lookup_by_prefix_and_name_and_ambiguity(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(
        home,
        {
            "abc12345": record("abc12345", name="web"),
            "abd00000": record("abd00000", name="db"),
        },
    )
    assert manager.get("web").id == "abc12345"
    assert manager.get("abd").id == "abd00000"
    with pytest.raises(vmcontainer.AmbiguousError) as e:
        manager.get("ab")
    assert "abc12345" in str(e.value) and "abd00000" in str(e.value)
    ids = [c.id for c in manager.list()]
    assert sorted(ids) == ["abc12345", "abd00000"]


def test_list_is_oldest_first(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(
        home,
        {
            "00000002": record("00000002", started_at="2025-01-02T00:00:00Z"),
            "00000001": record("00000001", started_at="2025-01-03T00:00:00Z"),
        },
    )
    assert [c.id for c in manager.list()] == ["00000002", "00000001"]


def test_inspect_is_a_json_like_dict(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(home, {"abc12345": record("abc12345", ports={"8080": 80})})
    i = manager.inspect("abc12345")
    assert i["id"] == "abc12345"
    assert i["ports"] == {"8080": 80}
    assert i["log_path"] == str(home / "logs" / "abc12345.log")
    assert i["started_at"].startswith("2025-01-02T03:04:05")


def test_logs_of_a_stopped_container(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(home, {"abc12345": record("abc12345")})
    (home / "logs").mkdir()
    (home / "logs" / "abc12345.log").write_bytes(b"one\r\ntwo\n\xffbad utf-8\nno newline")
    text = manager.logs("abc12345")
    assert isinstance(text, str)
    assert text.startswith("one\r\ntwo\n") and text.endswith("no newline")
    assert "\ufffd" in text  # undecodable bytes are replaced, not fatal
    with manager.logs("abc12345", follow=True) as stream:
        assert isinstance(stream, vmcontainer.LogStream)
        lines = list(stream)  # ends: the container is not running
    assert lines == ["one", "two", "\ufffdbad utf-8", "no newline"]
    assert stream.closed
    assert list(stream) == []


def test_remove_a_stopped_container(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(home, {"abc12345": record("abc12345")})
    (home / "logs").mkdir()
    (home / "logs" / "abc12345.log").write_text("x")
    removed = manager.remove("abc12345")
    assert removed.id == "abc12345"
    assert manager.list() == []
    assert not (home / "logs" / "abc12345.log").exists()


def test_corrupt_state_file_is_reported_never_replaced(home: Path, manager: vmcontainer.Manager) -> None:
    state = home / "containers.json"
    state.write_text('{"containers": {"abc12345": {"id": "abc1')
    with pytest.raises(vmcontainer.StateCorruptError) as e:
        manager.list()
    assert str(state) in str(e.value)
    assert state.read_text() == '{"containers": {"abc12345": {"id": "abc1'


def test_manager_properties(home: Path) -> None:
    m = vmcontainer.Manager(home, hypervisor="QEMU")
    assert m.home == home and isinstance(m.home, Path)
    assert m.hypervisor == "qemu"
    assert repr(m) == f"Manager(home={str(home)!r}, hypervisor='qemu')"
    # Default home: $VMCONTAINER_HOME (set by the fixture).
    assert vmcontainer.Manager().home == home


def test_exec_result_is_a_value() -> None:
    r = vmcontainer.ExecResult(3, b"out\n", b"err\n")
    assert (r.exit_code, r.stdout, r.stderr, r.ok) == (3, b"out\n", b"err\n", False)
    code, out, err = r
    assert (code, out, err) == (3, b"out\n", b"err\n")
    assert len(r) == 3 and r[0] == 3 and r[-1] == b"err\n"
    assert r == vmcontainer.ExecResult(3, b"out\n", b"err\n")
    assert r != vmcontainer.ExecResult(0, b"out\n", b"err\n")
    assert repr(r) == "ExecResult(exit_code=3, stdout=b'out\\n', stderr=b'err\\n')"


def test_starting_records_and_exit_reasons(home: Path, manager: vmcontainer.Manager) -> None:
    write_state(
        home,
        {
            # Being started by this (live) process: left as it is.
            "aaaa0001": record("aaaa0001", status="starting", owner={"pid": os.getpid()}),
            # Its starter is gone: an interrupted start, reconciled to error.
            "bbbb0002": record("bbbb0002", status="starting", owner={"pid": 2147483646}),
            "cccc0003": record("cccc0003", status="killed", exit_signal=9, exit_reason="the hypervisor was killed"),
        },
    )
    by_id = {c.id: c for c in manager.list()}
    assert by_id["aaaa0001"].status == "starting"
    assert by_id["bbbb0002"].status == "error"
    assert (by_id["bbbb0002"].exit_reason or "").startswith("start interrupted")
    killed = by_id["cccc0003"]
    assert (killed.status, killed.exit_signal, killed.exit_reason) == ("killed", 9, "the hypervisor was killed")
