"""Immutable records that flow between the engine, proposers, runners, judges and the ledger."""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping


class Status(str, enum.Enum):
    """Experiment status. Terminal: keep, discard, crash, timeout, invalid, interrupted."""

    PENDING = "pending"
    RUNNING = "running"
    KEEP = "keep"
    DISCARD = "discard"
    CRASH = "crash"
    TIMEOUT = "timeout"
    INVALID = "invalid"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)

    @property
    def counted(self) -> bool:
        """Counts towards --max-experiments. An interrupted experiment is re-run on resume."""
        return self.terminal and self is not Status.INTERRUPTED


# how the note on a run far over its time budget starts, and the reason of a candidate invalid for
# it (engine/budget.py); the ledger counts such a candidate's code as tried
OVERRUN_MARK = "over budget:"


def over_budget(status: str, reason: str | None) -> bool:
    """Whether an experiment was made invalid after a whole run for going far over its time
    budget (not refused before running): it ran, so its code counts as tried (the ledger,
    the LLM proposer) and as a failure (the end summary). Pure."""
    return status == Status.INVALID and (reason or "").startswith(OVERRUN_MARK)


def code_tried(status: str, reason: str | None) -> bool:
    """Whether an experiment's code counts as tried, so the same code is refused as a
    duplicate: it ran (every status but invalid), or ran over budget. Pure."""
    return status != Status.INVALID or over_budget(status, reason)


class RunStatus(str, enum.Enum):
    """How one run (run command + eval) ended; the ``runs`` table's status."""

    RUNNING = "running"
    OK = "ok"                    # it produced a valid metric
    CRASH = "crash"
    TIMEOUT = "timeout"
    INVALID = "invalid"          # the evaluator refused the model, or a readonly file changed
    INTERRUPTED = "interrupted"
    # The cluster failed the run (a Ray worker or node died twice): not the candidate's
    # fault. The experiment goes back to ``pending``; nothing counts against it.
    INFRA = "infra"
    # The harness stopped it early: its progress was clearly worse than the incumbent's at
    # the same fraction of the budget (progress.py). Its experiment is discarded.
    STOPPED = "stopped"


class Purpose(str, enum.Enum):
    """Why a run was made."""

    BASELINE = "baseline"    # the baseline's calibration runs
    SCREEN = "screen"        # a candidate's first run
    CONFIRM = "confirm"      # a candidate's further runs, for the judge
    REMEASURE = "remeasure"  # the incumbent again, against drift
    ABLATION = "ablation"    # a variant measured by ``autoresearch ablate`` (not in the runs table)


class Goal(str, enum.Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``."""
        return a < b if self is Goal.MINIMIZE else a > b


@dataclass(frozen=True)
class FileEdit:
    """Replace ``search`` with ``replace`` in ``path`` (relative to the arena).

    An empty ``search`` creates ``path`` (which must not exist) with ``replace`` as its text.
    """

    path: str
    search: str
    replace: str


@dataclass(frozen=True)
class Proposal:
    description: str
    edits: tuple[FileEdit, ...] = ()
    proposer: str = ""
    # Free-form, JSON-serialisable facts the proposer wants back on resume (e.g. the index
    # of a scripted entry, an Optuna trial's params).
    meta: Mapping[str, Any] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """What the ledger stores (tokens and cost have columns of their own)."""
        return {"description": self.description, "proposer": self.proposer, "meta": dict(self.meta),
                "edits": [{"path": e.path, "search": e.search, "replace": e.replace} for e in self.edits]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, tokens: int = 0, cost: float = 0.0) -> "Proposal":
        return cls(description=d.get("description", ""), proposer=d.get("proposer", ""), meta=d.get("meta", {}),
                   edits=tuple(FileEdit(e["path"], e["search"], e["replace"]) for e in d.get("edits", [])),
                   tokens=tokens, cost=cost)


@dataclass(frozen=True)
class RunOutcome:
    """What one execution of a command did. A crash or a timeout is data, not an exception."""

    exit_code: int | None  # None when killed at the timeout or interrupted
    timed_out: bool
    interrupted: bool
    duration_s: float
    log_path: str
    log_tail: str
    log_bytes: int  # bytes the process wrote, including any dropped by the cap
    result_json: str | None  # the text the process left in AUTORESEARCH_RESULT_FILE
    limit: str = ""  # a resource limit that stopped the run ("memory", "disk"), else ""
    infra: str = ""  # why the infrastructure (not the candidate) failed the run, else ""
    # The peak resident memory of the run's whole process tree in MB, measured by the
    # harness (its memory cgroup's peak when it has one); None when nothing was measured.
    peak_rss_mb: float | None = None
    # What the run reported of its progress (name -> ((fraction, value), ...), progress.py)
    # and, when the harness stopped it early, at what fraction of the budget and why.
    progress: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    stopped_early_at: float | None = None
    stopped_reason: str = ""


# Metrics only the harness measures: a run that prints or writes one of these names does
# not set it (``Measurement.with_harness_metrics``).
HARNESS_METRICS = ("peak_rss_mb", "stopped_early_at", "stopped_behind")


@dataclass(frozen=True)
class Measurement:
    """The metrics of one run, after metric precedence was applied."""

    metric: float | None  # the target metric; None when missing or not finite
    metrics: Mapping[str, float]
    problem: str = ""  # why ``metric`` is None
    warnings: tuple[str, ...] = ()
    conflict: str = ""  # the trusted channel contradicts itself (the run is invalid)

    def with_harness_metrics(self, measured: Mapping[str, float | None]) -> "Measurement":
        """These metrics with the harness's own measurements (``HARNESS_METRICS``; other
        names in ``measured`` are ignored) in place of anything the run or its eval printed
        or wrote under those names, which is dropped with a warning. Pure."""
        metrics = {k: v for k, v in self.metrics.items() if k not in HARNESS_METRICS}
        forged = [k for k in HARNESS_METRICS if k in self.metrics]
        metrics.update({k: v for k, v in measured.items() if k in HARNESS_METRICS and v is not None and math.isfinite(v)})
        warnings = (*self.warnings, *(f"the run reported {k}; the harness measures it itself, the run's value is ignored"
                                      for k in forged))
        return dataclasses.replace(self, metrics=metrics, warnings=warnings)

    def cut_short(self, why: str) -> "Measurement":
        """Without the values the run reported (``engine/execution.cut_off`` says when and
        ``why``: its run or eval did not finish): those were some step's, not its result.
        The harness's own measurements stay. Pure."""
        return dataclasses.replace(self, metric=None, metrics={k: v for k, v in self.metrics.items() if k in HARNESS_METRICS},
                                   problem=self.problem or why)


@dataclass(frozen=True)
class Experiment:
    """An experiment as the ledger knows it."""

    id: int
    status: Status
    description: str
    proposer: str
    parent: str | None
    commit: str | None
    metric: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str = ""
    diff: str = ""
    attempt: int = 1
    seed: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    log_path: str | None = None
    tokens: int = 0
    cost: float = 0.0
    runs_n: int | None = None  # runs the judge used (the metric is their mean)
    se: float | None = None
    p_value: float | None = None
    code_hash: str | None = None  # of the editable files as tested (duplicates are refused)
    curves: Mapping[str, Any] = field(default_factory=dict)  # a stopped run's progress curves (from its run's row)

    @property
    def never_ran(self) -> bool:
        """Refused before it ran (``Journal.refused``: invalid, nothing committed; e.g. a knobs
        rebase onto an incumbent that already holds its values): nothing was measured."""
        return self.status is Status.INVALID and self.commit is None
