"""The MEXC adapter's exception tree and error-code tables (pure).

Every failure the REST client raises is classified once, here, as *retryable* (nothing took
effect; trying again later may work), *rejected* (nothing took effect; trying again unchanged
will fail) or *unknown outcome* (the request may have taken effect; settle it by querying,
e.g. the order by ``externalOid``). The classification is a class attribute, so callers can
catch by class or read ``exc.classification``.

::

    MexcError                        root of everything the adapter raises on purpose
    ├── DecodeError                  wire text could not be decoded into model values
    ├── CredentialsError             credentials missing, malformed or readable by others
    ├── UnknownOutcome               UNKNOWN_OUTCOME: the request may have taken effect
    ├── TransportError               RETRYABLE: no usable answer (timeout, connection lost,
    │   │                            HTTP 5xx, unparsable body) to a read, or nothing was sent
    │   └── ResponseLost             + UnknownOutcome: the same, after a mutating request went out
    └── ExchangeError                the exchange answered with an error code (code, message,
        │                            endpoint); HTTP 4xx statuses without an envelope too
        ├── RetryableError           RETRYABLE: refused before taking effect (501, 513)
        │   └── RateLimitedError     510, 429, 2037: slow down
        ├── RejectedError            REJECTED: a definite refusal (600, 1001, 2005, ...)
        │   ├── AuthError            401, 402, 506, 602, 1000: key, secret or account
        │   ├── PermissionDeniedError 406, 511, 701-704: IP whitelist or key permissions
        │   ├── InsufficientFundsError 2005, 2018
        │   └── TradingDisabledError 1002, 6001, 6002, 6005, 604, 801, 8817: API trading
        │                            closed for the contract or account, maintenance
        └── AmbiguousExchangeError   + UnknownOutcome: 500, 9999, 603 and every code not in
                                     the table; an unknown code is never taken as a rejection

``classify(code)`` and ``error_for(code, message, endpoint)`` work from the envelope code
alone; codes are never parsed out of message strings. ``ENVELOPE_CODES`` and
``ORDER_ERROR_CODES`` are the tables of PROTOCOL.md §4 as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

__all__ = [
    "ENVELOPE_CODES",
    "ORDER_ERROR_CODES",
    "AmbiguousExchangeError",
    "AuthError",
    "Classification",
    "CredentialsError",
    "DecodeError",
    "ExchangeError",
    "InsufficientFundsError",
    "MexcError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RejectedError",
    "ResponseLost",
    "RetryableError",
    "TradingDisabledError",
    "TransportError",
    "UnknownOutcome",
    "classify",
    "error_for",
]


class Classification(Enum):
    """What a failure means for the request that caused it."""

    RETRYABLE = "retryable"
    """Nothing took effect; the same request may succeed later."""
    REJECTED = "rejected"
    """Nothing took effect; the same request will fail again."""
    UNKNOWN_OUTCOME = "unknown_outcome"
    """The request may or may not have taken effect; settle it by querying."""


class MexcError(Exception):
    """Root of every error the MEXC adapter raises on purpose."""

    classification: Classification | None = None
    """Set on every error that answers a request; ``None`` for local errors."""


class DecodeError(MexcError):
    """Wire text could not be decoded; ``where`` names the channel or endpoint."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class CredentialsError(MexcError):
    """API credentials are missing, malformed or stored unsafely (nothing was sent).

    Messages name the variable or file at fault and never contain a key or secret.
    """


class UnknownOutcome(MexcError):
    """The request may have taken effect: settle it by query, never treat it as rejected."""

    classification = Classification.UNKNOWN_OUTCOME


