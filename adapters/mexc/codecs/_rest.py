"""``decode_rest``: an endpoint's envelope ``data`` -> model values (pure).

One decoder per endpoint name (the names of :mod:`adapters.mexc.endpoints`). Lists become
tuples; paged answers (``{pageSize, totalCount, totalPage, currentPage, resultList}``)
become a :class:`~.results.Page`; endpoints that answer without ``data`` give ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Final, TypeVar

from adapters.mexc.errors import DecodeError
from engine.model import BookDelta, BookSnapshot, RiskLimitUpdate, Trade

from . import _account as acc
from . import _book as book
from . import _fields as f
from . import _market as mkt
from .results import Page

__all__ = ["ENDPOINTS", "decode_rest"]

T = TypeVar("T")


class _Args:
    """The caller's context for one call: the symbol and kline interval, when needed."""

    __slots__ = ("interval", "symbol")

    def __init__(self, symbol: str | None, interval: str) -> None:
        self.symbol = symbol
        self.interval = interval

    def need_symbol(self) -> str:
        if not self.symbol:
            raise f.Invalid("", "symbol= is required to decode this endpoint")
        return self.symbol


def _each(data: Any, item: Callable[[dict[str, Any]], T]) -> tuple[T, ...]:
    """A JSON array of objects, each decoded by ``item``."""
    if type(data) is not list:
        raise f.Invalid("", f"expected an array, got {f.type_name(data)}")
    out = []
    for i, entry in enumerate(data):
        try:
            out.append(item(f.obj(entry)))
        except f.Invalid as exc:
            raise f.at_index(exc, i) from None
    return tuple(out)


def _one(data: Any, item: Callable[[dict[str, Any]], T]) -> T:
    return item(f.obj(data))


def _one_or_many(data: Any, item: Callable[[dict[str, Any]], T]) -> T | tuple[T, ...]:
    """An object (asked for one symbol) or an array (asked for all)."""
    return _each(data, item) if type(data) is list else _one(data, item)


def _paged(data: Any, item: Callable[[dict[str, Any]], T]) -> Page[T]:
    body = f.obj(data)
    try:
        results = body["resultList"]
    except KeyError:
        raise f.Invalid("resultList", "missing required field") from None
    try:
        items = _each(results, item)
    except f.Invalid as exc:
        raise exc.under("resultList") from None
    counters = []
    for key in ("pageSize", "totalCount", "totalPage", "currentPage"):
        value = f.opt_int(body, key)
        if value is not None and value < 0:
            raise f.Invalid(key, f"negative value {value}")
        counters.append(value)
    return Page(items, *counters)


def _list_or_page(data: Any, item: Callable[[dict[str, Any]], T]) -> tuple[T, ...] | Page[T]:
    """Documented as a list; a paged object is accepted too and gives a Page."""
    return _paged(data, item) if type(data) is dict else _each(data, item)


def _nothing(data: Any, args: _Args) -> None:
    return None


def _order_id(data: Any, args: _Args) -> str:
    """``order/create`` ``{"orderId","ts"}`` or ``order/submit``'s bare id (either way)."""
    if type(data) is dict:
        return f.id_(data, "orderId")
    return f.id_value(data, "")


def _bare_id(data: Any, args: _Args) -> str:
    return f.id_value(data, "")


def _ping(data: Any, args: _Args) -> int:
    value = f.int_value(data, "")
    if value < 0:
        raise f.Invalid("", f"negative timestamp {value}")
    return value


def _strings(data: Any, args: _Args) -> tuple[str, ...]:
    if type(data) is not list:
        raise f.Invalid("", f"expected an array, got {f.type_name(data)}")
    for i, value in enumerate(data):
        if type(value) is not str or not value:
            raise f.Invalid(f"[{i}]", f"expected a non-empty string, got {f.type_name(value)}")
    return tuple(data)


def _depth_commits(data: Any, args: _Args) -> tuple[BookDelta, ...]:
    """Sorted by version (the doc example lists newest first)."""
    symbol = args.need_symbol()
    deltas = _each(data, partial(book.book_delta, symbol=symbol))
    return tuple(sorted(deltas, key=lambda delta: delta.version))


def _risk_limits(data: Any, args: _Args) -> tuple[RiskLimitUpdate, ...]:
    """``{symbol: [tier, ...]}`` flattened to RiskLimitUpdates in the answer's order."""
    body = f.obj(data)
    out: list[RiskLimitUpdate] = []
    for symbol, tiers in body.items():
        try:
            out.extend(_each(tiers, partial(acc.risk_limit, symbol=symbol)))
        except f.Invalid as exc:
            raise exc.under(symbol) from None
    return tuple(out)


