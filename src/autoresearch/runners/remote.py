"""The node side of a remote run (``runners/ray.py`` calls ``execute`` inside a Ray task).

No Ray here: plain files and the local runner, so it is tested without a cluster too.

On every node, under ``work_dir`` (default ``<tmp>/autoresearch-ray``)::

    base/<tree>/          the campaign's base commit (``git archive``), extracted once per
                          node; ``[runner.ray] prepare`` runs here once (cached by a marker)
    base/<tree>.files     the tracked files of that commit (JSON)
    scratch/<key>/        one scratch directory per driver and slot: the base's tracked files
                          + the experiment's changed files - eval_only files; the run runs here
    scratch/<key>-eval/   the eval's own: the same files as committed, eval_only ones included,
                          and the run's outputs moved in (minus importable code)
    state/<key>.json      the commit a scratch worktree holds and the hashes of its tracked
                          files when the run started (outside the worktree)
    results/, logs/       per run, removed once sent back

The run gets the same guarantees as on the driver's machine (the local runner does it:
own session, timeout, whole-tree kill, log cap, limits, env allowlist) with the node's own
environment filtered by the same allowlist. What comes back: the outcome, the whole
(capped) log, the result JSON, and every tracked file the run changed or deleted, so that
the driver's readonly check sees runtime writes as if they had happened at home, and the
peak RSS of the run's processes, measured on the node.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Mapping, Sequence

from .. import safefs
from ..datafiles import covered, link_units, make_links, scan
from ..integrity import matches, move_outputs
from ..runs.spec import (Phase, Placement, RemoteJob, RemoteParts, child_env, fresh_dir, harness_venv, node_spec,
                         venv_first)
from .local import LocalRunner
from .watch import WatchSpec
from .proctree import new_run_token

CHANGED_FILE_CAP = 1 << 20  # a changed tracked file comes back whole up to this size
STALE_SCRATCH_S = 24 * 3600  # other drivers' scratch worktrees older than this are removed


class SetupError(Exception):
    """The node cannot run the arena at all (missing data, a failing prepare, a version
    mismatch). Not a crash of the candidate and not worth retrying: the campaign stops."""


def default_work_dir() -> Path:
    return Path(tempfile.gettempdir()) / "autoresearch-ray"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between the worker processes of one node."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _safe_rel(rel: str) -> str:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise SetupError(f"refusing a path outside the worktree: {rel!r}")
    return p.as_posix()


def ensure_base(work: Path, tree: str, fetch: Callable[[], bytes]) -> tuple[Path, list[str]]:
    """The base commit's files on this node, extracted once (``fetch`` returns the tar)."""
    base = work / "base" / tree
    listing = work / "base" / f"{tree}.files"
    with _locked(work / "base" / f"{tree}.lock"):
        if not listing.is_file():
            _remove(base)
            tmp = work / "base" / f"{tree}.tmp"
            _remove(tmp)
            tmp.mkdir(parents=True)
            files = []
            with tarfile.open(fileobj=io.BytesIO(fetch()), mode="r:") as tar:
                members = [m for m in tar.getmembers() if m.isfile() or m.issym() or m.isdir()]
                tar.extractall(tmp, members=members, filter="tar")
                files = sorted(_safe_rel(m.name) for m in members if m.isfile() or m.issym())
            tmp.rename(base)
            listing.write_text(json.dumps(files))
    return base, json.loads(listing.read_text())


def ensure_prepared(work: Path, tree: str, arena: Path, command: str, env: Mapping[str, str], timeout_s: float) -> None:
    """Run ``[runner.ray] prepare`` once per node and base commit; its failure is a SetupError."""
    key = hashlib.sha256(command.encode()).hexdigest()[:16]
    marker = work / "base" / f"{tree}.prepared-{key}"
    with _locked(work / "base" / f"{tree}.prepare.lock"):
        if marker.exists():
            return
        log = work / "base" / f"{tree}.prepare.log"
        with open(log, "wb") as out:
            try:
                proc = subprocess.run(["/bin/sh", "-c", command], cwd=arena, env=dict(env), stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout_s,
                                      start_new_session=True)
                code: int | str = proc.returncode
            except subprocess.TimeoutExpired:
                code = f"timeout after {timeout_s:g} s"
        if code != 0:
            tail = log.read_bytes()[-2000:].decode(errors="replace")
            raise SetupError(f"[runner.ray] prepare `{command}` failed on node {socket.gethostname()} "
                             f"(exit {code}); its log is {log}:\n{tail}")
        marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S"))


