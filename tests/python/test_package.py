"""The installed package: where it comes from, what it exports, its typing."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import vmcontainer
from vmcontainer import _errors

HERE = Path(__file__).resolve().parent


def test_imported_from_the_installed_wheel_not_the_source_tree() -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    pkg = Path(vmcontainer.__file__).resolve().parent
    assert pkg.parent == site, f"vmcontainer imported from {pkg}, expected {site}"
    native = vmcontainer._native.__file__
    assert native is not None and ".abi3." in native, native
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_native.pyi").is_file()


def test_exports() -> None:
    for name in vmcontainer.__all__:
        assert hasattr(vmcontainer, name), name
    for name in [
        "Manager",
        "Container",
        "ExecResult",
        "detect_hypervisor",
        "get_hypervisor",
        "detect_image_format",
        "generate_id",
        "list_templates",
        "get_template",
        "apply_template",
        "apply_variables",
        "extract_variables",
        "VmContainerError",
    ]:
        assert name in vmcontainer.__all__, name
    # One version for every artefact: the workspace's (scripts/version.sh).
    workspace = subprocess.run(
        ["bash", str(HERE.parents[1] / "scripts" / "version.sh")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert vmcontainer.__version__ == workspace


def test_exceptions_share_a_base_and_live_in_vmcontainer() -> None:
    kinds = set()
    for cls in _errors.ALL_ERRORS:
        assert issubclass(cls, vmcontainer.VmContainerError)
        assert cls.__module__ == "vmcontainer"
        assert getattr(vmcontainer, cls.__name__) is cls
        assert cls.kind not in kinds, f"two classes for kind {cls.kind}"
        kinds.add(cls.kind)
    # The core's stable kind names (core/src/error.rs ErrorKind::as_str).
    assert kinds >= {
        "not_found",
        "ambiguous",
        "not_running",
        "running",
        "invalid_input",
        "hypervisor_unavailable",
        "start_failed",
        "timeout",
        "template_variables",
        "template",
        "linuxkit",
        "state_corrupt",
        "communication",
        "io",
        "download",
        "checksum",
    }
    # Built-in meanings carry over, without shadowing the built-ins.
    assert issubclass(vmcontainer.InvalidInputError, ValueError)
    assert issubclass(vmcontainer.NotFoundError, LookupError)
    assert issubclass(vmcontainer.WaitTimeoutError, TimeoutError)
    assert issubclass(vmcontainer.HostOSError, OSError)
    assert issubclass(vmcontainer.DownloadError, ConnectionError)
    assert issubclass(vmcontainer.ChecksumError, vmcontainer.DownloadError)
    assert not issubclass(vmcontainer.DownloadError, vmcontainer.CommunicationError)
    assert vmcontainer.WaitTimeoutError is not TimeoutError


def test_traceback_names_an_importable_class(tmp_path: Path) -> None:
    code = (
        "import vmcontainer\n"
        f"vmcontainer.Manager({str(tmp_path)!r}).get('feedface')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert last == "vmcontainer.NotFoundError: container not found: feedface", last


def test_stubs_match_the_runtime(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", os.devnull, "vmcontainer"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # nothing here shadows the installed package
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    examples = sorted((HERE / "examples").glob("*.py"))
    assert len(examples) >= 6, examples
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull, *map(str, examples)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"Success: no issues found in {len(examples)} source files" in p.stdout, p.stdout


def test_mypy_catches_misuse(tmp_path: Path) -> None:
    """The stubs are precise enough to catch real mistakes."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import vmcontainer\n"
        "m = vmcontainer.Manager()\n"
        "m.exec('x', 'ls -l')\n"  # a string, not an argv list
        "n: int = m.get('x').status\n"
        "s: str = m.logs('x', follow=True)\n"
        "m.run('a.iso', ports={8080.5: 80})\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull, str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "Found 4 errors" in p.stdout, p.stdout


def test_examples_without_a_vm_run(tmp_path: Path) -> None:
    env = {**os.environ, "VMCONTAINER_HOME": str(tmp_path)}
    out = {}
    for name in ["errors", "listing", "templates"]:
        p = subprocess.run(
            [sys.executable, str(HERE / "examples" / f"{name}.py")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert p.returncode == 0, p.stderr
        out[name] = p.stdout
    assert out["errors"].splitlines() == [
        "not_found: container not found: no-such-container",
        f'invalid memory "0": memory must be at least 1 MB',
        "['HOSTNAME', 'SSH_KEY']",
    ]
    assert out["listing"] == ""
    assert "core-dev" in out["templates"] and "['SSH_KEY']" in out["templates"]


def test_examples_are_the_readme_examples() -> None:
    readme = (HERE.parents[1] / "bindings-python" / "README.md").read_text()
    for ex in sorted((HERE / "examples").glob("*.py")):
        body = ex.read_text().strip()
        assert body in readme, f"{ex.name} is not in bindings-python/README.md verbatim"
