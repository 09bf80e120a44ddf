"""The simulator's REST API: routing, authentication, rate limits, envelopes (pure).

:meth:`RestApi.handle` turns one :class:`RestRequest` (method, raw path, raw query, headers,
body bytes) into one :class:`RestReply` (HTTP status and body text), given the server's
time; it knows nothing of HTTP libraries, sockets or fault injection, which live in
:mod:`adapters.mexc.sim.service`. Paths come from :data:`adapters.mexc.endpoints.ENDPOINTS`
plus a few aliases MEXC also serves; handlers are in :mod:`adapters.mexc.sim.rest_handlers`.

Every MEXC answer is HTTP 200 with an envelope, like the venue: ``{"success":true,"code":0,
"data":...}`` or ``{"success":false,"code":N,"message":"..."}``. Unknown paths get HTTP 404
with a Spring-style JSON body (no envelope), a wrong method 405, a body larger than
:data:`MAX_BODY_BYTES` 413 (before routing or parsing, as a front proxy would). The spot
endpoints ccxt calls while loading markets are answered too (``/api/v3/exchangeInfo`` with
no symbols, ``/api/v3/capital/config/getall`` with ``[]``, ``/api/v3/ping``,
``/api/v3/time``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, unquote

from attrs import field, frozen

from adapters.mexc.endpoints import ENDPOINTS, Endpoint
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.gate import ApiAccount, AuthRefused, RateLimits, authenticate
from adapters.mexc.sim.wire import dumps, error_envelope, ok_envelope

__all__ = [
    "MAX_BODY_BYTES",
    "NO_DATA",
    "Call",
    "Refusal",
    "RestApi",
    "RestReply",
    "RestRequest",
    "Route",
    "not_found",
]

NO_DATA: Any = object()
"""Returned by a handler whose answer has no ``data`` key (``{"success":true,"code":0}``)."""

_JSON = "application/json"

MAX_BODY_BYTES = 1 << 20
"""The largest request body served: 1 MiB (nginx's default ``client_max_body_size``; a
50-order batch is about 15 KiB). Larger bodies get HTTP 413 unparsed."""

_MAX_INT_DIGITS = 30
"""Integer parameters longer than this are refused (Python refuses over 4300 digits)."""


@frozen
class RestRequest:
    """One HTTP request as received: ``path`` still percent-encoded and without the query,
    ``raw_query`` exactly as sent, header names lower-cased, the body as raw bytes."""

    method: str
    path: str
    raw_query: str = ""
    headers: Mapping[str, str] = field(factory=dict)
    body: bytes = b""
    client: str | None = None


@frozen
class RestReply:
    """What to answer: HTTP ``status``, ``body`` text, its content type; ``endpoint`` names
    the endpoint that was routed to (None for unknown paths)."""

    status: int
    body: str
    content_type: str = _JSON
    endpoint: str | None = None


class Refusal(Exception):
    """Raised by a handler to answer with an error envelope ``code`` and ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def not_found(path: str, now_ms: int, status: int = 404) -> RestReply:
    """The gateway's answer for a path it does not serve (no MEXC envelope)."""
    error = {404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}.get(
        status, "Error")
    body = dumps({"timestamp": now_ms, "status": status, "error": error, "path": path})
    return RestReply(status, body)


# ------------------------------------------------------------------------ the call context


