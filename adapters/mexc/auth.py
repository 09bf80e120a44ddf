"""API credentials and request signing as an ``httpx.Auth`` (shell: reads env, files, clock).

:class:`Credentials` never shows its secret: ``repr``, ``str`` and formatting print a masked
key and ``secret=<hidden>``, and the secret itself is a :class:`Secret` wrapper. Errors about
missing or unsafe credentials name the variable or file, never a value.

:class:`MexcAuth` signs private requests (PROTOCOL.md §2.1) with the pure functions of
:mod:`adapters.mexc.signing`. The query it signs is the query it sends: it first rewrites the
request's query into the canonical form (keys sorted, values encoded like MEXC's Java sample),
so whatever built the URL, sent and signed text are the same bytes. POST bodies are signed as
the raw bytes that go on the wire.
"""

from __future__ import annotations

import hmac
import os
import stat
import tomllib
import warnings
from collections.abc import Generator, Mapping
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from attrs import field, frozen

from adapters.mexc.errors import CredentialsError
from adapters.mexc.signing import query_string, rest_signature
from engine.clock import Clock

__all__ = [
    "API_KEY_VAR",
    "API_SECRET_VAR",
    "Credentials",
    "InsecureCredentialsWarning",
    "MexcAuth",
    "Secret",
    "canonical_query",
]

API_KEY_VAR = "MEXC_API_KEY"
API_SECRET_VAR = "MEXC_API_SECRET"

_KEY_NAMES = frozenset({"api_key", "apikey", "key", API_KEY_VAR.lower()})
_SECRET_NAMES = frozenset({"api_secret", "secret", "secret_key", API_SECRET_VAR.lower()})


class InsecureCredentialsWarning(UserWarning):
    """A credentials file is readable by its group."""


class Secret:
    """A string that does not show itself; :meth:`reveal` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)


def _to_secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def _mask(api_key: str) -> str:
    if len(api_key) < 12:
        return "***"
    return f"{api_key[:4]}…{api_key[-4:]}"


@frozen(repr=False)
class Credentials:
    """An API key and its secret. Build with :meth:`from_env` or :meth:`from_file`."""

    api_key: str
    secret: Secret = field(converter=_to_secret)

    def __attrs_post_init__(self) -> None:
        if not self.api_key or not self.secret.reveal():
            raise CredentialsError("API key and secret must both be non-empty")
        if any(c.isspace() for c in self.api_key + self.secret.reveal()):
            raise CredentialsError("API key or secret contains whitespace")

    def __repr__(self) -> str:
        return f"Credentials(api_key={_mask(self.api_key)!r}, secret=<hidden>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    @property
    def masked_key(self) -> str:
        """The key with all but its first and last four characters hidden."""
        return _mask(self.api_key)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        key_var: str = API_KEY_VAR,
        secret_var: str = API_SECRET_VAR,
    ) -> Credentials:
        """Read ``MEXC_API_KEY`` and ``MEXC_API_SECRET`` (or the given names)."""
        env = os.environ if environ is None else environ
        values = []
        for var in (key_var, secret_var):
            value = env.get(var, "").strip()
            if not value:
                raise CredentialsError(f"environment variable {var} is not set or is empty")
            values.append(value)
        return cls(values[0], values[1])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read a TOML file (``api_key``/``api_secret``, top level or in ``[mexc]``) or a
        plain ``key=value`` file (``MEXC_API_KEY=...`` style works too).

        On POSIX a file readable by every user is refused (:class:`CredentialsError`) and one
        readable by its group is accepted with an :class:`InsecureCredentialsWarning`.
        """
        file = Path(path)
        try:
            mode = file.stat().st_mode
            raw = file.read_bytes()
        except OSError as exc:
            raise CredentialsError(f"cannot read credentials file {file}: {exc.strerror}") from None
        if os.name == "posix":
            if mode & stat.S_IROTH:
                raise CredentialsError(
                    f"refusing credentials file {file}: it is readable by every user "
                    f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it"
                )
            if mode & stat.S_IRGRP:
                warnings.warn(
                    f"credentials file {file} is readable by its group "
                    f"(mode {stat.S_IMODE(mode):04o}); consider chmod 600",
                    InsecureCredentialsWarning,
                    stacklevel=2,
                )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialsError(f"credentials file {file} is not UTF-8 text") from None
        pairs = _parse_credentials(text, file)
        key = next((v for k, v in pairs.items() if k in _KEY_NAMES), None)
        secret = next((v for k, v in pairs.items() if k in _SECRET_NAMES), None)
        if not key:
            raise CredentialsError(f"credentials file {file} has no api_key")
        if not secret:
            raise CredentialsError(f"credentials file {file} has no api_secret")
        return cls(key, secret)


def _parse_credentials(text: str, file: Path) -> dict[str, str]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _parse_key_values(text, file)
    table = document.get("mexc", document)
    if not isinstance(table, dict):
        raise CredentialsError(f"credentials file {file}: [mexc] is not a table")
    return {
        str(k).lower(): str(v).strip()
        for k, v in table.items()
        if isinstance(v, str | int) and not isinstance(v, bool)
    }


def _parse_key_values(text: str, file: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if not sep:
            raise CredentialsError(f"credentials file {file}, line {number}: expected key=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        pairs[name.strip().lower()] = value.strip()
    return pairs


def canonical_query(raw_query: bytes | str) -> str:
    """Re-encode a query string canonically (sorted keys, Java-style encoding).

    Idempotent on canonical input. Repeated keys are refused: MEXC signs a map.
    """
    text = raw_query.decode("ascii") if isinstance(raw_query, bytes) else raw_query
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise ValueError(f"query parameter {key!r} appears more than once")
        params[key] = value
    return query_string(params)


class MexcAuth(httpx.Auth):
    """Signs a private request: ``ApiKey``, ``Request-Time``, ``Signature``, ``Recv-Window``.

    ``Request-Time`` comes from the injected clock. GET/DELETE sign the (canonicalised) query
    string as sent; other methods sign the raw body bytes.
    """

    requires_request_body = True

    def __init__(
        self, credentials: Credentials, clock: Clock, recv_window: int | None = None
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._recv_window = recv_window

    def __repr__(self) -> str:
        return f"MexcAuth({self._credentials!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the signing headers and send the request once."""
        request_time = self._clock.time_ms()
        payload: bytes | str
        if request.method in ("GET", "DELETE"):
            query = canonical_query(request.url.query)
            if query.encode() != request.url.query:
                request.url = request.url.copy_with(query=query.encode() or None)
            payload = query
        else:
            payload = request.content
        signature = rest_signature(
            self._credentials.api_key, self._credentials.secret.reveal(), request_time, payload
        )
        request.headers["ApiKey"] = self._credentials.api_key
        request.headers["Request-Time"] = str(request_time)
        request.headers["Signature"] = signature
        if self._recv_window is not None:
            request.headers["Recv-Window"] = str(self._recv_window)
        yield request
