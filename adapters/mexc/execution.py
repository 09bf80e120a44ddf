"""The execution manager: runs accepted commands against MEXC REST (shell).

Theory of operation
-------------------
The sequencer dispatches ``(intent_seq, command)`` only after the intent and the risk
verdict are committed. Each command runs in its own task: the REST client's answer is
handed to ``emit`` (the sequencer's input channel) *before* it is decoded, tagged with the
order's externalOid as stream and, as cause, the seq of the ``risk.accepted`` row that let
it through, so the journal links intent →
request → answer. The outcome of a placement is then derived from that journaled answer by
:func:`adapters.mexc.interpret.interpret` — the same way live and in replay.

When a placement got no usable answer (timeout, dropped connection), the outcome is
*unknown*, never rejected: an ``OrderOutcomeUnknown`` is emitted and the order is settled by
querying it by externalOid with exponential backoff; the query answers are journaled like
everything else. When the exchange keeps answering "does not exist" until the request is
older than the receive window allows (so it can no longer be accepted), the placement is
rejected (2040). A placement is never re-sent, so a retry can never duplicate an order;
only a request that provably never left (connect failure) is retried.

Unexpected failures (HTTP 404 from an order endpoint, 5xx, unknown outcomes) are counted in
a sliding window; a burst trips the kill switch through ``on_burst``.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from adapters.mexc.errors import (
    ExchangeError,
    MexcError,
    TransportError,
    UnknownOutcome,
)
from adapters.mexc.interpret import rest_row
from adapters.mexc.rest import MexcRestClient
from engine.clock import Clock
from engine.commands import (
    CancelAll,
    CancelByExternalOid,
    CancelOrder,
    ChangeLeverage,
    ChangeMargin,
    Command,
    PlaceOrder,
)
from engine.events import OrderOutcomeUnknown, OrderRejected
from engine.sequencer import Input, engine_input

__all__ = ["ORDER_DOES_NOT_EXIST", "ExecutionManager", "journaling_hook"]

ORDER_DOES_NOT_EXIST = 2040
"""The envelope code of "order does not exist"."""

_CALL: contextvars.ContextVar[tuple[str | None, int | None, list[int]] | None] = (
    contextvars.ContextVar("tapeline_rest_call", default=None)
)

Emit = Callable[[Input], Awaitable[None]]


def journaling_hook(emit: Emit) -> Callable[[Any], Awaitable[None]]:
    """An ``on_response`` hook for :class:`MexcRestClient` that journals every answer.

    The stream and cause of the current call come from the execution task's context.
    """

    async def on_response(raw: Any) -> None:
        call = _CALL.get()
        if call is None:  # a call outside an execution task (snapshots, reconciliation)
            await emit(Input(rest_row(raw)))
            return
        stream, cause, seen = call
        seen.append(raw.status)
        await emit(Input(rest_row(raw, stream=stream, cause=cause)))

    return on_response


class ExecutionManager:
    """Executes commands; settles unknown placements by query; counts failure bursts."""

    def __init__(
        self,
        rest: MexcRestClient,
        emit: Emit,
        clock: Clock,
        *,
        settle_attempts: int = 6,
        settle_first_delay_s: float = 0.5,
        settle_max_delay_s: float = 8.0,
        connect_retries: int = 3,
        cancel_all_attempts: int = 12,
        burst_limit: int = 5,
        burst_window_s: float = 10.0,
        on_burst: Callable[[str], Awaitable[None]] | None = None,
        never_placed_after_s: float | None = None,
    ) -> None:
        self.rest = rest
        self.emit = emit
        self.clock = clock
        self.settle_attempts = settle_attempts
        self.settle_first_delay_s = settle_first_delay_s
        self.settle_max_delay_s = settle_max_delay_s
        self.connect_retries = connect_retries
        self.cancel_all_attempts = cancel_all_attempts
        self.burst_limit = burst_limit
        self.burst_window_s = burst_window_s
        self.on_burst = on_burst
        window = getattr(getattr(rest, "config", None), "recv_window", None) or 10
        self.never_placed_after_s = (2.0 * window if never_placed_after_s is None
                                     else never_placed_after_s)
        self._running: dict[trio.CancelScope, tuple[Command, int, list[int]]] = {}
        self._abandoned = False
        self._failures: deque[float] = deque()
        self._burst_reported = False
        self.in_flight = 0
        self.executed = 0
        self.unknown = 0

    async def run(
        self,
        commands: trio.MemoryReceiveChannel[tuple[int, Command]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Execute commands as they arrive, each in its own task, until the channel closes."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async with commands:
                async for cause, command in commands:
                    nursery.start_soon(self.execute, cause, command)

    async def execute(self, cause: int, command: Command) -> None:
        """Run one command; never raises for exchange or transport failures."""
        stream = getattr(command, "external_oid", None) or getattr(command, "symbol", None)
        seen: list[int] = []
        _CALL.set((stream, cause, seen))
        scope = trio.CancelScope()
        if self._abandoned:
            scope.cancel()
        self._running[scope] = (command, cause, seen)
        self.in_flight += 1
        try:
            with scope:
                await self._execute(command, cause, seen)
        finally:
            del self._running[scope]
            self.in_flight -= 1
            self.executed += 1

    def abandon(self) -> list[tuple[Command, int, bool]]:
        """Cancel every execution in flight, and any started later.

        For the end of a session whose stop could not wait for them: what they would emit
        could not be journaled any more. Returns ``(command, cause, answered)`` of each one
        cut short; ``answered`` is False when no answer of it was journaled, so that a
        placement's outcome is unknown (the caller journals that; the reconciliation of the
        next start settles it, as after a crash).
        """
        self._abandoned = True
        out = []
        for scope, (command, cause, seen) in list(self._running.items()):
            scope.cancel()
            out.append((command, cause, bool(seen)))
        return out

    async def _execute(self, command: Command, cause: int, seen: list[int]) -> None:
        if isinstance(command, CancelAll):
            await self._cancel_all(command)
            return
        for attempt in range(self.connect_retries + 1):
            try:
                await self._call(command)
                return
            except TransportError as exc:
                if isinstance(exc, UnknownOutcome):
                    await self._unknown(command, cause, seen, exc)
                    return
                # nothing left this machine: safe to try again
                if attempt == self.connect_retries:
                    await self._not_sent(command, cause, exc)
                    return
                await trio.sleep(min(0.2 * 2**attempt, 2.0))
            except UnknownOutcome as exc:
                await self._unknown(command, cause, seen, exc)
                return
            except ExchangeError as exc:
                # journaled already; the interpreter derives the outcome from the answer
                if exc.http_status == 404 or (exc.http_status or 0) >= 500:
                    await self._failure(f"{exc.endpoint}: HTTP {exc.http_status} code {exc.code}")
                return
            except MexcError as exc:
                await self._failure(f"{type(exc).__name__}: {exc}")
                return

    async def _cancel_all(self, command: CancelAll) -> None:
        """Cancel-all is what the kill switch relies on: retry it with backoff until the
        exchange accepts it (bounded by ``cancel_all_attempts``)."""
        delay = self.settle_first_delay_s
        for attempt in range(self.cancel_all_attempts):
            try:
                await self.rest.cancel_all(command.symbol)
                return
            except MexcError as exc:
                status = getattr(exc, "http_status", None)
                await self._failure(f"cancel_all failed (attempt {attempt + 1}): {exc}"
                                    + (f" HTTP {status}" if status else ""))
                await trio.sleep(delay)
                delay = min(delay * 2, self.settle_max_delay_s)

    async def _call(self, command: Command) -> Any:
        rest = self.rest
        if isinstance(command, PlaceOrder):
            return await rest.place_order(command)
        if isinstance(command, CancelOrder):
            return await rest.cancel_orders([command.order_id])
        if isinstance(command, CancelByExternalOid):
            return await rest.cancel_with_external(command.symbol, command.external_oid)
        if isinstance(command, CancelAll):
            return await rest.cancel_all(command.symbol)
        if isinstance(command, ChangeLeverage):
            return await rest.change_leverage(command)
        if isinstance(command, ChangeMargin):
            return await rest.change_margin(command)
        raise TypeError(f"cannot execute {type(command).__name__}")

    async def _not_sent(self, command: Command, cause: int, exc: Exception) -> None:
        await self._failure(f"not sent: {exc}")
        if isinstance(command, PlaceOrder):
            event = OrderRejected(command.external_oid, -1, f"never sent: {exc}",
                                  self.clock.time_ns())
            await self.emit(engine_input(event, stream=command.external_oid, cause=cause))

    async def _unknown(self, command: Command, cause: int, seen: list[int], exc: Exception) -> None:
        await self._failure(f"unknown outcome: {exc}")
        if not isinstance(command, PlaceOrder):
            return
        self.unknown += 1
        if not seen:  # no answer was journaled, so nothing else will say "unknown"
            event = OrderOutcomeUnknown(command.external_oid, str(exc)[:300], self.clock.time_ns())
            await self.emit(engine_input(event, stream=command.external_oid, cause=cause))
        await self.settle(command.symbol, command.external_oid, cause=cause)

    async def settle(self, symbol: str, external_oid: str, *, cause: int | None = None) -> bool:
        """Query an order by externalOid until the exchange answers; True when it did.

        An answer "does not exist" (2040) settles the placement as never placed once
        ``never_placed_after_s`` have passed since its answer was lost: the exchange refuses
        a signed request older than its receive window, and the default waits two windows
        (one a margin for clock skew), so the request can no longer arrive. Then
        ``OrderRejected(2040)`` is emitted and the order does not stay unknown, blocking a
        strategy waiting on it, for the rest of the session. After ``settle_attempts``
        queries without that certainty, as many more are made past the deadline.
        """
        deadline = trio.current_time() + self.never_placed_after_s
        delay = self.settle_first_delay_s
        for attempt in range(2 * self.settle_attempts):
            if attempt >= self.settle_attempts:
                delay = max(delay, deadline - trio.current_time())
            await trio.sleep(delay)
            delay = min(delay * 2, self.settle_max_delay_s)
            found = await self._query_by_external(symbol, external_oid)
            if found is True:
                return True
            if found is None and trio.current_time() >= deadline:
                waited = trio.current_time() - deadline + self.never_placed_after_s
                event = OrderRejected(
                    external_oid, ORDER_DOES_NOT_EXIST,
                    f"not found at the exchange {waited:.0f} s after its answer was lost "
                    "(beyond the receive window): the request never reached it",
                    self.clock.time_ns())
                await self.emit(engine_input(event, stream=external_oid, cause=cause))
                return True
        return False

    async def _query_by_external(self, symbol: str, external_oid: str) -> bool | None:
        """True: the exchange has the order; None: it answered "does not exist" (2040);
        False: no usable answer."""
        try:
            await self.rest.order_by_external(symbol, external_oid)
            return True
        except ExchangeError as exc:
            return None if exc.code == ORDER_DOES_NOT_EXIST else False
        except MexcError:
            return False

    async def _failure(self, what: str) -> None:
        now = trio.current_time()
        self._failures.append(now)
        while self._failures and self._failures[0] < now - self.burst_window_s:
            self._failures.popleft()
        if (len(self._failures) >= self.burst_limit and not self._burst_reported
                and self.on_burst is not None):
            self._burst_reported = True
            await self.on_burst(
                f"{len(self._failures)} unexpected failures within {self.burst_window_s:g} s "
                f"(last: {what})")

    def statistics(self) -> dict[str, int]:
        """Counters: commands executed, in flight, unknown outcomes."""
        return {"executed": self.executed, "in_flight": self.in_flight, "unknown": self.unknown}
