"""``tapeline doctor``: each check's verdict rules, the checks against the in-process
simulator in virtual time (clock skew, refused keys, closed API trading), the canary's clean
run and its findings when the exchange changes a shape, and the command line."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from click.testing import CliRunner

from adapters.mexc.auth import Credentials
from adapters.mexc.sim.contracts import BTC_USDT, make_contract
from adapters.mexc.sim.faults import Faults
from adapters.mexc.sim.service import SimService
from engine.clock import TrioClock
from engine.doctor import DoctorOptions, DoctorReport, doctor_command, run_doctor
from engine.doctor_checks import (
    CheckResult,
    Verdict,
    clock_result,
    credentials_result,
    impostor_results,
    journal_result,
    lock_result,
    normalize,
    parse_lock,
)
from engine.events import NewEvent
from engine.journal import Journal
from tests.sim_venue import venue_factory

KEY = "mx0doctortestkey99"
SECRET = "doctor-test-secret-0123456789"
SOL = "SOL_USDT"


def by_name(results: Any, name: str) -> CheckResult:
    found = [r for r in results if r.name == name]
    assert len(found) == 1, [r.name for r in results]
    return found[0]


# ------------------------------------------------------------------------ verdict rules


def test_impostor_sdks_fail_and_other_mexc_names_warn() -> None:
    installed = {normalize("CCXT_Mexc.Futures"): "1.0", normalize("mexc-grid-helper"): "0.2",
                 "trio": "0.35.0"}
    results = impostor_results(installed)
    assert [r.verdict for r in results] == [Verdict.FAIL, Verdict.WARN]
    assert "ccxt-mexc-futures 1.0" in results[0].found
    assert "uninstall it" in (results[0].action or "")
    assert "rotate your API keys" in (results[0].action or "")
    assert "mexc-grid-helper" in results[1].found
    [clean] = impostor_results({"trio": "0.35.0", "httpx": "0.28.1"})
    assert clean.verdict is Verdict.OK


def test_lock_differences_and_missing_pins_warn() -> None:
    locked = parse_lock("# comment\nattrs==26.1.0 \\\n    --hash=sha256:00\n"
                        "Trio==0.35.0\nhttpx==0.28.1 ; python_version >= '3.11'\n")
    assert locked == {"attrs": "26.1.0", "trio": "0.35.0", "httpx": "0.28.1"}
    ok = lock_result({"attrs": "26.1.0", "trio": "0.35.0", "httpx": "0.28.1"}, locked, "L")
    assert ok.verdict is Verdict.OK
    bad = lock_result({"attrs": "25.0.0", "trio": "0.35.0"}, locked, "L")
    assert bad.verdict is Verdict.WARN
    assert "attrs 25.0.0 (lock 26.1.0)" in bad.found and "missing: httpx" in bad.found
    real = parse_lock((Path(__file__).parents[1] / "requirements.lock").read_text())
    assert "trio" in real and "hypothesis" in real


@pytest.mark.parametrize(("skew_ms", "verdict"), [
    (0, Verdict.OK), (1_999, Verdict.OK), (-1_999, Verdict.OK), (2_000, Verdict.WARN),
    (-7_999, Verdict.WARN), (8_000, Verdict.FAIL), (-12_000, Verdict.FAIL),
])
def test_clock_thresholds(skew_ms: int, verdict: Verdict) -> None:
    result = clock_result(skew_ms, 40, "MEXC")
    assert result.verdict is verdict
    assert result.data == {"skew_ms": skew_ms, "rtt_ms": 40}
    if skew_ms:
        assert f"{abs(skew_ms) / 1000:.3f} s" in result.found and "40 ms" in result.found


@pytest.mark.parametrize(("mode", "verdict"), [
    (0o644, Verdict.FAIL), (0o640, Verdict.WARN), (0o600, Verdict.OK),
])
def test_a_credentials_file_must_be_private(tmp_path: Path, mode: int, verdict: Verdict) -> None:
    file = tmp_path / "mexc.toml"
    file.write_text(f'api_key = "{KEY}"\napi_secret = "{SECRET}"\n')
    file.chmod(mode)
    result, creds = credentials_result({}, file)
    assert result.verdict is verdict
    if verdict is not Verdict.OK:
        assert f"chmod 600 {file}" in (result.action or "")
    text = repr(result) + str(result.as_json())
    assert SECRET not in text and KEY not in text
    assert (creds is None) == (verdict is Verdict.FAIL)


def test_keys_from_the_environment_are_shown_masked() -> None:
    result, creds = credentials_result({"MEXC_API_KEY": KEY, "MEXC_API_SECRET": SECRET}, None)
    assert result.verdict is Verdict.OK and creds is not None
    assert "mx0d…ey99" in result.found and KEY not in result.found
    missing, none = credentials_result({}, None)
    assert missing.verdict is Verdict.WARN and none is None
    assert "MEXC_API_KEY" in missing.found


def test_journal_verifies_or_names_the_first_bad_seq(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        sid = j.start_session(started_ns=1)
        j.append(sid, [NewEvent(ts_ns=i, source="engine", kind="engine.timer",
                                body=f'{{"i":{i}}}') for i in range(6)])
    assert journal_result(path, must_exist=True).verdict is Verdict.OK
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = '{\"i\":99}' WHERE seq = 4")
    conn.close()
    broken = journal_result(path, must_exist=True)
    assert broken.verdict is Verdict.FAIL
    assert "seq 4" in broken.found and broken.data["first_bad_seq"] == 4
    assert journal_result(tmp_path / "none.sqlite", must_exist=False).verdict is Verdict.OK
    assert journal_result(tmp_path / "none.sqlite", must_exist=True).verdict is Verdict.FAIL


# ----------------------------------------------------------- against the simulator


def new_sim(*, faults: Faults | None = None, contracts: Any = None,
            restricted: tuple[str, ...] = ()) -> SimService:
    sim = SimService(clock=TrioClock(), seed=3, faults=faults, contracts=contracts,
                     start_prices={"BTC_USDT": Decimal(100000), SOL: Decimal(150)}
                     if contracts else None, restricted_symbols=restricted)
    sim.add_account(KEY, SECRET, Decimal(10000))
    return sim


async def doctor(sim: SimService, opts: DoctorOptions | None = None, *,
                 secret: str = SECRET, **venue: Any) -> DoctorReport:
    factory = venue_factory(sim, Credentials(KEY, secret), **venue)
    return await run_doctor(opts or DoctorOptions(), factory, "the simulator", clock=TrioClock())


async def test_everything_is_ok_against_the_simulator(autojump_clock: trio.abc.Clock) -> None:
    report = await doctor(new_sim())
    assert [(r.name, r.verdict) for r in report.results] == [
        ("reach", Verdict.OK), ("clock", Verdict.OK), ("keys accepted", Verdict.OK),
        ("capability BTC_USDT", Verdict.OK)]
    assert not report.failed
    assert "0 FAIL, 0 WARN, 4 OK: ready" in report.lines()[-1]


@pytest.mark.parametrize(("skew_s", "verdict"), [(3.0, Verdict.WARN), (9.0, Verdict.FAIL),
                                                 (-9.0, Verdict.FAIL)])
async def test_clock_skew_is_measured_against_server_time(
        autojump_clock: trio.abc.Clock, skew_s: float, verdict: Verdict) -> None:
    report = await doctor(new_sim(faults=Faults(clock_skew_s=skew_s)))
    clock = by_name(report.results, "clock")
    assert clock.verdict is verdict
    assert abs(clock.data["skew_ms"] - skew_s * 1000) <= 1
    assert report.failed == (verdict is Verdict.FAIL)


async def test_refused_keys_fail(autojump_clock: trio.abc.Clock) -> None:
    report = await doctor(new_sim(), secret="not-the-secret-at-all")
    keys = by_name(report.results, "keys accepted")
    assert keys.verdict is Verdict.FAIL and "602" in keys.found
    assert "IP whitelist" in (keys.action or "")
    assert "not-the-secret-at-all" not in "\n".join(report.lines())


async def test_closed_api_trading_warns_and_an_unlisted_symbol_fails(
        autojump_clock: trio.abc.Clock) -> None:
    closed = make_contract(SOL, template=BTC_USDT, api_allowed=False, contract_id=12)
    sim = new_sim(contracts=[BTC_USDT, closed])
    report = await doctor(sim, DoctorOptions(symbols=("BTC_USDT", SOL, "NOPE_USDT")))
    assert by_name(report.results, "capability BTC_USDT").verdict is Verdict.OK
    sol = by_name(report.results, f"capability {SOL}")
    assert sol.verdict is Verdict.WARN and "apiAllowed=False" in sol.found
    assert "--mode shadow" in (sol.action or "") and "--mode sim" in (sol.action or "")
    assert by_name(report.results, "capability NOPE_USDT").verdict is Verdict.FAIL


async def test_an_unreachable_exchange_fails_once(autojump_clock: trio.abc.Clock) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = await doctor(new_sim(), handler=refuse)
    assert [(r.name, r.verdict) for r in report.results] == [("reach", Verdict.FAIL)]


# ------------------------------------------------------------------------- the canary


def canary_opts(path: Path, **kw: Any) -> DoctorOptions:
    return DoctorOptions(canary=True, canary_journal=path, canary_wait_s=5.0, **kw)


async def test_the_canary_calls_everything_and_leaves_no_order(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    sim = new_sim()
    path = tmp_path / "canary.sqlite"
    report = await doctor(sim, canary_opts(path))
    bad = [r for r in report.results if r.verdict is not Verdict.OK]
    assert bad == []
    assert report.canary is not None and report.canary["findings"] == 0
    names = {r.name for r in report.results}
    for expected in ("rest order_create", "rest order_cancel", "rest depth_commits",
                     "ws push.depth", "ws push.ticker", "ws rs.login",
                     "ws push.personal.order", "canary journal"):
        assert expected in names
    user = sim.accounts[KEY].user
    assert list(sim.exchange.open_orders(user)) == []
    with Journal.open(path, readonly=True) as j:
        assert j.verify().ok
        [session] = j.sessions()
        assert session.mode == "canary"
        rows = list(j.read())
    kinds = [r.kind for r in rows]
    assert kinds[0] == "engine.session_started" and kinds[-1] == "engine.session_ended"
    # Record first: the intent precedes the placement, which is journaled under its oid.
    place = next(r for r in rows if r.kind == "rest.order_create")
    intent = next(r for r in rows if r.kind == "cmd.place_order")
    assert intent.seq < place.seq and place.cause == intent.seq
    assert place.stream == intent.stream and (place.stream or "").startswith("tlcanary")
    states = [orjson.loads(r.body)["data"]["state"] for r in rows
              if r.kind == "ws.push.personal.order"]
    assert states[-1] == 4  # cancelled
    blob = path.read_bytes()
    assert SECRET.encode() not in blob and KEY.encode() not in blob


class _AddsFields:
    """A WS transport that adds a field to every ``push.ticker`` frame."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def get_message(self) -> str | bytes:
        message = await self.inner.get_message()
        if isinstance(message, str) and '"channel":"push.ticker"' in message:
            frame = orjson.loads(message)
            frame["newTopLevel"] = 1
            return orjson.dumps(frame).decode()
        return message

    async def send_message(self, message: str | bytes) -> None:
        await self.inner.send_message(message)

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        await self.inner.aclose(code, reason)


