"""Progress lines on the terminal while a campaign runs (plain lines when not a TTY)."""

from __future__ import annotations

import math
import threading

from rich.console import Console
from rich.markup import escape

from .events import Event, EventKind
from .sanitize import clean_text
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


def safe(text: str) -> str:
    """Text from a run or a model, for the terminal: one line (a newline in a reason cannot
    forge a line of the campaign's output), no control sequences, no rich markup."""
    return escape(clean_text(text, newlines=False))


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
        desc = safe(event.description)
        if event.kind == EventKind.START:
            where = f" on {event.slot}" if event.slot and event.slot.split("=")[-1] != "local" else ""
            self.console.print(f"[blue]{eid:>5} running{where}[/]  {desc}")
        elif event.kind == EventKind.FINISH and event.status is not None:
            style = STATUS_STYLE[event.status]
            line = f"[{style}]{eid:>5} {event.status.value:<8}[/] {self.metric} {fmt(event.metric):>10}"
            if event.best is not None:
                line += f"  best {fmt(event.best)}"
            line += f"  {desc}"
            if event.detail and event.status not in (Status.KEEP, Status.DISCARD):
                detail = "\n        ".join(event.detail[:600].splitlines())
                line += f"\n        [dim]{safe(detail)}[/]"
            self.console.print(line)
        else:
            self.console.print(f"[dim]{eid:>5}   {safe(event.detail)}[/]")


class LiveState:
    """What the live view shows, updated from the engine's events (pure bookkeeping)."""

    def __init__(self, metric: str, budget_s: float):
        self.metric, self.budget_s = metric, budget_s
        self.running: dict[str, tuple[int, str, float]] = {}   # slot -> (experiment, description, started)
        self.tokens, self.cost = 0, 0.0
        self.counts: dict[str, int] = {}
        self.best: float | None = None
        self.best_id: int | None = None
        self.notes: list[str] = []

    def apply(self, event: Event, now: float) -> None:
        slot = event.slot or "local"
        if event.kind == EventKind.START and event.experiment_id is not None:
            self.running[slot] = (event.experiment_id, event.description, now)
        elif event.kind == EventKind.FINISH and event.status is not None:
            for s, (eid, _, _) in list(self.running.items()):
                if eid == event.experiment_id:
                    del self.running[s]
            self.tokens += event.tokens
            self.cost += event.cost
            self.counts[event.status.value] = self.counts.get(event.status.value, 0) + 1
            if event.best is not None and (self.best is None or event.best != self.best):
                self.best = event.best
                if event.status is Status.KEEP:
                    self.best_id = event.experiment_id
        elif event.detail:
            self.notes = ([event.detail] + self.notes)[:3]


class LiveReporter:
    """A rich Live view while ``run`` works: one line per running slot (experiment,
    description, elapsed against the budget), the best so far, the last results in their
    status colours (printed above the view), the counts, and the LLM spend. Used only on a terminal; elsewhere ConsoleReporter
    prints plain lines. Notes and finished experiments are also printed above the view,
    so the scrollback keeps the whole story."""

    def __init__(self, console: Console, metric: str, budget_s: float):
        from rich.live import Live

        self.console = console
        self.state = LiveState(metric, budget_s)
        self.lines = ConsoleReporter(console, metric)
        self.lock = threading.Lock()
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self.render, transient=True)

    def __enter__(self) -> "LiveReporter":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def __call__(self, event: Event) -> None:
        import time

        with self.lock:  # render() runs in rich's refresh thread
            self.state.apply(event, time.monotonic())
        if event.kind != EventKind.START:
            self.lines(event)  # printed above the live area, kept in the scrollback

    def render(self) -> object:
        import time

        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        st = self.state
        now = time.monotonic()
        slots = Table.grid(padding=(0, 1))
        with self.lock:
            running = sorted(st.running.items())
            counts_now = dict(st.counts)
        for slot, (eid, desc, started) in running:
            elapsed = now - started
            bar = ProgressBar(total=max(st.budget_s, 1e-9), completed=min(elapsed, st.budget_s), width=24)
            slots.add_row(f"[blue]{escape(slot)}[/]", f"#{eid}", bar, f"{elapsed:5.0f}s/{st.budget_s:g}s", safe(desc[:70]))
        counts = "  ".join(f"[{STATUS_STYLE[Status(k)]}]{k} {v}[/]" for k, v in sorted(counts_now.items()))
        best = f"best {st.metric} {fmt(st.best)}" + (f" (#{st.best_id})" if st.best_id is not None else "")
        spend = f"   spent {st.tokens} tokens, ${st.cost:.4f}" if st.tokens else ""
        return Group(slots, f"[bold]{escape(best)}[/]   {counts}{spend}")
