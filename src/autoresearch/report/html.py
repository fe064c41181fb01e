"""The report as one self-contained HTML file (no network needed to open it; the charts
are inline SVG). The dashboard serves the same HTML; the markdown report is markdown.py."""

from __future__ import annotations

import time
from typing import Any, Mapping

from ..records import Goal
from .axes import _e
from .charts import KIND_LABEL, chart_svg, kind, params_html, timeline_svg
from .data import proposer_label
from .text import ablation_effect, ablation_title, duration, effect_text, fmt

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
svg text{font-size:11px;fill:#555}svg .lane{font-size:11px}.note{color:#666}
#params{display:flex;flex-wrap:wrap;gap:8px}.bar{background:#4c78a8;height:12px;display:inline-block;vertical-align:middle}
.kind{font-size:11px;padding:1px 5px;border-radius:3px;margin-left:4px;border:1px solid}
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


def diff_html(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        cls = "add" if line.startswith("+") and not line.startswith("+++") else \
              "del" if line.startswith("-") and not line.startswith("---") else "hunk" if line.startswith("@@") else ""
        out.append(f'<span class="{cls}">{_e(line)}</span>' if cls else _e(line))
    return "\n".join(out)


def summary_html(s: Mapping[str, Any]) -> str:
    best = s["best"]
    rows = [
        ("experiments", f'{s["experiments"]} ({", ".join(f"{k} {v}" for k, v in s["counts"].items() if v)})'),
        ("crash rate", "-" if s["crash_rate"] is None else f'{100 * s["crash_rate"]:.1f} % of {s["candidates"]} candidates'),
        ("baseline", fmt(s["baseline"])),
        ("best", "-" if best is None else f'{fmt(best["metric"])} (#{best["id"]}, {_e(best["description"])})'),
        ("best vs baseline (95 % interval)", effect_text(s["vs_baseline"])),
        *([("net check on fresh seeds", _e(s["net_check"]))] if s.get("net_check") else []),
        ("runs", str(s["runs"])),
        ("wall time (first to last run of each session)", duration(s["wall_s"])),
        ("duty cycle (time in runs / wall / slots)", "-" if s["duty"] is None else f'{100 * s["duty"]:.1f} % over {s["slots"]} slot(s)'),
        ("tokens, money", f'{s["tokens"]} tokens, ${s["cost"]:.4f}'),
        ("settings", _e(s.get("settings") or "-")),
        *([("note", _e(s["seedless"]))] if s.get("seedless") else []),
    ]
    return '<table id="summary" class="kv">' + "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def importance_html(imp: Mapping[str, Any] | None) -> str:
    """Parameter importance as a table with bars, or the plain reason there is none."""
    if not imp:
        return ""
    out = [f'<h2>Parameter importance ({_e(imp["method"])}, {imp["trials"]} trials)</h2><div id="importance">']
    if not imp["importances"]:
        out.append(f'<p class="note">{_e(imp["note"])}</p></div>')
        return "".join(out)
    out.append('<table><thead><tr><th data-col="0">knob</th><th data-col="1">importance</th><th></th></tr></thead><tbody>')
    for name, v in imp["importances"].items():
        out.append(f'<tr data-param="{_e(name)}"><td>{_e(name)}</td><td class="num" data-v="{v!r}">{v:.3f}</td>'
                   f'<td><span class="bar" style="width:{max(1.0, 300 * v):.0f}px"></span></td></tr>')
    out.append('</tbody></table><p class="note">The share of the variation in reaching the best results that each '
               'knob explains (PED-ANOVA over the knobs history); it sums to 1 and says nothing about direction: '
               'see the plots below.</p></div>')
    return "".join(out)


def net_diff_html(nd: Mapping[str, Any] | None) -> str:
    if not nd:
        return ""
    target = f'#{nd["to_id"]} ({_e(nd["to"][:7])})' if nd.get("to") and nd.get("to_id") is not None else "the incumbent"
    out = [f'<h2>Net change: base {_e(nd["from"][:7])} → {target}, editable files</h2><div id="net-diff">']
    if not nd["diff"]:
        out.append(f'<p class="note">{_e(nd["note"] or "no difference")}</p>')
    else:
        out.append(f'<pre>{_e(nd.get("stat") or "")}</pre><details open><summary>diff</summary><pre>{diff_html(nd["diff"])}</pre></details>')
        if nd.get("truncated"):
            out.append(f'<p class="note">{nd["truncated"]} more line(s) not shown: git diff {_e(nd["from"][:7])}..{_e(nd["to"][:7])}</p>')
    out.append("</div>")
    return "".join(out)


def _kind_badge(e: Mapping[str, Any]) -> str:
    k = kind(e)
    if k == e["status"]:
        return ""
    return f'<span class="kind {_e(k)}" title="{_e(KIND_LABEL.get(k, k))}">{_e(k)}</span>'


def tables_html(data: Mapping[str, Any]) -> str:
    """The kept chain, the ablation, and every experiment with its reason, diff and log tail."""
    c, s, exps = data["campaign"], data["summary"], data["experiments"]
    out = ['<h2>Kept changes</h2><table id="chain"><thead><tr><th data-col="0">#</th><th data-col="1">change</th>'
           f'<th data-col="2">{_e(c["metric"])}</th><th data-col="3">effect vs its parent (95 % interval)</th></tr></thead><tbody>']
    for r in s["chain"]:
        out.append(f'<tr><td data-v="{r["id"]}">{r["id"]}</td><td>{_e(r["description"])}</td>'
                   f'<td class="num">{fmt(r["metric"])}</td><td class="num">{_e(effect_text(r if "delta" in r else None))}</td></tr>')
    out.append("</tbody></table>")
    ab = data.get("ablation")
    if ab:
        out.append(f'<h2>{_e(ablation_title(ab))}</h2>'
                   '<table id="ablation"><thead><tr><th data-col="0">variant</th><th data-col="1">change</th>'
                   '<th data-col="2">mean</th><th data-col="3">effect when removed (95 % interval)</th>'
                   '<th data-col="4">p</th><th data-col="5">verdict</th></tr></thead><tbody>')
        for r in ab["rows"]:
            out.append(f'<tr><td>{_e(r["variant"])}</td><td>{_e(r["description"])}</td><td class="num">{fmt(r.get("mean"))}</td>'
                       f'<td class="num">{_e(ablation_effect(r))}</td><td class="num">{fmt(r.get("p_value"), 3)}</td>'
                       f'<td>{_e(r.get("verdict") or r.get("problem") or "")}</td></tr>')
        out.append("</tbody></table>")
    out.append(experiments_html(c["metric"], exps))
    return "\n".join(out)


def experiments_html(metric_name: str, exps: Any) -> str:
    out = ['<h2>All experiments</h2><table id="experiments"><thead><tr>'
           + "".join(f'<th data-col="{i}">{h}</th>' for i, h in enumerate(
               ["#", "status", _e(metric_name), "runs", "se", "p", "proposer", "description and reason"]))
           + "</tr></thead><tbody>"]
    for e in exps:
        metric = e.get("metric")
        detail = ""
        if e.get("reason"):
            detail += f'<div class="reason">{_e(e["reason"][:400])}</div>'
        if e.get("diff"):
            detail += f"<details><summary>diff</summary><pre>{diff_html(e['diff'])}</pre></details>"
        if e.get("log_tail"):
            detail += f"<details><summary>log tail</summary><pre>{_e(e['log_tail'])}</pre></details>"
        out.append(
            f'<tr data-id="{e["id"]}" data-kind="{_e(kind(e))}"><td data-v="{e["id"]}">{e["id"]}</td>'
            f'<td class="status" style="color:{STATUS_COLOUR.get(e["status"], "#222")}">{_e(e["status"])}{_kind_badge(e)}</td>'
            f'<td class="num metric" data-v="{"" if metric is None else repr(metric)}">{fmt(metric)}</td>'
            f'<td class="num">{e.get("runs_n") or len(e.get("runs", []))}</td><td class="num">{fmt(e.get("se"), 3)}</td>'
            f'<td class="num">{fmt(e.get("p_value"), 3)}</td><td>{_e(proposer_label(e))}</td>'
            f'<td>{_e(e["description"])}{detail}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def content_html(data: Mapping[str, Any]) -> str:
    """The report's body (what the dashboard refreshes)."""
    c, s, exps = data["campaign"], data["summary"], data["experiments"]
    goal = Goal(c["goal"])
    out = [summary_html(s)]
    out.append(f"<h2>Progress ({_e(c['metric'])}, {'lower' if goal is Goal.MINIMIZE else 'higher'} is better)</h2>")
    out.append(chart_svg(exps, goal))
    out.append(net_diff_html(data.get("net_diff")))
    out.append(importance_html(data.get("importance")))
    if any(e.get("params") for e in exps):
        out.append(f"<h2>Knob values against {_e(c['metric'])}</h2>")
        out.append(params_html(exps, data.get("param_logs") or {}))
    out.append("<h2>Timeline of slots</h2>")
    out.append(timeline_svg(exps))
    out.append(tables_html(data))
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
