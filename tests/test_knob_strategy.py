"""The knobs proposer's default strategy (``sampler = "auto"``, ``knob_strategy.py``): the
portfolio's schedule and trust region as pure functions of the history, and the proposer
using it over in-memory histories as the ledger gives them."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import replace

import pytest

from autoresearch.config import load_config
from autoresearch.edits import apply_edits
from autoresearch.proposers import make_proposer
from autoresearch.proposers.knob_code import find_knobs
from autoresearch.proposers.knob_space import Space
from autoresearch.proposers.knob_strategy import (GLOBAL, Policy, arm_for, clip_to_region, from_unit, local_point,
                                                  model_box, next_arm, outcomes, to_unit, trust_length)
from autoresearch.proposers.knobs import KnobsProposer
from autoresearch.protocols import ProposalContext
from autoresearch.records import Experiment, Goal, Status
from autoresearch.testing import make_synthetic_arena, synthetic_true_loss

SYNTH = "LEARNING_RATE = 0.01\nWIDTH = 64\nDROPOUT = 0.3\nWARMUP_STEPS = 500\nSEED = 1\n"
L, M = "local", "model"


P3 = Policy(patience=3)  # the portfolio that switches arms on stalls


@pytest.mark.parametrize("done, policy, arm", [
    ([], Policy(), L),
    ([(L, False)] * 3, Policy(), L),                            # the start-up: around the user's values
    ([(L, False)] * 4, Policy(), M),                            # then the model
    ([(L, True)] * 4 + [(M, False)] * 12, Policy(), M),         # by default it does not hand over on misses
    ([(L, True)] * 4 + [(M, False)] * 2, P3, M),
    ([(L, True)] * 4 + [(M, False)] * 3, P3, L),                # 3 model misses in a row: local moves
    ([(L, True)] * 4 + [(M, False), (M, False), (M, True), (M, False)], P3, M),   # a keep resets the count
    ([(L, True)] * 4 + [(M, False)] * 3 + [(L, False)] * 3, P3, M),  # local stalls too: back to the model
    ([(L, True)] * 4 + [(M, False)] * 3 + [(L, True)] * 5, P3, L),   # local moves pay: they go on
    ([(L, True)] * 4 + [(M, None)] * 5, P3, M),                 # no result yet: not a miss
])
def test_next_arm(done, policy, arm):
    assert next_arm(done, policy) == arm


@pytest.mark.parametrize("done", [[], [(L, False)] * 3, [(L, True)] * 4 + [(M, False)] * 3, [(GLOBAL, False)] * 9])
def test_every_range_declared_means_the_global_arm_else_the_portfolio(done):
    assert arm_for(done, P3, all_declared=True) == GLOBAL
    assert arm_for(done, P3, all_declared=False) == next_arm(done, P3)


def test_next_arm_alternating_policy():
    p = Policy(alternate=True, startup=2)
    assert [next_arm([(L, False)] * n, p) for n in range(6)] == [L, L, M, L, M, L]


@pytest.mark.parametrize("done, length", [
    ([], 0.2),
    ([(L, True)], 0.2),
    ([(L, True)] * 2, 0.4),
    ([(L, True)] * 6, 0.8),                       # at most max_length
    ([(L, False)] * 3, 0.1),
    ([(L, False), (M, False), (L, False), (M, True), (L, False)], 0.1),  # model results do not count
    ([(L, False), (L, None), (L, False), (L, True), (L, False)], 0.2),   # a keep breaks the run of misses
    ([(L, False)] * 12, 0.0125),
    ([(L, False)] * 15, 0.2),                     # shrunk below min_length: a fresh region
])
def test_trust_length(done, length):
    assert math.isclose(trust_length(done, Policy()), length)


@pytest.mark.parametrize("space, param, unit", [
    (Space("float", 0.001, 0.1, log=True), 0.01, 0.5),
    (Space("float", 0.0, 1.0), 0.25, 0.25),
    (Space("int", 10, 1000, log=True), 100, 0.5),
    (Space("pow2", 4, 8), 6, 0.5),
    (Space("beta", 0.005, 0.5, log=True), 0.05, 0.5),
    (Space("choice", choices=("a", "b", "c")), "c", 1.0),
])
def test_unit_cube_round_trip(space, param, unit):
    assert math.isclose(to_unit(space, param), unit, abs_tol=1e-12)
    back = from_unit(space, unit)
    assert back == param if not isinstance(param, float) else math.isclose(back, param)
    assert space.to_param(space.to_value(from_unit(space, 1.7))) is not None  # clipped into the space


def test_local_points_stay_in_the_region_and_move_at_most_changes_knobs():
    spaces = {"A": Space("float", 0.001, 0.1, log=True), "B": Space("int", 2, 9), "C": Space("pow2", 4, 8),
              "D": Space("float", 0.0, 1.0)}
    centre = {"A": 0.01, "B": 9, "C": 6, "D": 0.5}
    for seed in range(200):
        p = local_point(random.Random(seed), spaces, centre, 0.2, 2)
        moved = [n for n in spaces if p[n] != centre[n]]
        assert 1 <= len(moved) <= 2
        for n in spaces:
            assert spaces[n].low <= p[n] <= spaces[n].high
            assert abs(to_unit(spaces[n], p[n]) - to_unit(spaces[n], centre[n])) < 0.6
    everything = local_point(random.Random(1), spaces, centre, 0.2, 0)
    assert sum(everything[n] != centre[n] for n in spaces) >= 3


def _exp(i, status, arm, signature="s", metric=1.0):
    return Experiment(i, status, "x", "knobs", "c", f"c{i}", metric=metric,
                      meta={"knobs": {"signature": signature, "arm": arm, "params": {}}})


@pytest.mark.parametrize("space, centre, point, length, clipped", [
    (Space("float", 0.001, 0.1, log=True), 0.01, 0.1, 0.5, 10 ** -1.5),   # a decade away: half a decade, log-scaled
    (Space("float", 0.001, 0.1, log=True), 0.01, 0.005, 0.5, 0.005),      # within: unchanged, not re-rounded
    (Space("float", 0.0, 1.0), 0.3, 1.0, 0.5, 0.55),
    (Space("float", 0.0, 1.0), 0.3, 0.0, 0.5, 0.05),
    (Space("float", 0.0, 1.0), 0.9, 1.0, 0.5, 1.0),                       # the region's edge beyond the range's
    (Space("pow2", 4, 8), 6, 8, 0.5, 7),                                  # exponents: one doubling, not two
    (Space("int", 10, 1000, log=True), 100, 10, 0.5, 32),
    (Space("choice", choices=("a", "b", "c")), "a", "c", 0.1, "c"),        # a choice is not a distance
    (Space("float", 0.0, 1.0), 0.3, 1.0, 1.0, 0.8),
    (Space("int", 1, 3, log=True), 1, 3, 0.5, 2),                         # would round back to 1: one notch
    (Space("int", 1, 3, log=True), 3, 1, 0.5, 2),
    (Space("beta", 0.001, 0.1, log=True), 0.01, 0.1, 0.5, 10 ** -1.5),    # 1 - x, log-scaled like a float
])
def test_clip_to_region(space, centre, point, length, clipped):
    out = clip_to_region({"X": space, "Y": Space("float", 0.0, 1.0)}, {"X": centre, "Y": 0.5},
                         {"X": point, "Y": 0.52}, length)
    assert out["X"] == (pytest.approx(clipped) if isinstance(clipped, float) else clipped)
    assert out["Y"] == 0.52  # within the region: unchanged


def test_outcomes_read_this_code_versions_portfolio_proposals_in_order():
    history = [
        Experiment(0, Status.KEEP, "baseline", "baseline", None, "c0", metric=1.0),
        _exp(3, Status.DISCARD, M),
        _exp(1, Status.KEEP, L),
        _exp(2, Status.CRASH, L, metric=None),
        _exp(4, Status.DISCARD, L, signature="other code"),        # made on other code: left out
        _exp(5, Status.INTERRUPTED, L),                             # re-run on resume
        _exp(6, Status.RUNNING, M),                                 # no result yet
        Experiment(7, Status.KEEP, "llm idea", "llm", "c", "c7", metric=0.9, meta={"model": "m"}),
        _exp(8, Status.KEEP, None),                                 # a plain-sampler proposal
        Experiment(9, Status.INVALID, "x", "knobs", "c", None, metric=None,  # refused before it ran: no result
                   meta={"knobs": {"signature": "s", "arm": L, "params": {}}}),
        _exp(10, Status.INVALID, L, metric=None),                   # ran, and was invalid (a readonly file changed)
    ]
    assert outcomes(history, "s") == [(L, True), (L, False), (M, False), (M, None), (L, False)]


# -- the proposer with the portfolio ---------------------------------------------------------------

def campaign(proposer, steps, source=SYNTH, noise=0.0):
    """Greedy keep-if-better over the synthetic landscape, the history as the ledger gives it.
    Returns the contexts each proposal was made from, and the proposals."""
    rng = random.Random(0)
    files = {"train.py": source}

    def loss(fs):
        k = {x.name: x.value for x in find_knobs("train.py", fs["train.py"])}
        return synthetic_true_loss(k["LEARNING_RATE"], k["WIDTH"], k["DROPOUT"], k["WARMUP_STEPS"]) + rng.gauss(0, noise)

    best = loss(files)
    history = [Experiment(0, Status.KEEP, "baseline", "baseline", None, "c0", metric=best)]
    contexts, proposals = [], []
    for i in range(1, steps + 1):
        ctx = ProposalContext(incumbent_commit="c", incumbent_metric=best, files=files, history=list(history),
                              metric="val_loss", goal=Goal.MINIMIZE, program="")
        p = proposer.propose(ctx)
        contexts.append(ctx)
        proposals.append(p)
        new = apply_edits(files, p.edits, ["train.py"])
        try:
            value = loss(new)
        except ValueError:  # outside the landscape's domain (a dropout of 1.0): the run crashes
            history.append(Experiment(i, Status.CRASH, p.description, "knobs", "c", f"c{i}", meta=p.meta))
            continue
        keep = value < best
        history.append(Experiment(i, Status.KEEP if keep else Status.DISCARD, p.description, "knobs", "c", f"c{i}",
                                  metric=value, meta=p.meta))
        if keep:
            files, best = new, value
    return contexts, proposals


def _moves(proposal):
    """How far each knob moved from the proposal's parent, in the unit cube."""
    k = proposal.meta["knobs"]
    return {name: abs(to_unit(Space.from_dict(d), k["params"][name]) - to_unit(Space.from_dict(d), k["parent"]["params"][name]))
            for name, d in k["spaces"].items()}


