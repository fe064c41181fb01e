"""``autoresearch init``: turn a directory into an arena.

On a repository that already trains something, the config is written from what the
repository holds (``survey.py``): the training script and the config file its run uses
are editable, data and evaluation scripts readonly, the metric is the number the code
prints (with a ``[metric] pattern`` when it is not a ``name: value`` line), and every line
says where it came from, so the user reviews guesses instead of writing from nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator, Sequence

from .arenas import EXAMPLES, example_dir
from .config import CONFIG_FILE, ArenaTable, MetricTable
from .errors import ArenaError, UsageError
from .store.gitobjects import git, listed_files
from .survey import BUDGET_ENV, Survey, survey
from .train_script import DATA_SCRIPTS

_PROGRAM = """# Research program

Goal: improve the metric named in autoresearch.toml ([metric] name and goal).

- Only the files listed as editable may change; readonly files are fixed (data, evaluation).
- Each run gets a fixed time budget (AUTORESEARCH_TIME_BUDGET seconds): the best change is
  the one that gets the most out of that budget.
- Propose one idea at a time, small enough to judge, and describe it in one line.
"""

_SURVEY_MAX_FILES = 2000
_SURVEY_MAX_BYTES = 1 << 20
_SURVEY_MAX_YAML, _YAML_MAX_BYTES = 500, 1 << 16  # (Hydra's configs are small)
_SURVEY_DEPTH = 4  # path parts: data/shakespeare_char/prepare.py is 3
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "venv", "env", "build", "dist", "wandb", "out"}


def _str(value: str) -> str:
    """A TOML string: literal ('...') when that needs no escape (regexes stay readable)."""
    return f"'{value}'" if "'" not in value and not re.search(r"[\x00-\x1f]", value) else json.dumps(value)


def _list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _comment(text: str, width: int = 96) -> list[str]:
    """``text`` as ``# `` lines (control characters of printed examples made spaces)."""
    words, lines, line = re.sub(r"[\x00-\x1f]", " ", text).split(), [], "#"
    for word in words:
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#"
        line += " " + word
    return lines + [line]


def _arena_lines(s: Survey, ready: Sequence[str]) -> list[str]:
    script = s.script or "train.py"
    out = ["[arena]"]
    out += _comment("the only files a proposal may change: the training script" + (
        ", and the files it imports or is given that hold its settings" if len(s.editable) > 1 else ""))
    out.append(f"editable = {_list(s.editable)}")
    out += _comment("hashed: a change to any of them makes an experiment invalid (data preparation, evaluation)")
    out.append(f"readonly = {_list(s.readonly)}")
    out += _data_lines(s, ready)
    if s.helpers:
        out += _comment(f"also used by {script}, neither editable nor readonly: {', '.join(s.helpers)} (add them "
                        "to editable to let proposals change them, or to readonly to guard them)")
    if s.unused_configs:
        out += _comment(f"config files the run does not use: {', '.join(s.unused_configs)} (put one in run and "
                        "editable to study it instead)")
    if s.other_scripts:
        out += _comment(f"other training scripts: {', '.join(s.other_scripts)}")
    out.append('program = "program.md"           # research instructions for LLM proposers')
    out += _comment("started with /bin/sh in each experiment's run directory (a clean checkout of the commit "
                    "under test)" + (f"; with this config file because {s.run_why}" if s.run_why else ""))
    if s.uv_run:
        out += _comment(f"the README runs `uv run {script}`: use that when the dependencies live in uv's environment")
    out.append(f"run = {json.dumps(s.run)}")
    out.append('# eval = "python evaluate.py"      # optional: when set, only its result counts')
    out += _comment(_budget_comment(s, script))
    budget = s.budget if s.budget is not None else 300
    out.append(f"time_budget_s = {budget:g}")
    out.append(f"# timeout_s = {2 * budget + 60:g}                # hard kill of a run; default 2 x budget + 60 s")
    return out


