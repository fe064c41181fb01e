"""Which knobs mattered: Optuna's PED-ANOVA importance evaluator over the knobs history.

The study is rebuilt from the ledger, as the knobs proposer rebuilds it: one trial per
knobs experiment that produced a metric (keep or discard, dropped ones included: they
were measured), plus the incumbents those experiments started from (the baseline among
them), each point once, in the search spaces stored with the campaign's first knobs
proposal. PED-ANOVA needs no extra dependency (fANOVA needs scikit-learn) and is made for
small histories; it still needs a handful of trials in its top quantile, so below
``MIN_TRIALS`` the report says so instead of printing numbers that mean nothing.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

from ..records import Experiment, Goal, Status

MIN_TRIALS = 10
TOP_TRIALS = 5  # PED-ANOVA's guidance: at least 5 trials in the top quantile


def knob_points(history: Sequence[Experiment]) -> tuple[dict[str, Any], list[tuple[dict[str, Any], float]]]:
    """The stored spaces (as dicts) and the (params, metric) points of the knobs history, in
    Optuna's parameters, each point once (the first measurement of it). Pure."""
    spaces: dict[str, Any] = {}
    points: list[tuple[dict[str, Any], float]] = []
    seen: set[tuple] = set()

    def add(params: Any, metric: Any) -> None:
        if not hasattr(params, "items") or not isinstance(metric, (int, float)) or not math.isfinite(metric):
            return
        vector = {n: params.get(n) for n in spaces}
        if any(v is None for v in vector.values()):
            return
        key = tuple(sorted((n, repr(v)) for n, v in vector.items()))
        if key not in seen:
            seen.add(key)
            points.append((vector, float(metric)))

    for e in history:
        stored = e.meta.get("knobs") if hasattr(e.meta, "get") else None
        if not hasattr(stored, "get") or not hasattr(stored.get("params"), "items"):
            continue
        if not spaces and hasattr(stored.get("spaces"), "items"):
            spaces = dict(stored["spaces"])
        if not spaces:
            continue
        parent = stored.get("parent") or {}
        add(parent.get("params"), parent.get("metric"))
        if e.status in (Status.KEEP, Status.DISCARD):
            add(stored["params"], e.metric)
    return spaces, points


def param_importance(history: Sequence[Experiment], goal: Goal) -> dict[str, Any]:
    """``{"method", "trials", "importances": {knob: share}, "note"}``; ``importances`` is
    empty (and ``note`` says why) when there are too few trials or nothing varied."""
    spaces, points = knob_points(history)
    out: dict[str, Any] = {"method": "Optuna's PED-ANOVA", "trials": len(points), "importances": {},
                           "note": ""}
    if not spaces:
        out["note"] = "no knobs experiments in this campaign: importance is computed over the knobs history."
        return out
    if len(points) < MIN_TRIALS:
        out["note"] = (f"too few trials for parameter importance: {len(points)} distinct knob settings with a "
                       f"metric, at least {MIN_TRIALS} are needed (run more knobs experiments).")
        return out
    try:
        out["importances"] = _evaluate(spaces, points, goal)
    except Exception as e:  # a degenerate history (nothing varied) must not cost the report
        out["note"] = f"parameter importance could not be computed: {e}"
    if out["importances"] and not any(v > 0 for v in out["importances"].values()):
        out["importances"], out["note"] = {}, "no knob made a measurable difference among these trials."
    return out


def _evaluate(spaces: Mapping[str, Any], points: Sequence[tuple[dict[str, Any], float]], goal: Goal) -> dict[str, float]:
    import optuna
    from optuna.trial import create_trial

    from ..proposers.knob_space import Space
    from ..proposers.knob_study import contains

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {n: Space.from_dict(d).distribution() for n, d in spaces.items()}
    trials = []
    for params, metric in points:
        if all(contains(dists[n], v) for n, v in params.items()):
            trials.append(create_trial(params=params, distributions=dict(dists), value=metric))
    if len(trials) < MIN_TRIALS:
        raise ValueError(f"only {len(trials)} trials lie inside the stored search spaces")
    study = optuna.create_study(direction="minimize" if goal is Goal.MINIMIZE else "maximize")
    study.add_trials(trials)
    quantile = min(0.5, max(0.1, TOP_TRIALS / len(trials)))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
    sign = 1.0 if goal is Goal.MINIMIZE else -1.0  # PED-ANOVA takes lower as better
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-API notices
        result = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                         target=lambda t: sign * float(t.value))
    return {n: float(v) for n, v in result.items()}
