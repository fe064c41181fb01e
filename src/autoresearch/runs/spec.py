"""A run, described completely before it starts: what to execute, where, with which
environment, limits and sandbox. One module builds every run the harness starts (campaign
runs, ablation runs) and, from a typed ``RemoteJob``, every run on a Ray node, so the
environment allowlist and the sandbox are written once.

Light on purpose (standard library only): a Ray worker imports it to rebuild a run.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from ..config import Config
    from ..slots import Slot

# Variables a training run may legitimately need. Extended by [runner] env_allow.
DEFAULT_ENV_ALLOW = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "TMPDIR",
    "PYTHONPATH", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
    "PYENV_VERSION", "UV_CACHE_DIR", "UV_PYTHON", "XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME",
    # Hugging Face's caches and offline switches: without them a run on an offline machine
    # downloads again, or fails, where the user's own shell would not
    # (TOKENIZERS_PARALLELISM never passes, even allowed: its name looks like a credential's)
    "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_OFFLINE", "HF_DATASETS_CACHE",
    "HF_EVALUATE_OFFLINE", "HF_ENDPOINT", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_CACHE",
    "CUDA_*", "NVIDIA_*", "LD_LIBRARY_PATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_*",
)
# Never passed, even when allowed by a pattern: anything that looks like a credential.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|PRIVATE|SESSION", re.I)


class Phase(str, enum.Enum):
    RUN = "run"    # the arena's run command (trains, may print the metric)
    EVAL = "eval"  # the trusted evaluator, in a directory of its own


def child_env(base: Mapping[str, str], allow: Sequence[str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a run: allowed names from ``base`` (never secret-looking ones),
    then ``extra`` (the harness's own AUTORESEARCH_* variables). Pure."""
    env = {name: value for name, value in base.items()
           if any(fnmatch.fnmatchcase(name, p) for p in allow) and not SECRET_NAME.search(name)}
    env.update(extra)
    return env


@dataclass(frozen=True)
class ResourceLimits:
    """``[runner.limits]``, and the user runs switch to (see ``runners/limits.py``)."""

    memory_mb: float | None = None
    file_size_mb: float | None = None
    nproc: int | None = None
    nofile: int | None = None
    disk_mb: float | None = None
    cgroups: bool = True  # use cgroups where the machine allows (false: rlimits only)
    run_as: tuple[int, int] | None = None  # (uid, gid) the run switches to (the harness runs as root)

    @property
    def any(self) -> bool:
        return self.run_as is not None or any(
            v is not None for v in (self.memory_mb, self.file_size_mb, self.nproc, self.nofile, self.disk_mb))


@dataclass(frozen=True)
class RunSettings:
    """How every run of a campaign is made, read from the config once."""

    run: str
    eval: str | None
    time_budget_s: float
    run_timeout_s: float
    eval_timeout_s: float
    log_cap_bytes: int = 50 << 20
    kill_grace_s: float = 2.0
    limits: ResourceLimits = ResourceLimits()
    env_allow: tuple[str, ...] = DEFAULT_ENV_ALLOW
    sandbox_paths: tuple[str, ...] | None = None  # None: no sandbox; else bwrap, with these given back read-only
    eval_only: tuple[str, ...] = ()               # validation data: the eval's only
    data: tuple[str, ...] = ()                    # [arena] data: untracked paths linked into run directories
    seed: int = 0
    wrap_here: bool = True                        # False on Ray: each node wraps its runs itself
    venv_first: bool = True                       # [runner] harness_venv: the harness's venv first on PATH
    venv: str | None = None                       # that venv here (None: none applies; see ``harness_venv``)
    busy_load: float = 1.5                        # [runner] busy_load (engine/budget.py ``busy``)

    def command(self, phase: Phase) -> str:
        return self.run if phase is Phase.RUN else (self.eval or "")

    def timeout(self, phase: Phase) -> float:
        return self.run_timeout_s if phase is Phase.RUN else self.eval_timeout_s

    @property
    def budget_text(self) -> str:
        b = self.time_budget_s
        return str(int(b)) if float(b).is_integer() else str(b)


