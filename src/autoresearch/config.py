"""Arena configuration: ``autoresearch.toml`` or ``[tool.autoresearch]`` in ``pyproject.toml``.

Validation is strict: an unknown key or a bad value is an error that names the key and the
file. Command-line overrides are applied to the raw tables before validation, so they are
checked by the same rules and errors name the flag's key.
"""

from __future__ import annotations

import copy
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config_hints import close_key, repattern_metric, toml_hint
from .errors import ConfigError
from .integrity import matches
from .layout import infer_config, layout_files, with_layout
from .metrics import check_pattern, check_pattern_names
from .records import Goal
from .slots import cpu_count, parse_slots
from .survey import zero_config_refusal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "autoresearch.toml"
PROPOSER_KINDS = ("knobs", "llm", "hybrid", "agent", "scripted")


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_relative_path(value: str) -> str:
    """A path inside the arena: relative, no ``..``, not under ``.git``."""
    if not value or value.strip() != value:
        raise ValueError(f"{value!r} is not a usable path")
    p = PurePosixPath(value.replace("\\", "/"))
    if p.is_absolute():
        raise ValueError(f"{value!r} is absolute; give a path relative to the arena directory")
    if ".." in p.parts:
        raise ValueError(f"{value!r} leaves the arena directory")
    if p.parts and p.parts[0] == ".git":
        raise ValueError(f"{value!r} is inside .git")
    return p.as_posix()


class ArenaTable(_Table):
    editable: list[str] = Field(min_length=1)
    readonly: list[str] = []
    program: str | None = None
    run: str
    eval: str | None = None
    time_budget_s: float = Field(default=300.0, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    eval_timeout_s: float | None = Field(default=None, gt=0)
    protected: list[str] = []  # module-level names in editable files that proposals may not change
    # files only the eval may read (validation data): absent from the run's worktree, and
    # hidden from the run by the sandbox; patterns relative to the arena (fnmatch, or a directory)
    eval_only: list[str] = []
    # untracked files runs need (a gitignored dataset next to the code): linked into every run
    # directory at the same path, read-only under bwrap (datafiles.py); checked to exist by `run`
    data: list[str] = []

    @field_validator("editable", "readonly", "eval_only")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [check_relative_path(x) for x in v]

    @field_validator("data")
    @classmethod
    def _data(cls, v: list[str]) -> list[str]:
        out = [check_relative_path(x) for x in v]
        for p in out:
            if p == ".":
                raise ValueError("'.' is the whole arena; list the directories or files git does not hold")
            if {".git", ".autoresearch"} & set(PurePosixPath(p).parts):
                raise ValueError(f"{p!r} is inside .git or .autoresearch")
        twice = sorted({p for p in out if out.count(p) > 1})
        if twice:
            raise ValueError(f"{twice} listed twice")
        nested = [(a, b) for a in out for b in out if b.startswith(a + "/")]
        if nested:
            raise ValueError(f"{nested[0][1]!r} is inside {nested[0][0]!r}: list one of them")
        return out

    @field_validator("program")
    @classmethod
    def _program(cls, v: str | None) -> str | None:
        return None if v is None else check_relative_path(v)

    @field_validator("run", "eval")
    @classmethod
    def _command(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("the command is empty")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ArenaTable":
        both = sorted(set(self.editable) & set(self.readonly))
        if both:
            raise ValueError(f"{both} listed as both editable and readonly")
        if self.eval_only and not self.eval:
            raise ValueError("eval_only needs an eval command: without one the run itself reports the metric, "
                             "and it could not see the data it is scored on")
        clash = sorted(p for p in self.eval_only if any(matches(e, [p]) for e in self.editable))
        if clash:
            raise ValueError(f"eval_only {clash} covers editable files")
        held = sorted(set(self.data) & {*self.editable, *self.readonly, *([self.program] if self.program else [])})
        if held:
            raise ValueError(f"data {held} also listed as editable, readonly or program: files git holds are in "
                             "every run directory already")
        if self.timeout_s is not None and self.timeout_s < self.time_budget_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s:g}) is shorter than time_budget_s "
                f"({self.time_budget_s:g}); the hard timeout must leave room for the budget"
            )
        return self

    @property
    def hard_timeout_s(self) -> float:
        # karpathy kills a 5-minute run at 10 minutes: twice the budget plus start-up slack.
        return self.timeout_s if self.timeout_s is not None else 2 * self.time_budget_s + 60

    @property
    def hard_eval_timeout_s(self) -> float:
        return self.eval_timeout_s if self.eval_timeout_s is not None else self.hard_timeout_s


