"""``tapeline report``: the page's sections and charts hold the journal's data, it refers to
nothing outside itself, memory stays bounded, and failures are one line."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from engine import report_data
from engine.audit import anomalies, export_rows
from engine.cli_audit import OneLineGroup
from engine.cli_report import SECTIONS, build_report, report_command
from engine.journal import Journal
from engine.report import latency_bins
from engine.report_data import Sampler
from tests.recording import record_session
from tests.report_session import record_eventful_session_sync


def cli() -> click.Group:
    """A group like ``tapeline``'s, whose usage errors are one line (as ``engine.cli``)."""
    group = OneLineGroup("tapeline")
    group.add_command(report_command, "report")
    return group


def run(*args: object) -> Result:
    return CliRunner().invoke(cli(), ["report", *(str(a) for a in args)])


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], section: str | None,
                 in_tbody: bool) -> None:
        self.tag, self.attrs, self.section, self.in_tbody = tag, attrs, section, in_tbody

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Page(HTMLParser):
    """Every element with its attributes and the section it is in; text by section."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.sections: list[str] = []
        self.text: dict[str | None, list[str]] = {}
        self._section: str | None = None
        self._tbody = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._section = a.get("id")
            self.sections.append(a.get("id", ""))
        if tag == "tbody":
            self._tbody = True
        self.elements.append(Element(tag, a, self._section, self._tbody))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        if tag == "tbody":
            self._tbody = False

    def handle_data(self, data: str) -> None:
        self.text.setdefault(self._section, []).append(data)

    def find(self, tag: str | None = None, *, cls: str | None = None,
             section: str | None = None, **attrs: str) -> list[Element]:
        return [e for e in self.elements
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)
                and (section is None or e.section == section)
                and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def section_text(self, section: str) -> str:
        return " ".join(self.text.get(section, []))


@pytest.fixture(scope="module")
def eventful(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("report") / "eventful.sqlite"
    record_eventful_session_sync(path, duration_s=60)
    with Journal.open(path, readonly=True) as j:
        (info,) = j.sessions()
    return path, info.id


@pytest.fixture(scope="module")
def rendered(eventful: tuple[Path, str]) -> tuple[Path, str, Page, Result]:
    path, _ = eventful
    out = path.with_name("report.html")
    result = run(path, "-o", out)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    return out, text, Page(text), result


def _points(el: Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in
            (p.split(",") for p in el.attrs["points"].split())]


# --------------------------------------------------------------------------- structure


def test_the_page_has_every_section_in_order(rendered: tuple[Path, str, Page, Result]) -> None:
    _, _, page, _ = rendered
    assert page.sections == list(SECTIONS)


def test_the_summary_line_names_the_file_its_size_and_the_sections(
        rendered: tuple[Path, str, Page, Result], eventful: tuple[Path, str]) -> None:
    out, _, _, result = rendered
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"wrote {out} (") and "KiB" in last
    assert eventful[1] in last and ", ".join(SECTIONS) in last
    assert "report: reading session" in result.stderr  # progress goes to stderr


def test_metadata_names_the_session_code_and_configuration(
        rendered: tuple[Path, str, Page, Result], eventful: tuple[Path, str]) -> None:
    _, _, page, _ = rendered
    path, sid = eventful
    with Journal.open(path, readonly=True) as j:
        info = j.session(sid)
        total = j.info().events
    meta = page.section_text("metadata")
    for expected in (sid, "sim", "market-maker", f"version {info.strategy_version}",
                     info.engine_version, info.parser_version, info.config_hash,
                     "2026-01-01T00:00:00.000+00:00", "1 min 00 s", f"{info.events:,}",
                     f"{total:,} events", "OK"):
        assert expected is not None and str(expected) in meta, expected


def test_the_equity_curve_is_drawn_from_many_sampled_points(
        rendered: tuple[Path, str, Page, Result]) -> None:
    _, _, page, _ = rendered
    (equity,) = page.find("polyline", section="equity", data_series="equity USDT")
    pts = _points(equity)
    assert 100 < len(pts) <= 2 * 4 * report_data.BUCKETS  # a step line doubles the points
    assert len({round(y) for _, y in pts}) > 5  # it moves
    xs = [x for x, _ in pts]
    assert xs == sorted(xs)
    pnl = {e.attrs["data-series"] for e in page.find("polyline", section="equity")}
    assert {"realised PnL", "equity change USDT"} <= pnl


def test_positions_show_both_sides(rendered: tuple[Path, str, Page, Result]) -> None:
    _, _, page, _ = rendered
    names = {e.attrs["data-series"]: len(_points(e))
             for e in page.find("polyline", section="positions")}
    assert names.keys() == {"BTC_USDT long", "BTC_USDT short (−)"}
    assert min(names.values()) > 10


def test_every_fill_in_the_journal_is_a_marker_on_the_price_chart(
        rendered: tuple[Path, str, Page, Result], eventful: tuple[Path, str]) -> None:
    _, _, page, _ = rendered
    path, sid = eventful
    with Journal.open(path, readonly=True) as j:
        fills = list(export_rows(j, "fills", session=sid)[1])
    assert len(fills) > 10
    markers = page.find("path", cls="fill-marker", section="prices")
    assert len(markers) == len(fills)
    buys = sum(1 for f in fills if f["side"] in ("open_long", "close_short"))
    assert len([m for m in markers if "buy" in m.classes]) == buys
    assert len(page.find("polyline", section="prices", data_series="BTC_USDT mid")) == 1
    assert page.find("rect", cls="band", section="prices")  # the dropped connections


def test_latency_bars_sum_to_the_answered_placements(
        rendered: tuple[Path, str, Page, Result], eventful: tuple[Path, str]) -> None:
    _, _, page, _ = rendered
    path, sid = eventful
    intents: set[str] = set()
    answered: set[str] = set()
    with Journal.open(path, readonly=True) as j:
        for ev in j.read(session=sid, kinds=["cmd.place_order", "rest.order_create"]):
            assert ev.stream is not None
            if ev.kind == "cmd.place_order":
                intents.add(ev.stream)
            elif ev.stream in intents:
                answered.add(ev.stream)
    bars = page.find("rect", cls="bar", section="latency")
    assert len(bars) > 3
    assert sum(int(b.attrs["data-count"]) for b in bars) == len(answered) > 20
    assert f"answered placements {len(answered)}" in " ".join(
        page.section_text("latency").split())


def test_anomalies_are_on_the_timeline_and_in_the_table(
        rendered: tuple[Path, str, Page, Result], eventful: tuple[Path, str]) -> None:
    _, _, page, _ = rendered
    path, sid = eventful
    with Journal.open(path, readonly=True) as j:
        found = list(anomalies(j, session=sid))
    kinds = Counter(a.kind for a in found)
    assert {"gap", "resync", "disconnect", "reconnect", "rate_limit"} <= kinds.keys()
    lanes = {e.attrs["data-kind"]: int(e.attrs["data-count"])
             for e in page.find("g", cls="lane", section="anomalies")}
    # each gap is listed once, not once as the fold found it and once as journaled
    gaps = {a.detail.removesuffix(" (journaled)") for a in found if a.kind == "gap"}
    assert lanes == {**kinds, "gap": len(gaps)}
    marks = page.find("rect", cls="mark", section="anomalies")
    assert len(marks) >= len(kinds)
    assert page.find("rect", cls="band", section="anomalies")  # disconnected intervals
    rows = [e for e in page.find("tr", section="anomalies") if e.in_tbody]
    assert len(rows) == len(found) - (sum(1 for a in found if a.kind == "gap") - len(gaps))


def test_the_order_summary_matches_the_fold(
        rendered: tuple[Path, str, Page, Result], eventful: tuple[Path, str]) -> None:
    _, _, page, _ = rendered
    path, sid = eventful
    with Journal.open(path, readonly=True) as j:
        orders = list(export_rows(j, "orders", session=sid)[1])
        fills = list(export_rows(j, "fills", session=sid)[1])
    text = " ".join(page.section_text("orders").split())
    for status, n in Counter(o["status"] for o in orders).items():
        assert f"{status} {n}" in text
    assert f"total {len(orders)}" in text
    assert f"fills {len(fills)}" in text
    fees = sum(float(f["fee"]) for f in fills)
    assert f"fees USDT {fees:,.6f}" in text


def test_the_page_refers_to_nothing_outside_itself(
        rendered: tuple[Path, str, Page, Result]) -> None:
    _, text, page, _ = rendered
    for el in page.elements:
        for attr in ("src", "href", "xlink:href", "action", "data"):
            value = el.attrs.get(attr, "")
            assert not value.startswith(("http:", "https:", "//", "file:")), (el.tag, value)
        assert el.tag not in ("link", "iframe", "img", "object", "embed"), el.tag
        assert not (el.tag == "script" and "src" in el.attrs)
    assert "url(" not in text and "@import" not in text
    assert "fetch(" not in text and "XMLHttpRequest" not in text


def test_the_same_journal_gives_the_same_page(eventful: tuple[Path, str],
                                              rendered: tuple[Path, str, Page, Result]) -> None:
    _, text, _, _ = rendered
    assert build_report(eventful[0])[1] == text


# --------------------------------------------------------------------------- bounded memory


def test_a_sampler_keeps_at_most_four_points_a_bucket_including_the_extremes() -> None:
    rng = random.Random(5)
    s = Sampler(0, 1_000_000, buckets=100)
    values = []
    for i in range(200_000):
        v = rng.gauss(0, 1)
        values.append(v)
        s.add(i * 5, v)
    pts = s.points()
    assert len(pts) <= 400 and s.count == 200_000
    got = [v for _, v in pts]
    assert max(got) == max(values) and min(got) == min(values)
    assert pts[0] == (0, values[0]) and pts[-1] == (999_995, values[-1])


def test_fill_markers_are_capped_but_every_fill_is_counted(
        eventful: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_data, "MAX_FILL_MARKS", 7)
    data, page = build_report(eventful[0])
    assert len(data.fills) <= 7 and data.fill_stride > 1
    assert data.fills_total > 20
    assert page.count('class="fill-marker') == len(data.fills)
    assert f"{data.fills_total:,} fills: every {data.fill_stride}th is marked" in page


def test_latency_bins_count_every_value_and_gather_the_tail() -> None:
    values = [5.0 + i % 20 for i in range(500)] + [900.0, 1500.0]
    bins, overflow = latency_bins(values)
    assert sum(c for _, _, c in bins) == len(values)
    assert overflow and bins[-1][2] == 2
    same, tail = latency_bins([0.0] * 10)
    assert sum(c for _, _, c in same) == 10 and not tail and len(same) > 1
    assert latency_bins([]) == ([], False)


# --------------------------------------------------------------------------- sessions


def test_the_last_session_is_the_default_and_a_prefix_picks_another(tmp_path: Path) -> None:
    path = tmp_path / "two.sqlite"
    first = record_session(path, steps=120, seed=1).session
    second = record_session(path, steps=120, seed=2).session
    result = run(path, "-o", tmp_path / "last.html")
    assert result.exit_code == 0, result.output
    assert second in (tmp_path / "last.html").read_text()
    result = run(path, "--session", first[:6], "-o", tmp_path / "first.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "first.html").read_text()
    assert first in page and second not in page and "(2 sessions)" in page
    default = run(path, "--session", first)
    assert default.exit_code == 0
    assert (tmp_path / f"two-{first[:8]}.html").exists()


def test_a_later_sessions_report_counts_its_own_rows_from_the_state_before_it(
        tmp_path: Path) -> None:
    path = tmp_path / "two.sqlite"
    record_session(path, steps=120, seed=1)
    record_session(path, steps=120, seed=2)
    with Journal.open(path, readonly=True) as j:
        first, second = j.sessions()
        kinds = {info.id: Counter(ev.kind for ev in j.read(session=info.id))
                 for info in (first, second)}
    for info in (first, second):
        d = build_report(path, info.id)[0]
        assert sum(d.by_source.values()) == info.events
        assert d.by_kind == kinds[info.id]  # its own rows, not the earlier session's
    assert kinds[first.id] != kinds[second.id]


def test_a_broken_chain_is_reported_on_the_page_and_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite"
    record_session(path, steps=60)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET body = replace(body, '10000', '10001') WHERE seq = 5")
    conn.close()
    result = run(path, "-o", tmp_path / "t.html")
    assert result.exit_code == 0, result.output
    assert "warning: the journal's hash chain is broken at seq" in result.stderr
    page = Page((tmp_path / "t.html").read_text())
    assert "BROKEN at seq" in page.section_text("metadata")
    assert page.find("div", cls="banner")


# --------------------------------------------------------------------------- errors


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("report: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("make, expected, code", [
    (lambda d: d / "missing.sqlite", "no such journal file", 1),
    (lambda d: _write(d / "notes.txt", b"hello, not a database\n" * 100), "not a tapeline", 1),
    (lambda d: _write(d / "empty.sqlite", b""), "empty file", 1),
    (lambda d: d, "is a directory", 2),
])
def test_a_missing_or_foreign_file_is_one_line(tmp_path: Path, make: Any, expected: str,
                                               code: int) -> None:
    line = one_line_error(run(make(tmp_path), "-o", tmp_path / "r.html"), code)
    assert expected in line
    assert not (tmp_path / "r.html").exists()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_an_unknown_session_is_one_line(eventful: tuple[Path, str], tmp_path: Path) -> None:
    line = one_line_error(run(eventful[0], "--session", "nosuch", "-o", tmp_path / "r.html"))
    assert "no session 'nosuch'" in line


@pytest.mark.parametrize("where, expected", [
    ("missing-dir/r.html", "does not exist"),
    (".", "is a directory"),
    ("afile/r.html", "does not exist"),
])
def test_an_unwritable_output_is_one_line_before_any_work(
        eventful: tuple[Path, str], tmp_path: Path, where: str, expected: str) -> None:
    (tmp_path / "afile").write_text("x")
    result = run(eventful[0], "-o", tmp_path / where)
    assert expected in one_line_error(result)
    assert "report: reading" not in result.stderr  # refused before reading the journal


def test_a_read_only_directory_is_one_line(eventful: tuple[Path, str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("engine.cli_report.tempfile.mkstemp", refuse)
    line = one_line_error(run(eventful[0], "-o", tmp_path / "r.html"))
    assert "cannot write the report: Permission denied" in line
    assert list(tmp_path.iterdir()) == []