def _data_lines(s: Survey, ready: Sequence[str]) -> list[str]:
    """``[arena] data``: the data directories the run reads, when they hold untracked files
    (``ready``: the data was prepared); commented out until then."""
    if not s.data and not s.data_other:
        return []
    why = ("runs start in a clean checkout of the commit (tracked files only): the data a prepare script writes "
           "and git ignores is not there")
    if "data" not in ArenaTable.model_fields:
        return _comment(f"{why}; a run finds your checkout in AUTORESEARCH_ARENA_DIR")
    out = _comment(f"{why}; data = [...] links it into every run directory")
    if s.data and all(d in ready for d in s.data):
        out.append(f"data = {_list(s.data)}")
    elif s.data:
        scripts = [next((p for p in s.readonly if p.startswith(f"{d}/") and "/" not in p[len(d) + 1:]
                         and p[len(d) + 1:].startswith(DATA_SCRIPTS)), f"{d}/prepare.py") for d in s.data]
        out += _comment(f"prepare it first ({', '.join(f'python {p}' for p in scripts)}), then uncomment:")
        out.append(f"# data = {_list(s.data)}")
    else:
        out += _comment(f"data directories: {', '.join(s.data_other)}; once prepared, list the one(s) the run reads:")
        out.append(f"# data = {_list(s.data_other[:1])}")
    if s.data and s.data_other:
        out += _comment(f"other data directories: {', '.join(s.data_other)}")
    return out


def _budget_comment(s: Survey, script: str) -> str:
    if s.script is None:
        return f"seconds a run may train, exported as {BUDGET_ENV}"
    if s.budget is not None:
        return (f"prepare.py's TIME_BUDGET, which {script} imports: a different value here reaches {script} "
                f"only if it reads {BUDGET_ENV}")
    if s.reads_budget:
        return f"seconds a run may train, exported as {BUDGET_ENV} ({script} reads it)"
    length = "; ".join(f"{name} = {value} ({path})" for name, (value, path) in s.length.items())
    return (f"exported as {BUDGET_ENV}, which {script} does not read"
            + (f": a run's length is set by {length}" if length else "")
            + f". Make the script stop after {BUDGET_ENV} seconds, or set "
            + (f"{next(iter(s.length))}" if s.length else "its length")
            + " so that a run takes about this long (runs that take far longer are reported).")


def _metric_lines(s: Survey, pattern_ok: bool) -> list[str]:
    m, script = s.metric, s.script or "train.py"
    out = ["[metric]"]
    if m is None:
        out += _comment(f"no printed metric found in {script}: print `NAME: value` lines at the end of a run "
                        "(or write a JSON object to AUTORESEARCH_RESULT_FILE) and name it here")
        return out + ['name = "val_bpb"', 'goal = "minimize"']
    if m.pattern is None and m.example.startswith("{"):  # a JSON record per line (metrics.py reads its numbers)
        out += _comment(f"{m.where} prints it in a JSON record, `{m.example}`, whose numbers are read as they are")
        out.append(f"name = {json.dumps(m.name)}")
    elif m.pattern is None:
        out += _comment(f"{m.where} prints it as a line of its own, `{m.example}`, read as is")
        out.append(f"name = {json.dumps(m.name)}")
    else:
        prints = f"{m.where} logs it with self.log; Lightning prints" if m.logged else f"{m.where} prints"
        out += _comment(f"{prints} `{m.example}`; the pattern reads the number after '{m.label}' "
                        "(one group; the last match in a run's output counts)")
        out.append(f"name = {json.dumps(m.name)}")
        if pattern_ok:
            out.append(f"pattern = {_str(m.pattern)}")
        else:
            out += _comment(f"[metric] pattern is not supported by this version yet: until it is, make {script} "
                            f"print `{m.name}: <value>` as a line of its own")
            out.append(f"# pattern = {_str(m.pattern)}")
    better = "lower" if m.goal == "minimize" else "higher"
    out.append(f'goal = "{m.goal}"' + " " * max(1, 25 - len(m.goal)) + f"# {better} is better")
    if s.others:  # each with the pattern that reads it: a name alone finds nothing (a trial's crashed baseline)
        shown, how = s.others[:6], "set its name and goal"
        if pattern_ok and m.pattern:
            how += ", and its pattern where one is shown (else delete the pattern line)"
        elif pattern_ok and any(o.pattern for o in shown):
            how += ", and its pattern where one is shown"
        out += _comment(f"other numbers it prints; to optimise one instead, {how}:")
        out += [re.sub(r"[\x00-\x1f]", " ", f"#   {o.name} ({o.where})" + (
            f": pattern = {_str(o.pattern)}" if pattern_ok and o.pattern is not None else "")) for o in shown]
    return out


