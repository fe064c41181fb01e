"""What a report shows, computed from the ledger: pure functions over the ``status`` data
(plus diffs and log tails), shared by the HTML and markdown reports and the dashboard."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..store.ledger import Campaign, Ledger
from ..records import Goal
from ..status import campaign_status

Z95 = 1.959964


def report_data(ledger: Ledger, campaign: Campaign) -> dict[str, Any]:
    """The status data with each experiment's diff, warnings and last log tail added, and
    the summary (see ``summarize``)."""
    data = campaign_status(ledger, campaign)
    extra = {e.id: e for e in ledger.experiments(campaign)}
    tails: dict[int, str] = {}
    for r in ledger.runs(campaign):
        tails[r["experiment_id"]] = r["log_tail"]
    for e in data["experiments"]:
        x = extra[e["id"]]
        e["diff"] = x.diff
        e["log_tail"] = tails.get(e["id"], "")
        e["metric"] = _num(x.metric)
    data["summary"] = summarize(data["campaign"], data["experiments"])
    data["ablation"] = ledger.latest_ablation(campaign)
    return data


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def effect(a: float, b: float, se_a: float | None, se_b: float | None) -> dict[str, float | None]:
    """a - b with a 95 % interval when both standard errors are known. Pure."""
    half = Z95 * math.sqrt(se_a ** 2 + se_b ** 2) if se_a is not None and se_b is not None else None
    return {"delta": a - b, "ci": half, "pct": (a - b) / abs(b) * 100 if b else None}


def summarize(campaign: Mapping[str, Any], experiments: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, crash rate, best vs baseline (with a 95 % interval when the judge measured
    standard errors), the chain of kept changes with effect sizes, wall time, duty cycle
    (time inside runs / wall time / slots), tokens and money. Pure."""
    goal = Goal(campaign["goal"])
    done = [e for e in experiments if e["status"] in ("keep", "discard", "crash", "timeout", "invalid")]
    counts = {s: sum(1 for e in done if e["status"] == s) for s in ("keep", "discard", "crash", "timeout", "invalid")}
    candidates = [e for e in done if e["id"] > 0]
    failed = sum(1 for e in candidates if e["status"] in ("crash", "timeout"))
    by_commit = {e["commit"]: e for e in experiments if e["status"] == "keep" and e.get("commit")}
    baseline = next((e for e in experiments if e["id"] == 0 and e["status"] == "keep"), None)
    kept = [e for e in experiments if e["status"] == "keep" and e.get("metric") is not None]
    best = None
    for e in kept:
        if best is None or goal.better(e["metric"], best["metric"]):
            best = e
    chain = []
    for e in kept:
        if e["id"] == 0:
            continue
        parent = by_commit.get(e.get("parent"))
        row = {"id": e["id"], "description": e["description"], "metric": e["metric"], "parent_id": parent["id"] if parent else None}
        if parent is not None and parent.get("metric") is not None:
            row.update(effect(e["metric"], parent["metric"], e.get("se"), parent.get("se")))
        chain.append(row)
    vs_baseline = None
    if best is not None and baseline is not None and baseline.get("metric") is not None:
        vs_baseline = effect(best["metric"], baseline["metric"], best.get("se"), baseline.get("se"))
    runs = [r for e in experiments for r in e.get("runs", []) if r.get("duration_s") is not None and r.get("started_at")]
    wall = busy = duty = None
    slots = len({r.get("slot") for r in runs}) or 1
    if runs:
        start = min(r["started_at"] for r in runs)
        end = max(r["started_at"] + r["duration_s"] for r in runs)
        wall = end - start
        busy = sum(r["duration_s"] for r in runs)
        duty = busy / (wall * slots) if wall > 0 else None
    return {
        "experiments": len(done), "counts": counts, "candidates": len(candidates),
        "crash_rate": failed / len(candidates) if candidates else None,
        "baseline": baseline["metric"] if baseline else None,
        "best": {"id": best["id"], "metric": best["metric"], "description": best["description"], "commit": best["commit"]} if best else None,
        "vs_baseline": vs_baseline, "chain": chain, "wall_s": wall, "busy_s": busy, "duty": duty, "slots": slots,
        "tokens": sum(int(e.get("tokens") or 0) for e in experiments),
        "cost": sum(float(e.get("cost") or 0.0) for e in experiments),
        "runs": sum(len(e.get("runs", [])) for e in experiments),
    }
