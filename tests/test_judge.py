"""Judges and their statistics on literal samples."""

import math

import pytest

from autoresearch.judge import ConfirmPolicy, Verdict, confirm_decision, greedy_decision
from autoresearch.records import Goal
from autoresearch.stats import betainc, pooled_sd, t_sf

MIN, MAX = Goal.MINIMIZE, Goal.MAXIMIZE


@pytest.mark.parametrize(
    "t, df, expected",
    [(2.015048, 5, 0.05), (2.570582, 5, 0.025), (1.812461, 10, 0.05), (2.228139, 10, 0.025), (3.169273, 10, 0.005),
     (1.644854, math.inf, 0.05), (0.0, 7, 0.5), (-1.812461, 10, 0.95), (12.706205, 1, 0.025)],
)
def test_t_sf_matches_tables(t, df, expected):
    assert t_sf(t, df) == pytest.approx(expected, abs=2e-6)


def test_betainc_edges():
    assert betainc(2, 3, 0) == 0 and betainc(2, 3, 1) == 1
    assert betainc(1, 1, 0.3) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "groups, sd, df",
    [([[1.0, 3.0]], math.sqrt(2), 1), ([[1.0, 3.0], [10.0, 10.0, 13.0]], math.sqrt((2 + 6) / 3), 3), ([[5.0]], None, 0), ([], None, 0)],
)
def test_pooled_sd(groups, sd, df):
    got_sd, got_df = pooled_sd(groups)
    assert got_df == df
    assert (got_sd is None and sd is None) or got_sd == pytest.approx(sd)


@pytest.mark.parametrize(
    "cand, inc, goal, verdict",
    [([0.9], [1.0], MIN, Verdict.KEEP), ([1.0], [1.0], MIN, Verdict.DISCARD), ([1.1], [1.0, 1.2], MIN, Verdict.DISCARD),
     ([1.09], [1.0, 1.2], MIN, Verdict.KEEP), ([2.0], [1.0], MAX, Verdict.KEEP), ([0.5], [1.0], MAX, Verdict.DISCARD)],
)
def test_greedy_compares_with_the_incumbents_mean(cand, inc, goal, verdict):
    assert greedy_decision(cand, inc, goal).verdict is verdict


INC = [1.00, 1.02, 0.98, 1.01, 0.99, 1.00, 1.03, 0.97]  # mean 1.0, the calibration runs
SIGMA, DF = pooled_sd([INC])


@pytest.mark.parametrize(
    "cand, goal, verdict, why",
    [
        ([1.05], MIN, Verdict.DISCARD, "not better"),            # the screen run is worse: clearly no
        ([1.00], MIN, Verdict.DISCARD, "not better"),            # no better than the incumbent's mean
        ([0.99], MIN, Verdict.MORE_RUNS, "one more run"),        # a little better: confirm
        ([0.90], MIN, Verdict.MORE_RUNS, "to confirm it"),       # far beyond the noise on one run: confirmed first
        ([0.90, 0.905], MIN, Verdict.KEEP, "2 runs"),            # ... by a second run
        ([0.90, 1.00], MIN, Verdict.MORE_RUNS, "one more run"),  # a second run far off: its own spread counts
        ([0.985, 0.99, 0.98], MIN, Verdict.MORE_RUNS, "one more run"),
        ([0.96, 0.965, 0.96, 0.965], MIN, Verdict.KEEP, "4 runs"),
        ([0.99, 1.0, 0.995, 0.99, 1.0, 0.995], MIN, Verdict.DISCARD, "undecided after 6 runs"),
        ([1.10], MAX, Verdict.MORE_RUNS, "to confirm it"),       # maximize: higher is better
        ([1.10, 1.095], MAX, Verdict.KEEP, "p="),
        ([0.95], MAX, Verdict.DISCARD, "not better"),
    ],
)
def test_confirm_decisions(cand, goal, verdict, why):
    inc = INC if goal is MIN else [2 - x for x in INC]  # mirrored for maximize: mean 1.0 either way
    d = confirm_decision(cand, inc, goal, SIGMA, DF)
    assert d.verdict is verdict, d.reason
    assert why in d.reason
    assert d.stats["incumbent_mean"] == pytest.approx(1.0)


def test_the_rounding_of_two_means_is_no_difference():
    # a scikit-learn trial printed "promising: 1.11e-16 better than the incumbent"
    same = [0.9706166666666667] * 3
    d = confirm_decision(same[:2], same, MAX, 0.0, 0)
    assert d.verdict is Verdict.DISCARD and d.stats["improvement"] == 0.0 and "e-16" not in d.reason


def test_min_effect_raises_the_bar():
    policy = ConfirmPolicy(min_effect=0.2)
    d = confirm_decision([0.9], INC, MIN, SIGMA, DF, policy)
    assert d.verdict is Verdict.DISCARD and "by more than 0.2" in d.reason
    assert confirm_decision([0.5, 0.5], INC, MIN, SIGMA, DF, policy).verdict is Verdict.KEEP


