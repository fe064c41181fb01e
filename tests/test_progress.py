"""Progress reports and the early-stopping rule: pure functions, table-driven."""

from __future__ import annotations

import re

import pytest

from autoresearch.config import JudgeTable
from autoresearch.engine.early_stop import EarlyStopSettings, TrustedRun, make_rule
from autoresearch.progress import (LineSplitter, StopRule, add_point, behind, curve_file_for, decide, end_agrees, end_scale,
                                   parse_progress_json, parse_progress_line, pattern_value, proxy_direction, read_curve_file,
                                   reference_band, suffix, value_at, write_curve_file)


@pytest.mark.parametrize("line, expected", [
    ("progress: 0.25 train_loss: 3.1", (0.25, {"train_loss": 3.1})),
    ("progress: 25% train_loss: 3.1 lr: 1e-3", (0.25, {"train_loss": 3.1, "lr": 0.001})),
    ("  progress=0.5 loss=2.0", (0.5, {"loss": 2.0})),
    ("progress: 0.5, loss: 2.0, acc: 0.9", (0.5, {"loss": 2.0, "acc": 0.9})),
    ("progress: 0.3 train_loss: nan", (0.3, {})),            # not finite: left out
    ("progress: 0.3 train_loss: 3,1", (0.3, {})),            # unparsable: left out
    ("progress: 1.7 loss: 2", (None, {"loss": 2.0})),        # not a fraction: elapsed time then
    ("progress: 150% loss: 2", (None, {"loss": 2.0})),        # not a fraction: elapsed time then
    ("progress: -0.1 loss: 2", (None, {"loss": 2.0})),
    ("progress: 0.4", (0.4, {})),
    ("step 200: train loss 3.1", None),
    ("val_bpb: 1.5", None),
    ("my progress: 0.5 loss: 2", None),
])
def test_parse_progress_line(line, expected):
    assert parse_progress_line(line) == expected


@pytest.mark.parametrize("line, expected", [
    ('{"progress": 0.25, "train_loss": 3.1}', (0.25, {"train_loss": 3.1})),
    ('{"train_loss": 3.1}', (None, {"train_loss": 3.1})),
    ('{"progress": 0.5, "loss": 2, "note": "x", "ok": true}', (0.5, {"loss": 2.0})),
    ('{"progress": 0.5, "loss": NaN}', (0.5, {})),
    ("[1, 2]", None),
    ("not json", None),
    ('{"progress": 0.5', None),
    ('{"progress": 25, "loss": 2}', (None, {"loss": 2.0})),   # not a fraction: elapsed time then
])
def test_parse_progress_json(line, expected):
    assert parse_progress_json(line) == expected


@pytest.mark.parametrize("pattern, line, expected", [
    (r"val loss ([0-9.]+)", "step 100: train loss 3.2, val loss 3.3", 3.3),
    (r"val loss (?P<value>[0-9.]+)", "val loss 1.5 ... val loss 1.4", 1.4),
    (r"val loss ([0-9.]+)", "train loss 3.2", None),
    (r"val loss (\S+)", "val loss inf", None),
])
def test_pattern_value(pattern, line, expected):
    assert pattern_value(re.compile(pattern), line) == expected


def test_add_point_bounds_and_monotone_fractions():
    curves: dict = {}
    add_point(curves, 0.5, {"a": 1.0})
    add_point(curves, 0.4, {"a": 2.0})  # a fraction never goes back
    assert curves["a"] == [(0.5, 1.0), (0.5, 2.0)]
    for i in range(1000):
        add_point(curves, 0.5 + i / 2000, {"a": float(i)})
    assert len(curves["a"]) <= 256 and curves["a"][-1][1] == 999.0
    for i in range(20):
        add_point(curves, 1.0, {f"k{i}": 1.0})
    assert len(curves) == 8


