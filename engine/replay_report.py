"""Replay results and how two decision streams or two states differ (pure).

:class:`ReplayResult` is what :func:`engine.replay.replay_session` returns;
:class:`Divergence` names the first input whose replayed decisions differ from the recorded
ones. The helpers render rows, find the first differing JSON path of two bodies and the first
differing path of two state snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from attrs import field, frozen

from engine.events import Event, NewEvent, Row, canonical_json
from engine.projections import MAX_ANOMALIES, State

__all__ = ["Divergence", "ReplayResult", "describe", "excerpt", "first_difference",
           "json_diff", "normalized", "render", "same_row"]

EXCERPT: Final = 300


@frozen
class Divergence:
    """The first input whose replayed decisions differ from the recorded ones.

    ``view_summary`` is the state the strategy saw when it handled the input (earlier inputs
    and their decisions, plus the input itself); ``recorded`` and ``replayed`` render the
    decision rows of that input on each side.
    """

    seq: int
    input_kind: str
    input_ts_ns: int | None
    input_excerpt: str
    view_summary: Mapping[str, Any]
    recorded: tuple[str, ...]
    replayed: tuple[str, ...]
    explanation: str

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"seq": self.seq, "input_kind": self.input_kind, "input_ts_ns": self.input_ts_ns,
                "input_excerpt": self.input_excerpt, "view": dict(self.view_summary),
                "recorded": list(self.recorded), "replayed": list(self.replayed),
                "explanation": self.explanation}

    def lines(self) -> list[str]:
        """A human report of the divergence."""
        v = self.view_summary
        out = [f"DIVERGED at input seq {self.seq} ({self.input_kind}, ts_ns {self.input_ts_ns})",
               f"  why: {self.explanation}", f"  event: {self.input_excerpt}",
               "  strategy view:"]
        orders = v.get("open_orders", [])
        out.append(f"    open orders: {v.get('open_order_count', len(orders))}")
        out += [f"      {o['external_oid'] or o['order_id']} {o['side']} {o['vol']}@{o['price']} "
                f"{o['status']}" for o in orders]
        out += [f"    position {p['symbol']} {p['position_type']} {p['hold_vol']}@"
                f"{p['hold_avg_price']}" for p in v.get("positions", [])]
        out += [f"    book {s}: bid {b['bid']} ask {b['ask']} (version {b['version']}"
                f"{'' if b['synced'] else ', not synced'})" for s, b in v.get("books", {}).items()]
        out += [f"    market {s}: last {m['last']} fair {m['fair']}"
                for s, m in v.get("market", {}).items()]
        out.append(f"  recorded ({len(self.recorded)}):")
        out += [f"    {r}" for r in self.recorded] or ["    (none)"]
        out.append(f"  replayed ({len(self.replayed)}):")
        out += [f"    {r}" for r in self.replayed] or ["    (none)"]
        return out


@frozen
class ReplayResult:
    """What a replay did. ``identical`` when no decision and no projection differed."""

    session: str
    inputs: int
    decisions: int
    compared: int
    last_seq: int | None
    verified: bool
    divergence: Divergence | None
    state_difference: str | None
    notes: tuple[str, ...]
    elapsed_s: float
    state: State = field(eq=False, repr=False)

    @property
    def identical(self) -> bool:
        """True when verification found no difference (always True without ``verify``)."""
        return self.divergence is None and self.state_difference is None

    @property
    def events_per_s(self) -> float:
        """Inputs replayed per second of wall time."""
        return self.inputs / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def lines(self) -> list[str]:
        """A short human summary."""
        out = [f"session {self.session}: {self.inputs} events replayed, {self.decisions} "
               f"decisions made, {self.compared} compared, {self.elapsed_s:.2f} s "
               f"({self.events_per_s:,.0f} events/s)"]
        out += [f"  note: {n}" for n in self.notes]
        if self.divergence is not None:
            out += self.divergence.lines()
        elif self.state_difference is not None:
            out.append(f"DIVERGED: projections differ at the end: {self.state_difference}")
        elif self.verified:
            out.append("  identical: every decision and the final projections match the journal")
        return out


def excerpt(text: str, n: int = EXCERPT) -> str:
    """``text`` cut to ``n`` characters (with an ellipsis)."""
    return text if len(text) <= n else text[: n - 3] + "..."


def render(row: Event | NewEvent) -> str:
    """One decision row on one line: seq (when committed), kind, stream, cause, body."""
    seq = f"seq {row.seq} " if isinstance(row, Event) else ""
    return f"{seq}{row.kind} stream={row.stream} cause={row.cause} {excerpt(row.body, 600)}"


def same_row(row: NewEvent, ev: Row) -> bool:
    """True when a replayed row and a recorded one agree in every journaled field."""
    return (row.body == ev.body and row.kind == ev.kind and row.stream == ev.stream
            and row.cause == ev.cause and row.ts_ns == ev.ts_ns and row.source == ev.source
            and row.venue_ts_ms == ev.venue_ts_ms)


def json_diff(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first path at which two JSON values differ, with both values (None if equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = json_diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = json_diff(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else (path or "(body)", a, b)


def describe(rec: Event, rep: NewEvent) -> str:
    """What differs between a recorded decision row and a replayed one, in words."""
    if rec.kind != rep.kind:
        return f"recorded {rec.kind}, replayed {rep.kind}"
    if rec.body != rep.body:
        try:
            found = json_diff(orjson.loads(rec.body), orjson.loads(rep.body))
        except orjson.JSONDecodeError:
            found = None
        if found is not None:
            path, x, y = found
            return f"{rec.kind} differs at {path}: recorded {x!r}, replayed {y!r}"
        return f"{rec.kind}: the bodies differ"
    if rec.stream != rep.stream:
        return f"{rec.kind}: recorded stream {rec.stream!r}, replayed {rep.stream!r}"
    if rec.cause != rep.cause:
        return f"{rec.kind}: recorded cause {rec.cause}, replayed {rep.cause}"
    return f"{rec.kind}: row fields differ (ts_ns {rec.ts_ns} vs {rep.ts_ns})"


def normalized(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot with what legitimately depends on fold order within a batch removed:
    when an anomaly was noted (``at``), and the order in which orders were first seen."""
    snap = dict(snapshot)
    fold = dict(snap["fold"])
    fold["anomalies"] = (None if fold["anomaly_count"] > MAX_ANOMALIES
                         else sorted(tuple(a[:3]) for a in fold["anomalies"]))
    snap["fold"] = fold
    orders = dict(snap["orders"])
    orders["orders"] = sorted(orders["orders"], key=lambda o: canonical_json(o))
    snap["orders"] = orders
    return snap


def first_difference(a: Any, b: Any, path: str = "") -> str:
    """The first path at which two snapshots differ, with both values, in words."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
        if len(a) != len(b):
            return f"{path}: {len(a)} items replayed, {len(b)} in the fold of the journal"
    return (f"{path}: replayed {excerpt(repr(a), 120)}, "
            f"fold of the journal {excerpt(repr(b), 120)}")
