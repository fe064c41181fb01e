"""The report as markdown, for a pull request: the summary, the net change from the base
commit to the incumbent (a diff of the editable files), the kept changes, parameter
importance, the ablation, and every experiment with the reason for its status."""

from __future__ import annotations

from typing import Any, Mapping

from ..sanitize import markdown_cell
from .data import proposer_label
from .netdiff import fence
from .text import ablation_effect, ablation_title, duration, effect_text, fmt, one_line


def _summary(c: Mapping[str, Any], s: Mapping[str, Any]) -> list[str]:
    best = s["best"]
    lines = [f"## autoresearch: campaign `{c['tag']}` ({c['metric']}, {c['goal']})", ""]
    lines.append(f"- experiments: {s['experiments']} (" + ", ".join(f"{k} {v}" for k, v in s["counts"].items() if v) + ")")
    if s.get("settings"):
        lines.append(f"- settings: {one_line(s['settings'])}")
    lines.append(f"- baseline {fmt(s['baseline'])} → best {fmt(best['metric']) if best else '-'}"
                 + (f" (#{best['id']}: {markdown_cell(best['description'])})" if best else "")
                 + f"; best vs baseline {effect_text(s['vs_baseline'])}")
    if s.get("net_check"):
        lines.append(f"- net check on fresh seeds: {s['net_check']}")
    if s.get("seedless"):
        lines.append(f"- note: {s['seedless']}")
    if s["crash_rate"] is not None:
        duty = "-" if s["duty"] is None else f"{100 * s['duty']:.1f} %"
        lines.append(f"- crash rate {100 * s['crash_rate']:.1f} %; wall {duration(s['wall_s'])}; duty cycle {duty}")
    if s["tokens"]:
        lines.append(f"- {s['tokens']} tokens, ${s['cost']:.4f}")
    return lines


def _net_diff(nd: Mapping[str, Any] | None) -> list[str]:
    if not nd:
        return []
    target = f"#{nd['to_id']} `{nd['to'][:7]}`" if nd.get("to") and nd.get("to_id") is not None else "the incumbent"
    lines = ["", f"### Net change: base `{nd['from'][:7]}` → {target} (editable files)", ""]
    if not nd["diff"]:
        return lines + [nd["note"] or "no difference."]
    if nd.get("stat"):
        lines += ["```", nd["stat"], "```", ""]
    f = fence(nd["diff"])
    lines += [f + "diff", nd["diff"], f]
    if nd.get("truncated"):
        lines.append(f"({nd['truncated']} more line(s) not shown: `git diff {nd['from'][:7]}..{nd['to'][:7]}`)")
    return lines


def _importance(imp: Mapping[str, Any] | None) -> list[str]:
    if not imp or imp.get("note", "").startswith("no knobs experiments"):
        return []
    lines = ["", f"### Parameter importance ({imp['method']}, {imp['trials']} trials)", ""]
    if not imp["importances"]:
        return lines + [imp["note"]]
    lines += ["| knob | importance |", "| --- | --- |"]
    lines += [f"| {markdown_cell(n)} | {v:.3f} |" for n, v in imp["importances"].items()]
    return lines


def report_markdown(data: Mapping[str, Any]) -> str:
    c, s = data["campaign"], data["summary"]
    lines = _summary(c, s)
    lines += _net_diff(data.get("net_diff"))
    lines += ["", "### Kept changes", "", f"| # | change | {c['metric']} | effect vs parent (95 % interval) |", "| --- | --- | --- | --- |"]
    for r in s["chain"]:
        lines.append(f"| {r['id']} | {markdown_cell(r['description'])} | {fmt(r['metric'])} | {effect_text(r if 'delta' in r else None)} |")
    lines += _importance(data.get("importance"))
    ab = data.get("ablation")
    if ab:
        lines += ["", f"### {ablation_title(ab)}", "",
                  "| variant | change | mean | effect when removed (95 % interval) | p | verdict |", "| --- | --- | --- | --- | --- | --- |"]
        for r in ab["rows"]:
            lines.append(f"| {markdown_cell(r['variant'])} | {markdown_cell(r['description'])} | {fmt(r.get('mean'))} | "
                         f"{ablation_effect(r)} | {fmt(r.get('p_value'), 3)} | "
                         f"{markdown_cell(r.get('verdict') or r.get('problem') or '')} |")
    lines += ["", "### All experiments", "", f"| # | status | {c['metric']} | runs | proposer | description | reason |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in data["experiments"]:
        lines.append(f"| {e['id']} | {e['status']} | {fmt(e.get('metric'))} | {e.get('runs_n') or len(e.get('runs', []))} | "
                     f"{markdown_cell(proposer_label(e))} | {markdown_cell(e['description'])} | {markdown_cell(one_line(e.get('reason') or ''))} |")
    return "\n".join(lines) + "\n"
