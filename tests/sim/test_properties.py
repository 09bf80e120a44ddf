"""Property tests of the exchange core under random order flow from several participants.

Two accounts and the liquidity participant place every order type and side at prices
within ten ticks of 100, cancel, move the fair price (funding, liquidations) and let funding settle.
After every step the accounts are re-derived from their fills and funding records by an
independent fold; at the end the matching, volume and depth invariants are checked. All of
it runs under a decimal context that traps inexact arithmetic, so any rounding outside the
documented quantizations fails the test.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, Inexact, localcontext
from typing import Any

from attrs import define
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mexc.sim.contracts import Contract, make_contract
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.facts import DepthCommit, FillView, FundingRecord, Placed, Push
from engine.model import OrderState, OrderType, PositionType, Side

from .helpers import T0

D = Decimal
SYMBOL = "TST_USDT"
CONTRACT: Contract = make_contract(
    SYMBOL, contract_size=D("0.01"), price_unit=D("0.5"), price_scale=1, max_vol=D(1000)
)
USERS = ("u1", "u2")
DEPOSIT = D(20)
FAIRS = [D(97) + D("0.5") * i for i in range(13)]
INDEX = D(100)
HOUR = 3_600_000
WIDE = Context(prec=60)
EIGHT = D("1e-8")

WHO = st.sampled_from((*USERS, "market"))
place_op = st.tuples(
    st.just("place"),
    WHO,
    st.sampled_from(list(Side)),
    st.sampled_from(list(OrderType)),
    st.integers(1, 30),
    st.integers(-10, 10),  # price offset in ticks from 100, shrinking towards the middle
    st.sampled_from((5, 20, 50)),
    st.sampled_from((1, 2)),
)
other_op = st.one_of(
    st.tuples(st.just("cancel"), WHO, st.integers(0, 50)),
    st.tuples(st.just("fair"), st.integers(0, len(FAIRS) - 1)),
    st.tuples(st.just("tick"), st.integers(1, 20)),
)
# two places for every other operation
op = st.integers(0, 2).flatmap(lambda n: other_op if n == 2 else place_op)
flows = st.lists(op, min_size=20, max_size=60)


# ------------------------------------------------------------ independent fold


@define
class Pos:
    """The test's own running view of one position."""

    position_id: int
    hold: Decimal = Decimal(0)
    avg: Decimal = Decimal(0)
    im: Decimal = Decimal(0)
    realised: Decimal = Decimal(0)


def ceil8(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, rounding=ROUND_CEILING, context=WIDE)


def round8(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, rounding=ROUND_HALF_EVEN, context=WIDE)


