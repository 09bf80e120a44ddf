"""Property: an order's projected state does not depend on the order its news arrives in.

For each order we make a plausible exchange-side history (REST outcome, a run of fills and
the versioned order updates that follow them, with or without client ids), then deliver it in
random interleavings: the local chain (requested, sent, answer) keeps its order, exchange
messages (updates, fills, duplicates) come in any order after ``sent``, and the orders of a
batch interleave with each other. Every interleaving must project the same order records,
matching the exchange's final state.
"""

from __future__ import annotations

import random
from decimal import Decimal

from attrs import define
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.codec import to_data
from engine.model import OrderState
from engine.projections import OrderStatus, State, project

from .projection_events import accepted, fill, rejected, req, sent, unknown, upd


@define
class History:
    ext: str
    oid: str
    vol: int
    local: list[object]       # after requested+sent, in order
    exchange: list[object]    # any order
    status: OrderStatus
    filled: Decimal
    avg: Decimal | None
    order_id: str | None


@st.composite
def history(draw: st.DrawFn, i: int) -> History:
    ext, oid = f"c{i}", str(900 + i)
    vol = draw(st.integers(1, 10))
    outcome = draw(st.sampled_from(["accepted", "accepted", "unknown", "unknown", "rejected",
                                    "unknown_rejected", "unknown_silent"]))
    if outcome == "rejected":
        return History(ext, oid, vol, [rejected(ext)], [], OrderStatus.REJECTED, Decimal(0), None,
                       None)
    if outcome == "unknown_rejected":
        return History(ext, oid, vol, [unknown(ext), rejected(ext)], [], OrderStatus.REJECTED,
                       Decimal(0), None, None)
    if outcome == "unknown_silent":
        return History(ext, oid, vol, [unknown(ext)], [], OrderStatus.UNKNOWN, Decimal(0), None,
                       None)
    local: list[object] = [accepted(ext, oid) if outcome == "accepted" else unknown(ext)]

    end = draw(st.sampled_from(["filled", "cancelled", "open", "invalid"]))
    sizes: list[int] = []
    if end == "filled":
        left = vol
        while left:
            sizes.append(draw(st.integers(1, left)))
            left -= sizes[-1]
    elif end != "invalid":
        sizes = draw(st.lists(st.integers(1, 3), max_size=4).filter(lambda s: sum(s) < vol))
    prices = [Decimal(draw(st.integers(95, 105))) for _ in sizes]
    versioned = draw(st.booleans())

    def with_ext() -> str | None:
        return ext if draw(st.booleans()) else None

    updates = []
    fills = []
    cum, notional, step = 0, Decimal(0), 1

    def update(state: OrderState, keep: bool = True) -> None:
        nonlocal step
        avg = str(notional / cum) if cum else "0"
        u = upd(oid, state, cum, avg, vol=vol, ext=with_ext(),
                version=step if versioned else None, ms=None if versioned else 1000 + step)
        step += 1
        if keep:
            updates.append(u)

    update(OrderState.INVALID if end == "invalid" else OrderState.OPEN,
           keep=draw(st.booleans()) or end == "invalid")
    for n, (size, price) in enumerate(zip(sizes, prices, strict=True)):
        cum += size
        notional += size * price
        fills.append(fill(f"f{i}-{n}", oid, size, str(price), ext=with_ext(), ts=n))
        last = n == len(sizes) - 1
        update(OrderState.FILLED if end == "filled" and last else OrderState.OPEN,
               keep=draw(st.booleans()) or (last and end in ("filled", "open")))
    if end == "cancelled":
        update(OrderState.CANCELLED)
    if end == "open" and not sizes:
        update(OrderState.OPEN)
    if outcome == "unknown":
        # the settlement query answers by client id
        final = updates[-1]
        updates[-1] = upd(oid, final.state, final.deal_vol, str(final.deal_avg_price), vol=vol,
                          ext=ext, version=final.version, ms=final.update_ms)
    dupes = draw(st.lists(st.sampled_from(updates + fills), max_size=3)) if fills else []

    status = {
        "filled": OrderStatus.FILLED, "cancelled": OrderStatus.CANCELLED,
        "invalid": OrderStatus.INVALID,
        "open": OrderStatus.PARTIALLY_FILLED if sizes else OrderStatus.OPEN,
    }[end]
    avg = notional / cum if cum else None
    return History(ext, oid, vol, local, updates + fills + dupes, status, Decimal(cum), avg, oid)


def deliver(batch: list[History], rng: random.Random) -> list[object]:
    """One plausible delivery order for a batch of order histories."""
    streams = []
    for h in batch:
        exchange = list(h.exchange)
        rng.shuffle(exchange)
        local = list(h.local)
        tail = []
        while local or exchange:  # merge, keeping the local chain in order
            pool = local if local and (not exchange or rng.random() < 0.5) else exchange
            tail.append(pool.pop(0))
        streams.append([req(h.ext, vol=h.vol), sent(h.ext), *tail])
    out: list[object] = []
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        out.append(stream.pop(0))
    return out


batches = st.integers(1, 3).flatmap(lambda n: st.tuples(*(history(i) for i in range(n))))


@settings(max_examples=200, deadline=None)
@given(batches, st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_every_interleaving_projects_the_same_consistent_orders(
    batch: tuple[History, ...], rng1: random.Random, rng2: random.Random
):
    one = project(State(), deliver(list(batch), rng1))
    two = project(State(), deliver(list(batch), rng2))
    assert len(one.orders) == len(batch)
    for h in batch:
        a, b = one.view().order(h.ext), two.view().order(h.ext)
        assert a is not None and b is not None
        assert to_data(a) == to_data(b)
        assert (a.status, a.filled_vol, a.avg_price, a.order_id) == (
            h.status, h.filled, h.avg, h.order_id)
        if h.order_id is not None:
            assert one.view().order_by_id(h.order_id) is a
        assert (a in one.view().open_orders()) is not a.is_terminal
    view = one.view()
    for symbol in {o.symbol for o in view.orders()} | {None, "NOSUCH_USDT"}:
        assert view.open_order_count(symbol) == len(view.open_orders(symbol))
