"""The campaign loop: propose -> check -> commit -> run -> measure -> judge -> record.

It talks to protocols only (Proposer, Runner, Judge) plus the ledger and the git
workspace. Every durable step happens in this order, which resume relies on:
ledger ``pending`` -> commit -> ledger ``running`` -> run -> ledger terminal status ->
branch advance (keep) or archive ref (anything else that was committed).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from statistics import fmean
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .campaign import OpenCampaign
from .config import Config
from .edits import apply_edits, code_hash, unified_diff
from .faults import crash_point
from .errors import BaselineError, ConfigError, EditError, InfraError
from .integrity import out_of_range, protected_changes, suspicious
from .judge import Decision, Judge, Noise, Verdict
from .ledger import results_tsv, write_atomic
from .metrics import measure
from .protocols import ProposalContext, Proposer, Runner
from .records import Experiment, FileEdit, Goal, Measurement, Proposal, RunOutcome, Status
from .runners.limits import ResourceLimits
from .runners.local import DEFAULT_ENV_ALLOW, RemoteParts, RunSpec, child_env
from .runners.proctree import new_run_token
from .slots import Slot, cpu_count, parse_slots
from .stats import pooled_sd
from .workspace import hash_files


SUSPICIOUS_RUNS = 3  # runs an implausibly large improvement needs before it can be kept
MAX_INFRA_STREAK = 3  # runs in a row failed by the infrastructure (after its retries) stop the campaign


@dataclass(frozen=True)
class Limits:
    max_experiments: int | None = None
    deadline: float | None = None  # time.time(); nothing new starts after it


@dataclass(frozen=True)
class Outcome:
    reason: str
    exit_code: int


@dataclass(frozen=True)
class Event:
    kind: str  # "start", "finish", "note"
    experiment_id: int | None = None
    description: str = ""
    status: Status | None = None
    metric: float | None = None
    detail: str = ""
    best: float | None = None
    slot: str = ""  # the slot's descriptor (e.g. "cuda:1") for events about a run
    tokens: int = 0  # what the proposal cost (finish events)
    cost: float = 0.0


Reporter = Callable[[Event], None]


@dataclass
class StopSignal:
    """Set by a signal handler; the loop stops the running experiment and exits."""

    event: threading.Event = field(default_factory=threading.Event)
    signum: int | None = None

    def set(self, signum: int) -> None:
        self.signum = signum
        self.event.set()


@dataclass(frozen=True)
class _Measured:
    status: Status
    measurement: Measurement
    reason: str
    run_id: int
    log_path: str


def python_syntax_problem(path: str, text: str) -> str | None:
    if not path.endswith(".py"):
        return None
    try:
        ast.parse(text, filename=path)
    except SyntaxError as e:
        return f"{path} does not parse: line {e.lineno}: {e.msg}"
    except ValueError as e:  # null bytes
        return f"{path} does not parse: {e}"
    return None


def _first_line_reason(outcome: RunOutcome, what: str) -> str:
    last = next((x.strip() for x in reversed(outcome.log_tail.splitlines()) if x.strip()), "")
    if outcome.exit_code is not None and outcome.exit_code < 0:
        head = f"{what} killed by signal {-outcome.exit_code}"
    else:
        head = f"{what} exited with code {outcome.exit_code}"
    return f"{head}: {last[:200]}" if last else head


class _Refused(Exception):
    """A candidate refused before it ran (its edits do not apply, a duplicate, ...)."""

    def __init__(self, reason: str, **extra: Any):
        super().__init__(reason)
        self.reason = reason
        self.extra = extra


@dataclass(frozen=True)
class _Built:
    """A candidate committed in its slot's worktree, ready to run."""

    commit: str
    parent: str
    worktree: Path
    diff: str
    code_hash: str
    files: dict[str, str | None]  # the editable files of the commit


@dataclass
class _Job:
    slot: Slot
    kind: str  # "candidate" | "remeasure"
    exp_id: int


