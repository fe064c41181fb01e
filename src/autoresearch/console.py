"""Progress while a campaign runs: a live view on a terminal, plain timestamped lines
elsewhere (a file, a pipe, CI, nohup). Both are fed the engine's events. ``LiveState`` is
their bookkeeping (pure: what runs where, durations, the best, the progress and its
estimate), ``ConsoleReporter`` prints the lines, ``LiveReporter`` draws the view."""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from dataclasses import dataclass
from statistics import fmean
from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from .events import Event, EventKind, Limits
from .judge import better_or_worse
from .records import Experiment, Goal, Status
from .sanitize import clean_text

STATUS_STYLE = {
    Status.KEEP: "bold green",
    Status.DISCARD: "dim",
    Status.CRASH: "red",
    Status.TIMEOUT: "magenta",
    Status.INVALID: "yellow",
    Status.INTERRUPTED: "cyan",
    Status.PENDING: "italic",
    Status.RUNNING: "blue",
}
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")
# the baseline's runs so far, as calibration.py words them ("baseline: 2 of 8 runs so far", "calibrating: run 3 of 8")
CALIBRATION = re.compile(r"^(?:baseline: |calibrating: run )(\d+) of (\d+)\b")
DETAIL_CHARS = 600  # of a crash's reason and log tail, under its line


def safe(text: str) -> str:
    """Text from a run or a model, for the terminal: one line (a newline in a reason cannot
    forge a line of the campaign's output), no control sequences, no rich markup."""
    return escape(clean_text(text, newlines=False))


def fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.6f}" if abs(x) < 1e4 else f"{x:.6g}"


