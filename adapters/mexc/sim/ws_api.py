"""The simulator's WebSocket protocol: one connection's state, and push fan-out (pure).

:class:`WsSession` is a connection's protocol state machine: :meth:`WsSession.receive` takes
one client text frame and returns the frames to answer with (acks, ``rs.error``, ``pong``,
a ``push.contract`` snapshot); it keeps the public subscriptions, the login and the
``personal.filter``. It does no I/O: the server shell feeds it and sends what it returns.

:func:`render_batch` turns the exchange's pushes of one step (or one REST call) into
:class:`Frame` values, each rendered once, with a *route* saying who may receive it;
:meth:`WsSession.wants` picks a connection's frames. Per subscription:

* ``sub.depth`` and ``sub.deal`` with ``compress`` true (the default since 2025) get one
  merged frame per batch: depth carries ``begin``/``end`` (``version == end``), deals an
  array; with ``compress`` false every depth commit and every deal is its own frame.
  Depth versions grow by exactly one per commit; a commit left out by the
  ``depth_gap_*`` faults splits the merged frame, so the gap is visible to the client.
* ``sub.depth.full`` gets a top-``limit`` snapshot after every batch that changed the book.
* ``"gzip": true`` on a ``sub.*`` (or ``login``) request sends that subscription's (or the
  private) pushes as gzip-compressed binary frames; everything else is a JSON text frame.

Private pushes go only to connections logged in as the push's account: every stream by
default, none after ``"subscribe": false``, and exactly the streams (and symbols) of the
last ``personal.filter`` once one was sent (an empty filter restores everything).
"""

from __future__ import annotations

import gzip
import hmac
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

from attrs import define, frozen

from adapters.mexc.signing import hmac_hex
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.facts import DepthCommit, Push, TickerView, tidy
from adapters.mexc.sim.gate import ApiAccount
from adapters.mexc.sim.rest_market import contract_detail
from adapters.mexc.sim.wire import dumps
from adapters.mexc.ws_messages import (
    DEPTH_FULL_LIMITS,
    KLINE_INTERVALS,
    PERSONAL_FILTER_KEYS,
    UNFILTERABLE_BY_SYMBOL,
)
from engine.model import Level

__all__ = [
    "LOGIN_WINDOW_MS",
    "PUBLIC_CHANNELS",
    "Frame",
    "SubOptions",
    "WsSession",
    "render_batch",
]

LOGIN_WINDOW_MS = 10_000
"""How far a login's ``reqTime`` may be from server time."""

PUBLIC_CHANNELS: tuple[str, ...] = (
    "tickers",
    "ticker",
    "deal",
    "depth",
    "depth.full",
    "kline",
    "funding.rate",
    "index.price",
    "fair.price",
    "contract",
)
"""The ``sub.<name>`` channels the simulator serves."""

_SYMBOL_OPTIONAL = frozenset({"tickers", "contract"})
_TICKERS_KEYS = (
    "symbol",
    "lastPrice",
    "riseFallRate",
    "fairPrice",
    "indexPrice",
    "volume24",
    "amount24",
    "maxBidPrice",
    "minAskPrice",
    "lower24Price",
    "high24Price",
    "timestamp",
)
_FUNDING_PUSH_KEYS = ("symbol", "rate", "nextSettleTime")

SubKey = tuple[str, str | None, str | None]
"""``(channel, symbol, interval)`` identifying one public subscription."""


@frozen
class SubOptions:
    """How one subscription is served."""

    gzip: bool = False
    compress: bool = True
    limit: int = 20


class Frame:
    """One rendered server frame and who may receive it.

    ``route`` is ``("pub", key, variant)`` for public pushes (``variant`` is ``"merged"``,
    ``"raw"``, a depth.full limit or None) or ``("priv", user, filter_key, symbol)``.
    """

    __slots__ = ("_gzipped", "route", "text")

    def __init__(self, text: str, route: tuple[Any, ...]) -> None:
        self.text = text
        self.route = route
        self._gzipped: bytes | None = None

    def payload(self, compressed: bool) -> str | bytes:
        """The text, or its gzip (computed once and shared by every receiver)."""
        if not compressed:
            return self.text
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.text.encode(), mtime=0)
        return self._gzipped

    def __repr__(self) -> str:
        return f"Frame({self.route!r}, {self.text[:60]!r})"


def _frame(channel: str, data: Any, ts: int, symbol: str | None = None) -> str:
    body: dict[str, Any] = {"channel": channel, "data": data}
    if symbol is not None:
        body["symbol"] = symbol
    body["ts"] = ts
    return dumps(body)


class _Refused(Exception):
    pass


