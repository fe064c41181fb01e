"""What the CLI prints: the effective config, a campaign's summary and status table."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .config import Config
from .records import Goal, Status, over_budget

ALL_STOPPED = 3  # candidate runs, every one stopped early, from which the summary says what to change
MOSTLY_CRASHED = 3  # candidates, more than half of them crashed, timed out or ran far over budget: the summary says so


STATS_LEGEND = ("± se: the standard error of the mean over its runs; p: the confirm judge's one-sided test that it "
                "beats its parent (a keep needs it below alpha / 2 at each look, 0.025 by default, and a second run; near 1: worse)")
CUT_NOTE = "descriptions cut to the terminal's width: `autoresearch status --json` and the report have them whole"
RANDOM_SEED = "# seed = (drawn at random when the campaign starts, then printed and recorded; --seed N fixes it)"


def print_config(console: Console, config: Config, source: str, overrides: dict[str, Any],
                 drawn: frozenset[str] = frozenset()) -> None:
    """The effective config as TOML; the dotted keys in ``drawn`` (the seeds a new campaign
    draws at random) are said so, not shown as the 0 they hold until then."""
    console.print(f"# effective config (source: {source}" + (f"; command-line overrides: {', '.join(sorted(overrides))}" if overrides else "") + ")")
    data = config.model_dump(mode="json")
    data["arena"]["timeout_s"] = config.arena.hard_timeout_s
    data["arena"]["eval_timeout_s"] = config.arena.hard_eval_timeout_s if config.arena.eval else None

    notes = setting_notes(data)

    def line(path: str, key: str, value: Any) -> None:
        if f"{path}.{key}" in drawn:
            console.print(RANDOM_SEED, markup=False)
        elif value is not None:
            note = notes.get(f"{path}.{key}")
            console.print(f"{key} = {json.dumps(value)}" + (f"  # {note}" if note else ""), markup=False)

    for table, values in data.items():
        console.print(f"[{table}]", markup=False)
        for key, value in values.items():
            if not isinstance(value, dict):
                line(table, key, value)
        for key, value in values.items():
            if isinstance(value, dict):
                console.print(f"[{table}.{key}]", markup=False)
                for k2, v2 in value.items():
                    line(f"{table}.{key}", k2, v2)
        console.print("")


def setting_notes(data: Mapping[str, Any]) -> dict[str, str]:
    """Dotted key -> a comment for a setting the effective config shows but the chosen
    sampler ignores (a newcomer's trial read ``changes_per_trial = 2`` while every proposal
    changed five knobs). Pure."""
    knobs = data.get("proposer", {}).get("knobs", {})
    if knobs.get("sampler") != "auto":
        return {}
    return {"proposer.knobs.changes_per_trial": 'sampler "auto" changes every knob in each proposal; this applies '
                                                "only to its fallback moves where every knob's range is declared",
            "proposer.knobs.startup_trials": 'sampler "auto" uses it only where every searched knob\'s range is '
                                             "declared (its uniform start); elsewhere it starts with 4 moves around "
                                             "your values"}


def print_summary(console: Console, arena: Path, tag: str) -> None:
    from .console import fmt
    from .status import campaign_status, open_ledger_readonly

    ledger, campaign = open_ledger_readonly(arena, tag)
    try:
        exps = ledger.experiments(campaign)
        listed = campaign_status(ledger, campaign)["experiments"]
    finally:
        ledger.close()
    goal = Goal(campaign.goal)
    kept = [e for e in exps if e.status is Status.KEEP and e.metric is not None]
    baseline = next((e for e in exps if e.id == 0 and e.metric is not None), None)
    best = None
    for e in kept:
        if best is None or goal.better(e.metric, best.metric):  # type: ignore[arg-type]
            best = e
    counts = counts_by_status(exps)
    console.print(f"experiments: {sum(counts.values())} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    if best is not None and baseline is not None:
        console.print(f"best {campaign.metric}: {fmt(best.metric)} at {(best.commit or '')[:7]} "
                      f"(#{best.id}; {against_baseline(best.metric, baseline.metric, goal)})")  # type: ignore[arg-type]
    for line in (early_stop_summary(listed), crash_summary(listed)):
        if line:
            console.print(line, markup=False)
    console.print(f"branch: {campaign.branch}   results: {arena / 'results.tsv'}")
    if any(e.id > 0 for e in kept):  # what a careful user does next (the README's step; a newcomer's trial)
        where = "" if arena == Path.cwd() else f" {arena}"
        console.print(f"next: `autoresearch ablate{where} --tag {campaign.tag}` measures, on fresh seeds, whether the "
                      "improvement holds and which kept change matters", markup=False)


def early_stop_summary(experiments: list[dict[str, Any]]) -> str | None:
    """What early stopping did in a campaign, from its experiments as ``status --json`` lists
    them (``id``, ``runs`` with ``status``, ``duration_s`` and, for a stopped run,
    ``stopped_early_at``): how many candidate runs it stopped, where, and about how much run
    time that left unspent, each stopped run counted against the median full run (its eval
    included); where it stopped every one of at least ``ALL_STOPPED``, what to change. None
    when it stopped nothing. Pure."""
    from statistics import median

    from .console import duration
    from .progress import SETTLED, percent

    runs = [r for e in experiments for r in e["runs"]]
    candidates = [r for e in experiments if e["id"] > 0 for r in e["runs"]
                  if r["status"] not in ("running", "interrupted", "infra")]
    stopped = [r for r in candidates if r.get("stopped_early_at") is not None]
    if not stopped:
        return None
    mean_at = sum(r["stopped_early_at"] for r in stopped) / len(stopped)
    text = (f"early stopping: {len(stopped)} of {len(candidates)} candidate runs stopped, at {percent(mean_at)} of "
            "the budget on average")
    full = [r["duration_s"] for r in runs if r["status"] == "ok" and r.get("stopped_early_at") is None
            and r["duration_s"] is not None]
    if full:
        whole = median(full)
        saved = sum(max(0.0, whole - (r["duration_s"] or 0.0)) for r in stopped)
        text += f"; about {duration(saved)} of runs not spent (a full run takes {duration(whole)} here)"
    if len(stopped) == len(candidates) >= ALL_STOPPED:
        wider = ("--set judge.early_stop_early_margin=0.4" if mean_at < SETTLED else
                 "--set judge.early_stop_margin=0.1 --set judge.early_stop_late_margin=0.1")
        text += (". Every candidate was stopped, so none was judged on its final metric: if your runs catch up "
                 f"late, a next campaign can stop less eagerly ({wider}) or not at all (--set "
                 "judge.early_stop=off); docs/early-stopping.md")
    return text


def crash_summary(experiments: list[dict[str, Any]]) -> str | None:
    """Where more than half of a campaign's finished candidates (at least
    ``MOSTLY_CRASHED``) crashed, timed out or ran far over budget: how many, the commonest
    way (reasons the same but for their numbers: a shape, a size), and what to do. None
    otherwise. Pure."""
    done = [e for e in experiments if e["id"] > 0 and e["status"] in ("keep", "discard", "crash", "timeout", "invalid")]
    failed = [e for e in done if e["status"] in ("crash", "timeout")  # (an HF trial: 5 of 9 over budget, unsaid)
              or over_budget(e["status"], e.get("reason"))]
    if len(failed) < MOSTLY_CRASHED or 2 * len(failed) <= len(done):
        return None
    shape = lambda e: re.sub(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?", "#", " ".join(str(e.get("reason") or "").split())[:200])  # noqa: E731
    way, n = Counter(shape(e) for e in failed).most_common(1)[0]
    same = [e for e in failed if shape(e) == way]
    text = f"{len(failed)} of {len(done)} candidates crashed, timed out or ran far over budget"
    if n >= 2 and way:
        ids = ", ".join(f"#{e['id']}" for e in same[:6]) + (", ..." if n > 6 else "")
        text += f", {n} of them the same way ({ids}): {' '.join(str(same[-1]['reason']).split())[:160]}"
    return (text + ". Read a failed run's log (its path is in `autoresearch status --json`), then fix what fails: "
            "the code, the budget or timeout where runs time out or go over budget, or, with the knobs proposer, "
            "keep the setting that breaks the run or makes it longer out of the search ([proposer.knobs] freeze = [\"NAME\"], or a narrower "
            "[proposer.knobs.space]; a campaign that goes on keeps its recorded settings: give it on the command "
            "line, --set 'proposer.knobs.freeze=[\"NAME\"]' (the whole list: it replaces the recorded one), or "
            "start a new one with --tag NEW)")


def against_baseline(value: float, baseline: float, goal: Goal) -> str:
    """"0.1367 (9.33 %) better than the baseline 1.465557": the judge's words for a change
    (``judge.better_or_worse``), never a bare signed number."""
    from .console import fmt
    from .judge import better_or_worse

    gain = baseline - value if goal is Goal.MINIMIZE else value - baseline
    words = better_or_worse(gain, f"the baseline {fmt(baseline)}")
    if gain and baseline and math.isfinite(gain):
        amount, rest = words.split(" ", 1)
        words = f"{amount} ({abs(gain / baseline) * 100:.3g} %) {rest}"
    return words


def counts_by_status(exps: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in exps:
        counts[e.status.value] = counts.get(e.status.value, 0) + 1
    return counts


def reason_line(reason: str, most: int = 300) -> str:
    """A reason in a status row: its first line, cut at ``most`` characters with an ellipsis
    (a terminal's table cuts it further, with its own). Until 2026-12-05 it was cut at 80
    characters with none, mid-word, and the fix at its end was lost. Pure."""
    line = reason.strip().splitlines()[0] if reason.strip() else ""
    return line if len(line) <= most else line[:most - 1].rstrip() + "…"


def print_status(console: Console, data: dict[str, Any], last: int) -> None:
    from .console import STATUS_STYLE, fmt, print_whole, safe
    from .status import seedless_note

    c = data["campaign"]
    exps = data["experiments"]
    console.print(f"[bold]campaign {c['tag']}[/]  branch {c['branch']}  base {c['base_commit'][:7]}  "
                  f"{c['metric']} ({c['goal']})")
    console.print("  ".join(f"{k}: {v}" for k, v in c["counts"].items()) or "no experiments yet")
    if c.get("harness") == "stopped" and c["counts"].get("running"):
        console.print("[yellow]no harness is running this campaign: the experiment(s) shown as running were cut off "
                      "(the harness was killed); `autoresearch run` resumes them[/]")
    if c.get("best"):
        b = c["best"]
        console.print(f"best {c['metric']}: {fmt(b['metric'])} at {b['commit'][:7]} (#{b['id']}: {safe(b['description'])})"
                      + (f"; {against_baseline(b['metric'], c['baseline'], Goal(c['goal']))}"
                         if c.get("baseline") is not None and b.get("metric") is not None else ""))
    note = seedless_note(exps)
    if note:
        console.print(f"note: {note}", style="yellow", markup=False)
    for line in (early_stop_summary(exps), crash_summary(exps)):
        if line:
            console.print(line, markup=False)
    table = Table(show_edge=False, pad_edge=False)
    with_stats = any((e.get("runs_n") or 0) > 1 for e in exps)
    cols = ["#", "status", c["metric"]] + (["± se", "runs", "p"] if with_stats else []) + ["commit", "description"]
    rows = []
    for e in exps[-last:]:
        desc = safe(e["description"]) if e["status"] in ("keep", "discard") or not e.get("reason") else \
            f"{safe(e['description'])} [dim]({safe(reason_line(e['reason']))})[/]"
        value = e["mean"] if e.get("mean") is not None else e["metrics"].get(c["metric"])
        stats = [fmt(e["se"]) if e.get("se") is not None else "", str(e["runs_n"] or ""),
                 f"{e['p_value']:.3g}" if e.get("p_value") is not None else ""] if with_stats else []
        rows.append([str(e["id"]), e["status"], fmt(value), *stats, (e["commit"] or "")[:7], desc])
    # one line per experiment (a description wrapped to ten lines at 80 columns): in a terminal
    # every column but the description whole and the description cut with an ellipsis (where
    # at least 10 columns are left for it; else wrapped); in a pipe or a file, whole lines
    widths = [max([len(col)] + [len(r[i]) for r in rows]) for i, col in enumerate(cols[:-1])]
    room = console.width - sum(widths) - 3 * len(widths)  # " │ " between columns
    cut = console.is_terminal and room >= 10
    for col, width in zip(cols, [*widths, room]):
        table.add_column(col, justify="left" if col in ("status", "commit", "description") else "right",
                         no_wrap=cut or not console.is_terminal, overflow="ellipsis",
                         min_width=width if cut and col != "description" else None,
                         max_width=room if cut and col == "description" else None)
    for r in rows:
        table.add_row(r[0], f"[{STATUS_STYLE[Status(r[1])]}]{r[1]}[/]", *r[2:])
    print_whole(console, table)
    for said in ([STATS_LEGEND] if with_stats else []) + ([CUT_NOTE] if cut and any(
            Text.from_markup(r[-1]).cell_len > room for r in rows) else []):
        console.print(f"[dim]{said}[/]")


def _dirty(arena: Path, config: Any) -> list[str]:
    """What ``run`` would refuse for, said by ``run --dry-run``: uncommitted changes (a
    newcomer's trial: the dry run passed with the new autoresearch.toml uncommitted)."""
    from .engine.opening import uncommitted
    from .errors import AutoresearchError
    from .store.workspace import Workspace

    try:
        shown = uncommitted(Workspace(arena), config.arena.data)
    except AutoresearchError:
        return []  # not a repository: `run` says so itself
    return [f"the arena has uncommitted changes ({shown}): `run` refuses to start until they are committed "
            "(experiments start from commits), or runs from HEAD without them with --allow-dirty"] if shown else []


def _continued(arena: Path, tag: str | None) -> str | None:
    """The campaign ``run`` would go on with, from its branch's tip, as ``api._settings``
    decides; None for a new one, or one whose baseline failed (that restarts from HEAD)."""
    from .campaign_config import find_campaign

    campaign, failed_baseline = find_campaign(arena, tag)
    return campaign.tag if campaign is not None and not failed_baseline else None


def _drawn_seeds(continued: str | None, loaded: Any, overrides: dict[str, Any]) -> frozenset[str]:
    """The seed keys ``run`` would draw at random: a new campaign's that nothing names (a
    newcomer's trial: the dry run showed ``seed = 0``, the run used 75643)."""
    from .seeds import SEED_KEYS, names_a_seed

    return frozenset(SEED_KEYS) if continued is None and not names_a_seed(loaded.raw, overrides) else frozenset()


def print_dry_run(console: Console, err_console: Console, arena: Path, loaded: Any, overrides: dict[str, Any],
                  tag: str | None = None, allow_dirty: bool = False) -> bool:
    """``run --dry-run``: the effective config, what the campaign would warn about at its
    start, and the knobs table when the proposer tunes knobs. False where ``run`` would
    refuse to start (said as an error, last)."""
    from .engine.budget import checkout_budget_note
    from .knobs_view import dry_run_table

    notes = tuple(getattr(loaded, "notes", ()))  # e.g. a campaign's recorded settings that the file now contradicts
    source = loaded.source
    if notes and getattr(loaded, "recorded", False):  # a newcomer's trial missed the note under a long listing
        source += ", not the file where it now differs: see the note at the end"
    continued = _continued(arena, tag)
    print_config(console, loaded.config, source, overrides, drawn=_drawn_seeds(continued, loaded, overrides))
    from .runs.spec import run_settings

    venv = run_settings(loaded.config, check_user=False).venv
    if venv is not None:
        console.print(f"# runs find {venv}/bin first on PATH: the virtual environment autoresearch runs from "
                      "([runner] harness_venv = false: the PATH as it is)", markup=False)
    for note in checkout_budget_note(arena, loaded.config.arena):
        err_console.print(f"warning: {note}", markup=False)
    problem = dry_run_table(console, arena, loaded.config, continued)
    for note in (*([] if allow_dirty else _dirty(arena, loaded.config)), *notes):  # last, where the eye lands
        err_console.print(f"note: {note}", markup=False)
    if problem:
        err_console.print(f"error: {problem} (`run` would refuse to start)", markup=False)
    return not problem
