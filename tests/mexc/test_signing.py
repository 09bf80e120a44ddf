"""Signing against vectors computed here, independently, with hmac/hashlib (PROTOCOL.md §2)."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from adapters.mexc.auth import Credentials, MexcAuth
from adapters.mexc.signing import query_string, rest_signature, ws_login_signature
from engine.clock import FixedClock

KEY = "mx0aBYs33eIilxBW5C"
SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
TS = 1657186536762


def expected(message: str | bytes) -> str:
    """hex(HMAC_SHA256(SECRET, message)), written out without the code under test."""
    data = message.encode() if isinstance(message, str) else message
    return hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()


def signed_headers(request: httpx.Request, recv_window: int | None = None) -> httpx.Request:
    """Run MexcAuth's flow once and return the request it would send."""
    clock = FixedClock(TS * 1_000_000)
    flow = MexcAuth(Credentials(KEY, SECRET), clock, recv_window).sync_auth_flow(request)
    sent = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    return sent


def test_get_without_params_signs_key_and_time_only() -> None:
    assert query_string({}) == ""
    assert query_string(None) == ""
    assert rest_signature(KEY, SECRET, TS, "") == expected(f"{KEY}{TS}")


def test_get_params_are_sorted_and_none_dropped() -> None:
    params = {"symbol": "BTC_USDT", "page_size": 10, "page_num": 1, "states": None}
    assert query_string(params) == "page_num=1&page_size=10&symbol=BTC_USDT"
    assert rest_signature(KEY, SECRET, TS, query_string(params)) == expected(
        f"{KEY}{TS}page_num=1&page_size=10&symbol=BTC_USDT"
    )


def test_comma_list_is_percent_encoded() -> None:
    qs = query_string({"order_ids": "1,2,3"})
    assert qs == "order_ids=1%2C2%2C3"
    assert rest_signature(KEY, SECRET, TS, qs) == expected(f"{KEY}{TS}order_ids=1%2C2%2C3")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "a%20b"),  # Java URLEncoder gives '+', MEXC's sample turns it into %20
        ("a~b", "a%7Eb"),  # Java encodes '~'; Python's quote would not
        ("a*b.c-d_e", "a*b.c-d_e"),  # Java leaves these bare
        ("a/b+c=d&e", "a%2Fb%2Bc%3Dd%26e"),
        ("中", "%E4%B8%AD"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_values_are_encoded_like_mexcs_java_sample(value: object, encoded: str) -> None:
    assert query_string({"v": value}) == f"v={encoded}"


def test_path_parameter_is_not_signed() -> None:
    request = httpx.Request(
        "GET", "https://h.test/api/v1/private/order/get/739106551624717312?symbol=BTC_USDT"
    )
    sent = signed_headers(request)
    assert sent.headers["Signature"] == expected(f"{KEY}{TS}symbol=BTC_USDT")
    bare = signed_headers(
        httpx.Request("GET", "https://h.test/api/v1/private/order/get/739106551624717312")
    )
    assert bare.headers["Signature"] == expected(f"{KEY}{TS}")


def test_get_headers_and_recv_window() -> None:
    sent = signed_headers(
        httpx.Request("GET", "https://h.test/api/v1/private/account/assets"), recv_window=30
    )
    assert sent.headers["ApiKey"] == KEY
    assert sent.headers["Request-Time"] == str(TS)
    assert sent.headers["Recv-Window"] == "30"
    assert sent.headers["Signature"] == expected(f"{KEY}{TS}")
    without = signed_headers(httpx.Request("GET", "https://h.test/api/v1/private/account/assets"))
    assert "Recv-Window" not in without.headers


def test_unsorted_query_is_rewritten_to_the_canonical_one_it_signs() -> None:
    request = httpx.Request("GET", "https://h.test/p?symbol=BTC_USDT&order_ids=1,2,3&page_num=1")
    sent = signed_headers(request)
    canonical = "order_ids=1%2C2%2C3&page_num=1&symbol=BTC_USDT"
    assert sent.url.query == canonical.encode()
    assert sent.headers["Signature"] == expected(f"{KEY}{TS}{canonical}")


def test_repeated_query_key_is_refused() -> None:
    with pytest.raises(ValueError, match="more than once"):
        signed_headers(httpx.Request("GET", "https://h.test/p?a=1&a=2"))


def test_post_object_body_signs_the_raw_bytes() -> None:
    body = b'{"symbol":"BTC_USDT","price":30000.0,"vol":1,"side":1,"type":1,"openType":2}'
    sent = signed_headers(httpx.Request("POST", "https://h.test/p", content=body))
    assert sent.headers["Signature"] == expected(f"{KEY}{TS}".encode() + body)
    # signing a re-serialised (re-sorted, spaced) body would give a different signature
    assert sent.headers["Signature"] != expected(
        f'{KEY}{TS}{{"openType": 2, "price": 30000.0, "side": 1, "symbol": "BTC_USDT"}}'
    )


def test_post_array_body_signs_the_raw_bytes() -> None:
    body = b'["739106551624717312","739106551624717313"]'
    sent = signed_headers(httpx.Request("POST", "https://h.test/p", content=body))
    assert sent.headers["Signature"] == expected(f"{KEY}{TS}".encode() + body)
    assert rest_signature(KEY, SECRET, TS, body) == expected(f"{KEY}{TS}".encode() + body)


def test_post_query_is_left_alone() -> None:
    sent = signed_headers(httpx.Request("POST", "https://h.test/p?b=2&a=1", content=b"{}"))
    assert sent.url.query == b"b=2&a=1"
    assert sent.headers["Signature"] == expected(f"{KEY}{TS}{{}}")


def test_ws_login_signs_the_docs_example_string() -> None:
    assert f"{KEY}{TS}" == "mx0aBYs33eIilxBW5C1657186536762"
    assert ws_login_signature(KEY, SECRET, TS) == expected("mx0aBYs33eIilxBW5C1657186536762")


def test_signature_is_lowercase_hex() -> None:
    signature = rest_signature(KEY, SECRET, TS, "a=1")
    assert len(signature) == 64
    assert signature == signature.lower()
    int(signature, 16)
