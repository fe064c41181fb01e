"""Search spaces of knobs: inferred from a constant's value and name, or declared in
``[proposer.knobs.space.NAME]``; in Optuna's terms, and as a grid of values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError

# a share, at most 1 (gradient boosting's subsample and colsample_bytree: a trial's 0.8 searched up to 8 crashed sklearn)
# (scikit-learn's max_features=0.5 and max_samples=0.8 too: a float there is a share; an int a count)
_RATIO = re.compile(r"RATIO|FRAC|DROPOUT|PROB|PCT|PERCENT|SHARE|SPLIT|SUBSAMPLE|COLSAMPLE|MAX_FEATURES|MAX_SAMPLES",
                    re.IGNORECASE)
_MOMENTUM = re.compile(r"BETA|MOMENTUM|EMA", re.IGNORECASE)
# a factor the learning rate is multiplied by (a scheduler's gamma, ReduceLROnPlateau's
# factor): below 1 it must stay below 1 (a newcomer's trial: gamma 0.5 searched up to 5)
_MULTIPLIER = re.compile(r"^(gamma|factor|lr_gamma|lr_factor|lr_decay|decay_rate|decay_factor)$", re.IGNORECASE)
_SEED = re.compile(r"SEED|RANDOM_STATE", re.IGNORECASE)  # scikit-learn's random_state
_BUDGET = re.compile(r"BUDGET|TIMEOUT", re.IGNORECASE)
# names that fix what the model must match, what the metric is measured on, or the machine:
# changing them breaks the run (a newcomer's Hydra trial: input_size moved in every proposal,
# 11 of 11 crashed) or changes the measurement itself, not the research
_SHAPE = re.compile(r"^(input|output)_(size|dim|features|channels)$|^(num|n)_(classes|labels|features)$|^vocab_size$"
                    r"|^in_(dim|features)$|^(image|img)_size$",
                    re.IGNORECASE)  # not out_ nor in_channels: a layer's out_channels is often a hidden width
_EVAL_SET = re.compile(r"^(n|num)_(val|valid|test|eval)(_\w+)?$|^(val|valid|test|eval)_(size|samples|examples|split|"
                       r"tokens|iters|batches|steps|episodes|rollouts|runs|trials)$|^train_(val|valid|test)\w*_split$|^limit_(val|test)_batches$"
                       r"|^(val|valid|validation|test|eval)_(batch|batch_size|bs)$"
                       r"|^(val|valid|validation|test|eval|holdout)_(size|split|frac|fraction|ratio|pct|percent|share)$"
                       r"|^train_(split|frac|fraction|ratio|pct|percent|share)$|^split_ratio$"
                       r"|^(n|num|k)_?(splits|folds)$|^(cv_)?folds$|^cv(_splits)?$|^kfolds?$",
                       re.IGNORECASE)  # train_val_test_split: the sizes of a datamodule's splits; the folds of a CV
# (an evaluation batch size changes only how the metric is computed, or, where it draws
# batches, how noisy it is)
# the data set itself: a smaller or easier one is no research (a newcomer's trial kept a
# "19.7 % better" that halved n_samples and doubled n_features); a count of samples or
# points is the data set's only where the knob belongs to the data (``ToyDataModule.n_samples``,
# ``data.num_points``): elsewhere it may be a Monte-Carlo or a NeRF sample count (a review)
_DATA_SET = re.compile(r"^dataset_size$|^(n|num)_train(_samples|_examples)?$|^train_(samples|examples)$", re.IGNORECASE)
# ... and how hard it is, where the knob belongs to the data: a synthetic set's noise (a newcomer's
# LightningCLI trial kept "5.64 % better" that halved `data.noise`), scikit-learn's class_sep and flip_y
# `data.`, `configs/data/`, `ToyDataModule.`, `DATASET.`, `traindata.`; not `MetadataEncoder.` (reviews)
_OF_DATA = re.compile(r"(?:^|[^a-zA-Z])(?:data|Data|DATA)|(?:data|DATA)(?=[._:/]|$)|[a-z]Data")
_AUGMENT = re.compile(r"aug", re.IGNORECASE)  # augmentation noise regularizes: a setting (a review)
_DATA_COUNT = re.compile(r"^(n|num)_(samples|examples|points)$|^(label_)?noise(_std|_level|_scale|_sd)?$"
                         r"|^(difficulty|class_sep|flip_y)$", re.IGNORECASE)
# the length the inputs (and so the metric) are cut to: a shorter one is another task (an HF trial
# searched max_seq_length with every knob; karpathy fixes MAX_SEQ_LEN in the readonly prepare.py)
_SEQ_LEN = re.compile(r"^(max_)?(seq|sequence)_?(len|length)$|^max_(len|length|source_length|target_length)$|^n_ctx$"
                      r"|^(block_size|context_length|context_len|ctx_len)$", re.IGNORECASE)
_MACHINE = re.compile(r"^(devices|num_workers|num_nodes|gpus|n_gpus|num_gpus|world_size)$", re.IGNORECASE)
_DATA_REASON = "the data set: a smaller or easier one is another problem, not research; declare low and high to search it"
_FROZEN_NAMES = (  # a knob whose name matches is frozen by default, for this reason
    (_SEED, "a seed"),
    (_BUDGET, "a time budget or timeout: the harness sets the budget"),
    (_SHAPE, "a shape the data fixes: the model must match it; declare low and high to search it"),
    (_EVAL_SET, "the evaluation set: the metric is measured on it; declare low and high to search it"),
    (_DATA_SET, _DATA_REASON),
    (_MACHINE, "the machine a run uses, not the research; declare low and high to search it"),
    (_SEQ_LEN, "the length the inputs and the metric are cut to: a shorter one is another task; declare low and "
               "high to search it"),
)


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
            value = 1.0 - float(param)  # a gap of 1 - 1e-16 is a beta of 0, not 2.22e-16 (the demo wrote that)
            return 0.0 if abs(value) < 1e-12 else value
        return param

    def to_param(self, value: Any) -> Any:
        """The Optuna parameter for a knob value, or None when the space cannot hold it."""
        if self.kind == "choice":
            return value if any(type(c) is type(value) and c == value for c in self.choices) else None
        if isinstance(value, (bool, str)):
            return None
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

    def user_range(self) -> tuple[float, float]:
        """(low, high) in the knob's own units (not Optuna's exponent or ``1 - x``)."""
        if self.kind == "pow2":
            return float(2 ** int(self.low)), float(2 ** int(self.high))
        if self.kind == "beta":
            return 1.0 - self.high, 1.0 - self.low
        return float(self.low), float(self.high)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log, "choices": list(self.choices)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Space":
        return cls(d["kind"], d.get("low", 0.0), d.get("high", 0.0), d.get("log", False), tuple(d.get("choices", ())))


def infer_space(name: str, value: Any, is_int: bool) -> Space | None:
    """The default space of a knob, or None when it is frozen by default (``frozen_by_value``
    says why)."""
    return _infer(name, value, is_int)[0]


def frozen_by_value(name: str, value: Any, is_int: bool) -> str | None:
    """Why a knob has no default space (None: it has one). Pure."""
    return _infer(name, value, is_int)[1]


def _infer(name: str, value: Any, is_int: bool) -> tuple[Space | None, str | None]:
    short = re.sub(r"\[\d+\]$", "", name.rsplit(".", 1)[-1].rsplit(":", 1)[-1])  # an item of a list: the list's name
    if isinstance(value, bool):
        return None, "a boolean: searched only with declared choices ([proposer.knobs.space] choices = [true, false])"
    if isinstance(value, str):
        return None, "a string: searched only with declared choices ([proposer.knobs.space] choices = [...])"
    why = next((reason for rx, reason in _FROZEN_NAMES if rx.search(short)), None)
    owner = name[:-len(short)]
    if why is None and _DATA_COUNT.search(short) and _OF_DATA.search(owner) and not _AUGMENT.search(owner):
        why = _DATA_REASON
    if why is not None:
        return None, why
    if value < 0:
        return None, "negative: declare low and high to search it"
    if value == 0:
        if not is_int and _RATIO.search(short):
            return Space("float", 0.0, 1.0), None
        return None, "zero: no scale to search around; declare low and high to search it"
    if is_int:
        if value >= 2 and value & (value - 1) == 0:
            e = value.bit_length() - 1
            return Space("pow2", max(0, e - 2), e + 2), None
        return Space("int", max(1, round(value / 3)), max(2, round(value * 3)), log=True), None
    if value <= 1 and _RATIO.search(short):
        return Space("float", 0.0, 1.0), None
    if value < 1 and _MULTIPLIER.search(short) and value < 0.5:  # StepLR's gamma 0.1: a decade down, up to 1
        return Space("float", value / 10, min(1.0, value * 10), log=True), None
    if value < 1 and (_MOMENTUM.search(short) or _MULTIPLIER.search(short)):
        gap = 1.0 - value  # a multiplier of 0 stops the learning (a newcomer's trial: StepLR's gamma 0.7 -> 0.0)
        return Space("beta", gap / 10, min(0.9 if _MULTIPLIER.search(short) else 1.0, gap * 10), log=True), None
    return Space("float", value / 10, value * 10, log=True), None


def declared_space(name: str, spec: Mapping[str, Any], value: Any, is_int: bool) -> Space:
    """A space from ``[proposer.knobs.space.NAME]``: ``choices``, or ``low``/``high`` (+ ``log``, ``int``)."""
    if "choices" in spec:
        choices = tuple(spec["choices"])
        if not choices:
            raise ConfigError(f"[proposer.knobs.space.{name}] choices is empty")
        return Space("choice", choices=choices)
    if isinstance(value, (bool, str)):
        raise ConfigError(f"[proposer.knobs.space.{name}]: {name} is a {type(value).__name__} ({value!r}); "
                          "declare choices = [...] for it")
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


def _round3(x: float) -> float:
    return float(f"{x:.3g}")


def knob_grid(space: Space, current: Any, n: int = 9) -> list[Any]:
    """``n`` values spread over a knob's space (log-spaced where the space is), rounded to 3
    significant digits, without the current value. Pure. (What a small model may choose
    from, and what the knobs proposer falls back to when its sampler repeats itself.)"""
    if space.kind == "choice":
        values: list[Any] = list(space.choices)
    elif space.kind == "pow2":
        values = [2 ** e for e in range(int(space.low), int(space.high) + 1)]
    elif space.kind == "int":
        lo, hi = int(space.low), int(space.high)
        if space.log:
            pts = [lo * (hi / lo) ** (k / (n - 1)) for k in range(n)]
        else:
            pts = [lo + (hi - lo) * k / (n - 1) for k in range(n)]
        values = sorted({int(round(x)) for x in pts})
    elif space.kind == "beta":  # 1 - gap, gaps log-spaced
        values = [_round3(1.0 - space.low * (space.high / space.low) ** (k / (n - 1))) for k in range(n)]
    elif space.log:
        values = [_round3(space.low * (space.high / space.low) ** (k / (n - 1))) for k in range(n)]
    else:  # linear: midpoints of n equal cells, so degenerate ends (a dropout of 1.0) are never offered
        values = [_round3(space.low + (space.high - space.low) * (k + 0.5) / n) for k in range(n)]
    out = []
    for v in values:
        if v != current and v not in out and space.to_param(v) is not None:
            out.append(v)
    return out
