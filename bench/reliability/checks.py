"""The invariants every reliability run checks: a journal against the exchange it traded on.

:func:`check_journal` reads a journal once it is closed and compares it with an
:class:`ExchangeView` (taken from the in-process simulator with :func:`view_of_sim`, or over
REST with :func:`view_over_rest` when the simulator is another process). It returns a
:class:`Verdict` whose fields name every breach:

* ``chain``: the hash chain verifies (``Journal.verify``);
* ``replay``: every session with events replays identically (``replay_session(verify=True)``),
  except that a session cut short by a kill may lack the decisions of its last inputs;
* ``duplicates``: an externalOid requested twice, a placement answered (``rest.order_create``)
  twice, or two exchange orders under one externalOid;
* ``orphans``: an exchange order under our externalOid prefix the journal never requested;
* ``lost``: an order whose dealt volume or final state in the journal differs from the
  exchange's (a fill or a cancel the journal missed), or one the journal holds as placed
  that the exchange does not know;
* ``dangling``: an intent still ``requested``/``sent``/``unknown`` at the end;
* ``mismatches``: positions, open orders or the balance folded from the journal differ from
  the exchange's.

The comparison is only meaningful at a quiet moment: the market frozen and the session
stopped (its stop cancels and reconciles), which is how every runner calls it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from attrs import field, frozen

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret
from engine.core import DECISION_KINDS
from engine.journal import Journal, SessionInfo
from engine.model import OrderState
from engine.projections import OrderStatus, State
from engine.rebuild import rebuild_state
from engine.replay import Divergence, ReplayError, replay_session

__all__ = ["ExOrder", "ExchangeView", "Verdict", "check_journal", "view_of_sim",
           "view_over_rest"]

_DANGLING = (OrderStatus.REQUESTED, OrderStatus.SENT, OrderStatus.UNKNOWN,
             OrderStatus.ACCEPTED)
_LIVE = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
_PLACED = (*_LIVE, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.INVALID)
_FINAL = {
    OrderState.FILLED: (OrderStatus.FILLED,),
    OrderState.CANCELLED: (OrderStatus.CANCELLED,),
    OrderState.INVALID: (OrderStatus.INVALID,),
    OrderState.OPEN: _LIVE,
    OrderState.PENDING: _LIVE,
}


@frozen
class ExOrder:
    """One order as the exchange holds it."""

    order_id: str
    external_oid: str | None
    state: OrderState
    deal_vol: Decimal


@frozen
class ExchangeView:
    """The account at the exchange: every order, held positions, open orders, balance."""

    orders: tuple[ExOrder, ...]
    positions: Mapping[tuple[str, int], Decimal]
    open_order_ids: frozenset[str]
    available: Decimal | None = None
    position_margin: Decimal | None = None


@frozen
class Verdict:
    """What :func:`check_journal` found; :attr:`ok` when nothing was breached."""

    events: int
    sessions: int
    orders_requested: int
    exchange_orders: int
    replays_cut: int = 0
    """Sessions whose recording stops before the decisions of its last inputs (a kill)."""
    chain: str | None = None
    replay: tuple[str, ...] = field(default=(), converter=tuple)
    duplicates: tuple[str, ...] = field(default=(), converter=tuple)
    orphans: tuple[str, ...] = field(default=(), converter=tuple)
    lost: tuple[str, ...] = field(default=(), converter=tuple)
    dangling: tuple[str, ...] = field(default=(), converter=tuple)
    mismatches: tuple[str, ...] = field(default=(), converter=tuple)

    @property
    def journal_ok(self) -> bool:
        """The chain verifies and every session replays identically."""
        return self.chain is None and not self.replay

    @property
    def ok(self) -> bool:
        """No invariant was breached."""
        return self.journal_ok and not (self.duplicates or self.orphans or self.lost
                                        or self.dangling or self.mismatches)

    def problems(self) -> list[str]:
        """Every breach, one line each."""
        out = [f"journal: {self.chain}"] if self.chain else []
        for name in ("replay", "duplicates", "orphans", "lost", "dangling", "mismatches"):
            out += [f"{name}: {item}" for item in getattr(self, name)]
        return out


# ----------------------------------------------------------------------------- exchange views


def _user_of(sim: Any) -> str:
    users = {a.user for a in sim.accounts.values()}
    if len(users) != 1:
        raise ValueError(f"expected one simulator account, found {sorted(users)}")
    return users.pop()


def view_of_sim(sim: Any, symbol: str | None = None) -> ExchangeView:
    """The account of an in-process :class:`~adapters.mexc.sim.service.SimService`."""
    user = _user_of(sim)
    ex = sim.exchange
    orders = tuple(ExOrder(o.order_id, o.external_oid, o.state, o.deal_vol)
                   for o in ex.history_orders(user, symbol))
    positions = {(p.symbol, int(p.position_type)): p.hold_vol for p in ex.positions(user)
                 if p.hold_vol}
    asset = ex.asset(user, "USDT")
    return ExchangeView(
        orders, positions, frozenset(o.order_id for o in ex.open_orders(user)),
        asset.available_balance if asset is not None else None,
        asset.position_margin if asset is not None else None)


async def view_over_rest(rest: Any, symbols: Iterable[str]) -> ExchangeView:
    """The account over REST (a :class:`~adapters.mexc.rest.MexcRestClient`), every page."""
    orders: list[ExOrder] = []
    for symbol in symbols:
        for page in range(1, 1000):
            answer = await rest.history_orders(symbol=symbol, page_num=page, page_size=100)
            items = list(getattr(answer, "items", answer))
            orders += [ExOrder(o.order_id, o.external_oid, o.state, o.deal_vol) for o in items]
            if len(items) < 100:
                break
    positions = {(p.symbol, int(p.position_type)): p.hold_vol
                 for p in await rest.open_positions() if p.hold_vol}
    open_orders = await rest.open_orders(page_size=100)
    assets = {b.currency: b for b in await rest.assets()}
    usdt = assets.get("USDT")
    return ExchangeView(
        tuple(orders), positions,
        frozenset(o.order_id for o in getattr(open_orders, "items", open_orders)),
        usdt.available if usdt is not None else None,
        usdt.position_margin if usdt is not None else None)


# ----------------------------------------------------------------------------- the check


def _cut_by_a_kill(journal: Journal, info: SessionInfo, divergence: Divergence) -> bool:
    """True when a session's recording merely stops early: it never ended, the recording
    has no decision for the divergent input and none after it. The sequencer commits a
    batch's inputs, then their decisions: a kill between the two commits loses decisions
    that were never acted on (commands are dispatched only after their commit)."""
    if divergence.recorded:
        return False
    if next(iter(journal.read(session=info.id, kinds=["engine.session_ended"])), None):
        return False
    later = journal.read(session=info.id, kinds=sorted(DECISION_KINDS),
                         from_seq=divergence.seq + 1)
    return next(iter(later), None) is None


def _replays(journal: Journal) -> tuple[list[str], int]:
    """Replay every session; return the problems and the count of sessions cut by a kill."""
    out = []
    cut = 0
    for info in journal.sessions():
        if not info.events:
            continue
        try:
            result = replay_session(journal, info.id, verify=True, check_chain=False)
        except ReplayError as exc:
            out.append(f"session {info.id}: cannot replay: {exc}")
            continue
        if result.identical:
            continue
        if result.divergence is not None and _cut_by_a_kill(journal, info, result.divergence):
            cut += 1
            continue
        where = (result.divergence.lines()[:2] if result.divergence is not None
                 else [f"projections differ: {result.state_difference}"])
        out.append(f"session {info.id}: " + " / ".join(where))
    return out, cut


def _placements(journal: Journal) -> tuple[list[str], Counter[str]]:
    requested = [orjson.loads(ev.body)["command"]["external_oid"]
                 for ev in journal.read(kinds=["cmd.place_order"])]
    answered = Counter(ev.stream or "?" for ev in journal.read(kinds=["rest.order_create"]))
    return requested, answered


def _compare_orders(state: State, exchange: ExchangeView, requested: list[str],
                    answered: Counter[str], prefix: str) -> dict[str, list[str]]:
    view = state.view()
    out: dict[str, list[str]] = {"duplicates": [], "orphans": [], "lost": [], "dangling": []}
    out["duplicates"] += [f"externalOid {oid} requested {n} times"
                          for oid, n in Counter(requested).items() if n > 1]
    out["duplicates"] += [f"externalOid {oid}: placement answered {n} times (sent again)"
                          for oid, n in answered.items() if n > 1]
    ours = [o for o in exchange.orders if o.external_oid and o.external_oid.startswith(prefix)]
    out["duplicates"] += [f"externalOid {oid}: {n} orders at the exchange"
                          for oid, n in Counter(o.external_oid for o in ours).items() if n > 1]
    known = set(requested)
    for o in ours:
        if o.external_oid not in known:
            out["orphans"].append(f"exchange order {o.order_id} ({o.external_oid}) was never "
                                  "requested in the journal")
            continue
        mine = view.order(o.external_oid)
        if mine is None:
            out["orphans"].append(f"exchange order {o.order_id} ({o.external_oid}) is not in "
                                  "the projections")
            continue
        if mine.filled_vol != o.deal_vol:
            out["lost"].append(f"{o.external_oid}: dealt {o.deal_vol} at the exchange, "
                               f"{mine.filled_vol} in the journal")
        if mine.status not in _FINAL.get(o.state, (mine.status,)):
            out["lost"].append(f"{o.external_oid}: {o.state.name.lower()} at the exchange, "
                               f"{mine.status} in the journal")
    at_exchange = {o.external_oid for o in ours}
    for order in view.orders():
        if order.external_oid not in known:
            continue
        if order.status in _DANGLING:
            where = "at" if order.external_oid in at_exchange else "not at"
            out["dangling"].append(f"{order.external_oid}: still {order.status} ({where} the "
                                   "exchange)")
        elif order.status in _PLACED and order.external_oid not in at_exchange:
            out["lost"].append(f"{order.external_oid}: {order.status} in the journal, unknown "
                               "to the exchange")
    return out


def _same_amount(a: Decimal | None, b: Decimal | None) -> bool:
    """Equal as the wire can tell: MEXC sends amounts as JSON numbers (doubles), so the
    exchange's exact decimal and the journal's parsed one agree to a double's precision."""
    if a is None or b is None:
        return a is b
    return a == b or float(a) == float(b)


