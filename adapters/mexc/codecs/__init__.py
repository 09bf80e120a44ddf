"""MEXC Futures wire <-> model codecs (pure): REST envelopes and answers, WebSocket frames.

``decode_envelope`` and ``decode_rest`` for REST, ``decode_ws`` (and ``decode_ws_gzip``)
for WebSocket frames. Everything malformed raises
:class:`~adapters.mexc.errors.DecodeError` naming the channel or endpoint and the field,
never another exception; unknown descriptive fields are tolerated (and, for WS frames,
reported in ``WsFrame.unknown_fields``). Prices, sizes and money are Decimals taken from
the literal number; ids are strings. See ``docs/mexc-codecs.md``.

Bump :data:`PARSER_VERSION` whenever the decoded output for some input changes.
"""

from __future__ import annotations

from typing import Final

from ._rest import ENDPOINTS, decode_rest
from ._ws import CHANNELS, WsFrame, decode_ws, decode_ws_gzip, ws_messages
from .envelope import Envelope, decode_envelope
from .results import (
    CancelResult,
    DepthStep,
    FundingRecord,
    InsuranceFund,
    LeverageTier,
    Page,
    TieredFeeRate,
)

__all__ = [
    "CHANNELS",
    "ENDPOINTS",
    "PARSER_VERSION",
    "CancelResult",
    "DepthStep",
    "Envelope",
    "FundingRecord",
    "InsuranceFund",
    "LeverageTier",
    "Page",
    "TieredFeeRate",
    "WsFrame",
    "decode_envelope",
    "decode_rest",
    "decode_ws",
    "decode_ws_gzip",
    "ws_messages",
]

PARSER_VERSION: Final = "mexc-1"
"""Recorded with every session; bump it whenever decoded output changes for some input."""
