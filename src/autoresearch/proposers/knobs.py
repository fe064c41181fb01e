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

import hashlib
import importlib
import math
import random
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..protocols import ProposalContext
from ..records import Experiment, Goal, Proposal, Status
from .knob_code import Knob, code_signature, describe, find_knobs, format_value, render_edits, written_value
from .knob_space import Space, declared_space, infer_space, knob_grid

__all__ = ["KnobsProposer", "Knob", "Space", "code_signature", "declared_space", "describe", "find_knobs",
           "format_value", "infer_space", "knob_grid", "make_sampler", "render_edits", "written_value"]



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
    stop_reason: str | None = None

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
        spaces, current = self._spaces(context.history, knobs, inferred)
        study = optuna.create_study(direction="minimize" if context.goal is Goal.MINIMIZE else "maximize")
        dists = {n: s.distribution() for n, s in spaces.items()}
        trials = self._trials(context.history, spaces, dists, current, signature, context.incumbent_metric)
        study.add_trials(trials)
        # tried, and still waiting or running (pipelined, or other slots): taken already
        in_flight = _in_flight(context.history, signature)
        taken = {tuple(sorted(t.params.items())) for t in trials} | in_flight
        n = len(trials) + len(in_flight)
        found = self._sample(study, dists, knobs, spaces, current, n, taken) or \
            self._untried_grid_point(knobs, spaces, current, n, taken)
        if found is None:
            self.stop_reason = ("the knobs search space is exhausted: every value on its grid was tried around the "
                                "incumbent; widen [proposer.knobs.space] or choose another proposer")
            return None
        changes, params = found
        names = sorted(spaces)
        return Proposal(
            description=describe(knobs, changes), edits=render_edits(knobs, changes), proposer=self.name,
            meta={"knobs": {
                "params": params, "signature": signature, "sampler": self.sampler, "trial": n,
                "spaces": {nm: s.as_dict() for nm, s in spaces.items()},
                "parent": {"params": {nm: spaces[nm].to_param(current[nm]) for nm in names},
                           "metric": context.incumbent_metric},
            }},
        )

    def _spaces(self, history: Sequence[Experiment], knobs: Sequence[Knob],
                inferred: Mapping[str, Space]) -> tuple[dict[str, Space], dict[str, Any]]:
        """The search spaces (fixed by the campaign's first knobs proposal, stored with it)
        and the knobs' current values."""
        spaces = dict(inferred)
        for e in history:
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
        return spaces, current

    def _sample(self, study: Any, dists: Mapping[str, Any], knobs: Sequence[Knob], spaces: Mapping[str, Space],
                current: Mapping[str, Any], n: int, taken: set[tuple]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Ask the sampler (at most ``changes_per_trial`` knobs move) for an untried point."""
        import optuna

        rng = random.Random(_mix(self.seed, n, -1))
        names = sorted(spaces)
        for attempt in range(self.max_attempts):
            k = len(names) if self.changes_per_trial <= 0 else min(self.changes_per_trial, len(names))
            chosen = set(rng.sample(names, k))
            fixed = {nm: spaces[nm].to_param(current[nm]) for nm in names if nm not in chosen}
            base = make_sampler(self.sampler, _mix(self.seed, n, attempt), self.startup_trials)
            study.sampler = optuna.samplers.PartialFixedSampler(fixed, base)
            trial = study.ask(dists)
            params = dict(trial.params)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # only sampled; the real result comes from the ledger
            changes, params = _as_written(knobs, spaces, params)
            key = tuple(sorted(params.items()))
            if changes and key not in taken:
                return changes, params
            taken.add(key)
        return None

    def _untried_grid_point(self, knobs: Sequence[Knob], spaces: Mapping[str, Space], current: Mapping[str, Any],
                            n: int, taken: set[tuple]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """When the sampler keeps drawing tried points (a small space, a converged model):
        one knob moved to a grid value not tried yet, in a seeded random order."""
        rng = random.Random(_mix(self.seed, n, -2))
        moves = [(nm, v) for nm in sorted(spaces) for v in knob_grid(spaces[nm], current[nm])]
        rng.shuffle(moves)
        for nm, v in moves:
            params = {x: spaces[x].to_param(current[x]) for x in spaces}
            params[nm] = spaces[nm].to_param(v)
            changes, params = _as_written(knobs, spaces, params)
            if changes and tuple(sorted(params.items())) not in taken:
                return changes, params
        return None

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


def _as_written(knobs: Sequence[Knob], spaces: Mapping[str, Space],
                params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The changes a point makes to the code, and its params as the code will hold them
    (after rounding to the written digits)."""
    changes: dict[str, Any] = {}
    out = dict(params)
    for nm in sorted(spaces):
        knob = _knob(knobs, nm)
        written = written_value(knob, spaces[nm].to_value(params[nm]))
        if written != knob.value:
            changes[nm] = written
            held = spaces[nm].to_param(written)
            out[nm] = held if held is not None else params[nm]
        else:
            out[nm] = spaces[nm].to_param(knob.value)
    return changes, out


def _in_flight(history: Sequence[Experiment], signature: str) -> set[tuple]:
    """Points of knobs proposals on this code that have no result yet."""
    return {
        tuple(sorted(e.meta["knobs"]["params"].items()))
        for e in history
        if not e.status.terminal and isinstance(e.meta, Mapping) and isinstance(e.meta.get("knobs"), Mapping)
        and e.meta["knobs"].get("signature") == signature
    }


