"""Journal append throughput beside a raw-sqlite3 floor doing the same work (dev tool).

The floor is what the machine can do for exactly what an append must do: an ``executemany``
of the same rows into the same schema (the journal's own migrations, so the same indexes and
triggers), the same sha256 chain per row, one ``BEGIN IMMEDIATE … COMMIT`` per batch, WAL and
``synchronous=FULL``. The measured side is :meth:`Journal.append` with ``NewEvent`` batches
of 1, 100 and 1000 realistic (~800-byte) depth frames.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import sqlite_utils

from bench.common import Case, Report, median_seconds_interleaved, per_second
from engine.events import GENESIS_HASH, NewEvent, chain_hash
from engine.journal import _INSERT, APPLICATION_ID, SCHEMA_MIGRATIONS, Journal

SESSION = "bench-session-01"
SYMBOL = "BTC_USDT"
TARGET_RATIO = 0.8  # at batch 1000
BATCH_SIZES = (1, 100, 1_000)
# Events per repetition are sized from a short probe so that one repetition takes about
# SECONDS_PER_CASE whatever the disk's fsync costs today, within [min, max] events.
SECONDS_PER_CASE = {False: 1.2, True: 0.15}
PROBE_EVENTS = {1: 40, 100: 2_000, 1_000: 5_000}
EVENT_BOUNDS = {1: (100, 3_000), 100: (1_000, 40_000), 1_000: (5_000, 80_000)}


def depth_frame(i: int) -> str:
    """A MEXC ``push.depth`` frame of about 800 bytes (20 levels a side), varying with ``i``."""
    mid = 87_000 + (i * 7919 % 5_000) / 10
    data = {
        "asks": [[round(mid + 0.1 * (k + 1), 1), 1_000 + (i * 31 + k * 17) % 9_000, 1 + k % 3]
                 for k in range(20)],
        "bids": [[round(mid - 0.1 * k, 1), 1_000 + (i * 13 + k * 29) % 9_000, 1 + k % 2]
                 for k in range(20)],
        "version": 28_111_438_870 + i,
    }
    return orjson.dumps({"channel": "push.depth", "data": data, "symbol": SYMBOL,
                         "ts": 1_767_225_600_000 + i}).decode()


def make_events(n: int) -> list[NewEvent]:
    """``n`` depth-frame events as the adapter would append them."""
    frames = [depth_frame(i) for i in range(min(n, 512))]
    return [
        NewEvent(ts_ns=1_767_225_600_000_000_000 + i * 1_000, source="ws", kind="ws.push.depth",
                 body=frames[i % len(frames)], venue_ts_ms=1_767_225_600_000 + i, stream=SYMBOL)
        for i in range(n)
    ]


@dataclass
class Target:
    """A fresh directory and file for one repetition."""

    directory: Path

    @property
    def path(self) -> Path:
        """The journal file inside the directory."""
        return self.directory / "journal.sqlite"


def _fresh() -> Target:
    return Target(Path(tempfile.mkdtemp(prefix="tapeline-bench-")))


def _cleanup(target: Target) -> None:
    shutil.rmtree(target.directory, ignore_errors=True)


# --------------------------------------------------------------------------- measured


def _journal_setup() -> tuple[Target, Journal]:
    target = _fresh()
    journal = Journal.open(target.path, synchronous="FULL")
    journal.start_session(started_ns=1, session_id=SESSION)
    return target, journal


def _journal_teardown(state: tuple[Target, Journal]) -> None:
    target, journal = state
    assert journal.verify().ok
    journal.close()
    _cleanup(target)


def _journal_append(batches: Sequence[Sequence[NewEvent]]):
    def run(state: tuple[Target, Journal]) -> None:
        _, journal = state
        for batch in batches:
            journal.append(SESSION, batch)
    return run


# --------------------------------------------------------------------------- floor


def _floor_setup() -> tuple[Target, sqlite3.Connection]:
    target = _fresh()
    conn = sqlite3.connect(target.path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    SCHEMA_MIGRATIONS.apply(sqlite_utils.Database(conn))  # identical tables, indexes, triggers
    conn.execute("INSERT INTO sessions (id, started_ns, engine_version) VALUES (?, 1, 'bench')",
                 (SESSION,))
    return target, conn


def _floor_teardown(state: tuple[Target, sqlite3.Connection]) -> None:
    target, conn = state
    conn.close()
    _cleanup(target)


def _floor_append(batches: Sequence[Sequence[tuple]]):
    """Rows are (ts_ns, venue_ts_ms, source, kind, stream, cause, body) tuples."""
    def run(state: tuple[Target, sqlite3.Connection]) -> None:
        _, conn = state
        seq, prev = 0, GENESIS_HASH
        for batch in batches:
            rows = []
            for ts_ns, venue, source, kind, stream, cause, body in batch:
                seq += 1
                prev = chain_hash(prev, seq, SESSION, ts_ns, venue, source, kind, stream, cause,
                                  body)
                rows.append((seq, SESSION, ts_ns, venue, source, kind, stream, cause, body, prev))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
    return run


# --------------------------------------------------------------------------- run


def _events_per_case(batch_size: int, quick: bool) -> int:
    """How many events one timed repetition appends at ``batch_size``."""
    probe = make_events(PROBE_EVENTS[batch_size])
    batches = [probe[i:i + batch_size] for i in range(0, len(probe), batch_size)]
    seconds = Case(_journal_append(batches), _journal_setup, _journal_teardown).time_once()
    wanted = per_second(len(probe), seconds) * SECONDS_PER_CASE[quick]
    low, high = EVENT_BOUNDS[batch_size]
    if quick:
        low, high = low // 5, high // 5
    count = int(min(max(wanted, low), high))
    return max(batch_size, count // batch_size * batch_size)


def run(report: Report, quick: bool) -> None:
    """Appends/s through the journal at batch 1, 100, 1000, each beside its raw floor."""
    repeat = 1 if quick else 3
    for batch_size in BATCH_SIZES:
        total = _events_per_case(batch_size, quick)
        events = make_events(total)
        batches = [events[i:i + batch_size] for i in range(0, total, batch_size)]
        raw = [[(e.ts_ns, e.venue_ts_ms, e.source, e.kind, e.stream, e.cause, e.body)
                for e in b] for b in batches]
        seconds = median_seconds_interleaved(
            {
                "journal": Case(_journal_append(batches), _journal_setup, _journal_teardown),
                "floor": Case(_floor_append(raw), _floor_setup, _floor_teardown),
            },
            repeat=repeat,
        )
        report.add(
            f"journal.append.batch{batch_size}",
            per_second(total, seconds["journal"]), "ev/s", per_second(total, seconds["floor"]),
            target_ratio=TARGET_RATIO if batch_size == 1_000 else None,
            note=(f"{'quick run: ' if quick else ''}"
                  f"Journal.append, {total} x ~{len(events[0].body)} B depth frames; floor: raw "
                  "executemany, same schema/triggers/sha256 chain, WAL, synchronous=FULL"),
        )
