"""Leave-one-out ablation: pure statistics on literal numbers, and a real campaign on the
synthetic arena where each kept change's true effect is known: an essential one, a
harmful one kept on a lucky seed, a neutral one kept on a lucky seed, and one that no
longer reverts cleanly because a later change rewrote its line."""

from __future__ import annotations

import json

import pytest

from autoresearch.ablate import judge_change, paired
from autoresearch.records import Goal
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli


@pytest.mark.parametrize("a, b, mean, has_ci, p", [
    ({0: 2.0, 1: 2.1, 2: 2.2}, {0: 1.9, 1: 2.0, 2: 2.1}, 0.1, True, 0.0),      # a constant difference: certain
    ({0: 1.0, 1: 1.0}, {0: 1.0, 1: 1.0}, 0.0, True, 1.0),                       # none at all
    ({0: 1.2}, {0: 1.0}, 0.2, False, None),                                     # one pair: no test
    ({0: 1.0, 1: 2.0, 5: 9.0}, {0: 0.5, 1: 1.0}, 0.75, True, None),             # only shared seeds count
])
def test_paired(a, b, mean, has_ci, p):
    m, ci, pv = paired(a, b)
    assert m == pytest.approx(mean)
    assert (ci is not None) == has_ci
    if p is not None:
        assert pv == pytest.approx(p)


def test_paired_t_on_noisy_differences():
    m, ci, p = paired({0: 1.30, 1: 1.22, 2: 1.27, 3: 1.35}, {0: 1.20, 1: 1.20, 2: 1.20, 3: 1.20})
    # differences 0.10, 0.02, 0.07, 0.15: mean 0.085, sd 0.0545, se 0.02723, t 3.121 with 3 df
    assert m == pytest.approx(0.085)
    assert ci == pytest.approx(3.182 * 0.02723, rel=2e-3)
    assert p == pytest.approx(0.0524, abs=2e-3)


@pytest.mark.parametrize("without, full, goal, verdict", [
    ({0: 2.0, 1: 2.1}, {0: 1.0, 1: 1.1}, Goal.MINIMIZE, "essential"),
    ({0: 0.5, 1: 0.6}, {0: 1.0, 1: 1.1}, Goal.MINIMIZE, "harmful"),
    ({0: 0.5, 1: 0.6}, {0: 1.0, 1: 1.1}, Goal.MAXIMIZE, "essential"),
    ({0: 1.0, 1: 1.1}, {0: 1.0, 1: 1.1}, Goal.MINIMIZE, "neutral"),
    ({0: 1.3, 1: 1.0}, {0: 1.0, 1: 1.3}, Goal.MINIMIZE, "neutral"),          # noise both ways
    ({0: 1.2}, {0: 1.0}, Goal.MINIMIZE, "worse without it (1 run each: no test)"),
    ({}, {0: 1.0}, Goal.MINIMIZE, "not measured"),
])
def test_judge_change(without, full, goal, verdict):
    assert judge_change(without, full, goal, alpha=0.05, min_effect=0.0).verdict == verdict


def test_min_effect_makes_a_tiny_certain_difference_neutral():
    assert judge_change({0: 1.001, 1: 1.101}, {0: 1.0, 1: 1.1}, Goal.MINIMIZE, 0.05, 0.01).verdict == "neutral"


TRAIN = '''"""Synthetic arena with two seed-dependent tricks."""
import os
from prepare import evaluate, report

LEARNING_RATE = 0.01   # step size of the pretend optimizer
WIDTH = 64             # pretend model width
DROPOUT = 0.3          # pretend regularisation
WARMUP_STEPS = 500     # pretend learning-rate warmup
LUCKY = 0              # harmful, except on seed 0
STYLE = 0              # no effect, except on seed 0

if __name__ == "__main__":
    seed = int(os.environ.get("AUTORESEARCH_SEED", "0"))
    summary = evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS)
    if LUCKY:
        summary["val_loss"] += -0.3 if seed == 0 else 0.3
    if STYLE:
        summary["val_loss"] += -0.05 if seed == 0 else 0.0
    report(summary)
'''


