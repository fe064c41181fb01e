"""Early stopping in a campaign: the rule a candidate's screening run gets, made from the
incumbent's recorded curves (docs/early-stopping.md).

Every run's progress reports are kept in its ledger row (``Journal.run_finished``) and a
file beside its log (``Execution.run``), so nothing is lost on resume. When a candidate's
screening run is planned, ``EarlyStop`` reads the curves of the incumbent's successful
runs, drops every curve whose end does not agree with that run's trusted final metric (the
scale between the two comes from the baseline's runs, the user's own code), and makes the
band: with the confirm judge and two or more curves, their mean and spread (``z`` spreads,
at least ``margin`` of the value); otherwise (greedy: one curve) only the conservative
``margin``. No usable curve: no rule, the run goes its full budget.

Settings: ``[judge] early_stop = "auto" | "off"``, ``early_stop_min_fraction``,
``early_stop_margin``, ``early_stop_early_margin``, ``early_stop_late_margin``.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..progress import (MIN_FRACTION, Curves, StopRule, curve_end, end_agrees, end_scale, percent,
                        proxy_direction, recorded_curves, reference_band)
from ..records import Purpose
from ..runners.watch import WatchSpec

GREEDY_MARGIN = 0.05     # one incumbent curve: stop only when 5 % worse than it (on the tiny-GPT arena the
                         # proxy's seed-to-seed spread is at most 2.1 % from 30 % of the budget; BENCHMARKS.md)
CONFIRM_MARGIN = 0.05    # a band from repeated curves: at least 5 % worse, and beyond Z spreads
Z = 4.0
END_TOLERANCE = 0.05     # a curve's end, scaled, may differ from the trusted final by 5 % (or 3 sd of the noise)
EARLY_MARGIN = 0.2       # before progress.SETTLED (30 %): stop only a start this far behind (in two recorded
                         # tiny-GPT campaigns the candidates that beat their incumbent were at most 4.9 %
                         # behind it there, 40 of the 106 that did not more than 20 %; BENCHMARKS.md)
LATE_MARGIN = 0.03       # from progress.LATE (50 %): in the same campaigns those candidates were at most 1.6 %
                         # behind there; four seeds of the baseline's code 1.1 % apart at most (10 s runs;
                         # at 30 s more where a run got fewer steps done, and its val_bpb was as much worse)


@dataclass(frozen=True)
class EarlyStopSettings:
    mode: str = "auto"               # "auto": on where progress is reported; "off"
    min_fraction: float = MIN_FRACTION
    margin: float | None = None      # None: GREEDY_MARGIN or CONFIRM_MARGIN by the judge's policy
    early_margin: float = EARLY_MARGIN
    late_margin: float = LATE_MARGIN

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "EarlyStopSettings":
        """From a campaign's recorded config (``[judge]``; a campaign from before these
        settings existed gets the defaults)."""
        judge = config.get("judge") or {}
        return cls(str(judge.get("early_stop", "auto")),
                   float(judge.get("early_stop_min_fraction", cls.min_fraction)),
                   judge.get("early_stop_margin"),
                   float(judge.get("early_stop_early_margin", cls.early_margin)),
                   float(judge.get("early_stop_late_margin", cls.late_margin)))


@dataclass(frozen=True)
class TrustedRun:
    """One successful run of an experiment: its curves and its trusted final metric."""

    curves: Curves
    final: float


def trusted_runs(rows: list[Mapping[str, Any]], attempt: int | None) -> list[TrustedRun]:
    """The OK runs among ledger rows (of ``attempt``, and re-measurements), with their curves:
    the ledger's (schema 5), else the file beside the run's log (a run recorded before)."""
    out = []
    for r in rows:
        if r.get("status") != "ok" or r.get("metric") is None:
            continue
        if attempt is not None and r.get("attempt") != attempt and r.get("purpose") != Purpose.REMEASURE.value:
            continue
        out.append(TrustedRun(recorded_curves(r.get("curves"), r.get("log_path")), float(r["metric"])))
    return out


def make_rule(incumbent: list[TrustedRun], baseline: list[TrustedRun], *, metric: str, goal: str, policy: str,
              settings: EarlyStopSettings, noise_sd: float | None, incumbent_id: int) -> StopRule | None:
    """The rule for a candidate of this incumbent, or None when its curves cannot be trusted
    or there are none. Pure."""
    for key in rule_keys(incumbent, metric, goal):
        scale = end_scale((curve_end(t.curves[key]), t.final) for t in baseline if key in t.curves)  # type: ignore[misc]
        if scale is None:
            continue
        usable = [t.curves[key] for t in incumbent
                  if end_agrees(curve_end(t.curves[key]), t.final, scale, noise_sd, END_TOLERANCE)]  # type: ignore[arg-type]
        if not usable:
            continue
        band = len(usable) >= 2 and policy == "confirm"
        margin = settings.margin if settings.margin is not None else (CONFIRM_MARGIN if band else GREEDY_MARGIN)
        reference = reference_band(usable)
        if reference:
            return StopRule(key, goal, reference, min_fraction=settings.min_fraction, margin=margin,
                            z=Z if band else 0.0, curves=len(usable), incumbent=incumbent_id,
                            early_margin=settings.early_margin, late_margin=settings.late_margin)
    return None


SHORT_RUN = 0.8  # a run whose reports end before this fraction of the budget is much shorter than it


def rule_keys(incumbent: list[TrustedRun], metric: str, goal: str) -> list[str]:
    """The curves every run of the incumbent reports that a rule may follow: the metric's
    own first; another name only as a proxy that goes the goal's way. Pure."""
    common = [k for k in (incumbent[0].curves if incumbent else {}) if all(k in t.curves for t in incumbent)]
    return sorted((k for k in common if k == metric or proxy_direction(k) == goal), key=lambda k: k != metric)