def test_default_strategy_starts_near_the_users_values_then_models():
    p = KnobsProposer(seed=5)
    assert p.sampler == "auto"
    contexts, proposals = campaign(p, 12)
    arms = [x.meta["knobs"]["arm"] for x in proposals]
    assert arms[:4] == [L] * 4 and arms[4:] == [M] * 8  # the model does not hand over on misses
    for x in proposals[:4]:
        assert len(x.edits) >= 3  # the start-up moves every knob, a little
        assert max(_moves(x).values()) < 0.6
    assert any(len(x.edits) > 2 for x in proposals[4:])  # the model moves every knob
    sources = [x.meta["knobs"]["source"] for x in proposals]  # what made each, recorded for the report
    assert sources[:4] == ["local"] * 4 and "gp" in sources[4:] and set(sources[4:]) <= {"gp", "local"}


def test_the_models_proposals_stay_within_a_box_around_the_incumbent():
    _, boxed = campaign(KnobsProposer(seed=5, policy=Policy(full_reach=0)), 12)  # the box never grows
    for x in boxed[4:]:  # within a box of side model_length (0.5) around the incumbent
        assert max(_moves(x).values()) <= 0.25 + 0.05  # + rounding to the written digits and integers
    # without the box the GP goes further (this landscape's optimum lies at the inferred ranges' edges)
    _, wide = campaign(KnobsProposer(seed=5, policy=Policy(model_length=1.0)), 12)
    assert max(max(_moves(x).values()) for x in wide[4:]) > 0.3


