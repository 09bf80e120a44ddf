"""Journal rows ↔ meaning for the MEXC adapter (pure).

The journal stores wire text; this module is the one place that says what a stored row means
to the engine. :func:`rest_row` turns a REST answer (:class:`RawResponse`) into the journal
row to append, :func:`ws_row` a received frame; :func:`interpret` turns any stored row back
into typed values — model messages for market and account data, engine events for the
outcome of an order placement (``OrderAccepted``, ``OrderRejected``,
``OrderOutcomeUnknown``) — exactly the same way live, at restart and in replay.

Row formats:

* ``ws.<channel>``: ``body`` is the frame text as received; ``stream`` the symbol.
* ``rest.<endpoint>``: ``body`` is canonical JSON ``{"endpoint", "method", "path", "query",
  "request_body", "status", "headers", "body", "sent_ns", "received_ns"}`` where
  ``body`` is the answer text as received (parameters that decoding needs, such as the
  symbol, are read back from ``path`` and ``query``); ``stream`` is the order's externalOid
  for order calls, else the symbol.
* anything else: an engine-made event (:mod:`engine.codec`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, unquote

import orjson

from adapters.mexc.codecs import decode_envelope, decode_rest, ws_messages
from adapters.mexc.endpoints import ENDPOINTS
from adapters.mexc.errors import Classification, DecodeError, classify
from engine import codec
from engine import model as m
from engine.events import (
    NewEvent,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    Row,
    canonical_json,
)

__all__ = ["MODEL_TYPES", "PLACE_ENDPOINTS", "call_params", "interpret", "rest_row", "ws_row"]

MODEL_TYPES: Final = (
    m.Ticker,
    m.Trade,
    m.BookSnapshot,
    m.BookDelta,
    m.Kline,
    m.FundingRate,
    m.IndexPrice,
    m.FairPrice,
    m.OrderUpdate,
    m.Fill,
    m.PositionUpdate,
    m.BalanceUpdate,
    m.ContractInfo,
    m.PlanOrderUpdate,
    m.StopOrderUpdate,
    m.RiskLimitUpdate,
    m.AdlLevel,
    m.PositionModeUpdate,
)
"""The typed messages the engine folds; other decoded values (cancel results, pages of
funding history, ...) are journaled but not folded."""
_MODEL_SET: Final = frozenset(MODEL_TYPES)

PLACE_ENDPOINTS: Final = frozenset({"order_create", "order_submit"})
_CHANNEL = re.compile(r'"channel"\s*:\s*"([^"]{1,64})"')
_SYMBOL = re.compile(r'"symbol"\s*:\s*"([^"]{1,64})"')
_TS = re.compile(r'"ts"\s*:\s*"?(\d{1,16})')


def ws_row(text: str, received_ns: int) -> NewEvent:
    """The journal row of one received frame (channel, symbol and ts found by a cheap scan)."""
    head = text[:160]
    m = _CHANNEL.search(head) or _CHANNEL.search(text)
    kind = f"ws.{m.group(1)}" if m else "ws.unknown"
    s = _SYMBOL.search(head)
    ts = _TS.search(text[-40:]) or _TS.search(head)
    return NewEvent(
        ts_ns=received_ns,
        source="ws",
        kind=kind,
        body=text,
        venue_ts_ms=int(ts.group(1)) if ts else None,
        stream=s.group(1) if s else None,
    )


def rest_row(raw: Any, *, stream: str | None = None, cause: int | None = None) -> NewEvent:
    """The journal row of a REST answer (a :class:`~adapters.mexc.rest_call.RawResponse`)."""
    record = {
        "endpoint": raw.endpoint,
        "method": raw.method,
        "path": raw.path,
        "query": raw.query,
        "request_body": raw.request_body,
        "status": raw.status,
        "headers": list(raw.headers),
        "body": raw.body_text,
        "sent_ns": raw.sent_ns,
        "received_ns": raw.received_ns,
    }
    symbol = call_params(raw.endpoint, raw.path, raw.query).get("symbol")
    return NewEvent(
        ts_ns=raw.received_ns,
        source="rest",
        kind=f"rest.{raw.endpoint}",
        body=canonical_json(record),
        stream=stream or symbol,
        cause=cause,
    )


def call_params(endpoint: str, path: str, query: str) -> dict[str, str]:
    """Path and query parameters of a recorded call (``symbol``, ``interval``, ...)."""
    params = dict(parse_qsl(query or "", keep_blank_values=True))
    ep = ENDPOINTS.get(endpoint)
    if ep is not None:
        want = ep.path_template.split("/")
        got = path.split("?")[0].split("/")
        if endpoint == "open_orders" and len(got) == len(want) + 1:
            want = [*want, "{symbol}"]
        if len(want) == len(got):
            for w, g in zip(want, got, strict=True):
                if w.startswith("{") and w.endswith("}"):
                    params[w[1:-1]] = unquote(g)
    return params


def _place_outcome(ev: Row, record: Mapping[str, Any]) -> tuple[Any, ...]:
    oid = ev.stream or ""
    status = int(record.get("status") or 0)
    if status >= 500 or status in (408, 0):
        return (OrderOutcomeUnknown(oid, f"HTTP {status}", ev.ts_ns),)
    try:
        env = decode_envelope(record["body"])
    except DecodeError as exc:
        if 400 <= status < 500:  # e.g. 404: the endpoint is gone, nothing was placed
            return (OrderRejected(oid, status, f"HTTP {status} without an envelope", ev.ts_ns),)
        return (OrderOutcomeUnknown(oid, f"unparsable answer: {exc.reason}", ev.ts_ns),)
    if env.success and env.code in (0, 200):
        try:
            order_id = decode_rest(record["endpoint"], env.data)
        except DecodeError as exc:
            return (OrderOutcomeUnknown(oid, f"unparsable answer: {exc.reason}", ev.ts_ns),)
        return (OrderAccepted(oid, str(order_id), ev.ts_ns),)
    kind = Classification.RETRYABLE if status == 429 else classify(env.code)
    if kind is Classification.UNKNOWN_OUTCOME:
        return (OrderOutcomeUnknown(oid, f"code {env.code}: {env.message}", ev.ts_ns),)
    # a definite refusal, or a retryable one (510/429: nothing was placed)
    return (OrderRejected(oid, env.code, env.message or "", ev.ts_ns),)


def _rest(ev: Row) -> tuple[Any, ...]:
    try:
        record = orjson.loads(ev.body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(ev.kind, f"journal record is not JSON: {exc}") from exc
    if not isinstance(record, dict) or "body" not in record:
        raise DecodeError(ev.kind, "journal record lacks the answer body")
    endpoint = record.get("endpoint") or ev.kind[5:]
    if endpoint in PLACE_ENDPOINTS:
        return _place_outcome(ev, record)
    env = decode_envelope(record["body"])
    if not (env.success and env.code in (0, 200)):
        return ()
    params = call_params(endpoint, str(record.get("path", "")), str(record.get("query", "")))
    value = decode_rest(
        endpoint, env.data, params.get("symbol"), interval=params.get("interval", "Min1")
    )
    if value is None:
        return ()
    if not isinstance(value, tuple):
        items = getattr(value, "items", None)  # a Page
        value = items if isinstance(items, tuple) else (value,)
    return tuple(v for v in value if isinstance(v, MODEL_TYPES))


def interpret(ev: Row) -> tuple[Any, ...]:
    """The typed values a stored row stands for (possibly none).

    Raises :class:`DecodeError` (or :class:`engine.codec.JournalDecodeError` for engine rows)
    when the row cannot be read; the caller journals that and carries on.
    """
    if ev.source == "ws":
        messages = ws_messages(ev.body)
        for v in messages:  # nearly always all model values: skip the copy then
            if type(v) not in _MODEL_SET:
                return tuple(v for v in messages if isinstance(v, MODEL_TYPES))
        return messages
    if ev.source == "rest":
        return _rest(ev)
    return (codec.decode(ev.kind, ev.body),)
