"""Module-level functions: hypervisors, image formats, IDs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vmcontainer


def test_generate_id() -> None:
    ids = {vmcontainer.generate_id() for _ in range(200)}
    assert len(ids) > 195
    assert all(re.fullmatch(r"[0-9a-f]{8}", i) for i in ids)


def test_detect_image_format_by_extension_and_content(tmp_path: Path, guest: Path) -> None:
    f = vmcontainer.detect_image_format
    assert f(guest / "vmtest.iso") == "iso"
    assert f(guest / "vmtest.qcow2") == "qcow2"
    assert f(guest / "vmtest.vmdk") == "vmdk"
    assert f(guest / "vmtest.raw") == "raw"
    assert f(str(guest / "vmtest-kernel")) == "kernel+initrd"
    liar = tmp_path / "disk.iso"
    liar.write_bytes(b"QFI\xfb" + bytes(508))
    assert f(liar) == "qcow2"
    noext = tmp_path / "image"
    noext.write_bytes(bytes(0x8001) + b"CD001" + bytes(100))
    assert f(noext) == "iso"
    assert f(tmp_path / "x.IMG") == "raw"
    assert f(tmp_path / "notes.txt") == "unknown"


def test_hypervisors(monkeypatch: pytest.MonkeyPatch) -> None:
    hv = vmcontainer.detect_hypervisor()
    assert hv.name == "qemu" and hv.available()
    assert repr(hv) == "Hypervisor(name='qemu')"
    assert vmcontainer.get_hypervisor("QEMU").name == "qemu"
    monkeypatch.setenv("VMCONTAINER_ACCEL", "tcg")
    accel, why = vmcontainer.get_hypervisor("qemu").accel()
    assert accel == "tcg" and why