def test_the_box_grows_with_the_finished_runs_per_knob():
    """The first model proposal sees 5 finished points of 4 knobs: a box of side 5/8."""
    contexts, proposals = campaign(KnobsProposer(seed=5), 5)
    ctx = contexts[4]
    assert proposals[4].meta["knobs"]["arm"] == M
    same = KnobsProposer(seed=5, policy=Policy(model_length=0.625, full_reach=0)).propose(ctx)
    assert same == proposals[4]
    assert KnobsProposer(seed=5, policy=Policy(full_reach=0)).propose(ctx) != proposals[4]  # side 0.5


def test_a_declared_box_is_neither_clipped_nor_moved_by_every_knob():
    def run(policy):
        return campaign(KnobsProposer(seed=2, spaces=BOX, policy=policy), 9, source=FOUR)[1]

    assert [p.meta["knobs"]["arm"] for p in run(Policy())] == [GLOBAL] * 9
    assert run(Policy(model_length=0.05, full_reach=0, local_changes=1)) == run(Policy())


@pytest.mark.parametrize("policy, finished, knobs, side", [
    (Policy(), 5, 12, 0.5),              # the demo: a dozen knobs, a handful of runs
    (Policy(), 12, 12, 0.5),
    (Policy(), 18, 12, 0.75),            # the box grows with the runs per knob ...
    (Policy(), 24, 12, None),            # ... to the whole space at 2 per knob
    (Policy(), 5, 4, 0.625),
    (Policy(), 8, 4, None),
    (Policy(full_reach=0), 100, 4, 0.5),  # never grows
    (Policy(model_length=1.0), 1, 12, None),  # off
    (Policy(), 0, 0, 0.5),
])
def test_model_box(policy, finished, knobs, side):
    assert model_box(policy, finished, knobs) == side


