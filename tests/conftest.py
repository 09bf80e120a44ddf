"""Shared fixtures: a fresh journal file, an open writer with one session, an event factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.events import NewEvent
from engine.journal import Journal

MakeEvent = Callable[..., NewEvent]


def _make_event(
    i: int,
    *,
    kind: str = "ws.push.depth",
    source: str = "ws",
    stream: str | None = "BTC_USDT",
    venue_ts_ms: int | None = None,
    cause: int | None = None,
    body: str | None = None,
) -> NewEvent:
    return NewEvent(
        ts_ns=1_700_000_000_000_000_000 + i * 1_000,
        source=source,  # type: ignore[arg-type]
        kind=kind,
        body=body if body is not None else f'{{"i":{i},"kind":"{kind}"}}',
        venue_ts_ms=venue_ts_ms,
        stream=stream,
        cause=cause,
    )


@pytest.fixture
def make_event() -> MakeEvent:
    """``make_event(i, kind=..., source=..., stream=..., body=...)``: a deterministic NewEvent."""
    return _make_event


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """Where a test's journal file goes (not created yet)."""
    return tmp_path / "journal.sqlite"


@pytest.fixture
def writer(journal_path: Path) -> Iterator[Journal]:
    """An open writer on a fresh journal (synchronous=NORMAL: tests need no fsync)."""
    with Journal.open(journal_path, synchronous="NORMAL") as journal:
        yield journal
