"""The soak: hours of virtual time against the in-process simulator, with random faults.

The market maker trades for :attr:`SoakConfig.hours` virtual hours while, at seeded random
moments, one mild fault at a time (see :data:`SOAK_FAULTS`: WS drops, silent pongs, depth
gaps, slow answers, lost answers and requests, 5xx blips, 510 bursts, clock skew) is switched
on for a while. Every :attr:`SoakConfig.sample_every_s` of virtual time (an hour by default)
a :class:`SoakSample` records the journal's size and rows, the process's resident memory
(``VmRSS``) and the Python heap (``tracemalloc``, optional), and the events of the period.

At the end (market frozen, faults cleared, the session's stop reconciles) the journal is
checked against the exchange (:func:`bench.reliability.checks.check_journal`), and
:meth:`SoakResult.problems` asserts that growth stays bounded after the warm-up: resident
memory and heap grow by less than :attr:`SoakConfig.max_rss_mb_per_hour` /
:attr:`SoakConfig.max_heap_mb_per_hour` per hour, and the journal grows by a roughly constant
amount per period (each period within a factor :attr:`SoakConfig.journal_spread` of the
median).

Virtual time costs CPU per event, so the soak uses a coarse market (one step a second,
tickers every 5 s) and quotes every 5 s: six virtual hours take a few minutes.
"""

from __future__ import annotations

import gc
import itertools
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trio.testing
from attrs import Factory, frozen

from adapters.mexc.sim.faults import Faults
from adapters.mexc.sim.service import SimService
from adapters.mexc.venue import open_sim_venue, sim_contracts
from bench.reliability.checks import Verdict, check_journal, view_of_sim
from engine.clock import TrioClock
from engine.runtime import RunOptions, Session, SessionSummary, run_session

__all__ = ["SOAK_FAULTS", "SoakConfig", "SoakResult", "SoakSample", "rss_mb", "run_soak",
           "run_soak_blocking"]

SOAK_FAULTS: tuple[tuple[str, Mapping[str, Any], float], ...] = (
    ("ws-drops", {"ws_drop_every_s": 20.0}, 90.0),
    ("silent-pongs", {"silent_pongs": True}, 90.0),
    ("depth-gaps", {"depth_gap_probability": 0.05}, 60.0),
    ("rest-delay", {"rest_delay_s": 1.5}, 60.0),
    ("lost-answers", {"rest_drop_after_next": 2, "rest_match": "order/create"}, 60.0),
    ("lost-requests", {"rest_drop_next": 2, "rest_match": "order/create"}, 60.0),
    ("5xx-blip", {"rest_5xx_next": 3}, 30.0),
    ("510-burst", {"rate_limit_next": 5}, 30.0),
    ("clock-skew", {"clock_skew_s": 20.0}, 30.0),
)
"""(name, switches, seconds on) of the faults the soak draws from; none should trip the
kill switch on its own, so the engine keeps trading all along."""


@frozen
class SoakConfig:
    """How long, how noisy, and the bounds :meth:`SoakResult.problems` asserts."""

    hours: float = 6.0
    seed: int = 7
    sample_every_s: float = 3600.0
    faults_per_hour: float = 6.0
    warmup_samples: int = 1
    step_s: float = 1.0
    ticker_every_s: float = 5.0
    quote_every_s: float = 5.0
    quiet_s: float = 60.0
    trace_periods: int = 1
    replay: bool = True
    max_rss_mb_per_hour: float = 40.0
    max_heap_mb_per_hour: float = 30.0
    journal_spread: float = 3.0
    strategy_config: Mapping[str, Any] = Factory(dict)


@frozen
class SoakSample:
    """The state of things at the end of one period (virtual time ``t_s``)."""

    t_s: float
    events: int
    journal_rows: int
    journal_bytes: int
    rss_mb: float
    blocks: int
    heap_mb: float | None
    faults: int