class Call:
    """One routed request as handlers see it: who, when, path/query/body parameters.

    ``now_ms`` is the exchange's clock (monotonic), ``server_ms`` the server time that is
    reported to clients (it includes any clock-skew fault). Parameter readers raise
    :class:`Refusal` with code 600 on a bad value.
    """

    def __init__(
        self,
        api: RestApi,
        endpoint: str,
        path_params: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
        user: str | None,
        now_ms: int,
        server_ms: int,
    ) -> None:
        self.api = api
        self.exchange = api.exchange
        self.endpoint = endpoint
        self.path_params = path_params
        self.query = query
        self._raw_body = body
        self._body: Any = None
        self._parsed = False
        self._user = user
        self.now_ms = now_ms
        self.server_ms = server_ms

    @property
    def user(self) -> str:
        """The authenticated account (private endpoints only)."""
        if self._user is None:
            raise Refusal(401, "Not logged in")
        return self._user

    @property
    def body(self) -> Any:
        """The JSON body, numbers as exact Decimals (601 when it is not JSON)."""
        if not self._parsed:
            text = self._raw_body.strip()
            try:
                self._body = json.loads(text, parse_float=Decimal) if text else {}
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                raise Refusal(601, "Request body is not valid JSON") from None
            self._parsed = True
        return self._body

    def body_object(self) -> dict[str, Any]:
        """The body, which must be a JSON object."""
        body = self.body
        if not isinstance(body, dict):
            raise Refusal(600, "Request body must be a JSON object")
        return body

    # -- symbols -----------------------------------------------------------------------

    def symbol(self, value: Any, *, required: bool = True) -> str | None:
        """A listed contract's symbol; 600 when missing (if required), 1001 when unknown."""
        if value is None or value == "":
            if required:
                raise Refusal(600, "symbol is required")
            return None
        if not isinstance(value, str) or self.exchange.contract(value) is None:
            raise Refusal(1001, f"Contract [{value}] does not exist")
        return value

    def path_symbol(self) -> str:
        """The ``{symbol}`` path parameter, checked."""
        symbol = self.symbol(self.path_params.get("symbol"))
        assert symbol is not None
        return symbol

    def query_symbol(self, *, required: bool = False) -> str | None:
        """The ``symbol`` query parameter, checked."""
        return self.symbol(self.query.get("symbol"), required=required)

    # -- query values ------------------------------------------------------------------

    def query_int(
        self,
        name: str,
        default: int | None = None,
        *,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        """An integer query parameter (``default`` when absent or empty)."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        return int_value(raw, name, low=low, high=high)

    def query_ints(self, name: str) -> list[int] | None:
        """A comma list of integers (``states=3,4``)."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return None
        return [int_value(part, name) for part in raw.split(",") if part.strip()]

    def page(self, items: list[Any], *, default_size: int = 20, max_size: int = 100) -> list[Any]:
        """The ``page_num``/``page_size`` slice of ``items`` (1-based pages)."""
        page_num = self.query_int("page_num", 1, low=1)
        page_size = self.query_int("page_size", default_size, low=1, high=max_size)
        assert page_num is not None and page_size is not None
        start = (page_num - 1) * page_size
        return items[start : start + page_size]

    def paged(self, items: list[Any], *, default_size: int = 20, max_size: int = 100) -> dict:
        """MEXC's paged object ``{pageSize,totalCount,totalPage,currentPage,resultList}``."""
        page_num = self.query_int("page_num", 1, low=1)
        page_size = self.query_int("page_size", default_size, low=1, high=max_size)
        assert page_num is not None and page_size is not None
        total = len(items)
        start = (page_num - 1) * page_size
        return {
            "pageSize": page_size,
            "totalCount": total,
            "totalPage": (total + page_size - 1) // page_size,
            "currentPage": page_num,
            "resultList": items[start : start + page_size],
        }


def int_value(raw: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``raw`` (an int, an integral Decimal or a decimal string) as int; 600 otherwise."""
    value: int | None = None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        value = int(raw)
    elif isinstance(raw, str) and _is_int_text(raw.strip()):
        value = int(raw.strip())
    if value is None:
        raise Refusal(600, f"{name} must be an integer, got {raw!r}"[:200])
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{'' if low is None else low}..{'' if high is None else high}"
        raise Refusal(600, f"{name} must be in {bounds}, got {value}")
    return value


def _is_int_text(text: str) -> bool:
    """ASCII digits (``str.isdigit`` also accepts ``²``, which ``int`` refuses), not huge."""
    digits = text.removeprefix("-")
    return digits.isascii() and digits.isdigit() and len(digits) <= _MAX_INT_DIGITS


def decimal_value(raw: Any, name: str) -> Decimal:
    """``raw`` (a JSON number or a numeric string) as a finite Decimal; 600 otherwise."""
    if isinstance(raw, bool) or raw is None:
        raise Refusal(600, f"{name} must be a number")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise Refusal(600, f"{name} must be a number, got {raw!r}"[:200]) from None
    if not value.is_finite():
        raise Refusal(600, f"{name} must be a finite number")
    return value


def id_text(raw: Any, name: str) -> str:
    """An id given as a JSON string or number, as its decimal text; 600 otherwise."""
    if isinstance(raw, bool) or raw is None:
        raise Refusal(600, f"{name} must be an id (string or number)")
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        return str(int(raw))
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    raise Refusal(600, f"{name} must be an id (string or number), got {raw!r}"[:200])


# -------------------------------------------------------------------------------- routing

Handler = Callable[[Call], Any]


@frozen
class Route:
    """One served path: ``template`` segments (``{name}`` for parameters) → ``endpoint``."""

    method: str
    template: tuple[str, ...]
    endpoint: str
    rate_key: str
    private: bool

    @property
    def literal_count(self) -> int:
        """How many segments are fixed text (more is more specific)."""
        return sum(1 for part in self.template if not part.startswith("{"))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Path parameters (decoded) when ``segments`` fit this route, else None."""
        if len(segments) != len(self.template):
            return None
        params = {}
        for part, segment in zip(self.template, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    return None
                params[part[1:-1]] = unquote(segment)
            elif part != segment:
                return None
        return params


def _route(endpoint: Endpoint, path: str | None = None, name: str | None = None) -> Route:
    template = tuple((path or endpoint.path_template).strip("/").split("/"))
    return Route(
        endpoint.method, template, name or endpoint.name, endpoint.rate_key, endpoint.private
    )


_ALIASES: tuple[tuple[str, str], ...] = (
    # (endpoint whose handler and rate key serve it, extra path MEXC also serves)
    ("open_orders", "/api/v1/private/order/list/open_orders/{symbol}"),
    ("order_deals", "/api/v1/private/order/list/order_deals/v3"),
    ("order_cancel_with_external", "/api/v1/private/order/batch_cancel_with_external"),
    ("tiered_fee_rate", "/api/v1/private/account/tiered_fee_rate/v2"),
    ("planorder_place", "/api/v1/private/planorder/place/v2"),
    ("risk_reverse", "/api/v1/contract/risk_reverse/{symbol}"),
)

_SPOT: tuple[Route, ...] = tuple(
    Route("GET", tuple(path.strip("/").split("/")), name, name, False)
    for name, path in (
        ("spot_exchange_info", "/api/v3/exchangeInfo"),
        ("spot_capital_config", "/api/v3/capital/config/getall"),
        ("spot_ping", "/api/v3/ping"),
        ("spot_time", "/api/v3/time"),
    )
)


def default_routes() -> tuple[Route, ...]:
    """Every route: each endpoint of ``ENDPOINTS``, the aliases, the spot stubs."""
    routes = [_route(endpoint) for endpoint in ENDPOINTS.values()]
    routes += [_route(ENDPOINTS[name], path) for name, path in _ALIASES]
    routes += _SPOT
    return tuple(sorted(routes, key=lambda r: -r.literal_count))


def _query_map(raw_query: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(raw_query, keep_blank_values=True))
    except ValueError:
        return {}


# ---------------------------------------------------------------------------------- api


class RestApi:
    """Answers REST requests against one :class:`Exchange` (see the module docstring).

    ``accounts`` maps API keys to accounts (read on every request, so keys added later
    work); ``rate_limits`` None disables rate limiting; ``restricted_symbols`` (mutable)
    refuses order placement with 6005 while cancels and queries keep working.
    """

    def __init__(
        self,
        exchange: Exchange,
        accounts: Mapping[str, ApiAccount],
        handlers: Mapping[str, Handler],
        *,
        rate_limits: RateLimits | None = None,
        restricted_symbols: Collection[str] = (),
        routes: tuple[Route, ...] | None = None,
    ) -> None:
        self.exchange = exchange
        self.accounts = accounts
        self.handlers = dict(handlers)
        self.rate_limits = rate_limits
        self.restricted_symbols: set[str] = set(restricted_symbols)
        self.routes = routes if routes is not None else default_routes()
        missing = {r.endpoint for r in self.routes} - set(self.handlers)
        if missing:
            raise ValueError(f"no handler for {sorted(missing)}")

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        """The route and path parameters for ``method path``, or 404/405."""
        segments = path.strip("/").split("/")
        allowed = False
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed = True
        return 405 if allowed else 404

    def handle(
        self, request: RestRequest, now_ms: int, server_ms: int, *, limit_ms: int | None = None
    ) -> RestReply:
        """Answer ``request``; ``now_ms`` is exchange time, ``server_ms`` reported time.

        ``limit_ms`` is the time the rate-limit windows slide on (default ``now_ms``): a clock
        that never jumps, so that a skewed server clock cannot freeze or stretch them.
        """
        if len(request.body) > MAX_BODY_BYTES:
            return not_found(request.path, server_ms, 413)
        found = self.resolve(request.method, request.path)
        if isinstance(found, int):
            return not_found(request.path, server_ms, found)
        route, params = found
        user: str | None = None
        if route.private:
            account = authenticate(
                self.accounts,
                request.headers,
                request.method,
                request.raw_query,
                request.body,
                server_ms,
            )
            if isinstance(account, AuthRefused):
                return self._error(route, account.code, account.message)
            user = account.user
            who = f"key:{account.api_key}"
        else:
            who = f"host:{request.client or 'local'}"
        if self.rate_limits is not None and not self.rate_limits.admit(
            who, route.rate_key, now_ms if limit_ms is None else limit_ms
        ):
            return self._error(route, 510, "Requests are too frequent!")
        call = Call(
            self,
            route.endpoint,
            params,
            _query_map(request.raw_query),
            request.body,
            user,
            now_ms,
            server_ms,
        )
        try:
            data = self.handlers[route.endpoint](call)
        except Refusal as refusal:
            return self._error(route, refusal.code, refusal.message)
        if route.endpoint.startswith("spot_"):
            return RestReply(200, dumps(data), endpoint=route.endpoint)
        body = ok_envelope() if data is NO_DATA else ok_envelope(data)
        return RestReply(200, body, endpoint=route.endpoint)

    @staticmethod
    def _error(route: Route, code: int, message: str) -> RestReply:
        return RestReply(200, error_envelope(code, message), endpoint=route.endpoint)