@pytest.mark.parametrize("chunks, lines", [
    ([b"a\nb", b"c\n"], ["a", "bc"]),
    ([b"x\r\n"], ["x"]),
    ([b"y" * 5000], ["y" * 4096]),
])
def test_line_splitter(chunks, lines):
    s = LineSplitter()
    out = [line for c in chunks for line in s.feed(c)]
    assert out == lines


@pytest.mark.parametrize("f, expected", [(0.1, None), (0.2, 4.0), (0.3, 3.5), (0.4, 3.0), (0.5, None)])
def test_value_at(f, expected):
    assert value_at([(0.2, 4.0), (0.4, 3.0)], f) == expected


def test_reference_band_mean_and_sd():
    band = reference_band([[(0.0, 4.0), (1.0, 2.0)], [(0.0, 5.0), (1.0, 3.0)]], grid=(0.5,))
    assert band == ((0.5, 3.5, pytest.approx(0.7071, abs=1e-4)),)
    assert reference_band([[(0.5, 1.0), (1.0, 1.0)]], grid=(0.25,)) == ()  # outside the curve


RULE = StopRule("loss", "minimize", ((0.1, 4.0, 0.1), (1.0, 3.0, 0.1)), min_fraction=0.2, margin=0.1, z=4.0)


@pytest.mark.parametrize("curve, stopped", [
    ([(0.3, 5.0), (0.35, 5.0)], True),                    # both points far above the band
    ([(0.3, 5.0)], False),                                 # one point: patience 2
    ([(0.3, 5.0), (0.35, 3.8)], False),                    # the last point within the band
    ([(0.1, 9.0), (0.15, 9.0)], False),                    # before min_fraction
    ([(0.3, 4.15), (0.35, 4.15)], False),                  # worse, but within max(4 sd, 10 %)
    ([(0.3, 3.0), (0.35, 2.9)], False),                    # better
    ([(0.3, 5.0), (0.301, 5.0), (0.302, 5.0)], False),     # fast reports: worse over 0.2 % of the budget only
    ([(0.25, 5.0), (0.3, 5.0), (0.301, 5.0)], True),       # worse over the last 5 % of the budget
    ([(0.25, 3.0), (0.3, 5.0), (0.301, 5.0)], False),      # the span's first point was within the band
])
def test_decide_minimize(curve, stopped):
    assert (decide(RULE, curve) is not None) == stopped


# before SETTLED (30 %) only a start far behind counts: 40 % here, 10 % from 30 % on (no spread)
EARLY = StopRule("loss", "minimize", ((0.1, 4.0, 0.0), (1.0, 4.0, 0.0)), min_fraction=0.15, margin=0.1, z=0.0,
                 early_margin=0.4)


# early 40 %, 10 % from 30 %, 4 % from 50 % on (no spread): the reference is 4.0 throughout
LATE_RULE = StopRule("loss", "minimize", ((0.1, 4.0, 0.0), (1.0, 4.0, 0.0)), min_fraction=0.15, margin=0.1, z=0.0,
                     early_margin=0.4, late_margin=0.04)


@pytest.mark.parametrize("rule, curve, stopped", [
    (EARLY, [(0.15, 6.0), (0.2, 6.0)], True),              # 50 % behind at 15-20 %: stopped at 20 %
    (EARLY, [(0.15, 5.0), (0.2, 5.0)], False),             # 25 % behind early: a slow start, not judged yet
    (EARLY, [(0.25, 5.0), (0.3, 5.0)], False),             # the span's first point is still early
    (EARLY, [(0.25, 5.0), (0.3, 5.0), (0.35, 5.0)], True), # from 30 % on, the margin (10 %)
    (EARLY, [(0.1, 9.0), (0.15, 9.0)], False),             # before min_fraction nothing is judged
    (EARLY, [(0.2, 6.0), (0.25, 4.2)], False),             # caught up within the margin
    (LATE_RULE, [(0.4, 4.3), (0.45, 4.3)], False),         # 7.5 % behind in the middle: within 10 %
    (LATE_RULE, [(0.45, 4.3), (0.5, 4.3)], False),         # the span's first point is still in the middle
    (LATE_RULE, [(0.5, 4.3), (0.55, 4.3)], True),          # 7.5 % behind from 50 % on: beyond 4 %
    (LATE_RULE, [(0.5, 4.1), (0.55, 4.1)], False),         # 2.5 % behind late: within 4 %
    (LATE_RULE, [(0.5, 4.3), (0.55, 4.1)], False),         # caught up within the late margin
])
def test_decide_by_the_margin_of_each_stretch_of_the_budget(rule, curve, stopped):
    assert (decide(rule, curve) is not None) == stopped


