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
3. **Live** (``--live N``). Real greedy campaigns through the CLI over the first N
   candidates, replayed by the scripted proposer, early stopping off then on (``--live-seeds
   S`` pairs, campaign seeds 0..S-1, arms alternating): wall time, experiments per hour,
   runs stopped, best val_bpb. Each patch sets its knobs whatever the incumbent holds, so
   no candidate goes stale after a keep and both arms run the whole set. ``--arms off``
   with ``--keep DIR`` keeps one arm as a record of complete curves of candidates on top of
   a moving incumbent (``bench/early_stop_record.py`` replays rules on it). With ``--steps``
   every run trains a fixed number of steps and is bit-for-bit deterministic, so the arms
   see the same metrics and differ only by the stops; ``--paired`` compares an off arm kept
   earlier (its ``status --json``) with an on arm run later (``--arms on``).

    python bench/early_stop.py [--set choices|proposer] [--candidates 64] [--budget 5] [--out early_stop.json]
    python bench/early_stop.py --replay early_stop.json      # step 2 only
    python bench/early_stop.py --set proposer --live 24 --live-seeds 2 --budget 10   # 3. real campaigns, off and on
    python bench/early_stop.py --set proposer --live 31 --steps 660 --budget 20      # 3. fixed steps: paired runs
    python bench/early_stop.py --set proposer --live 31 --steps 660 --budget 20 --paired off_status.json on.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
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
from autoresearch.proposers.knob_code import find_knobs
from autoresearch.proposers.knob_space import infer_space
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
    """The ``choices`` set: every single change of ``CHOICES``, then pairs drawn with seed 0,
    up to ``n`` (mild changes around a sound default)."""
    singles = [{k: v} for k, vs in CHOICES.items() for v in vs]
    pairs = [{**a, **b} for a, b in itertools.combinations(singles, 2) if a.keys() != b.keys()]
    random.Random(0).shuffle(pairs)
    return (singles + pairs)[:n]


def proposer_candidates(n: int) -> list[dict[str, float]]:
    """The ``proposer`` set: what the knobs proposer's random start-up trials propose for the
    bundled train.py (the knobs it finds, their inferred spaces, one or two knobs per trial,
    uniform in each space's own scale), drawn with seed 0. The README demo's proposals
    before issue 18 were of this kind (7 of 11 ended more than 1.3x worse than the baseline)."""
    text = (example_dir("tiny-gpt") / "train.py").read_text()
    spaces = {}
    for k in find_knobs("train.py", text):
        space = infer_space(k.name, k.value, isinstance(k.value, int) and not isinstance(k.value, bool))
        if space is not None:
            spaces[k.name] = (space, k.value)
    rng, out = random.Random(0), []
    while len(out) < n:
        change = {}
        for name in rng.sample(sorted(spaces), rng.choice((1, 2))):
            space, current = spaces[name]
            if space.kind in ("int", "pow2"):
                lo, hi = int(space.low), int(space.high)
                param = round(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))) if space.log else rng.randint(lo, hi)
                param = min(hi, max(lo, param))
            else:
                param = (math.exp(rng.uniform(math.log(space.low), math.log(space.high))) if space.log
                         else rng.uniform(space.low, space.high))
            value = space.to_value(param)
            change[name] = value if isinstance(value, int) else float(f"{value:.3g}")
        if all(change[k] != spaces[k][1] for k in change):
            out.append(change)
    return out


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
    data: dict = {"budget": args.budget, "steps": args.steps, "set": args.set, "baseline": [], "candidates": [],
                  "startup_s": args.startup_s or startup_s()}  # measured with the runs, under the same load
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(args.baseline_seeds):
            data["baseline"].append(record_one(src, Path(tmp), {}, s, args.budget, args.steps))
            print(f"baseline seed {s}: {data['baseline'][-1]['final']}", flush=True)
        chosen = proposer_candidates(args.candidates) if args.set == "proposer" else candidates(args.candidates)
        for i, change in enumerate(chosen):
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


