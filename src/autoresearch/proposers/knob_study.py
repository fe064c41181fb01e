"""The knobs proposer's study, rebuilt from the ledger (the ledger is the truth): each
knobs experiment on the same code becomes an Optuna trial, with the incumbents it started
from (the baseline among them); a resumed campaign rebuilds what an uninterrupted one
holds."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..progress import intermediate_values
from ..records import Experiment, Status
from .knob_space import Space


IMPUTED = "imputed"  # a stopped trial's user attribute: where it would have ended (``stopped_estimate``)
MAX_BEHIND = 1.0  # the share a stopped run's estimate is worse than its incumbent, at most (a diverged run: 13)


def ledger_trials(history: Sequence[Experiment], spaces: Mapping[str, Space], dists: Mapping[str, Any],
                  current: Mapping[str, Any], signature: str, incumbent_metric: float | None,
                  maximize: bool = False) -> list[Any]:
    """Optuna trials from the ledger's history: every knobs experiment on the same code,
    the incumbents they started from (the baseline among them), and the incumbent now. A
    run stopped early is a pruned trial, with its curve as intermediate values and, where
    known, the value it would have ended with (``stopped_estimate``, user attribute
    ``IMPUTED``)."""
    from optuna.trial import TrialState, create_trial

    out: list[Any] = []
    seen: set[tuple[Any, ...]] = set()

    def add(params: Mapping[str, Any], value: float | None, pruned: Mapping[int, float] | None = None) -> None:
        if any(params.get(nm) is None or not contains(dists[nm], params[nm]) for nm in spaces):
            return
        vector = {nm: params[nm] for nm in spaces}
        key = tuple(sorted(vector.items()))
        if key in seen:
            return
        seen.add(key)
        if pruned is not None:  # stopped early: Optuna's own notion, with its intermediate values
            attrs = {IMPUTED: value} if value is not None else {}
            out.append(create_trial(params=vector, distributions=dict(dists), state=TrialState.PRUNED,
                                    intermediate_values=dict(pruned), user_attrs=attrs))
        elif value is not None and math.isfinite(value):
            out.append(create_trial(params=vector, distributions=dict(dists), value=value))
        else:
            out.append(create_trial(params=vector, distributions=dict(dists), state=TrialState.FAIL))

    for e in history:
        stored = e.meta.get("knobs") if isinstance(e.meta, Mapping) else None
        if not stored or stored.get("signature") != signature:
            continue
        parent = stored.get("parent") or {}
        if parent.get("metric") is not None:
            add(parent.get("params", {}), parent["metric"])
        if e.status is Status.DISCARD and "stopped_early_at" in e.metrics:
            add(stored["params"], stopped_estimate(parent.get("metric"), e.metrics.get("stopped_behind"), maximize),
                pruned=intermediate_values(e.curves, e.log_path))
        elif e.status in (Status.KEEP, Status.DISCARD) and e.metric is not None:
            add(stored["params"], e.metric)
        elif e.status in (Status.CRASH, Status.TIMEOUT, Status.INVALID) and not e.never_ran:
            add(stored["params"], None)
    if incumbent_metric is not None:
        add({nm: spaces[nm].to_param(current[nm]) for nm in spaces}, incumbent_metric)
    return out


def stopped_estimate(incumbent: Any, behind: Any, maximize: bool) -> float | None:
    """Where a run stopped early would have ended: its incumbent's metric, worse by the
    share it was behind the incumbent's curve when stopped (``progress.behind``; at most
    ``MAX_BEHIND``, so one diverged run does not flatten the model's picture of the rest).
    A guess that the gap holds; the model learns from it how bad a region is, where the
    worst value said only that it was bad. None where either is unknown, or the incumbent's
    metric is 0 (no share of it is worse). Pure."""
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (incumbent, behind)) \
            or incumbent == 0:
        return None
    worse = min(MAX_BEHIND, max(0.0, float(behind))) * abs(float(incumbent))
    return float(incumbent) - worse if maximize else float(incumbent) + worse


def pending_points(history: Sequence[Experiment], signature: str, refused: bool = True) -> set[tuple]:
    """Points of knobs proposals on this code that have no result: still waiting or running,
    and with ``refused`` those refused before they ran (taken all the same: not proposed
    again)."""
    return {
        tuple(sorted(e.meta["knobs"]["params"].items()))
        for e in history
        if (not e.status.terminal or (refused and e.never_ran)) and isinstance(e.meta, Mapping)
        and isinstance(e.meta.get("knobs"), Mapping) and e.meta["knobs"].get("signature") == signature
    }


# a point in flight has no result yet, so a model asked again proposes nearly the same point
# (a GP: 13 of 96 proposals made with one in flight within 0.01 of it, down to 1e-5, on the
# synthetic landscape): such a point counts as taken (unit cube, the largest coordinate)
IN_FLIGHT_GAP = 0.01


def near_any(spaces: Mapping[str, Any], params: Mapping[str, Any], points: Sequence[Mapping[str, Any]],
             gap: float) -> bool:
    """Whether ``params`` lie within ``gap`` of one of ``points`` in every numeric knob of
    ``spaces`` (the unit cube, log-scaled where the space is), the same in each choice. Pure."""
    from .knob_strategy import to_unit

    def apart(p: Mapping[str, Any], nm: str) -> float:
        sp = spaces[nm]
        if sp.kind == "choice":
            return 0.0 if p[nm] == params[nm] else 1.0
        return abs(to_unit(sp, p[nm]) - to_unit(sp, params[nm]))

    return any(all(nm in p and nm in params and apart(p, nm) < gap for nm in spaces) for p in points)


def contains(dist: Any, param: Any) -> bool:
    """Whether an Optuna distribution holds a param (False where it cannot even read it)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(param)))
    except (ValueError, TypeError):
        return False
