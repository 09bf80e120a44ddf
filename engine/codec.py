"""Engine events and commands ↔ journal rows, through one private cattrs converter (pure).

``encode(event)`` gives the :class:`~engine.events.NewEvent` to append for an engine-made
event; ``decode(kind, body)`` gives the event back. Decimals travel as strings, enums as
their values, commands inside events with a ``"type"`` tag. An unknown kind or a body that
does not fit is a :class:`JournalDecodeError`, never another exception.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import cattrs
import orjson

from engine import commands as c
from engine import events as e
from engine.model import OrderType, Side

__all__ = ["ENGINE_EVENT_TYPES", "JournalDecodeError", "decode", "encode", "is_engine_kind"]


class JournalDecodeError(ValueError):
    """A journal body could not be turned back into an engine event."""


ENGINE_EVENT_TYPES: dict[str, type] = {
    cls.KIND: cls
    for cls in (
        e.OrderRequested,
        e.CommandIssued,
        e.CommandAccepted,
        e.CommandDenied,
        e.OrderSent,
        e.OrderAccepted,
        e.OrderRejected,
        e.OrderOutcomeUnknown,
        e.TimerFired,
        e.Connected,
        e.Disconnected,
        e.BookGapDetected,
        e.BookResynced,
        e.DecodeFailed,
        e.KillSwitchTripped,
        e.SessionStarted,
        e.StrategyFailed,
        e.StopRequested,
        e.ReconcileDifference,
        e.SessionEnded,
    )
}
_COMMAND_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        c.PlaceOrder,
        c.CancelOrder,
        c.CancelByExternalOid,
        c.CancelAll,
        c.ChangeLeverage,
        c.ChangeMargin,
    )
}


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected a decimal string, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return result


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, _structure_decimal)

    def unstructure_command(cmd: c.Command) -> dict[str, Any]:
        d = conv.unstructure(cmd, unstructure_as=type(cmd))
        d["type"] = type(cmd).__name__
        return d

    def structure_command(value: Any, _: Any) -> c.Command:
        if not isinstance(value, dict) or value.get("type") not in _COMMAND_TYPES:
            raise ValueError(f"not a tagged command: {value!r:.80}")
        fields = {k: v for k, v in value.items() if k != "type"}
        return conv.structure(fields, _COMMAND_TYPES[value["type"]])

    conv.register_unstructure_hook(c.Command, unstructure_command)
    conv.register_structure_hook(c.Command, structure_command)
    return conv


_CONVERTER = _make_converter()
_COMMAND_CLASSES = frozenset(_COMMAND_TYPES.values())


# Hand-written unstructuring of the commands and decision events every order placement and
# cancel journals (the hot path of a tick). Each does exactly what the converter's generated
# function does with the same value (``str`` for a Decimal field, ``_value_`` for an enum
# field, the value itself for any other field, and the ``"type"`` tag where the converter adds
# it), so the bodies are byte-identical (tests/test_codec_fast.py compares them over every
# command and engine event type). Anything else goes through the converter.


def _place_order(cmd: c.PlaceOrder) -> dict[str, Any]:
    price, sl, tp = cmd.price, cmd.stop_loss_price, cmd.take_profit_price
    return {
        "symbol": cmd.symbol,
        "side": cmd.side._value_,
        "order_type": cmd.order_type._value_,
        "vol": str(cmd.vol),
        "external_oid": cmd.external_oid,
        "price": None if price is None else str(price),
        "open_type": cmd.open_type._value_,
        "leverage": cmd.leverage,
        "position_id": cmd.position_id,
        "stop_loss_price": None if sl is None else str(sl),
        "take_profit_price": None if tp is None else str(tp),
        "position_mode": cmd.position_mode,
        "reduce_only": cmd.reduce_only,
        "loss_trend": cmd.loss_trend,
        "profit_trend": cmd.profit_trend,
        "price_protect": cmd.price_protect,
        "stp_mode": cmd.stp_mode,
    }


def _tagged_place_order(cmd: c.PlaceOrder) -> dict[str, Any]:
    d = _place_order(cmd)
    d["type"] = "PlaceOrder"
    return d


def _tagged_cancel_order(cmd: c.CancelOrder) -> dict[str, Any]:
    return {"order_id": cmd.order_id, "symbol": cmd.symbol, "type": "CancelOrder"}


def _tagged_cancel_by_external_oid(cmd: c.CancelByExternalOid) -> dict[str, Any]:
    return {"symbol": cmd.symbol, "external_oid": cmd.external_oid,
            "type": "CancelByExternalOid"}


def _tagged_cancel_all(cmd: c.CancelAll) -> dict[str, Any]:
    return {"symbol": cmd.symbol, "type": "CancelAll"}


_FAST_COMMANDS: dict[type, Any] = {
    c.PlaceOrder: _tagged_place_order,
    c.CancelOrder: _tagged_cancel_order,
    c.CancelByExternalOid: _tagged_cancel_by_external_oid,
    c.CancelAll: _tagged_cancel_all,
}
"""Tagged (``"type"``) data of a command, as the converter's ``Command`` hook makes it."""


