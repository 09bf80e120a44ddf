"""Restart: SIGKILL the engine at random points while it trades; restart on the same journal.

The simulator runs in its own process, so the exchange outlives the engine. After every
kill the engine restarts on the same journal; at the end the journal must verify, hold no
order sent twice, and fold to the exchange's own state.
"""

from __future__ import annotations

import random
import signal
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import trio

from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret
from adapters.mexc.rest import MexcRestClient
from engine.clock import SystemClock
from engine.journal import Journal
from engine.projections import OrderStatus
from engine.rebuild import rebuild_state
from tests.e2e.procs import (
    API_KEY,
    API_SECRET,
    SimProcess,
    start_engine,
    wait_status_lines,
    write_config,
)

KILLS = 4


async def _exchange_view(sim: SimProcess) -> tuple[dict[str, tuple[int, Decimal]], dict, list]:
    config = MexcConfig.for_simulator(sim.urls["rest_base"])
    async with httpx.AsyncClient(timeout=10) as http:
        rest = MexcRestClient(http, config, Credentials(API_KEY, API_SECRET), SystemClock())
        orders: list = []
        for page in range(1, 50):
            answer = await rest.history_orders(symbol="BTC_USDT", page_num=page, page_size=100)
            items = list(getattr(answer, "items", answer))
            orders.extend(items)
            if len(items) < 100:
                break
        positions = await rest.open_positions()
        open_orders = await rest.open_orders()
    by_oid = {o.external_oid: (int(o.state), o.deal_vol) for o in orders if o.external_oid}
    pos = {(p.symbol, int(p.position_type)): p.hold_vol for p in positions if p.hold_vol}
    return by_oid, pos, list(getattr(open_orders, "items", open_orders))


def test_sigkill_and_restart_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    sim = SimProcess(seed=5)
    try:
        config = write_config(tmp_path / "tapeline.toml", sim)
        journal = tmp_path / "j.sqlite"
        for _ in range(KILLS):
            proc = start_engine(config, journal)
            try:
                wait_status_lines(proc, rng.randint(2, 6))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                assert proc.stdout is not None
                proc.stdout.close()
        final = start_engine(config, journal, "--duration", "4s")
        out, _ = final.communicate(timeout=60)
        assert final.returncode == 0, out
        exchange_orders, exchange_positions, exchange_open = trio.run(_exchange_view, sim)
    finally:
        sim.stop()

    with Journal.open(journal, readonly=True) as j:
        assert j.verify().ok
        assert len(j.sessions()) == KILLS + 1
        sent = Counter(ev.stream for ev in j.read(kinds=["rest.order_create"]))
        requested = [
            orjson.loads(ev.body)["command"]["external_oid"]
            for ev in j.read(kinds=["cmd.place_order"])
        ]
        state, _, _ = rebuild_state(j, interpret, decode_errors=(DecodeError,))
    # never a duplicate: no intent was answered (sent) twice, no id requested twice
    assert all(n == 1 for n in sent.values()), sent.most_common(3)
    assert len(requested) == len(set(requested))
    # no orphan: every order the exchange holds under our ids is known to the journal
    view = state.view()
    assert set(exchange_orders) <= set(requested)
    # no lost fill: dealt volume and final state per order agree with the exchange
    for oid, (ex_state, ex_dealt) in exchange_orders.items():
        mine = view.order(oid)
        assert mine is not None, oid
        assert mine.filled_vol == ex_dealt, (oid, mine)
        assert mine.status in {
            3: (OrderStatus.FILLED,),
            4: (OrderStatus.CANCELLED,),
            2: (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED),
        }.get(ex_state, (mine.status,)), (oid, mine.status, ex_state)
    # intents that never reached the exchange are closed, not left dangling
    assert not [o for o in view.orders() if o.status.value in ("requested", "sent", "unknown")]
    assert exchange_open == []  # the final clean stop cancelled everything
    local_positions = {
        (p.symbol, int(p.position_type)): p.hold_vol for p in view.positions() if p.hold_vol
    }
    assert local_positions == exchange_positions
