"""Every fault of the simulator does what it says, seen through tapeline's own clients, in
virtual time; and the fault switches can be flipped in code or through ``/_sim/faults``."""

from __future__ import annotations

import itertools
import json

import pytest
import trio
from trio.testing import MockClock

from adapters.mexc.errors import (
    RateLimitedError,
    RejectedError,
    ResponseLost,
    RetryableError,
    TransportError,
)
from adapters.mexc.sim.faults import Faults, FaultUpdateError
from adapters.mexc.sim.rest_api import RestRequest
from adapters.mexc.sim.service import ADMIN_PATH
from adapters.mexc.ws import WsDisconnected, WsLoginFailed, WsPongTimeout, open_mexc_ws
from adapters.mexc.ws_messages import sub

from .server_support import (
    BTC,
    WS,
    credentials,
    http_client,
    limit_order,
    new_sim,
    rest_client,
    running,
)

DEPTH = sub("depth", symbol=BTC)


async def test_ws_connections_are_dropped_every_n_seconds(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(ws_drop_every_s=5))
    async with running(sim):
        for _ in range(2):
            start = trio.current_time()
            async with open_mexc_ws(WS, clock=sim.clock, connect=sim.ws_connect) as conn:
                with pytest.raises(WsDisconnected) as caught:
                    while True:  # bounded: the fault closes the connection
                        await conn.receive()
            assert caught.value.code == 1001
            assert 0 < trio.current_time() - start <= 5 + 2 * sim.step_s
        sim.faults.ws_drop_every_s = None
        async with open_mexc_ws(WS, clock=sim.clock, connect=sim.ws_connect) as conn:
            await trio.sleep(12)
            assert not conn.closed


