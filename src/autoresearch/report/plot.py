"""karpathy's progress chart: every experiment's metric, kept ones labelled, the running best.

matplotlib is imported lazily, with the non-interactive Agg backend, so the CLI stays
fast and nothing needs a display.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from ..records import Experiment, Goal, Status


def progress_points(experiments: Sequence[Experiment], goal: Goal) -> dict:
    """The chart's data, separated from drawing so it can be tested: kept and discarded
    points, the running best as a step line, and how many experiments had no metric.
    A discard that beat its parent but was dropped because the incumbent had moved (its
    reason starts with ``dropped``) is a point of its own: it must not pass for an ordinary
    grey dot, least of all below the best line."""
    kept, discarded, dropped, best_x, best_y = [], [], [], [], []
    best = None
    no_metric = 0
    for e in experiments:
        if not e.status.terminal or e.status is Status.INTERRUPTED:
            continue
        if e.metric is None or not math.isfinite(e.metric) or e.status not in (Status.KEEP, Status.DISCARD):
            no_metric += 1
            continue
        if e.status is Status.KEEP:
            kept.append((e.id, e.metric, e.description))
            if best is None or goal.better(e.metric, best):
                best = e.metric
        elif e.reason.startswith("dropped"):
            dropped.append((e.id, e.metric))
        else:
            discarded.append((e.id, e.metric))
        if best is not None:
            best_x.append(e.id)
            best_y.append(best)
    return {"kept": kept, "discarded": discarded, "dropped": dropped, "best_x": best_x, "best_y": best_y, "no_metric": no_metric,
            "total": sum(1 for e in experiments if e.status.counted)}


def _short(text: str, n: int = 38) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def draw_progress(pts: dict, metric: str, goal: Goal) -> Any:
    """The chart of ``progress_points`` as a matplotlib figure (Agg backend). The legend
    and the note on experiments without a metric sit below the axes, outside the plot
    area, so they never hide a point (the latest ones, top right, included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6), dpi=110, layout="constrained")
    if pts["discarded"]:
        xs, ys = zip(*pts["discarded"])
        ax.scatter(xs, ys, s=18, color="#b0b0b0", label="discarded", zorder=2)
    if pts.get("dropped"):
        xs, ys = zip(*pts["dropped"])
        ax.scatter(xs, ys, s=40, facecolors="white", edgecolors="#ff7f0e", linewidths=1.6, zorder=3,
                   label="dropped (beat its parent; the incumbent moved)")
    if pts["kept"]:
        xs, ys, labels = zip(*pts["kept"])
        ax.scatter(xs, ys, s=36, color="#2ca02c", label="kept", zorder=3)
        for x, y, label in zip(xs, ys, labels):
            ax.annotate(_short(label), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7, color="#1f6f1f",
                        rotation=12)
    if pts["best_x"]:
        ax.step(pts["best_x"], pts["best_y"], where="post", color="#2ca02c", linewidth=1.2, alpha=0.8, label="running best")
    ax.set_title(kept_title(pts["total"], len(pts["kept"])))
    xlabel = "experiment #"
    if pts["no_metric"]:
        xlabel += f"\n{pts['no_metric']} without a metric (stopped early, crash, timeout, invalid) not shown"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{metric} ({'lower' if goal is Goal.MINIMIZE else 'higher'} is better)")
    ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # experiment numbers, never 0.25
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        fig.legend(loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    return fig


def write_progress_png(experiments: Sequence[Experiment], metric: str, goal: Goal, path: Path) -> dict:
    pts = progress_points(experiments, goal)
    fig = draw_progress(pts, metric, goal)
    import matplotlib.pyplot as plt  # (after draw_progress chose the Agg backend)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return pts


def kept_title(total: int, kept: int) -> str:
    """``12 experiments, 2 kept improvements`` for ``kept`` points kept, the baseline's
    included (it is kept, but no improvement); one of each in the singular. Pure."""
    improvements = max(0, kept - 1)
    return (f"{total} experiment{'s' if total != 1 else ''}, "
            f"{improvements} kept improvement{'s' if improvements != 1 else ''}")
