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

    from autoresearch.proposers.knob_gp import unfinished_as_worst, warped

    sign = 1.0 if direction == "minimize" else -1.0
    d = {"x": FloatDistribution(0, 1)}
    study = optuna.create_study(direction=direction)
    study.add_trials([create_trial(params={"x": 0.1}, distributions=d, value=sign * 1.0),
                      create_trial(params={"x": 0.3}, distributions=d, value=sign * 3.0),
                      create_trial(params={"x": 0.5}, distributions=d, state=TrialState.FAIL),
                      create_trial(params={"x": 0.7}, distributions=d, value=sign * 1001.0),
                      create_trial(params={"x": 0.9}, distributions=d, state=TrialState.PRUNED,
                                   intermediate_values={30: sign * 9.0})])
    out = warped(unfinished_as_worst(study), 0.5)
    # finished values 1, 3, 1001 and the crashed and stopped runs as the worst (1001):
    # gaps 0, 2, 1000, 1000, 1000; s = 1000
    assert [t.state for t in out.trials] == [TrialState.COMPLETE] * 5
    got = [t.value for t in out.trials]
    assert got == pytest.approx([0.0, sign * math.log1p(0.002), sign * math.log(2), sign * math.log(2),
                                 sign * math.log(2)])
    assert out.best_trial.params == {"x": 0.1}
    assert [t.value for t in study.trials] == [sign * 1.0, sign * 3.0, None, sign * 1001.0, None]
    assert warped(study, 0.0) is study  # off


def _warp_map(values, quantile):
    """Each value's warp with the best and the scale held fixed (what the Jacobian differentiates)."""
    from autoresearch.proposers.knob_gp import tail_scale

    if quantile == 0:
        return lambda v: v
    best, s = min(values), tail_scale(values, quantile)
    return lambda v: math.log1p((v - best) / s)


@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0, 4.0, 10.0], [0.5, 0.51, 0.7, 3.0, 90.0, 0.52],
                                    [-10.0, -8.0, -6.0, 100.0]])
@pytest.mark.parametrize("quantile", [0.0, 0.5, 0.75])
def test_the_standardised_values_and_the_log_jacobian_of_their_map(values, quantile):
    """z has mean 0 and sd 1; the log-Jacobian is the sum of log |dz/dv| (a central
    difference of each value's map, the scale, best, mean and sd held fixed)."""
    import statistics

    from autoresearch.proposers.knob_gp import standardised

    z, jacobian = standardised(values, quantile)
    assert statistics.fmean(z) == pytest.approx(0.0, abs=1e-12) and statistics.pstdev(z) == pytest.approx(1.0)
    f = _warp_map(values, quantile)
    sd = statistics.pstdev([f(v) for v in values])
    h = 1e-6
    numeric = sum(math.log(abs(f(v + h) - f(v - h)) / (2 * h) / sd) for v in values)
    assert jacobian == pytest.approx(numeric, rel=1e-6)


@pytest.mark.parametrize("values, quantile", [([2.0, 2.0, 2.0, 2.0], 0.0), ([1.0, 1.0, 1.0, 1.0, 5.0], 0.5),
                                              ([1.0, math.inf, 2.0, 3.0], 0.5)])
def test_nothing_to_standardise_where_the_values_do_not_vary_or_the_warp_is_undefined(values, quantile):
    from autoresearch.proposers.knob_gp import standardised

    assert standardised(values, quantile) is None


def _study(f, n, seed, direction="minimize"):
    import random

    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    d = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
    rng = random.Random(seed)
    sign = 1.0 if direction == "minimize" else -1.0
    study = optuna.create_study(direction=direction)
    for _ in range(n):
        x, y = rng.random(), rng.random()
        study.add_trial(create_trial(params={"x": x, "y": y}, distributions=d, value=sign * f(x, y)))
    return study


LINEAR = lambda x, y: x + 2 * y  # noqa: E731  a GP's natural prey: no warp helps
# a bowl that rises exponentially: a few huge values, the rest near the best
STEEP = lambda x, y: math.exp(12 * ((x - 0.3) ** 2 + (y - 0.6) ** 2))  # noqa: E731


