"""Bad input never crashes: fuzzed configuration files, command lines, damaged journals and
malformed, unsigned, replayed or oversized requests to the simulator.

* the config loader: random bytes and TOML, wrong types and bad values in every known key:
  a one-line :class:`ConfigError` or a config whose values have the documented types;
* the CLI (``run``, ``journal``, ``sim``, ``doctor``): random argument lists drawn from the
  real option names and junk values: success, a report, or one ``Error:`` line; never a
  traceback (``run`` and ``sim`` get a stub in place of the session and the server);
* the journal reader: truncated and corrupted files open, verify and read, or raise a
  :class:`JournalError`; a read-only open never changes the file;
* the simulator: documented envelope codes for unsigned (401/602), stale or replayed (513)
  and malformed (600/601) requests, HTTP 413 for oversized bodies, over HTTP too.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.mexc.endpoints import ENDPOINTS
from adapters.mexc.errors import ENVELOPE_CODES, ORDER_ERROR_CODES
from adapters.mexc.signing import rest_signature
from adapters.mexc.sim import cli as sim_cli
from adapters.mexc.sim.asgi import rest_base_url, serve_sim
from adapters.mexc.sim.rest_api import MAX_BODY_BYTES, RestRequest
from adapters.mexc.sim.service import SimService
from engine import cli_run
from engine.cli import main
from engine.clock import FixedClock, SystemClock
from engine.config import SCHEMA, FileConfig, load_config
from engine.doctor import doctor_command
from engine.errors import ConfigError, JournalError
from engine.events import NewEvent
from engine.journal import Journal
from engine.runtime import SessionSummary

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
KEY, SECRET = "mx0badinputkey01", "bad-input-secret-01"
NOW_MS = 1_767_225_600_000


def one_line(text: str) -> bool:
    return "\n" not in text.strip() and "\r" not in text


# ----------------------------------------------------------------------- config loader


def toml_scalar() -> st.SearchStrategy[str]:
    """TOML values of every type, as TOML text."""
    return st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(_toml_float),
        st.booleans().map(lambda b: "true" if b else "false"),
        st.text(max_size=12).map(_toml_string),
        st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"]),
    )


def _toml_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def _toml_string(s: str) -> str:
    return orjson.dumps(s).decode().replace("\\/", "/")  # JSON escapes are TOML escapes


def toml_value() -> st.SearchStrategy[str]:
    return st.recursive(
        toml_scalar(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.dictionaries(st.sampled_from(["a", "b", "symbol"]), inner, max_size=2).map(
                lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"),
        ),
        max_leaves=4,
    )


KNOWN_KEYS = [(table, key) for table, keys in SCHEMA.items() for key in keys]


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    for table in draw(st.lists(st.sampled_from([*SCHEMA, "bogus"]), max_size=4, unique=True)):
        lines.append(f"[{table}]")
        keys = [k for t, k in KNOWN_KEYS if t == table] or ["x"]
        for key in draw(st.lists(st.sampled_from([*keys, "unknown_key"]), max_size=4,
                                 unique=True)):
            lines.append(f"{key} = {draw(toml_value())}")
    return "\n".join(lines) + "\n"


def _conforms(cfg: FileConfig) -> None:
    """A config the loader accepted has the documented types and sane numbers."""
    for table in ("run", "alerts", "mexc", "sim"):
        data = getattr(cfg, table)
        for key, value in data.items():
            want = SCHEMA[table][key]
            assert isinstance(value, want) or (key in ("duration", "balance"))
            if isinstance(value, float):
                assert math.isfinite(value), (table, key, value)
    if "duration" in cfg.run:
        assert 0 < cfg.run["duration"] < math.inf
    for key in ("status_every_s", "stale_account_s"):
        if key in cfg.run:
            assert cfg.run[key] >= 0
    assert cfg.risk.window_s > 0 and math.isfinite(cfg.risk.window_s)


def _load(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        assert one_line(str(exc)), str(exc)
        return
    _conforms(cfg)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_a_config_error_or_a_config(tmp_path: Path, data: bytes) -> None:
    _load(tmp_path / "c.toml", data)


@FUZZ
@given(doc=toml_documents())
@example(doc="[run]\nduration = nan\n")
@example(doc="[risk]\nwindow_s = -1\n")
@example(doc="[run]\nstatus_every_s = inf\n")
@example(doc="[sim]\nport = 70000\n")
def test_random_toml_is_a_config_error_or_a_config(tmp_path: Path, doc: str) -> None:
    _load(tmp_path / "c.toml", doc.encode())


WRONG = {str: ["1", "true", "[1]", "{a = 1}"], bool: ['"yes"', "1", "[true]"],
         int: ['"1"', "1.5", "true", "[1]"], list: ['"BTC_USDT"', "1", "{a = 1}"]}


@pytest.mark.parametrize(("table", "key"), [k for k in KNOWN_KEYS])
def test_a_wrong_type_in_every_known_key_names_it(tmp_path: Path, table: str, key: str) -> None:
    want = SCHEMA[table][key]
    types = want if isinstance(want, tuple) else (want,)
    samples = ["{a = 1}", "[[1]]", "1979-05-27"]
    if bool not in types:
        samples.append("true")
    for t in types:
        samples += [s for s in WRONG.get(t, []) if not _fits(s, types)]
    for sample in samples:
        path = tmp_path / "c.toml"
        path.write_text(f"[{table}]\n{key} = {sample}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert f"[{table}] {key}" in str(caught.value) and one_line(str(caught.value))


def _fits(sample: str, types: tuple[type, ...]) -> bool:
    import tomllib

    value = tomllib.loads(f"v = {sample}")["v"]
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def good_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        for n in range(3):
            sid = j.start_session(started_ns=n, mode="sim", strategy="mm")
            j.append(sid, [NewEvent(ts_ns=i, source="ws", kind="ws.push.depth",
                                    body=f'{{"channel":"push.depth","i":{i},"x":"é"}}',
                                    stream="BTC_USDT", venue_ts_ms=i or None)
                           for i in range(20)])
    return path


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory, good_journal: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("paths")
    junk = base / "junk.sqlite"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x07" * 300)
    empty = base / "empty.sqlite"
    empty.write_bytes(b"")
    config = base / "ok.toml"
    config.write_text('[run]\nduration = "1s"\n[sim]\nseed = 2\n')
    bad_config = base / "bad.toml"
    bad_config.write_text("[run\nmode = ")
    return {"good": good_journal, "junk": junk, "empty": empty, "missing": base / "no.sqlite",
            "dir": base, "config": config, "bad_config": bad_config}


JUNK = st.one_of(st.sampled_from(["", "-", "--", "0", "-1", "nan", "1e999", "5s", "90",
                                  "BTC_USDT", "btc_usdt,ETH_USDT", "??", "live", "sim",
                                  "shadow", "record", "table", "json", "é",
                                  "\udcff"]),  # an undecodable argv byte, as Python sees it
                 # No line breaks: click echoes a bad argument verbatim, so one inside it
                 # would split engine.cli's one-line error (reported; doctor escapes them).
                 # No NUL either: argv cannot hold one (click's Path would raise ValueError).
                 st.text(st.characters(blacklist_categories=("Cc", "Zl", "Zp")), max_size=8))
JUNK_WITH_BREAKS = st.one_of(JUNK, st.text(st.characters(blacklist_characters="\x00"),
                                           max_size=8))


def _path_token(paths: dict[str, Path]) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(str(p) for p in paths.values()))


def _argv(options: list[str], paths: dict[str, Path], junk: st.SearchStrategy[str] = JUNK
          ) -> st.SearchStrategy[list[str]]:
    token = st.one_of(st.sampled_from(options), junk, _path_token(paths))
    return st.lists(token, max_size=7)


def _check(result: Result, *, reports: tuple[str, ...] = ()) -> None:
    """Success, a known report, or one ``Error:`` line: never a traceback."""
    out = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{out}")
    assert "Traceback" not in out
    if result.exit_code == 0:
        return
    if out.startswith("Error:"):
        assert one_line(out), out
        return
    assert any(marker in out for marker in reports), (result.exit_code, out)


def _fake_run(opts: Any, venue: Any, *, handle_signals: bool) -> SessionSummary:
    return SessionSummary(session="fake", journal=str(opts.journal_path), mode=opts.mode,
                          events=0, orders=0, filled_orders=0, fills=0,
                          realised_pnl=Decimal(0), balance=None, killed=None, duration_s=0.0)


RUN_OPTIONS = ["--strategy", "market-maker", "tests.e2e.scripted:Scripted", "no.such:Thing",
               "--mode", "--symbols", "--config", "--journal", "--duration", "--status-every",
               "--cancel-on-stop", "--keep-orders-on-stop", "--json", "--help"]


@FUZZ
@given(data=st.data())
def test_run_with_random_arguments(data: st.DataObject, paths: dict[str, Path],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_run, "_run", _fake_run)
    monkeypatch.chdir(tmp_path)  # a default journal lands here
    argv = data.draw(_argv(RUN_OPTIONS, paths))
    result = CliRunner().invoke(main, ["run", *argv],
                                env={"MEXC_API_KEY": None, "MEXC_API_SECRET": None})
    _check(result)


JOURNAL_OPTIONS = ["info", "sessions", "events", "verify", "--format", "--session", "--kind",
                   "ws.*", "ws.push.depth", "--stream", "--from-seq", "--to-seq", "--limit",
                   "--help"]


@FUZZ
@given(data=st.data())
def test_journal_with_random_arguments(data: st.DataObject, paths: dict[str, Path]) -> None:
    sub = data.draw(st.sampled_from(["info", "sessions", "events", "verify"]))
    argv = [sub, data.draw(_path_token(paths)), *data.draw(_argv(JOURNAL_OPTIONS, paths))]
    result = CliRunner().invoke(main, ["journal", *data.draw(st.permutations(argv))])
    _check(result, reports=("BROKEN at seq",))


SIM_OPTIONS = ["--host", "127.0.0.1", "0.0.0.0", "localhost", "--port", "--allow-remote",
               "--seed", "--symbols", "--balance", "--api-key", "--api-secret", "--step",
               "--fault-drop-every", "--fault-silent-pongs", "--fault-depth-gaps",
               "--fault-rest-delay", "--fault-5xx", "--fault-404", "--fault-rate-limit",
               "--clock-skew", "--help"]


@FUZZ
@given(data=st.data())
def test_sim_with_random_arguments(data: st.DataObject, paths: dict[str, Path],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[SimService] = []

    async def fake_serve(service: SimService, *args: Any) -> None:
        served.append(service)

    monkeypatch.setattr(sim_cli, "_serve", fake_serve)
    result = CliRunner().invoke(main, ["sim", *data.draw(_argv(SIM_OPTIONS, paths))])
    _check(result)


DOCTOR_OPTIONS = ["--config", "--journal", "--credentials-file", "--symbols", "--json",
                  "--help", "BTC_USDT", "ETH_USDT,BTC_USDT"]


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_doctor_with_random_arguments(data: st.DataObject, paths: dict[str, Path]) -> None:
    argv = ["--sim", *data.draw(_argv(DOCTOR_OPTIONS, paths, JUNK_WITH_BREAKS))]
    result = CliRunner().invoke(doctor_command, argv,
                                env={"MEXC_API_KEY": None, "MEXC_API_SECRET": None})
    _check(result, reports=("FAIL",))


# ---------------------------------------------------------------------- journal reader


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_everything(path: Path) -> None:
    """Open read-only, verify, read: works or raises JournalError, never changes the file."""
    before = _digest(path)
    try:
        with Journal.open(path, readonly=True) as j:
            j.info()
            j.sessions()
            j.verify()
            for _ in j.read(kinds=["ws.push.depth"]):
                pass
            for _ in j.read(stream="BTC_USDT", limit=5):
                pass
    except JournalError:
        pass
    assert _digest(path) == before
    assert not Path(f"{path}-journal").exists()


@FUZZ
@given(cut=st.floats(0, 1))
def test_truncated_journals(tmp_path: Path, good_journal: Path, cut: float) -> None:
    data = good_journal.read_bytes()
    path = tmp_path / "cut.sqlite"
    path.write_bytes(data[: int(len(data) * cut)])
    _read_everything(path)


@FUZZ
@given(start=st.floats(0, 1), junk=st.binary(min_size=1, max_size=64))
@example(start=0.0, junk=b"\xff" * 16)       # the header
@example(start=0.03, junk=b"\x00" * 64)      # the first page's cells
def test_corrupted_journals(tmp_path: Path, good_journal: Path, start: float,
                            junk: bytes) -> None:
    data = bytearray(good_journal.read_bytes())
    at = int(len(data) * start)
    data[at: at + len(junk)] = junk
    path = tmp_path / "bad.sqlite"
    path.write_bytes(bytes(data))
    _read_everything(path)


def test_a_readonly_open_leaves_a_wal_journal_alone(tmp_path: Path, good_journal: Path) -> None:
    path = tmp_path / "j.sqlite"
    shutil.copy(good_journal, path)
    with Journal.open(path, synchronous="NORMAL") as writer:
        sid = writer.start_session(started_ns=9)
        writer.append(sid, [NewEvent(ts_ns=1, source="engine", kind="engine.timer",
                                     body='{"name":"t","ts_ns":1}')])
        wal = Path(f"{path}-wal")
        assert wal.exists()
        before = (_digest(path), _digest(wal))
        with Journal.open(path, readonly=True) as reader:
            assert reader.verify().ok
            with pytest.raises(JournalError, match="read-only"):
                reader.append(sid, [])
        assert (_digest(path), _digest(wal)) == before


# ------------------------------------------------------------------------ simulator


def new_sim() -> SimService:
    sim = SimService(clock=FixedClock(NOW_MS * 1_000_000), seed=1, drive_market=False)
    sim.add_account(KEY, SECRET, Decimal(10000))
    return sim


DOCUMENTED = set(ENVELOPE_CODES) | set(ORDER_ERROR_CODES)


def answer(sim: SimService, method: str, path: str, *, query: str = "", body: bytes = b"",
           headers: dict[str, str] | None = None, now_ms: int = NOW_MS) -> tuple[int, Any]:
    reply = sim.api.handle(RestRequest(method, path, query, headers or {}, body), now_ms, now_ms)
    try:
        return reply.status, orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return reply.status, reply.body


def signed(method: str, query: str, body: bytes, *, at_ms: int = NOW_MS, key: str = KEY,
           secret: str = SECRET) -> dict[str, str]:
    payload = query if method in ("GET", "DELETE") else body
    return {"apikey": key, "request-time": str(at_ms),
            "signature": rest_signature(key, secret, at_ms, payload)}


CREATE = ENDPOINTS["order_create"].path_template
ASSETS = ENDPOINTS["assets"].path_template
ORDER = b'{"symbol":"BTC_USDT","price":50000,"vol":1,"side":1,"type":1,"openType":2}'


def test_unsigned_and_unknown_keys_are_401_and_602() -> None:
    sim = new_sim()
    assert answer(sim, "GET", ASSETS)[1]["code"] == 401
    assert answer(sim, "GET", ASSETS, headers={"apikey": "nobody"})[1]["code"] == 401
    unsigned = {"apikey": KEY, "request-time": str(NOW_MS)}
    assert answer(sim, "POST", CREATE, body=ORDER, headers=unsigned)[1]["code"] == 602
    forged = signed("POST", "", ORDER, secret="guess")
    assert answer(sim, "POST", CREATE, body=ORDER, headers=forged)[1]["code"] == 602
    tampered = signed("POST", "", ORDER)
    assert answer(sim, "POST", CREATE, body=ORDER.replace(b"50000", b"50001"),
                  headers=tampered)[1]["code"] == 602
    status, body = answer(sim, "POST", CREATE, body=ORDER, headers=signed("POST", "", ORDER))
    assert status == 200 and body["success"] is True


def test_a_replay_outside_the_window_is_513() -> None:
    sim = new_sim()
    headers = signed("POST", "", ORDER, at_ms=NOW_MS)
    # within the 10 s window an identical replay is accepted: MEXC signs no nonce, so
    # replay protection is the time window alone (docs/operations.md says so)
    assert answer(sim, "POST", CREATE, body=ORDER, headers=headers,
                  now_ms=NOW_MS + 9_000)[1]["success"] is True
    for later in (10_001, 60_000):
        assert answer(sim, "POST", CREATE, body=ORDER, headers=headers,
                      now_ms=NOW_MS + later)[1]["code"] == 513
    assert answer(sim, "POST", CREATE, body=ORDER, headers=signed(
        "POST", "", ORDER, at_ms=NOW_MS + 20_000))[1]["code"] == 513  # from the future
    for bad in ("", "soon", "-5", "1.5e12", "²" * 13, "9" * 5000):
        headers = {**signed("POST", "", ORDER), "request-time": bad}
        assert answer(sim, "POST", CREATE, body=ORDER, headers=headers)[1]["code"] == 513
    wide = {**signed("POST", "", ORDER), "recv-window": "²"}
    assert answer(sim, "POST", CREATE, body=ORDER, headers=wide)[1]["success"] is True


@pytest.mark.parametrize(("body", "code"), [
    (b"{not json", 601), (b"\xff\xfe\x00", 601), (b"[" * 100_000, 601), (b"[1,2]", 600),
    (b'"text"', 600), (b'{"symbol":"BTC_USDT","price":"x","vol":1,"side":1,"type":1,'
                        b'"openType":2}', 600),
])
def test_malformed_bodies_are_600_or_601(body: bytes, code: int) -> None:
    sim = new_sim()
    status, answer_body = answer(sim, "POST", CREATE, body=body,
                                 headers=signed("POST", "", body))
    assert status == 200 and answer_body["code"] == code


@pytest.mark.parametrize(("query", "code"), [
    ("page_num=%C2%B2", 600), ("page_num=" + "9" * 5000, 600), ("page_size=-1", 600),
    ("page_num=1&page_num=2", 0),  # the last one wins, as in MEXC's Java TreeMap
])
def test_malformed_queries_are_600_not_a_crash(query: str, code: int) -> None:
    sim = new_sim()
    path = ENDPOINTS["history_orders"].path_template
    status, body = answer(sim, "GET", path, query=query, headers=signed("GET", query, b""))
    assert status == 200 and body["code"] == code, body


def test_an_oversized_body_is_413() -> None:
    sim = new_sim()
    body = b'{"symbol":"BTC_USDT","pad":"' + b"x" * MAX_BODY_BYTES + b'"}'
    status, answer_body = answer(sim, "POST", CREATE, body=body,
                                 headers=signed("POST", "", body))
    assert status == 413 and answer_body["status"] == 413


_ROUTES = sorted({(ep.method, ep.path_template) for ep in ENDPOINTS.values()})


def _fill(template: str, value: str) -> str:
    return "/".join(value if part.startswith("{") else part for part in template.split("/"))


@settings(FUZZ, max_examples=200)
@given(route=st.sampled_from(_ROUTES), param=st.text(string.printable, min_size=1, max_size=8),
       query=st.text(max_size=30), body=st.binary(max_size=80) | st.sampled_from([ORDER]),
       sign=st.sampled_from(["valid", "none", "garbage"]),
       skew_ms=st.sampled_from([0, 5_000, 10_001, -30_000]))
def test_random_requests_get_documented_answers(route: tuple[str, str], param: str,
                                                query: str, body: bytes, sign: str,
                                                skew_ms: int) -> None:
    sim = new_sim()
    method, template = route
    from urllib.parse import quote

    path = _fill(template, quote(param, safe=""))
    query = quote(query, safe="=&")
    headers: dict[str, str] = {}
    if sign == "valid":
        headers = signed(method, query, body, at_ms=NOW_MS + skew_ms)
    elif sign == "garbage":
        headers = {"apikey": KEY, "request-time": query[:20], "signature": param}
    status, reply = answer(sim, method, path, query=query, body=body, headers=headers)
    assert status in (200, 404, 405, 413)
    if status == 200 and isinstance(reply, dict) and not reply.get("success", True):
        assert reply["code"] in DOCUMENTED, reply


async def _exchange(port: int, head: bytes, chunks: int = 0) -> bytes:
    """Send ``head`` (then ``chunks`` chunks of 1 MiB, concurrently) on a raw socket and
    return the answer's first bytes: the server must answer without reading it all."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream, trio.open_nursery() as nursery:
        await stream.send_all(head)

        async def body() -> None:
            chunk = b"%x\r\n" % (1 << 20) + b"x" * (1 << 20) + b"\r\n"
            for _ in range(chunks):
                await stream.send_all(chunk)

        if chunks:
            nursery.start_soon(body)
        answer = await stream.receive_some(4096)
        nursery.cancel_scope.cancel()
    return answer


