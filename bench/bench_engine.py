"""The live engine, end to end, beside floors measured in the same run (dev tool).

Three benchmarks of the pieces :mod:`engine.runtime` wires together, real sockets on
127.0.0.1 only, every loop bounded and guarded by ``trio.fail_after``:

* **ingest** (``engine.ingest.full`` / ``.normal``, frames/s, higher is better, target ratio
  0.75): N distinct ~840-byte ``push.depth`` frames (20 levels a side, versions exactly one
  apart) from a local WebSocket server through the engine's path: ``open_mexc_ws`` (the
  default trio-websocket connector) → ``ws_row`` → the :class:`~engine.sequencer.Sequencer`
  task (``Journal.append`` group commit, WAL, ``synchronous`` FULL as in production, or
  NORMAL) → :meth:`Core.handle` (``interpret``: decode + fold) → a no-op strategy. The book
  was given a REST snapshot first, so every delta is applied. Time runs from sending the
  server its ``go`` to the strategy seeing the N-th delta. Floor: a bare trio-websocket
  client reading the same frames from the same server. The server is a child process (a
  minimal wsproto server writing pre-encoded frames, far faster than either client).
* **tick-to-trade** (``engine.t2t.<sync>.p50`` / ``.p99``, µs, lower is better): from the
  ``Input`` of a depth frame handed to the running sequencer task to the strategy's
  ``PlaceOrder`` handed to ``dispatch`` (what the runtime's execution channel receives):
  input commit, decode, fold, strategy, risk gate, intent commit. The strategy quotes one
  far-from-market limit order per frame. Targets: p50 < 300 µs, p99 < 2 ms (absolute, given
  in the note). Floor, for context: one ``Journal.append`` of one row with the same
  ``synchronous`` setting, interleaved with the ticks (ratio = floor / value).
* **tick-to-ack** (``engine.t2a.<sync>.p50`` / ``.p99``, µs, lower is better, target ratio
  0.5 on p50, i.e. within 2x of the floor): from the frame's ``Input`` to the simulator's
  answer reaching the journaling hook, through the sequencer, ``dispatch``, the
  :class:`~adapters.mexc.execution.ExecutionManager`, :class:`MexcRestClient` (httpx with
  the engine's plain-http transport, :func:`adapters.mexc.http11.http_client`) and the
  bundled simulator served with ``serve_sim`` in a child process (rate limiting off, 10M
  USDT, market still). Floor: the same signed ``POST order/create`` (same headers, same
  body shape) over one raw keep-alive socket with h11, interleaved with the ticks. Orders
  sit far below the market; every few ticks (untimed) they are cancelled and the engine
  learns it from an ``order/batch_query`` answer, as it would live.

For each benchmark a short instrumented pass (untimed for the figures above) says where the
time goes; the breakdown is in the row's note. See docs/performance.md.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import h11
import httpx
import trio
import trio_websocket

from adapters.mexc import bodies
from adapters.mexc.auth import Credentials
from adapters.mexc.codecs import PARSER_VERSION, _fields
from adapters.mexc.config import MexcConfig
from adapters.mexc.errors import DecodeError
from adapters.mexc.execution import ExecutionManager, journaling_hook
from adapters.mexc.http11 import http_client
from adapters.mexc.interpret import interpret, rest_row, ws_row
from adapters.mexc.rest import MexcRestClient, RawResponse
from adapters.mexc.signing import rest_signature
from adapters.mexc.sim.service import SimService
from adapters.mexc.sim.wire import ok_envelope
from adapters.mexc.venue import sim_contracts
from adapters.mexc.ws import open_mexc_ws
from bench._engine_servers import SYMBOL, depth_frames, snapshot_levels
from bench.common import Report, per_second
from engine.clock import SystemClock
from engine.commands import Command, PlaceOrder
from engine.core import Core
from engine.events import OrderRejected
from engine.journal import Journal
from engine.model import BookDelta, OrderType, Side
from engine.projections import State
from engine.risk import RiskGate, RiskLimits
from engine.sequencer import Input, Sequencer, engine_input

VERSION0 = 28_111_438_870
SYNCS = ("FULL", "NORMAL")
INGEST_FRAMES = {"floor": {False: 8_000, True: 1_500}, "FULL": {False: 8_000, True: 1_500},
                 "NORMAL": {False: 8_000, True: 1_500}}
"""Frames a run, the same for every case: FULL commits in groups too now (150 frames were
~30 ms, of which the first commit's fsync and the connection's start were a large share)."""
INGEST_REPEAT = {False: 3, True: 1}
INGEST_TARGET = 0.75
T2T_TICKS = {"FULL": {False: 300, True: 40}, "NORMAL": {False: 3_000, True: 300}}
T2T_P50_US, T2T_P99_US = 300.0, 2_000.0
T2A_TICKS = {"FULL": {False: 200, True: 30}, "NORMAL": {False: 400, True: 60}}
T2A_TARGET = 0.5
CLOSE_EVERY = 10
"""Ticks between two (untimed) closings of the orders the ticks placed: open orders stay
between 0 and 10, as for a small market maker."""
WARMUP = 10
GUARD_S = {False: 150.0, True: 45.0}
"""``trio.fail_after`` bound of each benchmark's loop."""

