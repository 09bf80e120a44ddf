"""The strategy plugin contract and loader (shell: the loader imports plugin code).

A strategy is a class with ``name`` and ``version`` attributes, a nested or module-level
frozen config, and three hooks::

    class MyStrategy(Strategy):
        name = "my-strategy"
        version = "1"

        def on_start(self, ctx: StrategyContext) -> None: ...       # subscribe, set timers
        def on_event(self, view: StrategyView, event) -> Sequence[Command]: ...
        def on_stop(self, view: StrategyView) -> Sequence[Command]: ...

Determinism rules: read time only from ``view.now_ns``, randomness only from ``ctx.random``
(seeded from the session), parameters only from ``ctx.config``; no I/O. Command ids come from
``ctx.new_oid()``, a per-session counter, so a replay emits byte-identical commands.

Plugins are found by entry point (group ``tapeline.strategies``), by ``module:Class`` or by
``path/to/file.py:Class``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import random
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import cattrs
from attrs import define, field, frozen

from engine.commands import Command
from engine.errors import PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "Strategy",
    "StrategyContext",
    "Subscription",
    "TimerSpec",
    "load_strategy_class",
    "make_config",
]

ENTRY_POINT_GROUP = "tapeline.strategies"


def _to_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(Decimal, _to_decimal)
    return conv


_CONFIG_CONVERTER = _make_converter()


@frozen
class Subscription:
    """A market-data channel a strategy needs (``channel`` as in MEXC: depth, deal, ...)."""

    channel: str
    symbol: str | None = None
    params: tuple[tuple[str, str], ...] = ()


@frozen
class TimerSpec:
    """A repeating timer: fires ``engine.timer`` events named ``name`` every ``every_s``."""

    name: str
    every_s: float


@define
class StrategyContext:
    """What a strategy gets at start: its config, seeded randomness, ids, subscriptions."""

    session: str
    config: Any
    symbols: tuple[str, ...]
    random: random.Random
    subscriptions: list[Subscription] = field(factory=list)
    timers: list[TimerSpec] = field(factory=list)
    account_channels: set[str] = field(factory=set)
    _oid_counter: int = 0

    @classmethod
    def create(cls, session: str, config: Any, symbols: Sequence[str]) -> StrategyContext:
        """A context whose randomness is seeded from the session id."""
        seed = int.from_bytes(hashlib.sha256(session.encode()).digest()[:8], "big")
        return cls(
            session=session, config=config, symbols=tuple(symbols), random=random.Random(seed)
        )

    def subscribe(self, channel: str, symbol: str | None = None, **params: str) -> None:
        """Ask for a market-data channel (``depth``, ``deal``, ``ticker``, ``kline``, ...)."""
        sub = Subscription(channel, symbol, tuple(sorted((k, str(v)) for k, v in params.items())))
        if sub not in self.subscriptions:
            self.subscriptions.append(sub)

    def set_timer(self, name: str, every_s: float) -> None:
        """Ask for a repeating timer; its ticks are journaled events."""
        if every_s <= 0:
            raise PluginError(f"timer {name!r}: interval must be positive, got {every_s}")
        self.timers.append(TimerSpec(name, every_s))

    def want_account(self, *channels: str) -> None:
        """Ask for private channels (order, order.deal, position, asset, ...)."""
        self.account_channels.update(channels)

    def new_oid(self) -> str:
        """The next deterministic externalOid of this session (at most 32 characters)."""
        self._oid_counter += 1
        return f"tl{self.session[:12]}{self._oid_counter:08d}"


class Strategy:
    """Base class of strategy plugins; override the hooks you need."""

    name: ClassVar[str] = "strategy"
    version: ClassVar[str] = "0"
    Config: ClassVar[type | None] = None

    def on_start(self, ctx: StrategyContext) -> None:
        """Called once before the first event; subscribe and set timers here."""
        self.ctx = ctx

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """Called for every journaled, folded event; return commands (or nothing)."""
        return ()

    def on_stop(self, view: Any) -> Sequence[Command]:
        """Called once when the session stops; may return final commands."""
        return ()


def make_config(strategy_cls: type, values: Mapping[str, Any]) -> Any:
    """Build the strategy's frozen config from a mapping, with a clear error on bad keys."""
    config_cls = getattr(strategy_cls, "Config", None)
    if config_cls is None:
        if values:
            raise PluginError(
                f"{strategy_cls.__name__} takes no configuration, got {', '.join(sorted(values))}"
            )
        return None
    fields = getattr(config_cls, "__attrs_attrs__", None)
    if fields is not None:
        known = {a.name for a in fields}
        unknown = set(values) - known
        if unknown:
            raise PluginError(
                f"{strategy_cls.__name__}: unknown option(s) "
                f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        try:
            return _CONFIG_CONVERTER.structure(dict(values), config_cls)
        except Exception as exc:  # cattrs aggregates: report them plainly
            detail = "; ".join(str(e) for e in getattr(exc, "exceptions", [exc]))
            raise PluginError(f"{strategy_cls.__name__}: bad configuration: {detail}") from None
    try:
        return config_cls(**values)
    except TypeError as exc:
        raise PluginError(f"{strategy_cls.__name__}: bad configuration: {exc}") from exc


def _load_from_file(path: Path, attr: str) -> Any:
    if not path.exists():
        raise PluginError(f"strategy file {path} does not exist")
    mod_name = f"tapeline_plugin_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise PluginError(f"strategy {path}: import failed: {type(exc).__name__}: {exc}") from exc
    return _attr(module, attr, str(path))


def _attr(module: Any, attr: str, where: str) -> Any:
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginError(f"strategy {where} has no attribute {attr!r}") from None


def load_strategy_class(spec: str) -> type[Strategy]:
    """Resolve ``spec`` (entry-point name, ``module:Class`` or ``file.py:Class``) to a class."""
    if not spec:
        raise PluginError("no strategy given")
    if ":" not in spec:
        eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not eps:
            known = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
            raise PluginError(
                f"unknown strategy {spec!r}; known: {', '.join(known) or 'none'}; "
                "or give module:Class or path/to/file.py:Class"
            )
        try:
            cls = eps[0].load()
        except Exception as exc:
            raise PluginError(
                f"strategy {spec!r}: import failed: {type(exc).__name__}: {exc}"
            ) from exc
    else:
        target, _, attr = spec.rpartition(":")
        if target.endswith(".py") or "/" in target:
            cls = _load_from_file(Path(target), attr)
        else:
            try:
                module = importlib.import_module(target)
            except Exception as exc:
                raise PluginError(
                    f"strategy {spec!r}: import failed: {type(exc).__name__}: {exc}"
                ) from exc
            cls = _attr(module, attr, target)
    if not isinstance(cls, type) or not callable(getattr(cls, "on_event", None)):
        raise PluginError(f"strategy {spec!r} is not a strategy class (needs on_event)")
    return cls