def duration(seconds: float) -> str:
    """``0.4s``, ``7s``, ``1m05s``, ``2h03m``."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def versus_best(value: float | None, best: float | None, goal: Goal) -> str:
    """A result against the best so far, in words: "0.4 % better than the best" (relative
    when the best is not 0; the judge's sign convention, ``judge.better_or_worse``)."""
    if value is None or best is None or not (math.isfinite(value) and math.isfinite(best)):
        return ""
    gain = best - value if goal is Goal.MINIMIZE else value - best
    if gain == 0:
        return "equal to the best"
    if best == 0:
        return better_or_worse(gain, "the best")
    pct = abs(gain / best) * 100
    word = "better" if gain > 0 else "worse"
    if pct >= 100 and gain < 0:  # "1.69e+03 % worse" reads badly: a ratio says it
        return f"{value / best:.3g}x the best ({word})" if value / best > 0 else f"{pct:.0f} % {word} than the best"
    return f"{pct:.3g} % {word} than the best" if pct < 1000 else f"{pct:.0f} % {word} than the best"


def stamp(console: Console) -> str:
    """The time prefix of a plain line (``HH:MM:SS ``); nothing on a terminal."""
    return "" if console.is_terminal else time.strftime("%H:%M:%S ")


@dataclass
class Running:
    """What one slot does now."""

    exp_id: int
    description: str
    started: float         # the experiment's start on this slot (monotonic)
    phase: str = "run 1"   # "run K" or "eval" (PHASE events)
    phase_started: float = 0.0
    remeasure: bool = False  # a re-measurement of the incumbent, not a new experiment


@dataclass(frozen=True)
class Applied:
    """What an event changed that its printed line needs."""

    show: bool = True                     # False: an identical note of the same experiment was shown already
    duration_s: float | None = None       # a finished experiment's wall time
    previous_best: float | None = None    # the best before a finished experiment


class LiveState:
    """What the views show, updated from the engine's events (pure bookkeeping: ``now`` is
    a monotonic time, ``wall`` a ``time.time()``)."""

    def __init__(self, metric: str, budget_s: float, goal: Goal = Goal.MINIMIZE, limits: Limits = Limits(),
                 started: float | None = None):
        self.metric, self.budget_s, self.goal, self.limits = metric, budget_s, goal, limits
        self.started = time.monotonic() if started is None else started
        self.created = time.time()
        self.running: dict[str, Running] = {}   # slot -> what runs there now
        self.active: dict[int, Running] = {}    # experiments started and not finished (a slot may run another meanwhile)
        self.tokens, self.cost = 0, 0.0
        self.counts: dict[str, int] = {}
        self.best: float | None = None
        self.best_id: int | None = None
        self.notes: list[str] = []
        self.done = 0                            # experiments of the campaign with a counted terminal status
        self.took: list[float] = []              # wall times of this session's finished candidates
        self.width = 1                           # the most experiments seen running at once
        self.seen: set[tuple[int | None, str]] = set()  # notes shown (an experiment's identical notes: once)
        self.calibration_left = 0                # the baseline's calibration runs still to come
        self.is_open = False                     # the campaign is open (before: checks, the proposer starting)

    def opened(self, metric: str, goal: Goal, budget_s: float, history: Sequence[Experiment],
               wall: float | None = None) -> None:
        """The campaign is open: its metric, and what a resumed campaign did before. A
        ``--max-hours`` deadline counts from now, as the engine's does (the checks before
        opening took ``wall - created``)."""
        wall = time.time() if wall is None else wall
        if self.limits.deadline is not None:
            self.limits = dataclasses.replace(self.limits, deadline=self.limits.deadline + wall - self.created)
        self.metric, self.goal, self.budget_s, self.is_open = metric, goal, budget_s, True
        # a baseline that did not finish as keep runs again under its id: counted when it does
        self.done = sum(1 for e in history if e.status.counted and (e.id != 0 or e.status is Status.KEEP))
        for e in history:
            if e.id == 0 and e.status is Status.KEEP:
                self._calibration(e.reason)  # a resumed campaign's calibration runs still to come
            if e.status is Status.KEEP and e.metric is not None and (self.best is None or goal.better(e.metric, self.best)):
                self.best, self.best_id = e.metric, e.id

    def apply(self, event: Event, now: float) -> Applied:
        slot = event.slot or "local"
        eid = event.experiment_id
        if eid == 0 and event.kind in (EventKind.NOTE, EventKind.FINISH):
            self._calibration(event.detail)
        if event.kind == EventKind.NOTE and event.metric is not None and eid is not None and eid == self.best_id:
            self.best = event.metric  # the incumbent's mean moved (its calibration, a re-measure): "best" follows
        if event.kind == EventKind.START and eid is not None:
            previous = self.active.get(eid)  # a rebased experiment starts again: its time runs on
            self.active[eid] = self.running[slot] = Running(eid, event.description, previous.started if previous else now,
                                                            phase_started=now)
            self.width = max(self.width, len(self.experiments_running()))
        elif event.kind == EventKind.PHASE and eid is not None:
            self._phase(slot, eid, event.detail, now)
        elif event.kind == EventKind.FINISH and event.status is not None:
            return self._finish(event, now)
        elif event.kind == EventKind.NOTE:
            for s, r in list(self.running.items()):  # a re-measurement ends with its note
                if r.remeasure and r.exp_id == eid and (s == slot or not event.slot):
                    del self.running[s]
            key = (eid, self._same(eid, event.detail))
            if key in self.seen:
                return Applied(show=False)
            self.seen.add(key)
            if event.detail:
                self.notes = ([event.detail] + self.notes)[:3]
        return Applied()

    def _same(self, eid: int | None, detail: str) -> str:
        """What makes two notes the same: while an experiment runs, its notes are the same
        when they differ only in numbers ("suspicious: an improvement of 63 sd ..." after
        each confirming run); other notes (a re-measurement) only when they are equal."""
        return NUMBER.sub("#", detail) if eid is not None and eid in self.experiments_running() else detail

    def _phase(self, slot: str, eid: int, what: str, now: float) -> None:
        """A run starts on ``slot``: of a started experiment (one of the baseline's runs spread
        over the slots, a confirming run), else a re-measurement of a finished one."""
        known = self.active.get(eid)
        if known is not None and slot != "local" and any(r.exp_id == eid for s, r in self.running.items() if s == "local"):
            del self.running["local"]  # the baseline starts without a slot; its runs name theirs
        again = "baseline, measured again" if eid == 0 else f"re-measuring #{eid}"
        self.running[slot] = Running(eid, known.description if known else again,
                                     known.started if known else now, what, now, remeasure=known is None)

    def _finish(self, event: Event, now: float) -> Applied:
        eid, status = event.experiment_id, event.status
        assert status is not None
        for s, r in list(self.running.items()):
            if r.exp_id == eid and not r.remeasure:
                del self.running[s]
        started = self.active.pop(eid, None) if eid is not None else None
        took = now - started.started if started is not None else None
        if took is not None and eid and status.counted:
            self.took.append(took)
        previous = self.best
        self.tokens += event.tokens
        self.cost += event.cost
        self.counts[status.value] = self.counts.get(status.value, 0) + 1
        self.done += 1 if status.counted else 0
        if event.best is not None and (self.best is None or event.best != self.best):
            self.best = event.best
            if status is Status.KEEP:
                self.best_id = eid
        return Applied(duration_s=took, previous_best=previous)

    def _calibration(self, detail: str) -> None:
        """The baseline's calibration runs still to come, from its notes and its finish: they
        take slots that the candidates' mean wall time does not count (a newcomer's trial: the
        estimate was half the time while they ran)."""
        m = CALIBRATION.match(detail)
        if m:
            self.calibration_left = max(0, int(m.group(2)) - int(m.group(1)))
        elif detail.startswith(("calibrated:", "baseline: ")):  # complete ("baseline: 8 runs, ...")
            self.calibration_left = 0

    def experiments_running(self) -> set[int]:
        return set(self.active)

    def left_s(self, now: float, wall: float) -> float | None:
        """An estimate of the time until the campaign ends, when a limit allows one: from
        the candidates' mean wall time (over the slots in use) and from the deadline."""
        options = []
        mean = fmean(self.took[-10:]) if self.took else None
        if not self.experiments_running() and self.limits.max_experiments is not None \
                and self.done >= self.limits.max_experiments:
            return None  # all done
        if self.limits.max_experiments is not None and mean is not None:
            under_way = sum(min(now - r.started, mean) for r in self.active.values())
            remaining = max(0, self.limits.max_experiments - self.done)
            calibration = self.calibration_left * self.budget_s if remaining else 0.0  # runs that share the slots
            options.append(max(0.0, mean * remaining - under_way + calibration) / self.width)
        if self.limits.deadline is not None:  # nothing starts after it; what runs then finishes
            options.append(max(0.0, self.limits.deadline - wall) + (mean if mean is not None else self.budget_s))
        return min(options) if options else None

    def progress(self, now: float, wall: float, sep: str = ", ") -> str:
        """"experiment 5 of 12, 1m05s elapsed, ~2m10s left"."""
        n, cap = len(self.experiments_running()), self.limits.max_experiments
        of = f" of {cap}" if cap is not None else ""
        if n == 0:
            where = f"{self.done}{of} experiments done"
        elif n == 1:
            where = f"experiment {self.done + 1}{of}"
        else:
            where = f"experiments {self.done + 1}-{self.done + n}{of}"
        parts = [where, f"{duration(now - self.started)} elapsed"]
        left = self.left_s(now, wall)
        if left is not None:
            parts.append(f"~{duration(left)} left" if left > 0 else "finishing")  # running longer than the mean
        return sep.join(parts)


class ConsoleReporter:
    """The printed lines: one per start (plain output only: the live view draws starts),
    per finish (status, metric, the change against the best in words, duration,
    description, the reason), per note (an experiment's identical notes once). Plain lines
    carry a timestamp; under a live view every line fits the terminal's width."""

    def __init__(self, console: Console, metric: str, *, state: LiveState | None = None, live: bool = False,
                 limits: Limits = Limits()):
        self.console = console
        self.state = state if state is not None else LiveState(metric, 0.0, limits=limits)
        self.live = live
        self.lock = threading.Lock()  # events come from the slots' threads
        self.printing = threading.Lock()  # an event's lines stay together (not ``lock``: the live view's refresh takes it)

    def opened(self, metric: str, goal: Goal, budget_s: float, history: Sequence[Experiment]) -> None:
        with self.lock:
            self.state.opened(metric, goal, budget_s, history)

    def __call__(self, event: Event) -> None:
        with self.lock:
            applied = self.state.apply(event, time.monotonic())
            progress = self.state.progress(time.monotonic(), time.time())
        eid = f"#{event.experiment_id}" if event.experiment_id is not None else ""
        desc = safe(event.description)
        with self.printing:
            self._lines(event, applied, progress, eid, desc)

    def _lines(self, event: Event, applied: Applied, progress: str, eid: str, desc: str) -> None:
        if event.kind == EventKind.START and not self.live:
            where = f" on {event.slot}" if event.slot and event.slot.split("=")[-1] != "local" else ""
            self._print(f"[blue]{eid:>5} running{where}[/]  {desc}  [dim]({escape(progress)})[/]")
        elif event.kind == EventKind.FINISH and event.status is not None:
            self._finish(event, applied, eid, desc)
        elif event.kind == EventKind.NOTE and applied.show:
            self._print(f"[dim]{eid:>5}   {safe(event.detail)}[/]", fit=False)

    def _finish(self, event: Event, applied: Applied, eid: str, desc: str) -> None:
        status = event.status
        assert status is not None
        st = self.state
        line = f"[{STATUS_STYLE[status]}]{eid:>5} {status.value:<8}[/] {escape(st.metric)} {fmt(event.metric):>10}"
        against = applied.previous_best if status is Status.KEEP else event.best  # the best it was judged against
        compared = versus_best(event.metric, against, st.goal) if event.experiment_id else ""
        if compared:
            line += f"  {compared}" + ("" if self.live else f" ({fmt(against)})")
        if applied.duration_s is not None:
            line += f"  {duration(applied.duration_s)}"
        why = event.detail if event.detail != event.description else ""
        judged = status in (Status.KEEP, Status.DISCARD)
        if judged and why.startswith(event.description):  # the baseline's "baseline: 8 runs, noise sd ..."
            desc, why = safe(why), ""
        line += f"  {desc}"
        if judged:  # the reason: after the description in a plain line, under it in the live view
            self._print(line + (f": {safe(why)}" if why and not self.live else ""))
            if why and self.live:
                self._print(f"        [dim]{safe(why)}[/]")
            return
        self._print(line)
        for text in why[:DETAIL_CHARS].splitlines():
            self._print(f"        [dim]{safe(text)}[/]", stamped=False)

    def _print(self, markup: str, *, fit: bool = True, stamped: bool = True) -> None:
        """Plain: the whole line, timestamped. Under a live view: cut to the terminal's
        width with an ellipsis (``fit``), or wrapped between words; never broken mid-word."""
        if not self.live:
            self.console.print((stamp(self.console) if stamped else "         ") + markup)
            return
        text = Text.from_markup(markup)
        if fit:
            self.console.print(text, no_wrap=True, overflow="ellipsis", soft_wrap=False, crop=True)
        else:
            self.console.print(text, soft_wrap=False)


class LiveReporter:
    """A rich Live view while ``run`` works: one line per slot (its experiment, the phase
    of its run with a bar against the budget, the description), the progress (experiment N
    of M, elapsed, an estimate of the time left), the best so far, the counts by status and
    the LLM spend. Used only on a terminal; elsewhere ConsoleReporter prints plain lines.
    Notes and finished experiments are printed above the view, so the scrollback keeps the
    whole story."""

    def __init__(self, console: Console, metric: str, budget_s: float, *, limits: Limits = Limits()):
        from rich.live import Live

        self.console = console
        self.state = LiveState(metric, budget_s, limits=limits)
        self.lines = ConsoleReporter(console, metric, state=self.state, live=True)
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self.render, transient=True)

    def __enter__(self) -> "LiveReporter":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def __call__(self, event: Event) -> None:
        self.lines(event)  # the state is updated there; lines are printed above the live area

    def render(self) -> object:
        from rich.console import Group

        st = self.state
        now = time.monotonic()
        with self.lines.lock:  # render() runs in rich's refresh thread
            running = sorted(((slot, dataclasses.replace(r)) for slot, r in st.running.items()), key=_natural)
            counts_now = dict(st.counts)
            progress = st.progress(now, time.time(), sep=" · ") if st.is_open else "opening the campaign…"
        slots = self._slots(running, now)
        counts = "  ".join(f"[{STATUS_STYLE[Status(k)]}]{k} {v}[/]" for k, v in sorted(counts_now.items()))
        best = "no result yet" if st.best is None else \
            f"best {st.metric} {fmt(st.best)}" + (f" (#{st.best_id})" if st.best_id is not None else "")
        spend = f"   spent {st.tokens} tokens, ${st.cost:.4f}" if st.tokens else ""
        return Group(slots, _fitted(escape(progress)), _fitted(f"[bold]{escape(best)}[/]   {counts}{spend}"))

    def _slots(self, running: list[tuple[str, Running]], now: float) -> object:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        budget = self.state.budget_s
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True, overflow="ellipsis", max_width=24)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, min_width=11)  # "run 10s/10s": the description stays put
        grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        width = 24 if self.console.width >= 120 else 14
        for slot, r in running:
            label, done = phase_label(r, now, budget)
            bar = ProgressBar(total=None if done is None else max(budget, 1e-9), completed=done or 0, width=width)
            grid.add_row(f"[blue]{escape(slot)}[/]", f"#{r.exp_id}", bar, escape(label), safe(r.description))
        return grid


