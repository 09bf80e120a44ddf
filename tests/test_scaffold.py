"""``tapeline new-strategy``: the package it writes is pure, declares its entry point, and its
own test passes out of the box; bad names and existing directories are refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine.scaffold import class_name, new_strategy_command
from tests.test_pure_imports import violations


def _new(*args: str | Path) -> Result:
    return CliRunner().invoke(new_strategy_command, [str(a) for a in args])


def test_writes_a_plugin_package_whose_test_passes(tmp_path: Path) -> None:
    result = _new("demo_x", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    root = tmp_path / "demo_x"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        ".gitignore", "README.md", "pyproject.toml", "src/demo_x/__init__.py",
        "src/demo_x/strategy.py", "tests/test_demo_x.py"]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["tapeline.strategies"] == {
        "demo_x": "demo_x.strategy:DemoX"}
    assert "tapeline" in project["project"]["dependencies"]
    strategy = root / "src/demo_x/strategy.py"
    assert violations(strategy.read_text(), str(strategy)) == []

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_the_generated_class_loads_by_file(tmp_path: Path) -> None:
    from engine.strategy import load_strategy_class, make_config

    assert _new("loadme", "--dir", tmp_path).exit_code == 0
    cls = load_strategy_class(f"{tmp_path}/loadme/src/loadme/strategy.py:Loadme")
    assert cls.name == "loadme"
    assert make_config(cls, {}).symbol == "BTC_USDT"


@pytest.mark.parametrize(("name", "why"), [
    ("1st", "not a valid name"), ("my-strategy", "not a valid name"),
    ("café", "not a valid name"), ("class", "keyword"), ("match", "keyword"),
    ("json", "shadow"), ("engine", "shadow"), ("_hidden", "underscore"),
])
def test_bad_names_are_refused_in_one_line(tmp_path: Path, name: str, why: str) -> None:
    result = _new(name, "--dir", tmp_path)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert why in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = _new("mine", "--dir", tmp_path)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_a_missing_target_directory_is_an_error(tmp_path: Path) -> None:
    result = _new("fine", "--dir", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "does not exist" in result.output


@pytest.mark.parametrize(("name", "cls"), [
    ("demo_x", "DemoX"), ("trend2", "Trend2"), ("a__b_", "AB"), ("MyThing", "MyThing"),
])
def test_class_names(name: str, cls: str) -> None:
    assert class_name(name) == cls
