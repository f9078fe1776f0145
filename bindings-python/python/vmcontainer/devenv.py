"""The portable dev environment: the ``core-devops`` image and the ``core-dev``
VM with the current project at ``/app``.

Example::

    from vmcontainer.devenv import DevOps, detect_test_command

    dev = DevOps()
    if not dev.is_installed():
        dev.install(progress=lambda done, total: print(done, total))
    dev.boot(project=".")
    print(dev.status())
    raise SystemExit(dev.test())
"""

from ._native import (
    DevOps,
    DevStatus,
    InstallReport,
    TestConfig,
    UpdateInfo,
    detect_serve_command,
    detect_test_command,
    image_name,
    load_test_config,
)

__all__ = [
    "DevOps",
    "DevStatus",
    "InstallReport",
    "TestConfig",
    "UpdateInfo",
    "detect_serve_command",
    "detect_test_command",
    "image_name",
    "load_test_config",
]
