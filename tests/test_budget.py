"""Honest budgets: runs that take far longer than their time budget are said once per
campaign, and a budget the script cannot see is said at the start."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from autoresearch.engine.budget import (OVERRUN_MARK, allowance_s, busy, busy_note, noted_before, over_allowance_reason,
                                        overran, overrun_note, unseen_budget_note)
from autoresearch.testing import commit_all, write_proposals
from conftest import git, ledger_rows, run_cli


@pytest.mark.parametrize("duration_s, budget_s, expected", [
    (101.0, 60.0, True),     # nanoGPT: max_iters decides, the budget does not
    (326.0, 300.0, False),   # karpathy: 300 s of training, then start-up and evaluation
    (450.0, 300.0, False),   # exactly 1.5 x is not "clearly" over
    (451.0, 300.0, True),
    (11.0, 1.0, False),      # start-up of a short run: within budget + 10 s
    (11.5, 1.0, True),
    (14.0, 5.0, False),      # torch's import and a first compile on a 5 s budget
    (16.0, 5.0, True),
    (0.3, 300.0, False),     # a script that finishes early is never over
    (89.0, 60.0, False),
    (91.0, 60.0, True),
])
def test_overran(duration_s, budget_s, expected):
    assert overran(duration_s, budget_s) is expected


def test_the_note_says_what_to_do():
    ignores = overrun_note(exp_id=0, duration_s=101.2, budget_s=60, files={"train.py": "max_iters = 5000\n"},
                           timeout_s=180)
    assert ignores.startswith(OVERRUN_MARK)
    assert "#0 took 101 s on a 60 s time budget" in ignores and "train.py" in ignores
    for fix in ("AUTORESEARCH_TIME_BUDGET seconds", "--time-budget", "(max_iters in train.py)"):
        assert fix in ignores
    reads = overrun_note(exp_id=3, duration_s=130, budget_s=60,
                         files={"train.py": "B = os.environ['AUTORESEARCH_TIME_BUDGET']\n"}, timeout_s=180)
    assert "reads AUTORESEARCH_TIME_BUDGET" in reads and "about 70 s" in reads
    assert "\n" not in ignores + reads  # a console line is one line
    # karpathy's layout: train.py takes its budget through the readonly prepare.py, which reads it
    through = overrun_note(exp_id=1, duration_s=45, budget_s=10, timeout_s=80, files={
        "train.py": "import prepare\nbudget = prepare.time_budget()\n",
        "prepare.py": "def time_budget():\n    return float(os.environ.get('AUTORESEARCH_TIME_BUDGET', 300))\n"})
    assert "reads AUTORESEARCH_TIME_BUDGET" in through and "Nothing in" not in through


@pytest.mark.parametrize("budget_s, baseline_s, duration_s, invalid", [
    (10.0, 3.3, 30.0, True),     # trial 6: PPO epochs raised, 9x the baseline on a 10 s budget
    (10.0, 3.3, 14.0, False),    # longer than the baseline, but within the budget's margins
    (10.0, None, 30.0, True),    # no baseline run timed yet: the budget alone
    (60.0, 101.0, 140.0, False),  # nanoGPT: the script decides its length; as long as the baseline's
    (60.0, 101.0, 160.0, True),   # ... and clearly longer than that
    (300.0, 326.0, 330.0, False),  # karpathy: start-up and evaluation on top of a 300 s budget
])
def test_a_candidate_that_buys_compute(budget_s, baseline_s, duration_s, invalid):
    assert overran(duration_s, allowance_s(budget_s, baseline_s)) is invalid


@pytest.mark.parametrize("load, cpus, per_cpu, duration_s, allowed_s, expected", [
    (4.1, 2, 1.5, 65.0, 15.0, True),    # the HF trial: another session's tests on a 2-core machine
    (2.9, 2, 1.5, 65.0, 15.0, False),   # two slots of our own runs: not busy
    (40.0, 2, 0.0, 65.0, 15.0, False),  # busy_load = 0: never excused
    (3.1, 2, 1.5, 120.0, 12.0, False),  # 10 times over at 1.55 per CPU: more than the load explains (a review)
    (3.1, 2, 1.5, 55.0, 12.0, True),    # ... 4.6 times: within 3 x 1.55
])
def test_a_busy_machine(load, cpus, per_cpu, duration_s, allowed_s, expected):
    assert busy(load, cpus, per_cpu, duration_s, allowed_s) is expected


def test_the_reason_says_why_and_what_to_do():
    why = over_allowance_reason(30.0, 10.0, 3.3)
    assert why.startswith(OVERRUN_MARK) and "\n" not in why
    for words in ("took 30 s", "time budget is 10 s", "baseline's longest run 3.3 s", "--time-budget", "freeze"):
        assert words in why, why
    assert "baseline" not in over_allowance_reason(30.0, 10.0, None)
    note = busy_note(65.0, 15.0, 12.0, 4.1, 2)
    assert note.startswith("busy machine:") and "load 4.1 on 2 CPUs" in note and note.endswith("judged as usual")
    assert not noted_before([[note]])  # the campaign's one overrun note, with its fix, still comes (a review)


@pytest.mark.parametrize("warnings, expected", [
    ([], False),
    ([[], ["printed value disagrees"]], False),
    ([[], [OVERRUN_MARK + " a run of #0 took 101 s"]], True),
])
def test_said_once_per_campaign_across_resumes(warnings, expected):
    assert noted_before(warnings) is expected


KARPATHY_TRAIN = "from prepare import MAX_SEQ_LEN, TIME_BUDGET\nDEPTH = 8\nprint(f'val_bpb: {1.0:.6f}')\n"


@pytest.mark.parametrize("train, budget_s, words", [
    (KARPATHY_TRAIN, 60.0, ["AUTORESEARCH_TIME_BUDGET=60", "TIME_BUDGET = 300 from prepare.py", "trains 300 s",
                            "from prepare import ... TIME_BUDGET", "time_budget_s = 300"]),
    (KARPATHY_TRAIN, 300.0, None),   # the same budget: nothing to say
    ("import os\nfrom prepare import TIME_BUDGET\nTIME_BUDGET = int(os.environ.get('AUTORESEARCH_TIME_BUDGET', "
     "TIME_BUDGET))\n", 60.0, None),
    ("print('val_bpb: 1.0')\n", 60.0, None),
])
def test_a_budget_the_script_cannot_see(train, budget_s, words):
    files = {"train.py": train, "prepare.py": "TIME_BUDGET = 300        # seconds\n"}
    note = unseen_budget_note(files, ["train.py"], ["prepare.py"], budget_s)
    if words is None:
        assert note is None
    else:
        assert note is not None and all(w in note for w in words), note


SLEEPER = """import os, time
# ignores AUTORESEARCH_TIME_BUDGET, like a script whose length is a step count
SLEEP_S = 11.6
time.sleep(SLEEP_S)
print("val_loss: 1.0")
"""


PYTHON_ENV = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}


def _arena(path, train: str, files: dict[str, str] | None = None):
    path.mkdir()
    (path / "train.py").write_text(train)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    git(path, "init", "-q")
    commit_all(path, "arena")
    return path


@pytest.mark.slow
def test_runs_over_budget_are_said_once(tmp_path):
    arena = _arena(tmp_path / "a", SLEEPER, {"autoresearch.toml": (
        '[arena]\neditable = ["train.py"]\nrun = "python train.py"\ntime_budget_s = 1\ntimeout_s = 60\n'
        '[metric]\nname = "val_loss"\n[judge]\nbaseline_runs = 2\n[runner]\nslots = 2\n')})
    r = run_cli("run", arena, "--max-experiments", "1", env=PYTHON_ENV, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(OVERRUN_MARK) == 1, r.stdout  # two runs over budget, one note
    assert "autoresearch ablate" not in r.stdout  # nothing kept: nothing to ablate
    assert "on a 1.0 s time budget" in r.stdout and "AUTORESEARCH_TIME_BUDGET" in r.stdout
    warned = [w for row in ledger_rows(arena, "SELECT warnings_json FROM runs") for w in json.loads(row[0])]
    assert len([w for w in warned if w.startswith(OVERRUN_MARK)]) == 1
    status = json.loads(run_cli("status", arena, "--json").stdout)
    assert any(OVERRUN_MARK in w for run in status["experiments"][0]["runs"] for w in run["warnings"])


def test_a_budget_from_a_readonly_file_is_warned_at_the_start(tmp_path):
    arena = _arena(tmp_path / "k", KARPATHY_TRAIN, {"prepare.py": "MAX_SEQ_LEN = 2048\nTIME_BUDGET = 300        # seconds\n",
                                                  "program.md": "# go\n"})
    dry = run_cli("run", arena, "--dry-run", "--time-budget", "5")
    assert dry.returncode == 0 and "warning: time budget: runs get AUTORESEARCH_TIME_BUDGET=5" in dry.stderr, dry.stderr
    r = run_cli("run", arena, "--time-budget", "5", "--judge", "greedy", "--max-experiments", "1", env=PYTHON_ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "time budget: runs get AUTORESEARCH_TIME_BUDGET=5" in r.stdout
    assert OVERRUN_MARK not in r.stdout  # the run itself was short


@pytest.mark.slow
def test_a_candidate_far_over_budget_is_invalid_not_kept(tmp_path):
    """A change that makes the run take far longer than the budget and the baseline (more
    epochs, a bigger model) is no fair comparison: invalid, however good its metric."""
    train = "import time\nSLEEP_S = 0.0\nLOSS = 2.0\ntime.sleep(SLEEP_S)\nprint(f'val_loss: {LOSS}')\n"
    arena = _arena(tmp_path / "a", train, {"autoresearch.toml": (
        '[arena]\neditable = ["train.py"]\nrun = "python train.py"\ntime_budget_s = 1\ntimeout_s = 60\n'
        '[metric]\nname = "val_loss"\n[proposer]\nkind = "scripted"\n[judge]\npolicy = "greedy"\n'
        '[runner]\nbusy_load = 0\n')})  # (never excused by a busy machine: CI's load is no excuse here)
    props = write_proposals(tmp_path / "proposals.json", [
        {"description": "train 14 s", "edits": [{"path": "train.py", "search": "SLEEP_S = 0.0\nLOSS = 2.0",
                                                 "replace": "SLEEP_S = 14.0\nLOSS = 1.0"}]},  # (a baseline slowed
        # to 3 s by a busy machine still leaves it over: more than 1.5 x 3 s and 3 s + 10 s; a review)
        {"description": "the same again", "edits": [{"path": "train.py", "search": "SLEEP_S = 0.0\nLOSS = 2.0",
                                                     "replace": "SLEEP_S = 14.0\nLOSS = 1.0"}]},
        {"description": "better and quick", "edits": [{"path": "train.py", "search": "LOSS = 2.0",
                                                       "replace": "LOSS = 1.5"}]},
    ])
    r = run_cli("run", arena, "--proposals", props, "--max-experiments", "4", env=PYTHON_ENV, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(arena, "SELECT id, status, reason FROM experiments ORDER BY id")
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep"), (1, "invalid"), (2, "invalid"), (3, "keep")], rows
    # the same code is not run again at full cost: it ran, so it counts as tried (a review)
    assert rows[2]["reason"].startswith("duplicate") and ledger_rows(arena, "SELECT id FROM runs WHERE experiment_id=2") == []
    assert f"next: `autoresearch ablate {arena} --tag" in r.stdout  # (run from elsewhere: the arena named)
    assert rows[1]["reason"].startswith(OVERRUN_MARK) and "time budget is 1.0 s" in rows[1]["reason"]
    branch = json.loads(run_cli("status", arena, "--json").stdout)["campaign"]["branch"]
    assert "LOSS = 1.5" in git(arena, "show", f"{branch}:train.py")  # not the 14-second run's 1.0


@pytest.mark.slow
def test_with_an_eval_both_sides_count_the_eval(tmp_path):
    """A review: the baseline's allowance held its eval's 5 s, a candidate's run did not, so
    11 s of training (16 s with its eval, on a 1 s budget) passed as no more than the baseline."""
    train = "import time\nSLEEP_S = 0.0\ntime.sleep(SLEEP_S)\n"
    evaluate = "import time\ntime.sleep(5)\nprint('val_loss: 1.0')\n"
    arena = _arena(tmp_path / "a", train, {"evaluate.py": evaluate, "autoresearch.toml": (
        '[arena]\neditable = ["train.py"]\nreadonly = ["evaluate.py"]\nrun = "python train.py"\n'
        'eval = "python evaluate.py"\ntime_budget_s = 1\ntimeout_s = 60\n'
        '[metric]\nname = "val_loss"\n[proposer]\nkind = "scripted"\n[judge]\npolicy = "greedy"\n'
        '[runner]\nbusy_load = 0\n')})  # (never excused by a busy machine: CI's load is no excuse here)
    props = write_proposals(tmp_path / "proposals.json", [
        {"description": "train 11 s", "edits": [{"path": "train.py", "search": "SLEEP_S = 0.0",
                                                 "replace": "SLEEP_S = 11.0"}]}])
    r = run_cli("run", arena, "--proposals", props, "--max-experiments", "2", env=PYTHON_ENV, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(arena, "SELECT id, status, reason FROM experiments ORDER BY id")
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep"), (1, "invalid")], rows
    assert re.search(r"the run \(with its eval\) took 1\d s, where the time budget is 1\.0 s", rows[1]["reason"]), rows[1]
