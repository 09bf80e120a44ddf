"""The TOML config loader and `tapeline run` argument handling."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.cli_run import build_options
from engine.config import SCHEMA, load_config, parse_duration
from engine.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_option_is_documented() -> None:
    text = DOCS.read_text()
    for table, keys in SCHEMA.items():
        assert f"## `[{table}]`" in text, table
        for key in keys:
            assert re.search(rf"\| `{key}` \|", text), f"[{table}] {key} is not documented"


def test_the_documented_example_loads(tmp_path: Path) -> None:
    example = DOCS.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "c.toml"
    path.write_text(example)
    cfg = load_config(path)
    assert cfg.run["duration"] == 3600.0
    assert cfg.risk.max_order_notional == Decimal(100000)
    assert cfg.risk.restricted_symbols == frozenset({"XYZ_USDT"})
    opts = build_options(cfg, symbols=("ETH_USDT",), mode=None, strategy=None, journal=None,
                         duration=None, status_every=None, cancel_on_stop=None)
    assert opts.symbols == ("ETH_USDT",) and opts.strategy == "market-maker"


@pytest.mark.parametrize(("text", "message"), [
    ("[nope]\nx=1\n", "unknown table"),
    ("[run]\nmode = 3\n", "[run] mode must be str"),
    ("[run]\nwat = 1\n", "[run] unknown option 'wat'"),
    ("[run]\nduration = \"soon\"\n", "not a duration"),
    ("[risk]\nmax_orders = true\n", "[risk] max_orders must not be a boolean"),
    ("[risk]\nmax_order_notional = \"lots\"\n", "not a number"),
    ("[risk]\nmax_orders = 0\n", "must be positive"),
    ("[sim]\nbalance = -5\n", "must be a positive number"),
    ("this is = = not toml", "not valid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize(("value", "seconds"), [(90, 90.0), ("90s", 90.0), ("5m", 300.0),
                                                ("1.5h", 5400.0), ("250ms", 0.25)])
def test_durations(value: str | int, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("args", [
    ["run", "--mode", "moon"],
    ["run", "--duration", "soon"],
    ["run", "--symbols", "btc usdt"],
    ["run", "--strategy", "no-such-strategy", "--duration", "1s"],
    ["run", "--config", "/nonexistent/tapeline.toml"],
    ["run", "--mode", "shadow", "--strategy", "market-maker", "--config", "bad_mexc.toml"],
    ["run", "--mode", "live", "--strategy", "market-maker", "--duration", "1s"],
    ["run", "--mode", "sim"],
])
def test_bad_run_arguments_give_one_line_and_nonzero_exit(tmp_path: Path, args: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad_mexc.toml").write_text('[mexc]\ngeneration = "ancient"\n')
    monkeypatch.delenv("MEXC_API_KEY", raising=False)
    monkeypatch.delenv("MEXC_API_SECRET", raising=False)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