NS_PER_US = 1_000


# ----------------------------------------------------------------------------- helpers


def _pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _us(ns: float) -> float:
    return ns / NS_PER_US


@contextlib.contextmanager
def _child(*args: str) -> Iterator[int]:
    """Start ``python -m bench._engine_servers ARGS`` and yield its port; end it after."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "bench._engine_servers", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"bench server {args[0]!r} did not start")
        yield int(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the child exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_DETAIL: list[RawResponse] = []
"""The simulator's ``contract/detail`` answer, fetched once (:func:`_fetch_detail`)."""


async def _fetch_detail() -> None:
    """Ask an in-process simulator for the contract, as the runtime's capability probe does."""
    sim = SimService(clock=SystemClock(), contracts=sim_contracts([SYMBOL]),
                     rate_limiting=False, drive_market=False)

    async def keep(raw: RawResponse) -> None:
        _DETAIL.append(raw)

    transport = httpx.MockTransport(sim.rest_handler)
    async with httpx.AsyncClient(transport=transport) as http:
        config = MexcConfig.for_simulator("http://sim.invalid")
        await MexcRestClient(http, config, None, SystemClock(), on_response=keep
                             ).contract_detail(SYMBOL)


def _priming_inputs(version0: int) -> list[Input]:
    """The journaled REST answers a live session starts from: the contract and a snapshot."""
    now = time.time_ns()
    depth = RawResponse(endpoint="depth", method="GET", path=f"/api/v1/contract/depth/{SYMBOL}",
                        query="", request_body=None, status=200,
                        headers=(("content-type", "application/json"),),
                        body_text=ok_envelope(snapshot_levels(version0)),
                        sent_ns=now - 1_000_000, received_ns=now)
    return [Input(rest_row(_DETAIL[0])), Input(rest_row(depth))]


LIMITS = RiskLimits(max_orders=1_000_000_000, window_s=1.0, max_open_orders=1_000,
                    max_order_notional=Decimal("1e12"), max_position_vol=Decimal("1e12"))
"""Risk limits that let every bench order through (every check still runs)."""


class _Sink:
    """A no-op strategy that notes when it has seen ``target`` book deltas."""

    name = "bench-sink"

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = 0
        self.done_at: float | None = None
        self.done = trio.Event()

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        if type(event) is BookDelta:
            self.seen += 1
            if self.seen == self.target:
                self.done_at = time.perf_counter()
                self.done.set()
        return ()

    def on_stop(self, view: Any) -> Sequence[Command]:
        return ()


class _Quoter:
    """One far-from-market limit buy per book delta: half the best bid, on the 0.1 tick."""

    name = "bench-quoter"
    HALF = Decimal("0.5")
    TICK = Decimal("0.1")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        if type(event) is not BookDelta:
            return ()
        self.n += 1
        book = view.book(event.symbol)
        best = book.best_bid() if book is not None else None
        if best is None:
            return ()
        price = (best[0] * self.HALF).quantize(self.TICK)
        return [PlaceOrder(event.symbol, Side.OPEN_LONG, OrderType.LIMIT, Decimal(1),
                           f"{self.prefix}{self.n}", price=price)]

    def on_stop(self, view: Any) -> Sequence[Command]:
        return ()


