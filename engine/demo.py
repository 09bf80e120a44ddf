"""The interim main job: record a synthetic MEXC-format session and summarise it (shell).

It writes real wire-format ``push.ticker`` and ``push.deal`` frames from a seeded random walk
through the journal API in batches, then reads the session back, verifies the chain and
reports what it holds. The live demo against the simulator replaces it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson

from engine.events import NewEvent
from engine.journal import Journal

__all__ = ["run_synthetic_demo"]

BATCH = 200


def _frames(n: int, seed: int, start_ms: int) -> Iterator[tuple[int, str, str]]:
    rng = random.Random(seed)
    price = Decimal("60000.0")
    tick = Decimal("0.1")
    for i in range(n):
        ts = start_ms + i * 100
        price = max(tick, price + tick * rng.randint(-20, 20))
        if i % 5 == 0:
            data = {"symbol": "BTC_USDT", "lastPrice": float(price), "bid1": float(price - tick),
                    "ask1": float(price + tick), "volume24": 1000 + i, "timestamp": ts}
            yield ts, "ws.push.ticker", orjson.dumps(
                {"channel": "push.ticker", "data": data, "symbol": "BTC_USDT", "ts": ts}).decode()
        else:
            deal = {"p": float(price), "v": rng.randint(1, 50), "T": rng.choice((1, 2)), "O": 3,
                    "M": 2, "t": ts}
            yield ts, "ws.push.deal", orjson.dumps(
                {"channel": "push.deal", "data": [deal], "symbol": "BTC_USDT", "ts": ts}).decode()


def run_synthetic_demo(path: Path, *, n_events: int, seed: int) -> Iterator[str]:
    """Record ``n_events`` synthetic frames into a new session at ``path``; yield report lines."""
    now_ns = time.time_ns()
    with Journal.open(path) as journal:
        sid = journal.start_session(started_ns=now_ns, strategy="synthetic-demo", mode="demo",
                                    parser_version="none", config_hash=f"seed={seed}")
        yield f"journal: {path} (session {sid})"
        batch: list[NewEvent] = []
        t0 = time.perf_counter()
        for ts_ms, kind, body in _frames(n_events, seed, now_ns // 1_000_000):
            batch.append(NewEvent(ts_ns=time.time_ns(), source="ws", kind=kind, body=body,
                                  venue_ts_ms=ts_ms, stream="BTC_USDT"))
            if len(batch) == BATCH:
                journal.append(sid, batch)
                batch.clear()
        if batch:
            journal.append(sid, batch)
        elapsed = time.perf_counter() - t0
        kinds = Counter(ev.kind for ev in journal.read(session=sid))
        result = journal.verify()
        info = journal.session(sid)
    yield f"recorded {info.events} events (seq {info.first_seq}..{info.last_seq}) in {elapsed:.2f}s"
    for kind, count in sorted(kinds.items()):
        yield f"  {kind:<16} {count}"
    verdict = "verified" if result.ok else f"BROKEN at seq {result.first_bad_seq}"
    yield f"hash chain: {verdict} ({result.checked} events in the file)"
    yield f"inspect it: tapeline journal events {path} --session {sid[:8]} --limit 5"
