"""The REST client's shortcuts give what httpx would: ``body_text`` is ``response.text`` (or
the same exception) for every kind of ``Content-Type`` and body, and parsed URLs shared
between calls are the URLs httpx would have parsed (httpx.MockTransport, no sockets)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.errors import MexcError
from adapters.mexc.rest import MexcRestClient, RawResponse
from adapters.mexc.rest_call import RestCaller
from engine.clock import FixedClock

CREDS = Credentials("mx0aBYs33eIilxBW5C", "45d0b3c26f2644f19bfb98b07741b2f5")


async def body_text(answer: httpx.Response, **client: Any) -> str | type[Exception]:
    """``body_text`` of the RawResponse of a ping answered with ``answer`` (or the type of
    what reading it raised)."""
    raws: list[RawResponse] = []

    async def on_response(raw: RawResponse) -> None:
        raws.append(raw)

    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: answer),
                                 **client) as http:
        rest = MexcRestClient(http, MexcConfig(), CREDS, FixedClock(0), on_response)
        try:
            await rest.ping()
        except MexcError:
            pass  # only the raw answer matters here
        except Exception as exc:
            return type(exc)
    (raw,) = raws
    return raw.body_text


def httpx_text(response: httpx.Response) -> str | type[Exception]:
    try:
        return response.text
    except Exception as exc:
        return type(exc)


BODIES = [b"", b'{"success":true}', "é€😀".encode(), b"\xff\xfe bad \xc3", "café".encode("latin-1"),
          b"\xe2\x82"]
TYPES = [None, "application/json", "text/plain", "application/json; charset=iso-8859-1",
         "application/json;charset=utf-16", 'text/html; charset="utf-8"',
         "application/json; charset=nonsense"]


@pytest.mark.parametrize("content_type", TYPES)
@pytest.mark.parametrize("body", BODIES)
async def test_body_text_is_what_httpx_decodes(content_type: str | None, body: bytes) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    got = await body_text(httpx.Response(200, headers=headers, content=body))
    assert got == httpx_text(httpx.Response(200, headers=headers, content=body))


async def test_body_text_honours_a_client_default_encoding() -> None:
    body = "café".encode("latin-1")
    got = await body_text(httpx.Response(200, headers={"Content-Type": "application/json"},
                                         content=body), default_encoding="latin-1")
    assert got == "café"


async def test_fixed_urls_are_parsed_once_and_stay_right() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "code": 0, "data": 1})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        for base in ("https://contract.mexc.com", "http://127.0.0.1:8080/prefix"):
            rest = RestCaller(http, MexcConfig(rest_base=base), CREDS, FixedClock(0))
            for _ in range(2):
                await rest.call("order_create", body={"x": 1}, decode=False)
                await rest.call("ping", decode=False)
                await rest.call("detail", query={"symbol": "BTC_USDT"}, decode=False)
    urls = [str(r.url) for r in seen]
    assert urls == 2 * [
        "https://contract.mexc.com/api/v1/private/order/create",
        "https://contract.mexc.com/api/v1/contract/ping",
        "https://contract.mexc.com/api/v1/contract/detail?symbol=BTC_USDT",
    ] + 2 * [
        "http://127.0.0.1:8080/prefix/api/v1/private/order/create",
        "http://127.0.0.1:8080/prefix/api/v1/contract/ping",
        "http://127.0.0.1:8080/prefix/api/v1/contract/detail?symbol=BTC_USDT",
    ]
    for request in seen:
        assert request.url == httpx.URL(str(request.url))
