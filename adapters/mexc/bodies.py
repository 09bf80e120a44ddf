"""Request bodies of the private POST endpoints, and their exact bytes (pure).

Bodies are camelCase JSON (PROTOCOL.md §1.1). :func:`json_bytes` writes them compactly
(no spaces), keys in the order built, ids as JSON strings (JavaScript-safe; MEXC's server
accepts both), and every :class:`~decimal.Decimal` as a JSON number spelled exactly as the
Decimal's own text (``Decimal("0.60")`` → ``0.60``), never through ``float``. These bytes are
what is signed and what is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

from adapters.mexc.config import Generation
from engine.commands import ChangeLeverage, ChangeMargin, PlaceOrder

__all__ = [
    "MAX_BATCH",
    "cancel_all_body",
    "cancel_orders_body",
    "cancel_with_external_body",
    "change_leverage_body",
    "change_margin_body",
    "change_position_mode_body",
    "json_bytes",
    "place_order_body",
    "planorder_cancel_all_body",
    "planorder_cancel_body",
    "planorder_place_body",
]

MAX_BATCH = 50
"""Most ids MEXC takes in one cancel or batch query."""

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _write(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        out.append("null" if value is None else ("true" if value else "false"))
    elif isinstance(value, Decimal):
        text = str(value)
        if not value.is_finite() or not _JSON_NUMBER.fullmatch(text):
            raise ValueError(f"{value!r} cannot be written as a JSON number")
        out.append(text)
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, Enum):
        _write(value.value, out)
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {key!r}")
            out.append(("," if index else "") + json.dumps(key) + ":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        # floats included: money and sizes must be Decimal so the text is exact
        raise TypeError(f"cannot write {type(value).__name__} into a MEXC body")


def json_bytes(value: Any) -> bytes:
    """Compact JSON of ``value`` (dicts, lists, str, int, bool, None, Decimal, Enum), ASCII."""
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("ascii")


def _compact(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in pairs if value is not None}


def _int(value: int | None) -> int | None:
    return None if value is None else int(value)


def _id(value: object) -> str | None:
    return None if value is None else str(value)


def place_order_body(command: PlaceOrder) -> dict[str, Any]:
    """The ``order/create`` (or ``order/submit``) body; unset optional fields are left out."""
    return _compact(
        [
            ("symbol", command.symbol),
            ("price", command.price),
            ("vol", command.vol),
            ("leverage", _int(command.leverage)),
            ("side", int(command.side)),
            ("type", int(command.order_type)),
            ("openType", int(command.open_type)),
            ("positionId", _id(command.position_id)),
            ("externalOid", command.external_oid),
            ("stopLossPrice", command.stop_loss_price),
            ("takeProfitPrice", command.take_profit_price),
            ("positionMode", _int(command.position_mode)),
            ("reduceOnly", command.reduce_only),
            ("lossTrend", _int(command.loss_trend)),
            ("profitTrend", _int(command.profit_trend)),
            ("priceProtect", _int(command.price_protect)),
            ("stpMode", _int(command.stp_mode)),
        ]
    )


def _ids(ids: Iterable[object], what: str) -> list[str]:
    result = [str(i) for i in ids]
    if not result or len(result) > MAX_BATCH:
        raise ValueError(f"{what} takes 1 to {MAX_BATCH} ids, got {len(result)}")
    if any(not i for i in result):
        raise ValueError(f"{what}: empty id")
    return result


def cancel_orders_body(order_ids: Iterable[object]) -> list[str]:
    """The ``order/cancel`` body: a bare JSON array of string ids."""
    return _ids(order_ids, "order_cancel")


def cancel_with_external_body(
    symbol: str, external_oid: str, generation: Generation
) -> dict[str, Any] | list[dict[str, Any]]:
    """One object (old API) or a one-element list of objects (new API)."""
    item = {"symbol": symbol, "externalOid": external_oid}
    return [item] if generation is Generation.NEW else item


def cancel_all_body(symbol: str | None, generation: Generation) -> dict[str, Any]:
    """``{"symbol": ...}``; for every contract the new API wants ``""``, the old one nothing."""
    if symbol is None:
        return {"symbol": ""} if generation is Generation.NEW else {}
    return {"symbol": symbol}


def change_leverage_body(command: ChangeLeverage) -> dict[str, Any]:
    """By position (``positionId``, ``leverage``), or, with no position yet, by
    ``leverage``, ``openType``, ``symbol`` and ``positionType``."""
    if command.position_id is not None:
        return {"positionId": str(command.position_id), "leverage": int(command.leverage)}
    if command.symbol is None or command.open_type is None or command.position_type is None:
        raise ValueError(
            "change_leverage needs position_id, or symbol, open_type and position_type"
        )
    return {
        "leverage": int(command.leverage),
        "openType": int(command.open_type),
        "symbol": command.symbol,
        "positionType": int(command.position_type),
    }


def change_margin_body(command: ChangeMargin) -> dict[str, Any]:
    """``{"positionId", "amount", "type": "ADD"|"SUB"}``."""
    return {
        "positionId": str(command.position_id),
        "amount": command.amount,
        "type": command.direction.value,
    }


def change_position_mode_body(position_mode: int) -> dict[str, Any]:
    """``{"positionMode": 1|2}`` (1 hedge, 2 one-way)."""
    if int(position_mode) not in (1, 2):
        raise ValueError("position_mode is 1 (hedge) or 2 (one-way)")
    return {"positionMode": int(position_mode)}


def planorder_place_body(
    *,
    symbol: str,
    side: int,
    vol: Decimal,
    open_type: int,
    trigger_price: Decimal,
    trigger_type: int,
    execute_cycle: int,
    order_type: int,
    trend: int,
    price: Decimal | None = None,
    leverage: int | None = None,
) -> dict[str, Any]:
    """The ``planorder/place`` body, in the documented field order."""
    return _compact(
        [
            ("symbol", symbol),
            ("price", price),
            ("vol", vol),
            ("leverage", _int(leverage)),
            ("side", int(side)),
            ("openType", int(open_type)),
            ("triggerPrice", trigger_price),
            ("triggerType", int(trigger_type)),
            ("executeCycle", int(execute_cycle)),
            ("orderType", int(order_type)),
            ("trend", int(trend)),
        ]
    )


def planorder_cancel_body(orders: Sequence[tuple[str, object]]) -> list[dict[str, Any]]:
    """``[{"symbol", "orderId"}, ...]`` from ``(symbol, plan order id)`` pairs."""
    ids = _ids((order_id for _, order_id in orders), "planorder_cancel")
    return [
        {"symbol": symbol, "orderId": oid} for (symbol, _), oid in zip(orders, ids, strict=True)
    ]


def planorder_cancel_all_body(symbol: str | None) -> dict[str, Any]:
    """``{"symbol": ...}``, or ``{}`` for every contract."""
    return {} if symbol is None else {"symbol": symbol}
