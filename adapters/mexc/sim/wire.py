"""JSON text the simulator sends: exact Decimal numbers and MEXC's envelopes (pure).

MEXC writes prices, sizes and money as JSON *numbers*; the simulator does too, but never
through ``float``: every :class:`~decimal.Decimal` becomes an ``orjson.Fragment`` holding its
plain positional text (``Decimal("0.00000010")`` is written ``0.00000010``, never ``1E-7``),
so the number on the wire is exactly the Decimal the core computed. Everything else is
ordinary orjson (enums by value, tuples as arrays).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

__all__ = ["dumps", "error_envelope", "number_text", "ok_envelope"]

_NO_DATA = object()


def number_text(value: Decimal) -> str:
    """The plain JSON-number text of a finite Decimal (no exponent, no negative zero)."""
    if not value.is_finite():
        raise ValueError(f"{value!r} cannot be written as a JSON number")
    text = format(value, "f")
    if text.startswith("-") and not value:
        text = text[1:]
    return text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(number_text(value))
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` (dicts, lists, tuples, str, int, bool, None, Decimal)."""
    return orjson.dumps(value, default=_default).decode()


def ok_envelope(data: Any = _NO_DATA) -> str:
    """``{"success":true,"code":0,"data":...}``; without ``data`` the key is left out."""
    body: dict[str, Any] = {"success": True, "code": 0}
    if data is not _NO_DATA:
        body["data"] = data
    return dumps(body)


def error_envelope(code: int, message: str) -> str:
    """``{"success":false,"code":N,"message":"..."}`` (sent with HTTP 200, like MEXC)."""
    return dumps({"success": False, "code": code, "message": message})