def run_settings(config: "Config", *, check_user: bool = True) -> RunSettings:
    """The campaign's run settings from its config (``run_as`` resolved to uid/gid)."""
    a, r, lim = config.arena, config.runner, config.runner.limits
    run_as = resolve_user(r.run_as) if r.run_as is not None and check_user else None
    return RunSettings(
        run=a.run, eval=a.eval, time_budget_s=a.time_budget_s, run_timeout_s=a.hard_timeout_s,
        eval_timeout_s=a.hard_eval_timeout_s, log_cap_bytes=int(r.log_cap_mb * (1 << 20)), kill_grace_s=r.kill_grace_s,
        limits=ResourceLimits(lim.memory_mb, lim.file_size_mb, lim.nproc, lim.nofile, lim.disk_mb,
                              cgroups=lim.cgroups, run_as=run_as),
        env_allow=(*DEFAULT_ENV_ALLOW, *r.env_allow),
        sandbox_paths=tuple(r.sandbox_paths) if r.sandbox == "bwrap" else None,
        eval_only=tuple(a.eval_only), data=tuple(a.data), seed=r.seed, wrap_here=r.kind != "ray",
        venv_first=r.harness_venv, venv=harness_venv() if r.harness_venv and r.kind != "ray" else None,
        busy_load=r.busy_load,
    )


# -- the harness's virtual environment ------------------------------------------------------------

TOOL_ENV_MARKERS = ("pipx_metadata.json", "uv-receipt.toml")  # pipx / `uv tool install` environments


