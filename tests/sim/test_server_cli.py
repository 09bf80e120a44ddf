"""``tapeline sim`` (``sim_command``): argument errors are one clear line and a non-zero exit;
a real run prints its URLs and credentials, serves, and stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from adapters.mexc.sim.cli import parse_symbols, sim_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port"),
        (["--port", "abc"], "--port"),
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--symbols", "BTC-USDT"], "BASE_USDT"),
        (["--symbols", "BTC_USDT,BTC_USDT"], "twice"),
        (["--symbols", ","], "at least one symbol"),
        (["--balance", "lots"], "--balance"),
        (["--balance", "-5"], "positive"),
        (["--api-key", "k"], "--api-secret"),
        (["--fault-depth-gaps", "2"], "probability"),
        (["--fault-rest-delay", "-1"], "rest_delay_s"),
        (["--fault-5xx", "-2"], "--fault-5xx"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_arguments_are_one_line_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sim_command, args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_help_lists_the_fault_switches() -> None:
    result = CliRunner().invoke(sim_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--fault-drop-every", "--fault-silent-pongs", "--fault-depth-gaps",
                   "--fault-rest-delay", "--fault-5xx", "--fault-404", "--fault-rate-limit",
                   "--clock-skew", "--seed", "--symbols", "--balance", "--api-key"):  # fmt: skip
        assert option in result.output


def test_symbols_other_than_the_builtin_ones_get_generic_contracts() -> None:
    contracts, prices = parse_symbols("eth_usdt, SOL_USDT")
    assert [c.symbol for c in contracts] == ["ETH_USDT", "SOL_USDT"]
    assert contracts[1].base_coin == "SOL" and prices["SOL_USDT"] == Decimal(100)


def _start(log: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.mexc.sim.cli", "--port", "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while "api_secret" not in printed:  # bounded by the deadline and the process's life
        assert time.monotonic() < deadline, "the simulator did not start in time"
        line = process.stdout.readline()
        assert line, f"the simulator exited early: {log.read_text()[-2000:]}"
        name, _, value = line.strip().partition("=")
        printed[name] = value
    return process, printed


def _stop(process: subprocess.Popen[str], stop: signal.Signals, log: Path) -> None:
    try:
        process.send_signal(stop)
        code = process.wait(timeout=15)
        assert code == 0, f"exit code {code}: {log.read_text()[-2000:]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_run_prints_urls_serves_and_stops_cleanly(stop: signal.Signals, tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    args = ("--seed", "5", "--api-key", "cli-key", "--api-secret", "cli-sec")
    process, printed = _start(log, *args)
    try:
        base = printed["rest_base"]
        assert base.startswith("http://127.0.0.1:")
        assert printed["ws_url"] == base.replace("http://", "ws://") + "/edge"
        assert printed["rest_private"] == base + "/api/v1/private"
        assert (printed["api_key"], printed["api_secret"]) == ("cli-key", "cli-sec")
        answer = httpx.get(base + "/api/v1/contract/ping", timeout=5)
        assert answer.json()["success"] is True
    finally:
        _stop(process, stop, log)


def test_random_credentials_when_none_are_given(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    process, printed = _start(log)
    try:
        assert len(printed["api_key"]) > 10 and len(printed["api_secret"]) >= 32
    finally:
        _stop(process, signal.SIGINT, log)
