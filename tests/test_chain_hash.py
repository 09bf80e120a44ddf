"""The hash chain's fast paths compute exactly the documented encoding (docs/journal.md)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import GENESIS_HASH, chain_checker, chain_hash
from engine.model import BookDelta, TakerSide, Trade
from engine.projections import MARKET_TYPES, State, project, project_except


def _f(value: Any) -> bytes:
    if value is None:
        return b"N;"
    raw = str(value).encode()
    return b"S" + str(len(raw)).encode() + b":" + raw + b";"


def _reference(prev: str, *fields: Any) -> str:
    """hash = sha256(prev_hash_hex || f(seq) f(session) ... f(body)), spelled out."""
    return hashlib.sha256(prev.encode() + b"".join(_f(v) for v in fields)).hexdigest()


_text = st.text(alphabet=st.sampled_from(["a", "Z", "0", ";", ":", "S", "N", "é", "中", "\x00"]),
                max_size=6)
_ascii = st.text(alphabet="aZ0;:SN", max_size=6)
_any = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), _text, _ascii, st.floats(),
                 st.booleans(), st.binary(max_size=3))
_ints = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=500, deadline=None)
@given(prev=st.one_of(st.just(GENESIS_HASH), _ascii, _text),
       seq=st.one_of(_ints, _any), session=st.one_of(_ascii, _any),
       ts_ns=st.one_of(_ints, _any), venue=_any, source=st.one_of(_ascii, _any),
       kind=st.one_of(_ascii, _any), stream=_any, cause=_any, body=st.one_of(_ascii, _any))
def test_chain_hash_is_the_documented_encoding(prev, seq, session, ts_ns, venue, source, kind,
                                               stream, cause, body) -> None:
    fields = (seq, session, ts_ns, venue, source, kind, stream, cause, body)
    assert chain_hash(prev, *fields) == _reference(prev, *fields)


_row = st.tuples(_ascii, st.integers(0, 2**63 - 1), st.one_of(st.none(), _ints),
                 _ascii, _ascii, st.one_of(st.none(), _ascii, _text), st.one_of(st.none(), _ints),
                 st.one_of(_ascii, _text))


@settings(max_examples=300, deadline=None)
@given(first=st.integers(-3, 10**9), prev=st.one_of(st.just(GENESIS_HASH), _ascii),
       fields=st.lists(_row, max_size=8), data=st.data())
def test_chain_checker_finds_the_first_bad_row(first, prev, fields, data) -> None:
    rows: list[tuple[Any, ...]] = []
    h = prev
    for i, f in enumerate(fields):
        h = _reference(h, first + i, *f)
        rows.append((first + i, *f, h))
    check = chain_checker()
    assert check(prev, first, rows) == len(rows)
    if rows:
        i = data.draw(st.integers(0, len(rows) - 1), label="bad row")
        column = data.draw(st.sampled_from([0, 1, 2, 8, 9]), label="column")
        bad = list(rows[i])
        bad[column] = bad[column] + 1 if column in (0, 2) else bad[column] + "x"
        rows[i] = tuple(bad)
        assert check(prev, first, rows) == i


def test_project_except_counts_what_it_skips() -> None:
    delta = BookDelta("BTC_USDT", 5, ((Decimal(2), Decimal(1), 1),), (), 1, None, None)
    trade = Trade("BTC_USDT", Decimal(1), Decimal(2), TakerSide.BUY, 1)
    assert type(delta) in MARKET_TYPES and type(trade) in MARKET_TYPES
    skipped = project_except(State(), [delta, trade], MARKET_TYPES)
    assert skipped.applied == 2
    assert skipped.books.get("BTC_USDT") is None and skipped.market.get("BTC_USDT") is None
    assert project_except(State(), [delta, trade], ()) == project(State(), [delta, trade])
