"""The report's charts as inline SVG (self-contained, no script needed): the progress chart,
the parameter-vs-metric small multiples, and the timeline of slots. Pure functions of the
report's data."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..records import Goal
from .axes import Scale, _e, axis_svg, pow2_ticks, span, tick_label

# How each kind of experiment is drawn: (colour, radius, filled). A kind is the status, with
# two refinements a reader must not take for ordinary results: "dropped" (a discard that beat
# its parent but could not be re-applied to the new incumbent) and "stale" (refused because
# it was proposed for an incumbent that had moved).
KIND_STYLE = {
    "keep": ("#2ca02c", 5.0, True), "discard": ("#9a9a9a", 3.5, True), "dropped": ("#ff7f0e", 5.5, False),
    "invalid": ("#bcbd22", 4.5, False), "stale": ("#8c564b", 4.5, False), "crash": ("#d62728", 4.0, True),
    "timeout": ("#9467bd", 4.0, True), "interrupted": ("#17becf", 4.0, False), "running": ("#1f77b4", 4.0, False),
    "pending": ("#aaaaaa", 4.0, False),
}
KIND_LABEL = {
    "keep": "kept", "discard": "discarded", "dropped": "dropped (beat its parent; the incumbent moved)",
    "invalid": "invalid", "stale": "stale (proposed for an old incumbent)", "crash": "crash", "timeout": "timeout",
    "interrupted": "interrupted", "running": "running", "pending": "pending",
}


def kind(e: Mapping[str, Any]) -> str:
    """An experiment's kind for the charts: its status, or ``dropped`` / ``stale``. Pure."""
    reason = str(e.get("reason") or "")
    if e["status"] == "discard" and reason.startswith("dropped"):
        return "dropped"
    if e["status"] == "invalid" and reason.startswith("stale"):
        return "stale"
    return str(e["status"])


def marker(k: str, x: float, y: float, attrs: str, title: str) -> str:
    colour, r, filled = KIND_STYLE.get(k, ("#222", 4.0, True))
    paint = f'fill="{colour}"' if filled else f'fill="#fff" stroke="{colour}" stroke-width="2"'
    return f'<circle {attrs} cx="{x:.1f}" cy="{y:.1f}" r="{r}" {paint}><title>{_e(title)}</title></circle>'


def cross(k: str, x: float, y: float, attrs: str, title: str) -> str:
    """The mark of an experiment without a metric (drawn on a strip under the axis)."""
    colour = KIND_STYLE.get(k, ("#222", 4.0, True))[0]
    return (f'<path {attrs} d="M{x - 4:.1f},{y - 4:.1f} L{x + 4:.1f},{y + 4:.1f} M{x - 4:.1f},{y + 4:.1f} '
            f'L{x + 4:.1f},{y - 4:.1f}" stroke="{colour}" stroke-width="2"><title>{_e(title)}</title></path>')


def legend(kinds: Sequence[str], x: float, y: float, crosses: set[str] = set()) -> str:
    """The key of the kinds shown (as a cross those only shown without a metric)."""
    parts, at = [], x
    for k in kinds:
        draw = cross if k in crosses else marker
        parts.append(draw(k, at + 5, y - 4, f'class="key {k}"', KIND_LABEL.get(k, k)))
        parts.append(f'<text x="{at + 14}" y="{y}">{_e(KIND_LABEL.get(k, k))}</text>')
        at += 24 + 6.2 * len(KIND_LABEL.get(k, k))
    return "".join(parts)


def _order(kinds: set[str]) -> list[str]:
    return [k for k in KIND_STYLE if k in kinds]


