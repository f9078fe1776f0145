"""Blocking calls release the GIL and Ctrl-C interrupts them; exiting with
a follow iterator alive neither hangs nor crashes. The VM here boots
nothing (a zeroed 1 MB raw disk), so its SSH never answers and it ignores
ACPI: every wait on it lasts until its timeout."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import vmcontainer

VM = Tuple[vmcontainer.Manager, vmcontainer.Container]


def blank_disk(directory: Path) -> Path:
    disk = directory / "blank.raw"
    disk.write_bytes(bytes(1 << 20))
    return disk


def spawn(code: str, home: Path) -> "subprocess.Popen[str]":
    """Runs `code` in this venv's interpreter; it prints "ready" when it is
    about to block."""
    env = {**__import__("os").environ, "VMCONTAINER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    # A suite started in the background of a non-interactive shell inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler: give the child the one an interactive user has.
    prelude = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
    return subprocess.Popen(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_ready_line(p: "subprocess.Popen[str]") -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line.strip() == "ready", f"child said {line!r}; stderr: {p.stderr.read() if p.stderr else ''}"


def test_foreground_run_blocks_and_ctrl_c_interrupts_it(tmp_path: Path) -> None:
    """Runs before the module's VM exists, so only one VM runs at a time.
    Ctrl-C stops the VM before KeyboardInterrupt is raised: ACPI first, and
    since this blank disk runs no ACPI handler, SIGTERM after the 10 s stop
    timeout."""
    home = tmp_path / "fg"
    home.mkdir()
    disk = blank_disk(tmp_path)
    p = spawn(
        f"""
        import vmcontainer
        print("ready")
        vmcontainer.Manager().run({str(disk)!r}, detach=False, memory=64)
        print("returned")
        """,
        home,
    )
    m = vmcontainer.Manager(home)
    try:
        wait_for_ready_line(p)
        deadline = time.monotonic() + 60
        # Recorded first as "starting", then "running" once QEMU is up.
        while [c.status for c in m.list()] != ["running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        [c] = m.list()
        assert c.status == "running"
        time.sleep(1)
        assert p.poll() is None, "a foreground run returned while the VM runs"
        started = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        took = time.monotonic() - started
        assert p.returncode == -signal.SIGINT, err
        assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err
        assert took < 30, f"took {took:.1f}s to interrupt"
        [c] = m.list()
        assert c.status != "running", "an interrupted foreground run left its VM running"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for c in m.list():
            if c.status == "running":
                m.stop(c.id, timeout=1)
            m.remove(c.id, force=True)


@pytest.fixture(scope="module")
def blank(module_home: Path) -> Iterator[VM]:
    m = vmcontainer.Manager(module_home)
    c = m.run(blank_disk(module_home), memory=64)
    try:
        yield m, c
    finally:
        m.remove(c.id, force=True)


def test_gil_is_released_during_wait_ready(blank: VM) -> None:
    m, c = blank
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    started = time.monotonic()
    try:
        with pytest.raises(vmcontainer.WaitTimeoutError) as e:
            m.wait_ready(c.id, timeout=3)
    finally:
        done.set()
        t.join()
    took = time.monotonic() - started
    assert c.id in str(e.value) and "3.0s" in str(e.value)
    assert isinstance(e.value, TimeoutError)
    assert took >= 3
    assert ticks > 10_000, f"the other thread only counted to {ticks}"


INTERRUPTIBLE = {
    "wait_ready": "m.wait_ready(ID, timeout=600)",
    "stop": "m.stop(ID, timeout=600)",
    "exec": "m.exec(ID, ['true'])",
    "follow": "for line in m.logs(ID, follow=True): pass",
}


@pytest.mark.parametrize("call", sorted(INTERRUPTIBLE))
def test_ctrl_c_interrupts_a_blocking_call(blank: VM, module_home: Path, call: str) -> None:
    m, c = blank
    p = spawn(
        f"""
        import vmcontainer
        m = vmcontainer.Manager()
        ID = {c.id!r}
        print("ready")
        {INTERRUPTIBLE[call]}
        print("returned")
        """,
        module_home,
    )
    try:
        wait_for_ready_line(p)
        time.sleep(1.5)  # well into the blocking call
        assert p.poll() is None, p.stderr.read() if p.stderr else ""
        started = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        took = time.monotonic() - started
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "returned" not in out
    assert p.returncode == -signal.SIGINT, err
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err
    assert took < 5, f"{call} took {took:.2f}s to notice Ctrl-C"
    # Cancelled, not half done: the VM is untouched.
    assert m.get(c.id).status == "running"


def test_close_ends_a_read_waiting_in_another_thread(blank: VM) -> None:
    m, c = blank
    stream = m.logs(c.id, follow=True)
    errors: list = []  # type: ignore[type-arg]
    reader_done = threading.Event()

    def read() -> None:
        try:
            for _ in stream:
                pass
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        reader_done.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    time.sleep(0.5)
    assert not reader_done.is_set(), "the blank VM's log should keep the reader waiting"
    # A second reader is refused rather than deadlocked.
    with pytest.raises(RuntimeError, match="another thread"):
        next(stream)
    started = time.monotonic()
    stream.close()
    assert reader_done.wait(5), "close() did not end the waiting read"
    assert time.monotonic() - started < 1
    assert errors == [] and stream.closed
    assert list(stream) == []


def test_exit_with_a_live_follow_iterator(blank: VM, module_home: Path) -> None:
    _, c = blank
    p = spawn(
        f"""
        import threading, vmcontainer
        m = vmcontainer.Manager()
        kept = m.logs({c.id!r}, follow=True)      # alive, never read
        def read():
            for line in m.logs({c.id!r}, follow=True):
                pass
        threading.Thread(target=read, daemon=True).start()
        print("ready")
        import time; time.sleep(0.5)
        """,
        module_home,
    )
    try:
        wait_for_ready_line(p)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
            pytest.fail("the interpreter hung at exit with a follow iterator alive")
    assert p.returncode == 0, err
    assert err == "", err


def test_stop_falls_back_to_sigterm_after_the_timeout(blank: VM) -> None:
    m, c = blank
    started = time.monotonic()
    stopped = m.stop(c.id, timeout=1.0)
    took = time.monotonic() - started
    assert stopped.status == "stopped"
    assert 1.0 <= took < 8, f"stop took {took:.1f}s"
