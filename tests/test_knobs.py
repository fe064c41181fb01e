"""The knobs proposer: discovery and spaces on literal sources, rendering, and real campaigns."""

from __future__ import annotations

import dataclasses

import json

import pytest

from autoresearch.edits import apply_edits
from autoresearch.errors import ConfigError
from autoresearch.proposers.knob_study import ledger_trials
from autoresearch.proposers.knobs import (
    KnobsProposer, Space, code_signature, declared_space, find_knobs, format_value, infer_space, render_edits,
    written_value,
)
from autoresearch.protocols import ProposalContext
from autoresearch.records import Experiment, Goal, Status
from autoresearch.testing import commit_all, make_synthetic_arena
from conftest import ledger_rows, run_cli


def knobs_arena(path, **kwargs):
    """The synthetic arena with no proposer configured: knobs is the default."""
    arena = make_synthetic_arena(path, **kwargs)
    cfg = arena / "autoresearch.toml"
    # lookahead = 0: each proposal sees every earlier result, so a campaign is reproducible
    # (pipelining would start here: proposing takes longer than these 50 ms runs)
    cfg.write_text(cfg.read_text().replace('kind = "scripted"', "lookahead = 0")
                   .replace('[proposer.scripted]\nproposals = "proposals.yaml"', ""))
    commit_all(arena, "no proposer configured")
    return arena

SOURCE = '''"""doc"""
import os

MATRIX_LR = 0.04          # learning rate of the matrices
DEPTH = 8
TOTAL_BATCH_SIZE = 2**19  # tokens per step
WARMDOWN_RATIO = 0.5
ADAM_BETAS = (0.8, 0.95)
ADAM_BETA2 = 0.95
NEG = -3
SMALL = 3e-4
PRODUCT = 16 * 1024
ANNOTATED: float = 1.5
FLAG = True
NAME = "x"
lower_case = 3
SEED = 42
ZERO = 0.0
TWICE = 1
TWICE = 2
SPLIT = (
    0.9
)


def f():
    INNER = 5
    return INNER
'''


def test_find_knobs():
    knobs = {k.name: k for k in find_knobs("train.py", SOURCE)}
    # (tuple elements, strings, booleans and a lowercase global bound once are knobs too:
    # test_knob_sources.py; a name bound twice and a function's local are not)
    assert list(knobs) == ["MATRIX_LR", "DEPTH", "TOTAL_BATCH_SIZE", "WARMDOWN_RATIO", "ADAM_BETAS[0]", "ADAM_BETAS[1]",
                           "ADAM_BETA2", "NEG", "SMALL", "PRODUCT", "ANNOTATED", "FLAG", "NAME", "lower_case", "SEED",
                           "ZERO", "SPLIT"]
    assert knobs["TOTAL_BATCH_SIZE"].value == 524288 and knobs["TOTAL_BATCH_SIZE"].text == "2**19"
    assert knobs["NEG"].value == -3 and knobs["NEG"].is_int
    assert knobs["SMALL"].value == 3e-4 and not knobs["SMALL"].is_int
    assert knobs["PRODUCT"].value == 16384
    assert knobs["MATRIX_LR"].line == "MATRIX_LR = 0.04          # learning rate of the matrices"
    k = knobs["MATRIX_LR"]
    assert k.line[k.col:k.end_col] == "0.04"


def test_find_knobs_on_broken_source_finds_nothing():
    assert find_knobs("train.py", "X = (\n") == []


