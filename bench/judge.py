"""False keeps, power and cost of the `confirm` judge vs `greedy`, by simulation.

Ground truth is known: the incumbent's true metric is 0 and the noise is Gaussian with
sigma = 1 (any arena's metric can be put in these units). A candidate's true improvement
is drawn from the mix 50 % neutral (0), 25 % worse by 1 sigma, 25 % better by 2 sigma;
power is also reported for changes better by 1 and 3 sigma. The judges are the real pure
functions of `autoresearch.judge`; only the runs are simulated:

- greedy: the baseline is run once; a candidate is run once and kept if better;
- confirm: the baseline is run n0 times (sigma estimated from those runs), a candidate is
  screened with one run and confirmed with more runs while `confirm_decision` asks.

    python bench/judge.py [--trials 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import statistics

from autoresearch.judge import ConfirmPolicy, Verdict, confirm_decision, greedy_decision
from autoresearch.records import Goal
from autoresearch.stats import pooled_sd

MIX = [(0.0, 0.5), (-1.0, 0.25), (2.0, 0.25)]


def run_confirm(rng: random.Random, effect: float, policy: ConfirmPolicy) -> tuple[bool, int]:
    """One candidate (metric minimized; ``effect`` > 0 is an improvement). Returns (kept, runs)."""
    incumbent = [rng.gauss(0.0, 1.0) for _ in range(policy.baseline_runs)]
    sigma, df = pooled_sd([incumbent])
    cand: list[float] = []
    while True:
        cand.append(rng.gauss(-effect, 1.0))
        d = confirm_decision(cand, incumbent, Goal.MINIMIZE, sigma or 0.0, df, policy)
        if d.verdict is not Verdict.MORE_RUNS:
            return d.verdict is Verdict.KEEP, len(cand)


def run_greedy(rng: random.Random, effect: float) -> tuple[bool, int]:
    incumbent = [rng.gauss(0.0, 1.0)]
    return greedy_decision([rng.gauss(-effect, 1.0)], incumbent, Goal.MINIMIZE).verdict is Verdict.KEEP, 1


def evaluate(judge, rng: random.Random, trials: int) -> dict[str, float]:
    out = {}
    for effect in (0.0, -1.0, 1.0, 2.0, 3.0):
        results = [judge(rng, effect) for _ in range(trials)]
        out[f"keep@{effect:+g}"] = sum(k for k, _ in results) / trials
        out[f"runs@{effect:+g}"] = statistics.fmean(n for _, n in results)
    out["runs/candidate (mix)"] = sum(w * out[f"runs@{e:+g}"] for e, w in MIX)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = [("greedy", evaluate(lambda r, e: run_greedy(r, e), rng, args.trials))]
    default = ConfirmPolicy()
    rows.append((f"**confirm (defaults: n0={default.baseline_runs}, max_runs={default.max_runs})**",
                 evaluate(lambda r, e: run_confirm(r, e, default), rng, args.trials)))
    for n0, max_runs in ((3, 6), (6, 6), (10, 6), (8, 4), (8, 8)):
        policy = ConfirmPolicy(baseline_runs=n0, max_runs=max_runs)
        rows.append((f"confirm n0={n0} max_runs={max_runs}", evaluate(lambda r, e, p=policy: run_confirm(r, e, p), rng, args.trials)))
    print(f"{args.trials} simulated candidates per effect size; alpha 0.05 (alpha/3 per look), min_effect 0\n")
    print("| judge | false keep (neutral) | keep worse by 1σ | power 1σ | power 2σ | power 3σ | runs per candidate (mix) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {r['keep@+0']:.1%} | {r['keep@-1']:.1%} | {r['keep@+1']:.1%} | {r['keep@+2']:.1%} | "
              f"{r['keep@+3']:.1%} | {r['runs/candidate (mix)']:.2f} |")


if __name__ == "__main__":
    main()