def test_an_early_margin_never_below_the_margin_and_none_is_the_margin_throughout():
    low = StopRule("loss", "minimize", ((0.1, 4.0, 0.0), (1.0, 4.0, 0.0)), min_fraction=0.15, margin=0.1, z=0.0,
                   early_margin=0.01)
    assert low.limit(0.2) == pytest.approx(4.4)   # max(margin, early_margin)
    plain = StopRule("loss", "minimize", ((0.1, 4.0, 0.0), (1.0, 4.0, 0.0)), min_fraction=0.15, margin=0.1, z=0.0)
    assert plain.limit(0.2) == pytest.approx(4.4) and plain.limit(0.5) == pytest.approx(4.4)
    assert EARLY.limit(0.2) == pytest.approx(5.6) and EARLY.limit(0.3) == pytest.approx(4.4)
    assert StopRule.from_json(EARLY.to_json()) == EARLY
    legacy = {k: v for k, v in EARLY.to_json().items() if k != "early_margin"}  # a rule sent before the field
    assert StopRule.from_json(legacy).early_margin is None
    maxi = StopRule("acc", "maximize", ((0.1, 0.5, 0.0), (1.0, 0.5, 0.0)), min_fraction=0.1, margin=0.1, z=0.0,
                    early_margin=0.4)
    assert maxi.limit(0.2) == pytest.approx(0.3) and maxi.limit(0.5) == pytest.approx(0.45)
    band = StopRule("loss", "minimize", ((0.1, 4.0, 0.1), (1.0, 4.0, 0.1)), min_fraction=0.1, margin=0.05, z=4.0,
                    early_margin=0.2)
    assert band.limit(0.2) == pytest.approx(4.8) and band.limit(0.5) == pytest.approx(4.4)  # the larger: margin or 4 sd
    newer = {**EARLY.to_json(), "a_later_field": 1}  # a rule from a newer driver: its extras are left out
    assert StopRule.from_json(newer) == EARLY


@pytest.mark.parametrize("f, margin", [
    (0.2, 0.4), (0.29, 0.4),          # early: the early margin
    (0.3, 0.1), (0.49, 0.1),          # the middle: the margin
    (0.5, 0.04), (0.9, 0.04),         # late: the late margin
])
def test_the_margin_by_the_fraction_of_the_budget(f, margin):
    assert LATE_RULE.margin_at(f) == pytest.approx(margin)
    assert LATE_RULE.limit(f) == pytest.approx(4.0 * (1 + margin))


