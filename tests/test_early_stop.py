"""Early stopping on real processes: the local runner stops a clearly worse run (its whole
process tree), lets a better one finish, reads the progress file and [metric] pattern
points; and a campaign end to end (real git, real SQLite, the CLI)."""

from __future__ import annotations

import dataclasses

import json
import os
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from autoresearch.progress import StopRule, curve_file_for, read_curve_file
from autoresearch.runners.local import LocalRunner
from autoresearch.runners.proctree import process_table, run_token_of
from autoresearch.runners.watch import WatchSpec
from autoresearch.runs.spec import DEFAULT_ENV_ALLOW, RunSpec, child_env
from autoresearch.testing import commit_all, write_proposals
from conftest import git, ledger_rows, run_cli

PY = sys.executable
# the incumbent: loss from 4 down to 2 over the budget, no spread
RULE = StopRule("train_loss", "minimize", tuple((i / 10, 4 - 2 * i / 10, 0.0) for i in range(11)),
                min_fraction=0.2, margin=0.1, z=0.0)


def spec(tmp_path: Path, script: str, timeout: float = 20) -> RunSpec:
    (tmp_path / "job.py").write_text(textwrap.dedent(script))
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    return RunSpec(command=f"{PY} job.py", cwd=tmp_path, env=child_env(os.environ, DEFAULT_ENV_ALLOW, {}),
                   timeout_s=timeout, log_path=tmp_path / "logs" / "run.log", token=uuid.uuid4().hex,
                   result_file=results / "result.json", kill_grace_s=0.5)


def token_holders(token: str) -> list[int]:
    want = f"AUTORESEARCH_RUN_TOKEN={token}".encode()
    return [pid for pid in process_table() if run_token_of(pid) == want]


PRINTS = """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    open("grandchild.pid", "w").write(str(child.pid))
    for i in range(1, 11):
        time.sleep(0.3)
        print(f"progress: {i / 10:.1f} train_loss: {START - (START - END) * i / 10:.3f}", flush=True)
    print("score: 1.0")
"""


def test_a_clearly_worse_run_is_stopped_with_its_whole_tree(tmp_path):
    s = spec(tmp_path, "START, END = 7.0, 5.0\n" + textwrap.dedent(PRINTS))
    t0 = time.monotonic()
    out = LocalRunner().run(s, watch=WatchSpec(3.0, rule=RULE))
    assert out.stopped_early_at == pytest.approx(0.3)
    assert out.stopped_reason.startswith("stopped early at 30 % of the budget: train_loss 6.4 vs the incumbent's 3.4")
    assert out.exit_code is None and not out.timed_out and not out.interrupted
    assert time.monotonic() - t0 < 2.5  # not the full 3 s of the script
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert grandchild not in process_table() and token_holders(s.token) == []
    assert [f for f, _ in out.progress["train_loss"]] == [0.1, 0.2, 0.3]


def test_a_better_run_is_not_stopped(tmp_path):
    s = spec(tmp_path, "START, END = 3.9, 1.9\n" + textwrap.dedent(PRINTS))
    out = LocalRunner().run(s, watch=WatchSpec(3.0, rule=RULE))
    assert out.stopped_early_at is None and out.exit_code == 0 and out.stopped_reason == ""
    assert len(out.progress["train_loss"]) == 10 and out.progress["train_loss"][-1] == (1.0, 1.9)


def test_without_a_rule_the_curve_is_only_recorded(tmp_path):
    s = spec(tmp_path, "START, END = 9.0, 8.0\n" + textwrap.dedent(PRINTS).replace("0.3", "0.01"))
    out = LocalRunner().run(s, watch=WatchSpec(3.0))
    assert out.exit_code == 0 and out.stopped_early_at is None and len(out.progress["train_loss"]) == 10


def test_the_progress_file_and_elapsed_fractions(tmp_path):
    s = spec(tmp_path, """
        import json, os, time
        path = os.environ["AUTORESEARCH_PROGRESS_FILE"]
        for i in range(1, 21):
            time.sleep(0.15)
            with open(path, "a") as f:
                f.write(json.dumps({"train_loss": 9.0}) + "\\n")  # no fraction: elapsed / budget
    """)
    out = LocalRunner().run(s, watch=WatchSpec(3.0, rule=RULE))
    assert out.stopped_early_at is not None and 0.2 <= out.stopped_early_at < 0.9
    assert out.exit_code is None


