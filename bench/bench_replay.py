"""Replay speed beside the floor of reading the same rows and ``orjson.loads`` alone (dev tool).

A synthetic recorded session of N wire-format market events (1M; 50k with ``--quick``) is
written straight through :meth:`Journal.append` in big batches: a REST ``depth`` snapshot,
then ``push.depth`` deltas (contiguous versions, one to three levels each), ``push.deal``
trades and ``push.ticker`` frames, as a market-maker session that never quoted (so every
event reaches the strategy, and verification compares an empty decision stream).

Rows:

* ``replay.events`` — :func:`engine.replay.replay_session` with verification (decisions and
  the final projections compared with the journal's fold), full projections and the market
  maker, chain check excluded; floor: the same rows read with :meth:`Journal.read` and each
  body parsed with ``orjson.loads``, timed once before the fold and once after the replay
  (the mean of the two: the machine's speed drifts). Target ratio 0.5.
* ``replay.fold`` — the streaming read + fold alone (:func:`engine.rebuild.rebuild_state`),
  whose target is at least 100k events/s; same floor.
* ``replay.wall_1m`` — wall time of what ``tapeline replay`` does for the whole session
  (hash-chain check with :func:`~engine.replay_plan.require_chain`, in worker processes from
  :data:`~engine.chaincheck.PARALLEL_MIN_ROWS` rows, then the verified replay), scaled to 1M
  events in quick runs (whose check runs in process), beside
  the floor of reading the same rows and ``orjson.loads`` alone (lower is better); the
  target, at most 15 s, is judged in the note.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from adapters.mexc.codecs import PARSER_VERSION
from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret
from bench.common import Report, per_second
from engine.chaincheck import PARALLEL_MIN_ROWS, default_workers
from engine.events import NewEvent, canonical_json
from engine.journal import Journal
from engine.rebuild import rebuild_state
from engine.replay import config_hash, replay_session
from engine.replay_plan import require_chain
from engine.risk import RiskLimits

T = TypeVar("T")
SYMBOL = "BTC_USDT"
T0_NS = 1_767_225_600_000_000_000
FULL_EVENTS = 1_000_000
QUICK_EVENTS = 50_000
BATCH = 20_000
TARGET_RATIO = 0.5
FOLD_TARGET = 100_000.0
WALL_BUDGET_S = 15.0


def _frames(n: int, seed: int = 7) -> Iterator[tuple[int, str, str]]:
    """(ts_ns, kind, body) of ``n`` market events after the snapshot.

    Level lists, deals and tickers come from small pools drawn once (so that writing 1M
    events is bounded by the journal, not by the generator); depth versions are contiguous.
    """
    rng = random.Random(seed)
    mid = 1_000_000  # in 0.1 ticks
    asks = [",".join(f"[{(mid + k) / 10},{rng.randint(0, 400)},{rng.randint(1, 9)}]"
                     for k in rng.sample(range(1, 21), rng.randint(1, 3))) for _ in range(997)]
    bids = [",".join(f"[{(mid - k) / 10},{rng.randint(0, 400)},{rng.randint(1, 9)}]"
                     for k in rng.sample(range(0, 20), rng.randint(0, 2))) for _ in range(991)]
    deals = [f'{{"p":{(mid + (s == 1)) / 10},"v":{rng.randint(1, 90)},"T":{s},"O":3,"M":2,'
             for s in (rng.choice((1, 2)) for _ in range(499))]
    last = mid / 10
    ticker = (f'{{"symbol":"{SYMBOL}","lastPrice":{last},"bid1":{last},"ask1":{(mid + 1) / 10},'
              f'"fairPrice":{last},"indexPrice":{last},"fundingRate":0.0001,"holdVol":123456,'
              f'"volume24":987654,"riseFallRate":0.001,"timestamp":')
    kinds = [rng.random() for _ in range(4096)]
    version = 10_000
    for i in range(n):
        ts_ms = T0_NS // 1_000_000 + 1 + i
        r = kinds[i % 4096]
        if r < 0.6:
            version += 1
            body = (f'{{"channel":"push.depth","data":{{"asks":[{asks[i % 997]}],'
                    f'"bids":[{bids[i % 991]}],"version":{version}}},"symbol":"{SYMBOL}",'
                    f'"ts":{ts_ms}}}')
            yield ts_ms * 1_000_000, "ws.push.depth", body
        elif r < 0.9:
            body = (f'{{"channel":"push.deal","data":[{deals[i % 499]}"t":{ts_ms}}}],'
                    f'"symbol":"{SYMBOL}","ts":{ts_ms}}}')
            yield ts_ms * 1_000_000, "ws.push.deal", body
        else:
            body = (f'{{"channel":"push.ticker","data":{ticker}{ts_ms}}},"symbol":"{SYMBOL}",'
                    f'"ts":{ts_ms}}}')
            yield ts_ms * 1_000_000, "ws.push.ticker", body


def _snapshot() -> NewEvent:
    mid = 1_000_000
    data = {"asks": [[(mid + k) / 10, 100 + k, 1] for k in range(1, 21)],
            "bids": [[(mid - k) / 10, 100 + k, 1] for k in range(0, 20)], "version": 10_000}
    answer = orjson.dumps({"success": True, "code": 0, "data": data}).decode()
    record: dict[str, Any] = {
        "endpoint": "depth", "method": "GET", "path": f"/api/v1/contract/depth/{SYMBOL}",
        "query": "", "request_body": None, "status": 200, "headers": [], "body": answer,
        "sent_ns": T0_NS - 5_000_000, "received_ns": T0_NS}
    return NewEvent(ts_ns=T0_NS, source="rest", kind="rest.depth", body=canonical_json(record),
                    stream=SYMBOL)


def write_session(path: Path, n: int) -> str:
    """A journal at ``path`` holding one market-maker session of ``n`` events."""
    meta = {"symbols": [SYMBOL], "engine": "bench", "strategy_spec": "market-maker",
            "strategy_config": {}}
    with Journal.open(path, synchronous="NORMAL") as j:
        sid = j.start_session(
            started_ns=T0_NS, strategy="market-maker", strategy_version="1",
            config_hash=config_hash("sim", "market-maker", {}, [SYMBOL], RiskLimits()),
            parser_version=PARSER_VERSION, mode="sim", meta=canonical_json(meta))
        j.append(sid, [_snapshot()])
        batch: list[NewEvent] = []
        for ts, kind, body in _frames(n - 1):
            batch.append(NewEvent(ts_ns=ts, source="ws", kind=kind, body=body,
                                  venue_ts_ms=ts // 1_000_000, stream=SYMBOL))
            if len(batch) == BATCH:
                j.append(sid, batch)
                batch = []
        j.append(sid, batch)
    return sid


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def run(report: Report, quick: bool) -> None:
    """Write the synthetic session, then time the floor, the fold, the replay."""
    n = QUICK_EVENTS if quick else FULL_EVENTS
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        path = tmp / "replay.sqlite"
        write_s, sid = _timed(lambda: write_session(path, n))
        with Journal.open(path, readonly=True) as j:
            def floor() -> int:
                count = 0
                for ev in j.read(session=sid):
                    orjson.loads(ev.body)
                    count += 1
                return count

            floor_s1, count = _timed(floor)
            assert count == n
            fold_s, (_, folded, _) = _timed(lambda: rebuild_state(
                j, interpret, decode_errors=(DecodeError,)))
            assert folded == n
            replay_s, result = _timed(lambda: replay_session(j, sid, check_chain=False))
            floor_s2, _ = _timed(floor)  # again: the machine's speed drifts over a minute
            floor_s = (floor_s1 + floor_s2) / 2
            chain_s, _ = _timed(lambda: require_chain(j))  # what `tapeline replay` runs first
        assert result.identical and result.inputs == n, result.lines()
        floor_rate = per_second(n, floor_s)
        tag = f"{'quick run, ' if quick else ''}{n} events (written in {write_s:.1f} s)"
        report.add("replay.events", per_second(n, replay_s), "ev/s", floor_rate,
                   target_ratio=TARGET_RATIO,
                   note=f"{tag}; verified replay with the market maker, full projections; "
                        "floor: Journal.read + orjson.loads of the same rows, the mean of one "
                        "pass before the fold and one after the replay "
                        f"({n / floor_s1:,.0f} and {n / floor_s2:,.0f} ev/s)")
        report.add("replay.fold", per_second(n, fold_s), "ev/s", floor_rate,
                   note=f"{tag}; rebuild_state (streaming read + interpret + fold); target "
                        f">= {FOLD_TARGET:,.0f} ev/s: "
                        f"{'met' if n / fold_s >= FOLD_TARGET else 'MISSED'}")
        wall = (replay_s + chain_s) * FULL_EVENTS / n
        floor_wall = floor_s * FULL_EVENTS / n
        workers = default_workers() if n >= PARALLEL_MIN_ROWS else 1
        how = f"{workers} worker processes" if workers > 1 else "in process"
        report.add("replay.wall_1m", wall, "s", floor_wall, higher_is_better=False,
                   note=f"{tag}; hash-chain check {chain_s:.2f} s ({how}) + verified replay "
                        f"{replay_s:.2f} s{', scaled to 1M events' if quick else ''}; "
                        f"floor: read + orjson.loads of the same rows, same run; target "
                        f"{WALL_BUDGET_S:g} s: {'met' if wall <= WALL_BUDGET_S else 'MISSED'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
