"""Backtests: recorded market data drives another strategy against the simulator's matching
engine in virtual time, into a journal that replays and verifies like a live one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from adapters.mexc.interpret import interpret
from adapters.mexc.sim.contracts import BTC_USDT
from engine.backtest import BacktestError, run_backtest
from engine.cli_audit import standalone_cli
from engine.journal import Journal
from engine.model import Fill
from engine.replay import replay_session
from tests.recording import Recorder, record_session

TAKER = '''
from decimal import Decimal
from engine.commands import PlaceOrder
from engine.events import TimerFired
from engine.model import OpenType, OrderType, Side
from engine.strategy import Strategy


class Taker(Strategy):
    """Buys 2 at the ask on the first tick, sells them at the bid on the third."""

    name = "taker"
    version = "1"

    def on_start(self, ctx):
        self.ctx, self.ticks = ctx, 0
        ctx.set_timer("take", 1.0)

    def on_event(self, view, event):
        if not isinstance(event, TimerFired):
            return ()
        self.ticks += 1
        book = view.book("BTC_USDT")
        if book is None or not book.synced or self.ticks not in (1, 3):
            return ()
        buy = self.ticks == 1
        price = book.best_ask()[0] if buy else book.best_bid()[0]
        return [PlaceOrder("BTC_USDT", Side.OPEN_LONG if buy else Side.CLOSE_LONG,
                           OrderType.IOC, Decimal(2), self.ctx.new_oid(), price=price,
                           open_type=OpenType.ISOLATED, leverage=10)]
'''


def run(*args: object) -> Result:
    return CliRunner().invoke(standalone_cli(), [str(a) for a in args])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    base = tmp_path_factory.mktemp("bt")
    rec = record_session(base / "recorded.sqlite", steps=500, seed=21)
    plugin = base / "taker.py"
    plugin.write_text(TAKER)
    return rec.path, rec.session, plugin


def test_a_different_strategy_trades_recorded_liquidity_and_replays(
        source: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, session, plugin = source
    out = tmp_path / "bt.sqlite"
    with Journal.open(path, readonly=True) as src, Journal.open(out, synchronous="NORMAL") as o:
        result = run_backtest(src, session, f"{plugin}:Taker", None, o, latency_ms=7,
                              taker_fee=Decimal("0.001"))
        src_depth = [(ev.ts_ns, ev.body) for ev in src.read(session=session,
                                                            kinds=["ws.push.depth"])]
    assert result.orders == 2 and result.fills >= 2 and result.denied == 0
    with Journal.open(out, readonly=True) as j:
        info = j.session(result.session)
        assert info.mode == "backtest" and info.strategy == "taker"
        meta = orjson.loads(info.meta)
        assert meta["backtest"]["source_session"] == session
        assert meta["backtest"]["latency_ms"] == 7
        # the recorded market frames are journaled verbatim, at their recorded times
        assert [(ev.ts_ns, ev.body) for ev in j.read(kinds=["ws.push.depth"])] == src_depth
        intents = list(j.read(kinds=["cmd.place_order"]))
        answers = {ev.stream: ev for ev in j.read(kinds=["rest.order_create"])}
        accepted = {ev.stream: ev.seq for ev in j.read(kinds=["risk.accepted"])}
        for intent in intents:
            answer = answers[intent.stream]
            record = orjson.loads(answer.body)
            assert answer.cause == accepted[intent.stream]  # as the sequencer dispatches
            assert record["sent_ns"] == intent.ts_ns
            assert answer.ts_ns == intent.ts_ns + 14_000_000  # there and back
            assert orjson.loads(record["body"])["success"] is True
        fills = [v for ev in j.read(kinds=["ws.push.personal.order.deal"])
                 for v in interpret(ev) if isinstance(v, Fill)]
        assert {f.external_oid for f in fills} == {i.stream for i in intents}
        for f in fills:  # taker fills at the overridden fee rate
            assert f.is_taker and f.fee == f.price * f.vol * BTC_USDT.contract_size * Decimal(
                "0.001")
        replayed = replay_session(j, result.session)
    assert replayed.identical, replayed.lines()
    assert replayed.compared > 0


def test_the_market_maker_backtests_with_another_config(source: tuple[Path, str, Path],
                                                        tmp_path: Path) -> None:
    path, session, _ = source
    outs = []
    for name in ("a.sqlite", "b.sqlite"):
        with Journal.open(path, readonly=True) as src, Journal.open(
                tmp_path / name, synchronous="NORMAL") as o:
            outs.append(run_backtest(src, session, "market-maker",
                                     {"offset_ticks": 2, "quote_every_s": 1.0}, o,
                                     latency_ms=2, depth_levels=5))
    a, b = outs
    assert a.orders > 10 and a.fills > 0
    assert (a.orders, a.fills, a.fees, a.realised_pnl, a.end_equity) == (
        b.orders, b.fills, b.fees, b.realised_pnl, b.end_equity)  # deterministic
    with Journal.open(tmp_path / "a.sqlite", readonly=True) as j:
        assert replay_session(j, a.session).identical


def test_backtest_cli_then_replay(source: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, _, plugin = source
    out = tmp_path / "cli-bt.sqlite"
    config = tmp_path / "mm.toml"
    config.write_text("[strategy]\noffset_ticks = 1\nquote_every_s = 2.0\n")
    result = run("backtest", path, "--strategy", "market-maker", "--config", config,
                 "-o", out, "--latency-ms", 3, "--maker-fee", "0")
    assert result.exit_code == 0, result.output + result.stderr
    assert "fills:" in result.output and str(out) in result.output
    replayed = run("replay", out)
    assert replayed.exit_code == 0 and "identical" in replayed.output
    default_out = run("backtest", path, "--strategy", f"{plugin}:Taker")
    assert default_out.exit_code == 0
    assert (path.parent / "recorded-backtest.sqlite").exists()


def test_backtest_errors_are_one_line(source: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, session, _ = source
    empty = tmp_path / "empty.sqlite"
    with Journal.open(empty, synchronous="NORMAL") as j:
        rec = Recorder(j, None, mode="record")
        rec.feed(rec.contract_detail())
    for args, code, text in (
            (("backtest", path, "--strategy", "nope"), 1, "unknown strategy"),
            (("backtest", empty, "--strategy", "market-maker", "-o", tmp_path / "o.sqlite"), 1,
             "no market data"),
            (("backtest", path, "--strategy", "market-maker", "--maker-fee", "cheap"), 2,
             "not a number"),
            (("backtest", path), 2, "--strategy")):
        result = run(*args)
        assert result.exit_code == code, (args, result.output, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and text in lines[0], result.stderr
    with Journal.open(path, readonly=True) as src, Journal.open(
            tmp_path / "x.sqlite", synchronous="NORMAL") as o, pytest.raises(BacktestError):
        run_backtest(src, session, "market-maker", {"no_such_option": 1}, o)
