"""The knobs proposer against plain Optuna samplers, side by side, on the same spaces and
budget: the synthetic arena's landscape (noise-free and noisy) and BBOB functions from the
COCO platform (``pip install coco-experiment``).

The knobs proposer runs through its real ``propose`` with an in-memory history (as the
ledger would give it: every experiment with its status, metric and proposal meta), its
edits applied to a real file and the values read back, and a greedy keep-if-better judge
(the README demo's). Plain Optuna optimises the same distributions with the default point
enqueued first. Regret is the true (noise-free) value of what each method would hand over
(the knobs incumbent; Optuna's best trial) minus the optimum.

    python bench/search_suites.py [--seeds 10] [--first-seed 0] [--budget 31] [--functions 1,2,8,10,15]
        [--instances 1] [--dim 5] [--no-synthetic] [--noise 0,0.02] [--jobs 2]
        [--methods knobs,tpe,gp,cmaes,random,knobs:tpe:2:4,knobs:auto:2:4:patience=5]

``knobs`` is the proposer's default (``sampler = "auto"``, ``knob_strategy.py``). Where
``knobs`` runs next to plain samplers, the last column says whether the issue-18 goal holds on
that suite: its median at most the best plain sampler's, and at most 10 % over plain TPE's.
Below the table, for each knobs method: on how many suites the goal holds, and its median
over each plain sampler's (and over the best one's of each suite) as a geometric mean over
the suites. ``--halves`` adds how much the medians move between two halves of the seeds,
how often the goal holds when the seeds are resampled, and how often a copy of the best
plain sampler would meet it (about half the time: the yardstick for those shares).
``--merge FILE...`` prints the tables of runs saved with ``--out`` (bench/records/search_*).
"""

from __future__ import annotations

import argparse
import json
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
    """``knobs`` (the defaults) or ``knobs:SAMPLER:CHANGES_PER_TRIAL:STARTUP[:POLICY]`` (a
    variant); POLICY sets fields of the auto portfolio's ``Policy``, ``key=value/key=value``. Pure."""
    from autoresearch.proposers.knob_strategy import Policy

    parts = method.split(":")[1:]
    out: dict[str, Any] = {}
    for key, text in zip(("sampler", "changes_per_trial", "startup_trials"), parts):
        if text:
            out[key] = text if key == "sampler" else int(text)
    if len(parts) > 3 and parts[3]:
        out["policy"] = Policy(**policy_fields(parts[3]))
    return out


def policy_fields(text: str) -> dict[str, Any]:
    """Fields of the auto portfolio's ``Policy`` from ``key=value/key=value``, each of its
    field's type; an unknown field is an error. Pure."""
    from dataclasses import fields

    from autoresearch.proposers.knob_strategy import Policy

    types = {f.name: type(getattr(Policy(), f.name)) for f in fields(Policy)}
    given = dict(kv.split("=", 1) for kv in text.split("/"))
    unknown = sorted(set(given) - set(types))
    if unknown:
        raise ValueError(f"not fields of Policy: {', '.join(unknown)} (fields: {', '.join(types)})")
    return {k: _boolean(k, v) if types[k] is bool else types[k](v) for k, v in given.items()}


def _boolean(key: str, text: str) -> bool:
    """A Policy flag's value: true/1/yes or false/0/no, any case; else an error. Pure."""
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"{key}={text}: a flag is true or false")


def make_suites(spec: tuple[str, ...]) -> list[Suite]:
    """Suites by name: ``synthetic``, ``synthetic+noise:SD``, ``bbob:F:I:D``."""
    out = []
    for name in spec:
        kind, *rest = name.split(":")
        if kind == "synthetic":
            out.append(synthetic())
        elif kind == "synthetic+noise":
            out.append(synthetic(float(rest[0])))
        else:
            out.append(bbob(int(rest[0]), int(rest[1]), int(rest[2])))
    return out


