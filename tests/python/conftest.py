"""Shared fixtures for the Python module's tests.

These tests import the *installed* wheel (run.sh builds it and installs it
into a fresh virtual environment), never the source tree. Every test gets
its own VMCONTAINER_HOME; every VM a test starts is removed by a finalizer,
even when the test fails. At most one VM runs at a time: VM fixtures are
module-scoped and the modules run one after another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

import vmcontainer

REPO = Path(__file__).resolve().parents[2]
# Generous: TCG on a loaded 2-core machine is slow.
BOOT_TIMEOUT = 240.0


@pytest.fixture(scope="session")
def guest() -> Path:
    """The test guest (kernel+initrd, ISO, disks, SSH key)."""
    env = os.environ.get("VMCONTAINER_TEST_GUEST")
    if env:
        return Path(env)
    out = subprocess.run(
        ["bash", str(REPO / "tests/guest/build.sh")],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private VMCONTAINER_HOME for one test."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("VMCONTAINER_HOME", str(h))
    return h


@pytest.fixture
def manager(home: Path) -> vmcontainer.Manager:
    return vmcontainer.Manager(home)


@pytest.fixture(scope="module")
def module_home() -> Iterator[Path]:
    """A VMCONTAINER_HOME shared by the tests of one module (for a VM that
    several tests use). Short, so socket paths stay short."""
    with tempfile.TemporaryDirectory(prefix="vmcpy") as d:
        old = os.environ.get("VMCONTAINER_HOME")
        os.environ["VMCONTAINER_HOME"] = d
        try:
            yield Path(d)
        finally:
            if old is None:
                os.environ.pop("VMCONTAINER_HOME", None)
            else:
                os.environ["VMCONTAINER_HOME"] = old


def python_in_subprocess(code: str, **kwargs: object) -> "subprocess.Popen[str]":
    """Starts this interpreter (the test venv's) on `code`."""
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
