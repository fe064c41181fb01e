"""What an arena's own files say about it, read without running anything.

Pure functions over source text (``ast``, nothing imported or executed): whether a
repository is a real karpathy/autoresearch layout (zero-config), what ``init`` should write
for a repository it did not make (the training script, the config files the run uses, data
and evaluation scripts, the metric the code prints and how to read it back), and where a
training script takes its time budget from (the budget checks).
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, Iterator, Mapping

from .framework_survey import hydra_configs, json_logged, logged_metrics, trainer_metrics
from .train_script import (NOT_THE_PROJECT, data_dirs, launched, module_launch, module_scripts, named_yaml,
                           other_trainer, own_seed, readme_command, readme_metric, readme_said, readonly_candidates,
                           kept_configs, seeded_command, settings_module)

BUDGET_ENV = "AUTORESEARCH_TIME_BUDGET"
# what a printed number looks like in a `[metric] pattern` (nan and inf too: a diverged run
# must read as NaN, not as the last finite value printed before it)
NUMBER = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf)"
LENGTH_NAMES = {"max_iters", "max_steps", "num_iterations", "num_steps", "total_steps", "n_steps", "train_steps",
                "iterations", "epochs", "num_epochs", "n_epochs", "max_epochs"}

_METRIC_WORDS = {"bpb": 0, "bpc": 0, "loss": 1, "nll": 1, "ppl": 2, "perplexity": 2, "acc": 3, "accuracy": 3,
                 "error": 4, "err": 4, "mse": 4, "mae": 4, "rmse": 4, "f1": 5, "auc": 5, "bleu": 5, "score": 6,
                 "reward": 6, "return": 6}  # (reinforcement learning's "Eval mean return": a sixth trial)
_HIGHER_BETTER = {"acc", "accuracy", "f1", "auc", "bleu", "score", "reward", "return"}
# a label ending in one of these reads as a sentence: a metric's ("Test accuracy is {acc}": test_accuracy)
# where the line ends at its number, a message's where words follow ("Loss is {}, stopping training":
# DINO's NaN abort; reviews of train_script)
_PROSE = {"is", "are", "was", "were", "be", "now", "of", "to", "than", "by", "at"}
_PROSE_TAIL = r"(?:\s+(?:" + "|".join(sorted(_PROSE)) + r"))+$"
_HELD_OUT = {"val", "valid", "validation", "eval", "test", "dev", "holdout", "cv", "oof"}  # cv: cross-validated
_PRINTERS = {"print", "print0", "print_rank0", "log0"}
_LOG_METHODS = {"info", "warning", "debug", "log", "write", "print"}
_LABEL = re.compile(r"([A-Za-z][\w./-]*(?: [A-Za-z][\w./-]*){0,2})(\s*[:=]?\s*)$")
_NAME_VALUE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*:\s*$")
_LITERAL_LINE = re.compile(r"^\s*([A-Za-z_][\w.\-/]*)\s*:\s*([-+]?\d[\d.eE+-]*)\s*$")
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
_BRACES = re.compile(r"\{[^{}]*\}")
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _number(node: ast.AST) -> float | None:
    """A numeric literal or plain arithmetic of literals (``5 * 60``); None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _number(node.operand)
        return None if v is None else -v
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        a, b = _number(node.left), _number(node.right)
        if a is None or b is None or (isinstance(node.op, ast.Div) and b == 0):
            return None
        return _ARITHMETIC[type(node.op)](a, b)
    return None


def module_assignments(tree: ast.Module) -> dict[str, ast.AST]:
    """Module-level ``NAME = value`` / ``NAME: T = value``; the last one wins."""
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = node.value
    return out


def module_constant(text: str, name: str) -> tuple[bool, float | None]:
    """Whether ``name`` is set at module level, and its value when it is a number."""
    tree = parse(text)
    if tree is None:  # a file that does not parse: a line at the left margin still counts
        m = re.search(rf"^{re.escape(name)}\s*(?::[^=\n]*)?=\s*([0-9][0-9_]*(?:\.[0-9]*)?)?", text, re.M)
        return (m is not None, float(m.group(1).replace("_", "")) if m and m.group(1) else None)
    found = module_assignments(tree)
    return (name in found, _number(found[name]) if name in found else None)


