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
    """Adapts a :class:`StateView` to :class:`engine.risk.RiskState`."""

    def __init__(self, view: StateView) -> None:
        self.view = view

    def contract(self, symbol: str) -> ContractInfo | None:
        return self.view.contract(symbol)

    def position_vol(self, symbol: str, position_type: PositionType) -> Decimal:
        pos = self.view.position(symbol, position_type)
        return pos.hold_vol if pos is not None else Decimal(0)

    def open_order_count(self, symbol: str) -> int:
        return len(self.view.open_orders(symbol))

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
        self._risk_state = _RiskState(self.view)
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
                return self._decode_failed(ev, exc)
        out: list[Decision] = []
        for v in values:
            out.extend(self.fold_and_decide(v, ev.ts_ns, ev.seq))
        return out

    def _decode_failed(self, ev: Event, exc: Exception) -> list[Decision]:
        event = DecodeFailed(ev.kind, str(exc)[:500], ev.ts_ns)
        apply(self.state, event)
        return [Decision(event, None, ev.stream)]

    def fold_and_decide(self, value: Any, now_ns: int, seq: int) -> list[Decision]:
        """Fold one value, then let the strategy react to it."""
        apply(self.state, value)
        if isinstance(value, KillSwitchTripped):
            return self._kill(value.reason, now_ns)
        if isinstance(value, StopRequested):
            out = self.stop(now_ns)
            self.stopped = True  # from here on the strategy sees nothing more
            if value.cancel_all:
                out.extend(self.decide([CancelAll(None)], now_ns))
            return out
        if isinstance(value, BookDelta) and self.on_gap is not None:
            self._watch_gap(value.symbol)
        if self.strategy is None or self.strategy_failed is not None or self.stopped:
            return []
        try:
            commands = self.strategy.on_event(StrategyView(self.view, now_ns), value)
        except Exception as exc:
            return self._strategy_broke(
                f"exception in on_event: {type(exc).__name__}: {exc}", value, seq, now_ns
            )
        if not commands:
            return []
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
