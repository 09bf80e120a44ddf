"""Field readers shared by every MEXC decoder (pure).

Each reader takes the wire object and a key, and returns a checked Python value or raises
:class:`Invalid` naming the key. The entry points (:mod:`._ws`, :mod:`._rest`) turn
:class:`Invalid` into :class:`~adapters.mexc.errors.DecodeError` with the channel or endpoint.

Numbers. orjson gives JSON numbers as ``int`` or ``float``; a float becomes the Decimal of
its shortest round-trip text (``repr``). That is the literal MEXC sent whenever the literal
has at most 15 significant digits and, in practice, up to 17 (every number in the samples
round-trips, e.g. ``233.74026934364474``); a longer literal cannot survive any float parser
and comes back as the nearest double's shortest text. Integral values become integer
Decimals however they were written (``5.0`` and ``5`` both give ``Decimal('5')``), so the
result depends on the value alone.
Strings are accepted where MEXC sometimes quotes numbers and are kept exactly as written.
Booleans are never numbers; NaN and infinities cannot pass.

Speed. Converting a float costs ~0.4 µs and prices repeat endlessly, so float (and price)
conversions are memoised in bounded dicts, cleared when full. A memo is a pure cache: its
content never changes a result, only how fast it is produced. Integers are not memoised
(a lookup in a memo big enough to hit costs as much as the conversion); they go through
:data:`from_int`, which is exact and about twice as fast as ``Decimal(n)``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import IntEnum
from math import isfinite
from typing import Any, Final, TypeVar

__all__ = [
    "Invalid",
    "at_index",
    "bool_",
    "dec",
    "enum_",
    "id_",
    "id_value",
    "int_",
    "int_value",
    "known",
    "nonneg",
    "number",
    "obj",
    "opt_bool",
    "opt_dec",
    "opt_enum",
    "opt_id",
    "opt_int",
    "opt_nonneg",
    "opt_str",
    "str_",
    "ts",
]

E = TypeVar("E", bound=IntEnum)


class Invalid(Exception):
    """A field failed a check; ``field`` is its path relative to the decoded object.

    Internal: the entry points turn it into :class:`~adapters.mexc.errors.DecodeError`.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def under(self, prefix: str) -> Invalid:
        """The same failure with ``prefix`` (``data``, ``[3]``, ...) in front of the path."""
        if not self.field:
            return Invalid(prefix, self.reason)
        sep = "" if self.field.startswith("[") else "."
        return Invalid(f"{prefix}{sep}{self.field}", self.reason)


def at_index(exc: Invalid, index: int) -> Invalid:
    """``exc`` re-rooted under list position ``index``."""
    return exc.under(f"[{index}]")


def type_name(value: object) -> str:
    """A short JSON-ish name of ``value``'s type for error messages."""
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def obj(value: Any, field: str = "") -> dict[str, Any]:
    """``value`` if it is a JSON object."""
    if type(value) is not dict:
        raise Invalid(field, f"expected an object, got {type_name(value)}")
    return value


def known(data: dict[str, Any], names: frozenset[str], prefix: str) -> tuple[str, ...]:
    """Keys of ``data`` not in ``names``, as ``prefix + key``, sorted."""
    if data.keys() <= names:
        return ()
    return tuple(sorted(prefix + k for k in data.keys() - names))


# --------------------------------------------------------------------------- numbers

_MEMO_LIMIT: Final = 1 << 15
MEMO: dict[float, Decimal] = {}
"""Floats > 0 other than 1 -> their Decimal, for fields other than book levels. A hit is a
valid non-negative (and signed) value, and never ``True`` (which equals 1), so hot decoders
may try ``MEMO.get(value)`` on any hashable value before the checked reader."""
NEGATIVE: dict[float, Decimal] = {}
"""Floats < 0 -> their Decimal (signed fields); looked up only for floats."""
POSITIVE: dict[float | int, Decimal] = {}
"""Like :data:`MEMO` for book and trade prices (ints too): values > 0 other than 1."""
SIZE: dict[float | int, Decimal] = {}
"""Float book volumes > 1 or in (0, 1): a hit is a valid volume (never ``True``/``False``)."""

from_int: Final = Decimal.from_float
"""``Decimal(n)`` for an int ``n``: the same exact value, about twice as fast because it skips
``Decimal()``'s argument parsing. Only for ints: a float gives its binary expansion."""

_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,4})?")
_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_MAX_NUMBER_TEXT: Final = 80


def canon(value: float | int) -> Decimal:
    """Decimal of a finite float or an int (not memoised; see module docstring)."""
    if type(value) is float:
        if value.is_integer():
            return from_int(int(value))
        return Decimal(repr(value))
    return from_int(value)