def rule_for(incumbent: list[dict], baseline: list[dict], policy: str, noise: float | None,
             settings: EarlyStopSettings = EarlyStopSettings()):
    return make_rule([trusted(r) for r in incumbent], [trusted(r) for r in baseline], metric="val_bpb",
                     goal="minimize", policy=policy, settings=settings, noise_sd=noise, incumbent_id=0)


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


def pairs_lost(data: dict, noise: float | None, settings: EarlyStopSettings = EarlyStopSettings(),
               worst_incumbent: float | None = None) -> tuple[int, int]:
    """(stopped, pairs): of the ordered pairs (incumbent i, candidate j that ended better than
    i), those in which the greedy rule of i stops j; with ``worst_incumbent``, only the pairs
    whose i ended no worse than it (i could be a campaign's incumbent)."""
    ok = [c for c in data["candidates"] if c["final"] is not None and c["curve"]]
    pairs = lost = 0
    for inc in ok:
        if worst_incumbent is not None and inc["final"] > worst_incumbent:
            continue
        rule = rule_for([inc], data["baseline"], "greedy", noise, settings)
        if rule is None:
            continue
        for c in ok:
            if c is not inc and c["final"] < inc["final"]:
                pairs += 1
                lost += stopped_at(rule, c["curve"]) is not None
    return lost, pairs


def lost_text(lost: int, pairs: int) -> str:
    return f"{lost} of {pairs} better challengers stopped ({100 * lost / max(1, pairs):.1f} %)"


def loss_over_pairs(data: dict, noise: float | None) -> str:
    return f"greedy, every candidate as the incumbent: {lost_text(*pairs_lost(data, noise))}"


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


def campaign(data: dict, early: bool, noise: float | None, budget_s: float | None,
             settings: EarlyStopSettings = EarlyStopSettings()) -> tuple[int, float, float]:
    """A greedy campaign over the set in order: (experiments done, compute spent, best val_bpb).
    A stopped run costs its start-up and its fraction of the rest of its run, no eval."""
    base, s0 = data["baseline"][0], data["startup_s"]
    inc, spent, done = base, base["run_s"] + base["eval_s"], 0
    for c in data["candidates"]:
        rule = rule_for([inc], data["baseline"], "greedy", noise, settings) if early else None
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
    print("greedy rule variants (one margin throughout, from fraction; the default's early margin: "
          "bench/early_stop_record.py): loss over all ordered pairs; experiments per hour")
    n_off, s_off, _ = campaign(data, False, noise, None)
    for margin in (0.10, 0.07, 0.05):
        for start in (0.15, 0.2, 0.3):
            settings = EarlyStopSettings(min_fraction=start, margin=margin, early_margin=margin, late_margin=margin)
            n_on, s_on, _ = campaign(data, True, noise, None, settings)
            print(f"  {margin:.0%} from {start:.0%}: {lost_text(*pairs_lost(data, noise, settings))}; "
                  f"{(n_on / s_on) / (n_off / s_off):.2f}x")


# -- live: two real campaigns over the same proposals ---------------------------------------------

def scripted(train: str, chosen: list[dict[str, float]]) -> list[dict]:
    """The set as the scripted proposer's patches. Each sets its knobs whatever value the
    incumbent holds: SEARCH is the assignment's start (``\\nLR = ``) and REPLACE puts the new
    value first and turns the old one into a comment (``LR = 0.003  # was: 1e-3 ...``). So no
    patch goes stale after a keep, and both arms run every candidate of the set."""
    out = []
    for change in chosen:
        edits = []
        for k, v in change.items():
            assert train.count(f"\n{k} = ") == 1, k
            edits.append({"path": "train.py", "search": f"\n{k} = ", "replace": f"\n{k} = {v!r}  # was: "})
        out.append({"description": ", ".join(f"{k}={v}" for k, v in change.items()), "edits": edits})
    return out


