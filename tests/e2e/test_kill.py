"""The kill switch on request: `tapeline kill JOURNAL` trips a running engine; the operator
is alerted through the configured webhook on 127.0.0.1; open orders are cancelled."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

from engine.journal import Journal
from tests.e2e.procs import SimProcess, start_engine, wait_status_lines, write_config


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_tapeline_kill_trips_cancels_alerts_and_exits_nonzero(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sim = SimProcess(seed=2)
    try:
        config = write_config(tmp_path / "tapeline.toml", sim)
        with config.open("a") as f:
            f.write(f'[alerts]\nwebhook = "http://127.0.0.1:{server.server_port}/hook"\n')
        journal = tmp_path / "j.sqlite"
        engine = start_engine(config, journal)
        wait_status_lines(engine, 3)
        kill = subprocess.run(
            [sys.executable, "-m", "engine.cli", "kill", str(journal)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert kill.returncode == 0, kill.stderr
        out, _ = engine.communicate(timeout=60)
        text = out.decode()
        assert engine.returncode == 2, text
        assert "KILL SWITCH" in text and "operator request" in text
    finally:
        sim.stop()
        server.shutdown()
        server.server_close()
    assert _Hook.received and _Hook.received[0]["event"] == "kill_switch"
    assert "operator request" in _Hook.received[0]["reason"]
    with Journal.open(journal, readonly=True) as j:
        assert j.verify().ok
        kinds = [ev.kind for ev in j.read()]
    trip = kinds.index("engine.kill_switch")
    assert "rest.order_cancel_all" in kinds[trip:]


def test_kill_without_a_running_session_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "kill", str(tmp_path / "j.sqlite")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: no session is writing")
    assert "Traceback" not in result.stderr
