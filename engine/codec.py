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


def to_data(obj: Any) -> Any:
    """Unstructure an attrs value (event, command or model message) to JSON-ready data."""
    if type(obj) in _COMMAND_TYPES.values():
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
    data = to_data(event)
    return e.NewEvent(
        ts_ns=event.ts_ns,
        source=event.SOURCE,  # type: ignore[arg-type]
        kind=event.KIND,
        body=e.canonical_json(data),
        stream=stream,
        cause=cause,
    )


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
