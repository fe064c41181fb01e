"""The ``status`` view of a campaign, as data (the ``status --json`` shape of DESIGN.md)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .engine.opening import LEDGER_FILE
from .errors import ArenaError, UsageError
from .records import Goal, Status
from .store.ledger import Campaign, Ledger
from .store.workspace import STATE_DIR


def open_ledger_readonly(arena: Path, tag: str | None) -> tuple[Ledger, Campaign]:
    path = arena / STATE_DIR / LEDGER_FILE
    if not path.is_file():
        raise ArenaError(f"no campaign has run in {arena} yet (no {STATE_DIR}/{LEDGER_FILE}); start one with `autoresearch run {arena}`")
    ledger = Ledger(path)
    campaign = ledger.campaign(tag) if tag else ledger.latest_campaign()
    if campaign is None:
        known = ", ".join(c.tag for c in ledger.campaigns()) or "none"
        ledger.close()
        raise UsageError(f"no campaign {tag!r} in {arena} (campaigns: {known})")
    return ledger, campaign


def _num(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def campaign_status(ledger: Ledger, campaign: Campaign) -> dict[str, Any]:
    goal = Goal(campaign.goal)
    runs_by_exp: dict[int, list[dict[str, Any]]] = {}
    for r in ledger.runs(campaign):
        runs_by_exp.setdefault(r["experiment_id"], []).append({
            "id": r["id"], "attempt": r["attempt"], "purpose": r["purpose"], "seed": r["seed"], "slot": r["slot"],
            "status": r["status"], "exit_code": r["exit_code"], "eval_exit_code": r["eval_exit_code"],
            "metric": _num(r["metric"]), "metrics": r["metrics"], "warnings": r["warnings"], "problem": r["problem"],
            "duration_s": r["duration_s"], "log_path": r["log_path"], "started_at": r["started_at"],
        })
    experiments = []
    counts: dict[str, int] = {}
    best = None
    baseline = None
    for e in ledger.experiments(campaign):
        counts[e.status.value] = counts.get(e.status.value, 0) + 1
        metrics = {k: _num(v) for k, v in e.metrics.items()}
        experiments.append({
            "id": e.id, "parent": e.parent, "commit": e.commit, "status": e.status.value,
            "description": e.description, "proposer": e.proposer, "reason": e.reason,
            "metrics": metrics, "runs": runs_by_exp.get(e.id, []), "attempt": e.attempt, "seed": e.seed,
            "tokens": e.tokens, "cost": e.cost, "log_path": e.log_path,
            "runs_n": e.runs_n, "mean": _num(e.metric) if e.runs_n else None, "se": _num(e.se), "p_value": _num(e.p_value),
        })
        if e.id == 0 and e.status is Status.KEEP:
            baseline = _num(e.metric)
        if e.status is Status.KEEP and _num(e.metric) is not None:
            if best is None or goal.better(e.metric, best["metric"]):  # type: ignore[arg-type]
                best = {"id": e.id, "commit": e.commit, "metric": e.metric, "description": e.description}
    return {
        "campaign": {
            "tag": campaign.tag, "branch": campaign.branch, "base_commit": campaign.base_commit,
            "metric": campaign.metric, "goal": campaign.goal, "created_at": campaign.created_at,
            "last_run_at": campaign.last_run_at, "counts": counts, "best": best, "baseline": baseline,
        },
        "experiments": experiments,
    }
