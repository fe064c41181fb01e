"""Which kept changes really matter: leave-one-out ablation of the final incumbent.

For every kept change K of the campaign's branch, the incumbent with K reverted (``git
revert`` of K's commit on top of the incumbent, in a scratch worktree) is measured with
``runs`` fresh seeds, next to the full incumbent and the baseline with the same seeds.
Fresh seeds (``runner.seed + 1000 + k``) on purpose: a change kept on a lucky draw of the
campaign's seeds must not be lucky again here.

Verdict per change, from a paired two-sided t-test of "without K" against "full" over the
shared seeds, at level ``alpha`` (the judge's) and the judge's ``min_effect``: **essential** (the metric is
significantly worse without it), **harmful** (significantly better without it), or
**neutral**. With one run per variant there is no test: the raw difference is reported
and the verdict says so. A change that does not revert cleanly on the final incumbent
(a later change rewrote the same lines) is reported as such and not measured.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, stdev
from typing import Any, Callable, Mapping, Sequence

from .campaign import CampaignLock
from .config import Config
from .ledger import Campaign, Ledger
from .metrics import measure
from .edits import apply_edits
from .errors import EditError
from .records import Experiment, FileEdit, Goal, Status
from .loop import build_run_spec
from .protocols import Runner
from .slots import Slot, cpu_count, parse_slots
from .stats import t_sf
from .workspace import GitError, Workspace, git

SEED_OFFSET = 1000


@dataclass(frozen=True)
class Variant:
    name: str                 # "full", "baseline", "without #K"
    removed: int | None       # the kept experiment reverted, for leave-one-out variants
    description: str
    commit: str | None
    problem: str = ""         # why it could not be built (does not revert cleanly)


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


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float, float | None, float | None]:
    """(mean of a[k] - b[k] over the seeds both have, 95 % half-width, two-sided p) by a
    paired t-test: every variant runs with the same seeds, so what a seed does to the
    metric cancels. Pure."""
    keys = sorted(set(a) & set(b))
    if not keys:
        return math.nan, None, None
    d = [a[k] - b[k] for k in keys]
    mean = fmean(d)
    if len(d) < 2:
        return mean, None, None
    sd = stdev(d)
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
    if p is None:
        word = "worse" if worse_without else "better"
        return Verdict(effect, None, None, f"{word} without it (1 run each: no test)" if effect else "no difference (1 run each)")
    if p < alpha and abs(effect) > min_effect:
        return Verdict(effect, ci, p, "essential" if worse_without else "harmful")
    return Verdict(effect, ci, p, "neutral")


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


def plan_variants(ws: Workspace, ledger: Ledger, campaign: Campaign, tip: str, chain: Sequence[Experiment],
                  editable: Sequence[str]) -> list[Variant]:
    """The full incumbent, the baseline, and the incumbent without each kept change: the
    change's own edits undone when they still occur as they were written, else ``git
    revert`` of its commit; neither working means it does not revert cleanly."""
    tag = campaign.tag
    variants = [Variant("full", None, "the final incumbent", tip),
                Variant("baseline", None, "the campaign's start", campaign.base_commit)]
    tip_files = ws.read_files(tip, tuple(editable))
    for e in chain:
        worktree = ws.checkout(tag, "ablate", tip)  # type: ignore[arg-type]
        stored = ledger.proposal(campaign, e.id)
        edits = [FileEdit(x["path"], x["search"], x["replace"]) for x in stored.get("edits", [])]
        new = reverted_files(tip_files, edits, editable)
        commit = None
        if new is not None:
            ws.write_files(worktree, new)
            commit = ws.commit(worktree, sorted(new), f"autoresearch ablation: without #{e.id}")
        else:
            try:
                git(["revert", "--no-edit", "--no-verify", e.commit], worktree)  # type: ignore[list-item]
                commit = git(["rev-parse", "HEAD"], worktree).stdout.decode().strip()
            except GitError:
                git(["revert", "--abort"], worktree, check=False)
        if commit is None:
            variants.append(Variant(f"without #{e.id}", e.id, e.description, None,
                                    "does not revert cleanly on the final incumbent (a later change touched the same lines)"))
            continue
        ws.update_ref(f"refs/autoresearch/{tag}/ablation/{e.id}", commit, message=f"autoresearch: ablation without #{e.id}")
        variants.append(Variant(f"without #{e.id}", e.id, e.description, commit))
    return variants


@dataclass
class AblationResult:
    variants: list[Variant]
    samples: dict[str, dict[int, float]]
    problems: dict[str, list[str]]
    rows: list[dict[str, Any]]


def run_ablation(arena: Path, ledger: Ledger, campaign: Campaign, config: Config, *, runs: int,
                 report: Callable[[str], None] = lambda s: None, base_env: Mapping[str, str] | None = None) -> AblationResult:
    import os

    ws = Workspace(arena)
    lock = CampaignLock(ws.state_dir, campaign.tag)
    lock.acquire()
    try:
        tip = ws.resolve(f"refs/heads/{campaign.branch}") or campaign.base_commit
        chain = kept_chain(ledger.experiments(campaign), tip, ws)
        variants = plan_variants(ws, ledger, campaign, tip, chain, config.arena.editable)
        slots = parse_slots(config.runner.slots, cpu_count())
        jobs = [(v, k) for k in range(runs) for v in variants if v.commit is not None]
        samples: dict[str, dict[int, float]] = {v.name: {} for v in variants}
        problems: dict[str, list[str]] = {v.name: [] for v in variants}
        lock_ = threading.Lock()
        env0 = dict(os.environ if base_env is None else base_env)
        from .api import make_runner

        runner = make_runner(config)  # the campaign's runner: local, or the same Ray cluster
        log_dir = ws.state_dir / campaign.tag / "ablation"

        errors: list[BaseException] = []

        def worker(slot: Slot) -> None:
            while True:
                with lock_:
                    if not jobs or errors:
                        return
                    v, k = jobs.pop(0)
                try:
                    value, problem = _measure_once(ws, runner, config, campaign, slot, v, k, log_dir, env0)
                except BaseException as e:  # re-raised in the caller's thread
                    with lock_:
                        errors.append(e)
                    return
                with lock_:
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
        goal = Goal(campaign.goal)
        rows = []
        full = samples["full"]
        for v in variants:
            values = samples[v.name]
            row: dict[str, Any] = {"variant": v.name, "experiment_id": v.removed, "description": v.description,
                                   "commit": v.commit, "runs": [values[k] for k in sorted(values)],
                                   "mean": fmean(values.values()) if values else None,
                                   "problem": v.problem or "; ".join(sorted(set(problems[v.name])))}
            if v.removed is not None:
                if v.commit is None:
                    verdict = Verdict(None, None, None, "does not revert cleanly")
                else:
                    verdict = judge_change(values, full, goal, config.judge.alpha, config.judge.min_effect)
                row.update(effect=verdict.effect, ci=verdict.ci, p_value=verdict.p_value, verdict=verdict.verdict)
            rows.append(row)
        ledger.add_ablation(campaign, runs=runs, rows=rows)
        return AblationResult(variants, samples, problems, rows)
    finally:
        lock.release()


def _measure_once(ws: Workspace, runner: Runner, config: Config, campaign: Campaign, slot: Slot, v: Variant,
                  k: int, log_dir: Path, base_env: Mapping[str, str]) -> tuple[float | None, str]:
    cfg = config.arena
    assert v.commit is not None
    name = f"ablate-{slot.index}"
    worktree = ws.checkout(campaign.tag, name, v.commit)  # type: ignore[arg-type]
    ws.hide_files(worktree, cfg.eval_only)
    safe = v.name.replace(" ", "-").replace("#", "")
    outs = {}
    top = ws.worktree_path(campaign.tag, name)  # type: ignore[arg-type]
    for phase, command, timeout in (("run", cfg.run, cfg.hard_timeout_s), ("eval", cfg.eval, cfg.hard_eval_timeout_s)):
        if command is None:
            continue
        if phase == "eval":  # as in a campaign: the evaluator as committed, in a worktree of its own
            worktree, _, _ = ws.prepare_eval(campaign.tag, name, worktree)
            top = ws.worktree_path(campaign.tag, f"eval-{name}")  # type: ignore[arg-type]
        spec = build_run_spec(
            config, ws, slot=slot, worktree_top=top, worktree=worktree,
            phase=phase, command=command, timeout=timeout, seed=config.runner.seed + SEED_OFFSET + k,
            exp_id=v.removed if v.removed is not None else -1, attempt=1,
            result_file=log_dir / "results" / f"{safe}-r{k}-{phase}.json", log_path=log_dir / f"{safe}-r{k}-{phase}.log",
            base_env=base_env,
        )
        out = runner.start(spec).wait()
        outs[phase] = out
        if out.infra:
            return None, f"{phase}: infrastructure failure: {out.infra}"
        if out.timed_out:
            return None, f"{phase} timed out"
        if out.exit_code != 0:
            return None, f"{phase} exited with code {out.exit_code}"
    run, ev = outs["run"], outs.get("eval")
    m = measure(campaign.metric, run_output=Path(run.log_path).read_text(errors="replace"), run_json=run.result_json,
                eval_output=Path(ev.log_path).read_text(errors="replace") if ev else None,
                eval_json=ev.result_json if ev else None, eval_configured=bool(cfg.eval))
    return m.metric, m.problem
