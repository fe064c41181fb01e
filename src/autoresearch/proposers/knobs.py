"""The ``knobs`` proposer: Optuna over the numeric constants of the editable files.

Knobs are literals where people keep hyperparameters (``knob_code``: module constants,
config-only Python files, tuple elements, argparse defaults, dataclass fields, YAML/JSON/TOML
leaves). Settings that only print, pace or bound the run are frozen by how the code uses
them (``knob_usage``). Each other knob gets a search space inferred from its value and name
(or declared in ``[proposer.knobs.space."NAME"]``):

- positive floats: log-uniform over a decade each side of the value;
- floats in [0, 1] named like a ratio (RATIO, FRAC, DROPOUT, PROB, ...): uniform in [0, 1];
- floats in (0, 1) named like a momentum (BETA, MOMENTUM, EMA): ``1 - x`` within a decade;
- powers of two (ints >= 2): powers of two, two doublings each side (``2**19`` stays ``2**k``);
- other positive ints: ints, log-scaled over a factor of 3 each side;
- a zero ratio (``WARMUP_RATIO = 0.0``): uniform in [0, 1];
- other zero and negative values, seeds, budgets, shapes the data fixes, the evaluation
  set and the machine (by name: ``knob_space``) are frozen by default; strings and
  booleans are searched only through declared ``choices``.

Proposals that break a declared constraint (``[proposer.knobs] constraints``) are not made.

How trials are made and remembered (the ledger is the truth):

- Every proposal is rebuilt from the history it is given: the baseline and every earlier
  knobs experiment become Optuna trials (keep/discard with their metric as COMPLETE;
  crash, timeout and invalid as FAIL; a discard stopped early as PRUNED, with its progress
  curve as intermediate values and an estimate of where it would have ended,
  ``knob_study.stopped_estimate``), then the sampler, seeded with ``seed + number of
  trials``, is asked for the next one. Nothing lives only in memory, so a resumed campaign
  proposes exactly what an uninterrupted one would.
- The default ``sampler = "auto"`` is the portfolio of ``knob_strategy``: small moves of
  every knob around the user's values first, then a GP over every knob (seeing the values
  through ``knob_gp``'s tail warp, the one its evidence chooses), its proposals kept
  within a box around the incumbent that grows with the runs, and local moves where it
  repeats itself; its schedule is replayed from the history. Where every searched knob's
  range is declared, the GP over every knob from a uniform start over that box
  (``startup_trials``). On both, once the
  finished runs outnumber a full quadratic's coefficients, every second model proposal
  may be the minimum of a quadratic response surface through them (``knob_quad``), where
  it predicts the runs. With a named
  sampler (Optuna's own, values unwarped) each proposal changes at most
  ``changes_per_trial`` knobs (default 2), chosen at random; the others keep the
  incumbent's values. Trials record the full vector of knob values they ran with, so
  every trial, made against whichever incumbent, is an observation of the same function
  of the knobs.
- When a kept change came from another proposer (an LLM edited the model), code outside
  the knobs differs: trials whose non-knob code (the editable files with knob values
  masked) differs from the incumbent's are left out of the study. The study's notion of
  "current code" therefore advances with the incumbent.
"""

from __future__ import annotations

from collections import Counter
import hashlib
import logging
import importlib
import random
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..protocols import ProposalContext
from ..records import Experiment, Goal, Proposal
from .knob_code import (Knob, code_signature, describe, discover, find_knobs, format_value, module_constants,
                        render_edits, written_value)
from .knob_constraints import Constraint, broken, parse_constraints
from .knob_gp import estimated, evidence_available, finished, gp_view
from .knob_space import Space, declared_space, frozen_by_value, infer_space, knob_grid
from .knob_quad import surface_point
from .knob_study import IN_FLIGHT_GAP, ledger_trials, near_any, pending_points
from .knob_strategy import GLOBAL, Policy, arm_for, clip_to_region, local_point, model_box, outcomes, trust_length
from .knob_usage import default_unused, frozen_by_key, frozen_by_use, metric_words, modules, set_by_config

__all__ = ["KnobsProposer", "Knob", "Space", "code_signature", "declared_space", "describe", "find_knobs",
           "format_value", "infer_space", "knob_grid", "make_sampler", "render_edits", "written_value"]