@pytest.mark.parametrize(
    "name, value, is_int, expected",
    [
        ("MATRIX_LR", 0.04, False, Space("float", 0.004, 0.4, log=True)),
        ("WARMDOWN_RATIO", 0.5, False, Space("float", 0.0, 1.0)),
        ("DROPOUT", 0.1, False, Space("float", 0.0, 1.0)),
        ("ADAM_BETA2", 0.95, False, Space("beta", 0.005, 0.5, log=True)),
        ("TOTAL_BATCH_SIZE", 2**19, True, Space("pow2", 17, 21)),
        ("DEPTH", 8, True, Space("pow2", 1, 5)),
        ("N_LAYER", 6, True, Space("int", 2, 18, log=True)),
        ("HEAD_DIM", 1, True, Space("int", 1, 3, log=True)),
        ("GRAD_CLIP", 1.0, False, Space("float", 0.1, 10.0, log=True)),
        ("SEED", 42, True, None),
        ("random_state", 42, True, None),                        # scikit-learn's seed (a trial: searched 14-126)
        ("EVAL_EPISODES", 10, True, None),                       # the evaluation itself (a sixth trial: searched 3-30)
        ("subsample", 0.8, False, Space("float", 0.0, 1.0)),     # a share (a trial: searched up to 8, sklearn crashed)
        ("colsample_bytree", 0.9, False, Space("float", 0.0, 1.0)),
        ("max_features", 0.5, False, Space("float", 0.0, 1.0)),    # scikit-learn: a float is a share
        ("max_features", 10, True, Space("int", 3, 30, log=True)),  # an int a count
        ("TIME_BUDGET", 300, True, None),
        ("ZERO", 0.0, False, None),
        ("NEG", -3, True, None),
    ],
)
def test_infer_space(name, value, is_int, expected):
    got = infer_space(name, value, is_int)
    if expected is None:
        assert got is None
    else:
        assert got.kind == expected.kind and got.log == expected.log
        assert got.low == pytest.approx(expected.low) and got.high == pytest.approx(expected.high)
        assert got.to_param(value) is not None  # the current value is inside its space


@pytest.mark.parametrize(
    "space, value, param",
    [
        (Space("pow2", 17, 21), 2**19, 19), (Space("pow2", 17, 21), 3, None), (Space("pow2", 17, 21), 2**22, None),
        (Space("beta", 0.005, 0.5, log=True), 0.95, pytest.approx(0.05)), (Space("int", 2, 18), 7, 7),
        (Space("int", 2, 18), 7.5, None), (Space("float", 0.0, 1.0), 0.3, 0.3), (Space("choice", choices=(1, 2)), 3, None),
    ],
)
def test_space_params_round_trip(space, value, param):
    assert space.to_param(value) == param
    if param is not None:
        assert space.to_value(space.to_param(value)) == pytest.approx(value)


def test_a_beta_at_the_top_of_its_gap_is_0_not_a_rounding_error():
    """The demo (2026-12-05) wrote `ADAM_BETA1 = 2.22e-16`: 1 - 0.9999999999999998."""
    space = Space("beta", 0.01, 1.0, log=True)
    assert space.to_value(1.0 - 2**-52) == 0.0 and space.to_value(0.5) == 0.5
    assert space.to_param(space.to_value(1.0 - 2**-52)) is not None  # back inside its space


def test_format_and_written_values():
    knobs = {k.name: k for k in find_knobs("train.py", SOURCE)}
    assert format_value(knobs["TOTAL_BATCH_SIZE"], 2**18) == "2**18"
    assert format_value(knobs["DEPTH"], 6) == "6"
    assert format_value(knobs["MATRIX_LR"], 0.031234567) == "0.03123"
    assert format_value(knobs["ANNOTATED"], 2.0) == "2.0"
    assert format_value(knobs["SMALL"], 1.5e-5) == "1.5e-05"
    assert written_value(knobs["MATRIX_LR"], 0.031234567) == 0.03123


def test_rendered_edits_apply_and_keep_comments():
    knobs = find_knobs("train.py", SOURCE)
    edits = render_edits(knobs, {"MATRIX_LR": 0.031, "TOTAL_BATCH_SIZE": 2**18})
    new = apply_edits({"train.py": SOURCE}, edits, ["train.py"])["train.py"]
    assert "MATRIX_LR = 0.031          # learning rate of the matrices\n" in new
    assert "TOTAL_BATCH_SIZE = 2**18  # tokens per step\n" in new
    again = {k.name: k.value for k in find_knobs("train.py", new)}
    assert again["MATRIX_LR"] == 0.031 and again["TOTAL_BATCH_SIZE"] == 2**18


