"""What the engine keeps in memory about a running campaign: the incumbent, each
experiment's measured values, the noise, recent files, and counters. Rebuilt from the
ledger and git on every start (nothing here is durable); every method expects the
engine's lock to be held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean
from typing import Callable, Mapping

from ..judge import Noise
from ..records import Experiment, Status
from ..stats import pooled_sd
from ..store.ledger import Campaign, Ledger
from ..store.workspace import Workspace

MAX_INFRA_STREAK = 3  # runs in a row the infrastructure failed (after its retries) stop the campaign


@dataclass
class Counters:
    done: int = 0                 # experiments with a counted terminal status (--max-experiments)
    candidates_done: int = 0      # the same without the baseline
    remeasures: int = 0           # re-measurement runs started
    infra_streak: int = 0         # runs in a row the infrastructure failed
    run_s: float | None = None    # moving average of a run's wall time (lookahead)
    propose_s: float | None = None  # moving average of a proposal's wall time (lookahead)

    def finished(self, exp_id: int, status: Status) -> None:
        if status.counted:
            self.done += 1
            if exp_id > 0:
                self.candidates_done += 1

    def timed(self, run_s: float) -> None:
        self.run_s = run_s if self.run_s is None else 0.7 * self.run_s + 0.3 * run_s

    def proposed(self, took_s: float) -> None:
        self.propose_s = took_s if self.propose_s is None else 0.7 * self.propose_s + 0.3 * took_s


@dataclass
class CampaignState:
    ledger: Ledger
    workspace: Workspace
    campaign: Campaign
    editable: tuple[str, ...]
    records: Callable[[], list[Experiment]]  # the journal's view of the campaign's experiments
    counters: Counters = field(default_factory=Counters)
    claimed: dict[str, int] = field(default_factory=dict)  # code hash -> experiment being built with it
    calibration_runs: set[int] = field(default_factory=set)  # run indices of the baseline's calibration runs in flight
    _incumbent: tuple[str, int | None] | None = None
    _samples: dict[int, list[float]] | None = None
    _files: dict[tuple[str, tuple[str, ...]], dict[str, str | None]] = field(default_factory=dict)

    def history(self) -> list[Experiment]:
        return self.records()

    # -- the incumbent ------------------------------------------------------------------------
    def incumbent_ref(self) -> tuple[str, int | None]:
        """The branch tip and the experiment that made it. Only this engine moves the branch
        while it holds the campaign lock, so the tip is read once and then kept in memory."""
        if self._incumbent is None:
            tip = self.workspace.resolve(f"refs/heads/{self.campaign.branch}") or self.campaign.base_commit
            exp_id = None
            for e in self.history():
                if e.status is Status.KEEP and e.commit == tip:
                    exp_id = e.id
            self._incumbent = (tip, exp_id)
        return self._incumbent

    def incumbent(self) -> tuple[str, float | None]:
        """The branch tip and its metric (the mean of its runs)."""
        tip, exp_id = self.incumbent_ref()
        values = self.samples(exp_id) if exp_id is not None else []
        return tip, (fmean(values) if values else None)

    def advanced(self, commit: str, exp_id: int, files: Mapping[str, str]) -> None:
        """A keep moved the branch: the new incumbent (its editable files are known already)."""
        self._incumbent = (commit, exp_id)
        self._files[(commit, self.editable)] = dict(files)

    def forget_incumbent(self) -> None:
        self._incumbent = None

    # -- measurements --------------------------------------------------------------------------
    def samples(self, exp_id: int) -> list[float]:
        """Metric values of an experiment's successful runs (of its latest attempt, plus any
        re-measurements when it is the incumbent). The list is live: runs append to it."""
        if self._samples is None:
            attempts = {e.id: e.attempt for e in self.history()}
            self._samples = {}
            for eid, runs in self.ledger.ok_run_metrics(self.campaign).items():
                self._samples[eid] = [m for a, _, m in runs if a == attempts.get(eid)]
        return self._samples.setdefault(exp_id, [])

    def reload_samples(self) -> None:
        """Forget the values (a new attempt of the baseline starts from nothing) and reload."""
        self._samples = None
        self.samples(0)

    def baseline_longest_s(self) -> float | None:
        """The longest run of the baseline's latest attempt that produced a metric (seconds, its
        eval included); None before one has. Read from the ledger each time: calibration runs
        still come in."""
        attempt = next((e.attempt for e in self.history() if e.id == 0), None)
        took = [r["duration_s"] for r in self.ledger.runs(self.campaign, 0)
                if r["attempt"] == attempt and r["status"] == "ok" and r["duration_s"] is not None]
        return max(took, default=None)

    def noise(self) -> Noise:
        """Pooled sd of repeated runs of unchanged code (every experiment with 2+ runs)."""
        self.samples(0)
        assert self._samples is not None
        return pooled_sd(self._samples.values())

    # -- files ---------------------------------------------------------------------------------
    def files_at(self, commit: str, paths: tuple[str, ...]) -> dict[str, str | None]:
        """Files at a commit (commits are immutable, so the last few reads are cached)."""
        key = (commit, paths)
        if key not in self._files:
            if len(self._files) >= 16:
                self._files.pop(next(iter(self._files)))
            self._files[key] = self.workspace.read_files(commit, paths)
        return dict(self._files[key])

    def tried(self) -> dict[str, int]:
        """Code hash -> experiment, for every code tested or being built (duplicates are refused)."""
        return {**self.claimed, **self.ledger.code_hashes(self.campaign)}
