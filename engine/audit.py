"""Post-mortem audit of a journal: state as of a seq, order timelines, anomalies, exports
(shell: reads the journal, writes export files).

Everything here streams the journal in seq order and folds it with the same code live
start-up uses (:func:`engine.rebuild.fold_rows` over the adapter's ``interpret``), so "the
state as of seq N" is exactly the fold of the first N rows, and an audit of a journal copied
to another machine sees what the engine saw.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

import orjson
from attrs import frozen

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret as mexc_interpret
from engine.errors import EngineError
from engine.events import (
    BookGapDetected,
    BookResynced,
    Connected,
    DecodeFailed,
    Disconnected,
    Event,
    KillSwitchTripped,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequested,
    ReconcileDifference,
    Row,
    StrategyFailed,
)
from engine.journal import Journal, SessionInfo
from engine.model import BookDelta, BookSnapshot, Fill, OrderUpdate
from engine.projections import State, apply
from engine.rebuild import rebuild_state
from engine.replay import Until
from engine.state_report import ORDER_COLUMNS, order_row, plain, state_tables

__all__ = [
    "EVENT_TYPES",
    "EXPORT_FORMATS",
    "EXPORT_KINDS",
    "FILL_TYPES",
    "ORDER_TYPES",
    "AnomalyRow",
    "AuditError",
    "Progress",
    "Timeline",
    "TimelineEntry",
    "anomalies",
    "export",
    "resolve_at",
    "state_at",
    "timeline",
]

Interpret = Callable[[Row], Sequence[Any]]
EXPORT_KINDS: Final = ("fills", "orders", "events")
EXPORT_FORMATS: Final = ("csv", "jsonl", "parquet")
_DECODE_ERRORS: Final = (DecodeError,)
_RATE_LIMIT_CODES: Final = frozenset({510, 2037})
_FILL_KINDS: Final = ("ws.push.personal.order.deal", "rest.order_deals", "rest.order_deal_details")
EVENT_COLUMNS: Final = ("seq", "session", "ts_ns", "venue_ts_ms", "source", "kind", "stream",
                        "cause", "body", "hash")
FILL_COLUMNS: Final = ("seq", "session", "ts_ns", "symbol", "order_id", "external_oid",
                       "fill_id", "side", "vol", "price", "fee", "fee_currency", "profit",
                       "is_taker", "fill_ts_ms")
# The type of each export column in parquet: ``int64`` (seqs, ns/ms times, counts), ``bool``,
# ``string`` (text, enums, and MEXC's ids, which the model keeps as strings), and ``decimal``
# (prices, sizes, money): the exact decimal string, as csv and jsonl write it, stored as a
# parquet string. Every column may be null.
EVENT_TYPES: Final[Mapping[str, str]] = {
    "seq": "int64", "session": "string", "ts_ns": "int64", "venue_ts_ms": "int64",
    "source": "string", "kind": "string", "stream": "string", "cause": "int64",
    "body": "string", "hash": "string"}
FILL_TYPES: Final[Mapping[str, str]] = {
    "seq": "int64", "session": "string", "ts_ns": "int64", "symbol": "string",
    "order_id": "string", "external_oid": "string", "fill_id": "string", "side": "string",
    "vol": "decimal", "price": "decimal", "fee": "decimal", "fee_currency": "string",
    "profit": "decimal", "is_taker": "bool", "fill_ts_ms": "int64"}
ORDER_TYPES: Final[Mapping[str, str]] = {  # the columns are state_report.ORDER_COLUMNS
    "external_oid": "string", "order_id": "string", "symbol": "string", "side": "string",
    "type": "string", "price": "decimal", "vol": "decimal", "status": "string",
    "filled_vol": "decimal", "avg_price": "decimal", "fees": "decimal", "fills": "int64",
    "reason": "string"}
_EXPORT_TYPES: Final[Mapping[str, Mapping[str, str]]] = {
    "events": EVENT_TYPES, "fills": FILL_TYPES, "orders": ORDER_TYPES}
_PARQUET_BATCH_ROWS: Final = 10_000


class AuditError(EngineError):
    """An audit question cannot be answered (no such order, seq out of range, ...)."""


def _session(journal: Journal, session: str | None) -> SessionInfo | None:
    return journal.session(session) if session else None


# --------------------------------------------------------------------------- state as of


def resolve_at(journal: Journal, at: Until, *, session: str | None = None) -> int:
    """The seq ``at`` names: a seq (checked against the journal, or the session), or the
    last row (of the session) whose ``ts_ns`` is not after the time."""
    info = _session(journal, session)
    last = journal.info().last_seq if info is None else info.last_seq
    first = 1 if info is None else info.first_seq
    if last is None or first is None:
        raise AuditError(f"{journal.path}: no events{'' if info is None else ' in ' + info.id}")
    if at.seq is not None:
        if not first <= at.seq <= last:
            where = "the journal" if info is None else f"session {info.id}"
            raise AuditError(f"seq {at.seq} is outside {where} (seq {first}..{last})")
        return at.seq
    assert at.ts_ns is not None
    found: int | None = None
    for ev in journal.read(session=None if info is None else info.id):
        if ev.ts_ns > at.ts_ns:
            break
        found = ev.seq
    if found is None:
        raise AuditError(f"no event at or before ts_ns {at.ts_ns}")
    return found


def state_at(journal: Journal, seq: int, *, interpret: Interpret = mexc_interpret) -> State:
    """The projections as they were after row ``seq``: the fold of the journal's prefix."""
    return rebuild_state(journal, interpret, to_seq=seq, decode_errors=_DECODE_ERRORS)[0]


