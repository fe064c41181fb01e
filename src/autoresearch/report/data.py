"""What a report shows, computed from the ledger: pure functions over the ``status`` data
(plus diffs and log tails), shared by the HTML and markdown reports and the dashboard."""

from __future__ import annotations

import bisect

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..campaign_config import settings_text
from ..store.ledger import Campaign, Ledger, sessions
from ..records import Goal
from ..status import campaign_status, seedless_note
from .text import net_check

Z95 = 1.959964


def report_data(ledger: Ledger, campaign: Campaign, arena: Path | None = None) -> dict[str, Any]:
    """The status data with each experiment's diff, warnings and last log tail added, the
    summary (see ``summarize``), the knobs' importance and search scales, and (given the
    arena, whose git it reads) the net diff from the base commit to the incumbent."""
    from .importance import param_importance
    from .netdiff import net_diff

    data = campaign_status(ledger, campaign)
    history = ledger.experiments(campaign)
    extra = {e.id: e for e in history}
    tails: dict[int, str] = {}
    for r in ledger.runs(campaign):
        tails[r["experiment_id"]] = r["log_tail"]
    for e in data["experiments"]:
        x = extra[e["id"]]
        e["diff"] = x.diff
        e["log_tail"] = tails.get(e["id"], "")
        e["metric"] = _num(x.metric)
        e["source"] = proposal_source(x.meta)
    data["summary"] = summarize(data["campaign"], data["experiments"], sessions(ledger, campaign))
    data["summary"]["settings"] = settings_text(campaign.config)  # what the campaign ran with (campaign_config.py)
    data["ablation"] = ledger.latest_ablation(campaign)
    data["summary"]["net_check"] = net_check(data["ablation"], data["summary"]["best"])
    data["importance"] = param_importance(history, Goal(campaign.goal))
    data["param_logs"] = log_scales(history)
    _baseline_params(data["experiments"], history)
    if arena is not None:
        tip = incumbent(data["experiments"])
        editable = list((campaign.config.get("arena") or {}).get("editable") or [])
        data["net_diff"] = net_diff(arena, campaign.base_commit, tip["commit"] if tip else None, editable)
        data["net_diff"]["to_id"] = tip["id"] if tip else None
    return data


def proposal_source(meta: Any) -> str:
    """What made a knobs proposal (``knobs.SOURCES``: the surface, the GP, a local move, ...),
    as its meta recorded it; "" for other proposers and for ledgers older than the record."""
    stored = meta.get("knobs") if hasattr(meta, "get") else None
    source = stored.get("source") if hasattr(stored, "get") else None
    return source if isinstance(source, str) else ""


def proposer_label(e: Mapping[str, Any]) -> str:
    """The proposer, with what made the proposal where it recorded that: ``knobs (surface)``."""
    return f'{e["proposer"]} ({e["source"]})' if e.get("source") else str(e["proposer"])


