"""Pure integrity checks: constants a proposal may not touch, and metric sanity.

- ``protected`` (config ``[arena] protected``): module-level names whose assignments the
  harness owns (a seed, a time budget, an evaluation constant). A proposal that changes,
  adds or removes an assignment of one of them in an editable Python file is refused.
- ``[metric] min`` / ``max``: a measured value outside the declared range is a crash
  with the reason (a loss below 0, an accuracy above 1: a broken or gamed evaluation).
- ``[judge] suspicious_sigma``: an improvement larger than that many noise standard
  deviations is confirmed with extra runs before it can be kept, and flagged.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import os
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping


def assigned_values(source: str, names: Iterable[str]) -> dict[str, list[str]]:
    """The source text of every module-level assignment to each of ``names`` (in order).
    A file that does not parse yields {} (the syntax check refuses it anyway)."""
    wanted = set(names)
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, list[str]] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets, value = [node.target], node.value
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and n.id in wanted:
                    found.setdefault(n.id, []).append(ast.unparse(value) if value is not None else "")
    return found


def protected_changes(old: Mapping[str, str | None], new: Mapping[str, str], protected: Iterable[str]) -> list[str]:
    """Protected names whose module-level assignments differ between ``old`` and ``new``
    (edited files only). Pure."""
    names = list(protected)
    if not names:
        return []
    changed: set[str] = set()
    for path, text in new.items():
        if not path.endswith(".py"):
            continue
        before = assigned_values(old.get(path) or "", names)
        after = assigned_values(text, names)
        changed |= {n for n in names if before.get(n) != after.get(n)}
    return sorted(changed)


def out_of_range(value: float, low: float | None, high: float | None) -> str | None:
    """Why a metric value is outside its declared range, or None. Pure."""
    if low is not None and value < low:
        return f"{value:.6g} is below the declared minimum {low:g}"
    if high is not None and value > high:
        return f"{value:.6g} is above the declared maximum {high:g}"
    return None


def suspicious(improvement: float, sigma: float | None, k: float) -> bool:
    """An improvement of more than ``k`` noise standard deviations (needs a known sigma). Pure."""
    return k > 0 and sigma is not None and sigma > 0 and improvement > k * sigma


def matches(path: str, patterns: Iterable[str]) -> bool:
    """``path`` (relative, posix) matches one of ``patterns``: an fnmatch pattern, or a
    directory that contains it. Pure."""
    for p in patterns:
        p = p.rstrip("/")
        if fnmatch.fnmatchcase(path, p) or path.startswith(p + "/"):
            return True
    return False


def eval_only_files(root: Path, patterns: Iterable[str]) -> list[str]:
    """The files under ``root`` (relative, posix) that ``[arena] eval_only`` names; our own
    ``.autoresearch`` and ``.git`` are never searched."""
    patterns = list(patterns)
    if not patterns:
        return []
    out = []
    from .safefs import walk

    for dirpath, dirnames, filenames in walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".autoresearch")]
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if matches(rel, patterns):
                out.append(rel)
    return sorted(out)


IMPORTABLE = (".py", ".pyc", ".pyo", ".pth", ".so", ".pyd", ".dylib", ".egg", ".whl", ".zip")
_MODULES: frozenset[str] | None = None


def importable_names() -> frozenset[str]:
    """Top-level names an evaluator's ``import`` could find elsewhere: the standard
    library's and every installed distribution's (computed once)."""
    global _MODULES
    if _MODULES is None:
        import importlib.metadata
        import sys

        names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
        try:
            names |= set(importlib.metadata.packages_distributions())
        except Exception:  # a broken distribution's metadata: the standard library still counts
            pass
        _MODULES = frozenset(names)
    return _MODULES


def shadows(rel: str, arena_prefix: str = "") -> bool:
    """Whether a run's output at ``rel`` (relative to the run directory's top) could be
    imported instead of the real thing: importable code anywhere (``json.py``, ``*.so``,
    ``*.pth``, bytecode caches), or anything whose first name inside the arena is the name
    of a module the evaluator could import (a ``json/`` directory, ``torch/``). Pure."""
    p = PurePosixPath(rel)
    if p.suffix in IMPORTABLE or "__pycache__" in p.parts:
        return True
    inside = rel[len(arena_prefix):] if arena_prefix and rel.startswith(arena_prefix) else rel
    first = PurePosixPath(inside).parts[0] if inside else ""
    return first.split(".", 1)[0] in importable_names()


def move_outputs(src: Path, dest: Path, untracked: Iterable[str], arena_prefix: str = "") -> tuple[list[str], list[str]]:
    """Bring a run's outputs (``untracked``: paths relative to ``src``) into the eval's
    fresh directory ``dest`` with a rename (no copy, however large). Only regular files
    move; symlinks, devices, sockets and anything that could shadow the evaluator's imports
    (``shadows``) are deleted instead. A path the eval's directory already has is left
    alone. Returns (moved, deleted)."""
    import stat as _stat

    moved, removed = [], []
    for rel in untracked:
        source = src / rel
        try:
            st = os.lstat(source)
        except OSError:
            continue
        if not _stat.S_ISREG(st.st_mode) or shadows(rel, arena_prefix):
            with contextlib.suppress(OSError):
                source.unlink()
                removed.append(rel)
            continue
        target = dest / rel
        if target.exists() or target.is_symlink() or not _plain_parents(dest, rel):
            continue
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
            moved.append(rel)
    return sorted(moved), sorted(removed)


def _plain_parents(top: Path, rel: str) -> bool:
    """Every directory on the way to ``top / rel`` is a real directory or absent (never a link)."""
    here = top
    for part in PurePosixPath(rel).parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            return False
    return True
