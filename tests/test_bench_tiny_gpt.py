"""``bench/tiny_gpt.py --compare ARM@REV``: an arm runs the code of a git revision of this
repository, exported into a temporary folder (the checkout itself is only read)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from tiny_gpt import _checkout  # noqa: E402


def test_an_arm_without_a_revision_runs_the_working_trees_code(tmp_path):
    script, env = _checkout("", tmp_path)
    assert script == ROOT / "bench" / "tiny_gpt.py" and env == {}
    assert list(tmp_path.iterdir()) == []


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True).stdout


def test_an_arm_at_a_revision_runs_that_revisions_code(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    old = "91e7b2f"  # the default before crashed runs counted as the worst (knob_gp.pruned_as_worst then)
    script, env = _checkout(old, tmp_path)
    sha = _git("rev-parse", f"{old}^{{commit}}").decode().strip()
    src = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    assert env["PYTHONPATH"].split(os.pathsep)[1:] == ["/elsewhere"]  # in front of the user's, not instead
    assert script == tmp_path / f"rev-{sha}" / "bench" / "tiny_gpt.py" and script.is_file()
    exported = (src / "autoresearch" / "proposers" / "knob_gp.py").read_bytes()
    assert exported == _git("show", f"{old}:src/autoresearch/proposers/knob_gp.py")
    assert b"def pruned_as_worst" in exported  # the commit's code, not the working tree's
    assert b"def pruned_as_worst" not in (ROOT / "src" / "autoresearch" / "proposers" / "knob_gp.py").read_bytes()
    assert _checkout(sha, tmp_path) == (script, env)  # one export per commit, whatever names it
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"rev-{sha}"]


def test_an_unknown_revision_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no revision 'no-such-rev'"):
        _checkout("no-such-rev", tmp_path)
    assert list(tmp_path.iterdir()) == []


from autoresearch.records import Experiment, Status  # noqa: E402
from tiny_gpt import _behind, proposal_figures  # noqa: E402


def _exp(i, metric=None, **metrics):
    return Experiment(i, Status.KEEP if i == 0 else Status.DISCARD, f"#{i}", "knobs", None, f"c{i}",
                      metric=metric, metrics=metrics)


@pytest.mark.parametrize("exps, expected", [
    ([_exp(0, 2.0)], {"worst_ratio": 1.0, "over_1_5": 0, "stopped": 0, "stopped_behind": None}),
    ([_exp(0, 2.0), _exp(1, 2.2), _exp(2, 3.2), _exp(3, 1.8)],
     {"worst_ratio": 1.6, "over_1_5": 1, "stopped": 0, "stopped_behind": None}),
    # stopped runs have no final value: counted, and their largest gap when stopped is kept
    ([_exp(0, 2.0), _exp(1, stopped_early_at=0.2, stopped_behind=0.37), _exp(2, stopped_early_at=0.5, stopped_behind=0.04),
      _exp(3, 2.1)], {"worst_ratio": 1.05, "over_1_5": 0, "stopped": 2, "stopped_behind": 0.37}),
    # a run stopped before the gap was recorded: counted, no gap
    ([_exp(0, 2.0), _exp(1, stopped_early_at=0.2)], {"worst_ratio": 1.0, "over_1_5": 0, "stopped": 1, "stopped_behind": None}),
])
def test_proposal_figures(exps, expected):
    got = proposal_figures(exps)
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v) if v is not None else got[k] is None


def test_the_stopped_gap_in_a_printout():
    assert _behind(None) == ""
    assert _behind(0.37) == " (at most 37 % behind the incumbent's curve when stopped)"
