"""MEXC adapter configuration (pure): hosts, API generation, timeouts, rate limits.

The only module where base URLs are written down. Two API generations coexist (PROTOCOL.md
§0, §7): ``new`` is ``https://api.mexc.com`` with ``order/create``, a list-shaped
``cancel_with_external`` body and the account-wide ``order/list/open_orders``; ``old`` is
``https://contract.mexc.com`` with ``order/submit``, an object-shaped ``cancel_with_external``
body and ``order/list/open_orders/{symbol}``. The WebSocket URL is the same for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from urllib.parse import urlsplit

from attrs import Factory, field, frozen

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "REST_BASES",
    "WS_URL",
    "Generation",
    "MexcConfig",
    "RateLimit",
    "Timeouts",
    "default_rate_limits",
]


class Generation(StrEnum):
    """Which of the two coexisting MEXC Futures API generations to speak."""

    NEW = "new"
    OLD = "old"


REST_BASES: Mapping[Generation, str] = MappingProxyType(
    {
        Generation.NEW: "https://api.mexc.com",
        Generation.OLD: "https://contract.mexc.com",
    }
)
"""Default REST host of each generation."""

WS_URL = "wss://contract.mexc.com/edge"
"""The futures WebSocket endpoint (unchanged by the 2026 host move)."""

RateLimit = tuple[int, float]
"""``(count, period_s)``: at most ``count`` requests in any ``period_s`` seconds."""

DEFAULT_RATE_LIMIT: RateLimit = (20, 2.0)
"""What MEXC documents for almost every endpoint; used for rate keys without an entry."""

_NEW_LIMITS: Mapping[str, RateLimit] = {
    "default": DEFAULT_RATE_LIMIT,
    "order_create": (4, 2.0),
    "change_leverage": (10, 10.0),
    "detail": (10, 2.0),
    "depth": (10, 2.0),
    "ticker": (10, 2.0),
    "order_batch_query": (5, 2.0),
}
_OLD_LIMITS: Mapping[str, RateLimit] = {
    "default": DEFAULT_RATE_LIMIT,
    "detail": (1, 5.0),
    "order_batch_query": (5, 2.0),
}


def default_rate_limits(generation: Generation) -> Mapping[str, RateLimit]:
    """Documented limits per rate key (PROTOCOL.md §1) for ``generation``.

    Keys are endpoint rate keys (see :mod:`adapters.mexc.endpoints`); ``"default"`` covers
    every other key. Each key is a bucket of its own, as MEXC counts per endpoint.
    """
    table = _NEW_LIMITS if generation is Generation.NEW else _OLD_LIMITS
    return MappingProxyType(dict(table))


@frozen
class Timeouts:
    """HTTP timeouts in seconds, applied to every REST request."""

    connect: float = 5.0
    read: float = 10.0
    write: float = 10.0
    pool: float = 5.0

    def __attrs_post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            if not getattr(self, name) > 0:
                raise ValueError(f"timeout {name} must be positive")


def _frozen_limits(value: Mapping[str, RateLimit]) -> Mapping[str, RateLimit]:
    limits: dict[str, RateLimit] = {}
    for key, (count, period) in value.items():
        if int(count) != count or count < 1 or not float(period) > 0:
            raise ValueError(f"rate limit {key!r} must be (count >= 1, period_s > 0)")
        limits[key] = (int(count), float(period))
    return MappingProxyType(limits)


def _check_base(_instance: object, attribute: object, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError(f"rest_base must be an http(s) URL without a query, got {value!r}")


def _check_ws(_instance: object, attribute: object, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"ws_url must be a ws(s) URL, got {value!r}")


def _check_recv_window(_instance: object, attribute: object, value: int | None) -> None:
    if value is not None and not (isinstance(value, int) and 1 <= value <= 60):
        raise ValueError("recv_window is in seconds, 1 to 60 (MEXC's maximum)")


@frozen
class MexcConfig:
    """How to reach MEXC (or the simulator) and how fast to talk to it.

    ``rest_base`` defaults to the host of ``generation``; ``recv_window`` (seconds, at most
    60, more than 30 discouraged) widens the 10 s ``Request-Time`` tolerance when set.
    ``rate_limits`` maps rate keys to ``(count, period_s)``; missing keys use
    ``rate_limits["default"]``. Backoff after a 510/429 starts at ``backoff_initial_s``,
    doubles per consecutive hit and is capped at ``backoff_max_s``.
    """

    generation: Generation = field(default=Generation.NEW, converter=Generation)
    rest_base: str = field(
        default=Factory(lambda self: REST_BASES[self.generation], takes_self=True),
        converter=lambda url: url.rstrip("/"),
        validator=_check_base,
    )
    ws_url: str = field(default=WS_URL, validator=_check_ws)
    recv_window: int | None = field(default=None, validator=_check_recv_window)
    timeouts: Timeouts = Timeouts()
    rate_limits: Mapping[str, RateLimit] = field(
        default=Factory(lambda self: default_rate_limits(self.generation), takes_self=True),
        converter=_frozen_limits,
    )
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0

    def __attrs_post_init__(self) -> None:
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("backoff needs 0 < backoff_initial_s <= backoff_max_s")

    @property
    def legacy(self) -> bool:
        """True when speaking the old generation (``order/submit`` and friends)."""
        return self.generation is Generation.OLD

    def rate_limit(self, rate_key: str) -> RateLimit:
        """``(count, period_s)`` for ``rate_key``, falling back to the default entry."""
        found = self.rate_limits.get(rate_key)
        if found is not None:
            return found
        return self.rate_limits.get("default", DEFAULT_RATE_LIMIT)

    @classmethod
    def for_simulator(
        cls,
        base_url: str,
        *,
        ws_url: str | None = None,
        generation: Generation = Generation.NEW,
        **overrides: object,
    ) -> MexcConfig:
        """Config for a local simulator at ``base_url`` (``http://127.0.0.1:PORT``).

        ``ws_url`` defaults to the same host with ``ws``/``wss`` and the ``/edge`` path.
        """
        base = base_url.rstrip("/")
        if ws_url is None:
            parts = urlsplit(base)
            scheme = "wss" if parts.scheme == "https" else "ws"
            ws_url = f"{scheme}://{parts.netloc}{parts.path}/edge"
        return cls(
            generation=generation,
            rest_base=base,
            ws_url=ws_url,
            **overrides,  # type: ignore[arg-type]
        )

    @classmethod
    def legacy_api(cls, **overrides: object) -> MexcConfig:
        """The old generation on ``contract.mexc.com``."""
        return cls(generation=Generation.OLD, **overrides)  # type: ignore[arg-type]
