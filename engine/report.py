"""The session report: HTML sections around the SVG charts (pure: data in, text out).

:func:`render_html` turns a :class:`~engine.report_data.ReportData` into one HTML document
with inline CSS, inline SVG (:mod:`engine.report_svg`) and a few lines of inline JavaScript
(a hover read-out of time and values on the time charts; everything reads without it).
Nothing on the page refers to another file or to the network. ``tapeline report``
(:mod:`engine.cli_report`) gathers the data and writes the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Final

from engine.report_data import MAX_ANOMALY_ROWS, ReportData
from engine.report_svg import Band, Lane, Marker, Series, fmt_num, histogram, time_chart, timeline

__all__ = ["ANOMALY_COLORS", "COLORS", "SECTIONS", "latency_bins", "percentile", "render_html"]

SECTIONS: Final = ("metadata", "summary", "equity", "positions", "prices", "latency",
                   "anomalies", "orders")
"""The page's sections, in order (each is a ``<section id=...>``)."""

COLORS: Final = {
    "equity": "#2563eb", "realised": "#059669", "pnl": "#7c3aed", "long": "#0d9488",
    "short": "#e11d48", "mid": "#475569", "last": "#0891b2", "fair": "#d97706",
    "buy": "#16a34a", "sell": "#dc2626", "latency": "#6366f1", "outage": "#ef4444",
}
"""The charts' colours by role (the browser test looks for them on the screenshot)."""
ANOMALY_COLORS: Final = {
    "gap": "#f59e0b", "resync": "#10b981", "disconnect": "#ef4444", "reconnect": "#3b82f6",
    "rate_limit": "#a855f7", "http_error": "#92400e", "decode_error": "#ec4899",
    "unknown_outcome": "#f97316", "kill_switch": "#7f1d1d", "reconcile_difference": "#0ea5e9",
    "strategy_failed": "#be123c",
}
_SHORT: Final = {"rate_limit": "rate limit", "http_error": "HTTP 5xx",
                 "decode_error": "decode error", "unknown_outcome": "unknown outcome",
                 "kill_switch": "kill switch", "reconcile_difference": "reconcile diff",
                 "strategy_failed": "strategy failed"}
_STATUS_COLORS: Final = {
    "filled": "#16a34a", "partially_filled": "#65a30d", "open": "#2563eb",
    "cancelled": "#6b7280", "denied": "#d97706", "rejected": "#dc2626", "unknown": "#f97316",
    "invalid": "#7f1d1d",
}