def karpathy_budget(files: Mapping[str, str]) -> tuple[bool, float | None]:
    """Whether ``files`` is a karpathy/autoresearch layout (``train.py`` and a ``prepare.py``
    that sets ``TIME_BUDGET`` at module level), and the budget when it is a number."""
    if "train.py" not in files or "prepare.py" not in files:
        return False, None
    return module_constant(files["prepare.py"], "TIME_BUDGET")


def zero_config_refusal(arena: str, config_file: str, files: Mapping[str, str]) -> str:
    """Why a repository without a config gets none inferred, and what to do (``init``)."""
    if "train.py" not in files:
        why = "there is no train.py"
    else:
        why = "it has train.py but no prepare.py" if "prepare.py" not in files else "its prepare.py does not set TIME_BUDGET"
    return (f"{arena} has no {config_file} (nor [tool.autoresearch] in pyproject.toml), and it is not a "
            f"karpathy/autoresearch checkout ({why}; zero config needs train.py and a prepare.py that sets "
            "TIME_BUDGET): the files to edit, the metric and the run's length would be guesses. Run "
            f"`autoresearch init {arena}`: it writes a commented config from what it finds (the training script, "
            "the config files it uses, the metric it prints); review it, commit it, and run again.")


# -- where a script's budget comes from ---------------------------------------------------------

def _module_file(module: str, known: Iterable[str]) -> str | None:
    path = module.replace(".", "/") + ".py"
    return path if path in set(known) else None


def budget_from_readonly(files: Mapping[str, str], editable: Iterable[str],
                         readonly: Iterable[str]) -> tuple[str, str, str, float] | None:
    """``(script, readonly file, name, value)`` when an editable script takes a numeric time
    budget from a readonly file (``from prepare import TIME_BUDGET``) and none of these files
    mentions AUTORESEARCH_TIME_BUDGET; None otherwise."""
    editable, readonly = list(editable), list(readonly)
    if any(BUDGET_ENV in (files.get(p) or "") for p in [*editable, *readonly]):
        return None
    for script in editable:
        tree = parse(files.get(script) or "") if script.endswith(".py") else None
        for node in ast.walk(tree) if tree is not None else ():
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            source = _module_file(node.module, readonly)
            for alias in node.names:
                if source is None or "budget" not in alias.name.lower():
                    continue
                assigned, value = module_constant(files.get(source) or "", alias.name)
                if assigned and value is not None:
                    return script, source, alias.name, value
    return None


# -- what the code prints ----------------------------------------------------------------------

@dataclass(frozen=True)
class Printed:
    """A number the code prints, and how a run's output is read for it."""

    name: str             # the metric's name (``val_loss``)
    label: str            # as printed (``val loss``)
    pattern: str | None   # None: a ``name: value`` line, read as is
    where: str            # ``train.py:265``
    example: str          # the printed line, holes as ``…``
    order: int = 0
    logged: bool = False  # logged with a LightningModule's self.log: Lightning prints it

    @property
    def goal(self) -> str:
        return "maximize" if set(_words(self.label)) & _HIGHER_BETTER else "minimize"

    def rank(self) -> tuple[int, int, int, int, int]:
        words = _words(self.label)
        ranks = [_METRIC_WORDS[w] for w in words if w in _METRIC_WORDS]
        held_out = set(words) & _HELD_OUT  # validation before test: research is not tuned on the test set
        return (2 if held_out - {"test", "holdout"} else 1 if held_out else 0, int("train" not in words and "training" not in words),
                int(self.pattern is None), -min(ranks, default=9), self.order)


def _words(label: str) -> list[str]:
    words = [w for w in re.split(r"[\s_./-]+", label.lower()) if w]
    return [w for i, w in enumerate(words)  # "return code" is a process's, not a metric (a review)
            if not (w == "return" and words[i + 1:i + 2] and words[i + 1] in ("code", "codes", "value", "status", "type"))]


