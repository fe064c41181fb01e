"""Honest budgets: the harness exports AUTORESEARCH_TIME_BUDGET, but only a script that
reads it stops there. Two checks say so, with the fix: at the start, a budget the script
cannot see (it imports its own from a readonly file, as karpathy's ``train.py`` does from
``prepare.py``); and once per campaign, runs that took clearly longer than the budget
(nanoGPT's length is set by ``max_iters``). Pure (numbers and file texts in, words out),
but for ``checkout_budget_note``, which reads the user's checkout for ``run --dry-run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..records import OVERRUN_MARK
from ..survey import BUDGET_ENV, budget_from_readonly, length_settings

# A run "overran" only past both margins: 1.5 x is far beyond the jitter of a script that
# stops at its budget (karpathy's 300 s runs take ~326 s with start-up and evaluation),
# and 10 s covers the start-up of a short run (Python and torch take ~2-3 s to import; a
# CUDA context and the first compile take more, and are outside most training clocks).
OVERRUN_FACTOR = 1.5
OVERRUN_SLACK_S = 10.0


def overran(duration_s: float, budget_s: float) -> bool:
    """Whether a run took clearly longer than its time budget."""
    return duration_s > OVERRUN_FACTOR * budget_s and duration_s > budget_s + OVERRUN_SLACK_S


def allowance_s(budget_s: float, baseline_s: float | None) -> float:
    """How long a candidate's run may take before it counts as buying more compute: the time
    budget, or the baseline's longest run where that is longer (a script that decides its
    own length; the overrun note says so once)."""
    return max(budget_s, baseline_s or 0.0)


def over_allowance_reason(duration_s: float, budget_s: float, baseline_s: float | None) -> str:
    """Why a candidate whose run took clearly longer than ``allowance_s`` is invalid."""
    base = "" if baseline_s is None else f" and the baseline's longest run {_seconds(baseline_s)}"
    return (f"{OVERRUN_MARK} the run (with its eval) took {_seconds(duration_s)}, where the time budget is "
            f"{_seconds(budget_s)}{base}: "
            "the change buys more compute than the budget gives (more steps, epochs or a larger model), so its "
            "metric is no fair comparison and it is not judged, and the same code is not tried again in this campaign. "
            "If runs may take that long, raise --time-budget (or [arena] time_budget_s) in a new campaign (--tag NEW); "
            "if a knob sets the run's length, freeze it ([proposer.knobs] freeze).")


BUSY_SLOWDOWN = 3.0  # how much slower than its load per CPU a busy machine may make a run (memory, disk, caches)
BUSY_MARK = "busy machine:"  # (not OVERRUN_MARK: the campaign's one overrun note, with its fix, still comes)


def busy(load: float, cpus: int, per_cpu: float, duration_s: float = 0.0, allowed_s: float = 0.0) -> bool:
    """Whether the machine was too busy for a run's wall time to judge its code: the 1-minute
    load average above ``per_cpu`` per CPU (``[runner] busy_load``, 1.5 by default; 0: never
    busy), and the run no longer than such a load can explain: ``BUSY_SLOWDOWN`` times
    ``allowed_s`` times the load per CPU (a run 10 times over on a machine 1.5 times busy is
    still over: a review; the newcomer's trial that asked for this: a 12 s candidate took 65 s,
    allowed 15 s, at a load of 2 per CPU, while another session's tests ran). Pure."""
    share = load / max(1, cpus)
    return per_cpu > 0 and share > per_cpu and (not allowed_s or duration_s <= BUSY_SLOWDOWN * allowed_s * share)


def busy_note(duration_s: float, budget_s: float, baseline_s: float | None, load: float, cpus: int) -> str:
    """What a candidate's run far over its allowance on a busy machine gets instead of invalid."""
    base = "" if baseline_s is None else f", the baseline's longest run {_seconds(baseline_s)}"
    return (f"{BUSY_MARK} the run (with its eval) took {_seconds(duration_s)} (time budget {_seconds(budget_s)}"
            f"{base}), but the machine was busy (load {load:.1f} on {cpus} CPUs), so its time says little about "
            "the change: judged as usual")


def noted_before(warnings: Iterable[Sequence[str]]) -> bool:
    """Whether an earlier run of the campaign already carries the overrun note (resume)."""
    return any(w.startswith(OVERRUN_MARK) for ws in warnings for w in ws)


def _seconds(x: float) -> str:
    return f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"


def overrun_note(*, exp_id: int, duration_s: float, budget_s: float, files: Mapping[str, str | None],
                 timeout_s: float) -> str:
    """The one note a campaign gets when a run overran, with what to do about it.
    ``files``: the editable files of the code that ran."""
    head = (f"{OVERRUN_MARK} a run of #{exp_id} took {_seconds(duration_s)} on a {_seconds(budget_s)} time budget "
            f"(hard timeout {_seconds(timeout_s)}).")
    if any(BUDGET_ENV in (text or "") for text in files.values()):
        return (f"{head} The code reads {BUDGET_ENV}, so start-up and evaluation outside its training clock "
                f"take about {_seconds(duration_s - budget_s)}: count them in when you choose --time-budget, and "
                "make sure the script stops training when the budget is spent. Said once per campaign.")
    names = ", ".join(files) or "the run command"
    texts = {k: v for k, v in files.items() if v is not None}
    lengths = ", ".join(f"{name} in {path}" for name, (_, path) in length_settings(texts, list(texts)).items())
    return (f"{head} Nothing in {names} reads {BUDGET_ENV}, so the script decides its own length (a step "
            f"or epoch count). Fix one of: make it stop after {BUDGET_ENV} seconds; raise --time-budget (or "
            "[arena] time_budget_s) to what a run really takes; or set the script's own length "
            f"({lengths or 'its step or epoch count'}) so that a run fits the budget. Said once per campaign.")


def unseen_budget_note(files: Mapping[str, str | None], editable: Sequence[str], readonly: Sequence[str],
                       budget_s: float) -> str | None:
    """A warning at the start when the configured budget is not the one the script will
    use: it imports its own from a readonly file and never reads AUTORESEARCH_TIME_BUDGET."""
    found = budget_from_readonly({k: v for k, v in files.items() if v is not None}, editable, readonly)
    if found is None:
        return None
    script, source, name, value = found
    if value == budget_s:
        return None
    module = source[:-3].replace("/", ".")
    return (f"time budget: runs get {BUDGET_ENV}={budget_s:g}, but {script} takes {name} = {value:g} from {source} "
            f"(readonly) and never reads {BUDGET_ENV}, so each run still trains {value:g} s. To use {budget_s:g} s, "
            f"commit to {script}, after `from {module} import ... {name}`: "
            f"`{name} = float(os.environ.get(\"{BUDGET_ENV}\", {name}))` (with `import os`); or keep the budget at "
            f"{value:g} s (no --time-budget; [arena] time_budget_s = {value:g}) so that the harness expects what the "
            "runs do.")


def checkout_budget_note(arena: Path, table: Any) -> list[str]:
    """``unseen_budget_note`` for the files in the user's checkout (``run --dry-run``);
    ``table``: the config's ``[arena]``."""
    files: dict[str, str | None] = {}
    for rel in (*table.editable, *table.readonly):
        path = arena / rel
        if rel.endswith(".py") and path.is_file() and path.stat().st_size <= 1 << 20:
            files[rel] = path.read_text(encoding="utf-8", errors="replace")
    note = unseen_budget_note(files, table.editable, table.readonly, table.time_budget_s)
    return [note] if note is not None else []
