"""MEXC request signing (pure): HMAC-SHA256, lowercase hex.

REST: ``sign(secret, api_key + request_time_ms + param_string)`` where ``param_string`` is
the sorted, URL-encoded query for GET/DELETE (path parameters are not signed, ``""`` when
there are none) and the raw body bytes exactly as sent for POST. WS login signs
``api_key + req_time``. Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["hmac_hex", "query_string", "rest_signature", "ws_login_signature"]


def hmac_hex(secret: str, payload: str | bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` under ``secret``."""
    data = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_string(params: Mapping[str, object] | None) -> str:
    """The canonical query: keys sorted, ``None`` values dropped, values percent-encoded.

    Encoding follows MEXC's Java sample exactly (``URLEncoder.encode(v, "UTF-8")`` with
    ``+`` → ``%20``): letters, digits and ``. - * _`` stay bare, a space is ``%20`` and every
    other byte of the UTF-8 text is ``%XX`` in upper case, so ``,`` is ``%2C`` and ``~`` is
    ``%7E``. Python's ``quote`` differs from Java only in leaving ``~`` bare.
    """
    if not params:
        return ""
    parts = []
    for key in sorted(params):
        value = params[key]
        if value is None:
            continue
        parts.append(f"{key}={_java_url_encode(_text(value))}")
    return "&".join(parts)


def _java_url_encode(text: str) -> str:
    return quote(text, safe="*").replace("~", "%7E")


def rest_signature(
    api_key: str, secret: str, request_time_ms: int, param_string: str | bytes
) -> str:
    """Signature header of a private REST request."""
    prefix = f"{api_key}{request_time_ms}".encode()
    body = param_string.encode() if isinstance(param_string, str) else param_string
    return hmac_hex(secret, prefix + body)


def ws_login_signature(api_key: str, secret: str, req_time_ms: int) -> str:
    """Signature of a WebSocket ``login`` request."""
    return hmac_hex(secret, f"{api_key}{req_time_ms}")
