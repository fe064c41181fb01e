"""Keeping every slot busy: the queue of pending experiments, the proposal pump, one
thread per running experiment, the limits, and the stop.

The queue of work is the ledger's ``pending`` rows: the pump registers each proposal at
once (the journal's first step), so nothing prepared is lost when the harness stops and a
resumed campaign runs them first. A free slot takes a calibration run of the baseline when
its calibration is incomplete and the slot started last took a candidate (so the two
alternate), else a due re-measurement of the incumbent, else the oldest pending experiment.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Literal

from ..events import Limits, Outcome
from ..protocols import ProposalContext, Proposer
from ..records import Proposal, Status
from ..sanitize import one_line
from ..slots import Slot
from .baseline import remeasure
from .calibration import calibration_run, runs_missing
from .candidate import Refused, Rules, check_candidate
from .context import Engine
from .experiment import run_experiment


class JobKind(str, enum.Enum):
    CANDIDATE = "candidate"
    REMEASURE = "remeasure"
    CALIBRATE = "calibrate"  # one of the baseline's calibration runs (engine/calibration.py)


@dataclass(frozen=True)
class Job:
    slot: Slot
    kind: JobKind
    exp_id: int | None


class Pump:
    """Prepares proposals in its own thread while runs execute. The proposer is only ever
    called from this thread, so proposers need not be thread-safe."""

    def __init__(self, ctx: Engine, proposer: Proposer, demand: Callable[[], int],
                 context: Callable[[], ProposalContext], queued: Callable[[int], None]):
        self.ctx, self.proposer, self.demand, self.context, self.queued = ctx, proposer, demand, context, queued
        self.exhausted = False
        self.stop_reason = "proposals exhausted"
        self.closed = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="proposer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        """Stop preparing (lock held). A proposal in progress is dropped when it returns:
        it was never written anywhere."""
        self.closed = True
        self.ctx.lock.notify_all()

    def _main(self) -> None:
        ctx = self.ctx
        try:
            while True:
                with ctx.lock:
                    while not self.closed and self.demand() <= 0:
                        ctx.lock.wait(timeout=0.5)
                    if self.closed:
                        return
                    context = self.context()
                t0 = time.monotonic()
                proposal = self.proposer.propose(context)
                took = time.monotonic() - t0
                with ctx.lock:
                    if self.closed:
                        return
                    self._deliver(proposal, context, took)
                    if self.exhausted:
                        return
        except BaseException as e:  # the proposer failed: the campaign finishes what runs, then raises it
            with ctx.lock:
                self.error = e
                ctx.lock.notify_all()

    def _deliver(self, proposal: Proposal | None, context: ProposalContext, took: float) -> None:
        ctx = self.ctx
        notes = getattr(self.proposer, "notes", None)
        while notes:  # what the proposer wants the user to know (a fallback, a budget)
            ctx.note(notes.pop(0))
        ctx.state.counters.proposed(took)
        if proposal is None:
            self.stop_reason = getattr(self.proposer, "stop_reason", None) or "proposals exhausted"
            self.exhausted = True
        else:
            assert isinstance(proposal, Proposal)
            # a model or an agent wrote it: one clean line before it reaches git, the ledger, a terminal
            proposal = dataclasses.replace(proposal, description=one_line(proposal.description) or "(no description)")
            exp_id = ctx.journal.register(proposal, context.incumbent_commit, self.proposer.name,
                                          code_hash=_code_hash(ctx, proposal, context))
            self.queued(exp_id)
        ctx.lock.notify_all()


def _code_hash(ctx: Engine, proposal: Proposal, context: ProposalContext) -> str | None:
    """The code a proposal makes of the incumbent it was proposed for, when it applies: the
    pending row carries it, so a proposer rebuilt after a restart sees it as taken."""
    if proposal.meta.get("invalid"):
        return None
    try:
        return check_candidate(context.files, proposal.edits, Rules(ctx.rules.editable)).code_hash
    except Refused:
        return None


class Scheduler:
    def __init__(self, ctx: Engine, proposer: Proposer, slots: list[Slot], limits: Limits,
                 lookahead: int | Literal["auto"], context: Callable[[], ProposalContext]):
        self.ctx, self.slots, self.limits, self.lookahead_setting = ctx, slots, limits, lookahead
        self.active: dict[int, Job] = {}  # slot index -> what runs there
        self.pending: list[int] = []       # proposed, not started; oldest first
        self.last_started: JobKind | None = None  # calibration runs alternate with candidates
        self.pump = Pump(ctx, proposer, self.proposal_demand, context, self.pending.append)

    def run(self) -> Outcome:
        """Schedule until a limit, a stop, an error or exhaustion (lock held)."""
        history = self.ctx.state.history()
        self.pending[:] = [e.id for e in history if e.id > 0 and (not e.status.terminal or e.status is Status.INTERRUPTED)]
        self.pump.start()
        try:
            return self._loop()
        except BaseException:
            if self.active:  # a forced stop: the runs' threads are left to die with us
                self.ctx.abandoned = True
            raise
        finally:
            self.pump.close()

    def _loop(self) -> Outcome:
        ctx = self.ctx
        while True:
            if ctx.stop.is_set() or ctx.error is not None or self.pump.error is not None:
                self._drain()
                if ctx.error is not None:
                    raise ctx.error
                if ctx.stop.is_set():
                    return ctx.stop.outcome()
                raise self.pump.error  # type: ignore[misc]
            limit = self.limit_reason()
            if limit is None:
                for slot in self.slots:
                    if slot.index not in self.active and not self._start_next(slot):
                        break
            if not self.active:
                if limit is not None:
                    return Outcome(limit, 0)
                if self.pump.exhausted and not self.pending:
                    return Outcome(self.pump.stop_reason, 0)
            ctx.lock.wait(timeout=0.25)

    def _drain(self) -> None:
        while self.active:
            self.ctx.lock.wait(timeout=0.25)

    def limit_reason(self) -> str | None:
        if self.limits.max_experiments is not None and self.ctx.state.counters.done >= self.limits.max_experiments:
            return f"reached --max-experiments {self.limits.max_experiments}"
        if self.limits.deadline is not None and time.time() >= self.limits.deadline:
            return "reached --max-hours; nothing new is started after the deadline"
        return None

    def _candidates_running(self) -> int:
        return sum(1 for j in self.active.values() if j.kind is JobKind.CANDIDATE)

    def _start_next(self, slot: Slot) -> bool:
        """Give a free slot its next job; False when there is nothing to do."""
        at_max = self.limits.max_experiments is not None and \
            self.ctx.state.counters.done + self._candidates_running() >= self.limits.max_experiments
        if self.last_started is JobKind.CANDIDATE and runs_missing(self.ctx) > 0:
            job = Job(slot, JobKind.CALIBRATE, 0)
        elif self._remeasure_due():
            job = Job(slot, JobKind.REMEASURE, self.ctx.state.incumbent_ref()[1])
            self.ctx.state.counters.remeasures += 1
        elif self.pending and not at_max:
            job = Job(slot, JobKind.CANDIDATE, self.pending.pop(0))
        else:
            return False
        self.active[slot.index] = job
        self.last_started = job.kind
        threading.Thread(target=self._job_main, args=(job,), name=f"slot{slot.index}", daemon=True).start()
        return True

    def _job_main(self, job: Job) -> None:
        ctx = self.ctx
        with ctx.lock:
            try:
                if job.kind is JobKind.CALIBRATE:
                    calibration_run(ctx, job.slot)
                elif job.kind is JobKind.REMEASURE:
                    remeasure(ctx, job.slot, job.exp_id)
                elif not run_experiment(ctx, job.slot, job.exp_id):  # type: ignore[arg-type]
                    self.pending.append(job.exp_id)  # type: ignore[arg-type]  # requeued: at the end of the queue
            except BaseException as e:
                ctx.fail(e)  # stop the other slots' runs; they resume later
            finally:
                self.active.pop(job.slot.index, None)
                ctx.lock.notify_all()

    def _remeasure_due(self) -> bool:
        every = self.ctx.judge.remeasure_every
        if every <= 0 or any(j.kind is JobKind.REMEASURE for j in self.active.values()):
            return False
        if runs_missing(self.ctx) > 0 or self.ctx.state.calibration_runs:
            return False  # the baseline is still being calibrated (its runs would share indices)
        counters = self.ctx.state.counters
        return counters.candidates_done // every > counters.remeasures

    def lookahead(self) -> int:
        """How many proposals to hold ready beyond the free slots.

        ``auto``: none while the proposer takes under 5 % of a run (it cannot keep a slot
        waiting long, and a proposal made later has seen more results); otherwise enough to
        cover the proposer's latency across all slots, ceil(slots x latency / run time), at
        least 1 and at most one per slot. Measured as moving averages while the campaign runs.
        """
        if self.lookahead_setting != "auto":
            return int(self.lookahead_setting)
        latency, run_s = self.ctx.state.counters.propose_s, self.ctx.state.counters.run_s
        if latency is None or run_s is None or run_s <= 0 or latency < 0.05 * run_s:
            return 0
        n = len(self.slots)
        return max(1, min(n, math.ceil(n * latency / run_s)))

    def proposal_demand(self) -> int:
        """How many more proposals the pump should prepare now."""
        ctx = self.ctx
        if ctx.stop.is_set() or ctx.error is not None or self.pump.exhausted or self.limit_reason():
            return 0
        want = len(self.slots) - len(self.active) + self.lookahead() - len(self.pending)
        if self.limits.max_experiments is not None:
            want = min(want, self.limits.max_experiments - ctx.state.counters.done - self._candidates_running()
                       - len(self.pending))
        return want