# ---------------------------------------------------------------------------- a session


@define
class _Private:
    user: str
    enabled: bool
    gzip: bool
    filters: dict[str, frozenset[str]] | None = None


class WsSession:
    """The protocol state of one WebSocket connection (see the module docstring).

    ``accounts`` maps API keys to accounts (read at login); ``exchange`` answers symbol
    checks and ``sub.contract``.
    """

    def __init__(self, exchange: Exchange, accounts: Mapping[str, ApiAccount]) -> None:
        self.exchange = exchange
        self.accounts = accounts
        self.subscriptions: dict[SubKey, SubOptions] = {}
        self.private: _Private | None = None
        self.pings = 0

    @property
    def user(self) -> str | None:
        """The logged-in account, if any."""
        return self.private.user if self.private is not None else None

    # -- inbound ---------------------------------------------------------------------

    def receive(self, text: str, server_ms: int, *, answer_pings: bool = True) -> list[str]:
        """Handle one client frame; the text frames to answer with, in order."""
        try:
            message = _json_object(text)
        except _Refused as exc:
            return [_frame("rs.error", str(exc), server_ms)]
        method = message.get("method")
        if method == "ping":
            self.pings += 1
            return [_frame("pong", server_ms, server_ms)] if answer_pings else []
        if not isinstance(method, str):
            return [_frame("rs.error", "method is required", server_ms)]
        try:
            if method == "login":
                return self._login(message, server_ms)
            if method == "personal.filter":
                return self._filter(message, server_ms)
            if method.startswith("sub."):
                return self._subscribe(method[4:], message, server_ms)
            if method.startswith(("unsub.", "usub.")):  # usub.: the docs' typo, served too
                channel = method.split(".", 1)[1]
                return self._unsubscribe(channel, message, server_ms)
        except _Refused as exc:
            return [_frame("rs.error", str(exc), server_ms)]
        return [_frame("rs.error", f"Unknown method {method}"[:200], server_ms)]

    def _params(self, message: Mapping[str, Any]) -> dict[str, Any]:
        params = message.get("param", message.get("params"))
        if params is None:
            return {}
        if not isinstance(params, dict):
            raise _Refused("param must be an object")
        return params

    def _symbol(self, params: Mapping[str, Any], channel: str) -> str | None:
        symbol = params.get("symbol")
        if symbol is None or symbol == "":
            if channel in _SYMBOL_OPTIONAL:
                return None
            raise _Refused("symbol is required")
        if not isinstance(symbol, str) or self.exchange.contract(symbol) is None:
            raise _Refused(f"Contract [{symbol}] not exists")
        return symbol

    def _subscribe(self, channel: str, message: Mapping[str, Any], now: int) -> list[str]:
        if channel not in PUBLIC_CHANNELS:
            raise _Refused(f"Channel {channel} is not supported")
        params = self._params(message)
        symbol = self._symbol(params, channel)
        interval: str | None = None
        options = SubOptions(gzip=message.get("gzip") is True)
        if channel == "kline":
            interval = params.get("interval")
            if interval not in KLINE_INTERVALS:
                raise _Refused(f"interval must be one of {', '.join(KLINE_INTERVALS)}")
        if channel in ("deal", "depth"):
            compress = params.get("compress", True)
            if not isinstance(compress, bool):
                raise _Refused("compress must be true or false")
            options = SubOptions(options.gzip, compress)
        if channel == "depth.full":
            limit = params.get("limit", 20)
            if isinstance(limit, str) and limit.isdigit():
                limit = int(limit)
            if limit not in DEPTH_FULL_LIMITS or isinstance(limit, bool):
                raise _Refused(f"limit must be one of {DEPTH_FULL_LIMITS}")
            options = SubOptions(options.gzip, limit=limit)
        self.subscriptions[(channel, symbol, interval)] = options
        out = [_frame(f"rs.sub.{channel}", "success", now)]
        if channel == "contract":
            contracts = self.exchange.contracts
            chosen = [contracts[symbol]] if symbol else list(contracts.values())
            out += [_frame("push.contract", contract_detail(c), now, c.symbol) for c in chosen]
        return out

    def _unsubscribe(self, channel: str, message: Mapping[str, Any], now: int) -> list[str]:
        if channel not in PUBLIC_CHANNELS:
            raise _Refused(f"Channel {channel} is not supported")
        params = self._params(message)
        symbol = self._symbol(params, channel)
        interval = params.get("interval")
        for key in list(self.subscriptions):
            if key[0] == channel and key[1] == symbol and (interval is None or key[2] == interval):
                del self.subscriptions[key]
        return [_frame(f"rs.unsub.{channel}", "success", now)]

    def _login(self, message: Mapping[str, Any], now: int) -> list[str]:
        params = self._params(message)
        api_key, req_time, signature = (
            params.get("apiKey"),
            params.get("reqTime"),
            params.get("signature"),
        )
        account = self.accounts.get(api_key) if isinstance(api_key, str) else None
        if account is None:
            raise _Refused("Api key info invalid")
        req_text = str(req_time) if isinstance(req_time, int | str) else ""
        if not (req_text.isascii() and req_text.isdigit() and len(req_text) <= 19) or abs(
                now - int(req_text)) > LOGIN_WINDOW_MS:
            raise _Refused("Request time invalid")
        expected = hmac_hex(account.secret, f"{account.api_key}{req_text}")
        if not isinstance(signature, str) or not hmac.compare_digest(expected, signature.lower()):
            raise _Refused("Signature verification failed")
        self.private = _Private(
            account.user, message.get("subscribe") is not False, message.get("gzip") is True
        )
        return [_frame("rs.login", "success", now)]

    def _filter(self, message: Mapping[str, Any], now: int) -> list[str]:
        if self.private is None:
            raise _Refused("Not logged in")
        params = self._params(message)
        entries = params.get("filters")
        if entries is None or entries == []:
            self.private.filters = None
            self.private.enabled = True
            return [_frame("rs.personal.filter", "success", now)]
        if not isinstance(entries, list):
            raise _Refused("filters must be a list")
        filters: dict[str, frozenset[str]] = {}
        for entry in entries:
            key = entry.get("filter") if isinstance(entry, dict) else None
            if key not in PERSONAL_FILTER_KEYS:
                raise _Refused(f"Invalid filter key {key!r}"[:200])
            rules = entry.get("rules") or []
            if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
                raise _Refused(f"rules of {key} must be a list of symbols")
            filters[key] = frozenset() if key in UNFILTERABLE_BY_SYMBOL else frozenset(rules)
        self.private.filters = filters
        self.private.enabled = True
        return [_frame("rs.personal.filter", "success", now)]

    # -- outbound --------------------------------------------------------------------

    def wants(self, frame: Frame) -> bool | None:
        """None when this connection does not get ``frame``, else whether to gzip it."""
        route = frame.route
        if route[0] == "pub":
            options = self.subscriptions.get(route[1])
            if options is None:
                return None
            variant = route[2]
            if variant == "merged" and not options.compress:
                return None
            if variant == "raw" and options.compress:
                return None
            if isinstance(variant, int) and variant != options.limit:
                return None
            return options.gzip
        private = self.private
        if private is None or private.user != route[1] or not private.enabled:
            return None
        if private.filters is not None:
            rules = private.filters.get(route[2])
            if rules is None or (rules and route[3] not in rules):
                return None
        return private.gzip