async def test_the_admin_endpoint_drops_connections_now(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with (
        open_mexc_ws(WS, clock=sim.clock, connect=sim.ws_connect) as conn,
        http_client(sim) as http,
    ):
        answer = await http.post(ADMIN_PATH, content=b'{"drop_ws_now": true}')
        assert answer.status_code == 200 and answer.json()["dropped_ws"] == 1
        with pytest.raises(WsDisconnected):
            await conn.receive()


async def test_silent_pongs_trip_the_clients_pong_watchdog(autojump_clock: MockClock) -> None:
    sim = new_sim(drive_market=False, faults=Faults(silent_pongs=True))
    start = trio.current_time()
    async with open_mexc_ws(WS, clock=sim.clock, connect=sim.ws_connect, ping_interval=8) as conn:
        with pytest.raises(WsPongTimeout):
            while True:  # bounded: the watchdog gives up after 16 s
                await conn.receive()
        assert conn.statistics().pings_sent >= 1
    assert trio.current_time() - start == pytest.approx(16, abs=0.1)


async def test_depth_gaps_are_visible_and_repairable(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with (
        running(sim),
        open_mexc_ws(WS, clock=sim.clock, connect=sim.ws_connect, subscriptions=[DEPTH]) as conn,
        rest_client(sim) as rest,
    ):
        await trio.sleep(0.5)
        sim.faults.depth_gap_next = 1
        await trio.sleep(1)
        frames = []
        with trio.move_on_after(0.01):
            async for frame in conn:
                frames.append(json.loads(frame.text))
        commits = await rest.depth_commits(BTC, 1000)
    deltas = [f["data"] for f in frames if f["channel"] == "push.depth"]
    gaps = [
        (a["end"], b["begin"]) for a, b in itertools.pairwise(deltas) if b["begin"] != a["end"] + 1
    ]
    assert len(gaps) == 1
    (before, after) = gaps[0]
    assert after == before + 2  # exactly one version left out
    assert before + 1 in {c.version for c in commits}  # and depth_commits has it


async def test_random_depth_gaps_follow_the_probability(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(depth_gap_probability=0.5, seed=3))
    single = sub("depth", symbol=BTC, compress=False)
    async with (
        running(sim),
        open_mexc_ws(WS, clock=sim.clock, connect=sim.ws_connect, subscriptions=[single]) as conn,
    ):
        await trio.sleep(2)
        versions = []
        with trio.move_on_after(0.01):
            async for frame in conn:
                data = json.loads(frame.text)
                if data["channel"] == "push.depth":
                    versions.append(data["data"]["version"])
    span = versions[-1] - versions[0] + 1
    assert 0.3 < len(versions) / span < 0.7


async def test_rest_answers_can_be_delayed(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(rest_delay_s=2.5))
    async with rest_client(sim) as rest:
        start = trio.current_time()
        await rest.ping()
        assert trio.current_time() - start == pytest.approx(2.5)
        sim.faults.rest_delay_s = 15  # longer than the client's 10 s read timeout
        start = trio.current_time()
        with pytest.raises(ResponseLost):
            await rest.place_order(limit_order("95000", oid="late-1"))
        assert trio.current_time() - start == pytest.approx(10)
        sim.faults.rest_delay_s = 0
        order = await rest.order_by_external(BTC, "late-1")  # it was placed on arrival
        assert order.external_oid == "late-1"


async def test_a_request_dropped_before_it_runs_changes_nothing(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(rest_drop_next=1))
    async with rest_client(sim) as rest:
        start = trio.current_time()
        with pytest.raises(ResponseLost):
            await rest.place_order(limit_order("95000", oid="lost-1"))
        assert trio.current_time() - start == pytest.approx(10)  # the read timeout
        with pytest.raises(RejectedError) as caught:
            await rest.order_by_external(BTC, "lost-1")
        assert caught.value.code == 2040


@pytest.mark.parametrize("mode", ["timeout", "close"])
async def test_an_answer_dropped_after_the_order_was_accepted(
    autojump_clock: MockClock, mode: str
) -> None:
    sim = new_sim(faults=Faults(rest_drop_after_next=1, rest_drop_mode=mode))
    async with rest_client(sim) as rest:
        with pytest.raises(ResponseLost) as caught:
            await rest.place_order(limit_order("95000", oid="ghost-1"))
        assert ("RemoteProtocolError" if mode == "close" else "ReadTimeout") in str(caught.value)
        order = await rest.order_by_external(BTC, "ghost-1")  # the order exists all the same
        assert order.external_oid == "ghost-1"
        assert len(await rest.open_orders()) == 1


async def test_5xx_bursts(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(rest_5xx_next=2, rest_5xx_status=502))
    async with rest_client(sim) as rest, http_client(sim) as http:
        answer = await http.get("/api/v1/contract/ping")
        assert answer.status_code == 502 and "text/html" in answer.headers["content-type"]
        with pytest.raises(ResponseLost):  # a POST: nothing was placed, but who knows
            await rest.place_order(limit_order("95000", oid="x-1"))
        assert await rest.open_orders() == ()
        assert sim.faults.rest_5xx_next == 0


async def test_order_endpoints_can_disappear(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(order_404=True))
    async with rest_client(sim) as rest:
        with pytest.raises(RejectedError) as caught:
            await rest.place_order(limit_order("95000", oid="gone-1"))
        assert caught.value.http_status == 404
        with pytest.raises(RejectedError):
            await rest.open_orders()
        assert await rest.assets()  # the rest of the API is still there
        sim.faults.order_404 = False
        await rest.place_order(limit_order("95000", oid="back-1"))


async def test_rate_limit_storms(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(rate_limit_next=2))
    async with rest_client(sim) as rest:
        for _ in range(2):
            with pytest.raises(RateLimitedError):
                await rest.ping()
        assert await rest.ping() > 0


async def test_clock_skew_makes_signed_requests_513(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(clock_skew_s=-20))
    async with rest_client(sim) as rest:
        assert sim.clock.time_ms() - await rest.ping() == pytest.approx(20_000, abs=5)
        with pytest.raises(RetryableError) as caught:
            await rest.assets()
        assert caught.value.code == 513
        with pytest.raises(WsLoginFailed):
            async with open_mexc_ws(
                WS, clock=sim.clock, connect=sim.ws_connect, credentials=credentials()
            ):
                pytest.fail("logged in 20 s off")
        sim.faults.clock_skew_s = 5  # within the window
        assert await rest.assets()


async def test_rest_match_limits_the_rest_faults_to_some_paths(autojump_clock: MockClock) -> None:
    sim = new_sim(faults=Faults(rest_5xx_next=1, rest_match="/order/create"))
    async with rest_client(sim) as rest:
        assert await rest.ping() > 0
        assert await rest.assets()
        with pytest.raises(TransportError):
            await rest.place_order(limit_order("95000", oid="m-1"))
        await rest.place_order(limit_order("95000", oid="m-2"))


async def test_the_admin_endpoint_reads_and_sets_switches(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with http_client(sim) as http:
        current = (await http.get(ADMIN_PATH)).json()["faults"]
        assert current == Faults(seed=7).switches()
        answer = await http.post(ADMIN_PATH, json={"rest_5xx_next": 1, "silent_pongs": True})
        assert answer.json()["faults"]["rest_5xx_next"] == 1
        assert sim.faults.silent_pongs is True
        bad = await http.post(ADMIN_PATH, json={"rest_5xx_next": 3, "depth_gap_probability": 2})
        assert bad.status_code == 400 and "probability" in bad.json()["error"]
        assert sim.faults.rest_5xx_next == 1  # all or nothing
        unknown = await http.post(ADMIN_PATH, json={"explode": True})
        assert unknown.status_code == 400 and "explode" in unknown.json()["error"]
        assert (await http.post(ADMIN_PATH, content=b"[1]")).status_code == 400
        cleared = await http.post(ADMIN_PATH, json={"clear": True})
        assert cleared.json()["faults"] == Faults(seed=7).switches()
        assert (await http.get("/api/v1/contract/ping")).status_code == 200  # never faulted


async def test_the_admin_endpoint_refuses_remote_clients(autojump_clock: MockClock) -> None:
    sim = new_sim()
    outcome = await sim.serve_rest(RestRequest("GET", ADMIN_PATH, client="10.1.2.3"))
    assert outcome.reply is not None and outcome.reply.status == 403
    outcome = await sim.serve_rest(RestRequest("GET", ADMIN_PATH, client="::1"))
    assert outcome.reply is not None and outcome.reply.status == 200


def test_fault_switches_are_validated() -> None:
    faults = Faults()
    for name, value in [
        ("rest_5xx_next", -1),
        ("rest_5xx_status", 404),
        ("rest_drop_mode", "vanish"),
        ("ws_drop_every_s", 0),
        ("clock_skew_s", float("nan")),
        ("silent_pongs", "yes"),
        ("rest_delay_s", True),
    ]:
        with pytest.raises(FaultUpdateError):
            setattr(faults, name, value)
    assert faults == Faults()
