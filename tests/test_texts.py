"""What people read: every command's --help (markup-like brackets kept, no sentence broken
by a docstring's line breaks, at any width) and the progress chart (its legend hides no
point)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from autoresearch.cli import app
from autoresearch.records import Experiment, Goal, Status
from autoresearch.report.plot import draw_progress, progress_points

COMMANDS = ["", *sorted(typer.main.get_command(app).commands)]  # type: ignore[attr-defined]
BORDER = "│"


def _help(command: str, columns: int) -> str:
    r = CliRunner().invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": str(columns)})
    assert r.exit_code == 0, r.output
    return r.output


def broken_lines(text: str) -> list[str]:
    """Pairs of lines of a help where the first ends early: the second continues the same
    paragraph or table cell, and its first word would have fitted on the first."""
    out = []
    lines = text.splitlines()
    for l1, l2 in zip(lines, lines[1:]):
        m1 = re.match(r"^(│?)(\s*)\S", l1)
        m2 = re.match(r"^(│?)(\s+)(\S+)", l2)
        if not m1 or not m2 or m1.group(1) != m2.group(1):
            continue
        boxed, col, word = bool(m2.group(1)), m2.end(2), m2.group(3)
        if (boxed and col < 8) or (not boxed and col != m1.end(2)):
            continue  # a new table row, or an indented line
        if word.startswith(("[", BORDER, "autoresearch")):
            continue  # typer's own "[default: ...]" line; the quick start's command lines
        if len(l1) <= col or l1[col - 1] != " " or l1[col] == " ":
            continue  # no text of the first line in that column: not the same cell
        body = l1.rstrip()[:-1].rstrip() if boxed else l1.rstrip()
        room = len(l1.rstrip()) - 2 if boxed else len(l1) - 1  # inside the border, or the padding
        if len(body) + 1 + len(word) <= room:
            out.append(f"{l1.rstrip()}\n{l2.rstrip()}")
    return out


def test_the_checker_finds_a_sentence_broken_early():
    good = " A sentence that fills the line.  \n and goes on.                      "
    bad = " A short line.                     \n and goes on.                      "
    assert broken_lines(good) == [] and len(broken_lines(bad)) == 1
    cell = ("│ --x   <str>  Help that ends early.                │\n"
            "│              and goes on.                         │")
    assert len(broken_lines(cell)) == 1


@pytest.mark.parametrize("columns", [100, 200])
@pytest.mark.parametrize("command", COMMANDS)
def test_help_texts_read_whole(command, columns):
    text = _help(command, columns)
    flat = " ".join(text.replace(BORDER, " ").split())
    for artefact in ("( ", " )", "()", "[]"):
        assert artefact not in flat, f"{artefact!r} in: {flat}"
    assert broken_lines(text) == [], "\n~~\n".join(broken_lines(text))


def test_brackets_in_help_texts_are_shown():
    text = " ".join(_help("run", 200).replace(BORDER, " ").split())
    assert "LLM model name ([proposer.llm] model)." in text
    assert "[runner.ray] address: auto | local" in text


def _exp(i, status, metric, desc="x"):
    return Experiment(id=i, status=Status(status), description=desc, proposer="p", parent=None, commit=None, metric=metric)


@pytest.mark.parametrize("goal", [Goal.MINIMIZE, Goal.MAXIMIZE])
def test_the_legend_hides_no_point(goal):
    import matplotlib.pyplot as plt

    sign = 1 if goal is Goal.MINIMIZE else -1
    # discarded points climb to the top right corner, where the legend used to be; the
    # last experiment is the highest of them
    exps = [_exp(0, "keep", sign * 2.0, "baseline")]
    exps += [_exp(i, "discard", sign * (2.0 + 0.05 * i)) for i in range(1, 30)]
    exps += [_exp(30, "keep", sign * 1.9, "the latest kept change"), _exp(31, "crash", None),
             _exp(32, "discard", sign * 3.5)]
    pts = progress_points(exps, goal)
    fig = draw_progress(pts, "val_bpb", goal)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        legends = [*fig.legends, *([ax.get_legend()] if ax.get_legend() is not None else [])]
        assert legends
        boxes = [legend.get_window_extent(renderer) for legend in legends]
        area = ax.get_window_extent(renderer)
        xy = [(x, y) for x, y, _ in pts["kept"]] + list(pts["discarded"])
        assert (32, sign * 3.5) in xy
        pad = 4  # about a marker's radius, in pixels
        for x, y in ax.transData.transform(xy):
            assert area.x0 <= x <= area.x1 and area.y0 <= y <= area.y1  # inside the plot: visible
            for box in boxes:
                assert not (box.x0 - pad <= x <= box.x1 + pad and box.y0 - pad <= y <= box.y1 + pad), (x, y, box)
    finally:
        plt.close(fig)
