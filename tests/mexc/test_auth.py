"""Credentials never show their secret; env and file loading; MexcAuth over MockTransport."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import httpx
import pytest

from adapters.mexc.auth import (
    Credentials,
    InsecureCredentialsWarning,
    MexcAuth,
    Secret,
    canonical_query,
)
from adapters.mexc.errors import CredentialsError
from engine.clock import FixedClock

KEY = "mx0vglBqh6hGc9zQ1w"
SECRET = "c7b1f0d2e8a94b6fa1d3e5c7b9f0a2d4"

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def renderings(creds: Credentials) -> list[str]:
    """Every way a value usually ends up in a log line or a test report."""
    percent = "%s" % (creds,)  # noqa: UP031
    return [
        repr(creds),
        str(creds),
        f"{creds}",
        f"{creds!r}",
        f"{creds:>80}",
        format(creds, "<10"),
        percent,
        repr([creds]),
        repr({"c": creds}),
        repr(creds.secret),
        str(creds.secret),
    ]


def test_no_rendering_shows_the_secret_and_the_key_is_masked() -> None:
    creds = Credentials(KEY, SECRET)
    for text in renderings(creds):
        assert SECRET not in text
        assert KEY not in text
    assert repr(creds) == "Credentials(api_key='mx0v…zQ1w', secret=<hidden>)"
    assert creds.masked_key == "mx0v…zQ1w"
    assert repr(Credentials("short", SECRET)) == "Credentials(api_key='***', secret=<hidden>)"


def test_secret_is_revealed_only_on_request() -> None:
    creds = Credentials(KEY, SECRET)
    assert isinstance(creds.secret, Secret)
    assert creds.secret.reveal() == SECRET
    assert creds == Credentials(KEY, Secret(SECRET))
    assert creds != Credentials(KEY, SECRET + "x")


def test_empty_or_spaced_credentials_are_refused_without_echoing_them() -> None:
    with pytest.raises(CredentialsError) as info:
        Credentials(KEY, "")
    assert KEY not in str(info.value)
    with pytest.raises(CredentialsError) as info:
        Credentials(KEY, SECRET + " ")
    assert SECRET not in str(info.value)


def test_from_env() -> None:
    creds = Credentials.from_env({"MEXC_API_KEY": KEY, "MEXC_API_SECRET": f" {SECRET}\n"})
    assert creds.api_key == KEY
    assert creds.secret.reveal() == SECRET


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEXC_API_KEY", KEY)
    monkeypatch.setenv("MEXC_API_SECRET", SECRET)
    assert Credentials.from_env() == Credentials(KEY, SECRET)


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"MEXC_API_SECRET": SECRET}, "MEXC_API_KEY"),
        ({"MEXC_API_KEY": KEY}, "MEXC_API_SECRET"),
        ({"MEXC_API_KEY": KEY, "MEXC_API_SECRET": "  "}, "MEXC_API_SECRET"),
    ],
)
def test_missing_variable_is_named_but_no_value_is_shown(
    environ: dict[str, str], missing: str
) -> None:
    with pytest.raises(CredentialsError, match=missing) as info:
        Credentials.from_env(environ)
    assert KEY not in str(info.value)
    assert SECRET not in str(info.value)


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "mexc.cred"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    "text",
    [
        f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n',
        f'[mexc]\napi_key = "{KEY}"\napi_secret = "{SECRET}"\n',
        f"# tapeline\napi_key={KEY}\napi_secret={SECRET}\n",
        f"export MEXC_API_KEY='{KEY}'\n\nMEXC_API_SECRET=\"{SECRET}\"\n",
    ],
    ids=["toml", "toml-table", "key-value", "dotenv"],
)
def test_from_file(tmp_path: Path, text: str) -> None:
    assert Credentials.from_file(write(tmp_path, text)) == Credentials(KEY, SECRET)


@posix_only
def test_world_readable_file_is_refused_and_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, f"api_key={KEY}\napi_secret={SECRET}\n", 0o644)
    with pytest.raises(CredentialsError, match="readable by every user") as info:
        Credentials.from_file(path)
    assert "0644" in str(info.value)
    assert str(path) in str(info.value)
    assert SECRET not in str(info.value)


@posix_only
def test_group_readable_file_is_accepted_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, f"api_key={KEY}\napi_secret={SECRET}\n", 0o640)
    with pytest.warns(InsecureCredentialsWarning, match="readable by its group"):
        creds = Credentials.from_file(path)
    assert creds.api_key == KEY


def test_file_errors_name_the_file_not_the_values(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no api_secret"):
        Credentials.from_file(write(tmp_path, f"api_key={KEY}\n"))
    with pytest.raises(CredentialsError, match="line 2") as info:
        Credentials.from_file(write(tmp_path, f"api_key={KEY}\n{SECRET}\n"))
    assert SECRET not in str(info.value)
    with pytest.raises(CredentialsError, match="cannot read"):
        Credentials.from_file(tmp_path / "absent")


def test_canonical_query_is_idempotent() -> None:
    assert canonical_query(b"b=2&a=x%2Cy") == "a=x%2Cy&b=2"
    assert canonical_query("a=x%2Cy&b=2") == "a=x%2Cy&b=2"
    assert canonical_query(b"") == ""


async def test_mexc_auth_over_mock_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "code": 0})

    clock = FixedClock(1_767_225_600_123_000_000)
    auth = MexcAuth(Credentials(KEY, SECRET), clock, recv_window=20)
    assert SECRET not in repr(auth)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as http:
        await http.get(
            "https://h.test/api/v1/private/order/list/history_orders?states=3,4&page_size=5"
        )
        await http.post("https://h.test/api/v1/private/order/cancel", content=b'["1"]')
    get, post = seen
    assert get.url.query == b"page_size=5&states=3%2C4"
    message = f"{KEY}1767225600123page_size=5&states=3%2C4".encode()
    assert (
        get.headers["Signature"] == hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    )
    assert get.headers["Request-Time"] == "1767225600123"
    assert get.headers["Recv-Window"] == "20"
    message = f'{KEY}1767225600123["1"]'.encode()
    assert (
        post.headers["Signature"] == hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    )
