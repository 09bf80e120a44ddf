"""The simulator on a real socket (127.0.0.1, port 0, hypercorn): tapeline's REST client over
TCP and ``open_mexc_ws`` over a real WebSocket. Real time, so every test is guarded by
``trio.fail_after`` and waits only for things that happen within a second or two."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from adapters.mexc.config import MexcConfig, Timeouts
from adapters.mexc.errors import ResponseLost, TransportError
from adapters.mexc.rest import MexcRestClient
from adapters.mexc.sim.asgi import rest_base_url, serve_sim
from adapters.mexc.sim.service import ADMIN_PATH, SimService
from adapters.mexc.ws import WsDisconnected, open_mexc_ws
from adapters.mexc.ws_messages import sub
from engine.clock import SystemClock

from .server_support import BTC, KEY, SECRET, credentials, limit_order


def real_sim() -> SimService:
    sim = SimService(clock=SystemClock(), seed=3)
    sim.add_account(KEY, SECRET, 10000)
    return sim


async def test_rest_and_websocket_over_real_sockets() -> None:
    sim = real_sim()
    clock = SystemClock()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_sim, sim)
            assert port > 0
            config = MexcConfig.for_simulator(rest_base_url("127.0.0.1", port))
            assert config.ws_url == f"ws://127.0.0.1:{port}/edge"
            async with httpx.AsyncClient() as http:
                rest = MexcRestClient(http, config, credentials(), clock)
                assert abs(await rest.ping() - clock.time_ms()) < 5_000
                assert (await rest.depth(BTC)).bids
                order_id = await rest.place_order(limit_order("95000", oid="tcp-1"))
                assert (await rest.order_get(order_id)).external_oid == "tcp-1"
                async with open_mexc_ws(
                    config.ws_url,
                    clock=clock,
                    credentials=credentials(),
                    subscriptions=[sub("ticker", symbol=BTC), sub("deal", symbol=BTC)],
                ) as conn:
                    (result,) = await rest.cancel_orders([order_id])
                    assert result.error_code == 0
                    seen: set[str] = set()
                    wanted = {"rs.login", "rs.sub.ticker", "push.personal.order", "push.ticker"}
                    while not wanted <= seen:  # bounded by fail_after: a ticker every second
                        seen.add(json.loads((await conn.receive()).text)["channel"])
                    answer = await http.post(
                        config.rest_base + ADMIN_PATH, json={"drop_ws_now": True}
                    )
                    assert answer.json()["dropped_ws"] == 1
                    with pytest.raises(WsDisconnected):
                        while True:  # bounded: the server has closed it
                            await conn.receive()
            nursery.cancel_scope.cancel()


async def test_dropped_answers_over_a_real_socket() -> None:
    sim = real_sim()
    clock = SystemClock()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_sim, sim)
            base = rest_base_url("127.0.0.1", port)
            quick = MexcConfig.for_simulator(base, timeouts=Timeouts(read=0.5))
            async with httpx.AsyncClient() as http:
                rest = MexcRestClient(http, quick, credentials(), clock)
                sim.faults.update({"rest_drop_after_next": 1, "rest_drop_mode": "close"})
                with pytest.raises(ResponseLost, match="RemoteProtocolError"):
                    await rest.place_order(limit_order("95000", oid="gone-1"))
                assert (await rest.order_by_external(BTC, "gone-1")).external_oid == "gone-1"
                sim.faults.update({"rest_drop_next": 1, "rest_drop_mode": "timeout"})
                with pytest.raises(TransportError, match="ReadTimeout"):
                    await rest.ping()
                sim.faults.update({"rest_5xx_next": 1})
                with pytest.raises(TransportError, match="HTTP 503"):
                    await rest.ping()
                assert await rest.ping() > 0
            nursery.cancel_scope.cancel()


async def test_only_loopback_addresses_are_served() -> None:
    sim = real_sim()
    with pytest.raises(ValueError, match="loopback"):
        await serve_sim(sim, "0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        await serve_sim(sim, "192.168.1.10")
