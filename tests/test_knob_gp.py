"""What Optuna's GP sees in the knobs proposer's default strategy (``knob_gp``): the tail
warp of finished values. Table tests of the pure function, then the study it builds."""

import math

import pytest

from autoresearch.proposers.knob_gp import tail_warp


@pytest.mark.parametrize("values, quantile, expected", [
    # median gap 2 (gaps 0, 1, 2, 3): linear near the best, logarithmic in the tail
    ([1.0, 2.0, 3.0, 4.0], 0.5, [0.0, math.log1p(0.5), math.log1p(1.0), math.log1p(1.5)]),
    # the order of the values is kept; the best maps to 0
    ([4.0, 1.0, 3.0, 2.0], 0.5, [math.log1p(1.5), 0.0, math.log1p(1.0), math.log1p(0.5)]),
    # a huge value no longer dwarfs the rest: 1e6 away is about 13 units, not 5e5 medians
    ([0.0, 1.0, 2.0, 1e6], 0.5, [0.0, math.log1p(0.5), math.log1p(1.0), math.log1p(5e5)]),
    # a lower quantile: a smaller scale, the log starts sooner
    ([1.0, 2.0, 3.0, 4.0], 0.25, [0.0, math.log1p(1.0), math.log1p(2.0), math.log1p(3.0)]),
    # ties at the best, but the median gap is positive
    ([1.0, 1.0, 3.0, 5.0], 0.5, [0.0, 0.0, math.log1p(1.0), math.log1p(2.0)]),
    # negative values (a metric that is a log-likelihood): the gaps are what counts
    ([-10.0, -8.0, -6.0], 0.5, [0.0, math.log1p(1.0), math.log1p(2.0)]),
])
def test_the_tail_warp_is_linear_near_the_best_and_logarithmic_far_from_it(values, quantile, expected):
    assert tail_warp(values, quantile) == pytest.approx(expected)


@pytest.mark.parametrize("values", [
    [1.0, 2.0],                      # too few to tell a scale
    [3.0, 3.0, 3.0],                 # nothing to scale by
    [1.0, 1.0, 1.0, 1.0, 5.0],       # the median gap is zero: values tied at the best
    [0.0, 1e-310, 1e-310, 1.0],      # a scale so small the tail would not be finite
    [1.0, 2.0, math.inf],            # not finite: left to the GP as it is
    [1.0, math.nan, 2.0],
])
def test_the_tail_warp_is_undefined_where_there_is_no_scale(values):
    assert tail_warp(values) is None


@pytest.mark.parametrize("values", [[5.0, 0.1, 3.2, 7.7, 0.4, 9.9, 2.5], [-3.0, 10.0, 1e9, 0.0, 2.0]])
def test_the_tail_warp_is_monotone(values):
    warped = tail_warp(values)
    assert sorted(range(len(values)), key=values.__getitem__) == sorted(range(len(values)), key=warped.__getitem__)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_gp_sees_warped_values_in_the_studys_direction_and_the_study_is_unchanged(direction):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from autoresearch.proposers.knob_gp import pruned_as_worst, warped

    sign = 1.0 if direction == "minimize" else -1.0
    d = {"x": FloatDistribution(0, 1)}
    study = optuna.create_study(direction=direction)
    study.add_trials([create_trial(params={"x": 0.1}, distributions=d, value=sign * 1.0),
                      create_trial(params={"x": 0.3}, distributions=d, value=sign * 3.0),
                      create_trial(params={"x": 0.5}, distributions=d, state=TrialState.FAIL),
                      create_trial(params={"x": 0.7}, distributions=d, value=sign * 1001.0),
                      create_trial(params={"x": 0.9}, distributions=d, state=TrialState.PRUNED,
                                   intermediate_values={30: sign * 9.0})])
    out = warped(pruned_as_worst(study), 0.5)
    # finished values 1, 3, 1001 and the stopped run as the worst (1001): gaps 0, 2, 1000, 1000; s = 1000
    assert [t.state for t in out.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
                                             TrialState.COMPLETE, TrialState.COMPLETE]
    got = [t.value for t in out.trials if t.state is TrialState.COMPLETE]
    assert got == pytest.approx([0.0, sign * math.log1p(0.002), sign * math.log(2), sign * math.log(2)])
    assert out.best_trial.params == {"x": 0.1}
    assert [t.value for t in study.trials] == [sign * 1.0, sign * 3.0, None, sign * 1001.0, None]
    assert warped(study, 0.0) is study  # off
