"""A strategy under test driven by hand: real projections and core, typed values in, commands out.

:class:`Harness` folds each value into a real :class:`~engine.projections.State` and shows it to
the strategy through the real :class:`~engine.core.Core` (so requested orders appear in the
view at once, as live), then returns the commands the risk gate accepted. ``fill`` plays the
exchange's answer to a placement: the order filled and the position it leaves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

from engine.commands import Command, PlaceOrder
from engine.core import Core
from engine.events import TimerFired
from engine.model import (
    BalanceUpdate,
    ContractInfo,
    FairPrice,
    IndexPrice,
    Kline,
    OpenType,
    OrderState,
    OrderUpdate,
    PositionState,
    PositionType,
    PositionUpdate,
)
from engine.projections import State
from engine.risk import RiskGate, RiskLimits
from engine.strategy import Strategy, StrategyContext, make_config

S = TypeVar("S", bound=Strategy)
SYM = "BTC_USDT"
T0_NS = 1_767_225_600_000_000_000
D = Decimal


def contract(symbol: str = SYM) -> ContractInfo:
    """BTC_USDT as the simulator lists it (0.0001 BTC a contract, 0.1 tick)."""
    return ContractInfo(symbol=symbol, base_coin="BTC", quote_coin="USDT", settle_coin="USDT",
                        contract_size=D("0.0001"), price_unit=D("0.1"), vol_unit=D(1),
                        min_vol=D(1), max_vol=D(400000), min_leverage=1, max_leverage=125,
                        price_scale=1, vol_scale=0, taker_fee_rate=D("0.0004"),
                        maker_fee_rate=D("0.0001"), state=0, api_allowed=True)


def kline(start_s: int, close: str | int, symbol: str = SYM, interval: str = "Min1") -> Kline:
    """A candle whose only interesting field is its close."""
    c = D(close)
    return Kline(symbol=symbol, interval=interval, start_s=start_s, open=c, close=c, high=c,
                 low=c, amount=D(0), volume=D(0))


def fair(price: str | int, symbol: str = SYM) -> FairPrice:
    """A fair-price push."""
    return FairPrice(symbol, D(price))


def index(price: str | int, symbol: str = SYM) -> IndexPrice:
    """An index-price push."""
    return IndexPrice(symbol, D(price))


def balance(available: str | int, margin: str | int = 0) -> BalanceUpdate:
    """A USDT balance."""
    return BalanceUpdate("USDT", D(available), D(0), D(margin))


def position(kind: PositionType, vol: str | int | Decimal, entry: str | int, *,
             update_ms: int = 1, symbol: str = SYM,
             position_id: str | None = None) -> PositionUpdate:
    """A hedge-mode position side holding ``vol`` at ``entry`` (vol 0: closed), last updated
    at ``update_ms`` (default: long ago). A closed position id never reopens: give a reopened
    side a new ``position_id``."""
    state = PositionState.CLOSED if D(vol) == 0 else PositionState.HOLDING
    return PositionUpdate(
        position_id=position_id or f"p{int(kind)}", symbol=symbol, position_type=kind,
        open_type=OpenType.ISOLATED, state=state,
        hold_vol=D(vol), hold_avg_price=D(entry), open_avg_price=D(entry), leverage=10,
        update_ms=update_ms)


class Harness(Generic[S]):
    """Drive one strategy by hand (see the module docstring)."""

    def __init__(self, strategy_cls: type[S], config: dict[str, Any] | None = None,
                 symbols: tuple[str, ...] = (SYM,)) -> None:
        self.strategy = strategy_cls()
        self.state = State()
        self.core = Core(self.state, lambda _ev: (), strategy=self.strategy,
                         risk=RiskGate(RiskLimits(max_orders=10_000)))
        self.ctx = StrategyContext.create("harness-session", make_config(strategy_cls,
                                                                          config or {}), symbols)
        self.strategy.on_start(self.ctx)
        self.now_ns = T0_NS
        self.seq = 0
        self.orders = 0
        self.feed(contract())

    def feed(self, value: Any, dt_s: float = 1.0) -> list[Command]:
        """Fold ``value`` ``dt_s`` after the last one; the commands the strategy got accepted."""
        self.now_ns += int(dt_s * 1e9)
        self.seq += 1
        decisions = self.core.fold_and_decide(value, self.now_ns, self.seq)
        return [d.command for d in decisions if d.command is not None]

    @property
    def now_ms(self) -> int:
        """The time of the last value fed, in ms."""
        return self.now_ns // 1_000_000

    def tick(self, name: str) -> list[Command]:
        """A timer tick."""
        return self.feed(TimerFired(name, self.now_ns + 1_000_000_000))

    def fill(self, cmd: Command, price: str | int, *, position_after: str | int | None = None,
             entry: str | int | None = None) -> list[Command]:
        """The exchange fills placement ``cmd`` at ``price``; the position side it acted on
        then holds ``position_after`` (default: ``vol`` when opening, 0 when closing). The
        order update comes first, then the position push, both stamped with the event time."""
        assert isinstance(cmd, PlaceOrder)
        self.orders += 1
        ms = self.now_ms + 10
        out = self.feed(OrderUpdate(
            order_id=str(1000 + self.orders), symbol=cmd.symbol, side=cmd.side,
            order_type=cmd.order_type, open_type=cmd.open_type, price=cmd.price or D(0),
            vol=cmd.vol, deal_vol=cmd.vol, deal_avg_price=D(price), state=OrderState.FILLED,
            external_oid=cmd.external_oid, version=1, update_ms=ms), dt_s=0.01)
        held: str | int | Decimal = position_after if position_after is not None else (
            cmd.vol if cmd.side.opens else 0)
        out += self.feed(position(cmd.side.position_type, held, entry or price, update_ms=ms,
                                  symbol=cmd.symbol), dt_s=0.01)
        return out
