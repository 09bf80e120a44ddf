"""``decode_ws``: one MEXC contract WebSocket frame -> :class:`WsFrame` (pure).

A frame is ``{"channel", "data", "symbol"?, "ts"?}``. ``push.*`` channels decode into model
messages; ``rs.<method>`` and ``pong`` are acknowledgements (``ack``), ``rs.error`` carries
the error text (``error``); any other channel is tolerated and gives a frame without
messages. Fields nobody recognises are listed in ``unknown_fields`` (``name`` for the
frame, ``data.name`` inside ``data``), never rejected.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import partial
from typing import Any, Final

import orjson
from attrs import frozen

from adapters.mexc.errors import DecodeError

from . import _account as acc
from . import _book as book
from . import _fields as f
from . import _market as mkt

__all__ = ["CHANNELS", "WsFrame", "decode_ws", "decode_ws_gzip", "ws_messages"]

_WHERE = "ws"
_FRAME_KNOWN: Final = frozenset({"channel", "data", "symbol", "ts"})
_DEPTH_KNOWN: Final = book.DEPTH_KNOWN
_TICKER_KNOWN: Final = mkt.TICKER_KNOWN
_DEAL_KNOWN: Final = mkt.DEAL_KNOWN
_MAX_INFLATED: Final = 16 * 1024 * 1024


@frozen(slots=False)  # a frozen dict class is built ~2x faster than a slotted one
class WsFrame:
    """A decoded WebSocket frame.

    ``symbol`` and ``ts_ms`` are the frame's own top-level fields (private pushes have no
    symbol; ``pong`` without ``ts`` takes its ``data``). ``messages`` are model values;
    ``ack`` is the acknowledged method (``sub.depth``, ``login``, ``personal.filter``) or
    ``pong``; ``error`` is the text of ``rs.error``, or of an ack whose data is not success.
    """

    channel: str
    symbol: str | None
    ts_ms: int | None
    messages: tuple[Any, ...]
    ack: str | None = None
    error: str | None = None
    unknown_fields: tuple[str, ...] = ()


Handler = Callable[[Any, "str | None", "int | None"], "tuple[tuple[Any, ...], tuple[str, ...]]"]


def _data_obj(data: Any) -> dict[str, Any]:
    if data is None:
        raise f.Invalid("data", "missing required field")
    return f.obj(data, "data")


def _need_symbol(symbol: str | None) -> str:
    if symbol is None:
        raise f.Invalid("symbol", "missing required field")
    return symbol


def _under_data(exc: f.Invalid) -> f.Invalid:
    return exc.under("data")


def _single(
    build: Callable[[dict[str, Any], str | None, int | None], Any], known: frozenset[str]
) -> Handler:
    """A handler for channels whose ``data`` is one object."""

    def handle(
        data: Any, symbol: str | None, ts: int | None
    ) -> tuple[tuple[Any, ...], tuple[str, ...]]:
        body = _data_obj(data)
        try:
            message = build(body, symbol, ts)
        except f.Invalid as exc:
            raise _under_data(exc) from None
        return (message,), f.known(body, known, "data.")

    return handle


def _depth(
    data: Any, symbol: str | None, ts: int | None
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    if type(data) is not dict:
        data = _data_obj(data)
    if symbol is None:
        raise f.Invalid("symbol", "missing required field")
    try:
        message = book.book_delta(data, symbol, ts)
    except f.Invalid as exc:
        raise _under_data(exc) from None
    if _DEPTH_KNOWN.issuperset(data):
        return (message,), ()
    return (message,), f.known(data, _DEPTH_KNOWN, "data.")


def _depth_full(
    data: Any, symbol: str | None, ts: int | None
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    body = _data_obj(data)
    sym = _need_symbol(symbol)
    try:
        message = book.book_snapshot(body, sym, ts, full=False)
    except f.Invalid as exc:
        raise _under_data(exc) from None
    return (message,), f.known(body, book.DEPTH_FULL_KNOWN, "data.")


def _objects(
    data: Any, one: Callable[[dict[str, Any]], Any], known: frozenset[str]
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """``data`` as an array of objects (or one object), each decoded by ``one``."""
    items = data if type(data) is list else [_data_obj(data)]
    out = []
    names: set[str] | None = None
    for i, item in enumerate(items):
        try:
            body = item if type(item) is dict else f.obj(item)
            out.append(one(body))
        except f.Invalid as exc:
            raise f.at_index(exc, i).under("data") from None
        if not known.issuperset(body):
            names = (names or set()) | (body.keys() - known)
    return tuple(out), () if names is None else tuple(sorted("data." + name for name in names))


def _ticker(
    data: Any, symbol: str | None, ts: int | None
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    if type(data) is not dict:
        data = _data_obj(data)
    try:
        message = mkt.ticker(data, ts)
    except f.Invalid as exc:
        raise _under_data(exc) from None
    if _TICKER_KNOWN.issuperset(data):
        return (message,), ()
    return (message,), f.known(data, _TICKER_KNOWN, "data.")


def _tickers(
    data: Any, symbol: str | None, ts: int | None
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    if type(data) is not list:
        raise f.Invalid("data", f"expected an array, got {f.type_name(data)}")
    return _objects(data, lambda d: mkt.ticker(d, ts), mkt.TICKER_KNOWN)


def _deal(data: Any, symbol: str | None, ts: int | None) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """``push.deal``: one object (old docs) or an array (current, aggregated)."""
    sym = _need_symbol(symbol)
    if type(data) is list and len(data) == 1:  # the common push: one trade
        item = data[0]
        if type(item) is dict and _DEAL_KNOWN.issuperset(item):
            try:
                return (mkt.trade(item, sym),), ()
            except f.Invalid as exc:
                raise f.at_index(exc, 0).under("data") from None
    return _objects(data, partial(mkt.trade, symbol=sym), _DEAL_KNOWN)


def _contract(
    data: Any, symbol: str | None, ts: int | None
) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """``push.contract``: a contract-detail object (any extra fields are descriptive)."""
    body = _data_obj(data)
    try:
        return (mkt.contract_info(body),), ()
    except f.Invalid as exc:
        raise _under_data(exc) from None


CHANNELS: Final[dict[str, Handler]] = {
    "push.tickers": _tickers,
    "push.ticker": _ticker,
    "push.deal": _deal,
    "push.depth": _depth,
    "push.depth.full": _depth_full,
    "push.depth.step": _single(
        lambda d, s, t: book.depth_step(d, _need_symbol(s), t), book.DEPTH_STEP_KNOWN
    ),
    "push.kline": _single(mkt.kline_push, mkt.KLINE_KNOWN),
    "push.funding.rate": _single(mkt.funding_push, mkt.FUNDING_PUSH_KNOWN),
    "push.index.price": _single(mkt.index_price, mkt.PRICE_PUSH_KNOWN),
    "push.fair.price": _single(mkt.fair_price, mkt.PRICE_PUSH_KNOWN),
    "push.contract": _contract,
    "push.personal.order": _single(lambda d, s, t: acc.order(d), acc.ORDER_KNOWN),
    "push.personal.order.deal": _single(lambda d, s, t: acc.fill(d), acc.FILL_KNOWN),
    "push.personal.position": _single(lambda d, s, t: acc.position(d), acc.POSITION_KNOWN),
    "push.personal.asset": _single(lambda d, s, t: acc.balance(d, t), acc.BALANCE_KNOWN),
    "push.personal.plan.order": _single(lambda d, s, t: acc.plan_order(d), acc.PLAN_KNOWN),
    "push.personal.stop.order": _single(lambda d, s, t: acc.stop_order(d), acc.STOP_KNOWN),
    "push.personal.stop.planorder": _single(lambda d, s, t: acc.stop_order(d), acc.STOP_KNOWN),
    "push.personal.risk.limit": _single(lambda d, s, t: acc.risk_limit(d, s), acc.RISK_LIMIT_KNOWN),
    "push.personal.adl.level": _single(lambda d, s, t: acc.adl_level(d), acc.ADL_KNOWN),
    "push.personal.position.mode": _single(
        lambda d, s, t: acc.position_mode(d), acc.POSITION_MODE_KNOWN
    ),
}
"""Push channel -> handler returning (messages, unknown data fields)."""


def _error_text(data: Any) -> str:
    if type(data) is str:
        return str(data)
    if data is None:
        return "(no error text)"
    return orjson.dumps(data).decode()


def _is_success(data: Any) -> bool:
    if data is None or data == "success":
        return True
    return type(data) is dict and data.get("code") == 0 and type(data.get("code")) is int


def decode_ws(text: str | bytes) -> WsFrame:
    """Decode one text frame; raises :class:`DecodeError` (channel and field) if malformed."""
    frame: WsFrame = _decoded(text, True)
    return frame


def ws_messages(text: str | bytes) -> tuple[Any, ...]:
    """``decode_ws(text).messages``, without building the :class:`WsFrame` or listing unknown
    frame fields: what interpreting a stored frame needs. The same checks, the same errors.
    """
    messages: tuple[Any, ...] = _decoded(text, False)
    return messages


def _decoded(text: str | bytes, whole: bool) -> Any:
    """Parse ``text``, check the envelope, and decode it (see :func:`_decode`); every failure
    is a :class:`DecodeError`."""
    try:
        frame = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise DecodeError(_WHERE, f"not JSON: {exc}") from None
    if type(frame) is not dict:
        raise DecodeError(_WHERE, f"expected a JSON object, got {f.type_name(frame)}")
    channel = frame.get("channel")
    if type(channel) is not str or not channel:
        raise DecodeError(_WHERE, f"channel: expected a non-empty string, got {channel!r}"[:200])
    try:
        return _decode(frame, channel, whole)
    except f.Invalid as exc:
        raise DecodeError(channel, f"{exc.field}: {exc.reason}") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # a decoder bug: still a DecodeError, flagged "internal"
        raise DecodeError(channel, f"internal: {type(exc).__name__}: {exc}") from exc


def _decode(frame: dict[str, Any], channel: str, whole: bool = True) -> Any:
    """The :class:`WsFrame` of ``frame``, or with ``whole`` false only its messages."""
    ts = frame.get("ts")
    if ts is not None and (type(ts) is not int or ts < 0):
        ts = f.ts(frame, "ts")
    symbol = frame.get("symbol")
    if symbol is not None and (type(symbol) is not str or not symbol):
        raise f.Invalid("symbol", f"expected a non-empty string, got {f.type_name(symbol)}")
    handler = CHANNELS.get(channel)
    if handler is not None and not whole:
        return handler(frame.get("data"), symbol, ts)[0]
    unknown = () if _FRAME_KNOWN.issuperset(frame) else tuple(sorted(frame.keys() - _FRAME_KNOWN))
    if handler is not None:
        messages, extra = handler(frame.get("data"), symbol, ts)
        return WsFrame(
            channel, symbol, ts, messages, None, None, unknown + extra if extra else unknown
        )
    if not whole:  # acknowledgements, pongs, errors, unknown channels: no messages, but the
        return _decode(frame, channel).messages  # same checks (a pong's data time)
    data = frame.get("data")
    if channel == "pong":
        if ts is None and data is not None:
            ts = f.ts(frame, "data")
        return WsFrame(channel, symbol, ts, (), "pong", None, unknown)
    if channel == "rs.error":
        return WsFrame(channel, symbol, ts, (), None, _error_text(data), unknown)
    if channel.startswith("rs.") and len(channel) > 3:
        error = None if _is_success(data) else _error_text(data)
        return WsFrame(channel, symbol, ts, (), channel[3:], error, unknown)
    return WsFrame(channel, symbol, ts, (), None, None, unknown)


def decode_ws_gzip(data: bytes) -> WsFrame:
    """Inflate a compressed binary frame (gzip or zlib, at most 16 MiB) and decode it."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(_WHERE, f"expected bytes, got {type(data).__name__}")
    inflater = zlib.decompressobj(wbits=47)
    try:
        text = inflater.decompress(data, _MAX_INFLATED)
    except zlib.error as exc:
        raise DecodeError(_WHERE, f"not gzip/zlib data: {exc}") from None
    if inflater.unconsumed_tail:
        raise DecodeError(_WHERE, f"inflates to more than {_MAX_INFLATED} bytes")
    if not inflater.eof:
        raise DecodeError(_WHERE, "truncated compressed frame")
    return decode_ws(text)
