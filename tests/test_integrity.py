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


def test_the_eval_runs_the_code_as_committed_not_as_the_run_left_it(tmp_path):
    # The evaluator imports train.py for the candidate's constants. A run that rewrites
    # train.py at run time (to the optimum) would fake a huge improvement if the eval ran in
    # the run's worktree; a run that rewrites the evaluator and lets it restore itself after
    # printing a fake score would pass a hash check made only after the eval.
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"evaluate.py": EVALUATE}, config_overrides={
        "arena": {"eval": f"{__import__('sys').executable} evaluate.py", "readonly": ["prepare.py", "evaluate.py"]}})
    main = 'if __name__ == "__main__":'
    rewrite_self = main + ("\n    src = open('train.py').read()\n"
                           "    open('train.py', 'w').write(src.replace('LEARNING_RATE = 0.01', 'LEARNING_RATE = 0.003')"
                           ".replace('WIDTH = 64', 'WIDTH = 256').replace('DROPOUT = 0.3', 'DROPOUT = 0.1')"
                           ".replace('WARMUP_STEPS = 500', 'WARMUP_STEPS = 100'))")
    fake_eval = ("import os, sys\\nprint('val_loss: 0.5')\\nsrc = open(__file__).read()\\n"
                 "open(__file__, 'w').write(ORIGINAL)\\n")
    tamper_eval = main + (f"\n    original = open('evaluate.py').read()\n"
                          f"    open('evaluate.py', 'w').write('ORIGINAL = ' + repr(original) + '\\n' + {fake_eval!r})")
    props = write_proposals(tmp_path / "p.json", [
        {"description": "rewrite train.py at run time", "edits": [{"path": "train.py", "search": main, "replace": rewrite_self}]},
        {"description": "self-restoring fake evaluator", "edits": [{"path": "train.py", "search": main, "replace": tamper_eval}]},
    ])
    r = run_cli("run", arena, "--tag", "p", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason, metric FROM experiments")}
    assert rows[1]["status"] == "discard" and rows[1]["metric"] == pytest.approx(1.465557, abs=1e-6)  # honest
    assert rows[2]["status"] == "invalid"
    assert rows[2]["reason"] == "readonly file(s) changed during the run: evaluate.py"
    evals = ledger_rows(arena, "SELECT eval_exit_code FROM runs WHERE experiment_id = 2")
    assert evals[0]["eval_exit_code"] is None  # caught before the eval ran at all


VAL_SECRET = "HELD-OUT-VALIDATION-TEXT-7f3a"


def _val_arena(tmp_path, sandbox: str):
    score = ("import train\nfrom prepare import evaluate, report\n"
             "assert open('val.txt').read().startswith('HELD-OUT')  # the eval has the data\n"
             "report({'val_loss': evaluate(train.LEARNING_RATE, train.WIDTH, train.DROPOUT, train.WARMUP_STEPS)['val_loss']})\n")
    return make_synthetic_arena(tmp_path / "arena", extra_files={"evaluate.py": score, "val.txt": VAL_SECRET + "\n"},
                                config_overrides={"arena": {"eval": f"{__import__('sys').executable} evaluate.py",
                                                            "readonly": ["prepare.py", "evaluate.py", "val.txt"],
                                                            "eval_only": ["val.txt"]},
                                                  "runner": {"sandbox": sandbox}})


PEEK = '''import os, subprocess
def peek(name, fn):
    try:
        print(f"{name}: {fn()!r}")
    except Exception as e:
        print(f"{name}: refused ({type(e).__name__})")
peek("arena copy", lambda: open(os.path.join(os.environ["AUTORESEARCH_ARENA_DIR"], "val.txt")).read())
peek("git objects", lambda: subprocess.run(["git", "show", "HEAD:val.txt"], capture_output=True, text=True).stdout)
open("val.txt").read()  # the worktree's copy: the run fails here, and says why
'''


def test_validation_data_is_not_in_the_runs_worktree(tmp_path):
    # without the sandbox: gone from the worktree (the eval's worktree has it), but the run
    # can still read the user's checkout and git; the docs say so
    arena = _val_arena(tmp_path, "none")
    main = 'if __name__ == "__main__":'
    props = write_proposals(tmp_path / "p.json", [
        {"description": "peek at the validation data", "edits": [{"path": "train.py", "search": main,
                                                                    "replace": main + "\n    exec(" + repr(PEEK) + ")"}]}])
    r = run_cli("run", arena, "--tag", "v", "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason FROM experiments")}
    assert rows[0]["status"] == "keep"  # the honest baseline: the eval read val.txt in its own worktree
    assert rows[1]["status"] == "crash" and "No such file or directory: 'val.txt'" in rows[1]["reason"]
    log = next((arena / ".autoresearch").glob("v/logs/0001-a1-run.log")).read_text()
    assert f"arena copy: '{VAL_SECRET}" in log  # what only the sandbox takes away
