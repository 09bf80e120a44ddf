"""Exchange-neutral typed messages (pure).

Every inbound fact an adapter decodes becomes one of these frozen values. Prices, sizes and
money are :class:`~decimal.Decimal`; exchange timestamps are integer milliseconds
(``ts_ms``). Enumerations carry MEXC's numbering because it is the one venue tapeline speaks,
but their names are neutral so a second adapter can map onto them.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum

from attrs import frozen

__all__ = [
    "AdlLevel",
    "BalanceUpdate",
    "BookDelta",
    "BookSnapshot",
    "ContractInfo",
    "FairPrice",
    "Fill",
    "FundingRate",
    "IndexPrice",
    "Kline",
    "Level",
    "Message",
    "OpenType",
    "OrderState",
    "OrderType",
    "OrderUpdate",
    "PlanOrderUpdate",
    "PositionModeUpdate",
    "PositionState",
    "PositionType",
    "PositionUpdate",
    "RiskLimitUpdate",
    "Side",
    "StopOrderUpdate",
    "TakerSide",
    "Ticker",
    "Trade",
]


class Side(IntEnum):
    """Order side: what the order does to a hedge-mode position."""

    OPEN_LONG = 1
    CLOSE_SHORT = 2
    OPEN_SHORT = 3
    CLOSE_LONG = 4

    @property
    def is_buy(self) -> bool:
        """True when the order buys contracts (open long or close short)."""
        return self in (Side.OPEN_LONG, Side.CLOSE_SHORT)

    @property
    def position_type(self) -> PositionType:
        """The hedge-mode position this side acts on."""
        return (
            PositionType.LONG if self in (Side.OPEN_LONG, Side.CLOSE_LONG) else PositionType.SHORT
        )

    @property
    def opens(self) -> bool:
        """True for the two opening sides."""
        return self in (Side.OPEN_LONG, Side.OPEN_SHORT)


class OrderType(IntEnum):
    """Order type as placed (MEXC ``type``) and reported (``orderType``)."""

    LIMIT = 1
    POST_ONLY = 2
    IOC = 3
    FOK = 4
    MARKET = 5
    MARKET_TO_CURRENT = 6


class OpenType(IntEnum):
    """Margin mode of an order or position."""

    ISOLATED = 1
    CROSS = 2


class OrderState(IntEnum):
    """Exchange-reported order state."""

    PENDING = 1
    OPEN = 2
    FILLED = 3
    CANCELLED = 4
    INVALID = 5


class PositionType(IntEnum):
    """Hedge-mode position direction."""

    LONG = 1
    SHORT = 2


class PositionState(IntEnum):
    """Exchange-reported position state."""

    HOLDING = 1
    AUTO_HOLDING = 2
    CLOSED = 3


class TakerSide(IntEnum):
    """Aggressor side of a public trade."""

    BUY = 1
    SELL = 2


Level = tuple[Decimal, Decimal, int]
"""One book level: (price, volume in contracts, order count). Volume 0 deletes the level."""

# The market data decoded on every push (Ticker, Trade, BookSnapshot, BookDelta) are frozen
# *dict* classes, ``@frozen(slots=False)``: attrs' __init__ for a frozen slotted class sets
# each field through ``object.__setattr__``, for a frozen dict class it stores straight into
# the instance dict, which builds them up to ~2x faster. Both are equally frozen (assignment
# raises ``FrozenInstanceError``) and compare and hash by their fields alike.


@frozen(slots=False)  # a dict class: see the note above
class Ticker:
    """A 24 h ticker for one contract."""

    symbol: str
    last_price: Decimal
    bid1: Decimal | None
    ask1: Decimal | None
    volume24: Decimal
    amount24: Decimal | None
    hold_vol: Decimal | None
    low24: Decimal | None
    high24: Decimal | None
    rise_fall_rate: Decimal | None
    index_price: Decimal | None
    fair_price: Decimal | None
    funding_rate: Decimal | None
    ts_ms: int | None


@frozen(slots=False)  # a dict class: see the note above
class Trade:
    """One public trade."""

    symbol: str
    price: Decimal
    vol: Decimal
    taker_side: TakerSide
    ts_ms: int
    self_trade: bool = False
    trade_id: str | None = None


@frozen(slots=False)  # a dict class: see the note above
class BookSnapshot:
    """A full (or top-N) order book at ``version``; asks ascending, bids descending."""

    symbol: str
    version: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    ts_ms: int | None = None
    full: bool = True


@frozen(slots=False)  # a dict class: see the note above
class BookDelta:
    """An incremental depth update; quantities are absolute, 0 removes a level.

    A merged push covers versions ``begin..end`` (``version == end``); an unmerged one covers
    exactly ``version``.
    """

    symbol: str
    version: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    ts_ms: int | None = None
    begin: int | None = None
    end: int | None = None

    @property
    def first_version(self) -> int:
        """The first version this delta covers."""
        return self.begin if self.begin is not None else self.version

    @property
    def last_version(self) -> int:
        """The last version this delta covers."""
        return self.end if self.end is not None else self.version


@frozen
class Kline:
    """One candle; ``start_s`` is the window start in seconds, ``volume`` in contracts."""

    symbol: str
    interval: str
    start_s: int
    open: Decimal
    close: Decimal
    high: Decimal
    low: Decimal
    amount: Decimal
    volume: Decimal
    ts_ms: int | None = None


@frozen
class FundingRate:
    """Current funding rate of a contract."""

    symbol: str
    rate: Decimal
    next_settle_ms: int | None = None
    ts_ms: int | None = None
    max_rate: Decimal | None = None
    min_rate: Decimal | None = None
    collect_cycle_h: int | None = None


@frozen
class IndexPrice:
    """Index price of a contract."""

    symbol: str
    price: Decimal
    ts_ms: int | None = None


@frozen
class FairPrice:
    """Fair (mark) price of a contract."""

    symbol: str
    price: Decimal
    ts_ms: int | None = None


@frozen
class OrderUpdate:
    """The exchange's view of one order, from a push or a query."""

    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    open_type: OpenType
    price: Decimal
    vol: Decimal
    deal_vol: Decimal
    deal_avg_price: Decimal
    state: OrderState
    external_oid: str | None = None
    error_code: int = 0
    leverage: int | None = None
    position_id: str | None = None
    taker_fee: Decimal = Decimal(0)
    maker_fee: Decimal = Decimal(0)
    profit: Decimal = Decimal(0)
    fee_currency: str | None = None
    create_ms: int | None = None
    update_ms: int | None = None
    version: int | None = None
    category: int | None = None
    reduce_only: bool | None = None
    position_mode: int | None = None


