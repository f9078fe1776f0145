"""The process API for asyncio: ``await`` and ``async for`` over
:meth:`vmcontainer.Manager.spawn`.

Example::

    import asyncio
    import vmcontainer
    from vmcontainer import aio

    async def main() -> None:
        m = vmcontainer.Manager()
        async with await aio.spawn(m, "ID", ["sh", "-c", "echo hi; sleep 1; echo bye"]) as p:
            async for chunk in p.stdout:
                print(chunk)
            print(await p.wait())

    asyncio.run(main())

Each blocking step (starting the process, one chunk of output, one write,
the wait) runs on a worker thread (``asyncio.to_thread``); the native calls
release the GIL, so the event loop and its other tasks run meanwhile. The
process itself is the same :class:`vmcontainer.Process`, reachable as
``.process``.

Cancelling a task while it awaits one of these steps kills the process
(SIGKILL to its process group, as leaving a ``with`` block or dropping a
``Process`` does): the worker thread then returns at once, so no thread is
left blocked on a process nobody waits for (a blocked thread would also
hold up the interpreter's exit).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from ._native import Manager, Process, ProcessInput, ProcessOutput

__all__ = ["AsyncProcess", "AsyncProcessInput", "AsyncProcessOutput", "spawn"]

T = TypeVar("T")


def _kill_quietly(process: Process) -> None:
    try:
        process.kill("KILL")
    except Exception:  # already ended, or the VM is gone: nothing to stop
        pass


async def _step(process: Process, fn: Callable[..., T], *args: Any) -> T:
    """Runs one blocking call of `process` on a worker thread; a cancelled
    await kills the process so that the thread returns."""
    try:
        return await asyncio.to_thread(fn, *args)
    except asyncio.CancelledError:
        # Not awaited: the kill opens a connection to the guest, and the
        # task is being cancelled now.
        asyncio.get_running_loop().run_in_executor(None, _kill_quietly, process)
        raise


def _next_or_none(out: ProcessOutput) -> Optional[bytes]:
    # StopIteration cannot cross a Future; None marks the end instead.
    return next(out, None)


class AsyncProcessOutput:
    """A process's stdout or stderr: ``async for`` yields ``bytes`` chunks as
    the guest produces them."""

    def __init__(self, process: Process, out: ProcessOutput) -> None:
        self._process = process
        self._out = out

    def __aiter__(self) -> "AsyncProcessOutput":
        return self

    async def __anext__(self) -> bytes:
        chunk = await _step(self._process, _next_or_none, self._out)
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (at least one unless at the end), or with ``n < 0``
        everything to the end."""
        return await _step(self._process, self._out.read, n)


class AsyncProcessInput:
    """A process's standard input."""

    def __init__(self, process: Process, stdin: ProcessInput) -> None:
        self._process = process
        self._stdin = stdin

    async def write(self, data: bytes) -> int:
        """Writes all of `data` (waiting while the guest is slower)."""
        return await _step(self._process, self._stdin.write, data)

    async def close(self) -> None:
        """Closes stdin: the command sees end of input."""
        await _step(self._process, self._stdin.close)

    @property
    def closed(self) -> bool:
        return self._stdin.closed


class AsyncProcess:
    """A command running in a container, for asyncio (see :func:`spawn`)."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.stdin = AsyncProcessInput(process, process.stdin)
        self.stdout = AsyncProcessOutput(process, process.stdout)
        self.stderr = AsyncProcessOutput(process, process.stderr)

    @property
    def pid(self) -> int:
        """Its PID in the guest."""
        return self.process.pid

    @property
    def returncode(self) -> Optional[int]:
        """Its exit code once it has ended (minus the signal if one ended
        it), else None."""
        return self.process.returncode

    async def wait(self) -> int:
        """Waits for it to end and returns its exit code (minus the signal
        if one ended it); raises WaitTimeoutError when its timeout killed it."""
        return await _step(self.process, self.process.wait)

    async def kill(self, sig: Union[int, str, None] = None) -> None:
        """Sends `sig` (default SIGTERM) to its process group."""
        await asyncio.to_thread(self.process.kill, sig)

    async def resize(self, cols: int, rows: int) -> None:
        """Resizes its terminal (PTY processes)."""
        await asyncio.to_thread(self.process.resize, cols, rows)

    async def __aenter__(self) -> "AsyncProcess":
        return self

    async def __aexit__(self, t: object, v: object, tb: object) -> bool:
        # As `with Process`: a process still running is killed and reaped.
        await asyncio.to_thread(self.process.__exit__, t, v, tb)
        return False

    def __repr__(self) -> str:
        return f"<AsyncProcess {self.process!r}>"


async def spawn(
    manager: Manager,
    id: str,
    cmd: Union[List[str], Tuple[str, ...], Sequence[str]],
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    user: Optional[str] = None,
    tty: bool = False,
    *,
    timeout: Optional[float] = None,
) -> AsyncProcess:
    """:meth:`vmcontainer.Manager.spawn` for asyncio: the same arguments, an
    :class:`AsyncProcess`. A spawn whose await is cancelled leaves nothing
    running (the process it started is dropped, which kills it)."""
    p = await asyncio.to_thread(
        manager.spawn, id, list(cmd), env, cwd, user, tty, timeout=timeout
    )
    return AsyncProcess(p)
