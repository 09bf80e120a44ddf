"""Accounts, orders and positions of the simulator, and the money formulas (pure).

The formulas (``cs`` is the contract size, ``lev`` the leverage, all amounts in USDT):

* initial margin of ``vol`` contracts at ``price``: ``im = ceil8(price * vol * cs / lev)``
* order margin (frozen while an opening order rests):
  ``im(price, remaining) + price * remaining * cs * takerFeeRate`` (margin plus a taker-fee
  reserve, so a fill can never drive the balance negative);
* fee of a fill: ``price * vol * cs * rate`` (maker or taker rate), exact;
* average open price: ``round8((avg * hold + price * vol) / (hold + vol))``;
* realised PnL of closing ``vol``: long ``(price - avg) * vol * cs``, short
  ``(avg - price) * vol * cs``; a partial close releases ``round8(im * vol / hold)`` of margin;
* unrealised PnL: the same against the fair price over the held volume;
* liquidation price (simplified, one tier): the price at which the position's loss eats its
  backing down to the maintenance margin ``mm = avg * hold * cs * mmr``. Isolated backing is
  ``im``; cross backing is ``im + available balance``. Long:
  ``avg - (backing - mm) / (hold * cs)`` rounded up to the tick (never below 0); short:
  ``avg + (backing - mm) / (hold * cs)`` rounded down.

``ceil8``/``round8`` quantize to 1e-8 in a private 60-digit context; every other operation is
an exact Decimal addition, subtraction or multiplication, so cash moves only by the exact
amounts recorded on fills and funding records.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal

from attrs import Factory, define

from adapters.mexc.sim.contracts import Contract
from adapters.mexc.sim.facts import (
    AssetView,
    FillView,
    FundingRecord,
    OrderView,
    PositionView,
)
from engine.model import OpenType, OrderState, OrderType, PositionState, PositionType, Side

__all__ = [
    "QUANTUM",
    "Account",
    "OrderRecord",
    "PositionRecord",
    "Slot",
    "average_price",
    "close_profit",
    "fee",
    "initial_margin",
    "liquidation_price",
    "order_margin",
    "quantize",
    "ratio",
    "unrealised",
]

QUANTUM = Decimal("1e-8")
"""The quantum of margins and average prices."""

_CONTEXT = Context(prec=60)
_ZERO = Decimal(0)


def quantize(
    value: Decimal, quantum: Decimal = QUANTUM, rounding: str = ROUND_HALF_EVEN
) -> Decimal:
    """``value`` rounded to ``quantum``, computed in a private 60-digit context."""
    return value.quantize(quantum, rounding=rounding, context=_CONTEXT)


def ratio(
    num: Decimal, den: Decimal, quantum: Decimal = QUANTUM, rounding: str = ROUND_HALF_EVEN
) -> Decimal:
    """``num / den`` rounded to ``quantum`` (the only division the simulator does)."""
    return quantize(_CONTEXT.divide(num, den), quantum, rounding)


def initial_margin(contract: Contract, price: Decimal, vol: Decimal, leverage: int) -> Decimal:
    """``ceil8(price * vol * cs / leverage)``."""
    return ratio(price * vol * contract.contract_size, Decimal(leverage), rounding=ROUND_CEILING)


def order_margin(contract: Contract, price: Decimal, vol: Decimal, leverage: int) -> Decimal:
    """Frozen for an opening order: initial margin plus a taker-fee reserve."""
    reserve = price * vol * contract.contract_size * contract.taker_fee_rate
    return initial_margin(contract, price, vol, leverage) + reserve


def fee(contract: Contract, price: Decimal, vol: Decimal, is_taker: bool) -> Decimal:
    """The exact fee of a fill."""
    rate = contract.taker_fee_rate if is_taker else contract.maker_fee_rate
    return price * vol * contract.contract_size * rate


def average_price(avg: Decimal, hold: Decimal, price: Decimal, vol: Decimal) -> Decimal:
    """The volume-weighted average after adding ``vol`` at ``price`` to ``hold`` at ``avg``."""
    if hold == 0:
        return price
    return ratio(avg * hold + price * vol, hold + vol)


def close_profit(
    kind: PositionType, avg: Decimal, price: Decimal, vol: Decimal, cs: Decimal
) -> Decimal:
    """Realised PnL of closing ``vol`` contracts at ``price``."""
    diff = price - avg if kind == PositionType.LONG else avg - price
    return diff * vol * cs


def unrealised(
    kind: PositionType, avg: Decimal, mark: Decimal, hold: Decimal, cs: Decimal
) -> Decimal:
    """Unrealised PnL of ``hold`` contracts marked at ``mark``."""
    return close_profit(kind, avg, mark, hold, cs)


def liquidation_price(
    contract: Contract, kind: PositionType, avg: Decimal, hold: Decimal, backing: Decimal
) -> Decimal:
    """The simplified liquidation price (module docstring); 0 for an empty position."""
    if hold == 0:
        return _ZERO
    notional = hold * contract.contract_size
    cushion = backing - avg * notional * contract.maintenance_margin_rate
    if kind == PositionType.LONG:
        price = _CONTEXT.subtract(avg, _CONTEXT.divide(cushion, notional))
        return max(_ZERO, quantize(price, contract.price_unit, ROUND_CEILING))
    price = _CONTEXT.add(avg, _CONTEXT.divide(cushion, notional))
    return max(_ZERO, quantize(price, contract.price_unit, ROUND_FLOOR))


@define
class OrderRecord:
    """The exchange's mutable record of one order; :meth:`view` snapshots it."""

    order_id: str
    owner: str
    symbol: str
    side: Side
    order_type: OrderType
    open_type: OpenType
    leverage: int
    price: Decimal
    vol: Decimal
    external_oid: str | None
    create_time: int
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    reduce_only: bool = False
    position_id: int = 0
    category: int = 1
    state: OrderState = OrderState.OPEN
    error_code: int = 0
    deal_vol: Decimal = _ZERO
    deal_value: Decimal = _ZERO
    order_margin: Decimal = _ZERO
    frozen: Decimal = _ZERO
    used_margin: Decimal = _ZERO
    taker_fee: Decimal = _ZERO
    maker_fee: Decimal = _ZERO
    profit: Decimal = _ZERO
    update_time: int = 0
    version: int = 0

    @property
    def is_open(self) -> bool:
        """True while the order can still fill."""
        return self.state in (OrderState.PENDING, OrderState.OPEN)

    @property
    def remaining(self) -> Decimal:
        """Volume still to fill (0 once final)."""
        return self.vol - self.deal_vol if self.is_open else _ZERO

    def view(self) -> OrderView:
        """A frozen snapshot in MEXC's shape."""
        avg = ratio(self.deal_value, self.deal_vol) if self.deal_vol else _ZERO
        return OrderView(
            order_id=self.order_id,
            symbol=self.symbol,
            position_id=self.position_id,
            price=self.price,
            vol=self.vol,
            leverage=self.leverage,
            side=self.side,
            order_type=self.order_type,
            open_type=self.open_type,
            state=self.state,
            deal_vol=self.deal_vol,
            deal_avg_price=avg,
            order_margin=self.order_margin,
            used_margin=self.used_margin,
            taker_fee=self.taker_fee,
            maker_fee=self.maker_fee,
            profit=self.profit,
            external_oid=self.external_oid,
            error_code=self.error_code,
            create_time=self.create_time,
            update_time=self.update_time or self.create_time,
            version=self.version,
            stop_loss_price=self.stop_loss_price,
            take_profit_price=self.take_profit_price,
            reduce_only=self.reduce_only,
            category=self.category,
        )


