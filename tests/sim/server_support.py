"""Shared helpers of the simulator-server tests: a service in virtual time, clients bound to
it in process, raw signed requests, and the sample-shape comparison."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from adapters.mexc.auth import Credentials
from adapters.mexc.codecs import Envelope, decode_envelope
from adapters.mexc.config import Generation, MexcConfig
from adapters.mexc.rest import MexcRestClient
from adapters.mexc.signing import rest_signature
from adapters.mexc.sim.service import SimService
from engine.clock import TrioClock
from engine.commands import PlaceOrder
from engine.model import OpenType, OrderType, Side

KEY = "mx0simtestkey01"
SECRET = "sim-test-secret-01"
BASE = "http://sim.test"
WS = "ws://sim.test/edge"
BTC = "BTC_USDT"
ETH = "ETH_USDT"
D = Decimal
FIXTURES = Path(__file__).resolve().parents[1] / "mexc" / "fixtures"

# 2026-01-01 07:59:50 UTC: ten seconds before a funding settlement (8-hour cycle).
BEFORE_SETTLE_NS = (1_767_225_600_000 + 8 * 3_600_000 - 10_000) * 1_000_000


def clock_at(wall_ns: int) -> TrioClock:
    """A trio-time clock that reads ``wall_ns`` now (trio's clock need not start at 0)."""
    return TrioClock(wall_ns - int(trio.current_time() * 1_000_000_000))


def credentials(key: str = KEY, secret: str = SECRET) -> Credentials:
    """The test account's credentials."""
    return Credentials(key, secret)


def new_sim(*, balance: str = "10000", **kwargs: Any) -> SimService:
    """A simulator on trio's (virtual) clock with one funded account (``KEY``/``SECRET``)."""
    kwargs.setdefault("clock", TrioClock())
    kwargs.setdefault("seed", 7)
    sim = SimService(**kwargs)
    sim.add_account(KEY, SECRET, D(balance))
    return sim


@asynccontextmanager
async def running(sim: SimService) -> AsyncIterator[SimService]:
    """``sim.run`` in a nursery for the duration of the block."""
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        yield sim
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def http_client(sim: SimService) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose transport is the simulator, in process."""
    transport = httpx.MockTransport(sim.rest_handler)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


@asynccontextmanager
async def rest_client(
    sim: SimService,
    *,
    generation: Generation = Generation.NEW,
    creds: Credentials | None = None,
    **config: Any,
) -> AsyncIterator[MexcRestClient]:
    """tapeline's REST client talking to ``sim`` in process."""
    cfg = MexcConfig.for_simulator(BASE, generation=generation, **config)
    async with http_client(sim) as http:
        yield MexcRestClient(http, cfg, creds or credentials(), sim.clock)


def limit_order(
    price: str,
    vol: int = 1,
    *,
    side: Side = Side.OPEN_LONG,
    oid: str = "t-1",
    symbol: str = BTC,
    order_type: OrderType = OrderType.LIMIT,
    leverage: int = 10,
) -> PlaceOrder:
    """An isolated order at 10x."""
    return PlaceOrder(
        symbol,
        side,
        order_type,
        D(vol),
        oid,
        price=None if order_type in (OrderType.MARKET, OrderType.MARKET_TO_CURRENT) else D(price),
        open_type=OpenType.ISOLATED,
        leverage=leverage,
    )


async def signed(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    key: str = KEY,
    secret: str = SECRET,
    time_ms: int | None = None,
    signed_text: str | bytes | None = None,
    recv_window: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send a request signed by hand (``signed_text`` overrides what is signed)."""
    when = TrioClock().time_ms() if time_ms is None else time_ms
    payload = signed_text if signed_text is not None else (query if method == "GET" else body)
    all_headers = {
        "ApiKey": key,
        "Request-Time": str(when),
        "Signature": rest_signature(key, secret, when, payload),
        "Content-Type": "application/json",
    }
    if recv_window is not None:
        all_headers["Recv-Window"] = recv_window
    all_headers.update(headers or {})
    url = path + (f"?{query}" if query else "")
    return await http.request(method, url, content=body or None, headers=all_headers)


def envelope(response: httpx.Response) -> Envelope:
    """The decoded envelope of an answer (asserting HTTP 200)."""
    assert response.status_code == 200, response.text
    return decode_envelope(response.text)


# ------------------------------------------------------------------------ sample shapes

ID_KEYS = frozenset({"orderId", "id", "positionId", "placeOrderId", "i"})
"""Keys whose value MEXC writes as a number in some samples and a string in others."""

_REQUEST_ONLY = frozenset(
    {"request", "request_url", "request_body", "request_sent_by_ccxt", "actual_wire_body",
     "request_uncompressed", "unsubscribe_as_documented", "request_disable_default_push",
     "request_body_with_position", "request_body_no_position", "reset_all",
     "signature_target_example", "ack_channel"}
)  # fmt: skip


def sample_variants(name: str) -> list[dict[str, Any]]:
    """The payloads of ``tests/mexc/fixtures/<name>.json``."""
    document = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    return [variant["payload"] for variant in document["variants"]]


def _answers(payload: Any) -> Iterator[Any]:
    """Every server message (envelope, data or frame) inside one sample payload."""
    if not isinstance(payload, dict):
        return
    if "channel" in payload or "success" in payload or ("code" in payload and "data" in payload):
        yield payload
        return
    for key, value in payload.items():
        if key in _REQUEST_ONLY:
            continue
        if (
            isinstance(value, dict)
            and ("channel" in value or "success" in value or "code" in value)
        ) or key in ("data",):
            yield value
    if payload.keys() >= {"asks", "bids"}:  # an old doc example without its envelope
        yield {"success": True, "code": 0, "data": payload}


def sample_messages(name: str, channel: str | None = None) -> list[Any]:
    """Server messages of a sample file: REST envelopes or WS frames (of ``channel``)."""
    out = []
    for payload in sample_variants(name):
        for message in _answers(payload):
            if channel is None or (isinstance(message, dict) and message.get("channel") == channel):
                out.append(message)
    return out


def json_kind(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_diff(ours: Any, sample: Any, path: str = "") -> tuple[set[str], set[str], list[str]]:
    """(keys only the sample has, keys only ours has, type mismatches), as dotted paths.

    ``null`` on either side matches anything; arrays compare their first elements; id keys
    may be a number on one side and a string on the other.
    """
    missing: set[str] = set()
    extra: set[str] = set()
    problems: list[str] = []
    if ours is None or sample is None:
        return missing, extra, problems
    mine, theirs = json_kind(ours), json_kind(sample)
    leaf = path.rsplit(".", 1)[-1].removesuffix("[]")
    if mine != theirs:
        if not (leaf in ID_KEYS and {mine, theirs} <= {"number", "string"}):
            problems.append(f"{path or '<root>'}: ours {mine}, sample {theirs}")
        return missing, extra, problems
    if mine == "object":
        for key in sample.keys() - ours.keys():
            missing.add(f"{path}.{key}".lstrip("."))
        for key in ours.keys() - sample.keys():
            extra.add(f"{path}.{key}".lstrip("."))
        for key in ours.keys() & sample.keys():
            m, e, p = shape_diff(ours[key], sample[key], f"{path}.{key}".lstrip("."))
            missing |= m
            extra |= e
            problems += p
    elif mine == "array" and ours and sample:
        m, e, p = shape_diff(ours[0], sample[0], f"{path}[]")
        missing |= m
        extra |= e
        problems += p
    return missing, extra, problems


def closest_shape(ours: Any, samples: list[Any]) -> tuple[set[str], set[str], list[str]]:
    """The :func:`shape_diff` against the sample that ``ours`` is closest to."""
    assert samples, "no sample to compare with"
    diffs = [shape_diff(ours, sample) for sample in samples]
    return min(diffs, key=lambda d: (len(d[2]), len(d[0]) + len(d[1])))
