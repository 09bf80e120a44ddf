"""MEXC Futures WebSocket messages (pure): builders for what the client sends, and tiny readers.

Every builder returns the exact JSON text to put in a text frame, compact (``,`` and ``:``
without spaces) and with a fixed key order, so the same call always yields the same bytes.
Invalid input raises :class:`ValueError` naming the offending value (never a secret).

Wire shapes (``mexc/PROTOCOL.md`` §2.3, §3)::

    {"method":"sub.deal","param":{"symbol":"BTC_USDT","compress":false},"gzip":false}
    {"method":"unsub.deal","param":{"symbol":"BTC_USDT"}}
    {"subscribe":false,"method":"login","param":{"apiKey":…,"reqTime":"…","signature":…}}
    {"method":"personal.filter","param":{"filters":[{"filter":"order","rules":["BTC_USDT"]}]}}
    {"method":"ping"}

``gzip`` is a top-level key beside ``method`` (the docs' ``{"method":"sub.tickers","param":{},
"gzip": false}``); it is unrelated to ``param.compress``, which is deal/depth *aggregation*.
The server acknowledges a request on channel ``"rs." + method`` (``ack_channel``), refuses it
on ``rs.error``, and answers ``ping`` on ``pong``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from adapters.mexc.signing import ws_login_signature

__all__ = [
    "CHANNELS",
    "DEPTH_FULL_LIMITS",
    "KLINE_INTERVALS",
    "PERSONAL_FILTER_KEYS",
    "UNFILTERABLE_BY_SYMBOL",
    "ChannelSpec",
    "FilterSpec",
    "ack_channel",
    "channel_of",
    "login",
    "personal_filter",
    "ping",
    "sub",
    "unsub",
]

KLINE_INTERVALS: tuple[str, ...] = (
    "Min1", "Min5", "Min15", "Min30", "Min60", "Hour4", "Hour8", "Day1", "Week1", "Month1",
)  # fmt: skip
"""The ``interval`` values ``sub.kline`` accepts."""

DEPTH_FULL_LIMITS: tuple[int, ...] = (5, 10, 20)
"""The ``limit`` values ``sub.depth.full`` accepts (the server's default is 20)."""

PERSONAL_FILTER_KEYS: tuple[str, ...] = (
    "order", "order.deal", "position", "plan.order", "stop.order", "stop.planorder",
    "risk.limit", "adl.level", "asset",
)  # fmt: skip
"""The private streams ``personal.filter`` can select (all pushed by default after login)."""

UNFILTERABLE_BY_SYMBOL: frozenset[str] = frozenset({"asset", "adl.level"})
"""Private streams that cannot be narrowed to symbols: their filter entry takes no ``rules``."""


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- parameter validators -------------------------------------------------------------------


def _symbol(where: str, value: object) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or " " in value:
        raise ValueError(f"{where}: symbol must be a non-empty str without spaces, got {value!r}")
    return value


def _compress(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: compress must be a bool, got {value!r}")
    return value


def _limit(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in DEPTH_FULL_LIMITS:
        raise ValueError(f"{where}: limit must be one of {DEPTH_FULL_LIMITS}, got {value!r}")
    return value


def _interval(where: str, value: object) -> str:
    if value not in KLINE_INTERVALS:
        raise ValueError(f"{where}: interval must be one of {', '.join(KLINE_INTERVALS)}, "
                         f"got {value!r}")  # fmt: skip
    return str(value)


def _step(where: str, value: object) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text:
        raise ValueError(f"{where}: step must be a positive number (str or int), got {value!r}")
    try:
        positive = float(text) > 0
    except ValueError:
        positive = False
    if not positive:
        raise ValueError(f"{where}: step must be a positive number (str or int), got {value!r}")
    return text


_VALIDATORS: dict[str, Callable[[str, object], object]] = {
    "symbol": _symbol,
    "compress": _compress,
    "limit": _limit,
    "interval": _interval,
    "step": _step,
}


@attrs.frozen
class ChannelSpec:
    """The parameters one public channel takes: ``required`` then ``optional``, in wire order."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Every parameter name, in the order it is written."""
        return self.required + self.optional


CHANNELS: Mapping[str, ChannelSpec] = {
    "tickers": ChannelSpec(),
    "ticker": ChannelSpec(("symbol",)),
    "deal": ChannelSpec(("symbol",), ("compress",)),
    "depth": ChannelSpec(("symbol",), ("compress",)),
    "depth.full": ChannelSpec(("symbol",), ("limit",)),
    "depth.step": ChannelSpec(("symbol", "step")),
    "kline": ChannelSpec(("symbol", "interval")),
    "funding.rate": ChannelSpec(("symbol",)),
    "index.price": ChannelSpec(("symbol",)),
    "fair.price": ChannelSpec(("symbol",)),
    "contract": ChannelSpec((), ("symbol",)),
}
"""Public channels by name (the part after ``sub.``) and the parameters each takes."""


def _params(method: str, channel: str, params: Mapping[str, object], *, unsub: bool) -> dict:
    spec = CHANNELS.get(channel)
    if spec is None:
        hint = ""
        if channel.startswith(("sub.", "unsub.", "push.")):
            hint = f" (pass the bare name, e.g. {channel.split('.', 1)[1]!r})"
        raise ValueError(f"unknown channel {channel!r}{hint}; known: {', '.join(CHANNELS)}")
    unknown = sorted(set(params) - set(spec.keys))
    if unknown:
        allowed = ", ".join(spec.keys) or "none"
        raise ValueError(f"{method}: unexpected parameter(s) {', '.join(unknown)} "
                         f"(allowed: {allowed})")  # fmt: skip
    # Unsubscribing identifies the stream by symbol only; the rest is optional there.
    required = ("symbol",) if unsub and "symbol" in spec.required else spec.required
    missing = [key for key in required if params.get(key) is None]
    if missing:
        raise ValueError(f"{method}: missing required parameter(s) {', '.join(missing)}")
    out: dict[str, object] = {}
    for key in spec.keys:
        value = params.get(key)
        if value is not None:
            out[key] = _VALIDATORS[key](method, value)
    return out


def sub(channel: str, *, gzip: bool | None = None, **params: object) -> str:
    """``sub.<channel>`` request text, e.g. ``sub("deal", symbol="BTC_USDT", compress=False)``.

    ``gzip=None`` leaves the key out (server default); ``True``/``False`` writes a top-level
    ``"gzip"`` asking for compressed binary or plain-text pushes. A parameter passed as
    ``None`` counts as absent.
    """
    method = f"sub.{channel}"
    body: dict[str, object] = {
        "method": method,
        "param": _params(method, channel, params, unsub=False),
    }
    if gzip is not None:
        if not isinstance(gzip, bool):
            raise ValueError(f"{method}: gzip must be a bool or None, got {gzip!r}")
        body["gzip"] = gzip
    return _dumps(body)


def unsub(channel: str, **params: object) -> str:
    """``unsub.<channel>`` request text; only ``symbol`` is required where the channel has one.

    ``depth.full`` is unsubscribed as ``unsub.depth.full``: the docs' ``usub.depth.full`` is a
    typo, and the live acknowledgement is ``rs.unsub.depth.full``.
    """
    method = f"unsub.{channel}"
    return _dumps({"method": method, "param": _params(method, channel, params, unsub=True)})


def login(api_key: str, secret: str, req_time_ms: int, subscribe: bool = True) -> str:
    """``login`` request text, signed ``HMAC_SHA256(secret, api_key + str(req_time_ms))``.

    With ``subscribe=False`` a top-level ``"subscribe":false`` switches off the default push of
    every private stream. The text carries the signature: never log or journal it.
    """
    if not isinstance(api_key, str) or not api_key or api_key != api_key.strip():
        raise ValueError("login: api_key must be a non-empty str without surrounding spaces")
    if not isinstance(secret, str) or not secret:
        raise ValueError("login: secret must be a non-empty str")
    if isinstance(req_time_ms, bool) or not isinstance(req_time_ms, int) or req_time_ms <= 0:
        raise ValueError(f"login: req_time_ms must be a positive int (ms), got {req_time_ms!r}")
    if not isinstance(subscribe, bool):
        raise ValueError(f"login: subscribe must be a bool, got {subscribe!r}")
    param = {
        "apiKey": api_key,
        "reqTime": str(req_time_ms),
        "signature": ws_login_signature(api_key, secret, req_time_ms),
    }
    body: dict[str, object] = {} if subscribe else {"subscribe": False}
    body["method"] = "login"
    body["param"] = param
    return _dumps(body)


FilterSpec = Mapping[str, Iterable[str] | None] | Iterable[Mapping[str, Any] | str]
"""What :func:`personal_filter` accepts; see there."""


def _rules(key: str, rules: object) -> list[str] | None:
    if rules is None:
        return None
    if isinstance(rules, str | bytes) or not isinstance(rules, Iterable):
        raise ValueError(f"personal.filter: rules for {key!r} must be a list of symbols, "
                         f"got {rules!r}")  # fmt: skip
    symbols = [_symbol(f"personal.filter {key!r}", symbol) for symbol in rules]
    if symbols and key in UNFILTERABLE_BY_SYMBOL:
        raise ValueError(f"personal.filter: {key!r} cannot be filtered by symbol (no rules)")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"personal.filter: duplicate symbols in rules for {key!r}")
    return symbols


def _filter_entries(filters: FilterSpec) -> list[tuple[str, object]]:
    if isinstance(filters, Mapping):
        return list(filters.items())
    if isinstance(filters, str | bytes):
        raise ValueError("personal.filter: filters must be a mapping or a list, not a str")
    entries: list[tuple[str, object]] = []
    for item in filters:
        if isinstance(item, str):
            entries.append((item, None))
            continue
        if not isinstance(item, Mapping):
            raise ValueError(f"personal.filter: bad entry {item!r}")
        extra = sorted(set(item) - {"filter", "rules"})
        if extra or "filter" not in item:
            raise ValueError(f"personal.filter: an entry is {{filter, rules?}}, got {item!r}")
        entries.append((item["filter"], item.get("rules")))
    return entries


def personal_filter(filters: FilterSpec | None = None) -> str:
    """``personal.filter`` request text selecting which private streams are pushed.

    ``filters`` is a mapping ``{key: symbols or None}`` or a list of ``{"filter": key,
    "rules": [symbols]}`` entries (``rules`` optional) or bare keys. ``None`` (nothing given)
    gives ``{"method":"personal.filter"}``, which restores every stream; ``[]`` gives the
    equivalent ``filters: []``. A later filter replaces an earlier one on the server.
    ``rules`` absent or empty means every symbol; ``asset`` and ``adl.level`` take none.
    """
    if filters is None:
        return _dumps({"method": "personal.filter"})
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    for key, rules in _filter_entries(filters):
        if key not in PERSONAL_FILTER_KEYS:
            raise ValueError(f"personal.filter: unknown filter {key!r}; "
                             f"valid: {', '.join(PERSONAL_FILTER_KEYS)}")  # fmt: skip
        if key in seen:
            raise ValueError(f"personal.filter: filter {key!r} given twice")
        seen.add(key)
        entry: dict[str, object] = {"filter": key}
        symbols = _rules(key, rules)
        if symbols is not None and key not in UNFILTERABLE_BY_SYMBOL:
            entry["rules"] = symbols
        out.append(entry)
    return _dumps({"method": "personal.filter", "param": {"filters": out}})


_PING = _dumps({"method": "ping"})


def ping() -> str:
    """``{"method":"ping"}``; the server answers ``{"channel":"pong","data":<ms>}``."""
    return _PING


def ack_channel(method: str) -> str:
    """The channel that acknowledges ``method``: ``"rs." + method``, and ``pong`` for ping."""
    return "pong" if method == "ping" else f"rs.{method}"


def channel_of(text: str) -> str | None:
    """The ``channel`` of a server frame, or None when it is not a JSON object with one."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    channel = obj.get("channel")
    return channel if isinstance(channel, str) else None
