"""One run of an experiment, start to measurement: run command, readonly check, trusted
eval, metric precedence, and the run's status. The one path every measurement takes:
campaign runs (candidates, the baseline, re-measurements) and ablation runs; on a Ray
cluster the runner carries the same spec to a node.

``classify`` decides a run's status from what happened; it is pure. ``Execution.run`` does
the effects in order and returns a typed ``RunResult``. Nothing here writes the ledger:
the journal records the plan before the run and the result after it.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..datafiles import DataFiles, data_hint
from ..faults import crash_point
from ..integrity import out_of_range
from ..metrics import measure
from ..protocols import Runner
from ..records import Measurement, Purpose, RunOutcome, RunStatus
from ..progress import behind, curve_file_for, write_curve_file
from ..runners.proctree import new_run_token
from ..runners.watch import WatchSpec
from ..runs.spec import Phase, Placement, RunSettings, RunSpec, build_run_spec, child_env, with_interpreter
from ..slots import Slot
from ..store.workspace import Workspace


@dataclass(frozen=True)
class RunPlan:
    """One run, decided and described before it starts (the journal records it first)."""

    slot: Slot
    exp_id: int          # the experiment (ablation variants: -1 or the reverted experiment)
    attempt: int
    k: int               # the run's index within the attempt (seed = base seed + k)
    seed: int
    purpose: Purpose
    workdir: Path        # the arena inside the slot's run directory
    commit: str
    stem: str            # names the run's log and result files
    spec: RunSpec        # the run phase
    crash_id: int | None = None  # the experiment the ``mid_run`` crash point belongs to
    watch: WatchSpec | None = None  # its progress reports to record, and the early-stopping rule


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    reason: str
    measurement: Measurement
    run: RunOutcome
    eval: RunOutcome | None
    warnings: tuple[str, ...]
    duration_s: float

    @property
    def metric(self) -> float | None:
        return self.measurement.metric if self.status is RunStatus.OK else None

    @property
    def log_tail(self) -> str:
        return self.run.log_tail if self.eval is None else f"{self.run.log_tail}\n--- eval ---\n{self.eval.log_tail}"


@dataclass(frozen=True)
class Judged:
    """What measuring and ``classify`` need besides the outcomes: the campaign's metric (and
    the regexes that read it as printed), limits and bounds."""

    metric: str
    metric_min: float | None = None
    metric_max: float | None = None
    disk_mb: float | None = None
    memory_mb: float | None = None
    run_timeout_s: float = 0.0
    eval_timeout_s: float = 0.0
    pattern: str | None = None                                  # [metric] pattern
    patterns: Mapping[str, str] = field(default_factory=dict)   # [metric.patterns]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)(: |:?$)")


def error_line(log_tail: str) -> str:
    """The line of a failed run's output that says why: the exception line of its last
    traceback (``ValueError: ...``; Hydra prints a footer after it, "Set the environment
    variable HYDRA_FULL_ERROR=1 ...", which a newcomer's trial was told instead), else the
    last line (an exception printed and handled earlier is not why it failed). Pure."""
    lines = [x.strip() for x in log_tail.splitlines() if x.strip()]
    start = max((i for i, x in enumerate(lines) if x.startswith("Traceback (most recent call last)")), default=None)
    if start is None:
        return lines[-1] if lines else ""
    return next((x for x in reversed(lines[start:]) if _EXCEPTION_LINE.match(x)), lines[-1])


def first_line_reason(outcome: RunOutcome, what: str) -> str:
    last = error_line(outcome.log_tail)
    if outcome.exit_code is not None and outcome.exit_code < 0:
        head = f"{what} killed by signal {-outcome.exit_code}"
    else:
        head = f"{what} exited with code {outcome.exit_code}"
    return f"{head}: {last[:200]}" if last else head


def eval_refusal(out: RunOutcome) -> str | None:
    """An evaluator (a trusted channel) may refuse a model: ``{"invalid": "why"}`` in its
    result JSON (e.g. the tiny-GPT evaluator's causality probe). Pure."""
    if not out.result_json:
        return None
    try:
        data = json.loads(out.result_json)
    except ValueError:
        return None
    why = data.get("invalid") if isinstance(data, dict) else None
    return str(why)[:500] if why else None


def classify(run: RunOutcome, ev: RunOutcome | None, m: Measurement, readonly_changed: Sequence[str],
             j: Judged) -> tuple[RunStatus, str]:
    """A run's status and the reason in words. Pure; the first matching rule decides, and a
    changed readonly file makes any finished run invalid."""
    if run.interrupted or (ev is not None and ev.interrupted):
        return RunStatus.INTERRUPTED, "the harness was stopped during the run"
    infra = run.infra or (ev.infra if ev is not None else "")
    if infra:
        return RunStatus.INFRA, f"infrastructure failure, not the candidate's: {infra}"
    status, reason = _outcome_status(run, ev, m, j)
    if readonly_changed:
        return RunStatus.INVALID, f"readonly file(s) changed during the run: {', '.join(readonly_changed)}"
    return status, reason


def cut_off(run: RunOutcome, ev: RunOutcome | None) -> str | None:
    """Why a run's measurement is no result, where its run or eval did not finish: stopped
    (interrupted, at its timeout, by a disk or memory limit) or ended with a non-zero exit
    (a crash; killed by a signal). A number it printed before that is some step's value, and
    recorded as its metric it reads as what it achieved (a newcomer's trial: an interrupted
    run's epoch-1 accuracy in status and results.tsv). None where both finished. Pure."""
    for phase, o in (("run", run), ("eval", ev)):
        if o is not None and (o.interrupted or o.timed_out or o.exit_code != 0):  # a limit kills: no exit 0
            return f"the {phase} did not finish"
    return None


def _outcome_status(run: RunOutcome, ev: RunOutcome | None, m: Measurement, j: Judged) -> tuple[RunStatus, str]:
    if run.limit == "disk":
        return RunStatus.CRASH, f"killed: its directory grew past the disk limit of {j.disk_mb:g} MB ([runner.limits] disk_mb)"
    if run.limit == "memory" and run.exit_code != 0:
        return RunStatus.CRASH, f"killed by the memory limit of {j.memory_mb:g} MB ([runner.limits] memory_mb)"
    if run.timed_out:
        return RunStatus.TIMEOUT, f"killed at the {j.run_timeout_s:g} s timeout"
    if run.exit_code != 0:
        return RunStatus.CRASH, first_line_reason(run, "the run")
    if ev is not None:
        if ev.timed_out:
            return RunStatus.TIMEOUT, f"the eval was killed at the {j.eval_timeout_s:g} s timeout"
        why = eval_refusal(ev)
        if why is not None:
            return RunStatus.INVALID, f"the evaluator refused the model: {why}"
        if ev.exit_code != 0:
            return RunStatus.CRASH, first_line_reason(ev, "the eval")
    if m.conflict:
        return RunStatus.INVALID, m.conflict
    if m.metric is None:
        return RunStatus.CRASH, m.problem
    bad = out_of_range(m.metric, j.metric_min, j.metric_max)
    if bad is not None:
        return RunStatus.CRASH, f"{j.metric} out of its declared range: {bad}"
    return RunStatus.OK, ""


LOG_TAIL_READ = 2 << 20  # what measuring reads of a log: its end (the summary block is there)


def read_log(path: str) -> str:
    from ..safefs import read_regular

    data = read_regular(path, LOG_TAIL_READ, tail=True)
    return "" if data is None else data.decode("utf-8", errors="replace")


class Execution:
    """Runs and measures. Thread-safe for distinct slots: each slot has its own run and
    eval directories."""

    def __init__(self, settings: RunSettings, runner: Runner, workspace: Workspace, *, tag: str, out_dir: Path,
                 judged: Judged, readonly: Mapping[str, str | None], base_env: Mapping[str, str],
                 stop: threading.Event, dir_prefix: str = ""):
        self.settings, self.runner, self.ws, self.tag = settings, runner, workspace, tag
        self.out_dir, self.judged, self.readonly = out_dir, judged, dict(readonly)
        self.stop, self.dir_prefix = stop, dir_prefix
        self.env = child_env(base_env, settings.env_allow, {})  # what runs may see of the harness's environment
        # [arena] data: linked into every run directory, fingerprinted now (the guard compares after each run)
        self.data = DataFiles(workspace.arena, settings.data, settings.eval_only) if settings.data else None
        self.early_stop: Any = None  # engine/early_stop.py EarlyStop: the rule a run gets (None: curves only)
        self.on_phase: Callable[[int, str, str], None] | None = None  # (experiment, slot, "run 2" | "eval"): the live view

    def checkout(self, slot: Slot, commit: str) -> Path:
        """The slot's run directory holding ``commit`` (nothing a previous run left)."""
        return self.ws.dirs.materialize(self.tag, f"{self.dir_prefix}slot-{slot.index}", commit, self.data, hide=True)

    def log_path(self, stem: str, phase: Phase = Phase.RUN) -> Path:
        return self.out_dir / "logs" / f"{stem}-{phase.value}.log"

    def _place(self, slot: Slot, workdir: Path, stem: str, phase: Phase) -> Placement:
        # the result directory: the slot's, emptied before each run (build_run_spec), so only
        # this run's result can be in it (and, sandboxed, only this run sees it)
        results = self.out_dir / "results" / f"{self.dir_prefix}slot-{slot.index}-{phase.value}"
        return Placement(top=self.ws.dirs.top_of(workdir), cwd=workdir, log_path=self.log_path(stem, phase),
                         result_file=results / "result.json", arena=self.ws.arena, state_dir=self.ws.state_dir,
                         git_dir=self.ws.git_dir)

    def _spec(self, plan_slot: Slot, phase: Phase, workdir: Path, commit: str, stem: str, seed: int, exp_id: int,
              attempt: int) -> RunSpec:
        return build_run_spec(self.settings, slot=plan_slot, phase=phase, place=self._place(plan_slot, workdir, stem, phase),
                              commit=commit, seed=seed, exp_id=exp_id, attempt=attempt, token=new_run_token(),
                              base_env=self.env, allowed=True)

    def plan(self, slot: Slot, *, exp_id: int, attempt: int, k: int, purpose: Purpose, workdir: Path, commit: str,
             stem: str, seed: int | None = None, crash_id: int | None = None) -> RunPlan:
        seed = self.settings.seed + k if seed is None else seed
        spec = self._spec(slot, Phase.RUN, workdir, commit, stem, seed, exp_id, attempt)
        watch = WatchSpec(self.settings.time_budget_s, self.judged.metric, self.judged.pattern)
        if self.early_stop is not None:
            watch = self.early_stop.watch_for(exp_id, purpose, watch)
        return RunPlan(slot, exp_id, attempt, k, seed, purpose, workdir, commit, stem, spec, crash_id, watch)

    def run(self, plan: RunPlan) -> RunResult:
        """Run, check, evaluate and measure (call without the engine's lock: it waits)."""
        hidden = self.ws.dirs.hide(plan.workdir, self.settings.eval_only)
        if self.on_phase is not None:
            self.on_phase(plan.exp_id, plan.slot.label, f"run {plan.k + 1}")
        handle = self.runner.start(plan.spec, self.stop, watch=plan.watch)
        if plan.crash_id is not None:
            crash_point("mid_run", plan.crash_id)
        out = handle.wait()
        self.keep_curves(out)
        if out.stopped_early_at is not None:
            return self.stopped_early(plan, out, hidden)
        ev, removed, changed, final_dir = None, [], [], plan.workdir
        if self.settings.eval and not (out.timed_out or out.interrupted or out.infra) and out.exit_code == 0:
            # a readonly file the run wrote is caught before the eval: a tampered evaluator
            # could otherwise print a fake score and then restore itself
            changed = self.readonly_changes(plan.workdir, skip=hidden)
            if not changed:
                final_dir, _, removed = self.ws.dirs.prepare_eval(self.tag, f"{self.dir_prefix}eval-{plan.slot.index}",
                                                                  plan.workdir, self.data)
                espec = self._spec(plan.slot, Phase.EVAL, final_dir, plan.commit, plan.stem, plan.seed, plan.exp_id,
                                   plan.attempt)
                if self.on_phase is not None:
                    self.on_phase(plan.exp_id, plan.slot.label, "eval")
                ev = self.runner.start(espec, self.stop).wait()
        m = measure(self.judged.metric, run_output=read_log(out.log_path), run_json=out.result_json,
                    eval_output=read_log(ev.log_path) if ev else None, eval_json=ev.result_json if ev else None,
                    eval_configured=bool(self.settings.eval), pattern=self.judged.pattern,
                    patterns=self.judged.patterns)
        m = m.with_harness_metrics({"peak_rss_mb": out.peak_rss_mb})  # the run phase's memory, never a printed value
        if not (out.interrupted or out.infra or changed):
            changed = self.readonly_changes(final_dir, skip=hidden if ev is None else ())
        status, reason = classify(out, ev, m, changed, self.judged)
        cut = cut_off(out, ev) if status is not RunStatus.OK else None
        if cut is not None:
            m = m.cut_short(cut)  # what it printed before it was killed or failed is not its result
        if status is RunStatus.CRASH:
            reason = self.with_data_hint(reason, (out, plan.workdir, True), (ev, final_dir, False))
            reason = self.with_interpreter(reason, out, ev, plan, final_dir)
        warnings = (*m.warnings, *([f"removed before the eval: {', '.join(removed[:20])}"] if removed else []))
        took = out.duration_s + (ev.duration_s if ev else 0.0)
        return RunResult(status, reason, m, out, ev, warnings, took)

    def keep_curves(self, out: RunOutcome) -> None:
        """The run's progress curves, in a file beside its log (an incumbent's are the
        reference for early stopping, on resume too)."""
        if out.progress:
            try:
                write_curve_file(curve_file_for(out.log_path), {k: list(c) for k, c in out.progress.items()})
            except OSError:
                pass  # no curve: its candidates run their full budget

    def stopped_early(self, plan: RunPlan, out: RunOutcome, hidden: Sequence[str]) -> RunResult:
        """A run the progress rule stopped: no eval, no metric; ``stopped_early_at`` among
        its metrics (the harness's own), and ``stopped_behind``, how far behind the
        incumbent's band it then was (``progress.behind``: the knobs proposer's estimate of
        where it would have ended). A readonly file it changed still makes it invalid."""
        rule, at = (plan.watch.rule if plan.watch is not None else None), out.stopped_early_at
        # its curve up to the point the rule stopped it at (points reported while it was killed come after)
        upto = [p for p in out.progress.get(rule.key, ()) if at is None or p[0] <= at] if rule is not None else []
        gap = behind(rule, upto) if rule is not None else None
        m = Measurement(None, {}, problem=out.stopped_reason)
        m = m.with_harness_metrics({"peak_rss_mb": out.peak_rss_mb, "stopped_early_at": out.stopped_early_at,
                                    "stopped_behind": gap})
        changed = self.readonly_changes(plan.workdir, skip=hidden)
        if changed:
            return RunResult(RunStatus.INVALID, f"readonly file(s) changed during the run: {', '.join(changed)}", m,
                             out, None, (), out.duration_s)
        return RunResult(RunStatus.STOPPED, out.stopped_reason, m, out, None, (), out.duration_s)

    def with_interpreter(self, reason: str, out: RunOutcome, ev: RunOutcome | None, plan: RunPlan, eval_dir: Path) -> str:
        """A failed phase started with ``python``: the reason names the Python it found on
        the run's PATH (on a Ray node the node's PATH decides: not known here)."""
        if not self.settings.wrap_here:
            return reason
        if out.exit_code not in (0, None):
            return with_interpreter(reason, self.settings.command(Phase.RUN), plan.spec.env, plan.workdir)
        if ev is not None and ev.exit_code not in (0, None):
            return with_interpreter(reason, self.settings.command(Phase.EVAL), plan.spec.env, eval_dir)
        return reason

    def with_data_hint(self, reason: str, *phases: tuple[RunOutcome | None, Path, bool]) -> str:
        """A crash on a file the user's checkout has and git does not: the reason says which
        ``[arena] data`` line provides it (``datafiles.data_hint``). ``phases``: (outcome,
        its directory, whether it is a run phase)."""
        import os

        prefix = self.ws.prefix
        for outcome, where, run_phase in phases:
            if outcome is None or outcome.exit_code == 0:
                continue
            tracked = self.ws.dirs.tracked(self.ws.dirs.top_of(where))

            def checkout(rel: str) -> str | None:
                path, full = self.ws.arena / rel, prefix + rel
                if full in tracked or any(t.startswith(full + "/") for t in tracked) or not os.path.lexists(path):
                    return None
                return "dir" if path.is_dir() else "file"

            hint = data_hint(outcome.log_tail, [str(where), os.path.realpath(where)], checkout, self.settings.data,
                             self.settings.eval_only if run_phase else ())
            if hint is not None:
                return f"{reason}. {hint}"
        return reason

    def readonly_changes(self, workdir: Path, skip: Sequence[str] = ()) -> list[str]:
        """Readonly files whose content differs from the campaign's base (``skip``: the
        eval_only files the harness removed from a run's directory itself)."""
        now = self.ws.dirs.hash_files(workdir, self.readonly)
        return [p for p, h in self.readonly.items() if now.get(p) != h and p not in skip]