def test_code_signature_ignores_knob_values_only():
    knobs = find_knobs("train.py", SOURCE)
    sig = code_signature({"train.py": SOURCE}, knobs)
    moved = SOURCE.replace("MATRIX_LR = 0.04 ", "MATRIX_LR = 0.02 ")
    assert code_signature({"train.py": moved}, find_knobs("train.py", moved)) == sig
    changed = SOURCE.replace("import os", "import sys")
    assert code_signature({"train.py": changed}, find_knobs("train.py", changed)) != sig


@pytest.mark.parametrize(
    "spec, message",
    [({}, "needs low and high"), ({"low": 2, "high": 1}, "must be below"), ({"low": 0, "high": 1, "log": True}, "log scale"),
     ({"choices": []}, "empty")],
)
def test_declared_space_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        declared_space("X", spec, 1.0, False)


def test_declared_space_overrides():
    assert declared_space("DEPTH", {"choices": [4, 6, 8]}, 8, True) == Space("choice", choices=(4, 6, 8))
    assert declared_space("LR", {"low": 0.01, "high": 0.1, "log": True}, 0.04, False) == Space("float", 0.01, 0.1, log=True)


SYNTH = "LEARNING_RATE = 0.01\nWIDTH = 64\nDROPOUT = 0.3\nWARMUP_STEPS = 500\nSEED = 1\n"


def context(history, metric=1.5, files=None):
    return ProposalContext(incumbent_commit="c0", incumbent_metric=metric, files=files or {"train.py": SYNTH},
                           history=history, metric="val_loss", goal=Goal.MINIMIZE, program="")


def baseline():
    return Experiment(id=0, status=Status.KEEP, description="baseline", proposer="baseline", parent=None, commit="c0", metric=1.5)


def test_proposals_are_a_pure_function_of_history():
    p = KnobsProposer(seed=3)
    a = p.propose(context([baseline()]))
    b = KnobsProposer(seed=3).propose(context([baseline()]))
    assert a == b
    assert len(a.edits) >= 3 and "→" in a.description and "SEED" not in a.description
    assert set(a.meta["knobs"]["spaces"]) == {"LEARNING_RATE", "WIDTH", "DROPOUT", "WARMUP_STEPS"}
    assert KnobsProposer(seed=4).propose(context([baseline()])) != a


def test_history_becomes_trials_and_crashes_are_failures():
    p = KnobsProposer(seed=0)
    first = p.propose(context([baseline()]))
    done = Experiment(id=1, status=Status.CRASH, description=first.description, proposer="knobs", parent="c0",
                      commit="c1", meta=first.meta)
    knobs, spaces = p.survey({"train.py": SYNTH})
    dists = {n: s.distribution() for n, s in spaces.items()}
    current = {k.name: k.value for k in knobs if k.name in spaces}
    sig = code_signature({"train.py": SYNTH}, knobs)
    trials = ledger_trials([baseline(), done], spaces, dists, current, sig, 1.5)
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE", "FAIL"]  # the baseline (parent) and the crash
    other_code = dict(first.meta["knobs"], signature="different")
    stale = Experiment(id=2, status=Status.DISCARD, description="x", proposer="knobs", parent="c0", commit="c2",
                       metric=2.0, meta={"knobs": other_code})
    assert len(ledger_trials([baseline(), stale], spaces, dists, current, sig, 1.5)) == 1  # only the incumbent


