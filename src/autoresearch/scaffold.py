"""``autoresearch init``: turn a directory into an arena."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from .arenas import EXAMPLES, example_dir
from .config import CONFIG_FILE
from .errors import ArenaError, UsageError
from .store.gitobjects import git

_PROGRAM = """# Research program

Goal: improve the metric named in autoresearch.toml ([metric] name and goal).

- Only the files listed as editable may change; readonly files are fixed (data, evaluation).
- Each run gets a fixed time budget (AUTORESEARCH_TIME_BUDGET seconds): the best change is
  the one that gets the most out of that budget.
- Propose one idea at a time, small enough to judge, and describe it in one line.
"""


def _config_template(editable: list[str], readonly: list[str], run: str) -> str:
    return f"""# autoresearch arena config. Every key can be overridden on the command line.
[arena]
editable = {editable!r}          # the only files a proposal may change
readonly = {readonly!r}          # hashed; any change makes an experiment invalid
program = "program.md"           # research instructions for LLM proposers
run = "{run}"                    # started in the experiment's run directory
# eval = "python evaluate.py"    # optional: when set, only its result counts
time_budget_s = 300              # exported as AUTORESEARCH_TIME_BUDGET
# timeout_s = 660                # hard kill; default 2 x budget + 60

[metric]
name = "val_bpb"                 # read from the result JSON or a 'name: value' line
goal = "minimize"

[proposer]
# kind = "scripted"              # knobs | llm | hybrid | agent | scripted

[judge]
policy = "confirm"               # repeated runs and a test against the measured noise; or "greedy"

[runner]
kind = "local"
slots = 1
""".replace("'", '"')


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
        if (directory / CONFIG_FILE).exists():
            raise ArenaError(f"{directory / CONFIG_FILE} already exists; edit it instead")
        editable = ["train.py"] if (directory / "train.py").exists() else ["train.py"]
        readonly = ["prepare.py"] if (directory / "prepare.py").exists() else []
        (directory / CONFIG_FILE).write_text(_config_template(editable, readonly, "python train.py"))
        written.append(CONFIG_FILE)
        if not (directory / "program.md").exists():
            (directory / "program.md").write_text(_PROGRAM)
            written.append("program.md")
        if not (directory / "train.py").exists():
            yield "note: there is no train.py yet; write it (or change [arena] editable and run in autoresearch.toml)"

    yield f"wrote {', '.join(written)} in {directory}"
    if not in_repo:
        git(["init", "-q"], directory)
        yield "initialised a git repository"
    has_commits = git(["rev-parse", "--verify", "-q", "HEAD"], directory, check=False).returncode == 0
    if not has_commits:
        git(["add", "-A", "--", "."], directory)
        git(["commit", "-q", "--no-verify", "-m", "autoresearch: initial arena"], directory)
        yield "committed the arena (first commit)"
        yield f"next: autoresearch run {directory}" + (" --max-experiments 7" if example == "synthetic" else "")
    else:
        rel = " ".join(written)
        yield f"next: review, then `git add {rel} && git commit -m 'autoresearch arena'`, then `autoresearch run {directory}`"
