"""One pending experiment, from its ledger row to its recorded outcome.

``run_experiment`` is the whole story, top to bottom:

1. **build**: apply the proposal to the incumbent as it is now, check it (``candidate``),
   commit it, and give the slot a directory holding that commit. A refused proposal is
   recorded ``invalid`` and that is the end of it.
2. **measure until the judge decides**: run it, measure it, ask the judge; more runs when
   the judge wants them. A winner whose parent is no longer the incumbent (another slot
   kept something meanwhile) is rebuilt on the new incumbent and measured again.
3. **record**: the terminal status with its metric and reason, then the branch advances
   (keep) or the commit is archived (anything else) — both by the journal.

A run the infrastructure failed is not the candidate's fault: the experiment goes back to
the queue as its next attempt. Called with the engine's lock held.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from ..errors import EditError
from ..events import Event, EventKind
from ..integrity import suspicious
from ..judge import Decision, Verdict
from ..proposers.knob_rebase import is_knobs_proposal
from ..records import Goal, Proposal, Purpose, RunStatus, Status
from ..slots import Slot
from ..store.workspace import commit_present
from .calibration import judged
from .candidate import Candidate, Refused, check_candidate
from .context import Engine
from .execution import RunResult

MAX_REBASES = 3
SUSPICIOUS_RUNS = 3  # runs an implausibly large improvement needs before it can be kept


@dataclass(frozen=True)
class Built:
    """A candidate committed on ``parent``, its commit checked out in the slot's directory."""

    commit: str
    parent: str
    workdir: Path
    candidate: Candidate
    proposal: Proposal  # what runs (a knobs proposal is written again for a new incumbent)


@dataclass(frozen=True)
class Decided:
    status: Status
    reason: str
    built: Built
    attempt: int
    last: RunResult
    decision: Decision | None = None
    requeue: bool = False  # the infrastructure failed the run: back in the queue
    warnings: list[str] = field(default_factory=list)  # the experiment's own notes (rebased, suspicious)

    def but(self, status: Status, reason: str) -> "Decided":
        return dataclasses.replace(self, status=status, reason=reason)


def run_experiment(ctx: Engine, slot: Slot, exp_id: int) -> bool:
    """Take a pending experiment to its outcome; False when it went back to the queue."""
    exp = ctx.journal.experiment(exp_id)
    assert exp is not None
    proposal = Proposal.from_json(ctx.state.ledger.proposal(ctx.campaign, exp_id), tokens=exp.tokens, cost=exp.cost)
    attempt = exp.attempt  # a pending experiment never ran: this is its first attempt
    if exp.status is not Status.PENDING:
        attempt += 1
        ctx.note(f"resuming (attempt {attempt})", exp_id, exp.description, slot.label)
    tip, tip_exp = ctx.state.incumbent_ref()
    try:
        if exp.parent is not None and exp.parent != tip:
            proposal = rebased(ctx, exp_id, proposal, tip)
        built = build(ctx, slot, exp_id, proposal, tip)
    except Refused as r:
        refuse(ctx, slot, exp_id, proposal, r, proposed_on=exp.parent, tip=tip)
        return True
    warnings = [f"rebased: proposed for {exp.parent[:7]}, applied to the incumbent {tip[:7]}"] \
        if exp.parent is not None and exp.parent != tip else []
    decided = judge_on_the_incumbent(ctx, slot, exp_id, proposal, built, attempt, tip_exp, warnings)
    if decided.requeue:
        ctx.journal.requeued(exp_id, attempt=decided.attempt + 1, reason=decided.reason)
        ctx.state.claimed.pop(decided.built.candidate.code_hash, None)
        ctx.note(f"back in the queue: {decided.reason}", exp_id, proposal.description, slot.label)
        return False
    record(ctx, slot, exp_id, decided.built.proposal, decided)
    return True


# -- 1. build -----------------------------------------------------------------------------------

def build(ctx: Engine, slot: Slot, exp_id: int, proposal: Proposal, parent: str) -> Built:
    """Check the proposal on ``parent``'s files and commit it; raises ``Refused``."""
    if proposal.meta.get("invalid"):  # the proposer could not produce a usable change
        raise Refused("proposer", str(proposal.meta["invalid"]))
    old = ctx.state.files_at(parent, ctx.rules.editable)
    rules = dataclasses.replace(ctx.rules, tried=ctx.state.tried())
    candidate = check_candidate(old, proposal.edits, rules, exp_id=exp_id)
    ctx.state.claimed[candidate.code_hash] = exp_id  # until the ledger knows it (running)
    try:
        commit = ctx.journal.commit(exp_id, parent, candidate.changed, proposal.description)
    except EditError as e:
        ctx.state.claimed.pop(candidate.code_hash, None)
        raise Refused("apply", str(e), diff=candidate.diff, code_hash=candidate.code_hash) from None
    with ctx.unlocked():  # the slot's own directory
        workdir = ctx.execution.checkout(slot, commit)
    return Built(commit, parent, workdir, candidate, proposal)


