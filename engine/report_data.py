"""What a session report shows, gathered in one streaming pass (shell: reads the journal).

:func:`collect` folds the session's rows in seq order with the code start-up, replay and
audit use (the adapter's ``interpret`` and :func:`engine.projections.apply`, from the state
the earlier sessions left) and samples what the charts need as it goes: equity and PnL,
positions, prices, fills, intent-to-answer latencies, and the anomalies
:func:`engine.audit.anomalies` finds (it drives the read; each row is decoded once for both).
Memory stays bounded whatever the session's length: every time series is
kept by a :class:`Sampler` (first, lowest, highest and last value of each of a fixed number of
time buckets), fill markers and anomaly rows are capped (their totals are still counted), and
only per-order facts (statuses, latencies) grow with the number of orders.
"""

from __future__ import annotations

from array import array
from collections import Counter, deque
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
from attrs import define, field

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import PLACE_ENDPOINTS
from adapters.mexc.interpret import interpret as mexc_interpret
from engine.audit import AnomalyRow, anomalies
from engine.events import (
    CommandDenied,
    Connected,
    Disconnected,
    Event,
    OrderRequested,
    Row,
)
from engine.journal import Journal, SessionInfo, VerifyResult
from engine.model import (
    BalanceUpdate,
    BookDelta,
    BookSnapshot,
    FairPrice,
    Fill,
    OrderUpdate,
    PositionType,
    PositionUpdate,
    Ticker,
    Trade,
)
from engine.projections import State, apply

__all__ = ["MAX_ANOMALY_ROWS", "MAX_FILL_MARKS", "FillMark", "ReportData", "Sampler",
           "collect"]

Interpret = Callable[[Row], Sequence[Any]]
Progress = Callable[[str, int, int], None]
BUCKETS: Final = 500
"""Time buckets a series; each keeps at most four points, so a line has at most 2000."""
MAX_FILL_MARKS: Final = 2000
MAX_ANOMALY_ROWS: Final = 300
MAX_ANOMALY_MARKS: Final = 400
PROGRESS_EVERY: Final = 20_000
_DECODE_ERRORS: Final = (DecodeError,)


class Sampler:
    """A time series reduced to the first, min, max and last point of each time bucket.

    Lines drawn from it keep every spike and every level change a screen could show (the
    "M4" reduction), in O(buckets) memory however many points are added.
    """

    __slots__ = ("_buckets", "_n", "_t0", "_width", "count")

    def __init__(self, t0_ns: int, t1_ns: int, buckets: int = BUCKETS) -> None:
        self._t0 = t0_ns
        self._n = buckets
        self._width = max(t1_ns - t0_ns, 1) / buckets
        self._buckets: dict[int, list[Any]] = {}
        self.count = 0

    def add(self, t_ns: int, value: float) -> None:
        """Record ``value`` at ``t_ns`` (times outside the range go to the edge buckets)."""
        self.count += 1
        i = min(max(int((t_ns - self._t0) / self._width), 0), self._n - 1)
        b = self._buckets.get(i)
        if b is None:
            self._buckets[i] = [t_ns, value, t_ns, value, t_ns, value, t_ns, value]
            return
        if value < b[3]:
            b[2], b[3] = t_ns, value
        if value > b[5]:
            b[4], b[5] = t_ns, value
        b[6], b[7] = t_ns, value

    def points(self) -> list[tuple[int, float]]:
        """The kept points in time order (at most four a bucket)."""
        out: list[tuple[int, float]] = []
        for i in sorted(self._buckets):
            b = self._buckets[i]
            for j in sorted((0, 2, 4, 6), key=lambda k: (b[k], k)):
                point = (b[j], b[j + 1])
                if not out or out[-1] != point:
                    out.append(point)
        return out

    @property
    def last(self) -> float | None:
        """The most recent value added."""
        if not self._buckets:
            return None
        return float(self._buckets[max(self._buckets)][7])

    @property
    def first(self) -> float | None:
        """The first value added."""
        if not self._buckets:
            return None
        return float(self._buckets[min(self._buckets)][1])


@define
class FillMark:
    """One fill, for the price chart."""

    t_ns: int
    symbol: str
    price: float
    vol: str
    is_buy: bool
    fee: str
    side: str
    is_taker: bool


def _sampler_factory(t0: int, t1: int) -> Callable[[], Sampler]:
    return lambda: Sampler(t0, t1)


