"""Throughput: does a slot ever wait? Pipelined proposals and parallel slots, measured.

(a) One slot, a proposer that takes 25 % of a run's length: duty cycle (time inside runs /
    wall time) with proposals prepared ahead (``lookahead = 1``) vs serial (``lookahead =
    0``). Targets: >= 97 % pipelined (serial is ~80 % by construction).
(b) Sleep-runs of RUN seconds on 1 slot vs N slots (default 8): experiments per second.
    Target: >= 7.6x with 8 slots.
(d) Two slots, the knobs proposer (Optuna) and ``lookahead = "auto"`` on the synthetic
    landscape, where keeps happen and proposals prepared ahead meet a new incumbent: how
    many proposals were dropped or refused as stale (target 0: a knobs proposal is written
    again on the new incumbent's code), how many were moved, and the duty cycle.
(c) ``--runner ray``: the same on a Ray cluster started on loopback (a head and one worker
    node with 4 logical CPUs; each experiment takes one), 1 slot vs 4 (target >= 3.6x),
    and the runner's overhead per run (ledger start to finish minus the run's own
    duration: payload, scheduling, log and files back) next to the local runner's.

Both on real campaigns (synthetic arena, real git, real subprocesses); the ratio is measured
in the same invocation. The wall window of a campaign runs from the start of its first
candidate run to the end of its last run (the baseline and the very first proposal are
start-up, not steady state). Every proposal adds a comment line, so it always applies,
never repeats, and never changes the metric (the greedy judge discards it: no keep ever
makes a prepared proposal stale).

    python bench/throughput.py [--run-seconds 2] [--experiments 16] [--slots 8]
    python bench/throughput.py --runner ray [--run-seconds 2] [--experiments 16]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from autoresearch.api import run_campaign
from autoresearch.protocols import ProposalContext
from autoresearch.records import Experiment, FileEdit, Proposal
from autoresearch.testing import make_synthetic_arena

ANCHOR = 'if __name__ == "__main__":'


class CommentProposer:
    """Adds ``# trial N`` above the main block, after sleeping ``latency_s`` (a stand-in for
    an LLM that thinks for a while)."""

    name = "bench"

    def __init__(self, latency_s: float):
        self.latency_s = latency_s
        self.n = 0

    def propose(self, context: ProposalContext) -> Proposal | None:
        time.sleep(self.latency_s)
        self.n += 1
        edit = FileEdit("train.py", ANCHOR, f"# trial {self.n}\n{ANCHOR}")
        return Proposal(description=f"comment {self.n}", edits=(edit,), proposer=self.name)

    def observe(self, experiment: Experiment) -> None:
        return None


def campaign(root: Path, name: str, *, slots: int, lookahead: int, latency_s: float, run_seconds: float,
             experiments: int, ray: dict[str, object] | None = None) -> dict[str, float]:
    arena = make_synthetic_arena(root / name, run_seconds=run_seconds,
                                 config_overrides={"arena": {"time_budget_s": max(10.0, run_seconds * 2)}})
    overrides: dict[str, object] = {"runner.slots": slots, "proposer.lookahead": lookahead, "judge.policy": "greedy"}
    if ray is not None:
        overrides["runner.kind"] = "ray"
        overrides.update({f"runner.ray.{k}": v for k, v in ray.items()})
    outcome, _ = run_campaign(
        arena, tag="bench", proposer=CommentProposer(latency_s), max_experiments=experiments + 1, overrides=overrides,
    )
    assert outcome.exit_code == 0, outcome
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    runs = db.execute("SELECT started_at, finished_at, duration_s FROM runs WHERE experiment_id > 0").fetchall()
    statuses = [r[0] for r in db.execute("SELECT status FROM experiments WHERE id > 0")]
    db.close()
    assert len(runs) == experiments and all(s == "discard" for s in statuses), (len(runs), statuses)
    start = min(r[0] for r in runs)
    end = max(r[1] for r in runs)
    busy = sum(r[2] for r in runs)
    wall = end - start
    overhead = sum(r[1] - r[0] - r[2] for r in runs) / len(runs)
    return {"wall_s": wall, "duty": busy / (wall * slots), "per_s": len(runs) / wall, "runs": len(runs),
            "overhead_s": overhead}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-seconds", type=float, default=2.0, help="length of each sleep-run (at least 2)")
    ap.add_argument("--experiments", type=int, default=16, help="candidates per campaign (x slots in (b))")
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--runner", choices=["local", "ray"], default="local")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    R, n = args.run_seconds, args.experiments
    out: dict[str, dict[str, float]] = {}
    if args.runner == "ray":
        out = ray_bench(R, n)
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"(a) one slot, proposer latency {0.25 * R:.2f} s = 25 % of a {R:g} s run, {n} candidates")
        for name, lookahead in (("serial", 0), ("pipelined", 1)):
            r = campaign(root, f"a-{name}", slots=1, lookahead=lookahead, latency_s=0.25 * R, run_seconds=R, experiments=n)
            out[f"a_{name}"] = r
            print(f"    {name:<10} duty cycle {100 * r['duty']:5.1f} %   wall {r['wall_s']:6.1f} s")
        print(f"(b) sleep-runs of {R:g} s, no proposer latency: 1 slot ({n} candidates) vs {args.slots} slots "
              f"({n * args.slots} candidates)")
        one = campaign(root, "b-1", slots=1, lookahead=0, latency_s=0.0, run_seconds=R, experiments=n)
        many = campaign(root, f"b-{args.slots}", slots=args.slots, lookahead=0, latency_s=0.0, run_seconds=R,
                        experiments=n * args.slots)
        out["b_1"], out[f"b_{args.slots}"] = one, many
        ratio = many["per_s"] / one["per_s"]
        print(f"    1 slot   {one['per_s']:.3f} experiments/s (duty {100 * one['duty']:.1f} %)")
        print(f"    {args.slots} slots  {many['per_s']:.3f} experiments/s (duty {100 * many['duty']:.1f} %)")
        print(f"    speed-up {ratio:.2f}x (target >= {0.95 * args.slots:.1f}x)")
        out["speedup"] = {"ratio": ratio}
        print(f"(d) 2 slots, knobs proposer, lookahead auto, sleep-runs of {R:g} s, {n} candidates")
        d = knobs_campaign(root, run_seconds=R, experiments=n)
        out["d_knobs_2"] = d
        print(f"    duty {100 * d['duty']:.1f} %   keeps {d['keeps']:.0f}   moved onto a new incumbent "
              f"{d['rebased']:.0f}   dropped or stale {d['dropped']:.0f} (target 0)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def knobs_campaign(root: Path, *, run_seconds: float, experiments: int) -> dict[str, float]:
    arena = make_synthetic_arena(root / "d-knobs", run_seconds=run_seconds,
                                 config_overrides={"arena": {"time_budget_s": max(10.0, run_seconds * 2)}})
    outcome, _ = run_campaign(arena, tag="bench", proposer_kind="knobs", max_experiments=experiments + 1,
                              overrides={"runner.slots": 2, "proposer.lookahead": "auto", "judge.policy": "greedy"})
    assert outcome.exit_code == 0, outcome
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    runs = db.execute("SELECT started_at, finished_at, duration_s FROM runs WHERE experiment_id > 0").fetchall()
    rows = db.execute("SELECT status, reason, proposal_json FROM experiments WHERE id > 0").fetchall()
    db.close()
    wall = max(r[1] for r in runs) - min(r[0] for r in runs)
    dropped = sum(1 for st, why, _ in rows if st == "invalid" or (why or "").startswith(("dropped", "stale")))
    rebased = sum(1 for *_, pj in rows if json.loads(pj).get("meta", {}).get("knobs", {}).get("rebased"))
    return {"duty": sum(r[2] for r in runs) / (wall * 2), "keeps": sum(1 for st, *_ in rows if st == "keep"),
            "rebased": rebased, "dropped": dropped, "experiments": len(rows)}


def ray_bench(R: float, n: int, slots: int = 4) -> dict[str, dict[str, float]]:
    from autoresearch.testing import RayCluster

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, RayCluster(workers=1, cpus=slots) as cluster, cluster.driver():
        root = Path(tmp)
        ray = {"address": cluster.address, "num_cpus": 1, "work_dir": str(cluster.temp_dir / "nodes")}
        print(f"(c) Ray on loopback (head + 1 worker node, {slots} CPUs), sleep-runs of {R:g} s: 1 slot ({n} "
              f"candidates) vs {slots} slots ({n * slots} candidates); local 1 slot for the overhead")
        local = campaign(root, "c-local", slots=1, lookahead=0, latency_s=0.0, run_seconds=R, experiments=n)
        one = campaign(root, "c-ray-1", slots=1, lookahead=0, latency_s=0.0, run_seconds=R, experiments=n, ray=ray)
        many = campaign(root, f"c-ray-{slots}", slots=slots, lookahead=0, latency_s=0.0, run_seconds=R,
                        experiments=n * slots, ray=ray)
        out["local_1"], out["ray_1"], out[f"ray_{slots}"] = local, one, many
        ratio = many["per_s"] / one["per_s"]
        print(f"    local 1 slot  {local['per_s']:.3f} experiments/s, overhead per run {1000 * local['overhead_s']:.0f} ms")
        print(f"    ray 1 slot    {one['per_s']:.3f} experiments/s, overhead per run {1000 * one['overhead_s']:.0f} ms")
        print(f"    ray {slots} slots   {many['per_s']:.3f} experiments/s (duty {100 * many['duty']:.1f} %), "
              f"overhead per run {1000 * many['overhead_s']:.0f} ms")
        print(f"    speed-up {ratio:.2f}x (target >= {0.9 * slots:.1f}x)")
        out["speedup"] = {"ratio": ratio}
    return out


if __name__ == "__main__":
    main()
