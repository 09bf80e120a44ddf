"""The async MEXC Futures REST client (shell): one method per endpoint a trading engine uses.

Methods take Python values and return what ``codecs.decode_rest(endpoint_name, data)``
makes of the answer (model values); endpoints that answer without ``data`` return ``None``.
Query parameters are snake_case and ``None`` leaves one out (the exchange's default
applies); bodies are built by :mod:`adapters.mexc.bodies`. Sending, journaling
(``on_response``), decoding and error classification are in :mod:`adapters.mexc.rest_call`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import httpx

from adapters.mexc import bodies
from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.ratelimit import RateLimiter
from adapters.mexc.rest_call import Decoder, Envelope, OnResponse, RawResponse, RestCaller
from engine.clock import Clock
from engine.commands import ChangeLeverage, ChangeMargin, PlaceOrder

__all__ = ["KLINE_INTERVALS", "Decoder", "Envelope", "MexcRestClient", "RawResponse"]

KLINE_INTERVALS = frozenset(
    {"Min1", "Min5", "Min15", "Min30", "Min60", "Hour4", "Hour8", "Day1", "Week1", "Month1"}
)


def _csv(values: Iterable[object] | None) -> str | None:
    if values is None:
        return None
    text = ",".join(str(int(v)) if isinstance(v, int) else str(v) for v in values)
    return text or None


def _page(page_num: int | None, page_size: int | None) -> dict[str, object]:
    return {"page_num": page_num, "page_size": page_size}


class MexcRestClient:
    """MEXC Futures REST over an injected ``httpx.AsyncClient``.

    ``credentials`` may be ``None`` for market data only (a private call then raises
    :class:`~adapters.mexc.errors.CredentialsError`). ``clock`` supplies ``Request-Time``
    and the journal timestamps; ``on_response`` is awaited with every
    :class:`RawResponse` before it is interpreted. ``limiter`` (shared between clients of
    one IP, if wanted) defaults to one built from ``config``; ``decoder`` defaults to
    :mod:`adapters.mexc.codecs`.
    """

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
        self._caller = RestCaller(
            http, config, credentials, clock, on_response, limiter=limiter, decoder=decoder
        )
        self._call = self._caller.call

    @property
    def config(self) -> MexcConfig:
        """The configuration in use."""
        return self._caller.config

    @property
    def limiter(self) -> RateLimiter:
        """The client-side rate limiter."""
        return self._caller.limiter

    # -- public market data ----------------------------------------------------------------

    async def ping(self) -> Any:
        """Server time in ms (``contract/ping``)."""
        return await self._call("ping")

    async def contract_detail(self, symbol: str | None = None) -> Any:
        """Every contract, or one when ``symbol`` is given (``contract/detail``)."""
        return await self._call("detail", query={"symbol": symbol})

    async def support_currencies(self) -> Any:
        """Currencies that can be transferred (``contract/support_currencies``)."""
        return await self._call("support_currencies")

    async def depth(self, symbol: str, limit: int | None = None) -> Any:
        """Order book snapshot with its ``version`` (``contract/depth/{symbol}``)."""
        return await self._call("depth", path_params={"symbol": symbol}, query={"limit": limit})

    async def depth_commits(self, symbol: str, limit: int) -> Any:
        """The last ``limit`` incremental depth commits, to repair a gap."""
        return await self._call(
            "depth_commits", path_params={"symbol": symbol, "limit": int(limit)}
        )

    async def deals(self, symbol: str, limit: int | None = None) -> Any:
        """Recent public trades (``limit`` at most 100)."""
        return await self._call("deals", path_params={"symbol": symbol}, query={"limit": limit})

    async def kline(
        self,
        symbol: str,
        interval: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Any:
        """Candles; ``start``/``end`` in **seconds**, ``interval`` one of KLINE_INTERVALS."""
        return await self._kline("kline", symbol, interval, start, end)

    async def kline_index(
        self,
        symbol: str,
        interval: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Any:
        """Index-price candles (as :meth:`kline`)."""
        return await self._kline("kline_index", symbol, interval, start, end)

    async def kline_fair(
        self,
        symbol: str,
        interval: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Any:
        """Fair-price candles (as :meth:`kline`)."""
        return await self._kline("kline_fair", symbol, interval, start, end)

    async def _kline(
        self, name: str, symbol: str, interval: str | None, start: int | None, end: int | None
    ) -> Any:
        if interval is not None and interval not in KLINE_INTERVALS:
            raise ValueError(f"unknown kline interval {interval!r}")
        query = {"interval": interval, "start": start, "end": end}
        return await self._call(name, path_params={"symbol": symbol}, query=query)

    async def ticker(self, symbol: str | None = None) -> Any:
        """One ticker (``symbol`` given) or all of them."""
        return await self._call("ticker", query={"symbol": symbol})

    async def funding_rate(self, symbol: str) -> Any:
        """Current funding rate of ``symbol``."""
        return await self._call("funding_rate", path_params={"symbol": symbol})

    async def funding_rate_history(
        self, symbol: str, page_num: int | None = None, page_size: int | None = None
    ) -> Any:
        """Past funding rates, paged (``page_size`` at most 1000)."""
        query = {"symbol": symbol, **_page(page_num, page_size)}
        return await self._call("funding_rate_history", query=query)

    async def index_price(self, symbol: str) -> Any:
        """Index price of ``symbol``."""
        return await self._call("index_price", path_params={"symbol": symbol})

    async def fair_price(self, symbol: str) -> Any:
        """Fair (mark) price of ``symbol``."""
        return await self._call("fair_price", path_params={"symbol": symbol})

    async def risk_reverse(self) -> Any:
        """Insurance fund balances."""
        return await self._call("risk_reverse")

    # -- account and positions -------------------------------------------------------------

    async def assets(self) -> Any:
        """Balances of every currency."""
        return await self._call("assets")

    async def asset(self, currency: str) -> Any:
        """Balance of one currency."""
        return await self._call("asset", path_params={"currency": currency})

    async def open_positions(
        self, symbol: str | None = None, position_id: str | None = None
    ) -> Any:
        """Open positions, optionally of one symbol or one position id."""
        query = {"symbol": symbol, "positionId": position_id}
        return await self._call("open_positions", query=query)

    async def history_positions(
        self,
        symbol: str | None = None,
        position_type: int | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Closed positions, paged (``position_type`` 1 long, 2 short, sent as ``type``)."""
        query = {"symbol": symbol, "type": position_type, **_page(page_num, page_size)}
        return await self._call("history_positions", query=query)

    async def funding_records(
        self,
        symbol: str | None = None,
        position_id: str | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Funding fees paid and received, paged."""
        query = {"symbol": symbol, "position_id": position_id, **_page(page_num, page_size)}
        return await self._call("funding_records", query=query)

    async def position_mode(self) -> Any:
        """Account position mode: 1 hedge, 2 one-way."""
        return await self._call("position_mode")

    async def change_position_mode(self, position_mode: int) -> None:
        """Switch hedge (1) / one-way (2); refused while orders or positions are open."""
        body = bodies.change_position_mode_body(position_mode)
        await self._call("change_position_mode", body=body, decode=False)

    async def position_leverage(self, symbol: str) -> Any:
        """Leverage and risk tier of each side of ``symbol``."""
        return await self._call("position_leverage", query={"symbol": symbol})

    async def change_leverage(self, command: ChangeLeverage) -> None:
        """Change leverage of a position, or of a symbol side with no position yet."""
        body = bodies.change_leverage_body(command)
        await self._call("change_leverage", body=body, decode=False)

    async def change_margin(self, command: ChangeMargin) -> None:
        """Add or remove isolated margin."""
        await self._call("change_margin", body=bodies.change_margin_body(command), decode=False)

    async def risk_limit(self, symbol: str | None = None) -> Any:
        """Risk-limit tiers, by symbol."""
        return await self._call("risk_limit", query={"symbol": symbol})

    async def tiered_fee_rate(self, symbol: str) -> Any:
        """The account's fee tier for ``symbol``."""
        return await self._call("tiered_fee_rate", query={"symbol": symbol})

    # -- orders: queries -------------------------------------------------------------------

    async def open_orders(
        self,
        symbol: str | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Open orders of one symbol (``.../open_orders/{symbol}``) or of the account."""
        path_params = {} if symbol is None else {"symbol": symbol}
        return await self._call(
            "open_orders", path_params=path_params, query=_page(page_num, page_size)
        )

    async def history_orders(
        self,
        symbol: str | None = None,
        states: Iterable[int] | None = None,
        category: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        side: int | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Past orders; ``states`` becomes a comma list, times in ms (span ≤ 90 days)."""
        query = {
            "symbol": symbol,
            "states": _csv(states),
            "category": category,
            "start_time": start_time,
            "end_time": end_time,
            "side": side,
            **_page(page_num, page_size),
        }
        return await self._call("history_orders", query=query)

    async def order_get(self, order_id: str, symbol: str | None = None) -> Any:
        """One order by exchange id (``symbol`` is sent as a signed query parameter)."""
        return await self._call(
            "order_get", path_params={"order_id": order_id}, query={"symbol": symbol}
        )

    async def order_by_external(self, symbol: str, external_oid: str) -> Any:
        """One order by the ``externalOid`` it was placed with (settles unknown outcomes)."""
        path_params = {"symbol": symbol, "external_oid": external_oid}
        return await self._call("order_external", path_params=path_params)

    async def order_batch_query(self, order_ids: Sequence[str]) -> Any:
        """Up to 50 orders by id (``order_ids=1,2,3``)."""
        ids = bodies.cancel_orders_body(order_ids)
        return await self._call("order_batch_query", query={"order_ids": ",".join(ids)})

    async def order_deal_details(self, order_id: str) -> Any:
        """Fills of one order."""
        return await self._call("order_deal_details", path_params={"order_id": order_id})

    async def order_deals(
        self,
        symbol: str,
        start_time: int | None = None,
        end_time: int | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """The account's fills in ``symbol``, paged (times in ms)."""
        query = {
            "symbol": symbol,
            "start_time": start_time,
            "end_time": end_time,
            **_page(page_num, page_size),
        }
        return await self._call("order_deals", query=query)

    # -- orders: actions -------------------------------------------------------------------

    async def place_order(self, command: PlaceOrder) -> Any:
        """Place an order: ``order/create`` (new API) or ``order/submit`` (old API)."""
        return await self._call("order_place", body=bodies.place_order_body(command))

    async def cancel_orders(self, order_ids: Sequence[str]) -> Any:
        """Cancel up to 50 orders; returns the per-order results."""
        return await self._call("order_cancel", body=bodies.cancel_orders_body(order_ids))

    async def cancel_with_external(self, symbol: str, external_oid: str) -> Any:
        """Cancel one order by ``externalOid`` (object body on the old API, list on the new)."""
        body = bodies.cancel_with_external_body(symbol, external_oid, self.config.generation)
        return await self._call("order_cancel_with_external", body=body)

    async def cancel_all(self, symbol: str | None = None) -> None:
        """Cancel every open order of ``symbol``, or of every contract."""
        body = bodies.cancel_all_body(symbol, self.config.generation)
        await self._call("order_cancel_all", body=body, decode=False)

    # -- trigger (plan) and stop orders ----------------------------------------------------

    async def planorder_list(
        self,
        symbol: str | None = None,
        states: Iterable[int] | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Trigger orders (the new API requires ``start_time`` and ``end_time``)."""
        query = {
            "symbol": symbol,
            "states": _csv(states),
            "start_time": start_time,
            "end_time": end_time,
            **_page(page_num, page_size),
        }
        return await self._call("planorder_list", query=query)

    async def planorder_place(
        self,
        *,
        symbol: str,
        side: int,
        vol: Decimal,
        open_type: int,
        trigger_price: Decimal,
        trigger_type: int,
        execute_cycle: int,
        order_type: int,
        trend: int,
        price: Decimal | None = None,
        leverage: int | None = None,
    ) -> Any:
        """Place a trigger order; returns its plan order id."""
        body = bodies.planorder_place_body(
            symbol=symbol,
            side=side,
            vol=vol,
            open_type=open_type,
            trigger_price=trigger_price,
            trigger_type=trigger_type,
            execute_cycle=execute_cycle,
            order_type=order_type,
            trend=trend,
            price=price,
            leverage=leverage,
        )
        return await self._call("planorder_place", body=body)

    async def planorder_cancel(self, orders: Sequence[tuple[str, str]]) -> None:
        """Cancel trigger orders given as ``(symbol, plan order id)`` pairs."""
        body = bodies.planorder_cancel_body(orders)
        await self._call("planorder_cancel", body=body, decode=False)

    async def planorder_cancel_all(self, symbol: str | None = None) -> None:
        """Cancel every trigger order (of ``symbol``)."""
        body = bodies.planorder_cancel_all_body(symbol)
        await self._call("planorder_cancel_all", body=body, decode=False)

    async def stoporder_list(
        self,
        symbol: str | None = None,
        is_finished: bool | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        page_num: int | None = None,
        page_size: int | None = None,
    ) -> Any:
        """Take-profit / stop-loss orders (``is_finished`` sent as 0 or 1)."""
        query = {
            "symbol": symbol,
            "is_finished": None if is_finished is None else int(is_finished),
            "start_time": start_time,
            "end_time": end_time,
            **_page(page_num, page_size),
        }
        return await self._call("stoporder_list", query=query)