class _Pump:
    """Prepares proposals in its own thread while runs execute.

    The proposer is only ever called from this thread (``propose`` and ``observe``), so
    proposers need not be thread-safe. Each proposal is written to the ledger as a
    ``pending`` experiment at once: the queue of work *is* the ledger's pending rows, so
    nothing is lost when the harness stops, and a resumed campaign runs them first.
    """

    def __init__(self, loop: "CampaignLoop"):
        self.loop = loop
        self.exhausted = False
        self.stop_reason = "proposals exhausted"
        self.closed = False
        self.error: BaseException | None = None
        self.latency_s: float | None = None  # moving average of propose() wall time
        self.inbox: list[Experiment] = []    # finished experiments the proposer has not heard of
        self.thread = threading.Thread(target=self._main, name="proposer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        """Stop preparing (called with the loop's lock held). A proposal in progress is
        dropped when it returns; it was never written anywhere."""
        self.closed = True
        self.loop.cond.notify_all()

    def _main(self) -> None:
        loop = self.loop
        try:
            while True:
                with loop.cond:
                    while not self.closed and loop.proposal_demand() <= 0:
                        loop.cond.wait(timeout=0.5)
                    if self.closed:
                        return
                    context = loop.proposal_context()
                    inbox, self.inbox = self.inbox, []
                for exp in inbox:
                    loop.proposer.observe(exp)
                t0 = time.monotonic()
                proposal = loop.proposer.propose(context)
                took = time.monotonic() - t0
                with loop.cond:
                    if self.closed:
                        return
                    notes = getattr(loop.proposer, "notes", None)
                    while notes:  # what the proposer wants the user to know (a fallback, a budget)
                        loop.report(Event("note", detail=notes.pop(0)))
                    self.latency_s = took if self.latency_s is None else 0.7 * self.latency_s + 0.3 * took
                    if proposal is None:
                        self.stop_reason = getattr(loop.proposer, "stop_reason", None) or "proposals exhausted"
                        self.exhausted = True
                        loop.cond.notify_all()
                        return
                    loop.register(proposal, context.incumbent_commit)
                    loop.cond.notify_all()
        except BaseException as e:  # the proposer failed: the loop finishes what runs, then raises it
            with loop.cond:
                self.error = e
                loop.cond.notify_all()


class CampaignLoop:
    """Runs the campaign: a scheduler that keeps every slot busy, one thread per running
    experiment, and the proposal pump.

    Concurrency model: one lock (``cond``) guards all state, the ledger and git. Code runs
    with the lock held except while waiting for a run's process (``_wait``), for a proposal
    (the pump calls the proposer unlocked), or for something to happen (``cond.wait``). So
    every durable step is still taken by one thread at a time, in the documented order.
    """

    def __init__(
        self,
        oc: OpenCampaign,
        config: Config,
        *,
        proposer: Proposer,
        runner: Runner,
        judge: Judge,
        limits: Limits = Limits(),
        stop: StopSignal | None = None,
        report: Reporter | None = None,
        base_env: Mapping[str, str] | None = None,
        slots: Sequence[Slot] | None = None,
    ):
        self.oc = oc
        self.ws = oc.workspace
        self.ledger = oc.ledger
        self.campaign = oc.campaign
        self.config = config
        self.proposer = proposer
        self.runner = runner
        self.judge = judge
        self.limits = limits
        self.stop = stop or StopSignal()
        self.report = report or (lambda e: None)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.slots = list(slots) if slots is not None else parse_slots(config.runner.slots, cpu_count())
        self.goal = Goal(self.campaign.goal)
        self.metric_name = self.campaign.metric
        self.tag = self.campaign.tag
        self.branch_ref = f"refs/heads/{self.campaign.branch}"
        self.run_dir = self.ws.state_dir / self.tag
        self.cond = threading.Condition(threading.Lock())
        self._incumbent: tuple[str, int | None] | None = None
        self._samples: dict[int, list[float]] | None = None
        self._files: dict[tuple[str, tuple[str, ...]], dict[str, str | None]] = {}
        self._active: dict[int, _Job] = {}   # slot index -> what runs there
        self._pending: list[int] = []        # proposed, not started; oldest first
        self._done = 0                       # experiments with a counted terminal status
        self._candidates_done = 0            # the same without the baseline
        self._remeasures = 0                 # re-measurement runs started so far
        self._run_s: float | None = None     # moving average of run wall time
        self._error: BaseException | None = None
        self._abandoned = False
        self._claimed: dict[str, int] = {}   # code hash -> experiment being built with it
        self._infra_streak = 0               # runs in a row the infrastructure failed
        self._pump = _Pump(self)
        self.resource_limits = resource_limits(config)
        self.editable = tuple(config.arena.editable)
        self.readonly = {p: self.campaign.readonly.get(p) for p in config.arena.readonly}
        if set(config.arena.readonly) - set(self.campaign.readonly):
            self.readonly = self.ws.tree_blobs(self.campaign.base_commit, config.arena.readonly)

    # -- state (every method here expects the lock to be held) ----------------------------------
    def history(self) -> list[Experiment]:
        return self.ledger.experiments(self.campaign)

    def _incumbent_ref(self) -> tuple[str, int | None]:
        """The branch tip and the experiment that made it. Only this loop moves the branch
        while it holds the campaign lock, so the tip is read once and then kept in memory."""
        if self._incumbent is None:
            tip = self.ws.resolve(self.branch_ref) or self.campaign.base_commit
            exp_id = None
            for e in self.history():
                if e.status is Status.KEEP and e.commit == tip:
                    exp_id = e.id
            self._incumbent = (tip, exp_id)
        return self._incumbent

    def incumbent(self) -> tuple[str, float | None]:
        """The branch tip and its metric (the mean of its runs)."""
        tip, exp_id = self._incumbent_ref()
        samples = self.samples(exp_id) if exp_id is not None else []
        return tip, (fmean(samples) if samples else None)

    def samples(self, exp_id: int) -> list[float]:
        """Metric values of an experiment's successful runs (of its latest attempt, plus any
        re-measurements when it is the incumbent)."""
        if self._samples is None:
            attempts = {e.id: e.attempt for e in self.history()}
            self._samples = {}
            for eid, runs in self.ledger.ok_run_metrics(self.campaign).items():
                self._samples[eid] = [m for a, _, m in runs if a == attempts.get(eid)]
        return self._samples.setdefault(exp_id, [])

    def noise(self) -> Noise:
        """Pooled sd of repeated runs of unchanged code (every experiment with 2+ runs)."""
        self.samples(0)
        assert self._samples is not None
        return pooled_sd(self._samples.values())

    def files_at(self, commit: str, paths: tuple[str, ...]) -> dict[str, str | None]:
        """Files at a commit (commits are immutable, so the last few reads are cached)."""
        key = (commit, paths)
        if key not in self._files:
            if len(self._files) >= 16:
                self._files.pop(next(iter(self._files)))
            self._files[key] = self.ws.read_files(commit, paths)
        return dict(self._files[key])

    def export(self) -> None:
        text = results_tsv(self.metric_name, self.history())
        tmp = self.run_dir / "tmp"
        write_atomic(self.run_dir / "results.tsv", text, tmp)
        write_atomic(self.ws.arena / "results.tsv", text, tmp)

    def proposal_context(self) -> ProposalContext:
        parent, metric = self.incumbent()
        history = self.history()
        crashes = [e.id for e in history if e.status in (Status.CRASH, Status.TIMEOUT)][-2:]
        crash_logs = {}
        for eid in crashes:
            runs = self.ledger.runs(self.campaign, eid)
            if runs:
                crash_logs[eid] = runs[-1]["log_tail"]
        readonly = tuple(self.readonly)
        return ProposalContext(
            incumbent_commit=parent,
            incumbent_metric=metric,
            files={k: v for k, v in self.files_at(parent, self.editable).items() if v is not None},
            history=history,
            metric=self.metric_name,
            goal=self.goal,
            program=self._program_text(parent),
            readonly={k: v for k, v in self.files_at(self.campaign.base_commit, readonly).items() if v is not None},
            noise_sd=self.noise()[0],
            crash_logs=crash_logs,
            tag=self.tag,
        )

    def register(self, proposal: Proposal, parent: str) -> int:
        """Write a new proposal to the ledger as ``pending`` and queue it."""
        exp_id = self.ledger.next_experiment_id(self.campaign)
        self.ledger.add_experiment(
            self.campaign, id=exp_id, description=proposal.description,
            proposer=proposal.proposer or self.proposer.name, parent=parent,
            proposal=_proposal_to_json(proposal), tokens=proposal.tokens, cost=proposal.cost,
        )
        crash_point("after_pending", exp_id)
        self._pending.append(exp_id)
        return exp_id

    def lookahead(self) -> int:
        """How many proposals to hold ready beyond the free slots.

        ``auto``: none while the proposer takes under 5 % of a run (it cannot keep a slot
        waiting long, and a proposal made later has seen more results); otherwise enough to cover
        the proposer's latency across all slots, ceil(slots x latency / run time), at least
        1 and at most one per slot. Measured as moving averages while the campaign runs.
        """
        setting = self.config.proposer.lookahead
        if setting != "auto":
            return int(setting)
        latency, run_s = self._pump.latency_s, self._run_s
        if latency is None or run_s is None or run_s <= 0 or latency < 0.05 * run_s:
            return 0
        n = len(self.slots)
        return max(1, min(n, math.ceil(n * latency / run_s)))

    def proposal_demand(self) -> int:
        """How many more proposals the pump should prepare now."""
        if self.stop.event.is_set() or self._error is not None or self._pump.exhausted or self._limit_reason():
            return 0
        free = len(self.slots) - len(self._active)
        want = free + self.lookahead() - len(self._pending)
        if self.limits.max_experiments is not None:
            candidates = sum(1 for j in self._active.values() if j.kind == "candidate")
            want = min(want, self.limits.max_experiments - self._done - candidates - len(self._pending))
        return want

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        with self.cond:
            try:
                return self._run()
            except BaseException:
                if self._active:  # a forced stop: the runs' threads are left to die with us
                    self._abandoned = True
                raise
            finally:
                self._pump.close()
                self.export()

    def _run(self) -> Outcome:
        if self.resource_limits.any and self.config.runner.kind == "ray":
            self.report(Event("note", detail="limit: [runner.limits] apply on each node, with what that node "
                                             "offers (cgroups or rlimits)"))
        elif self.resource_limits.any:
            from .runners.local import _cgroups
            from .runners.limits import Cgroups, describe

            cgroups = _cgroups() if self.resource_limits.cgroups else Cgroups(0, {})
            for line in describe(self.resource_limits, cgroups, os.geteuid() == 0, self.config.runner.run_as or ""):
                self.report(Event("note", detail=f"limit: {line}"))
        if self.limits.deadline is not None and time.time() >= self.limits.deadline:
            return Outcome("reached --max-hours; nothing new is started after the deadline", 0)
        history = self.history()
        baseline = next((e for e in history if e.id == 0), None)
        if baseline is None or baseline.status is not Status.KEEP:
            outcome = self._baseline(baseline)
            if outcome is not None:
                return outcome
            history = self.history()
        self._pending = [e.id for e in history if e.id > 0 and (not e.status.terminal or e.status is Status.INTERRUPTED)]
        self._done = sum(1 for e in history if e.status.counted)
        self._candidates_done = sum(1 for e in history if e.id > 0 and e.status.counted)
        self._remeasures = self.ledger.count_runs(self.campaign, "remeasure")
        self._pump.start()
        return self._schedule()

    def _limit_reason(self) -> str | None:
        if self.limits.max_experiments is not None and self._done >= self.limits.max_experiments:
            return f"reached --max-experiments {self.limits.max_experiments}"
        if self.limits.deadline is not None and time.time() >= self.limits.deadline:
            return "reached --max-hours; nothing new is started after the deadline"
        return None

    def _schedule(self) -> Outcome:
        """Start work on free slots until a limit, a stop, an error, or exhaustion."""
        while True:
            if self.stop.event.is_set() or self._error is not None or self._pump.error is not None:
                self._drain()
                if self._error is not None:
                    raise self._error
                if self.stop.event.is_set():
                    return self._interrupted_outcome()
                assert self._pump.error is not None
                raise self._pump.error
            limit = self._limit_reason()
            if limit is None:
                for slot in self.slots:
                    if slot.index not in self._active and not self._start_next(slot):
                        break
            if not self._active:
                if limit is not None:
                    return Outcome(limit, 0)
                if self._pump.exhausted and not self._pending:
                    return Outcome(self._pump.stop_reason, 0)
            self.cond.wait(timeout=0.25)

    def _at_max(self) -> bool:
        """True when the experiments done and running reach --max-experiments."""
        if self.limits.max_experiments is None:
            return False
        running = sum(1 for j in self._active.values() if j.kind == "candidate")
        return self._done + running >= self.limits.max_experiments

    def _drain(self) -> None:
        while self._active:
            self.cond.wait(timeout=0.25)

    def _start_next(self, slot: Slot) -> bool:
        """Give a free slot its next job: a due re-measurement of the incumbent, else the
        oldest pending experiment (resumed ones first). False when there is nothing to do."""
        if self._remeasure_due():
            job = _Job(slot, "remeasure", self._incumbent_ref()[1])  # type: ignore[arg-type]
            self._remeasures += 1
        elif self._pending and not self._at_max():
            job = _Job(slot, "candidate", self._pending.pop(0))
        else:
            return False
        self._active[slot.index] = job
        threading.Thread(target=self._job_main, args=(job,), name=f"slot{slot.index}", daemon=True).start()
        return True

    def _job_main(self, job: _Job) -> None:
        with self.cond:
            try:
                if job.kind == "remeasure":
                    self._remeasure(job.slot, job.exp_id)
                else:
                    self._run_candidate(job.slot, job.exp_id)
            except BaseException as e:
                if not self._abandoned and self._error is None:
                    self._error = e
                    self.stop.set(signal.SIGTERM)  # stop the other slots' runs; they resume later
            finally:
                self._active.pop(job.slot.index, None)
                self.cond.notify_all()

    def _interrupted_outcome(self) -> Outcome:
        signum = self.stop.signum or 2
        return Outcome("interrupted", 128 + signum)

    def _program_text(self, commit: str) -> str:
        if not self.config.arena.program:
            return ""
        program = self.config.arena.program
        return self.files_at(commit, (program,)).get(program) or ""

    @contextlib.contextmanager
    def _unlocked(self) -> Iterator[None]:
        """Release the lock for work on a slot's own worktree or process."""
        self.cond.release()
        try:
            yield
        finally:
            self.cond.acquire()

    def _run_unlocked(self, spec: RunSpec, exp_id: int | None) -> RunOutcome:
        """Start a run and wait for it with the lock released, so other slots and the pump
        go on meanwhile."""
        with self._unlocked():
            handle = self.runner.start(spec, self.stop.event)
            if exp_id is not None:
                crash_point("mid_run", exp_id)
            return handle.wait()

    # -- baseline -----------------------------------------------------------------------------
    def _baseline(self, previous: Experiment | None) -> Outcome | None:
        """Run the baseline n0 times (spread over the slots) to calibrate the noise."""
        base = self.campaign.base_commit
        files = {k: v for k, v in self.files_at(base, self.editable).items() if v is not None}
        attempt = 1
        if previous is None:
            self.ledger.add_experiment(
                self.campaign, id=0, description="baseline", proposer="baseline", parent=None,
                proposal={"description": "baseline", "edits": []}, code_hash=code_hash(files),
            )
        else:
            attempt = previous.attempt + 1
        self.ledger.set_running(
            self.campaign, 0, commit=base, parent=None, diff="", code_hash=code_hash(files), attempt=attempt,
            seed=self.config.runner.seed, slot=self.slots[0].label, log_path=str(self._log_path(0, attempt, "run", 0)),
        )
        self._samples = None  # a new attempt: its runs start from nothing
        self.samples(0)  # load now, before this attempt's runs reach the ledger
        crash_point("after_running", 0)
        n0 = self.judge.baseline_runs
        self.report(Event("start", 0, "baseline" + (f" ({n0} runs calibrate the noise)" if n0 > 1 else "")))
        failures: list[_Measured] = []
        last: list[_Measured] = []
        running = 0

        def runs_on(slot: Slot, ks: range) -> None:
            nonlocal running
            with self.cond:
                try:
                    for k in ks:
                        if failures or self.stop.event.is_set():
                            break
                        while True:  # a run the infrastructure failed is done again (bounded by the streak)
                            with self._unlocked():
                                worktree = self.ws.checkout(self.tag, slot.index, base)
                            m = self._execute(slot, 0, attempt, worktree, k, "baseline")
                            if m.status is not Status.INFRA or self._error is not None:
                                break
                        crash_point("after_run", 0)
                        if m.status is Status.KEEP:
                            self.samples(0).append(m.measurement.metric)  # type: ignore[arg-type]
                            last.append(m)
                        else:
                            failures.append(m)
                except BaseException as e:
                    if not self._abandoned and self._error is None:
                        self._error = e
                        self.stop.set(signal.SIGTERM)
                finally:
                    running -= 1
                    self.cond.notify_all()

        width = min(len(self.slots), n0)
        if width == 1:  # no thread needed
            running = 1
            self.cond.release()
            try:
                runs_on(self.slots[0], range(n0))
            finally:
                self.cond.acquire()
        else:
            running = width
            for slot in self.slots[:width]:
                threading.Thread(target=runs_on, args=(slot, range(slot.index, n0, width)),
                                 name=f"slot{slot.index}", daemon=True).start()
            while running:
                self.cond.wait(timeout=0.25)
        if self._error is not None:
            raise self._error
        interrupted = next((f for f in failures if f.status is Status.INTERRUPTED), None)
        if interrupted is not None or (self.stop.event.is_set() and len(self.samples(0)) < n0):
            reason = interrupted.reason if interrupted else "the harness was stopped during the baseline"
            self.ledger.finish_experiment(self.campaign, 0, status=Status.INTERRUPTED, reason=reason)
            self.report(Event("finish", 0, "baseline", Status.INTERRUPTED, detail=reason))
            return self._interrupted_outcome()
        failed = failures[0] if failures else None
        m = failed or last[-1]
        ok = failed is None
        final = Status.KEEP if ok else m.status
        values = self.samples(0)
        mean = fmean(values) if ok else m.measurement.metric
        sigma, _ = pooled_sd([values])
        stats = {"runs": float(len(values)), "mean": mean} if ok else {}
        if ok and sigma is not None:
            stats["se"] = sigma / math.sqrt(len(values))
        reason = "baseline" if n0 == 1 or not ok else f"baseline: {len(values)} runs, noise sd {sigma:.4g}"
        self.ledger.finish_experiment(
            self.campaign, 0, status=final, reason=reason if ok else m.reason,
            metric=mean, metrics=m.measurement.metrics, warnings=m.measurement.warnings, stats=stats,
        )
        crash_point("after_terminal", 0)
        self.export()
        self.report(Event("finish", 0, "baseline", final, mean, detail=reason if ok else m.reason, best=mean))
        self._incumbent = None
        if ok:
            return None
        tail = self.ledger.runs(self.campaign, 0)[-1]["log_tail"]
        for run in self.ledger.runs(self.campaign, 0):
            if run["id"] == m.run_id:
                tail = run["log_tail"]
        raise BaselineError(
            f"the baseline ({final.value}) failed: {m.reason}\n"
            f"--- last lines of {m.log_path} ---\n{tail}\n---\n"
            f"The search never starts without a working baseline. Fix the arena so that `{self.config.arena.run}` "
            f"finishes within the timeout and reports {self.metric_name}, commit, and run again."
        )

    # -- re-measuring the incumbent -------------------------------------------------------------
    def _remeasure_due(self) -> bool:
        every = self.judge.remeasure_every
        if every <= 0:
            return False
        if any(j.kind == "remeasure" for j in self._active.values()):
            return False
        return self._candidates_done // every > self._remeasures

    def _remeasure(self, slot: Slot, exp_id: int | None) -> None:
        """Run the incumbent once more: drift over a night shows up, and its mean firms up."""
        inc = self.ledger.experiment(self.campaign, exp_id) if exp_id is not None else None
        if inc is None or inc.commit is None:
            return
        with self._unlocked():
            worktree = self.ws.checkout(self.tag, slot.index, inc.commit)
        values = self.samples(inc.id)
        before = fmean(values) if values else float("nan")
        m = self._execute(slot, inc.id, inc.attempt, worktree, len(values), "remeasure")
        if m.status is Status.KEEP:
            values = self.samples(inc.id)
            values.append(m.measurement.metric)  # type: ignore[arg-type]
            sigma, _ = pooled_sd([values])
            self.ledger.update_stats(self.campaign, inc.id, mean=fmean(values), runs_n=len(values),
                                     se=sigma / math.sqrt(len(values)) if sigma is not None else None)
            self.report(Event("note", inc.id, inc.description, slot=slot.name,
                              detail=f"re-measured: {m.measurement.metric:.6g} (mean {before:.6g} -> {fmean(values):.6g})"))
        else:
            self.report(Event("note", inc.id, inc.description, slot=slot.name, detail=f"re-measuring failed: {m.reason}"))
        self.export()

    # -- one candidate ------------------------------------------------------------------------
    def _run_candidate(self, slot: Slot, exp_id: int) -> None:
        exp = self.ledger.experiment(self.campaign, exp_id)
        assert exp is not None
        proposal = _proposal_from_json(self.ledger.proposal(self.campaign, exp_id))
        attempt = exp.attempt  # a pending experiment never ran: this is its first attempt
        if exp.status is not Status.PENDING:
            attempt += 1
            self.report(Event("note", exp_id, exp.description, slot=slot.name, detail=f"resuming (attempt {attempt})"))
        self._candidate(slot, exp_id, proposal, attempt=attempt, proposed_on=exp.parent)

    def _build(self, slot: Slot, exp_id: int, proposal: Proposal, parent: str) -> _Built:
        """Apply the proposal to ``parent``'s files, check it, and commit it in the slot's
        worktree. Raises _Refused when it cannot be run."""
        old = self.files_at(parent, self.editable)
        try:
            new = apply_edits(old, proposal.edits, list(self.editable))
        except EditError as e:
            raise _Refused(str(e), parent=parent) from None
        diff = unified_diff(old, new)
        full = {**{k: v for k, v in old.items() if v is not None}, **new}
        chash = code_hash(full)
        if not diff:
            raise _Refused("the edits change nothing", parent=parent, code_hash=chash)
        twin = self.ledger.code_hashes(self.campaign).get(chash, self._claimed.get(chash))
        if twin is not None and twin != exp_id:
            raise _Refused(f"duplicate: the same code was already tried as experiment {twin}", diff=diff, parent=parent)
        for path, text in new.items():
            problem = python_syntax_problem(path, text)
            if problem:
                raise _Refused(problem, diff=diff, code_hash=chash, parent=parent)
        touched = protected_changes(old, new, self.config.arena.protected)
        if touched:
            raise _Refused(f"changes protected constant(s) {', '.join(touched)}: the harness owns them "
                           "([arena] protected)", diff=diff, code_hash=chash, parent=parent)
        self._claimed[chash] = exp_id  # until the ledger knows it (set_running)
        try:
            with self._unlocked():  # the slot's own worktree: no other thread touches it
                worktree = self.ws.checkout(self.tag, slot.index, parent)
                try:
                    self.ws.write_files(worktree, new)
                except EditError as e:
                    raise _Refused(str(e), diff=diff, code_hash=chash, parent=parent) from None
                changed = self._readonly_changes(worktree)
                if changed:
                    raise _Refused(f"readonly file(s) changed: {', '.join(changed)}", diff=diff, code_hash=chash,
                                   parent=parent)
                crash_point("mid_commit", exp_id, leave=lambda: self.ws.worktree_gitdir(worktree) / "index.lock")
                commit = self.ws.commit(worktree, sorted(new), f"autoresearch {self.tag} #{exp_id}: {proposal.description}",
                                        new_paths=sorted(p for p in new if old.get(p) is None))
        except _Refused:
            self._claimed.pop(chash, None)
            raise
        crash_point("after_commit", exp_id)
        return _Built(commit, parent, worktree, diff, chash, dict(old, **new))

    def _candidate(self, slot: Slot, exp_id: int, proposal: Proposal, attempt: int, proposed_on: str | None = None) -> Status:
        """Build, run and judge one candidate; advance the branch on keep.

        Stale candidates (the incumbent moved since they were proposed or started):
        - proposed against an older incumbent: the edits are applied to the incumbent as it
          is now (a warning in the ledger says so); if they no longer apply -> ``invalid``.
        - the incumbent moved while it ran: it is judged against the parent it ran on. If it
          loses, ``discard``. If it wins, it is rebuilt on the new incumbent and measured
          again from its first run, as the next attempt (the ledger's warnings and runs show
          both); if its edits do not apply there, ``discard`` ("dropped").
        """
        desc = proposal.description
        tip, tip_exp = self._incumbent_ref()
        warnings: list[str] = []
        try:
            if proposal.meta.get("invalid"):  # the proposer could not produce a usable change
                raise _Refused(str(proposal.meta["invalid"]), parent=tip)
            built = self._build(slot, exp_id, proposal, tip)
        except _Refused as r:
            reason = r.reason
            if proposed_on is not None and proposed_on != tip and not proposal.meta.get("invalid"):
                reason = f"stale: proposed for {proposed_on[:7]}; on the incumbent {tip[:7]}: {r.reason}"
            self.ledger.finish_experiment(self.campaign, exp_id, status=Status.INVALID, reason=reason, **r.extra)
            self.report(Event("finish", exp_id, desc, Status.INVALID, detail=reason, slot=slot.name,
                              tokens=proposal.tokens, cost=proposal.cost))
            self._observe(exp_id)
            self._count(exp_id, Status.INVALID)
            self.export()
            return Status.INVALID
        if proposed_on is not None and proposed_on != tip:
            warnings.append(f"rebased: proposed for {proposed_on[:7]}, applied to the incumbent {tip[:7]}")
        parent_exp = tip_exp
        for rebases in range(4):
            status, reason, decision, m = self._measure(slot, exp_id, desc, built, attempt, parent_exp, warnings)
            now_tip, now_exp = self._incumbent_ref()
            if status is not Status.KEEP or built.parent == now_tip:
                break
            # It beat the parent it ran on, but another experiment was kept meanwhile.
            if rebases == 3:
                status, reason = Status.DISCARD, f"dropped: {reason}; but the incumbent moved again ({rebases} rebases)"
                break
            try:
                built = self._build(slot, exp_id, proposal, now_tip)
            except _Refused as r:
                status, reason = Status.DISCARD, (
                    f"dropped: beat its parent #{parent_exp} ({reason}), but on the new incumbent #{now_exp}: {r.reason}")
                break
            note = f"rebased onto #{now_exp} ({now_tip[:7]}) after beating its parent #{parent_exp}; measuring again"
            warnings.append(note)
            self.report(Event("note", exp_id, desc, detail=note, slot=slot.name))
            attempt += 1
            parent_exp = now_exp
        if status is Status.INFRA:  # not the candidate's fault: back in the queue, as its next attempt
            self.ledger.requeue(self.campaign, exp_id, attempt=attempt + 1, reason=reason)
            self._claimed.pop(built.code_hash, None)
            self._pending.append(exp_id)
            self.report(Event("note", exp_id, desc, detail=f"back in the queue: {reason}", slot=slot.name))
            return status
        values = self.samples(exp_id)
        metric = fmean(values) if values and status in (Status.KEEP, Status.DISCARD) else m.measurement.metric
        stats = dict(decision.stats) if decision is not None else {}
        if values:
            stats["runs"], stats["mean"] = float(len(values)), fmean(values)
        self.ledger.finish_experiment(
            self.campaign, exp_id, status=status, reason=reason, metric=metric,
            metrics=m.measurement.metrics, warnings=[*m.measurement.warnings, *warnings], stats=stats,
        )
        crash_point("after_terminal", exp_id)
        commit = built.commit
        if status is Status.KEEP:
            crash_point("mid_advance", exp_id, leave=lambda: self.ws.ref_lock_path(self.branch_ref))
            self.ws.update_ref(self.branch_ref, commit, built.parent, message=f"autoresearch: keep #{exp_id}: {desc}")
            self._incumbent = (commit, exp_id)
            self._files[(commit, self.editable)] = built.files  # the new incumbent's files, known already
        elif status is not Status.INTERRUPTED:
            archive = f"refs/autoresearch/{self.tag}/discarded/{exp_id}"
            crash_point("mid_advance", exp_id, leave=lambda: self.ws.ref_lock_path(archive))
            with self._unlocked():  # this experiment's own ref
                self.ws.update_ref(archive, commit, message=f"autoresearch: {status.value} #{exp_id}: {desc}")
        crash_point("after_advance", exp_id)
        best = self.incumbent()[1]
        self.report(Event("finish", exp_id, desc, status, metric, detail=reason, best=best, slot=slot.name,
                          tokens=proposal.tokens, cost=proposal.cost))
        if status is not Status.INTERRUPTED:
            self._observe(exp_id)
            self._count(exp_id, status)
            self.export()
        return status

    def _measure(self, slot: Slot, exp_id: int, desc: str, built: _Built, attempt: int,
                 parent_exp: int | None, warnings: list[str]) -> tuple[Status, str, Decision | None, _Measured]:
        """Mark the candidate running, then run it until the judge decides against its parent."""
        self.ledger.set_running(
            self.campaign, exp_id, commit=built.commit, parent=built.parent, diff=built.diff, code_hash=built.code_hash,
            attempt=attempt, seed=self.config.runner.seed, slot=slot.label,
            log_path=str(self._log_path(exp_id, attempt, "run", 0)),
        )
        crash_point("after_running", exp_id)
        self.report(Event("start", exp_id, desc, slot=slot.name))
        self.samples(exp_id).clear()  # this attempt's runs only
        decision: Decision | None = None
        worktree, k = built.worktree, 0
        while True:
            if k > 0:
                with self._unlocked():
                    worktree = self.ws.checkout(self.tag, slot.index, built.commit)  # a clean tree for every run
            m = self._execute(slot, exp_id, attempt, worktree, k, "screen" if k == 0 else "confirm")
            crash_point("after_run", exp_id)
            if m.status is not Status.KEEP:  # crash, timeout, invalid, interrupted: data, not a verdict
                return m.status, m.reason, decision, m
            self.samples(exp_id).append(m.measurement.metric)  # type: ignore[arg-type]
            parent_runs = list(self.samples(parent_exp)) if parent_exp is not None else []
            if not parent_runs:
                return Status.DISCARD, "the incumbent has no metric to compare with", decision, m
            decision = self.judge.decide(self.samples(exp_id), parent_runs, self.goal, self.noise())
            if decision.verdict is Verdict.KEEP and len(self.samples(exp_id)) < SUSPICIOUS_RUNS:
                cand, inc = fmean(self.samples(exp_id)), fmean(parent_runs)
                gain = inc - cand if self.goal is Goal.MINIMIZE else cand - inc
                sigma = self.noise()[0]
                if suspicious(gain, sigma, self.config.judge.suspicious_sigma):
                    note = (f"suspicious: an improvement of {gain / sigma:.0f} sd of the noise; confirming with "
                            f"{SUSPICIOUS_RUNS} runs before it can be kept")
                    if note not in warnings:
                        warnings.append(note)
                    self.report(Event("note", exp_id, desc, detail=note, slot=slot.name))
                    decision = Decision(Verdict.MORE_RUNS, note, decision.stats)
            if decision.verdict is Verdict.MORE_RUNS and not self.stop.event.is_set():
                self.report(Event("note", exp_id, desc, detail=decision.reason, slot=slot.name))
                k += 1
                continue
            status = Status.KEEP if decision.verdict is Verdict.KEEP else Status.DISCARD
            return status, decision.reason, decision, m

    def _count(self, exp_id: int, status: Status) -> None:
        if status.counted:
            self._done += 1
            if exp_id > 0:
                self._candidates_done += 1

    def _observe(self, exp_id: int) -> None:
        exp = self.ledger.experiment(self.campaign, exp_id)
        if exp is not None:
            self._pump.inbox.append(exp)

    def _readonly_changes(self, worktree: Path, skip: Sequence[str] = ()) -> list[str]:
        """Readonly files whose content differs from the campaign's base (``skip``: the
        eval_only files this harness removed from a run's worktree itself)."""
        now = hash_files(worktree, self.readonly)
        return [p for p, h in self.readonly.items() if now.get(p) != h and p not in skip]

    # -- running and measuring ------------------------------------------------------------------
    def _log_path(self, exp_id: int, attempt: int, phase: str, k: int) -> Path:
        run = f"-r{k}" if k else ""
        return self.run_dir / "logs" / f"{exp_id:04d}-a{attempt}{run}-{phase}.log"

    def _seed(self, k: int) -> int:
        """Run k of an experiment gets seed + k: every experiment sees the same seed sequence."""
        return self.config.runner.seed + k

    def _spec(self, slot: Slot, exp_id: int, attempt: int, worktree: Path, phase: str, command: str,
              timeout: float, k: int) -> RunSpec:
        run = f"-r{k}" if k else ""
        return build_run_spec(
            self.config, self.ws, slot=slot, worktree=worktree,
            worktree_top=self.ws.worktree_path(self.tag, slot.index if phase == "run" else f"eval-{slot.index}"),  # type: ignore[arg-type]
            phase=phase, command=command, timeout=timeout, seed=self._seed(k), exp_id=exp_id, attempt=attempt,
            result_file=self.run_dir / "results" / f"{exp_id:04d}-a{attempt}{run}-{phase}.json",
            log_path=self._log_path(exp_id, attempt, phase, k), base_env=self.base_env,
        )

    def _execute(self, slot: Slot, exp_id: int, attempt: int, worktree: Path, k: int, purpose: str) -> _Measured:
        """Run k of an experiment (and its eval). Status KEEP here means "produced a valid metric"."""
        cfg = self.config.arena
        with self._unlocked():  # the slot's own worktree
            hidden = self.ws.hide_files(worktree, cfg.eval_only)  # validation data: the eval's only
        spec = self._spec(slot, exp_id, attempt, worktree, "run", cfg.run, cfg.hard_timeout_s, k)
        run_id = self.ledger.start_run(
            self.campaign, exp_id, attempt=attempt, purpose=purpose,
            seed=self._seed(k), slot=slot.label, log_path=str(spec.log_path), run_token=spec.token,
        )
        out = self._run_unlocked(spec, exp_id)
        eval_out: RunOutcome | None = None
        removed: list[str] = []
        changed: list[str] = []
        if cfg.eval and not (out.timed_out or out.interrupted or out.infra) and out.exit_code == 0:
            # a readonly file the run wrote is caught before the eval: a tampered evaluator
            # could otherwise print a fake score and then restore itself
            changed = self._readonly_changes(worktree, skip=hidden)
            if not changed:
                # the eval runs in a clean worktree of the commit (the evaluator as committed),
                # with the run's outputs moved in, minus code that could shadow its imports
                with self._unlocked():
                    eval_dir, _, removed = self.ws.prepare_eval(self.tag, slot.index, worktree)
                espec = self._spec(slot, exp_id, attempt, eval_dir, "eval", cfg.eval, cfg.hard_eval_timeout_s, k)
                eval_out = self._run_unlocked(espec, None)
                worktree = eval_dir
        took = out.duration_s + (eval_out.duration_s if eval_out else 0.0)
        if not out.interrupted:
            self._run_s = took if self._run_s is None else 0.7 * self._run_s + 0.3 * took

        measurement = measure(
            self.metric_name,
            run_output=_read_log(out.log_path),
            run_json=out.result_json,
            eval_output=_read_log(eval_out.log_path) if eval_out else None,
            eval_json=eval_out.result_json if eval_out else None,
            eval_configured=bool(cfg.eval),
        )
        status, reason = Status.KEEP, ""
        infra = out.infra or (eval_out.infra if eval_out is not None else "")
        if out.interrupted or (eval_out is not None and eval_out.interrupted):
            status, reason = Status.INTERRUPTED, "the harness was stopped during the run"
        elif infra:
            status, reason = Status.INFRA, f"infrastructure failure, not the candidate's: {infra}"
        elif out.limit == "disk":
            status, reason = Status.CRASH, (f"killed: its worktree grew past the disk limit of "
                                            f"{self.resource_limits.disk_mb:g} MB ([runner.limits] disk_mb)")
        elif out.limit == "memory" and out.exit_code != 0:
            status, reason = Status.CRASH, (f"killed by the memory limit of {self.resource_limits.memory_mb:g} MB "
                                            "([runner.limits] memory_mb)")
        elif out.timed_out:
            status, reason = Status.TIMEOUT, f"killed at the {cfg.hard_timeout_s:g} s timeout"
        elif out.exit_code != 0:
            status, reason = Status.CRASH, _first_line_reason(out, "the run")
        elif eval_out is not None and eval_out.timed_out:
            status, reason = Status.TIMEOUT, f"the eval was killed at the {cfg.hard_eval_timeout_s:g} s timeout"
        elif eval_out is not None and (why := _eval_invalid(eval_out)) is not None:
            status, reason = Status.INVALID, f"the evaluator refused the model: {why}"
        elif eval_out is not None and eval_out.exit_code != 0:
            status, reason = Status.CRASH, _first_line_reason(eval_out, "the eval")
        elif measurement.metric is None:
            status, reason = Status.CRASH, measurement.problem
        elif (bad := out_of_range(measurement.metric, self.config.metric.min, self.config.metric.max)) is not None:
            status, reason = Status.CRASH, f"{self.metric_name} out of its declared range: {bad}"
        if status not in (Status.INTERRUPTED, Status.INFRA):
            changed = changed or self._readonly_changes(worktree, skip=hidden if eval_out is None else ())
            if changed:
                status, reason = Status.INVALID, f"readonly file(s) changed during the run: {', '.join(changed)}"
        tail = out.log_tail if eval_out is None else f"{out.log_tail}\n--- eval ---\n{eval_out.log_tail}"
        self.ledger.finish_run(
            run_id, status="ok" if status is Status.KEEP else status.value, exit_code=out.exit_code,
            eval_exit_code=eval_out.exit_code if eval_out else None, metric=measurement.metric,
            metrics=measurement.metrics, problem=reason, log_tail=tail,
            warnings=[*measurement.warnings, *([f"removed before the eval: {', '.join(removed[:20])}"] if removed else [])],
            duration_s=took,
        )
        if status is Status.INFRA:
            self._infra_streak += 1
            self.report(Event("note", exp_id, slot=slot.name, detail=f"run {k} of #{exp_id}: {reason}"))
            if self._infra_streak >= MAX_INFRA_STREAK and self._error is None:
                # the campaign stops once this experiment is back in the queue (the others are interrupted)
                self._error = InfraError(
                    f"{self._infra_streak} runs in a row failed for reasons outside the candidates (last: {infra}). "
                    "Check the cluster (`ray status`); the experiments wait in the ledger and run when you start "
                    "the campaign again.")
                self.stop.set(signal.SIGTERM)
        elif status is not Status.INTERRUPTED:
            self._infra_streak = 0
        return _Measured(status, measurement, reason, run_id, str(spec.log_path))


def resource_limits(config: Config) -> ResourceLimits:
    lim = config.runner.limits
    run_as = resolve_user(config.runner.run_as) if config.runner.run_as is not None else None
    return ResourceLimits(lim.memory_mb, lim.file_size_mb, lim.nproc, lim.nofile, lim.disk_mb,
                          cgroups=lim.cgroups, run_as=run_as)


def resolve_user(name: str) -> tuple[int, int]:
    """``[runner] run_as``: (uid, gid) of a user name or a numeric uid."""
    import pwd

    if os.geteuid() != 0:
        raise ConfigError(f"[runner] run_as = {name!r} needs the harness to run as root (only root can switch "
                          "users); as a normal user the runs are unprivileged already: remove run_as")
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise ConfigError(f"[runner] run_as: no user {name!r} on this machine (try \"nobody\")") from None
    if entry.pw_uid == 0:
        raise ConfigError("[runner] run_as names root: choose an unprivileged user, e.g. \"nobody\"")
    from .workspace import trust_other_owners

    trust_other_owners()
    return entry.pw_uid, entry.pw_gid


def grant(path: Path, uid: int, gid: int) -> None:
    """Give a run's directory to the user it runs as (``run_as``), and check that the user
    can reach it at all."""
    for parent in path.resolve().parents:
        st = parent.stat()
        if not st.st_mode & 0o001 and st.st_uid != uid and not (st.st_gid == gid and st.st_mode & 0o010):
            raise ConfigError(f"[runner] run_as: uid {uid} cannot reach {path}: {parent} is not searchable by "
                              f"others (chmod o+x {parent}, or keep the arena somewhere every user can reach)")
    os.lchown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def build_run_spec(config: Config, ws: Any, *, slot: Slot, worktree_top: Path, worktree: Path, phase: str, command: str,
                   timeout: float, seed: int, exp_id: int, attempt: int, result_file: Path, log_path: Path,
                   base_env: Mapping[str, str]) -> RunSpec:
    """One run's spec: the harness's environment (allowlist + AUTORESEARCH_* + the slot's),
    the sandbox when configured, the log cap and the resource limits. Every run the harness
    starts (campaign runs and ablation runs) is built here."""
    result_file.parent.mkdir(parents=True, exist_ok=True)
    limits = resource_limits(config)
    if limits.run_as is not None and config.runner.kind != "ray":
        grant(worktree_top, *limits.run_as)
        grant(result_file.parent, *limits.run_as)
    budget = config.arena.time_budget_s
    extra = {
        **slot.env,
        "AUTORESEARCH_SLOT": str(slot.index),
        "AUTORESEARCH_SEED": str(seed),
        "AUTORESEARCH_TIME_BUDGET": str(int(budget)) if float(budget).is_integer() else str(budget),
        "AUTORESEARCH_EXPERIMENT_ID": str(exp_id),
        "AUTORESEARCH_ATTEMPT": str(attempt),
        "AUTORESEARCH_PHASE": phase,
        "AUTORESEARCH_ARENA_DIR": str(ws.arena),
        "PYTHONUNBUFFERED": "1",
    }
    allow = (*DEFAULT_ENV_ALLOW, *config.runner.env_allow)
    env = child_env(base_env, allow, extra)
    remote = RemoteParts(
        command=command, root=worktree_top, rel=worktree.relative_to(worktree_top).as_posix(), phase=phase,
        slot=slot.index, env_allow=allow, extra_env={k: v for k, v in extra.items() if k.startswith("AUTORESEARCH_") or k == "PYTHONUNBUFFERED"},
        sandbox_paths=tuple(config.runner.sandbox_paths) if config.runner.sandbox == "bwrap" else None,
        hidden=tuple(config.arena.eval_only) if phase == "run" else (),
    )
    if config.runner.sandbox == "bwrap" and config.runner.kind != "ray":  # a Ray node wraps it there
        from .integrity import eval_only_files
        from .runners.sandbox import bwrap_command, require_bwrap

        masked: list[Path] = []
        if phase == "run" and config.arena.eval_only:
            # the validation data in the user's checkout, and git's objects (which hold it too)
            masked = [ws.arena / rel for rel in eval_only_files(ws.arena, config.arena.eval_only)]
            masked.append(ws.root / ".git")
        command = bwrap_command(command, bwrap=require_bwrap(), worktree=worktree_top, cwd=worktree,
                                writable=[result_file.parent], arena=ws.arena, state_dir=ws.state_dir,
                                home=env.get("HOME"), path_env=env.get("PATH", ""),
                                extra_ro=config.runner.sandbox_paths, masked=masked)
    return RunSpec(
        command=command, cwd=worktree, env=env, timeout_s=timeout, log_path=log_path, token=new_run_token(),
        result_file=result_file, log_cap_bytes=int(config.runner.log_cap_mb * (1 << 20)),
        kill_grace_s=config.runner.kill_grace_s, limits=limits, remote=remote,
    )


def _eval_invalid(out: RunOutcome) -> str | None:
    """An evaluator (a trusted channel) may refuse a model: ``{"invalid": "why"}`` in its
    result JSON (e.g. the tiny-GPT evaluator's causality probe)."""
    if not out.result_json:
        return None
    try:
        data = json.loads(out.result_json)
    except ValueError:
        return None
    why = data.get("invalid") if isinstance(data, dict) else None
    return str(why)[:500] if why else None


def _read_log(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _proposal_to_json(p: Proposal) -> dict[str, Any]:
    return {
        "description": p.description,
        "edits": [asdict(e) for e in p.edits],
        "proposer": p.proposer,
        "meta": dict(p.meta),
    }


def _proposal_from_json(d: Mapping[str, Any]) -> Proposal:
    return Proposal(
        description=d.get("description", ""),
        edits=tuple(FileEdit(**e) for e in d.get("edits", [])),
        proposer=d.get("proposer", ""),
        meta=d.get("meta", {}),
    )
