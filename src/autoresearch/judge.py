"""Judges: pure functions from measurements to keep / discard / need-more-runs."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from statistics import fmean, stdev
from typing import Any, Mapping, Protocol, Sequence

from .errors import ConfigError
from .records import Goal
from .stats import t_sf


class Verdict(str, enum.Enum):
    KEEP = "keep"
    DISCARD = "discard"
    MORE_RUNS = "more_runs"
    CALIBRATE = "calibrate"  # promising, but the noise is not calibrated yet: judged again once it is


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    stats: Mapping[str, float] = field(default_factory=dict)


def better_or_worse(improvement: float, than: str) -> str:
    """An improvement said in words, the one sign convention of every text we write
    (positive: better in the goal's direction): "0.0225 better than the incumbent",
    "0.003 worse than the incumbent", "equal to the incumbent"."""
    if improvement == 0 or not math.isfinite(improvement):
        return f"equal to {than}" if improvement == 0 else f"not comparable with {than}"
    return f"{abs(improvement):.4g} {'better' if improvement > 0 else 'worse'} than {than}"


Noise = tuple[float | None, int]  # (pooled sd of repeated runs of unchanged code, its degrees of freedom)


class Judge(Protocol):
    name: str
    baseline_runs: int  # how many times the baseline runs (noise calibration)
    start_runs: int  # baseline runs before the first candidate; the rest run alongside the candidates
    remeasure_every: int  # re-run the incumbent after this many candidates (0: never)

    def decide(self, candidate: Sequence[float], incumbent: Sequence[float], goal: Goal, noise: Noise, *,
               calibrating: bool = False) -> Decision:
        """Judge a candidate's metric values against the incumbent's: keep, discard, or
        ask for one more run of the candidate. ``calibrating``: the baseline has fewer than
        ``baseline_runs`` runs yet; a judge may then answer ``CALIBRATE`` (judge me again
        once it has them) where it would otherwise keep or ask for more runs."""
        ...


@dataclass(frozen=True)
class GreedyJudge:
    """karpathy's rule: keep when the candidate is strictly better than the incumbent.

    Compares against the incumbent's mean, never its luckiest run. No noise model: on
    noisy metrics this keeps about half of all neutral changes.
    """

    name: str = "greedy"
    baseline_runs: int = 1
    start_runs: int = 1
    remeasure_every: int = 0

    def decide(self, candidate: Sequence[float], incumbent: Sequence[float], goal: Goal, noise: Noise = (None, 0), *,
               calibrating: bool = False) -> Decision:
        return greedy_decision(candidate, incumbent, goal)


def greedy_decision(candidate: Sequence[float], incumbent: Sequence[float], goal: Goal) -> Decision:
    if not candidate or not incumbent:
        raise ValueError("greedy judging needs at least one value on each side")
    c, i = fmean(candidate), fmean(incumbent)
    delta = c - i
    stats = {"mean": c, "incumbent_mean": i, "delta": delta}
    words = better_or_worse(-delta if goal is Goal.MINIMIZE else delta, "the incumbent")
    if goal.better(c, i):
        return Decision(Verdict.KEEP, f"{c:.6g} beats the incumbent's {i:.6g}: {words}", stats)
    return Decision(Verdict.DISCARD, f"{c:.6g} does not beat the incumbent's {i:.6g}: {words}", stats)


# -- the confirm judge ------------------------------------------------------------------

@dataclass(frozen=True)
class ConfirmPolicy:
    """Sequential, noise-calibrated keep/discard (see ``confirm_decision``).

    Defaults were chosen with ``bench/judge.py`` (figures in BENCHMARKS.md). With the
    baseline run 8 times, a candidate screened by one run and kept only once confirmed by a
    second (up to 6 in all), each look tested at alpha/2 with the larger of the baseline's
    noise and the candidate's own spread: 3.2 % of neutral changes are kept (greedy: 50 %),
    changes better by 2 sigma 85 % of the time, and a candidate costs about 2.3 runs on the
    benchmark's mix (the first candidate of a campaign, judged after 2 of the baseline's
    runs). A candidate twice as noisy as the baseline is kept when neutral 8.9 % of the time
    (17.4 % when one run could keep and its se was the baseline's). 6 baseline runs fall
    short of 80 % power at 2 sigma; 3 fall far short. Candidates start after
    ``start_runs`` of the baseline's runs; one judged before the rest exist can only be
    discarded (``calibrating`` below).
    """

    alpha: float = 0.05        # one-sided level; each look is tested at alpha / look_divisor
    min_effect: float = 0.0    # improvement (metric units) a change must beat to be kept
    baseline_runs: int = 8     # n0: runs of the baseline that calibrate the noise
    max_runs: int = 6          # runs of one candidate before it is discarded undecided
    start_runs: int = 2        # baseline runs before the first candidate (the rest are interleaved)
    confirm_runs: int = 2      # runs a keep needs where noise was measured (1: the screen run alone may keep)
    own_spread: bool = True    # a candidate's se uses its own runs' sd where that is larger than the noise

    # Pocock-style constant level per look. Most neutral candidates stop at the screen run
    # (futility), and a keep needs a second run, so few looks at the keep level are spent on
    # them; alpha / 2 keeps the overall false keep rate under alpha in simulation (3.2 %; with
    # one-run keeps it took alpha / 3 for 4.1 %), where Bonferroni over max_runs looks cost half the power.
    look_divisor: float = 2.0

    def look_level(self) -> float:
        return self.alpha / self.look_divisor


def confirm_decision(
    candidate: Sequence[float],
    incumbent: Sequence[float],
    goal: Goal,
    sigma: float,
    df: int,
    policy: ConfirmPolicy = ConfirmPolicy(),
    calibrating: bool = False,
) -> Decision:
    """Judge a candidate's runs against the incumbent's *mean*, given the noise ``sigma``
    (pooled over every experiment with repeated runs, ``df`` degrees of freedom).

    - improvement d = incumbent mean - candidate mean (minimize) or the reverse;
    - se = sqrt(s_c^2 / n_c + sigma^2 / n_i), s_c the larger of sigma and the candidate's
      own runs' sd (``own_spread``; a change can make training less stable, and the pooled
      noise then understates the candidate's); t = (d - min_effect) / se;
    - keep when P(T_df > t) < alpha / 2 (a constant level per look, so looking after every
      run does not inflate false keeps beyond alpha; see ConfirmPolicy) and the candidate
      has ``confirm_runs`` runs (a screen run that passes asks for one more run instead: a
      lucky draw of a noisier candidate is not kept on its own);
    - discard when the estimate is not better than min_effect (after the screen run this
      is "clearly worse or no better"), or when max_runs runs did not decide;
    - otherwise ask for one more run.

    While the baseline's calibration is incomplete (``calibrating``: it has fewer than
    ``baseline_runs`` runs; candidates start after ``start_runs``) a candidate can only be
    discarded, by the futility rule above. Instead of a keep or another run it gets
    ``CALIBRATE``: judged again, on the same runs, once the baseline has all its runs. So
    every keep is made by exactly the test the full calibration makes; the early start only
    adds a chance to discard (the price, measured in ``bench/judge.py``: a little power).
    """
    if not candidate or not incumbent:
        raise ValueError("confirm judging needs at least one value on each side")
    n_c, mc, mi = len(candidate), fmean(candidate), fmean(incumbent)
    d = (mi - mc) if goal is Goal.MINIMIZE else (mc - mi)
    if abs(d) <= 1e-12 * max(abs(mc), abs(mi)):  # the rounding of two means of one value, not a difference (a trial:
        d = 0.0                                    # "promising: 1.11e-16 better than the incumbent")
    se, t, p = _t_test(candidate, len(incumbent), d, sigma, df, policy)
    level = policy.look_level()
    stats = {"mean": mc, "incumbent_mean": mi, "improvement": d, "se": se, "t": t, "p_value": p, "runs": float(n_c)}
    if calibrating and d > policy.min_effect:
        return Decision(Verdict.CALIBRATE, f"promising: {better_or_worse(d, 'the incumbent')} after {n_c} "
                                           f"run{'s' if n_c > 1 else ''}; judged once the baseline's noise "
                                           "calibration is complete", stats)
    if p < level and se > 0 and n_c < min(policy.confirm_runs, policy.max_runs):
        return Decision(Verdict.MORE_RUNS, f"promising: {better_or_worse(d, 'the incumbent')} (p={p:.3g}); one more run "
                                           "to confirm it", stats)
    if p < level:
        return Decision(Verdict.KEEP, f"{better_or_worse(d, 'the incumbent')} (se {se:.3g}, p={p:.3g} < {level:.3g}, "
                                      f"{n_c} run{'s' if n_c > 1 else ''})", stats)
    if d <= policy.min_effect:
        return Decision(Verdict.DISCARD, f"not better than the incumbent's mean {mi:.6g} by more than {policy.min_effect:g} "
                                         f"({better_or_worse(d, 'it')} after {n_c} run{'s' if n_c > 1 else ''})", stats)
    if n_c >= policy.max_runs:
        return Decision(Verdict.DISCARD, f"undecided after {n_c} runs ({better_or_worse(d, 'the incumbent')}, "
                                         f"p={p:.3g} >= {level:.3g})", stats)
    return Decision(Verdict.MORE_RUNS, f"promising: {better_or_worse(d, 'the incumbent')} (p={p:.3g}); one more run",
                    stats)


def _t_test(candidate: Sequence[float], n_i: int, d: float, sigma: float, df: int,
            policy: ConfirmPolicy) -> tuple[float, float, float]:
    """(se, t, p) of ``confirm_decision``'s test of the improvement ``d``. Pure."""
    n_c = len(candidate)
    own = stdev(candidate) if policy.own_spread and n_c >= 2 and sigma > 0 else 0.0
    se = math.sqrt(max(sigma, own) ** 2 / n_c + sigma ** 2 / n_i) if sigma > 0 else 0.0
    if se > 0:
        t = (d - policy.min_effect) / se
        return se, t, t_sf(t, df if df > 0 else math.inf)
    # no noise measured: the comparison is exact
    return se, (math.inf if d > policy.min_effect else -math.inf), (0.0 if d > policy.min_effect else 1.0)