def test_a_proposal_refused_before_it_ran_is_no_failed_trial_and_is_not_proposed_again():
    """Review finding 10: a rebase refused because the new incumbent already holds its values
    (or any refusal before a commit) measured nothing: no FAIL trial, but its point is taken."""
    from autoresearch.proposers.knob_study import pending_points

    p = KnobsProposer(seed=0)
    first = p.propose(context([baseline()]))
    knobs, spaces = p.survey({"train.py": SYNTH})
    dists = {n: s.distribution() for n, s in spaces.items()}
    current = {k.name: k.value for k in knobs if k.name in spaces}
    sig = code_signature({"train.py": SYNTH}, knobs)
    refused = Experiment(id=1, status=Status.INVALID, description=first.description, proposer="knobs", parent="c0",
                         commit=None, reason="stale: the new incumbent already holds every value it proposes",
                         meta=first.meta)
    ran = dataclasses.replace(refused, commit="c1", reason="readonly file(s) changed during the run: prepare.py")
    states = lambda h: sorted(t.state.name for t in ledger_trials([baseline(), h], spaces, dists, current, sig, 1.5))
    assert states(refused) == ["COMPLETE"]          # the incumbent only
    assert states(ran) == ["COMPLETE", "FAIL"]      # it ran: a failure of that point
    point = tuple(sorted(first.meta["knobs"]["params"].items()))
    assert pending_points([baseline(), refused], sig) == {point}
    assert pending_points([baseline(), ran], sig) == set()


@pytest.mark.parametrize("params, near", [
    ({"LR": 0.01, "W": 64, "OPT": "adam"}, True),                # the point itself
    ({"LR": 0.010001, "W": 64, "OPT": "adam"}, True),            # a newcomer's trial: 0.07272 and 0.07269
    ({"LR": 0.0105, "W": 64, "OPT": "adam"}, True),              # log-scaled: 0.0053 of [1e-4, 1]'s range
    ({"LR": 0.0112, "W": 64, "OPT": "adam"}, False),             # 0.0123
    ({"LR": 0.01, "W": 66, "OPT": "adam"}, False),               # 2 of 128: 0.016
    ({"LR": 0.01, "W": 65, "OPT": "adam"}, True),
    ({"LR": 0.01, "W": 64, "OPT": "sgd"}, False),                # another choice
])
def test_a_point_next_to_one_in_flight(params, near):
    from autoresearch.proposers.knob_space import Space
    from autoresearch.proposers.knob_study import IN_FLIGHT_GAP, near_any

    spaces = {"LR": Space("float", 1e-4, 1.0, log=True), "W": Space("int", 0, 128),
              "OPT": Space("choice", choices=("adam", "sgd"))}
    assert near_any(spaces, params, [{"LR": 0.01, "W": 64, "OPT": "adam"}], IN_FLIGHT_GAP) is near
    assert near_any(spaces, params, [], IN_FLIGHT_GAP) is False


def test_a_proposal_made_while_another_runs_is_not_next_to_it():
    """A model that has not seen an in-flight point's result proposes it again, a few digits
    apart (a newcomer's trial: #7 was #6 but LEARNING_RATE 0.07272 → 0.07269, a whole run
    for nothing); such a point counts as taken."""
    from autoresearch.proposers.knob_strategy import to_unit

    proposer = KnobsProposer(seed=0)
    _, spaces = proposer.survey({"train.py": SYNTH})
    history, files, best = [baseline()], {"train.py": SYNTH}, 1.5
    closest = 1.0
    for i in range(1, 11):
        first = proposer.propose(context(list(history), best, files))
        waiting = Experiment(i, Status.PENDING, first.description, "knobs", "c0", None, meta=first.meta)
        second = proposer.propose(context(list(history) + [waiting], best, files))
        a, b = first.meta["knobs"]["params"], second.meta["knobs"]["params"]
        closest = min(closest, max(abs(to_unit(spaces[n], a[n]) - to_unit(spaces[n], b[n])) for n in spaces))
        new = apply_edits(files, first.edits, ["train.py"])
        value = 1.0 + sum(abs(to_unit(spaces[n], v) - 0.3) for n, v in a.items())  # a bowl in the unit cube
        history.append(Experiment(i, Status.KEEP if value < best else Status.DISCARD, first.description, "knobs", "c0",
                                  f"c{i}", metric=value, meta=first.meta))
        if value < best:
            files, best = new, value
    assert closest >= 0.01


