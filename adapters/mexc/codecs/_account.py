"""Decoders for MEXC account objects: orders, fills, positions, balances, plans (pure).

Shared by the private REST answers and the ``push.personal.*`` channels. Each function takes
the wire object and returns a model (or :mod:`.results`) value, or raises
:class:`~._fields.Invalid` with the field path relative to that object.
"""

from __future__ import annotations

from typing import Any, Final

from engine.model import (
    AdlLevel,
    BalanceUpdate,
    Fill,
    OpenType,
    OrderState,
    OrderType,
    OrderUpdate,
    PlanOrderUpdate,
    PositionModeUpdate,
    PositionState,
    PositionType,
    PositionUpdate,
    RiskLimitUpdate,
    Side,
    StopOrderUpdate,
)

from . import _fields as f
from .results import CancelResult, FundingRecord, LeverageTier, TieredFeeRate

__all__ = [
    "adl_level",
    "balance",
    "cancel_result",
    "fill",
    "funding_record",
    "leverage_tier",
    "order",
    "plan_order",
    "position",
    "position_mode",
    "risk_limit",
    "stop_order",
    "tiered_fee_rate",
]

SIDE: Final = f.table(Side)
ORDER_TYPE: Final = f.table(OrderType)
OPEN_TYPE: Final = f.table(OpenType)
ORDER_STATE: Final = f.table(OrderState)
POSITION_TYPE: Final = f.table(PositionType)
POSITION_STATE: Final = f.table(PositionState)
POSITION_MODES: Final = frozenset({1, 2})
CATEGORIES: Final = frozenset({1, 2, 3, 4, 5, 6})
PLAN_STATES: Final = frozenset({1, 2, 3, 4, 5})
TRIGGER_TYPES: Final = frozenset({1, 2})
TRENDS: Final = frozenset({1, 2, 3})
ADL_LEVELS: Final = frozenset({0, 1, 2, 3, 4, 5})


def _nonneg_int(d: dict[str, Any], key: str) -> int | None:
    value = f.opt_int(d, key)
    if value is not None and value < 0:
        raise f.Invalid(key, f"negative value {value}")
    return value


# ------------------------------------------------------------------------------ orders

ORDER_KNOWN: Final = frozenset(
    {
        "orderId", "id", "symbol", "positionId", "price", "priceStr", "vol", "leverage",
        "side", "category", "orderType", "dealAvgPrice", "dealAvgPriceStr", "dealVol",
        "orderMargin", "usedMargin", "takerFee", "makerFee", "profit", "feeCurrency",
        "openType", "state", "externalOid", "errorCode", "createTime", "updateTime",
        "stopLossPrice", "takeProfitPrice", "remainVol", "version", "positionMode",
        "reduceOnly", "bboTypeNum", "makerFeeRate", "takerFeeRate", "showCancelReason",
        "showProfitRateShare", "totalFee", "zeroSaveTotalFeeBinance",
        "zeroTradeTotalFeeBinance", "lossTrend", "profitTrend", "priceProtect",
        "marketCeiling", "flashClose", "stpMode",
    }
)  # fmt: skip


def order(d: dict[str, Any]) -> OrderUpdate:
    """An order object (REST order queries, ``push.personal.order``).

    ``positionId`` 0 (no position yet) becomes ``None``; ``errorCode`` is carried as any
    integer (MEXC adds cancel reasons; the order state is what is checked).
    """
    key = "id" if d.get("orderId") is None and d.get("id") is not None else "orderId"
    error_code = f.opt_int(d, "errorCode")
    return OrderUpdate(
        f.id_(d, key),
        f.str_(d, "symbol"),
        f.enum_(d, "side", SIDE),
        f.enum_(d, "orderType", ORDER_TYPE),
        f.enum_(d, "openType", OPEN_TYPE),
        f.nonneg(d, "price"),
        f.nonneg(d, "vol"),
        f.nonneg(d, "dealVol"),
        f.nonneg(d, "dealAvgPrice"),
        f.enum_(d, "state", ORDER_STATE),
        f.opt_str(d, "externalOid"),
        0 if error_code is None else error_code,
        _nonneg_int(d, "leverage"),
        f.opt_id(d, "positionId", zero_is_none=True),
        f.opt_dec(d, "takerFee") or _ZERO,
        f.opt_dec(d, "makerFee") or _ZERO,
        f.opt_dec(d, "profit") or _ZERO,
        f.opt_str(d, "feeCurrency"),
        f.opt_ts(d, "createTime"),
        f.opt_ts(d, "updateTime"),
        _nonneg_int(d, "version"),
        f.opt_code_in(d, "category", CATEGORIES),
        f.opt_bool(d, "reduceOnly"),
        f.opt_code_in(d, "positionMode", POSITION_MODES),
    )


