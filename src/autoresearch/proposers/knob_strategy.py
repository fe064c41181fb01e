"""The knobs proposer's default strategy (``sampler = "auto"``): an adaptive portfolio of two
arms, chosen from the history alone (so a resumed campaign chooses what an uninterrupted one
would):

- **local**: a trust region around the incumbent (TuRBO-style): each proposal moves every
  knob (``local_changes``; -1: at most the proposer's ``changes_per_trial``) by a Gaussian
  step in the knobs' unit cube (log-scaled where the space is; an integer knob whose step
  rounds back to its value moves one notch); the region's side doubles after
  ``grow_after`` keeps in a row and halves after ``shrink_after`` local proposals in a row
  that were not kept (back to its first size once it has shrunk below ``min_length``). The
  first ``startup`` proposals on a code version are local: a prior centred on the user's
  values, not uniform random trials over the whole space (real defaults are usually
  sensible, and a wild first trial costs a whole run).
- **model**: a model-based search over every knob (Optuna's GP sampler; TPE where torch is
  not installed), its proposal brought within a box around the incumbent (``model_box``):
  of side ``model_length`` (a fraction of each knob's range), growing with the finished
  runs per knob to the whole space at ``full_reach`` runs per knob. Without the box, a GP
  over a dozen knobs and a handful of runs proposes corners of the space (the demo: every
  knob at an edge of its range, a run 2.26x the baseline's val_bpb); with a box that never
  grows, a campaign whose optimum lies at the ranges' edges and whose incumbent is a lucky
  noisy draw stays near that draw (BENCHMARKS.md). The GP sees the finished values through
  a tail warp (``knob_gp.tail_warp``: linear near the best, logarithmic far from it), so a
  few huge values do not flatten the rest of its picture; which warp (none, or one of two
  scales) is chosen each time by the GP's own evidence (``knob_gp.chosen_warp``).

After the start-up the model proposes; a model that proposes a point tried already has
converged, and a local move is made instead. Once the finished runs outnumber a full
quadratic's coefficients in the knobs, every ``surface``-th model proposal (on either arm,
``global`` too) is the minimum of the quadratic response surface through them
(``knob_quad``; with more than ``surface_local`` times as many runs, through the best of
them only, where that predicts them better: ``surface_pick``), unless its fit is
degenerate; elsewhere, and where its minimum was tried already, the model's. With
``patience`` > 0 (3 until 2026-12-03), that many model proposals in a row without a keep
hand over to local moves, and as many local ones hand back. Not by default: with
observation noise a lucky incumbent makes every proposal a "miss", and the hand-over spent
half the budget on small moves around that lucky draw (median regret 1.8x the model's
alone, 20 seeds; BENCHMARKS.md). A keep is the judge's word (the confirm judge's keep is a
confirmed one).

Where the user declared the range of every knob searched (``[proposer.knobs.space]``), the
range says where to search and the value in the code is only one point of it: then every
proposal is the **global** arm, the model over every knob, whose first ``startup_trials``
proposals (the default point included) spread uniformly over the declared box. Measured
on BBOB functions (declared boxes; BENCHMARKS.md): the local start around the box's centre
cost the GP its global picture (sphere f1 regret 3.7x plain GP's over 20 seeds), and the
model alone from a uniform start beat plain GP on four of five functions (with the tail
warp: five of five, and plain TPE too). An inferred range is built around the user's
value, so there the local start and the model's box stay.

Pure functions of (history, policy); the proposer draws the points.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..records import Experiment, Status
from .knob_space import Space

ARMS = ("local", "model")
GLOBAL = "global"  # every knob's range declared: the model from a uniform start, no local arm
_RESULTS = (Status.KEEP, Status.DISCARD, Status.CRASH, Status.TIMEOUT, Status.INVALID)


@dataclass(frozen=True)
class Policy:
    startup: int = 4          # local proposals around the user's values before any model
    patience: int = 0         # proposals of one arm in a row without a keep before the other takes over; 0: never
    first: str = "model"      # the arm after the start-up
    length: float = 0.2       # the trust region's first side, as a fraction of each knob's range
    min_length: float = 0.2 / 16
    max_length: float = 0.8
    grow_after: int = 2
    shrink_after: int = 3
    model: str = "gp"         # the model arm's sampler (tpe where torch is missing)
    alternate: bool = False   # model and local in turn, instead of switching on stalls
    warp: float = 0.5         # the GP sees log(1 + (value - best) / s), s this quantile of the gaps (knob_gp); 0: off
    choose_warp: bool = True  # the GP's evidence chooses the warp among knob_gp.WARPS (warp: where it cannot)
    local_changes: int = 0    # knobs each local move changes (0: every knob; -1: the proposer's changes_per_trial)
    model_length: float = 0.5  # the side of the box around the incumbent the model proposes in, at first; 1: no box
    full_reach: float = 2.0    # finished runs per knob at which that box covers the whole space; 0: it never grows
    surface: int = 2           # model proposals whose trial number this divides: the quadratic surface's (knob_quad); 0: none
    surface_fit: float = -1000.0  # ... where its leave-one-out R² is at least this: not a degenerate fit (0.5 until 2026-12-04)
    surface_box: float = 0.4   # ... within a box of this side around the best run
    surface_gap: float = 0.03  # ... farther than this from each finished run (the best: a tenth), unit cube
    surface_local: float = 1.2  # ... through the best this many times its coefficients' runs, where there are more; 0: all
    surface_pick: bool = True  # ... that only where it predicts them better than the fit through every run (leave-one-out)
    impute: bool = True        # a run stopped early counts, for the GP, as where it would have ended (knob_study)


def outcomes(history: Sequence[Experiment], signature: str) -> list[tuple[str, bool | None]]:
    """(arm, kept) of this code version's knobs proposals made by the portfolio, in order;
    kept is None while one has no result yet. Pure."""
    out: list[tuple[str, bool | None]] = []
    for e in sorted(history, key=lambda e: e.id):
        k = e.meta.get("knobs") if isinstance(e.meta, Mapping) else None
        if not isinstance(k, Mapping) or k.get("signature") != signature or k.get("arm") not in ARMS:
            continue
        if e.status is Status.INTERRUPTED or e.never_ran:
            continue  # no result of the arm's: refused before it ran (a rebase that could not move it)
        out.append((k["arm"], e.status is Status.KEEP if e.status in _RESULTS else None))
    return out


def arm_for(done: Sequence[tuple[str, bool | None]], policy: Policy, *, all_declared: bool) -> str:
    """The next proposal's arm: ``GLOBAL`` where every searched knob's range was declared,
    else the portfolio's (``next_arm``). Pure."""
    return GLOBAL if all_declared else next_arm(done, policy)


