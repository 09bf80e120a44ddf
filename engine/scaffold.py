"""``tapeline new-strategy NAME``: create a strategy plugin package to start from (shell).

The package it writes::

    NAME/
      pyproject.toml          entry point NAME in group tapeline.strategies; depends on tapeline
      README.md               test, run, replay and audit it
      .gitignore
      src/NAME/__init__.py
      src/NAME/strategy.py    the strategy and its frozen config
      tests/test_NAME.py      a session against the bundled simulator, then a verified replay

The generated test passes as written, installed or not (pytest's ``pythonpath`` setting puts
``src`` on the path): ``cd NAME && python -m pytest``.
"""

from __future__ import annotations

import keyword
import sys
from pathlib import Path
from string import Template

import click

from engine.errors import ConfigError

__all__ = ["check_name", "class_name", "new_strategy_command", "scaffold"]

_TAKEN = frozenset({"engine", "adapters", "strategies", "tests", "tapeline"})

_PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$name"
version = "0.1.0"
description = "A tapeline strategy plugin"
requires-python = ">=3.11"
dependencies = ["tapeline"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-trio>=0.8"]

[project.entry-points."tapeline.strategies"]
$name = "$name.strategy:$cls"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
trio_mode = true
testpaths = ["tests"]
pythonpath = ["src"]
filterwarnings = ["error"]

[tool.ruff]
line-length = 100
src = ["src"]
''')

_INIT = Template('''\
"""$name: a tapeline strategy plugin."""

from $name.strategy import $cls, ${cls}Config

__all__ = ["$cls", "${cls}Config"]
''')

_STRATEGY = Template('''\
"""$cls: a tapeline strategy plugin (pure).

A starting point: every ``every_s`` seconds it buys ``vol`` contracts at market when flat,
and sells them once it has held them ``hold_s`` seconds. Replace the rule in ``on_event``
with your own idea.

The determinism rules (``tapeline replay`` proves them): read time only from ``view.now_ns``,
randomness only from ``self.ctx.random``, parameters only from the config; no I/O, and no
import of time, datetime, random, trio, httpx or sqlite3 here. Order ids come from
``self.ctx.new_oid()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from attrs import field, frozen, validators
from engine.commands import Command, PlaceOrder
from engine.events import TimerFired
from engine.model import OpenType, OrderType, PositionType, Side
from engine.strategy import Strategy, StrategyContext
from strategies.tracking import settling

__all__ = ["$cls", "${cls}Config"]


@frozen
class ${cls}Config:
    """Parameters of :class:`$cls` (``tapeline run --config`` fills them from [strategy])."""

    symbol: str = "BTC_USDT"
    vol: Decimal = field(default=Decimal(1), validator=validators.gt(Decimal(0)))
    leverage: int = field(default=10, validator=validators.ge(1))
    every_s: float = field(default=5.0, validator=validators.gt(0))
    hold_s: float = field(default=30.0, validator=validators.ge(0))


class $cls(Strategy):
    """Buy, hold for a while, sell; repeat."""

    name = "$name"
    version = "0.1.0"
    Config = ${cls}Config

    def on_start(self, ctx: StrategyContext) -> None:
        """Ask for what the strategy needs: market data, the account, a timer."""
        self.ctx = ctx
        self.cfg: ${cls}Config = ctx.config or ${cls}Config()
        self.last_oid: str | None = None  # the last order placed
        self.opened_ns: int | None = None  # when the position was opened (event time)
        ctx.subscribe("ticker", self.cfg.symbol)
        ctx.want_account("order", "order.deal", "position", "asset")
        ctx.set_timer("step", self.cfg.every_s)

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """Called for every event; this strategy acts on its timer only."""
        if not (isinstance(event, TimerFired) and event.name == "step"):
            return ()
        cfg = self.cfg
        if view.contract(cfg.symbol) is None:
            return ()  # the exchange has not described the contract yet
        if self.last_oid is not None and settling(view, self.last_oid):
            return ()  # the last order is in flight or not yet reflected in the position
        pos = view.position(cfg.symbol, PositionType.LONG)
        held = pos.hold_vol if pos is not None else Decimal(0)
        if not held:
            self.opened_ns = view.now_ns
            return [self._market(Side.OPEN_LONG, cfg.vol)]
        hold_ns = int(cfg.hold_s * 1_000_000_000)
        if self.opened_ns is None or view.now_ns - self.opened_ns >= hold_ns:
            return [self._market(Side.CLOSE_LONG, held)]
        return ()

    def on_stop(self, view: Any) -> Sequence[Command]:
        """Called once at the end; the engine cancels open orders itself (by default)."""
        return ()

    def _market(self, side: Side, vol: Decimal) -> PlaceOrder:
        self.last_oid = self.ctx.new_oid()
        return PlaceOrder(
            symbol=self.cfg.symbol, side=side, order_type=OrderType.MARKET, vol=vol,
            external_oid=self.last_oid, open_type=OpenType.ISOLATED,
            leverage=self.cfg.leverage if side.opens else None,
        )
''')

_TEST = Template('''\
"""$cls end to end: a session against the bundled simulator in virtual time, then a replay
that must make every decision again, byte for byte."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio
from engine.strategy import make_config
from engine.testing import run_in_simulator, verify_replay

from $name.strategy import $cls

SPEC = "$name.strategy:$cls"  # installed, the entry point name "$name" works too


async def test_trades_in_the_simulator_and_replays_identically(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    journal = tmp_path / "session.sqlite"
    # two simulated minutes take a second or two: autojump_clock skips the waiting
    summary = await run_in_simulator(SPEC, journal=journal, duration_s=120,
                                     strategy_config={"hold_s": 20})
    assert summary.killed is None
    assert summary.filled_orders >= 2  # at least one buy and one sell

    result = verify_replay(journal, summary.session)
    assert result.identical, "\\n".join(result.lines())


def test_config_from_a_mapping() -> None:
    cfg = make_config($cls, {"vol": "2", "hold_s": 10})
    assert cfg.vol == Decimal(2) and cfg.hold_s == 10
''')

_README = Template('''\
# $name

A tapeline strategy plugin: `$cls` in `src/$name/strategy.py`.

## Test

```bash
python -m pytest
```

`tests/test_$name.py` runs the strategy for two simulated minutes against tapeline's bundled
MEXC simulator (in process, virtual time) and replays the recorded journal to prove the
strategy is deterministic.

## Run, replay, audit

Install it so tapeline finds it by name (entry point `$name` in group `tapeline.strategies`):

```bash
pip install -e .
tapeline run --strategy $name --duration 60s --journal $name.sqlite
tapeline replay $name.sqlite
tapeline audit anomalies $name.sqlite
```

Without installing, name the class by file: `--strategy src/$name/strategy.py:$cls`.

## Rules

A strategy reads time only from `view.now_ns`, randomness only from `self.ctx.random`, and
does no I/O; commands it returns pass tapeline's risk gate before anything is sent.
''')

_GITIGNORE = "__pycache__/\n*.egg-info/\n*.sqlite\n*.sqlite-*\n"


def check_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` can be a new plugin's package name."""
    if not name.isidentifier() or not name.isascii():
        raise ConfigError(f"{name!r} is not a valid name: use letters, digits and "
                          "underscores, not starting with a digit (e.g. my_strategy)")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ConfigError(f"{name!r} is a Python keyword; choose another name")
    if name.startswith("_"):
        raise ConfigError(f"{name!r}: a package name should not start with an underscore")
    if name in _TAKEN or name in sys.stdlib_module_names:
        raise ConfigError(f"{name!r} would shadow the {name!r} module; choose another name")


def class_name(name: str) -> str:
    """``my_first`` → ``MyFirst``: the strategy class name for a package name."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def scaffold(name: str, directory: Path) -> Path:
    """Write the plugin package ``directory/name`` and return its path.

    Raises :class:`ConfigError` for a bad name, a missing ``directory`` or an existing
    ``directory/name`` (nothing is ever overwritten).
    """
    check_name(name)
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"directory {directory} does not exist")
    root = directory / name
    if root.exists():
        raise ConfigError(f"{root} already exists; not overwriting it")
    cls = class_name(name)
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{name}/__init__.py": _INIT,
        f"src/{name}/strategy.py": _STRATEGY,
        f"tests/test_{name}.py": _TEST,
    }
    try:
        root.mkdir()
    except OSError as exc:
        raise ConfigError(f"cannot create {root}: {exc.strerror or exc}") from None
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.substitute(name=name, cls=cls), encoding="utf-8")
    (root / ".gitignore").write_text(_GITIGNORE, encoding="utf-8")
    return root


@click.command("new-strategy")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True,
              help="Where to create the package directory NAME.")
def new_strategy_command(name: str, directory: Path) -> None:
    """Create a strategy plugin package NAME: strategy, config, test, README."""
    try:
        root = scaffold(name, directory)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    cls = class_name(name)
    click.echo(f"created {root}/ with strategy {name}.strategy:{cls}")
    click.echo(f"next: cd {root} && python -m pytest")
    click.echo(f"      tapeline run --strategy {root}/src/{name}/strategy.py:{cls} --duration 60s")


if __name__ == "__main__":  # pragma: no cover
    new_strategy_command()
