"""The simulated exchange seen through the wire, for backtests (pure: no clock, no I/O).

:class:`SimVenue` executes engine commands against the simulator's exchange core
(:class:`adapters.mexc.sim.exchange.Exchange`) as the account ``user`` and returns what the
live adapter would have journaled: the REST answer as a
:class:`~adapters.mexc.rest_call.RawResponse` (the request body as ``adapters.mexc.bodies``
builds it, the answer text as the simulator's wire module writes it) and the account's
private pushes as WebSocket frame texts. :class:`BookMirror` keeps a liquidity participant's
resting orders equal to the top levels of a recorded book, so that strategy orders trade
against recorded liquidity.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

from adapters.mexc.bodies import (
    cancel_all_body,
    cancel_orders_body,
    cancel_with_external_body,
    change_leverage_body,
    change_margin_body,
    json_bytes,
    place_order_body,
)
from adapters.mexc.config import Generation
from adapters.mexc.endpoints import ENDPOINTS
from adapters.mexc.rest_call import RawResponse
from adapters.mexc.sim.contracts import BTC_USDT, Contract, make_contract
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.facts import Placed, Push, Rejected
from adapters.mexc.sim.wire import dumps, error_envelope, ok_envelope
from engine.commands import (
    CancelAll,
    CancelByExternalOid,
    CancelOrder,
    ChangeLeverage,
    ChangeMargin,
    Command,
    PlaceOrder,
)
from engine.events import BookGapDetected, BookResynced
from engine.model import (
    BookDelta,
    BookSnapshot,
    ContractInfo,
    OpenType,
    OrderState,
    OrderType,
    Side,
    TakerSide,
    Trade,
)
from engine.projections.book import BookProjection

__all__ = ["BookMirror", "SimVenue", "contract_from_info", "frames_for"]

_HEADERS: Final = (("content-type", "application/json"),)


def contract_from_info(info: ContractInfo, *, maker_fee: Decimal | None = None,
                       taker_fee: Decimal | None = None) -> Contract:
    """A tradable simulator contract with a recorded contract's parameters (API trading on)."""
    return make_contract(
        info.symbol, template=BTC_USDT, base_coin=info.base_coin, quote_coin=info.quote_coin,
        settle_coin=info.settle_coin, contract_size=info.contract_size,
        price_unit=info.price_unit, vol_unit=info.vol_unit, min_vol=info.min_vol,
        max_vol=info.max_vol, min_leverage=info.min_leverage, max_leverage=info.max_leverage,
        price_scale=info.price_scale, vol_scale=info.vol_scale,
        taker_fee_rate=info.taker_fee_rate if taker_fee is None else taker_fee,
        maker_fee_rate=info.maker_fee_rate if maker_fee is None else maker_fee,
        state=0, api_allowed=True)


def frames_for(pushes: Iterable[Push], user: str) -> list[str]:
    """The WS frame texts of ``user``'s private pushes (public ones are left out)."""
    return [dumps(p.frame()) for p in pushes if p.user == user]


def _raw(endpoint: str, request: Any, answer: str, sent_ns: int, received_ns: int,
         *, query: str = "") -> RawResponse:
    ep = ENDPOINTS[endpoint]
    return RawResponse(
        endpoint=endpoint, method=ep.method, path=ep.path(), query=query,
        request_body=None if request is None else json_bytes(request).decode(),
        status=200, headers=_HEADERS, body_text=answer, sent_ns=sent_ns,
        received_ns=received_ns)


