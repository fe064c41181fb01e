"""Harness overhead per experiment, beyond the run itself, side by side with OpenEvolve's
per-iteration overhead, measured in the same benchmark run.

Ours: 50 experiments with the scripted proposer on an arena whose run command is trivial
(`echo`); each experiment's wall time is taken between consecutive "finish" events of the
engine, in process (propose, check, commit, run, measure, judge, ledger, branch, results.tsv).
The bare run is measured the same way in the same script: the same command spawned as the
runner spawns it (`/bin/sh -c`, new session, output to a pipe read to EOF).
Overhead = median(experiment wall) - median(bare run).

OpenEvolve 0.4.1 (PyPI, in a venv of its own, see `_openevolve.py`): a fake OpenAI-compatible
LLM on loopback answering at once, an evaluator that runs the same trivial subprocess;
overhead = median(iteration wall) - median(bare run in its evaluator). Its LLM round trip
over loopback is reported separately (our scripted proposer has no HTTP call).

Repeats alternate ours and theirs, so load on the machine hits both alike. `--tmp DIR` puts
both sides' temporary directories (our arena, OpenEvolve's work directory) in DIR: on the
development machine creating a file under /tmp costs ~0.7 ms against ~0.02 ms elsewhere on
the same disk, and a harness that keeps a durable record creates several files per experiment.

    python bench/overhead.py [--experiments 50] [--repeats 3] [--no-openevolve] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch.api import run_campaign
from autoresearch.events import Event, EventKind
from autoresearch.store.gitobjects import git
from autoresearch.testing import commit_all, write_proposals

RUN = "echo val_score: $AUTORESEARCH_EXPERIMENT_ID"


def make_arena(path: Path, n: int) -> Path:
    path.mkdir(parents=True)
    (path / "train.py").write_text("X = 0\n")
    (path / "prepare.py").write_text("# readonly\n")
    (path / "autoresearch.toml").write_text(
        "[arena]\neditable = [\"train.py\"]\nreadonly = [\"prepare.py\"]\n"
        f"run = \"{RUN}\"\ntime_budget_s = 5\n\n[metric]\nname = \"val_score\"\ngoal = \"maximize\"\n\n"
        "[judge]\npolicy = \"greedy\"\n"
    )
    git(["init", "-q"], path)
    commit_all(path, "bench arena")
    # maximize the experiment id: every experiment is kept and advances the branch
    write_proposals(path.parent / "proposals.json",
                    [{"description": f"x={i}", "edits": [{"path": "train.py", "search": f"X = {i - 1}\n",
                                                          "replace": f"X = {i}\n"}]} for i in range(1, n + 1)])
    return path


def bare_runs(cwd: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", RUN], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True, env={"AUTORESEARCH_EXPERIMENT_ID": "1"})
        assert p.stdout is not None
        p.stdout.read()
        p.wait()
        times.append(time.perf_counter() - t0)
    return times


def harness_runs(tmp: Path, n: int) -> list[float]:
    arena = make_arena(tmp / "arena", n)
    finishes: list[float] = []

    def report(e: Event) -> None:
        if e.kind == EventKind.FINISH:
            finishes.append(time.perf_counter())

    outcome, _ = run_campaign(arena, tag="bench", proposals=tmp / "proposals.json", proposer_kind="scripted",
                              max_experiments=n + 1, report=report)
    assert outcome.exit_code == 0, outcome
    # experiment k's wall time: from the end of k-1 to the end of k
    return [b - a for a, b in zip(finishes, finishes[1:])]


def ours(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        exp = harness_runs(tmp, n)
        bare = bare_runs(tmp / "arena", n)
    med_exp, med_bare = statistics.median(exp), statistics.median(bare)
    return {"wall": med_exp * 1000, "bare": med_bare * 1000, "overhead": (med_exp - med_bare) * 1000,
            "p90": 1000 * sorted(exp)[int(0.9 * len(exp))]}


def theirs(n: int, venv: Path | None) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).parent))
    from _openevolve import measure_openevolve

    r = measure_openevolve(iterations=n, venv=venv)
    return {"wall": r["median_iteration_ms"], "bare": r["bare_eval_ms"], "overhead": r["overhead_ms"],
            "p90": r["p90_iteration_ms"], "llm": r["llm_roundtrip_ms"], "version": r["openevolve_version"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-openevolve", action="store_true", help="measure ours only")
    ap.add_argument("--tmp", type=Path, help="temporary directories of both sides go here (default: the system's)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from _openevolve import default_venv

    venv = default_venv()  # where it is, whatever --tmp says
    if args.tmp is not None:
        args.tmp.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(args.tmp.resolve())
        os.environ["TMPDIR"] = tempfile.tempdir
    print(f"temporary directories in {tempfile.gettempdir()}", flush=True)
    rows = []
    for r in range(args.repeats):
        a = ours(args.experiments)
        b = None if args.no_openevolve else theirs(args.experiments, venv)
        rows.append((a, b))
        line = (f"repeat {r + 1}: ours: experiment {a['wall']:.1f} ms, bare run {a['bare']:.1f} ms, "
                f"overhead {a['overhead']:.1f} ms (p90 {a['p90']:.1f})")
        if b is not None:
            line += (f" | OpenEvolve {b['version']}: iteration {b['wall']:.1f} ms, bare eval {b['bare']:.1f} ms, "
                     f"overhead {b['overhead']:.1f} ms (of which LLM round trip {b['llm']:.1f}; p90 {b['p90']:.1f}) | "
                     f"ratio {a['overhead'] / b['overhead']:.2f}")
        print(line, flush=True)
    mine = statistics.median(a["overhead"] for a, _ in rows)
    print(f"median harness overhead per experiment: {mine:.1f} ms (python {sys.version.split()[0]})")
    if not args.no_openevolve:
        other = statistics.median(b["overhead"] for _, b in rows if b is not None)
        print(f"median OpenEvolve overhead per iteration: {other:.1f} ms; ratio ours / OpenEvolve: "
              f"{mine / other:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
