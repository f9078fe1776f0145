"""Templates: built-ins, user and workspace files, substitution."""

from __future__ import annotations

from pathlib import Path

import pytest

import vmcontainer


def test_builtins_are_listed_first(home: Path) -> None:
    ts = vmcontainer.list_templates()
    assert [t.name for t in ts[:2]] == ["core-dev", "server-php"]
    for t in ts[:2]:
        assert isinstance(t, vmcontainer.Template)
        assert t.builtin and t.path is None and t.description
    assert repr(ts[0]).startswith("Template(name='core-dev', description=")


def test_user_and_workspace_templates(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "linuxkit").mkdir()
    (home / "linuxkit" / "mine.yml").write_text("# My VM\nkernel: ${KERNEL:-5.15}\n")
    (home / "linuxkit" / "plain.yaml").write_text("kernel: x\n")
    (home / "linuxkit" / "core-dev.yml").write_text("# shadow attempt\n")
    work = tmp_path / "project"
    (work / ".core" / "linuxkit").mkdir(parents=True)
    (work / ".core" / "linuxkit" / "mine.yml").write_text("# Workspace wins\nx: ${NEED}\n")
    monkeypatch.chdir(work)
    by_name = {t.name: t for t in vmcontainer.list_templates()}
    assert by_name["mine"].description == "Workspace wins"
    assert by_name["mine"].path == work / ".core" / "linuxkit" / "mine.yml"
    assert not by_name["mine"].builtin
    assert by_name["plain"].description == "User-defined template"
    assert by_name["core-dev"].builtin  # a user file cannot replace a built-in
    assert vmcontainer.get_template("mine") == "# Workspace wins\nx: ${NEED}\n"
    assert vmcontainer.apply_template("mine", {"NEED": "v"}) == "# Workspace wins\nx: v\n"
    monkeypatch.chdir(tmp_path)
    assert vmcontainer.apply_template("mine", {}) == "# My VM\nkernel: 5.15\n"


def test_builtin_variables() -> None:
    required, optional = vmcontainer.extract_variables(vmcontainer.get_template("core-dev"))
    assert required == ["SSH_KEY"]
    assert optional == {"MEMORY": "2048", "CPUS": "2", "HOSTNAME": "core-dev", "DATA_SIZE": "10G"}
    required, optional = vmcontainer.extract_variables(vmcontainer.get_template("server-php"))
    assert required == ["SSH_KEY"]
    assert optional["APP_NAME"] == "app" and optional["PHP_MEMORY"] == "128M"
    out = vmcontainer.apply_template("core-dev", {"SSH_KEY": "ssh-ed25519 AAAA me@h", "MEMORY": "4096"})
    assert "ssh-ed25519 AAAA me@h" in out and "4096" in out and "${" not in out


def test_apply_variables_one_pass_and_all_missing_reported() -> None:
    out = vmcontainer.apply_variables("a=${A} b=${B:-dflt} e=${E:-}", {"A": "${B}"})
    assert out == "a=${B} b=dflt e="
    with pytest.raises(vmcontainer.TemplateVariablesError) as e:
        vmcontainer.apply_variables("${Z} ${A} ${Z} ${OK:-1}", {})
    assert e.value.names == ["A", "Z"]
    assert "missing required variables" in str(e.value) and "A, Z" in str(e.value)
    assert isinstance(e.value, vmcontainer.TemplateError)


def test_any_mapping_is_accepted() -> None:
    class Env(dict):  # type: ignore[type-arg]
        pass

    assert vmcontainer.apply_variables("${X}", Env(X="1")) == "1"
    import types

    assert vmcontainer.apply_variables("${X}", types.MappingProxyType({"X": "2"})) == "2"


def test_extract_variables_shapes() -> None:
    req, opt = vmcontainer.extract_variables("${B} ${A} ${A} ${C:-x} ${B:-y} $NOT {NOT}")
    assert (req, opt) == (["A", "B"], {"C": "x"})
    assert isinstance(req, list) and isinstance(opt, dict)


def test_unknown_template_lists_the_available(home: Path) -> None:
    with pytest.raises(vmcontainer.TemplateError) as e:
        vmcontainer.get_template("nope")
    assert "nope" in str(e.value) and "core-dev" in str(e.value)
    assert not isinstance(e.value, vmcontainer.TemplateVariablesError)
