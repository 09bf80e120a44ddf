"""One MEXC REST call from start to finish (shell: httpx, trio via the limiter).

Theory of operation, per call: resolve the endpoint; build the canonical query (or the
compact JSON body); wait for the rate limiter; sign (``MexcAuth``) and send; hand the
:class:`RawResponse` to ``on_response`` (the journal) *before* interpreting it; then decode
the envelope and either return the decoded ``data`` or raise the classified error.

Failure policy (see :mod:`adapters.mexc.errors`):

* nothing left the client (connect error or timeout, pool timeout): ``TransportError``,
  retryable, whatever the method;
* no usable answer after sending (read/write timeout, connection dropped, HTTP 5xx,
  unparsable body, undecodable ``data``): for a mutating request (POST) ``ResponseLost``, an
  unknown outcome to settle by query; for a read (GET) ``TransportError``, retryable, except
  that ``data`` which fails to decode in a well-formed success envelope raises the
  ``DecodeError`` itself (retrying will not fix a parser or a protocol change);
* HTTP 429 and envelope codes 510/2037: ``RateLimitedError``, and the limiter backs off;
* any other error envelope (``success`` false, or a code other than 0 or the legacy 200):
  ``error_for(code, message, endpoint)``; an HTTP 4xx without an envelope: ``AuthError``
  (401), ``PermissionDeniedError`` (403) or ``RejectedError``.

Decoding passes the call's ``symbol`` and ``interval`` (from the path or query) to
``decode_rest``, for answers that do not name them (depth, deals, klines).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
from attrs import frozen

from adapters.mexc.auth import Credentials, MexcAuth
from adapters.mexc.bodies import json_bytes
from adapters.mexc.config import MexcConfig
from adapters.mexc.endpoints import Endpoint, resolve
from adapters.mexc.errors import (
    AuthError,
    CredentialsError,
    DecodeError,
    ExchangeError,
    PermissionDeniedError,
    RateLimitedError,
    RejectedError,
    ResponseLost,
    TransportError,
    error_for,
)
from adapters.mexc.ratelimit import RateLimiter
from adapters.mexc.signing import query_string
from engine.clock import Clock

__all__ = ["Decoder", "Envelope", "RawResponse", "RestCaller"]

_KEPT_HEADERS = frozenset({"content-type", "date", "retry-after"})


def _kept(name: str) -> bool:
    return name in _KEPT_HEADERS or "ratelimit" in name or "rate-limit" in name


@frozen
class RawResponse:
    """A REST answer exactly as received, for the journal; never holds auth headers.

    ``path`` and ``query`` are what was sent (the query as signed), ``request_body`` the
    JSON text of a POST (no secrets: the key and signature travel only in headers).
    ``headers`` keeps only content type, date, ``Retry-After`` and rate-limit headers, with
    lower-case names. Times are from the client's clock, in ns since the epoch.
    """

    endpoint: str
    method: str
    path: str
    query: str
    request_body: str | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body_text: str
    sent_ns: int
    received_ns: int

    @property
    def latency_ns(self) -> int:
        """Time from sending to having the whole answer."""
        return self.received_ns - self.sent_ns

    def header(self, name: str) -> str | None:
        """A kept response header by (case-insensitive) name."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


class Envelope(Protocol):
    """What ``codecs.decode_envelope`` returns."""

    @property
    def success(self) -> bool: ...
    @property
    def code(self) -> int: ...
    @property
    def message(self) -> str | None: ...
    @property
    def data(self) -> Any: ...


class Decoder(Protocol):
    """The two codec functions the REST client needs (``adapters.mexc.codecs``)."""

    def decode_envelope(self, text: str) -> Envelope:
        """Parse the ``{"success","code","message","data"}`` envelope; raises DecodeError."""
        ...

    def decode_rest(
        self, endpoint_name: str, data: Any, symbol: str | None = None, *, interval: str = ...
    ) -> Any:
        """Turn an endpoint's ``data`` into model values; raises DecodeError.

        ``symbol`` (and ``interval`` for klines) label answers that do not name them.
        """
        ...


def _codecs() -> Decoder:
    """The codecs module, imported on first use (it is written beside this one)."""
    module: Any = importlib.import_module("adapters.mexc.codecs")
    return module


_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    httpx.LocalProtocolError,
)
"""httpx failures raised before any byte of the request went out."""

OnResponse = Callable[[RawResponse], Awaitable[None]]

_SUCCESS_CODES = frozenset({0, 200})
"""Codes of a successful answer (with ``success`` true); 200 is a legacy shape ccxt accepts."""


