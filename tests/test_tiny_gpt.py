"""The bundled tiny-GPT arena: a real (short) training run, the separate evaluator, and
the fixed-step mode."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.arenas import example_dir
from conftest import ledger_rows, run_cli

pytestmark = [pytest.mark.slow]  # end-to-end: make test-fast leaves it out

ENV_PATH = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}


def test_campaign_baseline_prints_a_valid_summary(tmp_path):
    arena = tmp_path / "tg"
    assert run_cli("init", arena, "--example", "tiny-gpt").returncode == 0
    r = run_cli("run", arena, "--max-experiments", "1", "--time-budget", "3", env=ENV_PATH, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    row = ledger_rows(arena, "SELECT status, metric, metrics_json FROM experiments WHERE id = 0")[0]
    metrics = json.loads(row["metrics_json"])
    assert row["status"] == "keep"
    assert 1.0 < row["metric"] < 8.1  # bits per byte: below uniform (8 bits) after a few seconds
    assert metrics["val_bpb"] == row["metric"]
    assert metrics["num_steps"] > 0 and metrics["num_params_M"] > 0.05 and metrics["peak_memory_mb"] > 10
    assert 2.5 < metrics["training_seconds"] < 6 and metrics["eval_tokens"] == 65536
    log = next(arena.glob(".autoresearch/*/logs/0000-a1-run.log")).read_text()
    assert "---\ntraining_seconds:" in log and "num_steps:" in log
    eval_log = next(arena.glob(".autoresearch/*/logs/0000-a1-eval.log")).read_text()
    assert "val_bpb:" in eval_log


def test_fixed_step_mode_is_deterministic(tmp_path):
    arena = tmp_path / "tg"
    shutil.copytree(example_dir("tiny-gpt"), arena)
    env = {**os.environ, "AUTORESEARCH_MAX_STEPS": "12", "AUTORESEARCH_SEED": "5", "OMP_NUM_THREADS": "1"}
    results = []
    for i in range(2):
        env["AUTORESEARCH_RESULT_FILE"] = str(tmp_path / f"r{i}.json")
        for cmd in (["train.py"], ["prepare.py", "--eval"]):
            p = subprocess.run([sys.executable, *cmd], cwd=arena, env=env, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, p.stderr
        results.append(json.loads((tmp_path / f"r{i}.json").read_text()))
    assert results[0]["num_steps"] == results[1]["num_steps"] == 12
    assert results[0]["val_bpb"] == results[1]["val_bpb"]
    assert math.isfinite(results[0]["val_bpb"])


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path):
    """The README's main command, with a small budget."""
    repo = Path(__file__).resolve().parents[1]
    demo = tmp_path / "demo"
    p = subprocess.run(["make", "demo", f"DEMO_DIR={demo}", "DEMO_EXPERIMENTS=3", "DEMO_BUDGET=3"], cwd=repo,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "best val_bpb:" in p.stdout and "reached --max-experiments 3" in p.stdout
    assert (demo / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((demo / "results.tsv").read_text().splitlines()) == 4


def test_a_model_that_peeks_at_future_tokens_is_invalid(tmp_path):
    # the evaluator's causality probe: the red-team case "attend to future tokens"
    arena = tmp_path / "tg"
    assert run_cli("init", arena, "--example", "tiny-gpt").returncode == 0
    props = tmp_path / "p.json"
    props.write_text(json.dumps([{"description": "bidirectional attention (a cheat)", "edits": [
        {"path": "train.py", "search": "is_causal=True", "replace": "is_causal=False"}]}]))
    # early stopping off: this checks the evaluator's verdict, and 2 s runs on a loaded machine
    # can be stopped as clearly worse before any eval
    r = run_cli("run", arena, "--proposals", props, "--time-budget", "2", "--judge", "greedy",
                "--set", "judge.early_stop=off", env=ENV_PATH, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    row = ledger_rows(arena, "SELECT status, reason FROM experiments WHERE id = 1")[0]
    assert row["status"] == "invalid", dict(row)
    assert row["reason"].startswith("the evaluator refused the model: the model looks at future tokens")


def test_patching_torch_from_the_model_code_does_not_change_the_score(tmp_path):
    # red team: "monkey-patch the evaluator in-process" (the evaluator imports train.py)
    arena = tmp_path / "tg"
    assert run_cli("init", arena, "--example", "tiny-gpt").returncode == 0
    cheat = ("import sys, torch\nif '--eval' in sys.argv:  # only inside the evaluator\n"
             "    torch.log_softmax = lambda x, dim=-1: torch.zeros_like(x)  # a loss of 0 for everything\n"
             "    torch.Tensor.item = lambda self: 0.0\n")
    props = tmp_path / "p.json"
    props.write_text(json.dumps([{"description": "patch the loss to zero", "edits": [
        {"path": "train.py", "search": "MAX_STEPS = 0", "replace": cheat + "MAX_STEPS = 0"}]}]))
    r = run_cli("run", arena, "--proposals", props, "--judge", "greedy", "--set", "arena.time_budget_s=2",
                "--set", "judge.early_stop=off", env=ENV_PATH, timeout=300)  # the evaluator's score is the point
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, metric, reason FROM experiments")}
    # the evaluator scored the model with its own functions: a real cross-entropy in bits
    # per byte (between ~1 and the 8 of a uniform guess), not the patched zero
    assert rows[1]["status"] in ("keep", "discard"), dict(rows[1])
    assert 1.0 < rows[1]["metric"] < 8.5
