"""The deterministic heart of the engine: fold, strategy, risk (pure).

Theory of operation
-------------------
:class:`Core` takes one committed journal row at a time (``handle``), turns it into typed
values (the adapter's ``interpret``), folds each value into the projections, shows it to the
strategy, and passes every command the strategy returns through the risk gate. What comes
out are *decisions*: engine events (``OrderRequested`` / ``CommandIssued`` followed by
``CommandAccepted`` or ``CommandDenied``, ``DecodeFailed``, ``StrategyFailed`` when the
strategy breaks) each paired with the command to execute, if any. Decisions are folded at
once, so the strategy's next call already sees its own requested orders.

The live sequencer journals the decisions right after the batch that caused them; replay
feeds the same input rows to a fresh ``Core`` and compares the decisions it makes with the
recorded ones. Because the core reads time only from the rows (``ts_ns``) and randomness only
from the strategy context, both runs make byte-identical decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from attrs import frozen

from engine.codec import JournalDecodeError
from engine.commands import (
    CancelAll,
    CancelByExternalOid,
    CancelOrder,
    ChangeLeverage,
    ChangeMargin,
    Command,
    PlaceOrder,
)
from engine.events import (
    CommandAccepted,
    CommandDenied,
    CommandIssued,
    DecodeFailed,
    EngineEvent,
    Event,
    KillSwitchTripped,
    OrderRequested,
    Row,
    StopRequested,
    StrategyFailed,
)
from engine.model import BookDelta, ContractInfo, OrderType, PositionType
from engine.projections import State, StateView, apply
from engine.risk import RiskGate

__all__ = ["DECISION_KINDS", "Core", "Decision", "StrategyView"]

DECISION_KINDS = frozenset(
    {
        OrderRequested.KIND,
        CommandIssued.KIND,
        CommandAccepted.KIND,
        CommandDenied.KIND,
        DecodeFailed.KIND,
        StrategyFailed.KIND,
    }
)
"""Kinds the core itself produces; replay regenerates them instead of reading them."""

_COMMAND_TYPES = (
    PlaceOrder,
    CancelOrder,
    CancelByExternalOid,
    CancelAll,
    ChangeLeverage,
    ChangeMargin,
)
_NEEDS_PRICE = (OrderType.LIMIT, OrderType.POST_ONLY, OrderType.IOC, OrderType.FOK)

_new = object.__new__
_PLAIN, _KILL, _STOP, _BOOK = "plain", "kill", "stop", "book"
_ROLES: dict[type, str] = {}
"""What :meth:`Core.fold_values` does with a value of each type, beyond folding it and
showing it to the strategy (one lookup instead of three ``isinstance`` checks a value)."""


def _role(cls: type) -> str:
    if issubclass(cls, KillSwitchTripped):
        role = _KILL
    elif issubclass(cls, StopRequested):
        role = _STOP
    elif issubclass(cls, BookDelta):
        role = _BOOK
    else:
        role = _PLAIN
    _ROLES[cls] = role
    return role


@frozen
class Decision:
    """One engine event the core produced, the command to execute with it, and its stream."""

    event: EngineEvent
    command: Command | None
    stream: str | None


class StrategyView:
    """What a strategy sees: the live projections plus ``now_ns`` of the event in hand."""

    __slots__ = ("_view", "now_ns")

    def __init__(self, view: StateView, now_ns: int) -> None:
        self._view = view
        self.now_ns = now_ns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    @property
    def now_ms(self) -> int:
        """Event time in milliseconds."""
        return self.now_ns // 1_000_000


class _RiskState:
    """Adapts the projected :class:`State` to :class:`engine.risk.RiskState` (read only)."""

    __slots__ = ("_market", "_orders", "_positions", "view")

    def __init__(self, state: State) -> None:
        self.view = state.view()
        self._market = state.market
        self._orders = state.orders
        self._positions = state.positions

    def contract(self, symbol: str) -> ContractInfo | None:
        return self._market.contract(symbol)

    def position_vol(self, symbol: str, position_type: PositionType) -> Decimal:
        pos = self._positions.get(symbol, position_type)
        return pos.hold_vol if pos is not None else Decimal(0)

    def open_order_count(self, symbol: str) -> int:
        return self._orders.open_count(symbol)

    def reference_price(self, symbol: str) -> Decimal | None:
        market = self.view.market(symbol)
        if market is not None:
            for name in ("fair_price", "last_price"):
                price = getattr(market, name, None)
                if price is not None:
                    return price
        book = self.view.book(symbol)
        return book.mid() if book is not None else None


def _invalid(cmd: object) -> str | None:
    if not isinstance(cmd, _COMMAND_TYPES):
        return f"not a command: {type(cmd).__name__}"
    if isinstance(cmd, PlaceOrder):
        if cmd.vol <= 0:
            return f"vol must be positive, got {cmd.vol}"
        if cmd.order_type in _NEEDS_PRICE and (cmd.price is None or cmd.price <= 0):
            return f"{cmd.order_type.name} order needs a positive price"
        if not cmd.external_oid or len(cmd.external_oid) > 32:
            return "external_oid must be 1..32 characters"
    return None


class Core:
    """Fold + strategy + risk for one session; deterministic given the rows it is fed."""

    def __init__(
        self,
        state: State,
        interpret: Callable[[Event], Sequence[Any]],
        *,
        strategy: Any | None = None,
        risk: RiskGate | None = None,
        on_gap: Callable[[str, tuple[int, int] | None], None] | None = None,
        decode_errors: tuple[type[Exception], ...] = (),
        on_kill: Callable[[str], None] | None = None,
    ) -> None:
        self.state = state
        self.view = state.view()
        self.interpret = interpret
        self.strategy = strategy
        self.risk = risk or RiskGate()
        self.on_gap = on_gap
        self.decode_errors: tuple[type[Exception], ...] = (JournalDecodeError, *decode_errors)
        self.on_kill = on_kill
        self.strategy_failed: str | None = None
        self.stopped = False
        self._risk_state = _RiskState(state)
        self._gapped: set[str] = set()

    # ------------------------------------------------------------------ inputs

    def handle(self, ev: Event, value: Any = None) -> list[Decision]:
        """Fold the row (or its pre-decoded ``value``) and return the decisions it caused."""
        if value is not None:
            values: Sequence[Any] = (value,)
        else:
            try:
                values = self.interpret(ev)
            except self.decode_errors as exc:
                return self.decode_failed(ev, exc)
        return self.fold_values(values, ev.ts_ns, ev.seq)

    def decode_failed(self, ev: Row, exc: Exception) -> list[Decision]:
        """Row ``ev`` could not be interpreted (``exc``, one of ``decode_errors``): fold and
        return the :class:`DecodeFailed` decision, as :meth:`handle` does."""
        event = DecodeFailed(ev.kind, str(exc)[:500], ev.ts_ns)
        apply(self.state, event)
        return [Decision(event, None, ev.stream)]

    def fold_and_decide(self, value: Any, now_ns: int, seq: int) -> list[Decision]:
        """Fold one value, then let the strategy react to it."""
        return self.fold_values((value,), now_ns, seq)

    def fold_values(self, values: Sequence[Any], now_ns: int, seq: int) -> list[Decision]:
        """What :meth:`handle` does with the values interpreted from the row at ``seq``
        (received at ``now_ns``): each in turn is folded, acted on if the core must (kill
        switch, stop, book gap) and shown to the strategy, whose commands are decided on.
        The hot path of every row: the common case stays in this one frame."""
        out: list[Decision] = []
        state = self.state
        for value in values:
            apply(state, value)
            role = _ROLES.get(type(value))
            if role is None:
                role = _role(type(value))
            if role is not _PLAIN:  # the rare values the core itself acts on
                if role is _KILL:
                    out.extend(self._kill(value.reason, now_ns))
                    continue
                if role is _STOP:
                    out.extend(self.stop(now_ns))
                    self.stopped = True  # from here on the strategy sees nothing more
                    if value.cancel_all:
                        out.extend(self.decide([CancelAll(None)], now_ns))
                    continue
                if self.on_gap is not None:  # a BookDelta
                    self._watch_gap(value.symbol)
            strategy = self.strategy
            if strategy is None or self.strategy_failed is not None or self.stopped:
                continue
            view = _new(StrategyView)  # StrategyView(self.view, now_ns), without its frame
            view._view = self.view
            view.now_ns = now_ns
            try:
                commands = strategy.on_event(view, value)
            except Exception as exc:
                out.extend(self._strategy_broke(
                    f"exception in on_event: {type(exc).__name__}: {exc}", value, seq, now_ns
                ))
                continue
            if commands:
                out.extend(self._commanded(commands, value, seq, now_ns))
        return out

    def _commanded(self, commands: Any, value: Any, seq: int, now_ns: int) -> list[Decision]:
        try:
            commands = list(commands)
        except TypeError:
            return self._strategy_broke(
                f"on_event returned {type(commands).__name__}, not a sequence of commands",
                value,
                seq,
                now_ns,
            )
        return self.decide(commands, now_ns)

    def stop(self, now_ns: int) -> list[Decision]:
        """Call the strategy's ``on_stop`` and decide on what it returns."""
        if self.strategy is None or self.strategy_failed is not None or self.stopped:
            return []
        try:
            commands = list(self.strategy.on_stop(StrategyView(self.view, now_ns)) or ())
        except Exception as exc:
            return self._strategy_broke(
                f"exception in on_stop: {type(exc).__name__}: {exc}", None, None, now_ns
            )
        return self.decide(commands, now_ns)

    def _kill(self, reason: str, now_ns: int) -> list[Decision]:
        if self.risk.killed is not None:
            return []
        self.risk.trip(reason)
        if self.on_kill is not None:
            self.on_kill(reason)
        return self.decide([CancelAll(None)], now_ns)

    def _strategy_broke(
        self, what: str, value: Any, seq: int | None, now_ns: int
    ) -> list[Decision]:
        name = getattr(self.strategy, "name", type(self.strategy).__name__)
        where = f" on event seq {seq} ({type(value).__name__})" if seq is not None else ""
        reason = f"strategy {name!r} {what}{where}"
        self.strategy_failed = reason
        failed = StrategyFailed(reason, now_ns)
        apply(self.state, failed)
        return [Decision(failed, None, None), *self._kill(reason, now_ns)]

    def _watch_gap(self, symbol: str) -> None:
        book = self.view.book(symbol)
        if book is None:
            return
        if book.gapped and symbol not in self._gapped:
            self._gapped.add(symbol)
            assert self.on_gap is not None
            self.on_gap(symbol, book.gap)
        elif not book.gapped and symbol in self._gapped:
            self._gapped.discard(symbol)

    # ------------------------------------------------------------------ commands

    def decide(self, commands: Sequence[Any], now_ns: int) -> list[Decision]:
        """Risk-check commands; return and fold the intent and verdict events."""
        out: list[Decision] = []
        for cmd in commands:
            problem = _invalid(cmd)
            if problem is not None:
                name = getattr(self.strategy, "name", "strategy")
                key = getattr(cmd, "external_oid", None) or type(cmd).__name__
                denied = CommandDenied(
                    str(key), f"invalid command from {name!r}: {problem}", now_ns
                )
                apply(self.state, denied)
                out.append(Decision(denied, None, None))
                continue
            stream: str | None
            if isinstance(cmd, PlaceOrder):
                intent: EngineEvent = OrderRequested(cmd, now_ns)
                key, stream = cmd.external_oid, cmd.external_oid
            else:
                intent = CommandIssued(cmd, now_ns)
                key = type(cmd).__name__
                stream = getattr(cmd, "external_oid", None) or getattr(cmd, "symbol", None)
            apply(self.state, intent)
            out.append(Decision(intent, None, stream))
            verdict = self.risk.check(cmd, self._risk_state, now_ns)
            if verdict.accepted:
                accepted = CommandAccepted(key, now_ns)
                apply(self.state, accepted)
                out.append(Decision(accepted, cmd, stream))
            else:
                denied = CommandDenied(key, verdict.reason, now_ns)
                apply(self.state, denied)
                out.append(Decision(denied, None, stream))
        return out