# --------------------------------------------------------------------------- timelines


@frozen
class TimelineEntry:
    """One row of an order's story; ``status`` is the order's projected status after it,
    when it changed; ``since_intent_ms`` the time since the intent."""

    seq: int
    ts_ns: int
    kind: str
    what: str
    since_intent_ms: float | None
    status: str | None


@frozen
class Timeline:
    """Everything the journal says about one order, in seq order."""

    key: str
    external_oid: str | None
    order_id: str | None
    entries: tuple[TimelineEntry, ...]


def _record(ev: Event) -> dict[str, Any]:
    try:
        rec = orjson.loads(ev.body)
    except orjson.JSONDecodeError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _envelope_code(record: dict[str, Any]) -> int | None:
    try:
        env = orjson.loads(record.get("body") or "")
    except (orjson.JSONDecodeError, TypeError):
        return None
    code = env.get("code") if isinstance(env, dict) else None
    return code if isinstance(code, int) else None


def _values(ev: Event, interpret: Interpret) -> Sequence[Any]:
    try:
        return interpret(ev)
    except (DecodeError, ValueError):
        return ()


def _mentions(value: Any, ext: str | None, oid: str | None) -> bool:
    if isinstance(value, OrderUpdate | Fill):
        return (ext is not None and value.external_oid == ext) or (
            oid is not None and value.order_id == oid)
    return False


def _identify(journal: Journal, key: str, interpret: Interpret) -> tuple[str | None, str | None]:
    """(external_oid, order_id) of the order ``key`` names."""
    ext = None
    if next(iter(journal.read(stream=key, limit=1)), None) is not None:
        ext = key
    for ev in journal.read(kind_prefix="ws.push.personal.order"):
        if key not in ev.body:
            continue
        for v in _values(ev, interpret):
            if isinstance(v, OrderUpdate | Fill) and key in (v.order_id, v.external_oid):
                return v.external_oid or ext, v.order_id
    if ext is not None:
        for ev in journal.read(stream=ext):
            for v in _values(ev, interpret):
                if isinstance(v, OrderAccepted):
                    return ext, v.order_id
        return ext, None
    for ev in journal.read(kind_prefix="rest.order_"):
        if key in ev.body:
            for v in _values(ev, interpret):
                if isinstance(v, OrderAccepted) and v.order_id == key:
                    return v.external_oid, key
    raise AuditError(f"{journal.path}: no order with externalOid or orderId {key!r}")