def test_local_moves_can_be_bounded_by_changes_per_trial():
    _, proposals = campaign(KnobsProposer(seed=5, policy=Policy(local_changes=-1)), 4)
    assert all(1 <= len(x.edits) <= 2 for x in proposals)


FOUR = "LEARNING_RATE = 0.01\nWIDTH = 64\nDROPOUT = 0.3\nWARMUP_STEPS = 500\n"
BOX = {"LEARNING_RATE": {"low": 1e-4, "high": 0.3, "log": True}, "WIDTH": {"low": 8, "high": 512},
       "DROPOUT": {"low": 0.0, "high": 0.6}, "WARMUP_STEPS": {"low": 0, "high": 2000}}


def test_with_every_range_declared_the_model_starts_uniformly_over_the_box():
    p = KnobsProposer(seed=3, spaces=BOX)
    contexts, proposals = campaign(p, 7, source=FOUR)
    assert [x.meta["knobs"]["arm"] for x in proposals] == [GLOBAL] * 7
    # the start-up (3 draws after the default point) moves every knob anywhere in the box,
    # not at most 2 of them near the user's values
    assert all(len(x.edits) > 2 for x in proposals[:3])  # more than changes_per_trial
    far = [abs(to_unit(Space.from_dict(x.meta["knobs"]["spaces"][nm]), x.meta["knobs"]["params"][nm])
               - to_unit(Space.from_dict(x.meta["knobs"]["spaces"][nm]), x.meta["knobs"]["parent"]["params"][nm]))
           for x in proposals[:3] for nm in BOX]
    assert max(far) > 0.3
    for ctx, x in zip(contexts, proposals):  # rebuilt from the history alone, as on resume
        assert KnobsProposer(seed=3, spaces=BOX).propose(ctx) == x


def _crashed_start(seed):
    """A declared box's history: the baseline, then the first 3 proposals of a proposer of
    this seed, each of which crashed."""
    files = {"train.py": FOUR}
    history = [Experiment(0, Status.KEEP, "baseline", "baseline", None, "c0", metric=2.0)]
    for i in range(1, 4):
        ctx = ProposalContext(incumbent_commit="c", incumbent_metric=2.0, files=files, history=list(history),
                              metric="val_loss", goal=Goal.MINIMIZE, program="")
        p = KnobsProposer(seed=seed, spaces=BOX).propose(ctx)
        history.append(Experiment(i, Status.CRASH, p.description, "knobs", "c", f"c{i}", meta=p.meta))
    return ProposalContext(incumbent_commit="c", incumbent_metric=2.0, files=files, history=history,
                           metric="val_loss", goal=Goal.MINIMIZE, program="")