def next_arm(done: Sequence[tuple[str, bool | None]], policy: Policy) -> str:
    """The arm of the next proposal. Pure."""
    if len(done) < policy.startup:
        return "local"
    after = done[policy.startup:]
    if policy.alternate:
        return "model" if len(after) % 2 == 0 else "local"
    if policy.patience <= 0:
        return policy.first
    arm, misses = policy.first, 0
    for a, kept in after:
        if a != arm or kept is None:
            continue
        misses = 0 if kept else misses + 1
        if misses >= policy.patience:
            arm, misses = ("local" if arm == "model" else "model"), 0
    return arm


def trust_length(done: Sequence[tuple[str, bool | None]], policy: Policy) -> float:
    """The trust region's side now, replayed from the local proposals' results. Pure."""
    length, wins, misses = policy.length, 0, 0
    for a, kept in done:
        if a != "local" or kept is None:
            continue
        if kept:
            wins, misses = wins + 1, 0
            if wins >= policy.grow_after:
                length, wins = min(policy.max_length, 2 * length), 0
        else:
            wins, misses = 0, misses + 1
            if misses >= policy.shrink_after:
                length, misses = length / 2, 0
                if length < policy.min_length:
                    length = policy.length
    return length


def to_unit(space: Space, param: Any) -> float:
    """Where a parameter lies in its space, 0..1 (log-scaled where the space is). Pure."""
    if space.kind == "choice":
        i = next(j for j, c in enumerate(space.choices) if type(c) is type(param) and c == param)
        return i / max(1, len(space.choices) - 1)
    lo, hi, p = float(space.low), float(space.high), float(param)
    if hi <= lo:
        return 0.5
    if space.log:
        return (math.log(p) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (p - lo) / (hi - lo)


def from_unit(space: Space, u: float) -> Any:
    """The parameter at ``u`` (0..1) of a space: rounded for integer spaces. Pure."""
    u = min(1.0, max(0.0, u))
    if space.kind == "choice":
        return space.choices[round(u * (len(space.choices) - 1))]
    lo, hi = float(space.low), float(space.high)
    p = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if space.log else lo + u * (hi - lo)
    if space.kind in ("int", "pow2"):
        return int(min(hi, max(lo, round(p))))
    return min(hi, max(lo, p))


def local_point(rng: random.Random, spaces: Mapping[str, Space], centre: Mapping[str, Any], length: float,
                changes: int) -> dict[str, Any]:
    """A point in the trust region around ``centre`` (params): ``changes`` knobs (0: all)
    moved by a Gaussian step of sd ``length / 2`` in the unit cube; an integer knob whose
    step rounds back to its value moves one notch. Pure given ``rng``."""
    names = sorted(spaces)
    k = len(names) if changes <= 0 else min(changes, len(names))
    moved = set(rng.sample(names, k))
    out = dict(centre)
    for nm in sorted(moved):
        sp = spaces[nm]
        if sp.kind == "choice":
            if rng.random() < max(length, 0.25):
                out[nm] = rng.choice([c for c in sp.choices if c != centre[nm]] or list(sp.choices))
            continue
        u = to_unit(sp, centre[nm])
        p = from_unit(sp, u + rng.gauss(0.0, length / 2))
        if p == centre[nm] and sp.kind in ("int", "pow2") and sp.low < sp.high:
            step = rng.choice((-1, 1))
            if not sp.low <= centre[nm] + step <= sp.high:
                step = -step
            p = centre[nm] + step
        out[nm] = p
    return out


def model_box(policy: Policy, finished: int, knobs: int) -> float | None:
    """The side of the box the model's proposal is brought into (None: no box): at least
    ``model_length``, and ``finished / (full_reach * knobs)`` once that is larger, so the
    model's reach grows with how much it has seen of each knob. ``finished``: the study's
    finished points on this code version (the baseline and incumbents included, and, for
    the GP, runs stopped early that have an estimate of where they would have ended;
    crashes not). Pure."""
    side = policy.model_length
    if policy.full_reach > 0 and knobs > 0:
        side = max(side, finished / (policy.full_reach * knobs))
    return side if side < 1 else None


def clip_to_region(spaces: Mapping[str, Space], centre: Mapping[str, Any], point: Mapping[str, Any],
                   length: float) -> dict[str, Any]:
    """``point`` (params) with each numeric knob brought within ``length / 2`` of ``centre``
    in the unit cube (log-scaled where the space is), to the nearest value it can hold; an
    integer knob that would round back to the centre moves one notch towards the point
    instead (so a knob at 1 in 1..3 can still move). Choices and knobs already within are
    unchanged. Pure."""
    out = dict(point)
    for nm, sp in spaces.items():
        if sp.kind == "choice" or nm not in centre or nm not in point:
            continue
        c, u = to_unit(sp, centre[nm]), to_unit(sp, point[nm])
        lo, hi = c - length / 2, c + length / 2
        if lo <= u <= hi:
            continue
        p = from_unit(sp, min(hi, max(lo, u)))
        if p == centre[nm] and sp.kind in ("int", "pow2"):
            p = centre[nm] + (1 if point[nm] > centre[nm] else -1)
        out[nm] = p
    return out