_CSS: Final = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:24px 20px 40px}
header.top{background:#111827;color:#f9fafb;padding:22px 0 18px}
header.top .inner{max-width:1200px;margin:0 auto;padding:0 20px}
header.top h1{margin:0;font-size:22px;font-weight:650;letter-spacing:.2px}
header.top .sub{color:#9ca3af;margin-top:4px}
.badge{display:inline-block;padding:2px 9px;border-radius:999px;font-size:12px;
font-weight:600;margin-left:8px;vertical-align:2px}
.ok{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}
.banner{background:#fee2e2;color:#991b1b;border:1px solid #fecaca;border-radius:8px;
padding:10px 14px;margin-bottom:16px;font-weight:600}
section{background:#fff;border-radius:10px;box-shadow:0 1px 2px rgba(0,0,0,.06),
0 1px 8px rgba(0,0,0,.04);padding:18px 20px 16px;margin:0 0 18px}
section h2{margin:0 0 4px;font-size:16px;font-weight:650}
section p.note{margin:0 0 10px;color:#6b7280;font-size:13px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px}
.tile{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}
.tile .k{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.tile .v{font-size:20px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.tile .s{color:#6b7280;font-size:12px}
.pos{color:#047857}.neg{color:#b91c1c}
dl.meta{display:grid;grid-template-columns:190px 1fr 190px 1fr;gap:6px 14px;margin:0}
dl.meta dt{color:#6b7280}dl.meta dd{margin:0;font-variant-numeric:tabular-nums;
overflow-wrap:anywhere}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;
padding:1px 5px;border-radius:4px}
figure{margin:6px 0 0;position:relative}
figure figcaption{font-size:13px;font-weight:600;color:#374151;margin:8px 0 2px}
svg.chart{width:100%;height:auto;display:block}
svg .tick{font-size:12px;fill:#6b7280;font-family:inherit}
svg .axis-label{font-size:12px;fill:#6b7280}
svg .empty{font-size:14px;fill:#9ca3af}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;color:#374151;
margin:2px 0 0 124px}
.legend i{display:inline-block;width:14px;height:4px;border-radius:2px;margin-right:6px;
vertical-align:3px}
.legend i.tri{width:0;height:0;border-radius:0;border-left:6px solid transparent;
border-right:6px solid transparent;background:none!important;vertical-align:1px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #f0f1f3;vertical-align:top}
th{font-size:12px;color:#6b7280;font-weight:600;text-transform:uppercase;letter-spacing:.3px;
background:#fafafa}
td.num,th.num{text-align:right}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px;align-items:start}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;color:#fff;font-size:12px;
font-weight:600}
.scroll{max-height:420px;overflow:auto;border:1px solid #f0f1f3;border-radius:6px}
.hover{position:absolute;pointer-events:none;background:rgba(17,24,39,.92);color:#f9fafb;
font-size:12px;padding:6px 8px;border-radius:6px;white-space:nowrap;display:none;z-index:2}
footer{color:#9ca3af;font-size:12px;text-align:center;margin-top:8px}
"""

_JS: Final = """
(function(){
  document.documentElement.setAttribute('data-report-ready','1');
  function fmtTime(ns){var d=new Date(ns/1e6);return d.toISOString().slice(11,23)+' UTC';}
  document.querySelectorAll('figure').forEach(function(fig){
    var svg=fig.querySelector('svg.tchart');if(!svg||!svg.dataset.plot)return;
    var p=svg.dataset.plot.split(' ').map(Number),t0=+svg.dataset.t0,t1=+svg.dataset.t1;
    var lines=[].map.call(svg.querySelectorAll('polyline.series'),function(pl){
      var v=(pl.dataset.values||'').split(',').filter(Boolean).map(function(s){
        var i=s.indexOf(':');return [+s.slice(0,i),s.slice(i+1)];});
      return {name:pl.dataset.series,color:pl.getAttribute('stroke'),v:v};});
    var tip=document.createElement('div');tip.className='hover';fig.appendChild(tip);
    var guide=document.createElementNS('http://www.w3.org/2000/svg','line');
    guide.setAttribute('y1',p[2]);guide.setAttribute('y2',p[3]);
    guide.setAttribute('stroke','#111827');guide.setAttribute('stroke-dasharray','3 3');
    guide.style.display='none';svg.appendChild(guide);
    svg.addEventListener('mousemove',function(e){
      var r=svg.getBoundingClientRect(),k=r.width/svg.viewBox.baseVal.width;
      var x=(e.clientX-r.left)/k;if(x<p[0]||x>p[1]){guide.style.display='none';
        tip.style.display='none';return;}
      var t=t0+(x-p[0])/(p[1]-p[0])*(t1-t0);
      tip.textContent=fmtTime(t);
      lines.forEach(function(l){var lo=0,hi=l.v.length-1,best=-1;
        while(lo<=hi){var m=(lo+hi)>>1;if(l.v[m][0]<=t){best=m;lo=m+1;}else hi=m-1;}
        if(best<0)return;
        var sw=document.createElement('span');sw.style.color=l.color;sw.textContent='\u25A0 ';
        tip.appendChild(document.createElement('br'));tip.appendChild(sw);
        tip.appendChild(document.createTextNode(l.name+': '+l.v[best][1]));});
      guide.setAttribute('x1',x);guide.setAttribute('x2',x);guide.style.display='';
      tip.style.display='block';
      var left=e.clientX-fig.getBoundingClientRect().left+14;
      if(left>fig.clientWidth-220)left-=240;tip.style.left=left+'px';
      tip.style.top=(e.clientY-fig.getBoundingClientRect().top+10)+'px';});
    svg.addEventListener('mouseleave',function(){guide.style.display='none';
      tip.style.display='none';});
  });
})();
"""


def iso(ts_ns: int | None) -> str:
    """UTC time with milliseconds."""
    if ts_ns is None:
        return "–"
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="milliseconds")


def _duration(seconds: float) -> str:
    s = round(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min {sec:02d} s" if h else f"{m} min {sec:02d} s"


def _dec(v: Decimal | float | None, places: int = 4) -> str:
    if v is None:
        return "–"
    return fmt_num(float(v), places)


def _signed_class(v: Decimal | float) -> str:
    return "pos" if v > 0 else "neg" if v < 0 else ""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..100) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_bins(values: Sequence[float], target: int = 24
                 ) -> tuple[list[tuple[float, float, int]], bool]:
    """Histogram bins (low, high, count) of ``values``; the second item is True when the
    last bin gathers a slow tail (beyond twice the 95th percentile). Counts sum to
    len(values)."""
    if not values:
        return [], False
    s = sorted(values)
    lo_v, hi_v = s[0], s[-1]
    p95 = percentile(s, 95)
    top = p95 if hi_v > 2 * p95 and p95 > lo_v else hi_v  # a long tail gets one bar
    spread = top - lo_v
    raw = spread / target if spread > 0 else max(abs(lo_v) * 0.01, 0.1)
    mag = 10 ** math.floor(math.log10(raw))
    width = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo_v / width) * width
    n = max(math.floor((top - start) / width) + 1, 1)
    if spread == 0:
        start = max(start - 4 * width, 0.0)
        n = round((lo_v - start) / width) + 5
    counts = [0] * n
    overflow = 0
    for v in s:
        i = int((v - start) // width)
        if i >= n:
            overflow += 1
        else:
            counts[max(i, 0)] += 1
    bins = [(start + i * width, start + (i + 1) * width, c) for i, c in enumerate(counts)]
    if overflow:
        bins.append((start + n * width, hi_v, overflow))
    return bins, bool(overflow)


def _compact(n: int) -> str:
    return f"{n:,}" if n < 10_000 else f"{n / 1000:,.0f}k"


def _legend(items: Iterable[tuple[str, str, str | bool]]) -> str:
    parts = []
    for label, color, tri in items:
        style = (f"border-bottom:9px solid {color}" if tri == "up" else
                 f"border-top:9px solid {color}" if tri == "down" else f"background:{color}")
        cls = ' class="tri"' if tri else ""
        parts.append(f'<span><i{cls} style="{style}"></i>{escape(label)}</span>')
    return f'<div class="legend">{"".join(parts)}</div>'


def _tile(key: str, value: str, sub: str = "", cls: str = "") -> str:
    return (f'<div class="tile"><div class="k">{escape(key)}</div>'
            f'<div class="v {cls}">{value}</div><div class="s">{sub}</div></div>')


def _header(d: ReportData) -> str:
    s = d.session
    chain = ('<span class="badge ok">chain verified</span>' if d.chain.ok else
             f'<span class="badge bad">chain broken at seq {d.chain.first_bad_seq}</span>')
    strategy = f"{s.strategy or 'no strategy'}" + (f" v{s.strategy_version}"
                                                   if s.strategy_version else "")
    return (f'<header class="top"><div class="inner"><h1>Session report · '
            f'{escape(strategy)}{chain}</h1><div class="sub">session <code>{escape(s.id)}'
            f'</code> · {escape(s.mode or "?")} · {escape(iso(d.t0_ns))} · '
            f'{escape(_duration(d.duration_s))}</div></div></header>')


def _meta(d: ReportData, journal_name: str) -> str:
    s = d.session
    chain = (f'<span class="pos">OK</span>: {d.chain.checked:,} events, head seq '
             f'{d.chain.last_seq} <code>{escape(d.chain.last_hash[:16])}…</code>'
             if d.chain.ok else
             f'<span class="neg">BROKEN at seq {d.chain.first_bad_seq}</span>: '
             f'{escape(d.chain.problem or "")}')
    sources = ", ".join(f"{k} {v:,}" for k, v in d.by_source.most_common())
    items = [
        ("Session", f"<code>{escape(s.id)}</code>"), ("Mode", escape(s.mode or "–")),
        ("Strategy", escape(f"{s.strategy or '–'} (version {s.strategy_version or '–'})")),
        ("Symbols", escape(", ".join(d.symbols) or "–")),
        ("Engine version", escape(s.engine_version)),
        ("Parser version", escape(s.parser_version or "–")),
        ("Config hash", f"<code>{escape(s.config_hash or '–')}</code>"),
        ("Journal", f"<code>{escape(journal_name)}</code> ({d.sessions_in_journal} "
                    f"session{'s' if d.sessions_in_journal != 1 else ''})"),
        ("Started", escape(iso(d.t0_ns))), ("Ended", escape(iso(d.t1_ns))),
        ("Duration", escape(_duration(d.duration_s))),
        ("Seq range", f"{s.first_seq}–{s.last_seq}"),
        ("Events", f"{s.events:,} ({escape(sources)})"),
        ("Undecodable rows", f"{d.undecodable:,}"),
        ("Hash chain", chain), ("Top kinds", escape(", ".join(
            f"{k} {v:,}" for k, v in d.by_kind.most_common(4)))),
    ]
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return (f'<section id="metadata"><h2>Session</h2><p class="note">What was recorded, '
            f'by which code and configuration.</p><dl class="meta">{body}</dl></section>')


def _latency_stats(d: ReportData) -> dict[str, float]:
    s = sorted(d.latencies_ms)
    return {"p50": percentile(s, 50), "p90": percentile(s, 90), "p99": percentile(s, 99),
            "max": s[-1] if s else math.nan}


def _ms(v: float) -> str:
    return "–" if math.isnan(v) else f"{fmt_num(v, 1 if v < 100 else 0)} ms"


def _summary(d: ReportData) -> str:
    eq = next(iter(d.equity.values()), None)
    eq_cur = next(iter(d.equity), "")
    change = None if eq is None or eq.first is None else (eq.last or 0) - eq.first
    lat = _latency_stats(d)
    n_anom = sum(d.anomaly_counts.values())
    fee_cur, fee_sum = next(iter(d.fees.items()), ("", Decimal(0)))
    others = "".join(f", {_dec(v, 4)} {escape(k)}" for k, v in list(d.fees.items())[1:])
    st = d.order_status
    refused = ", ".join(f"{st[k]:,} {k}" for k in ("rejected", "denied", "unknown") if st.get(k))
    tiles = [
        _tile("Realised PnL", _dec(d.realised_final, 4), "summed over positions",
              _signed_class(d.realised_final)),
        _tile("Equity change", "–" if change is None else _dec(change, 4),
              "" if eq is None else f"{_dec(eq.first, 2)} → {_dec(eq.last, 2)} {eq_cur}",
              "" if change is None else _signed_class(change)),
        _tile("Orders", f"{d.orders_total:,}",
              f"{st.get('filled', 0):,} filled" + (f", {refused}" if refused else "")),
        _tile("Fills", f"{d.fills_total:,}", f"volume {_dec(d.fill_vol, 0)}"),
        _tile("Fees", _dec(fee_sum, 4), f"{escape(fee_cur)}{others} · {d.maker_fills:,} maker, "
              f"{d.fills_total - d.maker_fills:,} taker"),
        _tile("Latency p50", _ms(lat["p50"]), f"p99 {_ms(lat['p99'])}"),
        _tile("Anomalies", f"{n_anom:,}", f"{len(d.anomaly_counts)} kinds",
              "neg" if n_anom else "pos"),
    ]
    return (f'<section id="summary"><h2>At a glance</h2><div class="tiles">{"".join(tiles)}'
            f'</div></section>')


def _figure(caption: str, svg: str, legend: str = "") -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}{legend}</figure>"


def _equity(d: ReportData) -> str:
    figs = []
    for cur, s in d.equity.items():
        svg = time_chart([Series(f"equity {cur}", COLORS["equity"], s.points(), step=True,
                                 width=2.2)], t0_ns=d.t0_ns, t1_ns=d.t1_ns, css="equity",
                         label=f"equity {cur} over time")
        figs.append(_figure(f"Equity ({cur})", svg))
    pnl: list[Series] = []
    if d.realised is not None:
        pnl.append(Series("realised PnL", COLORS["realised"], d.realised.points(), step=True))
    if d.equity:
        cur, s = next(iter(d.equity.items()))
        base = s.first or 0.0
        pnl.append(Series(f"equity change {cur}", COLORS["pnl"],
                          [(t, v - base) for t, v in s.points()], step=True, width=1.6))
    legend = _legend((x.name, x.color, False) for x in pnl)
    figs.append(_figure("Profit and loss", time_chart(
        pnl, t0_ns=d.t0_ns, t1_ns=d.t1_ns, css="pnl", label="PnL over time", zero_line=True,
        height=200), legend))
    return (f'<section id="equity"><h2>Equity and PnL</h2><p class="note">Account equity from '
            f'balance updates; realised PnL summed over positions as the exchange reports '
            f'it.</p>{"".join(figs)}</section>')


def _positions(d: ReportData) -> str:
    figs = []
    symbols = sorted({sym for sym, _ in d.positions})
    for sym in symbols:
        long_ = d.positions.get((sym, "long"))
        short = d.positions.get((sym, "short"))
        series = []
        if long_ is not None:
            series.append(Series(f"{sym} long", COLORS["long"], long_.points(), step=True,
                                 fill="rgba(13,148,136,.12)"))
        if short is not None:
            series.append(Series(f"{sym} short (−)", COLORS["short"],
                                 [(t, -v) for t, v in short.points()], step=True,
                                 fill="rgba(225,29,72,.10)"))
        svg = time_chart(series, t0_ns=d.t0_ns, t1_ns=d.t1_ns, css="position", height=190,
                         label=f"{sym} position", zero_line=True)
        figs.append(_figure(f"{sym}: contracts held", svg,
                            _legend((s.name, s.color, False) for s in series)))
    if not figs:
        figs.append('<p class="note">No position updates in this session.</p>')
    return (f'<section id="positions"><h2>Position</h2><p class="note">Hold volume per side '
            f'(hedge mode): long above the line, short below.</p>{"".join(figs)}</section>')


def _prices(d: ReportData) -> str:
    figs = []
    symbols = list(dict.fromkeys([*d.symbols, *(s for s, _ in d.prices),
                                  *(f.symbol for f in d.fills)]))
    bands = [Band(a, b, COLORS["outage"], f"disconnected: {why}") for a, b, why in d.outages]
    for sym in symbols:
        series = [Series(f"{sym} {name}", COLORS[name], s.points(),
                         width=1.6 if name == "mid" else 1.3,
                         dash="5 3" if name == "fair" else None)
                  for name in ("mid", "last", "fair") if (s := d.prices.get((sym, name)))]
        fills = [f for f in d.fills if f.symbol == sym]
        size = max(2.5, min(5.5, 5.5 * math.sqrt(150 / max(len(fills), 1))))  # crowds: smaller
        markers = [Marker(f.t_ns, f.price, COLORS["buy" if f.is_buy else "sell"], f.is_buy,
                          f"{iso(f.t_ns)} {f.side} {f.vol} @ {fmt_num(f.price, 2)} "
                          f"({'taker' if f.is_taker else 'maker'}, fee {f.fee})",
                          css=f"fill-marker {'buy' if f.is_buy else 'sell'}", size=size)
                   for f in fills]
        if not series and not markers:
            continue
        buys = sum(1 for f in fills if f.is_buy)
        shown = " shown" if d.fill_stride > 1 else ""
        legend = _legend([*((s.name, s.color, False) for s in series),
                          (f"buy fills ({buys:,}{shown})", COLORS["buy"], "up"),
                          (f"sell fills ({len(fills) - buys:,}{shown})", COLORS["sell"], "down"),
                          *((("disconnected", COLORS["outage"], False),) if bands else ())])
        svg = time_chart(series, t0_ns=d.t0_ns, t1_ns=d.t1_ns, css="price", height=280,
                         label=f"{sym} price and fills", markers=markers, bands=bands)
        figs.append(_figure(f"{sym}: price and fills", svg, legend))
    note = "Mid price from the order book, last and fair price where the feed carries them; " \
           "each fill is a triangle at its price."
    if d.fill_stride > 1:
        note += (f" {d.fills_total:,} fills: every {d.fill_stride}th is marked "
                 f"({len(d.fills):,} markers).")
    if not figs:
        figs.append('<p class="note">No prices or fills in this session.</p>')
    return (f'<section id="prices"><h2>Price and fills</h2><p class="note">{escape(note)}</p>'
            f'{"".join(figs)}</section>')


def _latency(d: ReportData) -> str:
    bins, overflow = latency_bins(d.latencies_ms)
    svg = histogram(bins, color=COLORS["latency"], x_label="ms from intent to answer",
                    css="latency", label="order latency histogram", overflow_last=overflow)
    lat = _latency_stats(d)
    rt = sorted(d.round_trips_ms)
    rows = [("answered placements", f"{d.answered:,}"), ("p50", _ms(lat["p50"])),
            ("p90", _ms(lat["p90"])), ("p99", _ms(lat["p99"])), ("max", _ms(lat["max"])),
            ("REST round trip p50", _ms(percentile(rt, 50))),
            ("REST round trip p99", _ms(percentile(rt, 99))),
            ("never answered", f"{d.unanswered:,}")]
    table = "".join(f'<tr><td>{k}</td><td class="num">{v}</td></tr>' for k, v in rows)
    return (f'<section id="latency"><h2>Order latency</h2><p class="note">From the intent '
            f'(<code>cmd.place_order</code>) to the exchange\'s answer to the placement '
            f'(<code>rest.order_create</code>), per order.</p><div style="display:grid;'
            f'grid-template-columns:3fr 1fr;gap:18px;align-items:start">'
            f'{_figure("Latency histogram", svg)}<table>{table}</table></div></section>')


def _anomalies(d: ReportData) -> str:
    lanes = []
    for kind, count in sorted(d.anomaly_counts.items(), key=lambda kv: -kv[1]):
        color = ANOMALY_COLORS.get(kind, "#6b7280")
        bands = ([Band(a, b, color, f"disconnected {iso(a)} → {iso(b)}: {why}")
                  for a, b, why in d.outages] if kind == "disconnect" else [])
        lanes.append(Lane(f"{_SHORT.get(kind, kind)} {_compact(count)}", color,
                          d.anomaly_marks.get(kind, []), bands, count, kind))
    svg = timeline(lanes, t0_ns=d.t0_ns, t1_ns=d.t1_ns, css="anomalies",
                   label="anomalies over time")
    total = sum(d.anomaly_counts.values())
    rows = "".join(
        f'<tr><td class="num">{a.seq}</td><td>{escape(iso(a.ts_ns)[11:23])}</td><td>'
        f'<span class="pill" style="background:{ANOMALY_COLORS.get(a.kind, "#6b7280")}">'
        f'{escape(a.kind)}</span></td><td>{escape(a.detail)}</td></tr>'
        for a in d.anomaly_rows)
    more = (f'<p class="note">Showing the first {MAX_ANOMALY_ROWS} of {total:,}; '
            f'<code>tapeline audit anomalies</code> lists them all.</p>'
            if total > len(d.anomaly_rows) else "")
    table = (f'<div class="scroll"><table><thead><tr><th class="num">seq</th><th>time (UTC)'
             f'</th><th>kind</th><th>detail</th></tr></thead><tbody>{rows}</tbody></table>'
             f'</div>{more}' if rows else '<p class="note">None: a clean session.</p>')
    return (f'<section id="anomalies"><h2>Anomalies</h2><p class="note">Gaps, resyncs, '
            f'disconnects and reconnects, rate limits, decode errors, unknown outcomes, '
            f'kill-switch trips, reconcile differences and strategy failures '
            f'(as <code>tapeline audit anomalies</code> finds them).</p>'
            f'{_figure("Timeline", svg)}{table}</section>')


def _orders(d: ReportData) -> str:
    order = ["filled", "partially_filled", "open", "cancelled", "denied", "rejected",
             "unknown", "invalid"]
    statuses = sorted(d.order_status.items(),
                      key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0]))
    rows = "".join(
        f'<tr><td><span class="pill" style="background:{_STATUS_COLORS.get(k, "#6b7280")}">'
        f'{escape(k)}</span></td><td class="num">{v:,}</td></tr>' for k, v in statuses)
    rows += f'<tr><th>total</th><th class="num">{d.orders_total:,}</th></tr>'
    fills = [("fills", f"{d.fills_total:,}"),
             ("maker / taker", f"{d.maker_fills:,} / {d.fills_total - d.maker_fills:,}"),
             ("volume (contracts)", _dec(d.fill_vol, 0)),
             *((f"fees {k}", _dec(v, 6)) for k, v in d.fees.items()),
             ("fill profit (closing fills)", _dec(d.fill_profit, 6)),
             ("realised PnL (positions)", _dec(d.realised_final, 6))]
    for cur, b in d.balances_final.items():
        fills.append((f"final equity {cur}", _dec(Decimal(b["equity"]), 6)))
        fills.append((f"final available {cur}", _dec(Decimal(b["available"]), 6)))
    frows = "".join(f'<tr><td>{escape(k)}</td><td class="num">{v}</td></tr>' for k, v in fills)
    return (f'<section id="orders"><h2>Orders and fills</h2><p class="note">Orders the '
            f'session touched, by the status the fold leaves them in; fills counted once '
            f'each.</p><div class="cols"><table><thead><tr><th>final status</th>'
            f'<th class="num">orders</th></tr></thead><tbody>{rows}</tbody></table><table>'
            f'<thead><tr><th>fills and money</th><th class="num"></th></tr></thead><tbody>'
            f'{frows}</tbody></table></div></section>')


def render_html(d: ReportData, *, journal_name: str, version: str) -> str:
    """The whole page for ``d``."""
    banner = ("" if d.chain.ok else
              f'<div class="banner">The journal\'s hash chain does not verify (first bad seq '
              f'{d.chain.first_bad_seq}: {escape(d.chain.problem or "")}). The file was '
              f'changed after it was written: treat this report with suspicion.</div>')
    title = f"tapeline report · {d.session.id} · {d.session.strategy or 'session'}"
    sections = {"metadata": _meta(d, journal_name), "summary": _summary(d),
                "equity": _equity(d), "positions": _positions(d), "prices": _prices(d),
                "latency": _latency(d), "anomalies": _anomalies(d), "orders": _orders(d)}
    body = "".join(sections[name] for name in SECTIONS)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><style>{_CSS}</style></head><body>'
            f'{_header(d)}<main>{banner}{body}<footer>tapeline {escape(version)} · '
            f'journal {escape(journal_name)} · chain head {escape(d.chain.last_hash[:16])}'
            f'</footer></main><script>{_JS}</script></body></html>\n')
