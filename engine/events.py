"""The journal envelope and the engine's own event kinds (pure).

A journal row is an :class:`Event`: a fact, in arrival order, with the wire text exactly as
received (``source`` ``ws``/``rest``) or canonical JSON of an engine-made event (``engine``,
``strategy``, ``risk``). :class:`NewEvent` is the same row before the journal has given it a
``seq`` and a hash. The engine-made event types below are past-tense facts; their kinds
(``KIND`` class attributes) are the journal's ``kind`` column.

Hash chain: ``hash = sha256(prev_hash || row)`` where ``row`` is the length-prefixed
encoding of (seq, session, ts_ns, venue_ts_ms, source, kind, stream, cause, body), with 64
zeros before the first row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Final, Literal, NamedTuple, Protocol

import orjson
from attrs import frozen

from engine.commands import Command, PlaceOrder

__all__ = [
    "GENESIS_HASH",
    "SOURCES",
    "BookGapDetected",
    "BookResynced",
    "CommandAccepted",
    "CommandDenied",
    "CommandIssued",
    "Connected",
    "DecodeFailed",
    "Disconnected",
    "EngineEvent",
    "Event",
    "Fact",
    "KillSwitchTripped",
    "NewEvent",
    "OrderAccepted",
    "OrderOutcomeUnknown",
    "OrderRejected",
    "OrderRequested",
    "OrderSent",
    "ReconcileDifference",
    "Row",
    "SessionEnded",
    "SessionStarted",
    "Source",
    "StopRequested",
    "StrategyFailed",
    "TimerFired",
    "canonical_json",
    "chain_checker",
    "chain_hash",
]

Source = Literal["ws", "rest", "engine", "strategy", "risk"]
SOURCES: Final = ("ws", "rest", "engine", "strategy", "risk")
GENESIS_HASH: Final = "0" * 64


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` as compact JSON with sorted keys; Decimals become strings."""
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def _field(value: int | str | None) -> bytes:
    """Length-prefixed field encoding: ``None`` and every string stay distinct."""
    if value is None:
        return b"N;"
    raw = str(value).encode()
    return b"S%d:%s;" % (len(raw), raw)


def _chain_hash_bytes(prev_hash: str, *fields: int | str | None) -> str:
    """:func:`chain_hash` spelled out field by field (any text; the reference encoding)."""
    h = hashlib.sha256(prev_hash.encode())
    h.update(b"".join(_field(f) for f in fields))
    return h.hexdigest()


def chain_hash(
    prev_hash: str,
    seq: int,
    session: str,
    ts_ns: int,
    venue_ts_ms: int | None,
    source: str,
    kind: str,
    stream: str | None,
    cause: int | None,
    body: str,
) -> str:
    """The hash of one row given the hash of the row before it.

    Every field is length-prefixed, so no choice of field contents can make two different
    rows hash alike (NULL differs from any string, separators cannot be smuggled in).
    """
    # Fast path (journal verification and append run this once a row): the whole input as
    # one str. Its lengths are character counts, which are the UTF-8 byte counts of the
    # reference encoding exactly when the text is ASCII; any other text takes that encoding.
    if (type(seq) is int and type(ts_ns) is int and type(session) is str
            and type(source) is str and type(kind) is str and type(body) is str):
        a, c = str(seq), str(ts_ns)
        v = "N;" if venue_ts_ms is None else f"S{len(x := str(venue_ts_ms))}:{x};"
        s = "N;" if stream is None else f"S{len(y := str(stream))}:{y};"
        k = "N;" if cause is None else f"S{len(z := str(cause))}:{z};"
        text = (f"{prev_hash}S{len(a)}:{a};S{len(session)}:{session};S{len(c)}:{c};{v}"
                f"S{len(source)}:{source};S{len(kind)}:{kind};{s}{k}S{len(body)}:{body};")
        if type(prev_hash) is str and text.isascii():
            return hashlib.sha256(text.encode()).hexdigest()
    return _chain_hash_bytes(prev_hash, seq, session, ts_ns, venue_ts_ms, source, kind,
                             stream, cause, body)