class _Engine:
    """Journal + state + core + sequencer for one session, as :mod:`engine.runtime` wires them."""

    def __init__(self, directory: Path, synchronous: str, strategy: Any,
                 dispatch: Callable[[int, Command], None], version0: int = VERSION0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.journal = Journal.open(directory / f"journal-{synchronous.lower()}.sqlite",
                                    synchronous=synchronous)
        self.journal.checkpoint_in_background()  # as engine.runtime does
        self.session = self.journal.start_session(
            started_ns=time.time_ns(), strategy=strategy.name, strategy_version="1",
            parser_version=PARSER_VERSION, mode="sim")
        self.state = State()
        self.core = Core(self.state, interpret, strategy=strategy, risk=RiskGate(LIMITS),
                         decode_errors=(DecodeError,))
        # as engine.runtime does: FULL commits run in a worker thread (group commit)
        self.sequencer = Sequencer(self.journal, self.session, self.core, dispatch,
                                   threaded_commits=synchronous.upper() != "NORMAL")
        self.sequencer.process(_priming_inputs(version0))
        book = self.state.view().book(SYMBOL)
        assert book is not None and book.synced and book.version == version0, "not primed"
        assert self.state.view().contract(SYMBOL) is not None, "no contract"

    def close(self) -> None:
        self.journal.close()


class _Timings:
    """Wraps engine callables on their instances (never their code) and adds up their time.

    A call made inside another timed call is booked as ``outer/inner`` (so the journal
    append inside ``commit_decisions`` is ``decisions/append``); nothing is booked while
    ``paused``.
    """

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.paused = False
        self._inside: list[str] = []

    def wrap(self, obj: Any, attr: str, label: str) -> None:
        inner = getattr(obj, attr)
        clock = time.perf_counter_ns
        inside = self._inside

        def timed(*args: Any, **kwargs: Any) -> Any:
            key = f"{inside[-1]}/{label}" if inside else label
            inside.append(label)
            t0 = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                elapsed = clock() - t0
                inside.pop()
                if not self.paused:
                    self.ns[key] = self.ns.get(key, 0) + elapsed
                    self.calls[key] = self.calls.get(key, 0) + 1

        setattr(obj, attr, timed)

    def per(self, key: str, count: int) -> float:
        """µs of ``key`` per ``count`` units (frames, ticks)."""
        return _us(self.ns.get(key, 0) / count) if count else 0.0


def _instrument(engine: _Engine) -> _Timings:
    """Time the journal appends, the decode, the whole ``handle`` and the decisions."""
    timings = _Timings()
    timings.wrap(engine.journal, "append", "append")
    timings.wrap(engine.core, "interpret", "decode")
    timings.wrap(engine.core, "handle", "handle")
    timings.wrap(engine.sequencer, "commit_decisions", "decisions")
    return timings


def _core_breakdown(spent: _Timings, count: int, what: str) -> str:
    """The engine's own share of ``count`` frames or ticks, in µs each."""
    decode = spent.per("handle/decode", count)
    fold = spent.per("handle", count) - decode
    parts = [f"input commit {spent.per('append', count):.1f}", f"decode {decode:.1f}",
             f"fold + strategy + risk {fold:.1f}"]
    if spent.calls.get("decisions/append"):
        commit = spent.per("decisions/append", count)
        parts += [f"decision encode {spent.per('decisions', count) - commit:.1f}",
                  f"decision commit {commit:.1f}"]
    return f"µs a {what}: " + ", ".join(parts)


# ----------------------------------------------------------------------------- ingest


async def _ingest_floor(url: str, n: int) -> float:
    """Seconds for a bare trio-websocket client to receive ``n`` frames."""
    async with trio_websocket.open_websocket_url(url) as ws:
        t0 = time.perf_counter()
        await ws.send_message(f"go {n}")
        for _ in range(n):
            await ws.get_message()
        return time.perf_counter() - t0


async def _ingest_engine(url: str, n: int, directory: Path, synchronous: str,
                         timings: bool = False) -> tuple[float, Sequencer, _Timings | None]:
    """Seconds for the engine to journal, decode and fold ``n`` frames off the socket."""
    _fields.clear_memos()  # every run starts cold, as a fresh session does
    sink = _Sink(n)
    engine = _Engine(directory, synchronous, sink, lambda seq, cmd: None)
    spent = _instrument(engine) if timings else None
    send, receive = trio.open_memory_channel[Input](8192)  # as engine.runtime
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.sequencer.run, receive)
            async with open_mexc_ws(url, clock=SystemClock()) as conn:
                t0 = time.perf_counter()
                await conn.send(f"go {n}")
                got = 0
                async for frame in conn:  # the market-data manager's pump
                    await send.send(Input(ws_row(frame.text, frame.received_ns)))
                    got += 1
                    if got == n:
                        break
                await sink.done.wait()
            await send.aclose()
        assert sink.done_at is not None
        book = engine.state.view().book(SYMBOL)
        assert book is not None and book.synced and book.version == VERSION0 + n, "book broke"
        return sink.done_at - t0, engine.sequencer, spent
    finally:
        engine.close()