def remember(memo: dict[Any, Any], key: float | int, value: Any) -> None:
    """Store ``key -> value`` in a bounded memo."""
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _float(memo: dict[Any, Decimal], value: float, key: str) -> Decimal:
    """A memo miss: check ``value`` is finite, convert and remember it."""
    if not isfinite(value):
        raise Invalid(key, f"not a finite number: {value!r}")
    result = canon(value)
    remember(memo, value, result)
    return result


def _text(value: str, key: str) -> Decimal:
    if len(value) <= _MAX_NUMBER_TEXT and _NUMBER_TEXT.fullmatch(value):
        return Decimal(value)
    raise Invalid(key, f"not a decimal number: {value[:40]!r}")


def _float_value(value: float, key: str) -> Decimal:
    """A float not found in :data:`MEMO`: check, convert and remember it in the right memo."""
    if value > 0:
        if value == 1:  # never memoised: True == 1
            return canon(value)
        return _float(MEMO, value, key)
    if value < 0:
        got = NEGATIVE.get(value)
        return got if got is not None else _float(NEGATIVE, value, key)
    if value == 0:
        return canon(value)
    raise Invalid(key, f"not a finite number: {value!r}")  # NaN


def number(value: Any, key: str) -> Decimal:
    """Any finite JSON number, or a string holding one, as a signed Decimal."""
    t = type(value)
    if t is float:
        got = MEMO.get(value)
        return got if got is not None else _float_value(value, key)
    if t is int:
        return from_int(value)
    if t is str:
        return _text(value, key)
    raise Invalid(key, f"expected a number, got {type_name(value)}")


def nonneg_value(value: Any, key: str) -> Decimal:
    """A number (or numeric string) that must be >= 0, as a Decimal."""
    t = type(value)
    if t is float:
        if value >= 0.0:
            got = MEMO.get(value)
            return got if got is not None else _float_value(value, key)
    elif t is int:
        if value >= 0:
            return from_int(value)
    elif t is str:
        result = _text(value, key)
        if result >= 0:
            return result
    else:
        raise Invalid(key, f"expected a number, got {type_name(value)}")
    raise Invalid(key, f"negative or not a number: {_short(value)}")


def running_total(value: Any, key: str) -> Decimal:
    """:func:`nonneg_value` for a number that never repeats (a running total such as a 24 h
    turnover): a float is converted without being memoised, which is quicker than a memo
    miss and keeps the memo for values that do repeat."""
    if type(value) is float and value > 0 and isfinite(value):
        return canon(value)
    return nonneg_value(value, key)


def dec(d: dict[str, Any], key: str) -> Decimal:
    """Required signed decimal field."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    return number(value, key)


def opt_dec(d: dict[str, Any], key: str) -> Decimal | None:
    """Optional signed decimal field (absent or null gives ``None``)."""
    value = d.get(key)
    return None if value is None else number(value, key)


def nonneg(d: dict[str, Any], key: str) -> Decimal:
    """Required decimal field that must be >= 0 (prices, sizes, balances)."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    return nonneg_value(value, key)


def opt_nonneg(d: dict[str, Any], key: str) -> Decimal | None:
    """Optional decimal field that must be >= 0 when present."""
    value = d.get(key)
    return None if value is None else nonneg_value(value, key)


def positive(value: Any, key: str) -> Decimal:
    """A number that must be > 0 (book and trade prices, contract units)."""
    t = type(value)
    if t is float or t is int:
        got = POSITIVE.get(value)
        if got is not None:
            return got
        if not value > 0:
            raise Invalid(key, f"must be > 0, got {value!r}")
        if value == 1:  # never memoised: True == 1 would hit it
            return canon(value)
        if t is int:
            got = from_int(value)
            remember(POSITIVE, value, got)
            return got
        return _float(POSITIVE, value, key)
    result = number(value, key)
    if result <= 0:
        raise Invalid(key, f"must be > 0, got {value!r}")
    return result


def size(value: Any, key: str) -> Decimal:
    """A number that must be >= 0 (book volumes)."""
    t = type(value)
    if t is int:
        if value < 0:
            raise Invalid(key, f"negative value {value!r}")
        return from_int(value)
    if t is float:
        got = SIZE.get(value)
        if got is not None:
            return got
        if not value >= 0:
            raise Invalid(key, f"negative value {value!r}")
        if value == 0 or value == 1:  # never memoised: False == 0 and True == 1
            return canon(value)
        return _float(SIZE, value, key)
    return nonneg_value(value, key)