def test_metric_pattern_points(tmp_path):
    s = spec(tmp_path, """
        import time
        for i in range(5):
            time.sleep(0.05)
            print(f"step {i}: train loss 3.0, val loss {2 - i / 10:.2f}", flush=True)
    """)
    out = LocalRunner().run(s, watch=WatchSpec(10.0, metric="val_loss", pattern=r"val loss ([0-9.]+)"))
    values = [v for _, v in out.progress["val_loss"]]
    assert values == [2.0, 1.9, 1.8, 1.7, 1.6]
    assert all(0 < f < 0.5 for f, _ in out.progress["val_loss"])


# -- a campaign, end to end -----------------------------------------------------------------------

TRAIN = '''\
import os, time
START = 4.0        # where the loss starts
FINAL = 2.0        # where it ends: the score
LIE = 0.0          # a curve this much lower than the truth
budget = float(os.environ["AUTORESEARCH_TIME_BUDGET"])
for i in range(1, 11):
    time.sleep(budget / 10)
    print(f"progress: {i / 10:.1f} train_loss: {START + (FINAL - START) * i / 10 - LIE:.4f}", flush=True)
print("---")
print(f"score: {FINAL:.4f}")
'''

CONFIG = '''\
[arena]
editable = ["train.py"]
run = "python train.py"
time_budget_s = 1.5
timeout_s = 30

[metric]
name = "score"
goal = "minimize"

[judge]
policy = "greedy"
'''


def edit(on: dict[str, float] | None = None, **values: float) -> list[dict]:
    now = {"START": 4.0, "FINAL": 2.0, "LIE": 0.0, **(on or {})}
    return [{"path": "train.py", "search": f"{k} = {now[k]}", "replace": f"{k} = {v}"} for k, v in values.items()]


def _tiny_arena(tmp_path: Path) -> Path:
    arena = tmp_path / "arena"
    arena.mkdir(parents=True)
    (arena / "train.py").write_text(TRAIN)
    (arena / "autoresearch.toml").write_text(CONFIG)
    git(arena, "init", "-q", "-b", "main")
    commit_all(arena, "arena")
    return arena


@pytest.mark.slow
def test_campaign_stops_a_loser_keeps_a_winner_and_ignores_a_lying_curve(tmp_path):
    arena = _tiny_arena(tmp_path)
    props = write_proposals(tmp_path / "p.json", [
        {"description": "much worse", "edits": edit(START=8.0, FINAL=6.0)},             # 1 stopped early
        {"description": "better, but lies about its curve", "edits": edit(FINAL=1.8, LIE=1.5)},  # 2 keep
        {"description": "worse again", "edits": edit({"FINAL": 1.8, "LIE": 1.5}, START=8.0, FINAL=6.5, LIE=0.0)},  # 3 not stopped: the liar is no reference
    ])
    r = run_cli("run", arena, "--tag", "t", "--proposals", props, "--max-experiments", "10")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason, metric FROM experiments")}
    assert [rows[i]["status"] for i in range(4)] == ["keep", "discard", "keep", "discard"]
    assert rows[1]["reason"].startswith("stopped early at ") and "train_loss" in rows[1]["reason"]
    assert rows[1]["metric"] is None
    stopped = json.loads(ledger_rows(arena, "SELECT metrics_json FROM experiments WHERE id=1")[0]["metrics_json"])
    at = stopped["stopped_early_at"]  # how far behind the incumbent's curve it was there: 8 - 2f against 4 - 2f
    assert stopped["stopped_behind"] == pytest.approx(4 / (4 - 2 * at), rel=1e-3)
    assert "stopped early" not in rows[3]["reason"] and rows[3]["metric"] == pytest.approx(6.5)
    assert "early stopping paused" in r.stdout + r.stderr
    assert "early stopping: 1 of 3 candidate runs stopped" in r.stdout  # the summary at the end says what it did
    assert "early stopping: 1 of 3 candidate runs stopped" in run_cli("status", arena, "--tag", "t").stdout

    status = json.loads(run_cli("status", arena, "--tag", "t", "--json").stdout)
    runs = {e["id"]: e["runs"] for e in status["experiments"]}
    assert 0.2 <= runs[1][0]["stopped_early_at"] < 1.0 and runs[1][0]["status"] == "stopped"
    assert all("stopped_early_at" not in run for i in (0, 2, 3) for run in runs[i])
    tsv = (arena / "results.tsv").read_text().splitlines()
    assert tsv[2].split("\t")[1] == "0.000000" and tsv[2].endswith(f"(stopped early at {round(100 * runs[1][0]['stopped_early_at'])} %)")
    assert "stopped early" not in tsv[4]
    # the curves are kept beside the logs and in the ledger's run rows (the reference on resume)
    baseline_log = ledger_rows(arena, "SELECT log_path FROM runs WHERE experiment_id=0")[0]["log_path"]
    assert len(read_curve_file(curve_file_for(baseline_log))["train_loss"]) == 10
    curves = {x["experiment_id"]: json.loads(x["curves_json"]) for x in ledger_rows(arena, "SELECT experiment_id, curves_json FROM runs")}
    assert len(curves[0]["train_loss"]) == 10
    assert 2 <= len(curves[1]["train_loss"]) < 10  # the stopped run's points, up to where it was stopped