class MetricTable(_Table):
    name: str
    goal: Goal = Goal.MINIMIZE
    min: float | None = None   # a value outside [min, max] is a crash (a broken or gamed evaluation)
    max: float | None = None
    pattern: Annotated[str, AfterValidator(check_pattern)] | None = None  # the target as printed: 'val loss ([0-9.]+)'
    patterns: dict[str, Annotated[str, AfterValidator(check_pattern)]] = {}  # other metrics as printed: name = regex

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.\-/]*", v):
            raise ValueError(f"{v!r} is not a metric name (letters, digits, _ . - /)")
        return v

    @model_validator(mode="after")
    def _pattern_names(self) -> "MetricTable":
        return check_pattern_names(self.name, self.patterns) or self  # ValueError: what is wrong, and the fix


class ScriptedTable(_Table):
    proposals: str | None = None


class KnobSpaceTable(_Table):
    low: float | None = None
    high: float | None = None
    log: bool = False
    int: bool | None = None
    choices: list[float | int | str | bool] | None = None

    @model_validator(mode="after")
    def _shape(self) -> "KnobSpaceTable":
        if self.choices is None and (self.low is None or self.high is None):
            raise ValueError("give low and high, or choices")
        if self.choices is not None and self.choices == []:
            raise ValueError("choices is empty")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low is not None and self.low <= 0:
            raise ValueError("a log scale needs low > 0")
        return self


class KnobsTable(_Table):
    sampler: Literal["auto", "tpe", "cmaes", "gp", "random"] = "auto"  # auto: proposers/knob_strategy.py
    seed: int = 0
    changes_per_trial: int = Field(default=2, ge=0)  # 0: every knob may change at once
    startup_trials: int = Field(default=4, ge=0)
    freeze: list[str] = []
    only: list[str] = []
    space: dict[str, KnobSpaceTable] = {}
    # expressions every proposal must satisfy, over knob names and the constants of the
    # arena's Python files, e.g. "TOTAL_BATCH_SIZE % (DEVICE_BATCH_SIZE * MAX_SEQ_LEN) == 0"
    constraints: list[str] = []


class LLMTable(_Table):
    provider: Literal["openai", "anthropic"] = "openai"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None          # default OPENAI_API_KEY / ANTHROPIC_API_KEY
    mode: Literal["edits", "knobs"] = "edits"  # knobs: JSON values for the constants (small models)
    # how knobs mode asks for schema-constrained JSON: OpenAI's "json_schema" response
    # format, or "json_object" with a "schema" (llama-cpp-python's server)
    json_format: Literal["json_schema", "json_object"] = "json_schema"
    knobs_offer: int = Field(default=3, ge=0)         # knobs mode: constants offered per proposal (0: all)
    seed: int = 0                                     # knobs mode: which constants are offered
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=2048, ge=16)      # per reply
    timeout_s: float = Field(default=120.0, gt=0)     # per request
    max_attempts: int = Field(default=5, ge=1)        # HTTP attempts (429/5xx/timeouts retried)
    retries: int = Field(default=2, ge=0)             # corrected replies asked for after unusable ones
    repair_attempts: int = Field(default=1, ge=0)     # fixes asked for after a crash, per idea
    history: int = Field(default=20, ge=0)            # non-kept experiments shown (kept ones always)
    readonly_chars: int = Field(default=6000, ge=0)   # budget for readonly files in the prompt
    price_in: float = Field(default=0.0, ge=0)        # USD per million input tokens
    price_out: float = Field(default=0.0, ge=0)       # USD per million output tokens
    max_total_tokens: int | None = Field(default=None, ge=1)
    max_total_cost: float | None = Field(default=None, gt=0)
    on_error: Literal["stop", "knobs"] = "stop"       # when the model cannot be used at all