def test_a_noisier_candidate_is_judged_by_its_own_spread():
    # two runs 0.1 apart (sd 0.071 against the baseline's 0.02): their mean is 0.05 better, which
    # the baseline's noise alone would call certain; the candidate's own spread says it is not yet
    noisy = [0.90, 1.00]
    d = confirm_decision(noisy, INC, MIN, SIGMA, DF)
    assert d.verdict is Verdict.MORE_RUNS and d.stats["se"] == pytest.approx(math.sqrt(0.005 / 2 + SIGMA ** 2 / 8))
    assert confirm_decision(noisy, INC, MIN, SIGMA, DF, ConfirmPolicy(own_spread=False)).verdict is Verdict.KEEP
    # a candidate steadier than the pooled noise is judged by that noise, never by its own smaller spread
    steady = confirm_decision([0.95, 0.95], INC, MIN, SIGMA, DF)
    assert steady.stats["se"] == pytest.approx(SIGMA * math.sqrt(1 / 2 + 1 / 8))


@pytest.mark.parametrize("policy", [ConfirmPolicy(confirm_runs=1), ConfirmPolicy(max_runs=1)])
def test_one_run_keeps_where_the_policy_asks_for_no_confirmation(policy):
    assert confirm_decision([0.90], INC, MIN, SIGMA, DF, policy).verdict is Verdict.KEEP


def test_no_noise_means_an_exact_comparison():
    assert confirm_decision([0.999], [1.0], MIN, 0.0, 0).verdict is Verdict.KEEP
    assert confirm_decision([1.0], [1.0], MIN, 0.0, 0).verdict is Verdict.DISCARD


def test_the_incumbent_mean_not_its_luckiest_run():
    # 0.971 never beats the incumbent's luckiest run (0.97), but six runs of it beat its mean (1.0)
    d = confirm_decision([0.971] * 6, INC, MIN, SIGMA, DF)
    assert d.verdict is Verdict.KEEP and d.stats["incumbent_mean"] == pytest.approx(1.0)
    assert confirm_decision([0.974] * 6, INC, MIN, SIGMA, DF).verdict is Verdict.KEEP  # p just below alpha/2
    assert confirm_decision([0.975] * 6, INC, MIN, SIGMA, DF).verdict is Verdict.DISCARD  # p just above


# -- while the baseline's calibration is incomplete (issue 19): discard, or wait for it ----------

FIRST_TWO = [1.00, 1.001]  # the first two baseline runs: they agree closely, so the noise looks tiny
SIGMA2, DF2 = pooled_sd([FIRST_TWO])


@pytest.mark.parametrize(
    "cand, goal, verdict, why",
    [
        ([1.05], MIN, Verdict.DISCARD, "not better"),             # no better than the mean so far: discarded early
        ([1.0005], MIN, Verdict.DISCARD, "not better"),           # equal to the mean: the same
        ([0.99], MIN, Verdict.CALIBRATE, "calibration is complete"),  # a little better: waits for the calibration
        ([0.50], MIN, Verdict.CALIBRATE, "calibration is complete"),  # far better on these runs: waits all the same
        ([1.50], MAX, Verdict.CALIBRATE, "calibration is complete"),  # maximize: higher is better
        ([0.50], MAX, Verdict.DISCARD, "not better"),
    ],
)
def test_while_calibrating_the_judge_discards_or_waits_but_never_keeps(cand, goal, verdict, why):
    d = confirm_decision(cand, FIRST_TWO, goal, SIGMA2, DF2, calibrating=True)
    assert d.verdict is verdict, d.reason
    assert why in d.reason


def test_calibrating_changes_nothing_once_the_calibration_is_complete():
    for cand in ([0.9], [0.99], [1.05], [0.96, 0.965, 0.96, 0.965]):
        assert confirm_decision(cand, INC, MIN, SIGMA, DF).verdict is \
            confirm_decision(cand, INC, MIN, SIGMA, DF, calibrating=False).verdict
    # the trap the rule avoids: judged on the first two runs alone, 0.95 would be kept
    assert confirm_decision([0.95, 0.95], FIRST_TWO, MIN, SIGMA2, DF2).verdict is Verdict.KEEP


@pytest.mark.parametrize("policy, start", [(ConfirmPolicy(), 2), (ConfirmPolicy(baseline_runs=2), 2),
                                           (ConfirmPolicy(start_runs=5), 5), (ConfirmPolicy(start_runs=9), 8)])
def test_start_runs_never_exceed_the_calibration(policy, start):
    from autoresearch.judge import ConfirmJudge, GreedyJudge

    assert ConfirmJudge(policy=policy).start_runs == start
    assert GreedyJudge().start_runs == GreedyJudge().baseline_runs == 1
