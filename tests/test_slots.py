"""Parallel slots and pipelined proposals: real multi-slot campaigns on the synthetic arena.

The arena's train.py here sleeps for SLEEP seconds and writes a trace (its working
directory, slot environment and start/end times) so the tests can see what ran where and
when. The objective is noise-free, so statuses are exact."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch.slots import Slot, parse_slots
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import _env, git, ledger_rows, run_cli

pytestmark = [pytest.mark.slow]  # end-to-end: make test-fast leaves it out

TRAIN = '''"""Synthetic arena with a sleep and a trace of every run."""
import json, os, time
from prepare import evaluate, report

LEARNING_RATE = 0.01
WIDTH = 64
DROPOUT = 0.3
WARMUP_STEPS = 500
SLEEP = 0.3

if __name__ == "__main__":
    t0 = time.time()
    time.sleep(SLEEP)
    keys = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "AUTORESEARCH_SLOT",
            "AUTORESEARCH_EXPERIMENT_ID", "AUTORESEARCH_ATTEMPT", "AUTORESEARCH_PHASE")
    trace = {k: os.environ.get(k) for k in keys}
    trace.update(cwd=os.getcwd(), start=t0, end=time.time(), pid=os.getpid())
    d = os.path.join(os.environ["AUTORESEARCH_ARENA_DIR"], ".autoresearch", "trace")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{os.getpid()}-{t0}.json"), "w") as f:
        json.dump(trace, f)
    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))
'''


# -- slot descriptors (pure) --------------------------------------------------------------------
@pytest.mark.parametrize("value, cores, expected", [
    (1, 8, [Slot(0, "local", {})]),
    ("1", 8, [Slot(0, "local", {})]),
    (2, 8, [Slot(0, "cpu:4", {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4",
                              "OPENBLAS_NUM_THREADS": "4", "NUMEXPR_NUM_THREADS": "4"}),
            Slot(1, "cpu:4", {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4",
                              "OPENBLAS_NUM_THREADS": "4", "NUMEXPR_NUM_THREADS": "4"})]),
    (3, 2, [Slot(i, "cpu:1", {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                               "OPENBLAS_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}) for i in range(3)]),
    ("cuda:0,cuda:1", 8, [Slot(0, "cuda:0", {"CUDA_VISIBLE_DEVICES": "0"}), Slot(1, "cuda:1", {"CUDA_VISIBLE_DEVICES": "1"})]),
    (["cuda:2+3", "local"], 8, [Slot(0, "cuda:2+3", {"CUDA_VISIBLE_DEVICES": "2,3"}), Slot(1, "local", {})]),
    (["cpu:3"], 8, [Slot(0, "cpu:3", {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3",
                                     "OPENBLAS_NUM_THREADS": "3", "NUMEXPR_NUM_THREADS": "3"})]),
])
def test_parse_slots(value, cores, expected):
    assert parse_slots(value, cores) == expected


@pytest.mark.parametrize("value, message", [
    (0, "at least 1"),
    ("gpu:0", "unknown slot 'gpu:0'"),
    (["cuda:0", "cuda:0"], "both use GPU 0"),
    (["cuda:0+1", "cuda:1"], "both use GPU 1"),
    ("cuda:0,,cuda:1", "empty slot"),
    (["cpu:0"], "at least 1"),
    (True, "a number or a list"),
])
def test_parse_slots_errors(value, message):
    with pytest.raises(ValueError, match=message):
        parse_slots(value, 4)


def test_bad_slots_on_the_command_line_is_a_clear_error(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    r = run_cli("run", arena, "--slots", "cuda:0,tpu:1", "--max-experiments", "1")
    assert r.returncode == 2 and "unknown slot 'tpu:1'" in r.stderr, r.stderr  # a bad flag value: exit 2


# -- helpers ------------------------------------------------------------------------------------
def trace_arena(path: Path, **config) -> Path:
    overrides = {"judge": {"policy": "greedy"}, **config}
    return make_synthetic_arena(path, extra_files={"train.py": TRAIN}, config_overrides=overrides)


def traces(arena: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (arena / ".autoresearch" / "trace").glob("*.json")]


def experiments(arena: Path) -> dict[int, dict]:
    return {r["id"]: dict(r) for r in ledger_rows(arena, "SELECT * FROM experiments ORDER BY id")}


def check_consistent(arena: Path, tag: str) -> None:
    """Every experiment terminal; the kept ones form the branch, each on its predecessor;
    every other committed one has its archive ref; no run left open."""
    exps = experiments(arena)
    assert all(e["status"] in ("keep", "discard", "crash", "timeout", "invalid") for e in exps.values()), exps
    keeps = [e for e in exps.values() if e["status"] == "keep"]
    chain = git(arena, "rev-list", "--first-parent", f"autoresearch/{tag}").split()
    assert [e["commit_sha"] for e in sorted(keeps, key=lambda e: e["finished_at"], reverse=True)] == chain[: len(keeps)]
    for e in keeps[1:]:
        assert git(arena, "rev-parse", f"{e['commit_sha']}^") == e["parent"]
    archived = git(arena, "for-each-ref", "--format=%(refname:short)", f"refs/autoresearch/{tag}/").split()
    assert sorted(int(r.rsplit("/", 1)[1]) for r in archived) == sorted(
        e["id"] for e in exps.values() if e["status"] != "keep" and e["commit_sha"])
    assert ledger_rows(arena, "SELECT COUNT(*) AS n FROM runs WHERE status='running'")[0]["n"] == 0
    assert git(arena, "status", "--porcelain") == ""


# -- a real multi-slot campaign -----------------------------------------------------------------
def test_three_slots_run_concurrently_in_their_own_worktrees_with_their_env(tmp_path):
    arena = trace_arena(tmp_path / "arena")
    steps = [("LEARNING_RATE", 0.01, v) for v in (0.02, 0.005, 0.003, 0.05)] + \
            [("WIDTH", 64, v) for v in (128, 32, 256)] + [("DROPOUT", 0.3, v) for v in (0.2, 0.5)]
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"{n} {a}->{b}", "edits": [constant_edit(n, a, b)]} for n, a, b in steps])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, "--slots", "cuda:0,cuda:1,cpu:2", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "=cuda:1" in r.stdout

    runs = traces(arena)
    ledger_runs = ledger_rows(arena, "SELECT * FROM runs")
    assert len(runs) == len(ledger_runs) >= 6  # some proposals no longer apply after a keep: invalid, not run
    # the runs really overlapped: at some moment 3 ran at once
    most = max(sum(1 for o in runs if o["start"] <= t["start"] < o["end"]) for t in runs)
    assert most == 3, most
    # no two overlapping runs shared a worktree
    for a in runs:
        for b in runs:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["cwd"] != b["cwd"], (a, b)
    # each run got its slot's environment, and the ledger names the same slot
    expected_env = {"0": ("0", None), "1": ("1", None), "2": ("", "2")}
    for t in runs:
        assert (t["CUDA_VISIBLE_DEVICES"], t["OMP_NUM_THREADS"]) == expected_env[t["AUTORESEARCH_SLOT"]], t
        assert t["cwd"].endswith(f"worktrees/s/slot-{t['AUTORESEARCH_SLOT']}"), t
    by_slot = {(r["experiment_id"], r["attempt"]): r["slot"] for r in ledger_runs}
    for t in runs:
        slot = by_slot[(int(t["AUTORESEARCH_EXPERIMENT_ID"]), int(t["AUTORESEARCH_ATTEMPT"]))]
        assert slot.startswith(f"slot{t['AUTORESEARCH_SLOT']}="), (slot, t)
    check_consistent(arena, "s")
    exps = experiments(arena)
    assert len(exps) == 10
    # whatever the interleaving, the best of these single-knob changes on the chain wins
    best = min(e["metric"] for e in exps.values() if e["status"] == "keep")
    assert best == pytest.approx(min(e["metric"] for e in exps.values() if e["metric"] is not None), abs=0.2)


def test_stale_proposals_are_rebased_or_refused_and_the_ledger_says_which(tmp_path):
    """Two slots, two proposals prepared ahead. #1 (fast) is kept while #2 (slow) runs and
    while #3 and #4 wait: #3 edits the line #1 changed (refused: stale), #4 applies to the
    new incumbent (rebased). #2 beats the parent it ran on, so it is rebuilt on the new
    incumbent and measured again before it is kept."""
    arena = trace_arena(tmp_path / "arena", proposer={"lookahead": 2})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr (fast)", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
        {"description": "wider (slow)", "edits": [constant_edit("WIDTH", 64, 256), constant_edit("SLEEP", 0.3, 2.5)]},
        {"description": "lr again", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.005)]},
        {"description": "less dropout", "edits": [constant_edit("DROPOUT", 0.3, 0.1)]},
    ])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, "--slots", "2", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = experiments(arena)
    base = exps[0]["commit_sha"]
    assert [exps[i]["status"] for i in range(5)] == ["keep", "keep", "keep", "invalid", "keep"]
    # proposals #1..#4 were all prepared against the baseline (lookahead 2, two free slots)
    assert all(json.loads(exps[i]["proposal_json"])["description"] for i in range(1, 5))
    assert exps[3]["reason"].startswith(f"stale: proposed for {base[:7]}; on the incumbent {exps[1]['commit_sha'][:7]}")
    assert "matches nothing" in exps[3]["reason"], exps[3]["reason"]
    assert exps[4]["parent"] == exps[1]["commit_sha"]
    assert any(w.startswith(f"rebased: proposed for {base[:7]}") for w in json.loads(exps[4]["warnings_json"]))
    # #2 ran twice: on the baseline (attempt 1), then on #4 (attempt 2), and was kept there
    assert exps[2]["attempt"] == 2 and exps[2]["parent"] == exps[4]["commit_sha"]
    assert any("rebased onto #4" in w for w in json.loads(exps[2]["warnings_json"]))
    runs2 = ledger_rows(arena, "SELECT attempt, metric FROM runs WHERE experiment_id=2 ORDER BY id")
    assert [(x["attempt"], round(x["metric"], 6)) for x in runs2] == [(1, 1.265557), (2, 1.048856)]
    assert git(arena, "rev-parse", "autoresearch/s") == exps[2]["commit_sha"]
    check_consistent(arena, "s")


def test_a_winner_whose_edits_no_longer_apply_is_dropped(tmp_path):
    arena = trace_arena(tmp_path / "arena", proposer={"lookahead": 0})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "less dropout (fast)", "edits": [constant_edit("DROPOUT", 0.3, 0.1)]},
        {"description": "some dropout, wider (slow)",
         "edits": [constant_edit("DROPOUT", 0.3, 0.2), constant_edit("WIDTH", 64, 256), constant_edit("SLEEP", 0.3, 2.0)]},
        {"description": "worse lr (slow)", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.1), constant_edit("SLEEP", 0.3, 1.5)]},
    ])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, "--slots", "2", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = experiments(arena)
    assert [exps[i]["status"] for i in range(4)] == ["keep", "keep", "discard", "discard"]
    assert exps[2]["reason"].startswith("dropped: beat its parent #0"), exps[2]["reason"]
    assert "on the new incumbent #1" in exps[2]["reason"]
    assert exps[2]["attempt"] == 1
    # #3 ran on #1 and lost against it: an ordinary discard
    assert exps[3]["parent"] == exps[1]["commit_sha"] and "does not beat" in exps[3]["reason"]
    check_consistent(arena, "s")


def test_pipelined_proposals_are_prepared_while_the_previous_run_executes(tmp_path):
    arena = trace_arena(tmp_path / "arena", proposer={"lookahead": 1})
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"lr {v}", "edits": [constant_edit("LEARNING_RATE", 0.01, v)]} for v in (0.02, 0.005, 0.003)])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = experiments(arena)
    for i in (2, 3):  # proposed (created) before the one before it finished
        assert exps[i]["created_at"] < exps[i - 1]["finished_at"], (exps[i], exps[i - 1])
    # and each is applied to the incumbent of its start, which the previous keep had moved
    assert exps[3]["parent"] == exps[2]["commit_sha"] and exps[2]["status"] == "keep"
    check_consistent(arena, "s")


def test_baseline_runs_are_spread_over_the_slots(tmp_path):
    arena = trace_arena(tmp_path / "arena", judge={"policy": "confirm", "baseline_runs": 4})
    r = run_cli("run", arena, "--tag", "s", "--slots", "2", "--max-experiments", "1", "--proposer", "knobs")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = ledger_rows(arena, "SELECT slot, seed FROM runs WHERE experiment_id=0")
    assert sorted(x["seed"] for x in runs) == [0, 1, 2, 3]
    assert {x["slot"] for x in runs} == {"slot0=cpu:1", "slot1=cpu:1"} or len({x["slot"] for x in runs}) == 2
    assert experiments(arena)[0]["runs_n"] == 4


def test_sigterm_with_two_slots_interrupts_both_and_resume_completes(tmp_path):
    arena = trace_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"lr {v} slow", "edits": [constant_edit("LEARNING_RATE", 0.01, v), constant_edit("SLEEP", 0.3, 3.0)]}
        for v in (0.02, 0.005, 0.003)])
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--tag", "s", "--proposals",
                             str(props), "--slots", "2"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        if len([t for t in (arena / ".autoresearch" / "trace").glob("*.json")]) >= 1:  # the baseline ran
            try:
                running = ledger_rows(arena, "SELECT COUNT(*) AS n FROM runs WHERE status='running'")[0]["n"]
            except Exception:
                continue
            if running == 2:
                break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, out + err
    exps = experiments(arena)
    assert [exps[i]["status"] for i in (1, 2)] == ["interrupted", "interrupted"]
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, "--slots", "2", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = experiments(arena)
    assert [exps[i]["attempt"] for i in (1, 2, 3)] == [2, 2, 1]
    check_consistent(arena, "s")


def test_kill_9_with_two_slots_running_then_resume_is_consistent(tmp_path):
    from test_resume import leftover_processes

    arena = trace_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"lr {v} slow", "edits": [constant_edit("LEARNING_RATE", 0.01, v), constant_edit("SLEEP", 0.3, 2.0)]}
        for v in (0.02, 0.005, 0.003, 0.004)])
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "run", str(arena), "--tag", "s", "--proposals",
                             str(props), "--slots", "2"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            if ledger_rows(arena, "SELECT COUNT(*) AS n FROM runs WHERE status='running' AND experiment_id > 0")[0]["n"] == 2:
                break
        except Exception:  # the ledger is not there yet
            continue
    proc.kill()
    proc.wait(timeout=30)
    time.sleep(0.5)  # the guardian's poll interval is 0.2 s
    assert leftover_processes(arena) == []
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, "--slots", "2", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = experiments(arena)
    assert len(exps) == 5
    killed = {r["experiment_id"] for r in ledger_rows(arena, "SELECT experiment_id FROM runs WHERE status='interrupted'")}
    assert len(killed) == 2 and 0 not in killed  # the two runs killed with the harness, recorded as such
    check_consistent(arena, "s")
    assert leftover_processes(arena) == []


def test_a_hung_run_never_delays_the_other_slot(tmp_path):
    # FAULTS 33
    arena = trace_arena(tmp_path / "arena", arena={"time_budget_s": 3, "timeout_s": 6})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "hangs", "edits": [constant_edit("SLEEP", 0.3, 1000.0)]}] + [
        {"description": f"lr {v}", "edits": [constant_edit("LEARNING_RATE", 0.01, v)]} for v in (0.02, 0.005)] + [
        {"description": "wider", "edits": [constant_edit("WIDTH", 64, 128)]}])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props, "--slots", "2", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = experiments(arena)
    assert exps[1]["status"] == "timeout"
    for i in (2, 3, 4):  # all done on the other slot while #1 hung
        assert exps[i]["finished_at"] < exps[1]["finished_at"] - 2, (i, exps[i]["finished_at"], exps[1]["finished_at"])
    check_consistent(arena, "s")