@pytest.mark.parametrize("n", [6, 12, 24])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_evidence_chooses_no_warp_for_a_linear_landscape_and_a_warp_for_a_steep_one(n, seed):
    from autoresearch.proposers.knob_gp import WARPS, chosen_warp

    for f, warp in ((LINEAR, lambda q: q == 0.0), (STEEP, lambda q: q > 0)):
        trials = _study(f, n, seed).trials
        q = chosen_warp(trials, [t.value for t in trials])
        assert q in WARPS and warp(q), (f, q)


def test_the_chosen_warp_in_either_direction_and_none_where_none_is_chosen():
    """A maximised metric is warped as its negation would be; where the evidence chooses no
    warp the GP sees the study itself."""
    from autoresearch.proposers.knob_gp import warped

    low = [t.value for t in warped(_study(STEEP, 12, 0), 0.5, choose=True).trials]
    high = [t.value for t in warped(_study(STEEP, 12, 0, "maximize"), 0.5, choose=True).trials]
    assert high == pytest.approx([-v for v in low]) and low != [t.value for t in _study(STEEP, 12, 0).trials]
    linear = _study(LINEAR, 12, 0)
    assert warped(linear, 0.5, choose=True) is linear
    assert warped(linear, 0.5) is not linear  # the configured warp, not chosen


def test_the_configured_warp_where_the_evidence_cannot_choose(monkeypatch, caplog):
    """Fewer than 4 values; or an Optuna whose GP internals differ (simulated: the fitting
    function gone): the configured warp, with one warning."""
    import optuna._gp.gp

    from autoresearch.proposers import knob_gp

    trials = _study(LINEAR, 3, 0).trials
    assert knob_gp.chosen_warp(trials, [t.value for t in trials], fallback=0.75) == 0.75
    trials = _study(LINEAR, 12, 0).trials
    knob_gp._warned.clear()  # said once per process: as if none had been said yet
    monkeypatch.delattr(optuna._gp.gp, "fit_kernel_params")
    with caplog.at_level("WARNING", logger=knob_gp.__name__):
        assert knob_gp.chosen_warp(trials, [t.value for t in trials], fallback=0.5) == 0.5
        assert knob_gp.chosen_warp(trials, [t.value for t in trials], fallback=0.5) == 0.5
    assert len([r for r in caplog.records if "cannot be chosen" in r.getMessage()]) == 1


def test_an_optuna_without_the_gp_internals_is_said_once_and_the_fixed_warp_is_used(monkeypatch):
    """The proposer checks at set-up; the campaign prints its notes."""
    import optuna._gp.gp

    from autoresearch.proposers.knob_gp import evidence_available
    from autoresearch.proposers.knobs import KnobsProposer

    assert evidence_available() and KnobsProposer().policy.choose_warp and not KnobsProposer().notes
    monkeypatch.delattr(optuna._gp.gp, "fit_kernel_params")
    assert not evidence_available()
    p = KnobsProposer()
    assert not p.policy.choose_warp and p.policy.warp == 0.5
    assert len(p.notes) == 1 and "lacks the GP internals" in p.notes[0]
    assert not KnobsProposer(sampler="gp").notes  # a named sampler sees the values unwarped: nothing to say


@pytest.mark.parametrize("evidence, expected", [
    ({0.0: -10.0, 0.5: -3.0, 0.75: -7.0}, 0.5),
    # a NaN (a degenerate fit) would make max's answer depend on the order: it is left out
    ({0.0: math.nan, 0.5: -3.0, 0.75: -7.0}, 0.5),
    ({0.0: -10.0, 0.5: math.nan, 0.75: -7.0}, 0.75),
    ({0.0: -10.0, 0.5: math.inf, 0.75: -7.0}, 0.75),
    ({0.0: math.nan, 0.5: math.nan}, 0.25),  # nothing finite: the fall-back
    ({}, 0.25),
])
def test_the_warp_of_the_highest_finite_evidence(evidence, expected):
    from autoresearch.proposers.knob_gp import most_likely

    assert most_likely(evidence, fallback=0.25) == expected