"""The campaign loop: propose -> check -> commit -> run -> measure -> judge -> record.

It talks to protocols only (Proposer, Runner, Judge) plus the ledger and the git
workspace. Every durable step happens in this order, which resume relies on:
ledger ``pending`` -> commit -> ledger ``running`` -> run -> ledger terminal status ->
branch advance (keep) or archive ref (anything else that was committed).
"""

from __future__ import annotations

import ast
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from statistics import fmean
from pathlib import Path
from typing import Any, Callable, Mapping

from .campaign import OpenCampaign
from .config import Config
from .edits import apply_edits, code_hash, unified_diff
from .faults import crash_point
from .errors import BaselineError, EditError
from .judge import Decision, Judge, Noise, Verdict
from .ledger import results_tsv, write_atomic
from .metrics import measure
from .protocols import ProposalContext, Proposer, Runner
from .records import Experiment, FileEdit, Goal, Measurement, Proposal, RunOutcome, Status
from .runners.local import DEFAULT_ENV_ALLOW, RunSpec, child_env
from .runners.proctree import new_run_token
from .stats import pooled_sd
from .workspace import hash_files


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


class CampaignLoop:
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
        slot: int = 0,
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
        self.slot = slot
        self.goal = Goal(self.campaign.goal)
        self.metric_name = self.campaign.metric
        self.tag = self.campaign.tag
        self.branch_ref = f"refs/heads/{self.campaign.branch}"
        self.run_dir = self.ws.state_dir / self.tag
        self._incumbent: tuple[str, int | None] | None = None
        self._samples: dict[int, list[float]] | None = None
        self._files: dict[tuple[str, tuple[str, ...]], dict[str, str | None]] = {}
        self.editable = tuple(config.arena.editable)
        self.readonly = {p: self.campaign.readonly.get(p) for p in config.arena.readonly}
        if set(config.arena.readonly) - set(self.campaign.readonly):
            self.readonly = self.ws.tree_blobs(self.campaign.base_commit, config.arena.readonly)

    # -- state ------------------------------------------------------------------------------
    def history(self) -> list[Experiment]:
        return self.ledger.experiments(self.campaign)

    def incumbent(self) -> tuple[str, float | None]:
        """The branch tip and its metric (the mean of its runs). Only this loop moves the
        branch while it holds the campaign lock, so the tip is read once and then kept up
        to date in memory."""
        if self._incumbent is None:
            tip = self.ws.resolve(self.branch_ref) or self.campaign.base_commit
            exp_id = None
            for e in self.history():
                if e.status is Status.KEEP and e.commit == tip:
                    exp_id = e.id
            self._incumbent = (tip, exp_id)
        tip, exp_id = self._incumbent
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
            if len(self._files) >= 8:
                self._files.pop(next(iter(self._files)))
            self._files[key] = self.ws.read_files(commit, paths)
        return dict(self._files[key])

    def export(self) -> None:
        text = results_tsv(self.metric_name, self.history())
        tmp = self.run_dir / "tmp"
        write_atomic(self.run_dir / "results.tsv", text, tmp)
        write_atomic(self.ws.arena / "results.tsv", text, tmp)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            return self._run()
        finally:
            self.export()

    def _run(self) -> Outcome:
        if self.limits.deadline is not None and time.time() >= self.limits.deadline:
            return Outcome("reached --max-hours; nothing new is started after the deadline", 0)
        history = self.history()
        baseline = next((e for e in history if e.id == 0), None)
        if baseline is None or baseline.status is not Status.KEEP:
            outcome = self._baseline(baseline)
            if outcome is not None:
                return outcome

        while True:
            if self.stop.event.is_set():
                return self._interrupted_outcome()
            history = self.history()
            done = sum(1 for e in history if e.status.counted)
            if self.limits.max_experiments is not None and done >= self.limits.max_experiments:
                return Outcome(f"reached --max-experiments {self.limits.max_experiments}", 0)
            if self.limits.deadline is not None and time.time() >= self.limits.deadline:
                return Outcome("reached --max-hours; nothing new is started after the deadline", 0)

            resumed = next((e for e in history if not e.status.terminal or e.status is Status.INTERRUPTED), None)
            if resumed is None and self._remeasure_due(history):
                self._remeasure()
                continue
            if resumed is not None:
                stored = self.ledger.proposal(self.campaign, resumed.id)
                proposal = _proposal_from_json(stored)
                self.report(Event("note", resumed.id, resumed.description, detail=f"resuming (attempt {resumed.attempt + 1})"))
                status = self._candidate(resumed.id, proposal, attempt=resumed.attempt + 1)
            else:
                parent, metric = self.incumbent()
                context = ProposalContext(
                    incumbent_commit=parent,
                    incumbent_metric=metric,
                    files={k: v for k, v in self.files_at(parent, self.editable).items() if v is not None},
                    history=history,
                    metric=self.metric_name,
                    goal=self.goal,
                    program=self._program_text(parent),
                )
                proposal = self.proposer.propose(context)
                if proposal is None:
                    return Outcome("proposals exhausted", 0)
                exp_id = self.ledger.next_experiment_id(self.campaign)
                self.ledger.add_experiment(
                    self.campaign, id=exp_id, description=proposal.description,
                    proposer=proposal.proposer or self.proposer.name, parent=parent,
                    proposal=_proposal_to_json(proposal), tokens=proposal.tokens, cost=proposal.cost,
                )
                crash_point("after_pending", exp_id)
                status = self._candidate(exp_id, proposal, attempt=1)
            if status is Status.INTERRUPTED:
                return self._interrupted_outcome()

    def _interrupted_outcome(self) -> Outcome:
        signum = self.stop.signum or 2
        return Outcome("interrupted", 128 + signum)

    def _program_text(self, commit: str) -> str:
        if not self.config.arena.program:
            return ""
        program = self.config.arena.program
        return self.files_at(commit, (program,)).get(program) or ""

    # -- baseline -----------------------------------------------------------------------------
    def _baseline(self, previous: Experiment | None) -> Outcome | None:
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
            seed=self.config.runner.seed, slot=self._slot_name(), log_path=str(self._log_path(0, attempt, "run", 0)),
        )
        self._samples = None  # a new attempt: its runs start from nothing
        self.samples(0)  # load now, before this attempt's runs reach the ledger
        crash_point("after_running", 0)
        n0 = self.judge.baseline_runs
        self.report(Event("start", 0, "baseline" + (f" ({n0} runs calibrate the noise)" if n0 > 1 else "")))
        m: _Measured | None = None
        for k in range(n0):
            worktree = self.ws.checkout(self.tag, self.slot, base)
            m = self._execute(0, attempt, worktree, k, "baseline")
            crash_point("after_run", 0)
            if m.status is not Status.KEEP:
                break
            self.samples(0).append(m.measurement.metric)  # type: ignore[arg-type]
        assert m is not None
        if m.status is Status.INTERRUPTED:
            self.ledger.finish_experiment(self.campaign, 0, status=Status.INTERRUPTED, reason=m.reason)
            self.report(Event("finish", 0, "baseline", Status.INTERRUPTED, detail=m.reason))
            return self._interrupted_outcome()
        ok = m.status is Status.KEEP
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
        raise BaselineError(
            f"the baseline ({final.value}) failed: {m.reason}\n"
            f"--- last lines of {m.log_path} ---\n{tail}\n---\n"
            f"The search never starts without a working baseline. Fix the arena so that `{self.config.arena.run}` "
            f"finishes within the timeout and reports {self.metric_name}, commit, and run again."
        )

    def _remeasure_due(self, history: list[Experiment]) -> bool:
        every = self.judge.remeasure_every
        if every <= 0:
            return False
        candidates = sum(1 for e in history if e.id > 0 and e.status.counted)
        return candidates // every > self.ledger.count_runs(self.campaign, "remeasure")

    def _remeasure(self) -> None:
        """Run the incumbent once more: drift over a night shows up, and its mean firms up."""
        tip, _ = self.incumbent()
        assert self._incumbent is not None
        exp_id = self._incumbent[1]
        inc = self.ledger.experiment(self.campaign, exp_id) if exp_id is not None else None
        if inc is None:
            return
        worktree = self.ws.checkout(self.tag, self.slot, tip)
        before = self.incumbent()[1]
        m = self._execute(inc.id, inc.attempt, worktree, len(self.samples(inc.id)), "remeasure")
        if m.status is Status.KEEP:
            values = self.samples(inc.id)
            values.append(m.measurement.metric)  # type: ignore[arg-type]
            sigma, _ = pooled_sd([values])
            self.ledger.update_stats(self.campaign, inc.id, mean=fmean(values), runs_n=len(values),
                                     se=sigma / math.sqrt(len(values)) if sigma is not None else None)
            self.report(Event("note", inc.id, inc.description,
                              detail=f"re-measured the incumbent: {m.measurement.metric:.6g} (mean {before:.6g} -> {fmean(values):.6g})"))
        else:
            self.report(Event("note", inc.id, inc.description, detail=f"re-measuring the incumbent failed: {m.reason}"))
        self.export()

    # -- one candidate ------------------------------------------------------------------------
    def _invalid(self, exp_id: int, description: str, reason: str, **extra: Any) -> Status:
        self.ledger.finish_experiment(self.campaign, exp_id, status=Status.INVALID, reason=reason, **extra)
        self.report(Event("finish", exp_id, description, Status.INVALID, detail=reason))
        self._observe(exp_id)
        self.export()
        return Status.INVALID

    def _candidate(self, exp_id: int, proposal: Proposal, attempt: int) -> Status:
        editable = list(self.editable)
        parent, parent_metric = self.incumbent()
        old = self.files_at(parent, self.editable)
        desc = proposal.description
        try:
            new = apply_edits(old, proposal.edits, editable)
        except EditError as e:
            return self._invalid(exp_id, desc, str(e), parent=parent)
        diff = unified_diff(old, new)
        full = {**{k: v for k, v in old.items() if v is not None}, **new}
        chash = code_hash(full)
        if not diff:
            return self._invalid(exp_id, desc, "the edits change nothing", parent=parent, code_hash=chash)
        seen = self.ledger.code_hashes(self.campaign)
        twin = seen.get(chash)
        if twin is not None and twin != exp_id:
            return self._invalid(exp_id, desc, f"duplicate: the same code was already tried as experiment {twin}",
                                 diff=diff, parent=parent)
        for path, text in new.items():
            problem = python_syntax_problem(path, text)
            if problem:
                return self._invalid(exp_id, desc, problem, diff=diff, code_hash=chash, parent=parent)

        worktree = self.ws.checkout(self.tag, self.slot, parent)
        try:
            self.ws.write_files(worktree, new)
        except EditError as e:
            return self._invalid(exp_id, desc, str(e), diff=diff, code_hash=chash, parent=parent)
        changed = self._readonly_changes(worktree)
        if changed:
            return self._invalid(exp_id, desc, f"readonly file(s) changed: {', '.join(changed)}", diff=diff,
                                 code_hash=chash, parent=parent)
        crash_point("mid_commit", exp_id, leave=lambda: self.ws.worktree_gitdir(worktree) / "index.lock")
        commit = self.ws.commit(worktree, sorted(new), f"autoresearch {self.tag} #{exp_id}: {desc}",
                                new_paths=sorted(p for p in new if old.get(p) is None))
        crash_point("after_commit", exp_id)
        self.ledger.set_running(
            self.campaign, exp_id, commit=commit, parent=parent, diff=diff, code_hash=chash, attempt=attempt,
            seed=self.config.runner.seed, slot=self._slot_name(), log_path=str(self._log_path(exp_id, attempt, "run", 0)),
        )
        crash_point("after_running", exp_id)
        self.report(Event("start", exp_id, desc))
        self.samples(exp_id).clear()  # this attempt's runs only
        incumbent = list(self.samples(self._incumbent[1])) if self._incumbent and self._incumbent[1] is not None else []
        decision: Decision | None = None
        k = 0
        while True:
            if k > 0:
                worktree = self.ws.checkout(self.tag, self.slot, commit)  # a clean tree for every run
            m = self._execute(exp_id, attempt, worktree, k, "screen" if k == 0 else "confirm")
            crash_point("after_run", exp_id)
            status, reason = m.status, m.reason
            if status is not Status.KEEP:  # crash, timeout, invalid, interrupted: data, not a verdict
                break
            self.samples(exp_id).append(m.measurement.metric)  # type: ignore[arg-type]
            if not incumbent:
                status, reason = Status.DISCARD, "the incumbent has no metric to compare with"
                break
            decision = self.judge.decide(self.samples(exp_id), incumbent, self.goal, self.noise())
            if decision.verdict is Verdict.MORE_RUNS and not self.stop.event.is_set():
                self.report(Event("note", exp_id, desc, detail=decision.reason))
                k += 1
                continue
            status = Status.KEEP if decision.verdict is Verdict.KEEP else Status.DISCARD
            reason = decision.reason
            break
        values = self.samples(exp_id)
        metric = fmean(values) if values and status in (Status.KEEP, Status.DISCARD) else m.measurement.metric
        stats = dict(decision.stats) if decision is not None else {}
        if values:
            stats["runs"], stats["mean"] = float(len(values)), fmean(values)
        self.ledger.finish_experiment(
            self.campaign, exp_id, status=status, reason=reason, metric=metric,
            metrics=m.measurement.metrics, warnings=m.measurement.warnings, stats=stats,
        )
        crash_point("after_terminal", exp_id)
        if status is Status.KEEP:
            crash_point("mid_advance", exp_id, leave=lambda: self.ws.ref_lock_path(self.branch_ref))
            self.ws.update_ref(self.branch_ref, commit, parent, message=f"autoresearch: keep #{exp_id}: {desc}")
            self._incumbent = (commit, exp_id)
            self._files[(commit, self.editable)] = dict(old, **new)  # the new incumbent's files, known already
        elif status is not Status.INTERRUPTED:
            archive = f"refs/autoresearch/{self.tag}/discarded/{exp_id}"
            crash_point("mid_advance", exp_id, leave=lambda: self.ws.ref_lock_path(archive))
            self.ws.update_ref(archive, commit, message=f"autoresearch: {status.value} #{exp_id}: {desc}")
        crash_point("after_advance", exp_id)
        best = self.incumbent()[1]
        self.report(Event("finish", exp_id, desc, status, metric, detail=reason, best=best))
        if status is not Status.INTERRUPTED:
            self._observe(exp_id)
            self.export()
        return status

    def _observe(self, exp_id: int) -> None:
        exp = self.ledger.experiment(self.campaign, exp_id)
        if exp is not None:
            self.proposer.observe(exp)

    def _readonly_changes(self, worktree: Path) -> list[str]:
        now = hash_files(worktree, self.readonly)
        return [p for p, h in self.readonly.items() if now.get(p) != h]

    # -- running and measuring ------------------------------------------------------------------
    def _slot_name(self) -> str:
        return f"local:{self.slot}"

    def _log_path(self, exp_id: int, attempt: int, phase: str, k: int) -> Path:
        run = f"-r{k}" if k else ""
        return self.run_dir / "logs" / f"{exp_id:04d}-a{attempt}{run}-{phase}.log"

    def _seed(self, k: int) -> int:
        """Run k of an experiment gets seed + k: every experiment sees the same seed sequence."""
        return self.config.runner.seed + k

    def _spec(self, exp_id: int, attempt: int, worktree: Path, phase: str, command: str, timeout: float, k: int) -> RunSpec:
        cfg = self.config
        run = f"-r{k}" if k else ""
        result_file = self.run_dir / "results" / f"{exp_id:04d}-a{attempt}{run}-{phase}.json"
        result_file.parent.mkdir(parents=True, exist_ok=True)
        budget = cfg.arena.time_budget_s
        extra = {
            "AUTORESEARCH_SEED": str(self._seed(k)),
            "AUTORESEARCH_TIME_BUDGET": str(int(budget)) if float(budget).is_integer() else str(budget),
            "AUTORESEARCH_EXPERIMENT_ID": str(exp_id),
            "AUTORESEARCH_ATTEMPT": str(attempt),
            "AUTORESEARCH_PHASE": phase,
            "AUTORESEARCH_ARENA_DIR": str(self.ws.arena),
            "PYTHONUNBUFFERED": "1",
        }
        env = child_env(self.base_env, [*DEFAULT_ENV_ALLOW, *cfg.runner.env_allow], extra)
        return RunSpec(
            command=command, cwd=worktree, env=env, timeout_s=timeout,
            log_path=self._log_path(exp_id, attempt, phase, k), token=new_run_token(), result_file=result_file,
            log_cap_bytes=int(cfg.runner.log_cap_mb * (1 << 20)), kill_grace_s=cfg.runner.kill_grace_s,
        )

    def _execute(self, exp_id: int, attempt: int, worktree: Path, k: int, purpose: str) -> _Measured:
        """Run k of an experiment (and its eval). Status KEEP here means "produced a valid metric"."""
        cfg = self.config.arena
        spec = self._spec(exp_id, attempt, worktree, "run", cfg.run, cfg.hard_timeout_s, k)
        run_id = self.ledger.start_run(
            self.campaign, exp_id, attempt=attempt, purpose=purpose,
            seed=self._seed(k), slot=self._slot_name(), log_path=str(spec.log_path), run_token=spec.token,
        )
        handle = self.runner.start(spec, self.stop.event)
        crash_point("mid_run", exp_id)
        out = handle.wait()
        eval_out: RunOutcome | None = None
        if cfg.eval and not (out.timed_out or out.interrupted) and out.exit_code == 0:
            espec = self._spec(exp_id, attempt, worktree, "eval", cfg.eval, cfg.hard_eval_timeout_s, k)
            eval_out = self.runner.start(espec, self.stop.event).wait()

        measurement = measure(
            self.metric_name,
            run_output=_read_log(out.log_path),
            run_json=out.result_json,
            eval_output=_read_log(eval_out.log_path) if eval_out else None,
            eval_json=eval_out.result_json if eval_out else None,
            eval_configured=bool(cfg.eval),
        )
        status, reason = Status.KEEP, ""
        if out.interrupted or (eval_out is not None and eval_out.interrupted):
            status, reason = Status.INTERRUPTED, "the harness was stopped during the run"
        elif out.timed_out:
            status, reason = Status.TIMEOUT, f"killed at the {cfg.hard_timeout_s:g} s timeout"
        elif out.exit_code != 0:
            status, reason = Status.CRASH, _first_line_reason(out, "the run")
        elif eval_out is not None and eval_out.timed_out:
            status, reason = Status.TIMEOUT, f"the eval was killed at the {cfg.hard_eval_timeout_s:g} s timeout"
        elif eval_out is not None and eval_out.exit_code != 0:
            status, reason = Status.CRASH, _first_line_reason(eval_out, "the eval")
        elif measurement.metric is None:
            status, reason = Status.CRASH, measurement.problem
        if status is not Status.INTERRUPTED:
            changed = self._readonly_changes(worktree)
            if changed:
                status, reason = Status.INVALID, f"readonly file(s) changed during the run: {', '.join(changed)}"
        tail = out.log_tail if eval_out is None else f"{out.log_tail}\n--- eval ---\n{eval_out.log_tail}"
        self.ledger.finish_run(
            run_id, status="ok" if status is Status.KEEP else status.value, exit_code=out.exit_code,
            eval_exit_code=eval_out.exit_code if eval_out else None, metric=measurement.metric,
            metrics=measurement.metrics, warnings=measurement.warnings, problem=reason, log_tail=tail,
            duration_s=out.duration_s + (eval_out.duration_s if eval_out else 0.0),
        )
        return _Measured(status, measurement, reason, run_id, str(spec.log_path))


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