@frozen
class SoakResult:
    """Samples, the fault log, the session summary and the invariants' verdict."""

    config: SoakConfig
    samples: tuple[SoakSample, ...]
    faults: tuple[tuple[float, str], ...]
    summary: SessionSummary
    verdict: Verdict
    wall_s: float
    trace_start_s: float | None = None
    top_allocations: tuple[str, ...] = ()

    @property
    def rss_growth_mb_per_hour(self) -> float | None:
        """Resident memory growth per virtual hour after the warm-up and before tracemalloc
        started (its own tables count as resident memory); None when too short."""
        untraced = [s for s in self.samples if s.heap_mb is None]
        start = self.config.warmup_samples
        if len(untraced) - start < 2:
            untraced = list(self.samples)  # a short run: the traced periods too
        if len(untraced) - start < 2:
            return None
        first, last = untraced[start], untraced[-1]
        hours = (last.t_s - first.t_s) / 3600.0
        return (last.rss_mb - first.rss_mb) / hours if hours > 0 else None

    @property
    def heap_growth_mb_per_hour(self) -> float | None:
        """Python heap growth per virtual hour over the traced periods: what tracemalloc saw
        allocated and still alive at the end, per hour traced (None: nothing traced)."""
        traced = [s for s in self.samples if s.heap_mb is not None]
        if not traced or self.trace_start_s is None:
            return None
        hours = (traced[-1].t_s - self.trace_start_s) / 3600.0
        return (traced[-1].heap_mb or 0.0) / hours if hours > 0 else None

    def journal_growth(self) -> list[int]:
        """Bytes the journal grew by in each period."""
        sizes = [0, *(s.journal_bytes for s in self.samples)]
        return [b - a for a, b in itertools.pairwise(sizes)]

    def problems(self) -> list[str]:
        """Every breach of an invariant or a bound; empty when the soak passed."""
        cfg = self.config
        out = self.verdict.problems()
        if self.summary.killed:
            out.append(f"kill switch tripped: {self.summary.killed}")
        rss = self.rss_growth_mb_per_hour
        if rss is not None and rss > cfg.max_rss_mb_per_hour:
            out.append(f"resident memory grew {rss:.1f} MB/h after the warm-up "
                       f"(bound {cfg.max_rss_mb_per_hour:g})")
        heap = self.heap_growth_mb_per_hour
        if heap is not None and heap > cfg.max_heap_mb_per_hour:
            out.append(f"Python heap grew {heap:.1f} MB/h after the warm-up "
                       f"(bound {cfg.max_heap_mb_per_hour:g})")
        growth = self.journal_growth()[cfg.warmup_samples:]
        if len(growth) >= 2:
            median = statistics.median(growth)
            odd = [g for g in growth if not median / cfg.journal_spread <= g
                   <= median * cfg.journal_spread]
            if odd:
                out.append(f"journal growth per period not steady: {growth} (median {median})")
        return out

    def table(self) -> list[str]:
        """The samples as a Markdown table."""
        lines = ["| virtual time | events in period | journal rows | journal MB | RSS MB | "
                 "Python blocks | traced heap MB | faults so far |",
                 "|---|---|---|---|---|---|---|---|"]
        for s in self.samples:
            heap = f"{s.heap_mb:.2f}" if s.heap_mb is not None else "-"
            lines.append(f"| {s.t_s / 3600:.2f} h | {s.events} | {s.journal_rows} | "
                         f"{s.journal_bytes / 1e6:.1f} | {s.rss_mb:.1f} | {s.blocks} | {heap} | "
                         f"{s.faults} |")
        return lines


def rss_mb() -> float:
    """This process's resident set size in MB (``VmRSS``; peak RSS where /proc is absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _journal_bytes(path: Path) -> int:
    """The journal's logical size: pages in use as a reader sees them (WAL included), so
    the figure does not jump when the WAL is checkpointed or removed at close."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


async def _inject(sim: SimService, cfg: SoakConfig, end_s: float,
                  log: list[tuple[float, str]]) -> None:
    """Switch one random fault on at a time, at seeded random moments, until ``end_s``."""
    rng = random.Random(cfg.seed)
    t0 = trio.current_time()
    defaults = Faults().switches()
    mean_gap = 3600.0 / cfg.faults_per_hour
    while True:
        at = trio.current_time() - t0 + rng.expovariate(1.0 / mean_gap)
        name, switches, length = rng.choice(SOAK_FAULTS)
        if at + length >= end_s:
            return
        await trio.sleep_until(t0 + at)
        log.append((at, name))
        sim.faults.update(dict(switches))
        await trio.sleep(length)
        sim.faults.update({k: defaults[k] for k in switches})