def _text(response: httpx.Response) -> str:
    """``response.text``, without parsing a ``Content-Type`` that has no parameters.

    Such a type names no charset, so httpx decodes with the client's default encoding (UTF-8
    unless configured otherwise) and ``errors="replace"``: exactly what is done here then.
    """
    content_type = response.headers.get("content-type")
    if (content_type is not None and ";" not in content_type
            and response.default_encoding == "utf-8"
            and not hasattr(response, "_encoding") and not hasattr(response, "_text")):
        return response.content.decode("utf-8", "replace")
    return response.text


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class RestCaller:
    """Sends one request per :meth:`call`; holds the HTTP client, signer, limiter, hook."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        config: MexcConfig,
        credentials: Credentials | None,
        clock: Clock,
        on_response: OnResponse | None = None,
        *,
        limiter: RateLimiter | None = None,
        decoder: Decoder | None = None,
    ) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._auth = (
            None if credentials is None else MexcAuth(credentials, clock, config.recv_window)
        )
        self._on_response = on_response
        self.limiter = limiter if limiter is not None else RateLimiter.from_config(config)
        self._decoder = decoder
        t = config.timeouts
        self._timeout = httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
        self._urls: dict[str, httpx.URL] = {}
        """Parsed URLs of endpoints without path parameters or query (one per endpoint and
        base; httpx URLs are immutable, so requests can share them)."""

    def _parse_url(self, text: str) -> httpx.URL:
        url = self._urls[text] = httpx.URL(text)
        return url

    def _decoders(self) -> Decoder:
        if self._decoder is None:
            self._decoder = _codecs()
        return self._decoder

    async def call(
        self,
        name: str,
        *,
        path_params: Mapping[str, object] | None = None,
        query: Mapping[str, object] | None = None,
        body: Any = None,
        decode: bool = True,
    ) -> Any:
        """Call endpoint ``name`` and return its decoded ``data`` (``None`` if not ``decode``)."""
        params = dict(path_params or {})
        endpoint = resolve(name, self.config.generation, params.keys())
        if endpoint.private and self._auth is None:
            raise CredentialsError(f"{endpoint.name} is private and the client has no credentials")
        text = self.config.rest_base + endpoint.path(**params)
        query_text = query_string(query)
        url: str | httpx.URL = text
        if query_text:
            url = text + "?" + query_text
        elif not params:  # a fixed URL (every POST of the hot path): parsed once
            url = self._urls.get(text) or self._parse_url(text)
        content = json_bytes(body) if endpoint.mutating else None
        headers = {"Content-Type": "application/json"} if endpoint.private else {}
        request = self._http.build_request(
            endpoint.method, url, content=content, headers=headers, timeout=self._timeout
        )
        await self.limiter.acquire(endpoint.rate_key)
        sent_ns = self._clock.time_ns()
        try:
            response = await self._http.send(request, auth=self._auth if endpoint.private else None)
        except httpx.RequestError as exc:
            raise self._no_answer(endpoint, f"{type(exc).__name__}: {exc}", exc=exc) from exc
        raw = self._raw(endpoint, response, sent_ns)
        if self._on_response is not None:
            await self._on_response(raw)
        data = self._interpret(endpoint, raw)
        if not decode:
            return None
        context = {**(query or {}), **params}
        symbol = context.get("symbol")
        interval = context.get("interval")
        extra = {} if interval is None else {"interval": str(interval)}
        try:
            return self._decoders().decode_rest(
                endpoint.name, data, None if symbol is None else str(symbol), **extra
            )
        except DecodeError as exc:
            if endpoint.mutating:
                raise self._no_answer(
                    endpoint, f"undecodable data: {exc.reason}", raw.status
                ) from exc
            raise

    def _raw(self, endpoint: Endpoint, response: httpx.Response, sent_ns: int) -> RawResponse:
        sent = response.request
        content = sent.content if endpoint.mutating else b""
        return RawResponse(
            endpoint=endpoint.name,
            method=sent.method,
            path=sent.url.raw_path.split(b"?", 1)[0].decode("ascii"),
            query=sent.url.query.decode("ascii"),
            request_body=content.decode("utf-8") if content else None,
            status=response.status_code,
            headers=tuple((k, v) for k, v in response.headers.items() if _kept(k.lower())),
            body_text=_text(response),
            sent_ns=sent_ns,
            received_ns=self._clock.time_ns(),
        )

    def _no_answer(
        self,
        endpoint: Endpoint,
        reason: str,
        status: int | None = None,
        *,
        exc: Exception | None = None,
    ) -> TransportError:
        went_out = not isinstance(exc, _NOT_SENT)
        cls = ResponseLost if endpoint.mutating and went_out else TransportError
        return cls(endpoint.name, endpoint.method, reason, status)

    def _interpret(self, endpoint: Endpoint, raw: RawResponse) -> Any:
        """The envelope's ``data`` of a successful answer, or raise the classified error."""
        status = raw.status
        if status == 429:
            self.limiter.note_rate_limited(
                endpoint.rate_key, _retry_after(raw.header("retry-after"))
            )
            raise RateLimitedError(429, "HTTP 429 Too Many Requests", endpoint.name, status)
        if status >= 500 or status == 408:
            raise self._no_answer(endpoint, f"HTTP {status}", status)
        try:
            envelope = self._decoders().decode_envelope(raw.body_text)
        except DecodeError as exc:
            if 400 <= status < 500:
                raise self._http_error(endpoint, status) from exc
            raise self._no_answer(endpoint, f"unparsable answer: {exc.reason}", status) from exc
        if not envelope.success or envelope.code not in _SUCCESS_CODES:
            error = error_for(envelope.code, envelope.message, endpoint.name, status)
            if isinstance(error, RateLimitedError):
                self.limiter.note_rate_limited(endpoint.rate_key)
            raise error
        if not 200 <= status < 300:
            raise self._no_answer(endpoint, f"HTTP {status} with a success envelope", status)
        self.limiter.note_success(endpoint.rate_key)
        return envelope.data

    @staticmethod
    def _http_error(endpoint: Endpoint, status: int) -> ExchangeError:
        cls: type[ExchangeError] = {401: AuthError, 403: PermissionDeniedError}.get(
            status, RejectedError
        )
        return cls(status, f"HTTP {status} without an envelope", endpoint.name, status)
