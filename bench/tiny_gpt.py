"""A knobs campaign on the bundled tiny-GPT arena, then an honest re-measurement.

1. `autoresearch init --example tiny-gpt`, then a campaign of N experiments (default 30)
   at a B-second budget (default 30) with the knobs proposer, greedy judge.
2. The default configuration (the baseline commit) and the best one (the branch tip) are
   each re-measured with K fresh seeds (default 3) that the campaign never used.
3. Report val_bpb baseline -> best as the campaign saw it, then both re-measured
   (mean +- sd), and whether the gain exceeds the noise (Welch's t).

    python bench/tiny_gpt.py [--experiments 30] [--budget 30] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.api import run_campaign
from autoresearch.store.ledger import Ledger
from autoresearch.store.gitobjects import git


def measure(arena: Path, commit: str, seed: int, budget: float, work: Path) -> dict:
    d = work / f"{commit[:7]}-{seed}"
    d.mkdir(parents=True)
    for name in ("train.py", "prepare.py", "train.txt.xz", "val.txt.xz"):
        (d / name).write_bytes(git(["show", f"{commit}:{name}"], arena).stdout)
    env = {**os.environ, "AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_TIME_BUDGET": str(budget),
           "AUTORESEARCH_RESULT_FILE": str(d / "result.json")}
    for cmd in (["train.py"], ["prepare.py", "--eval"]):
        subprocess.run([sys.executable, *cmd], cwd=d, env=env, check=True, capture_output=True)
    result = json.loads((d / "result.json").read_text())
    shutil.rmtree(d)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=30)
    ap.add_argument("--budget", type=float, default=30)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="keep the arena here instead of a temporary directory")
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        arena = args.keep or Path(tmp) / "tiny-gpt"
        subprocess.run([sys.executable, "-m", "autoresearch", "init", "--example", "tiny-gpt", str(arena)], check=True,
                       capture_output=True)
        os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        outcome, oc = run_campaign(arena, tag="bench", proposer_kind="knobs", max_experiments=args.experiments,
                                   overrides={"arena.time_budget_s": args.budget})
        ledger = Ledger(arena / ".autoresearch" / "ledger.sqlite")
        campaign = ledger.campaign("bench")
        exps = ledger.experiments(campaign)
        ledger.close()
        counts: dict[str, int] = {}
        for e in exps:
            counts[e.status.value] = counts.get(e.status.value, 0) + 1
        base = exps[0]
        tip = git(["rev-parse", "autoresearch/bench"], arena).stdout.decode().strip()
        best = next(e for e in exps if e.commit == tip and e.status.value == "keep")
        print(f"campaign: {len(exps)} experiments ({counts}) in {time.time() - t0:.0f} s")
        print(f"val_bpb as the campaign saw it: baseline {base.metric:.4f} -> best {best.metric:.4f} "
              f"(#{best.id}: {best.description})")
        kept = [e for e in exps if e.status.value == "keep" and e.id > 0]
        for e in kept:
            print(f"  kept #{e.id}: {e.metric:.4f}  {e.description}")
        fresh = [1000 + i for i in range(args.seeds)]
        work = Path(tmp) / "remeasure"
        default_runs = [measure(arena, base.commit, s, args.budget, work) for s in fresh]
        best_runs = [measure(arena, tip, s, args.budget, work) for s in fresh]
        d = [r["val_bpb"] for r in default_runs]
        b = [r["val_bpb"] for r in best_runs]
        md, mb = statistics.fmean(d), statistics.fmean(b)
        sd, sb = statistics.stdev(d), statistics.stdev(b)
        t = (md - mb) / math.sqrt(sd**2 / len(d) + sb**2 / len(b)) if sd + sb > 0 else math.inf
        print(f"re-measured with fresh seeds {fresh} at {args.budget:g} s:")
        print(f"  default: {md:.4f} +- {sd:.4f}  (steps {[r['num_steps'] for r in default_runs]})")
        print(f"  best:    {mb:.4f} +- {sb:.4f}  (steps {[r['num_steps'] for r in best_runs]})")
        verdict = "exceeds" if t > 2.78 else "does not clearly exceed"  # t(0.975, ~4 dof)
        print(f"  gain {md - mb:+.4f} bpb, Welch t = {t:.1f}: the gain {verdict} the noise")
        print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