def _describe(ev: Event, values: Sequence[Any]) -> str:
    if ev.source == "rest":
        rec = _record(ev)
        latency = (rec.get("received_ns", 0) - rec.get("sent_ns", 0)) / 1e6
        code = _envelope_code(rec)
        extra = "".join(f"; {type(v).__name__} {getattr(v, 'order_id', '')}".rstrip()
                        for v in values if isinstance(v, OrderAccepted | OrderRejected |
                                                        OrderOutcomeUnknown))
        return (f"REST {rec.get('endpoint', ev.kind[5:])} answer: HTTP {rec.get('status')}, "
                f"code {code}, latency {latency:.1f} ms{extra}")
    for v in values:
        if isinstance(v, OrderRequested):
            c = v.command
            return (f"intent: {plain(c.side)} {c.vol} @ {c.price} {plain(c.order_type)} "
                    f"(lev {c.leverage})")
        if isinstance(v, OrderUpdate):
            return (f"WS order update: {plain(v.state)}, dealt {v.deal_vol}/{v.vol} @ "
                    f"{v.deal_avg_price}, version {v.version}, errorCode {v.error_code}")
        if isinstance(v, Fill):
            return (f"WS fill {v.fill_id}: {v.vol} @ {v.price}, fee {v.fee}, "
                    f"{'taker' if v.is_taker else 'maker'}")
    if ev.kind == "risk.accepted":
        return "risk: accepted"
    body = _record(ev)
    if ev.kind == "risk.denied":
        return f"risk: denied: {body.get('reason')}"
    if ev.kind == "cmd.issued":
        cmd = body.get("command", {})
        return f"intent: {cmd.get('type')} {canonical(cmd)}"
    return f"{ev.kind}: {ev.body[:160]}"