def cli(*args: str, timeout: float | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autoresearch", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def live_arm(chosen: list[dict[str, float]], early: bool, budget: float, seed: int = 0, keep: str | None = None,
             steps: int = 0) -> dict:
    """A real greedy campaign (the CLI, the local runner, the arena's evaluator) over the
    set, replayed by the scripted proposer; wall time from start to end. With ``keep``, the
    arena (its ledger, with every run's curves, and the logs) stays in ``keep/off-0`` etc.:
    candidates on top of the incumbent's kept changes, as a campaign really runs them.
    With ``steps`` > 0 every run trains exactly that many steps (``AUTORESEARCH_MAX_STEPS``,
    passed to the runs through ``[runner] env_allow``): the runs are then bit-for-bit
    deterministic, so both arms see the same metrics and keep the same candidates unless the
    rule stops a winner, and the ratio measures the stopping alone. A run's cost is then its
    steps times its cost per step: a slow candidate costs more than in time-budget mode."""
    with tempfile.TemporaryDirectory() as tmp:
        if keep is not None:
            tmp = str(Path(keep) / f"{'on' if early else 'off'}-{seed}")
            Path(tmp).mkdir(parents=True)  # fails on a leftover: a kept arena is never overwritten
        arena = Path(tmp) / "arena"
        r = cli("init", "--example", "tiny-gpt", str(arena))
        assert r.returncode == 0, r.stderr
        patches = Path(tmp) / "proposals.json"
        patches.write_text(json.dumps(scripted((arena / "train.py").read_text(), chosen)))
        toml = arena / "autoresearch.toml"
        text = toml.read_text().replace('kind = "knobs"', 'kind = "scripted"')
        text = text.replace('policy = "greedy"', f'policy = "greedy"\nearly_stop = "{"auto" if early else "off"}"')
        text += f'\n[proposer.scripted]\nproposals = "{patches}"\n'
        if steps:
            text += '\n[runner]\nenv_allow = ["AUTORESEARCH_MAX_STEPS"]\n'
        toml.write_text(text)
        subprocess.run(["git", "-C", str(arena), "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                        "commit", "-qam", "the scripted set"], check=True)
        t0 = time.monotonic()
        fixed = ["--timeout", str(steps * 0.5 + 120)] if steps else []  # the slowest candidate: ~0.22 s a step here
        env = {**os.environ, "AUTORESEARCH_MAX_STEPS": str(steps)} if steps else None
        r = cli("run", str(arena), "--max-experiments", str(len(chosen) + 1), "--time-budget", str(budget),
                "--no-report", "--seed", str(seed), *fixed, env=env)
        wall = time.monotonic() - t0
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        st = json.loads(cli("status", str(arena), "--json").stdout)
    return arm_summary(st, early, seed, wall, steps)


def arm_summary(st: dict, early: bool, seed: int, wall: float, steps: int = 0) -> dict:
    """One live arm from its campaign's ``status --json`` (also for an arena kept with --keep)."""
    exps = [e for e in st["experiments"] if e["id"] > 0]
    stopped = [e for e in exps if any("stopped_early_at" in run for run in e.get("runs", []))]
    kept = [e["metrics"].get("val_bpb") for e in st["experiments"] if e["status"] == "keep"]
    detail = [(e["id"], e["status"], e["description"], e["metrics"].get("val_bpb"),
               next((run["stopped_early_at"] for run in e.get("runs", []) if "stopped_early_at" in run), None)) for e in exps]
    return {"early": early, "seed": seed, "wall_s": wall, "done_s": done_times(st["experiments"], wall),
            "run_s": [sum(r["duration_s"] or 0.0 for r in e.get("runs", [])) for e in st["experiments"]],
            "baseline": st["experiments"][0]["metrics"].get("val_bpb"), "steps": steps, "experiments": len(exps),
            "stopped": len(stopped), "detail": detail, "statuses": [e["status"] for e in exps],
            "best": min(x for x in kept if x is not None),
            "stopped_at": [run["stopped_early_at"] for e in stopped for run in e["runs"] if "stopped_early_at" in run]}


def time_mode(arm: dict, budget: float, s0: float) -> float:
    """What the arm would have cost had every run trained for ``budget`` seconds (the
    product's time-budget mode) instead of its fixed steps: each experiment's measured
    overhead (its time to done, less its runs: eval, harness, git) plus a run of start-up
    ``s0`` and ``budget`` seconds, or of its stopped fraction of it."""
    done = arm["done_s"]
    gaps = [done[0]] + [b - a for a, b in zip(done, done[1:])]
    at = [None] + [d[4] for d in arm["detail"]]
    return sum(max(0.0, g - r) + s0 + (f if f is not None else 1.0) * budget
               for g, r, f in zip(gaps, arm["run_s"], at))


def done_times(experiments: list[dict], wall: float) -> list[float]:
    """When each experiment (baseline first) was done, in seconds from the baseline's start:
    the next run's start after it (so its eval counts), or the campaign's end for the last."""
    starts = [min((r["started_at"] for r in e.get("runs", [])), default=None) for e in experiments]
    t0 = starts[0]
    return [next((s - t0 for s in starts[k + 1:] if s is not None), wall) for k in range(len(experiments))]


def best_by(arm: dict, t: float) -> float | None:
    """The best kept val_bpb once ``t`` seconds of the arm had passed (an experiment counts
    when done)."""
    kept = [d[3] for d, done in zip(arm["detail"], arm["done_s"][1:]) if d[1] == "keep" and done <= t and d[3] is not None]
    return min(kept + [arm["baseline"]]) if arm.get("baseline") is not None else min(kept, default=None)


def equal_compute(off: dict, on: dict) -> str:
    """The best val_bpb each arm had reached at the same wall time: at quarters of the on
    arm's whole campaign, and when it ended."""
    marks = [on["wall_s"] * q for q in (0.25, 0.5, 0.75, 1.0)]
    return "; ".join(f"{t:.0f} s: off {best_by(off, t):.4f}, on {best_by(on, t):.4f}" for t in marks)


def live(args: argparse.Namespace) -> None:
    """Off and on alternate (off, on, off, on, ...), one pair per campaign seed, so a
    change in the machine's load falls on both arms."""
    chosen = proposer_candidates(args.live) if args.set == "proposer" else candidates(args.live)
    arms: dict[bool, list[dict]] = {False: [], True: []}
    for seed in range(args.live_seeds):
        for early in {"both": (False, True), "off": (False,), "on": (True,)}[args.arms]:
            a = live_arm(chosen, early, args.budget, seed, args.keep, args.steps)
            arms[early].append(a)
            ran = sum(1 for d in a["detail"] if d[1] != "invalid")
            print(f"seed {seed}, early stopping {'on' if early else 'off'}: {a['experiments']} experiments "
                  f"({ran} ran) in {a['wall_s']:.0f} s ({3600 * a['experiments'] / a['wall_s']:.0f}/h), "
                  f"{a['stopped']} stopped (at {', '.join(f'{x:.0%}' for x in a['stopped_at']) or '-'}), "
                  f"best val_bpb {a['best']:.4f}; {' '.join(a['statuses'])}", flush=True)
    if args.arms != "both":
        Path(args.out).write_text(json.dumps({"set": args.set, "budget": args.budget, "arms": arms[args.arms == "on"]}))
        return
    compare(arms[False], arms[True], args)
    Path(args.out).write_text(json.dumps({"set": args.set, "budget": args.budget, "arms": arms[False] + arms[True]}))


def compare(offs: list[dict], ons: list[dict], args: argparse.Namespace) -> None:
    """Off against on, arm by arm (same campaign seed), then all together."""
    for off, on in zip(offs, ons):
        print(f"seed {off['seed']}, best val_bpb at equal wall time: {equal_compute(off, on)}")
        if args.steps:  # deterministic runs: the arms differ only where the rule stopped a winner
            lost = [d_off[2] for d_off, d_on in zip(off["detail"], on["detail"]) if d_off[1] == "keep" and d_on[1] != "keep"]
            print(f"  kept off but not on (winners the rule stopped): {', '.join(lost) or 'none'}")
    if args.steps:  # the same stops, priced as in time-budget mode (slow candidates then cost no more)
        s0 = startup_s()
        t_off, t_on = (sum(time_mode(a, args.budget, s0) for a in arms) for arms in (offs, ons))
        print(f"priced as {args.budget:g}-second runs (start-up {s0:.1f} s, each experiment's measured overhead): "
              f"{t_off:.0f} s off, {t_on:.0f} s on: {t_off / t_on:.2f}x experiments per hour")
    total = [(sum(a["experiments"] for a in v), sum(sum(1 for d in a["detail"] if d[1] != "invalid") for a in v),
              sum(a["wall_s"] for a in v)) for v in (offs, ons)]
    (n0, r0, w0), (n1, r1, w1) = total
    print(f"live, {n0 // len(offs)} candidates of the {args.set} set, budget {args.budget} s"
          f"{f', {args.steps} steps' if args.steps else ''}, {len(offs)} campaign(s) per arm: "
          f"{(n1 / w1) / (n0 / w0):.2f}x experiments per hour (wall {w0:.0f} s off, {w1:.0f} s on); "
          f"counting only experiments that ran ({r0} off, {r1} on): {(r1 / w1) / (r0 / w0):.2f}x")


def paired(args: argparse.Namespace) -> None:
    """``--paired OFF ON``: compare an off arm kept as a campaign's ``status --json`` (its
    first ``--live`` candidates; fixed steps make its runs what a new off arm would run)
    with an on arm's ``--out`` file."""
    st = json.loads(Path(args.paired[0]).read_text())
    end = done_times(st["experiments"][: args.live + 2], 0.0)[args.live]  # the next one's start ends the last
    st["experiments"] = st["experiments"][: args.live + 1]
    off = arm_summary(st, False, 0, end, args.steps)
    ons = json.loads(Path(args.paired[1]).read_text())["arms"]
    compare([off], ons, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--baseline-seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=0, help="> 0: train exactly this many steps (AUTORESEARCH_MAX_STEPS): "
                    "curves that do not depend on the machine's load; the fraction is then steps done / steps. "
                    "With --live: both arms see the same metrics (the runs are deterministic)")
    ap.add_argument("--set", choices=("choices", "proposer"), default="choices",
                    help="choices: mild hand-picked changes (CHOICES); proposer: the knobs proposer's random start-up draws")
    ap.add_argument("--out", default="early_stop.json")
    ap.add_argument("--replay", help="replay a recorded file only")
    ap.add_argument("--live", type=int, default=0, help="> 0: real campaigns (early stopping off, then on) over "
                    "this many candidates of the set, the scripted proposer replaying them; --budget seconds each")
    ap.add_argument("--startup-s", type=float, default=0.0, help="a run's start-up in seconds (what a stopped run "
                    "pays in full); default: measured when recording (a file recorded without it: measured now)")
    ap.add_argument("--live-seeds", type=int, default=1, help="campaigns per arm (campaign seeds 0, 1, ...)")
    ap.add_argument("--arms", choices=("both", "off", "on"), default="both",
                    help="with --live: both arms (the ratio), or one (e.g. an arm kept as a record of curves, --keep)")
    ap.add_argument("--paired", nargs=2, metavar=("OFF_STATUS", "ON_OUT"), help="with --live N and --steps: compare the "
                    "first N candidates of an off arm's `status --json` with an on arm's --out file")
    ap.add_argument("--keep", help="with --live: keep each arm's arena (ledger with curves, logs) under this folder")
    args = ap.parse_args()
    if args.paired:
        if not (args.live and args.steps):
            ap.error("--paired needs --live N (the candidates to compare) and --steps (the runs' fixed steps)")
        paired(args)
        return
    if args.live:
        live(args)
        return
    data = json.loads(Path(args.replay).read_text()) if args.replay else record(args)
    if args.startup_s:
        data["startup_s"] = args.startup_s
    if not args.replay:
        print(f"recorded in {data['record_s']:.0f} s")
    replay(data)


if __name__ == "__main__":
    main()