async def _ingest(report: Report, quick: bool, port: int, directory: Path) -> None:
    url = f"ws://127.0.0.1:{port}/"
    counts = {case: by_mode[quick] for case, by_mode in INGEST_FRAMES.items()}
    await _ingest_floor(url, 200)  # warm both paths (imports, first connections)
    await _ingest_engine(url, 200, directory / "warm", "NORMAL")
    times: dict[str, list[float]] = {"floor": [], **{s: [] for s in SYNCS}}  # frames/s
    batches: dict[str, list[float]] = {s: [] for s in SYNCS}
    order = ["floor", *SYNCS]
    for rep in range(INGEST_REPEAT[quick]):
        for case in order if rep % 2 == 0 else reversed(order):
            n = counts[case]
            if case == "floor":
                times[case].append(per_second(n, await _ingest_floor(url, n)))
                continue
            seconds, seq, _ = await _ingest_engine(url, n, directory / f"{case}{rep}", case)
            times[case].append(per_second(n, seconds))
            batches[case].append(seq.events_in / seq.batches)
    # where the time goes: one instrumented NORMAL run (not part of the figures)
    n = counts["NORMAL"] // 2
    wall, seq, spent = await _ingest_engine(url, n, directory / "profile", "NORMAL",
                                            timings=True)
    assert spent is not None
    per_frame = _us(wall * 1e9 / n)
    engine_part = spent.per("append", n) + spent.per("handle", n) + spent.per("decisions", n)
    breakdown = (f"where a frame's {per_frame:.0f} µs go (instrumented NORMAL run, "
                 f"{seq.events_in / seq.batches:.0f} rows a commit): "
                 f"{_core_breakdown(spent, n, 'frame')}; the rest, "
                 f"{per_frame - engine_part:.1f} µs, is the WebSocket client (trio-websocket "
                 f"+ reader task) + ws_row + the channel hop")
    floor = statistics.median(times["floor"])
    for sync in SYNCS:
        rate = statistics.median(times[sync])
        report.add(
            f"engine.ingest.{sync.lower()}", rate, "frames/s", floor,
            target_ratio=INGEST_TARGET,
            note=(f"{'quick run: ' if quick else ''}{counts[sync]} push.depth frames "
                  f"(~840 B, 20+20 levels) open_mexc_ws -> ws_row -> Sequencer "
                  f"(synchronous={sync}, {statistics.median(batches[sync]):.0f} rows a "
                  f"commit) -> Core "
                  f"(decode + fold) -> no-op strategy; floor: bare trio-websocket client "
                  f"reading {counts['floor']} of the same frames from the same server "
                  f"({_us(1e9 / floor):.0f} µs a frame); median of {INGEST_REPEAT[quick]}; "
                  f"{breakdown}"))


# ----------------------------------------------------------------------------- tick-to-trade


async def _drained(seq: Sequencer, target: int, executor: Any = None) -> None:
    """Sleep in short real steps until ``seq`` has folded ``target`` inputs (and
    ``executor`` has nothing in flight); bounded by the caller's guard.

    Only for untimed waits: a busy loop of ``trio.sleep(0)`` would hold the GIL and starve
    any worker thread of the engine's (e.g. a journal commit off the event loop)."""
    while seq.events_in < target or (executor is not None and executor.in_flight):
        await trio.sleep(0.0002)


class _Signal:
    """A reusable wake-up: ``arm()`` before the tick, ``fire()`` from a callback."""

    def __init__(self) -> None:
        self.event = trio.Event()

    def arm(self) -> None:
        self.event = trio.Event()

    def fire(self) -> None:
        self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


