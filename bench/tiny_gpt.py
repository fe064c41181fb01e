"""A knobs campaign on the bundled tiny-GPT arena, then an honest re-measurement.

1. `autoresearch init --example tiny-gpt`, then a campaign of N experiments (default 30)
   at a B-second budget (default 30) with the knobs proposer, greedy judge.
2. The default configuration (the baseline commit) and the best one (the branch tip) are
   each re-measured with K fresh seeds (default 3) that the campaign never used.
3. Report val_bpb baseline -> best as the campaign saw it, then both re-measured
   (mean +- sd), and whether the gain exceeds the noise (Welch's t).

    python bench/tiny_gpt.py [--experiments 30] [--budget 30] [--seeds 3]

``--compare auto,tpe --campaign-seeds 0,1,2`` (issue 18): the demo's campaign (12
experiments of 30 s) once per strategy and campaign seed, two campaigns at a time (one per
core, paired by seed so the machine's load falls on both strategies alike), no
re-measurement; per strategy the mean and spread of the final val_bpb, and the proposals
that scored worse than 1.5x the baseline:

    python bench/tiny_gpt.py --compare auto,tpe --campaign-seeds 0,1,2 --experiments 12 --budget 30

A strategy may carry fields of the auto portfolio's ``Policy`` (``knob_strategy.py``), to
measure a variant before it becomes the default: ``auto:patience=1000/warp=0``. And
``ARM@REV`` runs an arm with the code of a git revision of this repository (the previous
commit's default against the working tree's: ``--compare auto,auto@HEAD~1``).
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
from autoresearch.seeds import seed_overrides
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


def proposal_figures(exps: list) -> dict:
    """How bad the campaign's proposals were (the baseline: the first experiment): the worst
    finished one's val_bpb over the baseline's, how many finished above 1.5x, how many were
    stopped early, and of those the largest gap behind the incumbent's curve when stopped
    (``stopped_behind``: how far the progress curve it reported, its training loss, was above
    the incumbent's band's mean there, a share of that mean; None where no stopped run
    recorded one): a stopped run has no final value, and that gap is what it showed. Pure."""
    base = exps[0].metric
    finished = [e.metric / base for e in exps[1:] if e.metric is not None]
    stopped = [e for e in exps if "stopped_early_at" in e.metrics]
    gaps = [e.metrics["stopped_behind"] for e in stopped if isinstance(e.metrics.get("stopped_behind"), (int, float))]
    return {"worst_ratio": max(finished, default=1.0), "over_1_5": sum(r > 1.5 for r in finished),
            "stopped": len(stopped), "stopped_behind": max(gaps, default=None)}


def compare(args: argparse.Namespace) -> None:
    """Campaigns per (strategy, campaign seed), two at a time, each in its own process."""
    arms, seeds = args.compare.split(","), [int(x) for x in args.campaign_seeds.split(",")]
    t0, results = time.time(), {}
    with tempfile.TemporaryDirectory() as tmp:
        code = {arm: _checkout(arm.partition("@")[2], Path(tmp)) for arm in arms}
        for seed in seeds:
            procs = {}
            for i, arm in enumerate(arms):  # one per core, started together: the load falls on both alike
                out = Path(tmp) / f"{i}-{seed}.json"
                script, env = code[arm]
                cmd = [sys.executable, str(script), "--experiments", str(args.experiments), "--budget", str(args.budget),
                       "--seeds", "0", "--sampler", arm.partition("@")[0], "--seed", str(seed), "--json", str(out)]
                procs[arm] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1", **env}), out)
            for arm, (proc, out) in procs.items():
                assert proc.wait() == 0, f"{arm} seed {seed} failed"
                results[(arm, seed)] = r = json.loads(out.read_text())
                print(f"{arm:>5} seed {seed}: baseline {r['baseline']:.4f} -> best {r['best']:.4f}; worst finished "
                      f"{r['worst_ratio']:.2f}x the baseline; {r['over_1_5']} over 1.5x; {r['stopped']} stopped early"
                      f"{_behind(r.get('stopped_behind'))}; "
                      f"{r['seconds']:.0f} s", flush=True)
    print(f"{len(seeds)} campaign seeds, {args.experiments} experiments of {args.budget:g} s "
          f"({time.time() - t0:.0f} s):")
    for arm in arms:
        best = [results[(arm, s)]["best"] for s in seeds]
        sd = statistics.stdev(best) if len(best) > 1 else 0.0
        print(f"  {arm:>5}: final val_bpb {statistics.fmean(best):.4f} +- {sd:.4f} ({', '.join(f'{b:.4f}' for b in best)}); "
              f"finished proposals over 1.5x the baseline: {sum(results[(arm, s)]['over_1_5'] for s in seeds)}; worst "
              f"{max(results[(arm, s)]['worst_ratio'] for s in seeds):.2f}x; stopped early (clearly worse part-way, "
              f"no final value): {sum(results[(arm, s)]['stopped'] for s in seeds)}"
              f"{_behind(max((g for s in seeds if (g := results[(arm, s)].get('stopped_behind')) is not None), default=None))}")


def _behind(gap: float | None) -> str:
    """The largest gap behind the incumbent's curve among stopped runs, for a printout. Pure."""
    return "" if gap is None else f" (at most {100 * gap:.0f} % behind the incumbent's curve when stopped)"


