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


def open_ledger_readonly(arena: Path, tag: str | None, *, readonly: bool = True) -> tuple[Ledger, Campaign]:
    """The arena's ledger (read-only unless asked: status, report and the dashboard write
    nothing) and a campaign in it: ``tag``, or the one last run."""
    path = arena / STATE_DIR / LEDGER_FILE
    if not path.is_file():
        from .store.recovery import read_campaigns

        lost = [c["tag"] for c in read_campaigns(arena / STATE_DIR)]
        if lost:
            raise ArenaError(f"the ledger {path} is missing, but the recovery records of campaign(s) {', '.join(lost)} "
                             f"are there: `autoresearch doctor {arena} --repair` rebuilds it")
        from .config_hints import above_hint

        raise ArenaError(f"no campaign has run in {arena} yet (no {STATE_DIR}/{LEDGER_FILE}); start one with "
                         f"`autoresearch run {arena}`" + above_hint(arena, "status"))
    ledger = Ledger(path, readonly=readonly)
    try:
        campaign = ledger.campaign(tag) if tag else ledger.latest_campaign()
        if campaign is None and tag is None:
            raise ArenaError(f"no campaign has run in {arena} yet (the ledger holds none); start one with "
                             f"`autoresearch run {arena}`")
        if campaign is None:
            known = ", ".join(c.tag for c in ledger.campaigns()) or "none"
            raise UsageError(f"--tag {tag!r}: no such campaign in {arena} (campaigns: {known})")
    except BaseException:
        ledger.close()
        raise
    return ledger, campaign


def harness_alive(arena: Path, tag: str) -> bool:
    """Whether a harness holds the campaign's lock now (a ``running`` experiment without one
    is what a killed harness left; the next ``run`` resumes it)."""
    import fcntl

    path = arena / STATE_DIR / "locks" / f"{tag}.lock"
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def _num(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def campaign_status(ledger: Ledger, campaign: Campaign, arena: Path | None = None) -> dict[str, Any]:
    goal = Goal(campaign.goal)
    runs_by_exp: dict[int, list[dict[str, Any]]] = {}
    for r in ledger.runs(campaign):
        runs_by_exp.setdefault(r["experiment_id"], []).append({
            "id": r["id"], "attempt": r["attempt"], "purpose": r["purpose"], "seed": r["seed"], "slot": r["slot"],
            "status": r["status"], "exit_code": r["exit_code"], "eval_exit_code": r["eval_exit_code"],
            "metric": _num(r["metric"]), "metrics": r["metrics"], "warnings": r["warnings"], "problem": r["problem"],
            "duration_s": r["duration_s"], "log_path": r["log_path"], "started_at": r["started_at"],
            "finished_at": r["finished_at"],
        })
        if "stopped_early_at" in r["metrics"]:  # a run the early-stopping rule stopped (docs/early-stopping.md)
            runs_by_exp[r["experiment_id"]][-1]["stopped_early_at"] = r["metrics"]["stopped_early_at"]
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
        params = knob_values(e.meta)
        if params is not None:
            experiments[-1]["params"] = params
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
            "harness": None if arena is None else ("running" if harness_alive(arena, campaign.tag) else "stopped"),
        },
        "experiments": experiments,
    }


def seedless_note(experiments: Any) -> str:
    """``calibration.same_every_run`` where the baseline's calibration is complete and its
    runs all gave one value (a standard error of 0 over two runs or more); "" otherwise.
    Until 2026-12-05 only the console said so, once (a newcomer's trial: a script with a
    fixed torch.manual_seed; status and the report showed intervals of ±0 and nothing
    more). Pure."""
    from .engine.calibration import PARTIAL, same_every_run

    base = next((e for e in experiments if e["id"] == 0 and e["status"] == "keep"), None)
    if base is None or (base.get("runs_n") or 0) < 2 or base.get("se") != 0 or PARTIAL in (base.get("reason") or ""):
        return ""
    return same_every_run(int(base["runs_n"]), base["mean"])


def knob_values(meta: Any) -> dict[str, Any] | None:
    """A knobs experiment's values, in the user's units (never Optuna's exponents or
    ``1 - x``): stored as such since they were, converted from the stored spaces before."""
    from .proposers.knob_space import Space

    knobs = meta.get("knobs") if hasattr(meta, "get") else None
    if not hasattr(knobs, "get") or not hasattr(knobs.get("params"), "items"):
        return None
    if hasattr(knobs.get("values"), "items"):
        return dict(knobs["values"])
    spaces = knobs.get("spaces") or {}
    out = {}
    for name, param in knobs["params"].items():
        try:
            out[name] = Space.from_dict(spaces[name]).to_value(param) if name in spaces else param
        except (KeyError, TypeError, ValueError):
            out[name] = param
    return out
