"""The report as one self-contained HTML file (no network needed to open it), and as
markdown for pasting into a pull request. The dashboard serves the same HTML."""

from __future__ import annotations

import html
import math
import time
from typing import Any, Mapping, Sequence

from ..sanitize import markdown_cell
from ..records import Goal

STATUS_COLOUR = {"keep": "#2ca02c", "discard": "#9a9a9a", "crash": "#d62728", "timeout": "#9467bd",
                 "invalid": "#bcbd22", "interrupted": "#17becf", "infra": "#8c564b", "running": "#1f77b4", "pending": "#aaaaaa"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.4em;margin-bottom:0}h2{font-size:1.1em;margin-top:1.6em}.sub{color:#666;margin-top:4px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{cursor:pointer;background:#fafafa;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:600}.kv td:first-child{color:#666;width:260px}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px;max-height:420px}
.add{color:#1a7f37}.del{color:#cf222e}.hunk{color:#8250df}details summary{cursor:pointer;color:#0969da}
svg text{font-size:11px;fill:#555}
"""

SORT_JS = """
document.addEventListener('click', function (ev) {
  var th = ev.target.closest('th[data-col]'); if (!th) return;
  var table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
  var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
    var nx = parseFloat(x), ny = parseFloat(y);
    var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
});
"""

LIVE_JS = """
(function () {
  var last = null;
  function tick() {
    fetch('/fragment', {cache: 'no-store'}).then(function (r) { return r.text(); }).then(function (t) {
      if (t !== last) { last = t; document.getElementById('content').innerHTML = t; }
    }).catch(function () {}).then(function () { setTimeout(tick, %d); });
  }
  setTimeout(tick, %d);
})();
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: float | None, digits: int = 6) -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def _effect(eff: Mapping[str, Any] | None) -> str:
    if not eff:
        return "-"
    text = f"{eff['delta']:+.4g}"
    if eff.get("ci") is not None:
        text += f" ± {eff['ci']:.2g}"
    if eff.get("pct") is not None:
        text += f" ({eff['pct']:+.2f} %)"
    return text


def _ablation_effect(r: Mapping[str, Any]) -> str:
    if r.get("effect") is None:
        return "-"
    return f"{r['effect']:+.4g}" + (f" ± {r['ci']:.2g}" if r.get("ci") is not None else "")


def diff_html(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        cls = "add" if line.startswith("+") and not line.startswith("+++") else \
              "del" if line.startswith("-") and not line.startswith("---") else "hunk" if line.startswith("@@") else ""
        out.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
    return "\n".join(out)


def chart_svg(experiments: Sequence[Mapping[str, Any]], goal: Goal, width: int = 1000, height: int = 320) -> str:
    """The progress chart as inline SVG: discarded grey, kept green, the running best."""
    pts = [e for e in experiments if e["status"] in ("keep", "discard") and e.get("metric") is not None]
    if not pts:
        return '<svg id="chart" width="100%" height="40"><text x="10" y="24">no metrics yet</text></svg>'
    xs = [e["id"] for e in pts]
    ys = [e["metric"] for e in pts]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    lo, hi = min(ys), max(ys)
    if hi == lo:
        hi, lo = hi + 0.5 * (abs(hi) or 1), lo - 0.5 * (abs(lo) or 1)
    pad_l, pad_r, pad_t, pad_b = 70, 20, 16, 30

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def sy(y: float) -> float:
        return pad_t + (hi - y) / (hi - lo) * (height - pad_t - pad_b)

    parts = [f'<svg id="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="progress chart">',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#ccc"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#ccc"/>',
             f'<text x="{pad_l - 6}" y="{sy(hi) + 4:.1f}" text-anchor="end">{fmt(hi, 4)}</text>',
             f'<text x="{pad_l - 6}" y="{sy(lo) + 4:.1f}" text-anchor="end">{fmt(lo, 4)}</text>',
             f'<text x="{(width + pad_l) / 2:.0f}" y="{height - 6}" text-anchor="middle">experiment #</text>']
    best = None
    path = []
    for e in pts:
        if e["status"] == "keep" and (best is None or goal.better(e["metric"], best)):
            best = e["metric"]
        if best is not None:
            path.append((sx(e["id"]), sy(best)))
    if path:
        d = f"M{path[0][0]:.1f},{path[0][1]:.1f}"
        for (x, y), (px, py) in zip(path[1:], path[:-1]):
            d += f" H{x:.1f} V{y:.1f}"
        parts.append(f'<path d="{d}" fill="none" stroke="#2ca02c" stroke-width="1.5" opacity="0.7"/>')
    for e in pts:
        colour = STATUS_COLOUR[e["status"]]
        r = 5 if e["status"] == "keep" else 3.5
        parts.append(f'<circle class="pt {e["status"]}" data-id="{e["id"]}" data-metric="{e["metric"]!r}" '
                     f'cx="{sx(e["id"]):.1f}" cy="{sy(e["metric"]):.1f}" r="{r}" fill="{colour}">'
                     f'<title>#{e["id"]} {_e(e["description"])}: {fmt(e["metric"])}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def content_html(data: Mapping[str, Any]) -> str:
    """The report's body (what the dashboard refreshes)."""
    c, s, exps = data["campaign"], data["summary"], data["experiments"]
    goal = Goal(c["goal"])
    best = s["best"]
    rows = [
        ("experiments", f'{s["experiments"]} ({", ".join(f"{k} {v}" for k, v in s["counts"].items() if v)})'),
        ("crash rate", "-" if s["crash_rate"] is None else f'{100 * s["crash_rate"]:.1f} % of {s["candidates"]} candidates'),
        ("baseline", fmt(s["baseline"])),
        ("best", "-" if best is None else f'{fmt(best["metric"])} (#{best["id"]}, {_e(best["description"])})'),
        ("best vs baseline (95 % interval)", _effect(s["vs_baseline"])),
        ("runs", str(s["runs"])),
        ("wall time (first to last run)", _duration(s["wall_s"])),
        ("duty cycle (time in runs / wall / slots)", "-" if s["duty"] is None else f'{100 * s["duty"]:.1f} % over {s["slots"]} slot(s)'),
        ("tokens, money", f'{s["tokens"]} tokens, ${s["cost"]:.4f}'),
    ]
    out = ['<table id="summary" class="kv">']
    out += [f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    out.append(f"<h2>Progress ({_e(c['metric'])}, {'lower' if goal is Goal.MINIMIZE else 'higher'} is better)</h2>")
    out.append(chart_svg(exps, goal))
    out.append('<h2>Kept changes</h2><table id="chain"><thead><tr><th data-col="0">#</th><th data-col="1">change</th>'
               f'<th data-col="2">{_e(c["metric"])}</th><th data-col="3">effect vs its parent (95 % interval)</th></tr></thead><tbody>')
    for r in s["chain"]:
        out.append(f'<tr><td data-v="{r["id"]}">{r["id"]}</td><td>{_e(r["description"])}</td>'
                   f'<td class="num">{fmt(r["metric"])}</td><td class="num">{_e(_effect(r if "delta" in r else None))}</td></tr>')
    out.append("</tbody></table>")
    ab = data.get("ablation")
    if ab:
        out.append(f'<h2>Ablation (leave-one-out, {ab["runs"]} run(s) per variant, fresh seeds)</h2>'
                   '<table id="ablation"><thead><tr><th data-col="0">variant</th><th data-col="1">change</th>'
                   '<th data-col="2">mean</th><th data-col="3">effect when removed (95 % interval)</th>'
                   '<th data-col="4">p</th><th data-col="5">verdict</th></tr></thead><tbody>')
        for r in ab["rows"]:
            out.append(f'<tr><td>{_e(r["variant"])}</td><td>{_e(r["description"])}</td><td class="num">{fmt(r.get("mean"))}</td>'
                       f'<td class="num">{_e(_ablation_effect(r))}</td><td class="num">{fmt(r.get("p_value"), 3)}</td>'
                       f'<td>{_e(r.get("verdict") or r.get("problem") or "")}</td></tr>')
        out.append("</tbody></table>")
    out.append('<h2>All experiments</h2><table id="experiments"><thead><tr>'
               + "".join(f'<th data-col="{i}">{h}</th>' for i, h in enumerate(
                   ["#", "status", _e(c["metric"]), "runs", "se", "p", "proposer", "description"]))
               + "</tr></thead><tbody>")
    for e in exps:
        metric = e.get("metric")
        detail = ""
        if e.get("reason"):
            detail += f"<div>{_e(e['reason'][:400])}</div>"
        if e.get("diff"):
            detail += f"<details><summary>diff</summary><pre>{diff_html(e['diff'])}</pre></details>"
        if e.get("log_tail"):
            detail += f"<details><summary>log tail</summary><pre>{_e(e['log_tail'])}</pre></details>"
        out.append(
            f'<tr data-id="{e["id"]}"><td data-v="{e["id"]}">{e["id"]}</td>'
            f'<td class="status" style="color:{STATUS_COLOUR.get(e["status"], "#222")}">{_e(e["status"])}</td>'
            f'<td class="num metric" data-v="{"" if metric is None else repr(metric)}">{fmt(metric)}</td>'
            f'<td class="num">{e.get("runs_n") or len(e.get("runs", []))}</td><td class="num">{fmt(e.get("se"), 3)}</td>'
            f'<td class="num">{fmt(e.get("p_value"), 3)}</td><td>{_e(e["proposer"])}</td>'
            f'<td>{_e(e["description"])}{detail}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def report_html(data: Mapping[str, Any], *, live_ms: int | None = None) -> str:
    """A complete page. With ``live_ms`` the page refreshes its content from ``/fragment``."""
    c = data["campaign"]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    script = SORT_JS + (LIVE_JS % (live_ms, live_ms) if live_ms else "")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>autoresearch {_e(c["tag"])}</title>'
            f"<style>{CSS}</style></head><body>"
            f'<h1>autoresearch: campaign {_e(c["tag"])}</h1>'
            f'<div class="sub">branch {_e(c["branch"])} from {_e(c["base_commit"][:7])} · {_e(c["metric"])} '
            f'({_e(c["goal"])}) · {"live" if live_ms else "generated"} {when}</div>'
            f'<div id="content">{content_html(data)}</div><script>{script}</script></body></html>')


def report_markdown(data: Mapping[str, Any]) -> str:
    c, s = data["campaign"], data["summary"]
    best = s["best"]
    lines = [f"## autoresearch: campaign `{c['tag']}` ({c['metric']}, {c['goal']})", ""]
    lines.append(f"- experiments: {s['experiments']} (" + ", ".join(f"{k} {v}" for k, v in s["counts"].items() if v) + ")")
    lines.append(f"- baseline {fmt(s['baseline'])} → best {fmt(best['metric']) if best else '-'}"
                 + (f" (#{best['id']}: {markdown_cell(best['description'])})" if best else "")
                 + f"; best vs baseline {_effect(s['vs_baseline'])}")
    if s["crash_rate"] is not None:
        duty = "-" if s["duty"] is None else f"{100 * s['duty']:.1f} %"
        lines.append(f"- crash rate {100 * s['crash_rate']:.1f} %; wall {_duration(s['wall_s'])}; duty cycle {duty}")
    if s["tokens"]:
        lines.append(f"- {s['tokens']} tokens, ${s['cost']:.4f}")
    lines += ["", "### Kept changes", "", f"| # | change | {c['metric']} | effect vs parent (95 % interval) |", "| --- | --- | --- | --- |"]
    for r in s["chain"]:
        lines.append(f"| {r['id']} | {markdown_cell(r['description'])} | {fmt(r['metric'])} | {_effect(r if 'delta' in r else None)} |")
    ab = data.get("ablation")
    if ab:
        lines += ["", f"### Ablation (leave-one-out, {ab['runs']} run(s) per variant, fresh seeds)", "",
                  "| variant | change | mean | effect when removed (95 % interval) | p | verdict |", "| --- | --- | --- | --- | --- | --- |"]
        for r in ab["rows"]:
            lines.append(f"| {markdown_cell(r['variant'])} | {markdown_cell(r['description'])} | {fmt(r.get('mean'))} | "
                         f"{_ablation_effect(r)} | {fmt(r.get('p_value'), 3)} | "
                         f"{markdown_cell(r.get('verdict') or r.get('problem') or '')} |")
    lines += ["", "### All experiments", "", f"| # | status | {c['metric']} | runs | description |", "| --- | --- | --- | --- | --- |"]
    for e in data["experiments"]:
        lines.append(f"| {e['id']} | {e['status']} | {fmt(e.get('metric'))} | {e.get('runs_n') or len(e.get('runs', []))} | "
                     f"{markdown_cell(e['description'])} |")
    return "\n".join(lines) + "\n"
