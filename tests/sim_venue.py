"""A venue over an in-process simulator with credentials chosen by the test (virtual time).

:func:`adapters.mexc.venue.open_sim_venue` makes up random credentials; tests that need
to know the key and secret (secret-leak searches, doctor) build the venue here instead.
The REST handler and the WebSocket ``connect`` can be wrapped, to record what was sent or
to change what the exchange answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.sim.service import SimService
from engine.clock import Clock
from engine.runtime import Venue

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def venue_factory(
    sim: SimService,
    credentials: Credentials | None,
    *,
    handler: Handler | None = None,
    connect: Any = None,
    run_market: bool = True,
) -> Callable[[Clock], Any]:
    """``open_venue(clock)`` for the runtime or doctor: ``sim`` in process, these keys."""

    @asynccontextmanager
    async def open_venue(clock: Clock) -> AsyncIterator[Venue]:
        config = MexcConfig.for_simulator("http://sim.invalid")
        transport = httpx.MockTransport(handler or sim.rest_handler)
        async with trio.open_nursery() as nursery:
            if run_market:
                await nursery.start(sim.run)
            async with httpx.AsyncClient(transport=transport) as http:
                yield Venue(http, config.ws_url, config, credentials,
                            connect or sim.ws_connect, "test simulator (in process)")
            nursery.cancel_scope.cancel()

    return open_venue