def test_a_late_margin_never_above_the_margin_and_a_band_still_counts():
    loose = StopRule("loss", "minimize", ((0.1, 4.0, 0.0), (1.0, 4.0, 0.0)), min_fraction=0.1, margin=0.05, z=0.0,
                     late_margin=0.2)
    assert loose.limit(0.6) == pytest.approx(4.2)          # min(margin, late_margin)
    band = StopRule("loss", "minimize", ((0.1, 4.0, 0.1), (1.0, 4.0, 0.1)), min_fraction=0.1, margin=0.05, z=4.0,
                    late_margin=0.03)
    assert band.limit(0.6) == pytest.approx(4.4)           # 4 sd is the larger
    assert StopRule.from_json(LATE_RULE.to_json()) == LATE_RULE
    legacy = {k: v for k, v in LATE_RULE.to_json().items() if k != "late_margin"}  # a rule sent before the field
    assert StopRule.from_json(legacy).late_margin is None and StopRule.from_json(legacy).limit(0.6) == pytest.approx(4.4)
    maxi = StopRule("acc", "maximize", ((0.1, 0.5, 0.0), (1.0, 0.5, 0.0)), min_fraction=0.1, margin=0.1, z=0.0,
                    late_margin=0.02)
    assert maxi.limit(0.4) == pytest.approx(0.45) and maxi.limit(0.6) == pytest.approx(0.49)


@pytest.mark.parametrize("name, direction", [
    ("train_loss", "minimize"), ("val_bpb", "minimize"), ("perplexity", "minimize"), ("val_acc", "maximize"),
    ("reward", "maximize"), ("step", None), ("tokens", None), ("lr", None), ("loss_scale_acc", None),
])
def test_a_proxy_only_where_its_name_says_which_way_is_better(name, direction):
    assert proxy_direction(name) == direction


@pytest.mark.parametrize("rule, curve, expected", [
    (RULE, [(0.3, 9.0), (0.55, 4.2)], 0.2),     # the last point, 20 % above the band's mean there (3.5)
    (RULE, [(0.55, 3.0)], 0.0),                 # ahead of the band: never below 0
    (RULE, [], None),                           # no point
    (StopRule("acc", "maximize", ((0.0, 0.5, 0.0), (1.0, 0.9, 0.0))), [(0.5, 0.63)], 0.1),  # below the mean is behind
    (StopRule("x", "minimize", ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0))), [(0.5, 1.0)], None),    # a mean of 0: no share of it
    (StopRule("x", "minimize", ((0.5, 1.0, 0.0), (1.0, 1.0, 0.0))), [(0.2, 2.0)], None),    # outside the reference
    (StopRule("x", "minimize", ((0.0, -2.0, 0.0), (1.0, -2.0, 0.0))), [(0.5, -1.0)], 0.5),  # a negative mean: its size
])
def test_how_far_a_stopped_run_was_behind(rule, curve, expected):
    assert behind(rule, curve) == (pytest.approx(expected) if expected is not None else None)


def test_decide_maximize_and_reason():
    rule = StopRule("acc", "maximize", ((0.0, 0.5, 0.0), (1.0, 0.9, 0.0)), margin=0.1, z=0.0)
    stop = decide(rule, [(0.5, 0.3), (0.6, 0.3)])
    assert stop is not None
    assert stop.reason() == "stopped early at 60 % of the budget: acc 0.3 vs the incumbent's 0.74 ± 0"
    assert decide(rule, [(0.5, 0.7), (0.6, 0.74)]) is None
    assert suffix(0.3) == "(stopped early at 30 %)"
    assert StopRule.from_json(rule.to_json()) == rule


@pytest.mark.parametrize("end, final, scale, sd, ok", [
    (3.0, 4.3, 1.44, None, True),        # the baseline's scale: train loss -> bpb
    (1.0, 4.3, 1.44, None, False),       # a lying curve: far better than what was measured
    (3.0, 4.3, 1.44, 0.2, True),
    (2.8, 4.3, 1.44, 0.01, False),       # 6 % off, noise tiny
    (2.8, 4.3, 1.44, 0.1, True),         # within 3 sd
])
def test_end_agrees(end, final, scale, sd, ok):
    assert end_agrees(end, final, scale, sd, 0.05) is ok


def test_end_scale():
    assert end_scale([(2.0, 3.0), (4.0, 6.0), (0.0, 1.0)]) == 1.5
    assert end_scale([]) is None


def curve(start: float, end: float) -> list[tuple[float, float]]:
    return [(i / 10, start + (end - start) * i / 10) for i in range(11)]


