"""A short soak in the default suite (virtual time): a quarter of a virtual hour with a
random fault every few minutes; samples every 5 virtual minutes; the invariants hold at the
end and memory and journal growth stay within (generous) bounds. The long soak is
``python -m bench.reliability soak`` (``nox -s soak``)."""

from __future__ import annotations

from pathlib import Path

import trio

from bench.reliability.soak import SoakConfig, run_soak

SHORT = SoakConfig(hours=0.25, seed=11, sample_every_s=300.0, faults_per_hour=30.0,
                   quiet_s=45.0, max_rss_mb_per_hour=200.0, max_heap_mb_per_hour=100.0)


async def test_a_short_soak_keeps_every_invariant_and_stays_bounded(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    result = await run_soak(SHORT, tmp_path)
    assert result.problems() == []
    assert len(result.samples) == 3
    assert result.faults, "no fault was injected"
    rows = [s.journal_rows for s in result.samples]
    assert rows == sorted(rows) and rows[0] > 0
    assert all(s.events > 0 and s.rss_mb > 0 for s in result.samples)
    assert result.samples[-1].heap_mb is not None  # tracemalloc ran in the last period
    assert result.heap_growth_mb_per_hour is not None
    assert result.verdict.orders_requested > 0