def harness_venv(prefix: str | None = None, base_prefix: str | None = None,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """The virtual environment the harness runs from (default: this interpreter's), when
    runs should find it first on PATH: ``.venv/bin/autoresearch run`` without activating
    the venv must not leave ``python train.py`` to the system Python. None when the
    harness is not in a venv; when the venv is a tool's own (pipx, ``uv tool``: it holds
    autoresearch, not what runs need); or when the user activated another environment
    (``VIRTUAL_ENV`` names another one: theirs is the one runs should use)."""
    import sys

    prefix = sys.prefix if prefix is None else prefix
    base_prefix = sys.base_prefix if base_prefix is None else base_prefix
    environ = os.environ if environ is None else environ
    if os.path.realpath(prefix) == os.path.realpath(base_prefix):
        return None
    if any(os.path.exists(os.path.join(prefix, m)) for m in TOOL_ENV_MARKERS):
        return None
    active = environ.get("VIRTUAL_ENV")
    if active and os.path.realpath(active) != os.path.realpath(prefix):
        return None
    return prefix


def venv_first(env: Mapping[str, str], venv: str | None) -> dict[str, str]:
    """``env`` with ``venv``'s bin directory first on PATH (once) and VIRTUAL_ENV naming it,
    as activating it would. Pure."""
    out = dict(env)
    if venv is None:
        return out
    bin_dir = os.path.join(venv, "Scripts" if os.name == "nt" else "bin")
    rest = [p for p in out.get("PATH", "").split(os.pathsep) if p and os.path.normpath(p) != os.path.normpath(bin_dir)]
    out["PATH"] = os.pathsep.join([bin_dir, *rest])
    out["VIRTUAL_ENV"] = venv
    return out


_PYTHON = re.compile(r"python(\d+(\.\d+)*)?(\.exe)?")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def interpreter(command: str, env: Mapping[str, str], cwd: Path) -> str | None:
    """The Python a command that starts with ``python``/``python3`` (or a path to one) runs:
    found on the run's PATH as the shell finds it. None for any other command, or when the
    command sets PATH itself. Pure but for looking at the file system."""
    import shlex
    import shutil

    try:
        words = shlex.split(command)
    except ValueError:
        return None
    while words and (words[0] == "env" or _ASSIGNMENT.match(words[0])):
        if words[0].startswith("PATH="):
            return None
        words = words[1:]
    if not words or not _PYTHON.fullmatch(os.path.basename(words[0])):
        return None
    first = words[0]
    if "/" in first:
        return os.path.normpath(first if os.path.isabs(first) else os.path.join(cwd, first))
    return shutil.which(first, path=env.get("PATH", ""))


def with_interpreter(reason: str, command: str, env: Mapping[str, str], cwd: Path) -> str:
    """A failed run's reason, naming the Python that ran (a module missing from the Python
    the command found is the usual cause: the wrong environment)."""
    python = interpreter(command, env, cwd)
    if python is None:
        return reason
    missing = re.search(r"No module named '?([\w.]+)", reason)
    top = missing.group(1).split(".")[0] if missing else ""
    if missing is None or (cwd / f"{top}.py").exists() or (cwd / top).is_dir():  # the project's own module: a path
        return f"{reason} (ran with {python})"  # or import problem, not the environment's (a review)
    return (f"{reason} (ran with {python}, which lacks {top}: start autoresearch with the "
            "project's environment active, whose python runs then find, or name that Python in [arena] run "
            "(`/path/to/venv/bin/python train.py`) so that a run started from cron or nohup finds it too)")


@dataclass(frozen=True)
class RemoteParts:
    """The run before it was bound to this machine's paths: what a node needs to make it."""

    command: str                      # the arena's command, before any sandbox wrapping
    commit: str                       # the commit the run directory holds
    rel: str                          # the arena's directory inside the repository ("." at its root)
    phase: Phase
    slot: int
    env_allow: tuple[str, ...]        # names the node's own environment may pass
    extra_env: Mapping[str, str]      # the harness's AUTORESEARCH_* variables
    sandbox_paths: tuple[str, ...] | None = None
    hidden: tuple[str, ...] = ()      # [arena] eval_only patterns kept from this (run) phase
    data: tuple[tuple[str, str], ...] = ()  # [arena] data: (path in the arena, the driver's copy, resolved)
    venv_first: bool = False          # [runner] harness_venv: the node's own venv first on PATH (``harness_venv``)


@dataclass(frozen=True)
class RunSpec:
    command: str
    cwd: Path
    env: Mapping[str, str]  # the complete child environment (see ``child_env``)
    timeout_s: float
    log_path: Path
    token: str  # unique per run; carried as AUTORESEARCH_RUN_TOKEN by every process of it
    result_file: Path | None = None
    log_cap_bytes: int = 50 << 20
    kill_grace_s: float = 2.0
    limits: ResourceLimits | None = None
    remote: RemoteParts | None = None

    @property
    def top(self) -> Path:
        """The run directory (the repository's files) around ``cwd`` (the arena)."""
        rel = self.remote.rel if self.remote is not None else "."
        return self.cwd if rel == "." else Path(str(self.cwd)[: -len(rel) - 1])


@dataclass(frozen=True)
class NodeSetup:
    """``[runner.ray]`` settings a node applies before any run."""

    work_dir: str = ""
    prepare: str = ""
    prepare_timeout_s: float = 3600.0
    data_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoteJob:
    """One run phase sent to a Ray node: the run's parts and the files it needs."""

    parts: RemoteParts
    timeout_s: float
    log_cap_bytes: int
    kill_grace_s: float
    limits: ResourceLimits | None
    version: str
    key: str                                    # the scratch directory's name: driver + slot
    tree: str                                   # the base commit's tree (the node caches its files)
    files: Mapping[str, tuple[bytes, int]]      # repo-relative path -> (bytes, mode) differing from the base
    deleted: tuple[str, ...]
    node: NodeSetup = field(default_factory=NodeSetup)


def harness_env(*, slot: int, seed: int, budget: str, exp_id: int, attempt: int, phase: Phase, arena: Path,
                commit: str) -> dict[str, str]:
    """The AUTORESEARCH_* variables every run gets. Pure."""
    return {
        "AUTORESEARCH_SLOT": str(slot), "AUTORESEARCH_SEED": str(seed), "AUTORESEARCH_TIME_BUDGET": budget,
        "AUTORESEARCH_EXPERIMENT_ID": str(exp_id), "AUTORESEARCH_ATTEMPT": str(attempt),
        "AUTORESEARCH_PHASE": phase.value, "AUTORESEARCH_ARENA_DIR": str(arena), "AUTORESEARCH_COMMIT": commit,
        "PYTHONUNBUFFERED": "1",
    }


@dataclass(frozen=True)
class Placement:
    """Where one run happens on this machine."""

    top: Path          # the run directory (the repository's files)
    cwd: Path          # the arena inside it
    result_file: Path
    log_path: Path
    arena: Path        # the user's checkout (AUTORESEARCH_ARENA_DIR)
    state_dir: Path    # .autoresearch (hidden from a sandboxed run)
    git_dir: Path      # the repository's git directory (hidden with eval_only data)


def build_run_spec(settings: RunSettings, *, slot: "Slot", phase: Phase, place: Placement, commit: str, seed: int,
                   exp_id: int, attempt: int, token: str, base_env: Mapping[str, str],
                   allowed: bool = False) -> RunSpec:
    """One run's spec on this machine: environment, sandbox, limits, log cap. ``allowed``:
    ``base_env`` is filtered by the allowlist already (``child_env(base, allow, {})``)."""
    fresh_dir(place.result_file.parent)  # private to this run: nothing planted there beforehand
    if settings.limits.run_as is not None and settings.wrap_here:
        grant(place.top, *settings.limits.run_as)
        grant(place.result_file.parent, *settings.limits.run_as)
    ours = harness_env(slot=slot.index, seed=seed, budget=settings.budget_text, exp_id=exp_id, attempt=attempt,
                       phase=phase, arena=place.arena, commit=commit)
    env = {**base_env, **slot.env, **ours} if allowed else child_env(base_env, settings.env_allow, {**slot.env, **ours})
    env = venv_first(env, settings.venv)
    hidden = settings.eval_only if phase is Phase.RUN else ()
    command = settings.command(phase)
    data = tuple((rel, os.path.realpath(place.arena / rel)) for rel in settings.data)
    remote = RemoteParts(command=command, commit=commit, rel=place.cwd.relative_to(place.top).as_posix(), phase=phase,
                         slot=slot.index, env_allow=settings.env_allow, extra_env=ours,
                         sandbox_paths=settings.sandbox_paths, hidden=hidden, data=data,
                         venv_first=settings.venv_first)
    if settings.sandbox_paths is not None and settings.wrap_here:
        from ..integrity import eval_only_files

        masked = [place.arena / rel for rel in eval_only_files(place.arena, hidden)]
        if hidden:
            masked.append(place.git_dir)  # git's objects hold the validation data too
        command = sandboxed(command, top=place.top, cwd=place.cwd, writable=[place.result_file.parent],
                            arena=place.arena, state_dir=place.state_dir, env=env, extra_ro=settings.sandbox_paths,
                            masked=masked, tmp_mb=settings.limits.disk_mb, as_user=settings.limits.run_as,
                            data_ro=[source for _, source in data])
    return RunSpec(command=command, cwd=place.cwd, env=env, timeout_s=settings.timeout(phase), log_path=place.log_path,
                   token=token, result_file=place.result_file, log_cap_bytes=settings.log_cap_bytes,
                   kill_grace_s=settings.kill_grace_s, limits=settings.limits, remote=remote)


def node_spec(job: RemoteJob, *, place: Placement, token: str, environ: Mapping[str, str],
              data_ro: Sequence[str] = ()) -> RunSpec:
    """The same run rebuilt on a Ray node, from the node's own environment (allowlisted) and
    the node's paths; sandboxed there when the campaign is (``data_ro``: what the run
    directory's ``[arena] data`` links lead to, bound read-only)."""
    p = job.parts
    extra = {**p.extra_env, "AUTORESEARCH_ARENA_DIR": str(place.arena)}
    env = child_env(environ, p.env_allow, extra)
    if p.venv_first:
        env = venv_first(env, harness_venv(environ=environ))
    command = p.command
    if p.sandbox_paths is not None:
        from ..integrity import eval_only_files

        masked = [place.arena / rel for rel in eval_only_files(place.arena, p.hidden)]
        command = sandboxed(command, top=place.top, cwd=place.cwd, writable=[place.result_file.parent],
                            arena=place.arena, state_dir=place.state_dir, env=env, extra_ro=p.sandbox_paths,
                            masked=masked, tmp_mb=job.limits.disk_mb if job.limits is not None else None,
                            data_ro=data_ro)
    return RunSpec(command=command, cwd=place.cwd, env=env, timeout_s=job.timeout_s, log_path=place.log_path,
                   token=token, result_file=place.result_file, log_cap_bytes=job.log_cap_bytes,
                   kill_grace_s=job.kill_grace_s, limits=job.limits)


def sandboxed(command: str, *, top: Path, cwd: Path, writable: Sequence[Path], arena: Path, state_dir: Path,
              env: Mapping[str, str], extra_ro: Sequence[str], masked: Sequence[Path], tmp_mb: float | None = None,
              as_user: tuple[int, int] | None = None, data_ro: Sequence[str] = ()) -> str:
    """``command`` inside bubblewrap (see ``runners/sandbox.py``), which ``as_user`` starts
    (``run_as``: the limits switch user before the sandbox)."""
    from ..runners.sandbox import bwrap_command, require_bwrap, user_namespaces

    bwrap = require_bwrap()
    return bwrap_command(command, bwrap=bwrap, worktree=top, cwd=cwd, writable=writable, arena=arena,
                         state_dir=state_dir, home=env.get("HOME"), path_env=env.get("PATH", ""),
                         extra_ro=extra_ro, masked=masked, tmp_mb=tmp_mb, data_ro=data_ro,
                         user_namespace=user_namespaces(bwrap, as_user))


def fresh_dir(path: Path) -> None:
    """An empty directory at ``path``: whatever was there goes (a planted file, link or
    directory; an earlier run's result). A directory already there is emptied, not
    recreated (creating one costs more than removing a file on some file systems)."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISDIR(mode):
        path.unlink()
        path.mkdir()
        return
    from .. import safefs

    with os.scandir(path) as entries:
        for e in entries:
            safefs.clear(e.path)


def resolve_user(name: str) -> tuple[int, int]:
    """``[runner] run_as``: (uid, gid) of a user name or a numeric uid."""
    import pwd

    from ..errors import ConfigError

    if os.geteuid() != 0:
        raise ConfigError(f"[runner] run_as = {name!r} needs the harness to run as root (only root can switch "
                          "users); as a normal user the runs are unprivileged already: remove run_as")
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise ConfigError(f"[runner] run_as: no user {name!r} on this machine (try \"nobody\")") from None
    if entry.pw_uid == 0:
        raise ConfigError("[runner] run_as names root: choose an unprivileged user, e.g. \"nobody\"")
    from ..store.gitobjects import trust_other_owners

    trust_other_owners()
    return entry.pw_uid, entry.pw_gid


def grant(path: Path, uid: int, gid: int) -> None:
    """Give a run's directory to the user it runs as (``run_as``), and check that the user
    can reach it at all."""
    from ..errors import ConfigError

    for parent in path.resolve().parents:
        st = parent.stat()
        if not st.st_mode & 0o001 and st.st_uid != uid and not (st.st_gid == gid and st.st_mode & 0o010):
            raise ConfigError(f"[runner] run_as: uid {uid} cannot reach {path}: {parent} is not searchable by "
                              f"others (chmod o+x {parent}, or keep the arena somewhere every user can reach)")
    os.lchown(path, uid, gid)
    from ..safefs import walk

    for root, dirs, files in walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)

