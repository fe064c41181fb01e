"""The quadratic response surface of the knobs' default strategy (knob_quad)."""

from __future__ import annotations

import math
import random

import optuna
import pytest
from optuna.trial import create_trial

from autoresearch.edits import apply_edits
from autoresearch.proposers.knob_code import find_knobs
from autoresearch.proposers.knob_quad import box_minimum, surface_minimum, surface_point, terms
from autoresearch.proposers.knob_space import declared_space
from autoresearch.proposers.knob_strategy import Policy
from autoresearch.proposers.knobs import SOURCES, KnobsProposer
from autoresearch.protocols import ProposalContext
from autoresearch.records import Experiment, Goal, Status


def bowl(u, v):  # an ill-conditioned bowl whose axes are not the knobs': minimum at (0.5, 0.4)
    return 100 * (u + v - 0.9) ** 2 + (u - v - 0.1) ** 2


def ripples(u, v):  # Rastrigin-like: a bowl under ripples larger than it
    return (u - 0.5) ** 2 + (v - 0.5) ** 2 + 0.5 * (math.cos(40 * u) + math.cos(40 * v))


def uniform(n, seed=0):
    rng = random.Random(seed)
    return [[rng.random(), rng.random()] for _ in range(n)]


@pytest.mark.parametrize("f, n, box, expected", [
    (lambda u, v: (u - 0.3) ** 2 + (v - 0.6) ** 2, 12, 1.0, (0.3, 0.6)),  # the sphere's centre, exactly
    (bowl, 12, 1.0, (0.5, 0.4)),                                           # cross terms: the rotation
    (lambda u, v: (u - 0.3) ** 2 + (v - 1.4) ** 2, 12, 1.0, (0.3, 1.0)),  # beyond the cube: its face
    (lambda u, v: u * u + v * v + 0.3 * u * v, 7, 1.0, (0.0, 0.0)),       # one point more than the 6 coefficients
])
def test_the_surface_finds_a_quadratics_minimum(f, n, box, expected):
    x = uniform(n)
    point, fit = surface_minimum(x, [f(*p) for p in x], box, 0.5)
    assert point == pytest.approx(list(expected), abs=1e-6)
    assert fit == pytest.approx(1.0)


@pytest.mark.parametrize("f, n, why", [
    (lambda u, v: (u - 0.3) ** 2 + (v - 0.6) ** 2, 6, "no more points than coefficients"),
    (lambda u, v: -(u - 0.3) ** 2 - (v - 0.6) ** 2, 12, "a cap, no upward curvature"),
    (lambda u, v: 1.0, 12, "values that do not vary"),
    (ripples, 30, "a fit that does not predict the points left out"),
])
def test_no_surface_where_it_cannot_be_trusted(f, n, why):
    x = uniform(n)
    assert surface_minimum(x, [f(*p) for p in x], 1.0, 0.5) is None, why


@pytest.mark.parametrize("extra, gap, proposed", [
    ([(0.3, 0.6)], 0.0, True),                 # no gap: the minimum, though the best run sits on it (_new refuses it)
    ([(0.3, 0.6)], 0.03, False),               # the best run on the minimum: tried already
    ([(0.302, 0.6)], 0.03, False),             # the best run 0.002 away: within a tenth of the gap
    ([(0.32, 0.6)], 0.03, True),               # the best run 0.02 away: a step from it, proposed
    ([(0.32, 0.6), (0.3, 0.61)], 0.03, False),  # ... but another run 0.01 away: within the gap, tried already
    ([(0.32, 0.6), (0.3, 0.65)], 0.03, True),   # ... another 0.05 away: farther than the gap, proposed
])
def test_a_minimum_next_to_a_finished_run_counts_as_tried(extra, gap, proposed):
    def f(u, v):
        return (u - 0.3) ** 2 + 100 * (v - 0.6) ** 2

    x = uniform(12) + [list(p) for p in extra]
    assert min(range(len(x)), key=lambda i: f(*x[i])) == 12  # the first extra run is the best
    found = surface_minimum(x, [f(*p) for p in x], 1.0, 0.5, gap)
    assert (found is not None) == proposed
    if proposed:
        assert found[0] == pytest.approx([0.3, 0.6], abs=1e-6)


def test_random_values_are_not_predicted():
    rng = random.Random(3)
    x = uniform(30)
    assert surface_minimum(x, [rng.random() for _ in x], 1.0, 0.5) is None
    assert surface_minimum(x, [rng.random() for _ in x], 1.0, -math.inf) is not None  # no check: a minimum


