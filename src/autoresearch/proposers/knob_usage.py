"""Why a knob should not be searched, from how the code uses it (not from its name).

A setting can be a literal in the right place and still be no hyperparameter: a value
only printed or logged (the peak FLOPs in a printed MFU), a cadence (``step % EVAL_EVERY
== 0``), a bound on a counter or on elapsed time that sets how much is computed
(``if step > MAX_ITERS: break``), a seed. Each use of the knob's symbol in the Python
files (the editable ones and the readonly ones: nanoGPT reads its config file's values as
globals of ``train.py``) is classified; when every use is one of those, the knob is frozen
by default with that reason. A value used any other way (or whose uses cannot be seen)
is searched. Pure: text in, reasons out.
"""

from __future__ import annotations

import ast
import re
from typing import Iterable, Mapping

PRINTED, CADENCE, BOUND, SEED, EVAL, REAL = "printed", "cadence", "bound", "seed", "eval", "real"
DATA = "data"  # an argument of a call that makes the data set (scikit-learn's make_classification)
LOOP = "loop"  # bounds the training loop itself (a framework's max_epochs=, for epoch in range(...)): a BOUND that wins

REASONS = {
    PRINTED: "only printed or logged: it cannot change the metric",
    CADENCE: "a cadence (how often something is logged or evaluated): it sets no model or optimiser property",
    BOUND: ("bounds a step counter or the elapsed time: it sets how much is computed, which every candidate "
            "gets alike (the time budget, or this setting as it is), not a hyperparameter"),
    SEED: "a seed",
    EVAL: "the evaluation set: the metric is measured on it; declare low and high to search it",
    DATA: "the data set: a smaller or easier one is another problem, not research; declare low and high to search it",
}
# scikit-learn's data set generators: every argument makes the data (a newcomer's trial searched
# make_classification's class_sep, flip_y and n_informative with every proposal)
_DATA_MAKERS = {f"make_{n}" for n in (
    "classification", "regression", "blobs", "moons", "circles", "friedman1", "friedman2", "friedman3", "hastie_10_2",
    "gaussian_quantiles", "multilabel_classification", "sparse_uncorrelated", "swiss_roll", "s_curve",
    "low_rank_matrix", "sparse_coded_signal", "biclusters", "checkerboard")}
# ... and how the metric is measured: the folds of a cross-validation, the share held out (the same trial
# searched cv.n_splits from 2 to 15: scores before and after are not comparable)
_SPLITTERS = {"KFold", "StratifiedKFold", "GroupKFold", "StratifiedGroupKFold", "RepeatedKFold",
              "RepeatedStratifiedKFold", "ShuffleSplit", "StratifiedShuffleSplit", "GroupShuffleSplit", "TimeSeriesSplit"}
_SPLIT_KW = {"train_test_split": {"test_size", "train_size"}, "cross_val_score": {"cv"}, "cross_validate": {"cv"},
             "cross_val_predict": {"cv"}, "GridSearchCV": {"cv"}, "RandomizedSearchCV": {"cv"}}
_PRINTERS = {"print", "log", "info", "debug", "warning", "warn", "error", "write", "add_scalar", "add_scalars",
             "set_postfix", "set_description", "log_metrics", "log_dict", "pprint", "echo"}  # methods (logger.info, ...)
_MATH = {"math", "cmath", "torch", "np", "numpy", "jnp", "jax", "F", "tf", "scipy", "mx"}
# keyword arguments of training frameworks that set a run's length, or a cadence
_BOUND_KW = {"max_epochs", "max_steps", "num_train_epochs", "max_iters", "max_time", "epochs", "num_epochs", "total_steps"}
_CADENCE_KW = {"logging_steps", "save_steps", "eval_steps", "log_every_n_steps", "val_check_interval",
               "check_val_every_n_epoch", "save_every", "log_interval", "eval_interval", "print_every",
               "every_n_train_steps", "every_n_epochs"}