_SUITES: dict[str, Suite] = {}


def _one(task: tuple[str, str, int, int]) -> float:
    """One campaign (a worker's unit): suite name, method, seed, budget."""
    import warnings

    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name, method, seed, budget = task
    if name not in _SUITES:
        _SUITES[name] = make_suites((name,))[0]
    suite = _SUITES[name]
    return run_knobs(suite, seed, budget, **knobs_options(method)) if method.startswith("knobs") \
        else run_optuna(suite, seed, budget, method)


def plain_only(medians: Mapping[str, float]) -> dict[str, float]:
    """The plain Optuna samplers' entries (every method but the knobs proposer and its
    variants). Pure."""
    return {m: v for m, v in medians.items() if not m.startswith("knobs")}


def goal_ratios(medians: Mapping[str, float], method: str = "knobs") -> tuple[float, float | None] | None:
    """``method``'s median over the best plain sampler's and over plain TPE's (None without
    TPE); None when there is nothing to compare. The goal holds when the first is at most 1
    and the second at most 1.1. Pure."""
    plain = plain_only(medians)
    if method not in medians or not plain:
        return None
    return _ratio(medians[method], min(plain.values())), _ratio(medians[method], plain["tpe"]) if "tpe" in plain else None


def _ratio(a: float, b: float) -> float:
    """a / b, where a plain sampler that reached the optimum (b = 0) is matched only by 0. Pure."""
    return a / b if b else (1.0 if a == 0 else math.inf)


def average_ratios(medians: Mapping[str, Mapping[str, float]], method: str = "knobs") -> dict[str, float]:
    """``method``'s median over each plain sampler's, and over the best plain sampler's on
    each suite (``best``), as geometric means over the suites (``medians``: suite -> method
    -> median); below 1 it is better on average. Pure."""
    logs: dict[str, list[float]] = {}
    for by in medians.values():
        plain = plain_only(by)
        if method not in by or not plain:
            continue
        for m, v in {**plain, "best": min(plain.values())}.items():
            logs.setdefault(m, []).append(math.log(max(by[method], 1e-300) / max(v, 1e-300)))
    return {m: math.exp(statistics.fmean(v)) for m, v in logs.items()}


def goal_holds(medians: Mapping[str, float], method: str = "knobs") -> bool:
    r = goal_ratios(medians, method)
    return r is not None and r[0] <= 1 and (r[1] is None or r[1] <= 1.1)


def goal_check(medians: Mapping[str, float], method: str = "knobs") -> str:
    """Whether ``method``'s median is at most the best plain sampler's and at most 10 % over
    plain TPE's, in words. Pure."""
    r = goal_ratios(medians, method)
    if r is None:
        return ""
    best, tpe = r
    return ("yes" if best <= 1 else f"no ({best:.2f}x best)") + ", " + \
        ("yes" if tpe is None or tpe <= 1.1 else f"no ({tpe:.2f}x TPE)")


def suite_group(name: str) -> str:
    """Which of the issue's suites a landscape belongs to: the synthetic landscape, its noisy
    variant, or the BBOB functions (any function, instance and dimension). Pure."""
    if name.startswith("synthetic+noise"):
        return "noisy synthetic"
    return "synthetic" if name.startswith("synthetic") else "BBOB"


