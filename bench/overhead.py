"""Harness overhead per experiment, beyond the run itself.

50 experiments with the scripted proposer on an arena whose run command is trivial
(`echo`); each experiment's wall time is taken between consecutive "finish" events of the
loop, in process. The bare run is measured the same way in the same script: the same
command spawned as the runner spawns it (`/bin/sh -c`, new session, output to a pipe
read to EOF). Overhead = median(experiment wall) - median(bare run).

    python bench/overhead.py [--experiments 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.api import run_campaign
from autoresearch.loop import Event
from autoresearch.testing import commit_all, write_proposals
from autoresearch.workspace import git

RUN = "echo val_score: $AUTORESEARCH_EXPERIMENT_ID"


def make_arena(path: Path, n: int) -> Path:
    path.mkdir(parents=True)
    (path / "train.py").write_text("X = 0\n")
    (path / "prepare.py").write_text("# readonly\n")
    (path / "autoresearch.toml").write_text(
        "[arena]\neditable = [\"train.py\"]\nreadonly = [\"prepare.py\"]\n"
        f"run = \"{RUN}\"\ntime_budget_s = 5\n\n[metric]\nname = \"val_score\"\ngoal = \"maximize\"\n"
    )
    git(["init", "-q"], path)
    commit_all(path, "bench arena")
    # alternate keep (every second experiment changes X upward) and discard is not needed:
    # maximize the experiment id, so every experiment is kept and advances the branch.
    write_proposals(path.parent / "proposals.json",
                    [{"description": f"x={i}", "edits": [{"path": "train.py", "search": f"X = {i - 1}\n" if i > 1 else "X = 0\n",
                                                          "replace": f"X = {i}\n"}]} for i in range(1, n + 1)])
    return path


def bare_runs(cwd: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", RUN], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, env={"AUTORESEARCH_EXPERIMENT_ID": "1"})
        p.stdout.read()
        p.wait()
        times.append(time.perf_counter() - t0)
    return times


def harness_runs(tmp: Path, n: int) -> list[float]:
    arena = make_arena(tmp / "arena", n)
    finishes: list[float] = []

    def report(e: Event) -> None:
        if e.kind == "finish":
            finishes.append(time.perf_counter())

    outcome, _ = run_campaign(arena, tag="bench", proposals=tmp / "proposals.json", proposer_kind="scripted",
                              max_experiments=n + 1, report=report)
    assert outcome.exit_code == 0, outcome
    # experiment k's wall time: from the end of k-1 to the end of k (proposal, checks,
    # commit, run, measure, ledger, git ref, results.tsv)
    return [b - a for a, b in zip(finishes, finishes[1:])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            exp = harness_runs(tmp, args.experiments)
            bare = bare_runs(tmp / "arena", args.experiments)
        med_exp, med_bare = statistics.median(exp), statistics.median(bare)
        rows.append((med_exp, med_bare, med_exp - med_bare))
        print(f"repeat {r + 1}: experiment median {med_exp * 1000:.1f} ms, bare run median {med_bare * 1000:.1f} ms, "
              f"overhead {1000 * (med_exp - med_bare):.1f} ms (p90 experiment {1000 * sorted(exp)[int(0.9 * len(exp))]:.1f} ms)")
    overhead = statistics.median(x[2] for x in rows)
    print(f"median harness overhead per experiment: {overhead * 1000:.1f} ms "
          f"(target <= 50 ms; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