S = EarlyStopSettings()


@pytest.mark.parametrize("incumbent, policy, expected", [
    ([TrustedRun({"loss": curve(4, 2)}, 2.0)], "greedy", ("loss", 0.05, 0.0, 1)),   # one curve: the margin alone
    ([TrustedRun({"loss": curve(4, 2)}, 2.0), TrustedRun({"loss": curve(4.1, 2.1)}, 2.1)], "confirm",
     ("loss", 0.05, 4.0, 2)),
    ([TrustedRun({"loss": curve(4, 2)}, 2.0), TrustedRun({"loss": curve(4.1, 2.1)}, 2.1)], "greedy",
     ("loss", 0.05, 0.0, 2)),
    ([TrustedRun({"loss": curve(4, 0.5)}, 2.0)], "greedy", None),            # a lying curve: not used
    ([TrustedRun({"other": curve(4, 2)}, 2.0)], "greedy", None),             # nothing the baseline shares
    ([TrustedRun({}, 2.0)], "greedy", None),
    ([TrustedRun({"loss": curve(4, 0.5)}, 2.0), TrustedRun({"loss": curve(4, 2)}, 2.0)], "confirm",
     ("loss", 0.05, 0.0, 1)),                                                 # the liar dropped, the other kept
])
def test_make_rule(incumbent, policy, expected):
    baseline = [TrustedRun({"loss": curve(4, 2)}, 2.0)]
    rule = make_rule(incumbent, baseline, metric="val_bpb", goal="minimize", policy=policy, settings=S,
                     noise_sd=None, incumbent_id=3)
    got = (rule.key, rule.margin, rule.z, rule.curves) if rule is not None else None
    assert got == expected


def _short(start, end):  # a 3 s run under an 8 s budget (its import alone 2 s): points at 27-30 % only
    return {"loss": [(start, 1.0), (end, 0.9)]}


@pytest.mark.parametrize("incumbent, said", [
    ([TrustedRun({"loss": curve(4, 0.5)}, 2.0)], "do not agree with its trusted metric"),   # a lying curve
    ([TrustedRun({"other": curve(4, 2)}, 2.0)], "no progress curve the rule can use"),
    ([TrustedRun({}, 2.0)], "no progress curve the rule can use"),
    ([TrustedRun(_short(0.27, 0.28), 0.9), TrustedRun(_short(0.29, 0.30), 0.9)],  # a newcomer's trial (2026-12-04)
     "report loss between 27 % and 30 % of the time budget only, and no point of the budget is reached by all of "
     "them, so there is nothing to compare a candidate with part-way"),
    ([TrustedRun(_short(0.771, 0.772), 0.9), TrustedRun(_short(0.773, 0.774), 0.9)],  # one point, said once (a trial:
     "report loss at 77 % of the time budget only"),                                # "between 77 % and 77 %")
    ([TrustedRun(_short(0.96, 0.97), 0.9), TrustedRun(_short(0.98, 0.99), 0.9)],  # full-length, reported at the end
     "report loss at too few points of the budget"),
    # the metric printed once, at a short run's end (a fifth trial: "with no point of it all of them reach")
    ([TrustedRun({"loss": [(0.34, 0.9)]}, 0.9), TrustedRun({"loss": [(0.53, 0.9)]}, 0.9)],
     "print loss once, at their end (at 34 % to 53 % of time_budget_s), so a candidate has nothing to be compared "
     "with part-way"),
    ([TrustedRun({"loss": [(0.34, 0.9)]}, 0.9)], "print loss once, at their end (at 34 % of time_budget_s)"),
])
def test_why_there_is_no_rule(incumbent, said):
    from autoresearch.engine.early_stop import why_no_rule

    baseline = [TrustedRun({"loss": curve(4, 2)}, 2.0)]
    assert make_rule(incumbent, baseline, metric="val_bpb", goal="minimize", policy="confirm", settings=S,
                     noise_sd=None, incumbent_id=3) is None
    assert said in why_no_rule(incumbent, baseline, metric="val_bpb", goal="minimize")