def fold_account(ex: Exchange, user: str, fairs: list[tuple[int, Decimal]]) -> None:
    """Re-derive ``user``'s positions and balance from fills and funding; compare."""
    cs = CONTRACT.contract_size
    fills = list(reversed(ex.fills(user)))
    funding = list(reversed(ex.funding_records(user)))
    events: list[tuple[int, int, int, FillView | FundingRecord]] = [
        (f.timestamp, 0, i, f) for i, f in enumerate(fills)
    ]
    events += [(r.settle_time, 1, i, r) for i, r in enumerate(funding)]
    open_: dict[PositionType, Pos] = {}
    closed: dict[int, Decimal] = {}
    cash = DEPOSIT
    for *_, event in sorted(events, key=lambda e: e[:3]):
        if isinstance(event, FillView):
            f = event
            order = ex.order(user, f.order_id)
            assert order is not None
            rate = CONTRACT.taker_fee_rate if f.is_taker else CONTRACT.maker_fee_rate
            assert f.fee == (0 if f.category == 2 else f.price * f.vol * cs * rate)
            kind = f.side.position_type
            if f.side.opens:
                pos = open_.setdefault(kind, Pos(f.position_id))
                pos.avg = (
                    f.price
                    if pos.hold == 0
                    else round8(WIDE.divide(pos.avg * pos.hold + f.price * f.vol, pos.hold + f.vol))
                )
                pos.hold += f.vol
                pos.im += ceil8(WIDE.divide(f.price * f.vol * cs, order.leverage))
                profit = D(0)
            else:
                pos = open_[kind]
                diff = f.price - pos.avg if kind == PositionType.LONG else pos.avg - f.price
                profit = diff * f.vol * cs
                released = (
                    pos.im if f.vol == pos.hold else round8(WIDE.divide(pos.im * f.vol, pos.hold))
                )
                pos.im -= released
                pos.hold -= f.vol
            assert pos.position_id == f.position_id
            assert f.profit == profit
            pos.realised += profit - f.fee
            cash += profit - f.fee
            if pos.hold == 0:
                closed[pos.position_id] = pos.realised
                del open_[kind]
        else:
            r = event
            pos = open_[r.position_type]
            assert pos.position_id == r.position_id
            fair = [p for t, p in fairs if t <= r.settle_time][-1]
            premium = WIDE.divide(fair - INDEX, INDEX).quantize(D("1e-6"), context=WIDE)
            cap = CONTRACT.max_funding_rate
            assert r.rate == max(-cap, min(cap, premium))
            assert r.position_value == pos.hold * cs * fair
            sign = -1 if r.position_type == PositionType.LONG else 1
            assert r.funding == sign * r.position_value * r.rate
            pos.realised += r.funding
            cash += r.funding
    # the accounting identity, stated separately from the fold
    assert cash - DEPOSIT == (
        sum((f.profit for f in fills), D(0))
        - sum((f.fee for f in fills), D(0))
        + sum((r.funding for r in funding), D(0))
    )
    (asset,) = ex.assets(user)
    assert asset.cash_balance == cash
    shown = {p.position_type: p for p in ex.positions(user)}
    assert set(shown) == set(open_)
    for kind, pos in open_.items():
        view = shown[kind]
        assert (view.position_id, view.hold_vol, view.open_avg_price, view.im, view.realised) == (
            pos.position_id,
            pos.hold,
            pos.avg,
            pos.im,
            pos.realised,
        )
    assert {p.position_id: p.realised for p in ex.history_positions(user)} == closed
    frozen = D(0)
    for o in ex.open_orders(user):
        if o.side.opens:
            notional = o.price * o.remain_vol * cs
            frozen += ceil8(WIDE.divide(notional, o.leverage)) + notional * CONTRACT.taker_fee_rate
    position_margin = sum((p.im for p in open_.values()), D(0))
    assert (asset.frozen_balance, asset.position_margin) == (frozen, position_margin)
    assert asset.available_balance == cash - position_margin - frozen


# ------------------------------------------------------------- end-of-run checks


def check_orders(ex: Exchange) -> None:
    buys = sells = D(0)
    for who in (*USERS, "market"):
        for o in ex.history_orders(who):
            assert 0 <= o.deal_vol <= o.vol
            if o.state == OrderState.OPEN:
                assert o.remain_vol == o.vol - o.deal_vol > 0
            elif o.state == OrderState.FILLED:
                assert o.deal_vol == o.vol and o.remain_vol == 0
            else:
                assert o.state == OrderState.CANCELLED
            if o.order_type == OrderType.FOK:
                assert o.deal_vol in (0, o.vol)
            limited = o.order_type not in (OrderType.MARKET, OrderType.MARKET_TO_CURRENT)
            if limited and o.deal_vol and o.category == 1:
                avg_ok = (
                    o.deal_avg_price <= o.price if o.side.is_buy else o.deal_avg_price >= o.price
                )
                assert avg_ok
            if who in USERS:
                fills = ex.deals_of_order(who, o.order_id)
                assert sum((f.vol for f in fills), D(0)) == o.deal_vol
                for f in fills:
                    if limited and f.category == 1:
                        assert f.price <= o.price if o.side.is_buy else f.price >= o.price
                    if o.order_type == OrderType.POST_ONLY:
                        assert not f.is_taker
            if o.category == 1:
                if o.side.is_buy:
                    buys += o.deal_vol
                else:
                    sells += o.deal_vol
    traded = sum((d.vol for d in ex.recent_deals(SYMBOL, 1000)), D(0))
    assert buys == sells == traded
    for who in USERS:
        deal_ids = [f.deal_id for f in ex.fills(who) if f.category == 1]
        assert len(deal_ids) == len(set(deal_ids)), "an account traded with itself"