@pytest.mark.slow
def test_where_every_candidate_is_stopped_the_summary_says_what_to_change_and_that_works(tmp_path):
    arena = _tiny_arena(tmp_path)
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"much worse {i}", "edits": edit(START=8.0, FINAL=6.0 + i / 10)} for i in range(3)])
    r = run_cli("run", arena, "--tag", "t", "--proposals", props, "--max-experiments", "4")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "early stopping: 3 of 3 candidate runs stopped" in r.stdout
    assert "Every candidate was stopped" in r.stdout and "--set judge.early_stop=off" in r.stdout
    assert "Every candidate was stopped" in run_cli("status", arena, "--tag", "t").stdout
    # the advice, taken: a next campaign with early stopping off runs every candidate to its end
    r = run_cli("run", arena, "--tag", "t2", "--proposals", props, "--max-experiments", "4",
                "--set", "judge.early_stop=off")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "early stopping:" not in r.stdout
    rows = ledger_rows(arena, "SELECT e.id, e.status, e.metric FROM experiments e JOIN campaigns c "
                              "ON c.id = e.campaign_id WHERE c.tag = 't2' ORDER BY e.id")
    assert [x["metric"] for x in rows[1:]] == pytest.approx([6.0, 6.1, 6.2])


def test_on_a_ray_node_the_rule_travels_with_the_job(tmp_path):
    """The node side of the Ray runner (no cluster: ``remote.execute`` as the task calls it)."""
    from autoresearch.runners.remote import execute
    from test_ray_node import BASE, _job, _tar

    train = "START, END = 7.0, 5.0\n" + textwrap.dedent(PRINTS)
    watch = WatchSpec.from_json(WatchSpec(3.0, rule=RULE).to_json())  # as it crosses to the node
    out = execute(_job(tmp_path, files={"train.py": (train.encode(), 0o644)}), lambda: _tar(BASE), watch)
    assert out.stopped_early_at == pytest.approx(0.3) and out.exit_code is None
    assert out.stopped_reason.startswith("stopped early at 30 %") and len(out.progress["train_loss"]) == 3
    scratch = tmp_path / "node" / "scratch" / "drv-0"
    grandchild = int((scratch / "grandchild.pid").read_text())
    assert grandchild not in process_table()


def test_knobs_rebuild_a_stopped_experiment_as_a_pruned_trial(tmp_path):
    from autoresearch.progress import write_curve_file
    from autoresearch.proposers.knob_study import ledger_trials
    from autoresearch.proposers.knobs import KnobsProposer, code_signature
    from autoresearch.records import Experiment, Status
    from test_knobs import SYNTH, baseline, context

    p = KnobsProposer(seed=0)
    first = p.propose(context([baseline()]))
    log = tmp_path / "0001-a1-run.log"
    write_curve_file(curve_file_for(log), {"train_loss": [(0.1, 5.0), (0.2, 4.9), (0.3, 4.8)]})
    stopped = Experiment(id=1, status=Status.DISCARD, description=first.description, proposer="knobs", parent="c0",
                         commit="c1", meta=first.meta, metrics={"stopped_early_at": 0.3}, log_path=str(log))
    knobs, spaces = p.survey({"train.py": SYNTH})
    dists = {n: s.distribution() for n, s in spaces.items()}
    current = {k.name: k.value for k in knobs if k.name in spaces}
    trials = ledger_trials([baseline(), stopped], spaces, dists, current, code_signature({"train.py": SYNTH}, knobs), 1.5)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert len(pruned) == 1 and pruned[0].intermediate_values == {10: 5.0, 20: 4.9, 30: 4.8}
    assert pruned[0].value is None
    assert p.propose(context([baseline(), stopped])) is not None  # the sampler takes it
    # the ledger's curve (its run's row) is used first: the study is the same without the log files
    from_ledger = dataclasses.replace(stopped, log_path=str(tmp_path / "gone.log"),
                                      curves={"train_loss": [[0.1, 5.0], [0.2, 4.9], [0.3, 4.8]]})
    trials = ledger_trials([baseline(), from_ledger], spaces, dists, current, code_signature({"train.py": SYNTH}, knobs), 1.5)
    assert [t.intermediate_values for t in trials if t.state.name == "PRUNED"] == [{10: 5.0, 20: 4.9, 30: 4.8}]