class AgentTable(_Table):
    command: str | None = None          # e.g. 'claude -p {prompt} --allowedTools Edit'
    timeout_s: float = Field(default=900.0, gt=0)
    key_env: str | None = None          # the one secret passed to the agent, e.g. ANTHROPIC_API_KEY
    env_allow: list[str] = []           # more environment names (globs) the agent may see
    history: int = Field(default=20, ge=0)


class HybridTable(_Table):
    knobs_trials: int = Field(default=3, ge=0)        # knobs trials on the incumbent after each LLM keep


class ProposerTable(_Table):
    kind: str | None = None
    # proposals prepared ahead while runs execute: "auto" sizes the queue from measured
    # proposer latency and run length; 0 proposes only when a slot is free
    lookahead: Literal["auto"] | int = "auto"
    scripted: ScriptedTable = ScriptedTable()
    knobs: KnobsTable = KnobsTable()
    llm: LLMTable = LLMTable()
    hybrid: HybridTable = HybridTable()
    agent: AgentTable = AgentTable()

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in PROPOSER_KINDS:
            raise ValueError(f"{v!r} is not a proposer kind; choose one of {', '.join(PROPOSER_KINDS)}")
        return v

    @field_validator("lookahead")
    @classmethod
    def _lookahead(cls, v: str | int) -> str | int:
        if isinstance(v, int) and v < 0:
            raise ValueError("lookahead is \"auto\" or a number of proposals >= 0")
        return v


class JudgeTable(_Table):
    policy: Literal["greedy", "confirm"] = "confirm"
    alpha: float = Field(default=0.05, gt=0, lt=0.5)   # one-sided level of the keep test
    min_effect: float = Field(default=0.0, ge=0)      # improvement (metric units) a keep must beat
    baseline_runs: int = Field(default=8, ge=2)       # runs of the baseline that calibrate the noise
    max_runs: int = Field(default=6, ge=1)            # runs of one candidate at most
    remeasure_every: int = Field(default=10, ge=0)    # re-run the incumbent after this many candidates
    suspicious_sigma: float = Field(default=10.0, ge=0)  # larger improvements get extra runs and a flag (0: off)
    early_stop: Literal["auto", "off"] = "auto"       # stop clearly worse candidates (docs/early-stopping.md)
    early_stop_min_fraction: float = Field(default=0.1, ge=0.05, le=0.95)  # never before this fraction of the budget
    early_stop_margin: float | None = Field(default=None, gt=0, le=1)  # relative; default 0.05 (confirm: and 4 sd)
    early_stop_early_margin: float = Field(default=0.2, gt=0, le=1)  # the margin before 30 % of the budget
    early_stop_late_margin: float = Field(default=0.03, gt=0, le=1)  # the margin from 50 % on (at most the margin)


class LimitsTable(_Table):
    memory_mb: float | None = Field(default=None, gt=0)
    file_size_mb: float | None = Field(default=None, gt=0)
    nproc: int | None = Field(default=None, ge=1)
    nofile: int | None = Field(default=None, ge=16)
    disk_mb: float | None = Field(default=None, gt=0)
    cgroups: bool = True   # use cgroups where the machine allows (false: rlimits only)