def check_depth(ex: Exchange, depth_pushes: list[Push]) -> None:
    commits = [p.data for p in depth_pushes]
    assert all(isinstance(c, DepthCommit) for c in commits)
    versions = [c.version for c in commits if isinstance(c, DepthCommit)]
    assert versions == list(range(1, len(versions) + 1))
    book: dict[tuple[str, Decimal], tuple[Decimal, int]] = {}
    for commit in commits:
        for side in ("asks", "bids"):
            for price, vol, count in getattr(commit, side):
                assert (vol == 0) == (count == 0)
                if vol:
                    book[(side, price)] = (vol, count)
                else:
                    book.pop((side, price), None)
    snap = ex.depth_snapshot(SYMBOL, T0)
    assert snap.version == len(versions)
    replayed_asks = sorted((p, v, c) for (s, p), (v, c) in book.items() if s == "asks")
    replayed_bids = sorted(
        ((p, v, c) for (s, p), (v, c) in book.items() if s == "bids"), reverse=True
    )
    assert list(snap.asks) == replayed_asks and list(snap.bids) == replayed_bids
    if snap.asks and snap.bids:
        assert snap.bids[0][0] < snap.asks[0][0], "crossed book"
    resting: dict[tuple[str, Decimal], tuple[Decimal, int]] = {}
    for who in (*USERS, "market"):
        for o in ex.open_orders(who):
            key = ("bids" if o.side.is_buy else "asks", o.price)
            vol, count = resting.get(key, (D(0), 0))
            resting[key] = (vol + o.remain_vol, count + 1)
    assert resting == book


# ------------------------------------------------------------------- the test


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows)
def test_random_flows_keep_every_invariant(ops: list[tuple[Any, ...]]) -> None:
    with localcontext() as ctx:
        ctx.traps[Inexact] = True
        run_flow(ops)


def run_flow(ops: list[tuple[Any, ...]]) -> None:
    ex = Exchange(T0, [CONTRACT])
    now = T0
    for user in USERS:
        ex.deposit(user, DEPOSIT, now)
    ex.set_index_price(SYMBOL, INDEX, now)
    ex.set_fair_price(SYMBOL, INDEX, now)
    fairs = [(now, INDEX)]
    for offset in range(1, 4):  # some liquidity to start from
        step = D("0.5") * offset
        ex.place_order("market", SYMBOL, Side.OPEN_LONG, 1, D(40), INDEX - step, 2, 20, None, now)
        ex.place_order("market", SYMBOL, Side.OPEN_SHORT, 1, D(40), INDEX + step, 2, 20, None, now)
    depth = [p for p in ex.drain_pushes() if p.channel == "push.depth"]
    for op in ops:
        now += 1
        if op[0] == "place":
            _, who, side, order_type, vol, offset, leverage, open_type = op
            price = None if order_type in (5, 6) else INDEX + CONTRACT.price_unit * offset
            result = ex.place_order(
                who, SYMBOL, side, order_type, D(vol), price, open_type, leverage, None, now
            )
            if isinstance(result, Placed) and order_type == OrderType.POST_ONLY:
                assert result.order.deal_vol == 0
        elif op[0] == "cancel":
            _, who, k = op
            mine = ex.open_orders(who)
            if mine:
                assert ex.cancel_order(who, mine[k % len(mine)].order_id, now).error_code == 0
        elif op[0] == "fair":
            fair = FAIRS[op[1]]
            ex.set_fair_price(SYMBOL, fair, now)
            fairs.append((now, fair))
        else:
            now += op[1] * HOUR
            ex.tick(now)
        depth.extend(p for p in ex.drain_pushes() if p.channel == "push.depth")
        for user in USERS:
            fold_account(ex, user, fairs)
    check_orders(ex)
    check_depth(ex, depth)
