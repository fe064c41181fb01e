"""The knobs proposer against plain Optuna samplers, side by side, on the same spaces and
budget: the synthetic arena's landscape (noise-free and noisy) and BBOB functions from the
COCO platform (``pip install coco-experiment``).

The knobs proposer runs through its real ``propose`` with an in-memory history (as the
ledger would give it: every experiment with its status, metric and proposal meta), its
edits applied to a real file and the values read back, and a greedy keep-if-better judge
(the README demo's). Plain Optuna optimises the same distributions with the default point
enqueued first. Regret is the true (noise-free) value of what each method would hand over
(the knobs incumbent; Optuna's best trial) minus the optimum.

    python bench/search_suites.py [--seeds 10] [--budget 31] [--functions 1,2,8,10,15]
        [--instances 1] [--dim 5] [--methods knobs,tpe,gp,cmaes,random,knobs:gp:0:4]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from typing import Any, Callable, Mapping

import optuna

from autoresearch.edits import apply_edits
from autoresearch.proposers.knob_code import find_knobs
from autoresearch.proposers.knobs import KnobsProposer
from autoresearch.protocols import ProposalContext
from autoresearch.records import Experiment, Goal, Status
from autoresearch.testing import synthetic_true_loss

Objective = Callable[[Mapping[str, Any]], float]


class Suite:
    """One landscape: a file holding its knobs at their default values, declared spaces
    (or None: inferred), the true objective, the optimum, and the observation noise."""

    def __init__(self, name: str, source: str, true: Objective, optimum: float, spaces: dict | None = None,
                 noise: float = 0.0):
        self.name, self.source, self.true, self.optimum, self.spaces, self.noise = name, source, true, optimum, spaces, noise


def synthetic(noise: float = 0.0) -> Suite:
    source = "LEARNING_RATE = 0.01\nWIDTH = 64\nDROPOUT = 0.3\nWARMUP_STEPS = 500\n"

    def true(v: Mapping[str, Any]) -> float:
        try:
            return synthetic_true_loss(v["LEARNING_RATE"], v["WIDTH"], v["DROPOUT"], v["WARMUP_STEPS"])
        except (ValueError, ZeroDivisionError):
            return math.inf
    return Suite("synthetic" + (f"+noise {noise:g}" if noise else ""), source, true, 1.0, noise=noise)


def bbob(function: int, instance: int, dim: int) -> Suite:
    import cocoex

    problem = cocoex.BareProblem("bbob", function, dim, instance)
    names = [f"X{i}" for i in range(dim)]
    source = "".join(f"{n} = 0.0\n" for n in names)
    spaces = {n: {"low": -5.0, "high": 5.0} for n in names}
    return Suite(f"bbob f{function} i{instance} {dim}-D", source, lambda v: float(problem([v[n] for n in names])),
                 float(problem.best_value()), spaces)


# -- the knobs proposer, through its own propose() ------------------------------------------------

def run_knobs(suite: Suite, seed: int, budget: int, **options: Any) -> float:
    rng = random.Random(seed)
    proposer = KnobsProposer(seed=seed, spaces=suite.spaces, **options)
    files = {"train.py": suite.source}
    values = {k.name: k.value for k in find_knobs("train.py", files["train.py"])}
    true = suite.true(values)
    seen = true + rng.gauss(0, suite.noise)
    history = [Experiment(0, Status.KEEP, "baseline", "baseline", None, "c0", metric=seen)]
    incumbent = (files, seen, true)
    for i in range(1, budget):
        ctx = ProposalContext(incumbent_commit="c", incumbent_metric=incumbent[1], files=incumbent[0],
                              history=list(history), metric="loss", goal=Goal.MINIMIZE, program="")
        proposal = proposer.propose(ctx)
        if proposal is None:
            break
        new = apply_edits(incumbent[0], proposal.edits, ["train.py"])
        values = {k.name: k.value for k in find_knobs("train.py", new["train.py"])}
        true = suite.true(values)
        seen = true + rng.gauss(0, suite.noise)
        keep = math.isfinite(seen) and seen < incumbent[1]
        history.append(Experiment(i, Status.KEEP if keep else (Status.DISCARD if math.isfinite(seen) else Status.CRASH),
                                  proposal.description, "knobs", "c", f"c{i}",
                                  metric=seen if math.isfinite(seen) else None, meta=proposal.meta))
        if keep:
            incumbent = (new, seen, true)
    return incumbent[2] - suite.optimum


# -- plain Optuna on the same spaces -----------------------------------------------------------------

def run_optuna(suite: Suite, seed: int, budget: int, sampler_name: str) -> float:
    from autoresearch.proposers.knobs import make_sampler

    proposer = KnobsProposer(spaces=suite.spaces)
    knobs, spaces = proposer.survey({"train.py": suite.source})
    dists = {n: s.distribution() for n, s in spaces.items()}
    default = {n: spaces[n].to_param(next(k.value for k in knobs if k.name == n)) for n in spaces}
    rng = random.Random(seed)
    sampler = make_sampler(sampler_name, seed, startup_trials=10) if sampler_name != "tpe" else \
        optuna.samplers.TPESampler(seed=seed)  # plain TPE: Optuna's own defaults
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.enqueue_trial(default)
    truths: dict[int, float] = {}
    for _ in range(budget):
        trial = study.ask(dists)
        values = {n: spaces[n].to_value(trial.params[n]) for n in spaces}
        true = suite.true(values)
        if not math.isfinite(true):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        truths[trial.number] = true
        study.tell(trial, true + rng.gauss(0, suite.noise))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(done, key=lambda t: t.value)
    return truths[best.number] - suite.optimum


def knobs_options(method: str) -> dict[str, Any]:
    """``knobs`` (the defaults) or ``knobs:SAMPLER:CHANGES_PER_TRIAL:STARTUP`` (a variant). Pure."""
    parts = method.split(":")[1:]
    out: dict[str, Any] = {}
    for key, text in zip(("sampler", "changes_per_trial", "startup_trials"), parts):
        if text:
            out[key] = text if key == "sampler" else int(text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=31)
    ap.add_argument("--functions", default="1,2,8,10,15")
    ap.add_argument("--instances", default="1")
    ap.add_argument("--dim", type=int, default=5)
    ap.add_argument("--methods", default="knobs,tpe,gp,cmaes,random")
    ap.add_argument("--noise", type=float, default=0.02, help="sd of the noisy synthetic variant")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore")
    suites = [synthetic(), synthetic(args.noise)]
    suites += [bbob(int(f), int(i), args.dim) for i in args.instances.split(",") for f in args.functions.split(",")]
    methods = args.methods.split(",")
    print(f"optuna {optuna.__version__}; budget {args.budget} evaluations (the first at the default point); "
          f"{args.seeds} seeds; median (mean) regret")
    print("| suite | " + " | ".join(methods) + " |")
    print("| --- |" + " --- |" * len(methods))
    wins = {m: 0 for m in methods}
    for suite in suites:
        row = []
        medians = {}
        for m in methods:
            started = time.perf_counter()
            regrets = [run_knobs(suite, s, args.budget, **knobs_options(m)) if m.startswith("knobs")
                       else run_optuna(suite, s, args.budget, m) for s in range(args.seeds)]
            medians[m] = statistics.median(regrets)
            row.append(f"{medians[m]:.4g} ({statistics.fmean(regrets):.4g})")
            del started
        best = min(medians.values())
        for m in methods:
            wins[m] += medians[m] <= best
        print(f"| {suite.name} | " + " | ".join(row) + " |", flush=True)
    print("suites where each method has the lowest median: " + ", ".join(f"{m} {w}" for m, w in wins.items()))


if __name__ == "__main__":
    main()