def _json_object(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise _Refused("Invalid JSON") from None
    if not isinstance(message, dict):
        raise _Refused("A request must be a JSON object")
    return message


# ------------------------------------------------------------------------------- fan-out


def _levels(levels: Iterable[Level]) -> list[list[Any]]:
    return [[tidy(price), tidy(vol), count] for price, vol, count in levels]


def _merged(run: list[DepthCommit]) -> dict[str, Any]:
    asks: dict[Decimal, Level] = {}
    bids: dict[Decimal, Level] = {}
    for commit in run:
        asks.update((level[0], level) for level in commit.asks)
        bids.update((level[0], level) for level in commit.bids)
    return {
        "asks": _levels(sorted(asks.values())),
        "bids": _levels(sorted(bids.values(), reverse=True)),
        "begin": run[0].version,
        "end": run[-1].version,
        "version": run[-1].version,
    }


def _runs(commits: list[DepthCommit]) -> list[list[DepthCommit]]:
    runs: list[list[DepthCommit]] = []
    for commit in commits:
        if runs and runs[-1][-1].version + 1 == commit.version:
            runs[-1].append(commit)
        else:
            runs.append([commit])
    return runs


def _symbol_of(data: Any) -> str | None:
    symbol = getattr(data, "symbol", None)
    return symbol if isinstance(symbol, str) else None


def render_batch(
    pushes: list[Push],
    exchange: Exchange,
    now_ms: int,
    *,
    skip_commit: Callable[[], bool] = lambda: False,
    full_limits: Mapping[str, set[int]] | None = None,
    public_keys: Collection[SubKey] | None = None,
    users: Collection[str] | None = None,
) -> list[Frame]:
    """Every frame the batch ``pushes`` produces, in push order (see the module docstring).

    ``skip_commit`` is asked once per depth commit someone listens to (the gap faults);
    ``full_limits`` names the ``depth.full`` limits subscribed to, per symbol;
    ``public_keys`` and ``users`` name the subscriptions and accounts someone listens to, so
    that nothing else is rendered (None: render everything).
    """
    frames: list[Frame] = []
    commits: dict[str, list[DepthCommit]] = {}
    deals: dict[str, list[Any]] = {}
    tickers: list[TickerView] = []
    slot: dict[str, int] = {}
    key: Any
    route: tuple[Any, ...]
    for push in pushes:
        channel, symbol = push.channel, push.symbol
        if push.user is not None and users is not None and push.user not in users:
            continue
        if push.user is None and public_keys is not None:
            if channel == "push.ticker" and ("tickers", None, None) in public_keys:
                pass
            elif channel == "push.kline":
                interval = getattr(push.data, "interval", None)
                if ("kline", symbol, interval) not in public_keys:
                    continue
            elif channel == "push.depth":
                if ("depth", symbol, None) not in public_keys and (
                    full_limits is None or not full_limits.get(symbol or "")
                ):
                    continue
            elif (channel.removeprefix("push."), symbol, None) not in public_keys:
                continue
        if push.user is not None:
            key = channel.removeprefix("push.personal.")
            route = ("priv", push.user, key, _symbol_of(push.data))
            frames.append(Frame(_frame(channel, push.frame()["data"], push.ts), route))
        elif channel == "push.depth" and symbol is not None:
            commit = push.data
            assert isinstance(commit, DepthCommit)
            if skip_commit():
                continue
            text = _frame(channel, commit.wire(), push.ts, symbol)
            frames.append(Frame(text, ("pub", ("depth", symbol, None), "raw")))
            commits.setdefault(symbol, []).append(commit)
            slot[f"depth:{symbol}"] = len(frames)
        elif channel == "push.deal" and symbol is not None:
            assert isinstance(push.data, tuple)
            for deal in push.data:
                text = _frame(channel, [deal.wire()], push.ts, symbol)
                frames.append(Frame(text, ("pub", ("deal", symbol, None), "raw")))
            deals.setdefault(symbol, []).extend(push.data)
            slot[f"deal:{symbol}"] = len(frames)
        elif channel == "push.kline":
            data = push.frame()["data"]
            key = ("kline", symbol, data["interval"])
            frames.append(Frame(_frame(channel, data, push.ts, symbol), ("pub", key, None)))
        elif channel == "push.funding.rate":
            wire = push.frame()["data"]
            data = {k: wire[k] for k in _FUNDING_PUSH_KEYS if k in wire}
            key = ("funding.rate", symbol, None)
            frames.append(Frame(_frame(channel, data, push.ts, symbol), ("pub", key, None)))
        else:
            if channel == "push.ticker" and isinstance(push.data, TickerView):
                tickers.append(push.data)
            key = (channel.removeprefix("push."), symbol, None)
            text = _frame(channel, push.frame()["data"], push.ts, symbol)
            frames.append(Frame(text, ("pub", key, None)))
    # merged frames go right after the last raw frame they cover, in order
    after: dict[int, list[Frame]] = {}
    for symbol, run_list in commits.items():
        at = after.setdefault(slot[f"depth:{symbol}"], [])
        key = ("depth", symbol, None)
        for run in _runs(run_list):
            text = _frame("push.depth", _merged(run), now_ms, symbol)
            at.append(Frame(text, ("pub", key, "merged")))
        limits = DEPTH_FULL_LIMITS if full_limits is None else sorted(full_limits.get(symbol, ()))
        if limits:
            snapshot = exchange.depth_snapshot(symbol, now_ms, max(limits))
            for limit in limits:
                data = {
                    "asks": _levels(snapshot.asks[:limit]),
                    "bids": _levels(snapshot.bids[:limit]),
                    "version": snapshot.version,
                }
                route = ("pub", ("depth.full", symbol, None), limit)
                at.append(Frame(_frame("push.depth.full", data, now_ms, symbol), route))
    for symbol, batch in deals.items():
        text = _frame("push.deal", [deal.wire() for deal in batch], now_ms, symbol)
        route = ("pub", ("deal", symbol, None), "merged")
        after.setdefault(slot[f"deal:{symbol}"], []).append(Frame(text, route))
    out: list[Frame] = []
    for index, frame in enumerate(frames, start=1):
        out.append(frame)
        out.extend(after.get(index, ()))
    if tickers:
        rows = [{k: t.wire()[k] for k in _TICKERS_KEYS} for t in tickers]
        route = ("pub", ("tickers", None, None), None)
        out.append(Frame(_frame("push.tickers", rows, now_ms), route))
    return out
