"""Decoders for order-book data: levels, deltas, snapshots, stepped books (pure).

The hot path of the ingest: :func:`levels` turns ``[[price, vol, count], ...]`` into model
Levels with one memo lookup, one int conversion, two int checks and one tuple per level when
nothing is unusual.
Every function raises :class:`~._fields.Invalid` with the field path relative to its object.
"""

from __future__ import annotations

from typing import Any, Final

from engine.model import BookDelta, BookSnapshot, Level

from . import _fields as f
from .results import DepthStep

__all__ = [
    "DEPTH_FULL_KNOWN",
    "DEPTH_KNOWN",
    "DEPTH_STEP_KNOWN",
    "book_delta",
    "book_snapshot",
    "depth_step",
    "levels",
]

_POSITIVE = f.POSITIVE
_SIZE = f.SIZE
_NEVER: Final[dict[Any, Any]] = {}
"""Always empty: looking a value up in it sends the level to the checked path."""


def levels(raw: Any, field: str) -> tuple[Level, ...]:
    """``[[price, vol, count], ...]`` as Levels: price > 0, vol >= 0, count >= 0.

    The common case costs, per level, a memo lookup (price), an exact conversion of an int
    volume (:data:`~._fields.from_int`), two int checks and a tuple. The price memo only
    ever holds checked prices, and never 1, so a JSON ``true`` (which hashes as 1) cannot
    hit it; likewise the float-volume memo never holds 0 or 1. Anything unusual falls
    through to the checked path, which raises naming the exact level. Two-element levels
    (an old doc example) get count 0.
    """
    if type(raw) is not list:
        raise f.Invalid(field, f"expected an array of levels, got {f.type_name(raw)}")
    if not raw:
        return ()
    positive, size, exact, t, never = _POSITIVE, _SIZE, f.from_int, type, _NEVER
    try:
        return tuple(
            [
                (
                    positive[p],
                    exact(v) if t(v) is int and v >= 0 else size[v],
                    c if t(c) is int and c >= 0 else never[c],
                )
                for p, v, c in raw
            ]
        )
    except (KeyError, TypeError, ValueError):
        return _levels_checked(raw, field)


def _levels_checked(raw: list[Any], field: str) -> tuple[Level, ...]:
    out: list[Level] = []
    for i, level in enumerate(raw):
        where = f"{field}[{i}]"
        if type(level) is not list:
            raise f.Invalid(where, f"expected [price, vol, count], got {f.type_name(level)}")
        n = len(level)
        if n == 3:
            p, v, c = level
            n_orders = f.count(c, f"{where}[2]")
        elif n == 2:
            p, v = level
            n_orders = 0
        else:
            raise f.Invalid(where, f"expected [price, vol, count], got {n} elements")
        out.append((f.positive(p, f"{where}[0]"), f.size(v, f"{where}[1]"), n_orders))
    return tuple(out)


_DELTA_KEYS: Final = frozenset({"asks", "bids", "version", "begin", "end"})
DEPTH_KNOWN: Final = _DELTA_KEYS
DEPTH_FULL_KNOWN: Final = frozenset({"asks", "bids", "version", "timestamp"})


def _version(d: dict[str, Any], key: str) -> int:
    value = f.int_(d, key)
    if value < 0:
        raise f.Invalid(key, f"negative version {value}")
    return value


def _opt_version(d: dict[str, Any], key: str) -> int | None:
    return None if d.get(key) is None else _version(d, key)


def book_delta(d: dict[str, Any], symbol: str, ts_ms: int | None = None) -> BookDelta:
    """A ``push.depth`` data object or one ``depth_commits`` entry (the hot path)."""
    get = d.get
    version = get("version")
    if type(version) is not int or version < 0:
        version = _version(d, "version")
    begin = get("begin")
    if begin is not None and (type(begin) is not int or begin < 0):
        begin = _version(d, "begin")
    end = get("end")
    if end is not None and (type(end) is not int or end < 0):
        end = _version(d, "end")
    if begin is not None and end is not None and begin > end:
        raise f.Invalid("begin", f"begin {begin} is after end {end}")
    asks = get("asks")
    bids = get("bids")
    return BookDelta(
        symbol,
        version,
        () if asks is None else levels(asks, "asks"),
        () if bids is None else levels(bids, "bids"),
        ts_ms,
        begin,
        end,
    )


def book_snapshot(d: dict[str, Any], symbol: str, ts_ms: int | None, *, full: bool) -> BookSnapshot:
    """REST ``depth`` (``full=True``) or ``push.depth.full`` (top-N, ``full=False``)."""
    stamp = f.opt_ts(d, "timestamp")
    asks = d.get("asks")
    bids = d.get("bids")
    return BookSnapshot(
        symbol,
        _version(d, "version"),
        () if asks is None else levels(asks, "asks"),
        () if bids is None else levels(bids, "bids"),
        stamp if stamp is not None else ts_ms,
        full,
    )


DEPTH_STEP_KNOWN: Final = frozenset(
    {"asks", "bids", "askMarketLevelPrice", "bidMarketLevelPrice", "ct", "version"}
)


def depth_step(d: dict[str, Any], symbol: str, ts_ms: int | None) -> DepthStep:
    """A ``push.depth.step`` data object (``ct`` is its own timestamp)."""
    stamp = f.opt_ts(d, "ct")
    asks = d.get("asks")
    bids = d.get("bids")
    return DepthStep(
        symbol,
        _version(d, "version"),
        () if asks is None else levels(asks, "asks"),
        () if bids is None else levels(bids, "bids"),
        f.opt_nonneg(d, "askMarketLevelPrice"),
        f.opt_nonneg(d, "bidMarketLevelPrice"),
        stamp if stamp is not None else ts_ms,
    )