@dataclass(frozen=True)
class ConfirmJudge:
    """The noise-calibrated judge: ``confirm_decision`` with the noise the engine measured."""

    policy: ConfirmPolicy = ConfirmPolicy()
    remeasure_every: int = 10
    name: str = "confirm"

    @property
    def baseline_runs(self) -> int:
        return self.policy.baseline_runs

    @property
    def start_runs(self) -> int:
        return min(self.policy.start_runs, self.policy.baseline_runs)

    def decide(self, candidate: Sequence[float], incumbent: Sequence[float], goal: Goal, noise: Noise = (None, 0), *,
               calibrating: bool = False) -> Decision:
        sigma, df = noise
        return confirm_decision(candidate, incumbent, goal, sigma or 0.0, df, self.policy, calibrating)


def make_judge(table: Any) -> Judge:
    """A judge from the ``[judge]`` table of the config."""
    if table.policy == "greedy":
        return GreedyJudge()
    if table.policy == "confirm":
        policy = ConfirmPolicy(alpha=table.alpha, min_effect=table.min_effect, baseline_runs=table.baseline_runs,
                               max_runs=table.max_runs)
        return ConfirmJudge(policy=policy, remeasure_every=table.remeasure_every)
    raise ConfigError(f"unknown judge policy {table.policy!r}; choose confirm or greedy")