def chain_checker() -> Callable[[str, int, Sequence[tuple[Any, ...]]], int]:
    """A function ``check(prev_hash, first_seq, rows)`` verifying a journal page by page.

    ``rows`` are raw journal rows as :mod:`sqlite3` returns them (values of type int, float,
    str, bytes or None), tuples ``(seq, session, ts_ns, venue_ts_ms, source, kind, stream,
    cause, body, hash)`` in seq order, that should continue a chain whose last row
    has ``prev_hash`` and seq ``first_seq - 1``. It returns how many of them do, from the first:
    ``len(rows)`` when all do, else the index of the first row whose seq is not the next one
    or whose ``hash`` is not :func:`chain_hash` of it (each row is checked against the stored
    hash of the row before it). The encoded session, source, kind and stream, which repeat
    from row to row, are kept between calls (at most :data:`_SEGMENTS_KEPT` combinations).
    """
    kept: dict[tuple[Any, ...], tuple[str, str]] = {}
    get = kept.get
    sha256 = hashlib.sha256

    def check(prev_hash: str, first_seq: int, rows: Sequence[tuple[Any, ...]]) -> int:
        prev, expected, i = prev_hash, first_seq, 0
        fast = type(prev) is str  # then so is every later prev: a stored hash equal to a digest
        for seq, session, ts_ns, venue_ts_ms, source, kind, stream, cause, body, stored in rows:
            if seq != expected:  # so seq is not None: str(seq) below is its encoding
                return i
            digest = None
            if fast and type(ts_ns) is int and type(body) is str:
                key = (session, source, kind, stream)
                segments = get(key)
                if segments is None and type(session) is str and type(source) is str and type(
                        kind) is str and (stream is None or type(stream) is str):
                    if len(kept) >= _SEGMENTS_KEPT:
                        kept.clear()
                    y = "N;" if stream is None else f"S{len(stream)}:{stream};"
                    segments = kept[key] = (f"S{len(session)}:{session};",
                                            f"S{len(source)}:{source};S{len(kind)}:{kind};{y}")
                if segments is not None:
                    a, c = str(seq), str(ts_ns)
                    v = "N;" if venue_ts_ms is None else f"S{len(x := str(venue_ts_ms))}:{x};"
                    k = "N;" if cause is None else f"S{len(z := str(cause))}:{z};"
                    text = (f"{prev}S{len(a)}:{a};{segments[0]}S{len(c)}:{c};{v}"
                            f"{segments[1]}{k}S{len(body)}:{body};")
                    if text.isascii():  # else the lengths above are not byte counts
                        digest = sha256(text.encode()).hexdigest()
            if digest is None:
                digest = chain_hash(prev, seq, session, ts_ns, venue_ts_ms, source, kind,
                                    stream, cause, body)
            if digest != stored:
                return i
            prev = stored
            expected += 1
            i += 1
        return i

    return check


_SEGMENTS_KEPT: Final = 4096


@frozen
class NewEvent:
    """A fact to append: everything of a journal row but its seq, session and hash."""

    ts_ns: int
    source: Source
    kind: str
    body: str
    venue_ts_ms: int | None = None
    stream: str | None = None
    cause: int | None = None


@frozen(slots=False)  # dict-backed: built once per row read, about twice as fast to make
class Event:
    """One committed journal row."""

    seq: int
    session: str
    ts_ns: int
    venue_ts_ms: int | None
    source: str
    kind: str
    stream: str | None
    cause: int | None
    body: str
    hash: str


class Fact(NamedTuple):
    """A journal row without its session and hash: what interpreting, folding and replaying
    it need.

    :meth:`engine.journal.Journal.read_facts` yields these for rebuilds and replays: leaving
    out the session and the hash, and building one small tuple instead of an object with a
    dict, makes a row about 40 % cheaper to read than an :class:`Event`. It has the same
    attribute names as :class:`Event`, so code written against :class:`Row` takes either.
    """

    seq: int
    ts_ns: int
    venue_ts_ms: int | None
    source: str
    kind: str
    stream: str | None
    cause: int | None
    body: str