_TAIL = """
[proposer]
# kind = "knobs"                   # the default; or llm | hybrid | agent | scripted

[judge]
policy = "confirm"                 # repeated runs and a test against the measured noise; or "greedy"

[runner]
kind = "local"
slots = 1
"""


def config_text(s: Survey, *, pattern_ok: bool, data_ready: Sequence[str] = ()) -> str:
    """The commented ``autoresearch.toml`` for what ``survey`` found (``data_ready``: data
    directories that hold untracked files). Pure."""
    head = ["# autoresearch arena config. Every key can be overridden on the command line;",
            "# `autoresearch run --dry-run` shows the effective config."]
    if s.script is not None:
        head += ["# Written by `autoresearch init` from what it found in this repository: review every line."]
    return "\n".join([*head, *_arena_lines(s, data_ready), "", *_metric_lines(s, pattern_ok)]) + "\n" + _TAIL


CONFIG_EXT = (".yaml", ".yml", ".json", ".toml")  # config files: Hydra's YAML, a params.json a script loads


def _wanted(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return rel.endswith((".py", *CONFIG_EXT)) or name.lower().startswith("readme")


def _in_config_dir(rel: str) -> bool:
    """Whether a file lies under a folder named like a config folder (``configs/``, ``conf/``)."""
    return any(part.lower().startswith(("conf", "cfg")) for part in rel.split("/")[:-1])


def heavy_entries(directory: Path, rels: Sequence[str], mb: float = 10.0) -> list[tuple[str, float]]:
    """The top-level files and folders of ``rels`` that hold ``mb`` MB or more, largest
    first, in MB: data, checkpoints, a virtualenv, which a first commit should leave out."""
    sizes: dict[str, float] = {}
    for rel in rels:
        path = directory / rel
        if path.is_file() and not path.is_symlink():
            top = rel.split("/")[0] + ("/" if "/" in rel else "")
            sizes[top] = sizes.get(top, 0.0) + path.stat().st_size / 1e6
    return sorted(((p, n) for p, n in sizes.items() if n >= mb), key=lambda x: -x[1])


def repo_files(directory: Path, in_repo: bool) -> dict[str, str]:
    """The Python, YAML, JSON and TOML files and READMEs ``survey`` reads: tracked and untracked-but-not-ignored
    ones in a repository, else a bounded walk; big, deep and hidden ones left out."""
    if in_repo:
        rels = listed_files(directory)
        if git(["rev-parse", "--verify", "-q", "HEAD"], directory, check=False).returncode != 0:  # nothing committed:
            rels = [r for r in rels if not any(d.startswith(".") or d in _SKIP_DIRS for d in r.split("/")[:-1])]
    else:
        rels = []
        for root, dirs, names in os.walk(directory):
            depth = len(Path(root).relative_to(directory).parts)
            dirs[:] = [] if depth + 1 >= _SURVEY_DEPTH else \
                sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
            rels += [(Path(root) / n).relative_to(directory).as_posix() for n in sorted(names)]
    files: dict[str, str] = {}
    # YAML, and JSON or TOML, each have their own share: a folder of data files crowds out no
    # script, and 600 JSON data files no Hydra config (a review)
    counts = {"py": 0, "yaml": 0, "json": 0}
    for rel in sorted(rels, key=lambda r: (r.endswith(CONFIG_EXT) and not _in_config_dir(r), r)):
        path = directory / rel
        kind = "yaml" if rel.endswith((".yaml", ".yml")) else "json" if rel.endswith((".json", ".toml")) else "py"
        config = kind != "py"
        if counts[kind] >= (_SURVEY_MAX_YAML if config else _SURVEY_MAX_FILES) or not _wanted(rel) \
                or rel.count("/") >= _SURVEY_DEPTH:
            continue
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= (_YAML_MAX_BYTES if config else _SURVEY_MAX_BYTES):
            files[rel] = path.read_text(encoding="utf-8", errors="replace")
            counts[kind] += 1
    return files


def _found(s: Survey, pattern_ok: bool) -> Iterator[str]:
    if s.script is None and s.other_scripts:
        yield (f"note: there is no train.py at the top of the repository, but {', '.join(s.other_scripts)}: set "
               f"[arena] run (e.g. \"python {s.other_scripts[0]}\"), editable (it and the config files it reads"
               + (f": {', '.join(s.hydra)}" if s.hydra else ", YAML under configs/ too")
               + f") and [metric] name in {CONFIG_FILE}")
        return
    if s.script is None:
        yield "note: there is no train.py yet; write it (or change [arena] editable and run in autoresearch.toml)"
        return
    yield f"found: {s.script}{f', {s.script_why}' if s.script_why else ''} (run: {s.run}); editable {', '.join(s.editable)}" + (
        f"; readonly {', '.join(s.readonly)}" if s.readonly else "")
    if s.metric is None:
        yield f"note: no printed metric found in {s.script}; set [metric] name in {CONFIG_FILE}"
    else:
        how = "a pattern" if s.metric.pattern is not None else "a printed JSON record" \
            if s.metric.example.startswith("{") else "a `name: value` line"
        yield f"metric: {s.metric.name} ({s.metric.goal}), read from {how} ({s.metric.where}" + (
            ", logged with self.log: Lightning prints it" if s.metric.logged else "") + (
            f"; {s.metric_why}" if s.metric_why else "") + ")"
        if s.metric.pattern is not None and not pattern_ok:
            yield (f"note: this version cannot read a metric with a pattern yet: make {s.script} print "
                   f"`{s.metric.name}: <value>` as a line of its own, or the baseline will find no {s.metric.name}")
    if s.own_seed:
        yield (f"note: {s.script} seeds itself ({s.own_seed}) and does not read AUTORESEARCH_SEED, so every run of a "
               "commit gives the same value and the judge sees no noise (any difference would pass its test): seed "
               "from it, e.g. `int(os.environ.get('AUTORESEARCH_SEED', <the seed now>))`")
    if s.budget is None and not s.reads_budget:
        yield (f"note: {s.script} does not read {BUDGET_ENV}; its own settings decide how long a run takes "
               f"(see the comment on time_budget_s)")


def _prepared(directory: Path, d: str) -> bool:
    """Whether data directory ``d`` holds untracked data: files that are not code (in a
    repository with no commits yet every file is untracked, its prepare script too: a review)."""
    out = git(["ls-files", "-z", "--others", "--", d], directory,  # ignored files too: prepared data usually is
              check=False).stdout.decode(errors="replace")
    return any(p and not p.endswith((".py", ".pyc", ".md", ".sh")) and not p.rsplit("/", 1)[-1].startswith(".")
               and not p.rsplit("/", 1)[-1].lower().startswith("readme") for p in out.split("\0"))


def _write_config(directory: Path, in_repo: bool, data: list[str]) -> Iterator[str]:
    """Write the config from the survey; ``data`` gets the data directories it found."""
    if (directory / CONFIG_FILE).exists():
        raise ArenaError(f"{directory / CONFIG_FILE} already exists; edit it instead")
    found, pattern_ok = survey(repo_files(directory, in_repo)), "pattern" in MetricTable.model_fields
    data += [*found.data, *found.data_other]
    ready = [d for d in found.data if in_repo and _prepared(directory, d)]
    (directory / CONFIG_FILE).write_text(config_text(found, pattern_ok=pattern_ok, data_ready=ready))
    yield from _found(found, pattern_ok)


def init_arena(directory: Path, example: str | None) -> Iterator[str]:
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    from .engine.opening import refuse_bare

    refuse_bare(directory)
    proc = git(["rev-parse", "--show-toplevel"], directory, check=False)
    in_repo = proc.returncode == 0
    if in_repo and Path(proc.stdout.decode().strip()).resolve() != directory:
        if example is not None:
            in_repo = False  # a bundled example is a project of its own: give it its own repository
        else:
            yield f"note: {directory} is inside the repository {proc.stdout.decode().strip()}; the arena is this subdirectory"

    written: list[str] = []
    data: list[str] = []
    # the user's files in a repository without commits (or none yet): the user commits them
    fresh = example is None and (not in_repo or git(["rev-parse", "--verify", "-q", "HEAD"], directory,
                                                     check=False).returncode != 0)
    if fresh and not in_repo:  # first, so that the survey honours a .gitignore and sees which data is there
        git(["init", "-q"], directory)
        yield "initialised a git repository"
        in_repo = True
    if example is not None:
        if example not in EXAMPLES:
            raise UsageError(f"unknown example {example!r}; bundled examples: {', '.join(EXAMPLES)}")
        src = example_dir(example)
        names = sorted(p.name for p in src.iterdir() if p.is_file() and not p.name.endswith(".pyc"))
        clash = [n for n in names if (directory / n).exists()]
        if clash:
            raise ArenaError(f"{directory} already has {', '.join(clash)}; init the example into an empty directory")
        for name in names:
            shutil.copyfile(src / name, directory / name)
            written.append(name)
    else:
        yield from _write_config(directory, in_repo, data)
        written.append(CONFIG_FILE)
        if not (directory / "program.md").exists():
            (directory / "program.md").write_text(_PROGRAM)
            written.append("program.md")

    yield f"wrote {', '.join(written)} in {directory}"
    if not in_repo:
        git(["init", "-q"], directory)
        yield "initialised a git repository"
    if fresh:  # not committed unasked: a folder may hold data, checkpoints, a virtualenv (a trial)
        yield from _commit_it_yourself(directory, data)
        return
    has_commits = git(["rev-parse", "--verify", "-q", "HEAD"], directory, check=False).returncode == 0
    if not has_commits:
        git(["add", "-A", "--", "."], directory)
        git(["commit", "-q", "--no-verify", "-m", "autoresearch: initial arena"], directory)
        yield "committed the arena (first commit)"
        yield f"next: autoresearch run {directory}" + (" --max-experiments 7" if example == "synthetic" else "")
    else:
        rel = " ".join(written)
        yield f"next: review, then `git add {rel} && git commit -m 'autoresearch arena'`, then `autoresearch run {directory}`"


def _commit_it_yourself(directory: Path, data: Sequence[str]) -> Iterator[str]:
    """What to commit in a repository ``init`` made around the user's files, and what not:
    what is big, and what a data directory's script writes there (the run refuses data that
    git tracks: a review), however small."""
    heavy = [f"{p} ({mb:.0f} MB)" for p, mb in heavy_entries(directory, listed_files(directory))]
    written = [f"what {d}'s script writes there" for d in data]
    if heavy or written:
        yield ("note: not code, best kept out of the commit (list them in .gitignore; [arena] data links a "
               "data directory into each run): " + ", ".join([*heavy, *written]))
    yield (f"next: review {CONFIG_FILE}, then commit the project (runs start from a clean checkout of the "
           f"commit): `git add . && git commit -m 'autoresearch arena'`, then `autoresearch run {directory}`")
