"""The market maker: quoting and requoting by hand, then a session against the simulator
that quotes both sides post-only, stays within its position limit, and replays identically."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from engine.commands import CancelByExternalOid, PlaceOrder
from engine.model import (
    BookSnapshot,
    OpenType,
    OrderState,
    OrderType,
    OrderUpdate,
    PositionType,
    Side,
)
from engine.runtime import Session
from engine.testing import run_in_simulator, verify_replay
from strategies.market_maker import MarketMaker
from tests.strategies.harness import SYM, Harness, position

D = Decimal


def _book(version: int, bid: str, ask: str) -> BookSnapshot:
    return BookSnapshot(SYM, version, asks=((D(ask), D(10), 1),), bids=((D(bid), D(10), 1),))


def _rest(h: Harness, cmd: PlaceOrder, order_id: str) -> None:
    """The exchange accepts the quote and it rests."""
    h.feed(OrderUpdate(order_id=order_id, symbol=SYM, side=cmd.side, order_type=cmd.order_type,
                       open_type=OpenType.ISOLATED, price=cmd.price or D(0), vol=cmd.vol,
                       deal_vol=D(0), deal_avg_price=D(0), state=OrderState.OPEN,
                       external_oid=cmd.external_oid, version=1, update_ms=h.now_ms))


def test_quotes_both_sides_at_the_touch_and_requotes_when_it_moves() -> None:
    h = Harness(MarketMaker)
    assert h.tick("quote") == []  # no book yet
    h.feed(_book(1, "100000.0", "100000.5"))
    bid, ask = h.tick("quote")
    assert isinstance(bid, PlaceOrder) and isinstance(ask, PlaceOrder)
    assert (bid.side, bid.order_type, bid.price) == (Side.OPEN_LONG, OrderType.POST_ONLY,
                                                     D("100000.0"))
    assert (ask.side, ask.price) == (Side.OPEN_SHORT, D("100000.5"))
    assert h.tick("quote") == []  # both still in flight
    _rest(h, bid, "1")
    _rest(h, ask, "2")
    assert h.tick("quote") == []  # resting where they should
    h.feed(_book(2, "100001.0", "100001.5"))
    cancel_bid, new_bid, cancel_ask, new_ask = h.tick("quote")
    assert cancel_bid == CancelByExternalOid(SYM, bid.external_oid)
    assert cancel_ask == CancelByExternalOid(SYM, ask.external_oid)
    assert isinstance(new_bid, PlaceOrder) and new_bid.price == D("100001.0")
    assert isinstance(new_ask, PlaceOrder) and new_ask.price == D("100001.5")


def test_sells_by_closing_a_long_and_stops_buying_at_the_limit() -> None:
    h = Harness(MarketMaker, {"max_position": 2})
    h.feed(_book(1, "100000.0", "100000.5"))
    bid, ask = h.tick("quote")
    assert isinstance(bid, PlaceOrder) and isinstance(ask, PlaceOrder)
    _rest(h, ask, "2")
    h.fill(bid, "100000.0", position_after=2)  # long 2 = max_position
    h.feed(_book(2, "100001.0", "100001.5"))
    cancel_ask, close = h.tick("quote")  # no bid any more; the ask now closes the long
    assert cancel_ask == CancelByExternalOid(SYM, ask.external_oid)
    assert isinstance(close, PlaceOrder)
    assert (close.side, close.price, close.vol) == (Side.CLOSE_LONG, D("100001.5"), D(1))


def test_a_pending_cancel_is_not_repeated_until_cancel_retry_s() -> None:
    h = Harness(MarketMaker, {"cancel_retry_s": 10})
    h.feed(_book(1, "100000.0", "100000.5"))
    bid, ask = h.tick("quote")
    _rest(h, bid, "1")
    _rest(h, ask, "2")
    h.feed(_book(2, "100001.0", "100001.5"))
    first = h.tick("quote")
    assert [c for c in first if isinstance(c, CancelByExternalOid)] == [
        CancelByExternalOid(SYM, bid.external_oid), CancelByExternalOid(SYM, ask.external_oid)]
    replacements = [c for c in first if isinstance(c, PlaceOrder)]
    for n, cmd in enumerate(replacements):
        _rest(h, cmd, f"r{n}")
    for _ in range(4):  # the cancels wait (e.g. behind a 510 backoff): no repeats
        assert h.tick("quote") == []
    h.feed(_book(3, "100001.0", "100001.5"), dt_s=10)
    again = h.tick("quote")  # 10 s on and the stale quotes still rest: ask once more
    assert again == [CancelByExternalOid(SYM, bid.external_oid),
                     CancelByExternalOid(SYM, ask.external_oid)]
    h.feed(OrderUpdate(order_id="1", symbol=SYM, side=bid.side, order_type=bid.order_type,
                       open_type=OpenType.ISOLATED, price=bid.price or D(0), vol=bid.vol,
                       deal_vol=D(0), deal_avg_price=D(0), state=OrderState.CANCELLED,
                       external_oid=bid.external_oid, version=2, update_ms=h.now_ms))
    assert h.tick("quote") == []  # one cancelled, the other's repeat is fresh


def test_a_close_never_exceeds_the_position_left_by_other_closing_orders() -> None:
    h = Harness(MarketMaker, {"vol": 2, "max_position": 2})
    h.feed(_book(1, "100000.0", "100000.5"))
    bid, ask = h.tick("quote")
    _rest(h, ask, "a1")  # an OPEN_SHORT quote rests at 100000.5
    h.fill(bid, "100000.0", position_after=2)  # long 2: sells now close the long
    h.feed(_book(2, "100000.0", "100000.6"))
    cancel, close = h.tick("quote")
    assert cancel == CancelByExternalOid(SYM, ask.external_oid)
    assert isinstance(close, PlaceOrder) and close.side is Side.CLOSE_LONG
    assert close.vol == D(2)
    _rest(h, close, "c1")  # the close rests at 100000.6
    h.feed(_book(3, "100000.0", "100000.7"))
    # the stale close (2) still covers the whole long: a second close would be refused (2008)
    cmds = h.tick("quote")
    assert cmds == [CancelByExternalOid(SYM, close.external_oid)]
    h.feed(OrderUpdate(order_id="c1", symbol=SYM, side=close.side, order_type=close.order_type,
                        open_type=OpenType.ISOLATED, price=close.price or D(0), vol=close.vol,
                        deal_vol=D(1), deal_avg_price=close.price or D(0),
                        state=OrderState.OPEN, external_oid=close.external_oid,
                        version=2, update_ms=h.now_ms))
    h.feed(position(PositionType.LONG, 1, "100000.0", update_ms=h.now_ms))
    # half of the stale close filled: long 1, and the stale close still covers that 1
    placed = [c for c in h.tick("quote") if isinstance(c, PlaceOrder)]
    assert [c.side for c in placed] == [Side.OPEN_LONG]  # a bid again (long 1 < 2); no close


async def test_quotes_in_the_simulator_and_replays_identically(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    journal = tmp_path / "mm.sqlite"
    sessions: list[Session] = []
    summary = await run_in_simulator("strategies.market_maker:MarketMaker", journal=journal,
                                     duration_s=60, on_started=sessions.append,
                                     strategy_config={"max_position": 3})
    assert summary.killed is None
    state = sessions[0].state
    assert state is not None
    view = state.view()
    mine = [o for o in view.orders() if o.request is not None]
    assert {o.side.is_buy for o in mine if o.side is not None} == {True, False}
    assert {o.order_type for o in mine} == {OrderType.POST_ONLY}
    for kind in (PositionType.LONG, PositionType.SHORT):
        pos = view.position(SYM, kind)
        assert pos is None or pos.hold_vol <= 3

    result = verify_replay(journal, summary.session)
    assert result.identical, "\n".join(result.lines())
    assert result.compared > 0
