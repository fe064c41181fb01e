"""The small protocols the campaign engine talks to. Implementations match by shape; only
the wiring (``api.py``, the registries) knows concrete classes. Imports records and run
specs only."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from .records import Experiment, Goal, Proposal, RunOutcome
from .runs.spec import RunSpec


@dataclass(frozen=True)
class ProposalContext:
    """What a proposer may look at. History comes in as an argument (like Optuna's Sampler)."""

    incumbent_commit: str
    incumbent_metric: float | None
    files: Mapping[str, str]  # editable files at the incumbent, path -> text
    history: Sequence[Experiment]
    metric: str
    goal: Goal
    program: str  # the research instructions (program.md), "" when there are none
    readonly: Mapping[str, str] = field(default_factory=dict)  # readonly files (the evaluator, data prep)
    noise_sd: float | None = None  # pooled sd of repeated runs of unchanged code, when known
    crash_logs: Mapping[int, str] = field(default_factory=dict)  # experiment id -> log tail, recent crashes
    tag: str = ""  # the campaign's tag (a proposer with a worktree of its own keeps it per campaign)


class Proposer(Protocol):
    name: str

    def propose(self, context: ProposalContext) -> Proposal | None:
        """The next change to try, or None when this proposer has nothing more to offer.
        Everything it may know comes in ``context`` (the history included): a proposer
        rebuilt after a restart and given the same context proposes the same change."""
        ...


class RunHandle(Protocol):
    def wait(self) -> RunOutcome: ...


class Runner(Protocol):
    name: str

    def start(self, spec: RunSpec, stop: threading.Event | None = None, watch: Any = None) -> RunHandle:
        """Start a run; a crash or a timeout comes back from ``wait`` as data. ``watch``
        (``runners.watch.WatchSpec``): the run's progress is read as it goes, and the run is
        stopped when the early-stopping rule says so (``RunOutcome.stopped``)."""
        ...