def _hash(path: Path) -> str | None:
    try:
        if path.is_symlink():
            return "link:" + os.readlink(path)
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def build_scratch(base: Path, files: list[str], scratch: Path, changed: Mapping[str, tuple[bytes, int]],
                  deleted: list[str], hidden: Sequence[str] = ()) -> dict[str, str | None]:
    """A fresh worktree: the base's tracked files (copies, never links: a run may write to
    them), then the experiment's changed files, without the ``hidden`` ones (``[arena]
    eval_only`` patterns, for a run phase). Returns the hash of every tracked file."""
    safefs.remove_tree(scratch)  # (however deep a run's leftovers go)
    scratch.mkdir(parents=True)
    gone = set(deleted)
    tracked = [f for f in files if f not in gone and not matches(f, hidden)]
    changed = {r: v for r, v in changed.items() if not matches(r, hidden)}
    for rel in tracked:
        src, dst = base / rel, scratch / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    for rel, (data, mode) in changed.items():
        dst = scratch / _safe_rel(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink():
            dst.unlink()
        dst.write_bytes(data)
        os.chmod(dst, mode & 0o777)
    names = sorted(set(tracked) | {_safe_rel(r) for r in changed})
    return {rel: _hash(scratch / rel) for rel in names}


def changed_files(scratch: Path, hashes: Mapping[str, str | None]) -> dict[str, bytes | None]:
    """Tracked files whose content differs from ``hashes`` (None: deleted). A file larger
    than CHANGED_FILE_CAP comes back truncated, with a marker: still a change."""
    out: dict[str, bytes | None] = {}
    for rel, h in hashes.items():
        p = scratch / rel
        now = _hash(p)
        if now == h:
            continue
        if now is None or not p.is_file():
            out[rel] = None
            continue
        with open(p, "rb") as f:
            data = f.read(CHANGED_FILE_CAP + 1)
        if len(data) > CHANGED_FILE_CAP:
            data = data[:CHANGED_FILE_CAP] + b"\n[autoresearch: truncated on the node]\n"
        out[rel] = data
    return out


def _remove(path: Path) -> None:
    """Best effort: what cannot be removed now is a leftover the next sweep of stale scratch
    directories tries again."""
    with contextlib.suppress(OSError):
        safefs.remove_tree(path)


def untracked_files(root: Path, tracked: set[str]) -> list[str]:
    """Files (and links) under ``root`` that are not in ``tracked``: what a run left."""
    out = []
    for dirpath, dirnames, filenames in safefs.walk(root):
        for name in filenames:  # (links to directories are listed as files: never followed)
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel not in tracked:
                out.append(rel)
    return out


def _sweep_stale(work: Path, keep: str) -> None:
    now = time.time()
    state = work / "state"
    if not state.is_dir():
        return
    for f in state.glob("*.json"):
        key = f.stem
        if key != keep and now - f.stat().st_mtime > STALE_SCRATCH_S:
            _remove(work / "scratch" / key)
            f.unlink(missing_ok=True)


@dataclass(frozen=True)
class NodeResult:
    """What a node sends back for one run phase."""

    exit_code: int | None = None
    timed_out: bool = False
    interrupted: bool = False
    duration_s: float = 0.0
    log: bytes = b""
    log_bytes: int = 0
    result_json: str | None = None
    limit: str = ""
    peak_rss_mb: float | None = None  # measured on the node by the local runner
    progress: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)  # the run's curves
    stopped_early_at: float | None = None  # the early-stopping rule stopped it here (fraction of the budget)
    stopped_reason: str = ""
    changed: Mapping[str, bytes | None] = field(default_factory=dict)  # tracked files the run changed (None: deleted)
    removed: tuple[str, ...] = ()     # outputs deleted before the eval (importable code)
    host: str = ""
    node_s: float = 0.0
    node_id: str = ""
    lost: str = ""                    # an eval that finds no directory of its run here: why
    setup_error: str = ""             # the node cannot run the arena at all: why