def test_runs_that_crashed_do_not_end_the_uniform_start_over_a_declared_box():
    """The GP counts a crash as the worst value, but the start-up (4 runs, the default point
    included) waits for finished ones: with only the baseline finished the next proposal is
    still a uniform draw, whatever points crashed; once runs finish, the model proposes."""
    def params(ctx):
        return KnobsProposer(seed=3, spaces=BOX).propose(ctx).meta["knobs"]["params"]

    def finished(ctx):  # the same runs, each finished instead of crashed
        return replace(ctx, history=[ctx.history[0], *[replace(e, status=Status.DISCARD, metric=3.0 + e.id)
                                                       for e in ctx.history[1:]]])

    a, b = _crashed_start(1), _crashed_start(2)
    assert [e.meta["knobs"]["params"] for e in a.history[1:]] != [e.meta["knobs"]["params"] for e in b.history[1:]]
    assert params(a) == params(b)  # a draw that ignores the history
    assert params(finished(a)) != params(finished(b))  # the model reads the history


def test_with_some_ranges_inferred_the_portfolio_starts_near_the_users_values():
    p = KnobsProposer(seed=3, spaces={"WIDTH": BOX["WIDTH"]})
    _, proposals = campaign(p, 4, source=FOUR)
    assert [x.meta["knobs"]["arm"] for x in proposals] == [L] * 4


def test_a_proposer_rebuilt_from_any_prefix_of_the_history_proposes_the_same():
    contexts, proposals = campaign(KnobsProposer(seed=2), 9)
    for ctx, p in zip(contexts, proposals):
        assert KnobsProposer(seed=2).propose(ctx) == p


def test_frozen_knobs_and_constraints_hold_for_both_arms():
    p = KnobsProposer(seed=1, freeze=("WIDTH",), constraints=("WARMUP_STEPS <= 600", "LEARNING_RATE >= 0.003"),
                      policy=Policy(model="tpe"))  # the portfolio as it runs without torch (and quicker)
    _, proposals = campaign(p, 9)
    assert {x.meta["knobs"]["arm"] for x in proposals} == {L, M}
    for x in proposals:
        values = x.meta["knobs"]["values"]
        assert "WIDTH" not in x.meta["knobs"]["spaces"] and "WIDTH" not in x.description
        assert values["WARMUP_STEPS"] <= 600 and values["LEARNING_RATE"] >= 0.003


def test_noisy_objective_campaign_still_improves():
    contexts, proposals = campaign(KnobsProposer(seed=0, policy=Policy(model="tpe")), 12, noise=0.02)
    assert len({tuple(sorted(x.meta["knobs"]["params"].items())) for x in proposals}) == 12  # never a repeat
    k = {x.name: x.value for x in find_knobs("train.py", contexts[-1].files["train.py"])}
    true = synthetic_true_loss(k["LEARNING_RATE"], k["WIDTH"], k["DROPOUT"], k["WARMUP_STEPS"])
    assert true < synthetic_true_loss(0.01, 64, 0.3, 500) - 0.05  # better for real, not only by a lucky draw


def test_without_torch_the_model_is_tpe_and_the_user_is_told_once():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # Python's own way to make an import fail
        "from autoresearch.proposers.knobs import KnobsProposer\n"
        "p = KnobsProposer()\n"
        "print(p.policy.model); print(len(p.notes)); print(p.notes[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    model, count, note = out.stdout.splitlines()
    assert (model, count) == ("tpe", "1"), out.stderr
    assert "torch" in note and "TPE" in note and "pip install" in note


def test_without_torch_the_hybrid_proposer_passes_the_note_on(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={
        "proposer": {"kind": "hybrid"}, "proposer.llm": {"model": "m", "base_url": "http://127.0.0.1:9/v1"}})
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from pathlib import Path\n"
        "from autoresearch.config import load_config\n"
        "from autoresearch.proposers import make_proposer\n"
        "arena = Path(sys.argv[1]); config = load_config(arena).config\n"
        "for kind in ('knobs', 'hybrid'):\n"
        "    notes = make_proposer(kind, config, arena).notes\n"
        "    print(kind, len(notes), 'TPE' in notes[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(arena)], capture_output=True, text=True)
    assert out.stdout.splitlines() == ["knobs 1 True", "hybrid 1 True"], out.stderr