async def _tick_to_trade(directory: Path, synchronous: str, ticks: int,
                         timings: bool = False) -> tuple[list[int], list[int], _Timings | None]:
    """Latencies (ns) of ``ticks`` frame → dispatch, and of as many one-row commits."""
    frames = depth_frames(ticks + WARMUP, seed=11)
    dispatched: list[int] = []
    signal = _Signal()

    def dispatch(seq: int, command: Command) -> None:
        dispatched.append(time.perf_counter_ns())
        signal.fire()

    quoter = _Quoter(f"t{secrets.token_hex(3)}")
    engine = _Engine(directory, synchronous, quoter, dispatch)
    spent = _instrument(engine) if timings else None
    floor_journal = Journal.open(directory / "floor.sqlite", synchronous=synchronous)
    floor_journal.checkpoint_in_background()  # configured as the engine's journal
    floor_session = floor_journal.start_session(started_ns=time.time_ns())
    latencies: list[int] = []
    commits: list[int] = []
    placed: list[str] = []
    send, receive = trio.open_memory_channel[Input](8192)
    seq = engine.sequencer
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(seq.run, receive)
            for i, text in enumerate(frames):
                row = ws_row(text, time.time_ns())
                signal.arm()
                t0 = time.perf_counter_ns()
                await send.send(Input(row))
                await signal.wait()
                if i >= WARMUP:
                    latencies.append(dispatched[-1] - t0)
                placed.append(f"{quoter.prefix}{quoter.n}")
                # the floor: one commit of one such row, same synchronous setting
                t1 = time.perf_counter_ns()
                floor_journal.append(floor_session, [row])
                if i >= WARMUP:
                    commits.append(time.perf_counter_ns() - t1)
                if len(placed) == CLOSE_EVERY:  # untimed: their answers come back
                    if spent is not None:
                        spent.paused = True
                    now = time.time_ns()
                    target = seq.events_in + len(placed)  # a tick is done when dispatched
                    for oid in placed:
                        await send.send(engine_input(OrderRejected(oid, -1, "bench", now),
                                                     stream=oid))
                    placed.clear()
                    await _drained(seq, target)
                    if spent is not None:
                        spent.paused = False
            await send.aclose()
        assert len(latencies) == ticks
        assert len(engine.state.view().open_orders(SYMBOL)) == len(placed)
        return latencies, commits, spent
    finally:
        engine.close()
        floor_journal.close()


