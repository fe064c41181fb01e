"""Writing a campaign's results to files: the HTML report, the markdown report and the
progress chart, under ``.autoresearch/TAG/`` (the chart also at the arena's root, where
karpathy's ``progress.png`` lives, for the campaign last reported). ``run`` calls this when
a campaign ends; ``report`` writes one of them where the user asks."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import Goal
from ..store.workspace import STATE_DIR


@dataclass
class Written:
    """What was written (``paths``: label -> path), the report's data, and what failed."""

    paths: dict[str, Path] = field(default_factory=dict)
    root_chart: Path | None = None
    problems: list[str] = field(default_factory=list)
    data: dict[str, Any] | None = None


def report_dir(arena: Path, tag: str) -> Path:
    return arena / STATE_DIR / tag


def write_all(arena: Path, tag: str | None) -> Written:
    """Write report.html, report.md and progress.png for the campaign. Each file is tried
    on its own: a failure is recorded in ``problems`` (with what to do) and the others
    are still written. Raises only when the ledger cannot be read at all."""
    from ..status import open_ledger_readonly
    from .data import report_data
    from .html import report_html
    from .markdown import report_markdown
    from .plot import write_progress_png

    out = Written()
    ledger, campaign = open_ledger_readonly(arena, tag)
    try:
        out.data = data = report_data(ledger, campaign, arena)
        experiments = ledger.experiments(campaign)
    finally:
        ledger.close()
    folder = report_dir(arena, campaign.tag)
    steps = [
        ("report", folder / "report.html", lambda p: _write_text(p, report_html(data))),
        ("markdown", folder / "report.md", lambda p: _write_text(p, report_markdown(data))),
        ("chart", folder / "progress.png",
         lambda p: write_progress_png(experiments, campaign.metric, Goal(campaign.goal), p)),
    ]
    for label, path, write in steps:
        try:
            write(path)
        except Exception as e:  # one file's failure must not cost the others
            out.problems.append(f"the {label} ({path}) was not written: {_why(e)}")
        else:
            out.paths[label] = path
    if "chart" in out.paths:
        try:
            shutil.copyfile(out.paths["chart"], arena / "progress.png")
            out.root_chart = arena / "progress.png"
        except OSError as e:
            out.problems.append(f"{arena / 'progress.png'} was not updated: {_why(e)}")
    return out


def _write_text(path: Path, text: str) -> None:
    from ..store.ledger import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}" + (f" ({e.filename})" if e.filename else "") + "; check that the directory is writable and the disk not full"
    return f"{type(e).__name__}: {e}"


def write_and_tell(arena: Path, tag: str, say: Any, warn: Any) -> None:
    """What ``run`` does when a campaign ends: write the reports and the chart, then say where
    they are (``say(line)``). Nothing here may cost the campaign's outcome or exit code: a
    failure, or Ctrl-C while writing, is told through ``warn(line)`` with the command that
    writes the report again, and returns."""
    again = f"`autoresearch report {arena} --tag {tag}`"
    try:
        written = write_all(arena, tag)
    except KeyboardInterrupt:
        warn(f"report: not written (interrupted); write it with {again}")
        return
    except Exception as e:
        warn(f"report: not written: {_why(e)}; write it with {again}")
        return
    for problem in written.problems:
        warn(f"report: {problem}")
    labels = {"report": "report:  ", "markdown": "markdown:", "chart": "chart:   "}
    notes = {"markdown": " (for a pull request)", "chart": f" (also {written.root_chart})" if written.root_chart else ""}
    for key, path in written.paths.items():
        say(f"{labels[key]} {path}{notes.get(key, '')}")
