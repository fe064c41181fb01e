"""The baseline's calibration, finished alongside the candidates.

The search starts after ``judge.start_runs`` runs of the baseline (``baseline.calibrate``);
the rest of its ``judge.baseline_runs`` runs are interleaved with the candidates: the
scheduler gives every other free slot a calibration run while runs are missing, and a
candidate the judge finds promising before the calibration is complete (verdict
``CALIBRATE``) runs the missing ones on its own slot, then is judged again on the same runs
of its own. So nothing is kept on the weak noise estimate of two runs: every keep is made
by the test of the full calibration (see ``judge.confirm_decision``).

A calibration run is an ordinary run of experiment 0 (purpose ``baseline``, the baseline's
attempt, the next run index and so the next seed): the ledger and ``status`` show it among
the baseline's runs, and the baseline's mean and standard error follow each one. Nothing
about the calibration is kept in memory that the ledger does not hold, so a campaign killed
mid-calibration resumes it where it stopped. Called with the engine's lock held.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Mapping, Sequence

from ..errors import BaselineError
from ..judge import Decision, Verdict
from ..records import Purpose, RunStatus, Status
from ..slots import Slot
from ..stats import pooled_sd
from .context import Engine


SAME_AFTER = 4  # baseline runs that all gave one value, after which more would only repeat


def calibration_target(values: Sequence[float], n0: int) -> int:
    """The runs the baseline's calibration needs: the judge's ``n0``, or as many as were
    made once ``SAME_AFTER`` or more all gave the same value: the run does not vary with its
    seed, and the rest would only repeat (a newcomer's trial spent a third of its campaign
    on such repeats). A run that differs later makes it ``n0`` again. Only for a value of
    ``FINE`` significant digits or more: runs of a coarse one (a count, an accuracy printed
    as a whole percent or with two decimals) agree by chance (4 in a row in a fifth of
    campaigns at an sd of 0.4 points: a review), and a noise of 0 would keep any difference. Pure."""
    if SAME_AFTER <= len(values) < n0 and len(set(values)) == 1 and significant_digits(values[0]) >= FINE:
        return len(values)
    return n0


FINE = 4  # significant digits of a value fine enough that runs agreeing on it do not vary


def significant_digits(value: float) -> int:
    """The significant digits of a value as the shortest text that reads back as it (how a
    run that prints it with 3 decimals gave it): 0.5672 has 4, 935.0 has 3, 0.57 has 2; at
    most 7, a float32's (0.812 computed in float32 reads 0.8119999766: 3, not 16: a review). Pure."""
    if not math.isfinite(value) or value == 0:
        return 0
    return len(f"{abs(float(value)):.7g}".split("e")[0].replace(".", "").strip("0"))


def calibrating(ctx: Engine) -> bool:
    """The baseline has fewer runs than its calibration needs (``calibration_target``); one
    stopped early is complete only once no run of it is in flight (one may still differ: a
    review saw a keep on a noise of 0 while the run that showed the noise was running)."""
    values, n0 = ctx.state.samples(0), ctx.judge.baseline_runs
    target = calibration_target(values, n0)
    return len(values) < target or (target < n0 and bool(ctx.state.calibration_runs))


def runs_missing(ctx: Engine) -> int:
    """Calibration runs of the baseline still to start (those in flight are not missing)."""
    values = ctx.state.samples(0)
    target = calibration_target(values, ctx.judge.baseline_runs)
    return max(0, target - len(values) - len(ctx.state.calibration_runs))


PARTIAL = "so far"  # in the baseline's reason while its calibration is not complete


def baseline_reason(runs: int, target: int, sigma: float | None, asked: int | None = None) -> str:
    """The baseline's reason in the ledger, for ``runs`` of its ``target`` runs (of the
    ``asked`` ones, where the calibration stopped early: ``calibration_target``). Pure."""
    if target <= 1:
        return "baseline"
    noise = f", noise sd {sigma:.4g}" if sigma is not None else ""
    if runs >= target:
        early = (f"; each gave the same value, so the calibration stopped at {runs} of the {asked} runs asked"
                 if asked is not None and asked > runs else "")
        return f"baseline: {runs} runs{noise}{early}"
    return f"baseline: {runs} of {target} runs {PARTIAL}{noise}; the rest run alongside the first candidates"


def calibration_run(ctx: Engine, slot: Slot) -> None:
    """One more run of the baseline on ``slot``, folded into its mean and the noise. A run
    the baseline fails now (it worked before: it is flaky) stops the campaign."""
    base = ctx.journal.experiment(0)
    assert base is not None and base.status is Status.KEEP
    k = len(ctx.state.samples(0))
    while k in ctx.state.calibration_runs:  # each run its own index, so its own seed
        k += 1
    ctx.state.calibration_runs.add(k)
    try:
        while True:  # a run the infrastructure failed is done again (bounded by the streak)
            with ctx.unlocked():
                workdir = ctx.execution.checkout(slot, ctx.campaign.base_commit)
            r = ctx.measure(slot, exp_id=0, attempt=base.attempt, k=k, purpose=Purpose.BASELINE, workdir=workdir,
                            commit=ctx.campaign.base_commit)
            if r.status is not RunStatus.INFRA or ctx.error is not None:
                break
    finally:
        ctx.state.calibration_runs.discard(k)
        ctx.lock.notify_all()
    if r.status is RunStatus.OK:
        _fold(ctx, slot, r.measurement.metric, r.measurement.metrics, r.measurement.warnings)  # type: ignore[arg-type]
    elif r.status not in (RunStatus.INTERRUPTED, RunStatus.INFRA):
        ctx.fail(BaselineError(
            f"run {k} of the baseline ({r.status.value}) failed: {r.reason}\n"
            f"--- last lines of {r.run.log_path} ---\n{r.log_tail}\n---\n"
            "Its earlier runs worked, so the arena is flaky; the judge needs every calibration run of the "
            "baseline. Make the run reliable and run the campaign again: it goes on where it stopped."))


