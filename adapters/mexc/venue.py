"""Venues the runtime can trade against: the bundled simulator or MEXC itself (shell).

Each ``open_*_venue`` is an async context manager yielding an :class:`engine.runtime.Venue`
(an HTTP client, the WS URL and connector, the REST configuration and credentials):

* :func:`open_sim_venue` starts the simulator — on 127.0.0.1 with a real HTTP/WebSocket
  server (what ``tapeline run`` and ``tapeline demo`` use), or in process with no sockets
  (``in_process=True``: tests in virtual time). It creates a funded account with random
  credentials that exist only in this process.
* :func:`open_live_venue` reaches MEXC (or any MEXC-compatible base URL) with credentials
  from the environment or a file the user names; market data needs none.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal

import httpx
import trio

from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.http11 import http_client
from adapters.mexc.sim.asgi import rest_base_url, serve_sim, ws_url
from adapters.mexc.sim.contracts import default_contracts, make_contract
from adapters.mexc.sim.faults import Faults
from adapters.mexc.sim.service import SimService
from engine.clock import Clock
from engine.runtime import Venue

__all__ = ["open_live_venue", "open_sim_venue", "sim_contracts"]

_IN_PROCESS_BASE = "http://sim.invalid"


def sim_contracts(symbols: Iterable[str]) -> list:
    """The simulator's contracts for ``symbols`` (unknown ``BASE_USDT`` ones are derived)."""
    builtin = default_contracts()
    out = []
    for sym in symbols:
        sym = sym.upper()
        out.append(builtin[sym] if sym in builtin else make_contract(sym))
    for sym, contract in builtin.items():
        if sym not in {c.symbol for c in out}:
            out.append(contract)
    return out


@asynccontextmanager
async def open_sim_venue(
    clock: Clock,
    *,
    symbols: Iterable[str] = ("BTC_USDT",),
    seed: int = 1,
    balance: Decimal = Decimal("10000"),
    in_process: bool = False,
    faults: Faults | None = None,
    sim: SimService | None = None,
    restricted_symbols: Iterable[str] = (),
) -> AsyncIterator[Venue]:
    """Start the bundled simulator and yield a venue pointing at it."""
    service = sim or SimService(clock=clock, seed=seed, contracts=sim_contracts(symbols),
                                faults=faults, restricted_symbols=restricted_symbols)
    api_key = "mx0sim" + secrets.token_hex(8)
    secret = secrets.token_hex(16)
    service.add_account(api_key, secret, balance)
    credentials = Credentials(api_key, secret)
    async with trio.open_nursery() as nursery:
        if in_process:
            await nursery.start(service.run)
            config = MexcConfig.for_simulator(_IN_PROCESS_BASE)
            http = httpx.AsyncClient(transport=httpx.MockTransport(service.rest_handler))
            venue = Venue(http, config.ws_url, config, credentials, service.ws_connect,
                          "bundled simulator (in process)")
        else:
            port = await nursery.start(serve_sim, service, "127.0.0.1", 0)
            config = MexcConfig.for_simulator(rest_base_url("127.0.0.1", port),
                                              ws_url=ws_url("127.0.0.1", port))
            http = http_client(timeout=10.0)
            venue = Venue(http, config.ws_url, config, credentials, None,
                          f"bundled simulator at {config.rest_base}")
        try:
            yield venue
        finally:
            await http.aclose()
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_live_venue(
    clock: Clock, *, config: MexcConfig, credentials: Credentials | None,
) -> AsyncIterator[Venue]:
    """Reach MEXC (or the base URL in ``config``)."""
    async with http_client(timeout=10.0) as http:
        yield Venue(http, config.ws_url, config, credentials, None, f"MEXC at {config.rest_base}")