def _checkout(rev: str, tmp: Path) -> tuple[Path, dict[str, str]]:
    """This script and the environment that runs an arm: the working tree's code, or (``ARM@REV``)
    the code of a git revision of this repository, exported into ``tmp`` (its ``src`` first on
    PYTHONPATH), so a default can be compared with an earlier commit's in one run."""
    if not rev:
        return Path(__file__), {}
    root = Path(__file__).resolve().parent.parent
    found = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode:
        raise SystemExit(f"--compare: no revision {rev!r} in {root} (a commit, branch or tag: git log shows them)")
    sha = found.stdout.strip()
    dest = tmp / f"rev-{sha}"
    if not dest.exists():
        part = tmp / f"{dest.name}.part"
        part.mkdir()
        archive = subprocess.run(["git", "-C", str(root), "archive", sha, "src", "bench"], capture_output=True)
        if archive.returncode:
            raise SystemExit(f"--compare: revision {rev!r} has no src and bench to run: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(part)], input=archive.stdout, check=True)
        if not (part / "bench" / "tiny_gpt.py").is_file():
            raise SystemExit(f"--compare: revision {rev!r} has no bench/tiny_gpt.py to run")
        part.rename(dest)
    path = os.pathsep.join(x for x in (str(dest / "src"), os.environ.get("PYTHONPATH", "")) if x)
    return dest / "bench" / "tiny_gpt.py", {"PYTHONPATH": path}


def _use_policy(text: str) -> None:
    """Campaigns in this process use the auto portfolio's ``Policy`` with these fields
    (``key=value/key=value``): a variant measured before it becomes the default."""
    from dataclasses import replace

    from autoresearch.proposers.knobs import KnobsProposer
    from search_suites import policy_fields  # bench/, this script's folder

    values = policy_fields(text)
    setup = KnobsProposer.__post_init__

    def post_init(self: KnobsProposer) -> None:
        self.policy = replace(self.policy, **values)
        setup(self)

    KnobsProposer.__post_init__ = post_init  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=30)
    ap.add_argument("--budget", type=float, default=30)
    ap.add_argument("--seeds", type=int, default=3, help="fresh seeds to re-measure with (0: none)")
    ap.add_argument("--sampler", help="[proposer.knobs] sampler (default: the arena's, auto)")
    ap.add_argument("--seed", type=int, help="the campaign's seed (default: the arena's random one)")
    ap.add_argument("--json", type=Path, help="write the campaign's figures here")
    ap.add_argument("--compare", help="strategies to compare, e.g. auto,tpe (see the module docstring)")
    ap.add_argument("--campaign-seeds", default="0,1,2")
    ap.add_argument("--keep", type=Path, help="keep the arena here instead of a temporary directory")
    args = ap.parse_args()
    if args.compare:
        return compare(args)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        arena = args.keep or Path(tmp) / "tiny-gpt"
        subprocess.run([sys.executable, "-m", "autoresearch", "init", "--example", "tiny-gpt", str(arena)], check=True,
                       capture_output=True)
        os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        overrides: dict = {"arena.time_budget_s": args.budget}
        if args.sampler:
            sampler, _, policy = args.sampler.partition(":")
            overrides["proposer.knobs.sampler"] = sampler
            if policy:
                _use_policy(policy)
        if args.seed is not None:
            overrides.update(seed_overrides(args.seed))  # as --seed N: the runs' and the sampler's seeds
        outcome, oc = run_campaign(arena, tag="bench", proposer_kind="knobs", max_experiments=args.experiments,
                                   overrides=overrides, new_seed=args.seed is None)
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
        if args.json:
            args.json.write_text(json.dumps({
                "baseline": base.metric, "best": best.metric, "seconds": time.time() - t0, "counts": counts,
                **proposal_figures(exps), "proposals": [(e.description, e.status.value, e.metric) for e in exps]}))
        if args.seeds <= 0:
            return
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
