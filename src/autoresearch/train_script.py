"""Which scripts of a repository are which, for ``init`` (``survey.py``): the training script
where none is named ``train*.py`` (``other_trainer``: pytorch/examples' ``main.py``,
kuangliu's ``main.py`` without a ``__main__`` guard, facebookresearch's ``main_dino.py``), how
a script in a package starts (``module_launch``), the settings modules it imports that are
editable (``settings_module``), the YAML, JSON or TOML settings files it names
(``named_yaml``, ``settings_file``), and the data, preparation and evaluation scripts that are
readonly (``readonly_candidates``, ``data_dirs``); also what a README names as the goal
(``readme_metric``), where the run seeds itself (``own_seed``), and which scripts a run
command starts (``started_scripts``, ``usage_paths``: read to see how knobs are used). Pure:
file texts in, names and reasons out.

- **The README's**: the first top-level script a README starts (``python``, ``python3.10
  -u``, ``python -m torch.distributed.launch``, ``torchrun``, ``accelerate launch``,
  ``deepspeed``, options before the script skipped) that trains, or whose local imports
  train (a ``main.py`` that wraps an ``engine.py``).
- **Else the only one**: the one top-level script with a ``__main__`` guard that trains.

A script *trains* where it calls ``.backward(``, ``.fit(`` or ``trainer.train(``, or names an
optimizer and calls ``.step(``. Scripts named like data, preparation, evaluation, tests or tools
(``prepare*``, ``eval*``, ``data*``, ``test*``, ``setup.py``, ``download*``, ...) are never
the training script: a README usually runs its data step first, and making it editable
would take it out of the readonly files (a review of the first version found both).
"""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath
from typing import Callable, Iterable, Mapping

NOT_TRAINERS = ("prepare", "preprocess", "eval", "evaluate", "data", "test", "conftest", "setup", "download",
                "convert", "export", "inference", "infer", "predict", "demo", "plot", "visual", "benchmark")
LAUNCH = re.compile(r"(?:\bpython[\d.]*(?:\s+-u)?(?:\s+-m\s+torch\.distributed\.(?:launch|run))?|\btorchrun"
                    r"|\baccelerate\s+launch|\bdeepspeed)\s+(?:--?[\w.-]+(?:[= ][\w.:/-]+)?\s+)*([\w./-]+\.py)\b")


# folders whose scripts are examples or tools, not the project's own training
NOT_THE_PROJECT = {"tests", "test", "examples", "example", "scripts", "tools", "docs", "benchmarks", "bench",
                   "notebooks", "third_party"}
MODULE_LAUNCH = re.compile(r"\bpython[\d.]*(?:\s+-u)?\s+-m\s+([A-Za-z_]\w*(?:\.\w+)*)")


def module_scripts(readme: str) -> list[str]:
    """The files the modules a README runs with ``python -m`` are (``pkg/train.py``, or the
    package's ``__main__.py``), in its order. Pure."""
    return [p for m in MODULE_LAUNCH.finditer(readme)
            for p in (f"{m.group(1).replace('.', '/')}.py", f"{m.group(1).replace('.', '/')}/__main__.py")]


def launched(readme: str) -> list[str]:
    """The scripts a README starts as files (``LAUNCH``), in its order. Pure."""
    return [m.group(1) for m in LAUNCH.finditer(readme)]


def trains(text: str) -> bool:
    """Whether a script's text trains something: ``.backward(``, ``.fit(``, a Hugging Face
    ``trainer.train(``, an optimizer and a ``.step(`` call, or a ``LightningCLI(`` call (its
    ``fit`` subcommand trains: a newcomer's trial was told "there is no train.py yet"; a
    module that only defines a ``training_step`` is the model, not the script: a review)
    (linear scans, not one pattern spanning the file). Pure."""
    return (".backward(" in text or ".fit(" in text or re.search(r"\btrainer\.train\(", text) is not None
            or lightning_cli(text) or (".step(" in text and re.search(r"\boptim(?:izer)?\b", text) is not None))


