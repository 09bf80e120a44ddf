"""Contract specifications the simulator lists and trades (pure).

The defaults copy the trading parameters of the documented contract-detail sample
(``shared/mexc/samples/rest_contract_detail.json``, the 2026-04-04 ``?symbol=BTC_USDT``
variant, the one the current venue serves). :func:`make_contract` builds any other symbol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from attrs import evolve, frozen

__all__ = [
    "BTC_USDT",
    "ETH_USDT",
    "Contract",
    "default_contracts",
    "make_contract",
]


@frozen
class Contract:
    """One USDT-M perpetual contract, with the fields of MEXC's ``contract/detail``.

    ``contract_size`` is the base-coin amount of one contract; ``price_unit`` and
    ``vol_unit`` are the price tick and volume step; ``state`` 0 means enabled and
    ``api_allowed`` False makes the simulator refuse API order placement (code 1002).
    """

    symbol: str
    base_coin: str
    quote_coin: str
    settle_coin: str
    contract_size: Decimal
    price_unit: Decimal
    vol_unit: Decimal
    min_vol: Decimal
    max_vol: Decimal
    min_leverage: int
    max_leverage: int
    price_scale: int
    vol_scale: int
    amount_scale: int
    taker_fee_rate: Decimal
    maker_fee_rate: Decimal
    maintenance_margin_rate: Decimal
    initial_margin_rate: Decimal
    bid_limit_price_rate: Decimal = Decimal("0.1")
    ask_limit_price_rate: Decimal = Decimal("0.1")
    max_funding_rate: Decimal = Decimal("0.0018")
    collect_cycle_h: int = 8
    state: int = 0
    api_allowed: bool = True
    position_open_type: int = 3
    max_num_orders: tuple[int, int] = (200, 50)
    contract_id: int = 0

    @property
    def display_name_en(self) -> str:
        """The English display name, as MEXC writes it."""
        return f"{self.symbol} PERPETUAL"

    def price_on_tick(self, price: Decimal) -> bool:
        """True when ``price`` is a positive whole number of price ticks."""
        return price > 0 and price % self.price_unit == 0

    def vol_on_step(self, vol: Decimal) -> bool:
        """True when ``vol`` is a positive whole number of volume steps."""
        return vol > 0 and vol % self.vol_unit == 0

    def wire(self) -> dict[str, Any]:
        """The ``contract/detail`` object (numbers as Decimal; the server renders JSON)."""
        return {
            "symbol": self.symbol,
            "displayName": f"{self.symbol}永续",
            "displayNameEn": self.display_name_en,
            "positionOpenType": self.position_open_type,
            "baseCoin": self.base_coin,
            "quoteCoin": self.quote_coin,
            "settleCoin": self.settle_coin,
            "contractSize": self.contract_size,
            "minLeverage": self.min_leverage,
            "maxLeverage": self.max_leverage,
            "priceScale": self.price_scale,
            "volScale": self.vol_scale,
            "amountScale": self.amount_scale,
            "priceUnit": self.price_unit,
            "volUnit": self.vol_unit,
            "minVol": self.min_vol,
            "maxVol": self.max_vol,
            "bidLimitPriceRate": self.bid_limit_price_rate,
            "askLimitPriceRate": self.ask_limit_price_rate,
            "takerFeeRate": self.taker_fee_rate,
            "makerFeeRate": self.maker_fee_rate,
            "maintenanceMarginRate": self.maintenance_margin_rate,
            "initialMarginRate": self.initial_margin_rate,
            "state": self.state,
            "isNew": False,
            "isHot": False,
            "isHidden": False,
            "riskLimitType": "BY_VOLUME",
            "maxNumOrders": list(self.max_num_orders),
            "apiAllowed": self.api_allowed,
            "futureType": 1,
            "type": 1,
            "id": self.contract_id,
        }


# The sample says ``apiAllowed: false`` because API trading on the real venue was closed when
# it was captured; the simulator exists to be traded against, so its default is True. Build a
# copy with ``make_contract(..., api_allowed=False)`` (or ``attrs.evolve``) to rehearse that.
BTC_USDT = Contract(
    symbol="BTC_USDT",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    contract_size=Decimal("0.0001"),
    price_unit=Decimal("0.1"),
    vol_unit=Decimal(1),
    min_vol=Decimal(1),
    max_vol=Decimal(400000),
    min_leverage=1,
    max_leverage=500,
    price_scale=1,
    vol_scale=0,
    amount_scale=4,
    taker_fee_rate=Decimal("0.0004"),
    maker_fee_rate=Decimal("0.0001"),
    maintenance_margin_rate=Decimal("0.001"),
    initial_margin_rate=Decimal("0.002"),
    contract_id=10,
)
"""BTC_USDT with the parameters of the documented contract-detail sample."""

# The sample documents BTC_USDT only. ETH_USDT is derived: the same fee, volume and margin
# parameters, but a contract of 0.01 ETH (so one contract is worth a few tens of USDT, as on
# the venue), a 0.01 price tick (priceScale 2) and a 300x leverage cap.
ETH_USDT = evolve(
    BTC_USDT,
    symbol="ETH_USDT",
    base_coin="ETH",
    contract_size=Decimal("0.01"),
    price_unit=Decimal("0.01"),
    price_scale=2,
    max_leverage=300,
    contract_id=11,
)
"""ETH_USDT, derived from the BTC_USDT sample (see the comment above it)."""


def make_contract(symbol: str, *, template: Contract = BTC_USDT, **changes: Any) -> Contract:
    """A contract for ``symbol`` (``BASE_QUOTE``) copied from ``template`` with ``changes``.

    >>> make_contract("SOL_USDT", contract_size=Decimal("0.1"), price_unit=Decimal("0.001"),
    ...               price_scale=3).base_coin
    'SOL'
    """
    base, _, quote = symbol.partition("_")
    if not base or not quote:
        raise ValueError(f"symbol must look like BASE_QUOTE, got {symbol!r}")
    fields: dict[str, Any] = {"symbol": symbol, "base_coin": base, "quote_coin": quote}
    fields.update(changes)
    return evolve(template, **fields)


def default_contracts(extra: Iterable[Contract] = ()) -> Mapping[str, Contract]:
    """BTC_USDT and ETH_USDT plus ``extra``, keyed by symbol (a fresh dict each call)."""
    contracts = {c.symbol: c for c in (BTC_USDT, ETH_USDT)}
    contracts.update({c.symbol: c for c in extra})
    return contracts