_EVAL_KW = {"limit_val_batches", "limit_test_batches", "val_check_batches", "eval_iters", "eval_steps_max"}
_TRAINING_STEP_METHODS = {"step", "zero_grad", "backward", "clip_grad_norm_", "unscale_"}
_LOOP_WRAPPERS = {"tqdm", "enumerate"}  # tqdm(range(EPOCHS)), tqdm.auto.tqdm(...) too
_LOOP_COUNTERS = ("epoch", "ep")  # for epoch in range(EPOCHS): the loop's counter says what it counts


def _training_loop(call: ast.Call, parents: Mapping[ast.AST, ast.AST]) -> str:
    """Whether ``range(...)`` (or ``trange``; through ``tqdm(...)`` and ``enumerate(...)``)
    is what the training loop runs over: the iterable of an outermost ``for`` (no loop
    encloses it in its function: an inner loop, a GAN's N_CRITIC or gradient accumulation's
    micro-steps, is a setting) whose counter is an epoch (``epoch``, ``ep``) or whose body
    steps an optimiser (``opt.step()``, ``loss.backward()``). (``for i in range(N_LAYERS)``
    builds a model: a setting. A hand-written update under ``for step in range(STEPS)`` is
    not recognised: that knob stays searched.) Which: ``"epoch"`` (its counter says so),
    ``"steps"`` (it steps an optimiser), or ``""`` (neither)."""
    node, parent = call, parents.get(call)
    while isinstance(parent, ast.Call) and _func_name(parent) in _LOOP_WRAPPERS and node in parent.args:
        node, parent = parent, parents.get(parent)
    if not (isinstance(parent, ast.For) and parent.iter is node):
        return ""
    up = parents.get(parent)
    while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)):
        if isinstance(up, (ast.For, ast.While, ast.AsyncFor)):
            return ""  # an inner loop
        up = parents.get(up)
    counter = parent.target.id.lower() if isinstance(parent.target, ast.Name) else ""
    if isinstance(parent.target, ast.Tuple) and parent.target.elts and isinstance(parent.target.elts[0], ast.Name):
        counter = parent.target.elts[0].id.lower()  # for epoch, batch in enumerate(...)
    if counter in _LOOP_COUNTERS or counter.startswith("epoch"):
        return "epoch"
    return "steps" if _steps_training(parent) else ""


