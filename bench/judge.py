"""False keeps, power and cost of the `confirm` judge vs `greedy`, by simulation.

Ground truth is known: the incumbent's true metric is 0 and the noise is Gaussian with
sigma = 1 (any arena's metric can be put in these units). A candidate's true improvement
is drawn from the mix 50 % neutral (0), 25 % worse by 1 sigma, 25 % better by 2 sigma;
power is also reported for changes better by 1 and 3 sigma. The judges are the real pure
functions of `autoresearch.judge`; only the runs are simulated:

- greedy: the baseline is run once; a candidate is run once and kept if better;
- confirm: the baseline is run n0 times (sigma estimated from those runs), a candidate is
  screened with one run and confirmed with more runs while `confirm_decision` asks;
- confirm with the early start (issue 19): the candidate's screen run is judged when the
  baseline has only 2 (or 4, 6) of its n0 runs; the judge may then only discard, and a
  candidate it does not discard is judged again once the baseline has all n0 runs. The
  first candidate of a campaign (2 runs) is the worst case; later ones see more.

    python bench/judge.py [--trials 20000] [--seed 0]

With ``--spread``, candidates whose runs are noisier than the baseline's (sd 1, 1.5 and 2
times the baseline's), judged by the default and by the rule before 2026-12-05 (a screen
run alone could keep, the candidate's se was the baseline's noise, and each look was tested
at alpha/3):

    python bench/judge.py --spread [--trials 20000]

With ``--campaign``, a real short campaign instead (the synthetic arena, runs of
``--run-seconds``, the confirm judge, 4 neutral candidates, ``--slots`` 1): the time from the
baseline's first run to the first candidate's run, in run lengths (the baseline runs' mean
wall time), read from the ledger. ``--src DIR`` runs the campaign with the autoresearch
package found in DIR (e.g. an older version exported with ``git archive``), for a
side-by-side figure:

    python bench/judge.py --campaign [--run-seconds 1] [--slots 1] [--src /tmp/old/src]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from autoresearch.judge import ConfirmPolicy, Verdict, confirm_decision, greedy_decision
from autoresearch.records import Goal
from autoresearch.stats import pooled_sd

MIX = [(0.0, 0.5), (-1.0, 0.25), (2.0, 0.25)]
BEFORE = dataclasses.replace(ConfirmPolicy(), confirm_runs=1, own_spread=False, look_divisor=3.0)  # the rule until 2026-12-05


def run_confirm(rng: random.Random, effect: float, policy: ConfirmPolicy, arrive_at: int | None = None,
                spread: float = 1.0) -> tuple[bool, int]:
    """One candidate (metric minimized; ``effect`` > 0 is an improvement). Returns (kept, runs).
    ``spread``: the candidate's runs' noise sd, in units of the baseline's (a change that
    makes training less stable: above 1).

    ``arrive_at``: the candidate's screen run is judged when the baseline has this many
    of its ``baseline_runs`` runs (the early start: 2 for the first candidate); while it
    has fewer, the judge is told it is calibrating, and a candidate it does not discard
    waits for the rest of the baseline's runs. None: the whole calibration comes first."""
    baseline = [rng.gauss(0.0, 1.0) for _ in range(policy.baseline_runs)]
    have = policy.baseline_runs if arrive_at is None else min(arrive_at, policy.baseline_runs)
    cand: list[float] = [rng.gauss(-effect, spread)]
    while True:
        incumbent = baseline[:have]
        sigma, df = pooled_sd([incumbent])
        d = confirm_decision(cand, incumbent, Goal.MINIMIZE, sigma or 0.0, df, policy,
                             calibrating=have < policy.baseline_runs)
        if d.verdict is Verdict.CALIBRATE:
            have = policy.baseline_runs  # the candidate waits; the baseline's other runs finish first
            continue
        if d.verdict is not Verdict.MORE_RUNS:
            return d.verdict is Verdict.KEEP, len(cand)
        cand.append(rng.gauss(-effect, spread))


def run_greedy(rng: random.Random, effect: float) -> tuple[bool, int]:
    incumbent = [rng.gauss(0.0, 1.0)]
    return greedy_decision([rng.gauss(-effect, 1.0)], incumbent, Goal.MINIMIZE).verdict is Verdict.KEEP, 1


def evaluate(judge, seed: int, trials: int) -> dict[str, float]:
    """Every row draws the same numbers (one generator per candidate, seeded by its number),
    so rows differ only by their rule: with the early start a candidate's baseline and
    runs are the ones it would have had with the whole calibration first."""
    out = {}
    for effect in (0.0, -1.0, 1.0, 2.0, 3.0):
        results = [judge(random.Random(f"{seed}/{effect}/{i}"), effect) for i in range(trials)]
        out[f"keep@{effect:+g}"] = sum(k for k, _ in results) / trials
        out[f"runs@{effect:+g}"] = statistics.fmean(n for _, n in results)
    out["runs/candidate (mix)"] = sum(w * out[f"runs@{e:+g}"] for e, w in MIX)
    return out


