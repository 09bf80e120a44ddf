"""Building small journals and tampering with them behind the journal's back (test helpers).

Shared by the tamper tests (``test_journal_tamper.py``) and the parallel chain-check tests
(``test_journal_verify_parallel.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

from engine.events import NewEvent
from engine.journal import Journal

COLUMNS = ("seq", "session", "ts_ns", "venue_ts_ms", "source", "kind", "stream", "cause",
           "body", "hash")
INT_COLUMNS = frozenset({"seq", "ts_ns", "venue_ts_ms", "cause"})


def build_journal(path: Path, n: int, batch: int, body: Callable[[int], str]) -> None:
    """``n`` rows appended ``batch`` at a time, alternating between two sessions (``sess-a``
    and ``sess-b``), with some nullable fields NULL and some not; ``body(i)`` is row i's body.
    """
    with Journal.open(path, synchronous="NORMAL") as j:
        a = j.start_session(started_ns=1, session_id="sess-a")
        b = j.start_session(started_ns=2, session_id="sess-b")
        for start in range(0, n, batch):
            j.append(a if start % (2 * batch) == 0 else b, [
                NewEvent(
                    ts_ns=1_700_000_000_000_000_000 + i, source="ws" if i % 3 else "engine",
                    kind="ws.push.depth" if i % 3 else "engine.timer",
                    body=body(i),
                    venue_ts_ms=1_700_000_000_000 + i if i % 2 else None,
                    stream="BTC_USDT" if i % 4 else None,
                    cause=i if i % 5 == 4 else None,
                )
                for i in range(start, min(start + batch, n))
            ])


def untriggered(path: Path) -> sqlite3.Connection:
    """A second connection to ``path`` with the append-only triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    for name in ("events_no_update", "events_no_delete", "events_no_replace"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn


def edited(value: int | str | None, column: str, data: st.DataObject) -> int | str:
    """``value`` with one byte changed (a NULL becomes a one-byte value)."""
    if column in INT_COLUMNS:
        if value is None:
            return data.draw(st.integers(0, 255), label="new int")
        assert isinstance(value, int)
        raw = bytearray(value.to_bytes(8, "big", signed=True))
        i = data.draw(st.integers(0, 7), label="byte")
        raw[i] ^= data.draw(st.integers(1, 255), label="xor")
        return int.from_bytes(raw, "big", signed=True)
    if value is None:
        # any one-character value: chain_hash writes NULL as "N;" and a value as "S1:<c>;"
        # (see docs/journal.md), so every replacement changes the hash
        return chr(data.draw(st.integers(0x01, 0x7F), label="new char"))
    assert isinstance(value, str)
    raw = bytearray(value.encode())
    i = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[i] = data.draw(st.integers(0x00, 0x7F).filter(lambda b: b != raw[i]), label="new")
    return raw.decode(errors="replace")  # an edit inside a multi-byte character stays an edit
