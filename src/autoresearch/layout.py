"""What a karpathy/autoresearch checkout says without a config file (zero-config): its
arena and metric tables, inferred from its file names and texts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Mapping

from .survey import karpathy_budget

LAYOUT_FILES = ("train.py", "prepare.py", "program.md", "pyproject.toml")


def layout_files(arena: Path) -> dict[str, str]:
    """The files ``infer_config`` looks at, those the arena has."""
    files = {}
    for name in LAYOUT_FILES:
        p = arena / name
        if p.is_file():
            files[name] = p.read_text(encoding="utf-8", errors="replace")
    return files


def infer_config(files: Mapping[str, str], uv_on_path: bool = False) -> dict[str, Any] | None:
    """Defaults for a karpathy/autoresearch checkout, from its file names and texts.

    ``train.py`` and a ``prepare.py`` that sets ``TIME_BUDGET`` at module level; ``files`` maps
    the names looked at (``program.md``, ``train.py``, ``prepare.py``, ``pyproject.toml``) to
    their text. None for anything else (nanoGPT's lone train.py): ``init`` writes its config.
    """
    karpathy, budget = karpathy_budget(files)
    if not karpathy:
        return None
    run = "uv run train.py" if uv_on_path and "pyproject.toml" in files else "python train.py"
    arena: dict[str, Any] = {"editable": ["train.py"], "readonly": ["prepare.py"], "run": run}
    if budget is not None:
        arena["time_budget_s"] = budget
    if "program.md" in files:
        arena["program"] = "program.md"
    return {"arena": arena, "metric": {"name": "val_bpb", "goal": "minimize"}}


NEEDED = {"arena": ("editable", "run"), "metric": ("name",)}  # the keys a config cannot do without


def with_layout(arena: Path, raw: dict[str, Any], source: str) -> tuple[dict[str, Any], str]:
    """A config file's tables and its source in words, with what its ``[arena]`` and
    ``[metric]`` leave out of the keys a config needs taken from the layout, where the arena
    is karpathy's layout: a file that only freezes a knob (as the crash advice says) or only
    sets the time budget must not switch the inference off. A file whose tables have those
    keys is read as it is."""
    short = [t for t, keys in NEEDED.items()
             if t not in raw or (isinstance(raw[t], Mapping) and any(k not in raw[t] for k in keys))]
    inferred = infer_config(layout_files(arena), uv_on_path=shutil.which("uv") is not None) if short else None
    if inferred is None:
        return raw, source
    out = dict(raw)
    for t in short:
        out[t] = {**inferred[t], **raw.get(t, {})}
    return out, f"{source} (and the karpathy/autoresearch layout for what its [{'] and ['.join(short)}] leave out)"
