"""Number, duration and effect formatting shared by the HTML and markdown reports. Pure."""

from __future__ import annotations

import math
from typing import Any, Mapping


def fmt(x: float | None, digits: int = 6) -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def effect_text(eff: Mapping[str, Any] | None) -> str:
    if not eff:
        return "-"
    if eff.get("better") is None:  # no goal known: the signed difference
        text = f"{eff['delta']:+.4g}"
        if eff.get("ci") is not None:
            text += f" ± {eff['ci']:.2g}"
        return text + (f" ({eff['pct']:+.2f} %)" if eff.get("pct") is not None else "")
    if eff["delta"] == 0:
        return "no change"
    text = f"{abs(eff['delta']):.4g}" + (f" ({abs(eff['pct']):.2f} %)" if eff.get("pct") is not None else "")
    text += " better" if eff["better"] else " worse"
    return text + (f", 95 % interval ±{eff['ci']:.2g}" if eff.get("ci") is not None else "")


def ablation_effect(r: Mapping[str, Any]) -> str:
    if r.get("effect") is None:
        return "-"
    return f"{r['effect']:+.4g}" + (f" ± {r['ci']:.2g}" if r.get("ci") is not None else "")


def ablation_title(ab: Mapping[str, Any]) -> str:
    """The ablation section's title: leave-one-out, or ``--net`` alone (no variant without a
    change: a newcomer's trial read "leave-one-out" over two rows). Pure."""
    kind = ("leave-one-out" if any(str(r.get("variant", "")).startswith("without") for r in ab.get("rows", []))
            else "the final incumbent against the baseline")
    return f"Ablation ({kind}, {ab['runs']} run(s) per variant, fresh seeds)"


def net_check(ab: Mapping[str, Any] | None, best: Mapping[str, Any] | None) -> str | None:
    """The latest ablation's net check (the final incumbent against the baseline, on fresh
    seeds), for the summary beside the campaign's own best-vs-baseline: a newcomer's trial
    read "3.43 % better" at the top while the check further down said "not confirmed".
    None without one. Pure."""
    rows = {r.get("variant"): r for r in (ab or {}).get("rows", [])}
    base, full = rows.get("baseline"), rows.get("full") or {}
    if not base or not base.get("verdict"):
        return None
    p = f", p = {base['p_value']:.3g}" if base.get("p_value") is not None else ""
    then = full.get("commit")
    earlier = f" (of an earlier incumbent, {then[:7]})" if then and best and best.get("commit") != then else ""
    return (f"{base['verdict']}: {ablation_effect(base)} on {len(base.get('runs') or [])} fresh seed(s){p}"
            f"{earlier} (`autoresearch ablate`)")


def one_line(text: str, n: int = 160) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"