def first_candidate(run_seconds: float, src: str | None, slots: int = 1) -> dict[str, float]:
    """A real campaign; how long the first candidate waited, from the ledger's run times."""
    from autoresearch.testing import make_synthetic_arena, write_proposals

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        arena = make_synthetic_arena(root / "arena", noise_seed_sd=0.01, run_seconds=run_seconds,
                                     config_overrides={"judge": {"policy": "confirm", "remeasure_every": 0}})
        props = write_proposals(root / "p.json", [
            {"description": f"neutral {i}", "edits": [{"path": "train.py", "search": "WIDTH = 64 ",
                                                       "replace": f"WIDTH = 64  # {i} "}]} for i in range(4)])
        env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
        out = subprocess.run([sys.executable, "-m", "autoresearch", "run", str(arena), "--proposals", str(props),
                              "--slots", str(slots)], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"the campaign failed (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
        db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
        runs = db.execute("SELECT experiment_id, started_at, finished_at FROM runs ORDER BY id").fetchall()
        db.close()
    length = statistics.fmean(f - s for e, s, f in runs if e == 0)
    t0 = min(s for _, s, _ in runs)
    first = min(s for e, s, _ in runs if e > 0)
    return {"run_s": length, "wait_s": first - t0, "run_lengths": (first - t0) / length,
            "baseline_runs_before": float(sum(1 for e, _, f in runs if e == 0 and f <= first)),
            "campaign_s": max(f for _, _, f in runs) - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--campaign", action="store_true", help="measure the time to the first candidate instead")
    ap.add_argument("--run-seconds", type=float, default=1.0)
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--src", default=None, help="run the campaign with the autoresearch package in this folder")
    ap.add_argument("--spread", action="store_true", help="candidates noisier than the baseline instead")
    args = ap.parse_args()
    if args.campaign:
        r = first_candidate(args.run_seconds, args.src, args.slots)
        print(f"run length {r['run_s']:.2f} s; first candidate after {r['baseline_runs_before']:.0f} finished baseline runs, "
              f"{r['wait_s']:.2f} s = {r['run_lengths']:.2f} run lengths; campaign {r['campaign_s']:.1f} s")
        return
    seed, trials = args.seed, args.trials
    if args.spread:
        print_table(spread_rows(seed, trials), trials)
        return
    rows = [("greedy", evaluate(lambda r, e: run_greedy(r, e), seed, trials))]
    default = ConfirmPolicy()
    for n0, max_runs in ((default.baseline_runs, default.max_runs), (3, 6), (6, 6), (10, 6), (8, 4), (8, 8)):
        policy = ConfirmPolicy(baseline_runs=n0, max_runs=max_runs)
        name = f"confirm n0={n0} max_runs={max_runs}"
        if policy == default:
            name = f"**{name} (defaults)**"
        starts = (policy.start_runs, 4, 6) if policy == default else (policy.start_runs,)
        rows.append((f"{name}, all {n0} baseline runs first (before issue 19)",
                     evaluate(lambda r, e, p=policy: run_confirm(r, e, p), seed, trials)))
        for start in starts:
            if start >= n0:
                continue
            rows.append((f"{name}, candidate judged after {start} baseline runs"
                         + (" (the default start: its worst case)" if policy == default and start == policy.start_runs else ""),
                         evaluate(lambda r, e, p=policy, a=start: run_confirm(r, e, p, a), seed, trials)))
        if policy == default:  # the rule before 2026-12-05, for the side-by-side figure
            rows.extend((f"confirm n0={n0} max_runs={max_runs}, the rule before 2026-12-05 (one run may keep; the "
                         f"baseline's noise; alpha/3 per look), {when}",
                         evaluate(lambda r, e, p=BEFORE, a=a: run_confirm(r, e, p, a), seed, trials))
                        for when, a in ((f"all {n0} baseline runs first", None),
                                        (f"candidate judged after {policy.start_runs} baseline runs", policy.start_runs)))
    print_table(rows, trials)


def spread_rows(seed: int, trials: int) -> list[tuple[str, dict[str, float]]]:
    """The default against the rule before 2026-12-05 (at its level, alpha/3 per look) and
    each of the default's two parts alone (at the default's level), on
    candidates 1, 1.5 and 2 times as noisy as the baseline (the default start: judged after
    2 baseline runs)."""
    default = ConfirmPolicy()
    rules = [("before 2026-12-05 (one run may keep; the baseline's noise; alpha/3 per look)", BEFORE),
             ("a keep needs 2 runs only", dataclasses.replace(default, own_spread=False)),
             ("the candidate's own sd only", dataclasses.replace(default, confirm_runs=1)),
             ("**the default (both)**", default)]
    rows = []
    for spread in (1.0, 1.5, 2.0):
        for name, policy in rules:
            rows.append((f"candidate sd {spread:g}x: {name}",
                         evaluate(lambda r, e, p=policy, s=spread: run_confirm(r, e, p, p.start_runs, s), seed, trials)))
    return rows


def print_table(rows: list[tuple[str, dict[str, float]]], trials: int) -> None:
    print(f"{trials} simulated candidates per effect size; alpha 0.05 (alpha/{ConfirmPolicy().look_divisor:g} per look), "
          "min_effect 0\n")
    print("| judge | false keep (neutral) | keep worse by 1σ | power 1σ | power 2σ | power 3σ | runs per candidate (mix) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(f"| {name} | {r['keep@+0']:.1%} | {r['keep@-1']:.1%} | {r['keep@+1']:.1%} | {r['keep@+2']:.1%} | "
              f"{r['keep@+3']:.1%} | {r['runs/candidate (mix)']:.2f} |")


if __name__ == "__main__":
    main()
