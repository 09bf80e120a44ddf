"""Builders and hypothesis strategies for projection tests (events with sensible defaults)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from engine.commands import PlaceOrder
from engine.events import (
    BookGapDetected,
    BookResynced,
    CommandDenied,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequested,
    OrderSent,
    TimerFired,
)
from engine.model import (
    BalanceUpdate,
    BookDelta,
    BookSnapshot,
    ContractInfo,
    FairPrice,
    Fill,
    FundingRate,
    IndexPrice,
    Kline,
    Level,
    OpenType,
    OrderState,
    OrderType,
    OrderUpdate,
    PositionState,
    PositionType,
    PositionUpdate,
    Side,
    TakerSide,
    Ticker,
    Trade,
)

SYM = "BTC_USDT"
D = Decimal


def req(ext: str, vol: int | str = 10, price: str = "100", symbol: str = SYM,
        side: Side = Side.OPEN_LONG, ts: int = 1) -> OrderRequested:
    """An OrderRequested for a limit order."""
    cmd = PlaceOrder(symbol=symbol, side=side, order_type=OrderType.LIMIT, vol=D(vol),
                     external_oid=ext, price=D(price))
    return OrderRequested(command=cmd, ts_ns=ts)


def sent(ext: str, ts: int = 2) -> OrderSent:
    return OrderSent(external_oid=ext, ts_ns=ts)


def accepted(ext: str, oid: str, ts: int = 3) -> OrderAccepted:
    return OrderAccepted(external_oid=ext, order_id=oid, ts_ns=ts)


def rejected(ext: str, code: int = 2005, ts: int = 3) -> OrderRejected:
    return OrderRejected(external_oid=ext, code=code, message="balance insufficient", ts_ns=ts)


def unknown(ext: str, ts: int = 3) -> OrderOutcomeUnknown:
    return OrderOutcomeUnknown(external_oid=ext, reason="timeout", ts_ns=ts)


def denied(key: str, ts: int = 2) -> CommandDenied:
    return CommandDenied(key=key, reason="kill switch", ts_ns=ts)


def upd(oid: str, state: OrderState = OrderState.OPEN, deal: int | str | Decimal = 0,
        avg: str = "0", vol: int | str = 10, ext: str | None = None,
        version: int | None = None, ms: int | None = None, price: str = "100",
        symbol: str = SYM, side: Side = Side.OPEN_LONG) -> OrderUpdate:
    """An exchange OrderUpdate."""
    return OrderUpdate(order_id=oid, symbol=symbol, side=side, order_type=OrderType.LIMIT,
                       open_type=OpenType.CROSS, price=D(price), vol=D(vol), deal_vol=D(deal),
                       deal_avg_price=D(avg), state=state, external_oid=ext, version=version,
                       update_ms=ms)


def fill(fid: str, oid: str, vol: int | str, price: str = "100", ext: str | None = None,
         ts: int = 10, symbol: str = SYM, side: Side = Side.OPEN_LONG) -> Fill:
    """A private Fill."""
    return Fill(fill_id=fid, order_id=oid, symbol=symbol, side=side, vol=D(vol), price=D(price),
                fee=D("0.01"), fee_currency="USDT", profit=D(0), is_taker=True, ts_ms=ts,
                external_oid=ext)


def pos(pid: str, ptype: PositionType = PositionType.LONG, hold: int | str = 5,
        state: PositionState = PositionState.HOLDING, ms: int | None = None,
        symbol: str = SYM) -> PositionUpdate:
    return PositionUpdate(position_id=pid, symbol=symbol, position_type=ptype,
                          open_type=OpenType.CROSS, state=state, hold_vol=D(hold),
                          hold_avg_price=D("100"), open_avg_price=D("100"), update_ms=ms)


def bal(cur: str = "USDT", avail: str = "100", ms: int | None = None) -> BalanceUpdate:
    return BalanceUpdate(currency=cur, available=D(avail), frozen=D(0), position_margin=D(0),
                         ts_ms=ms)


def snap(version: int, bids: list[Level] | tuple[Level, ...] = (),
         asks: list[Level] | tuple[Level, ...] = (), symbol: str = SYM) -> BookSnapshot:
    return BookSnapshot(symbol=symbol, version=version, bids=tuple(bids), asks=tuple(asks))


def delta(version: int, bids: list[Level] | tuple[Level, ...] = (),
          asks: list[Level] | tuple[Level, ...] = (), begin: int | None = None,
          symbol: str = SYM) -> BookDelta:
    """A delta; with ``begin`` it is a merged frame ``begin..version``."""
    return BookDelta(symbol=symbol, version=version, bids=tuple(bids), asks=tuple(asks),
                     begin=begin, end=None if begin is None else version)


def lvl(price: int | str, vol: int | str, count: int = 1) -> Level:
    return (D(price), D(vol), count)


def contract(symbol: str = SYM) -> ContractInfo:
    return ContractInfo(symbol=symbol, base_coin="BTC", quote_coin="USDT", settle_coin="USDT",
                        contract_size=D("0.0001"), price_unit=D("0.1"), vol_unit=D(1),
                        min_vol=D(1), max_vol=D(1000000), min_leverage=1, max_leverage=125,
                        price_scale=1, vol_scale=0, taker_fee_rate=D("0.0002"),
                        maker_fee_rate=D(0), state=0, api_allowed=True)


# ----------------------------------------------------------------------- random mixed streams

SYMBOLS = ("BTC_USDT", "ETH_USDT")
EXTS = ("c1", "c2", "c3", "c4")
OIDS = ("101", "102", "103", "104", "105")

symbols = st.sampled_from(SYMBOLS)
small = st.integers(0, 20)
prices = st.integers(90, 110).map(D)
ts = st.integers(0, 10**6)
opt_ext = st.none() | st.sampled_from(EXTS)
levels = st.lists(st.tuples(prices, st.integers(0, 5).map(D), st.integers(0, 3)), max_size=4)


@st.composite
def _request(draw: st.DrawFn) -> OrderRequested:
    return req(draw(st.sampled_from(EXTS)), vol=draw(st.integers(1, 10)),
               symbol=draw(symbols), ts=draw(ts))


@st.composite
def _update(draw: st.DrawFn) -> OrderUpdate:
    vol = draw(st.integers(1, 10))
    return upd(draw(st.sampled_from(OIDS)), draw(st.sampled_from(OrderState)),
               deal=draw(st.integers(0, vol)), avg=str(draw(prices)), vol=vol,
               ext=draw(opt_ext), version=draw(st.none() | small),
               ms=draw(st.none() | small), symbol=draw(symbols))


@st.composite
def _fill(draw: st.DrawFn) -> Fill:
    return fill(str(draw(small)), draw(st.sampled_from(OIDS)), draw(st.integers(1, 4)),
                price=str(draw(prices)), ext=draw(opt_ext), ts=draw(ts), symbol=draw(symbols))


@st.composite
def _delta(draw: st.DrawFn) -> BookDelta:
    version = draw(st.integers(1, 30))
    begin = draw(st.none() | st.integers(max(1, version - 3), version))
    return delta(version, draw(levels), draw(levels), begin=begin, symbol=draw(symbols))


order_events = st.one_of(
    _request(),
    st.builds(sent, st.sampled_from(EXTS), ts),
    st.builds(accepted, st.sampled_from(EXTS), st.sampled_from(OIDS), ts),
    st.builds(rejected, st.sampled_from(EXTS), st.integers(1, 3000), ts),
    st.builds(unknown, st.sampled_from(EXTS), ts),
    st.builds(denied, st.sampled_from((*EXTS, "CancelAll")), ts),
    _update(),
    _fill(),
)

market_events = st.one_of(
    st.builds(Trade, symbol=symbols, price=prices, vol=st.integers(1, 9).map(D),
              taker_side=st.sampled_from(TakerSide), ts_ms=ts),
    st.builds(Ticker, symbol=symbols, last_price=prices, bid1=st.none() | prices,
              ask1=st.none() | prices, volume24=prices, amount24=st.none(), hold_vol=st.none(),
              low24=st.none() | prices, high24=st.none() | prices, rise_fall_rate=st.none(),
              index_price=st.none() | prices, fair_price=st.none() | prices,
              funding_rate=st.none() | st.just(D("0.0001")), ts_ms=st.none() | ts),
    st.builds(FairPrice, symbol=symbols, price=prices, ts_ms=st.none() | ts),
    st.builds(IndexPrice, symbol=symbols, price=prices, ts_ms=st.none() | ts),
    st.builds(FundingRate, symbol=symbols, rate=st.just(D("0.0001")),
              next_settle_ms=st.none() | ts, ts_ms=st.none() | ts),
    st.builds(Kline, symbol=symbols, interval=st.sampled_from(("Min1", "Min5")),
              start_s=small, open=prices, close=prices, high=prices, low=prices,
              amount=prices, volume=prices, ts_ms=st.none() | ts),
    st.builds(contract, symbols),
    st.builds(lambda s, v, b, a: snap(v, b, a, symbol=s), symbols, st.integers(0, 25),
              levels, levels),
    _delta(),
    st.builds(BookGapDetected, symbol=symbols, expected=small, got=small, ts_ns=ts),
    st.builds(BookResynced, symbol=symbols, version=small,
              how=st.sampled_from(("commits", "snapshot")), ts_ns=ts),
)

account_events = st.one_of(
    st.builds(pos, st.sampled_from(("p1", "p2", "p3")), st.sampled_from(PositionType),
              st.integers(0, 9), st.sampled_from(PositionState), st.none() | small, symbols),
    st.builds(bal, st.sampled_from(("USDT", "USDC")), prices.map(str), st.none() | small),
    st.builds(TimerFired, name=st.just("t"), ts_ns=ts),
)

any_event = st.one_of(order_events, market_events, account_events)