FILL_KNOWN: Final = frozenset(
    {
        "id", "symbol", "side", "vol", "price", "fee", "feeCurrency", "profit", "isTaker",
        "taker", "category", "orderId", "timestamp", "positionMode", "isSelf",
        "externalOid", "reduceOnly", "opponentUid",
    }
)  # fmt: skip


def fill(d: dict[str, Any]) -> Fill:
    """A private fill (``order_deals``, ``deal_details``, ``push.personal.order.deal``).

    The taker flag is ``isTaker`` in the doc tables and ``taker`` in examples and captures.
    """
    taker_key = "taker" if d.get("isTaker") is None and d.get("taker") is not None else "isTaker"
    return Fill(
        f.id_(d, "id"),
        f.id_(d, "orderId"),
        f.str_(d, "symbol"),
        f.enum_(d, "side", SIDE),
        f.nonneg(d, "vol"),
        f.nonneg(d, "price"),
        f.dec(d, "fee"),
        f.opt_str(d, "feeCurrency"),
        f.opt_dec(d, "profit") or _ZERO,
        f.bool_(d, taker_key),
        f.ts(d, "timestamp"),
        f.opt_str(d, "externalOid"),
        f.opt_code_in(d, "positionMode", POSITION_MODES),
        f.opt_code_in(d, "category", CATEGORIES),
    )


# --------------------------------------------------------------------------- positions

POSITION_KNOWN: Final = frozenset(
    {
        "positionId", "symbol", "positionType", "openType", "state", "holdVol", "frozenVol",
        "closeVol", "holdAvgPrice", "holdAvgPriceFullyScale", "openAvgPrice",
        "openAvgPriceFullyScale", "closeAvgPrice", "liquidatePrice", "oim", "im", "holdFee",
        "realised", "adlLevel", "leverage", "createTime", "updateTime", "autoAddIm",
        "marginRatio", "profitRatio", "newOpenAvgPrice", "newCloseAvgPrice",
        "closeProfitLoss", "fee", "totalFee", "version", "deductFeeList",
        "positionShowStatus", "pnl", "makerFeeRate", "takerFeeRate",
        "zeroSaveTotalFeeBinance", "zeroTradeTotalFeeBinance", "unRealizedPnl",
    }
)  # fmt: skip


def position(d: dict[str, Any]) -> PositionUpdate:
    """A position object (``open_positions``, ``history_positions``, push)."""
    return PositionUpdate(
        f.id_(d, "positionId"),
        f.str_(d, "symbol"),
        f.enum_(d, "positionType", POSITION_TYPE),
        f.enum_(d, "openType", OPEN_TYPE),
        f.enum_(d, "state", POSITION_STATE),
        f.nonneg(d, "holdVol"),
        f.nonneg(d, "holdAvgPrice"),
        f.nonneg(d, "openAvgPrice"),
        f.opt_nonneg(d, "liquidatePrice"),
        f.opt_nonneg(d, "im"),
        f.opt_dec(d, "realised") or _ZERO,
        _nonneg_int(d, "leverage"),
        f.opt_nonneg(d, "frozenVol") or _ZERO,
        f.opt_nonneg(d, "closeVol") or _ZERO,
        f.opt_dec(d, "holdFee") or _ZERO,
        f.opt_ts(d, "updateTime"),
    )


# ---------------------------------------------------------------------------- balances