def _tagged_command(cmd: Any) -> Any:
    fast = _FAST_COMMANDS.get(type(cmd))
    return fast(cmd) if fast is not None else _CONVERTER.unstructure(cmd, unstructure_as=c.Command)


def _order_requested(ev: e.OrderRequested) -> dict[str, Any]:
    cmd = ev.command  # annotated PlaceOrder: no "type" tag
    if type(cmd) is not c.PlaceOrder:
        return _CONVERTER.unstructure(ev)
    return {"command": _place_order(cmd), "ts_ns": ev.ts_ns}


def _command_issued(ev: e.CommandIssued) -> dict[str, Any]:
    return {"command": _tagged_command(ev.command), "ts_ns": ev.ts_ns}


def _command_accepted(ev: e.CommandAccepted) -> dict[str, Any]:
    return {"key": ev.key, "ts_ns": ev.ts_ns}


def _command_denied(ev: e.CommandDenied) -> dict[str, Any]:
    return {"key": ev.key, "reason": ev.reason, "ts_ns": ev.ts_ns}


_FAST: dict[type, Any] = {
    **_FAST_COMMANDS,
    e.OrderRequested: _order_requested,
    e.CommandIssued: _command_issued,
    e.CommandAccepted: _command_accepted,
    e.CommandDenied: _command_denied,
}
_FAST_FIELDS = {
    c.PlaceOrder: tuple(_place_order(c.PlaceOrder("", Side.OPEN_LONG, OrderType.LIMIT,
                                                   Decimal(1), "x"))),
    c.CancelOrder: ("order_id", "symbol"),
    c.CancelByExternalOid: ("symbol", "external_oid"),
    c.CancelAll: ("symbol",),
    e.OrderRequested: ("command", "ts_ns"),
    e.CommandIssued: ("command", "ts_ns"),
    e.CommandAccepted: ("key", "ts_ns"),
    e.CommandDenied: ("key", "reason", "ts_ns"),
}
for _cls, _names in _FAST_FIELDS.items():  # a field added to one of them must be added here
    if tuple(a.name for a in _cls.__attrs_attrs__) != _names:  # type: ignore[attr-defined]
        raise RuntimeError(f"engine.codec: the fast unstructure of {_cls.__name__} is stale")


def to_data(obj: Any) -> Any:
    """Unstructure an attrs value (event, command or model message) to JSON-ready data."""
    fast = _FAST.get(type(obj))
    if fast is not None:
        return fast(obj)
    if type(obj) in _COMMAND_CLASSES:
        return _CONVERTER.unstructure(obj, unstructure_as=c.Command)
    return _CONVERTER.unstructure(obj)


def from_data(data: Any, cls: type) -> Any:
    """Structure JSON data into ``cls``; raises :class:`JournalDecodeError` when it does not fit."""
    try:
        return _CONVERTER.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise JournalDecodeError(f"cannot read {getattr(cls, '__name__', cls)}: {exc}") from exc


def encode(
    event: e.EngineEvent, *, stream: str | None = None, cause: int | None = None
) -> e.NewEvent:
    """The journal row for an engine-made event."""
    fast = _FAST.get(type(event))
    data = fast(event) if fast is not None else to_data(event)
    # positional: ts_ns, source, kind, body, venue_ts_ms, stream, cause
    return e.NewEvent(event.ts_ns, event.SOURCE, event.KIND,  # type: ignore[arg-type]
                      e.canonical_json(data), None, stream, cause)


def is_engine_kind(kind: str) -> bool:
    """True when ``kind`` names an engine-made event this codec can decode."""
    return kind in ENGINE_EVENT_TYPES


def decode(kind: str, body: str) -> e.EngineEvent:
    """The engine event stored under ``kind`` with ``body``."""
    cls = ENGINE_EVENT_TYPES.get(kind)
    if cls is None:
        raise JournalDecodeError(f"unknown engine event kind {kind!r}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JournalDecodeError(f"{kind}: body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise JournalDecodeError(f"{kind}: body is not a JSON object")
    return from_data(data, cls)
