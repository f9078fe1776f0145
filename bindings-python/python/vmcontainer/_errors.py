"""Exceptions raised by vmcontainer.

Every error derives from :class:`VmContainerError`; each subclass matches one
stable error kind of the Rust core (its ``kind`` attribute), and the message
is the core's, naming the input that failed. Where a built-in exception means
the same thing, the class derives from it too, so ``except ValueError`` or
``except TimeoutError`` also work. The classes live in ``vmcontainer`` (that
is the path a traceback shows).
"""

from __future__ import annotations

# `typing` costs most of an import of this package; annotations are never
# evaluated here (PEP 563), so only type checkers need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar, List


class VmContainerError(Exception):
    """Base class of every vmcontainer error."""

    kind: ClassVar[str] = "error"


class NotFoundError(VmContainerError, LookupError):
    """No container has this ID, ID prefix or name."""

    kind: ClassVar[str] = "not_found"


class AmbiguousError(VmContainerError, LookupError):
    """The reference matches more than one container."""

    kind: ClassVar[str] = "ambiguous"


class NotRunningError(VmContainerError):
    """The operation needs a running container."""

    kind: ClassVar[str] = "not_running"


class ContainerRunningError(VmContainerError):
    """The operation needs a stopped container (stop it, or force)."""

    kind: ClassVar[str] = "running"


class InvalidInputError(VmContainerError, ValueError):
    """A value passed in is invalid, or the image is missing or unknown."""

    kind: ClassVar[str] = "invalid_input"


class HypervisorUnavailableError(VmContainerError):
    """No usable hypervisor, or the requested one is not installed."""

    kind: ClassVar[str] = "hypervisor_unavailable"


class StartFailedError(VmContainerError):
    """The hypervisor refused to start the VM; the message is its own."""

    kind: ClassVar[str] = "start_failed"


class WaitTimeoutError(VmContainerError, TimeoutError):
    """A wait (for SSH, for a VM to stop) ran out of time."""

    kind: ClassVar[str] = "timeout"


class TemplateError(VmContainerError):
    """A template could not be found or read."""

    kind: ClassVar[str] = "template"


class TemplateVariablesError(TemplateError):
    """Required template variables have no value; ``names`` lists them all."""

    kind: ClassVar[str] = "template_variables"
    names: List[str]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.names = []


class LinuxKitError(VmContainerError):
    """LinuxKit is not installed, or building an image with it failed."""

    kind: ClassVar[str] = "linuxkit"


class StateCorruptError(VmContainerError):
    """The state file is corrupt; the message names the file and the fault."""

    kind: ClassVar[str] = "state_corrupt"


class CommunicationError(VmContainerError, ConnectionError):
    """Talking to the guest (SSH) or to QEMU's monitor (QMP) failed."""

    kind: ClassVar[str] = "communication"


class HostOSError(VmContainerError, OSError):
    """A file-system or process operation on the host failed."""

    kind: ClassVar[str] = "io"


class DownloadError(VmContainerError, ConnectionError):
    """Getting an image failed: an HTTP error or status, a bad response, a
    release without the image, an interrupted download (the next attempt
    resumes it), a refused file name from a server, or no source could
    provide the image. Also the base of :class:`ChecksumError`, so
    ``except DownloadError`` covers every failure to obtain a verified image.
    """

    kind: ClassVar[str] = "download"


class ChecksumError(DownloadError):
    """The image cannot be verified: no published checksum, a malformed one,
    or the downloaded bytes do not match it. Nothing was installed and any
    previous image is kept."""

    kind: ClassVar[str] = "checksum"


class OperationCancelledError(VmContainerError):
    """The operation was cancelled before it finished (a Ctrl-C raises
    ``KeyboardInterrupt`` instead; this comes from cancellations the core
    itself reports)."""

    kind: ClassVar[str] = "cancelled"


ALL_ERRORS = (
    VmContainerError,
    NotFoundError,
    AmbiguousError,
    NotRunningError,
    ContainerRunningError,
    InvalidInputError,
    HypervisorUnavailableError,
    StartFailedError,
    WaitTimeoutError,
    TemplateError,
    TemplateVariablesError,
    LinuxKitError,
    StateCorruptError,
    CommunicationError,
    HostOSError,
    DownloadError,
    ChecksumError,
    OperationCancelledError,
)

for _cls in ALL_ERRORS:
    _cls.__module__ = "vmcontainer"
