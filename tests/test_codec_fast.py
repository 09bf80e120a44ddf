"""The codec's hand-written unstructuring is byte-identical to the cattrs converter's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec
from engine import commands as c
from engine.events import canonical_json
from engine.model import OpenType, OrderType, Side

COMMAND_TYPES = tuple(codec._COMMAND_TYPES.values())
EVENT_TYPES = tuple(codec.ENGINE_EVENT_TYPES.values())

decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("1E+2"), Decimal("-0"), Decimal("1.000"), Decimal("0.1")]),
)
maybe_int = st.none() | st.integers(-(2**40), 2**40)
place_orders = st.builds(
    c.PlaceOrder,
    symbol=st.text(max_size=12),
    side=st.sampled_from(Side),
    order_type=st.sampled_from(OrderType),
    vol=decimals,
    external_oid=st.text(max_size=40),
    price=st.none() | decimals,
    open_type=st.sampled_from(OpenType),
    leverage=maybe_int,
    position_id=st.none() | st.text(max_size=12),
    stop_loss_price=st.none() | decimals,
    take_profit_price=st.none() | decimals,
    position_mode=maybe_int,
    reduce_only=st.none() | st.booleans(),
    loss_trend=maybe_int,
    profit_trend=maybe_int,
    price_protect=maybe_int,
    stp_mode=maybe_int,
)
commands = st.one_of(place_orders, *(st.from_type(t) for t in COMMAND_TYPES))


def _reference(obj: Any) -> Any:
    if type(obj) in COMMAND_TYPES:
        return codec._CONVERTER.unstructure(obj, unstructure_as=c.Command)
    return codec._CONVERTER.unstructure(obj)


def _json(data: Any) -> str:
    try:
        return canonical_json(data)
    except TypeError as exc:  # e.g. an int beyond 64 bits: both ways fail alike
        return f"TypeError: {exc}"


def _same(obj: Any) -> None:
    ref = _reference(obj)
    assert codec.to_data(obj) == ref
    assert _json(codec.to_data(obj)) == _json(ref)


def test_every_command_and_decision_type_is_covered() -> None:
    assert set(codec._FAST) <= {*COMMAND_TYPES, *EVENT_TYPES}
    assert set(codec._FAST) == set(codec._FAST_FIELDS)


@settings(max_examples=300, deadline=None)
@given(commands)
def test_commands_unstructure_like_the_converter(cmd: Any) -> None:
    _same(cmd)


@settings(max_examples=300, deadline=None)
@given(commands, st.integers(0, 2**63 - 1))
def test_command_events_encode_like_the_converter(cmd: Any, ts_ns: int) -> None:
    from engine.events import CommandIssued, OrderRequested
    events = [CommandIssued(cmd, ts_ns)]
    if isinstance(cmd, c.PlaceOrder):
        events.append(OrderRequested(cmd, ts_ns))
    for ev in events:
        _same(ev)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_engine_event_encodes_like_the_converter(cls: type, data: st.DataObject) -> None:
    ev = data.draw(st.from_type(cls))
    _same(ev)


@settings(max_examples=200, deadline=None)
@given(place_orders.filter(lambda o: o.vol.is_finite() and o.vol > 0), st.integers(0, 2**62))
def test_decision_rows_round_trip(cmd: c.PlaceOrder, ts_ns: int) -> None:
    from engine.events import CommandAccepted, OrderRequested
    for ev in (OrderRequested(cmd, ts_ns), CommandAccepted(cmd.external_oid, ts_ns)):
        row = codec.encode(ev, stream=cmd.external_oid, cause=7)
        assert row.body == canonical_json(_reference(ev))
        assert (row.kind, row.source, row.ts_ns, row.venue_ts_ms, row.stream, row.cause) == (
            ev.KIND, ev.SOURCE, ts_ns, None, cmd.external_oid, 7)
        if all(d is None or d.is_finite() for d in (cmd.price, cmd.stop_loss_price,
                                                     cmd.take_profit_price)):
            assert codec.decode(row.kind, row.body) == ev