def test_the_minimum_stays_within_the_box_around_the_best_point():
    x = [[u / 2, v / 2] for u, v in uniform(12)]  # the best point within 0.5 of the origin
    values = [(u - 0.9) ** 2 + (v - 0.9) ** 2 for u, v in x]
    best = x[min(range(len(x)), key=values.__getitem__)]
    point, _ = surface_minimum(x, values, 0.4, 0.5)
    assert all(abs(p - b) <= 0.2 + 1e-12 for p, b in zip(point, best))
    assert point != pytest.approx([0.9, 0.9], abs=1e-3)  # the true minimum lies outside the box
    assert terms(2) == 6 and terms(5) == 21


def test_a_saddle_counts_as_shallow_along_its_downward_direction():
    x = uniform(12)
    point, _ = surface_minimum(x, [(u - 0.5) ** 2 - 0.1 * (v - 0.5) ** 2 for u, v in x], 1.0, 0.5)
    assert point[0] == pytest.approx(0.5, abs=1e-6) and 0.0 <= point[1] <= 1.0


def test_box_minimum_matches_a_grid_search():
    import numpy as np

    h, b = np.array([[2.0, 1.5], [1.5, 2.0]]), np.array([-3.0, 1.0])
    lo, hi = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    q = lambda x: 0.5 * x @ h @ x + b @ x  # noqa: E731
    grid = min((np.array([i / 400, j / 400]) for i in range(401) for j in range(401)), key=q)
    assert box_minimum(h, b, lo, hi) == pytest.approx(grid, abs=3e-3)
    assert q(box_minimum(h, b, lo, hi)) <= q(grid) + 1e-12


@pytest.mark.parametrize("direction, sign", [("minimize", 1.0), ("maximize", -1.0)])
def test_surface_point_reads_the_studys_direction(direction, sign):
    spaces = {"A": declared_space("A", {"low": 0.0, "high": 1.0}, 0.5, False),
              "B": declared_space("B", {"low": 0.0, "high": 2.0}, 0.5, False)}
    study = optuna.create_study(direction=direction)
    dists = {n: s.distribution() for n, s in spaces.items()}
    for u, v in uniform(12):
        study.add_trial(create_trial(params={"A": u, "B": 2 * v}, distributions=dists, value=sign * bowl(u, v)))
    point = surface_point(study, spaces, 1.0, 0.5)
    assert point == pytest.approx({"A": 0.5, "B": 0.8}, abs=1e-6)  # B's range is twice the unit's


def unit_square():
    return {"A": declared_space("A", {"low": 0.0, "high": 1.0}, 0.5, False),
            "B": declared_space("B", {"low": 0.0, "high": 1.0}, 0.5, False)}


def _study_of(spaces, points, f):
    study = optuna.create_study()
    dists = {n: s.distribution() for n, s in spaces.items()}
    for u, v in points:
        study.add_trial(create_trial(params={"A": u, "B": v}, distributions=dists, value=f(u, v)))
    return study


def test_a_local_surface_is_fitted_through_the_best_runs_only():
    """A bowl whose walls steepen away from it (a rotated ellipsoid under BBOB's
    distortions; 2-D f10 i2 missed 3.5x plain GP): fitted through every run, the quadratic
    bends to the walls; through the best ``local * terms`` runs, it is the bowl's."""
    spaces = unit_square()

    def walls(u, v):  # a bowl at (0.3, 0.6) out to q = 0.04; steeper, and lopsided, beyond
        q = (u - 0.3) ** 2 + (v - 0.6) ** 2
        return q if q <= 0.04 else q + 30 * (q - 0.04) * (1 + u)

    rng = random.Random(2)
    near = [(0.3 + 0.19 * math.cos(a) * r, 0.6 + 0.19 * math.sin(a) * r)
            for a, r in ((rng.uniform(0, 2 * math.pi), rng.random() ** 0.5) for _ in range(14))]
    far = [(u, v) for u, v in uniform(40, seed=5) if (u - 0.3) ** 2 + (v - 0.6) ** 2 > 0.09][:20]
    study = _study_of(spaces, near + far, walls)
    local = surface_point(study, spaces, 1.0, -1000.0, 0.0, local=2.0)  # the best 12 of 34: all in the bowl
    assert local == pytest.approx({"A": 0.3, "B": 0.6}, abs=1e-6)
    everything = surface_point(study, spaces, 1.0, -1000.0, 0.0)
    assert everything is not None and everything != pytest.approx({"A": 0.3, "B": 0.6}, abs=0.02)
    # a run the fit leaves out still counts as tried: a bad draw right at that minimum
    dists = {n: sp.distribution() for n, sp in spaces.items()}
    study.add_trial(create_trial(params={"A": 0.31, "B": 0.6}, distributions=dists, value=5.0))
    assert surface_point(study, spaces, 1.0, -1000.0, 0.0, local=2.0) == pytest.approx({"A": 0.3, "B": 0.6}, abs=1e-6)
    assert surface_point(study, spaces, 1.0, -1000.0, 0.03, local=2.0) is None
    # no more runs than that: every run, as without it
    few = _study_of(spaces, near[:8] + far[:4], walls)
    assert surface_point(few, spaces, 1.0, -1000.0, 0.0) is not None
    assert surface_point(few, spaces, 1.0, -1000.0, 0.0, local=2.0) == surface_point(few, spaces, 1.0, -1000.0, 0.0)