def provide_data(scratch: Path, parts: RemoteParts, base_arena: Path,
                 tracked: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``[arena] data`` in a scratch directory: links to the driver's copy where this node sees
    it (the same machine, or a file system every node mounts at the same path), else to the
    node's copy of the arena (where ``[runner.ray] prepare`` built it). Returns the links
    (scratch-relative) and the copies they lead to (the sandbox binds those read-only). A
    node with neither raises SetupError."""
    if not parts.data:
        return [], []
    prefix = "" if parts.rel == "." else parts.rel.rstrip("/") + "/"
    ours = {t[len(prefix):] for t in tracked if t.startswith(prefix)}
    where: dict[str, Path] = {}
    found: dict[str, Any] = {}
    for entry, driver_copy in parts.data:
        for source, shared in ((Path(driver_copy), True), (base_arena / entry, False)):
            files = scan({entry: source}) if os.path.exists(source) else None
            if files is not None and (shared or any(f not in ours for f in files)):
                where[entry] = source
                found.update(files)
                break
        else:
            raise SetupError(
                f"node {socket.gethostname()} has no {entry} ([arena] data): the driver's copy {driver_copy} is not "
                "visible here, and [runner.ray] prepare did not build it in the node's copy of the arena. Have prepare "
                "build it, or keep it on a file system every node mounts at the same path (listed in [runner.ray] "
                "data_paths)")
    units = link_units(list(where), found, ours, parts.hidden)
    targets = {u: where[e] / u[len(e) + 1:] for u in units for e in where if covered(u, [e])}
    made = make_links(scratch / parts.rel if parts.rel != "." else scratch, targets)
    return [prefix + m for m in made], [os.path.realpath(s) for s in where.values()]


def _check_node(job: RemoteJob) -> None:
    from .. import __version__

    if job.version != __version__:
        raise SetupError(f"node {socket.gethostname()} has autoresearch {__version__}, the driver "
                         f"{job.version}: install the same version on every node")
    missing = [p for p in job.node.data_paths if not Path(p).exists()]
    if missing:
        raise SetupError(f"node {socket.gethostname()} lacks {', '.join(missing)} ([runner.ray] data_paths): "
                         "mount the shared file system there, or use [runner.ray] prepare to build the data on "
                         "each node")


def execute(job: RemoteJob, fetch_base: Callable[[], bytes], watch: WatchSpec | None = None) -> NodeResult:
    """Run one phase of one experiment on this node; see the module docstring. An eval that
    finds no directory of its run here answers ``lost``; a node that cannot run the arena
    at all raises SetupError. ``watch``: the run's progress to record and its early-stopping
    rule, applied here on the node (``runners/watch.py``)."""
    t0 = time.monotonic()
    _check_node(job)
    p = job.parts
    work = Path(job.node.work_dir) if job.node.work_dir else default_work_dir()
    base, files = ensure_base(work, job.tree, fetch_base)
    base_arena = base / p.rel if p.rel != "." else base
    if job.node.prepare:
        env = child_env(os.environ, p.env_allow, {**p.extra_env, "AUTORESEARCH_ARENA_DIR": str(base_arena)})
        if p.venv_first:
            env = venv_first(env, harness_venv())
        ensure_prepared(work, job.tree, base_arena, job.node.prepare, env, job.node.prepare_timeout_s)
    run_scratch, state_file = work / "scratch" / job.key, work / "state" / f"{job.key}.json"
    removed: list[str] = []
    if p.phase is Phase.RUN:
        _sweep_stale(work, job.key)
        scratch = run_scratch
        hashes = build_scratch(base, files, scratch, job.files, list(job.deleted), p.hidden)
        links, data_ro = provide_data(scratch, p, base_arena, hashes)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"commit": p.commit, "hashes": hashes, "data": links}))
    else:
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("commit") != p.commit or not run_scratch.is_dir():
            return NodeResult(lost=f"the directory of the run is gone from node {socket.gethostname()}")
        # the eval gets a directory of its own: every tracked file as committed, the run's outputs moved in
        scratch = work / "scratch" / f"{job.key}-eval"
        hashes = build_scratch(base, files, scratch, job.files, list(job.deleted))
        _, data_ro = provide_data(scratch, p, base_arena, hashes)
        prefix = "" if p.rel == "." else p.rel.rstrip("/") + "/"
        left = untracked_files(run_scratch, {*state["hashes"], *state.get("data", [])})  # (not the data's links)
        _, removed = move_outputs(run_scratch, scratch, left, prefix)
    token = new_run_token()  # this node's harness prefix: its guardian finds the run's processes
    place = Placement(top=scratch, cwd=scratch / p.rel if p.rel != "." else scratch,
                      result_file=work / "results" / token / "result.json", log_path=work / "logs" / f"{token}.log",
                      arena=base_arena, state_dir=work / "scratch", git_dir=work / "base")
    fresh_dir(place.result_file.parent)
    try:
        spec = node_spec(job, place=place, token=token, environ=os.environ, data_ro=data_ro)
    except Exception as e:  # no bubblewrap on this node
        raise SetupError(f"node {socket.gethostname()}: {e}") from None
    try:
        out = LocalRunner(in_ray_worker=True).run(spec, watch=watch)
        log = safefs.read_regular(place.log_path, 1 << 40) or b""
    finally:
        place.log_path.unlink(missing_ok=True)
        _remove(place.result_file.parent)
    return NodeResult(exit_code=out.exit_code, timed_out=out.timed_out, interrupted=out.interrupted,
                      duration_s=out.duration_s, log=log, log_bytes=out.log_bytes, result_json=out.result_json,
                      limit=out.limit, peak_rss_mb=out.peak_rss_mb, changed=changed_files(scratch, hashes), removed=tuple(removed),
                      host=socket.gethostname(), node_s=time.monotonic() - t0, progress=out.progress,
                      stopped_early_at=out.stopped_early_at, stopped_reason=out.stopped_reason)


def autoresearch_run(job: RemoteJob, base: list[Any], watch: dict[str, Any] | None = None) -> NodeResult:
    """The Ray task (process title ``ray::autoresearch_run``). It lives here, not in
    ``ray.py``, so that a worker process imports only this light module, not the driver's
    (pydantic, git): a fresh worker answers its first task sooner."""
    import dataclasses

    import ray

    try:
        out = execute(job, lambda: ray.get(base[0]), WatchSpec.from_json(watch) if watch else None)
    except SetupError as e:
        return NodeResult(setup_error=str(e))
    return dataclasses.replace(out, node_id=ray.get_runtime_context().get_node_id())
