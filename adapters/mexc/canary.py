"""The canary: every endpoint and channel the engine uses, called once and checked (shell).

Theory of operation
-------------------
Run it after MEXC changes something (a new host, a maintenance window, a changelog entry).
:meth:`Canary.run` calls the public REST endpoints the engine relies on, then, with
credentials, the private reads, and opens two WebSocket connections like the engine does:
a public one subscribed to the market channels and a logged-in one for the private pushes.
While both are open it places one minimal order far from the market (post-only, the
contract's minimum volume, priced 50 % below the last price, so it cannot fill), queries
it every way the engine does, and cancels it. It never calls ``cancel_all``, which would
touch the operator's other orders, and it changes no leverage or margin.

Every answer and frame is journaled exactly as received, as in a trading session: REST
answers through :func:`adapters.mexc.interpret.rest_row` (the order calls with the order's
externalOid as stream and the intent as cause), frames through
:func:`~adapters.mexc.interpret.ws_row`, and the intent (``cmd.place_order``, ``order.sent``)
before the placement leaves. One task writes: the WebSocket pumps hand frames to the main
task through a channel, and it journals them in arrival order between REST calls.

A *finding* is an answer whose shape differs from what the codecs expect: a
:class:`~adapters.mexc.errors.DecodeError`, fields reported in ``WsFrame.unknown_fields``,
an unexpected envelope code or ``rs.error``, an endpoint that is gone (HTTP 404). Each is
journaled as ``engine.decode_failed`` (``error`` starts with ``canary:``, ``cause`` is the
row it is about), so ``tapeline audit anomalies`` lists them too.

If the canary is interrupted after placing, a shielded, bounded clean-up cancels the order
by externalOid.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs
import trio

from adapters.mexc.codecs import decode_ws
from adapters.mexc.errors import (
    AuthError,
    DecodeError,
    ExchangeError,
    MexcError,
    PermissionDeniedError,
    TradingDisabledError,
    TransportError,
    UnknownOutcome,
)
from adapters.mexc.interpret import rest_row, ws_row
from adapters.mexc.rest import MexcRestClient, RawResponse
from adapters.mexc.ws import Subscription, WsError, WsLoginFailed, open_mexc_ws
from adapters.mexc.ws_transport import Connect
from engine.clock import Clock
from engine.codec import encode
from engine.commands import CancelOrder, PlaceOrder
from engine.doctor_checks import CheckResult, Verdict
from engine.events import (
    CommandIssued,
    Connected,
    DecodeFailed,
    Disconnected,
    EngineEvent,
    NewEvent,
    OrderOutcomeUnknown,
    OrderRequested,
    OrderSent,
)
from engine.journal import Journal
from engine.model import OpenType, OrderState, OrderType, Side

__all__ = ["PUBLIC_CHANNELS", "Canary", "CanaryReport"]

PUBLIC_CHANNELS: tuple[str, ...] = (
    "depth", "deal", "ticker", "funding.rate", "index.price", "fair.price",
)  # fmt: skip
"""Market channels the canary subscribes to (those the engine's feeds use)."""

PRIVATE_PUSH = "push.personal.order"
"""The private push the canary's own order must cause."""

_PRICE_FACTOR = Decimal("0.5")


@attrs.frozen
class CanaryReport:
    """What the canary found: one result per endpoint and channel, and the counts."""

    results: tuple[CheckResult, ...]
    session: str
    rest_calls: int
    frames: int
    findings: int


@attrs.define
class _Channel:
    frames: int = 0
    acked: bool = False
    problems: list[str] = attrs.Factory(list)
    unknown: set[str] = attrs.Factory(set)


class Canary:
    """One canary run into ``journal`` (a writer) under ``session`` (already started).

    ``http``, ``config``, ``credentials``, ``ws_url`` and ``connect`` are a venue's (see
    :class:`engine.runtime.Venue`); without credentials only public calls and channels run.
    ``ws_wait_s`` bounds the wait for pushes once everything else is done.
    """

    def __init__(self, journal: Journal, session: str, *, http: Any, config: Any,
                 credentials: Any | None, ws_url: str, connect: Connect | None,
                 clock: Clock, symbol: str, ws_wait_s: float = 10.0) -> None:
        self.journal = journal
        self.session = session
        self.clock = clock
        self.symbol = symbol
        self.credentials = credentials
        self.ws_url = ws_url
        self.connect = connect
        self.ws_wait_s = ws_wait_s
        self.rest = MexcRestClient(http, config, credentials, clock, on_response=self._on_rest)
        self.results: list[CheckResult] = []
        self.rest_calls = 0
        self.frames = 0
        self.findings = 0
        self._stream: str | None = None
        self._cause: int | None = None
        self._last_rest_seq: int | None = None
        self._last_rest_kind: str | None = None
        self._last_error: Exception | None = None
        self._channels: dict[str, _Channel] = {}
        self._frames_in: trio.MemoryReceiveChannel[tuple[str, Any]] | None = None

    # ------------------------------------------------------------------ journaling

    def _append(self, row: NewEvent) -> int:
        return self.journal.append(self.session, [row])[0]

    def _engine(self, event: EngineEvent, *, stream: str | None = None,
                cause: int | None = None) -> int:
        return self._append(encode(event, stream=stream, cause=cause))

    def _finding(self, kind: str, text: str, verdict: Verdict, name: str,
                 action: str | None, cause: int | None) -> None:
        self.findings += 1
        self._engine(DecodeFailed(kind, f"canary: {text}"[:500], self.clock.time_ns()),
                     cause=cause)
        self.results.append(CheckResult(name, verdict, text, action,
                                        {"seq": cause} if cause is not None else {}))

    async def _on_rest(self, raw: RawResponse) -> None:
        self._drain_frames()
        row = rest_row(raw, stream=self._stream, cause=self._cause)
        self._last_rest_seq, self._last_rest_kind = self._append(row), row.kind

    # ------------------------------------------------------------------ REST

    async def _call(self, endpoint: str, fn: Callable[[], Awaitable[Any]], *,
                    stream: str | None = None, cause: int | None = None,
                    expect_refusal: bool = False, note: str = "") -> tuple[bool, Any]:
        """Call one endpoint; record OK or the finding. Returns (answered ok, value).

        ``endpoint`` names the call until it is answered; then the journaled row's kind
        (``order_place`` becomes ``order_create`` or ``order_submit``).
        """
        self._stream, self._cause, self._last_rest_seq = stream, cause, None
        self._last_rest_kind = self._last_error = None
        self.rest_calls += 1
        value: Any = None
        try:
            value = await fn()
        except MexcError as exc:
            self._last_error = exc
        finally:
            self._stream = self._cause = None
        endpoint = (self._last_rest_kind or f"rest.{endpoint}").removeprefix("rest.")
        label, seq, error = f"{endpoint}{note}", self._last_rest_seq, self._last_error
        name, kind = f"rest {label}", f"rest.{endpoint}"
        if error is None:
            self.results.append(CheckResult(name, Verdict.OK, f"{label}: answer decodes",
                                            data={"seq": seq}))
            return True, value
        if isinstance(error, DecodeError):
            self._finding(kind, f"{label}: answer does not fit the codec: {error.reason}",
                          Verdict.FAIL, name, "MEXC changed this answer's shape: update "
                          "adapters/mexc/codecs (the journal holds the exact answer)", seq)
        elif isinstance(error, TradingDisabledError):
            self._finding(kind, f"{label}: trading unavailable: {error}",
                          Verdict.WARN if expect_refusal else Verdict.FAIL, name,
                          "paper-trade with --mode sim (or --mode shadow once available) "
                          "until MEXC reopens API trading", seq)
        elif isinstance(error, AuthError | PermissionDeniedError):
            self._finding(kind, f"{label}: refused: {error}", Verdict.FAIL, name,
                          "check the key and secret, the key's permissions (read + trade) "
                          "and its IP whitelist", seq)
        elif isinstance(error, ExchangeError) and error.http_status == 404:
            self._finding(kind, f"{label}: endpoint gone (HTTP 404)", Verdict.FAIL, name,
                          "MEXC moved or removed it: check [mexc] generation and rest_base, "
                          "and adapters/mexc/endpoints.py", seq)
        elif isinstance(error, ExchangeError):
            self._finding(kind, f"{label}: unexpected answer: {error}", Verdict.FAIL, name,
                          "compare with docs/mexc-protocol.md; the journal holds the answer",
                          seq)
        elif isinstance(error, TransportError):
            self._finding(kind, f"{label}: no usable answer: {error.reason}", Verdict.FAIL,
                          name, "retry later; if it persists MEXC changed the endpoint or is "
                          "down", seq)
        else:
            self._finding(kind, f"{label}: {error}", Verdict.FAIL, name, None, seq)
        return False, None

    # ------------------------------------------------------------------ WebSocket

    def _drain_frames(self) -> None:
        if self._frames_in is None:
            return
        while True:
            try:
                label, item = self._frames_in.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            self._frame(label, item)

    def _frame(self, label: str, item: Any) -> None:
        now = self.clock.time_ns()
        if isinstance(item, tuple):  # (marker, detail) from a pump
            marker, detail = item
            if marker == "connected":
                self._engine(Connected(f"canary.{label}", self.ws_url, now))
            elif marker == "closed":
                self._engine(Disconnected(f"canary.{label}", detail, now))
            else:
                action = ("check the key, secret and IP whitelist" if marker == "login"
                          else "check the WebSocket URL ([mexc] ws_url) and the network")
                self._finding(f"ws.{label}", f"{label} websocket: {detail}", Verdict.FAIL,
                              f"ws {label}", action, None)
            return
        if isinstance(item, WsError):
            self._finding(f"ws.{label}", f"{label} websocket frame: {item}", Verdict.FAIL,
                          f"ws {label}", "the journal has no copy of a broken frame; "
                          "compare with docs/mexc-ws.md", None)
            return
        self.frames += 1
        seq = self._append(ws_row(item.text, item.received_ns))
        try:
            frame = decode_ws(item.text)
        except DecodeError as exc:
            channel = self._channel(exc.where)
            channel.frames += 1
            if len(channel.problems) < 3:
                channel.problems.append(exc.reason)
                self._finding(f"ws.{exc.where}", f"{exc.where}: frame does not fit the codec: "
                              f"{exc.reason}", Verdict.FAIL, f"ws {exc.where}",
                              "update adapters/mexc/codecs (the journal holds the frame)", seq)
            return
        channel = self._channel(frame.channel)
        channel.frames += 1
        new = set(frame.unknown_fields) - channel.unknown
        if new:
            channel.unknown |= new
            self._finding(f"ws.{frame.channel}", f"{frame.channel}: unknown fields "
                          f"{', '.join(sorted(new))}", Verdict.WARN, f"ws {frame.channel}",
                          "new fields are tolerated; check whether they change meaning", seq)
        if frame.error is not None:
            self._finding(f"ws.{frame.channel}", f"{frame.channel}: {frame.error}"[:300],
                          Verdict.FAIL, f"ws {frame.channel}",
                          "the exchange refused a request the engine sends", seq)
        elif frame.ack is not None:
            channel.acked = True

    def _channel(self, name: str) -> _Channel:
        return self._channels.setdefault(name, _Channel())

    async def _pump(self, label: str, send: trio.MemorySendChannel[tuple[str, Any]],
                    *, subscriptions: Sequence[Subscription] = (),
                    credentials: Any | None = None,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        reason = "closed by the canary"
        try:
            async with open_mexc_ws(self.ws_url, clock=self.clock, credentials=credentials,
                                    subscriptions=subscriptions, connect=self.connect) as conn:
                await send.send((label, ("connected", "")))
                task_status.started()
                started = True
                async for frame in conn:
                    await send.send((label, frame))
        except WsLoginFailed as exc:
            await send.send((label, ("login", f"login refused: {exc.detail}")))
            reason = "login refused"
        except WsError as exc:
            await send.send((label, ("failed", str(exc))))
            reason = f"lost: {exc}"
        finally:
            if not started:
                task_status.started()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await send.send((label, ("closed", reason)))

    def _ws_results(self, want: Sequence[str]) -> None:
        for name in want:
            channel = self._channels.get(name)
            if channel is None or channel.frames == 0:
                self.results.append(CheckResult(
                    f"ws {name}", Verdict.WARN, f"{name}: no frame within {self.ws_wait_s:g} s",
                    "a quiet market can explain it; run the canary again, and if it stays "
                    "silent compare the channel with docs/mexc-ws.md"))
            elif not channel.problems and not channel.unknown:
                self.results.append(CheckResult(
                    f"ws {name}", Verdict.OK, f"{name}: {channel.frames} frames decode",
                    data={"frames": channel.frames}))

    # ------------------------------------------------------------------ the run

    async def run(self) -> CanaryReport:
        """Run every call and channel; return the report (findings are journaled)."""
        sym = self.symbol
        await self._call("ping", self.rest.ping)
        _, contracts = await self._call("detail", self.rest.contract_detail)
        contract = next((c for c in contracts or () if c.symbol == sym), None)
        _, ticker = await self._call("ticker", lambda: self.rest.ticker(sym))
        await self._call("depth", lambda: self.rest.depth(sym))
        await self._call("depth_commits", lambda: self.rest.depth_commits(sym, 1000))
        if self.credentials is not None:
            await self._call("assets", self.rest.assets)
            await self._call("open_positions", self.rest.open_positions)
            await self._call("open_orders", lambda: self.rest.open_orders(page_num=1,
                                                                          page_size=100))
        subs = [Subscription(ch, {"symbol": sym}) for ch in PUBLIC_CHANNELS]
        want = [f"push.{ch}" for ch in PUBLIC_CHANNELS]
        send, recv = trio.open_memory_channel[tuple[str, Any]](4096)
        self._frames_in = recv
        async with trio.open_nursery() as nursery:
            await nursery.start(self._pump_task, "public", send.clone(), subs, None)
            if self.credentials is not None:
                await nursery.start(self._pump_task, "private", send.clone(), (),
                                    self.credentials)
                want = [*want, "rs.login"]
                if await self._order_round_trip(contract, ticker):
                    want.append(PRIVATE_PUSH)
            send.close()
            await self._wait_for(want)
            nursery.cancel_scope.cancel()
        self._drain_frames()
        self._frames_in = None
        self._ws_results(want)
        return CanaryReport(tuple(self.results), self.session, self.rest_calls, self.frames,
                            self.findings)

    async def _pump_task(self, label: str, send: trio.MemorySendChannel[tuple[str, Any]],
                         subs: Sequence[Subscription], credentials: Any | None,
                         *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                         ) -> None:
        async with send:
            await self._pump(label, send, subscriptions=subs, credentials=credentials,
                             task_status=task_status)

    async def _wait_for(self, want: Sequence[str]) -> None:
        assert self._frames_in is not None
        with trio.move_on_after(self.ws_wait_s):
            while not all(self._channel(w).frames for w in want):
                try:
                    label, item = await self._frames_in.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                self._frame(label, item)

    # ------------------------------------------------------------------ the order

    def _canary_order(self, contract: Any, ticker: Any) -> PlaceOrder | None:
        ref = getattr(ticker, "last_price", None) or getattr(ticker, "fair_price", None)
        if contract is None or ref is None:
            return None
        unit = contract.price_unit
        price = (Decimal(ref) * _PRICE_FACTOR / unit).to_integral_value(ROUND_DOWN) * unit
        if price <= 0:
            return None
        leverage = max(int(contract.min_leverage), min(10, int(contract.max_leverage)))
        oid = f"tlcanary{self.session[:12]}01"
        return PlaceOrder(symbol=contract.symbol, side=Side.OPEN_LONG,
                          order_type=OrderType.POST_ONLY, vol=contract.min_vol,
                          external_oid=oid, price=price, open_type=OpenType.ISOLATED,
                          leverage=leverage)

    async def _order_round_trip(self, contract: Any, ticker: Any) -> bool:
        """Place, query and cancel the canary order; True when the exchange accepted it."""
        order = self._canary_order(contract, ticker)
        if order is None:
            self.results.append(CheckResult(
                "order", Verdict.WARN, f"{self.symbol}: no contract or last price; the order "
                "round trip was skipped", "check the symbol and the ticker answer above"))
            return False
        oid, sym = order.external_oid, order.symbol
        now = self.clock.time_ns()
        intent = self._engine(OrderRequested(order, now), stream=oid)
        self._engine(OrderSent(oid, now), stream=oid, cause=intent)
        placed = False
        try:
            ok, order_id = await self._call("order_place", lambda: self.rest.place_order(order),
                                            stream=oid, cause=intent, expect_refusal=True)
            placed = ok
            if not ok:
                # An unknown outcome is settled by query; a definite refusal leaves nothing.
                if isinstance(self._last_error, UnknownOutcome):
                    self._engine(OrderOutcomeUnknown(oid, str(self._last_error)[:300],
                                                     self.clock.time_ns()),
                                 stream=oid, cause=intent)
                    placed = await self._settle(sym, oid, intent)
                return placed
            await self._call("order_get", lambda: self.rest.order_get(order_id, sym),
                             stream=oid, cause=intent)
            await self._call("order_external", lambda: self.rest.order_by_external(sym, oid),
                             stream=oid, cause=intent)
            cancel = self._engine(CommandIssued(CancelOrder(order_id, sym),
                                                self.clock.time_ns()), stream=oid)
            ok, answer = await self._call("order_cancel",
                                          lambda: self.rest.cancel_orders([order_id]),
                                          stream=oid, cause=cancel)
            if ok and all(r.ok for r in answer):
                placed = not await self._confirm_cancelled(sym, oid, cancel)
            return True
        finally:
            if placed:
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    await self._call("order_cancel_with_external",
                                     lambda: self.rest.cancel_with_external(sym, oid),
                                     stream=oid, cause=intent)
                    if not await self._confirm_cancelled(sym, oid, intent):
                        self.results.append(CheckResult(
                            "order", Verdict.FAIL, f"the canary order {oid} may still be open",
                            f"cancel it by hand (externalOid {oid} on {sym})"))

    async def _settle(self, sym: str, oid: str, cause: int) -> bool:
        """After a placement without a definite answer: True if the order exists."""
        for _ in range(3):
            try:
                self._stream, self._cause = oid, cause
                found = await self.rest.order_by_external(sym, oid)
            except ExchangeError:
                return False  # not found: nothing was placed
            except (TransportError, UnknownOutcome, DecodeError):
                await trio.sleep(1)
                continue
            finally:
                self._stream = self._cause = None
            return found is not None
        return True  # cannot tell: assume it exists, so the clean-up cancels it

    async def _confirm_cancelled(self, sym: str, oid: str, cause: int) -> bool:
        ok, found = await self._call("order_external",
                                     lambda: self.rest.order_by_external(sym, oid),
                                     stream=oid, cause=cause, note=" (after the cancel)")
        if not ok:
            return False
        state = getattr(found, "state", None)
        if state in (OrderState.CANCELLED,):
            return True
        self.results.append(CheckResult(
            "order", Verdict.FAIL, f"after the cancel the canary order is in state {state}",
            f"cancel it by hand (externalOid {oid} on {sym}) and compare the cancel answer in "
            "the journal"))
        return False