def _compare_account(state: State, exchange: ExchangeView) -> list[str]:
    view = state.view()
    out = []
    mine = {(p.symbol, int(p.position_type)): p.hold_vol for p in view.positions()
            if p.hold_vol}
    if mine != dict(exchange.positions):
        out.append(f"positions: journal {mine}, exchange {dict(exchange.positions)}")
    local_open = {o.order_id for o in view.open_orders() if o.status in _LIVE}
    if local_open != set(exchange.open_order_ids):
        out.append(f"open orders: journal-only {sorted(local_open - exchange.open_order_ids)}, "
                   f"exchange-only {sorted(exchange.open_order_ids - local_open)}")
    bal = view.balance("USDT")
    if exchange.available is not None:
        if bal is None:
            out.append("balance: none in the journal")
        elif not (_same_amount(bal.available, exchange.available)
                  and _same_amount(bal.position_margin, exchange.position_margin)):
            out.append(f"balance available/position margin: journal {bal.available}/"
                       f"{bal.position_margin}, exchange {exchange.available}/"
                       f"{exchange.position_margin}")
    return out


def check_journal(path: Path, exchange: ExchangeView, *, prefix: str = "tl",
                  replay: bool = True) -> Verdict:
    """Check the closed journal at ``path`` against ``exchange`` (see the module docstring).

    ``prefix`` is the externalOid prefix of this engine's orders; ``replay=False`` skips the
    (slow) replay verification of every session.
    """
    with Journal.open(path, readonly=True) as journal:
        verified = journal.verify()
        info = journal.info()
        sessions = len(journal.sessions())
        if not verified.ok:
            return Verdict(info.events, sessions, 0, len(exchange.orders),
                           chain=f"seq {verified.first_bad_seq}: {verified.problem}")
        replays, cut = _replays(journal) if replay else ([], 0)
        requested, answered = _placements(journal)
        state, _, _ = rebuild_state(journal, interpret, decode_errors=(DecodeError,))
    found = _compare_orders(state, exchange, requested, answered, prefix)
    return Verdict(info.events, sessions, len(requested), len(exchange.orders), replay=replays,
                   replays_cut=cut, mismatches=_compare_account(state, exchange), **found)