def _sentence(label: str, rest: list) -> bool:
    """A label ending in prose whose line goes on in words after the number. Pure."""
    return _words(label)[-1] in _PROSE and re.search(r"[A-Za-z]", "".join(p for p in rest if p)) is not None


def _pieces(node: ast.AST) -> list[str | None] | None:
    """A string expression as literal pieces and holes (None), or None when it is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.Constant) else None for v in node.values]
    template, splitter = None, None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
        template, splitter = node.left.value, _PERCENT
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant):
        template, splitter = node.func.value.value, _BRACES
    if not isinstance(template, str) or splitter is None:
        return None
    out: list[str | None] = []
    for i, part in enumerate(splitter.split(template)):
        out += ([None] if i else []) + [part]
    return out


def _printed_pieces(call: ast.Call) -> tuple[list[str | None], bool] | None:
    """What a print or logging call writes, and whether its lines start where it starts."""
    f = call.func
    if isinstance(f, ast.Name) and f.id in _PRINTERS:
        pieces: list[str | None] = []
        for i, arg in enumerate(call.args):
            pieces += ([" "] if i else []) + (_pieces(arg) or [None])
        return pieces, True
    if isinstance(f, ast.Attribute) and f.attr in _LOG_METHODS and call.args:
        first = _pieces(call.args[0])
        if len(call.args) > 1 and first is not None and len(first) == 1:  # logger.info("val loss %.4f", x)
            first = _pieces(ast.BinOp(call.args[0], ast.Mod(), call.args[1]))
        return (first, f.attr == "write") if first is not None else None
    return None


def _lines(pieces: list[str | None]) -> Iterator[list[str | None]]:
    line: list[str | None] = []
    for piece in pieces:
        if piece is None:
            line.append(None)
            continue
        parts = piece.split("\n")
        for j, part in enumerate(parts):
            if j:
                yield line
                line = []
            line.append(part)
    yield line


def _from_line(line: list[str | None], starts: bool, where: str, order: int) -> Iterator[Printed]:
    example = "".join("…" if p is None else p for p in line).strip()
    if starts and None not in line:
        m = _LITERAL_LINE.match("".join(p for p in line if p is not None))
        if m and any(w in _METRIC_WORDS for w in _words(m.group(1))):
            yield Printed(m.group(1), m.group(1), None, where, example, order)
        return
    before = ""
    for i, piece in enumerate(line):
        if piece is not None:
            before += piece
            continue
        m = _LABEL.search(before)
        if m and any(w in _METRIC_WORDS for w in _words(m.group(1))) and not _sentence(m.group(1), line[i + 1:]):
            rest = line[i + 1:]
            whole_line = starts and None not in line[:i] and None not in rest and not "".join(rest).strip()  # type: ignore[arg-type]
            if whole_line and _NAME_VALUE.match(before):
                yield Printed(m.group(1), m.group(1), None, where, example, order)
            else:
                name = re.sub(r"\s+", "_", re.sub(_PROSE_TAIL, "", m.group(1), flags=re.I).lower())  # "Test accuracy is": test_accuracy
                yield Printed(name, m.group(1), label_pattern(m.group(1), m.group(2)), where, example, order)
        before = ""


def label_pattern(label: str, separator: str) -> str:
    """A regex for the number printed after ``label``: ``val loss (NUMBER)``; ``val acc = x``
    reads ``val acc``, spaces, ``=`` and the number (a trial's pattern without the space found nothing)."""
    text = re.escape(label).replace("\\ ", " ").replace("\\-", "-")
    sep = separator.strip()
    if sep:
        text += r"\s*" + re.escape(sep) + r"\s*" if separator[0].isspace() else re.escape(sep) + r"\s*"
    elif separator:
        text += " " if separator == " " else r"\s+"
    return text + NUMBER


def printed_metrics(path: str, text: str) -> list[Printed]:
    """Every metric-like number a file prints or logs, in source order."""
    tree = parse(text)
    if tree is None:
        return []
    out: list[Printed] = []
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    for call in calls:
        found = _printed_pieces(call)
        if found is None:
            continue
        pieces, starts = found
        for line_no, line in enumerate(_lines(pieces)):
            out += _from_line(line, starts or line_no > 0, f"{path}:{call.lineno}", call.lineno)
    out += [Printed(k, k, None, f"{path}:{n}", f'{{..., "{k}": …}}', n) for k, n in  # JSON lines, HF's logs
            [*json_logged(text), *trainer_metrics(text)] if set(_words(k)) & set(_METRIC_WORDS)]
    return sorted(out, key=lambda p: p.order)


def lightning_metrics(py: Mapping[str, str], first: Iterable[str]) -> list[Printed]:
    """The metric-like numbers a LightningModule logs (``framework_survey.logged_metrics``),
    read through Lightning's own output: in ``first`` (the script and what it imports), and
    in any other file (tests left out) that defines a ``LightningModule`` (the Hydra
    template builds it from a config, so the script does not import it)."""
    paths = list(dict.fromkeys([*first, *sorted(p for p, t in py.items() if "LightningModule" in t
                                                and not {"tests", "test"} & set(p.split("/")[:-1]))]))
    out = []
    for path in paths:
        for name, pattern, line in logged_metrics(path, py.get(path) or "", NUMBER):
            if set(_words(name)) & set(_METRIC_WORDS):
                out.append(Printed(name, name, pattern, f"{path}:{line}", f"{name}=…", line - 1_000_000,
                                   logged=True))  # (order: a printed line of the same rank first)
    return out


def best_metric(found: Iterable[Printed]) -> Printed | None:
    """The number worth optimising: held-out before training numbers, a ``name: value``
    summary line before a pattern, bits per byte before loss before accuracy, the last
    printed last."""
    unique = {(p.name, p.pattern): p for p in found}
    return max(unique.values(), key=Printed.rank, default=None)


# -- a repository as a whole -------------------------------------------------------------------

def is_config_only(text: str) -> bool:
    """A Python file of assignments (imports and docstrings allowed): nanoGPT's ``config/*.py``."""
    tree = parse(text)
    if tree is None or not tree.body:
        return False
    assigns = 0
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not all(isinstance(t, ast.Name) for t in targets):
                return False
            assigns += 1
        elif not (isinstance(node, (ast.Import, ast.ImportFrom))
                  or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))):
            return False
    return assigns > 0