@define
class PositionRecord:
    """One hedge-mode position while open (and, frozen in history, after)."""

    position_id: int
    symbol: str
    position_type: PositionType
    open_type: OpenType
    leverage: int
    create_time: int
    hold_vol: Decimal = _ZERO
    open_avg: Decimal = _ZERO
    im: Decimal = _ZERO
    oim: Decimal = _ZERO
    realised: Decimal = _ZERO
    close_vol: Decimal = _ZERO
    close_value: Decimal = _ZERO
    fees: Decimal = _ZERO
    funding: Decimal = _ZERO
    state: PositionState = PositionState.HOLDING
    update_time: int = 0
    version: int = 0

    def base_margin(self, contract: Contract) -> Decimal:
        """The initial margin the held volume needs at the position's leverage."""
        return initial_margin(contract, self.open_avg, self.hold_vol, self.leverage)

    def view(
        self, contract: Contract, mark: Decimal | None, frozen_vol: Decimal, backing: Decimal
    ) -> PositionView:
        """A frozen snapshot; ``backing`` is what stands behind it (see liquidation_price)."""
        price = self.open_avg if mark is None else mark
        cs = contract.contract_size
        return PositionView(
            position_id=self.position_id,
            symbol=self.symbol,
            position_type=self.position_type,
            open_type=self.open_type,
            state=self.state,
            hold_vol=self.hold_vol,
            frozen_vol=frozen_vol,
            close_vol=self.close_vol,
            open_avg_price=self.open_avg,
            close_avg_price=ratio(self.close_value, self.close_vol) if self.close_vol else _ZERO,
            liquidate_price=liquidation_price(
                contract, self.position_type, self.open_avg, self.hold_vol, backing
            ),
            im=self.im,
            oim=self.oim,
            realised=self.realised,
            unrealised=unrealised(self.position_type, self.open_avg, price, self.hold_vol, cs),
            hold_fee=self.funding,
            total_fee=self.fees,
            leverage=self.leverage,
            create_time=self.create_time,
            update_time=self.update_time or self.create_time,
            version=self.version,
        )


