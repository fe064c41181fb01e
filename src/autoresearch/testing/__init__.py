"""Helpers shipped with the package for tests, benchmarks and demos, each real: a synthetic
arena in a fresh git repository, scripted proposals, the true metric (``arena.py``); an HTTP
server speaking the OpenAI and Anthropic protocols and a real small local model
(``servers.py``); a Ray cluster on loopback (``cluster.py``)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..arenas import example_dir
from ..store.gitobjects import git

SYNTHETIC_DEFAULTS = {"LEARNING_RATE": 0.01, "WIDTH": 64, "DROPOUT": 0.3, "WARMUP_STEPS": 500}


@functools.lru_cache(maxsize=1)
def _synthetic_prepare() -> Any:
    # The arena's own prepare.py is the one definition of the objective; load it by path
    # (it is a standalone file that gets copied into users' arenas, not a package module).
    spec = importlib.util.spec_from_file_location("_synthetic_prepare", example_dir("synthetic") / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_true_loss(learning_rate: float, width: float, dropout: float, warmup_steps: float) -> float:
    """The synthetic arena's noise-free objective (its prepare.py's ``true_loss``)."""
    return _synthetic_prepare().true_loss(learning_rate, width, dropout, warmup_steps)


def set_constant(text: str, name: str, value: Any) -> str:
    """Replace ``NAME = ...`` at module level, keeping any trailing comment."""
    pattern = re.compile(rf"^({re.escape(name)}\s*=\s*)([^#\n]*?)(\s*(#.*)?)$", re.M)
    new, n = pattern.subn(lambda m: f"{m.group(1)}{value!r}{m.group(3)}", text, count=1)
    if n != 1:
        raise KeyError(f"no module-level constant {name} found")
    return new


def commit_all(repo: Path, message: str) -> str:
    git(["add", "-A", "--", "."], repo)
    git(["commit", "-q", "--no-verify", "--allow-empty", "-m", message], repo)
    return git(["rev-parse", "HEAD"], repo).stdout.decode().strip()


def make_synthetic_arena(
    path: Path,
    *,
    noise_seed_sd: float = 0.0,
    noise_run_sd: float = 0.0,
    run_seconds: float = 0.0,
    python: str = sys.executable,
    config_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """A git repository holding the synthetic arena, committed, ready for ``run``.

    The run command uses ``python`` (default: this interpreter) by absolute path, so the
    arena works whatever is on PATH.
    """
    path.mkdir(parents=True, exist_ok=True)
    src = example_dir("synthetic")
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, path / f.name)
    prepare = (path / "prepare.py").read_text()
    prepare = set_constant(prepare, "NOISE_SEED_SD", float(noise_seed_sd))
    prepare = set_constant(prepare, "NOISE_RUN_SD", float(noise_run_sd))
    prepare = set_constant(prepare, "RUN_SECONDS", float(run_seconds))
    (path / "prepare.py").write_text(prepare)
    config = (path / "autoresearch.toml").read_text()
    config = config.replace('run = "python train.py"', f"run = {json.dumps(shlex.quote(python) + ' train.py')}")
    for table, values in (config_overrides or {}).items():
        for key, value in values.items():
            config = _set_toml_key(config, table, key, value)
    (path / "autoresearch.toml").write_text(config)
    for name, text in (extra_files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    if git(["rev-parse", "--git-dir"], path, check=False).returncode != 0:
        git(["init", "-q"], path)
    commit_all(path, "synthetic arena")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _set_toml_key(text: str, table: str, key: str, value: Any) -> str:
    """Set ``key`` in ``[table]`` of a simple TOML text (adds the table or key if missing)."""
    lines = text.splitlines()
    header = f"[{table}]"
    line = f"{key} = {_toml_value(value)}"
    if header not in lines:
        return text.rstrip("\n") + f"\n\n{header}\n{line}\n"
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start, end):
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]):
            lines[i] = line
            return "\n".join(lines) + "\n"
    lines.insert(start, line)
    return "\n".join(lines) + "\n"


def write_proposals(path: Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """Write a scripted proposals file (JSON) from ``{description, edits}`` entries."""
    path.write_text(json.dumps(list(entries), indent=2))
    return path


def constant_edit(name: str, old: Any, new: Any, path: str = "train.py") -> dict[str, str]:
    """A SEARCH/REPLACE edit of a synthetic-arena constant line (``NAME = old``)."""
    return {"path": path, "search": f"{name} = {old!r}", "replace": f"{name} = {new!r}"}


# -- a scripted LLM server ----------------------------------------------------------------------


from .cluster import RayCluster  # noqa: E402
from .servers import FakeLLMServer, LocalModelServer, search_replace_reply, smollm2_path  # noqa: E402

__all__ = ["SYNTHETIC_DEFAULTS", "synthetic_true_loss", "set_constant", "commit_all", "make_synthetic_arena",
           "write_proposals", "constant_edit", "FakeLLMServer", "LocalModelServer", "search_replace_reply",
           "smollm2_path", "RayCluster"]


# The reference campaign on the synthetic arena: one experiment of each kind.
REFERENCE_PROPOSALS = [
    {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},   # 1 keep
    {"description": "narrow", "edits": [constant_edit("WIDTH", 64, 16)]},                  # 2 discard
    {"description": "bad dropout", "edits": [constant_edit("DROPOUT", 0.3, -0.5)]},        # 3 crash
    {"description": "not editable", "edits": [{"path": "prepare.py", "search": "a", "replace": "b"}]},  # 4 invalid
    {"description": "wider", "edits": [constant_edit("WIDTH", 64, 256)]},                  # 5 keep
]


def deep_chain(top: str | Path, depth: int = 3000) -> None:
    """A chain of ``depth`` directories named ``d`` under ``top``, deeper than Python's
    recursion limit and longer than PATH_MAX (built through directory descriptors)."""
    os.makedirs(top, exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)