BALANCE_KNOWN: Final = frozenset(
    {
        "currency", "positionMargin", "availableBalance", "cashBalance", "frozenBalance",
        "equity", "unrealized", "bonus", "availableCash", "availableOpen", "debtAmount",
        "contributeMarginAmount", "vcoinId", "bonusExpireTime",
    }
)  # fmt: skip


def balance(d: dict[str, Any], ts_ms: int | None = None) -> BalanceUpdate:
    """An asset object (``assets``, ``asset/{currency}``, ``push.personal.asset``)."""
    return BalanceUpdate(
        f.str_(d, "currency"),
        f.nonneg(d, "availableBalance"),
        f.nonneg(d, "frozenBalance"),
        f.nonneg(d, "positionMargin"),
        f.opt_dec(d, "cashBalance"),
        f.opt_dec(d, "equity"),
        f.opt_dec(d, "unrealized"),
        f.opt_nonneg(d, "bonus") or _ZERO,
        ts_ms,
    )


# ------------------------------------------------------------------- plan / stop orders

PLAN_KNOWN: Final = frozenset(
    {
        "id", "symbol", "leverage", "side", "triggerPrice", "price", "vol", "openType",
        "triggerType", "state", "executeCycle", "trend", "orderType", "orderId",
        "errorCode", "createTime", "updateTime", "positionMode", "lossTrend", "profitTrend",
        "stopLossPrice", "takeProfitPrice", "reduceOnly", "priceProtect", "marketOrderLevel",
    }
)  # fmt: skip


def plan_order(d: dict[str, Any]) -> PlanOrderUpdate:
    """A trigger order (``planorder/list/orders``, ``push.personal.plan.order``).

    ``orderId`` 0 (not triggered yet) becomes ``None``.
    """
    error_code = f.opt_int(d, "errorCode")
    order_type = f.opt_int(d, "orderType")
    if order_type is not None and order_type not in ORDER_TYPE:
        raise f.Invalid("orderType", f"unknown value {order_type}")
    cycle = _nonneg_int(d, "executeCycle")
    return PlanOrderUpdate(
        f.id_(d, "id"),
        f.str_(d, "symbol"),
        f.enum_(d, "side", SIDE),
        f.nonneg(d, "vol"),
        f.nonneg(d, "triggerPrice"),
        f.code_in(d, "triggerType", TRIGGER_TYPES),
        f.code_in(d, "state", PLAN_STATES),
        f.opt_nonneg(d, "price"),
        _nonneg_int(d, "leverage"),
        f.opt_enum(d, "openType", OPEN_TYPE),
        cycle,
        f.opt_code_in(d, "trend", TRENDS),
        order_type,
        f.opt_id(d, "orderId", zero_is_none=True),
        0 if error_code is None else error_code,
        f.opt_ts(d, "updateTime"),
    )


STOP_KNOWN: Final = frozenset(
    {
        "id", "orderId", "symbol", "positionId", "lossTrend", "profitTrend",
        "stopLossPrice", "takeProfitPrice", "state", "triggerSide", "positionType", "vol",
        "takeProfitVol", "stopLossVol", "realityVol", "placeOrderId", "version",
        "isFinished", "profitLossVolType", "volType", "takeProfitReverse",
        "stopLossReverse", "closeTryTimes", "reverseTryTimes", "reverseErrorCode",
        "stopLossType", "stopLossOrderPrice", "createTime", "updateTime", "errorCode",
        "priceProtect",
    }
)  # fmt: skip


def stop_order(d: dict[str, Any]) -> StopOrderUpdate:
    """A TP/SL object (``push.personal.stop.order``, ``.stop.planorder``, ``stoporder`` list).

    Ids of 0 become ``None``; ``state`` is carried as MEXC's integer.
    """
    state = _nonneg_int(d, "state")
    return StopOrderUpdate(
        f.str_(d, "symbol"),
        f.opt_id(d, "orderId", zero_is_none=True),
        f.opt_nonneg(d, "stopLossPrice"),
        f.opt_nonneg(d, "takeProfitPrice"),
        state,
        f.opt_id(d, "positionId", zero_is_none=True),
        f.opt_nonneg(d, "vol"),
        f.opt_id(d, "id", zero_is_none=True),
    )