def rebased(ctx: Engine, exp_id: int, proposal: Proposal, tip: str) -> Proposal:
    """A knobs proposal written again on ``tip``'s code (its values, not its old text);
    other proposals as they are. Raises ``Refused`` when its knobs cannot move there."""
    if ctx.rebase is None or not is_knobs_proposal(proposal):
        return proposal
    files = {k: v for k, v in ctx.state.files_at(tip, ctx.rules.editable).items() if v is not None}
    now, metric = ctx.state.incumbent()
    metric = metric if now == tip else None
    moved = ctx.rebase(proposal, files, metric)
    if isinstance(moved, str):
        raise Refused("apply", moved)
    return moved  # the ledger gets it with the run (journal.running)


def refuse(ctx: Engine, slot: Slot, exp_id: int, proposal: Proposal, r: Refused, *, proposed_on: str | None,
           tip: str) -> None:
    reason = r.reason
    if proposed_on is not None and proposed_on != tip and r.kind != "proposer":
        reason = f"stale: proposed for {proposed_on[:7]}; on the incumbent {tip[:7]}: {r.reason}"
    ctx.journal.refused(exp_id, reason, parent=tip, diff=r.extra.get("diff"), code_hash=r.extra.get("code_hash"))
    ctx.report(Event(EventKind.FINISH, exp_id, proposal.description, Status.INVALID, detail=reason, slot=slot.label,
                     tokens=proposal.tokens, cost=proposal.cost))
    ctx.state.counters.finished(exp_id, Status.INVALID)


# -- 2. measure until the judge decides ---------------------------------------------------------

def judge_on_the_incumbent(ctx: Engine, slot: Slot, exp_id: int, proposal: Proposal, built: Built, attempt: int,
                           parent_exp: int | None, warnings: list[str]) -> Decided:
    """Measure and judge against the parent it ran on. A winner that the incumbent
    overtook meanwhile is rebuilt on the new incumbent and measured again as its next
    attempt (the ledger's warnings and runs show both), or dropped when its edits no longer
    apply there; so a keep always advances the branch from its own parent."""
    for rebases in range(MAX_REBASES + 1):
        decided = measure_until_decided(ctx, slot, exp_id, proposal.description, built, attempt, parent_exp, warnings,
                                        screen=rebases == 0)  # a winner measured again is not stopped early
        now_tip, now_exp = ctx.state.incumbent_ref()
        if decided.status is not Status.KEEP or built.parent == now_tip:
            return decided
        if rebases == MAX_REBASES:
            return decided.but(Status.DISCARD, f"dropped: {decided.reason}; but the incumbent moved again "
                                               f"({rebases} rebases)")
        try:
            proposal = rebased(ctx, exp_id, proposal, now_tip)
            built = build(ctx, slot, exp_id, proposal, now_tip)
        except Refused as r:
            return decided.but(Status.DISCARD, f"dropped: beat its parent #{parent_exp} ({decided.reason}), but on "
                                               f"the new incumbent #{now_exp}: {r.reason}")
        note = f"rebased onto #{now_exp} ({now_tip[:7]}) after beating its parent #{parent_exp}; measuring again"
        warnings.append(note)
        ctx.note(note, exp_id, proposal.description, slot.label)
        attempt += 1
        parent_exp = now_exp
    raise AssertionError("unreachable")


