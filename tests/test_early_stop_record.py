"""The shipped early-stopping rule, replayed on curves recorded from real campaigns.

``bench/records/live_off_2026-12-02.json``: two real greedy campaigns on the tiny-GPT
arena (10 s and 30 s runs, 62 candidates each, early stopping off, so every candidate's
curve is complete), each candidate on top of the incumbent's kept changes
(``bench/early_stop_record.py``, BENCHMARKS.md); ``live_off10_2026-12-03.json``: a third
(10 s), recorded after the rule was chosen. Pure replay: no process runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from autoresearch.engine.early_stop import EarlyStopSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import early_stop_record  # noqa: E402

RECORD = json.loads((ROOT / "bench" / "records" / "live_off_2026-12-02.json").read_text())
# a third campaign (10 s runs), recorded after the rule was chosen: out of sample
LATER = json.loads((ROOT / "bench" / "records" / "live_off10_2026-12-03.json").read_text())
CAMPAIGNS = RECORD["campaigns"] + LATER["campaigns"]


@pytest.mark.parametrize("campaign", CAMPAIGNS, ids=lambda c: c["arena"])
def test_the_default_rule_loses_at_most_5_percent_and_stops_sooner_than_the_rule_before(campaign):
    now = early_stop_record.replay_campaign(campaign, EarlyStopSettings())
    before = early_stop_record.replay_campaign(campaign, EarlyStopSettings(min_fraction=0.3))
    assert now["pairs_inc"] >= 60      # (incumbent, better candidate) cases: the issue asks for at least 60
    assert now["lost"] <= 0.05 * now["pairs"]                   # every ordered pair
    assert now["lost_inc"] <= 0.05 * now["pairs_inc"]           # pairs whose incumbent could be one
    assert now["beat_lost"] == 0 and now["beat"] > 0            # no candidate that beat its own incumbent
    assert len(now["stops"]) >= len(before["stops"])
    assert sum(now["stops"]) / len(now["stops"]) < sum(before["stops"]) / len(before["stops"])
    assert now["on_s"] < before["on_s"] < now["off_s"]


@pytest.mark.parametrize("campaign", CAMPAIGNS, ids=lambda c: c["arena"])
def test_the_late_margin_stops_more_mild_losers_and_no_winner(campaign):
    """From 50 % of the budget the default margin is 3 %, not 5 %: more candidates are
    stopped, none of those that beat their own incumbent, and the loss over all pairs stays
    at most 5 %."""
    now = early_stop_record.replay_campaign(campaign, EarlyStopSettings())
    without = early_stop_record.replay_campaign(campaign, EarlyStopSettings(late_margin=1.0))
    assert len(now["stops"]) > len(without["stops"]) and now["on_s"] < without["on_s"]
    assert now["beat_lost"] == 0 and now["lost"] <= 0.05 * now["pairs"]
    assert now["lost"] - without["lost"] <= 0.01 * now["pairs"]   # what the late margin adds to the loss


def test_a_rule_that_judges_slow_starts_by_the_middle_margin_loses_more():
    """The control: judging from 10 % with the 5 % margin throughout (no early margin) stops
    slow starters that end better; the replay must see it, or it could not see a loss."""
    ten = RECORD["campaigns"][0]
    reckless = early_stop_record.replay_campaign(ten, EarlyStopSettings(min_fraction=0.1, early_margin=0.05))
    now = early_stop_record.replay_campaign(ten, EarlyStopSettings())
    assert reckless["lost"] > 0.05 * reckless["pairs"] > now["lost"]


# -- the live benchmark's accounting (bench/early_stop.py: pure functions of `status --json`) --------

import early_stop  # noqa: E402


def _status(rows: list[tuple[str, float | None, float, float, float | None]]) -> dict:
    """``status --json`` of a campaign: (status, val_bpb, first run's start, its duration,
    stopped_early_at) per experiment, the baseline first."""
    exps = []
    for i, (status, bpb, start, dur, stop) in enumerate(rows):
        run = {"started_at": 1000.0 + start, "duration_s": dur}
        if stop is not None:
            run["stopped_early_at"] = stop
        exps.append({"id": i, "status": status, "description": f"#{i}", "metrics": {"val_bpb": bpb}, "runs": [run]})
    return {"experiments": exps}


OFF = _status([("keep", 3.5, 0, 20, None), ("discard", 3.9, 25, 20, None), ("keep", 3.4, 50, 20, None),
               ("discard", 3.6, 75, 20, None)])
ON = _status([("keep", 3.5, 0, 20, None), ("discard", None, 25, 6, 0.25), ("keep", 3.4, 32, 20, None),
              ("discard", None, 57, 8, 0.35)])


@pytest.mark.parametrize("arm, wall, done", [
    (OFF, 100.0, [25.0, 50.0, 75.0, 100.0]),   # done when the next run starts (its eval counted), the last at the end
    (ON, 66.0, [25.0, 32.0, 57.0, 66.0]),
])
def test_each_experiment_is_done_when_the_next_run_starts(arm, wall, done):
    assert early_stop.done_times(arm["experiments"], wall) == done


def test_best_at_equal_wall_time_counts_only_what_was_done_by_then():
    off = early_stop.arm_summary(OFF, False, 0, 100.0)
    on = early_stop.arm_summary(ON, True, 0, 66.0)
    assert [early_stop.best_by(off, t) for t in (10, 74, 75, 100)] == [3.5, 3.5, 3.4, 3.4]
    assert [early_stop.best_by(on, t) for t in (56, 57)] == [3.5, 3.4]  # #2 was done at 57 s on, at 75 s off
    assert on["stopped_at"] == [0.25, 0.35] and off["stopped"] == 0
    assert early_stop.equal_compute(off, on).endswith("66 s: off 3.5000, on 3.4000")


def test_time_mode_prices_each_run_at_the_budget_or_its_stopped_share():
    on = early_stop.arm_summary(ON, True, 0, 66.0)
    # overheads (time to done less the run): 5, 1, 5, 1; each run: 2 s start-up + 10 s x fraction
    assert early_stop.time_mode(on, 10.0, 2.0) == pytest.approx((5 + 12) + (1 + 4.5) + (5 + 12) + (1 + 5.5))
    off = early_stop.arm_summary(OFF, False, 0, 100.0)
    assert early_stop.time_mode(off, 10.0, 2.0) == pytest.approx(4 * (5 + 12))