async def _t2t(report: Report, quick: bool, directory: Path) -> None:
    for sync in SYNCS:
        ticks = T2T_TICKS[sync][quick]
        lat, commits, _ = await _tick_to_trade(directory / f"t2t-{sync}", sync, ticks)
        # where the time goes: a shorter instrumented run (not part of the figures)
        n_prof = max(20, ticks // 4)
        lat_p, _, spent = await _tick_to_trade(directory / f"t2t-prof-{sync}", sync, n_prof,
                                               timings=True)
        assert spent is not None
        count = n_prof + WARMUP
        mean = _us(statistics.mean(lat_p))
        engine_part = (spent.per("append", count) + spent.per("handle", count)
                       + spent.per("decisions", count))
        breakdown = (f"where a tick goes (instrumented run, mean {mean:.0f} µs): "
                     f"{_core_breakdown(spent, count, 'tick')}; channel hop + scheduling "
                     f"~{max(0.0, mean - engine_part):.0f} µs")
        for name, q, target in (("p50", 0.5, T2T_P50_US), ("p99", 0.99, T2T_P99_US)):
            value = _us(_pct(lat, q))
            floor = _us(_pct(commits, q))
            met = "met" if value < target else "MISSED"
            report.add(
                f"engine.t2t.{sync.lower()}.{name}", value, "µs", floor, higher_is_better=False,
                note=(f"{'quick run: ' if quick else ''}{ticks} ticks, one order each, "
                      f"synchronous={sync}; target {name} < {target:,.0f} µs: {met}; floor: "
                      f"{name} of Journal.append of one ~840 B row, same setting, interleaved "
                      f"(a tick makes two commits); {breakdown}"))


# ----------------------------------------------------------------------------- tick-to-ack


class _RawOrders:
    """The floor of tick-to-ack: signed ``POST order/create`` over one keep-alive socket, h11."""

    def __init__(self, port: int, credentials: Credentials, user_agent: str) -> None:
        self.port = port
        self.credentials = credentials
        self.host = f"127.0.0.1:{port}".encode()
        self.user_agent = user_agent.encode()
        self.stream: trio.SocketStream | None = None
        self.conn = h11.Connection(h11.CLIENT)

    async def open(self) -> None:
        self.stream = await trio.open_tcp_stream("127.0.0.1", self.port)

    async def aclose(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()

    async def place(self, command: PlaceOrder) -> tuple[int, bytes]:
        """One round trip; returns the status and the body."""
        assert self.stream is not None
        body = bodies.json_bytes(bodies.place_order_body(command))
        now_ms = time.time_ns() // 1_000_000
        secret = self.credentials.secret.reveal()
        signature = rest_signature(self.credentials.api_key, secret, now_ms, body)
        headers = [
            (b"host", self.host), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
            (b"connection", b"keep-alive"), (b"user-agent", self.user_agent),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"apikey", self.credentials.api_key.encode()),
            (b"request-time", str(now_ms).encode()), (b"signature", signature.encode()),
        ]
        conn = self.conn
        data = conn.send(h11.Request(method="POST", target="/api/v1/private/order/create",
                                     headers=headers))
        data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        status = 0
        chunks: list[bytes] = []
        while True:  # ends with the answer's EndOfMessage
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                conn.start_next_cycle()
                return status, b"".join(chunks)
            else:
                raise RuntimeError(f"unexpected answer: {event!r}")


LEGS = ("t0", "dispatch", "request", "response", "ack")
"""Marks of a tick in the instrumented run: frame handed over, command dispatched, httpx
about to send (after building and signing), answer headers read, answer at the journal."""


async def _tick_to_ack(port: int, credentials: Credentials, directory: Path, synchronous: str,
                       ticks: int, timings: bool = False
                       ) -> tuple[list[int], list[int], dict[str, list[int]]]:
    """Latencies (ns) of ``ticks`` frame → answer, and of as many raw h11 round trips."""
    clock = SystemClock()
    config = MexcConfig.for_simulator(f"http://127.0.0.1:{port}",
                                      rate_limits={"default": (1_000_000_000, 1.0)})
    frames = depth_frames(ticks + WARMUP, seed=13)
    marks: dict[str, list[int]] = {leg: [] for leg in LEGS}
    ticking = False
    answered = _Signal()
    inputs_send, inputs_recv = trio.open_memory_channel[Input](8192)
    cmd_send, cmd_recv = trio.open_memory_channel[tuple[int, Command]](4096)

    def mark(leg: str) -> None:
        if ticking:
            marks[leg].append(time.perf_counter_ns())

    async def emit(item: Input) -> None:
        if item.row.kind == "rest.order_create":
            mark("ack")
            answered.fire()
        await inputs_send.send(item)

    def dispatch(seq: int, command: Command) -> None:
        if timings:
            mark("dispatch")
        cmd_send.send_nowait((seq, command))

    async def on_request(request: httpx.Request) -> None:
        mark("request")

    async def on_response(response: httpx.Response) -> None:
        mark("response")

    hooks: dict[str, list[Callable[..., Any]]] = (
        {"request": [on_request], "response": [on_response]} if timings else {})
    quoter = _Quoter(f"a{secrets.token_hex(3)}")
    engine = _Engine(directory, synchronous, quoter, dispatch)
    seq = engine.sequencer
    latencies: list[int] = []
    floor: list[int] = []
    async with http_client(timeout=10.0, event_hooks=hooks) as http:
        rest = MexcRestClient(http, config, credentials, clock,
                              on_response=journaling_hook(emit))
        executor = ExecutionManager(rest, emit, clock)
        raw = _RawOrders(port, credentials, http.headers["user-agent"])
        await raw.open()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(seq.run, inputs_recv)
                await nursery.start(executor.run, cmd_recv)
                expected = seq.events_in
                for i, text in enumerate(frames):
                    row = ws_row(text, time.time_ns())
                    ticking = True
                    answered.arm()
                    mark("t0")
                    await emit(Input(row))
                    await answered.wait()
                    ticking = False
                    if i >= WARMUP:
                        latencies.append(marks["ack"][i] - marks["t0"][i])
                    expected += 2  # the frame, then the answer
                    await _drained(seq, expected, executor)
                    # the floor: the same request over a raw socket
                    command = PlaceOrder(SYMBOL, Side.OPEN_LONG, OrderType.LIMIT, Decimal(1),
                                         f"r{quoter.prefix}{i}", price=Decimal("50000.0"))
                    t1 = time.perf_counter_ns()
                    status, body = await raw.place(command)
                    if i >= WARMUP:
                        floor.append(time.perf_counter_ns() - t1)
                    assert status == 200 and b'"success":true' in body, body[:200]
                    if (i + 1) % CLOSE_EVERY == 0:  # untimed: cancel, learn it by query
                        expected += await _close_orders(engine, rest)
                        await _drained(seq, expected)
                await inputs_send.aclose()
                await cmd_send.aclose()
        finally:
            await raw.aclose()
            engine.close()
    orders = engine.state.view().orders()
    accepted = sum(1 for o in orders if o.order_id)
    assert accepted == len(frames), f"only {accepted} of {len(frames)} orders were accepted"
    assert len(engine.state.view().open_orders(SYMBOL)) < CLOSE_EVERY
    for leg in LEGS:
        del marks[leg][:WARMUP]
    return latencies, floor, marks


async def _close_orders(engine: _Engine, rest: MexcRestClient) -> int:
    """Cancel every order at the simulator, and let the engine learn it from the journaled
    ``order/batch_query`` answer; returns how many inputs that journaled."""
    ids = [o.order_id for o in engine.state.view().open_orders(SYMBOL) if o.order_id]
    await rest.cancel_all(SYMBOL)
    if ids:
        await rest.order_batch_query(ids[:50])
    return 2 if ids else 1


def _t2a_breakdown(marks: dict[str, list[int]]) -> str:
    """Median µs of each leg of a tick in the instrumented run."""
    names = ("engine (commit, decode, fold, strategy, risk, commit)",
             "execution task + request build + signing", "httpx send + simulator + headers",
             "body + RawResponse + journaling hook")
    parts = []
    for name, (a, b) in zip(names, itertools.pairwise(LEGS), strict=True):
        spans = [y - x for x, y in zip(marks[a], marks[b], strict=True)]
        parts.append(f"{name} {_us(statistics.median(spans)):.0f}")
    return "legs of a tick (instrumented run, medians, µs): " + ", ".join(parts)


async def _t2a(report: Report, quick: bool, port: int, credentials: Credentials,
               directory: Path) -> None:
    for sync in SYNCS:
        ticks = T2A_TICKS[sync][quick]
        lat, floor, _ = await _tick_to_ack(port, credentials, directory / f"t2a-{sync}", sync,
                                           ticks)
        n_prof = max(20, ticks // 5)
        _, _, marks = await _tick_to_ack(port, credentials, directory / f"t2a-prof-{sync}",
                                         sync, n_prof, timings=True)
        breakdown = _t2a_breakdown(marks)
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            value = _us(_pct(lat, q))
            fl = _us(_pct(floor, q))
            report.add(
                f"engine.t2a.{sync.lower()}.{name}", value, "µs", fl, higher_is_better=False,
                target_ratio=T2A_TARGET if name == "p50" else None,
                note=(f"{'quick run: ' if quick else ''}{ticks} ticks, one POST order/create "
                      f"each, synchronous={sync}, simulator (hypercorn) in a child process; "
                      f"floor: {name} of the same signed request over a raw keep-alive socket "
                      f"+ h11, interleaved; {breakdown}"))


# ----------------------------------------------------------------------------- run


async def _main(report: Report, quick: bool, ws_port: int, sim_port: int,
                credentials: Credentials, directory: Path) -> None:
    if not _DETAIL:
        await _fetch_detail()
    with trio.fail_after(GUARD_S[quick]):
        await _ingest(report, quick, ws_port, directory)
    with trio.fail_after(GUARD_S[quick]):
        await _t2t(report, quick, directory)
    with trio.fail_after(GUARD_S[quick]):
        await _t2a(report, quick, sim_port, credentials, directory)


def run(report: Report, quick: bool) -> None:
    """Ingest, tick-to-trade and tick-to-ack, each beside its floor."""
    directory = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    credentials = Credentials("mx0bench" + secrets.token_hex(8), secrets.token_hex(16))
    n = max(by_mode[quick] for by_mode in INGEST_FRAMES.values())
    try:
        with _child("ws", str(n), "7", str(VERSION0)) as ws_port, \
                _child("sim", credentials.api_key, credentials.secret.reveal()) as sim_port:
            trio.run(_main, report, quick, ws_port, sim_port, credentials, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
