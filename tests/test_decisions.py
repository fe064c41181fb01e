"""The engine's pure decisions, table-driven with literal inputs: a run's status
(``execution.classify``) and whether a proposal may run (``candidate.check_candidate``)."""

from __future__ import annotations

import pytest

from autoresearch.engine.candidate import Refused, Rules, check_candidate
from autoresearch.engine.execution import Judged, classify
from autoresearch.records import FileEdit, Measurement, RunOutcome, RunStatus


def out(exit_code=0, *, timed_out=False, interrupted=False, limit="", infra="", tail="", result=None) -> RunOutcome:
    return RunOutcome(exit_code=exit_code, timed_out=timed_out, interrupted=interrupted, duration_s=1.0, log_path="",
                      log_tail=tail, log_bytes=0, result_json=result, limit=limit, infra=infra)


OK = Measurement(1.5, {"val_loss": 1.5})
MISSING = Measurement(None, {}, problem="val_loss not found in the output")
J = Judged("val_loss", metric_min=0.0, metric_max=10.0, disk_mb=100, memory_mb=512, run_timeout_s=60, eval_timeout_s=30)

CASES = [
    # (run, eval, measurement, readonly changed, status, reason contains)
    (out(), None, OK, [], RunStatus.OK, ""),
    (out(interrupted=True, exit_code=None), None, OK, ["prepare.py"], RunStatus.INTERRUPTED, "stopped"),
    (out(), out(interrupted=True), OK, [], RunStatus.INTERRUPTED, "stopped"),
    (out(infra="the node died"), None, OK, ["prepare.py"], RunStatus.INFRA, "the node died"),
    (out(limit="disk", exit_code=None), None, OK, [], RunStatus.CRASH, "disk limit of 100 MB"),
    (out(limit="memory", exit_code=-9), None, OK, [], RunStatus.CRASH, "memory limit of 512 MB"),
    (out(limit="memory", exit_code=0), None, OK, [], RunStatus.OK, ""),  # it was refused memory and coped
    (out(timed_out=True, exit_code=None), None, OK, [], RunStatus.TIMEOUT, "60 s timeout"),
    (out(3, tail="Traceback\nValueError: boom\n"), None, OK, [], RunStatus.CRASH, "code 3: ValueError: boom"),
    (out(-11), None, OK, [], RunStatus.CRASH, "killed by signal 11"),
    (out(), out(timed_out=True, exit_code=None), OK, [], RunStatus.TIMEOUT, "eval was killed at the 30 s"),
    (out(), out(result='{"invalid": "looks at future tokens"}'), OK, [], RunStatus.INVALID, "looks at future tokens"),
    (out(), out(2, tail="no checkpoint"), OK, [], RunStatus.CRASH, "the eval exited with code 2: no checkpoint"),
    (out(), None, MISSING, [], RunStatus.CRASH, "val_loss not found"),
    (out(), None, Measurement(-1.0, {}), [], RunStatus.CRASH, "below the declared minimum 0"),
    (out(), None, Measurement(11.0, {}), [], RunStatus.CRASH, "above the declared maximum 10"),
    # a changed readonly file makes any finished run invalid, whatever else happened
    (out(), None, OK, ["prepare.py"], RunStatus.INVALID, "readonly file(s) changed during the run: prepare.py"),
    (out(3), None, OK, ["prepare.py"], RunStatus.INVALID, "prepare.py"),
    (out(timed_out=True, exit_code=None), None, OK, ["a", "b"], RunStatus.INVALID, "a, b"),
]


@pytest.mark.parametrize("run, ev, m, changed, status, words", CASES)
def test_a_runs_status(run, ev, m, changed, status, words):
    got, reason = classify(run, ev, m, changed, J)
    assert got is status
    assert words in reason


OLD = {"train.py": "LR = 0.1\nWIDTH = 64\n", "model.py": "DEPTH = 2\nSEED = 1\n"}
RULES = Rules(editable=("train.py", "model.py", "new.py"), protected=("SEED",))


def edit(path: str, search: str, replace: str) -> FileEdit:
    return FileEdit(path, search, replace)


REFUSALS = [
    ([edit("prepare.py", "x", "y")], "apply", "not editable"),
    ([edit("train.py", "LR = 9\n", "LR = 1\n")], "apply", "matches nothing"),
    ([edit("train.py", "LR = 0.1\n", "LR = 0.1\n")], "no-change", "change nothing"),
    ([edit("train.py", "LR = 0.1\n", "LR = (\n")], "syntax", "train.py does not parse: line"),
    ([edit("train.py", "LR = 0.1\n", "return 1\n")], "syntax", "'return' outside function"),  # compile, not just parse
    ([edit("model.py", "SEED = 1\n", "SEED = 2\n")], "protected", "protected constant(s) SEED"),
    ([edit("new.py", "", "x = \x00\n")], "syntax", "does not parse"),
]


@pytest.mark.parametrize("edits, kind, words", REFUSALS)
def test_refused_proposals(edits, kind, words):
    with pytest.raises(Refused) as e:
        check_candidate(OLD, edits, RULES)
    assert e.value.kind == kind and words in e.value.reason, e.value.reason


def test_a_candidate_and_its_duplicates():
    c = check_candidate(OLD, [edit("train.py", "LR = 0.1\n", "LR = 0.05\n"), edit("new.py", "", "X = 1\n")], RULES)
    assert c.changed == {"train.py": "LR = 0.05\nWIDTH = 64\n", "new.py": "X = 1\n"}
    assert c.files["model.py"] == OLD["model.py"] and "+LR = 0.05" in c.diff
    # the same code again (trailing whitespace aside) is a duplicate of the experiment that tried it
    rules = Rules(RULES.editable, RULES.protected, tried={c.code_hash: 7})
    with pytest.raises(Refused, match="already tried as experiment 7") as e:
        check_candidate(OLD, [edit("train.py", "LR = 0.1\n", "LR = 0.05   \n"), edit("new.py", "", "X = 1\n\n")], rules)
    assert e.value.kind == "duplicate"
    # ...but not of itself (a resumed experiment rebuilds its own code)
    assert check_candidate(OLD, [edit("train.py", "LR = 0.1\n", "LR = 0.05\n"), edit("new.py", "", "X = 1\n")], rules,
                           exp_id=7).code_hash == c.code_hash


@pytest.mark.parametrize("run, ev, why", [
    (out(), None, None),                                   # finished: its values are its result
    (out(), out(), None),
    (out(limit="memory", exit_code=0), None, None),        # refused memory and coped
    (out(interrupted=True, exit_code=None), None, "the run did not finish"),
    (out(timed_out=True, exit_code=None), None, "the run did not finish"),
    (out(limit="disk", exit_code=None), None, "the run did not finish"),
    (out(1), None, "the run did not finish"),              # printed a metric, then crashed (a review)
    (out(-9), None, "the run did not finish"),             # the kernel's OOM killer
    (out(), out(timed_out=True, exit_code=None), "the eval did not finish"),
    (out(), out(2), "the eval did not finish"),
])
def test_when_a_runs_values_are_no_result(run, ev, why):
    from autoresearch.engine.execution import cut_off

    assert cut_off(run, ev) == why