def test_a_requeued_experiment_refused_on_its_next_attempt_has_no_commit(tmp_path):
    """It ran once (a commit), went back to the queue (the cluster failed it), and was refused
    on its next attempt: the ledger's outcome has no commit, so the knobs study sees a point
    that was never measured, not a failed trial."""
    from autoresearch.store.ledger import Ledger
    from autoresearch.store.ledger_writer import LedgerWriter

    ledger = Ledger(tmp_path / "ledger.sqlite")
    w = LedgerWriter(ledger)
    c = w.create_campaign(tag="t", branch="autoresearch/t", base_commit="0" * 40, metric="loss", goal="minimize",
                          config={}, readonly={})
    w.add_experiment(c, id=1, description="x", proposer="knobs", parent="p" * 40, proposal={"description": "x", "edits": []})
    w.set_running(c, 1, commit="c" * 40, parent="p" * 40, diff="d", code_hash="h", attempt=1, seed=0, slot="s",
                  log_path=str(tmp_path / "1.log"))
    w.requeue(c, 1, attempt=2, reason="the node died")
    w.finish_experiment(c, 1, status=Status.INVALID, reason="stale: the new incumbent already holds every value",
                        uncommitted=True)
    e = ledger.experiment(c, 1)
    assert e is not None and e.status is Status.INVALID and e.commit is None and e.never_ran
    ledger.close()


def test_no_knobs_is_a_clear_error():
    with pytest.raises(ConfigError, match="found no tunable constants"):
        KnobsProposer().propose(context([baseline()], files={"train.py": "print('hi')\n"}))


def _outcome(arena):
    return [(r["id"], r["status"], r["description"], None if r["metric"] is None else round(r["metric"], 9))
            for r in ledger_rows(arena, "SELECT * FROM experiments ORDER BY id")]


@pytest.mark.slow
def test_knobs_campaign_improves_and_resume_matches_an_uninterrupted_run(tmp_path):
    straight = knobs_arena(tmp_path / "straight")
    r = run_cli("run", straight, "--tag", "k", "--max-experiments", "16")  # knobs is the default proposer
    assert r.returncode == 0, r.stderr
    out = _outcome(straight)
    # the synthetic arena refuses DROPOUT = 1.0 (a crash, a failed trial for the study): the
    # GP may try the edge of a ratio's range (once in this campaign; at most twice allowed)
    assert len(out) == 16 and all(x[1] in ("keep", "discard", "crash") for x in out)
    assert sum(x[1] == "crash" for x in out) <= 2
    best = min(x[3] for x in out if x[1] == "keep")
    assert best < out[0][3] - 0.1  # a real improvement over the baseline (1.465557)
    assert all(x[2].count("→") >= 1 for x in out[1:])

    # the same campaign, killed twice along the way, converges to the same experiments
    killed = knobs_arena(tmp_path / "killed")
    for point in ("after_run:5", "after_pending:11"):
        k = run_cli("run", killed, "--tag", "k", "--max-experiments", "16", env={"AUTORESEARCH_CRASH_AT": point})
        assert k.returncode == -9, k.stderr
    assert run_cli("run", killed, "--tag", "k", "--max-experiments", "16").returncode == 0
    assert _outcome(killed) == out


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["auto", "tpe", "cmaes", "gp", "random"])
def test_every_sampler_runs_a_campaign(tmp_path, sampler):
    arena = knobs_arena(tmp_path / "arena")
    r = run_cli("run", arena, "--sampler", sampler, "--max-experiments", "7")
    assert r.returncode == 0, r.stderr
    rows = ledger_rows(arena, "SELECT status, proposal_json FROM experiments WHERE id > 0")
    assert len(rows) == 6 and all(x["status"] in ("keep", "discard") for x in rows)
    assert {json.loads(x["proposal_json"])["meta"]["knobs"]["sampler"] for x in rows} == {sampler}