class TransportError(MexcError):
    """No usable answer: timeout, connection failure, HTTP 5xx or an unparsable body.

    Raised as such for reads and for requests that never left the client; both are safe to
    retry. ``status`` is the HTTP status when a response arrived.
    """

    classification = Classification.RETRYABLE

    def __init__(self, endpoint: str, method: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{method} {endpoint}: {reason}")
        self.endpoint = endpoint
        self.method = method
        self.reason = reason
        self.status = status


class ResponseLost(TransportError, UnknownOutcome):
    """A mutating request was sent but no usable answer came back."""

    classification = Classification.UNKNOWN_OUTCOME


class ExchangeError(MexcError):
    """The exchange answered with an error ``code`` (envelope code, or HTTP status)."""

    classification = Classification.REJECTED

    def __init__(
        self, code: int, message: str | None, endpoint: str, http_status: int | None = None
    ) -> None:
        text = f"{endpoint}: code {code} ({ENVELOPE_CODES.get(code, 'unknown code')})"
        super().__init__(f"{text}: {message}" if message else text)
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.http_status = http_status


class RetryableError(ExchangeError):
    """Refused before taking effect for a transient reason; retry after a pause."""

    classification = Classification.RETRYABLE


class RateLimitedError(RetryableError):
    """Too many requests (510, HTTP 429, 2037): back off before the next one."""


class RejectedError(ExchangeError):
    """A definite rejection: the request did not and will not take effect as sent."""

    classification = Classification.REJECTED


class AuthError(RejectedError):
    """The key, signature or account was not accepted."""


class PermissionDeniedError(RejectedError):
    """The key lacks a permission, or the IP is not whitelisted."""


class InsufficientFundsError(RejectedError):
    """Not enough balance or margin."""


class TradingDisabledError(RejectedError):
    """Trading through the API is closed (contract not enabled, maintenance, forbidden)."""


class AmbiguousExchangeError(ExchangeError, UnknownOutcome):
    """An error code that does not say whether the request took effect (500, 9999, 603, or
    a code missing from the table)."""

    classification = Classification.UNKNOWN_OUTCOME


ENVELOPE_CODES: Mapping[int, str] = MappingProxyType(
    {
        0: "ok",
        9999: "public abnormal",
        500: "internal error",
        501: "system busy",
        401: "unauthorized",
        402: "api key expired",
        406: "IP not whitelisted",
        429: "too many requests (HTTP)",
        506: "unknown request source",
        510: "too frequent",
        511: "endpoint inaccessible",
        513: "invalid request time",
        600: "parameter error",
        601: "data decoding error",
        602: "signature verification failed",
        603: "repeated request",
        604: "under maintenance (ccxt)",
        701: "account read permission needed",
        702: "account modify permission needed",
        703: "trade read permission needed",
        704: "trade modify permission needed",
        801: "under maintenance (ccxt)",
        1000: "account does not exist",
        1001: "contract does not exist",
        1002: "contract not activated",
        1003: "risk limit level error",
        1004: "amount error",
        2001: "wrong order direction",
        2002: "wrong open type",
        2003: "buy price too high",
        2004: "sell price too low",
        2005: "insufficient balance",
        2006: "leverage error",
        2007: "order price error",
        2008: "insufficient close quantity",
        2009: "position missing or closed",
        2011: "order quantity error",
        2013: "cancel count > max",
        2014: "batch count > limit",
        2015: "price or quantity precision",
        2016: "trigger volume > max",
        2018: "> max available margin",
        2019: "active open position exists",
        2021: "leverage differs from position leverage",
        2022: "wrong position type",
        2023: "positions over max leverage",
        2024: "orders over max leverage",
        2025: "position > max allowed",
        2026: "cross does not support changing leverage",
        2027: "only one cross or isolated per direction",
        2028: "max order quantity exceeded",
        2029: "wrong order type",
        2030: "externalOid too long (max 32)",
        2031: "over risk limit",
        2032: "price beyond liquidation price (long)",
        2033: "price beyond liquidation price (short)",
        2034: "batch query limit",
        2035: "unsupported market price tier",
        2036: "order count limit",
        2037: "too frequent trading",
        2038: "max position exceeded",
        2040: "order does not exist",
        2041: "order state cannot be cancelled",
        3001: "trigger price type error",
        3002: "trigger type error",
        3003: "execute cycle error",
        3004: "trigger price error",
        4001: "unsupported currency",
        5001: "take-profit and stop-loss both empty",
        5002: "stop order missing or closed",
        5003: "take-profit / stop-loss price wrong",
        5004: "take-profit / stop-loss volume > closable",
        6001: "trading forbidden",
        6002: "open forbidden",
        6003: "time range error",
        6004: "symbol and state required",
        6005: "pair not available",
        8817: "risk level change disabled",
    }
)
"""Envelope ``code`` → meaning (PROTOCOL.md §4, plus 2040/2041/8817 from examples, 604/801
from ccxt's table and 429 for the HTTP status)."""

ORDER_ERROR_CODES: Mapping[int, str] = MappingProxyType(
    {
        0: "NORMAL",
        1: "PARAM_INVALID",
        2: "INSUFFICIENT_BALANCE",
        3: "POSITION_NOT_EXISTS",
        4: "POSITION_NOT_ENOUGH",
        5: "POSITION_LIQ",
        6: "ORDER_LIQ",
        7: "RISK_LEVEL_LIMIT",
        8: "SYS_CANCEL",
        9: "POSITION_MODE_NOT_MATCH",
        10: "REDUCE_ONLY_LIQ",
        11: "CONTRACT_NOT_ENABLE",
        12: "DELIVERY_CANCEL",
        13: "POSITION_LIQ_CANCEL",
        14: "ADL_CANCEL",
        15: "BLACK_USER_CANCEL",
        16: "SETTLE_FUNDING_CANCEL",
        17: "POSITION_IM_CHANGE_CANCEL",
        18: "IOC_CANCEL",
        19: "FOK_CANCEL",
        20: "POST_ONLY_CANCEL",
        21: "MARKET_CANCEL",
        22: "OID_DUPLICATE",
        23: "CID_DUPLICATE",
        999: "OTHER",
    }
)
"""Order-object ``errorCode`` → name (orders and ``push.personal.order``; not the envelope)."""

_CLASS_BY_CODE: Mapping[int, type[ExchangeError]] = MappingProxyType(
    {
        # unknown outcome: the server failed somewhere, or saw this request before
        500: AmbiguousExchangeError,
        9999: AmbiguousExchangeError,
        603: AmbiguousExchangeError,
        # retryable: refused before processing
        501: RetryableError,
        513: RetryableError,
        510: RateLimitedError,
        429: RateLimitedError,
        2037: RateLimitedError,
        # definite rejections with a class of their own
        401: AuthError,
        402: AuthError,
        506: AuthError,
        602: AuthError,
        1000: AuthError,
        406: PermissionDeniedError,
        511: PermissionDeniedError,
        701: PermissionDeniedError,
        702: PermissionDeniedError,
        703: PermissionDeniedError,
        704: PermissionDeniedError,
        2005: InsufficientFundsError,
        2018: InsufficientFundsError,
        604: TradingDisabledError,
        801: TradingDisabledError,
        1002: TradingDisabledError,
        6001: TradingDisabledError,
        6002: TradingDisabledError,
        6005: TradingDisabledError,
        8817: TradingDisabledError,
    }
)


def _class_for(code: int) -> type[ExchangeError]:
    cls = _CLASS_BY_CODE.get(code)
    if cls is not None:
        return cls
    if code in ENVELOPE_CODES and code != 0:
        return RejectedError
    # 0 with success=false, or a code we have never seen: do not assume a rejection.
    return AmbiguousExchangeError


def classify(code: int) -> Classification:
    """Classify an envelope error code; unknown codes are ``UNKNOWN_OUTCOME``."""
    classification = _class_for(code).classification
    assert classification is not None
    return classification


def error_for(
    code: int, message: str | None, endpoint: str, http_status: int | None = None
) -> ExchangeError:
    """The exception for an error answer with envelope ``code`` from ``endpoint``."""
    return _class_for(code)(code, message, endpoint, http_status)