def test_the_local_surface_only_where_it_predicts_the_best_runs_better():
    """With observation noise the best runs are partly the luckiest draws: a quadratic
    through them alone fits noise (the 4-knob synthetic landscape at sd 0.05 lost to plain
    GP). There the fit through every run predicts those runs better, left out one at a time,
    and is the one used; on the steep-walled bowl above the local one is."""
    spaces = unit_square()
    rng = random.Random(3)
    noise = {tuple(p): rng.gauss(0, 0.05) for p in uniform(40, seed=4)}
    study = _study_of(spaces, list(noise), lambda u, v: (u - 0.3) ** 2 + (v - 0.6) ** 2 + noise[(u, v)])
    everything = surface_point(study, spaces, 1.0, -1000.0, 0.0)
    assert everything is not None
    assert surface_point(study, spaces, 1.0, -1000.0, 0.0, local=2.0) == everything
    lucky = surface_point(study, spaces, 1.0, -1000.0, 0.0, local=2.0, pick=False)  # through the best 12 regardless
    assert lucky is not None and lucky != pytest.approx(everything, abs=0.01)
    # the comparison itself, on the points: the best 12's leave-one-out errors decide
    x = [[p[0], p[1]] for p in noise]
    y = [(u - 0.3) ** 2 + (v - 0.6) ** 2 + noise[(u, v)] for u, v in noise]
    assert surface_minimum(x, y, 1.0, -1000.0, 0.0, 12) == surface_minimum(x, y, 1.0, -1000.0)
    assert surface_minimum(x, y, 1.0, -1000.0, 0.0, 12, pick=False) != surface_minimum(x, y, 1.0, -1000.0)


def test_no_local_surface_that_its_runs_cannot_check():
    """A fit that some run alone determines has nothing left out to check it by."""
    # no more best runs than coefficients (1 knob: 3, and int(1.2 * 3) = 3): an exact fit that
    # no run left out could check, never used
    one = [[u / 10] for u in range(10)]
    wavy = [(u[0] - 0.3) ** 2 + 0.02 * math.cos(30 * u[0]) for u in one]
    for pick in (True, False):
        assert surface_minimum(one, wavy, 1.0, -1000.0, 0.0, 3, pick) == surface_minimum(one, wavy, 1.0, -1000.0)
    # best runs of which one alone fixes a coefficient (all on a line but one: an integer knob
    # with few values among them): its leave-one-out error is no check, so no local fit
    line = [[u, 0.5] for u in (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)] + [[0.3, 0.55]]
    far = [p for p in uniform(30, seed=6) if abs(p[1] - 0.5) > 0.2][:12]
    x = line + far
    y = [(u - 0.3) ** 2 + 10 * (v - 0.5) ** 2 if [u, v] in line else 3 + math.cos(9 * u) * v for u, v in x]
    assert surface_minimum(x, y, 1.0, -1000.0, 0.0, len(line)) == surface_minimum(x, y, 1.0, -1000.0)
    assert surface_minimum(x, y, 1.0, -1000.0, 0.0, len(line), False) != surface_minimum(x, y, 1.0, -1000.0)