class RayTable(_Table):
    address: str = "auto"            # "auto" (RAY_ADDRESS or a cluster started on this machine),
                                     # "local" (start one here), "host:port" or "ray://host:port"
    num_cpus: float = Field(default=1, ge=0)   # per experiment
    num_gpus: float = Field(default=0, ge=0)   # per experiment (Ray sets CUDA_VISIBLE_DEVICES)
    resources: dict[str, float] = {}           # custom resources per experiment
    work_dir: str = ""               # on every node: arena copies and scratch worktrees
                                     # (default: <tmp>/autoresearch-ray)
    prepare: str = ""                # run once per node in its copy of the arena, cached
    prepare_timeout_s: float = Field(default=3600, gt=0)
    data_paths: list[str] = []       # paths every node must have (a shared file system)
    retries: int = Field(default=1, ge=0)      # a run whose worker or node died is retried this often


class RunnerTable(_Table):
    @field_validator("slots")
    @classmethod
    def _slots(cls, v: int | str | list[str]) -> int | str | list[str]:
        parse_slots(v, cpu_count())  # raises ValueError naming the bad entry
        return v


    kind: Literal["local", "ray"] = "local"
    slots: int | str | list[str] = 1  # a count, or slot descriptors (see slots.py): ["cuda:0", "cuda:1"]
    seed: int = 0
    log_cap_mb: float = Field(default=50.0, gt=0)
    kill_grace_s: float = Field(default=2.0, ge=0)
    env_allow: list[str] = []
    limits: LimitsTable = LimitsTable()
    sandbox: Literal["none", "bwrap"] = "none"   # bwrap: read-only system, no network, no ledger (see sandbox.py)
    sandbox_paths: list[str] = []                # read-only paths under the (hidden) home a run needs
    ray: RayTable = RayTable()                   # kind = "ray" (see runners/ray.py)
    run_as: str | None = None                    # a user the runs switch to when the harness is root ("nobody")
    harness_venv: bool = True                    # runs find the venv autoresearch runs from first on PATH (runs/spec.py)
    busy_load: float = Field(default=1.5, ge=0)  # load per CPU above which a run far over budget is judged anyway; 0: never

    @model_validator(mode="after")
    def _run_as(self) -> "RunnerTable":
        if self.run_as is not None and self.kind == "ray":
            raise ValueError("run_as is for local runs; on a Ray cluster start the nodes as the user runs should "
                             "have (`ray start` as that user)")
        return self

    @model_validator(mode="after")
    def _ray_slots(self) -> "RunnerTable":
        if self.kind == "ray" and not isinstance(self.slots, int):
            raise ValueError("with kind = \"ray\", slots is a number of experiments run at once; devices come "
                             "from [runner.ray] num_gpus / resources, and Ray assigns them")
        return self


class TrackingTable(_Table):
    mlflow: bool = False
    uri: str | None = None          # default: MLFLOW_TRACKING_URI, else MLflow's default
    experiment: str | None = None   # default: autoresearch/TAG


class Config(_Table):
    arena: ArenaTable
    metric: MetricTable
    proposer: ProposerTable = ProposerTable()
    judge: JudgeTable = JudgeTable()
    runner: RunnerTable = RunnerTable()
    tracking: TrackingTable = TrackingTable()


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    source: str  # "autoresearch.toml", "pyproject.toml [tool.autoresearch]", or "inferred ..."
    raw: Mapping[str, Any]
    notes: tuple[str, ...] = ()  # what a person should know (the file now says otherwise; a pattern set aside)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name} is not valid TOML: {e}{toml_hint(str(e))}. Fix the file and run again.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name} is not UTF-8 text.") from None


