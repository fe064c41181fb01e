"""``bench/tiny_gpt.py --compare ARM@REV``: an arm runs the code of a git revision of this
repository, exported into a temporary folder (the checkout itself is only read)."""

from __future__ import annotations

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


def test_an_arm_at_a_revision_runs_that_revisions_code(tmp_path):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    script, env = _checkout(head.stdout.strip(), tmp_path)
    src = Path(env["PYTHONPATH"])
    assert script.is_file() and script.parent.parent == src.parent
    assert (src / "autoresearch" / "__init__.py").is_file()
    shown = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:src/autoresearch/proposers/knob_strategy.py"],
                           capture_output=True, check=True).stdout
    assert (src / "autoresearch" / "proposers" / "knob_strategy.py").read_bytes() == shown  # the commit's, not the tree's
    assert _checkout(head.stdout.strip(), tmp_path) == (script, env)  # exported once per revision


def test_an_unknown_revision_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no revision 'no-such-rev'"):
        _checkout("no-such-rev", tmp_path)