def phase_label(r: Running, now: float, budget_s: float) -> tuple[str, float | None]:
    """The words next to a slot's bar, and how far the bar is filled (None: it pulses).
    A run counts against the budget; past it the script is finishing (its own final
    evaluation, saving); the eval command has no budget of its own."""
    elapsed = now - r.phase_started
    if r.phase == "eval":
        return f"eval {elapsed:.0f}s", None
    run = "run" if r.phase == "run 1" else r.phase
    if elapsed > budget_s > 0:
        return f"{run} finishing {elapsed:.0f}s/{budget_s:g}s", None
    return f"{run} {elapsed:.0f}s/{budget_s:g}s", min(elapsed, budget_s)


def _natural(item: tuple[str, Running]) -> list[int | str]:
    """slot2 before slot10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0])]


def _fitted(markup: str) -> Text:
    text = Text.from_markup(markup)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def print_whole(console: Console, table: object) -> None:
    """A table as wide as its rows in a pipe or a file (``status | less``, ``knobs > k.txt``):
    whole lines, not cells folded to 80 columns (a newcomer's trial: 150 lines for a knobs
    table), and nothing after a line's last character (a borderless table pads its last
    column); in a terminal, to its width."""
    from rich.measure import Measurement

    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = max(width, Measurement.get(console, console.options.update_width(10_000), table).maximum)
    try:
        with console.capture() as drawn:
            console.print(table)
    finally:
        console.width = width
    console.out("\n".join(line.rstrip() for line in drawn.get().splitlines()), highlight=False)  # no padding
