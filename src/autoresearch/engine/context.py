"""The parts an experiment's path uses, held together, and the one lock.

Concurrency model: one lock guards the state, the ledger and the branch. Code runs with it
held except where a slot works on its own run directory, while a run executes, while the
proposer thinks, and in ``Condition.wait``; so every durable step is taken by one thread
at a time, in the documented order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..errors import InfraError
from ..events import Event, EventKind, Reporter, StopSignal
from ..judge import Judge
from ..records import Goal, Proposal, Purpose, RunStatus
from ..slots import Slot
from ..store.ledger import Campaign
from .budget import allowance_s, busy, busy_note, over_allowance_reason, overran, overrun_note
from .candidate import Rules
from .execution import Execution, RunPlan, RunResult
from .journal import Journal
from .state import MAX_INFRA_STREAK, CampaignState

# how a knobs proposal moves onto a new incumbent: (proposal, the incumbent's files, its metric) -> the
# moved proposal, or the reason it cannot move there
Rebase = Callable[[Proposal, Mapping[str, str], float | None], Proposal | str]


@dataclass
class Engine:
    campaign: Campaign
    journal: Journal
    state: CampaignState
    execution: Execution
    judge: Judge
    rules: Rules
    report: Reporter
    stop: StopSignal
    suspicious_sigma: float = 10.0
    lock: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))
    error: BaseException | None = None
    guard: Any = None  # engine/guard.py: tampering, looked for after each run
    abandoned: bool = False  # a forced stop: threads still working are left to die with the process
    budget_noted: bool = False  # a run went far over its time budget, and the campaign was told (once)
    rebase: Rebase | None = None  # knobs proposals only (engine/campaign.py)

    @property
    def goal(self) -> Goal:
        return Goal(self.campaign.goal)

    @property
    def metric(self) -> str:
        return self.campaign.metric

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[None]:
        """Release the lock for work on a slot's own directory or process."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    def measure(self, slot: Slot, *, exp_id: int, attempt: int, k: int, purpose: Purpose, workdir: Path,
                commit: str) -> RunResult:
        """One run of an experiment, recorded: the plan before it starts, the result after.
        Infrastructure failures in a row are counted; too many stop the campaign."""
        from .experiment import run_stem

        plan = self.execution.plan(slot, exp_id=exp_id, attempt=attempt, k=k, purpose=purpose, workdir=workdir,
                                   commit=commit, stem=run_stem(exp_id, attempt, k), crash_id=exp_id)
        self.journal.run_started(plan)
        if self.guard is not None:
            self.guard.started(exp_id)
        try:
            with self.unlocked():
                result = self.execution.run(plan)
        finally:
            tampered = self.guard.finished(exp_id) if self.guard is not None else None
        if tampered is not None:
            result = dataclasses.replace(result, status=RunStatus.INVALID, reason=tampered)
        if not result.run.interrupted:
            self.state.counters.timed(result.duration_s)
        result = self._over_budget(plan, result)
        self.journal.run_finished(plan, result)
        self._infra(slot, plan, result)
        return result

    def _over_budget(self, plan: RunPlan, result: RunResult) -> RunResult:
        """A candidate's run that took far longer than the budget and the baseline's runs is
        invalid: it bought more compute than the budget gives. Else, once per campaign, a run
        that took far longer than its time budget is said, with the fix (engine/budget.py):
        on the console and in the run's warnings in the ledger."""
        settings, run = self.execution.settings, result.run
        if plan.purpose in (Purpose.SCREEN, Purpose.CONFIRM) and result.status is RunStatus.OK:
            baseline_s = self.state.baseline_longest_s()  # (run and eval, as the ledger has it: so here too)
            allowed = allowance_s(settings.time_budget_s, baseline_s)
            if overran(result.duration_s, allowed):
                load, cpus = _load() if settings.wrap_here else (0.0, 1)  # (on Ray the run's node is elsewhere)
                if not busy(load, cpus, settings.busy_load, result.duration_s, allowed):
                    reason = over_allowance_reason(result.duration_s, settings.time_budget_s, baseline_s)
                    return dataclasses.replace(result, status=RunStatus.INVALID, reason=reason)
                note = busy_note(result.duration_s, settings.time_budget_s, baseline_s, load, cpus)
                self.note(note, plan.exp_id, slot=plan.slot.label)
                return dataclasses.replace(result, warnings=(*result.warnings, note))
        if self.budget_noted or run.interrupted or run.infra or not overran(run.duration_s, settings.time_budget_s):
            return result
        self.budget_noted = True
        note = overrun_note(exp_id=plan.exp_id, duration_s=run.duration_s, budget_s=settings.time_budget_s,
                            files=self.state.files_at(plan.commit, self._sources()), timeout_s=settings.run_timeout_s)
        self.note(note, plan.exp_id, slot=plan.slot.label)
        return dataclasses.replace(result, warnings=(*result.warnings, note))

    def _sources(self) -> tuple[str, ...]:
        """The code a run executes: the editable files and the readonly Python files (karpathy's
        ``train.py`` reads its budget through ``prepare.py``)."""
        readonly = tuple(p for p in self.execution.readonly if p.endswith(".py") and p not in self.state.editable)
        return (*self.state.editable, *readonly)

    def _infra(self, slot: Slot, plan: RunPlan, result: RunResult) -> None:
        counters = self.state.counters
        if result.status is RunStatus.INFRA:
            counters.infra_streak += 1
            self.note(f"run {plan.k} of #{plan.exp_id}: {result.reason}", plan.exp_id, slot=slot.label)
            if counters.infra_streak >= MAX_INFRA_STREAK and self.error is None:
                # the campaign stops once this experiment is back in the queue (the others are interrupted)
                self.fail(InfraError(
                    f"{counters.infra_streak} runs in a row failed for reasons outside the candidates (last: "
                    f"{result.run.infra or (result.eval.infra if result.eval else '')}). Check the cluster "
                    "(`ray status`); the experiments wait in the ledger and run when you start the campaign again."))
        elif result.status is not RunStatus.INTERRUPTED:
            counters.infra_streak = 0

    def note(self, detail: str, exp_id: int | None = None, description: str = "", slot: str = "",
             mean: float | None = None) -> None:
        """A line worth showing; ``mean``: the experiment's mean now (a calibration or a
        re-measurement moved it), which the live view's "best" follows."""
        self.report(Event(EventKind.NOTE, exp_id, description, detail=detail, slot=slot, metric=mean))

    def phase(self, exp_id: int, slot: str, what: str) -> None:
        """A run on a slot enters a phase ("run 2", "eval"): called from the slot's thread,
        without the lock (reporters are thread-safe)."""
        self.report(Event(EventKind.PHASE, exp_id, detail=what, slot=slot))

    def fail(self, error: BaseException) -> None:
        """A thread hit an error the campaign cannot go on with: the first one is kept and
        raised once every running experiment is stopped (they resume later)."""
        if not self.abandoned and self.error is None:
            self.error = error
            self.stop.set(signal.SIGTERM)


def _load() -> tuple[float, int]:
    """This machine's 1-minute load average and CPU count; no load where none can be read."""
    try:
        return os.getloadavg()[0], os.cpu_count() or 1
    except OSError:
        return 0.0, 1