def measure_until_decided(ctx: Engine, slot: Slot, exp_id: int, desc: str, built: Built, attempt: int,
                          parent_exp: int | None, warnings: list[str], screen: bool = True) -> Decided:
    """Mark the candidate running, then run it until the judge decides against its parent.
    ``screen``: its first run may be stopped early (not when it beat its parent already)."""
    ctx.journal.running(exp_id, commit=built.commit, parent=built.parent, diff=built.candidate.diff,
                        code_hash=built.candidate.code_hash, attempt=attempt, slot=slot.label, seed=ctx.execution.settings.seed,
                        log_path=str(ctx.execution.log_path(run_stem(exp_id, attempt, 0))),
                        proposal=built.proposal if built.proposal.meta.get("knobs", {}).get("rebased") else None)
    ctx.report(Event(EventKind.START, exp_id, built.proposal.description, slot=slot.label))
    values = ctx.state.samples(exp_id)
    values.clear()  # this attempt's runs only
    decision: Decision | None = None
    workdir, k = built.workdir, 0
    while True:
        if k > 0:
            with ctx.unlocked():
                workdir = ctx.execution.checkout(slot, built.commit)  # a clean directory for every run
        r = ctx.measure(slot, exp_id=exp_id, attempt=attempt, k=k, purpose=Purpose.SCREEN if k == 0 and screen else Purpose.CONFIRM,
                        workdir=workdir, commit=built.commit)
        done = Decided(Status.DISCARD, r.reason, built, attempt, r, decision, warnings=warnings)
        if r.status is RunStatus.INFRA:
            return dataclasses.replace(done, requeue=True)
        if r.status is RunStatus.STOPPED:  # clearly worse than the incumbent part-way (engine/early_stop.py)
            return done.but(Status.DISCARD, r.reason)
        if r.status is not RunStatus.OK:  # crash, timeout, invalid, interrupted: data, not a verdict
            return done.but(Status(r.status.value), r.reason)
        values.append(r.measurement.metric)  # type: ignore[arg-type]
        parent_runs = list(ctx.state.samples(parent_exp)) if parent_exp is not None else []
        if not parent_runs:
            return done.but(Status.DISCARD, "the incumbent has no metric to compare with")
        verdict = judged(ctx, slot, exp_id, desc, values, parent_exp)  # type: ignore[arg-type]
        if verdict is None:  # stopped while it waited for the baseline's calibration: run again on resume
            return done.but(Status.INTERRUPTED, "the harness stopped while it waited for the baseline's calibration")
        decision = second_look(ctx, verdict[0], values, verdict[1], warnings)
        if decision.verdict is Verdict.MORE_RUNS and ctx.stop.is_set():  # not a verdict: judged again on resume
            return done.but(Status.INTERRUPTED, f"the harness stopped before the run the judge asked for ({decision.reason})")
        if decision.verdict is Verdict.MORE_RUNS:
            ctx.note(decision.reason, exp_id, desc, slot.label)
            k += 1
            continue
        status = Status.KEEP if decision.verdict is Verdict.KEEP else Status.DISCARD
        return dataclasses.replace(done, status=status, reason=decision.reason, decision=decision)


def second_look(ctx: Engine, decision: Decision, values: list[float], parent_runs: list[float],
                warnings: list[str]) -> Decision:
    """An implausibly large improvement is confirmed with more runs before it can be kept."""
    if decision.verdict is not Verdict.KEEP or len(values) >= SUSPICIOUS_RUNS:
        return decision
    cand, inc = fmean(values), fmean(parent_runs)
    gain = inc - cand if ctx.goal is Goal.MINIMIZE else cand - inc
    sigma = ctx.state.noise()[0]
    if not suspicious(gain, sigma, ctx.suspicious_sigma):
        return decision
    note = (f"suspicious: an improvement of {gain / sigma:.0f} sd of the noise; confirming with "  # type: ignore[operator]
            f"{SUSPICIOUS_RUNS} runs before it can be kept")
    if note not in warnings:
        warnings.append(note)
    return Decision(Verdict.MORE_RUNS, note, decision.stats)


def run_stem(exp_id: int, attempt: int, k: int) -> str:
    """How a run's log and result files are named: ``0007-a1-r2``."""
    return f"{exp_id:04d}-a{attempt}" + (f"-r{k}" if k else "")


# -- 3. record ----------------------------------------------------------------------------------

def record(ctx: Engine, slot: Slot, exp_id: int, proposal: Proposal, d: Decided) -> None:
    if d.status is Status.KEEP and not commit_present(ctx.journal.ws, d.built.commit):
        d = d.but(Status.INVALID, f"tampering: its commit {d.built.commit[:7]} was deleted from the repository "
                                  "while it was measured (a run pruned git's objects?)")
    values = ctx.state.samples(exp_id)
    judged = d.status in (Status.KEEP, Status.DISCARD)
    metric = fmean(values) if values and judged else d.last.measurement.metric
    stats = dict(d.decision.stats) if d.decision is not None else {}
    if values:
        stats["runs"], stats["mean"] = float(len(values)), fmean(values)
    m = d.last.measurement
    ctx.journal.finished(exp_id, d.status, d.reason, metric=metric, metrics=m.metrics,
                         warnings=[*m.warnings, *d.warnings], stats=stats)
    ctx.journal.settle(exp_id, d.status, d.built.commit, d.built.parent, proposal.description)
    if d.status is Status.KEEP:
        ctx.state.advanced(d.built.commit, exp_id, d.built.candidate.files)
    ctx.report(Event(EventKind.FINISH, exp_id, proposal.description, d.status, metric, detail=d.reason,
                     best=ctx.state.incumbent()[1], slot=slot.label, tokens=proposal.tokens, cost=proposal.cost))
    if d.status is not Status.INTERRUPTED:
        ctx.state.counters.finished(exp_id, d.status)