def chart_svg(experiments: Sequence[Mapping[str, Any]], goal: Goal, width: int = 1000, height: int = 340) -> str:
    """The progress chart: every experiment with a metric by its kind, the running best, and
    the experiments without a metric as crosses on a strip under the axis."""
    done = [e for e in experiments if e["status"] not in ("running", "pending")]
    pts = [e for e in done if e.get("metric") is not None]
    if not pts:
        return '<svg id="chart" width="100%" height="40"><text x="10" y="24">no metrics yet</text></svg>'
    pad_l, pad_r, pad_t, pad_b = 70, 20, 28, 58
    x_lo, x_hi = span([e["id"] for e in done])
    sx = Scale(x_lo, x_hi, pad_l, width - pad_r)
    sy = Scale(*span([e["metric"] for e in pts]), height - pad_b, pad_t)
    base = height - pad_b
    parts = [f'<svg id="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="progress chart">',
             axis_svg(sy, vertical=True, at=pad_l, length=(pad_l, width - pad_r)),
             axis_svg(sx, vertical=False, at=base, length=(pad_t, base), label=lambda t: tick_label(t) if t == int(t) else ""),
             f'<text x="{(width + pad_l) / 2:.0f}" y="{height - 4}" text-anchor="middle">experiment #</text>']
    path, best = [], None
    for e in pts:
        if e["status"] == "keep" and (best is None or goal.better(e["metric"], best)):
            best = e["metric"]
        if best is not None:
            path.append((sx(e["id"]), sy(best)))
    if path:
        d = f"M{path[0][0]:.1f},{path[0][1]:.1f}" + "".join(f" H{x:.1f} V{y:.1f}" for x, y in path[1:])
        parts.append(f'<path id="best-line" d="{d}" fill="none" stroke="#2ca02c" stroke-width="1.5" opacity="0.7"/>')
    for e in pts:
        k = kind(e)
        parts.append(marker(k, sx(e["id"]), sy(e["metric"]),
                            f'class="pt {e["status"]} {k}" data-id="{e["id"]}" data-metric="{e["metric"]!r}"',
                            f'#{e["id"]} {k}: {e["description"]}: {e["metric"]:.6g}' + _why(e)))
    strip = base + 28
    if any(e.get("metric") is None for e in done):
        parts.append(f'<text x="{pad_l - 6}" y="{strip + 4}" text-anchor="end">no metric</text>')
    for e in done:
        if e.get("metric") is None:
            k = kind(e)
            parts.append(cross(k, sx(e["id"]), strip, f'class="nm {e["status"]} {k}" data-id="{e["id"]}"',
                               f'#{e["id"]} {k} (no metric): {e["description"]}' + _why(e)))
    with_metric = {kind(e) for e in pts}
    parts.append(legend(_order({kind(e) for e in done}), pad_l, 14, {kind(e) for e in done} - with_metric))
    parts.append("</svg>")
    return "".join(parts)


def _why(e: Mapping[str, Any]) -> str:
    reason = " ".join(str(e.get("reason") or "").split())
    return f" — {reason[:200]}" if reason and e["status"] != "keep" else ""


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def param_panel(name: str, rows: Sequence[tuple[Any, float, Mapping[str, Any]]], log: bool, y_span: tuple[float, float],
                w: int = 300, h: int = 210) -> str:
    """One knob against the metric: x its value (log axis when its space is), y the metric."""
    pad_l, pad_r, pad_t, pad_b = 56, 12, 22, 34
    values = [v for v, _, _ in rows]
    sy = Scale(*y_span, h - pad_b, pad_t)
    if _numeric(values):
        log = log and min(values) > 0
        lo, hi = (min(values) / 1.15, max(values) * 1.15) if log else span(values)
        sx = Scale(lo, hi, pad_l, w - pad_r, log=log)
        xaxis = axis_svg(sx, vertical=False, at=h - pad_b, length=(pad_t, h - pad_b), n=4,
                         ticks=pow2_ticks(values, 4) if log else None)
        pos = {v: sx(v) for v in values}
    else:  # choices: one column each
        cats = sorted({repr(v) for v in values})
        step = (w - pad_l - pad_r) / (len(cats) + 1)
        pos = {v: pad_l + step * (cats.index(repr(v)) + 1) for v in values}
        xaxis = "".join(f'<text class="tick" x="{pad_l + step * (i + 1):.1f}" y="{h - pad_b + 15}" text-anchor="middle">'
                        f'{_e(c)}</text>' for i, c in enumerate(cats))
    parts = [f'<svg class="param" data-param="{_e(name)}" viewBox="0 0 {w} {h}" width="{w}" role="img">',
             f'<text x="{pad_l}" y="14" font-weight="600">{_e(name)}{" (log)" if log else ""}</text>',
             axis_svg(sy, vertical=True, at=pad_l, length=(pad_l, w - pad_r), n=4), xaxis]
    for v, metric, e in rows:
        k = kind(e)
        parts.append(marker(k, pos[v], sy(metric), f'class="pp {k}" data-id="{e["id"]}"',
                            f'#{e["id"]} {name} = {v}: {metric:.6g} ({k})'))
    parts.append("</svg>")
    return "".join(parts)


