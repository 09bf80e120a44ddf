"""Helpers for end-to-end tests: a session against the in-process simulator, virtual time."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from adapters.mexc.venue import open_sim_venue
from engine.clock import TrioClock
from engine.runtime import RunOptions, Session, SessionSummary, run_session


async def run_sim_session(
    journal: Path,
    *,
    duration_s: float = 60.0,
    strategy: str = "market-maker",
    strategy_config: dict[str, Any] | None = None,
    symbols: tuple[str, ...] = ("BTC_USDT",),
    seed: int = 1,
    on_started: Callable[[Session], Any] | None = None,
    lines: list[str] | None = None,
    **options: Any,
) -> SessionSummary:
    """Run one session against an in-process simulator and return its summary."""
    opts = RunOptions(journal_path=journal, strategy=strategy,
                      strategy_config=strategy_config or {}, symbols=symbols,
                      duration_s=duration_s, synchronous="NORMAL", status_every_s=0,
                      **options)
    sink = lines if lines is not None else []
    return await run_session(
        opts, partial(open_sim_venue, symbols=symbols, seed=seed, in_process=True),
        clock=TrioClock(), out=sink.append, on_started=on_started)