SAMPLERS = ("auto", "tpe", "cmaes", "gp", "random")  # auto: the portfolio of knob_strategy
# what made a proposal (its meta's "source"): a named sampler; or, in the portfolio, the
# quadratic surface's minimum, the model (gp; tpe without torch), its uniform start over a
# declared box, a local move around the incumbent; or an untried grid value of one knob
SOURCES = SAMPLERS[1:] + ("surface", "start", "local", "grid")
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
    sampler: str = "auto"
    seed: int = 0
    changes_per_trial: int = 2
    startup_trials: int = 4
    freeze: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    spaces: Mapping[str, Mapping[str, Any]] | None = None
    constraints: tuple[str, ...] = ()
    metric_words: tuple[str, ...] = ()  # what a line printing the metric contains (a value printed there is used)
    run_command: str = ""  # [arena] run: an argparse option it sets has a default nobody uses
    _checks: tuple[list[Constraint], dict[str, Any]] = field(default_factory=lambda: ([], {}), init=False, repr=False)
    _surveys: dict[str, tuple[list[Knob], dict[str, Space]]] = field(default_factory=dict, init=False, repr=False)
    name: str = "knobs"
    max_attempts: int = 25
    stop_reason: str | None = None
    policy: Policy = field(default_factory=Policy)  # sampler "auto": its portfolio
    notes: list[str] = field(default_factory=list)  # what the user should know (the campaign prints them)
    _noted: set[str] = field(default_factory=set, init=False, repr=False)
    # this proposal's points in flight (waiting or running) and the spaces they lie in: a point
    # within IN_FLIGHT_GAP of one is taken (a model that has not seen its result proposes it again)
    _flight: tuple[list[dict[str, Any]], Mapping[str, Space]] = field(default_factory=lambda: ([], {}), init=False,
                                                                      repr=False)

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
        # said at import when greenlet is missing; only the GP's speed depends on it, not the results
        logging.getLogger("optuna._gp.batched_lbfgsb").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        if self.sampler == "auto" and self.policy.model == "gp":
            missing = [m for m in _SAMPLER_NEEDS["gp"] if not _importable(m)]
            if missing:
                self.policy = replace(self.policy, model="tpe")
                self.notes.append(f"knobs: {' and '.join(missing)} not installed, so the search uses TPE where it "
                                  "would use a Gaussian process (measured weaker on smooth landscapes; "
                                  f"pip install {' '.join(missing)} to use it)")
        if self.sampler == "auto" and self.policy.model == "gp" and self.policy.choose_warp and not evidence_available():
            self.policy = replace(self.policy, choose_warp=False)
            fixed = f"one fixed warp (s: the gap at quantile {self.policy.warp})" if self.policy.warp > 0 else "no warp"
            self.notes.append(f"knobs: this Optuna ({optuna.__version__}) lacks the GP internals (optuna._gp) that "
                              f"choose the GP's warp, so it sees {fixed}")

    # knobs and spaces of the incumbent code
    def survey(self, files: Mapping[str, str], readonly: Mapping[str, str] | None = None) -> tuple[list[Knob], dict[str, Space]]:
        """Every knob of the editable files (each with why it is frozen, or None) and the
        spaces of those searched. ``readonly`` files are read to see how values are used.
        (Remembered for the last few code versions: proposals on one incumbent share it.)"""
        key = hashlib.sha256(repr((sorted(files.items()), sorted((readonly or {}).items()), self.freeze, self.only,
                                   sorted((self.spaces or {}).items()), self.metric_words)).encode()).hexdigest()
        if key not in self._surveys:
            if len(self._surveys) >= 8:
                self._surveys.pop(next(iter(self._surveys)))
            self._surveys[key] = self._survey(files, readonly)
        knobs, spaces = self._surveys[key]
        return list(knobs), dict(spaces)

    def _survey(self, files: Mapping[str, str], readonly: Mapping[str, str] | None) -> tuple[list[Knob], dict[str, Space]]:
        knobs = discover(files)
        declared = dict(self.spaces or {})
        names = {k.name for k in knobs}
        for label, given in (("[proposer.knobs.space]", declared), ("[proposer.knobs] freeze", self.freeze),
                             ("[proposer.knobs] only", self.only)):
            unknown = sorted(set(given) - names)
            if unknown:
                hints = [f"{u} (did you mean {m}?)" if (m := close_knob(u, names)) else u for u in unknown]
                raise ConfigError(f"{label} names knobs that were not found in the editable files: {', '.join(hints)}; "
                                  "`autoresearch knobs` lists them")
        mods = modules({**(readonly or {}), **files}, self.metric_words)
        symbols = Counter(k.symbol for k in knobs if k.symbol)
        config_keys, texts = [k.name for k in knobs if k.syntax != "python"], [*files.values(), *(readonly or {}).values()]
        spaces: dict[str, Space] = {}
        out = []
        for k in knobs:
            why: str | None = None
            space: Space | None = None
            if self.only and k.name not in self.only:
                why = "not in [proposer.knobs] only"
            elif k.name in self.freeze:
                why = "in [proposer.knobs] freeze"
            elif k.name in declared:
                space = declared_space(k.name, declared[k.name], k.value, k.is_int)
                if space.to_param(k.value) is None:
                    zero = " (a log space cannot hold 0: declare low = 0.0 without log)" if k.value == 0 and space.log else ""
                    space, why = None, f"its value {k.text} lies outside the declared space{zero}"
            else:
                where = f"{k.path}:{k.name}"  # (its file too: configs/data/toy.yaml's n_samples is the data's)
                # a string or boolean: said as such (Hydra's `_target_` read "only printed or logged")
                why = frozen_by_value(where, k.value, k.is_int) if isinstance(k.value, (str, bool)) else None
                if why is None and k.symbol:
                    why = frozen_by_use(k.symbol, mods, shared=symbols[k.symbol] > 1)
                if why is None and k.syntax != "python" and k.symbol:
                    why = frozen_by_key(k.name)
                if why is None and k.kind == "field":
                    why = default_unused(k.name.rsplit(":", 1)[-1].split(".")[0], k.symbol, mods) or \
                        set_by_config(k.name, config_keys, texts)
                if why is None and k.kind in ("argparse", "field"):  # (HfArgumentParser's fields: flags too; a review)
                    why = _given_on_command_line(k.symbol, self.run_command)
                if why is None:
                    why = frozen_by_value(where, k.value, k.is_int)
                    space = infer_space(where, k.value, k.is_int) if why is None else None
                if space is not None and space.to_param(k.value) is None:
                    space, why = None, "its value lies outside its inferred space"
            if space is not None:
                spaces[k.name] = space
            elif k.name in self.only:
                self._note_once(f"knobs: {k.name} is in [proposer.knobs] only but is not searched: {why}")
            out.append(replace(k, frozen=why))
        return out, spaces

    def _note_once(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self.notes.append(text)

    def _constraints(self, knobs: Sequence[Knob], files: Mapping[str, str],
                     readonly: Mapping[str, str] | None) -> tuple[list[Constraint], dict[str, Any]]:
        """The compiled constraints and the values they are evaluated against now (the
        arena's constants, then every knob's current value)."""
        if not self.constraints:
            return [], {}
        env = {**module_constants({**(readonly or {}), **files}), **{k.name: k.value for k in knobs}}
        compiled = parse_constraints(self.constraints, env)
        bad = broken(compiled, env)
        if bad is not None:
            raise ConfigError(f"[proposer.knobs] constraints: {bad.text!r} does not hold for the current values; "
                              "fix the values or the constraint")
        return compiled, env

    def propose(self, context: ProposalContext) -> Proposal | None:
        import optuna

        if not self.metric_words:
            self.metric_words = metric_words(context.metric)
        knobs, inferred = self.survey(context.files, context.readonly)
        if not inferred:
            raise ConfigError(
                "the knobs proposer found no tunable constants in the editable files (`autoresearch knobs` lists "
                "what it found and why each is frozen); declare some under [proposer.knobs.space] "
                "or choose another proposer"
            )
        self._checks = self._constraints(knobs, context.files, context.readonly)
        signature = code_signature(context.files, knobs)
        spaces, current = self._spaces(context.history, knobs, inferred)
        study = optuna.create_study(direction="minimize" if context.goal is Goal.MINIMIZE else "maximize")
        dists = {n: s.distribution() for n, s in spaces.items()}
        trials = ledger_trials(context.history, spaces, dists, current, signature, context.incumbent_metric,
                               maximize=context.goal is Goal.MAXIMIZE)
        study.add_trials(trials)
        # tried, and still waiting or running (pipelined, or other slots): taken already
        in_flight = pending_points(context.history, signature)
        taken = {tuple(sorted(t.params.items())) for t in trials} | in_flight
        self._flight = ([dict(p) for p in pending_points(context.history, signature, refused=False)], spaces)
        n = len(trials) + len(in_flight)
        done = outcomes(context.history, signature) if self.sampler == "auto" else []
        declared = set(self.spaces or {})
        arm = arm_for(done, self.policy, all_declared=bool(declared) and set(spaces) <= declared) \
            if self.sampler == "auto" else None
        found = self._draw(arm, done, study, dists, knobs, spaces, current, n, taken)
        if found is None and (point := self._untried_grid_point(knobs, spaces, current, n, taken)) is not None:
            found = (*point, "grid")
        if found is None:
            self.stop_reason = ("the knobs search space is exhausted: every value on its grid was tried around the "
                                "incumbent; widen [proposer.knobs.space] or choose another proposer")
            return None
        changes, params, source = found
        names = sorted(spaces)
        values = {nm: written_value(_knob(knobs, nm), spaces[nm].to_value(params[nm])) for nm in names}
        return Proposal(
            description=describe(knobs, changes), edits=render_edits(knobs, changes), proposer=self.name,
            meta={"knobs": {
                "params": params, "values": values, "signature": signature, "sampler": self.sampler, "trial": n,
                **({"arm": arm} if arm else {}), "source": source,
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

    def _draw(self, arm: str | None, done: Sequence[tuple[str, bool | None]], study: Any, dists: Mapping[str, Any],
              knobs: Sequence[Knob], spaces: Mapping[str, Space], current: Mapping[str, Any], n: int,
              taken: set[tuple]) -> tuple[dict[str, Any], dict[str, Any], str] | None:
        """An untried point from the configured sampler, or from the portfolio's arm, with
        what made it (``SOURCES``)."""
        if arm is None:
            found = self._sample(study, dists, knobs, spaces, current, n, taken,
                                 self.sampler, self.changes_per_trial, self.startup_trials)
            return None if found is None else (*found, self.sampler)
        complete = finished(study) + (estimated(study) if self.policy.impute and self.policy.model == "gp" else 0)
        # a model that keeps proposing tried points has converged: local moves instead; and one
        # with fewer finished trials than its start-up would draw uniformly over every knob
        # (failed and in-flight trials do not count, nor pruned ones but, for the GP, those with
        # an estimate of where they would have ended): local moves until it has them;
        # except over a declared box (GLOBAL), where that uniform start is the point
        if arm == GLOBAL or (arm == "model" and complete >= self.policy.startup):
            if self.policy.surface > 0 and n % self.policy.surface == 0:
                found = self._surface(study, knobs, spaces, taken)
                if found is not None:
                    return (*found, "surface")
            startup = self.startup_trials if arm == GLOBAL else self.policy.startup
            region = model_box(self.policy, complete, len(spaces)) if arm != GLOBAL else None
            found = self._sample(study, dists, knobs, spaces, current, n, taken, self.policy.model, 0, startup,
                                 attempts=2, warp=self.policy.warp, region=region,
                                 choose_warp=self.policy.choose_warp)
            if found is not None:  # uniform while the sampler counts fewer trials than its start-up (TPE: pruned too)
                pruned = 0 if self.policy.model == "gp" else sum(t.state.name == "PRUNED" for t in study.trials)
                return (*found, "start" if complete + pruned < startup else self.policy.model)
        centre = {nm: spaces[nm].to_param(current[nm]) for nm in spaces}
        length = trust_length(done, self.policy)
        moves = self.policy.local_changes if arm != GLOBAL and self.policy.local_changes >= 0 else self.changes_per_trial
        for attempt in range(self.max_attempts):
            point = local_point(random.Random(_mix(self.seed, n, attempt)), spaces, centre, length, moves)
            changes, params = _as_written(knobs, spaces, point)
            if self._new(changes, params, taken):
                return changes, params, "local"
            taken.add(tuple(sorted(params.items())))
        return None

    def _surface(self, study: Any, knobs: Sequence[Knob], spaces: Mapping[str, Space],
                 taken: set[tuple]) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The quadratic surface's minimum (``knob_quad``) where it has one and it is untried."""
        point = surface_point(study, spaces, self.policy.surface_box, self.policy.surface_fit, self.policy.surface_gap,
                              self.policy.surface_local, self.policy.surface_pick)
        if point is None:
            return None
        changes, params = _as_written(knobs, spaces, point)
        return (changes, params) if self._new(changes, params, taken) else None

    def _sample(self, study: Any, dists: Mapping[str, Any], knobs: Sequence[Knob], spaces: Mapping[str, Space],
                current: Mapping[str, Any], n: int, taken: set[tuple], sampler: str, changes_per_trial: int,
                startup_trials: int, attempts: int | None = None, warp: float = 0.0,
                region: float | None = None, choose_warp: bool = False) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Ask the sampler (at most ``changes_per_trial`` knobs move; 0: all) for an untried
        point, brought within a box of side ``region`` around the incumbent where given; a
        GP sees the study through ``knob_gp`` (its values warped where ``warp``, or by the
        warp its evidence chooses where ``choose_warp``; runs stopped early as where they
        would have ended where that is known, and they count towards its ``startup_trials``;
        other runs stopped early, and crashes, as the worst value, which do not)."""
        import optuna

        if sampler == "gp":
            study, startup_trials = gp_view(study, startup_trials, warp, choose_warp, self.policy.impute)
        rng = random.Random(_mix(self.seed, n, -1))
        names = sorted(spaces)
        incumbent = {nm: spaces[nm].to_param(current[nm]) for nm in names}
        for attempt in range(attempts or self.max_attempts):
            k = len(names) if changes_per_trial <= 0 else min(changes_per_trial, len(names))
            chosen = set(rng.sample(names, k))
            fixed = {nm: incumbent[nm] for nm in names if nm not in chosen}
            base = make_sampler(sampler, _mix(self.seed, n, attempt), startup_trials)
            study.sampler = optuna.samplers.PartialFixedSampler(fixed, base)
            trial = study.ask(dists)
            params = dict(trial.params)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # only sampled; the real result comes from the ledger
            if region is not None:
                params = clip_to_region(spaces, incumbent, params, region)
            changes, params = _as_written(knobs, spaces, params)
            if self._new(changes, params, taken):
                return changes, params
            taken.add(tuple(sorted(params.items())))
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
            if self._new(changes, params, taken):
                return changes, params
        return None

    def _new(self, changes: Mapping[str, Any], params: Mapping[str, Any], taken: set[tuple]) -> bool:
        """Whether a point changes the code, was not tried (nor is in flight, nor next to a point
        in flight: ``IN_FLIGHT_GAP``), and keeps the constraints."""
        return bool(changes) and tuple(sorted(params.items())) not in taken \
            and not near_any(self._flight[1], params, self._flight[0], IN_FLIGHT_GAP) and self._allowed(changes)

    def _allowed(self, changes: Mapping[str, Any]) -> bool:
        """Whether a proposal keeps every declared constraint."""
        compiled, env = self._checks
        return not compiled or broken(compiled, {**env, **changes}) is None


def _given_on_command_line(dest: str, command: str) -> str | None:
    """Why an argparse option's default does not matter: the run command sets it. Pure."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for flag in {f"--{dest}", f"--{dest.replace('_', '-')}"}:
        if any(w == flag or w.startswith(flag + "=") for w in words):
            return f"set by the run command ({flag}): its default is never used"
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


def close_knob(given: str, names: set[str]) -> str | None:
    """The knob(s) a misnamed one most likely means, ``A or B`` where several fit: those
    whose last part is its last part (``epochs`` for ``TrainConfig.epochs``, ``lr`` for
    ``optimizer.lr``, ``configs/data/mnist.yaml:batch_size`` for ``data.batch_size``; a
    newcomer's trial got no hint), else close spellings. Pure."""
    import difflib
    import re

    def last(name: str) -> str:
        return re.split(r"[.:]", name)[-1]

    tails = sorted(n for n in names if last(given).isidentifier() and last(n) == last(given))
    found = tails or difflib.get_close_matches(given, sorted(names), 2)
    return " or ".join(found[:3]) if found else None