def group_verdicts(medians: Mapping[str, Mapping[str, float]],
                   method: str = "knobs") -> dict[str, tuple[dict[str, float], float | None, bool]]:
    """The goal as the issue words it, per suite (``suite_group``): ``method``'s median at
    most the best plain sampler's on the suite (its median over each plain sampler's, a
    geometric mean over the suite's landscapes, at most 1 against every one of them), and
    never more than 10 % over plain TPE's on any single landscape. Suite -> (the geometric
    means, the largest ratio to TPE's, whether the goal holds). Pure."""
    grouped: dict[str, dict[str, Mapping[str, float]]] = {}
    for name, by in medians.items():
        grouped.setdefault(suite_group(name), {})[name] = by
    out = {}
    for group, table in grouped.items():
        means = average_ratios(table, method)
        to_tpe = [r[1] for r in map(lambda by: goal_ratios(by, method), table.values()) if r and r[1] is not None]
        worst = max(to_tpe, default=None)
        holds = bool(means) and all(v <= 1 for k, v in means.items() if k != "best") and (worst is None or worst <= 1.1)
        out[group] = (means, worst, holds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    ap.add_argument("--budget", type=int, default=31)
    ap.add_argument("--functions", default="1,2,8,10,15", help="BBOB functions (empty: none)")
    ap.add_argument("--instances", default="1")
    ap.add_argument("--dim", type=int, default=5)
    ap.add_argument("--no-synthetic", action="store_true", help="BBOB suites only")
    ap.add_argument("--methods", default="knobs,tpe,gp,cmaes")
    ap.add_argument("--noise", default="0,0.02", help="observation noise sd of each synthetic suite (0: noise-free)")
    ap.add_argument("--jobs", type=int, default=1, help="campaigns run in parallel (processes)")
    ap.add_argument("--out", help="also write every campaign's regret here (JSON lines: suite, method, seed, regret)")
    ap.add_argument("--merge", nargs="+", help="print the table of these --out files (runs split by seed or suite)")
    ap.add_argument("--halves", action="store_true", help="also: each method's median on the two halves of the "
                    "seeds, and how often the goal's verdict holds when the seeds are resampled")
    args = ap.parse_args()
    if args.merge:
        rows = [json.loads(line) for f in args.merge for line in open(f) if line.strip()]
        print_table(rows, f"optuna {optuna.__version__}; budget {args.budget}; merged from {', '.join(args.merge)}")
        if args.halves:
            print_halves(rows)
        return
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    names = [] if args.no_synthetic else \
        [f"synthetic+noise:{x}" if float(x) else "synthetic" for x in args.noise.split(",") if x]
    names += [f"bbob:{f}:{i}:{args.dim}" for i in args.instances.split(",") for f in args.functions.split(",") if f]
    methods = args.methods.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(n, m, s, args.budget) for n in names for m in methods for s in seeds]
    started = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_one, tasks, chunksize=1)
    else:
        results = [_one(t) for t in tasks]
    rows = [{"suite": n, "method": m, "seed": s, "regret": r} for (n, m, s, _), r in zip(tasks, results)]
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    print_table(rows, f"optuna {optuna.__version__}; budget {args.budget} evaluations (the first at the default "
                      f"point); seeds {seeds.start}-{seeds.stop - 1}; {time.perf_counter() - started:.0f} s")
    if args.halves:
        print_halves(rows)


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    """Median (mean) regret per suite and method, the goal check, and who wins where."""
    names = list(dict.fromkeys(r["suite"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    regrets: dict[tuple[str, str], list[float]] = {}
    seeds: set[int] = set()
    for r in rows:
        regrets.setdefault((r["suite"], r["method"]), []).append(r["regret"])
        seeds.add(r["seed"])
    print(f"{title}; {len(seeds)} seeds; median (mean) regret")
    check = "knobs" in methods
    print("| suite | " + " | ".join(methods) + (" | knobs <= best plain, <= 1.1 x TPE |" if check else " |"))
    print("| --- |" + " --- |" * (len(methods) + check))
    wins = {m: 0 for m in methods}
    table: dict[str, dict[str, float]] = {}
    for n, suite in zip(names, make_suites(tuple(names))):
        if any(len(regrets.get((n, m), [])) != len(seeds) for m in methods):
            print(f"| {suite.name} | (not every method has every seed) |")
            continue
        medians = table[n] = {m: statistics.median(regrets[n, m]) for m in methods}
        row = [f"{medians[m]:.4g} ({statistics.fmean(regrets[n, m]):.4g})" for m in methods]
        for m in methods:
            wins[m] += medians[m] <= min(medians.values())
        print(f"| {suite.name} | " + " | ".join(row) + (f" | {goal_check(medians)} |" if check else " |"), flush=True)
    print("suites where each method has the lowest median: " + ", ".join(f"{m} {w}" for m, w in wins.items()))
    for m in (m for m in methods if m.startswith("knobs")):
        ratios = average_ratios(table, m)
        if ratios:
            held = sum(goal_holds(t, m) for t in table.values())
            print(f"{m}: the goal holds on {held} of {len(table)} suites; its median over the plain samplers' "
                  "(geometric mean over the suites): " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
            for group, (means, worst, holds) in group_verdicts(table, m).items():
                tpe = "" if worst is None else f"; at most {worst:.2f}x plain TPE on any one"
                print(f"  {group} ({sum(suite_group(n) == group for n in table)} landscapes): "
                      + ", ".join(f"{k} {v:.2f}x" for k, v in means.items() if k != "best")
                      + f"{tpe}: the goal {'holds' if holds else 'does not hold'}")


def print_halves(rows: list[dict[str, Any]], resamples: int = 2000) -> None:
    """How much a median over these seeds says: each method's median on the first and the
    second half of the seeds (their ratio), and the share of bootstrap resamples of the
    seeds (each method's campaigns drawn with replacement) in which the goal holds; beside it,
    the share in which a copy of the best plain sampler (its campaigns drawn once more, as
    if run again on other seeds) meets the same goal: what a strategy exactly as good as the
    best could expect."""
    seeds = sorted({r["seed"] for r in rows})
    halves = (set(seeds[: len(seeds) // 2]), set(seeds[len(seeds) // 2:]))
    by: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        by.setdefault((r["suite"], r["method"]), {})[r["seed"]] = r["regret"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    print("| suite | " + " | ".join(f"{m}: median, seeds {min(halves[0])}-{max(halves[0])} / "
                                     f"{min(halves[1])}-{max(halves[1])} (ratio)" for m in methods)
          + " | goal on each half | goal holds in resamples | a copy of the best plain sampler meets it |")
    print("| --- |" + " --- |" * (len(methods) + 3))
    for suite in dict.fromkeys(r["suite"] for r in rows):
        cells, verdicts = [], []
        for h in halves:
            medians = {m: statistics.median(v for k, v in by[suite, m].items() if k in h) for m in methods}
            verdicts.append(medians)
        for m in methods:
            a, b = verdicts[0][m], verdicts[1][m]
            cells.append(f"{a:.4g} / {b:.4g} ({max(a, b) / max(min(a, b), 1e-300):.2f}x)")
        whole = plain_only({m: statistics.median(by[suite, m].values()) for m in methods})
        best = min(whole, key=whole.__getitem__, default=None)
        held = copied = 0
        # each method's draws on a stream of its own (named by suite and method): a share does
        # not move when another method joins the records
        streams = {m: random.Random(f"{suite}:{m}") for m in [*methods, "copy"]}
        for _ in range(resamples):
            medians = {m: statistics.median(streams[m].choices(list(by[suite, m].values()), k=len(by[suite, m])))
                       for m in methods}
            held += goal_holds(medians)
            if best is not None:
                again = statistics.median(streams["copy"].choices(list(by[suite, best].values()), k=len(by[suite, best])))
                copied += goal_holds({**medians, "knobs": again})
        goal = " / ".join("yes" if goal_holds(v) else "no" for v in verdicts) if "knobs" in methods else "-"
        share = f"{held / resamples:.0%}" if "knobs" in methods else "-"
        copy = f"{copied / resamples:.0%} ({best})" if best is not None else "-"
        print(f"| {suite} | " + " | ".join(cells) + f" | {goal} | {share} | {copy} |", flush=True)


if __name__ == "__main__":
    main()
