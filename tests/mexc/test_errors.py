"""The error tree, the code tables of PROTOCOL.md §4, classify() and error_for()."""

from __future__ import annotations

import pytest

from adapters.mexc.errors import (
    ENVELOPE_CODES,
    ORDER_ERROR_CODES,
    AmbiguousExchangeError,
    AuthError,
    Classification,
    CredentialsError,
    DecodeError,
    ExchangeError,
    InsufficientFundsError,
    MexcError,
    PermissionDeniedError,
    RateLimitedError,
    RejectedError,
    ResponseLost,
    RetryableError,
    TradingDisabledError,
    TransportError,
    UnknownOutcome,
    classify,
    error_for,
)

R, X, U = Classification.RETRYABLE, Classification.REJECTED, Classification.UNKNOWN_OUTCOME

# Every envelope code of PROTOCOL.md §4 (both columns), plus the example cancel codes.
DOCUMENTED_ENVELOPE = [
    *(0, 9999, 500, 501, 401, 402, 406, 506, 510, 511, 513, 600, 601, 602, 603),
    *(701, 702, 703, 704, 1000, 1001, 1002, 1003, 1004),
    *range(2001, 2010),
    *(2011, 2013, 2014, 2015, 2016, 2018, 2019),
    *range(2021, 2039),
    *(3001, 3002, 3003, 3004, 4001, 5001, 5002, 5003, 5004),
    *(6001, 6002, 6003, 6004, 6005, 2040, 2041, 8817),
]


def test_envelope_table_is_complete() -> None:
    missing = [code for code in DOCUMENTED_ENVELOPE if code not in ENVELOPE_CODES]
    assert missing == []
    assert ENVELOPE_CODES[602] == "signature verification failed"
    assert ENVELOPE_CODES[2005] == "insufficient balance"


def test_order_error_code_table_is_complete() -> None:
    assert set(ORDER_ERROR_CODES) == set(range(24)) | {999}
    assert ORDER_ERROR_CODES[22] == "OID_DUPLICATE"
    assert ORDER_ERROR_CODES[999] == "OTHER"


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        ENVELOPE_CODES[1] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("code", "cls", "classification"),
    [
        (510, RateLimitedError, R),
        (429, RateLimitedError, R),
        (2037, RateLimitedError, R),
        (501, RetryableError, R),
        (513, RetryableError, R),
        (401, AuthError, X),
        (402, AuthError, X),
        (602, AuthError, X),
        (1000, AuthError, X),
        (406, PermissionDeniedError, X),
        (511, PermissionDeniedError, X),
        (704, PermissionDeniedError, X),
        (2005, InsufficientFundsError, X),
        (2018, InsufficientFundsError, X),
        (1002, TradingDisabledError, X),
        (6001, TradingDisabledError, X),
        (6005, TradingDisabledError, X),
        (600, RejectedError, X),
        (1001, RejectedError, X),
        (2009, RejectedError, X),
        (2030, RejectedError, X),
        (2040, RejectedError, X),
        (500, AmbiguousExchangeError, U),
        (9999, AmbiguousExchangeError, U),
        (603, AmbiguousExchangeError, U),
        (12345, AmbiguousExchangeError, U),  # never seen: not assumed to be a rejection
        (0, AmbiguousExchangeError, U),  # success=false with code 0: inconsistent
    ],
)
def test_classification_and_class(code: int, cls: type, classification: Classification) -> None:
    assert classify(code) is classification
    error = error_for(code, "msg", "order_create")
    assert type(error) is cls
    assert error.classification is classification
    assert (error.code, error.message, error.endpoint) == (code, "msg", "order_create")


def test_every_documented_code_has_a_classification() -> None:
    for code in ENVELOPE_CODES:
        if code:
            assert classify(code) in (R, X, U)
            assert classify(code) is not U or code in (500, 9999, 603)


def test_tree() -> None:
    for cls in (DecodeError, CredentialsError, UnknownOutcome, TransportError, ExchangeError):
        assert issubclass(cls, MexcError)
    assert issubclass(ResponseLost, TransportError)
    assert issubclass(ResponseLost, UnknownOutcome)
    assert issubclass(AmbiguousExchangeError, ExchangeError)
    assert issubclass(AmbiguousExchangeError, UnknownOutcome)
    assert issubclass(RateLimitedError, RetryableError)
    for cls in (AuthError, PermissionDeniedError, InsufficientFundsError, TradingDisabledError):
        assert issubclass(cls, RejectedError)
    assert not issubclass(RejectedError, UnknownOutcome)
    assert not issubclass(TransportError, UnknownOutcome)
    assert TransportError.classification is R
    assert ResponseLost.classification is U
    assert MexcError.classification is None


def test_codes_are_never_read_from_messages() -> None:
    error = error_for(600, "code 2005: insufficient balance (602)", "order_create")
    assert type(error) is RejectedError
    assert error.code == 600


def test_messages() -> None:
    error = error_for(602, "Signature verification failed!", "assets", http_status=200)
    assert str(error) == (
        "assets: code 602 (signature verification failed): Signature verification failed!"
    )
    assert error.http_status == 200
    assert str(error_for(777, None, "ping")) == "ping: code 777 (unknown code)"
    lost = ResponseLost("order_create", "POST", "ReadTimeout", None)
    assert str(lost) == "POST order_create: ReadTimeout"
    assert (lost.endpoint, lost.method, lost.reason, lost.status) == (
        "order_create",
        "POST",
        "ReadTimeout",
        None,
    )


def test_decode_error_is_unchanged() -> None:
    error = DecodeError("push.depth", "version missing")
    assert (error.where, error.reason, str(error)) == (
        "push.depth",
        "version missing",
        "push.depth: version missing",
    )
