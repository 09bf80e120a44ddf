"""docs/cli.md is exactly what the command tree generates: no command or option undocumented."""

from __future__ import annotations

from pathlib import Path

from engine.cli_docs import render

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert PAGE.read_text() == render(), (
        "docs/cli.md is out of date: run `python -m engine.cli_docs > docs/cli.md`")


def test_reference_covers_every_command() -> None:
    text = render()
    for name in ("tapeline run", "tapeline demo", "tapeline sim", "tapeline journal verify",
                 "tapeline kill"):
        assert f"## `{name}`" in text
