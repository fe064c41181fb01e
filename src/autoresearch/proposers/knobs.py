"""The ``knobs`` proposer: Optuna over the numeric constants of the editable files.

Knobs are module-level UPPER_CASE assignments of int/float literals (``2**19``, ``-1``,
``3e-4``, ``16 * 1024`` included) found with ``ast``. Each knob gets a search space
inferred from its value and name (or declared in ``[proposer.knobs.space.NAME]``):

- positive floats: log-uniform over a decade each side of the value;
- floats in [0, 1] named like a ratio (RATIO, FRAC, DROPOUT, PROB, ...): uniform in [0, 1];
- floats in (0, 1) named like a momentum (BETA, MOMENTUM, EMA): ``1 - x`` within a decade;
- powers of two (ints >= 2): powers of two, two doublings each side (``2**19`` stays ``2**k``);
- other positive ints: ints, log-scaled over a factor of 3 each side;
- zero, negative, boolean values and names with SEED/BUDGET/TIMEOUT are frozen by default.

How trials are made and remembered (the ledger is the truth):

- Every proposal is rebuilt from the history it is given: the baseline and every earlier
  knobs experiment become Optuna trials (keep/discard with their metric as COMPLETE;
  crash, timeout and invalid as FAIL), then the sampler, seeded with ``seed + number of
  trials``, is asked for the next one. Nothing lives only in memory, so a resumed campaign
  proposes exactly what an uninterrupted one would.
- Each proposal changes at most ``changes_per_trial`` knobs (default 2), chosen at random;
  the others keep the incumbent's values. Trials record the full vector of knob values
  they ran with, so every trial, made against whichever incumbent, is an observation of
  the same function of the knobs.
- When a kept change came from another proposer (an LLM edited the model), code outside
  the knobs differs: trials whose non-knob code (the editable files with knob values
  masked) differs from the incumbent's are left out of the study. The study's notion of
  "current code" therefore advances with the incumbent.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import math
import random
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..protocols import ProposalContext
from ..records import Experiment, FileEdit, Goal, Proposal, Status

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RATIO = re.compile(r"RATIO|FRAC|DROPOUT|PROB|PCT|PERCENT|SHARE|SPLIT")
_MOMENTUM = re.compile(r"BETA|MOMENTUM|EMA")
_FROZEN = re.compile(r"SEED|BUDGET|TIMEOUT")


@dataclass(frozen=True)
class Knob:
    name: str
    path: str
    value: float | int
    is_int: bool
    text: str  # the source text of the value expression
    line: str  # the whole source line of the assignment
    col: int  # where the value expression starts and ends in that line
    end_col: int


def _literal(node: ast.AST) -> float | int | None:
    """The value of a numeric literal expression, or None if it is anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Pow, ast.Mult, ast.Add, ast.Sub, ast.Div)):
        a, b = _literal(node.left), _literal(node.right)
        if a is None or b is None:
            return None
        try:
            if isinstance(node.op, ast.Pow):
                if abs(b) > 64:
                    return None
                return a**b
            return {ast.Mult: a * b, ast.Add: a + b, ast.Sub: a - b}.get(type(node.op), a / b if b else None)
        except (OverflowError, ZeroDivisionError):
            return None
    return None


def find_knobs(path: str, source: str) -> list[Knob]:
    """Module-level UPPER_CASE numeric constants of one Python file, in source order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    seen: dict[str, int] = {}
    found: list[Knob] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        if not _NAME.match(target):
            continue
        seen[target] = seen.get(target, 0) + 1
        v = _literal(value)
        if v is None or isinstance(v, complex) or node.lineno != node.end_lineno or not math.isfinite(v):
            continue
        line = lines[value.lineno - 1]
        # ast offsets count UTF-8 bytes; convert to str indices
        raw = line.encode()
        col = len(raw[: value.col_offset].decode())
        end = len(raw[: value.end_col_offset].decode())
        found.append(Knob(target, path, v, isinstance(v, int), line[col:end], line, col, end))
    return [k for k in found if seen[k.name] == 1]  # a name assigned twice is ambiguous


# -- search spaces ------------------------------------------------------------------------

@dataclass(frozen=True)
class Space:
    """A knob's search space. ``pow2`` spaces search the exponent."""

    kind: str  # "float" | "int" | "pow2" | "beta" | "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind in ("int", "pow2"):
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def to_value(self, param: Any) -> Any:
        if self.kind == "pow2":
            return 2 ** int(param)
        if self.kind == "beta":
            return 1.0 - float(param)
        return param

    def to_param(self, value: Any) -> Any:
        """The Optuna parameter for a knob value, or None when the space cannot hold it."""
        if self.kind == "choice":
            return value if value in self.choices else None
        if self.kind == "pow2":
            if not isinstance(value, int) or value < 1 or value & (value - 1):
                return None
            p = value.bit_length() - 1
        elif self.kind == "beta":
            p = 1.0 - float(value)
        elif self.kind == "int":
            if int(value) != value:
                return None
            p = int(value)
        else:
            p = float(value)
        return p if self.low <= p <= self.high else None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log, "choices": list(self.choices)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Space":
        return cls(d["kind"], d.get("low", 0.0), d.get("high", 0.0), d.get("log", False), tuple(d.get("choices", ())))