def _deals(data: Any, args: _Args) -> tuple[Trade, ...]:
    return _each(data, partial(mkt.trade, symbol=args.need_symbol()))


def _depth(data: Any, args: _Args) -> BookSnapshot:
    return book.book_snapshot(f.obj(data), args.need_symbol(), None, full=True)


def _kline(volumes_required: bool) -> Callable[[Any, _Args], Any]:
    def decode(data: Any, args: _Args) -> Any:
        return mkt.kline_columns(
            f.obj(data), args.need_symbol(), args.interval, volumes_required=volumes_required
        )

    return decode


Decoder = Callable[[Any, _Args], Any]

ENDPOINTS: Final[dict[str, Decoder]] = {
    # public
    "ping": _ping,
    "detail": lambda d, a: _one_or_many(d, mkt.contract_info),
    "support_currencies": _strings,
    "depth": _depth,
    "depth_commits": _depth_commits,
    "deals": _deals,
    "kline": _kline(True),
    "kline_index": _kline(False),
    "kline_fair": _kline(False),
    "ticker": lambda d, a: _one_or_many(d, mkt.ticker),
    "funding_rate": lambda d, a: _one(d, mkt.funding_rate),
    "funding_rate_history": lambda d, a: _paged(d, mkt.funding_history_entry),
    "index_price": lambda d, a: mkt.index_price(f.obj(d), a.symbol, None),
    "fair_price": lambda d, a: mkt.fair_price(f.obj(d), a.symbol, None),
    "risk_reverse": lambda d, a: _one_or_many(d, mkt.insurance_fund),
    # account
    "assets": lambda d, a: _each(d, acc.balance),
    "asset": lambda d, a: _one(d, acc.balance),
    "open_positions": lambda d, a: _each(d, acc.position),
    "history_positions": lambda d, a: _list_or_page(d, acc.position),
    "funding_records": lambda d, a: _list_or_page(d, acc.funding_record),
    "position_leverage": lambda d, a: _each(d, acc.leverage_tier),
    "position_mode": lambda d, a: acc.mode_value(d),
    "risk_limit": _risk_limits,
    "tiered_fee_rate": lambda d, a: _one(d, acc.tiered_fee_rate),
    # orders
    "open_orders": lambda d, a: _list_or_page(d, acc.order),
    "history_orders": lambda d, a: _list_or_page(d, acc.order),
    "order_get": lambda d, a: _one(d, acc.order),
    "order_external": lambda d, a: _one(d, acc.order),
    "order_batch_query": lambda d, a: _each(d, acc.order),
    "order_deal_details": lambda d, a: _each(d, acc.fill),
    "order_deals": lambda d, a: _list_or_page(d, acc.fill),
    "order_create": _order_id,
    "order_submit": _order_id,
    "order_cancel": lambda d, a: _each(d, acc.cancel_result),
    "order_cancel_with_external": lambda d, a: _each(d, acc.cancel_result),
    "planorder_list": lambda d, a: _list_or_page(d, acc.plan_order),
    "planorder_place": _bare_id,
    "stoporder_list": lambda d, a: _list_or_page(d, acc.stop_order),
    # acknowledged without data
    "order_cancel_all": _nothing,
    "change_leverage": _nothing,
    "change_margin": _nothing,
    "change_position_mode": _nothing,
    "planorder_cancel": _nothing,
    "planorder_cancel_all": _nothing,
}
"""Endpoint name -> decoder of its ``data``."""


def decode_rest(
    endpoint_name: str, data: Any, symbol: str | None = None, *, interval: str = "Min1"
) -> Any:
    """Decode the envelope ``data`` of ``endpoint_name`` into model values.

    ``symbol`` is needed by the endpoints whose answer does not name it (``depth``,
    ``depth_commits``, ``deals``, ``kline*``); ``interval`` labels kline candles. Raises
    :class:`DecodeError` (naming the endpoint and the field) on anything malformed,
    including an unknown endpoint name or a missing ``symbol``.
    """
    decoder = ENDPOINTS.get(endpoint_name)
    if decoder is None:
        raise DecodeError(str(endpoint_name), "no decoder for this endpoint name")
    try:
        return decoder(data, _Args(symbol, interval))
    except f.Invalid as exc:
        path = exc.under("data").field
        raise DecodeError(endpoint_name, f"{path}: {exc.reason}") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # a decoder bug: still a DecodeError, flagged "internal"
        raise DecodeError(endpoint_name, f"internal: {type(exc).__name__}: {exc}") from exc
