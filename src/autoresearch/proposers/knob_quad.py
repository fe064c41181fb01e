"""A quadratic response surface over the knobs (``sampler = "auto"``'s ``surface``).

Once a campaign has more finished runs than a full quadratic in its knobs has coefficients
(``terms``), every ``Policy.surface``-th proposal may be the minimum of the least-squares
quadratic through them, the classic response surface of experimental design:

- **Fitted** to the finished runs (stopped early, crashed: left out, a worst-value stand-in
  would bend a quadratic), in the knobs' unit cube (log-scaled where the space is).
- **Not where its fit is degenerate**: its leave-one-out R² (from the PRESS residuals) must
  be at least ``Policy.surface_fit``: -1000 by default, which refuses only a fit that
  predicts the runs left out of it a thousand times worse than their mean does (runs that
  barely determine the quadratic). Until 2026-12-04 it was 0.5, so that the surface had to
  predict each run from the others: the ellipsoids and the sphere pass that once a few runs
  more than the coefficients are in (about 0.9), Rastrigin's ripples and Rosenbrock's
  curved valley do not (below 0). Measured on BBOB functions (BENCHMARKS.md), the surface's
  minimum on those landscapes too met the goal on 5 more held-out suites (Rastrigin 3, the
  rotated ellipsoid 2) and 2 fewer (2-D f10, a noisy synthetic one), at a cost to
  Rosenbrock's medians, which stay far below every plain sampler's. (The floor matters:
  with none at all, -inf, medians moved again.)
- **Through the best runs, once there are many** (``Policy.surface_local``): with more
  finished runs than 1.2 times the coefficients, the quadratic is fitted through the best
  ``1.2 * terms`` of them only, a local model around the best runs (as derivative-free
  trust-region methods keep theirs). A landscape that is a bowl near its floor and steeper,
  lopsided, farther out (a rotated ellipsoid under BBOB's distortions) bent the fit through
  every run: the default missed plain GP 3.5x and 3.0x on 2-D f10 instances 2 and 3.
  Through the best runs, 2-D f10 met the goal on 5 of 5 design instances and on 4 of 5
  held out (the fifth 1.08x plain GP), and the 3-D rotated ellipsoid's median fell 8x
  (BENCHMARKS.md). The factor was 1.5 on 2026-12-05 (2 to 4 knobs at 31 runs); at 1.2
  (with the pick below) it reaches 2-D campaigns from 8 runs, 3-D from 13, 4-D from 19 and
  5-D from 26 (10 knobs: 80), and 5-D Rastrigin met the goal on 9 of 10 instances instead
  of 8, 2-D f10 on 10 of 10 instead of 9 (BENCHMARKS.md). Never with 1 knob: int(1.2 * 3)
  runs are no more than its 3 coefficients, an exact fit no run left out could check.
- **Only where that predicts the best runs better** (``Policy.surface_pick``): the local fit
  is used where its leave-one-out errors on those runs sum lower than the fit through every
  run's on the same runs; else the fit through every run. With observation noise the best
  runs are partly the luckiest draws, and a quadratic through them alone fits their noise:
  at the factor 1.5, the 4-knob synthetic landscape at noise sd 0.05 went from 0.87x plain
  GP's median regret to 1.09x with the local fit always, back to 0.96x with the pick (20
  seeds), and the steep bowls kept what the local fit gained (BENCHMARKS.md). A local fit
  in which one run alone fixes a coefficient (leverage 1: the best runs all on a line but
  one, as an integer knob with few values among them gives) is never picked, since that
  run's leave-one-out error checks nothing; until the night of 2026-12-05 such fits won
  the pick with an error of zero.
- **Not next to a finished run**: a minimum within ``Policy.surface_gap`` of one (of the
  best run, a tenth of it) counts as tried, and the GP proposes instead. Without it, on a
  2-D rotated ellipsoid the surface proposed nearly the same losing point five times over.
- **Its minimum** within a box of side ``Policy.surface_box`` around the best run, inside
  the unit cube; a direction of negative or tiny curvature counts as shallow (its
  eigenvalue floored at ``FLOOR`` of the largest), so the step along it stops at the box.

Why: on the rotated ellipsoid (BBOB f10), an ill-conditioned bowl whose axes are not the
knobs', Optuna's GP (one length scale per knob) stalls at a regret of about 5·10^4 in 31
runs, where the quadratic's cross terms capture the rotation.

Pure functions.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .knob_space import Space
from .knob_strategy import from_unit, to_unit

FLOOR = 1e-3  # the smallest curvature, as a fraction of the largest


def terms(d: int) -> int:
    """The coefficients of a full quadratic in ``d`` variables. Pure."""
    return (d + 1) * (d + 2) // 2


def surface_point(study: Any, spaces: Mapping[str, Space], box: float, min_fit: float,
                  gap: float = 0.0, local: float = 0.0, pick: bool = True) -> dict[str, Any] | None:
    """The params at the minimum of the surface through the study's finished trials (the
    best ``local * terms`` of them where there are more, with ``pick`` only where that fit
    predicts them better; 0: all) (``surface_minimum``, in its direction); None where it
    has none, or a knob is a choice."""
    names = sorted(spaces)
    if any(spaces[nm].kind == "choice" for nm in names):
        return None
    sign = 1.0 if study.direction.name == "MINIMIZE" else -1.0
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    found = surface_minimum([[to_unit(spaces[nm], t.params[nm]) for nm in names] for t in done],
                            [sign * t.value for t in done], box, min_fit, gap,
                            int(local * terms(len(names))) if local > 0 else None, pick)
    return None if found is None else {nm: from_unit(spaces[nm], u) for nm, u in zip(names, found[0])}


def surface_minimum(points: Sequence[Sequence[float]], values: Sequence[float], box: float, min_fit: float,
                    gap: float = 0.0, fit_best: int | None = None,
                    pick: bool = True) -> tuple[list[float], float] | None:
    """The minimum (in [0, 1]^d, within ``box`` around the best point) of the least-squares
    quadratic through (points, values) (the best ``fit_best`` of them where there are more
    and, with ``pick``, where that fit predicts them better, each left out in turn, than the
    fit through every point, and no point alone fixes one of its coefficients), lower is
    better, with its leave-one-out R². None with no more points than coefficients, values
    that are not finite or do not vary, a fit that predicts its left-out points worse than
    ``min_fit``, no upward curvature, or a minimum within ``gap`` of any point (``gap / 10``
    of the best; largest coordinate). Pure."""
    import numpy as np

    every, y = np.asarray(points, dtype=float), np.asarray(values, dtype=float)
    if every.ndim != 2 or len(y) <= terms(every.shape[1]) or not np.all(np.isfinite(y)) or not y.std() > 0:
        return None
    lowest = int(np.argmin(y))  # the best run (kept in any fit: it is the best)
    coef, left_out, fit, _ = _quadratic(every, y)
    # the best runs alone, under the rule for every run: more of them than coefficients (1 knob at 1.2: 3 of 3)
    if fit_best is not None and len(y) > fit_best > terms(every.shape[1]):
        kept = np.argsort(y, kind="stable")[:fit_best]
        if y[kept].std() > 0:
            near_coef, near_out, near_fit, leverage = _quadratic(every[kept], y[kept])
            checked = leverage < 1 - 1e-6  # no run alone fixes a coefficient (its leave-one-out error says nothing)
            if not pick or (checked and near_out @ near_out < left_out[kept] @ left_out[kept]):
                coef, fit = near_coef, near_fit  # it predicts the best runs better than the fit through every run
    if not fit >= min_fit:
        return None
    d = every.shape[1]
    b, h = coef[1:d + 1], np.zeros((d, d))
    for (i, j), c in zip(_pairs(d), coef[d + 1:]):
        h[i, j] = h[j, i] = 2 * c if i == j else c
    w, v = np.linalg.eigh(h)
    if not w.max() > 0:
        return None
    h = (v * np.maximum(w, FLOOR * w.max())) @ v.T
    lo, hi = np.maximum(0.0, every[lowest] - box / 2), np.minimum(1.0, every[lowest] + box / 2)
    found = box_minimum(h, b, lo, hi)
    apart = np.abs(every - found).max(axis=1)  # from every run, also those the fit left out
    if gap > 0 and (apart < np.where(np.arange(len(every)) == lowest, gap / 10, gap)).any():
        return None  # tried already: next to a finished run (to the best, a tenth of the gap: refining steps stay)
    return [float(u) for u in found], fit


def _pairs(d: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(d) for j in range(i, d)]


def _quadratic(x, y):
    """The least-squares quadratic through (x, y): (its coefficients for y standardized, each
    point's leave-one-out error from the PRESS residuals in y's units, the leave-one-out R²,
    the largest leverage: 1 where a point alone fixes a coefficient). Pure."""
    import numpy as np

    a = np.column_stack([np.ones(len(x)), x] + [x[:, i] * x[:, j] for i, j in _pairs(x.shape[1])])
    z = (y - y.mean()) / y.std()
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    leverage = np.einsum("ij,ji->i", a, np.linalg.pinv(a))
    left_out = (z - a @ coef) / np.maximum(1e-9, 1 - leverage)  # each point's error, fitted without it
    return coef, left_out * y.std(), 1 - float(left_out @ left_out) / float(z @ z), float(leverage.max())


def box_minimum(h, b, lo, hi):
    """The minimum of ``0.5 x'hx + b'x`` over the box [lo, hi], ``h`` positive definite:
    from the unconstrained minimum clipped, by coordinate descent (convex, so it converges
    to the box's minimum). Pure."""
    import numpy as np

    x = np.clip(np.linalg.solve(h, -b), lo, hi)
    for _ in range(1000):
        before = x.copy()
        for i in range(len(x)):
            g = b[i] + h[i] @ x - h[i, i] * x[i]
            x[i] = min(hi[i], max(lo[i], -g / h[i, i]))
        if np.abs(x - before).max() < 1e-12:
            break
    return x
