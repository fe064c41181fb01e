"""Integrity checks: protected constants, declared metric ranges, implausible jumps.
Pure functions on literal inputs, and hostile proposals in real campaigns."""

from __future__ import annotations

import json

import pytest

from autoresearch.integrity import assigned_values, out_of_range, protected_changes, suspicious
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli


@pytest.mark.parametrize("source, expected", [
    ("SEED = 1\nX = 2\n", {"SEED": ["1"]}),
    ("SEED: int = 1\nSEED += 1\n", {"SEED": ["1", "1"]}),
    ("A, SEED = 1, 2\n", {"SEED": ["(1, 2)"]}),
    ("def f():\n    SEED = 3\n", {}),            # only module level
    ("SEED = (\n", {}),                          # does not parse: the syntax check refuses it
])
def test_assigned_values(source, expected):
    assert assigned_values(source, ["SEED"]) == expected


@pytest.mark.parametrize("old, new, expected", [
    ({"t.py": "SEED = 1\nLR = 2\n"}, {"t.py": "SEED = 1\nLR = 3\n"}, []),
    ({"t.py": "SEED = 1\n"}, {"t.py": "SEED = 7\n"}, ["SEED"]),
    ({"t.py": "SEED = 1\n"}, {"t.py": "SEED = 1\nSEED = 7\n"}, ["SEED"]),             # re-assigned later
    ({"t.py": "SEED = 1\n"}, {"t.py": "# no seed\n"}, ["SEED"]),                       # removed
    ({"t.py": "X = 1\n"}, {"t.py": "X = 1\nTIME_BUDGET = 999\n"}, ["TIME_BUDGET"]),  # added
    ({"t.py": None}, {"t.py": "SEED = 2\n"}, ["SEED"]),                                # a new file
    ({"a.md": "SEED = 1"}, {"a.md": "SEED = 2"}, []),                                  # not Python
])
def test_protected_changes(old, new, expected):
    assert protected_changes(old, new, ["SEED", "TIME_BUDGET"]) == expected


@pytest.mark.parametrize("value, low, high, bad", [
    (0.5, 0.0, 1.0, None), (-0.1, 0.0, None, "below the declared minimum 0"), (1.5, None, 1.0, "above the declared maximum 1"),
    (3.0, None, None, None),
])
def test_out_of_range(value, low, high, bad):
    got = out_of_range(value, low, high)
    assert (got is None) if bad is None else bad in got


@pytest.mark.parametrize("gain, sigma, k, expected", [
    (0.5, 0.01, 10, True), (0.05, 0.01, 10, False), (0.5, None, 10, False), (0.5, 0.01, 0, False), (-1.0, 0.01, 10, False),
])
def test_suspicious(gain, sigma, k, expected):
    assert suspicious(gain, sigma, k) is expected


TRAIN_WITH_SEED = '''"""Synthetic arena with a seed constant of its own."""
from prepare import evaluate, report

SEED = 1337            # the harness owns seeds
LEARNING_RATE = 0.01   # step size of the pretend optimizer
WIDTH = 64             # pretend model width
DROPOUT = 0.3          # pretend regularisation
WARMUP_STEPS = 500     # pretend learning-rate warmup

if __name__ == "__main__":
    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))
'''


def test_hostile_proposals_are_refused_or_crash_with_the_reason(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"train.py": TRAIN_WITH_SEED},
                                 config_overrides={"arena": {"protected": ["SEED"]}, "metric": {"min": 0.0}})
    main = 'if __name__ == "__main__":\n    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))'
    props = write_proposals(tmp_path / "p.json", [
        {"description": "seed shopping", "edits": [constant_edit("SEED", 1337, 42)]},
        {"description": "fake a negative loss", "edits": [{"path": "train.py", "search": main,
                                                            "replace": 'if __name__ == "__main__":\n    report({"val_loss": -5.0})'}]},
        {"description": "honest: lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
    ])
    r = run_cli("run", arena, "--tag", "h", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
    assert rows[1]["status"] == "invalid" and "changes protected constant(s) SEED" in rows[1]["reason"]
    assert rows[2]["status"] == "crash" and "val_loss out of its declared range: -5 is below the declared minimum 0" in rows[2]["reason"]
    assert rows[3]["status"] == "keep"


def test_an_implausible_jump_is_confirmed_with_more_runs_and_flagged(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", noise_seed_sd=0.01, config_overrides={
        "judge": {"policy": "confirm", "baseline_runs": 4, "suspicious_sigma": 5.0}})
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])  # 0.137: >> 5 sd
    r = run_cli("run", arena, "--tag", "j", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    row = ledger_rows(arena, "SELECT status, runs_n, warnings_json FROM experiments WHERE id = 1")[0]
    assert row["status"] == "keep" and row["runs_n"] >= 3
    assert any(w.startswith("suspicious: an improvement of") for w in json.loads(row["warnings_json"]))


def test_writing_the_evaluator_at_run_time_is_invalid(tmp_path):
    # FAULTS 1 (at run time): the run rewrites prepare.py in its worktree to print a better score
    arena = make_synthetic_arena(tmp_path / "arena")
    main = 'if __name__ == "__main__":'
    tamper = (main + '\n    with open("prepare.py", "a") as f:\n        f.write("\\n# the evaluation, improved\\n")')
    props = write_proposals(tmp_path / "p.json", [
        {"description": "tamper with prepare.py", "edits": [{"path": "train.py", "search": main, "replace": tamper}]},
        {"description": "honest: lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    r = run_cli("run", arena, "--tag", "w", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
    assert rows[1]["status"] == "invalid" and rows[1]["reason"] == "readonly file(s) changed during the run: prepare.py"
    assert rows[2]["status"] == "keep"  # the next run got a clean worktree
    assert "improved" not in (arena / "prepare.py").read_text()


EVALUATE = '''"""A separate evaluator (readonly): scores the candidate's constants with prepare's objective."""
import train
from prepare import evaluate, report

s = evaluate(train.LEARNING_RATE, train.WIDTH, train.DROPOUT, train.WARMUP_STEPS)
report({"val_loss": s["val_loss"]})
'''


def test_code_a_run_leaves_behind_cannot_shadow_the_evaluators_imports(tmp_path):
    # the run writes json.py next to the evaluator: `import json` in prepare.report would
    # load it (the script's directory comes first on sys.path) and report a loss of 0
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"evaluate.py": EVALUATE}, config_overrides={
        "arena": {"eval": f"{__import__('sys').executable} evaluate.py", "readonly": ["prepare.py", "evaluate.py"]}})
    main = 'if __name__ == "__main__":'
    fake = 'def dump(obj, f, **kw):\n    f.write(\'{"val_loss": 0.0}\')\n'
    plant = main + f"\n    open('json.py', 'w').write({fake!r})"
    props = write_proposals(tmp_path / "p.json", [
        {"description": "plant a fake json module", "edits": [{"path": "train.py", "search": main, "replace": plant}]}])
    r = run_cli("run", arena, "--tag", "e", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    row = ledger_rows(arena, "SELECT status, metric FROM experiments WHERE id = 1")[0]
    assert row["status"] == "discard" and row["metric"] == pytest.approx(1.465557, abs=1e-6)  # the honest value
    run = ledger_rows(arena, "SELECT warnings_json FROM runs WHERE experiment_id = 1")[0]
    removal = [w for w in json.loads(run["warnings_json"]) if w.startswith("removed before the eval:")]
    assert len(removal) == 1 and "json.py" in removal[0]