def incumbent(experiments: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The tip of the chain of kept commits (the branch's last keep): the kept experiment
    no other kept experiment starts from. Pure."""
    kept = [e for e in experiments if e["status"] == "keep" and e.get("commit")]
    parents = {e.get("parent") for e in kept}
    tips = [e for e in kept if e["commit"] not in parents]
    return max(tips, key=lambda e: e["id"]) if tips else None


def log_scales(history: Sequence[Any]) -> dict[str, bool]:
    """Knob name -> whether its search space is logarithmic (log, or powers of two), from
    the spaces stored with the campaign's knobs proposals. Pure."""
    for e in history:
        stored = e.meta.get("knobs") if hasattr(e.meta, "get") else None
        spaces = stored.get("spaces") if hasattr(stored, "get") else None
        if hasattr(spaces, "items"):
            return {n: bool(d.get("log")) or d.get("kind") == "pow2" for n, d in spaces.items() if hasattr(d, "get")}
    return {}


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def effect(a: float, b: float, se_a: float | None, se_b: float | None, goal: Goal | None = None) -> dict[str, Any]:
    """a - b with a 95 % interval when both standard errors are known; with ``goal``, also
    whether a is better than b (the words the reports print). Pure."""
    half = Z95 * math.sqrt(se_a ** 2 + se_b ** 2) if se_a is not None and se_b is not None else None
    out: dict[str, Any] = {"delta": a - b, "ci": half, "pct": (a - b) / abs(b) * 100 if b else None}
    if goal is not None:
        out["better"] = goal.better(a, b)
    return out


def active_wall(spans: Sequence[tuple[float, float]], sessions: Sequence[float]) -> float:
    """The campaign's wall time: for each session (``autoresearch run`` started at each time
    in ``sessions``; none known: one session), from its first run's start to its last run's
    end, summed. So the days a campaign sat stopped between an interrupt and its resume are
    not its time. ``spans``: (start, end) of each run. Pure."""
    starts = sorted(sessions)
    groups: dict[int, list[tuple[float, float]]] = {}
    for a, b in spans:
        groups.setdefault(bisect.bisect_right(starts, a), []).append((a, b))
    return sum(max(b for _, b in g) - min(a for a, _ in g) for g in groups.values())


def summarize(campaign: Mapping[str, Any], experiments: Sequence[Mapping[str, Any]],
              sessions: Sequence[float] = ()) -> dict[str, Any]:
    """Counts, crash rate, best vs baseline (with a 95 % interval when the judge measured
    standard errors), the chain of kept changes with effect sizes, wall time (``active_wall``
    over the campaign's ``sessions``: when each ``run`` started), duty cycle (time inside
    runs / wall time / slots), tokens and money. Pure."""
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
            row.update(effect(e["metric"], parent["metric"], e.get("se"), parent.get("se"), goal))
        chain.append(row)
    vs_baseline = None
    if best is not None and baseline is not None and baseline.get("metric") is not None:
        vs_baseline = effect(best["metric"], baseline["metric"], best.get("se"), baseline.get("se"), goal)
    # a baseline attempt that failed (and was fixed, maybe days later) is not the campaign's time; one
    # that was interrupted and resumed is (reviews)
    base = next((e for e in experiments if e["id"] == 0), {})
    cut = {r.get("attempt") or 1 for r in base.get("runs", [])} - {r.get("attempt") or 1 for r in base.get("runs", [])
                                                                   if r.get("status") == "interrupted"}
    cut.discard(base.get("attempt") or 1)
    runs = [r for e in experiments for r in e.get("runs", []) if r.get("duration_s") is not None and r.get("started_at")
            and not (e["id"] == 0 and (r.get("attempt") or 1) in cut)]
    wall = busy = duty = None
    slots = len({r.get("slot") for r in runs}) or 1
    if runs:
        wall = active_wall([(r["started_at"], r["started_at"] + r["duration_s"]) for r in runs], sessions)
        busy = sum(r["duration_s"] for r in runs)
        duty = busy / (wall * slots) if wall > 0 else None
    return {
        "experiments": len(done), "counts": counts, "candidates": len(candidates),
        "crash_rate": failed / len(candidates) if candidates else None,
        "baseline": baseline["metric"] if baseline else None, "seedless": seedless_note(experiments),
        "best": {"id": best["id"], "metric": best["metric"], "description": best["description"], "commit": best["commit"]} if best else None,
        "vs_baseline": vs_baseline, "chain": chain, "wall_s": wall, "busy_s": busy, "duty": duty, "slots": slots,
        "tokens": sum(int(e.get("tokens") or 0) for e in experiments),
        "cost": sum(float(e.get("cost") or 0.0) for e in experiments),
        "runs": sum(len(e.get("runs", [])) for e in experiments),
    }


def _baseline_params(experiments: Sequence[dict[str, Any]], history: Sequence[Any]) -> None:
    """The baseline's knob values (for the parameter plots), from the first knobs proposal
    made on the baseline, which stored the values it started from."""
    from ..status import knob_values

    base = next((e for e in experiments if e["id"] == 0), None)
    if base is None or base.get("params") or not base.get("commit"):
        return
    for e in history:
        stored = e.meta.get("knobs") if hasattr(e.meta, "get") else None
        parent = stored.get("parent") if hasattr(stored, "get") else None
        if e.parent == base["commit"] and hasattr(parent, "get") and hasattr(parent.get("params"), "items"):
            values = knob_values({"knobs": {"params": parent["params"], "spaces": stored.get("spaces") or {}}})
            if values:
                base["params"] = values
            return
