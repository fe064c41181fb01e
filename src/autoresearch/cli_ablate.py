"""What ``autoresearch ablate`` prints, and what Ctrl-C does to it (the command itself is in
``cli.py``; the ablation in ``ablate.py``)."""

from __future__ import annotations

import signal
import threading
from typing import Any, Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .console import safe
from .errors import ForcedStop


class AblationStop:
    """Ctrl-C / SIGTERM during ``ablate``: the runs in progress are stopped and no new one
    starts (``event``); a second Ctrl-C stops at once."""

    def __init__(self, err_console: Console) -> None:
        self.err_console = err_console
        self.event = threading.Event()
        self.signum = signal.SIGINT

    def on_signal(self, signum: int, frame: Any) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise ForcedStop("ablation stopped at once by a second Ctrl-C; nothing was recorded")
        self.signum = signum
        self.event.set()
        self.err_console.print(f"stopping ({self.name}): the runs in progress are stopped", markup=False)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 130 if self.signum == signal.SIGINT else 143


def verdict_text(r: Mapping[str, Any]) -> str:
    """The verdict column: a verdict, and for a variant not measured, why. Pure."""
    verdict, problem = r.get("verdict") or "", r.get("problem") or ""
    if not verdict:
        return problem
    if problem and r.get("effect") is None:
        return problem if problem.startswith(verdict) else f"{verdict}: {problem}"
    return verdict


def removal_words(effect: float | None, ci: float | None, goal: str) -> str:
    """What removing a change does to the metric, in words: "0.3 worse ± 0.02". Pure."""
    if effect is None:
        return "-"
    if effect == 0:
        return "no change"
    worse = effect > 0 if goal == "minimize" else effect < 0
    return f"{abs(effect):.4g} {'worse' if worse else 'better'}" + (f" ± {ci:.2g}" if ci is not None else "")


def ablation_table(rows: Sequence[Mapping[str, Any]], campaign: Any) -> Table:
    leave_one_out = any(str(r.get("variant", "")).startswith("without") for r in rows)
    title = "leave-one-out ablation" if leave_one_out else "the final incumbent against the baseline"  # --net: no variants
    table = Table(title=f"{title} ({campaign.metric}, {campaign.goal})")
    for col in ("variant", "change", "mean", "effect when removed (95 % CI)", "p", "verdict"):
        table.add_column(col)
    for r in rows:
        eff = removal_words(r.get("effect"), r.get("ci"), campaign.goal)
        table.add_row(escape(r["variant"]), safe(r["description"]), "-" if r["mean"] is None else f"{r['mean']:.6g}", eff,
                      "-" if r.get("p_value") is None else f"{r['p_value']:.3g}", safe(verdict_text(r)))
    return table


def net_line(rows: Sequence[Mapping[str, Any]], campaign: Any, runs: int) -> str:
    """What holds of the campaign's gain, in one line: the final incumbent against the
    baseline on fresh seeds, with its interval. Pure."""
    full = next((r for r in rows if r["variant"] == "full"), None)
    base = next((r for r in rows if r["variant"] == "baseline"), None)
    if full is None or base is None or full.get("mean") is None or base.get("mean") is None:
        return ("net: not measured (the final incumbent or the baseline has no value: its runs failed, see above, "
                "or were not run: an interrupted ablation)")
    if base.get("effect") is None:
        return "net: not measured (no seed on which both the final incumbent and the baseline ran)"
    gain = base["effect"] if campaign.goal == "minimize" else -base["effect"]  # how much better the incumbent is
    pct = f" ({100 * gain / abs(base['mean']):.2f} %)" if base["mean"] else ""
    interval = f", 95 % interval ±{base['ci']:.3g}, p = {base['p_value']:.3g}" if base.get("ci") is not None else ""
    word = "better" if gain >= 0 else "worse"
    if seedless(full.get("runs"), base.get("runs")):  # an interval of ±0 and p = 0 would say nothing
        interval, verdict = "", SEEDLESS
    elif base.get("p_value") is None:  # one run each
        verdict = "one run each: no test (use --runs 3 or more)"
    else:
        verdict = {"holds": "the improvement holds",
               "not confirmed": "the improvement is not confirmed (within the noise of these runs)",
                   "worse than the baseline": "the final incumbent is worse than the baseline"}.get(
                       base.get("verdict"), base.get("verdict") or "")
    return (f"net, {runs} fresh seed(s) each: {campaign.metric} {full['mean']:.6g} (final incumbent) vs "
            f"{base['mean']:.6g} (baseline): {abs(gain):.4g}{pct} {word}{interval}: {verdict}")


SEEDLESS = ("no verdict: every run of each gave the same value whatever its seed: either the result does not depend "
            "on chance, or the script ignores its seed (does it read AUTORESEARCH_SEED? a fixed torch.manual_seed(1) "
            "does this), and then this check cannot tell a real gain from a lucky seed")


def seedless(*runs: Any) -> bool:
    """Whether each list of values (one per fresh seed, two at least) is one value repeated:
    the fresh seeds changed nothing (a newcomer's trial: a script with a fixed seed, and
    "the improvement holds" with an interval of ±0). Pure."""
    return all(isinstance(r, list) and len(r) >= 2 and len(set(r)) == 1 for r in runs)