def _steps_training(stmt: ast.AST) -> bool:
    """Whether a guarded block steps an optimiser (then the guard is part of training)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _TRAINING_STEP_METHODS
               for b in getattr(stmt, "body", []) for n in ast.walk(b))


def _stops(stmt: ast.If) -> bool:
    """Whether an ``if`` ends a loop or the run (break, return, raise, exit)."""
    for b in stmt.body:
        for n in ast.walk(b):
            if isinstance(n, (ast.Break, ast.Return, ast.Raise)):
                return True
            if isinstance(n, ast.Call) and _func_name(n) in ("exit", "_exit"):
                return True
    return False
_CLOCKS = {"time", "perf_counter", "monotonic", "process_time", "perf_counter_ns", "monotonic_ns", "time_ns"}


def _func_name(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


class _Module:
    def __init__(self, tree: ast.Module, metric_words: tuple[str, ...] = ()):
        """One pass over the module: parents, reads by symbol, counters, assignments, calls."""
        self.tree = tree
        self.metric_words = tuple(w.lower() for w in metric_words if w)
        self.parent: dict[ast.AST, ast.AST] = {}
        self.reads: dict[str, list[ast.AST]] = {}  # symbol -> where it is read (shared by every knob)
        self.calls: dict[str, list[ast.Call]] = {}  # function name -> its calls
        self.counters: set[str] = set()
        assignments: list[ast.AST] = []
        stack: list[ast.AST] = [tree]
        while stack:
            n = stack.pop()
            for child in ast.iter_child_nodes(n):
                self.parent[child] = n
                stack.append(child)
            key = None
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                key = n.id
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                key = n.attr
            elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and isinstance(n.slice, ast.Constant) \
                    and isinstance(n.slice.value, str):
                key = n.slice.value
            elif isinstance(n, ast.Call):
                self.calls.setdefault(_func_name(n), []).append(n)
            elif isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None:
                assignments.append(n)
                if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                    self.counters.add(n.target.id)
            if key is not None:
                self.reads.setdefault(key, []).append(n)
        self.clock_names = self._clock_names(assignments)

    def _clock_names(self, assignments: list[ast.AST]) -> set[str]:
        """Names bound to an expression that reads a clock (or another such name)."""
        out: set[str] = set()
        for _ in range(3):
            for n in assignments:
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]  # type: ignore[attr-defined]
                if self._reads_clock(n.value, out):  # type: ignore[attr-defined]
                    out |= {t.id for t in targets if isinstance(t, ast.Name)}
        return out

    @staticmethod
    def _reads_clock(expr: ast.AST, names: set[str]) -> bool:
        for n in ast.walk(expr):
            if isinstance(n, ast.Call) and _func_name(n) in _CLOCKS:
                return True
            if isinstance(n, ast.Name) and n.id in names:
                return True
        return False

    def uses(self, symbol: str) -> list[ast.AST]:
        """Where ``symbol`` is read: a name, an attribute (``args.lr``, ``config.lr``), or a
        string subscript (``cfg["lr"]``)."""
        return self.reads.get(symbol, [])

    def _in_call(self, call: ast.Call, child: ast.AST) -> set[str] | None:
        """What a value that ``call`` is given (``child``: its function, an argument or a
        keyword) leads to; None where the call's result decides (``int(X)``, ``min(X, y)``)."""
        name = _func_name(call)
        if child is call.func:  # a method of the value: called for its effect, or its result flows on
            return {REAL} if isinstance(self.parent.get(call), ast.Expr) else None  # loss.backward()
        kw = child.arg if isinstance(child, ast.keyword) else None
        if self._is_printer(call):
            return {REAL} if self._prints_metric(call) else {PRINTED}
        if "seed" in name.lower() or kw == "seed":
            return {SEED}
        for kind, words in ((LOOP, _BOUND_KW), (CADENCE, _CADENCE_KW), (EVAL, _EVAL_KW)):
            if kw in words:
                return {kind}
        if name in _DATA_MAKERS:
            return {DATA}
        if name in _SPLITTERS or kw in _SPLIT_KW.get(name, ()):
            return {EVAL}
        if name in ("range", "trange") and (loop := _training_loop(call, self.parent)):
            # for epoch in range(EPOCHS): how much is computed, whatever else uses it; a loop that
            # steps, in a function of its own, may be a helper's (accumulation, warmup, an inner
            # adaptation: a review), so a real use elsewhere keeps that knob searched
            return {LOOP if loop == "epoch" else BOUND}
        if name not in ("int", "float", "round", "str", "abs", "min", "max"):
            return {REAL}  # passed to code we do not follow
        return None

    def classify(self, node: ast.AST, seen: set[str]) -> set[str]:
        """What one read of a value leads to."""
        child, here = node, self.parent.get(node)
        while here is not None:
            if isinstance(here, ast.Call):
                found = self._in_call(here, child)
                if found is not None:
                    return found
            elif isinstance(here, ast.BinOp) and isinstance(here.op, ast.Mod) and child is here.right:
                if isinstance(self.parent.get(here), (ast.Compare, ast.If, ast.UnaryOp)):
                    guarded = self._guarded(here)
                    if guarded is not None and _steps_training(guarded):
                        return {REAL}  # step % ACCUM == 0: optimizer.step() -- gradient accumulation
                    return {CADENCE}
            elif isinstance(here, ast.Compare):
                others = [o for o in (here.left, *here.comparators) if o is not child]
                if any(self._counter_or_clock(o) for o in others):
                    guarded = self._guarded(here)
                    if isinstance(guarded, ast.While) or (isinstance(guarded, ast.If) and _stops(guarded)):
                        return {BOUND}
                return {REAL}  # (a counter compared to start something, such as EMA_START, is a setting)
            elif isinstance(here, (ast.FormattedValue, ast.JoinedStr, ast.keyword)):
                pass  # text, or an argument: what happens to the text, or the call, decides
            elif isinstance(here, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = here.targets if isinstance(here, ast.Assign) else [here.target]
                if child is not here.value or not all(isinstance(t, ast.Name) for t in targets):
                    return {REAL}
                out: set[str] = set()
                for t in targets:
                    assert isinstance(t, ast.Name)
                    if t.id in seen:
                        continue
                    seen.add(t.id)
                    uses = self.uses(t.id)
                    if not uses:
                        out.add(REAL)
                    for u in uses:
                        out |= self.classify(u, seen)
                return out or {PRINTED}
            elif isinstance(here, (ast.stmt, ast.comprehension, ast.Lambda, ast.Return, ast.Yield, ast.YieldFrom,
                                   ast.Subscript, ast.Starred, ast.Dict, ast.List, ast.Tuple, ast.Set)):
                if isinstance(here, ast.Expr):
                    return {PRINTED}  # a value computed and dropped
                return {REAL}
            child, here = here, self.parent.get(here)
        return {REAL}

    def _guarded(self, node: ast.AST) -> ast.AST | None:
        """The ``if`` or ``while`` whose test holds ``node`` (None when it is in anything else)."""
        child, here = node, self.parent.get(node)
        while here is not None and not isinstance(here, ast.stmt):
            child, here = here, self.parent.get(here)
        if isinstance(here, (ast.If, ast.While)) and child is here.test:
            return here
        return None

    def _is_printer(self, call: ast.Call) -> bool:
        f = call.func
        if isinstance(f, ast.Name):
            return f.id in ("print", "pprint", "echo")
        if isinstance(f, ast.Attribute) and f.attr in _PRINTERS:
            root = f.value
            while isinstance(root, ast.Attribute):
                root = root.value
            return not (isinstance(root, ast.Name) and root.id in _MATH)  # math.log, torch.log: arithmetic
        return False

    def _prints_metric(self, call: ast.Call) -> bool:
        """Whether the text of a print or log call names the metric (then what it prints is
        the measurement, not a side remark)."""
        for n in ast.walk(call):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and \
                    any(w in n.value.lower() for w in self.metric_words):
                return True
        return False

    def _counter_or_clock(self, expr: ast.AST) -> bool:
        for n in ast.walk(expr):
            if isinstance(n, ast.Name) and (n.id in self.counters or n.id in self.clock_names):
                return True
            if isinstance(n, ast.Call) and _func_name(n) in _CLOCKS:
                return True
        return False


def metric_words(name: str, patterns: Iterable[str] = ()) -> tuple[str, ...]:
    """What a line that prints the metric contains: its name, and the literal text a
    pattern starts with (``val loss`` of ``val loss ([0-9.]+)``). Pure."""
    import re

    words = [name]
    for p in patterns:
        m = re.match(r"[A-Za-z_ ]+", p.replace("\\s", " ").replace("\\", ""))
        if m and m.group(0).strip():
            words.append(m.group(0).strip())
    return tuple(w for w in words if w)


def modules(files: Mapping[str, str], words: tuple[str, ...] = ()) -> list[_Module]:
    out = []
    for path in sorted(files):
        if path.endswith(".py"):
            try:
                out.append(_Module(ast.parse(files[path]), words))
            except (SyntaxError, ValueError, RecursionError):
                continue
    return out


def frozen_by_use(symbol: str, mods: Iterable[_Module], shared: bool = False) -> str | None:
    """Why a knob read as ``symbol`` is not a hyperparameter, or None (a real use, or no use
    seen). ``shared``: another knob is read as ``symbol`` too (``epochs`` and
    ``scheduler.warmup.epochs``), so a use may be the other's."""
    kinds: set[str] = set()
    for m in mods:
        for u in m.uses(symbol):
            kinds |= m.classify(u, {symbol})
    if LOOP in kinds and not shared:  # a run's length, whatever else follows from it (a schedule's total steps)
        return REASONS[BOUND]
    kinds = {BOUND if k == LOOP else k for k in kinds}
    if not kinds or REAL in kinds:
        return None
    for k in (SEED, DATA, EVAL, BOUND, CADENCE, PRINTED):
        if k in kinds:
            return REASONS[k]
    return None


# keys of a config file (YAML, JSON, TOML) that set a run's length or a cadence: a framework
# reads them (Hydra's instantiate hands ``trainer:`` to Lightning's Trainer), so no use is
# seen in the code; a newcomer's Hydra trial searched ``trainer.max_epochs`` from 3 to 30
_BOUND_KEYS = _BOUND_KW | {"min_epochs", "min_steps", "limit_train_batches"}
_CADENCE_KEYS = _CADENCE_KW | {"save_top_k", "num_sanity_val_steps", "flush_logs_every_n_steps"}
_TRAINER_SECTIONS = {"trainer", "train", "training", "fit", "lightning", "pl_trainer", "run"}


def frozen_by_key(name: str) -> str | None:
    """Why a config file's key (``name``: its dotted path) is not a hyperparameter, by its
    last part, where it is at the top of its file or in a trainer's section
    (``trainer.max_epochs``; ``scheduler.warmup.epochs`` is a setting: a review), or None. Pure."""
    parts = re.sub(r"\[\d+\]", "", name.rsplit(":", 1)[-1]).split(".")
    if len(parts) > 1 and parts[-2].lower() not in _TRAINER_SECTIONS:
        return None
    key = parts[-1]
    return REASONS[BOUND] if key in _BOUND_KEYS else REASONS[CADENCE] if key in _CADENCE_KEYS else None


def default_unused(cls: str, name: str, mods: Iterable[_Module]) -> str | None:
    """Why a class field's default value does not matter: every place that builds the class
    (``cls(...)``) passes the field by keyword. None when it may be used (no call seen, or
    a call with positional or ``**`` arguments). Pure."""
    calls = 0
    for m in mods:
        for n in m.calls.get(cls, ()):
            if n.args or any(kw.arg is None for kw in n.keywords):
                return None
            if not any(kw.arg == name for kw in n.keywords):
                return None
            calls += 1
    return f"its default is never used: every {cls}(...) sets {name}" if calls else None


def set_by_config(field: str, keys: Iterable[str], texts: Iterable[str] = ()) -> str | None:
    """Why a class's default does not matter: a framework builds the class from a config
    file (``LightningCLI(LitClassifier, ...)``, a ``_target_:`` or ``class_path:`` naming it
    in ``texts``), and that file has a key of the same name in a section (``model: lr:``),
    whose value is passed in place of the default (a newcomer's trial searched
    ``LitClassifier.lr`` beside ``model.lr``, and the ablation credited a keep to the dead
    one). ``keys``: the config files' knobs (``model.lr``; ``path:model.lr`` where
    qualified). None where no framework builds the class (a ``TrainConfig()`` made in code
    keeps its ``lr`` whatever a scheduler's ``warmup.lr`` says: a review), or no key. Pure."""
    cls, leaf = field.rsplit(":", 1)[-1].rsplit(".", 1) if "." in field else ("", field)
    built = re.compile(rf"\bLightningCLI\([^)]*\b{re.escape(cls)}\b|(?:_target_|class_path)[\"']?\s*[:=]\s*[\"']?"
                       rf"[\w.]*\b{re.escape(cls)}\b") if cls else None
    if built is None or not any(built.search(t) for t in texts):
        return None
    for key in keys:
        bare = key.rsplit(":", 1)[-1]
        if "." in bare and bare.rsplit(".", 1)[-1] == leaf:
            return (f"set by the config file's {bare}, which the framework passes to the class: its default is "
                    "never used")
    return None
