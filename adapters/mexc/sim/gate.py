"""The simulator's front door for private requests: API keys, signatures, time window and
rate limits (pure: times are passed in).

Checks run in MEXC's order and each refusal is an envelope code (PROTOCOL.md §2.1, §4):

1. ``ApiKey`` missing or unknown: **401**;
2. ``Request-Time`` missing, not a number, or further than the receive window from server
   time: **513**. The window is 10 s, or ``Recv-Window`` seconds (header also accepted
   with the docs' ``Revc-Window`` spelling), at most 60;
3. ``Signature`` missing or wrong: **602**. The signed text is ``apiKey + Request-Time +
   paramString`` (:func:`adapters.mexc.signing.rest_signature`) where ``paramString`` is the
   raw query string exactly as received *or* its sorted re-encoding
   (:func:`adapters.mexc.auth.canonical_query`) for GET/DELETE, and the raw body bytes for
   every other method;
4. more than ``count`` requests of one rate key in ``period`` seconds: **510**, counted per
   API key (per client host for public endpoints); refused requests are not counted.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Mapping

from attrs import frozen

from adapters.mexc.auth import canonical_query
from adapters.mexc.config import RateLimit
from adapters.mexc.signing import rest_signature

__all__ = [
    "DEFAULT_RECV_WINDOW_S",
    "MAX_RECV_WINDOW_S",
    "ApiAccount",
    "AuthRefused",
    "RateLimits",
    "authenticate",
]

DEFAULT_RECV_WINDOW_S = 10
"""How far ``Request-Time`` may be from server time without ``Recv-Window`` (seconds)."""

MAX_RECV_WINDOW_S = 60
"""The largest ``Recv-Window`` honoured (seconds); larger values are capped."""


@frozen(repr=False)
class ApiAccount:
    """An API key of the simulator, its secret and the exchange account it trades for."""

    api_key: str
    secret: str
    user: str

    def __repr__(self) -> str:
        return f"ApiAccount(api_key={self.api_key!r}, user={self.user!r}, secret=<hidden>)"


@frozen
class AuthRefused:
    """A refused private request: the envelope ``code`` and ``message`` to answer with."""

    code: int
    message: str


def _digits(text: str | None, max_len: int) -> int | None:
    """The value of a header made of ASCII digits only (``str.isdigit`` alone lets ``²``
    through, which ``int`` refuses), at most ``max_len`` of them; else None."""
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > max_len:
        return None
    return int(text)


def _request_time(text: str | None) -> int | None:
    return _digits(text, 19)


def _window_ms(headers: Mapping[str, str]) -> int:
    value = _digits(headers.get("recv-window", headers.get("revc-window")), 6)
    seconds = DEFAULT_RECV_WINDOW_S
    if value is not None and value > 0:
        seconds = min(value, MAX_RECV_WINDOW_S)
    return seconds * 1000


def _param_strings(method: str, raw_query: str, body: bytes) -> list[bytes]:
    if method not in ("GET", "DELETE"):
        return [body]
    candidates = [raw_query.encode("latin-1")]
    try:
        canonical = canonical_query(raw_query).encode("latin-1")
    except (ValueError, UnicodeError):
        return candidates
    if canonical not in candidates:
        candidates.append(canonical)
    return candidates


def authenticate(
    accounts: Mapping[str, ApiAccount],
    headers: Mapping[str, str],
    method: str,
    raw_query: str,
    body: bytes,
    server_now_ms: int,
) -> ApiAccount | AuthRefused:
    """Check a private request's headers (names lower-cased) against ``accounts``.

    Returns the caller's :class:`ApiAccount`, or the :class:`AuthRefused` to answer with.
    """
    api_key = headers.get("apikey")
    account = accounts.get(api_key) if api_key else None
    if account is None:
        return AuthRefused(401, "Not logged in or the API key does not exist")
    request_time = _request_time(headers.get("request-time"))
    if request_time is None:
        return AuthRefused(513, "Request-Time header missing or not a millisecond timestamp")
    if abs(server_now_ms - request_time) > _window_ms(headers):
        return AuthRefused(
            513, f"Invalid request time: {request_time} is outside the window of {server_now_ms}"
        )
    signature = headers.get("signature", "").strip().lower()
    if signature:
        for payload in _param_strings(method, raw_query, body):
            expected = rest_signature(account.api_key, account.secret, request_time, payload)
            if hmac.compare_digest(expected, signature):
                return account
    return AuthRefused(602, "Signature verification failed!")


class RateLimits:
    """Sliding-window request counters: at most ``count`` per ``period_s`` per bucket.

    ``limits`` maps rate keys (endpoint names, see :mod:`adapters.mexc.endpoints`) to
    ``(count, period_s)``; keys without an entry use ``limits["default"]`` (or no limit).
    """

    def __init__(self, limits: Mapping[str, RateLimit]) -> None:
        self.limits = dict(limits)
        self._seen: dict[tuple[str, str], deque[int]] = {}

    def limit(self, rate_key: str) -> RateLimit | None:
        """``(count, period_s)`` for ``rate_key``, or None when it is unlimited."""
        return self.limits.get(rate_key, self.limits.get("default"))

    def admit(self, who: str, rate_key: str, now_ms: int) -> bool:
        """Count one request of ``who`` to ``rate_key`` at ``now_ms``; False if over the limit."""
        limit = self.limit(rate_key)
        if limit is None:
            return True
        count, period_s = limit
        window = self._seen.setdefault((who, rate_key), deque())
        horizon = now_ms - int(period_s * 1000)
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= count:
            return False
        window.append(now_ms)
        return True

    def reset(self) -> None:
        """Forget every counted request."""
        self._seen.clear()