class SimVenue:
    """Commands in, REST answers and private push frames out (one account)."""

    def __init__(self, exchange: Exchange, user: str = "backtest") -> None:
        self.exchange = exchange
        self.user = user
        self.traded = False

    def contract_detail(self, sent_ns: int, received_ns: int) -> RawResponse:
        """The ``contract/detail`` answer listing every simulated contract."""
        data = [c.wire() for c in self.exchange.contracts.values()]
        return _raw("detail", None, ok_envelope(data), sent_ns, received_ns)

    def drain(self) -> list[str]:
        """The account's pushes since the last drain; notes whether anything traded."""
        pushes = self.exchange.drain_pushes()
        if any(p.channel == "push.deal" for p in pushes):
            self.traded = True
        return frames_for(pushes, self.user)

    def execute(self, command: Command, sent_ns: int, at_ns: int,
                received_ns: int) -> tuple[RawResponse, list[str]]:
        """Run ``command`` on the exchange at ``at_ns``; the answer and the pushes it caused."""
        raw = self._call(command, sent_ns, at_ns // 1_000_000, received_ns)
        return raw, self.drain()

    def _call(self, cmd: Command, sent_ns: int, now_ms: int, received_ns: int) -> RawResponse:
        ex, user = self.exchange, self.user
        if isinstance(cmd, PlaceOrder):
            result = ex.place_order(
                user, cmd.symbol, int(cmd.side), int(cmd.order_type), cmd.vol, cmd.price,
                int(cmd.open_type), cmd.leverage, cmd.external_oid, now_ms,
                position_id=int(cmd.position_id) if cmd.position_id else None,
                reduce_only=cmd.reduce_only, stop_loss_price=cmd.stop_loss_price,
                take_profit_price=cmd.take_profit_price)
            answer = (ok_envelope({"orderId": result.order.order_id, "ts": now_ms})
                      if isinstance(result, Placed) else
                      error_envelope(result.code, result.message))
            return _raw("order_create", place_order_body(cmd), answer, sent_ns, received_ns)
        if isinstance(cmd, CancelByExternalOid):
            res = ex.cancel_by_external(user, cmd.symbol, cmd.external_oid, now_ms)
            answer = (ok_envelope([res.wire()]) if res.order_id else
                      error_envelope(res.error_code, res.error_msg))
            body = cancel_with_external_body(cmd.symbol, cmd.external_oid, Generation.NEW)
            return _raw("order_cancel_with_external", body, answer, sent_ns, received_ns)
        if isinstance(cmd, CancelOrder):
            results = ex.cancel_orders(user, [cmd.order_id], now_ms)
            return _raw("order_cancel", cancel_orders_body([cmd.order_id]),
                        ok_envelope([r.wire() for r in results]), sent_ns, received_ns)
        if isinstance(cmd, CancelAll):
            ex.cancel_all(user, cmd.symbol, now_ms)
            return _raw("order_cancel_all", cancel_all_body(cmd.symbol, Generation.NEW),
                        ok_envelope(), sent_ns, received_ns)
        if isinstance(cmd, ChangeLeverage):
            changed = ex.change_leverage(
                user, cmd.leverage, now_ms,
                position_id=int(cmd.position_id) if cmd.position_id else None,
                symbol=cmd.symbol,
                position_type=None if cmd.position_type is None else int(cmd.position_type),
                open_type=None if cmd.open_type is None else int(cmd.open_type))
            answer = (error_envelope(changed.code, changed.message)
                      if isinstance(changed, Rejected) else ok_envelope())
            return _raw("change_leverage", change_leverage_body(cmd), answer, sent_ns,
                        received_ns)
        if isinstance(cmd, ChangeMargin):
            margin = ex.change_margin(user, int(cmd.position_id), cmd.amount,
                                      cmd.direction.value, now_ms)
            answer = (error_envelope(margin.code, margin.message)
                      if isinstance(margin, Rejected) else ok_envelope())
            return _raw("change_margin", change_margin_body(cmd), answer, sent_ns, received_ns)
        raise TypeError(f"cannot execute {type(cmd).__name__}")


class BookMirror:
    """Keeps a liquidity participant's resting orders equal to a recorded book's top levels.

    Each depth update is folded into a local copy of the recorded book; then every mirrored
    order whose level left the top ``levels`` or changed size is cancelled and the missing
    levels are placed. A mirrored order placed through a strategy's resting order trades with
    it (the strategy's order is the maker). Recorded deals can be replayed as the
    participant's IOC orders at the deal's price and size (``deals``), which fill resting
    strategy orders at that price or better, behind or ahead of mirrored liquidity by time
    priority.
    """

    def __init__(self, venue: SimVenue, *, participant: str = "market", levels: int = 20,
                 deals: bool = True) -> None:
        self.venue = venue
        self.participant = participant
        self.levels = levels
        self.deals = deals
        self.books = BookProjection()
        self._resting: dict[str, dict[tuple[bool, Decimal], tuple[str, Decimal]]] = {}

    def on_value(self, value: Any, now_ms: int) -> None:
        """Fold a recorded market value; resync the mirrored liquidity when the book moved."""
        if isinstance(value, BookSnapshot):
            self.books.on_snapshot(value)
            self.sync(value.symbol, now_ms)
        elif isinstance(value, BookDelta):
            self.books.on_delta(value)
            self.sync(value.symbol, now_ms)
        elif isinstance(value, BookResynced):
            self.books.on_resynced(value)
            self.sync(value.symbol, now_ms)
        elif isinstance(value, BookGapDetected):
            self.books.on_gap_detected(value)
        elif isinstance(value, Trade) and self.deals:
            self._deal(value, now_ms)

    def _deal(self, trade: Trade, now_ms: int) -> None:
        contract = self.venue.exchange.contract(trade.symbol)
        if contract is None or trade.vol <= 0:
            return
        side = Side.OPEN_LONG if trade.taker_side is TakerSide.BUY else Side.OPEN_SHORT
        self.venue.exchange.place_order(
            self.participant, trade.symbol, side, OrderType.IOC, min(trade.vol, contract.max_vol),
            trade.price, OpenType.CROSS, None, None, now_ms)
        self.venue.traded = True

    def _refresh(self, resting: dict[tuple[bool, Decimal], tuple[str, Decimal]]) -> None:
        ex = self.venue.exchange
        for key, (order_id, vol) in list(resting.items()):
            view = ex.order(self.participant, order_id)
            if view is None or view.state is not OrderState.OPEN:
                del resting[key]
            elif view.remain_vol != vol:
                resting[key] = (order_id, view.remain_vol)

    def sync(self, symbol: str, now_ms: int) -> None:
        """Make the participant's resting orders on ``symbol`` match the recorded top levels."""
        book = self.books.get(symbol)
        ex = self.venue.exchange
        contract = ex.contract(symbol)
        if book is None or not book.synced or contract is None:
            return
        resting = self._resting.setdefault(symbol, {})
        if self.venue.traded:
            for r in self._resting.values():
                self._refresh(r)
            self.venue.traded = False
        target = {(True, p): min(v, contract.max_vol) for p, v, _ in book.bids(self.levels)}
        target.update({(False, p): min(v, contract.max_vol)
                       for p, v, _ in book.asks(self.levels)})
        stale = [k for k, (_, vol) in resting.items() if target.get(k) != vol]
        if stale:
            ex.cancel_orders(self.participant, [resting.pop(k)[0] for k in stale], now_ms)
        for (is_buy, price), vol in target.items():
            if (is_buy, price) in resting:
                continue
            result = ex.place_order(
                self.participant, symbol, Side.OPEN_LONG if is_buy else Side.OPEN_SHORT,
                OrderType.LIMIT, vol, price, OpenType.CROSS, None, None, now_ms)
            if isinstance(result, Placed):
                order = result.order
                if order.deal_vol:
                    self.venue.traded = True
                if order.state is OrderState.OPEN:
                    resting[(is_buy, price)] = (order.order_id, order.remain_vol)
