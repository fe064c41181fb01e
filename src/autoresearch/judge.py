"""Judges: pure functions from measurements to keep / discard / need-more-runs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from statistics import fmean
from typing import Mapping, Protocol, Sequence

from .errors import ConfigError
from .records import Goal


class Verdict(str, enum.Enum):
    KEEP = "keep"
    DISCARD = "discard"
    MORE_RUNS = "more_runs"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    stats: Mapping[str, float] = field(default_factory=dict)


class Judge(Protocol):
    name: str

    def decide(self, candidate: Sequence[float], incumbent: Sequence[float], goal: Goal) -> Decision:
        """Judge a candidate's metric values against the incumbent's."""
        ...


@dataclass(frozen=True)
class GreedyJudge:
    """karpathy's rule: keep when the candidate is strictly better than the incumbent.

    Compares against the incumbent's mean, never its luckiest run. No noise model: on
    noisy metrics this keeps about half of all neutral changes.
    """

    name: str = "greedy"

    def decide(self, candidate: Sequence[float], incumbent: Sequence[float], goal: Goal) -> Decision:
        return greedy_decision(candidate, incumbent, goal)


def greedy_decision(candidate: Sequence[float], incumbent: Sequence[float], goal: Goal) -> Decision:
    if not candidate or not incumbent:
        raise ValueError("greedy judging needs at least one value on each side")
    c, i = fmean(candidate), fmean(incumbent)
    delta = c - i
    stats = {"mean": c, "incumbent_mean": i, "delta": delta}
    if goal.better(c, i):
        return Decision(Verdict.KEEP, f"{c:.6g} beats the incumbent's {i:.6g} ({delta:+.4g})", stats)
    return Decision(Verdict.DISCARD, f"{c:.6g} does not beat the incumbent's {i:.6g} ({delta:+.4g})", stats)


JUDGES = {"greedy": GreedyJudge}


def make_judge(policy: str) -> Judge:
    if policy == "confirm":
        raise ConfigError(
            "judge policy 'confirm' (noise-calibrated statistics) is not built yet; "
            "use --judge greedy or [judge] policy = \"greedy\""
        )
    try:
        return JUDGES[policy]()
    except KeyError:
        raise ConfigError(f"unknown judge policy {policy!r}; choose one of {', '.join(JUDGES)}") from None
