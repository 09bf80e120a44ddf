"""The session report in a real headless browser (Debian's ``chromium``).

The page is opened from a ``file://`` URL with background networking off. Two runs:
``--dump-dom`` of a copy with a probe script appended (it records where each chart is laid
out and what the hover read-out says, into an element at the end of the page, so the charts
above it do not move), and ``--screenshot`` of the report itself. The screenshot is decoded
with a stdlib PNG reader and must show a rendered page whose chart areas hold the charts'
colours.

CI installs Chromium before the tests (``apt-get install -y chromium``); without it these
tests fail, they are not skipped.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli_report import build_report, write_report
from engine.report import COLORS
from tests.browser.png import Image, read_png
from tests.report_session import record_eventful_session_sync

WIDTH, HEIGHT = 1280, 2400
MAX_HEIGHT = 6000
TIMEOUT_S = 90
CHARTS = {  # probe name -> CSS selector of the chart's <svg>
    "equity": "#equity svg.equity", "pnl": "#equity svg.pnl",
    "position": "#positions svg.position", "price": "#prices svg.price",
    "latency": "#latency svg.hist", "anomalies": "#anomalies svg.timeline",
}
PROBE = """<script>
(function(){
  var out = {charts: {}, height: document.documentElement.scrollHeight,
             dpr: window.devicePixelRatio};
  var sel = %s;
  Object.keys(sel).forEach(function(k){
    var el = document.querySelector(sel[k]); if (!el) return;
    var r = el.getBoundingClientRect();
    out.charts[k] = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
  });
  var eq = document.querySelector('#equity svg.equity'), r = eq.getBoundingClientRect();
  eq.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width * 0.6,
                                                clientY: r.top + r.height / 2, bubbles: true}));
  var tip = eq.parentNode.querySelector('.hover');
  out.hover = tip ? tip.textContent : null;
  out.hover_shown = tip ? getComputedStyle(tip).display : null;
  var pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium not found: install Debian's chromium package "
                    "(apt-get install -y chromium)", pytrace=False)
    return found


def _browser(tmp: Path, *args: str, url: str,
             height: int = HEIGHT) -> subprocess.CompletedProcess[bytes]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", *args, url]
    env = {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, env=env, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Any]]:
    _chromium()
    tmp = tmp_path_factory.mktemp("browser")
    journal = tmp / "session.sqlite"
    record_eventful_session_sync(journal, duration_s=60)
    data, page = build_report(journal)
    out = tmp / "report.html"
    write_report(page, out)
    yield out, page, data


@pytest.fixture(scope="module")
def probe(report: tuple[Path, str, Any]) -> dict[str, Any]:
    out, page, _ = report
    copy = out.with_name("probe.html")
    copy.write_text(page.replace("</body>", PROBE % json.dumps(CHARTS) + "</body>"))
    dom = _browser(out.parent, "--dump-dom", url=copy.as_uri()).stdout.decode()
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe script did not run: " + dom[-500:]
    return {"dom": dom, **json.loads(html.unescape(found.group(1)))}


@pytest.fixture(scope="module")
def shot(report: tuple[Path, str, Any], probe: dict[str, Any]) -> Image:
    """The whole page: the window is as tall as the page the probe measured."""
    out, _, _ = report
    png = out.with_name("shot.png")
    assert HEIGHT <= probe["height"] <= MAX_HEIGHT, probe["height"]
    _browser(out.parent, f"--screenshot={png}", url=out.as_uri(), height=probe["height"])
    assert png.exists() and png.stat().st_size > 10_000
    return read_png(png)


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _count(img: Image, box: list[float], color: str, tol: int = 6) -> int:
    """Pixels within ``tol`` of ``color`` inside ``box`` (left, top, width, height)."""
    r0, g0, b0 = _rgb(color)
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(box[0] + box[2]), img.width), min(int(box[1] + box[3]), img.height)
    n = 0
    for y in range(y0, y1):
        row = img.rows[y]
        for x in range(x0, x1):
            i = 3 * x
            if (abs(row[i] - r0) <= tol and abs(row[i + 1] - g0) <= tol
                    and abs(row[i + 2] - b0) <= tol):
                n += 1
    return n


def test_the_browser_ran_the_page_and_built_the_charts(
        probe: dict[str, Any], report: tuple[Path, str, Any]) -> None:
    _, page, _ = report
    dom = probe["dom"]
    assert 'data-report-ready="1"' in dom  # the page's script ran
    assert dom.count("<svg") == page.count("<svg") >= 6
    assert dom.count('class="fill-marker') == page.count('class="fill-marker') > 10
    assert dom.count('class="bar"') > 3
    assert set(probe["charts"]) == set(CHARTS)
    for name, (_, _, w, h) in probe["charts"].items():
        assert w > 600 and h > 60, (name, w, h)  # laid out at a readable size


def test_the_hover_read_out_shows_time_and_values(probe: dict[str, Any]) -> None:
    assert probe["hover_shown"] == "block"
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3} UTC", probe["hover"]), probe["hover"]
    assert re.search(r"equity USDT: 99\d\d|equity USDT: 100\d\d", probe["hover"])


def test_the_screenshot_is_a_rendered_page_not_a_blank_one(shot: Image,
                                                           probe: dict[str, Any]) -> None:
    assert (shot.width, shot.height) == (WIDTH, probe["height"])
    colours = {shot.rows[y][x:x + 3] for y in range(0, shot.height, 3)
               for x in range(0, 3 * shot.width, 9)}
    assert len(colours) > 300
    header = shot.rgb(WIDTH // 2, 10)
    assert max(header) < 60  # the dark page header is painted


def test_each_chart_area_holds_its_colours(shot: Image, probe: dict[str, Any]) -> None:
    boxes = probe["charts"]
    expect = {
        "equity": ["equity"], "pnl": ["realised", "pnl"], "position": ["long", "short"],
        "price": ["mid", "buy", "sell"], "latency": ["latency"],
    }
    for chart, roles in expect.items():
        for role in roles:
            n = _count(shot, boxes[chart], COLORS[role])
            assert n > 40, (chart, role, n)
    # the equity line is where the equity chart is, not elsewhere
    inside = _count(shot, boxes["equity"], COLORS["equity"])
    elsewhere = sum(_count(shot, boxes[c], COLORS["equity"]) for c in boxes if c != "equity")
    assert inside > 10 * max(elsewhere, 1)
    # the latency bars are a solid block of colour
    assert _count(shot, boxes["latency"], COLORS["latency"]) > 2000


def test_the_anomaly_timeline_shows_its_marks(shot: Image, probe: dict[str, Any],
                                              report: tuple[Path, str, Any]) -> None:
    from engine.report import ANOMALY_COLORS

    _, _, data = report
    box = probe["charts"]["anomalies"]
    for kind in ("gap", "resync", "rate_limit"):
        assert kind in data.anomaly_counts
        assert _count(shot, box, ANOMALY_COLORS[kind], tol=8) > 20, kind