def int_value(value: Any, key: str) -> int:
    """An integer (a JSON integer or a string of digits; never a bool)."""
    t = type(value)
    if t is int:
        return int(value)
    if t is str and len(value) <= 24 and _INT_TEXT.fullmatch(value):
        return int(value)
    raise Invalid(key, f"expected an integer, got {type_name(value)} {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def int_(d: dict[str, Any], key: str) -> int:
    """Required integer field (a JSON integer or a string of digits; never a bool)."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    return int_value(value, key)


def opt_int(d: dict[str, Any], key: str) -> int | None:
    """Optional integer field."""
    value = d.get(key)
    return None if value is None else int_value(value, key)


def count(value: Any, key: str) -> int:
    """An order count: an integer >= 0."""
    if type(value) is not int:
        raise Invalid(key, f"expected an integer count, got {type_name(value)} {_short(value)}")
    if value < 0:
        raise Invalid(key, f"negative count {value!r}")
    return int(value)


def ts(d: dict[str, Any], key: str) -> int:
    """Required millisecond (or second) timestamp: an integer >= 0."""
    value = int_(d, key)
    if value < 0:
        raise Invalid(key, f"negative timestamp {value}")
    return value


def opt_ts(d: dict[str, Any], key: str) -> int | None:
    """Optional timestamp."""
    value = d.get(key)
    if value is None:
        return None
    result = int_value(value, key)
    if result < 0:
        raise Invalid(key, f"negative timestamp {result}")
    return result


def id_value(value: Any, key: str) -> str:
    """An id as a string: a non-negative integer or a non-empty string."""
    t = type(value)
    if t is int:
        if value < 0:
            raise Invalid(key, f"negative id {value}")
        return str(value)
    if t is str:
        if not value or len(value) > 128:
            raise Invalid(key, "empty or over-long id")
        return str(value)
    raise Invalid(key, f"expected an id (string or integer), got {type_name(value)}")


def id_(d: dict[str, Any], key: str) -> str:
    """Required id: always a string, even when MEXC sends a number."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    return id_value(value, key)


def opt_id(d: dict[str, Any], key: str, *, zero_is_none: bool = False) -> str | None:
    """Optional id; with ``zero_is_none``, ``0``/``"0"`` (MEXC's "no such object") is None."""
    value = d.get(key)
    if value is None:
        return None
    result = id_value(value, key)
    if zero_is_none and result == "0":
        return None
    return result


def str_(d: dict[str, Any], key: str) -> str:
    """Required non-empty string field."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    if type(value) is not str or not value:
        raise Invalid(key, f"expected a non-empty string, got {type_name(value)}")
    return str(value)


def opt_str(d: dict[str, Any], key: str) -> str | None:
    """Optional string field (an empty string gives ``None``)."""
    value = d.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise Invalid(key, f"expected a string, got {type_name(value)}")
    return str(value) or None


def bool_(d: dict[str, Any], key: str) -> bool:
    """Required JSON boolean."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    if type(value) is not bool:
        raise Invalid(key, f"expected a boolean, got {type_name(value)}")
    return bool(value)


def opt_bool(d: dict[str, Any], key: str) -> bool | None:
    """Optional JSON boolean."""
    value = d.get(key)
    if value is None:
        return None
    if type(value) is not bool:
        raise Invalid(key, f"expected a boolean, got {type_name(value)}")
    return bool(value)


def enum_(d: dict[str, Any], key: str, table: dict[int, E]) -> E:
    """Required enum field; ``table`` maps wire integers to members."""
    try:
        value = d[key]
    except KeyError:
        raise Invalid(key, "missing required field") from None
    return _member(value, key, table)


def opt_enum(d: dict[str, Any], key: str, table: dict[int, E]) -> E | None:
    """Optional enum field."""
    value = d.get(key)
    return None if value is None else _member(value, key, table)


def _member(value: Any, key: str, table: dict[int, E]) -> E:
    if type(value) is not int:
        raise Invalid(key, f"expected an integer code, got {type_name(value)} {_short(value)}")
    member = table.get(value)
    if member is None:
        raise Invalid(key, f"unknown value {value}")
    return member


def code_in(d: dict[str, Any], key: str, allowed: frozenset[int]) -> int:
    """Required integer field restricted to ``allowed`` codes."""
    value = int_(d, key)
    if value not in allowed:
        raise Invalid(key, f"unknown value {value}")
    return value


def opt_code_in(d: dict[str, Any], key: str, allowed: frozenset[int]) -> int | None:
    """Optional integer field restricted to ``allowed`` codes."""
    value = opt_int(d, key)
    if value is not None and value not in allowed:
        raise Invalid(key, f"unknown value {value}")
    return value


def table(enum: type[E]) -> dict[int, E]:
    """Wire integer -> member for ``enum``."""
    return {int(member): member for member in enum}


def clear_memos() -> None:
    """Empty the conversion memos (benchmarks use it to measure a cold start)."""
    for memo in (MEMO, NEGATIVE, POSITIVE, SIZE):
        memo.clear()