class Row(Protocol):
    """The attributes of a stored row that interpreting and replaying read (an adapter's
    ``interpret`` takes a ``Row``). Both :class:`Event` and :class:`Fact` have them.
    """

    @property
    def seq(self) -> int: ...
    @property
    def ts_ns(self) -> int: ...
    @property
    def venue_ts_ms(self) -> int | None: ...
    @property
    def source(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def stream(self) -> str | None: ...
    @property
    def cause(self) -> int | None: ...
    @property
    def body(self) -> str: ...


# --------------------------------------------------------------------------- engine events
# Each carries the local time it was made (ts_ns) so that folds never read a clock.


@frozen
class OrderRequested:
    """A strategy asked for an order; ``command.external_oid`` names it from now on."""

    KIND: ClassVar[str] = "cmd.place_order"
    SOURCE: ClassVar[str] = "strategy"
    command: PlaceOrder
    ts_ns: int


@frozen
class CommandIssued:
    """A strategy emitted a non-placement command (cancel, leverage, margin)."""

    KIND: ClassVar[str] = "cmd.issued"
    SOURCE: ClassVar[str] = "strategy"
    command: Command
    ts_ns: int


@frozen
class CommandAccepted:
    """The risk gate let the command at ``cause`` through."""

    KIND: ClassVar[str] = "risk.accepted"
    SOURCE: ClassVar[str] = "risk"
    key: str
    ts_ns: int


@frozen
class CommandDenied:
    """The risk gate refused a command; ``key`` is its external_oid or command kind."""

    KIND: ClassVar[str] = "risk.denied"
    SOURCE: ClassVar[str] = "risk"
    key: str
    reason: str
    ts_ns: int


@frozen
class OrderSent:
    """The placement request of ``external_oid`` is about to leave (journaled before sending)."""

    KIND: ClassVar[str] = "order.sent"
    SOURCE: ClassVar[str] = "engine"
    external_oid: str
    ts_ns: int


@frozen
class OrderAccepted:
    """The exchange acknowledged the placement and gave it ``order_id``."""

    KIND: ClassVar[str] = "order.accepted"
    SOURCE: ClassVar[str] = "engine"
    external_oid: str
    order_id: str
    ts_ns: int


@frozen
class OrderRejected:
    """The exchange definitely refused the placement with ``code``."""

    KIND: ClassVar[str] = "order.rejected"
    SOURCE: ClassVar[str] = "engine"
    external_oid: str
    code: int
    message: str
    ts_ns: int


@frozen
class OrderOutcomeUnknown:
    """Sent, but no definite answer (timeout, 5xx, disconnect, unparsable reply)."""

    KIND: ClassVar[str] = "order.unknown"
    SOURCE: ClassVar[str] = "engine"
    external_oid: str
    reason: str
    ts_ns: int


@frozen
class TimerFired:
    """A timer a strategy asked for fired."""

    KIND: ClassVar[str] = "engine.timer"
    SOURCE: ClassVar[str] = "engine"
    name: str
    ts_ns: int


@frozen
class Connected:
    """A WebSocket connection opened."""

    KIND: ClassVar[str] = "engine.connected"
    SOURCE: ClassVar[str] = "engine"
    conn_id: str
    url: str
    ts_ns: int


@frozen
class Disconnected:
    """A WebSocket connection closed or was lost."""

    KIND: ClassVar[str] = "engine.disconnected"
    SOURCE: ClassVar[str] = "engine"
    conn_id: str
    reason: str
    ts_ns: int


@frozen
class BookGapDetected:
    """A depth delta did not follow the local book's version."""

    KIND: ClassVar[str] = "engine.book_gap"
    SOURCE: ClassVar[str] = "engine"
    symbol: str
    expected: int
    got: int
    ts_ns: int


@frozen
class BookResynced:
    """The local book was repaired (``how``: ``commits`` or ``snapshot``)."""

    KIND: ClassVar[str] = "engine.book_resync"
    SOURCE: ClassVar[str] = "engine"
    symbol: str
    version: int
    how: str
    ts_ns: int


@frozen
class DecodeFailed:
    """The row at ``cause`` could not be decoded."""

    KIND: ClassVar[str] = "engine.decode_failed"
    SOURCE: ClassVar[str] = "engine"
    kind: str
    error: str
    ts_ns: int


@frozen
class KillSwitchTripped:
    """Trading stopped: no new orders, open orders cancelled."""

    KIND: ClassVar[str] = "engine.kill_switch"
    SOURCE: ClassVar[str] = "engine"
    reason: str
    ts_ns: int


@frozen
class StrategyFailed:
    """The strategy raised or broke its contract; the kill switch trips with this reason."""

    KIND: ClassVar[str] = "strategy.failed"
    SOURCE: ClassVar[str] = "strategy"
    reason: str
    ts_ns: int


@frozen
class StopRequested:
    """The session is stopping: the strategy's ``on_stop`` runs, then an optional cancel-all."""

    KIND: ClassVar[str] = "engine.stop_requested"
    SOURCE: ClassVar[str] = "engine"
    reason: str
    cancel_all: bool
    ts_ns: int


@frozen
class SessionStarted:
    """A session began; ``meta`` is canonical JSON of its metadata (chained, unlike the
    sessions table)."""

    KIND: ClassVar[str] = "engine.session_started"
    SOURCE: ClassVar[str] = "engine"
    mode: str
    strategy: str
    meta: str
    ts_ns: int


@frozen
class ReconcileDifference:
    """Reconciliation found the journal's view and the exchange's view apart.

    ``what`` is e.g. ``order_missing`` (journal open, exchange not), ``order_unknown``
    (exchange open, journal unaware), ``position_changed``, ``balance_changed``.
    """

    KIND: ClassVar[str] = "engine.reconcile_difference"
    SOURCE: ClassVar[str] = "engine"
    what: str
    key: str
    detail: str
    ts_ns: int


@frozen
class SessionEnded:
    """The session closed cleanly."""

    KIND: ClassVar[str] = "engine.session_ended"
    SOURCE: ClassVar[str] = "engine"
    reason: str
    ts_ns: int


EngineEvent = (
    OrderRequested
    | CommandIssued
    | CommandAccepted
    | CommandDenied
    | OrderSent
    | OrderAccepted
    | OrderRejected
    | OrderOutcomeUnknown
    | TimerFired
    | Connected
    | Disconnected
    | BookGapDetected
    | BookResynced
    | DecodeFailed
    | KillSwitchTripped
    | SessionStarted
    | StrategyFailed
    | StopRequested
    | ReconcileDifference
    | SessionEnded
)
"""Every engine-made event type."""
