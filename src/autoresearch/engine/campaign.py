"""A campaign from start to its outcome: the engine's parts built from an open campaign,
the baseline, then the scheduler until a limit, a stop or exhaustion."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Mapping, Sequence

from ..config import Config
from ..events import Limits, Outcome, Reporter, StopSignal, no_report
from ..judge import Judge
from ..protocols import ProposalContext, Proposer, Runner
from ..records import Goal, Proposal, Purpose, Status
from ..runs.spec import RunSettings, run_settings
from ..slots import Slot, cpu_count, parse_slots
from ..train_script import usage_paths
from .baseline import calibrate
from .budget import noted_before, unseen_budget_note
from .calibration import settle
from .candidate import Rules
from .context import Engine, Rebase
from .early_stop import attach as attach_early_stop
from .execution import Execution, Judged
from .guard import Guard
from .journal import Journal
from .opening import OpenCampaign
from .scheduler import Scheduler
from .state import CampaignState


class CampaignEngine:
    """Runs one open campaign: ``CampaignEngine(oc, config, ...).run() -> Outcome``."""

    def __init__(self, oc: OpenCampaign, config: Config, *, proposer: Proposer, runner: Runner, judge: Judge,
                 limits: Limits = Limits(), stop: StopSignal | None = None, report: Reporter | None = None,
                 base_env: Mapping[str, str] | None = None, slots: Sequence[Slot] | None = None,
                 settings: RunSettings | None = None):
        campaign, ws = oc.campaign, oc.workspace
        self.config, self.limits, self.proposer = config, limits, proposer
        self.slots = list(slots) if slots is not None else parse_slots(config.runner.slots, cpu_count())
        self.settings = settings or run_settings(config)
        editable = tuple(config.arena.editable)
        readonly = {p: campaign.readonly.get(p) for p in config.arena.readonly}
        if set(config.arena.readonly) - set(campaign.readonly):
            readonly = ws.tree_blobs(campaign.base_commit, config.arena.readonly)
        stop = stop or StopSignal()
        m = config.metric
        execution = Execution(
            self.settings, runner, ws, tag=campaign.tag, out_dir=ws.state_dir / campaign.tag,
            judged=Judged(campaign.metric, m.min, m.max, self.settings.limits.disk_mb, self.settings.limits.memory_mb,
                          self.settings.run_timeout_s, self.settings.eval_timeout_s, m.pattern, dict(m.patterns)),
            readonly=readonly, base_env=dict(os.environ if base_env is None else base_env), stop=stop.event)
        journal = Journal(oc.ledger, ws, campaign)
        self.ctx = Engine(
            campaign=campaign, journal=journal,
            state=CampaignState(oc.ledger, ws, campaign, editable, journal.experiments), execution=execution, judge=judge,
            rules=Rules(editable, tuple(config.arena.protected)), report=report or no_report, stop=stop,
            suspicious_sigma=config.judge.suspicious_sigma)
        self.ctx.rebase = _knobs_rebase(config, self.ctx.state, campaign.base_commit)
        attach_early_stop(self.ctx)  # candidates' screening runs get the early-stopping rule (early_stop.py)
        self.ctx.guard = Guard(journal, sandboxed=self.settings.sandbox_paths is not None, note=self.ctx.note,
                               data=execution.data)
        execution.on_phase = self.ctx.phase

    def run(self) -> Outcome:
        ctx = self.ctx
        with ctx.lock:
            try:
                outcome = self._run()
            except BaseException:
                with contextlib.suppress(Exception):  # the error that stopped the campaign is the one to show
                    ctx.journal.export(full=True)
                with contextlib.suppress(Exception):
                    ctx.guard.check()
                ctx.guard.close()
                raise
            try:
                ctx.journal.export(full=True)
                ctx.guard.check()  # last: what runs stopped at the end changed, our last writes included
            finally:
                ctx.guard.close()
            return outcome

    def _run(self) -> Outcome:
        ctx = self.ctx
        self._describe_limits()
        self._describe_budget()
        if self.limits.deadline is not None and time.time() >= self.limits.deadline:
            return Outcome("reached --max-hours; nothing new is started after the deadline", 0)
        history = ctx.state.history()
        baseline = next((e for e in history if e.id == 0), None)
        if baseline is None or baseline.status is not Status.KEEP:
            only_baseline = self.limits.max_experiments is not None and self.limits.max_experiments <= 1
            stopped = calibrate(ctx, self.slots, baseline, whole=only_baseline)
            if stopped is not None:
                return stopped
            history = ctx.state.history()
        else:
            settle(ctx)  # a calibration complete by now whose reason still says "so far"
        counters = ctx.state.counters
        counters.done = sum(1 for e in history if e.status.counted)
        counters.candidates_done = sum(1 for e in history if e.id > 0 and e.status.counted)
        counters.remeasures = ctx.state.ledger.count_runs(ctx.campaign, Purpose.REMEASURE.value)
        scheduler = Scheduler(ctx, self.proposer, self.slots, self.limits, self.config.proposer.lookahead,
                              self.proposal_context)
        return scheduler.run()

    def _describe_limits(self) -> None:
        lim = self.settings.limits
        if lim.any and not self.settings.wrap_here:
            self.ctx.note("limit: [runner.limits] apply on each node, with what that node offers (cgroups or rlimits)")
        elif lim.any:
            from ..runners.limits import Cgroups, describe, machine_cgroups

            cgroups = machine_cgroups() if lim.cgroups else Cgroups(0, {})
            for line in describe(lim, cgroups, os.geteuid() == 0, self.config.runner.run_as or ""):
                self.ctx.note(f"limit: {line}")

    def _describe_budget(self) -> None:
        """A budget the script cannot see is said at the start; the overrun note is said once
        per campaign, so a resumed campaign that said it already stays quiet."""
        ctx, arena = self.ctx, self.config.arena
        ctx.budget_noted = noted_before(r["warnings"] for r in ctx.state.ledger.runs(ctx.campaign))
        sources = tuple(p for p in (*arena.editable, *arena.readonly) if p.endswith(".py"))  # not the data
        note = unseen_budget_note(ctx.state.files_at(ctx.state.incumbent_ref()[0], sources), arena.editable,
                                  arena.readonly, arena.time_budget_s)
        if note is not None:
            ctx.note(note)

    def proposal_context(self) -> ProposalContext:
        """What the proposer sees (lock held)."""
        ctx, state = self.ctx, self.ctx.state
        parent, metric = state.incumbent()
        history = state.history()
        crashes = [e.id for e in history if e.status in (Status.CRASH, Status.TIMEOUT)][-2:]
        crash_logs = {}
        for eid in crashes:
            runs = state.ledger.runs(ctx.campaign, eid)
            if runs:
                crash_logs[eid] = runs[-1]["log_tail"]
        program = self.config.arena.program
        a = self.config.arena  # the readonly files, and the scripts the commands start: how knobs are used
        readonly = usage_paths(a.editable, a.readonly, (a.run, a.eval))
        return ProposalContext(
            incumbent_commit=parent, incumbent_metric=metric,
            files={k: v for k, v in state.files_at(parent, state.editable).items() if v is not None},
            history=history, metric=ctx.metric, goal=Goal(ctx.campaign.goal),
            program=(state.files_at(parent, (program,)).get(program) or "") if program else "",
            readonly={k: v for k, v in state.files_at(ctx.campaign.base_commit, readonly).items() if v is not None},
            noise_sd=state.noise()[0], crash_logs=crash_logs, tag=ctx.campaign.tag,
        )


def _knobs_rebase(config: Config, state: CampaignState, base_commit: str) -> Rebase:
    """How a knobs proposal moves onto a new incumbent (its constraints checked there)."""
    from ..proposers.knob_rebase import rebase_knobs

    a = config.arena
    constraints, ro = tuple(config.proposer.knobs.constraints), usage_paths(a.editable, a.readonly, (a.run, a.eval))

    def rebase(proposal: Proposal, files: Mapping[str, str], metric: float | None) -> Proposal | str:
        readonly = {k: v for k, v in state.files_at(base_commit, ro).items() if v is not None} if constraints else None
        return rebase_knobs(proposal, files, metric, constraints=constraints, readonly=readonly)

    return rebase
