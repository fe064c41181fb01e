"""Shared test helpers. Tests are hermetic: before anything else runs (this file is loaded
before any test module, and before it imports autoresearch), the session gets its own empty
HOME and XDG directories, inherited to every subprocess, and loses inherited RAY_ADDRESS /
RAY_AUTH_* settings. So nothing a user's home holds (a ``~/.ray/auth_token`` left by any
local Ray, which turns on Ray's token authentication; a ``~/.gitconfig``) changes a test,
and no test writes into the real home."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REAL_HOME = os.environ.get("HOME")  # the home this session was started with (never touched)
SESSION_HOME = Path(tempfile.mkdtemp(prefix="ar-test-home-"))
_XDG = {"XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache", "XDG_DATA_HOME": ".local/share",
        "XDG_STATE_HOME": ".local/state", "XDG_RUNTIME_DIR": ".run"}


def _isolate_home() -> None:
    os.environ["HOME"] = str(SESSION_HOME)
    for name, sub in _XDG.items():
        (SESSION_HOME / sub).mkdir(parents=True, mode=0o700)
        os.environ[name] = str(SESSION_HOME / sub)
    for name in list(os.environ):
        # another cluster's address or credentials; a git config file outside the home
        if name == "RAY_ADDRESS" or name.startswith("RAY_AUTH_") or name in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG"):
            del os.environ[name]
    # `run` gives a new campaign a random seed unless one is named (seeds.py): the tests'
    # campaigns are seeded, so their results are exact; test_seeds.py unsets it
    os.environ["AUTORESEARCH_SEED"] = "0"


_isolate_home()

import pytest  # noqa: E402  (the isolation comes first)

from autoresearch.testing import make_synthetic_arena  # noqa: E402  (it reads the environment when imported)

# The tests' own git calls name an identity and skip hooks and signing: nothing depends on
# a global git config (the session's HOME has none).
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "autoresearch-tests", "GIT_AUTHOR_EMAIL": "tests@localhost",
                "GIT_COMMITTER_NAME": "autoresearch-tests", "GIT_COMMITTER_EMAIL": "tests@localhost"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With two test processes (``make test``: pytest-xdist ``--dist loadgroup``) the tests
    that start a Ray cluster all run in one of them: one cluster at a time on the machine."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def run_cli(*args: str | os.PathLike, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, report: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess. ``run`` writes no end-of-campaign report unless
    ``report`` (~1 s of CPU each, matplotlib's import mostly; tests/test_report.py checks it)."""
    words = [str(a) for a in args]
    if words and words[0] == "run" and not report and not {"--no-report", "--dry-run"} & set(words):
        words.append("--no-report")
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", *words],
        cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=timeout,
    )


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args], cwd=repo,
                         capture_output=True, text=True, env=_env(GIT_IDENTITY), check=False)
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
