"""What Optuna's GP sees of the study, in the knobs proposer.

- **Runs stopped early** count as where they would have ended (their incumbent's value,
  worse by the share their curve was behind when stopped: ``knob_study.stopped_estimate``),
  **runs that crashed** (or timed out, or gave no metric), and runs stopped before that
  share was recorded, as the worst finished value (``unfinished_as_worst``): Optuna's GP
  ignores pruned and failed trials, and without this it proposed the point it had just seen
  stopped early, or crash, again. With the estimate, the demo's GP learns how bad each
  stopped region was (36 % behind at 15 % of the budget, or 4 %), and the model starts
  after 4 runs even where most are stopped (BENCHMARKS.md).
- **Finished values, in the default strategy** (``sampler = "auto"``), are warped
  (``tail_warp``): the GP sees ``log(1 + (value - best) / s)``, where ``s`` is the median
  of the gaps ``value - best`` over the finished values (the best's own zero included;
  the upper of the middle two). Near the best the warp is linear, so the
  model keeps its resolution where the optimum is; far from it the warp is logarithmic, so a
  few huge values (a diverged run; a curved valley's walls) no longer flatten everything
  else into one level. The warp is monotone: the best stays the best. Measured on BBOB
  functions (BENCHMARKS.md): without it the GP lost to plain TPE on Rastrigin and on
  held-out Rosenbrock instances; with it the default's median regret fell on 5 of 5 design
  suites (Rosenbrock f8: 265.5 to 120.6; plain TPE 527.7). Plain log warps
  (``log(value - best)``) and rank warps were measured much worse on the sphere: they
  spend the model's resolution on differences that do not matter.
- Runs stopped early enter the scale with their estimates (those without one as the worst
  value). Where half the values tie at the best the median gap gives no scale: no
  warp at that quantile (the upper quartile's may still apply).
- **Which warp** (``chosen_warp``): no single scale suited every landscape (BENCHMARKS.md:
  a milder warp won on a narrow 2-D valley and lost on Rosenbrock). So each time the GP is
  asked, it is fitted to the values under each of ``WARPS`` (none; ``s`` the median gap;
  ``s`` the upper quartile's gap) and the warp under which the values themselves are most
  likely is used: the GP's marginal likelihood of the warped, standardised values plus
  the log-Jacobian of that transform, as Box-Cox chooses its power (the best and ``s``
  are read off the values, as Box-Cox's plug-in estimates are, not penalised). This uses Optuna's
  internal ``optuna._gp``; where that is missing (another Optuna release) the proposer
  says so once and the configured warp is used (``evidence_available``); a call that fails
  on a changed signature falls back the same way, with one warning.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Sequence

from .knob_study import IMPUTED

WARPS = (0.0, 0.5, 0.75)  # the warps chosen among (a quantile of the gaps; 0: none)
_log = logging.getLogger(__name__)


def tail_scale(values: Sequence[float], quantile: float) -> float:
    """``s`` of the tail warp: the ``quantile`` of the gaps above the best (the best's own
    zero included; at least the second smallest). Pure."""
    best = min(values)
    gaps = sorted(v - best for v in values)
    return gaps[min(len(gaps) - 1, max(1, int(quantile * len(gaps))))]


def tail_warp(values: Sequence[float], quantile: float = 0.5) -> list[float] | None:
    """``log(1 + (v - best) / s)`` of each value, lower is better (negate a maximised
    metric first); ``s`` is the ``quantile`` of the gaps above the best. None where the
    warp is undefined: fewer than 3 values, a value that is not finite, or no scale (that
    gap is zero: values tied at the best). Pure."""
    if len(values) < 3 or not all(math.isfinite(v) for v in values):
        return None
    best = min(values)
    s = tail_scale(values, quantile)
    if not s > 0:
        return None
    out = [math.log1p((v - best) / s) for v in values]
    return out if all(math.isfinite(w) for w in out) else None


def unfinished_as_worst(study: Any, impute: bool = True) -> Any:
    """The study for Optuna's GP, which ignores pruned and failed trials: each trial stopped
    early counts as the value it would have ended with where that is known (``impute``; its
    user attribute ``IMPUTED``, ``knob_study.stopped_estimate``), else as the worst finished
    value; each that crashed, timed out or gave no metric counts as the worst finished
    value. A run stopped early was clearly worse than the incumbent; without this the model
    proposed the point it had just seen stopped again. A run that crashed gave nothing to
    build on; without this the crashed corner stayed unexplored to the model (the synthetic
    landscape: after 2 runs crashed at DROPOUT = 1.0, each of the model's next 15 proposals
    was a point tried already, and local moves were made instead; median regret over 20
    seeds 0.005047 with it left out, 0.004962 counted as the worst; BENCHMARKS.md)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    values = [t.value for t in study.trials if t.state is TrialState.COMPLETE]
    worst = (max(values) if study.direction == optuna.study.StudyDirection.MINIMIZE else min(values)) if values else None

    def value(t: Any) -> float | None:
        if t.state not in (TrialState.PRUNED, TrialState.FAIL):
            return None
        guess = estimate(t) if impute else None
        return guess if guess is not None else worst

    if all(value(t) is None for t in study.trials):
        return study
    out = optuna.create_study(direction=study.direction)
    out.add_trials([t if value(t) is None else create_trial(params=t.params, distributions=t.distributions, value=value(t))
                    for t in study.trials])
    return out


def gp_view(study: Any, startup: int, warp: float, choose: bool, impute: bool) -> tuple[Any, int]:
    """The study as Optuna's GP is asked with it (``unfinished_as_worst``, then ``warped``),
    and the GP's start-up in that study's trials: a trial counted as the worst value does
    not count towards it (it is no run the model learned from); an estimate does."""
    seen = unfinished_as_worst(study, impute)
    worst_only = finished(seen) - finished(study) - (estimated(study) if impute else 0)
    return warped(seen, warp, choose=choose), startup + worst_only