def lightning_cli(text: str) -> bool:
    """Whether a script calls LightningCLI: imports it from Lightning (``lightning.pytorch.cli``,
    ``pytorch_lightning.cli`` or ``.utilities.cli``, in parentheses over lines too, or the
    ``cli`` module) and calls it or a subclass of it on a line that is not a comment; not one
    that only mentions it (a review). Pure."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    imported = any(
        (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in ("lightning", "pytorch_lightning")
         and ((n.module or "").endswith(".cli") and any(a.name == "LightningCLI" for a in n.names)
              or any(a.name == "cli" for a in n.names)))
        or (isinstance(n, ast.Import) and any(a.name.endswith(".cli") and a.name.split(".")[0] in
                                              ("lightning", "pytorch_lightning") for a in n.names))
        for n in ast.walk(tree))
    if not imported:
        return False
    clis = {"LightningCLI"} | {c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                               and any(ast.unparse(b).split(".")[-1] == "LightningCLI" for b in c.bases)}
    return any(isinstance(n, ast.Call) and ast.unparse(n.func).split(".")[-1] in clis for n in ast.walk(tree))


_ARG = re.compile(r"[\w./=:,+-]+")  # an argument as a README writes it: no placeholder (<path>, $DATA, ...)
_NOT_TRAINING = {"test", "validate", "predict", "eval", "evaluate", "export", "infer", "inference"}  # subcommands
_TRIAL_RUNS = ("fast_dev_run", "debug", "overfit_batches", "smoke")
_NOT_RUNS = {"--help", "-h", "--version", "--print_config"}  # a line that shows, not trains (a review)
CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml")


_LAUNCHER = r"(?:accelerate\s+launch|torchrun|deepspeed|python[\d.]*\s+-m\s+torch\.distributed\.(?:run|launch))"
# the launcher's options before the script: `--nproc_per_node=8`, `--num_processes 2` (a value, never a .py file)
_LAUNCH_OPTS = r"(?:--?[\w.-]+(?:=[^\s`|;&#>]+)?(?:\s+(?!-)(?![^\s]*\.py(?:\s|$))[^\s`|;&#>]+)?\s+)*?"
# the launcher started with one process: a slot is one device; the script still finds the launcher's environment
_ONE_PROCESS = {"accelerate": "accelerate launch --num_processes 1", "torchrun": "torchrun --standalone --nproc_per_node 1",
                "deepspeed": "deepspeed --num_gpus 1"}


def _one_process(launcher: str) -> str:
    """The README's launcher (its words) started with one process. ``python -m
    torch.distributed.launch`` stays that module (it hands the script ``--local_rank``,
    which torchrun does not). Pure."""
    words = launcher.split()
    if words[0] in _ONE_PROCESS:
        return _ONE_PROCESS[words[0]]
    return " ".join(words[:3]) + " --standalone --nproc_per_node 1"  # python -m torch.distributed.run|launch


def readme_command(script: str, readme: str, files: Iterable[str],
                   flags: bool = False) -> tuple[str, str | None, str | None] | None:
    """(the command, the config file, the launcher) where a README runs ``script`` with
    arguments that name a config file the repository holds (LightningCLI's ``python main.py
    fit --config configs/default.yaml``: without its subcommand the script stops, and without
    the file its settings are Lightning's defaults, 1000 epochs), or, with ``flags``, with any
    arguments (an ``HfArgumentParser`` script configured on its command line, ``--do_train
    --do_eval``: without them it trains nothing; an HF trial) (the file then None); None
    elsewhere, or where an argument is a placeholder. A command may go on over lines ending in
    ``\\``; it ends at a backtick, a shell operator or a comment. A line that starts the
    script through a launcher (``accelerate launch``, ``torchrun``, ``deepspeed``) gives the
    launcher with one process (a slot is one device; its other options dropped) and the
    launcher's words as the README wrote them; elsewhere the launcher is None. Pure."""
    held = set(files)
    heads = (re.compile(rf"\bpython[\d.]*(?:\s+-u)?\s+{re.escape(script)}(?=\s)"),
             re.compile(rf"(?<![\w-]){_LAUNCHER}\s+{_LAUNCH_OPTS}{re.escape(script)}(?=\s)"))
    found: list[tuple[bool, int, str, str | None, str | None]] = []
    for line in re.sub(r"\\[ \t]*\r?\n", " ", readme).splitlines():
        m = heads[0].search(line) or heads[1].search(line)
        if m is None:
            continue
        rest = re.split(r"`|&&|\|\||[|;#>&]|\s\d*>|\s\\", line[m.end():])[0].split()  # (not `2>&1`'s 2)
        if not rest or not all(_ARG.fullmatch(a) and a != "..." and "path/to" not in a for a in rest) \
                or rest[0] in _NOT_TRAINING or any(w in a for a in rest for w in _TRIAL_RUNS) or _NOT_RUNS & set(rest):
            continue  # a placeholder, an evaluation (`main.py test ...`), a smoke test (fast_dev_run): a review
        if flags and "--do_train" not in rest and {"--do_eval", "--do_predict"} & set(rest):
            continue  # an HF evaluation of a checkpoint, not a training run (a review)
        named = [v for i, a in enumerate(rest) for v in (a, a.split("=", 1)[-1]) if v.endswith(CONFIG_SUFFIXES)
                 and v in held and not (a.startswith("--deepspeed") or rest[i - 1:i] == ["--deepspeed"])]
        if named or flags:
            first = rest[0] not in ("fit", "train") and "--do_train" not in rest
            launcher = None if m.re is heads[0] else " ".join(m.group(0).split()[:-1])
            head = m.group(0).split() if launcher is None else [_one_process(launcher), script]
            found.append((first, len(found), " ".join([*head, *rest]), named[0] if named else None, launcher))
    return min(found)[2:] if found else None  # a `fit`, `train` or `--do_train` line first, then the README's order


def readme_said(told: tuple[str, str | None, str | None], script: str) -> str:
    """Why the run command is ``readme_command``'s (``told``), in words. Pure."""
    command, _, launcher = told
    return f"the README runs `{launcher} ... {script}`, here one process per slot" if launcher else \
        f"the README runs `{command}`"


def other_trainer(py: Mapping[str, str], readme: str,
                  imports: Callable[[str], Iterable[str]]) -> tuple[str, str] | None:
    """(the script, why) for a repository without a ``train*.py``; None where none is
    clear. ``py``: the Python files by path; ``imports(path)``: the repository's files that
    script imports. Pure."""
    top = {p: t for p, t in py.items() if "/" not in p and not PurePosixPath(p).stem.lower().startswith(NOT_TRAINERS)}

    def trainer(p: str) -> bool:
        return trains(py[p]) or any(trains(py[q]) for q in imports(p) if q in py)

    for m in LAUNCH.finditer(readme):
        p = m.group(1)
        if p in top and trainer(p):
            return p, f"the README runs `{' '.join(m.group(0).split())}`"
    for m in MODULE_LAUNCH.finditer(readme):  # `python -m rl.ppo` (a sixth trial: init said "write train.py")
        parts = m.group(1).lower().split(".")
        if any(part.startswith(NOT_TRAINERS) or part in NOT_THE_PROJECT for part in parts):
            continue  # a data step, an evaluation, a test or a tool, wherever it lies (a review)
        module = m.group(1).replace(".", "/")
        for p in (f"{module}.py", f"{module}/__main__.py"):
            # the module trains itself (not one that imports an engine to sample or evaluate: a review); a
            # package's __main__.py may leave that to what it imports
            if p in py and (trains(py[p]) or (p.endswith("__main__.py") and trainer(p))):
                return p, f"the README runs `python -m {m.group(1)}`"
    guarded = [p for p in sorted(top) if "__main__" in top[p] and trains(top[p])]
    return (guarded[0], "the only script at the top that trains") if len(guarded) == 1 else None


def module_launch(script: str, py: Mapping[str, str], readme: str) -> tuple[str, str] | None:
    """(the command, why) that starts a script in a package as a module: ``python -m
    pkg.train`` where a README runs it so, ``python -m pkg`` where a README runs the package
    and its ``__main__.py`` imports the script, or ``python -m pkg.train`` where the script
    has a relative import (as a file, ``pkg/`` is first on the path and it fails: "attempted
    relative import with no known parent package", a newcomer's trial). None: run it as a
    file, and always where a README does (a script that sets up its own path, as the
    Lightning-Hydra template does with rootutils: a review). Pure."""
    parts = PurePosixPath(script).parts
    if len(parts) < 2 or not script.endswith(".py"):
        return None
    folder, stem = "/".join(parts[:-1]), PurePosixPath(script).stem
    if stem == "__main__":  # a package's entry: run as the package (as a file its absolute imports fail: a review)
        package = folder.replace("/", ".")
        return f"python -m {package}", f"the package's __main__.py: `python -m {package}`"
    module, package = f"{folder.replace('/', '.')}.{stem}", folder.replace("/", ".")
    if script in launched(readme):
        return None
    for m in MODULE_LAUNCH.finditer(readme):
        if m.group(1) == module:
            return f"python -m {module}", f"the README runs `python -m {module}`"
        main = py.get(f"{folder}/__main__.py")
        if m.group(1) == package and main is not None and re.search(rf"\b{re.escape(stem)}\b", main):
            return f"python -m {package}", f"the README runs `python -m {package}`, whose __main__.py runs it"
    in_package = all(f"{'/'.join(parts[:k])}/__init__.py" in py for k in range(1, len(parts)))
    if in_package and re.search(r"^\s*from\s+\.", py.get(script, ""), re.M):
        return f"python -m {module}", "run as a module: its relative imports need it"
    return None


def holds_config(text: str) -> bool:
    """A module of settings in dataclasses (``@dataclass class TrainConfig: lr: float = 3e-3``):
    at the top only imports, a docstring, assignments and classes decorated ``dataclass``, one
    of those at least. The script imports its hyperparameters from it: the knobs are there,
    so it is editable (a newcomer's trial: init left it out and the knobs table was empty).
    Pure."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    classes = 0
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = [d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute)
                     else _called(d) for d in node.decorator_list]
            if "dataclass" not in names:
                return False
            classes += 1
        elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)) and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            return False
    return classes > 0


def _called(node: ast.expr) -> str:
    """The name a decorator call calls (``dataclass(frozen=True)``, ``dataclasses.dataclass()``)."""
    f = node.func if isinstance(node, ast.Call) else None
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def readonly_candidates(paths: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Data, preparation and evaluation scripts: what a proposal must not change. Pure."""
    exclude = set(exclude)
    out = []
    for path in sorted(paths):
        p = PurePosixPath(path)
        if p.suffix != ".py" or path in exclude or any(part.startswith("test") for part in p.parts):
            continue
        if p.stem.startswith(("prepare", "eval", "evaluate", "data")) or (len(p.parts) > 1 and p.parts[0] in ("data", "datasets")):
            out.append(path)
    return out


def settings_module(path: str, text: str) -> bool:
    """A module of dataclass settings (``holds_config``) the training script imports, and not
    the data's or the evaluation's (``data_config.py``, ``evaluation/settings.py``: those stay
    readonly; a review found them made editable). Pure."""
    named = any(part.startswith(("prepare", "eval", "data", "test")) for part in PurePosixPath(path).parts)
    return not named and holds_config(text)


def named_yaml(text: str, files: Mapping[str, str]) -> list[str]:
    """The config files of the repository a script names in a string (``default="configs/
    base.yaml"`` of its ``--config`` option, ``"configs/params.json"``): where its settings
    are, so editable (newcomers' trials: init left them out and found nothing to tune). A
    JSON or TOML file counts where it holds settings (``settings_file``), not data. Pure."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    named = (n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))
    return list(dict.fromkeys(p for p in named if p in files and (p.endswith((".yaml", ".yml")) or (
        p.endswith((".json", ".toml")) and settings_file(p, files[p])))))


_NOT_SETTINGS = re.compile(r"(?:^|[/_.-])(?:data|datasets?|vocab|tokens?|tokenizer|labels?|metrics|results?|"
                           r"package|pyproject|meta|schema|lock|class(?:es)?|idx|index|map(?:ping)?|stats?|norm|"
                           r"generation)(?:[/_.-]|$)", re.IGNORECASE)
_SETTINGS = re.compile(r"conf|cfg|param|setting|args|hyper|opts|options", re.IGNORECASE)


def settings_file(path: str, text: str) -> bool:
    """Whether a JSON or TOML file reads as a script's settings: by a settings name or in a
    config folder (``configs/params.json``, ``hparams.toml``), not data's, metrics', a
    lookup table's or a tool's (``classes.json``, ``stats.json``: a review), an object of
    at most 200 values, two or more of them numbers. Pure."""
    stem = path.rsplit(".", 1)[0]
    if _NOT_SETTINGS.search(stem) or not _SETTINGS.search(stem):
        return False
    try:
        if path.endswith(".toml"):
            from .config import tomllib  # (tomli before Python 3.11)

            doc: object = tomllib.loads(text)
        else:
            import json

            doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    leaves: list[object] = []

    def walk(node: object) -> None:
        if isinstance(node, dict) and len(leaves) <= 200:
            for v in node.values():
                walk(v)
        else:
            leaves.append(node)

    walk(doc)
    return isinstance(doc, dict) and len(leaves) <= 200 and \
        sum(isinstance(v, (int, float)) and not isinstance(v, bool) for v in leaves) >= 2


# a sentence that says what the work is judged by: "maximize val_acc" first, else "the metric is val_bpb"
_GOALS = (re.compile(r"\b(?:maximi[sz]e[sd]?|minimi[sz]e[sd]?|optimi[sz]e[sd]?|goal|objective|target)\b", re.IGNORECASE),
          re.compile(r"\b(?:improve[sd]?|metric|judged?|score[sd]?)\b", re.IGNORECASE))


def readme_metric(readme: str, names: Iterable[str], labels: Mapping[str, str] | None = None) -> str | None:
    """The one of ``names`` (metrics the code prints) that a README names in a sentence about
    the goal ("The goal is to maximize `val_acc`"), where no such sentence names another; a
    name of one word (``loss``) is too common in prose to count. None otherwise (a third
    newcomer's trial: init chose val_loss where the README's goal was val_acc). Pure."""
    candidates = [n for n in dict.fromkeys(names) if len([w for w in re.split(r"[_./-]+", n) if w]) >= 2]
    said = {rf"(?<![\w./-]){re.escape(n)}(?![\w/-])": n for n in candidates}
    for label, name in (labels or {}).items():  # as printed: "maximize the validation ROC AUC" (a fifth trial)
        words = label.split()
        if len(words) >= 2 and name in candidates:
            said[r"(?i)(?<![\w./-])" + r"\s+".join(map(re.escape, words)) + r"(?![\w/-])"] = name
    sentences = re.split(r"(?<=[.!?;])\s+|\n\s*\n|\n\s*[-*#>|]", readme)
    for goal in _GOALS:  # the strong words first: "the final metrics go to ..." names no goal
        named = {n for s in sentences if goal.search(s) for rx, n in said.items() if re.search(rx, s)}
        if named:
            return next(iter(named)) if len(named) == 1 else None
    return None


def started_scripts(command: str) -> list[str]:
    """The Python files a run or eval command starts: ``python train.py --x 1`` (and
    ``torchrun``, ``uv run`` ...) gives ``train.py``; ``python -m pkg.train`` gives
    ``pkg/train.py`` and ``pkg/train/__main__.py`` (whichever the repository has). Pure."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    out: list[str] = []
    for i, w in enumerate(words):
        if w.endswith(".py") and not w.startswith("-"):
            out.append(w.split("=", 1)[-1])
        elif w == "-m" and i + 1 < len(words):
            module = words[i + 1].replace(".", "/")
            out += [f"{module}.py", f"{module}/__main__.py"]
    return [p[2:] if p.startswith("./") else p for p in out]


def usage_paths(editable: Iterable[str], readonly: Iterable[str], commands: Iterable[str | None]) -> tuple[str, ...]:
    """The files read to see how the knobs are used, besides the editable ones: the readonly
    files and the scripts the commands start that are not editable (a config-only campaign's
    train.py: without it, a cadence such as ``log_every`` in the config looked searchable). Pure."""
    own = set(editable)
    started = [p for c in commands if c for p in started_scripts(c)]
    return tuple(dict.fromkeys(p for p in [*readonly, *started] if p not in own))


DATA_SCRIPTS = ("prepare", "download", "preprocess", "fetch", "make_", "build_")  # a data directory's own script


def data_dirs(files: Mapping[str, str], editable: Iterable[str], readonly: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Directories of data scripts (``data/shakespeare_char/prepare.py``): the ones the run
    reads (named by a ``dataset = '...'`` setting, or the only one), and the others. A
    package of loaders under ``data/`` is code, not a data directory (a fourth trial). Pure."""
    from .survey import module_assignments, parse

    dirs = sorted({PurePosixPath(p).parent.as_posix() for p in readonly if p.startswith(("data/", "datasets/"))
                   and PurePosixPath(p).name.startswith(DATA_SCRIPTS)})
    named: dict[str, object] = {}  # a later file (the config the script is given) overrides an earlier one
    for path in editable:
        tree = parse(files.get(path) or "")
        for name, value in (module_assignments(tree) if tree is not None else {}).items():
            if "dataset" in name.lower() and isinstance(value, ast.Constant):
                named[name] = value.value
    chosen = [d for d in dirs if PurePosixPath(d).name in named.values()] or (dirs if len(dirs) == 1 else [])
    return tuple(chosen), tuple(d for d in dirs if d not in chosen)


SEED_ENV = "AUTORESEARCH_SEED"
_SEEDING = re.compile(r"\b((?:torch(?:\.cuda)?\.manual_seed(?:_all)?|(?:np|numpy)\.random\.seed|random\.seed|"
                      r"seed_everything|set_seed|tf\.random\.set_seed|tf\.keras\.utils\.set_random_seed)\s*\()")


def own_seed(files: Mapping[str, str], paths: Iterable[str], command: str = "") -> str:
    """Where the run seeds itself (``run.py:40 torch.manual_seed``) when none of ``paths``
    reads ``AUTORESEARCH_SEED``: then every run of a commit gives one value, and the judge
    sees no noise (a fourth trial: three changes kept at p = 0, one by 0.0006). A call that
    seeds from its arguments (``set_seed(training_args.seed)``) counts only where the run
    ``command`` does not pass ``$AUTORESEARCH_SEED``. "" otherwise. Pure."""
    paths = [p for p in paths if p in files]
    if any(SEED_ENV in files[p] for p in paths):
        return ""
    if f"${SEED_ENV}" in command:
        files = {p: re.sub(r"^.*\b(?:set_seed|manual_seed|seed_everything|seed)\(\s*\w+\.seed\s*\).*$", "", t, flags=re.M)
                 if p.endswith(".py") else t for p, t in files.items()}
    for p in paths:
        config = not p.endswith(".py")  # a settings file: its seed key (a fifth trial's params.json random_state: 42)
        for i, line in enumerate(files[p].splitlines(), 1):
            m = (_SEED_KEY if config else _SEEDING).search(line if config else line.split("#", 1)[0])
            if m:
                return f"{p}:{i} {m.group(1).rstrip('( ')}"
    return ""


_SEED_KEY = re.compile(r"""^\s*["']?((?:\w+_)?seed|seed_everything|random_state)["']?\s*[:=]\s*\d""", re.IGNORECASE)


def kept_configs(named: list[str], chosen: str | None, text: str) -> list[str]:
    """The config files a script names (``named``) but those the README's command replaces
    with ``chosen``: the one other file of its folder and kind (its option's default,
    ``configs/base.yaml``, where the README passes ``configs/small.yaml``: never read by a
    run; a review); none where the script names several there (a model's and a data's
    config, one replaced) or lists ``default_config_files`` (read on every run: a review). Pure."""
    if not chosen or "default_config_files" in text:
        return named
    b = PurePosixPath(chosen)
    alike = [p for p in named if p != chosen and PurePosixPath(p).parent == b.parent and PurePosixPath(p).suffix == b.suffix]
    return [p for p in named if len(alike) != 1 or p != alike[0]]


_ARGPARSE_SEED = re.compile(r"""add_argument\(\s*(?:['"]-\w['"]\s*,\s*)?['"]--seed['"]""")


def seeded_command(command: str, script_text: str) -> str:
    """A LightningCLI script's command with ``--seed_everything $AUTORESEARCH_SEED``, and an
    ``HfArgumentParser`` script's, or an argparse script's with a ``--seed`` option that
    does not read AUTORESEARCH_SEED itself, with ``--seed $AUTORESEARCH_SEED`` (in place of
    the README's ``--seed 42``) (the run command goes through /bin/sh): each run then draws
    its own seed, where a fixed one made every run of a commit give one value (newcomers'
    trials: 8 baseline runs of 0.691, and keeps at p = 0). Other commands as they are. Pure."""
    if lightning_cli(script_text) and "--seed_everything" not in command:
        return f"{command} --seed_everything ${SEED_ENV}"
    given = command.split(".py", 1)[-1].split()  # (`train.py args.json`: a file its only argument, read whole)
    hf = "HfArgumentParser" in script_text and "TrainingArguments" in script_text
    if (hf or (_ARGPARSE_SEED.search(script_text) and SEED_ENV not in script_text)) \
            and not (len(given) == 1 and given[0].endswith(CONFIG_SUFFIXES)):
        seeded, n = re.subn(r"(--seed)(?:=|\s+)\S+", rf"\1 ${SEED_ENV}", command)
        return seeded if n else f"{command} --seed ${SEED_ENV}"
    return command


