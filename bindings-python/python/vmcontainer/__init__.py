"""vmcontainer: run LinuxKit virtual-machine images as lightweight containers.

Example::

    import vmcontainer

    m = vmcontainer.Manager()
    c = m.run("guest.iso", ports={8080: 80}, ssh_key="id_ed25519")  # detached
    # or in the foreground, streaming the serial console:
    # m.run("guest.iso", detach=False, on_output=sys.stdout.buffer.write)
    m.wait_ready(c.id, timeout=240)
    print(m.exec(c.id, ["uname", "-a"]).stdout.decode())
    m.stop(c.id)

Everything is implemented by the Rust core (``vmcontainer._native``); this
package re-exports it and defines the exception classes.
"""

from ._errors import (
    AmbiguousError,
    ChecksumError,
    CommunicationError,
    ContainerRunningError,
    DownloadError,
    HostOSError,
    HypervisorUnavailableError,
    InvalidInputError,
    LinuxKitError,
    NotFoundError,
    NotRunningError,
    OperationCancelledError,
    StartFailedError,
    StateCorruptError,
    TemplateError,
    TemplateVariablesError,
    VmContainerError,
    WaitTimeoutError,
)
from . import _native
from ._native import (
    Container,
    ExecResult,
    Hypervisor,
    LogStream,
    Manager,
    Process,
    ProcessInput,
    ProcessOutput,
    Snapshot,
    Template,
    __version__,
    apply_template,
    apply_variables,
    detect_hypervisor,
    detect_image_format,
    extract_variables,
    generate_id,
    get_hypervisor,
    get_template,
    list_templates,
)

__all__ = [
    "AmbiguousError",
    "ChecksumError",
    "CommunicationError",
    "Container",
    "ContainerRunningError",
    "DownloadError",
    "ExecResult",
    "HostOSError",
    "Hypervisor",
    "HypervisorUnavailableError",
    "InvalidInputError",
    "LinuxKitError",
    "LogStream",
    "Manager",
    "NotFoundError",
    "NotRunningError",
    "OperationCancelledError",
    "Process",
    "ProcessInput",
    "ProcessOutput",
    "Snapshot",
    "StartFailedError",
    "StateCorruptError",
    "Template",
    "TemplateError",
    "TemplateVariablesError",
    "VmContainerError",
    "WaitTimeoutError",
    "__version__",
    "apply_template",
    "apply_variables",
    "detect_hypervisor",
    "detect_image_format",
    "extract_variables",
    "generate_id",
    "get_hypervisor",
    "get_template",
    "list_templates",
]

# asyncio flavour of spawn (pure Python over the native Process).
from . import aio

__all__ += ["aio"]

# A module built without the `registry` cargo feature has no push/pull;
# the packaged wheel always has them.
if hasattr(_native, "PushReport"):
    from ._native import PulledImage, PushReport

    __all__ += ["PulledImage", "PushReport"]

# A module built without the `devenv` cargo feature has no dev environment;
# the packaged wheel always has it.
if hasattr(_native, "DevOps"):
    from . import devenv

    __all__ += ["devenv"]
