"""Helpers for testing strategy plugins against the bundled simulator (shell).

A plugin's tests run a whole session — engine, MEXC adapter and simulator, all in process,
no sockets — in trio's virtual time, then replay the journal to prove the strategy is
deterministic::

    from engine.testing import run_in_simulator, verify_replay

    async def test_my_strategy(tmp_path, autojump_clock):   # pytest-trio
        journal = tmp_path / "session.sqlite"
        summary = await run_in_simulator("my_pkg.strategy:MyStrategy", journal=journal,
                                         strategy_config={"vol": 2}, duration_s=120)
        assert summary.killed is None and summary.orders > 0
        result = verify_replay(journal, summary.session)
        assert result.identical, "\\n".join(result.lines())

Minutes of simulated trading take seconds: ``autojump_clock`` skips the waits. To steer the
market from a test (move prices, place orders for the account from "outside"), make the
simulator yourself with :func:`make_simulator` and pass it, with the same ``clock``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from adapters.mexc.sim.service import SimService
from adapters.mexc.venue import open_sim_venue, sim_contracts
from engine.clock import TrioClock
from engine.journal import Journal
from engine.replay import ReplayResult, replay_session
from engine.runtime import RunOptions, Session, SessionSummary, run_session

__all__ = ["make_simulator", "run_in_simulator", "simulator_user", "verify_replay"]


def make_simulator(clock: TrioClock, *, seed: int = 1,
                   symbols: Iterable[str] = ("BTC_USDT",), **kwargs: Any) -> SimService:
    """A simulator for one test; ``kwargs`` go to :class:`SimService` (``step_s``,
    ``drive_market``, ``market_params``, ``faults``, ...)."""
    return SimService(clock=clock, seed=seed, contracts=sim_contracts(symbols), **kwargs)


def simulator_user(sim: SimService) -> str:
    """The account the engine trades as (the session creates exactly one)."""
    users = sorted({a.user for a in sim.accounts.values()})
    if len(users) != 1:
        raise ValueError(f"expected one simulator account, found {users}")
    return users[0]


async def run_in_simulator(
    strategy_spec: str,
    *,
    journal: Path,
    strategy_config: dict[str, Any] | None = None,
    duration_s: float = 60.0,
    symbols: tuple[str, ...] = ("BTC_USDT",),
    seed: int = 1,
    sim: SimService | None = None,
    clock: TrioClock | None = None,
    on_started: Callable[[Session], Any] | None = None,
    lines: list[str] | None = None,
    **options: Any,
) -> SessionSummary:
    """Run one session of ``strategy_spec`` against an in-process simulator.

    ``strategy_spec`` is an entry-point name, ``module:Class`` or ``path/file.py:Class``.
    Run it under pytest-trio with the ``autojump_clock`` fixture (virtual time). ``options``
    go to :class:`~engine.runtime.RunOptions` (``risk``, ``cancel_on_stop``, ...); status
    lines are collected in ``lines`` when given. Pass ``sim`` and its ``clock`` to steer the
    market during the session (see :func:`make_simulator`).
    """
    if sim is not None and clock is None:
        raise ValueError("pass the clock the simulator was made with")
    opts = RunOptions(journal_path=Path(journal), strategy=strategy_spec,
                      strategy_config=dict(strategy_config or {}), symbols=symbols,
                      duration_s=duration_s, synchronous="NORMAL", status_every_s=0,
                      **options)
    sink: list[str] = lines if lines is not None else []
    venue = partial(open_sim_venue, symbols=symbols, seed=seed, in_process=True, sim=sim)
    return await run_session(opts, venue, clock=clock or TrioClock(), out=sink.append,
                             on_started=on_started)


def verify_replay(journal: Path, session_id: str) -> ReplayResult:
    """Replay a recorded session and compare every decision and the final projections with
    the recording; ``result.identical`` says whether the strategy was deterministic."""
    with Journal.open(Path(journal), readonly=True) as j:
        return replay_session(j, session_id, verify=True)
