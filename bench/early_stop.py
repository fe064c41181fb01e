"""Early stopping on the tiny-GPT arena: what it saves, what it loses.

1. **Record.** A fixed set of candidates (single and paired knob changes of the bundled
   train.py, drawn once with a fixed seed, so the figure does not depend on a search
   strategy) and the baseline (``--baseline-seeds`` runs) are each trained for the whole
   budget through the local runner (which records their progress curves) and evaluated by
   the arena's own evaluator (val_bpb). Saved to ``--out`` (JSON).
2. **Replay.** The campaign's stopping rule (``engine/early_stop.make_rule`` and
   ``progress.decide``, the code a campaign runs) is replayed on the complete curves:
   - the loss: among candidates that ended better than the incumbent, the share the rule
     would have stopped; against the baseline (greedy: one curve; confirm: the band of the
     baseline's seeds), and over every ordered pair (incumbent i, candidate j better than i);
   - a greedy campaign over the set in its fixed order, early stopping on vs off: compute
     spent (measured run and eval times; a stopped run costs its fraction of the training
     time, no eval), experiments per hour, and the best val_bpb reached at equal compute.

    python bench/early_stop.py [--candidates 64] [--budget 5] [--out early_stop.json]
    python bench/early_stop.py --replay early_stop.json      # step 2 only
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import fmean

from autoresearch.engine.early_stop import EarlyStopSettings, TrustedRun, make_rule
from autoresearch.progress import decide
from autoresearch.runners.local import LocalRunner
from autoresearch.runners.watch import WatchSpec
from autoresearch.runs.spec import DEFAULT_ENV_ALLOW, RunSpec, child_env
from autoresearch.arenas import example_dir

CHOICES = {
    "LEARNING_RATE": [1e-4, 3e-4, 3e-3, 1e-2, 3e-2], "DEPTH": [1, 3, 4], "N_EMBD": [32, 48, 96, 128],
    "BATCH_SIZE": [4, 8, 32, 64], "WEIGHT_DECAY": [0.0, 0.3], "WARMUP_RATIO": [0.0, 0.2],
    "WARMDOWN_RATIO": [0.0, 0.6], "DROPOUT": [0.1, 0.3], "GRAD_CLIP": [0.0, 0.3], "ADAM_BETA2": [0.95, 0.999],
}


def candidates(n: int) -> list[dict[str, float]]:
    """Every single change, then pairs drawn with seed 0, up to ``n``."""
    singles = [{k: v} for k, vs in CHOICES.items() for v in vs]
    pairs = [{**a, **b} for a, b in itertools.combinations(singles, 2) if a.keys() != b.keys()]
    random.Random(0).shuffle(pairs)
    return (singles + pairs)[:n]


def variant(train: str, change: dict[str, float]) -> str:
    for k, v in change.items():
        train, n = re.subn(rf"^{k} = \S+", f"{k} = {v!r}", train, count=1, flags=re.M)
        assert n == 1, k
    return train


def record_one(src: Path, work: Path, change: dict[str, float], seed: int, budget: float, steps: int) -> dict:
    d = work / uuid.uuid4().hex[:8]
    d.mkdir(parents=True)
    for name in ("prepare.py", "train.txt.xz", "val.txt.xz"):
        (d / name).symlink_to(src / name)
    (d / "train.py").write_text(variant((src / "train.py").read_text(), change))
    env = child_env(os.environ, DEFAULT_ENV_ALLOW, {"AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_TIME_BUDGET": str(budget),
                                                     "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                                                     "AUTORESEARCH_MAX_STEPS": str(steps)})
    spec = RunSpec(command=f"{sys.executable} train.py", cwd=d, env=env, timeout_s=budget * 6 + 60,
                   log_path=d / "run.log", token=uuid.uuid4().hex, result_file=d / "res" / "result.json")
    (d / "res").mkdir()
    out = LocalRunner().run(spec, watch=WatchSpec(budget))
    t_eval = time.monotonic()
    ev = subprocess.run([sys.executable, "prepare.py", "--eval"], cwd=d, capture_output=True, text=True,
                        env={**env, "AUTORESEARCH_RESULT_FILE": str(d / "res" / "result.json")})
    eval_s = time.monotonic() - t_eval
    m = re.search(r"^val_bpb:\s*(\S+)", ev.stdout, re.M)
    final = float(m.group(1)) if (m and out.exit_code == 0 and ev.returncode == 0) else None
    return {"change": change, "seed": seed, "final": final, "run_s": out.duration_s, "eval_s": eval_s,
            "curve": [list(p) for p in out.progress.get("train_loss", ())]}


def record(args: argparse.Namespace) -> dict:
    src = example_dir("tiny-gpt")
    t0 = time.time()
    data: dict = {"budget": args.budget, "steps": args.steps, "baseline": [], "candidates": []}
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(args.baseline_seeds):
            data["baseline"].append(record_one(src, Path(tmp), {}, s, args.budget, args.steps))
            print(f"baseline seed {s}: {data['baseline'][-1]['final']}", flush=True)
        for i, change in enumerate(candidates(args.candidates)):
            data["candidates"].append(record_one(src, Path(tmp), change, 0, args.budget, args.steps))
            c = data["candidates"][-1]
            print(f"{i + 1}/{args.candidates} {change}: {c['final']} ({c['run_s']:.1f}+{c['eval_s']:.1f} s)", flush=True)
            Path(args.out).write_text(json.dumps(data))
    data["record_s"] = time.time() - t0
    Path(args.out).write_text(json.dumps(data))
    return data


# -- replay ---------------------------------------------------------------------------------------

def trusted(r: dict) -> TrustedRun:
    return TrustedRun({"train_loss": [tuple(p) for p in r["curve"]]} if r["curve"] else {}, r["final"])


def stopped_at(rule, curve: list) -> float | None:
    pts = [tuple(p) for p in curve]
    for i in range(len(pts)):
        stop = decide(rule, pts[: i + 1])
        if stop is not None:
            return stop.fraction
    return None


def rule_for(incumbent: list[dict], baseline: list[dict], policy: str, noise: float | None):
    return make_rule([trusted(r) for r in incumbent], [trusted(r) for r in baseline], metric="val_bpb",
                     goal="minimize", policy=policy, settings=EarlyStopSettings(), noise_sd=noise, incumbent_id=0)


def loss_vs_baseline(data: dict, policy: str, noise: float | None) -> str:
    base = data["baseline"] if policy == "confirm" else data["baseline"][:1]
    rule = rule_for(base, data["baseline"], policy, noise)
    ref = fmean(r["final"] for r in base)
    ok = [c for c in data["candidates"] if c["final"] is not None and c["curve"]]
    better = [c for c in ok if c["final"] < ref]
    stops = [c for c in ok if stopped_at(rule, c["curve"]) is not None]
    lost = [c for c in better if stopped_at(rule, c["curve"]) is not None]
    return (f"{policy}: {len(stops)}/{len(ok)} candidates stopped; of the {len(better)} that ended better than the "
            f"baseline ({ref:.4f}), {len(lost)} stopped ({100 * len(lost) / max(1, len(better)):.1f} %)")


def loss_over_pairs(data: dict, noise: float | None) -> str:
    ok = [c for c in data["candidates"] if c["final"] is not None and c["curve"]]
    pairs = lost = 0
    for inc in ok:
        rule = rule_for([inc], data["baseline"], "greedy", noise)
        if rule is None:
            continue
        for c in ok:
            if c is not inc and c["final"] < inc["final"]:
                pairs += 1
                lost += stopped_at(rule, c["curve"]) is not None
    return (f"greedy, every candidate as the incumbent: {lost} of {pairs} better challengers stopped "
            f"({100 * lost / max(1, pairs):.1f} %)")


def startup_s() -> float:
    """What a run spends before its first step (interpreter, torch, the training text): a
    stopped run pays it in full. Measured now, three times, the median."""
    src = example_dir("tiny-gpt")
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "import torch, prepare; prepare.load_train()"], cwd=src, check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        times.append(time.monotonic() - t0)
    return sorted(times)[1]


def campaign(data: dict, early: bool, noise: float | None, budget_s: float | None) -> tuple[int, float, float]:
    """A greedy campaign over the set in order: (experiments done, compute spent, best val_bpb).
    A stopped run costs its start-up and its fraction of the rest of its run, no eval."""
    base, s0 = data["baseline"][0], data["startup_s"]
    inc, spent, done = base, base["run_s"] + base["eval_s"], 0
    for c in data["candidates"]:
        rule = rule_for([inc], data["baseline"], "greedy", noise) if early else None
        at = stopped_at(rule, c["curve"]) if rule is not None else None
        cost = s0 + at * max(0.0, c["run_s"] - s0) if at is not None else c["run_s"] + c["eval_s"]
        if budget_s is not None and spent + cost > budget_s:
            break
        spent += cost
        done += 1
        if at is None and c["final"] is not None and c["final"] < inc["final"]:
            inc = c
    return done, spent, inc["final"]


def replay(data: dict) -> None:
    if "startup_s" not in data:
        data["startup_s"] = startup_s()
    finals = [r["final"] for r in data["baseline"]]
    noise = (sum((x - fmean(finals)) ** 2 for x in finals) / (len(finals) - 1)) ** 0.5 if len(finals) > 1 else None
    ok = [c for c in data["candidates"] if c["final"] is not None and c["curve"]]
    print(f"start-up of a run {data['startup_s']:.1f} s (a stopped run pays it)")
    print(f"budget {data['budget']} s, steps {data.get('steps') or 'by time'}; baseline val_bpb {finals} (sd {noise}); {len(ok)} of "
          f"{len(data['candidates'])} candidates with a metric and a complete curve")
    print(loss_vs_baseline(data, "greedy", noise))
    print(loss_vs_baseline(data, "confirm", noise))
    print(loss_over_pairs(data, noise))
    n_off, s_off, best_off = campaign(data, False, noise, None)
    n_on, s_on, best_on = campaign(data, True, noise, None)
    print(f"whole set: off {n_off} experiments in {s_off:.0f} s ({3600 * n_off / s_off:.0f}/h, best {best_off:.4f}); "
          f"on {n_on} in {s_on:.0f} s ({3600 * n_on / s_on:.0f}/h, best {best_on:.4f}); "
          f"{(n_on / s_on) / (n_off / s_off):.2f}x experiments per hour")
    rule = rule_for(data["baseline"][:1], data["baseline"], "greedy", noise)
    ref, s0 = data["baseline"][0]["final"], data["startup_s"]
    stopped = [(c, at) for c in ok if (at := stopped_at(rule, c["curve"])) is not None]
    if stopped:
        cost = fmean((s0 + at * max(0.0, c["run_s"] - s0)) / (c["run_s"] + c["eval_s"]) for c, at in stopped)
        clear = sum(c["final"] > 1.1 * ref for c in ok)
        print(f"a stopped run costs {cost:.0%} of a full one on average (stopped at "
              f"{fmean(at for _, at in stopped):.0%} of the budget); {clear} of {len(ok)} candidates ended more than "
              f"10 % worse than the baseline. Projection for a mix where 7 of 11 are clearly worse (the README demo): "
              f"{1 / (1 - 7 / 11 * (1 - cost)):.2f}x experiments per hour")
    for share in (0.25, 0.5):
        b = share * s_off
        n0, _, b0 = campaign(data, False, noise, b)
        n1, _, b1 = campaign(data, True, noise, b)
        print(f"equal compute ({b:.0f} s, {share:.0%} of the whole set off): off {n0} experiments, best {b0:.4f}; "
              f"on {n1} experiments, best {b1:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--baseline-seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=0, help="> 0: train exactly this many steps (AUTORESEARCH_MAX_STEPS): "
                    "curves that do not depend on the machine's load; the fraction is then steps done / steps")
    ap.add_argument("--out", default="early_stop.json")
    ap.add_argument("--replay", help="replay a recorded file only")
    args = ap.parse_args()
    data = json.loads(Path(args.replay).read_text()) if args.replay else record(args)
    if not args.replay:
        print(f"recorded in {data['record_s']:.0f} s")
    replay(data)


if __name__ == "__main__":
    main()
