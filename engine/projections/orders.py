"""The order projection: the order state machine as a fold (pure).

Theory of operation
-------------------
An order is known by up to two names: the ``external_oid`` this engine gave it (from
:class:`~engine.events.OrderRequested` on) and the exchange's ``order_id`` (from
:class:`~engine.events.OrderAccepted`, or from any exchange message that carries both). Records
live in one dict under an internal key, ``"x:" + external_oid`` when the client id is known,
else ``"i:" + order_id`` (an *orphan*: an order placed by hand, or an exchange message that
overtook the REST answer). ``_ext_by_id`` maps order ids to client ids. The moment a message
links an orphan's order id to a client id, the orphan's exchange evidence is merged into the
client-keyed record and the orphan disappears, so delivery order does not matter.

Each record holds its evidence separately (see :mod:`engine.projections.order_view`):

* the local phase moves ``requested → denied`` or ``requested → sent → accepted | rejected |
  unknown``, and ``unknown → accepted | rejected``; only :class:`~engine.events.OrderRejected`
  rejects;
* the exchange view is replaced only by a strictly higher
  :func:`~engine.projections.order_view.exchange_rank` (version, then time, then progress),
  and never moves away from a terminal exchange state;
* fills are counted once per ``(order_id, fill_id)`` and summed.

After every change the status is re-derived from the evidence; a terminal status is kept even
if later (contradictory) evidence says otherwise, and that contradiction is an anomaly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.codec import from_data, to_data
from engine.events import (
    CommandDenied,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequested,
    OrderSent,
)
from engine.model import Fill, OrderState, OrderUpdate
from engine.projections.base import FoldContext
from engine.projections.order_view import (
    OrderRecord,
    OrderStatus,
    OrderView,
    derive_status,
    exchange_rank,
)

__all__ = ["OrderProjection"]

_REQUESTED = OrderStatus.REQUESTED
_SENT = OrderStatus.SENT
_UNKNOWN = OrderStatus.UNKNOWN
_ACCEPTED = OrderStatus.ACCEPTED
_REJECTED = OrderStatus.REJECTED
_DENIED = OrderStatus.DENIED
_AWAITING_ANSWER = (_REQUESTED, _SENT, _UNKNOWN)
_EX_TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.INVALID})


def _later(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


class OrderProjection:
    """Every order of the session, by client id and by exchange id; mutated only by the fold."""

    __slots__ = ("_ctx", "_ext_by_id", "_open", "_open_by_symbol", "_orders", "_seen_fills",
                 "duplicate_fills", "stale_updates")

    def __init__(self, ctx: FoldContext) -> None:
        self._ctx = ctx
        self._orders: dict[str, OrderRecord] = {}
        self._ext_by_id: dict[str, str] = {}
        self._open: dict[str, None] = {}
        self._open_by_symbol: dict[str, dict[str, None]] = {}
        self._seen_fills: set[tuple[str, str]] = set()
        self.stale_updates = 0
        self.duplicate_fills = 0

    # ------------------------------------------------------------------ queries

    def get(self, external_oid: str) -> OrderView | None:
        """The order placed with ``external_oid``."""
        rec = self._orders.get("x:" + external_oid)
        return None if rec is None else rec.freeze()

    def by_order_id(self, order_id: str) -> OrderView | None:
        """The order the exchange calls ``order_id``."""
        ext = self._ext_by_id.get(order_id)
        rec = None if ext is None else self._orders.get("x:" + ext)
        if rec is None or rec.order_id != order_id:
            rec = self._orders.get("i:" + order_id)
        return None if rec is None else rec.freeze()

    def open_orders(self, symbol: str | None = None) -> tuple[OrderView, ...]:
        """Non-terminal orders (including requested, sent and unknown), oldest first."""
        keys = self._open if symbol is None else self._open_by_symbol.get(symbol, {})
        orders = self._orders
        return tuple(orders[k].freeze() for k in keys)

    def open_count(self, symbol: str | None = None) -> int:
        """How many orders :meth:`open_orders` would return, without freezing any."""
        if symbol is None:
            return len(self._open)
        keys = self._open_by_symbol.get(symbol)
        return 0 if keys is None else len(keys)

    def __iter__(self) -> Iterator[OrderView]:
        return (rec.freeze() for rec in self._orders.values())

    def __len__(self) -> int:
        return len(self._orders)

    # ------------------------------------------------------------------ bookkeeping

    def _add(self, key: str, rec: OrderRecord) -> None:
        self._orders[key] = rec
        if not rec.status.is_terminal:
            self._open[key] = None
            self._open_by_symbol.setdefault(rec.symbol, {})[key] = None

    def _drop(self, key: str) -> OrderRecord | None:
        rec = self._orders.pop(key, None)
        if rec is not None:
            self._open.pop(key, None)
            self._open_by_symbol.get(rec.symbol, {}).pop(key, None)
        return rec

    def _settle(self, key: str, rec: OrderRecord) -> None:
        """Re-derive ``rec``'s status after its evidence changed; terminal statuses stick."""
        rec.view = None
        status = derive_status(rec.phase, rec.exchange_state, rec.filled_vol, rec.vol)
        if (rec.phase is _DENIED or rec.phase is _REJECTED) and (
            rec.exchange_state is not None or rec.fill_count
        ):
            self._ctx.note("exchange_evidence_after_" + str(rec.phase), key,
                           f"exchange state {rec.exchange_state}, {rec.fill_count} fills")
        if status is rec.status:
            return
        if rec.status.is_terminal:
            self._ctx.note("terminal_status_kept", key, f"{rec.status} (evidence: {status})")
            return
        rec.status = status
        if status.is_terminal:
            self._open.pop(key, None)
            self._open_by_symbol.get(rec.symbol, {}).pop(key, None)

    def _link(self, ext: str, order_id: str) -> str | None:
        """Bind ``order_id`` to ``ext``, adopting an orphan; the key to use, or None."""
        xkey = "x:" + ext
        rec = self._orders.get(xkey)
        if rec is not None and rec.order_id is not None and rec.order_id != order_id:
            self._ctx.note("external_oid_reused", ext, f"{rec.order_id}, then {order_id}")
            return None
        self._ext_by_id[order_id] = ext
        orphan = self._drop("i:" + order_id)
        if orphan is None:
            if rec is not None and rec.order_id is None:
                rec.order_id = order_id
                rec.view = None
            return xkey
        if rec is None:
            orphan.external_oid = ext
            orphan.view = None
            self._add(xkey, orphan)
            return xkey
        rec.order_id = order_id
        if orphan.exchange_state is not None:
            rec.side, rec.order_type = orphan.side, orphan.order_type
            rec.price, rec.vol = orphan.price, orphan.vol
        rec.exchange_state = orphan.exchange_state
        rec.exchange_version = orphan.exchange_version
        rec.exchange_update_ms = orphan.exchange_update_ms
        rec.exchange_deal_vol = orphan.exchange_deal_vol
        rec.exchange_avg_price = orphan.exchange_avg_price
        rec.error_code = orphan.error_code
        rec.fill_count += orphan.fill_count
        rec.fill_vol += orphan.fill_vol
        rec.fill_notional += orphan.fill_notional
        rec.fees += orphan.fees
        rec.last_fill_ms = _later(rec.last_fill_ms, orphan.last_fill_ms)
        self._settle(xkey, rec)
        return xkey

    def _locate(self, order_id: str, ext: str | None) -> str:
        """The key under which exchange news about ``order_id`` belongs."""
        known = self._ext_by_id.get(order_id)
        if known is not None:
            if ext is not None and ext != known:
                self._ctx.note("conflicting_external_oid", order_id, f"{known} vs {ext}")
            return "x:" + known
        if ext is not None:
            key = self._link(ext, order_id)
            if key is not None:
                return key
        return "i:" + order_id

    def _local(self, ext: str, kind: str) -> OrderRecord | None:
        rec = self._orders.get("x:" + ext)
        if rec is None:
            self._ctx.note("unknown_external_oid", ext, kind)
        return rec

    # ------------------------------------------------------------------ local lifecycle

    def on_requested(self, event: OrderRequested) -> None:
        """A strategy asked for an order: a new record in ``requested``."""
        cmd = event.command
        key = "x:" + cmd.external_oid
        rec = self._orders.get(key)
        if rec is not None:
            self._ctx.note("duplicate_request", cmd.external_oid)
            if rec.request is None:
                rec.request, rec.phase, rec.requested_ns = cmd, _REQUESTED, event.ts_ns
                self._settle(key, rec)
            return
        rec = OrderRecord(cmd.symbol, _REQUESTED)
        rec.external_oid = cmd.external_oid
        rec.side, rec.order_type, rec.price, rec.vol = cmd.side, cmd.order_type, cmd.price, cmd.vol
        rec.request, rec.phase, rec.requested_ns = cmd, _REQUESTED, event.ts_ns
        self._add(key, rec)

    def on_denied(self, event: CommandDenied) -> None:
        """The risk gate refused; keys that name no order (other commands) are ignored."""
        key = "x:" + event.key
        rec = self._orders.get(key)
        if rec is None:
            return
        if rec.phase is _REQUESTED:
            rec.phase, rec.reason, rec.answered_ns = _DENIED, event.reason, event.ts_ns
            self._settle(key, rec)
        else:
            self._ctx.note("late_denial", event.key, f"phase {rec.phase}")

    def on_sent(self, event: OrderSent) -> None:
        """The placement request is about to leave."""
        rec = self._local(event.external_oid, "sent")
        if rec is None or rec.phase is _SENT:
            return
        if rec.phase is _REQUESTED:
            rec.phase = _SENT
            self._settle("x:" + event.external_oid, rec)
        else:
            self._ctx.note("late_sent", event.external_oid, f"phase {rec.phase}")

    def on_accepted(self, event: OrderAccepted) -> None:
        """The exchange took the order and named it ``order_id``."""
        ext = event.external_oid
        if self._local(ext, "accepted") is None:
            self._link(ext, event.order_id)
            return
        key = self._link(ext, event.order_id)
        if key is None:
            return
        rec = self._orders[key]
        if rec.phase in _AWAITING_ANSWER or rec.phase is None:
            rec.phase, rec.answered_ns = _ACCEPTED, event.ts_ns
            self._settle(key, rec)
        elif rec.phase is not _ACCEPTED:
            self._ctx.note("late_accept", ext, f"phase {rec.phase}")

    def on_rejected(self, event: OrderRejected) -> None:
        """A definite exchange refusal: the only way into ``rejected``."""
        rec = self._local(event.external_oid, "rejected")
        if rec is None or rec.phase is _REJECTED:
            return
        if rec.phase in _AWAITING_ANSWER:
            rec.phase, rec.reason, rec.reject_code = _REJECTED, event.message, event.code
            rec.answered_ns = event.ts_ns
            self._settle("x:" + event.external_oid, rec)
        else:
            self._ctx.note("late_reject", event.external_oid, f"phase {rec.phase}")

    def on_unknown(self, event: OrderOutcomeUnknown) -> None:
        """No definite answer: ``unknown`` until exchange evidence or a rejection settles it."""
        rec = self._local(event.external_oid, "unknown")
        if rec is None or rec.phase is _UNKNOWN:
            return
        if rec.phase is _REQUESTED or rec.phase is _SENT:
            rec.phase, rec.reason, rec.answered_ns = _UNKNOWN, event.reason, event.ts_ns
            self._settle("x:" + event.external_oid, rec)
        else:
            self._ctx.note("late_unknown", event.external_oid, f"phase {rec.phase}")

    # ------------------------------------------------------------------ exchange evidence

    def _record_for(self, key: str, order_id: str, symbol: str) -> OrderRecord:
        rec = self._orders.get(key)
        if rec is not None:
            return rec
        self._ctx.note("unknown_order", order_id)
        rec = OrderRecord(symbol, OrderStatus.OPEN)
        rec.external_oid = key[2:] if key.startswith("x:") else None
        rec.order_id = order_id
        self._add(key, rec)
        return rec

    def on_update(self, update: OrderUpdate) -> None:
        """The exchange's view of an order: newest (by rank) wins, terminal states stick."""
        key = self._locate(update.order_id, update.external_oid)
        rec = self._record_for(key, update.order_id, update.symbol)
        current = rec.exchange_rank()
        if current is not None:
            rank = exchange_rank(update.version, update.update_ms, update.state, update.deal_vol)
            if rank <= current:
                self.stale_updates += 1
                return
            if rec.exchange_state is not update.state and rec.exchange_state in _EX_TERMINAL:
                self._ctx.note("exchange_state_regressed", key,
                               f"{rec.exchange_state.name} then {update.state.name}")
                return
        rec.order_id = update.order_id
        rec.exchange_state = update.state
        rec.exchange_version = update.version
        rec.exchange_update_ms = update.update_ms
        rec.exchange_deal_vol = update.deal_vol
        rec.exchange_avg_price = update.deal_avg_price
        rec.error_code = update.error_code
        rec.side, rec.order_type = update.side, update.order_type
        rec.price, rec.vol = update.price, update.vol
        self._settle(key, rec)

    def on_fill(self, fill: Fill) -> None:
        """One deal; counted once per (order_id, fill_id)."""
        seen = (fill.order_id, fill.fill_id)
        if seen in self._seen_fills:
            self.duplicate_fills += 1
            return
        self._seen_fills.add(seen)
        key = self._locate(fill.order_id, fill.external_oid)
        rec = self._record_for(key, fill.order_id, fill.symbol)
        rec.order_id = fill.order_id
        if rec.side is None:
            rec.side = fill.side
        rec.fill_count += 1
        rec.fill_vol += fill.vol
        rec.fill_notional += fill.vol * fill.price
        rec.fees += fill.fee
        rec.last_fill_ms = _later(rec.last_fill_ms, fill.ts_ms)
        self._settle(key, rec)

    # ------------------------------------------------------------------ snapshot

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form; orders in insertion order, fill ids sorted."""
        return {
            "orders": [to_data(rec.freeze()) for rec in self._orders.values()],
            "ext_by_id": dict(self._ext_by_id),
            "seen_fills": sorted([list(s) for s in self._seen_fills]),
            "stale_updates": self.stale_updates,
            "duplicate_fills": self.duplicate_fills,
        }

    @classmethod
    def from_data(cls, ctx: FoldContext, data: dict[str, Any]) -> OrderProjection:
        """Inverse of :meth:`to_data`."""
        proj = cls(ctx)
        for item in data["orders"]:
            view: OrderView = from_data(item, OrderView)
            key = "x:" + view.external_oid if view.external_oid is not None else (
                "i:" + (view.order_id or ""))
            proj._add(key, OrderRecord.of(view))
        proj._ext_by_id = {str(k): str(v) for k, v in data["ext_by_id"].items()}
        proj._seen_fills = {(str(o), str(f)) for o, f in data["seen_fills"]}
        proj.stale_updates = int(data["stale_updates"])
        proj.duplicate_fills = int(data["duplicate_fills"])
        return proj
