"""Progress lines on the terminal while a campaign runs (plain lines when not a TTY)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape

from .loop import Event
from .records import Status

STATUS_STYLE = {
    Status.KEEP: "bold green",
    Status.DISCARD: "dim",
    Status.CRASH: "red",
    Status.TIMEOUT: "magenta",
    Status.INVALID: "yellow",
    Status.INTERRUPTED: "cyan",
    Status.PENDING: "",
    Status.RUNNING: "blue",
}


def fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.6f}" if abs(x) < 1e4 else f"{x:.6g}"


class ConsoleReporter:
    def __init__(self, console: Console, metric: str):
        self.console = console
        self.metric = metric

    def __call__(self, event: Event) -> None:
        eid = f"#{event.experiment_id}" if event.experiment_id is not None else ""
        desc = escape(event.description)
        if event.kind == "start":
            where = f" on {event.slot}" if event.slot and event.slot != "local" else ""
            self.console.print(f"[blue]{eid:>5} running{where}[/]  {desc}")
        elif event.kind == "finish" and event.status is not None:
            style = STATUS_STYLE[event.status]
            line = f"[{style}]{eid:>5} {event.status.value:<8}[/] {self.metric} {fmt(event.metric):>10}"
            if event.best is not None:
                line += f"  best {fmt(event.best)}"
            line += f"  {desc}"
            if event.detail and event.status not in (Status.KEEP, Status.DISCARD):
                detail = "\n        ".join(event.detail[:600].splitlines())
                line += f"\n        [dim]{escape(detail)}[/]"
            self.console.print(line)
        else:
            self.console.print(f"[dim]{eid:>5}   {escape(event.detail)}[/]")
