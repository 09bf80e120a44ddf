"""What a replay needs to know before it starts (shell: loads strategy plugins).

:func:`plan_session` reads a session's row and meta — strategy spec and config, symbols,
strategy, parser and engine versions, config hash — loads and configures the strategy and
notes what differs from the recording. :func:`parse_until` reads ``--until``/``--at``;
:func:`require_chain` refuses a journal whose hash chain does not verify. The errors of
replay live here::

    EngineError
    └── ReplayError          a session cannot be replayed
        └── ChainBrokenError the hash chain does not verify; nothing was replayed
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import orjson
from attrs import frozen

from adapters.mexc.codecs import PARSER_VERSION
from engine import __version__
from engine.errors import EngineError, PluginError
from engine.events import canonical_json
from engine.journal import Journal, SessionInfo
from engine.risk import RiskLimits
from engine.strategy import load_strategy_class, make_config

__all__ = [
    "ChainBrokenError",
    "ReplayError",
    "SessionPlan",
    "Until",
    "config_hash",
    "parse_until",
    "plan_session",
    "require_chain",
]

_NS_THRESHOLD: Final = 10**15
"""An integer ``--until`` at or above this is a time in ns since the epoch, below it a seq."""


class ReplayError(EngineError):
    """A session cannot be replayed (bad input, strategy cannot start, replay crashed)."""


class ChainBrokenError(ReplayError):
    """The journal's hash chain does not verify; nothing was replayed."""

    def __init__(self, message: str, first_bad_seq: int | None) -> None:
        super().__init__(message)
        self.first_bad_seq = first_bad_seq


# --------------------------------------------------------------------------- until


@frozen
class Until:
    """Where a replay stops: after input ``seq``, or after the last input at ``ts_ns``."""

    seq: int | None = None
    ts_ns: int | None = None


def parse_until(text: str) -> Until:
    """``--until SEQ|TIME``: an integer below 10**15 is a seq, a larger one ns since the
    epoch; anything else an ISO 8601 time (UTC unless it names an offset)."""
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        n = int(raw)
        if n < 0:
            raise ReplayError(f"--until: {text!r} is negative")
        return Until(ts_ns=n) if n >= _NS_THRESHOLD else Until(seq=n)
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"--until: {text!r} is neither a seq, ns since the epoch, nor an ISO time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return Until(ts_ns=(delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000)


# --------------------------------------------------------------------------- the session plan


def risk_to_meta(risk: RiskLimits) -> dict[str, Any]:
    """Risk limits as JSON-ready data for the session meta (read back by :func:`risk_from_meta`)."""
    out: dict[str, Any] = {}
    for a in RiskLimits.__attrs_attrs__:
        v = getattr(risk, a.name)
        out[a.name] = sorted(v) if isinstance(v, frozenset | set) else str(v)
    return out


def risk_from_meta(data: Any) -> RiskLimits | None:
    """The risk limits a session recorded, or None when it recorded none (or unreadable)."""
    if not isinstance(data, dict):
        return None
    try:
        return RiskLimits(
            max_orders=int(data["max_orders"]), window_s=float(data["window_s"]),
            max_leverage=int(data["max_leverage"]),
            max_order_notional=Decimal(data["max_order_notional"]),
            max_position_vol=Decimal(data["max_position_vol"]),
            max_open_orders=int(data["max_open_orders"]),
            restricted_symbols=frozenset(data["restricted_symbols"]))
    except (KeyError, ValueError, TypeError, ArithmeticError):
        return None


def config_hash(mode: str | None, strategy: str | None, config: Mapping[str, Any],
                symbols: Sequence[str], risk: RiskLimits) -> str:
    """The session's config hash, computed as :mod:`engine.runtime` records it."""
    risk_data = {a.name: getattr(risk, a.name) for a in RiskLimits.__attrs_attrs__}
    risk_text = {k: str(sorted(v) if isinstance(v, frozenset | set) else v)
                 for k, v in sorted(risk_data.items())}
    data = {"mode": mode, "strategy": strategy, "config": dict(config),
            "symbols": list(symbols), "risk": risk_text}
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