def read_raw_config(arena: Path) -> tuple[dict[str, Any], str] | None:
    """The raw tables and their source name, or None when the arena has no config."""
    toml_path = arena / CONFIG_FILE
    if toml_path.is_file():
        return _read_toml(toml_path), CONFIG_FILE
    pyproject = arena / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        if isinstance(tool, dict) and "autoresearch" in tool:
            table = tool["autoresearch"]
            if not isinstance(table, dict):
                raise ConfigError("pyproject.toml: [tool.autoresearch] must be a table")
            return table, "pyproject.toml [tool.autoresearch]"
    return None


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw["a"]["b"] = value`` for ``dotted == "a.b"``, creating tables as needed."""
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted}: {part} is not a table")
        node = child
    node[parts[-1]] = value


_KEY_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` from ``--set``; the value is read as TOML when it can be.
    A malformed one is a usage error (exit 2)."""
    from .errors import UsageError

    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected KEY=VALUE, e.g. --set arena.time_budget_s=30")
    key, _, value = text.partition("=")
    key = key.strip()
    bad = [p for p in key.split(".") if not _KEY_PART.fullmatch(p)]
    if not key or bad:
        what = "an empty part" if "" in bad or not key else f"the part {bad[0]!r}"
        raise UsageError(f"--set {text!r}: the key {key!r} has {what}; write TABLE.KEY=VALUE, e.g. "
                         "--set arena.time_budget_s=30")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key, parsed


def _from_command_line(loc: str, overridden: set[str]) -> bool:
    """Whether a validation error at ``loc`` comes from a command-line override: the key
    itself, a key inside it, or (an unknown key) the table the override created."""
    return any(loc == k or loc.startswith(k + ".") or k.startswith(loc + ".") for k in overridden)


def _describe_errors(err: ValidationError, source: str, overridden: set[str]) -> tuple[str, bool]:
    """The message, and whether every error came from the command line."""
    lines, all_cli = [], True
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        cli = _from_command_line(loc, overridden)
        exact = loc in overridden or e["type"] == "extra_forbidden"
        if cli and not exact:  # a check of a whole table that an override took part in
            where = f"{source}, with the command line's {', '.join(sorted(k for k in overridden if k.startswith(loc + '.')))}"
            cli = False
        else:
            where = "the command line" if cli else source
        all_cli = all_cli and cli
        if e["type"] == "extra_forbidden":
            table = ".".join(str(x) for x in e["loc"][:-1]) or "top level"
            lines.append(f"unknown key '{e['loc'][-1]}' in [{table}] ({where})" + close_key(Config, e["loc"]))
        elif e["type"] == "missing":
            whole = loc in ("arena", "metric")  # a whole table
            lines.append(f"missing key '{loc}' ({where})"
                         + ("; a config needs its [arena] and [metric] tables (docs/config.md lists their keys)"
                            if whole else ""))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg} ({where}; got {e.get('input')!r})")
    return "invalid configuration:\n  " + "\n  ".join(lines), all_cli


def validate_config(raw: Mapping[str, Any], source: str, overridden: set[str] = frozenset()) -> Config:
    """The config, or an error naming each bad key and where it came from: a usage error
    (exit 2) when the command line alone is to blame, a config error (exit 1) otherwise."""
    from .errors import UsageError

    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        message, cli = _describe_errors(e, source, set(overridden))
        raise (UsageError if cli and overridden else ConfigError)(message) from None


def load_config(arena: Path, overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Read, infer, override and validate the arena's configuration. In a karpathy/autoresearch
    layout, where a config file's ``[arena]`` or ``[metric]`` lacks a key a config needs (a
    file that only freezes a knob, say), that table is the layout's with the file's keys over
    it (``layout.with_layout``)."""
    found = read_raw_config(arena)
    if found is None:
        files = layout_files(arena)
        raw = infer_config(files, uv_on_path=shutil.which("uv") is not None)
        if raw is None:  # anything but karpathy's layout: `init` writes a config instead of guesses
            from .config_hints import above_hint

            raise ConfigError(zero_config_refusal(str(arena), CONFIG_FILE, files) + above_hint(arena))
        source = "inferred from the karpathy/autoresearch layout"
    else:
        raw, source = with_layout(arena, *found)
    raw = copy.deepcopy(raw)
    written_for = raw.get("metric", {}).get("name") if isinstance(raw.get("metric"), Mapping) else None
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    note = repattern_metric(raw, written_for, source) if "metric.pattern" not in (overrides or {}) else None
    config = validate_config(raw, source, set((overrides or {}).keys()))
    return LoadedConfig(config=config, source=source, raw=raw, notes=(note,) if note else ())
