"""A repository laid out like karpathy/autoresearch works with no configuration."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

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


# -- anything else gets `autoresearch init`, which writes a config that fits ---------------------

NANO_TRAIN = '''"""A stand-in for nanoGPT's train.py: lowercase globals, a config file on the command line."""
import os
import sys

out_dir = 'out'
dataset = 'openwebtext'
eval_interval = 2
max_iters = 600000
learning_rate = 6e-4
for arg in sys.argv[1:]:  # nanoGPT's configurator.py, inlined
    exec(open(arg).read())

val_data = open(os.path.join('data', dataset, 'val.bin'), 'rb').read()  # built by data/DATASET/prepare.py, gitignored
for iter_num in range(max_iters + 1):
    loss = 2.0 - learning_rate * 100 * iter_num
    if iter_num % eval_interval == 0:
        print(f"step {iter_num}: train loss {loss:.4f}, val loss {loss + 0.1:.4f}")
    print(f"iter {iter_num}: loss {loss:.4f}, time {12.5:.2f}ms, mfu {30.0:.2f}%")
'''

NANO_CONFIG = '''# a tiny run: a few iterations
out_dir = 'out-tiny'
dataset = 'tiny'
max_iters = 4
learning_rate = 1e-3
'''


def nanogpt_repo(path: Path) -> Path:
    (path / "config").mkdir(parents=True)
    (path / "data" / "tiny").mkdir(parents=True)
    (path / "train.py").write_text(NANO_TRAIN)
    (path / "config" / "train_tiny.py").write_text(NANO_CONFIG)
    (path / "data" / "tiny" / "prepare.py").write_text("import os\nprint('wrote train.bin and val.bin')\n")
    (path / "README.md").write_text("# tiny\n\n```\npython train.py config/train_tiny.py\n```\n")
    (path / ".gitignore").write_text("*.bin\n")
    git(path, "init", "-q")
    commit_all(path, "nanoGPT layout")
    (path / "data" / "tiny" / "val.bin").write_bytes(b"\0" * 64)  # the prepared data: untracked
    return path


@pytest.mark.parametrize("prepare", [None, "MAX_SEQ_LEN = 2048\n"])
def test_zero_config_refuses_a_repository_that_is_not_karpathys(tmp_path, prepare):
    repo = nanogpt_repo(tmp_path / "repo")
    if prepare is not None:  # a prepare.py that does not set TIME_BUDGET is not karpathy's either
        (repo / "prepare.py").write_text(prepare)
        commit_all(repo, "prepare")
    r = run_cli("run", repo, "--dry-run", env=path_with_python())
    assert r.returncode == 1, r.stdout
    assert f"autoresearch init {repo}" in r.stderr
    assert ("no prepare.py" if prepare is None else "does not set TIME_BUDGET") in r.stderr
    assert "val_bpb" not in r.stdout


def test_init_writes_a_config_that_fits_a_nanogpt_layout(tmp_path):
    repo = nanogpt_repo(tmp_path / "repo")
    r = run_cli("init", repo)
    assert r.returncode == 0, r.stderr
    assert "metric: val_loss (minimize)" in r.stdout and "does not read AUTORESEARCH_TIME_BUDGET" in r.stdout
    text = (repo / "autoresearch.toml").read_text()
    for line in ('editable = ["train.py", "config/train_tiny.py"]', 'readonly = ["data/tiny/prepare.py"]',
                 'data = ["data/tiny"]', 'run = "python train.py config/train_tiny.py"', 'name = "val_loss"',
                 'goal = "minimize"'):
        assert line in text, line
    comments = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    for words in ("max_iters = 4 (config/train_tiny.py)", "the README runs `python train.py config/train_tiny.py`",
                  "train.py:17 prints `step …: train loss …, val loss …`"):
        assert words in comments, words
    assert "\npattern = 'val loss " in text
    assert 'experiment"s' not in text
    git(repo, "add", "autoresearch.toml", "program.md")
    git(repo, "commit", "-q", "-m", "autoresearch arena")
    dry = run_cli("run", repo, "--dry-run", env=path_with_python())
    assert dry.returncode == 0, dry.stderr
    assert "source: autoresearch.toml" in dry.stdout and 'name = "val_loss"' in dry.stdout
    run = run_cli("run", repo, "--judge", "greedy", "--max-experiments", "1", "--time-budget", "5", env=path_with_python())
    assert run.returncode == 0, run.stdout + run.stderr
    rows = ledger_rows(repo, "SELECT id, status, metric FROM experiments ORDER BY id")
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep")]
    assert rows[0]["metric"] == pytest.approx(2.0 - 0.1 * 4 + 0.1)  # the last "val loss" printed