async def test_an_oversized_body_over_http_is_refused_early() -> None:
    sim = SimService(clock=SystemClock(), seed=1, drive_market=False)
    sim.add_account(KEY, SECRET, Decimal(10000))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_sim, sim, "127.0.0.1", 0)
            declared = (f"POST {CREATE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Content-Length: {64 << 20}\r\n\r\n").encode()
            assert (await _exchange(port, declared)).startswith(b"HTTP/1.1 413")
            chunked = (f"POST {CREATE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n").encode()
            assert (await _exchange(port, chunked, chunks=64)).startswith(b"HTTP/1.1 413")
            async with httpx.AsyncClient(base_url=rest_base_url("127.0.0.1", port)) as http:
                assert (await http.get("/api/v1/contract/ping")).status_code == 200
            nursery.cancel_scope.cancel()


def _login(req_time: str) -> str:
    return orjson.dumps({"method": "login", "param": {
        "apiKey": KEY, "reqTime": req_time, "signature": "x"}}).decode()


@pytest.mark.parametrize("text", [
    _login("\u00b2"), _login("9" * 5000), "[" * 100_000, "{", '{"method":5}',
    '{"method":"sub.depth","param":{"symbol":[]}}',
])
def test_malformed_ws_requests_are_rs_error(text: str) -> None:
    sim = new_sim()
    [frame] = sim.new_session().receive(text, NOW_MS)
    assert orjson.loads(frame)["channel"] == "rs.error"