@define
class ReportData:
    """Everything the report renders, for one session."""

    path: str
    session: SessionInfo
    sessions_in_journal: int
    chain: VerifyResult
    t0_ns: int
    t1_ns: int
    symbols: list[str] = field(factory=list)
    by_source: Counter[str] = field(factory=Counter)
    by_kind: Counter[str] = field(factory=Counter)
    undecodable: int = 0
    equity: dict[str, Sampler] = field(factory=dict)
    realised: Sampler | None = None
    positions: dict[tuple[str, str], Sampler] = field(factory=dict)
    prices: dict[tuple[str, str], Sampler] = field(factory=dict)
    fills: list[FillMark] = field(factory=list)
    fills_total: int = 0
    fill_stride: int = 1
    fill_vol: Decimal = Decimal(0)
    fees: dict[str, Decimal] = field(factory=dict)
    fill_profit: Decimal = Decimal(0)
    maker_fills: int = 0
    latencies_ms: array[float] = field(factory=lambda: array("d"))
    round_trips_ms: array[float] = field(factory=lambda: array("d"))
    unanswered: int = 0
    anomaly_counts: Counter[str] = field(factory=Counter)
    anomaly_rows: list[AnomalyRow] = field(factory=list)
    anomaly_marks: dict[str, list[tuple[int, str]]] = field(factory=dict)
    outages: list[tuple[int, int, str]] = field(factory=list)
    order_status: Counter[str] = field(factory=Counter)
    orders_total: int = 0
    realised_final: Decimal = Decimal(0)
    balances_final: dict[str, dict[str, str]] = field(factory=dict)

    @property
    def duration_s(self) -> float:
        """From the session's first row to its last, in seconds."""
        return max(self.t1_ns - self.t0_ns, 0) / 1e9

    @property
    def answered(self) -> int:
        """Orders placed whose placement got an answer (the latency histogram's total)."""
        return len(self.latencies_ms)


def _row_at(journal: Journal, seq: int | None) -> Event | None:
    if seq is None:
        return None
    return next(iter(journal.read(from_seq=seq, to_seq=seq)), None)


def _equity_of(b: BalanceUpdate) -> float:
    if b.equity is not None:
        return float(b.equity)
    return float(b.available + b.frozen + b.position_margin + (b.unrealized or 0))


