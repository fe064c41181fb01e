"""``autoresearch knobs``: every knob the knobs proposer finds, where it is, its value,
its search space in the user's units, or why it is frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Config
from .errors import ArenaError, ConfigError
from .proposers.knob_space import Space


def knob_proposer(config: Config) -> Any:
    from .proposers.knob_usage import metric_words
    from .proposers.knobs import KnobsProposer

    t = config.proposer.knobs
    return KnobsProposer(
        sampler=t.sampler, seed=t.seed, changes_per_trial=t.changes_per_trial, startup_trials=t.startup_trials,
        freeze=tuple(t.freeze), only=tuple(t.only),
        spaces={name: spec.model_dump(exclude_none=True) for name, spec in t.space.items()},
        constraints=tuple(t.constraints), run_command=config.arena.run,
        metric_words=metric_words(config.metric.name, [p for p in (getattr(config.metric, "pattern", None),
                                                                 *getattr(config.metric, "patterns", {}).values()) if p]),
    )


def knobs_config(arena: Path, tag: str | None, overrides: dict[str, Any]) -> Any:
    """The settings ``knobs`` lists with: a campaign's own recorded ones for ``--tag T``, as
    ``run --tag T`` uses them (the file's could freeze other knobs); else the file's."""
    from .campaign_config import run_config
    from .config import load_config

    return run_config(arena, tag, overrides) if tag is not None else load_config(arena, overrides)


def space_text(space: Space) -> str:
    """A space in the user's units. Pure."""
    if space.kind == "choice":
        return "choices " + ", ".join(repr(c) for c in space.choices)
    low, high = space.user_range()
    scale = {"pow2": "powers of 2", "beta": "1 - x log-uniform", "int": "integers"}.get(space.kind, "")
    scale = ", ".join(x for x in (scale, "log-uniform" if space.log and space.kind in ("float", "int") else "") if x)
    return f"[{_num(low)}, {_num(high)}]" + (f" ({scale})" if scale else "")


def _num(x: float) -> str:
    if abs(x) < 1e-9:
        return "0"
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def space_json(space: Space) -> dict[str, Any]:
    if space.kind == "choice":
        return {"kind": "choice", "choices": list(space.choices)}
    low, high = space.user_range()
    return {"kind": space.kind, "low": low, "high": high, "log": space.log or space.kind in ("pow2", "beta")}


def survey(arena: Path, config: Config, tag: str | None = None) -> tuple[str, list[Any], dict[str, Space]]:
    """(where the files were read, every knob with why it is frozen, the searched ones'
    spaces) at the checkout's HEAD or a campaign's tip."""
    from .config_hints import close_paths
    from .store.workspace import Workspace, arena_paths
    from .train_script import usage_paths

    ws = Workspace(arena)
    try:
        if tag is not None:
            commit = ws.resolve(f"refs/heads/autoresearch/{tag}")
            if commit is None:
                raise ArenaError(f"no campaign {tag!r} in {arena} (no branch autoresearch/{tag}); "
                                 "`autoresearch status` lists the campaigns")
            where = f"autoresearch/{tag} at {commit[:7]}"
        else:
            commit = ws.head()
            where = f"HEAD at {commit[:7]}"
        files = {p: t for p, t in ws.read_files(commit, tuple(config.arena.editable)).items() if t is not None}
        a = config.arena  # how knobs are used: the readonly files and the scripts the commands start
        used = usage_paths(a.editable, a.readonly, (a.run, a.eval))
        readonly = {p: t for p, t in ws.read_files(commit, used).items() if t is not None}
        named = close_paths(list(config.arena.editable), arena_paths(ws, commit)) if not files else ""
    finally:
        ws.close()
    if not files:  # (with a did-you-mean, as `run` gives: `train.py` where the script is src/train.py)
        raise ConfigError(f"none of the editable files ({named}) is committed in {where}")
    proposer = knob_proposer(config)
    knobs, spaces = proposer.survey(files, readonly)
    proposer._constraints(knobs, files, readonly)  # (a constraint that does not hold now is an error here too)
    return where, knobs, spaces


def rows(knobs: list[Any], spaces: dict[str, Space]) -> list[dict[str, Any]]:
    """``knobs --json``: one object per knob. Pure."""
    return [{"name": k.name, "file": k.path, "line": k.lineno, "value": k.value, "kind": k.kind,
             "space": space_json(spaces[k.name]) if k.name in spaces else None,
             "frozen": False if k.name in spaces else (k.frozen or "no space")} for k in knobs]


def differs_on_disk(arena: Path, knobs: list[Any]) -> list[str]:
    """The knobs' files whose knob lines on disk are not the committed ones the table was
    read from (uncommitted edits: the table is not what the user sees in the editor). A
    knob added on disk, or an edit away from every knob, is not seen."""
    out = []
    for path in dict.fromkeys(k.path for k in knobs):
        try:
            text = (arena / path).read_text(encoding="utf-8", errors="replace")  # (as the commit's is read)
        except OSError:
            text = None
        lines = {k.lineno: k.line for k in knobs if k.path == path}
        disk = text.split("\n") if text is not None else []
        if any(n > len(disk) or disk[n - 1].rstrip("\r") != line for n, line in lines.items()):
            out.append(path)
    return out


def print_table(console: Any, where: str, knobs: list[Any], spaces: dict[str, Space], constraints: list[str],
                changed: list[str] = ()) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .console import print_whole

    table = Table(title=f"knobs ({where}): {len(spaces)} searched, {len(knobs) - len(spaces)} frozen",
                  title_justify="left")
    for col in ("name", "where", "value", "space, or why frozen"):
        table.add_column(col, overflow="fold")
    for k in knobs:
        value = escape(repr(k.value) if isinstance(k.value, (str, bool)) else f"{k.value:.6g}" if isinstance(k.value, float)
                       else str(k.value))
        what = escape(space_text(spaces[k.name])) if k.name in spaces else f"[dim]frozen: {escape(k.frozen or 'no space')}[/]"
        table.add_row(escape(k.name), escape(f"{k.path}:{k.lineno}"), value, what)
    print_whole(console, table)
    for c in constraints:
        console.print(f"constraint: {escape(c)}", markup=False)
    if changed:
        console.print(f"note: {', '.join(changed)} differ(s) on disk from {where.split(' ')[0]}: this table is the "
                      "committed version's; commit to see yours (a campaign starts from commits too)", markup=False)


def dry_run_table(console: Any, arena: Path, config: Config, tag: str | None = None) -> str | None:
    """``run --dry-run``: the knobs table too, when the proposer tunes knobs (at the tip of
    the campaign ``tag`` that the run would continue, as ``knobs --tag`` shows it); or why
    the knobs cannot be surveyed (``run`` refuses to start on the same error)."""
    from .errors import AutoresearchError
    from .proposers import DEFAULT_KIND

    p = config.proposer
    kind = p.kind or DEFAULT_KIND
    if not (kind in ("knobs", "hybrid") or (kind == "llm" and (p.llm.mode == "knobs" or p.llm.on_error == "knobs"))):
        return None
    try:
        where, found, spaces = survey(arena, config, tag)
    except AutoresearchError as e:
        return f"knobs: {e}"
    print_table(console, where, found, spaces, list(p.knobs.constraints))
    if not spaces and (kind in ("knobs", "hybrid") or (kind == "llm" and p.llm.mode == "knobs")):  # `run` refuses too
        return ("the knobs proposer found nothing to tune (the table says why each literal is frozen): declare a "
                "range under [proposer.knobs.space.\"NAME\"], or choose another proposer with --proposer")
    return None