def changed_exchange(sim: SimService) -> tuple[
        Callable[[httpx.Request], Coroutine[None, None, httpx.Response]], Any]:
    """MEXC after a change: the ticker's lastPrice became an object, push.ticker grew a
    field, and the order endpoints are gone (HTTP 404)."""

    async def handler(request: httpx.Request) -> httpx.Response:
        response = await sim.rest_handler(request)
        if request.url.path.endswith("/contract/ticker"):
            body = orjson.loads(response.content)
            body["data"]["lastPrice"] = {"value": body["data"]["lastPrice"]}
            return httpx.Response(200, content=orjson.dumps(body), request=request)
        return response

    @asynccontextmanager
    async def connect(url: str) -> Any:
        async with sim.ws_connect(url) as transport:
            yield _AddsFields(transport)

    return handler, connect


async def test_the_canary_reports_and_journals_changed_shapes(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    sim = new_sim(faults=Faults(order_404=True))
    handler, connect = changed_exchange(sim)
    path = tmp_path / "canary.sqlite"
    report = await doctor(sim, canary_opts(path), handler=handler, connect=connect)
    assert report.failed
    ticker = by_name(report.results, "rest ticker")
    assert ticker.verdict is Verdict.FAIL and "lastPrice" in ticker.found
    unknown = by_name(report.results, "ws push.ticker")
    assert unknown.verdict is Verdict.WARN and "newTopLevel" in unknown.found
    # no last price: the order round trip is skipped rather than guessed
    assert by_name(report.results, "order").verdict is Verdict.WARN
    with Journal.open(path, readonly=True) as j:
        assert j.verify().ok
        rows = {r.seq: r for r in j.read()}
    findings = [r for r in rows.values() if r.kind == "engine.decode_failed"]
    assert report.canary is not None
    assert len(findings) == report.canary["findings"] >= 2
    about = {rows[f.cause].kind for f in findings if f.cause is not None}
    assert {"rest.ticker", "ws.push.ticker"} <= about
    assert all(orjson.loads(f.body)["error"].startswith("canary: ") for f in findings)


async def test_a_gone_order_endpoint_is_reported(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    report = await doctor(new_sim(faults=Faults(order_404=True)), canary_opts(tmp_path / "c"))
    place = by_name(report.results, "rest order_create")
    assert place.verdict is Verdict.FAIL and "HTTP 404" in place.found
    assert "rest_base" in (place.action or "")


async def test_closed_api_trading_makes_the_canary_warn_not_fail(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    sim = new_sim(restricted=("BTC_USDT",))
    report = await doctor(sim, canary_opts(tmp_path / "c"))
    place = by_name(report.results, "rest order_create")
    assert place.verdict is Verdict.WARN and "6005" in place.found
    assert not report.failed
    assert list(sim.exchange.open_orders(sim.accounts[KEY].user)) == []


# ---------------------------------------------------------------------- command line


def clean_env() -> dict[str, str | None]:
    return {"MEXC_API_KEY": None, "MEXC_API_SECRET": None}


def test_cli_against_the_simulator(tmp_path: Path) -> None:
    result = CliRunner().invoke(doctor_command, ["--sim", "--json"], env=clean_env())
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["ok"] is True
    verdicts = {c["check"]: c["verdict"] for c in report["checks"]}
    assert verdicts["keys"] == "WARN" and verdicts["packages"] == "OK"
    assert verdicts["capability BTC_USDT"] == "OK"


def test_cli_canary_against_the_simulator(tmp_path: Path) -> None:
    path = tmp_path / "canary.sqlite"
    result = CliRunner().invoke(doctor_command, ["--sim", "--canary", "--journal", str(path)],
                                env=clean_env())
    assert result.exit_code == 0, result.output
    assert "0 findings" in result.output and "0 FAIL" in result.output
    with Journal.open(path, readonly=True) as j:
        assert j.verify().ok and j.sessions()[0].mode == "canary"


def test_cli_fails_on_an_installed_impostor(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    info = site / "ccxt_mexc_futures-0.4.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ccxt-mexc-futures\n"
                                   "Version: 0.4.1\n")
    monkeypatch.syspath_prepend(str(site))
    result = CliRunner().invoke(doctor_command, ["--sim"], env=clean_env())
    assert result.exit_code == 1, result.output
    assert "FAIL  packages" in result.output
    assert "ccxt-mexc-futures 0.4.1" in result.output
    assert "rotate your API keys" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_a_world_readable_credentials_file(tmp_path: Path) -> None:
    file = tmp_path / "keys.env"
    file.write_text(f"MEXC_API_KEY={KEY}\nMEXC_API_SECRET={SECRET}\n")
    file.chmod(0o644)
    result = CliRunner().invoke(doctor_command, ["--sim", "--credentials-file", str(file)],
                                env=clean_env())
    assert result.exit_code == 1
    assert f"chmod 600 {file}" in result.output
    assert SECRET not in result.output and KEY not in result.output
    file.chmod(0o600)
    result = CliRunner().invoke(doctor_command, ["--sim", "--credentials-file", str(file)],
                                env=clean_env())
    assert result.exit_code == 0, result.output
    assert "mx0d…ey99" in result.output and SECRET not in result.output


def test_cli_verifies_the_journal_and_reports_bad_arguments(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    result = CliRunner().invoke(doctor_command, ["--sim", "--journal", str(missing)],
                                env=clean_env())
    assert result.exit_code == 1 and "FAIL  journal" in result.output
    result = CliRunner().invoke(doctor_command, ["--sim", "--symbols", "??"], env=clean_env())
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error:")
    config = tmp_path / "bad.toml"
    config.write_text("[mexc]\nrest_base = 'ftp://x'\n")
    result = CliRunner().invoke(doctor_command, ["--config", str(config)], env=clean_env())
    assert result.exit_code == 1 and result.output.startswith("Error: [mexc] rest_base")


async def test_a_lost_placement_answer_is_settled_and_the_order_cancelled(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    faults = Faults(rest_match="order/create", rest_drop_after_next=1, rest_drop_mode="close")
    sim = new_sim(faults=faults)
    path = tmp_path / "canary.sqlite"
    report = await doctor(sim, canary_opts(path))
    place = by_name(report.results, "rest order_place")  # no answer, so no journaled kind
    assert place.verdict is Verdict.FAIL and "no usable answer" in place.found
    assert list(sim.exchange.open_orders(sim.accounts[KEY].user)) == []
    with Journal.open(path, readonly=True) as j:
        kinds = [r.kind for r in j.read()]
    assert "order.unknown" in kinds and "rest.order_external" in kinds
    assert "rest.order_cancel_with_external" in kinds


async def test_an_unreachable_websocket_is_a_finding_not_a_hang(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    @asynccontextmanager
    async def refused(url: str) -> Any:
        raise OSError("connection refused")
        yield  # pragma: no cover

    sim = new_sim()
    report = await doctor(sim, canary_opts(tmp_path / "c"), connect=refused)
    public = by_name(report.results, "ws public")
    assert public.verdict is Verdict.FAIL and "connection refused" in public.found
    assert by_name(report.results, "rest order_cancel").verdict is Verdict.OK
    assert list(sim.exchange.open_orders(sim.accounts[KEY].user)) == []
