"""The issue-18 verdicts of ``bench/search_suites.py`` as pure functions: the goal on one suite
(at most the best plain sampler's median, at most 1.1x plain TPE's) and the averages over
suites (geometric means of the median ratios)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from search_suites import (average_ratios, goal_check, goal_holds, goal_ratios, group_verdicts, knobs_options, plain_only,  # noqa: E402
                           policy_fields)


@pytest.mark.parametrize("medians, ratios, holds, words", [
    ({"knobs": 1.0, "tpe": 2.0, "gp": 4.0}, (0.5, 0.5), True, "yes, yes"),
    ({"knobs": 2.0, "tpe": 2.0, "gp": 4.0}, (1.0, 1.0), True, "yes, yes"),        # a tie with the best holds
    ({"knobs": 2.0, "tpe": 4.0, "gp": 1.0}, (2.0, 0.5), False, "no (2.00x best), yes"),
    ({"knobs": 2.3, "tpe": 2.0, "gp": 4.0}, (1.15, 1.15), False, "no (1.15x best), no (1.15x TPE)"),
    ({"knobs": 1.0, "gp": 4.0}, (0.25, None), True, "yes, yes"),                 # without TPE: only the best
    ({"knobs": 1.0, "knobs:gp:0:4": 0.5, "tpe": 2.0}, (0.5, 0.5), True, "yes, yes"),  # variants are not plain
])
def test_the_goal_on_one_suite(medians, ratios, holds, words):
    assert goal_ratios(medians) == pytest.approx(ratios)
    assert goal_holds(medians) is holds
    assert goal_check(medians) == words


def test_no_verdict_without_the_method_or_a_plain_sampler():
    assert goal_ratios({"tpe": 1.0}) is None and not goal_holds({"tpe": 1.0}) and goal_check({"tpe": 1.0}) == ""
    assert goal_ratios({"knobs": 1.0}) is None


def test_average_ratios_are_geometric_means_over_the_suites():
    table = {"a": {"knobs": 1.0, "tpe": 4.0, "gp": 0.5}, "b": {"knobs": 9.0, "tpe": 1.0, "gp": 9.0}}
    r = average_ratios(table)
    assert r["tpe"] == pytest.approx(math.sqrt(1 / 4 * 9))
    assert r["gp"] == pytest.approx(math.sqrt(2 * 1))
    assert r["best"] == pytest.approx(math.sqrt(2 * 9))  # the best plain sampler of each suite: gp, then tpe
    assert average_ratios(table, "knobs:other") == {}
    zero = average_ratios({"a": {"knobs": 0.0, "tpe": 1.0}})  # an optimum reached: finite, far below 1
    assert 0 <= zero["tpe"] < 1e-100


def test_a_variant_is_judged_against_the_plain_samplers_only():
    medians = {"knobs": 3.0, "knobs:gp:0:4": 1.5, "tpe": 2.0, "gp": 4.0}
    assert plain_only(medians) == {"tpe": 2.0, "gp": 4.0}
    assert goal_holds(medians, "knobs:gp:0:4") and not goal_holds(medians)


def test_policy_fields_and_variants_of_the_knobs_default():
    from autoresearch.proposers.knob_strategy import Policy

    assert policy_fields("patience=3/local_changes=-1/model_length=1.0/alternate=true") == \
        {"patience": 3, "local_changes": -1, "model_length": 1.0, "alternate": True}
    assert knobs_options("knobs") == {}
    assert knobs_options("knobs:auto:2:4:patience=3") == {
        "sampler": "auto", "changes_per_trial": 2, "startup_trials": 4, "policy": Policy(patience=3)}
    with pytest.raises(ValueError, match="not fields of Policy: patiense"):
        policy_fields("patiense=3")
    assert policy_fields("warp=0.25/alternate=Yes") == {"warp": 0.25, "alternate": True}
    assert policy_fields("alternate=False") == {"alternate": False}
    with pytest.raises(ValueError, match="alternate=maybe: a flag is true or false"):
        policy_fields("alternate=maybe")


def test_the_goal_per_suite_of_landscapes():
    table = {
        "synthetic": {"knobs": 1.0, "tpe": 2.0, "gp": 1.0},
        "synthetic+noise:0.02": {"knobs": 2.0, "tpe": 3.0, "gp": 1.0},     # 2x GP: the noisy suite misses
        "bbob:15:12:5": {"knobs": 1.05, "tpe": 1.0, "gp": 2.0},             # 1.05x TPE on one function ...
        "bbob:1:1:5": {"knobs": 0.5, "tpe": 1.0, "gp": 1.0},                # ... the suite's mean is below both
        "bbob:8:1:2": {"knobs": 1.0, "tpe": 1.0, "gp": 1.0},
    }
    v = group_verdicts(table)
    assert set(v) == {"synthetic", "noisy synthetic", "BBOB"}
    assert v["synthetic"] == (pytest.approx({"tpe": 0.5, "gp": 1.0, "best": 1.0}), 0.5, True)
    assert v["noisy synthetic"][2] is False and v["noisy synthetic"][0]["gp"] == pytest.approx(2.0)
    means, worst, holds = v["BBOB"]
    assert means["tpe"] == pytest.approx((1.05 * 0.5) ** (1 / 3)) and means["gp"] < 1 and worst == pytest.approx(1.05)
    assert holds
    table["bbob:8:1:2"] = {"knobs": 1.2, "tpe": 1.0, "gp": 3.0}  # 1.2x TPE on one function: never, whatever the mean
    assert group_verdicts(table)["BBOB"][2] is False


def test_a_plain_sampler_at_the_optimum():
    """A plain median regret of exactly 0 (a review: a ZeroDivisionError)."""
    assert goal_ratios({"knobs": 0.0, "tpe": 0.0}) == (1.0, 1.0)
    assert goal_ratios({"knobs": 0.1, "tpe": 0.0, "gp": 1.0}) == (math.inf, math.inf)
    assert not goal_holds({"knobs": 0.1, "tpe": 0.0}) and goal_holds({"knobs": 0.0, "tpe": 0.0})