def test_the_leave_one_out_errors_are_refits_without_each_run_in_the_values_units():
    """The pick compares two fits' leave-one-out errors on the same runs, so each error must
    be what a fit without that run mispredicts it by, in the values' own units (each fit
    standardizes its own values: the local fit's spread is not every run's)."""
    import numpy as np

    from autoresearch.proposers.knob_quad import _pairs, _quadratic

    rng = np.random.default_rng(5)
    x = rng.random((15, 3))
    y = 40 + 300 * ((x - 0.4) ** 2).sum(axis=1) + rng.normal(0, 5, 15)

    def design(p):
        return np.column_stack([np.ones(len(p)), p] + [p[:, i] * p[:, j] for i, j in _pairs(3)])

    brute = []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        coef, *_ = np.linalg.lstsq(design(x[rest]), y[rest], rcond=None)
        brute.append(y[i] - design(x[i:i + 1])[0] @ coef)
    _, left_out, fit, leverage = _quadratic(x, y)
    assert left_out == pytest.approx(brute, rel=1e-6, abs=1e-9)
    assert fit == pytest.approx(1 - float(np.square(brute).sum()) / float(np.square(y - y.mean()).sum()))
    assert 0 < leverage < 1


def test_surface_point_passes_its_gap_on():
    spaces = unit_square()
    study = _study_of(spaces, uniform(12), bowl)  # the best of them 0.011 from the bowl's minimum, (0.5, 0.4)
    assert surface_point(study, spaces, 1.0, 0.5, 0.03) == pytest.approx({"A": 0.5, "B": 0.4}, abs=1e-6)
    assert surface_point(study, spaces, 1.0, 0.5, 0.2) is None  # within a tenth of 0.2 of the best run


# -- in the proposer ---------------------------------------------------------------------------------

SOURCE = "A = 0.9\nB = 0.1\n"
BOX = {"A": {"low": 0.0, "high": 1.0}, "B": {"low": 0.0, "high": 1.0}}


def campaign(policy, steps):
    """Keep-if-lower over ``bowl`` with both ranges declared; the proposals."""
    files = {"train.py": SOURCE}

    def value(fs):
        k = {x.name: x.value for x in find_knobs("train.py", fs["train.py"])}
        return bowl(k["A"], k["B"])

    best = value(files)
    history = [Experiment(0, Status.KEEP, "baseline", "baseline", None, "c0", metric=best)]
    proposer, proposals = KnobsProposer(seed=1, spaces=BOX, policy=policy), []
    for i in range(1, steps + 1):
        p = proposer.propose(ProposalContext(incumbent_commit="c", incumbent_metric=best, files=files,
                                             history=list(history), metric="loss", goal=Goal.MINIMIZE, program=""))
        proposals.append(p)
        new = apply_edits(files, p.edits, ["train.py"])
        v = value(new)
        history.append(Experiment(i, Status.KEEP if v < best else Status.DISCARD, p.description, "knobs", "c",
                                  f"c{i}", metric=v, meta=p.meta))
        if v < best:
            files, best = new, v
    return proposals


def test_once_the_surface_predicts_every_other_proposal_is_its_minimum():
    with_surface, without = campaign(Policy(), 14), campaign(Policy(surface=0), 14)
    first = next(i for i, (a, b) in enumerate(zip(with_surface, without)) if a != b)
    assert first >= terms(2)  # not before the runs outnumber the coefficients

    def reached(proposals):
        return min(bowl(p.meta["knobs"]["params"]["A"], p.meta["knobs"]["params"]["B"]) for p in proposals)

    assert reached(with_surface) < 1e-6  # the exact quadratic's minimum, to the written digits
    assert reached(without) > 1e-4
    assert campaign(Policy(), 14) == with_surface  # a function of the history: replayed, the same


def test_each_proposal_records_what_made_it():
    sources = [p.meta["knobs"]["source"] for p in campaign(Policy(), 14)]
    made = {s: [i for i, x in enumerate(sources, 1) if x == s] for s in set(sources)}
    assert made["start"] == [1, 2, 3]  # uniform over the declared box, with the default point: 4 start-up trials
    assert made["surface"] and all(n % 2 == 0 and n > terms(2) for n in made["surface"])
    assert set(made) <= set(SOURCES) and "gp" in made
    assert "surface" not in {p.meta["knobs"]["source"] for p in campaign(Policy(surface=0), 14)}
    tpe = [p.meta["knobs"]["source"] for p in campaign(Policy(model="tpe", surface=0), 8)]  # the model without torch
    assert tpe == ["start"] * 3 + ["tpe"] * 5