def canonical(data: Any) -> str:
    """Compact JSON of ``data`` without its ``type`` tag (for short descriptions)."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "type" and v is not None}
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def timeline(journal: Journal, key: str, *, interpret: Interpret = mexc_interpret) -> Timeline:
    """The story of the order ``key`` names (externalOid or orderId): intent, risk verdict,
    REST request and answer, WS updates, fills, and the projected status after each."""
    ext, oid = _identify(journal, key, interpret)
    seqs: set[int] = set()
    if ext is not None:
        seqs.update(ev.seq for ev in journal.read(stream=ext))
    for ev in journal.read(kind_prefix="ws.push.personal.order"):
        named = (ext is not None and ext in ev.body) or (oid is not None and oid in ev.body)
        if named and any(_mentions(v, ext, oid) for v in _values(ev, interpret)):
            seqs.add(ev.seq)
    if not seqs:
        raise AuditError(f"{journal.path}: no rows for order {key!r}")
    last = max(seqs)
    entries: list[TimelineEntry] = []
    state = State()
    view = state.view()
    intent_ns: int | None = None
    status: tuple[str, str] | None = None
    for ev in journal.read(to_seq=last):
        values = _values(ev, interpret)
        for v in values:
            apply(state, v)
        if ev.seq not in seqs:
            continue
        if ev.kind == "cmd.place_order" and intent_ns is None:
            intent_ns = ev.ts_ns
        order = (view.order(ext) if ext is not None else None) or (
            view.order_by_id(oid) if oid is not None else None)
        now = None if order is None else (str(order.status), str(order.filled_vol))
        changed = now is not None and now != status
        status = now if now is not None else status
        entries.append(TimelineEntry(
            seq=ev.seq, ts_ns=ev.ts_ns, kind=ev.kind, what=_describe(ev, values),
            since_intent_ms=None if intent_ns is None else (ev.ts_ns - intent_ns) / 1e6,
            status=f"{now[0]} (filled {now[1]})" if changed and now is not None else None))
    return Timeline(key, ext, oid, tuple(entries))


# --------------------------------------------------------------------------- anomalies


@frozen
class AnomalyRow:
    """Something an operator should look at, at ``seq``."""

    seq: int
    ts_ns: int
    session: str
    kind: str
    detail: str


def _row_anomalies(ev: Event, values: Sequence[Any], disconnected: set[str]) -> Iterator[
        tuple[str, str]]:
    for v in values:
        if isinstance(v, BookGapDetected):
            yield "gap", f"{v.symbol}: expected version {v.expected}, got {v.got} (journaled)"
        elif isinstance(v, BookResynced):
            yield "resync", f"{v.symbol} resynced by {v.how} at version {v.version}"
        elif isinstance(v, Disconnected):
            disconnected.add(ev.session)
            yield "disconnect", f"{v.conn_id}: {v.reason}"
        elif isinstance(v, Connected) and ev.session in disconnected:
            yield "reconnect", f"{v.conn_id} to {v.url}"
        elif isinstance(v, DecodeFailed):
            yield "decode_error", f"{v.kind}: {v.error}"
        elif isinstance(v, OrderOutcomeUnknown):
            yield "unknown_outcome", f"{v.external_oid}: {v.reason}"
        elif isinstance(v, KillSwitchTripped):
            yield "kill_switch", v.reason
        elif isinstance(v, ReconcileDifference):
            yield "reconcile_difference", f"{v.what} {v.key}: {v.detail}"
        elif isinstance(v, StrategyFailed):
            yield "strategy_failed", v.reason
    if ev.source == "rest":
        rec = _record(ev)
        status, code = rec.get("status"), _envelope_code(rec)
        if status == 429 or code in _RATE_LIMIT_CODES:
            yield "rate_limit", f"{rec.get('endpoint')}: HTTP {status}, code {code}"
        elif isinstance(status, int) and status >= 500:
            yield "http_error", f"{rec.get('endpoint')}: HTTP {status}"


def anomalies(journal: Journal, *, session: str | None = None,
              interpret: Interpret = mexc_interpret) -> Iterator[AnomalyRow]:
    """Gaps, resyncs, disconnects and reconnects, rate-limit hits, decode errors, unknown
    outcomes, kill-switch trips, reconcile differences, strategy failures and the fold's own
    anomalies (``fold.<kind>``), in seq order, for the journal or one session."""
    info = _session(journal, session)
    if info is not None and info.first_seq is None:
        return
    state = State()
    if info is not None and info.first_seq is not None and info.first_seq > 1:
        state = rebuild_state(journal, interpret, to_seq=info.first_seq - 1,
                              decode_errors=_DECODE_ERRORS)[0]
    rows = journal.read(session=None if info is None else info.id)
    disconnected: set[str] = set()
    undecodable: set[int] = set()
    for ev in rows:
        try:
            values: Sequence[Any] = interpret(ev)
        except (DecodeError, ValueError) as exc:
            undecodable.add(ev.seq)
            yield AnomalyRow(ev.seq, ev.ts_ns, ev.session, "decode_error",
                             f"{ev.kind}: {str(exc)[:200]}")
            for kind, detail in _row_anomalies(ev, (), disconnected):
                yield AnomalyRow(ev.seq, ev.ts_ns, ev.session, kind, detail)
            continue
        noted = state.anomaly_count
        gaps = {s: b.gaps for v in values if isinstance(v, BookDelta | BookSnapshot)
                for s in (v.symbol,) if (b := state.books.get(s)) is not None}
        for v in values:
            apply(state, v)
        for kind, detail in _row_anomalies(ev, values, disconnected):
            if kind == "decode_error" and ev.cause in undecodable:
                continue  # the undecodable row itself was reported
            yield AnomalyRow(ev.seq, ev.ts_ns, ev.session, kind, detail)
        for sym, before in gaps.items():
            book = state.books.get(sym)
            if book is not None and book.gaps > before and book.gap is not None:
                yield AnomalyRow(ev.seq, ev.ts_ns, ev.session, "gap",
                                 f"{sym}: expected version {book.gap[0]}, got {book.gap[1]}")
        if state.anomaly_count > noted:
            for a in state.anomalies[-(state.anomaly_count - noted):]:
                yield AnomalyRow(ev.seq, ev.ts_ns, ev.session, f"fold.{a.kind}",
                                 f"{a.key} {a.detail}".strip())


# --------------------------------------------------------------------------- exports


Progress = Callable[[int, int], None]
"""``progress(done, total)``: journal rows scanned so far, of ``total`` (export, report)."""
_PROGRESS_EVERY: Final = 8192


def _tracked(events: Iterable[Event], progress: Progress | None, base: int,
             total: int) -> Iterator[Event]:
    """``events`` unchanged, telling ``progress`` the seq reached (less ``base``) now and then
    and once at the end."""
    if progress is None:
        yield from events
        return
    for n, ev in enumerate(events, 1):
        if n % _PROGRESS_EVERY == 0:
            progress(min(ev.seq - base, total), total)
        yield ev
    progress(total, total)


def _event_rows(journal: Journal, info: SessionInfo | None,
                events: Callable[..., Iterator[Event]]) -> Iterator[dict[str, Any]]:
    for ev in events(session=None if info is None else info.id):
        yield {"seq": ev.seq, "session": ev.session, "ts_ns": ev.ts_ns,
               "venue_ts_ms": ev.venue_ts_ms, "source": ev.source, "kind": ev.kind,
               "stream": ev.stream, "cause": ev.cause, "body": ev.body, "hash": ev.hash}


def _fill_rows(journal: Journal, info: SessionInfo | None, interpret: Interpret,
               events: Callable[..., Iterator[Event]]) -> Iterator[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    for ev in events(session=None if info is None else info.id, kinds=_FILL_KINDS):
        for v in _values(ev, interpret):
            if not isinstance(v, Fill) or (v.order_id, v.fill_id) in seen:
                continue
            seen.add((v.order_id, v.fill_id))
            yield {"seq": ev.seq, "session": ev.session, "ts_ns": ev.ts_ns, "symbol": v.symbol,
                   "order_id": v.order_id, "external_oid": v.external_oid,
                   "fill_id": v.fill_id, "side": plain(v.side), "vol": plain(v.vol),
                   "price": plain(v.price), "fee": plain(v.fee), "fee_currency": v.fee_currency,
                   "profit": plain(v.profit), "is_taker": v.is_taker, "fill_ts_ms": v.ts_ms}


def _order_rows(journal: Journal, info: SessionInfo | None, interpret: Interpret,
                events: Callable[..., Iterator[Event]],
                folded: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    """Every order the journal (or the session) touched, as the fold leaves it."""
    if info is None:
        state = rebuild_state(journal, interpret, decode_errors=_DECODE_ERRORS,
                              progress=folded)[0]
        yield from state_tables(state)["orders"]
        return
    state = State()
    if info.first_seq is not None and info.first_seq > 1:
        state = rebuild_state(journal, interpret, to_seq=info.first_seq - 1,
                              decode_errors=_DECODE_ERRORS, progress=folded)[0]
    touched: dict[tuple[str, str], None] = {}
    for ev in events(session=info.id):
        for v in _values(ev, interpret):
            apply(state, v)
            if isinstance(v, OrderRequested):
                touched[("x", v.command.external_oid)] = None
            elif isinstance(v, OrderUpdate | Fill):
                touched[("x", v.external_oid) if v.external_oid else ("i", v.order_id)] = None
    view = state.view()
    for kind, name in touched:
        order = view.order(name) if kind == "x" else view.order_by_id(name)
        if order is not None:
            yield order_row(order)


def export_rows(journal: Journal, what: str, *, session: str | None = None,
                interpret: Interpret = mexc_interpret, progress: Progress | None = None,
                ) -> tuple[tuple[str, ...], Iterator[dict[str, Any]]]:
    """The columns and rows of an export (``fills``, ``orders`` or ``events``).

    ``progress(done, total)`` is told how far the scan of the journal has got, in rows: an
    orders export folds everything before the session too, the others read only the session.
    """
    info = _session(journal, session)
    if progress is None:
        base = total = 0
    else:
        last = (journal.info().last_seq if info is None else info.last_seq) or 0
        base = 0 if what == "orders" or info is None or not info.first_seq else info.first_seq - 1
        total = max(last - base, 0)

    def events(**where: Any) -> Iterator[Event]:
        return _tracked(journal.read(**where), progress, base, total)

    folded: Callable[[int], None] | None = None
    if progress is not None:
        tell = progress

        def folded(n: int) -> None:
            tell(min(n, total), total)

    if what == "events":
        return EVENT_COLUMNS, _event_rows(journal, info, events)
    if what == "fills":
        return FILL_COLUMNS, _fill_rows(journal, info, interpret, events)
    if what == "orders":
        return ORDER_COLUMNS, _order_rows(journal, info, interpret, events, folded)
    raise AuditError(f"cannot export {what!r}: choose one of {', '.join(EXPORT_KINDS)}")


def _arrow_schema(columns: Sequence[str], types: Mapping[str, str]) -> Any:
    import pyarrow as pa

    arrow = {"int64": pa.int64(), "bool": pa.bool_(), "string": pa.string(),
             "decimal": pa.string()}
    return pa.schema([
        pa.field(c, arrow[types[c]], nullable=True,
                 metadata={"tapeline.type": "decimal"} if types[c] == "decimal" else None)
        for c in columns])


def _write_parquet(columns: Sequence[str], types: Mapping[str, str],
                   rows: Iterator[dict[str, Any]], out: Path) -> int:
    """Write ``rows`` to a parquet file in batches of :data:`_PARQUET_BATCH_ROWS`.

    Columns are typed by ``types`` (see :data:`EVENT_TYPES`): ``int64`` and ``bool`` natively,
    ``string`` and ``decimal`` as parquet strings. Decimals stay the exact strings csv and
    jsonl write (their fields carry ``tapeline.type=decimal`` metadata) rather than
    ``decimal128``, whose fixed precision and scale a computed value such as an average price
    may not fit. None is null. A value of the wrong type is a bug and raises.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(columns, types)
    n = 0
    with pq.ParquetWriter(str(out), schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == _PARQUET_BATCH_ROWS:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            n += len(batch)
    return n


def export(journal: Journal, what: str, fmt: str, out: IO[str] | Path, *,
           session: str | None = None, interpret: Interpret = mexc_interpret,
           progress: Progress | None = None) -> int:
    """Write an export to ``out`` (a text stream, or a path for parquet); return the rows.

    Parquet columns are typed as :data:`EVENT_TYPES`, :data:`FILL_TYPES` and
    :data:`ORDER_TYPES` say, decimals as exact strings (see :func:`_write_parquet`).
    """
    if fmt not in EXPORT_FORMATS:
        raise AuditError(f"unknown format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise AuditError("parquet export needs pyarrow, which is not installed "
                             "(pip install 'tapeline[parquet]'); use --format csv or jsonl")
        if not isinstance(out, Path):
            raise AuditError("parquet export needs an output file (-o FILE)")
    columns, rows = export_rows(journal, what, session=session, interpret=interpret,
                                progress=progress)
    if isinstance(out, Path):
        if fmt == "parquet":
            try:
                return _write_parquet(columns, _EXPORT_TYPES[what], rows, out)
            except BaseException:
                out.unlink(missing_ok=True)  # never leave a half-written file behind
                raise
        with out.open("w", newline="", encoding="utf-8") as f:
            return _write_text(columns, rows, fmt, f)
    return _write_text(columns, rows, fmt, out)


def _write_text(columns: Sequence[str], rows: Iterator[dict[str, Any]], fmt: str,
                out: IO[str]) -> int:
    n = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
        return n
    for row in rows:
        out.write(orjson.dumps({c: row.get(c) for c in columns}).decode())
        out.write("\n")
        n += 1
    return n

