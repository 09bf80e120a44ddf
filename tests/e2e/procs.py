"""Real processes for restart and crash tests: ``tapeline sim`` and ``tapeline run``."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

API_KEY = "mx0crashtestkey"
API_SECRET = "crashtestsecret0123456789"


class LineReader:
    """Lines from a child's pipe with a timeout, reading the raw fd (no hidden buffering)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""

    def read_line(self, timeout_s: float) -> str | None:
        """The next line, or None when none is complete within ``timeout_s`` (or at EOF)."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sel = selectors.DefaultSelector()
            sel.register(self.fd, selectors.EVENT_READ)
            try:
                ready = sel.select(left)
            finally:
                sel.close()
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace") + "\n"


class SimProcess:
    """``tapeline sim`` on 127.0.0.1 with fixed credentials."""

    def __init__(self, seed: int = 1) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "sim",
                "--port",
                "0",
                "--seed",
                str(seed),
                "--api-key",
                API_KEY,
                "--api-secret",
                API_SECRET,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.urls: dict[str, str] = {}
        assert self.proc.stdout is not None
        reader = LineReader(self.proc.stdout)
        for _ in range(50):
            line = reader.read_line(20.0)
            if line is None:
                break
            if "=" in line:
                key, _, value = line.strip().partition("=")
                self.urls[key] = value
            if line.startswith("serving"):
                return
        self.stop()
        raise RuntimeError(f"simulator did not start: {self.urls}")

    def stop(self) -> None:
        """Interrupt and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def write_config(path: Path, sim: SimProcess) -> Path:
    """A config pointing ``--mode live`` at the simulator process."""
    path.write_text(
        '[run]\nstatus_every_s = 0.5\nsynchronous = "FULL"\n'
        "[mexc]\n"
        f'rest_base = "{sim.urls["rest_base"]}"\n'
        f'ws_url = "{sim.urls["ws_url"]}"\n'
        "[strategy]\nquote_every_s = 0.5\n"
    )
    return path


def engine_env() -> dict[str, str]:
    """The environment for an engine process: the simulator's keys."""
    return {
        **os.environ,
        "MEXC_API_KEY": API_KEY,
        "MEXC_API_SECRET": API_SECRET,
        "PYTHONUNBUFFERED": "1",
    }


def start_engine(config: Path, journal: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``tapeline run --mode live`` against the simulator."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "run",
            "--mode",
            "live",
            "--strategy",
            "market-maker",
            "--config",
            str(config),
            "--journal",
            str(journal),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=engine_env(),
    )


def wait_status_lines(
    proc: subprocess.Popen[bytes], count: int, timeout_s: float = 30.0
) -> list[str]:
    """Read the engine's output until ``count`` status lines have passed."""
    assert proc.stdout is not None
    reader = LineReader(proc.stdout)
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while sum(1 for line in seen if " ev/s " in line) < count:
        left = deadline - time.monotonic()
        line = reader.read_line(max(left, 0.01))
        if line is None:
            raise AssertionError("engine stalled; output so far:\n" + "".join(seen))
        seen.append(line)
    return seen
