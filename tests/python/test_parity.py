"""Every Python name in api/operations.toml exists in the installed package,
and every error kind of the core has its exception class."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

import vmcontainer
import vmcontainer._errors
from vmcontainer import _native

REPO = Path(__file__).resolve().parents[2]


def operations() -> Dict[str, Dict[str, str]]:
    """api/operations.toml, read with the subset of TOML it keeps to (the
    Rust tests reject anything else): `[op.NAME]` tables of `key = "value"`."""
    ops: Dict[str, Dict[str, str]] = {}
    cur = None
    for raw in (REPO / "api" / "operations.toml").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[op.") and line.endswith("]"):
            cur = ops.setdefault(line[4:-1], {})
        elif line.startswith("["):
            cur = None
        elif cur is not None:
            key, _, value = line.partition(" = ")
            cur[key] = value.strip('"')
    return ops


def resolve(path: str) -> object:
    obj: object = vmcontainer
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_listed_python_name_exists() -> None:
    ops = operations()
    assert len(ops) > 40
    checked = 0
    for op, fields in ops.items():
        value = fields["python"]
        if value.startswith("none:"):
            continue
        for name in (n.strip() for n in value.split(",")):
            try:
                resolve(name)
            except AttributeError:
                pytest.fail(f"[op.{op}]: vmcontainer has no {name}")
            checked += 1
    assert checked > 40


def test_every_core_error_kind_has_its_class() -> None:
    kinds = _native.error_kinds()
    assert len(kinds) >= 17
    classes = {c.kind: c for c in vmcontainer._errors.ALL_ERRORS if c is not vmcontainer.VmContainerError}
    for kind, name in kinds:
        cls = getattr(vmcontainer, name)
        assert cls.kind == kind, (kind, name)
        assert issubclass(cls, vmcontainer.VmContainerError)
    assert set(classes) == {k for k, _ in kinds}, "a class without a core kind, or the reverse"


def test_run_options_share_the_cores_rules(manager: vmcontainer.Manager, tmp_path: Path) -> None:
    img = tmp_path / "x.iso"
    img.write_bytes(b"")
    for kwargs, needle in [
        ({"ports": {70000: 80}}, "70000:80"),
        ({"ports": {8080: 0}}, "8080:0"),
        ({"memory": -1}, "memory"),
        ({"cpus": 2**40}, "cpus"),
        ({"bind_address": "nowhere"}, "nowhere"),
        ({"on_output": print}, "detach=False"),
    ]:
        with pytest.raises(vmcontainer.InvalidInputError, match=needle):
            manager.run(img, **kwargs)  # type: ignore[arg-type]


def test_run_snapshot_streams_only_in_the_foreground(manager: vmcontainer.Manager) -> None:
    with pytest.raises(vmcontainer.InvalidInputError, match="detach=False"):
        manager.run_snapshot("nosuch", on_output=print)
    with pytest.raises(vmcontainer.NotFoundError, match="nosuch"):
        manager.run_snapshot("nosuch", detach=False, on_output=print)


def test_run_template_reports_missing_variables(manager: vmcontainer.Manager) -> None:
    with pytest.raises(vmcontainer.TemplateVariablesError) as e:
        manager.run_template("core-dev")
    assert e.value.names == ["SSH_KEY"]
    with pytest.raises(vmcontainer.TemplateError, match="nope"):
        manager.run_template("nope")


def test_template_functions_take_home_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "ws" / ".core" / "linuxkit").mkdir(parents=True)
    (tmp_path / "ws" / ".core" / "linuxkit" / "mine.yml").write_text("# Mine\nx: ${A:-1}\n")
    (tmp_path / "h" / "linuxkit").mkdir(parents=True)
    (tmp_path / "h" / "linuxkit" / "theirs.yml").write_text("y: 2\n")
    names = [t.name for t in vmcontainer.list_templates(home=tmp_path / "h", cwd=tmp_path / "ws")]
    assert names == ["core-dev", "server-php", "mine", "theirs"]
    assert vmcontainer.apply_template("mine", {}, cwd=tmp_path / "ws") == "# Mine\nx: 1\n"
    assert vmcontainer.get_template("theirs", home=tmp_path / "h") == "y: 2\n"
    assert vmcontainer.devenv.image_name().startswith("core-devops-")