# ----------------------------------------------------------------- risk, ADL, leverage

RISK_LIMIT_KNOWN: Final = frozenset(
    {
        "symbol", "positionType", "riskSource", "level", "maxVol", "maxLeverage", "mmr",
        "imr", "leverage", "openType", "limitBySys", "maxVolView",
    }
)  # fmt: skip


def risk_limit(d: dict[str, Any], symbol: str | None = None) -> RiskLimitUpdate:
    """A risk-limit tier (``account/risk_limit`` entries, ``push.personal.risk.limit``)."""
    sym = f.opt_str(d, "symbol") or symbol
    if sym is None:
        raise f.Invalid("symbol", "missing required field")
    level = f.int_(d, "level")
    max_leverage = f.int_(d, "maxLeverage")
    for key, value in (("level", level), ("maxLeverage", max_leverage)):
        if value < 0:
            raise f.Invalid(key, f"negative value {value}")
    return RiskLimitUpdate(
        sym,
        f.enum_(d, "positionType", POSITION_TYPE),
        level,
        f.nonneg(d, "maxVol"),
        max_leverage,
        f.nonneg(d, "mmr"),
        f.nonneg(d, "imr"),
    )


ADL_KNOWN: Final = frozenset({"adlLevel", "positionId"})


def adl_level(d: dict[str, Any]) -> AdlLevel:
    """``push.personal.adl.level``: rank 1-5 (0 seen in the doc example: no rank)."""
    return AdlLevel(f.id_(d, "positionId"), f.code_in(d, "adlLevel", ADL_LEVELS))


POSITION_MODE_KNOWN: Final = frozenset({"positionMode"})


def position_mode(d: dict[str, Any]) -> PositionModeUpdate:
    """``push.personal.position.mode``: 1 hedge, 2 one-way."""
    return PositionModeUpdate(f.code_in(d, "positionMode", POSITION_MODES))


def mode_value(value: Any) -> int:
    """The bare ``data`` of ``position/position_mode``: 1 hedge or 2 one-way."""
    mode = f.int_value(value, "")
    if mode not in POSITION_MODES:
        raise f.Invalid("", f"unknown value {mode}")
    return mode


def leverage_tier(d: dict[str, Any]) -> LeverageTier:
    """One ``position/leverage`` row."""
    level = f.int_(d, "level")
    if level < 0:
        raise f.Invalid("level", f"negative value {level}")
    return LeverageTier(
        f.enum_(d, "positionType", POSITION_TYPE),
        level,
        f.nonneg(d, "maxVol"),
        f.nonneg(d, "mmr"),
        f.nonneg(d, "imr"),
        f.opt_enum(d, "openType", OPEN_TYPE),
        _nonneg_int(d, "leverage"),
        _nonneg_int(d, "maxLeverageView"),
    )


def tiered_fee_rate(d: dict[str, Any]) -> TieredFeeRate:
    """``account/tiered_fee_rate``."""
    return TieredFeeRate(
        f.dec(d, "makerFee"),
        f.dec(d, "takerFee"),
        _nonneg_int(d, "level"),
        f.opt_nonneg(d, "dealAmount"),
        f.opt_dec(d, "walletBalance"),
        f.opt_dec(d, "makerFeeDiscount"),
        f.opt_dec(d, "takerFeeDiscount"),
    )


def funding_record(d: dict[str, Any]) -> FundingRecord:
    """One ``position/funding_records`` entry."""
    return FundingRecord(
        f.id_(d, "id"),
        f.str_(d, "symbol"),
        f.enum_(d, "positionType", POSITION_TYPE),
        f.dec(d, "funding"),
        f.dec(d, "rate"),
        f.ts(d, "settleTime"),
        f.opt_nonneg(d, "positionValue"),
    )


def cancel_result(d: dict[str, Any]) -> CancelResult:
    """One ``{orderId, errorCode, errorMsg}`` entry of a cancel answer."""
    return CancelResult(f.id_(d, "orderId"), f.int_(d, "errorCode"), f.opt_str(d, "errorMsg"))


_ZERO: Final = f.canon(0)
