"""The baseline and the incumbent's re-measurements.

The baseline (experiment 0, the campaign's base commit) runs ``judge.baseline_runs`` times
to calibrate the noise; the search never starts without it. The first ``judge.start_runs``
of them (or one per slot, when there are more slots) run here, spread over the slots; the
rest run alongside the first candidates (``engine/calibration.py``). Later the incumbent
is run once more now and then (``judge.remeasure_every``): drift over a night shows up, and
its mean firms up. Called with the engine's lock held.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from statistics import fmean
from typing import Sequence

from ..edits import code_hash
from ..errors import BaselineError
from ..events import Event, EventKind, Outcome
from ..records import Experiment, Purpose, RunStatus, Status
from ..slots import Slot
from ..stats import pooled_sd
from .calibration import baseline_reason, calibration_target
from .context import Engine
from .execution import RunResult
from .experiment import run_stem


@dataclass
class _Calibration:
    attempt: int
    ok: list[RunResult] = field(default_factory=list)
    failed: list[RunResult] = field(default_factory=list)
    running: int = 0


def calibrate(ctx: Engine, slots: Sequence[Slot], previous: Experiment | None, *, whole: bool = False) -> Outcome | None:
    """Run the baseline until the search can start: ``judge.start_runs`` runs, or one per
    slot when there are more slots, or all its runs when ``whole`` (no candidate will run
    this time, so there is nothing to interleave them with). None when done; the
    interrupted outcome when the harness was stopped; raises BaselineError when it failed."""
    base = ctx.campaign.base_commit
    files = {k: v for k, v in ctx.state.files_at(base, ctx.rules.editable).items() if v is not None}
    attempt = previous.attempt + 1 if previous is not None else 1
    ctx.journal.baseline_running(previous, attempt=attempt, code_hash=code_hash(files), seed=ctx.execution.settings.seed,
                                 slot=slots[0].label, log_path=str(ctx.execution.log_path(run_stem(0, attempt, 0))))
    ctx.state.reload_samples()  # a new attempt: its runs start from nothing
    n0 = ctx.judge.baseline_runs
    first = n0 if whole else min(n0, max(ctx.judge.start_runs, len(slots)))  # one round over the slots at least
    later = f"; {n0 - first} more alongside the first candidates" if first < n0 else ""
    ctx.report(Event(EventKind.START, 0, "baseline" + (f" ({first} runs calibrate the noise{later})" if n0 > 1 else "")))
    cal = _Calibration(attempt)
    _spread(ctx, cal, slots, first)
    if ctx.error is not None:
        raise ctx.error
    interrupted = next((f for f in cal.failed if f.status is RunStatus.INTERRUPTED), None)
    if interrupted is not None or (ctx.stop.is_set() and len(ctx.state.samples(0)) < first):
        reason = interrupted.reason if interrupted else "the harness was stopped during the baseline"
        ctx.journal.baseline_finished(Status.INTERRUPTED, reason, metric=None, metrics={}, warnings=(), stats={})
        ctx.report(Event(EventKind.FINISH, 0, "baseline", Status.INTERRUPTED, detail=reason))
        return ctx.stop.outcome()
    return _conclude(ctx, cal, n0)


def _spread(ctx: Engine, cal: _Calibration, slots: Sequence[Slot], n0: int) -> None:
    """``n0`` runs over the slots: slot i takes runs i, i + width, ...; one thread per slot."""
    width = min(len(slots), n0)
    if width == 1:
        cal.running = 1
        with ctx.unlocked():
            _runs_on(ctx, cal, slots[0], range(n0))
        return
    cal.running = width
    for slot in slots[:width]:
        threading.Thread(target=_runs_on, args=(ctx, cal, slot, range(slot.index, n0, width)),
                         name=f"slot{slot.index}", daemon=True).start()
    while cal.running:
        ctx.lock.wait(timeout=0.25)


def _runs_on(ctx: Engine, cal: _Calibration, slot: Slot, ks: range) -> None:
    with ctx.lock:
        try:
            for k in ks:
                if cal.failed or ctx.stop.is_set() or len(ctx.state.samples(0)) >= calibration_target(
                        ctx.state.samples(0), ctx.judge.baseline_runs):
                    break  # a failure, a stop, or runs that only repeat (calibration.calibration_target)
                while True:  # a run the infrastructure failed is done again (bounded by the streak)
                    with ctx.unlocked():
                        workdir = ctx.execution.checkout(slot, ctx.campaign.base_commit)
                    r = ctx.measure(slot, exp_id=0, attempt=cal.attempt, k=k, purpose=Purpose.BASELINE,
                                    workdir=workdir, commit=ctx.campaign.base_commit)
                    if r.status is not RunStatus.INFRA or ctx.error is not None:
                        break
                if r.status is RunStatus.OK:
                    ctx.state.samples(0).append(r.measurement.metric)  # type: ignore[arg-type]
                    cal.ok.append(r)
                else:
                    cal.failed.append(r)
        except BaseException as e:
            ctx.fail(e)
        finally:
            cal.running -= 1
            ctx.lock.notify_all()


def _conclude(ctx: Engine, cal: _Calibration, n0: int) -> None:
    failed = cal.failed[0] if cal.failed else None
    last = failed or cal.ok[-1]
    values = ctx.state.samples(0)
    sigma, _ = pooled_sd([values])
    if failed is None:
        mean = fmean(values)
        stats = {"runs": float(len(values)), "mean": mean}
        if sigma is not None:
            stats["se"] = sigma / math.sqrt(len(values))
        reason = baseline_reason(len(values), calibration_target(values, n0), sigma, asked=n0)
        ctx.journal.baseline_finished(Status.KEEP, reason, metric=mean, metrics=last.measurement.metrics,
                                      warnings=last.measurement.warnings, stats=stats)
        ctx.report(Event(EventKind.FINISH, 0, "baseline", Status.KEEP, mean, detail=reason, best=mean))
        ctx.state.forget_incumbent()
        return None
    status = Status(failed.status.value)
    ctx.journal.baseline_finished(status, failed.reason, metric=failed.measurement.metric,
                                  metrics=failed.measurement.metrics, warnings=failed.measurement.warnings, stats={})
    ctx.report(Event(EventKind.FINISH, 0, "baseline", status, failed.measurement.metric, detail=failed.reason,
                     best=failed.measurement.metric))
    ctx.state.forget_incumbent()
    raise BaselineError(
        f"the baseline ({status.value}) failed: {failed.reason}\n"
        f"--- last lines of {failed.run.log_path} ---\n{failed.log_tail}\n---\n"
        f"The search never starts without a working baseline. Fix the arena so that `{ctx.execution.settings.run}` "
        f"finishes within the timeout and reports {ctx.metric} (and commit), or the settings where they are wrong "
        f"([arena] run or --run-cmd, [metric] name or --metric, [metric] pattern where the run prints it its own "
        "way), and run again."
    )


def remeasure(ctx: Engine, slot: Slot, exp_id: int | None) -> None:
    """Run the incumbent once more and fold the value into its mean."""
    inc = ctx.journal.experiment(exp_id) if exp_id is not None else None
    if inc is None or inc.commit is None:
        return
    with ctx.unlocked():
        workdir = ctx.execution.checkout(slot, inc.commit)
    values = ctx.state.samples(inc.id)
    before = fmean(values) if values else float("nan")
    r = ctx.measure(slot, exp_id=inc.id, attempt=inc.attempt, k=len(values), purpose=Purpose.REMEASURE,
                    workdir=workdir, commit=inc.commit)
    if r.status is RunStatus.OK:
        values = ctx.state.samples(inc.id)
        values.append(r.measurement.metric)  # type: ignore[arg-type]
        sigma, _ = pooled_sd([values])
        ctx.journal.remeasured(inc.id, mean=fmean(values), runs_n=len(values),
                               se=sigma / math.sqrt(len(values)) if sigma is not None else None)
        ctx.note(f"re-measured: {r.measurement.metric:.6g} (mean {before:.6g} -> {fmean(values):.6g})",
                 inc.id, inc.description, slot.label, mean=fmean(values))
    else:
        ctx.note(f"re-measuring failed: {r.reason}", inc.id, inc.description, slot.label)
        ctx.journal.export()
