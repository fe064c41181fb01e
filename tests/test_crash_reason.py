"""What a crashed run's reason quotes: the line that says why (``execution.error_line``),
in pure cases and in a real campaign whose script prints a footer after its traceback,
as Hydra does (a newcomer's trial, 2026-12-04, was told "Set the environment variable
HYDRA_FULL_ERROR=1 for a complete stack trace." for a ValueError two lines above it)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from autoresearch.engine.execution import error_line
from autoresearch.testing import commit_all, constant_edit, write_proposals
from conftest import ledger_rows, run_cli

FOOTER = "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."


@pytest.mark.parametrize("tail, want", [
    (f"Traceback (most recent call last):\n  File \"x.py\", line 3\nValueError: Sum of input lengths\n\n{FOOTER}\n",
     "ValueError: Sum of input lengths"),
    ("Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory\n",
     "torch.OutOfMemoryError: CUDA out of memory"),
    ("Traceback (most recent call last):\nKeyError: 1\nTraceback (most recent call last):\nRuntimeError: second\n"
     "bye\n", "RuntimeError: second"),                                  # the last traceback's
    # an exception printed and handled long before is not why it failed (a review)
    ("RuntimeError: DataLoader worker (pid 123) is killed, retrying\nstep 900 loss 2.1\nloss is nan, aborting\n",
     "loss is nan, aborting"),
    ("step 10 loss 2.3\nKilled\n", "Killed"),                              # no exception line: the last line
    ("train.py:3: UserWarning: deprecated\nbye\n", "bye"),                 # a warning is no reason
    ("  ErrorCount: 3 was printed indented\nend\n", "end"),                # (an indented line is no exception)
    ("", ""),
])
def test_the_line_that_says_why(tail, want):
    assert error_line(tail) == want


def test_a_crash_with_a_footer_after_its_traceback_quotes_the_exception(tmp_path):
    arena = tmp_path / "arena"
    arena.mkdir()
    subprocess.run(["git", "init", "-q", str(arena)], check=True)
    (arena / "train.py").write_text(
        "import sys\nimport traceback\nQUALITY = 1.0\n"
        "try:\n    if QUALITY < 0:\n        raise ValueError('Sum of input lengths does not equal the length of the input dataset!')\n"
        "except ValueError:\n    traceback.print_exc()\n"
        f"    print({FOOTER!r}, file=sys.stderr)\n    sys.exit(1)\n"
        "print(f'val_loss: {QUALITY}')\n")
    (arena / "autoresearch.toml").write_text(
        f"[arena]\neditable = [\"train.py\"]\nrun = {json.dumps(shlex.quote(sys.executable) + ' train.py')}\n"
        "time_budget_s = 10\n\n[metric]\nname = \"val_loss\"\n\n[judge]\npolicy = \"greedy\"\n")
    commit_all(arena, "arena")
    props = write_proposals(tmp_path / "p.json", [{"description": "negative", "edits": [constant_edit("QUALITY", 1.0, -1.0)]}])
    r = run_cli("run", arena, "--proposals", props)
    assert r.returncode == 0, r.stdout + r.stderr
    reason = ledger_rows(arena, "SELECT status, reason FROM experiments WHERE id = 1")[0]
    assert reason["status"] == "crash"
    assert reason["reason"].startswith("the run exited with code 1: ValueError: Sum of input lengths does not "
                                       "equal the length of the input dataset!")