def finished(study: Any) -> int:
    """The study's finished (complete) trials."""
    return sum(1 for t in study.trials if t.state.name == "COMPLETE")


def estimated(study: Any) -> int:
    """The study's stopped trials with an estimate of where they would have ended."""
    return sum(1 for t in study.trials if estimate(t) is not None)


def estimate(trial: Any) -> float | None:
    """A stopped trial's estimate of where it would have ended (None: not known)."""
    v = trial.user_attrs.get(IMPUTED) if trial.state.name == "PRUNED" else None
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def warped(study: Any, quantile: float, choose: bool = False) -> Any:
    """The study with its finished values warped by ``tail_warp`` (in the study's
    direction); the study itself is unchanged. Unchanged where the warp is undefined.
    ``choose``: the warp is ``chosen_warp``'s, ``quantile`` where it cannot choose."""
    import optuna
    from optuna.trial import TrialState, create_trial

    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    done = [t for t in study.trials if t.state is TrialState.COMPLETE]
    values = [sign * t.value for t in done]
    if choose:
        quantile = chosen_warp(done, values, fallback=quantile)
    new = tail_warp(values, quantile) if quantile > 0 else None
    if new is None:
        return study
    value = {t.number: sign * w for t, w in zip(done, new)}
    out = optuna.create_study(direction=study.direction)
    out.add_trials([create_trial(params=t.params, distributions=t.distributions, value=value[t.number])
                    if t.number in value else t for t in study.trials])
    return out


def standardised(values: Sequence[float], quantile: float) -> tuple[list[float], float] | None:
    """The values (lower is better) warped by ``tail_warp`` at ``quantile`` (0: not
    warped) and standardised, with the log-Jacobian of that map: the sum over the values of
    ``log |dz/dv|``, the scale and the best held fixed. None where the warp is undefined or
    the values do not vary. Pure."""
    import numpy as np

    w = tail_warp(values, quantile) if quantile > 0 else list(values)
    if w is None:
        return None
    w = np.asarray(w, dtype=float)
    sd = float(w.std())
    if not (sd > 0 and math.isfinite(sd)):
        return None
    jacobian = -len(w) * math.log(sd)
    if quantile > 0:
        v = np.asarray(values, dtype=float)
        jacobian -= float(np.log(tail_scale(values, quantile) + v - v.min()).sum())
    return list((w - w.mean()) / sd), jacobian


def chosen_warp(trials: Sequence[Any], values: Sequence[float], quantiles: Sequence[float] = WARPS,
                fallback: float = 0.5) -> float:
    """The warp (a quantile for ``tail_warp``; 0: none) under which the values (lower is
    better; those of ``trials``, finished) are most likely: the GP's log marginal likelihood
    of the warped, standardised values plus the map's log-Jacobian (``standardised``).
    ``fallback`` with fewer than 4 values, or where Optuna's GP internals differ."""
    if len(values) < 4:
        return fallback
    evidence = {}
    for q in quantiles:
        z = standardised(values, q)
        if z is None:
            continue
        try:
            evidence[q] = gp_evidence(trials, z[0]) + z[1]
        except (ImportError, AttributeError, TypeError) as e:  # another Optuna: its internals moved
            _warn_once(f"the GP's warp cannot be chosen with this Optuna ({type(e).__name__}: {e}); "
                       f"warp {fallback} is used")
            return fallback
        except (RuntimeError, ValueError) as e:  # raised by a fit (Optuna retries a failed one itself): not a candidate
            _log.debug("no GP fit under warp %s: %s", q, e)
    return most_likely(evidence, fallback)


def most_likely(evidence: Mapping[float, float], fallback: float) -> float:
    """The warp of the highest finite evidence; ``fallback`` where none is finite. Pure."""
    finite = {q: e for q, e in evidence.items() if math.isfinite(e)}
    return max(finite, key=finite.get) if finite else fallback


def gp_evidence(trials: Sequence[Any], targets: Sequence[float]) -> float:
    """The log marginal likelihood of ``targets`` (one per trial, standardised, lower is
    better) under Optuna's GP fitted to the trials' params (over the knobs every trial
    shares; Optuna's internal ``optuna._gp``, as its GPSampler fits)."""
    import numpy as np
    import torch
    from optuna._gp import gp, prior
    from optuna._gp.search_space import SearchSpace

    shared = [(n, d) for n, d in trials[0].distributions.items()
              if not d.single() and all(t.distributions.get(n) == d for t in trials)]
    space = SearchSpace(dict(shared))
    x = space.get_normalized_params(list(trials))
    with torch.device("cpu"):
        model = gp.fit_kernel_params(X=x, Y=-np.asarray(targets, dtype=float), is_categorical=space.is_categorical,
                                     log_prior=prior.default_log_prior, minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
                                     deterministic_objective=False)
        return float(model.marginal_log_likelihood())


def evidence_available() -> bool:
    """Whether this Optuna has the GP internals ``gp_evidence`` uses (``optuna._gp``, as
    in Optuna 5.1, the version the project installs and was measured with)."""
    try:
        from optuna._gp import gp, prior
        from optuna._gp.search_space import SearchSpace

        return all(callable(x) for x in (gp.fit_kernel_params, prior.default_log_prior, SearchSpace,
                                         SearchSpace.get_normalized_params, gp.GPRegressor.marginal_log_likelihood)) \
            and isinstance(prior.DEFAULT_MINIMUM_NOISE_VAR, float)
    except (ImportError, AttributeError):
        return False


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        _log.warning(message)
