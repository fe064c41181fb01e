from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.testing import make_synthetic_arena


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def run_cli(*args: str | os.PathLike, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", *map(str, args)],
        cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=timeout,
    )


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def ledger_rows(arena: Path, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{arena / '.autoresearch' / 'ledger.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


@pytest.fixture
def arena(tmp_path: Path) -> Path:
    return make_synthetic_arena(tmp_path / "arena")
