"""``[runner] kind = "ray"``: every run is a Ray task on a cluster.

What runs where:
- The driver (this process) owns everything durable: the ledger, git, the logs under
  ``.autoresearch/``. It commits each experiment in a local worktree as usual, then sends
  a small payload: the files that differ from the campaign's first commit it saw (the
  *base*; sent once as a ``git archive`` through Ray's object store and cached per node).
- A node (``runners/remote.py``) rebuilds the worktree in a scratch directory, runs the
  command there with the local runner's guarantees, and sends back the outcome, the
  capped log, the result JSON, and any tracked file the run changed. Nodes never touch the
  ledger or git.
- The eval phase runs on the node that ran the experiment (its checkpoint is there),
  pinned by node affinity.

Infrastructure failures: a worker process or a node that dies mid-run (or an eval whose
node is gone) is retried ``[runner.ray] retries`` times (default once; Ray places the
retry, a dead node is never chosen). Then the outcome says ``infra``: the engine records the
run as an infrastructure failure and puts the experiment back in the queue; nothing counts
against the candidate. A node that cannot run the arena at all (missing data paths, a
failing ``prepare``, another autoresearch version) stops the campaign with that message.

Importing this module imports Ray; the core never does (``autoresearch[ray]``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from .. import safefs
from ..config import RayTable
from ..errors import ConfigError, InfraError
from ..records import RunOutcome
from ..runs.spec import NodeSetup, Phase, RemoteJob, RunSpec
from ..store.workspace import Workspace
from .local import log_tail
from .proctree import HARNESS_PREFIX
from .remote import NodeResult, autoresearch_run
from .watch import WatchSpec

try:
    import ray
    import ray.exceptions as rex
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError:  # pragma: no cover - exercised by the message test without ray
    ray = None  # type: ignore[assignment]

# How long past a run's own timeout the driver waits for the node to answer at all.
ANSWER_MARGIN_S = 120.0


def require_ray() -> None:
    if ray is None:
        raise ConfigError("[runner] kind = \"ray\" needs Ray: pip install 'autoresearch[ray]' "
                          "(on the driver and on every node)")


def connect(cfg: RayTable) -> None:
    """Connect to (or start) the cluster named by ``[runner.ray] address``."""
    require_ray()
    if ray.is_initialized():
        return
    address = cfg.address
    kwargs: dict[str, Any] = {"log_to_driver": False, "ignore_reinit_error": True,
                              "namespace": "autoresearch", "configure_logging": False}
    if address == "local":
        kwargs.update(address="local", include_dashboard=False)
    else:
        kwargs["address"] = address
    # Ray Client (ray://) starts a server process per connection on the head, which can fail
    # to come up in time on a loaded head: a few tries before giving up
    tries = 3 if address.startswith("ray://") else 1
    # Ray >= 2.5x: token authentication refused (ray.init raises it itself when told to use
    # a token and none is found)
    refused = getattr(rex, "AuthenticationError", None)
    errors = (ConnectionError, RuntimeError, ValueError) + ((refused,) if refused is not None else ())
    error: BaseException | None = None
    for attempt in range(tries):
        try:
            ray.init(**kwargs)
            return
        except errors as e:
            error = e
            if _auth_refused(error):
                break  # another try is refused the same way
            if attempt + 1 < tries:
                with contextlib.suppress(Exception):
                    ray.shutdown()
                time.sleep(2.0 * (attempt + 1))
    with contextlib.suppress(Exception):
        ray.shutdown()
    raise _unreachable(address, error)


def _unreachable(address: str, error: BaseException | None) -> ConfigError:
    """What to tell a user whose driver could not connect (refused for its token, or no cluster)."""
    if error is not None and _auth_refused(error):
        mode = os.environ.get("RAY_AUTH_MODE", "")
        if mode.lower() != "token":
            why = (f"this driver does not use it (RAY_AUTH_MODE is {mode!r})" if mode
                   else "this driver does not use it (RAY_AUTH_MODE is not set)")
        else:
            why = ("this driver's token (from RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or "
                   "~/.ray/auth_token) is missing or not the cluster's")
        return ConfigError(
            f"the Ray cluster at {address!r} refused this driver: it uses token authentication and {why}. "
            "Run autoresearch with RAY_AUTH_MODE=token and the cluster's token in a file named by "
            "RAY_AUTH_TOKEN_PATH (or in RAY_AUTH_TOKEN); `ray get-auth-token` on the head prints it.")
    why = _first_line(error) if error is not None else "unknown"
    return ConfigError(
        f"cannot reach a Ray cluster at {address!r}: {why}. "
        "Start one (`ray start --head` here, `ray start --address HEAD:6379` on the other machines), "
        "point [runner.ray] address (or --ray-address) at it, or use address = \"local\" to start one "
        "on this machine. If the cluster uses token authentication, set RAY_AUTH_MODE=token and "
        "RAY_AUTH_TOKEN_PATH (the file holding its token) for autoresearch.")


def _auth_refused(error: BaseException | None) -> bool:
    """Whether Ray refused the connection for its token authentication: its
    AuthenticationError, or a ConnectionError whose cause carries the GCS's answer
    ("InvalidAuthToken", "Unauthenticated": ray.init words only the address itself)."""
    refused = getattr(rex, "AuthenticationError", None)
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if (refused is not None and isinstance(error, refused)) or any(
                s in str(error) for s in ("InvalidAuthToken", "Unauthenticated", "UNAUTHENTICATED")):
            return True
        error = error.__cause__ or error.__context__
    return False


def _needs(cfg: RayTable) -> dict[str, float]:
    need = {k: float(v) for k, v in cfg.resources.items()}
    if cfg.num_cpus:
        need["CPU"] = float(cfg.num_cpus)
    if cfg.num_gpus:
        need["GPU"] = float(cfg.num_gpus)
    return need


def fitting_nodes(nodes: list[dict[str, Any]], need: dict[str, float]) -> list[str]:
    """Alive nodes whose total resources can hold one experiment. Pure."""
    return [n["NodeID"] for n in nodes
            if n.get("Alive") and all(n.get("Resources", {}).get(k, 0.0) >= v for k, v in need.items())]


class RayRunner:
    """Runs experiments as Ray tasks; see the module docstring."""

    name = "ray"

    def __init__(self, cfg: RayTable, workspace: Workspace):
        connect(cfg)
        self.cfg, self.ws = cfg, workspace
        need = _needs(cfg)
        nodes = ray.nodes()
        if not fitting_nodes(nodes, need):
            have = "; ".join(f"{n['NodeManagerAddress']}: {dict(sorted(n.get('Resources', {}).items()))}"
                             for n in nodes if n.get("Alive"))
            raise ConfigError(f"no node of the Ray cluster can hold one experiment, which needs {need} "
                              f"([runner.ray] num_cpus / num_gpus / resources). Alive nodes: {have or 'none'}")
        self._remote = ray.remote(autoresearch_run)
        self._options = dict(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, resources=dict(cfg.resources) or None,
                             max_retries=0, retry_exceptions=False, name="autoresearch_run")
        self._lock = threading.Lock()
        self._base: tuple[str, str, Any] | None = None  # (commit, tree, object ref of its tar)
        self._node_of: dict[str, str] = {}  # scratch key -> node of its last run phase
        self._last_run: dict[str, RemoteJob] = {}  # scratch key -> that run's job (for an eval retry)
        self._setup = NodeSetup(work_dir=cfg.work_dir, prepare=cfg.prepare, prepare_timeout_s=cfg.prepare_timeout_s,
                                data_paths=tuple(cfg.data_paths))

    def describe(self) -> list[str]:
        """What the user should know at the start of a campaign."""
        nodes = ray.nodes()
        alive = sum(1 for n in nodes if n.get("Alive"))
        fit = fitting_nodes(nodes, _needs(self.cfg))
        return [f"runner: Ray at {self.cfg.address} ({alive} node(s) alive, {len(fit)} can run "
                f"an experiment; each takes {_needs(self.cfg)})"]

    # -- payload -----------------------------------------------------------------------------
    def _base_for(self, commit: str) -> tuple[str, str, Any]:
        with self._lock:
            if self._base is None:
                tree = self.ws.objects.tree_of(commit)
                self._base = (commit, tree, ray.put(self.ws.archive(commit)))
            return self._base

    def job(self, spec: RunSpec) -> RemoteJob:
        """What the node needs for ``spec``: the commit's difference from the base, the
        command and its settings (without this machine's paths)."""
        r = spec.remote
        if r is None:
            raise ValueError("the Ray runner needs RunSpec.remote (build specs with runs.spec.build_run_spec)")
        base_commit, tree, _ = self._base_for(r.commit)
        files, deleted = self.ws.changed_files(base_commit, r.commit) if r.commit != base_commit else ({}, [])
        return RemoteJob(parts=r, timeout_s=spec.timeout_s, log_cap_bytes=spec.log_cap_bytes,
                         kill_grace_s=spec.kill_grace_s, limits=spec.limits, version=_version(),
                         key=f"{HARNESS_PREFIX}-{r.slot}", tree=tree, files=files, deleted=tuple(deleted),
                         node=self._setup)

    def start(self, spec: RunSpec, stop: threading.Event | None = None, watch: WatchSpec | None = None) -> "RayHandle":
        """``watch``: the run's progress to record and its early-stopping rule, applied on the
        node that runs it (the rule is plain data)."""
        return RayHandle(self, spec, stop, watch)

    def run(self, spec: RunSpec, stop: threading.Event | None = None, watch: WatchSpec | None = None) -> RunOutcome:
        return self.start(spec, stop, watch).wait()


class _Infra(Exception):
    pass


class RayHandle:
    def __init__(self, runner: RayRunner, spec: RunSpec, stop: threading.Event | None, watch: WatchSpec | None = None):
        self.runner = runner
        self.spec = spec
        self.stop = stop
        self.watch = watch.to_json() if watch is not None else None
        self.started = time.monotonic()
        self.job = runner.job(spec)
        self.key = self.job.key
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        if spec.result_file is not None:
            spec.result_file.unlink(missing_ok=True)
        if self.job.parts.phase is Phase.RUN:
            with runner._lock:
                runner._last_run[self.key] = self.job
                runner._node_of.pop(self.key, None)

    def _submit(self, job: RemoteJob, node: str | None) -> Any:
        options = dict(self.runner._options)
        if node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        watch = self.watch if job.parts.phase is Phase.RUN else None
        return self.runner._remote.options(**options).remote(job, [self.runner._base[2]], watch)  # type: ignore[index]

    def _await(self, ref: Any) -> NodeResult | None:
        """The task's answer; None when the harness was stopped; raises _Infra when the
        cluster failed it."""
        deadline = time.monotonic() + self.spec.timeout_s + self.spec.kill_grace_s + ANSWER_MARGIN_S
        while True:
            ready, _ = ray.wait([ref], timeout=0.2)
            if ready:
                try:
                    res = ray.get(ref)
                except rex.TaskCancelledError:
                    return None
                except rex.RayTaskError as e:  # our task code raised: the node is broken, not the candidate
                    raise _Infra(f"the task failed on the node: {_first_line(e)}") from None
                except rex.RayError as e:
                    raise _Infra(f"{type(e).__name__}: {_first_line(e)}") from None
                if res.setup_error:
                    raise InfraError(res.setup_error)
                if res.lost:
                    raise _Infra(res.lost)
                return res
            if self.stop is not None and self.stop.is_set():
                ray.cancel(ref)  # KeyboardInterrupt in the task: the local runner kills the run's tree
                try:
                    ray.get(ref, timeout=self.spec.kill_grace_s + 10)
                except rex.GetTimeoutError:
                    ray.cancel(ref, force=True)  # the worker dies; the node's guardian kills what is left
                except Exception:
                    pass
                return None
            if time.monotonic() > deadline:
                ray.cancel(ref, force=True)
                raise _Infra(f"no answer from the node {ANSWER_MARGIN_S:g} s after the run's timeout")

    def wait(self) -> RunOutcome:
        spec, runner = self.spec, self.runner
        problems: list[str] = []
        while True:
            try:
                if self.job.parts.phase is Phase.EVAL:
                    res = self._eval_once(rerun=bool(problems))
                else:
                    res = self._await(self._submit(self.job, None))
                    if res is not None:
                        with runner._lock:
                            runner._node_of[self.key] = res.node_id
                break
            except _Infra as e:
                problems.append(str(e))
                if len(problems) > runner.cfg.retries:
                    return self._infra_outcome(problems)
        if res is None:
            return self._interrupted_outcome()
        return self._outcome(res, spec, problems)

    def _eval_once(self, rerun: bool) -> NodeResult | None:
        """The eval, on the node that ran the experiment. When that node (or the worktree
        on it) is gone, the run is done again elsewhere first and its log replaces the old."""
        with self.runner._lock:
            node = self.runner._node_of.get(self.key)
            run_job = self.runner._last_run.get(self.key)
        if rerun or node is None:
            if run_job is None:
                raise _Infra("the eval has no run to follow")
            res = self._await(self._submit(run_job, None))
            if res is None:
                return None
            if res.exit_code != 0:
                raise _Infra(f"the run, done again on another node, ended with exit code {res.exit_code}")
            node = res.node_id
            with self.runner._lock:
                self.runner._node_of[self.key] = node
            self._write_back(res, self.spec.top, None)
        try:
            return self._await(self._submit(self.job, node))
        except _Infra:
            with self.runner._lock:
                self.runner._node_of.pop(self.key, None)
            raise

    def _write_back(self, res: NodeResult, root: Path, log_path: Path | None) -> None:
        """Bring the node's side effects home: changed tracked files into the local
        worktree (so the readonly check sees runtime writes), and the log."""
        for rel, data in res.changed.items():
            target = root / rel
            if not target.resolve().is_relative_to(root.resolve()):
                continue
            if data is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                safefs.write_file(target, data)
        if log_path is not None:
            safefs.write_file(log_path, res.log)

    def _outcome(self, res: NodeResult, spec: RunSpec, problems: list[str]) -> RunOutcome:
        self._write_back(res, spec.top, spec.log_path)
        if problems:
            safefs.write_file(spec.log_path, f"\n[autoresearch: retried on node {res.host} after: {'; '.join(problems)}]\n".encode(),
                              append=True)
        if spec.result_file is not None and res.result_json is not None:
            spec.result_file.parent.mkdir(parents=True, exist_ok=True)
            safefs.write_file(spec.result_file, res.result_json.encode())
        return RunOutcome(
            exit_code=res.exit_code, timed_out=res.timed_out, interrupted=res.interrupted,
            duration_s=res.duration_s, log_path=str(spec.log_path), log_tail=log_tail(spec.log_path),
            log_bytes=res.log_bytes, result_json=res.result_json, limit=res.limit, peak_rss_mb=res.peak_rss_mb,
            progress=res.progress, stopped_early_at=res.stopped_early_at, stopped_reason=res.stopped_reason,
        )

    def _infra_outcome(self, problems: list[str]) -> RunOutcome:
        text = "\n".join(f"[autoresearch: try {i + 1} failed: {p}]" for i, p in enumerate(problems))
        safefs.write_file(self.spec.log_path, (text + "\n").encode())
        return RunOutcome(exit_code=None, timed_out=False, interrupted=False,
                          duration_s=time.monotonic() - self.started, log_path=str(self.spec.log_path),
                          log_tail=text, log_bytes=0, result_json=None,
                          infra=f"{len(problems)} tries failed; last: {problems[-1]}")

    def _interrupted_outcome(self) -> RunOutcome:
        text = "[autoresearch: the harness was stopped; the run was cancelled on its node]"
        safefs.write_file(self.spec.log_path, (text + "\n").encode())
        return RunOutcome(exit_code=None, timed_out=False, interrupted=True,
                          duration_s=time.monotonic() - self.started, log_path=str(self.spec.log_path),
                          log_tail=text, log_bytes=0, result_json=None)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _version() -> str:
    from .. import __version__

    return __version__
