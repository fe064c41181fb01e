"""Which kept changes really matter: leave-one-out ablation of the final incumbent.

For every kept change K of the campaign's branch, the incumbent with K reverted (K's own
edits undone, or a three-way revert of K's commit on top of the incumbent) is measured with
``runs`` fresh seeds, next to the full incumbent and the baseline with the same seeds.
Fresh seeds (``runner.seed + 1000 + k``) on purpose: a change kept on a lucky draw of the
campaign's seeds must not be lucky again here.

Verdict per change, from a paired two-sided t-test of "without K" against "full" over the
shared seeds, at level ``alpha`` (the judge's) and the judge's ``min_effect``: **essential** (the metric is
significantly worse without it), **harmful** (significantly better without it), or
**neutral**. With one run per variant there is no test: the raw difference is reported
and the verdict says so. A change that does not revert cleanly on the final incumbent
(a later change rewrote the same lines) is reported as such and not measured.

A knobs experiment is a set of values, not a text patch: its variant sets the knobs it
changed back to their values before it, one knob at a time (``ablate_knobs.py``), so a
knob tuned by several kept experiments still gives each of them a variant. One whose
every knob was set again later is *superseded* (the final incumbent holds none of its
values) and not measured.

The settings are the campaign's (``campaign_config.py``: the config recorded when it
started, command-line overrides included) unless ``ablate``'s own command line overrides
them. With no kept change nothing is run; Ctrl-C stops the runs and records nothing.

Every variant run goes through the campaign's execution path (``engine/execution.py``):
readonly files are checked, the eval runs in its own directory, an evaluator's refusal
makes the run invalid, and the run's status and reason are reported as in a campaign.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, stdev
from typing import Any, Callable, Iterable, Mapping, Sequence

from .ablate_knobs import KnobHistory, is_knobs_experiment, revert_knobs
from .config import Config
from .edits import apply_edits
from .engine.execution import Execution, Judged
from .engine.guard import Guard
from .engine.journal import Journal
from .engine.opening import CampaignLock
from .errors import EditError
from .metrics import printed_tolerance
from .records import Experiment, FileEdit, Goal, Purpose, RunStatus, Status
from .runs.spec import run_settings
from .slots import Slot, cpu_count, parse_slots
from .stats import t_sf
from .store.gitobjects import git
from .store.ledger import Campaign, Ledger
from .store.workspace import Workspace

SEED_OFFSET = 1000


@dataclass(frozen=True)
class Variant:
    name: str                 # "full", "baseline", "without #K"
    removed: int | None       # the kept experiment reverted, for leave-one-out variants
    description: str
    commit: str | None
    problem: str = ""         # why it could not be built (does not revert cleanly), or is not measured
    verdict: str = ""         # for a variant not measured: "does not revert cleanly" | "superseded"
    note: str = ""            # what the variant sets back (knobs experiments)
    same_as: str = ""         # a variant whose code is another's (the baseline): its runs are that one's


@dataclass(frozen=True)
class Verdict:
    effect: float | None      # mean(without) - mean(full): what removing the change does to the metric
    ci: float | None          # half-width of the 95 % interval (None with one run)
    p_value: float | None
    verdict: str              # essential | harmful | neutral | "not measured"


def _t_quantile(df: float, tail: float = 0.025) -> float:
    lo, hi = 0.0, 100.0
    for _ in range(60):  # bisection on the survival function
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf(mid, df) > tail else (lo, mid)
    return hi


def resolution(values: Iterable[float]) -> float:
    """The step the values were printed to: that of the one printed finest (0.9896 and
    0.9902: 1e-4; 1500 and 2000: 1), read as ``metrics.printed_tolerance`` reads a printed
    number; 0 where there are no finite values. Pure."""
    steps = [2 * printed_tolerance(f"{v:.15g}") for v in values if math.isfinite(v)]
    return min(steps, default=0.0)


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float, float | None, float | None]:
    """(mean of a[k] - b[k] over the seeds both have, 95 % half-width, two-sided p) by a
    paired t-test: every variant runs with the same seeds, so what a seed does to the
    metric cancels. A difference is known only to the digits the run printed: its sd is at
    least their rounding's (step q: each value within q/2, uniformly, so a difference's sd
    is q/sqrt(6); a trial's 2 seeds each 0.0006 better at 4 decimals had read as p = 6e-14).
    Pure."""
    keys = sorted(set(a) & set(b))
    if not keys:
        return math.nan, None, None
    d = [a[k] - b[k] for k in keys]
    mean = fmean(d)
    if len(d) < 2:
        return mean, None, None
    sd = max(stdev(d), resolution([a[k] for k in keys] + [b[k] for k in keys]) / math.sqrt(6))
    if sd == 0:
        return mean, 0.0, (1.0 if mean == 0 else 0.0)
    se = sd / math.sqrt(len(d))
    df = len(d) - 1
    return mean, _t_quantile(df) * se, min(1.0, 2 * t_sf(abs(mean / se), df))


def judge_change(without: Mapping[int, float], full: Mapping[int, float], goal: Goal, alpha: float,
                 min_effect: float) -> Verdict:
    """The verdict on one kept change from the runs without it and of the full incumbent
    (seed index -> metric). Pure."""
    if not set(without) & set(full):
        return Verdict(None, None, None, "not measured")
    effect, ci, p = paired(without, full)
    worse_without = effect > 0 if goal is Goal.MINIMIZE else effect < 0
    same = len(set(without.values())) == 1 and len(set(full.values())) == 1  # the seeds changed nothing
    # (the same difference on every seed, where the values vary, is a paired test working: the
    # seed's noise cancels, as in the synthetic arena; only values that never vary say nothing)
    if p is None or same:  # one run each; or a test of ±0 that would call any difference certain
        word, why = "worse" if worse_without else "better", "1 run each" if p is None else "the same value on every seed"
        return Verdict(effect, None, None, f"{word} without it ({why}: no test)" if effect else f"no difference ({why})")
    if p < alpha and abs(effect) > min_effect:
        return Verdict(effect, ci, p, "essential" if worse_without else "harmful")
    return Verdict(effect, ci, p, "neutral")


def net_verdict(baseline: Mapping[int, float], full: Mapping[int, float], goal: Goal, alpha: float,
                min_effect: float) -> Verdict:
    """Does the campaign's improvement hold on fresh seeds? The final incumbent against the
    baseline, paired over the seeds: "holds", "not confirmed" or "worse than the baseline". Pure."""
    v = judge_change(baseline, full, goal, alpha, min_effect)
    words = {"essential": "holds", "harmful": "worse than the baseline", "neutral": "not confirmed"}
    if v.verdict in words:
        return Verdict(v.effect, v.ci, v.p_value, words[v.verdict])
    return v


def kept_chain(history: Sequence[Experiment], tip: str, ws: Workspace) -> list[Experiment]:
    """Kept experiments (baseline excluded) whose commits are on the branch, oldest first."""
    return [e for e in history if e.id > 0 and e.status is Status.KEEP and e.commit and ws.is_ancestor(e.commit, tip)]


def reverted_files(files: Mapping[str, str | None], edits: Sequence[FileEdit], editable: Sequence[str]) -> dict[str, str] | None:
    """The files with a change's edits undone (each REPLACE found exactly once and put back
    to its SEARCH text, last edit first), or None when they no longer occur. Pure."""
    undo = [FileEdit(e.path, e.replace, e.search) for e in reversed(edits) if e.replace]
    if not undo:
        return None
    try:
        return apply_edits(files, undo, editable)
    except EditError:
        return None


def three_way_revert(ws: Workspace, tip: str, commit: str, editable: Sequence[str]) -> dict[str, str] | None:
    """The editable files of ``tip`` with ``commit``'s change undone by a three-way merge per
    file (what ``git revert`` does: base = the commit, theirs = its parent), or None when a
    merge conflicts."""
    parent = ws.objects.read(commit)[1].split(b"\nparent ", 1)
    if len(parent) < 2:
        return None
    parent_sha = parent[1][:2 * ws.objects.hash_len].decode()
    mine, base, theirs = (ws.read_files(c, tuple(editable)) for c in (tip, commit, parent_sha))
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ar-revert-") as d:
        for path in editable:
            if base.get(path) == theirs.get(path):
                continue
            texts = [mine.get(path) or "", base.get(path) or "", theirs.get(path) or ""]
            names = []
            for i, text in enumerate(texts):
                f = Path(d) / f"{i}"
                f.write_text(text, encoding="utf-8")
                names.append(str(f))
            proc = git(["merge-file", "-p", *names], Path(d), check=False)
            if proc.returncode != 0:
                return None
            out[path] = proc.stdout.decode("utf-8", errors="replace")
    return out or None


def plan_variants(ws: Workspace, ledger: Ledger, journal: Journal, campaign: Campaign, tip: str,
                  chain: Sequence[Experiment], editable: Sequence[str], net_only: bool = False) -> list[Variant]:
    """The full incumbent, the baseline, and the incumbent without each kept change. A knobs
    experiment's knob values are set back one at a time (``ablate_knobs``); any other
    change has its own edits undone when they still occur as they were written, else a
    three-way revert of its commit; neither working means it does not revert cleanly."""
    variants = [Variant("full", None, "the final incumbent", tip),
                Variant("baseline", None, "the campaign's start", campaign.base_commit)]
    if net_only:
        return variants
    tip_files = ws.read_files(tip, tuple(editable))
    base_files = ws.read_files(campaign.base_commit, tuple(editable))
    history = KnobHistory(ws, editable)
    for i, e in enumerate(chain):
        name, note, change = f"without #{e.id}", "", e.description
        if is_knobs_experiment(e):
            back = revert_knobs(history, tip, e, chain[i + 1:])
            if back.files is None:
                verdict = "superseded" if back.superseded else "does not revert cleanly"
                variants.append(Variant(name, e.id, e.description, None, back.problem, verdict))
                continue
            new, note = back.files, f"sets back {back.summary}"
            if back.superseded:  # only some of its knobs: the change column says which (a trial's report listed all)
                change = note
        else:
            edits = stored_edits(ledger.proposal(campaign, e.id))
            new = reverted_files(tip_files, edits, editable) or three_way_revert(ws, tip, e.commit, editable)  # type: ignore[arg-type]
        if new is None or all(tip_files.get(p) == t for p, t in new.items()):
            variants.append(Variant(name, e.id, e.description, None, "does not revert cleanly on the final incumbent "
                                    "(a later change touched the same lines)", "does not revert cleanly"))
            continue
        if all(base_files.get(p) == t for p, t in {**tip_files, **new}.items()):
            variants.append(Variant(name, e.id, change, None, note="the baseline's code (the only kept "
                                    "change): measured as the baseline", same_as="baseline"))
            continue
        commit = ws.commit_files(tip, new, f"autoresearch ablation: without #{e.id}")
        journal.ablation_variant(e.id, commit)
        variants.append(Variant(name, e.id, change, commit, note=note))
    return variants


def stored_edits(stored: Mapping[str, Any]) -> list[FileEdit]:
    return [FileEdit(x["path"], x["search"], x["replace"]) for x in stored.get("edits", [])]


@dataclass
class AblationResult:
    variants: list[Variant]
    samples: dict[str, dict[int, float]]
    problems: dict[str, list[str]]
    rows: list[dict[str, Any]]
    kept: int = 0                 # kept changes on the branch (0: nothing to ablate, nothing was run)
    planned: int = 0              # runs planned
    finished: int = 0             # runs that finished (with a value or a problem)
    interrupted: bool = False     # stopped before the end: nothing was recorded in the ledger


def run_ablation(arena: Path, ledger: Ledger, campaign: Campaign, config: Config, *, runs: int,
                 report: Callable[[str], None] = lambda s: None, base_env: Mapping[str, str] | None = None,
                 stop: threading.Event | None = None, net_only: bool = False) -> AblationResult:
    """Plan, measure and record the ablation. With no kept change nothing is run; when
    ``stop`` is set (Ctrl-C) the runs in progress are stopped, no new one starts, and
    nothing is recorded (the result says how far it got)."""
    from .api import make_runner

    stop = stop if stop is not None else threading.Event()
    ws = Workspace(arena)
    lock = CampaignLock(ws.state_dir, campaign.tag)
    lock.acquire()
    try:
        journal = Journal(ledger, ws, campaign)
        tip = ws.resolve(f"refs/heads/{campaign.branch}") or campaign.base_commit
        chain = kept_chain(ledger.experiments(campaign), tip, ws)
        if not chain:
            return AblationResult([], {}, {}, [])
        variants = plan_variants(ws, ledger, journal, campaign, tip, chain, config.arena.editable, net_only)
        for v in variants:
            if v.removed is not None:
                report(f"{v.name:<14} {v.note or v.problem or 'reverts its edits'}")
        execution = _execution(ws, campaign, config, make_runner(config, ws), base_env, stop)
        report(f"run logs: {execution.out_dir / 'logs'}")
        guard = Guard(journal, sandboxed=execution.settings.sandbox_paths is not None, note=report, data=execution.data)
        try:
            samples, problems = _measure_all(execution, variants, parse_slots(config.runner.slots, cpu_count()), runs,
                                             report, guard)
        finally:
            guard.check()
            guard.close()
        planned = runs * sum(v.commit is not None for v in variants)
        finished = sum(len(x) for x in samples.values()) + sum(len(x) for x in problems.values())
        rows = _rows(variants, samples, problems, Goal(campaign.goal), config)
        if stop.is_set():
            return AblationResult(variants, samples, problems, rows, len(chain), planned, finished, interrupted=True)
        journal.ablation_recorded(runs, rows)
        return AblationResult(variants, samples, problems, rows, len(chain), planned, finished)
    finally:
        lock.release()
        ws.close()


def _execution(ws: Workspace, campaign: Campaign, config: Config, runner: Any,
               base_env: Mapping[str, str] | None, stop: threading.Event) -> Execution:
    settings = run_settings(config)
    m = config.metric
    readonly = {p: campaign.readonly.get(p) for p in config.arena.readonly}
    return Execution(settings, runner, ws, tag=campaign.tag, out_dir=next_dir(ws.state_dir / campaign.tag / "ablation"),
                     judged=Judged(campaign.metric, m.min, m.max, settings.limits.disk_mb, settings.limits.memory_mb,
                                   settings.run_timeout_s, settings.eval_timeout_s, m.pattern, dict(m.patterns)),
                     readonly=readonly, base_env=dict(os.environ if base_env is None else base_env),
                     stop=stop, dir_prefix="ablate-")


def next_dir(root: Path) -> Path:
    """The first of ``root/1``, ``root/2``, ... not there yet: each ablation's logs of its own
    (a second one overwrote the first's: a newcomer's trial)."""
    n = 1
    while (root / str(n)).exists():
        n += 1
    return root / str(n)


def _measure_all(execution: Execution, variants: list[Variant], slots: list[Slot], runs: int,
                 report: Callable[[str], None], guard: Guard) -> tuple[dict[str, dict[int, float]], dict[str, list[str]]]:
    """Every variant ``runs`` times with the same fresh seeds, spread over the slots; a run
    live while something was tampered with counts as a problem, not a value."""
    jobs = [(v, k) for k in range(runs) for v in variants if v.commit is not None]
    samples: dict[str, dict[int, float]] = {v.name: {} for v in variants}
    problems: dict[str, list[str]] = {v.name: [] for v in variants}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(slot: Slot) -> None:
        while True:
            with lock:
                if not jobs or errors or execution.stop.is_set():
                    return
                v, k = jobs.pop(0)
                key = len(variants) * k + variants.index(v)
                guard.started(key)
            try:
                value, problem = measure_variant(execution, slot, v, k)
            except BaseException as e:  # re-raised in the caller's thread
                with lock:
                    guard.finished(key)
                    errors.append(e)
                return
            with lock:
                tampered = guard.finished(key)
                if execution.stop.is_set() and value is None:
                    return  # stopped by Ctrl-C: not a result
                if tampered is not None:
                    value, problem = None, f"invalid: {tampered}"
                if value is not None:
                    samples[v.name][k] = value
                else:
                    problems[v.name].append(problem)
                report(f"{v.name:<14} run {k + 1}/{runs}: {'-' if value is None else f'{value:.6g}'}"
                       + (f" ({problem})" if problem else ""))

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in slots[: max(1, len(jobs))]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return samples, problems


def measure_variant(execution: Execution, slot: Slot, v: Variant, k: int) -> tuple[float | None, str]:
    """One run of a variant with fresh seed k: its metric, or why there is none."""
    assert v.commit is not None
    workdir = execution.checkout(slot, v.commit)
    stem = v.name.replace(" ", "-").replace("#", "") + f"-r{k}"
    plan = execution.plan(slot, exp_id=v.removed if v.removed is not None else -1, attempt=1, k=k,
                          purpose=Purpose.ABLATION, workdir=workdir, commit=v.commit, stem=stem,
                          seed=execution.settings.seed + SEED_OFFSET + k)
    r = execution.run(plan)
    if r.status is RunStatus.OK:
        return r.measurement.metric, ""
    return None, f"{r.status.value}: {r.reason}"


def _rows(variants: list[Variant], samples: Mapping[str, dict[int, float]], problems: Mapping[str, list[str]],
          goal: Goal, config: Config) -> list[dict[str, Any]]:
    rows = []
    full = samples["full"]
    for v in variants:
        values = samples[v.same_as or v.name]
        row: dict[str, Any] = {"variant": v.name, "experiment_id": v.removed, "description": v.description,
                               "commit": v.commit, "runs": [values[k] for k in sorted(values)],
                               "mean": fmean(values.values()) if values else None,
                               "problem": v.problem or "; ".join(sorted(set(problems[v.name])))}
        if v.note:
            row["note"] = v.note
        if v.name == "baseline":
            net = net_verdict(values, full, goal, config.judge.alpha, config.judge.min_effect)
            row.update(effect=net.effect, ci=net.ci, p_value=net.p_value, verdict=net.verdict)
        if v.removed is not None:
            if v.commit is None and not v.same_as:
                verdict = Verdict(None, None, None, v.verdict or "does not revert cleanly")
            else:
                verdict = judge_change(values, full, goal, config.judge.alpha, config.judge.min_effect)
            row.update(effect=verdict.effect, ci=verdict.ci, p_value=verdict.p_value, verdict=verdict.verdict)
        rows.append(row)
    return rows