def params_html(experiments: Sequence[Mapping[str, Any]], logs: Mapping[str, bool]) -> str:
    """Small multiples: one scatter per knob of its value against the metric, for every knobs
    experiment with a metric (the baseline's values from the first proposal's parent)."""
    pts = [e for e in experiments if e.get("params") and e.get("metric") is not None]
    if not pts:
        return '<p id="params" class="note">no knobs experiment with a metric yet.</p>'
    names = sorted({n for e in pts for n in e["params"]})
    y_span = span([e["metric"] for e in pts])
    out = ['<div id="params">']
    for name in names:
        rows = [(e["params"][name], e["metric"], e) for e in pts if name in e["params"]]
        out.append(param_panel(name, rows, logs.get(name, False), y_span))
    out.append("</div>")
    return "".join(out)


def lanes(runs: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Runs grouped into timeline lanes: one per slot, split where two runs of one slot label
    overlap in time (slots that share a label must still both show). Pure."""
    by_slot: dict[str, list[list[Mapping[str, Any]]]] = {}
    for r in sorted(runs, key=lambda r: (r["start"], r["end"])):
        rows = by_slot.setdefault(str(r.get("slot") or "?"), [])
        for row in rows:
            if row[-1]["end"] <= r["start"] + 1e-6:
                row.append(r)
                break
        else:
            rows.append([r])
    out = []
    for slot in sorted(by_slot):
        rows = by_slot[slot]
        out += [(slot if len(rows) == 1 else f"{slot} ({i + 1})", row) for i, row in enumerate(rows)]
    return out


def timeline_runs(experiments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every run with a start, as {exp, kind, purpose, slot, start, end, status}. Pure."""
    out = []
    for e in experiments:
        for r in e.get("runs", []):
            if r.get("started_at") is None:
                continue
            end = r.get("finished_at") or (r["started_at"] + r["duration_s"] if r.get("duration_s") is not None else None)
            out.append({"exp": e["id"], "kind": kind(e), "purpose": r.get("purpose") or "", "slot": r.get("slot"),
                        "start": r["started_at"], "end": end if end is not None else r["started_at"],
                        "status": r.get("status") or "", "description": e["description"]})
    return out


def timeline_svg(experiments: Sequence[Mapping[str, Any]], width: int = 1000) -> str:
    """Which slot ran which experiment when: one lane per slot, one bar per run (coloured by
    the experiment's kind, labelled with its number), time in seconds from the first start."""
    runs = timeline_runs(experiments)
    if not runs:
        return '<svg id="timeline" width="100%" height="40"><text x="10" y="24">no runs yet</text></svg>'
    t0 = min(r["start"] for r in runs)
    t1 = max(max(r["end"] for r in runs), t0 + 1e-3)
    rows = lanes(runs)
    lane_h, pad_l, pad_r, pad_t = 22, 120, 20, 10
    height = pad_t + lane_h * len(rows) + 40
    minutes = t1 - t0 >= 180
    sx = Scale(0.0, (t1 - t0) / (60 if minutes else 1), pad_l, width - pad_r)
    parts = [f'<svg id="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="timeline of slots">',
             axis_svg(sx, vertical=False, at=pad_t + lane_h * len(rows) + 2, length=(pad_t, pad_t + lane_h * len(rows))),
             f'<text x="{(width + pad_l) / 2:.0f}" y="{height - 4}" text-anchor="middle">'
             f'{"minutes" if minutes else "seconds"} since the first run</text>']
    unit = 60 if minutes else 1
    for i, (slot, lane) in enumerate(rows):
        y = pad_t + i * lane_h
        parts.append(f'<text class="lane" x="{pad_l - 6}" y="{y + 15}" text-anchor="end">{_e(slot)}</text>')
        for r in lane:
            x0, x1 = sx((r["start"] - t0) / unit), sx((r["end"] - t0) / unit)
            colour = KIND_STYLE.get(r["kind"], ("#222",))[0]
            wbar = max(x1 - x0, 2.0)
            parts.append(f'<g class="run" data-exp="{r["exp"]}" data-slot="{_e(slot)}"><rect x="{x0:.1f}" y="{y + 3}" '
                         f'width="{wbar:.1f}" height="{lane_h - 6}" fill="{colour}" opacity="0.8"/>'
                         f'<title>#{r["exp"]} {_e(r["purpose"])} on {_e(slot)}: {r["end"] - r["start"]:.1f} s, '
                         f'{_e(r["kind"])}: {_e(r["description"])}</title>')
            if wbar > 22:
                parts.append(f'<text x="{x0 + 3:.1f}" y="{y + 15}" fill="#fff" style="fill:#fff">#{r["exp"]}</text>')
            parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