@frozen
class Fill:
    """One private fill (deal) of an order."""

    fill_id: str
    order_id: str
    symbol: str
    side: Side
    vol: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    profit: Decimal
    is_taker: bool
    ts_ms: int
    external_oid: str | None = None
    position_mode: int | None = None
    category: int | None = None


@frozen
class PositionUpdate:
    """The exchange's view of one hedge-mode position."""

    position_id: str
    symbol: str
    position_type: PositionType
    open_type: OpenType
    state: PositionState
    hold_vol: Decimal
    hold_avg_price: Decimal
    open_avg_price: Decimal
    liquidate_price: Decimal | None = None
    im: Decimal | None = None
    realised: Decimal = Decimal(0)
    leverage: int | None = None
    frozen_vol: Decimal = Decimal(0)
    close_vol: Decimal = Decimal(0)
    hold_fee: Decimal = Decimal(0)
    update_ms: int | None = None


@frozen
class BalanceUpdate:
    """Balance of one currency in the futures account."""

    currency: str
    available: Decimal
    frozen: Decimal
    position_margin: Decimal
    cash_balance: Decimal | None = None
    equity: Decimal | None = None
    unrealized: Decimal | None = None
    bonus: Decimal = Decimal(0)
    ts_ms: int | None = None


@frozen
class ContractInfo:
    """Static and trading parameters of one contract."""

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
    taker_fee_rate: Decimal
    maker_fee_rate: Decimal
    state: int
    api_allowed: bool
    max_num_orders: tuple[int, ...] = ()
    display_name: str | None = None


@frozen
class PlanOrderUpdate:
    """A trigger (plan) order's state."""

    plan_id: str
    symbol: str
    side: Side
    vol: Decimal
    trigger_price: Decimal
    trigger_type: int
    state: int
    price: Decimal | None = None
    leverage: int | None = None
    open_type: OpenType | None = None
    execute_cycle: int | None = None
    trend: int | None = None
    order_type: int | None = None
    order_id: str | None = None
    error_code: int = 0
    update_ms: int | None = None


@frozen
class StopOrderUpdate:
    """Take-profit / stop-loss attached to an order or position."""

    symbol: str
    order_id: str | None
    stop_loss_price: Decimal | None
    take_profit_price: Decimal | None
    state: int | None = None
    position_id: str | None = None
    vol: Decimal | None = None
    plan_id: str | None = None


@frozen
class RiskLimitUpdate:
    """Risk-limit tier of a position side."""

    symbol: str
    position_type: PositionType
    level: int
    max_vol: Decimal
    max_leverage: int
    mmr: Decimal
    imr: Decimal


@frozen
class AdlLevel:
    """Auto-deleveraging rank (1–5) of a position."""

    position_id: str
    adl_level: int


@frozen
class PositionModeUpdate:
    """Account position mode: 1 hedge, 2 one-way."""

    position_mode: int


Message = (
    Ticker
    | Trade
    | BookSnapshot
    | BookDelta
    | Kline
    | FundingRate
    | IndexPrice
    | FairPrice
    | OrderUpdate
    | Fill
    | PositionUpdate
    | BalanceUpdate
    | ContractInfo
    | PlanOrderUpdate
    | StopOrderUpdate
    | RiskLimitUpdate
    | AdlLevel
    | PositionModeUpdate
)
"""Every typed inbound message."""
