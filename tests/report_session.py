"""A recorded session with something to show, for the report tests: a market maker against
the in-process simulator in virtual time, with dropped connections, depth gaps, a rate-limit
hit and REST answers that take a varying time."""

from __future__ import annotations

import math
import random
from pathlib import Path

import trio
import trio.testing

from adapters.mexc.sim.faults import Faults
from engine.clock import TrioClock
from engine.runtime import SessionSummary
from tests.e2e.support import make_sim, run_sim_session


async def record_eventful_session(path: Path, *, duration_s: float = 60.0,
                                  seed: int = 7) -> SessionSummary:
    """Record one session into ``path`` (call under a virtual clock)."""
    clock = TrioClock()
    sim = make_sim(clock, faults=Faults(ws_drop_every_s=22.0, depth_gap_probability=0.01,
                                        seed=3))
    rng = random.Random(seed)
    steps = int(duration_s * 4)

    async def vary_faults() -> None:
        for i in range(steps):
            await trio.sleep(0.25)
            delay = min(rng.lognormvariate(math.log(0.012), 0.5), 0.2)
            sim.faults.update({"rest_delay_s": round(delay, 4)})
            if i == steps // 2:
                sim.faults.update({"rate_limit_next": 1, "rest_match": "/order/create"})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(vary_faults)
        summary = await run_sim_session(path, duration_s=duration_s, sim=sim, clock=clock)
        nursery.cancel_scope.cancel()
    return summary


def record_eventful_session_sync(path: Path, *, duration_s: float = 60.0) -> SessionSummary:
    """:func:`record_eventful_session` in its own trio run with an autojumping mock clock."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(lambda: record_eventful_session(path, duration_s=duration_s), clock=clock)
