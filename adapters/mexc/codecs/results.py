"""Small frozen values for MEXC answers that :mod:`engine.model` has no type for (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, TypeVar

from attrs import frozen

from engine.model import Level, OpenType, PositionType

__all__ = [
    "CancelResult",
    "DepthStep",
    "FundingRecord",
    "InsuranceFund",
    "LeverageTier",
    "Page",
    "TieredFeeRate",
]

T = TypeVar("T")


@frozen
class CancelResult:
    """One order's outcome in an ``order/cancel`` (or ``cancel_with_external``) answer."""

    order_id: str
    error_code: int
    error_msg: str | None = None

    @property
    def ok(self) -> bool:
        """True when the order was cancelled (``errorCode`` 0)."""
        return self.error_code == 0


@frozen
class Page(Generic[T]):
    """One page of a paged answer: the decoded ``items`` and MEXC's paging counters."""

    items: tuple[T, ...]
    page_size: int | None = None
    total_count: int | None = None
    total_page: int | None = None
    current_page: int | None = None


@frozen
class LeverageTier:
    """One row of ``position/leverage``: the risk tier and leverage of a position side."""

    position_type: PositionType
    level: int
    max_vol: Decimal
    mmr: Decimal
    imr: Decimal
    open_type: OpenType | None = None
    leverage: int | None = None
    max_leverage_view: int | None = None


@frozen
class TieredFeeRate:
    """``account/tiered_fee_rate``: the account's fee tier for a contract."""

    maker_fee: Decimal
    taker_fee: Decimal
    level: int | None = None
    deal_amount: Decimal | None = None
    wallet_balance: Decimal | None = None
    maker_fee_discount: Decimal | None = None
    taker_fee_discount: Decimal | None = None


@frozen
class InsuranceFund:
    """``contract/risk_reverse``: the insurance fund balance of a contract."""

    symbol: str
    currency: str
    available: Decimal
    ts_ms: int | None = None


@frozen
class FundingRecord:
    """``position/funding_records``: one funding payment of a position (signed)."""

    record_id: str
    symbol: str
    position_type: PositionType
    funding: Decimal
    rate: Decimal
    settle_ms: int
    position_value: Decimal | None = None


@frozen
class DepthStep:
    """``push.depth.step``: a top-N book aggregated into price steps (not an exact book)."""

    symbol: str
    version: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    ask_market_level_price: Decimal | None = None
    bid_market_level_price: Decimal | None = None
    ts_ms: int | None = None