def test_make_rule_prefers_the_metric_itself():
    inc = [TrustedRun({"loss": curve(4, 2), "val_bpb": curve(3, 1.5)}, 1.5)]
    rule = make_rule(inc, inc, metric="val_bpb", goal="minimize", policy="greedy", settings=S, noise_sd=None,
                     incumbent_id=0)
    assert rule is not None and rule.key == "val_bpb"


def test_the_settings_reach_the_rule_and_a_recorded_config_keeps_its_own():
    inc = [TrustedRun({"loss": curve(4, 2)}, 2.0)]
    now = EarlyStopSettings.from_config({"judge": {"early_stop_min_fraction": 0.12, "early_stop_early_margin": 0.25,
                                                   "early_stop_late_margin": 0.02}})
    rule = make_rule(inc, inc, metric="val_bpb", goal="minimize", policy="greedy", settings=now, noise_sd=None,
                     incumbent_id=0)
    assert rule is not None
    assert (rule.min_fraction, rule.early_margin, rule.margin, rule.late_margin) == (0.12, 0.25, 0.05, 0.02)
    # a campaign recorded before the early and late margins existed resumes with its own start and the new defaults
    old = EarlyStopSettings.from_config({"judge": {"early_stop_min_fraction": 0.3}})
    assert (old.min_fraction, old.early_margin, old.late_margin) == (0.3, S.early_margin, S.late_margin)
    assert EarlyStopSettings.from_config({}) == EarlyStopSettings()
    judge = JudgeTable()  # a new campaign records the config's defaults: the same as the engine's
    assert (judge.early_stop_min_fraction, judge.early_stop_early_margin, judge.early_stop_late_margin) == \
        (S.min_fraction, S.early_margin, S.late_margin)
    assert StopRule("loss", "minimize", ()).min_fraction == S.min_fraction  # a rule built directly: the same start


def test_curve_file_round_trip(tmp_path):
    path = curve_file_for(tmp_path / "0003-a1-run.log")
    assert path.name == "0003-a1-run.progress.json"
    write_curve_file(path, {"loss": [(0.1, 3.0), (0.2, 2.5)]})
    assert read_curve_file(path) == {"loss": [(0.1, 3.0), (0.2, 2.5)]}
    path.write_text('{"loss": [[0.1, "x"], [0.2, 2.0]], "bad": 3}')
    assert read_curve_file(path) == {"loss": [(0.2, 2.0)]}
    assert read_curve_file(tmp_path / "missing.json") == {}


@pytest.mark.parametrize("raw, expected", [
    ({"loss": [[0.1, 3.0], [0.2, 2.5]]}, {"loss": [(0.1, 3.0), (0.2, 2.5)]}),
    ({"loss": [[0.1, float("nan")], [0.2, True], [0.3], ["x", 1], [0.4, 2.0]]}, {"loss": [(0.4, 2.0)]}),
    ({"loss": 5, "acc": [[0.5, 0.9]]}, {"acc": [(0.5, 0.9)]}),           # not a list: that name is dropped
    ({"loss": []}, {}),
    ([[0.1, 3.0]], {}),                                                  # not a mapping
    (None, {}),
    ({f"k{i}": [[0.1, 1.0]] for i in range(20)}, {f"k{i}": [(0.1, 1.0)] for i in range(8)}),  # at most MAX_KEYS names
])
def test_curves_from_json_keep_only_finite_pairs(raw, expected):
    """Curves come from the run (a file beside its log, a ledger row): untrusted."""
    from autoresearch.progress import curves_from_json, intermediate_values

    assert curves_from_json(raw) == expected
    first = next(iter(expected.values()), [])
    assert intermediate_values(raw, None) == {round(100 * f): v for f, v in first}