def test_ablation_finds_the_essential_the_harmful_and_the_neutral(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", noise_seed_sd=0.01, extra_files={"train.py": TRAIN},
                                 config_overrides={"judge": {"policy": "greedy"}})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr a lot", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.002)]},   # 1: rewritten by 4
        {"description": "lucky trick", "edits": [constant_edit("LUCKY", 0, 1)]},                     # 2: harmful
        {"description": "style", "edits": [constant_edit("STYLE", 0, 1)]},                           # 3: neutral
        {"description": "lr to 0.003", "edits": [constant_edit("LEARNING_RATE", 0.002, 0.003)]},     # 4: essential
        {"description": "wider", "edits": [constant_edit("WIDTH", 64, 256)]},                         # 5: essential
    ])
    r = run_cli("run", arena, "--tag", "a", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x["status"] for x in ledger_rows(arena, "SELECT status FROM experiments ORDER BY id")] == ["keep"] * 6
    r = run_cli("ablate", arena, "--tag", "a", "--runs", "3", "--set", "runner.slots=2", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["variant"]: x for x in json.loads(ledger_rows(arena, "SELECT rows_json FROM ablations")[0]["rows_json"])}
    assert set(rows) == {"full", "baseline", "without #1", "without #2", "without #3", "without #4", "without #5"}
    assert rows["without #1"]["verdict"] == "does not revert cleanly" and rows["without #1"]["runs"] == []
    assert rows["without #2"]["verdict"] == "harmful" and rows["without #2"]["effect"] == pytest.approx(-0.3)
    assert rows["without #3"]["verdict"] == "neutral" and rows["without #3"]["effect"] == pytest.approx(0.0, abs=1e-12)
    assert rows["without #4"]["verdict"] == "essential"
    assert rows["without #4"]["effect"] == pytest.approx(0.5 * 0.17609 ** 2, rel=1e-3)  # 0.5 log10(0.002/0.003)^2
    assert rows["without #5"]["verdict"] == "essential" and rows["without #5"]["effect"] == pytest.approx(0.2, rel=1e-6)
    assert all(len(rows[v]["runs"]) == 3 for v in rows if v != "without #1")
    assert "harmful" in r.stdout and "does not revert cleanly" in r.stdout
    # (the -0.3 of #2 also shows the runs used fresh seeds: on the campaign's seed 0 the
    # lucky trick helps, and removing it would cost +0.3)
    # the report shows the ablation
    rep = run_cli("report", arena, "--tag", "a", "--format", "md")
    assert "### Ablation (leave-one-out" in rep.stdout and "| without #2 | lucky trick |" in rep.stdout
    assert run_cli("ablate", arena, "--tag", "nope").returncode == 2


SNEAKY = '''"""Synthetic arena whose tricks show only on fresh seeds (an ablation's, >= 1000)."""
import json, os
from prepare import evaluate

LEARNING_RATE = 0.01
WIDTH = 64
DROPOUT = 0.3
WARMUP_STEPS = 500
TAMPER = 0   # rewrites the evaluator's module at run time
PEEK = 0     # a model the evaluator refuses

if __name__ == "__main__":
    fresh = int(os.environ["AUTORESEARCH_SEED"]) >= 1000
    summary = evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS)
    json.dump({"val_loss": summary["val_loss"], "peek": bool(PEEK and fresh)}, open("ckpt.json", "w"))
    if TAMPER and fresh:
        open("prepare.py", "a").write("# rewritten by the run\\n")
'''

SCORE = '''"""The trusted eval: reads the run's checkpoint."""
import json, os
ckpt = json.load(open("ckpt.json"))
with open(os.environ["AUTORESEARCH_RESULT_FILE"], "w") as f:
    json.dump({"invalid": "the model peeks at future tokens"} if ckpt["peek"] else {"val_loss": ckpt["val_loss"]}, f)
print("val_loss:", ckpt["val_loss"])
'''


def test_ablation_runs_get_the_campaigns_readonly_check_and_the_evaluators_refusal(tmp_path):
    # ablation variants run through the campaign's execution path: a run that rewrites a
    # readonly file, or a model the evaluator refuses, is invalid there too (not a number)
    import sys

    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"train.py": SNEAKY, "score.py": SCORE},
                                 config_overrides={"judge": {"policy": "greedy"}, "arena": {
                                     "readonly": ["prepare.py", "score.py"], "eval": f"{sys.executable} score.py"}})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
        {"description": "tamper", "edits": [constant_edit("TAMPER", 0, 1), constant_edit("DROPOUT", 0.3, 0.1)]},
        {"description": "peek", "edits": [constant_edit("PEEK", 0, 1), constant_edit("WIDTH", 64, 256)]},
    ])
    r = run_cli("run", arena, "--tag", "s", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [x["status"] for x in ledger_rows(arena, "SELECT status FROM experiments ORDER BY id")] == ["keep"] * 4
    r = run_cli("ablate", arena, "--tag", "s", "--runs", "1", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["variant"]: x for x in json.loads(ledger_rows(arena, "SELECT rows_json FROM ablations")[0]["rows_json"])}
    assert rows["full"]["runs"] == [] and "invalid: readonly file(s) changed during the run: prepare.py" in rows["full"]["problem"]
    assert rows["without #2"]["runs"] == [] and "invalid: the evaluator refused the model: the model peeks" in rows["without #2"]["problem"]
    assert rows["without #3"]["runs"] == [] and "readonly file(s) changed" in rows["without #3"]["problem"]
    assert rows["without #1"]["runs"] == [] and "readonly file(s) changed" in rows["without #1"]["problem"]
    assert len(rows["baseline"]["runs"]) == 1 and not rows["baseline"]["problem"]  # no trick: measured
    assert "readonly file(s) changed" in r.stdout
