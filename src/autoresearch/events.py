"""What the engine tells the outside while it works, and how the outside tells it to stop.

Events are for people and views (the terminal, MLflow export): nothing durable depends on
them. The ledger is the record.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Callable

from .records import Status


class EventKind(str, enum.Enum):
    START = "start"    # an experiment's run starts on a slot
    FINISH = "finish"  # an experiment reached a terminal status
    NOTE = "note"      # anything else worth a line: a re-measurement, a limit in force, a fallback
    PHASE = "phase"    # a run on a slot enters a phase (detail "run 2", "eval"): the live view's slot line


@dataclass(frozen=True)
class Event:
    kind: EventKind
    experiment_id: int | None = None
    description: str = ""
    status: Status | None = None
    metric: float | None = None
    detail: str = ""
    best: float | None = None
    slot: str = ""  # the slot's descriptor (e.g. "cuda:1") for events about a run
    tokens: int = 0  # what the proposal cost (finish events)
    cost: float = 0.0


Reporter = Callable[[Event], None]


def no_report(event: Event) -> None:
    """The reporter of a campaign nobody watches."""


@dataclass(frozen=True)
class Outcome:
    """How a campaign ended: the reason in words and the process exit code."""

    reason: str
    exit_code: int


@dataclass(frozen=True)
class Limits:
    max_experiments: int | None = None
    deadline: float | None = None  # time.time(); nothing new starts after it


@dataclass
class StopSignal:
    """Set by a signal handler (or by the engine on a fatal error): running experiments are
    stopped and recorded as interrupted, then the campaign ends."""

    event: threading.Event = field(default_factory=threading.Event)
    signum: int | None = None

    def set(self, signum: int) -> None:
        self.signum = signum
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    def outcome(self) -> Outcome:
        signum = self.signum or 2
        return Outcome("interrupted; run the same command again to resume (the stopped experiment is re-run)",
                       128 + signum)