def local_imports(text: str, known: Iterable[str], path: str = "") -> list[str]:
    """Files of the repository a script imports or execs (``exec(open('configurator.py').read())``);
    with the script's ``path``, its relative imports too (``from .config import TrainConfig``)."""
    tree = parse(text)
    known = set(known)
    out: list[str] = []
    for node in ast.walk(tree) if tree is not None else ():
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom) and node.level and path and node.level <= path.count("/"):
            base = str(PurePosixPath(path).parents[node.level - 1]).replace("/", ".") + "."
            names = [base + node.module] if node.module else [base + a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            out.append(node.value)
        out += [p for p in (_module_file(n, known) for n in names) if p is not None]
    return list(dict.fromkeys(out))


def reads_argv(text: str) -> bool:
    return "sys.argv" in text or "configurator.py" in text


def length_settings(files: Mapping[str, str], paths: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Module-level settings that fix a run's length (``max_iters``): name -> (value, file);
    a later file (a config passed to the script) overrides an earlier one."""
    out: dict[str, tuple[str, str]] = {}
    for path in paths:
        tree = parse(files.get(path) or "")
        for name, value in (module_assignments(tree) if tree is not None else {}).items():
            if name.lower() in LENGTH_NAMES:
                out[name] = (ast.unparse(value), path)
    return out


@dataclass(frozen=True)
class Survey:
    """What ``init`` found in a repository (see ``survey``)."""

    script: str | None                      # the training script the run command starts
    editable: tuple[str, ...]               # the script, scripts it imports, the config files it uses
    readonly: tuple[str, ...]               # data, preparation and evaluation scripts
    run: str
    run_why: str                            # why the run command passes a config file ("" when it does not)
    unused_configs: tuple[str, ...]         # config-only files under config/ the run does not use
    helpers: tuple[str, ...]                # files the script uses that are neither editable nor readonly
    other_scripts: tuple[str, ...]          # further train*.py the run does not start
    metric: Printed | None
    others: tuple[Printed, ...]             # the other numbers it prints
    budget: float | None                    # karpathy's TIME_BUDGET in prepare.py
    reads_budget: bool                      # an editable file reads AUTORESEARCH_TIME_BUDGET
    length: Mapping[str, tuple[str, str]]   # settings that fix a run's length (max_iters)
    uv_run: bool = False                    # the README starts the script with `uv run`
    data: tuple[str, ...] = ()              # data directories the run reads (untracked data, `[arena] data`)
    data_other: tuple[str, ...] = ()        # the other directories of data scripts
    hydra: tuple[str, ...] = ()             # the YAML configs the script (or, with none, other_scripts[0]) composes
    script_why: str = ""                    # why a script not named train*.py is the one, or runs as a module
    metric_why: str = ""                    # why the metric is not the one ranked first (the README's goal)
    own_seed: str = ""                      # where the run seeds itself, ignoring AUTORESEARCH_SEED


# folders whose train.py is an example or a tool, not the project's own training (named, not adopted)
_NOT_THE_PROJECT = NOT_THE_PROJECT


def _run_config(script: str, files: Mapping[str, str], configs: list[str], readme: str) -> tuple[str | None, str]:
    """The config file the run command passes to a script that reads its arguments: the
    first one a README runs it with, else the only training config there is."""
    if not reads_argv(files[script]):
        return None, ""
    for m in re.finditer(rf"python3?\s+{re.escape(script)}\s+(\S+\.py)\b", readme):
        if m.group(1) in configs:
            return m.group(1), f"the README runs `{m.group(0)}`"
    train_like = [c for c in configs if PurePosixPath(c).stem.startswith("train")]
    if len(train_like) == 1:
        return train_like[0], f"{train_like[0]} is the only training config"
    return None, ""


def survey(files: Mapping[str, str]) -> Survey:
    """``files``: the repository's Python, YAML, JSON and TOML files and READMEs by relative path."""
    py = {p: t for p, t in files.items() if p.endswith(".py")}
    readme = "\n".join(t for p, t in sorted(files.items()) if PurePosixPath(p).name.lower().startswith("readme"))
    scripts = sorted((p for p in py if re.fullmatch(r"train[\w-]*\.py", p)), key=lambda p: (p != "train.py", p))
    script = scripts[0] if scripts else None
    configs = sorted(p for p in py if p not in scripts and "/" in p and not p.startswith(("data/", "datasets/"))
                     and is_config_only(py[p]))
    nested = sorted((p for p in py if re.fullmatch(r"(?:[\w.-]+/){1,2}train(?:[_-][\w-]*)?\.py", p)  # src/train.py
                     and not {"tests", "test"} & set(p.split("/")[:-1])),
                    key=lambda p: (not p.endswith("/train.py"), p.count("/"), p))
    if script is None and nested and [p for p in nested if p.endswith("/train.py")] == nested[:1] \
            and nested[0].split("/")[0].lower() not in _NOT_THE_PROJECT:
        script, scripts = nested[0], nested  # the one train.py, in a folder (src/train.py): run from the root
    script_why = ""
    if script is None and (run_by_readme := [p for p in [*launched(readme), *module_scripts(readme)] if p in nested]):
        script, scripts, script_why = run_by_readme[0], nested, "the README runs it"  # scripts/train.py (a trial)
    if script is None and not nested and (named := other_trainer(py, readme, lambda p: local_imports(py[p], py, p))):
        (script, script_why), scripts = named, [named[0]]  # pytorch/examples' main.py
    if script is None:  # a new arena: the files are still to be written
        return Survey(script=None, editable=("train.py",), readonly=tuple(readonly_candidates(py, configs)),
                      run="python train.py", run_why="", unused_configs=tuple(configs), helpers=(),
                      other_scripts=tuple(nested),
                      metric=None, others=(), budget=None, reads_budget=False, length={},
                      hydra=tuple(hydra_configs(nested[0], files)) if nested else ())
    config, why = _run_config(script, py, configs, readme)
    launch = module_launch(script, py, readme)
    told = None if config or launch else readme_command(script, readme, files, "HfArgumentParser" in py[script])
    if told:  # LightningCLI's `python main.py fit --config configs/default.yaml`: its subcommand and settings
        launch, why, script_why = (told[0], readme_said(told, script)), "", ""
    script_why = "; ".join(dict.fromkeys(w for w in (script_why, launch[1] if launch else "") if w))
    run = seeded_command((launch[0] if launch else f"python {script}") + (f" {config}" if config else ""), py[script])
    used = local_imports(py[script], py, script)
    hydra = hydra_configs(script, files)
    editable = [script, *[p for p in used if p in scripts or is_config_only(py[p]) or settings_module(p, py[p])],
                *([config] if config else []), *([told[1]] if told and told[1] else []), *hydra,
                *kept_configs(named_yaml(py[script], files), told[1] if told else None, py[script])]
    editable = list(dict.fromkeys(editable))
    readonly = readonly_candidates(py, [*editable, *configs])
    found = [m for path in [script, *used] for m in printed_metrics(path, py[path])] + lightning_metrics(py, [script, *used])
    metric, metric_why = best_metric(found), ""
    goal = readme_metric(readme, [m.name for m in found if not {"train", "training"} & set(_words(m.name))],
                         {m.label: m.name for m in found})
    if goal is not None and (metric is None or metric.name != goal):  # (never a training number: a review)
        metric, metric_why = best_metric(m for m in found if m.name == goal), "the README's goal"
    karpathy, budget = karpathy_budget(files) if "prepare.py" in readonly else (False, None)
    data, data_other = data_dirs(py, editable, readonly)
    return Survey(
        script=script, editable=tuple(editable), readonly=tuple(readonly),
        run=run, run_why=why,
        unused_configs=tuple(c for c in configs if c not in editable and "config" in c.lower()),
        helpers=tuple(p for p in used if p not in editable and p not in readonly),
        other_scripts=tuple(s for s in scripts if s not in editable),
        metric=metric, others=tuple({m.name: m for m in found if metric is not None and m.name != metric.name}.values()),
        budget=budget if karpathy else None, reads_budget=any(BUDGET_ENV in py.get(p, "") for p in editable),
        length=length_settings(py, editable), uv_run=f"uv run {script}" in readme,
        data=data, data_other=data_other, hydra=tuple(hydra), script_why=script_why, metric_why=metric_why,
        own_seed=own_seed(files, [script, *used, *[p for p in editable if not p.endswith(".py")
                                                   and "$AUTORESEARCH_SEED" not in run]], run),  # (config seeds: the command's)
    )


def inline_pattern(target: str, output: str) -> tuple[str, str] | None:
    """Where ``output`` shows the target's number within a line, not as a ``name: value``
    line of its own (a progress bar's ``val/loss=0.106``, a table's ``│ test/loss │ 0.12 │``):
    (that piece, as printed; a ``[metric] pattern`` that reads it). The last one. Pure."""
    name = rf"(?<![\w./-]){re.escape(target)}(?![\w./-])"  # not the tail or head of another name
    found = None
    for m in re.finditer(rf"{name}(\s*)([=:│|]?)(\s*){NUMBER}", output[-20_000:]):
        if m.group(2) or m.group(1) + m.group(3):  # a separator, or a space at least
            found = m
    if found is None:
        return None
    return found.group(0)[:80], number_after(name, found.group(2))


def number_after(label: str, sep: str) -> str:
    """A ``[metric] pattern``: the number after ``label`` (a regex) and ``sep`` (``=``, ``:``;
    blank: spaces), any spaces around it. Pure."""
    sep = sep.strip()
    return label + (rf"\s*{re.escape(sep)}\s*" if sep else r"\s+") + NUMBER
