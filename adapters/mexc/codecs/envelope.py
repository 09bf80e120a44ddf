"""The MEXC REST envelope ``{"success","code","message","data"}`` (pure).

Shapes seen: ``{"success":true,"code":0,"data":...}``, ``{"success":false,"code":N,
"message":"..."}``, no ``data`` at all, ``code`` as a string (``"0"``), no ``code`` (old
ping example) and no ``success`` (a legacy ``{"code":200,"data":...}`` quoted by ccxt). A
missing ``success`` is read from the code (0 or 200 is success); a missing ``code`` is 0 on
success.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import frozen

from adapters.mexc.errors import DecodeError

from . import _fields as f

__all__ = ["Envelope", "decode_envelope"]

_WHERE = "envelope"
_OK_CODES = frozenset({0, 200})


@frozen
class Envelope:
    """A decoded REST envelope; ``data`` is still the raw JSON value (see ``decode_rest``)."""

    success: bool
    code: int
    message: str | None
    data: Any


def decode_envelope(text: str | bytes) -> Envelope:
    """Parse a REST answer body; raises :class:`DecodeError` on non-JSON or a wrong shape."""
    try:
        body = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise DecodeError(_WHERE, f"not JSON: {exc}") from None
    if type(body) is not dict:
        raise DecodeError(_WHERE, f"expected an object, got {f.type_name(body)}")
    try:
        code = f.opt_int(body, "code")
        success = f.opt_bool(body, "success")
        message = body.get("message")
        if message is not None and type(message) is not str:
            raise f.Invalid("message", f"expected a string, got {f.type_name(message)}")
    except f.Invalid as exc:
        raise DecodeError(_WHERE, f"{exc.field}: {exc.reason}") from None
    if success is None:
        if code is None:
            raise DecodeError(_WHERE, "neither success nor code present")
        success = code in _OK_CODES
    if code is None:
        code = 0 if success else -1
    return Envelope(success, code, message, body.get("data"))
