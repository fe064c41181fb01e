"""Did-you-mean hints for misspelt config keys and paths, and what a command-line override
of the target metric means for the file's pattern. Pure (``repattern_metric`` changes the table
it is given), but ``arena_above``, which looks for the arena a command run from a subfolder meant."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any


def close_key(root: Any, loc: tuple) -> str:
    """``: did you mean 'policy'?`` for a misspelt key at ``loc`` (a pydantic error's
    location), from the fields of the table it sits in (``root`` is the config model)."""
    model: Any = root
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return ""
        if part not in fields:
            continue  # a dict's key (a knob name under [proposer.knobs.space])
        ann = fields[part].annotation
        model = ann if hasattr(ann, "model_fields") else next(
            (a for a in typing.get_args(ann) if hasattr(a, "model_fields")), None)
        if model is None:
            return ""
    close = difflib.get_close_matches(str(loc[-1]), list(getattr(model, "model_fields", {})), 1, 0.6)
    return f": did you mean '{close[0]}'?" if close else ""


def repattern_metric(raw: dict[str, Any], written_for: str | None, source: str) -> str | None:
    """Where the command line names another target metric than the file, the file's
    ``[metric] pattern`` (written for the file's) reads that one as a secondary metric
    (``[metric.patterns]``), and a pattern the file has for the new target becomes its
    pattern; the note says so. None where nothing moved. Mutates ``raw``'s metric table."""
    metric = raw.get("metric")
    if not isinstance(metric, dict) or not isinstance(written_for, str) or not isinstance(metric.get("name"), str) \
            or metric["name"] == written_for or not isinstance(metric.get("patterns", {}), dict):
        return None  # nothing moved (a name or table of the wrong type: validation says so)
    target, pattern = metric["name"], metric.pop("pattern", None)
    patterns = metric.get("patterns", {})
    own = patterns.pop(target, None)
    if pattern is None and own is None:
        return None
    if pattern is not None:
        patterns.setdefault(written_for, pattern)
    metric["patterns"] = patterns
    if own is not None:
        metric["pattern"] = own
        return f"{target} is read with its pattern from [metric.patterns] in {source}"
    return (f"the [metric] pattern in {source} was written for {written_for}, so it reads {written_for} (a secondary "
            f"metric), not {target}; {target} is read as `{target}: <number>` lines or a JSON result. Give its own "
            f"with --set metric.pattern='...' (one capture group)")


def close_paths(missing: typing.Sequence[str], present: typing.Iterable[str]) -> str:
    """``missing`` joined by commas, each followed by `` (did you mean src/train.py?)``
    where ``present`` has a near one: the same file name in another folder (the
    shallowest), else a close spelling. Pure."""
    files = sorted(set(present) - set(missing), key=lambda f: (f.count("/"), f))  # the shallowest first
    out = []
    for p in missing:
        name = p.rsplit("/", 1)[-1]
        same = [f for f in files if f.rsplit("/", 1)[-1] == name]
        near = same[:1] or difflib.get_close_matches(p, files, 1, 0.75)
        out.append(f"{p} (did you mean {near[0]}?)" if near else p)
    return ", ".join(out)


def toml_hint(message: str) -> str:
    """What to do about a TOML error: a backslash in a double-quoted string (a regex's ``\\d``)
    starts an escape in TOML; a single-quoted string takes it as it is. "" for other errors. Pure."""
    if "escape" in message.lower():  # tomllib: "Unescaped '\\' in a string", "Invalid escape"
        return (" (a backslash in a \"double-quoted\" TOML string starts an escape: write a regex in single quotes, "
                "pattern = 'loss: (\\d+)')")
    return ""


def arena_above(arena: Path, ledger: bool = False) -> Path | None:
    """The nearest folder above ``arena``, within its git repository, that is an arena (it
    has the config file or a ledger; with ``ledger``, a ledger): a command run from ``src/``
    meant it (a fifth trial was told to run ``init`` in ``src/``: a second config)."""
    from .config import CONFIG_FILE
    from .store.gitobjects import git

    proc = git(["rev-parse", "--show-toplevel"], arena, check=False) if arena.is_dir() else None
    if proc is None or proc.returncode != 0:
        return None
    top = Path(proc.stdout.decode().strip()).resolve()
    for folder in arena.resolve().parents:
        if folder != top and top not in folder.parents:
            return None  # outside the repository (a review)
        if (folder / ".autoresearch" / "ledger.sqlite").is_file() or (not ledger and (folder / CONFIG_FILE).is_file()):
            return folder
    return None


def above_hint(arena: Path, command: str = "run") -> str:
    """`` (did you mean X? ...)`` where an arena is above ``arena`` (``arena_above``), else ""."""
    above = arena_above(arena, ledger=command != "run")  # status, report, ablate: a campaign's ledger
    return (f" (did you mean {above}? it holds an arena's {'ledger' if command != 'run' else 'config or ledger'}: "
            f"`autoresearch {command} {above}`)" if above else "")