class _Sampler:
    """Takes the samples; starts tracemalloc for the last ``trace_periods`` periods."""

    def __init__(self, path: Path, cfg: SoakConfig, faults: list[tuple[float, str]],
                 progress: Callable[[str], None]) -> None:
        self.path, self.cfg, self.faults, self.progress = path, cfg, faults, progress
        self.samples: list[SoakSample] = []
        self.session: Session | None = None
        self.t0 = 0.0
        self.last_events = 0
        self.trace_start_s: float | None = None
        self.started_tracing = False

    def _trace_from_here(self, period: int, periods: int) -> None:
        if (self.cfg.trace_periods > 0 and period >= periods - self.cfg.trace_periods
                and not tracemalloc.is_tracing()):
            gc.collect()
            tracemalloc.start(1)
            self.started_tracing = True
            self.trace_start_s = trio.current_time() - self.t0

    async def run(self, duration_s: float) -> None:
        """Sample at the end of every period but the last (see :meth:`take`)."""
        self.t0 = trio.current_time()
        periods = max(1, round(duration_s / self.cfg.sample_every_s))
        self._trace_from_here(0, periods)
        for period in range(1, periods):
            await trio.sleep_until(self.t0 + period * self.cfg.sample_every_s)
            self.take()
            self._trace_from_here(period, periods)

    def take(self) -> None:
        """Record one sample now."""
        session = self.session
        if session is None or session.sequencer is None:
            return
        events = session.sequencer.events_in
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] / 1e6 if tracemalloc.is_tracing() else None
        sample = SoakSample(trio.current_time() - self.t0, events - self.last_events,
                            session.journal.last_seq, _journal_bytes(self.path), rss_mb(),
                            sys.getallocatedblocks(), heap, len(self.faults))
        self.last_events = events
        self.samples.append(sample)
        self.progress(
            f"  {sample.t_s / 3600:5.2f} h: {sample.events} events, journal "
            f"{sample.journal_bytes / 1e6:.1f} MB ({sample.journal_rows} rows), RSS "
            f"{sample.rss_mb:.1f} MB, {sample.blocks} blocks"
            + (f", traced heap {heap:.2f} MB" if heap is not None else "")
            + f", {len(self.faults)} faults so far")

    def top(self, n: int = 5) -> tuple[str, ...]:
        """Where the memory traced and still alive was allocated (by line), biggest first."""
        if not tracemalloc.is_tracing():
            return ()
        stats = tracemalloc.take_snapshot().statistics("lineno")[:n]
        root = str(Path(__file__).resolve().parents[2]) + "/"
        return tuple(f"{st.size / 1e6:.2f} MB in {st.count} blocks: "
                     f"{st.traceback[0].filename.removeprefix(root)}:{st.traceback[0].lineno}"
                     for st in stats)

    def stop(self) -> None:
        """Stop tracemalloc if this sampler started it."""
        if self.started_tracing:
            tracemalloc.stop()


async def run_soak(cfg: SoakConfig, workdir: Path,
                   progress: Callable[[str], None] = lambda line: None) -> SoakResult:
    """Run the soak (virtual time: call under a trio run with an autojump clock)."""
    t0 = time.perf_counter()
    clock = TrioClock()
    symbols = ("BTC_USDT",)
    sim = SimService(clock=clock, seed=cfg.seed, contracts=sim_contracts(symbols),
                     faults=Faults(seed=cfg.seed), step_s=cfg.step_s,
                     ticker_every_s=cfg.ticker_every_s)
    duration = cfg.hours * 3600.0
    path = workdir / "soak.sqlite"
    opts = RunOptions(journal_path=path, strategy="market-maker",
                      strategy_config={"quote_every_s": cfg.quote_every_s,
                                       **cfg.strategy_config},
                      symbols=symbols, duration_s=duration, synchronous="NORMAL",
                      status_every_s=0, exit_on_kill=False)
    faults: list[tuple[float, str]] = []
    sampler = _Sampler(path, cfg, faults, progress)

    def started(session: Session) -> None:
        sampler.session = session

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_inject, sim, cfg, duration - cfg.quiet_s, faults)
            nursery.start_soon(sampler.run, duration)

            async def quiet() -> None:
                await trio.sleep(duration - cfg.quiet_s)
                sim.faults.clear()
                sim.drive_market = False

            nursery.start_soon(quiet)
            summary = await run_session(
                opts, partial(open_sim_venue, symbols=symbols, seed=cfg.seed, in_process=True,
                              sim=sim),
                clock=clock, out=lambda line: None, on_started=started)
            nursery.cancel_scope.cancel()
        sampler.take()  # the last period ends with the session
        top = sampler.top()
    finally:
        sampler.stop()
    sim.faults.clear()
    verdict = check_journal(path, view_of_sim(sim), replay=cfg.replay)
    return SoakResult(cfg, tuple(sampler.samples), tuple(faults), summary, verdict,
                      time.perf_counter() - t0, sampler.trace_start_s, top)


def run_soak_blocking(cfg: SoakConfig, workdir: Path | None = None,
                      progress: Callable[[str], None] = print) -> SoakResult:
    """:func:`run_soak` in its own trio run with a virtual clock (a temporary directory
    unless ``workdir`` is given)."""
    with tempfile.TemporaryDirectory(prefix="tapeline-soak-") as tmp:
        return trio.run(run_soak, cfg, workdir or Path(tmp), progress,
                        clock=trio.testing.MockClock(autojump_threshold=0))