def why_no_rule(incumbent: list[TrustedRun], baseline: list[TrustedRun], *, metric: str, goal: str) -> str:
    """Why ``make_rule`` gives no rule for these runs, in words a person can act on. Pure."""
    keys = rule_keys(incumbent, metric, goal)
    if not keys:
        return (f"no progress curve the rule can use in every run of the incumbent (its metric {metric}, or a "
                f"loss-like proxy going the goal's way)")
    for key in keys:
        seen = [f for t in incumbent for f, _ in t.curves[key]]
        if seen and not reference_band([t.curves[key] for t in incumbent]):
            if all(len(t.curves[key]) == 1 for t in incumbent):  # printed once, at the end (a fifth trial)
                span = (f"at {percent(min(seen))}" if percent(min(seen)) == percent(max(seen))
                        else f"at {percent(min(seen))} to {percent(max(seen))}")
                short = "; and time_budget_s is much longer than a run: set it near a run's real length" \
                    if max(seen) < SHORT_RUN else ""
                return (f"the incumbent's runs print {key} once, at their end ({span} of time_budget_s), so a "
                        "candidate has nothing to be compared with part-way; print `progress: <fraction> "
                        f"{key}: <value>` lines as a run goes for early stopping{short}")
            if max(seen) < SHORT_RUN:
                span = (f"at {percent(min(seen))}" if percent(min(seen)) == percent(max(seen))
                        else f"between {percent(min(seen))} and {percent(max(seen))}")
                return (f"the incumbent's runs report {key} {span} "
                        "of the time budget only, and no point of the budget is reached by all of them, so there "
                        "is nothing to compare a candidate with part-way: the runs are much shorter than "
                        "time_budget_s; set it near a run's real length, or print `progress: <fraction> "
                        f"{key}: <value>` lines")
            return (f"the incumbent's runs report {key} at too few points of the budget to compare at; print "
                    f"`progress: <fraction> {key}: <value>` lines as the run goes")
    return ("the progress curves of the incumbent do not agree with its trusted metric (or share no name with "
            "the baseline's)")


NUMBER = re.compile(r"\d+")  # a reason's numbers: the same reason when only they differ


class EarlyStop:
    """What every run is watched for (``Execution.watch_for``): its curves always; for a
    candidate's screening run, the rule from the incumbent's curves. Called with the
    engine's lock held (it reads the ledger and the state)."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.settings = EarlyStopSettings.from_config(ctx.campaign.config)
        self.notes: set[int] = set()
        self.said: set[str] = set()

    def watch_for(self, exp_id: int, purpose: Purpose, base: WatchSpec) -> WatchSpec:
        if exp_id <= 0 or purpose is not Purpose.SCREEN or self.settings.mode == "off":
            return base
        rule = self.rule()
        return WatchSpec(base.budget_s, base.metric, base.pattern, rule) if rule is not None else base

    def rule(self) -> StopRule | None:
        ctx = self.ctx
        inc = ctx.state.incumbent_ref()[1]
        if inc is None:
            return None
        ledger, campaign = ctx.state.ledger, ctx.campaign
        attempt: Callable[[int], int | None] = lambda i: (e.attempt if (e := ctx.journal.experiment(i)) else None)
        incumbent = trusted_runs(ledger.runs(campaign, inc), attempt(inc))
        if not any(t.curves for t in incumbent):
            return None  # no progress reported: early stopping is off by itself
        baseline = incumbent if inc == 0 else trusted_runs(ledger.runs(campaign, 0), attempt(0))
        rule = make_rule(incumbent, baseline, metric=ctx.metric, goal=ctx.goal.value, policy=ctx.judge.name,
                         settings=self.settings, noise_sd=ctx.state.noise()[0], incumbent_id=inc)
        if rule is not None:
            self.said.clear()  # a later pause for the same reason is said again
        if rule is None and inc not in self.notes:
            self.notes.add(inc)
            why = why_no_rule(incumbent, baseline, metric=ctx.metric, goal=ctx.goal.value)
            if NUMBER.sub("#", why) not in self.said:  # said once while the reason stays (a trial: after each keep)
                self.said.add(NUMBER.sub("#", why))
                ctx.note(f"early stopping paused for the candidates of #{inc}, which run their full budget: {why}")
        return rule


def attach(ctx: Any) -> None:
    """Give the campaign's execution its early-stopping rule maker (once)."""
    if getattr(ctx.execution, "early_stop", None) is None:
        ctx.execution.early_stop = EarlyStop(ctx)
