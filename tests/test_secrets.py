"""No secret leaves the process: a whole session with recognisable fake keys, in virtual time
and through real processes, then every artefact is searched for the key, the secret and the
signatures that were actually sent.

Artefacts searched: the journal file and its ``-wal`` (while the session runs and after),
console output, log records at DEBUG, ``tapeline journal events --format json``, ``tapeline
audit export``, ``tapeline doctor``'s report, the text and ``repr`` of the exceptions of
provoked failures (bad signature, refused login, unsafe credentials files), and the
``repr`` of credentials, signer, venue and configuration objects.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from click.testing import CliRunner

from adapters.mexc.auth import Credentials, MexcAuth
from adapters.mexc.config import MexcConfig
from adapters.mexc.errors import AuthError, CredentialsError, TransportError
from adapters.mexc.rest import MexcRestClient
from adapters.mexc.sim.service import SimService
from adapters.mexc.venue import sim_contracts
from adapters.mexc.ws import WsLoginFailed, open_mexc_ws
from engine.cli import main
from engine.clock import TrioClock
from engine.config import load_config
from engine.doctor import doctor_command
from engine.runtime import RunOptions, Venue, run_session
from tests.e2e.procs import LineReader, wait_status_lines
from tests.sim_venue import venue_factory

LEAK_KEY = "mx0LEAKCANARYKEY1234"
LEAK_SECRET = "LEAKCANARYSECRET5678abcdef"
WRONG_SECRET = "LEAKWRONGSECRET0000zzzz"
_SIG_HEX = re.compile(r"^[0-9a-f]{64}$")


class Sent:
    """Signatures the simulator received (REST headers and WS login frames)."""

    def __init__(self) -> None:
        self.signatures: set[str] = set()

    def needles(self) -> list[bytes]:
        return [s.encode() for s in self.signatures]


def recording(sim: SimService, sent: Sent) -> tuple[Any, Any]:
    """A REST handler and a WS ``connect`` that note every signature the engine sends."""

    async def handler(request: httpx.Request) -> httpx.Response:
        signature = request.headers.get("signature")
        if signature:
            sent.signatures.add(signature)
        return await sim.rest_handler(request)

    class Transport:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def get_message(self) -> str | bytes:
            return await self.inner.get_message()

        async def send_message(self, message: str | bytes) -> None:
            if isinstance(message, str) and '"login"' in message:
                sent.signatures.add(orjson.loads(message)["param"]["signature"])
            await self.inner.send_message(message)

        async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
            await self.inner.aclose(code, reason)

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[Any]:
        async with sim.ws_connect(url) as inner:
            yield Transport(inner)

    return handler, connect


def assert_clean(blob: bytes | str, where: str, sent: Sent | None = None, *,
                 no_signature_word: bool = True) -> None:
    """Neither key, secret, a sent signature nor (optionally) the word 'signature'."""
    data = blob.encode("utf-8", "surrogateescape") if isinstance(blob, str) else blob
    for needle, what in ((LEAK_KEY.encode(), "API key"), (LEAK_SECRET.encode(), "secret"),
                         (WRONG_SECRET.encode(), "wrong secret")):
        assert needle not in data, f"{what} found in {where}"
    for sig in sent.needles() if sent is not None else ():
        assert sig not in data, f"a signature the engine sent is in {where}"
    if no_signature_word:
        assert b"signature" not in data.lower(), f"'signature' found in {where}"


def new_sim(secret: str = LEAK_SECRET) -> SimService:
    sim = SimService(clock=TrioClock(), seed=11, contracts=sim_contracts(("BTC_USDT",)))
    sim.add_account(LEAK_KEY, secret, Decimal(10000))
    return sim


def options(journal: Path, **kw: Any) -> RunOptions:
    kw.setdefault("duration_s", 60)
    return RunOptions(journal_path=journal, strategy="market-maker",
                      strategy_config={"quote_every_s": 1.0}, symbols=("BTC_USDT",),
                      synchronous="NORMAL", status_every_s=5.0, **kw)


def journal_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}


def cli_outputs(path: Path) -> dict[str, str]:
    runner = CliRunner()
    out = {}
    for args in (["journal", "events", str(path), "--format", "json", "--limit", "1000000"],
                 ["journal", "sessions", str(path), "--format", "json"],
                 ["audit", "export", str(path), "--what", "events", "--format", "jsonl"],
                 ["audit", "export", str(path), "--what", "orders", "--format", "csv"],
                 ["audit", "anomalies", str(path)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        out[" ".join(args[:2])] = result.output
    return out


# ------------------------------------------------------------------ in process, virtual time


async def test_a_whole_session_leaks_nothing(
        tmp_path: Path, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim, sent = new_sim(), Sent()
    handler, connect = recording(sim, sent)
    path = tmp_path / "j.sqlite"
    lines: list[str] = []
    snapshots: dict[str, bytes] = {}
    sessions: list[Any] = []
    factory = venue_factory(sim, Credentials(LEAK_KEY, LEAK_SECRET), handler=handler,
                            connect=connect)

    async def look_mid_session() -> None:
        await trio.sleep(30)
        snapshots.update({f"mid {k}": v for k, v in journal_files(path).items()})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(look_mid_session)
        summary = await run_session(
            options(path), factory, clock=TrioClock(), out=lines.append,
            on_started=sessions.append)
    assert summary.orders > 0 and summary.killed is None
    assert len(sent.signatures) > 10 and all(_SIG_HEX.match(s) for s in sent.signatures)
    assert "mid j.sqlite-wal" in snapshots  # the WAL was looked at while it held the session

    for name, blob in {**snapshots, **journal_files(path)}.items():
        assert_clean(blob, name, sent)
    assert_clean("\n".join(lines + summary.lines()), "console output", sent)
    for record in caplog.records:
        assert_clean(f"{record.getMessage()} {record.exc_text or ''}", "a log record", sent)
    for name, text in cli_outputs(path).items():
        assert_clean(text, f"tapeline {name}", sent)
    [session] = sessions
    assert session.account is not None  # the private stream logged in and ran
    for obj in (session.opts, session.account, session.executor, session.feeds):
        assert_clean(repr(obj), f"repr of {type(obj).__name__}", sent)


def test_reprs_and_config_never_show_the_secret(tmp_path: Path) -> None:
    creds = Credentials(LEAK_KEY, LEAK_SECRET)
    config = MexcConfig.for_simulator("http://127.0.0.1:1")
    auth = MexcAuth(creds, TrioClock())
    venue = Venue(httpx.AsyncClient(), config.ws_url, config, creds)
    texts = [repr(creds), str(creds), f"{creds}", f"{creds!r:>60}", repr(creds.secret),
             str(creds.secret), repr(auth), repr(venue), repr(config), creds.masked_key]
    for text in texts:
        assert_clean(text, text)
    assert "mx0L…1234" in repr(creds)
    toml = tmp_path / "t.toml"
    toml.write_text('[mexc]\ncredentials_file = "/nowhere/keys.toml"\n[run]\nmode = "live"\n')
    assert_clean(repr(load_config(toml)), "FileConfig")


def test_credential_errors_name_the_file_not_the_values(tmp_path: Path) -> None:
    file = tmp_path / "keys.toml"
    file.write_text(f'api_key = "{LEAK_KEY}"\napi_secret = "{LEAK_SECRET}"\n')
    file.chmod(0o644)
    with pytest.raises(CredentialsError) as world:
        Credentials.from_file(file)
    file.chmod(0o600)
    file.write_text(f"api_key = {LEAK_KEY}\nthis line is not key=value {LEAK_SECRET}\n")
    with pytest.raises(CredentialsError) as garbled:
        Credentials.from_file(file)
    with pytest.raises(CredentialsError) as spaced:
        Credentials.from_env({"MEXC_API_KEY": LEAK_KEY, "MEXC_API_SECRET": f"a {LEAK_SECRET}"})
    for caught in (world, garbled, spaced):
        assert_clean(f"{caught.value} {caught.value!r}", "a CredentialsError")


async def test_provoked_failures_leak_nothing(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    sim, sent = new_sim(), Sent()
    handler, connect = recording(sim, sent)
    wrong = Credentials(LEAK_KEY, WRONG_SECRET)
    config = MexcConfig.for_simulator("http://sim.invalid")
    errors: list[BaseException] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        rest = MexcRestClient(http, config, wrong, TrioClock())
        with pytest.raises(AuthError) as bad_signature:
            await rest.assets()
        assert bad_signature.value.code == 602
        errors.append(bad_signature.value)
    with pytest.raises(WsLoginFailed) as refused:
        async with open_mexc_ws(config.ws_url, clock=TrioClock(), credentials=wrong,
                                connect=connect):
            pass
    errors.append(refused.value)

    async def cut(request: httpx.Request) -> httpx.Response:
        sent.signatures.add(request.headers["signature"])
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(cut)) as http:
        rest = MexcRestClient(http, config, wrong, TrioClock())
        with pytest.raises(TransportError) as lost:
            await rest.cancel_all("BTC_USDT")
        errors.append(lost.value)
    # (a GET without parameters and a login in the same ms sign the same text: key + time)
    assert len(sent.signatures) >= 2
    for exc in errors:
        chain = [exc, exc.__cause__, exc.__context__]
        text = " ".join(f"{e} {e!r}" for e in chain if e is not None)
        # the exchange's own refusal may say "Signature verification failed"
        assert_clean(text, f"{type(exc).__name__}", sent, no_signature_word=False)

    # A whole session with the wrong secret: every private call and the login are refused,
    # the blind account stream trips the kill switch, whose cancel-all is retried (and
    # refused) for about 70 s. (exit_on_kill would end the session while those retries run:
    # see test_a_refused_session_ends_without_a_crash below; so would a cancel-on-stop.)
    path = tmp_path / "refused.sqlite"
    lines: list[str] = []
    summary = await run_session(
        options(path, exit_on_kill=False, cancel_on_stop=False, stale_account_s=10.0,
                duration_s=95),
        venue_factory(sim, wrong, handler=handler, connect=connect),
        clock=TrioClock(), out=lines.append)
    assert summary.killed is not None and "stale account stream" in summary.killed
    journal = journal_files(path)
    assert b"602" in journal[path.name]  # the refusals are journaled...
    for name, blob in journal.items():  # ...without what was refused
        assert_clean(blob, name, sent, no_signature_word=False)
    assert_clean("\n".join(lines + summary.lines()), "console output", sent,
                 no_signature_word=False)


async def test_a_refused_session_ends_without_a_crash(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    sim = new_sim()
    summary = await run_session(
        options(tmp_path / "j.sqlite", exit_on_kill=True, stale_account_s=20.0),
        venue_factory(sim, Credentials(LEAK_KEY, WRONG_SECRET)), clock=TrioClock(),
        out=lambda line: None)
    assert summary.killed is not None


def test_doctor_shows_only_a_masked_key(tmp_path: Path) -> None:
    env = {"MEXC_API_KEY": LEAK_KEY, "MEXC_API_SECRET": LEAK_SECRET}
    for args in (["--sim"], ["--sim", "--json"]):
        result = CliRunner().invoke(doctor_command, args, env=env)
        assert result.exit_code == 0, result.output
        assert "mx0L…1234" in result.output
        assert_clean(result.output, f"doctor {args}")


# ----------------------------------------------------------------- real processes


def _start_sim() -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "sim", "--port", "0", "--seed", "3",
         "--api-key", LEAK_KEY, "--api-secret", LEAK_SECRET],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    reader, urls = LineReader(proc.stdout), {}
    for _ in range(50):
        line = reader.read_line(20.0)
        if line is None:
            break
        key, sep, value = line.strip().partition("=")
        if sep:
            urls[key] = value
        if line.startswith("serving"):
            return proc, urls
    _stop(proc)
    raise AssertionError(f"simulator did not start: {urls}")


def _stop(proc: subprocess.Popen[bytes]) -> bytes:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or b""


def test_real_processes_leak_nothing(tmp_path: Path) -> None:
    sim, urls = _start_sim()
    try:
        config = tmp_path / "tapeline.toml"
        config.write_text(
            "[run]\nstatus_every_s = 0.5\n[strategy]\nquote_every_s = 0.5\n[mexc]\n"
            f"rest_base = \"{urls['rest_base']}\"\nws_url = \"{urls['ws_url']}\"\n")
        journal = tmp_path / "live.sqlite"
        env = {**os.environ, "MEXC_API_KEY": LEAK_KEY, "MEXC_API_SECRET": LEAK_SECRET,
               "PYTHONUNBUFFERED": "1"}
        engine = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "run", "--mode", "live", "--strategy",
             "market-maker", "--config", str(config), "--journal", str(journal)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        try:
            seen = wait_status_lines(engine, 4)
            running = journal_files(journal)  # the WAL holds the session now
        finally:
            rest = _stop(engine)
        assert engine.returncode == 0, rest.decode(errors="replace")
    finally:
        _stop(sim)
    assert f"{journal.name}-wal" in running
    output = "".join(seen).encode() + rest
    assert b"session " in output
    for name, blob in {**{f"running {k}": v for k, v in running.items()},
                       **journal_files(journal)}.items():
        assert_clean(blob, name)
    assert_clean(output, "the engine's stdout and stderr")
    for name, text in cli_outputs(journal).items():
        assert_clean(text, f"tapeline {name}")
