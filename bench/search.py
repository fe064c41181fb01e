"""The knobs proposer's strategies vs random search on the synthetic arena, through the real loop.

(Against plain Optuna samplers on the same spaces, BBOB functions included:
``bench/search_suites.py``.)

Real campaigns through the real loop (subprocess runs, git, ledger) on the synthetic arena
with run noise; the regret is computed on the noise-free objective, whose optimum is 1.0:

- incumbent regret: true loss of the branch tip after the campaign (what a user gets);
- best-tried regret: the lowest true loss among all configurations tried.

Strategies: `auto` (the knobs proposer's default: the portfolio of ``knob_strategy.py``),
`tpe` (the default until issue 18: TPE, <= 2 knobs changed per trial),
`random-local` (the same proposer with Optuna's RandomSampler), and `random` (classic random
search: every knob drawn at random over its whole space each trial).

    python bench/search.py [--trials 40] [--seeds 20] [--noise 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from autoresearch.api import run_campaign
from autoresearch.proposers.knobs import KnobsProposer, find_knobs
from autoresearch.testing import make_synthetic_arena, synthetic_true_loss
from autoresearch.store.gitobjects import git

STRATEGIES = {
    "auto": dict(sampler="auto", changes_per_trial=2),
    "tpe": dict(sampler="tpe", changes_per_trial=2),
    "random-local": dict(sampler="random", changes_per_trial=2),
    "random": dict(sampler="random", changes_per_trial=0),
}


def true_loss_at(arena: Path, commit: str) -> float:
    source = git(["show", f"{commit}:train.py"], arena).stdout.decode()
    k = {x.name: x.value for x in find_knobs("train.py", source)}
    try:
        return synthetic_true_loss(k["LEARNING_RATE"], k["WIDTH"], k["DROPOUT"], k["WARMUP_STEPS"])
    except (ValueError, ZeroDivisionError):
        return float("inf")


def campaign(tmp: Path, strategy: str, seed: int, trials: int, noise: float) -> tuple[float, float]:
    arena = make_synthetic_arena(tmp / f"{strategy}-{seed}", noise_run_sd=noise)
    proposer = KnobsProposer(seed=seed, **STRATEGIES[strategy])
    outcome, _ = run_campaign(arena, tag="bench", proposer=proposer, max_experiments=trials + 1,
                              overrides={"runner.seed": seed, "proposer.lookahead": 0})  # serial: every trial sees all results
    assert outcome.exit_code == 0, outcome
    tip = git(["rev-parse", "autoresearch/bench"], arena).stdout.decode().strip()
    commits = git(["for-each-ref", "--format=%(objectname)", "refs/autoresearch/bench/"], arena).stdout.decode().split()
    commits += git(["rev-list", "autoresearch/bench"], arena).stdout.decode().split()
    best_tried = min(true_loss_at(arena, c) for c in commits)
    return true_loss_at(arena, tip) - 1.0, best_tried - 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    args = ap.parse_args()
    results: dict[str, list[tuple[float, float]]] = {s: [] for s in STRATEGIES}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        for seed in range(args.seeds):
            for strategy in STRATEGIES:
                results[strategy].append(campaign(Path(d), strategy, seed, args.trials, args.noise))
            print(f"seed {seed}: " + ", ".join(f"{s} {results[s][-1][0]:.4f}" for s in STRATEGIES), flush=True)
    baseline_regret = synthetic_true_loss(0.01, 64, 0.3, 500) - 1.0
    print(f"\n{args.trials} trials, {args.seeds} seeds, run noise sd {args.noise}, baseline regret {baseline_regret:.4f} "
          f"({time.time() - t0:.0f} s)")
    print("| strategy | median incumbent regret | median best-tried regret | ratio to random (incumbent) |")
    print("| --- | --- | --- | --- |")
    rand = statistics.median(r[0] for r in results["random"])
    for s, rs in results.items():
        inc = statistics.median(r[0] for r in rs)
        best = statistics.median(r[1] for r in rs)
        print(f"| {s} | {inc:.4f} | {best:.4f} | {inc / rand:.2f} |")


if __name__ == "__main__":
    main()