def _fold(ctx: Engine, slot: Slot, value: float, metrics: Mapping[str, float], warnings: Sequence[str]) -> None:
    """A calibration run's value: the baseline's mean, run count, standard error and reason
    follow (a campaign that ends mid-calibration shows how many runs it has: a newcomer's
    trial saw "2 of 8 runs so far" after 4); the last run's reason says it is complete."""
    values, n0 = ctx.state.samples(0), ctx.judge.baseline_runs
    values.append(value)
    sigma, _ = pooled_sd([values])
    mean, target = fmean(values), calibration_target(values, n0)
    se = sigma / math.sqrt(len(values)) if sigma is not None else None
    reason = baseline_reason(len(values), target, sigma, asked=n0)
    if not calibrating(ctx):  # complete (this run's index left calibration_runs before it was folded in)
        stats = {"runs": float(len(values)), "mean": mean, **({"se": se} if se is not None else {})}
        ctx.journal.finished(0, Status.KEEP, reason, metric=mean, metrics=metrics, warnings=warnings, stats=stats)
        ctx.journal.export()
        ctx.note(f"calibrated: the baseline's {target} runs give a noise sd of {sigma:.4g}", 0, "baseline", slot.label,
                 mean=mean)
        if sigma == 0:
            ctx.note(same_every_run(target, value), 0, "baseline", slot.label)
    else:
        ctx.journal.remeasured(0, mean=mean, runs_n=len(values), se=se, reason=baseline_reason(len(values), n0, sigma))
        ctx.note(f"calibrating: run {len(values)} of {n0}: {value:.6g} (mean {mean:.6g})", 0, "baseline", slot.label,
                 mean=mean)


def settle(ctx: Engine) -> None:
    """On resume: a calibration that is complete by ``calibration_target`` but whose reason
    still says "so far" (a campaign stopped after its last run was recorded and before it was
    folded in, or one made before the calibration could stop early) gets its complete reason."""
    base, values, n0 = ctx.journal.experiment(0), ctx.state.samples(0), ctx.judge.baseline_runs
    if base is None or base.status is not Status.KEEP or not values or calibrating(ctx) or PARTIAL not in base.reason:
        return
    sigma, _ = pooled_sd([values])
    ctx.journal.remeasured(0, mean=fmean(values), runs_n=len(values),
                           se=sigma / math.sqrt(len(values)) if sigma is not None else None,
                           reason=baseline_reason(len(values), calibration_target(values, n0), sigma, asked=n0))
    if sigma is None:  # one run (a calibration asked of one run on resume): no noise to say
        return
    ctx.note(f"calibrated: the baseline's {len(values)} runs give a noise sd of {sigma:.4g}", 0, "baseline",
             mean=fmean(values))
    if sigma == 0:
        ctx.note(same_every_run(len(values), values[0]), 0, "baseline")


def same_every_run(n0: int, value: float) -> str:
    """The warning when every calibration run of the baseline gave the same value. Pure."""
    return (f"every one of the baseline's {n0} runs gave {value:.6g}: the run does not vary with its seed "
            "(AUTORESEARCH_SEED; a seed fixed in its code or config?), so the judge sees no noise and any "
            "difference passes its test, however small, and repeated runs only repeat. Make the run read "
            "AUTORESEARCH_SEED for a judgement that holds beyond one seed, and set the smallest change that "
            "matters (--set judge.min_effect=...)")


def finish_calibration(ctx: Engine, slot: Slot) -> bool:
    """Wait for the calibration to be complete, running the missing runs on ``slot``.
    False when the harness was stopped or failed meanwhile."""
    while calibrating(ctx):
        if ctx.stop.is_set() or ctx.error is not None:
            return False
        if runs_missing(ctx) > 0:
            calibration_run(ctx, slot)
        else:  # the last ones run on other slots
            ctx.lock.wait(timeout=0.25)
    return True


def judged(ctx: Engine, slot: Slot, exp_id: int, desc: str, values: list[float],
           parent_exp: int) -> tuple[Decision, list[float]] | None:
    """The judge's decision on a candidate's runs, and the parent's runs it was judged
    against. A candidate found promising while the baseline calibrates waits for the
    calibration (see above) and is judged again; None when the harness stopped meanwhile."""
    while True:
        parent_runs = list(ctx.state.samples(parent_exp))
        decision = ctx.judge.decide(values, parent_runs, ctx.goal, ctx.state.noise(), calibrating=calibrating(ctx))
        if decision.verdict is not Verdict.CALIBRATE:
            return decision, parent_runs
        have = len(ctx.state.samples(0))
        ctx.note(f"{decision.reason} ({have} of {ctx.judge.baseline_runs} runs)", exp_id, desc, slot.label)
        if not finish_calibration(ctx, slot):
            return None
