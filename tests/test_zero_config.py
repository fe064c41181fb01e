"""A repository laid out like karpathy/autoresearch works with no configuration."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from autoresearch.testing import commit_all, write_proposals
from conftest import git, ledger_rows, run_cli

PREPARE = '''"""Fixed: data, tokenizer, evaluation (a stand-in for karpathy's prepare.py)."""
MAX_SEQ_LEN = 2048
TIME_BUDGET = 300        # training time budget in seconds (5 minutes)
EVAL_TOKENS = 40 * 524288


def evaluate_bpb(depth, lr):
    return 1.0 + abs(lr - 0.03) * 2 + abs(depth - 8) * 0.01
'''

TRAIN = '''import os, time
from prepare import TIME_BUDGET, evaluate_bpb

DEPTH = 8
MATRIX_LR = 0.04

t0 = time.time()
budget = float(os.environ.get("AUTORESEARCH_TIME_BUDGET", TIME_BUDGET))
val_bpb = evaluate_bpb(DEPTH, MATRIX_LR)
print("step 00010 (100.0%) | loss: 3.000000")
print("---")
print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {time.time() - t0:.1f}")
print("peak_vram_mb:     45060.2")
print(f"depth:            {DEPTH}")
'''


def karpathy_repo(path: Path) -> Path:
    path.mkdir()
    (path / "prepare.py").write_text(PREPARE)
    (path / "train.py").write_text(TRAIN)
    (path / "program.md").write_text("# autoresearch\nMake val_bpb lower. Only train.py changes.\n")
    (path / "pyproject.toml").write_text('[project]\nname = "autoresearch"\ndependencies = ["torch==2.9.1"]\n')
    (path / ".gitignore").write_text("__pycache__/\n")
    git(path, "init", "-q")
    commit_all(path, "karpathy layout")
    return path


def path_with_python(extra: Path | None = None) -> dict[str, str]:
    dirs = ([str(extra)] if extra else []) + [os.path.dirname(sys.executable), os.environ.get("PATH", "")]
    return {"PATH": os.pathsep.join(dirs)}


def test_dry_run_shows_the_inferred_config(tmp_path):
    repo = karpathy_repo(tmp_path / "repo")
    r = run_cli("run", repo, "--dry-run", env=path_with_python())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "source: inferred from the karpathy/autoresearch layout" in out
    for line in ('editable = ["train.py"]', 'readonly = ["prepare.py"]', 'program = "program.md"', 'run = "python train.py"',
                 "time_budget_s = 300.0", "timeout_s = 660.0", 'name = "val_bpb"', 'goal = "minimize"'):
        assert line in out, line
    assert not (repo / ".autoresearch").exists()


def test_uv_is_used_when_on_path(tmp_path):
    repo = karpathy_repo(tmp_path / "repo")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    uv = fake_bin / "uv"
    uv.write_text("#!/bin/sh\necho 'uv must not be called by tests' >&2\nexit 99\n")
    uv.chmod(uv.stat().st_mode | stat.S_IEXEC)
    r = run_cli("run", repo, "--dry-run", env=path_with_python(fake_bin))
    assert r.returncode == 0, r.stderr
    assert 'run = "uv run train.py"' in r.stdout


def test_campaign_on_a_karpathy_checkout(tmp_path):
    repo = karpathy_repo(tmp_path / "repo")
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lr 0.03", "edits": [{"path": "train.py", "search": "MATRIX_LR = 0.04", "replace": "MATRIX_LR = 0.03"}]},
        {"description": "deeper", "edits": [{"path": "train.py", "search": "DEPTH = 8", "replace": "DEPTH = 12"}]},
    ])
    r = run_cli("run", repo, "--proposals", props, "--proposer", "scripted", "--time-budget", "5", env=path_with_python())
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(repo, "SELECT id, status, metric, metrics_json FROM experiments ORDER BY id")
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep"), (1, "keep"), (2, "discard")]
    assert rows[1]["metric"] == 1.0
    tsv = (repo / "results.tsv").read_text().splitlines()
    assert tsv[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription"
    assert tsv[1].split("\t")[1:] == ["1.020000", "44.0", "keep", "baseline"]
    assert git(repo, "status", "--porcelain") == ""
    log = next(repo.glob(".autoresearch/*/logs/0000-a1-run.log")).read_text()
    assert "val_bpb:" in log