@pytest.mark.slow
def test_the_incumbents_curve_survives_a_restart_and_off_disables(tmp_path):
    arena = _tiny_arena(tmp_path)
    assert run_cli("run", arena, "--tag", "t", "--max-experiments", "1").returncode == 0  # the baseline only
    kept = list((arena / ".autoresearch").rglob("*.progress.json"))
    assert kept
    for f in kept:
        f.unlink()  # review finding 11: the ledger holds the curves; the files beside the logs may go
    props = write_proposals(tmp_path / "p.json", [{"description": "much worse", "edits": edit(START=8.0, FINAL=6.0)}])
    r = run_cli("run", arena, "--tag", "t", "--proposals", props, "--max-experiments", "2")
    assert r.returncode == 0, r.stderr + r.stdout
    reason = ledger_rows(arena, "SELECT reason FROM experiments WHERE id=1")[0]["reason"]
    assert reason.startswith("stopped early at "), reason
    # [judge] early_stop = "off": the same candidate runs its whole budget
    arena2 = _tiny_arena(tmp_path / "off")
    r = run_cli("run", arena2, "--tag", "t", "--proposals", props, "--max-experiments", "2",
                "--set", "judge.early_stop=off")
    assert r.returncode == 0, r.stderr + r.stdout
    row = ledger_rows(arena2, "SELECT status, reason, metric FROM experiments WHERE id=1")[0]
    assert row["status"] == "discard" and "stopped early" not in row["reason"] and row["metric"] == pytest.approx(6.0)


@pytest.mark.slow
def test_the_tiny_gpt_arena_reports_a_training_loss_proxy(tmp_path):
    import shutil
    import subprocess

    from autoresearch.arenas import example_dir
    from autoresearch.progress import parse_progress_line

    arena = tmp_path / "tg"
    shutil.copytree(example_dir("tiny-gpt"), arena)
    (arena / "val.txt.xz").unlink()  # the validation text is the evaluator's: training does without it
    env = {**os.environ, "AUTORESEARCH_MAX_STEPS": "40", "AUTORESEARCH_SEED": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.run([PY, "train.py"], cwd=arena, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    points = [x for line in p.stdout.splitlines() if (x := parse_progress_line(line)) is not None]
    fractions = [f for f, _ in points]
    assert len(points) >= 15 and fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] < 1
    assert all(set(values) == {"train_loss"} for _, values in points)
    assert points[-1][1]["train_loss"] < points[0][1]["train_loss"]  # it learns


def _run(curves, final):
    from autoresearch.engine.early_stop import TrustedRun

    return TrustedRun({k: tuple(v) for k, v in curves.items()}, final)


@pytest.mark.parametrize("metric, goal, curves, key", [
    ("val_bpb", "minimize", {"train_loss": [(0.5, 3.0), (1.0, 2.0)]}, "train_loss"),     # a proxy the goal's way
    ("val_bpb", "minimize", {"val_bpb": [(0.5, 3.0), (1.0, 2.0)], "train_loss": [(0.5, 3.0), (1.0, 2.0)]}, "val_bpb"),
    ("accuracy", "maximize", {"train_loss": [(0.5, 3.0), (1.0, 2.0)]}, None),            # the other way: not used
    ("val_bpb", "minimize", {"step": [(0.5, 300.0), (1.0, 600.0)]}, None),               # says nothing of better
])
def test_which_curve_may_stand_for_the_metric(metric, goal, curves, key):
    from autoresearch.engine.early_stop import EarlyStopSettings, make_rule

    runs = [_run(curves, 2.0)]
    rule = make_rule(runs, runs, metric=metric, goal=goal, policy="greedy", settings=EarlyStopSettings(),
                     noise_sd=None, incumbent_id=0)
    assert (rule.key if rule is not None else None) == key