def test_a_sampler_without_its_package_is_a_clear_error():
    code = ("import sys; sys.modules['cmaes'] = None\n"  # Python's own way to make an import fail
            "from autoresearch.proposers.knobs import KnobsProposer\n"
            "try:\n    KnobsProposer(sampler='cmaes')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.startswith("ConfigError") and "pip install cmaes" in out


def test_sampler_choice_and_bad_sampler(tmp_path):
    arena = knobs_arena(tmp_path / "arena")
    r = run_cli("run", arena, "--sampler", "random", "--max-experiments", "4")
    assert r.returncode == 0, r.stderr
    meta = [json.loads(x["proposal_json"]) for x in ledger_rows(arena, "SELECT proposal_json FROM experiments WHERE id > 0")]
    assert {m["meta"]["knobs"]["sampler"] for m in meta} == {"random"}
    bad = run_cli("run", arena, "--sampler", "annealing")
    assert bad.returncode == 2 and "proposer.knobs.sampler" in bad.stderr  # a bad flag value: exit 2


def test_config_declares_and_freezes_knobs(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={
        "proposer": {"kind": "knobs"}, "proposer.knobs": {"freeze": ["WIDTH", "DROPOUT"], "changes_per_trial": 0},
        "proposer.knobs.space.LEARNING_RATE": {"low": 0.001, "high": 0.02, "log": True}})
    r = run_cli("run", arena, "--max-experiments", "5")
    assert r.returncode == 0, r.stderr
    for row in ledger_rows(arena, "SELECT description, proposal_json FROM experiments WHERE id > 0"):
        assert "WIDTH" not in row["description"] and "DROPOUT" not in row["description"]
        spaces = json.loads(row["proposal_json"])["meta"]["knobs"]["spaces"]
        assert set(spaces) == {"LEARNING_RATE", "WARMUP_STEPS"}
        assert spaces["LEARNING_RATE"]["low"] == 0.001 and spaces["LEARNING_RATE"]["high"] == 0.02
    bad = make_synthetic_arena(tmp_path / "bad", config_overrides={"proposer.knobs.space.NOPE": {"low": 1, "high": 2}})
    r = run_cli("run", bad, "--proposer", "knobs", "--max-experiments", "2")
    assert r.returncode == 1 and "NOPE" in r.stderr


@pytest.mark.parametrize("direction, worst", [("minimize", 3.0), ("maximize", 1.0)])
def test_a_trial_stopped_early_or_crashed_counts_as_the_worst_for_the_gp(direction, worst):
    """Optuna's GP ignores pruned and failed trials: without this it proposed the point it
    had just seen stopped early again (a demo campaign did, twice in a row), and after two
    crashes on the synthetic landscape (DROPOUT = 1.0) its next 15 proposals were all points
    tried already."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from autoresearch.proposers.knob_gp import unfinished_as_worst

    d = {"x": FloatDistribution(0, 1)}
    study = optuna.create_study(direction=direction)
    study.add_trials([create_trial(params={"x": 0.1}, distributions=d, value=1.0),
                      create_trial(params={"x": 0.5}, distributions=d, value=3.0),
                      create_trial(params={"x": 0.9}, distributions=d, state=TrialState.PRUNED,
                                   intermediate_values={30: 9.0}),
                      create_trial(params={"x": 1.0}, distributions=d, state=TrialState.FAIL)])
    out = unfinished_as_worst(study)
    assert [(t.state, t.value) for t in out.trials] == [(TrialState.COMPLETE, 1.0), (TrialState.COMPLETE, 3.0),
                                                       (TrialState.COMPLETE, worst), (TrialState.COMPLETE, worst)]
    assert [t.state for t in study.trials][-2:] == [TrialState.PRUNED, TrialState.FAIL]  # the study itself is unchanged
    only_failed = optuna.create_study(direction=direction)
    only_failed.add_trials([create_trial(params={"x": 1.0}, distributions=d, state=TrialState.FAIL)])
    assert unfinished_as_worst(only_failed) is only_failed  # no finished value to count it as


@pytest.mark.parametrize("incumbent, gap, maximize, expected", [
    (2.0, 0.1, False, 2.2),            # minimised: 10 % behind is 10 % above the incumbent
    (0.8, 0.25, True, 0.6),            # maximised: below it
    (-4.0, 0.5, False, -2.0),          # a negative metric: a share of its size
    (2.0, -0.3, False, 2.0),           # never better than the incumbent it was behind
    (2.0, 13.0, False, 4.0),           # a diverged run: at most MAX_BEHIND (1) worse
    (0.0, 0.3, False, None),           # no share of 0 is worse: the worst value instead
    (None, 0.1, False, None),          # no incumbent's metric recorded with the proposal
    (2.0, None, False, None),          # recorded before the gap was
    (2.0, float("nan"), False, None),
    (True, 0.1, False, None),
])
def test_where_a_run_stopped_early_would_have_ended(incumbent, gap, maximize, expected):
    from autoresearch.proposers.knob_study import stopped_estimate

    assert stopped_estimate(incumbent, gap, maximize) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize("direction, worst", [("minimize", 3.0), ("maximize", 1.0)])
def test_a_trial_stopped_early_counts_as_where_it_would_have_ended_where_that_is_known(direction, worst):
    """With most candidates stopped early (the demo: 10 of 11 in a run), the worst value
    told the GP only that each was bad, and left it with too few finished runs to start."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from autoresearch.proposers.knob_gp import estimated, unfinished_as_worst
    from autoresearch.proposers.knob_study import IMPUTED

    d = {"x": FloatDistribution(0, 1)}
    study = optuna.create_study(direction=direction)
    study.add_trials([create_trial(params={"x": 0.1}, distributions=d, value=1.0),
                      create_trial(params={"x": 0.5}, distributions=d, value=3.0),
                      create_trial(params={"x": 0.7}, distributions=d, state=TrialState.PRUNED,
                                   intermediate_values={30: 9.0}, user_attrs={IMPUTED: 2.5}),
                      create_trial(params={"x": 0.9}, distributions=d, state=TrialState.PRUNED,
                                   intermediate_values={30: 9.0}),
                      create_trial(params={"x": 1.0}, distributions=d, state=TrialState.FAIL)])
    assert estimated(study) == 1
    assert [t.value for t in unfinished_as_worst(study).trials] == [1.0, 3.0, 2.5, worst, worst]
    assert [t.value for t in unfinished_as_worst(study, impute=False).trials] == [1.0, 3.0, worst, worst, worst]
    # estimates and no finished run: the estimates are values, a crash stays a failure
    alone = optuna.create_study(direction=direction)
    alone.add_trials([t for t in study.trials if t.state is not TrialState.COMPLETE])
    out = unfinished_as_worst(alone)
    assert [(t.state, t.value) for t in out.trials] == [(TrialState.COMPLETE, 2.5), (TrialState.PRUNED, None),
                                                       (TrialState.FAIL, None)]


def test_tpe_does_not_count_the_estimates_it_does_not_see():
    """TPE (the model where torch is missing) reads a pruned trial itself, not its estimate:
    the estimates do not start it, and it is not labelled as modelling while it draws at random."""
    from autoresearch.proposers.knob_strategy import Policy

    p = KnobsProposer(seed=0, policy=Policy(model="tpe"))
    history = [baseline()]
    for i in range(1, 5):
        prop = p.propose(context(history))
        history.append(Experiment(id=i, status=Status.DISCARD, description=prop.description, proposer="knobs",
                                  parent="c0", commit=f"c{i}", meta=prop.meta,
                                  metrics={"stopped_early_at": 0.3, "stopped_behind": 0.1 * i}))
    assert p.propose(context(history)).meta["knobs"]["source"] == "local"  # 1 finished run: the model waits


def _stopped_campaign(p, metric=1.5, goal=Goal.MINIMIZE, gap=True):
    """A baseline at ``metric``, then four start-up proposals of ``p``, each stopped early
    (10 %, 20 %, ... behind where ``gap``), and the context of the next proposal."""
    def ctx(h):
        base = Experiment(id=0, status=Status.KEEP, description="baseline", proposer="baseline", parent=None,
                          commit="c0", metric=metric)
        return dataclasses.replace(context([base, *h], metric=metric), goal=goal)

    history: list[Experiment] = []
    for i in range(1, 5):
        prop = p.propose(ctx(history))
        assert prop.meta["knobs"]["source"] == "local"
        metrics = {"stopped_early_at": 0.3, **({"stopped_behind": 0.1 * i} if gap else {})}
        history.append(Experiment(id=i, status=Status.DISCARD, description=prop.description, proposer="knobs",
                                  parent="c0", commit=f"c{i}", meta=prop.meta, metrics=metrics))
    return ctx(history)


@pytest.mark.parametrize("gap, impute, model", [(True, True, True), (False, True, False), (True, False, False)])
def test_runs_stopped_early_with_their_gap_let_the_model_propose(gap, impute, model):
    """Four start-up proposals, each stopped early: with how far each was behind (the
    harness's ``stopped_behind``), they count as finished runs and the model proposes next;
    without it (a ledger recorded before), or with ``impute`` off, local moves go on."""
    from autoresearch.proposers.knob_strategy import Policy

    p = KnobsProposer(seed=0, policy=Policy(impute=impute))
    nxt = p.propose(_stopped_campaign(p, gap=gap)).meta["knobs"]
    assert (nxt["arm"], nxt["source"]) == (("model", p.policy.model) if model else ("model", "local"))


@pytest.mark.parametrize("direction, sign", [("minimize", 1), ("maximize", -1)])
def test_the_gp_is_asked_with_the_estimates_and_counts_them_in_its_start_up(direction, sign):
    """``gp_view``: the estimates are finished values for the GP, in order, and count
    towards its start-up (it models, not draws at random); a trial counted as the worst
    value does not."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from autoresearch.proposers.knob_gp import gp_view
    from autoresearch.proposers.knob_study import IMPUTED

    d = {"x": FloatDistribution(0, 1)}
    study = optuna.create_study(direction=direction)
    study.add_trials([create_trial(params={"x": 0.5}, distributions=d, value=sign * 1.5)]
                     + [create_trial(params={"x": i / 10}, distributions=d, state=TrialState.PRUNED,
                                     user_attrs={IMPUTED: sign * (1.5 + 0.15 * i)}) for i in range(1, 5)]
                     + [create_trial(params={"x": 0.9}, distributions=d, state=TrialState.FAIL)])
    seen, startup = gp_view(study, 4, 0.5, False, impute=True)
    assert startup == 5  # 4, and the crash counted as the worst value; the four estimates count as runs
    values = [t.value for t in seen.trials]
    assert sorted(range(5), key=lambda j: sign * values[j]) == list(range(5))  # warped: the order kept
    assert gp_view(study, 4, 0.5, False, impute=False)[1] == 9  # every unfinished one as the worst: none counts


def test_a_maximised_campaign_estimates_below_its_incumbent():
    """The campaign's direction reaches the estimates: a maximised campaign at -1.5 is the
    mirror of a minimised one at 1.5, so the model proposes the same point in both."""
    p = KnobsProposer(seed=0)
    low = p.propose(_stopped_campaign(p)).meta["knobs"]
    high = p.propose(_stopped_campaign(p, metric=-1.5, goal=Goal.MAXIMIZE)).meta["knobs"]
    assert low["source"] == high["source"] == p.policy.model
    assert high["params"] == low["params"]


def test_a_proposal_refused_before_it_ran_blocks_only_its_own_point():
    """Only points still waiting or running keep the ones next to them out: a refused one is
    taken itself, its neighbours stay open (sequential campaigns with a refusal unchanged)."""
    from autoresearch.proposers.knob_study import pending_points

    p = KnobsProposer(seed=0)
    first = p.propose(context([baseline()]))
    knobs, _ = p.survey({"train.py": SYNTH})
    sig = code_signature({"train.py": SYNTH}, knobs)
    refused = Experiment(id=1, status=Status.INVALID, description=first.description, proposer="knobs", parent="c0",
                         commit=None, reason="stale", meta=first.meta)
    waiting = dataclasses.replace(refused, status=Status.PENDING, reason=None)
    point = tuple(sorted(first.meta["knobs"]["params"].items()))
    assert pending_points([baseline(), refused], sig) == {point}
    assert pending_points([baseline(), refused], sig, refused=False) == set()
    assert pending_points([baseline(), waiting], sig, refused=False) == {point}