def test_the_hybrid_proposers_knobs_phase_uses_the_default_strategy(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={
        "proposer": {"kind": "hybrid"}, "proposer.llm": {"model": "m", "base_url": "http://127.0.0.1:9/v1"}})
    config = load_config(arena).config
    hybrid = make_proposer("hybrid", config, arena)
    knobs = make_proposer("knobs", config, arena)
    assert hybrid.knobs.sampler == knobs.sampler == "auto" and hybrid.knobs.policy == knobs.policy
    files = {"train.py": (arena / "train.py").read_text()}
    history = [Experiment(0, Status.KEEP, "baseline", "baseline", None, "c0", metric=1.5),
               Experiment(1, Status.KEEP, "an idea", "llm", "c0", "c1", metric=1.4, meta={"model": "m"})]
    ctx = ProposalContext(incumbent_commit="c1", incumbent_metric=1.4, files=files, history=history,
                          metric="val_loss", goal=Goal.MINIMIZE, program="")
    assert hybrid.next_kind(history) == "knobs"
    p = hybrid.propose(ctx)
    assert p.proposer == "knobs" and p.meta["knobs"]["arm"] == L and p == knobs.propose(ctx)


@pytest.mark.slow
def test_a_noisy_campaign_with_the_confirm_judge_and_a_resume(tmp_path):
    """The default strategy through the real loop: runs with seeded noise, the confirm judge
    (several runs before a keep), killed once and resumed: the same ledger as a campaign
    that ran straight through."""
    from conftest import ledger_rows, run_cli

    def arena(name):
        # noise drawn from each run's seed (base seed + run index): repeatable, so the two
        # campaigns see the same measurements; the confirm judge still sees a spread
        return make_synthetic_arena(tmp_path / name, noise_seed_sd=0.005, config_overrides={
            "proposer": {"kind": "knobs", "lookahead": 0},
            "judge": {"policy": "confirm", "baseline_runs": 3, "max_runs": 3, "early_stop": "off"}})

    def outcome(a):
        return [(r["id"], r["status"], r["description"], r["proposal_json"])
                for r in ledger_rows(a, "SELECT * FROM experiments ORDER BY id")]

    straight = arena("straight")
    r = run_cli("run", straight, "--tag", "k", "--max-experiments", "9")
    assert r.returncode == 0, r.stderr
    rows = outcome(straight)
    # a crash is a possible outcome (the model may try a dropout of 1.0, outside the landscape)
    assert len(rows) == 9 and {x[1] for x in rows[1:]} <= {"keep", "discard", "crash"}
    assert "keep" in {x[1] for x in rows[1:]}
    import json

    arms = [json.loads(x[3])["meta"]["knobs"]["arm"] for x in rows[1:]]
    assert arms[:4] == [L] * 4 and M in arms
    killed = arena("killed")
    k = run_cli("run", killed, "--tag", "k", "--max-experiments", "9", env={"AUTORESEARCH_CRASH_AT": "after_run:6"})
    assert k.returncode == -9, k.stderr
    assert run_cli("run", killed, "--tag", "k", "--max-experiments", "9").returncode == 0
    assert [x[:3] for x in outcome(killed)] == [x[:3] for x in rows]


def test_the_default_strategys_gp_sees_the_tail_warp_and_a_named_sampler_does_not():
    """The warp (knob_gp), fixed or chosen by the GP's evidence, changes what the default
    strategy's GP proposes from the same history; a GP the user named, and TPE where torch
    is missing, see the values as they are."""
    contexts, _ = campaign(KnobsProposer(seed=3, spaces=BOX), 8, source=FOUR)
    later = contexts[5:]  # 6 or more finished trials: the GP models (its uniform start is over)

    def proposals(**kwargs):
        return [KnobsProposer(seed=3, spaces=BOX, **kwargs).propose(ctx).meta["knobs"]["params"] for ctx in later]

    fixed = Policy(choose_warp=False)
    # the chosen warp is the default, the configured one only its fall-back: here the
    # evidence chose the median gap's warp, whatever was configured
    assert proposals(policy=Policy(warp=0.0, choose_warp=True)) == proposals() == proposals(policy=fixed)
    assert proposals(policy=fixed) != proposals(policy=Policy(warp=0.0, choose_warp=False))
    assert proposals(sampler="gp", policy=fixed) == proposals(sampler="gp", policy=Policy(warp=0.0))
    assert proposals(policy=Policy(model="tpe")) == proposals(policy=Policy(model="tpe", warp=0.0, choose_warp=False))
