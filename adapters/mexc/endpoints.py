"""Every MEXC Futures REST path, as data (pure).

An :class:`Endpoint` names one path; :func:`resolve` turns a name, the API generation and
the path parameters a caller has into the concrete endpoint to call. Call sites name
endpoints only, so changing a path (or, in :mod:`adapters.mexc.config`, a host) never touches
them. Paths are written in full, from ``/api/v1/...``; hosts are configuration.

Where the two generations differ in path, the difference lives here:

* ``order_place`` (a logical name) is ``order_create`` on the new API, ``order_submit`` on
  the old one;
* ``open_orders`` is ``order/list/open_orders/{symbol}`` when a symbol is given and the
  account-wide ``order/list/open_orders`` otherwise.

Deliberately one path for both generations (what ccxt 4.5.90 calls on the new host):
``order/list/order_deals`` (not ``/v3``), ``planorder/place`` (not ``/v2``),
``account/tiered_fee_rate`` (not ``/v2``) and ``risk_reverse`` (not ``risk_reverse/{symbol}``).
"""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping
from types import MappingProxyType
from urllib.parse import quote

from attrs import frozen

from adapters.mexc.config import Generation

__all__ = ["ENDPOINTS", "LOGICAL_NAMES", "Endpoint", "resolve"]

_PUBLIC = "/api/v1/contract/"
_PRIVATE = "/api/v1/private/"


@frozen
class Endpoint:
    """One REST endpoint: ``path_template`` holds ``{param}`` slots filled by :meth:`path`."""

    name: str
    method: str
    path_template: str
    private: bool
    rate_key: str

    @property
    def path_params(self) -> tuple[str, ...]:
        """Names of the path slots, in order."""
        return tuple(
            field for _, field, _, _ in string.Formatter().parse(self.path_template) if field
        )

    @property
    def mutating(self) -> bool:
        """True when the request can change state on the exchange (every POST)."""
        return self.method != "GET"

    def path(self, **params: object) -> str:
        """The path with every slot filled, each value URL-quoted (``/`` included)."""
        wanted = set(self.path_params)
        if set(params) != wanted:
            raise ValueError(f"{self.name}: path needs {sorted(wanted)}, got {sorted(params)}")
        quoted = {}
        for key, value in params.items():
            text = str(value)
            if not text:
                raise ValueError(f"{self.name}: path parameter {key} is empty")
            quoted[key] = quote(text, safe="")
        return self.path_template.format(**quoted)


def _get(name: str, path: str, *, private: bool = False, rate_key: str | None = None) -> Endpoint:
    prefix = _PRIVATE if private else _PUBLIC
    return Endpoint(name, "GET", prefix + path, private, rate_key or name)


def _post(name: str, path: str) -> Endpoint:
    return Endpoint(name, "POST", _PRIVATE + path, True, name)


_OPEN_ORDERS_BY_SYMBOL = _get("open_orders", "order/list/open_orders/{symbol}", private=True)

_TABLE: tuple[Endpoint, ...] = (
    # public market data
    _get("ping", "ping"),
    _get("detail", "detail"),
    _get("support_currencies", "support_currencies"),
    _get("depth", "depth/{symbol}"),
    _get("depth_commits", "depth_commits/{symbol}/{limit}"),
    _get("deals", "deals/{symbol}"),
    _get("kline", "kline/{symbol}"),
    _get("kline_index", "kline/index_price/{symbol}"),
    _get("kline_fair", "kline/fair_price/{symbol}"),
    _get("ticker", "ticker"),
    _get("funding_rate", "funding_rate/{symbol}"),
    _get("funding_rate_history", "funding_rate/history"),
    _get("index_price", "index_price/{symbol}"),
    _get("fair_price", "fair_price/{symbol}"),
    _get("risk_reverse", "risk_reverse"),
    # private reads
    _get("assets", "account/assets", private=True),
    _get("asset", "account/asset/{currency}", private=True),
    _get("open_positions", "position/open_positions", private=True),
    _get("history_positions", "position/list/history_positions", private=True),
    _get("funding_records", "position/funding_records", private=True),
    _get("open_orders", "order/list/open_orders", private=True),
    _get("history_orders", "order/list/history_orders", private=True),
    _get("order_get", "order/get/{order_id}", private=True),
    _get("order_external", "order/external/{symbol}/{external_oid}", private=True),
    _get("order_batch_query", "order/batch_query", private=True),
    _get("order_deal_details", "order/deal_details/{order_id}", private=True),
    _get("order_deals", "order/list/order_deals", private=True),
    _get("position_mode", "position/position_mode", private=True),
    _get("position_leverage", "position/leverage", private=True),
    _get("risk_limit", "account/risk_limit", private=True),
    _get("tiered_fee_rate", "account/tiered_fee_rate", private=True),
    _get("planorder_list", "planorder/list/orders", private=True),
    _get("stoporder_list", "stoporder/list/orders", private=True),
    # private writes
    _post("order_create", "order/create"),
    _post("order_submit", "order/submit"),
    _post("order_cancel", "order/cancel"),
    _post("order_cancel_with_external", "order/cancel_with_external"),
    _post("order_cancel_all", "order/cancel_all"),
    _post("change_leverage", "position/change_leverage"),
    _post("change_margin", "position/change_margin"),
    _post("change_position_mode", "position/change_position_mode"),
    _post("planorder_place", "planorder/place"),
    _post("planorder_cancel", "planorder/cancel"),
    _post("planorder_cancel_all", "planorder/cancel_all"),
)

ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType({ep.name: ep for ep in _TABLE})
"""Every endpoint by name (the default variant where a name has several)."""

_VARIANTS: Mapping[str, tuple[Endpoint, ...]] = MappingProxyType(
    {"open_orders": (_OPEN_ORDERS_BY_SYMBOL, ENDPOINTS["open_orders"])}
)
"""Names with several paths, most specific first; the first whose slots can be filled wins."""

LOGICAL_NAMES: Mapping[str, Mapping[Generation, str]] = MappingProxyType(
    {
        "order_place": MappingProxyType(
            {Generation.NEW: "order_create", Generation.OLD: "order_submit"}
        ),
    }
)
"""Operations whose endpoint depends on the API generation."""


def resolve(name: str, generation: Generation, path_params: Collection[str] = ()) -> Endpoint:
    """The concrete endpoint for ``name`` under ``generation``.

    ``name`` is an endpoint name or a logical name (``order_place``); ``path_params`` are the
    parameters the caller can put in the path. Among a name's variants the first whose slots
    are all available is chosen, so ``open_orders`` with a symbol is the per-symbol path.
    """
    logical = LOGICAL_NAMES.get(name)
    if logical is not None:
        name = logical[generation]
    variants = _VARIANTS.get(name)
    if variants is None:
        try:
            return ENDPOINTS[name]
        except KeyError:
            raise KeyError(f"unknown MEXC endpoint {name!r}") from None
    available = set(path_params)
    for endpoint in variants:
        if set(endpoint.path_params) <= available:
            return endpoint
    raise ValueError(f"{name}: no variant takes path parameters {sorted(available)}")
