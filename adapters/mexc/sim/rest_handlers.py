"""REST handlers of the simulator's private endpoints: account, orders, trading (pure).

Each handler takes a :class:`~adapters.mexc.sim.rest_api.Call` and returns the envelope's
``data`` (JSON-ready values, Decimals kept exact), :data:`~adapters.mexc.sim.rest_api.NO_DATA`
for answers without ``data``, or raises :class:`~adapters.mexc.sim.rest_api.Refusal`. The
core (:class:`~adapters.mexc.sim.exchange.Exchange`) does the work and produces the facts;
this module parses requests and shapes answers the way MEXC does (PROTOCOL.md §1.3, §1.4).
:data:`HANDLERS` is the full table, public handlers (:mod:`adapters.mexc.sim.rest_market`)
included. Private routes are authenticated before any handler runs (``call.user`` is set).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.mexc.sim.facts import OrderView, Placed, PositionView, Rejected, tidy
from adapters.mexc.sim.rest_api import (
    NO_DATA,
    Call,
    Handler,
    Refusal,
    decimal_value,
    id_text,
    int_value,
)
from adapters.mexc.sim.rest_market import MARKET_HANDLERS
from engine.model import PositionState

__all__ = ["HANDLERS", "closed_position_row", "order_row"]

_DAY_MS = 86_400_000
_MAX_BATCH = 50


_ORDER_EXTRAS: Mapping[str, Any] = {
    "bboTypeNum": 0,
    "showCancelReason": 0,
    "showProfitRateShare": 0,
    "zeroSaveTotalFeeBinance": 0,
    "zeroTradeTotalFeeBinance": 0,
}


def order_row(order: OrderView) -> dict[str, Any]:
    """An order as the REST order endpoints show it (the push fields plus a few flags)."""
    return {**order.wire(), **_ORDER_EXTRAS}


def closed_position_row(position: PositionView) -> dict[str, Any]:
    """A ``history_positions`` row: the position plus the closing summary MEXC adds."""
    row = position.wire()
    gross = position.realised + position.total_fee
    margin = position.oim or position.im
    row.update(
        {
            "holdAvgPriceFullyScale": str(tidy(position.open_avg_price)),
            "openAvgPriceFullyScale": str(tidy(position.open_avg_price)),
            "newOpenAvgPrice": tidy(position.open_avg_price),
            "newCloseAvgPrice": tidy(position.close_avg_price),
            "closeProfitLoss": tidy(gross),
            "fee": tidy(-position.total_fee),
            "profitRatio": tidy(round(position.realised / margin, 4)) if margin else 0,
            "positionShowStatus": "CLOSED" if position.state == PositionState.CLOSED else "OPEN",
            "deductFeeList": [],
        }
    )
    return row


# ------------------------------------------------------------------------ account reads


def _assets(call: Call) -> Any:
    return [a.wire() for a in call.exchange.assets(call.user)]


def _asset(call: Call) -> Any:
    currency = call.path_params.get("currency", "")
    asset = call.exchange.asset(call.user, currency)
    if asset is None:
        raise Refusal(4001, f"Unsupported currency {currency}")
    return asset.wire()


def _open_positions(call: Call) -> Any:
    symbol = call.query_symbol()
    raw_id = call.query.get("positionId") or call.query.get("position_id")
    position_id = int_value(raw_id, "positionId") if raw_id else None
    return [p.wire() for p in call.exchange.positions(call.user, symbol, position_id)]


def _history_positions(call: Call) -> Any:
    symbol = call.query_symbol()
    kind = call.query_int("type", None, low=1, high=2)
    if kind is None:
        kind = call.query_int("position_type", None, low=1, high=2)
    positions = call.exchange.history_positions(call.user, symbol, kind)
    rows = [closed_position_row(p) for p in positions]
    return call.page(rows, default_size=20, max_size=100)


def _funding_records(call: Call) -> Any:
    symbol = call.query_symbol()
    position_id = call.query_int("position_id", None)
    rows = [r.wire() for r in call.exchange.funding_records(call.user, symbol, position_id)]
    return call.paged(rows, default_size=20, max_size=100)


def _position_mode(call: Call) -> Any:
    return 1  # hedge mode: the simulator's only mode


def _position_leverage(call: Call) -> Any:
    symbol = call.query_symbol(required=True)
    assert symbol is not None
    c = call.exchange.contracts[symbol]
    rows = []
    for row in call.exchange.leverage(call.user, symbol):
        wire = row.wire()
        wire.setdefault("maxVol", c.max_vol)
        wire.setdefault("limitBySys", False)
        wire.setdefault("currentMmr", c.maintenance_margin_rate)
        rows.append(wire)
    return rows


def _risk_limit(call: Call) -> Any:
    symbol = call.query_symbol()
    contracts = call.exchange.contracts
    out: dict[str, list[dict[str, Any]]] = {}
    for sym in [symbol] if symbol else list(contracts):
        c = contracts[sym]
        out[sym] = [
            {
                "level": 1,
                "maxVol": c.max_vol,
                "mmr": c.maintenance_margin_rate,
                "imr": c.initial_margin_rate,
                "maxLeverage": c.max_leverage,
                "symbol": sym,
                "positionType": int(row.position_type),
                "openType": int(row.open_type),
                "leverage": row.leverage,
                "limitBySys": False,
            }
            for row in call.exchange.leverage(call.user, sym)
        ]
    return out


def _tiered_fee_rate(call: Call) -> Any:
    symbol = call.query_symbol(required=True)
    assert symbol is not None
    c = call.exchange.contracts[symbol]
    assets = call.exchange.assets(call.user)
    wallet = assets[0].cash_balance if assets else Decimal(0)
    return {
        "level": 0,
        "dealAmount": 0,
        "walletBalance": wallet,
        "makerFee": c.maker_fee_rate,
        "takerFee": c.taker_fee_rate,
        "makerFeeDiscount": 1,
        "takerFeeDiscount": 1,
    }


# -------------------------------------------------------------------------- order reads


def _open_orders(call: Call) -> Any:
    symbol = call.symbol(call.path_params.get("symbol") or call.query.get("symbol"), required=False)
    rows = [order_row(o) for o in call.exchange.open_orders(call.user, symbol)]
    return call.page(rows, default_size=20, max_size=100)


def _history_orders(call: Call) -> Any:
    symbol = call.query_symbol()
    start = call.query_int("start_time", None, low=0)
    end = call.query_int("end_time", None, low=0)
    if start is None and end is None:
        start = call.now_ms - 7 * _DAY_MS  # MEXC's default window: the last 7 days
    if start is not None and end is not None and end - start > 90 * _DAY_MS:
        raise Refusal(6003, "Time range error: at most 90 days")
    category = call.query_int("category", None)
    orders = call.exchange.history_orders(
        call.user,
        symbol,
        call.query_ints("states"),
        start,
        end,
        call.query_int("side", None, low=1, high=4),
    )
    rows = [order_row(o) for o in orders if category is None or o.category == category]
    return call.page(rows, default_size=20, max_size=100)


def _order_get(call: Call) -> Any:
    order = call.exchange.order(call.user, call.path_params["order_id"])
    if order is None:
        raise Refusal(2040, "Order does not exist")
    return order_row(order)


def _order_external(call: Call) -> Any:
    symbol = call.path_symbol()
    order = call.exchange.order_by_external(call.user, symbol, call.path_params["external_oid"])
    if order is None:
        raise Refusal(2040, "Order does not exist")
    return order_row(order)


def _order_batch_query(call: Call) -> Any:
    raw = call.query.get("order_ids", "")
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not ids:
        raise Refusal(600, "order_ids is required")
    if len(ids) > _MAX_BATCH:
        raise Refusal(2034, f"At most {_MAX_BATCH} orders per batch query")
    return [order_row(o) for o in call.exchange.orders_by_ids(call.user, ids)]


def _order_deal_details(call: Call) -> Any:
    return [f.wire() for f in call.exchange.deals_of_order(call.user, call.path_params["order_id"])]


def _order_deals(call: Call) -> Any:
    symbol = call.query_symbol(required=True)
    start = call.query_int("start_time", None, low=0)
    end = call.query_int("end_time", None, low=0)
    rows = [f.wire() for f in call.exchange.fills(call.user, symbol, start, end)]
    return call.page(rows, default_size=20, max_size=1000)


def _empty_list(call: Call) -> Any:
    return []


# ------------------------------------------------------------------------------ trading


def _optional(body: Mapping[str, Any], key: str) -> Any:
    value = body.get(key)
    return None if value is None or value == "" else value


def _place(call: Call) -> Any:
    body = call.body_object()
    symbol = call.symbol(body.get("symbol"))
    assert symbol is not None
    if symbol in call.api.restricted_symbols:
        raise Refusal(6005, f"Contract [{symbol}] is not available for API trading")
    for key in ("side", "type", "openType", "vol"):
        if body.get(key) is None:
            raise Refusal(600, f"{key} is required")
    mode = _optional(body, "positionMode")
    if mode is not None and int_value(mode, "positionMode", low=1, high=2) != 1:
        raise Refusal(600, "positionMode 2 (one-way) is not supported by the simulator")
    price = _optional(body, "price")
    leverage = _optional(body, "leverage")
    position_id = _optional(body, "positionId")
    external_oid = _optional(body, "externalOid")
    reduce_only = body.get("reduceOnly")
    if reduce_only is not None and not isinstance(reduce_only, bool):
        raise Refusal(600, "reduceOnly must be true or false")
    stop_loss = _optional(body, "stopLossPrice")
    take_profit = _optional(body, "takeProfitPrice")
    result = call.exchange.place_order(
        call.user,
        symbol,
        int_value(body["side"], "side"),
        int_value(body["type"], "type"),
        decimal_value(body["vol"], "vol"),
        None if price is None else decimal_value(price, "price"),
        int_value(body["openType"], "openType"),
        None if leverage is None else int_value(leverage, "leverage"),
        None if external_oid is None else id_text(external_oid, "externalOid"),
        call.now_ms,
        position_id=None if position_id is None else int_value(position_id, "positionId"),
        reduce_only=reduce_only,
        stop_loss_price=None if stop_loss is None else decimal_value(stop_loss, "stopLossPrice"),
        take_profit_price=(
            None if take_profit is None else decimal_value(take_profit, "takeProfitPrice")
        ),
    )
    if isinstance(result, Rejected):
        raise Refusal(result.code, result.message)
    assert isinstance(result, Placed)
    return result.order.order_id


def _order_create(call: Call) -> Any:
    return {"orderId": _place(call), "ts": call.server_ms}


def _order_submit(call: Call) -> Any:
    return int(_place(call))  # the old generation answers with the bare id, a JSON number


def _order_cancel(call: Call) -> Any:
    body = call.body
    if not isinstance(body, list):
        raise Refusal(600, "The body must be a JSON array of order ids")
    if not body:
        raise Refusal(600, "No order ids given")
    if len(body) > _MAX_BATCH:
        raise Refusal(2013, f"At most {_MAX_BATCH} orders per cancel")
    ids = [id_text(item, "orderId") for item in body]
    return [r.wire() for r in call.exchange.cancel_orders(call.user, ids, call.now_ms)]


def _cancel_with_external(call: Call) -> Any:
    body = call.body
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(item, dict) for item in items):
        raise Refusal(600, "The body must be {symbol, externalOid} or a list of them")
    if len(items) > _MAX_BATCH:
        raise Refusal(2013, f"At most {_MAX_BATCH} orders per cancel")
    parsed = []
    for item in items:
        symbol = call.symbol(item.get("symbol"))
        assert symbol is not None
        parsed.append((symbol, id_text(item.get("externalOid"), "externalOid")))
    rows = []
    for symbol, external_oid in parsed:
        result = call.exchange.cancel_by_external(call.user, symbol, external_oid, call.now_ms)
        rows.append(result.wire())
    return rows


def _cancel_all(call: Call) -> Any:
    body = call.body_object()
    symbol = call.symbol(body.get("symbol"), required=False)
    call.exchange.cancel_all(call.user, symbol, call.now_ms)
    return NO_DATA


def _change_leverage(call: Call) -> Any:
    body = call.body_object()
    if body.get("leverage") is None:
        raise Refusal(600, "leverage is required")
    leverage = int_value(body["leverage"], "leverage")
    raw_position = _optional(body, "positionId")
    if raw_position is not None:
        result = call.exchange.change_leverage(
            call.user, leverage, call.now_ms, position_id=int_value(raw_position, "positionId")
        )
    else:
        for key in ("symbol", "openType", "positionType"):
            if body.get(key) is None:
                raise Refusal(600, "positionId, or symbol, openType and positionType, needed")
        symbol = call.symbol(body["symbol"])
        result = call.exchange.change_leverage(
            call.user,
            leverage,
            call.now_ms,
            symbol=symbol,
            position_type=int_value(body["positionType"], "positionType", low=1, high=2),
            open_type=int_value(body["openType"], "openType"),
        )
    if isinstance(result, Rejected):
        raise Refusal(result.code, result.message)
    return NO_DATA


def _change_margin(call: Call) -> Any:
    body = call.body_object()
    for key in ("positionId", "amount", "type"):
        if body.get(key) is None:
            raise Refusal(600, f"{key} is required")
    result = call.exchange.change_margin(
        call.user,
        int_value(body["positionId"], "positionId"),
        decimal_value(body["amount"], "amount"),
        str(body["type"]),
        call.now_ms,
    )
    if isinstance(result, Rejected):
        raise Refusal(result.code, result.message)
    return NO_DATA


def _change_position_mode(call: Call) -> Any:
    body = call.body_object()
    mode = int_value(body.get("positionMode"), "positionMode", low=1, high=2)
    if mode != 1:
        raise Refusal(600, "positionMode 2 (one-way) is not supported by the simulator")
    return NO_DATA


def _planorder_place(call: Call) -> Any:
    raise Refusal(511, "Trigger (plan) orders are not supported by the simulator")


def _planorder_cancel(call: Call) -> Any:
    return NO_DATA


HANDLERS: Mapping[str, Handler] = {
    **MARKET_HANDLERS,
    "assets": _assets,
    "asset": _asset,
    "open_positions": _open_positions,
    "history_positions": _history_positions,
    "funding_records": _funding_records,
    "open_orders": _open_orders,
    "history_orders": _history_orders,
    "order_get": _order_get,
    "order_external": _order_external,
    "order_batch_query": _order_batch_query,
    "order_deal_details": _order_deal_details,
    "order_deals": _order_deals,
    "position_mode": _position_mode,
    "position_leverage": _position_leverage,
    "risk_limit": _risk_limit,
    "tiered_fee_rate": _tiered_fee_rate,
    "planorder_list": _empty_list,
    "stoporder_list": _empty_list,
    "order_create": _order_create,
    "order_submit": _order_submit,
    "order_cancel": _order_cancel,
    "order_cancel_with_external": _cancel_with_external,
    "order_cancel_all": _cancel_all,
    "change_leverage": _change_leverage,
    "change_margin": _change_margin,
    "change_position_mode": _change_position_mode,
    "planorder_place": _planorder_place,
    "planorder_cancel": _planorder_cancel,
    "planorder_cancel_all": _planorder_cancel,
}
"""Endpoint name → handler: every name in ``ENDPOINTS`` plus the spot stubs."""