@frozen
class SessionPlan:
    """How a session is replayed: the strategy, its config, the symbols, the risk limits, and
    notes on what differs from the recording (versions, config hash)."""

    session: SessionInfo
    strategy_spec: str | None
    strategy_cls: type | None
    config: Any
    symbols: tuple[str, ...]
    risk: RiskLimits
    notes: tuple[str, ...]


def _meta(info: SessionInfo) -> dict[str, Any]:
    try:
        meta = orjson.loads(info.meta or "{}")
    except orjson.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def plan_session(info: SessionInfo, *, strategy_spec: str | None = None,
                 strategy_config: Mapping[str, Any] | None = None,
                 risk: RiskLimits | None = None) -> SessionPlan:
    """Load and configure the strategy a session recorded (or ``strategy_spec`` instead)."""
    meta = _meta(info)
    recorded_spec = meta.get("strategy_spec")
    spec = strategy_spec or recorded_spec
    recorded_config = meta.get("strategy_config") or {}
    values = dict(strategy_config if strategy_config is not None else recorded_config)
    symbols = tuple(str(s) for s in meta.get("symbols") or ())
    notes: list[str] = []
    cls: type | None = None
    config = None
    if spec:
        try:
            cls = load_strategy_class(str(spec))
        except PluginError as exc:
            raise ReplayError(f"session {info.id}: cannot load strategy {spec!r}: {exc}") from exc
        try:
            config = make_config(cls, values)
        except PluginError as exc:
            if strategy_config is not None or spec == recorded_spec:
                raise ReplayError(f"session {info.id}: {exc}") from exc
            config = make_config(cls, {})
            notes.append(f"the recorded strategy config does not fit {spec!r} ({exc}); "
                         "using its defaults")
    elif info.strategy and info.mode != "record":
        notes.append(f"the session names strategy {info.strategy!r} but not how to load it; "
                     "replaying without a strategy (give one with --strategy)")
    if strategy_spec and strategy_spec != recorded_spec:
        notes.append(f"replaying with strategy {strategy_spec!r} instead of the recorded "
                     f"{recorded_spec!r}")
    if cls is not None and info.strategy is not None:
        now = (getattr(cls, "name", cls.__name__), str(getattr(cls, "version", "?")))
        if (info.strategy, info.strategy_version) != now:
            notes.append(f"recorded with {info.strategy} {info.strategy_version}, "
                         f"replaying with {now[0]} {now[1]}")
    if info.parser_version and info.parser_version not in (PARSER_VERSION, "none"):
        notes.append(f"recorded with parser {info.parser_version}, replaying with {PARSER_VERSION}")
    if info.engine_version != __version__:
        notes.append(f"recorded with engine {info.engine_version}, replaying with {__version__}")
    limits = risk or risk_from_meta(meta.get("risk")) or RiskLimits()
    if "strategy_spec" in meta and info.config_hash:
        got = config_hash(info.mode, recorded_spec, recorded_config, symbols, limits)
        if got != info.config_hash:
            which = "the given" if risk is not None else "the recorded or default"
            notes.append(f"recorded config hash {info.config_hash} is not reproduced with {which} "
                         f"risk limits (got {got}): the session ran with other limits, so risk "
                         "decisions may differ")
    return SessionPlan(info, spec, cls, config, symbols, limits, tuple(notes))


def require_chain(journal: Journal) -> int:
    """Verify the whole hash chain; raise :class:`ChainBrokenError` naming the first bad seq."""
    result = journal.verify()
    if not result.ok:
        raise ChainBrokenError(
            f"{journal.path}: hash chain broken at seq {result.first_bad_seq}: {result.problem}; "
            "refusing to replay", result.first_bad_seq)
    return result.checked