@define
class Slot:
    """Leverage and margin mode of one (symbol, position type) of one account."""

    leverage: int
    open_type: OpenType


@define
class Account:
    """One user's USDT account: cash, positions, orders, fills and funding records.

    ``cash`` is the wallet balance: deposits plus realised PnL, minus fees, plus funding.
    Position margin and frozen order margin are parts of it, not additions to it.
    """

    user: str
    cash: Decimal = _ZERO
    deposits: Decimal = _ZERO
    positions: dict[tuple[str, PositionType], PositionRecord] = Factory(dict)
    closed_positions: list[PositionRecord] = Factory(list)
    slots: dict[tuple[str, PositionType], Slot] = Factory(dict)
    orders: dict[str, OrderRecord] = Factory(dict)
    open_orders: dict[str, OrderRecord] = Factory(dict)
    by_external: dict[str, str] = Factory(dict)
    fills: list[FillView] = Factory(list)
    fills_by_order: dict[str, list[FillView]] = Factory(dict)
    funding: list[FundingRecord] = Factory(list)

    @property
    def position_margin(self) -> Decimal:
        """Sum of the margins of open positions."""
        return sum((p.im for p in self.positions.values()), _ZERO)

    @property
    def frozen(self) -> Decimal:
        """Sum of the margins frozen by resting opening orders."""
        return sum((o.frozen for o in self.open_orders.values()), _ZERO)

    @property
    def available(self) -> Decimal:
        """``cash - position margin - frozen``."""
        return self.cash - self.position_margin - self.frozen

    def close_frozen_vol(self, symbol: str, kind: PositionType) -> Decimal:
        """Volume of resting closing orders against the (symbol, kind) position."""
        return sum(
            (
                o.remaining
                for o in self.open_orders.values()
                if o.symbol == symbol and not o.side.opens and o.side.position_type == kind
            ),
            _ZERO,
        )

    def asset(self, unrealized: Decimal) -> AssetView:
        """A frozen snapshot of the USDT balance, given the current unrealised PnL."""
        return AssetView(
            currency="USDT",
            cash_balance=self.cash,
            position_margin=self.position_margin,
            frozen_balance=self.frozen,
            available_balance=self.available,
            unrealized=unrealized,
            equity=self.cash + unrealized,
        )
