"""A whole session in virtual time: engine + adapter + simulator."""

from __future__ import annotations

from pathlib import Path

import trio

from engine.journal import Journal
from tests.e2e.support import run_sim_session


async def test_market_maker_session_runs_and_verifies(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    path = tmp_path / "j.sqlite"
    lines: list[str] = []
    summary = await run_sim_session(path, duration_s=60, lines=lines)
    print("\n".join(lines + summary.lines()))
    assert summary.killed is None
    with Journal.open(path, readonly=True) as j:
        assert j.verify().ok
        kinds = {ev.kind for ev in j.read()}
    assert "cmd.place_order" in kinds
    assert summary.orders > 0