def infer_space(name: str, value: float | int, is_int: bool) -> Space | None:
    """The default space of a knob, or None when it is frozen by default."""
    if isinstance(value, bool) or _FROZEN.search(name) or value <= 0:
        return None
    if is_int:
        if value >= 2 and value & (value - 1) == 0:
            e = value.bit_length() - 1
            return Space("pow2", max(0, e - 2), e + 2)
        return Space("int", max(1, round(value / 3)), max(2, round(value * 3)), log=True)
    if value <= 1 and _RATIO.search(name):
        return Space("float", 0.0, 1.0)
    if value < 1 and _MOMENTUM.search(name):
        gap = 1.0 - value
        return Space("beta", gap / 10, min(1.0, gap * 10), log=True)
    return Space("float", value / 10, value * 10, log=True)


def declared_space(name: str, spec: Mapping[str, Any], value: float | int, is_int: bool) -> Space:
    """A space from ``[proposer.knobs.space.NAME]``: ``choices``, or ``low``/``high`` (+ ``log``, ``int``)."""
    if "choices" in spec:
        choices = tuple(spec["choices"])
        if not choices:
            raise ConfigError(f"[proposer.knobs.space.{name}] choices is empty")
        return Space("choice", choices=choices)
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except KeyError:
        raise ConfigError(f"[proposer.knobs.space.{name}] needs low and high, or choices") from None
    if not low < high:
        raise ConfigError(f"[proposer.knobs.space.{name}] low ({low:g}) must be below high ({high:g})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"[proposer.knobs.space.{name}] a log scale needs low > 0")
    as_int = bool(spec.get("int", is_int))
    return Space("int" if as_int else "float", int(low) if as_int else low, int(high) if as_int else high, log=log)


# -- rendering ------------------------------------------------------------------------------

def format_value(knob: Knob, value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return repr(value)
    if knob.is_int or isinstance(value, int):
        v = int(value)
        if "**" in knob.text and v >= 2 and v & (v - 1) == 0:
            return f"2**{v.bit_length() - 1}"
        return str(v)
    text = f"{float(value):.4g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text


def written_value(knob: Knob, value: Any) -> Any:
    """The value the code holds once ``value`` is written with ``format_value``."""
    if isinstance(value, (bool, str)):
        return value
    parsed = _literal(ast.parse(format_value(knob, value), mode="eval").body)
    return parsed if parsed is not None else value


def render_edits(knobs: Sequence[Knob], changes: Mapping[str, Any]) -> tuple[FileEdit, ...]:
    by_name = {k.name: k for k in knobs}
    edits = []
    for name, value in changes.items():
        k = by_name[name]
        new_line = k.line[: k.col] + format_value(k, value) + k.line[k.end_col :]
        edits.append(FileEdit(k.path, k.line, new_line))
    return tuple(edits)


def describe(knobs: Sequence[Knob], changes: Mapping[str, Any]) -> str:
    by_name = {k.name: k for k in knobs}
    return ", ".join(f"{n} {by_name[n].text} → {format_value(by_name[n], v)}" for n, v in changes.items())


def code_signature(files: Mapping[str, str], knobs: Sequence[Knob]) -> str:
    """A hash of the editable code with the knobs' values masked out."""
    h = hashlib.sha256()
    by_path: dict[str, list[Knob]] = {}
    for k in knobs:
        by_path.setdefault(k.path, []).append(k)
    for path in sorted(files):
        text = files[path]
        for k in by_path.get(path, []):
            text = text.replace(k.line, k.line[: k.col] + "<knob>" + k.line[k.end_col :], 1)
        h.update(path.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:16]


# -- the proposer ---------------------------------------------------------------------------

SAMPLERS = ("tpe", "cmaes", "gp", "random")
_SAMPLER_NEEDS = {"cmaes": ("cmaes",), "gp": ("scipy", "torch")}


def make_sampler(kind: str, seed: int, startup_trials: int) -> Any:
    import optuna

    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=startup_trials, warn_independent_sampling=False)
    if kind == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {kind!r}; choose one of {', '.join(SAMPLERS)}")


@dataclass
class KnobsProposer:
    sampler: str = "tpe"
    seed: int = 0
    changes_per_trial: int = 2
    startup_trials: int = 4
    freeze: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    spaces: Mapping[str, Mapping[str, Any]] | None = None
    name: str = "knobs"
    max_attempts: int = 25

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        import warnings

        import optuna

        missing = [m for m in _SAMPLER_NEEDS.get(self.sampler, ()) if not _importable(m)]
        if missing:
            raise ConfigError(
                f"the {self.sampler!r} sampler needs {' and '.join(missing)}: pip install {' '.join(missing)} "
                "(or pip install 'autoresearch[samplers]'), or choose --sampler tpe"
            )

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    # knobs and spaces of the incumbent code
    def knobs_and_spaces(self, files: Mapping[str, str]) -> tuple[list[Knob], dict[str, Space]]:
        knobs = [k for path in sorted(files) if path.endswith(".py") for k in find_knobs(path, files[path])]
        names = [k.name for k in knobs]
        dupes = {n for n in names if names.count(n) > 1}
        knobs = [k for k in knobs if k.name not in dupes]
        declared = dict(self.spaces or {})
        unknown = sorted(set(declared) - {k.name for k in knobs})
        if unknown:
            raise ConfigError(f"[proposer.knobs.space] names knobs that were not found in the editable files: {', '.join(unknown)}")
        spaces: dict[str, Space] = {}
        for k in knobs:
            if k.name in self.freeze or (self.only and k.name not in self.only):
                continue
            space = declared_space(k.name, declared[k.name], k.value, k.is_int) if k.name in declared else infer_space(k.name, k.value, k.is_int)
            if space is not None and space.to_param(k.value) is not None:
                spaces[k.name] = space
        return knobs, spaces

    def propose(self, context: ProposalContext) -> Proposal | None:
        import optuna

        knobs, inferred = self.knobs_and_spaces(context.files)
        if not inferred:
            raise ConfigError(
                "the knobs proposer found no tunable constants in the editable files (module-level "
                "UPPER_CASE names bound to int/float literals); declare some under [proposer.knobs.space] "
                "or choose another proposer"
            )
        signature = code_signature(context.files, knobs)
        # The space is fixed by the first knobs proposal of the campaign and stored with it.
        spaces = dict(inferred)
        for e in context.history:
            stored = e.meta.get("knobs") if isinstance(e.meta, Mapping) else None
            if stored and "spaces" in stored:
                spaces = {n: Space.from_dict(d) for n, d in stored["spaces"].items() if n in inferred}
                break
        current = {k.name: k.value for k in knobs if k.name in spaces}
        # a knob whose current value its stored space cannot hold (another proposer moved it
        # outside) is left alone this time
        spaces = {nm: sp for nm, sp in spaces.items() if sp.to_param(current[nm]) is not None}
        if not spaces:
            raise ConfigError("every knob's current value lies outside its search space; widen [proposer.knobs.space]")
        study = optuna.create_study(direction="minimize" if context.goal is Goal.MINIMIZE else "maximize")
        dists = {n: s.distribution() for n, s in spaces.items()}
        trials = self._trials(context.history, spaces, dists, current, signature, context.incumbent_metric)
        study.add_trials(trials)
        vectors = {tuple(sorted(t.params.items())) for t in trials}
        # proposals still waiting or running (pipelined, or other slots) are taken already
        in_flight = {
            tuple(sorted(e.meta["knobs"]["params"].items()))
            for e in context.history
            if not e.status.terminal and isinstance(e.meta, Mapping) and isinstance(e.meta.get("knobs"), Mapping)
            and e.meta["knobs"].get("signature") == signature
        }
        vectors |= in_flight

        n = len(trials) + len(in_flight)
        rng = random.Random(_mix(self.seed, n, -1))
        names = sorted(spaces)
        for attempt in range(self.max_attempts):
            k = len(names) if self.changes_per_trial <= 0 else min(self.changes_per_trial, len(names))
            chosen = set(rng.sample(names, k))
            fixed = {nm: spaces[nm].to_param(current[nm]) for nm in names if nm not in chosen}
            base = make_sampler(self.sampler, _mix(self.seed, n, attempt), self.startup_trials)
            sampler = optuna.samplers.PartialFixedSampler(fixed, base)
            study.sampler = sampler
            trial = study.ask(dists)
            params = dict(trial.params)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # only sampled; the real result comes from the ledger
            changes: dict[str, Any] = {}
            for nm in names:
                knob = _knob(knobs, nm)
                written = written_value(knob, spaces[nm].to_value(params[nm]))
                if written != knob.value:
                    changes[nm] = written
                    # record what the code will hold, after rounding to the written digits
                    params[nm] = spaces[nm].to_param(written) if spaces[nm].to_param(written) is not None else params[nm]
                else:
                    params[nm] = spaces[nm].to_param(knob.value)
            key = tuple(sorted(params.items()))
            if changes and key not in vectors:
                return Proposal(
                    description=describe(knobs, changes),
                    edits=render_edits(knobs, changes),
                    proposer=self.name,
                    meta={"knobs": {
                        "params": params, "signature": signature, "sampler": self.sampler, "trial": n,
                        "spaces": {nm: s.as_dict() for nm, s in spaces.items()},
                        "parent": {"params": {nm: spaces[nm].to_param(current[nm]) for nm in names},
                                   "metric": context.incumbent_metric},
                    }},
                )
            vectors.add(key)
        raise ConfigError(
            f"the knobs proposer could not find an untried change in {self.max_attempts} attempts; "
            "widen the spaces under [proposer.knobs.space] or raise changes_per_trial"
        )

    def _trials(self, history: Sequence[Experiment], spaces: Mapping[str, Space], dists: Mapping[str, Any],
                current: Mapping[str, Any], signature: str, incumbent_metric: float | None) -> list[Any]:
        """Optuna trials from the ledger's history: every knobs experiment on the same code,
        the incumbents they started from (the baseline among them), and the incumbent now."""
        from optuna.trial import TrialState, create_trial

        out: list[Any] = []
        seen: set[tuple[Any, ...]] = set()

        def add(params: Mapping[str, Any], value: float | None) -> None:
            if any(params.get(nm) is None or not _contains(dists[nm], params[nm]) for nm in spaces):
                return
            vector = {nm: params[nm] for nm in spaces}
            key = tuple(sorted(vector.items()))
            if key in seen:
                return
            seen.add(key)
            if value is not None and math.isfinite(value):
                out.append(create_trial(params=vector, distributions=dict(dists), value=value))
            else:
                out.append(create_trial(params=vector, distributions=dict(dists), state=TrialState.FAIL))

        for e in history:
            stored = e.meta.get("knobs") if isinstance(e.meta, Mapping) else None
            if not stored or stored.get("signature") != signature:
                continue
            parent = stored.get("parent") or {}
            if parent.get("metric") is not None:
                add(parent.get("params", {}), parent["metric"])
            if e.status in (Status.KEEP, Status.DISCARD) and e.metric is not None:
                add(stored["params"], e.metric)
            elif e.status in (Status.CRASH, Status.TIMEOUT, Status.INVALID):
                add(stored["params"], None)
        if incumbent_metric is not None:
            add({nm: spaces[nm].to_param(current[nm]) for nm in spaces}, incumbent_metric)
        return out

    def observe(self, experiment: Experiment) -> None:
        return None


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _mix(seed: int, trial: int, attempt: int) -> int:
    """A sampler seed for (campaign seed, trial number, attempt): independent streams, so
    campaign seeds s and s+1 do not share shifted copies of one sequence."""
    digest = hashlib.sha256(f"{seed}:{trial}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _knob(knobs: Sequence[Knob], name: str) -> Knob:
    return next(k for k in knobs if k.name == name)


def _contains(dist: Any, param: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(param)))
    except (ValueError, TypeError):
        return False
