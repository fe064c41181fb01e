"""Resume after the harness is killed (kill -9) at every durable step and at random times.

Every scenario must converge to the same ledger, git refs and results.tsv as a campaign
that was never killed (the arena is noise-free, so metrics are exact)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch.faults import POINTS
from autoresearch.testing import REFERENCE_PROPOSALS, make_synthetic_arena, write_proposals
from conftest import _env, git, ledger_rows, run_cli

pytestmark = [pytest.mark.slow]  # end-to-end: make test-fast leaves it out

PROPOSALS = REFERENCE_PROPOSALS  # keep, discard, crash, invalid, keep
EXPECTED = [
    (0, "keep", 1.465557, "baseline"), (1, "keep", 1.328856, "lower lr"), (2, "discard", 1.928856, "narrow"),
    (3, "crash", None, "bad dropout"), (4, "invalid", None, "not editable"), (5, "keep", 1.128856, "wider"),
]


def state(arena: Path) -> dict:
    rows = ledger_rows(arena, "SELECT * FROM experiments ORDER BY id")
    exps = [(r["id"], r["status"], None if r["metric"] is None else round(r["metric"], 6), r["description"]) for r in rows]
    commits = {r["id"]: r["commit_sha"] for r in rows}
    tip = git(arena, "rev-parse", "autoresearch/t")
    chain = git(arena, "rev-list", "autoresearch/t").split()
    archived = {}
    for line in git(arena, "for-each-ref", "--format=%(refname) %(objectname)", "refs/autoresearch/t/").splitlines():
        ref, sha = line.split()
        archived[int(ref.rsplit("/", 1)[1])] = sha
    tsv = (arena / "results.tsv").read_text().splitlines()
    return {"exps": exps, "commits": commits, "tip": tip, "chain": chain, "archived": archived, "tsv": tsv,
            "runs_open": ledger_rows(arena, "SELECT COUNT(*) AS n FROM runs WHERE status='running'")[0]["n"]}


def check_converged(arena: Path) -> None:
    s = state(arena)
    assert s["exps"] == EXPECTED
    c = s["commits"]
    assert s["tip"] == c[5]
    assert s["chain"] == [c[5], c[1], c[0]]
    assert s["archived"] == {2: c[2], 3: c[3]}
    assert c[4] is None
    assert s["runs_open"] == 0
    expected_tsv = ["commit\tval_loss\tmemory_gb\tstatus\tdescription"] + [
        f"{(c[i] or '0000000')[:7]}\t{(m or 0):.6f}\t{_mem(i)}\t{st}\t{d}" for i, st, m, d in EXPECTED]
    assert s["tsv"] == expected_tsv
    assert git(arena, "status", "--porcelain") == ""
    gitdir = arena / ".git"
    assert not list(gitdir.rglob("*.lock")), list(gitdir.rglob("*.lock"))
    worktrees = [l for l in git(arena, "worktree", "list", "--porcelain").splitlines() if l.startswith("worktree ")]
    assert len(worktrees) <= 2  # the user's checkout and at most one slot


def _mem(i: int) -> str:
    return {0: "0.2", 1: "0.2", 2: "0.1", 5: "1.0"}.get(i, "0.0")


def leftover_processes(arena: Path) -> list[int]:
    from autoresearch.runners.proctree import process_table, run_token_of

    import sqlite3

    try:
        rows = ledger_rows(arena, "SELECT run_token FROM runs")
    except sqlite3.OperationalError:  # the ledger is not created yet
        return []
    tokens = {f"AUTORESEARCH_RUN_TOKEN={r['run_token']}".encode() for r in rows}
    return [pid for pid in process_table() if run_token_of(pid) in tokens]


@pytest.fixture
def props(tmp_path: Path) -> Path:
    return write_proposals(tmp_path / "proposals.json", PROPOSALS)


def test_reference_campaign(tmp_path, props):
    arena = make_synthetic_arena(tmp_path / "arena")
    r = run_cli("run", arena, "--tag", "t", "--proposals", props)
    assert r.returncode == 0, r.stderr
    check_converged(arena)


CASES = [(p, i) for p in POINTS for i in (1, 2)] + [
    ("after_running", 0), ("after_run", 0), ("after_terminal", 0), ("mid_run", 0),
    ("after_run", 3), ("after_terminal", 3), ("mid_advance", 3), ("after_pending", 4),
]


@pytest.mark.parametrize("point, exp_id", CASES, ids=[f"{p}-{i}" for p, i in CASES])
def test_kill_at_each_durable_step_then_resume(tmp_path, props, point, exp_id):
    # FAULTS 18, 19
    arena = make_synthetic_arena(tmp_path / "arena")
    killed = run_cli("run", arena, "--tag", "t", "--proposals", props, env={"AUTORESEARCH_CRASH_AT": f"{point}:{exp_id}"})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stdout, killed.stderr)
    resumed = run_cli("run", arena, "--tag", "t", "--proposals", props)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_converged(arena)
    attempts = {r["id"]: r["attempt"] for r in ledger_rows(arena, "SELECT id, attempt FROM experiments")}
    # an experiment killed after it was marked running is re-run as attempt 2; one killed
    # before (still pending: it never ran) gets its first attempt on resume
    started = POINTS.index("after_running") <= POINTS.index(point) < POINTS.index("after_terminal")
    assert attempts[exp_id] == (2 if started and not (exp_id == 4) else 1)
    assert all(a == 1 for i, a in attempts.items() if i != exp_id)
    assert leftover_processes(arena) == []


def _kill_sweep(tmp_path: Path, props: Path, kills_wanted: int, seed: int) -> int:
    rng = random.Random(seed)
    kills = 0
    campaign = 0
    while kills < kills_wanted:
        arena = make_synthetic_arena(tmp_path / f"arena{campaign}", run_seconds=0.05)
        campaign += 1
        for attempt in range(50):
            proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--tag", "t",
                                     "--proposals", str(props), "--no-report"], env=_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            # the window widens 1.5x every 10 starts in a campaign: on a loaded machine a start
            # can take longer than 1.6 s, and no run would ever get past it (CI failed so with
            # benchmarks beside it); a resume that never progresses still fails: 50 starts
            time.sleep(rng.uniform(0.3, 1.6) * 1.5 ** (attempt // 10))
            if proc.poll() is None:
                proc.kill()
                kills += 1
            out, err = proc.communicate(timeout=60)
            if proc.returncode == 0:
                break
            assert proc.returncode == -signal.SIGKILL, out + err
        else:
            raise AssertionError("the campaign never finished")
        check_converged(arena)
        assert leftover_processes(arena) == []
    return kills


def test_random_kill_sweep(tmp_path, props):
    # FAULTS 18: at least 20 kill -9 at random instants, each campaign converging.
    assert _kill_sweep(tmp_path, props, kills_wanted=20, seed=1234) >= 20


@pytest.mark.slow
def test_random_kill_sweep_long(tmp_path, props):
    assert _kill_sweep(tmp_path, props, kills_wanted=100, seed=98765) >= 100


SPAWNER = '''import os, signal, subprocess, sys, time
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
    os._exit(0)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
time.sleep(600)
if __name__ == "__main__":'''


def test_killed_harness_leaves_no_run_behind(tmp_path):
    # FAULTS 32: kill -9 of the harness mid-run; the run, its child and a setsid'd
    # grandchild that ignores SIGTERM all die without waiting for a resume.
    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [{"description": "spawn and hang", "edits": [
        {"path": "train.py", "search": 'if __name__ == "__main__":', "replace": SPAWNER}]}])
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--tag", "t", "--proposals",
                             str(props)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline and len(leftover_processes(arena)) < 4:  # sh/python root, fork, child
        time.sleep(0.05)
    assert len(leftover_processes(arena)) >= 3
    proc.kill()
    proc.communicate(timeout=10)
    deadline = time.time() + 5
    while time.time() < deadline and leftover_processes(arena):
        time.sleep(0.05)
    assert leftover_processes(arena) == []