class _Collector:
    """The per-row work of :func:`collect` (one instance per report)."""

    def __init__(self, data: ReportData, state: State, info: SessionInfo,
                 progress: Progress | None) -> None:
        self.d = data
        self.state = state
        self.session = info
        self.progress = progress
        self.last_seq: int | None = None
        self.rows = 0
        self.view = state.view()
        self.new = _sampler_factory(data.t0_ns, data.t1_ns)
        self.intents: dict[str, int] = {}
        self.realised_by_position: dict[str, Decimal] = {}
        self.realised = Decimal(0)
        self.seen_fills: set[tuple[str, str]] = set()
        self.touched: dict[tuple[str, str], None] = {}
        self.down_since: dict[str, tuple[int, str]] = {}
        self.recent_gaps: deque[str] = deque(maxlen=64)
        self.mark_slots: dict[str, set[int]] = {}

    def series(self, table: dict[Any, Sampler], key: Any) -> Sampler:
        s = table.get(key)
        if s is None:
            s = table[key] = self.new()
        return s

    def row(self, ev: Row, values: Sequence[Any] | None) -> None:
        """Fold one row (``values`` None: undecodable); sample it when it is the session's.

        Rows before the session's first seq are the earlier sessions' (read as
        :class:`~engine.events.Fact` by the rebuild of the state the session started from).
        """
        if self.last_seq is not None and ev.seq <= self.last_seq:
            return  # seen already
        self.last_seq = ev.seq
        for v in values or ():
            apply(self.state, v)
        info, progress = self.session, self.progress
        if ev.seq < (info.first_seq or 0):  # an earlier session: only its end state matters
            if progress is not None and ev.seq % PROGRESS_EVERY == 0 and info.first_seq:
                progress("folding earlier sessions", ev.seq, info.first_seq - 1)
            return
        self.rows += 1
        if progress is not None and self.rows % PROGRESS_EVERY == 0:
            progress("reading session", self.rows, info.events)
        d = self.d
        d.by_source[ev.source] += 1
        d.by_kind[ev.kind] += 1
        if values is None:
            d.undecodable += 1
            return
        t = ev.ts_ns
        books: set[str] = set()
        for v in values:
            if isinstance(v, BookDelta | BookSnapshot):
                books.add(v.symbol)
            elif isinstance(v, Trade):
                self.series(d.prices, (v.symbol, "last")).add(t, float(v.price))
            elif isinstance(v, Ticker):
                self.series(d.prices, (v.symbol, "last")).add(t, float(v.last_price))
                if v.fair_price is not None:
                    self.series(d.prices, (v.symbol, "fair")).add(t, float(v.fair_price))
            elif isinstance(v, FairPrice):
                self.series(d.prices, (v.symbol, "fair")).add(t, float(v.price))
            elif isinstance(v, BalanceUpdate):
                bal = self.view.balance(v.currency)
                if bal is not None:
                    self.series(d.equity, v.currency).add(t, _equity_of(bal))
            elif isinstance(v, PositionUpdate):
                self._position(v, t)
            elif isinstance(v, Fill):
                self._fill(v, t)
                self.touched[("x", v.external_oid) if v.external_oid else ("i", v.order_id)] = None
            elif isinstance(v, OrderUpdate):
                self.touched[("x", v.external_oid) if v.external_oid else ("i", v.order_id)] = None
            elif isinstance(v, OrderRequested):
                self.intents[v.command.external_oid] = t
                self.touched[("x", v.command.external_oid)] = None
            elif isinstance(v, CommandDenied):
                self.intents.pop(v.key, None)
            elif isinstance(v, Disconnected):
                self.down_since.setdefault(_conn_name(v.conn_id), (t, f"{v.conn_id}: {v.reason}"))
            elif isinstance(v, Connected):
                down = self.down_since.pop(_conn_name(v.conn_id), None)
                if down is not None and len(d.outages) < MAX_ANOMALY_MARKS:
                    d.outages.append((down[0], t, down[1]))
        for symbol in books:  # once a row: a REST page of commits holds hundreds of deltas
            self._mid(symbol, t)
        if ev.source == "rest" and ev.stream in self.intents:
            self._answer(ev)

    def _mid(self, symbol: str, t: int) -> None:
        book = self.state.books.get(symbol)
        if book is None:
            return
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            self.series(self.d.prices, (symbol, "mid")).add(t, float(bid[0] + ask[0]) / 2)

    def _position(self, v: PositionUpdate, t: int) -> None:
        d = self.d
        for kind in (PositionType.LONG, PositionType.SHORT):
            p = self.view.position(v.symbol, kind)
            if p is not None or kind is v.position_type:
                hold = float(p.hold_vol) if p is not None else 0.0
                self.series(d.positions, (v.symbol, kind.name.lower())).add(t, hold)
        held = self.view.position(v.symbol, v.position_type)
        if held is not None and held.position_id == v.position_id:
            old = self.realised_by_position.get(v.position_id, Decimal(0))
            self.realised_by_position[v.position_id] = held.realised
            self.realised += held.realised - old
            if d.realised is None:
                d.realised = self.new()
            d.realised.add(t, float(self.realised))
        if v.symbol not in d.symbols:
            d.symbols.append(v.symbol)

    def _fill(self, v: Fill, t: int) -> None:
        d = self.d
        key = (v.order_id, v.fill_id)
        if key in self.seen_fills:
            return
        self.seen_fills.add(key)
        d.fills_total += 1
        d.fill_vol += v.vol
        cur = v.fee_currency or "?"
        d.fees[cur] = d.fees.get(cur, Decimal(0)) + v.fee
        d.fill_profit += v.profit
        d.maker_fills += not v.is_taker
        if (d.fills_total - 1) % d.fill_stride == 0:
            d.fills.append(FillMark(t, v.symbol, float(v.price), str(v.vol), v.side.is_buy,
                                    str(v.fee), v.side.name.lower(), v.is_taker))
            if len(d.fills) > MAX_FILL_MARKS:  # keep every other one, and half as many from now
                d.fills = d.fills[::2]
                d.fill_stride *= 2
        if v.symbol not in d.symbols:
            d.symbols.append(v.symbol)

    def _answer(self, ev: Row) -> None:
        try:
            rec = orjson.loads(ev.body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(rec, dict) or (rec.get("endpoint") or ev.kind[5:]) not in PLACE_ENDPOINTS:
            return
        assert ev.stream is not None
        self.d.latencies_ms.append((ev.ts_ns - self.intents.pop(ev.stream)) / 1e6)
        sent, got = rec.get("sent_ns"), rec.get("received_ns")
        if isinstance(sent, int) and isinstance(got, int):
            self.d.round_trips_ms.append((got - sent) / 1e6)

    def anomaly(self, a: AnomalyRow) -> None:
        d = self.d
        if a.kind == "gap":  # the fold's finding and the engine's journaled record of one gap
            key = a.detail.removesuffix(" (journaled)")
            if key in self.recent_gaps:
                return
            self.recent_gaps.append(key)
        d.anomaly_counts[a.kind] += 1
        if len(d.anomaly_rows) < MAX_ANOMALY_ROWS:
            d.anomaly_rows.append(a)
        # one mark a pixel column and kind is all a timeline can show
        slot = int((a.ts_ns - d.t0_ns) * 1000 / max(d.t1_ns - d.t0_ns, 1))
        slots = self.mark_slots.setdefault(a.kind, set())
        marks = d.anomaly_marks.setdefault(a.kind, [])
        if slot not in slots and len(marks) < MAX_ANOMALY_MARKS:
            slots.add(slot)
            marks.append((a.ts_ns, f"seq {a.seq}: {a.detail}"))

    def finish(self) -> None:
        d = self.d
        if self.progress is not None:
            self.progress("reading session", self.rows, self.session.events)
        for start, detail in self.down_since.values():  # never reconnected
            if start < d.t1_ns:
                d.outages.append((start, d.t1_ns, detail))
        d.unanswered = len(self.intents)
        d.realised_final = self.realised
        for kind, name in self.touched:
            order = self.view.order(name) if kind == "x" else self.view.order_by_id(name)
            if order is not None:
                d.order_status[str(order.status)] += 1
                d.orders_total += 1
        for cur in self.state.balances.currencies():
            b = self.state.balances.get(cur)
            if b is not None and cur in d.equity:
                d.balances_final[cur] = {
                    "available": str(b.available), "frozen": str(b.frozen),
                    "position_margin": str(b.position_margin),
                    "equity": str(b.equity if b.equity is not None else _equity_of(b))}


def _conn_name(conn_id: str) -> str:
    """``md0`` of ``md0.3``: a connection's name without its attempt number."""
    return conn_id.rsplit(".", 1)[0]


def collect(journal: Journal, info: SessionInfo, *, chain: VerifyResult,
            interpret: Interpret = mexc_interpret,
            progress: Progress | None = None) -> ReportData:
    """Stream session ``info`` of ``journal`` once and gather what the report shows.

    :func:`engine.audit.anomalies` drives the read: it decodes every row of the journal up
    to the session's end, in seq order, through the ``interpret`` it is given, and this
    passes it one that also hands each row and its values to the collector. Every row is
    decoded once for both (decoding is most of the cost of a fold); rows of earlier
    sessions only build the state the session started from.
    """
    first, last = _row_at(journal, info.first_seq), _row_at(journal, info.last_seq)
    t0 = first.ts_ns if first is not None else info.started_ns
    t1 = last.ts_ns if last is not None else t0
    data = ReportData(path=str(journal.path), session=info,
                      sessions_in_journal=len(journal.sessions()), chain=chain,
                      t0_ns=t0, t1_ns=max(t1, t0))
    data.symbols.extend(_meta_symbols(info))
    col = _Collector(data, State(), info, progress)

    def tap(ev: Row) -> Sequence[Any]:
        try:
            values = interpret(ev)
        except (*_DECODE_ERRORS, ValueError):  # JournalDecodeError is a ValueError
            col.row(ev, None)
            raise
        col.row(ev, values)
        return values

    for found in anomalies(journal, session=info.id, interpret=tap):
        col.anomaly(found)
    col.finish()
    return data


def _meta_symbols(info: SessionInfo) -> list[str]:
    try:
        meta = orjson.loads(info.meta or "{}")
    except orjson.JSONDecodeError:
        return []
    symbols = meta.get("symbols") if isinstance(meta, dict) else None
    return [s for s in symbols if isinstance(s, str)] if isinstance(symbols, list) else []
