"""A real Ray cluster on this machine for tests, stopped with every process it started."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

class RayCluster:
    """A real Ray cluster on this machine: a head with no CPUs (so every experiment lands on
    a worker node) and ``workers`` worker nodes, each with ``cpus`` CPUs and fake custom
    ``resources`` standing in for GPUs. Its processes are found by its own temp dir and
    marker (see ``pids``) and stopped with their descendants (``ray stop`` would also stop
    clusters that are not ours).

    ``auth``: Ray's token authentication, ``"disabled"`` or ``"token"`` (a fresh token in a
    file in the cluster's temp dir, ``token_path``). Either way the mode is set explicitly
    (``RAY_AUTH_MODE``) and inherited ``RAY_ADDRESS`` / ``RAY_AUTH_*`` are dropped, so
    neither the environment nor a ``~/.ray/auth_token`` changes what the cluster does.
    A driver needs ``driver_env`` (``with cluster.driver():`` sets it in this process).

        with RayCluster(workers=1, cpus=4, resources={"fake_gpu": 4}) as cluster, cluster.driver():
            ... [runner.ray] address = cluster.address ...

    ``start`` either returns a running cluster or stops whatever it started before raising.
    """

    # Inherited settings that would point the cluster's processes (or a driver) at another
    # cluster or at another cluster's credentials: RAY_AUTH_* are Ray's token authentication
    # (RAY_AUTH_MODE, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH).
    FOREIGN_ENV = ("RAY_ADDRESS", "RAY_AUTH_")
    # Every process started by the cluster's ``ray start`` inherits this (with the cluster's
    # temp dir as value): how its processes are found once they left its process tree.
    MARKER = "AUTORESEARCH_TEST_RAY_CLUSTER"

    def __init__(self, workers: int = 1, cpus: int = 2, resources: Mapping[str, float] | None = None,
                 ray_bin: str | None = None, auth: str = "disabled"):
        import tempfile

        if auth not in ("disabled", "token"):
            raise ValueError(f"auth must be 'disabled' or 'token', not {auth!r}")
        self.workers = workers
        self.cpus = cpus
        self.resources = dict(resources or {})
        self.auth = auth
        self.ray = ray_bin or str(Path(sys.executable).with_name("ray"))
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ar-ray-", dir="/tmp"))  # socket paths must stay short
        self.token_path: Path | None = None
        if auth == "token":
            import os
            import secrets

            self.token_path = self.temp_dir / "auth_token"
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = _free_port()
        self.client_address = f"ray://127.0.0.1:{self.client_port}"  # Ray Client (a driver elsewhere)
        self._seen: dict[int, int] = {}  # pid -> start time of every process found as ours

    @property
    def driver_env(self) -> dict[str, str]:
        """What a driver's environment needs to talk to this cluster (with any other
        ``RAY_AUTH_*`` unset: ``RAY_AUTH_TOKEN`` would win over the token file)."""
        if self.auth == "token":
            return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}
        return {"RAY_AUTH_MODE": "disabled"}

    def driver_environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A whole environment for a driver subprocess: ``base`` (default: this process's)
        without inherited ``RAY_ADDRESS`` / ``RAY_AUTH_*``, plus ``driver_env``."""
        import os

        env = os.environ if base is None else base
        return {**{k: v for k, v in env.items() if not k.startswith(self.FOREIGN_ENV)}, **self.driver_env}

    def _env(self) -> dict[str, str]:
        import os

        # a loaded 2-core machine can take more than Ray Client's default 30 s to start the
        # server process of a client connection
        return {**self.driver_environ(), "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120",
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
                self.MARKER: str(self.temp_dir)}

    def _ray(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> None:
        import subprocess

        try:
            proc = subprocess.run([self.ray, *args], env={**self._env(), **(env or {})}, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            raise RuntimeError(f"ray {' '.join(args)} did not finish within {timeout:g} s:\n{out[-3000:]}\n"
                               f"{err[-3000:]}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

    def start(self) -> "RayCluster":
        """Start the head and the workers. When any of it fails, every process started so
        far is stopped (and the temp dir removed) before the error propagates."""
        try:
            self._ray("start", "--head", "--port", str(self.port), "--num-cpus", "0", "--include-dashboard=false",
                      "--ray-client-server-port", str(self.client_port), *self._common())
            for _ in range(self.workers):
                self.add_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def _common(self) -> list[str]:
        return ["--node-ip-address", "127.0.0.1", "--temp-dir", str(self.temp_dir), "--disable-usage-stats"]

    def add_worker(self) -> None:
        self._ray("start", "--address", self.address, "--num-cpus", str(self.cpus),
                  "--resources", json.dumps(self.resources), *self._common())

    def pids(self) -> list[int]:
        """Every live process of this cluster, head and workers: those whose command line
        names its temp dir (gcs_server, raylet, dashboard, monitors: every node runs with
        ``--temp-dir``, its session dir under it), whose stdout or stderr is a file under it
        (``ray::`` workers log into the session dir), or whose environment carries its
        marker (inherited from ``ray start``, also by a process that left the tree, like a
        run's detached guardian); all their descendants (agents, whose command line and
        environment Ray's setproctitle overwrites); and any process found so before that
        still lives (one orphaned when its raylet died)."""
        import os

        from ..runners.proctree import descendants, process_table

        table = process_table()  # zombies are left out: dead already
        needle = str(self.temp_dir)
        marker = f"{self.MARKER}={needle}".encode()
        roots = set()
        for pid in table:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle.encode() in f.read():
                        roots.add(pid)
                        continue
                if any(self._link(f"/proc/{pid}/fd/{fd}").startswith(needle + "/") for fd in (1, 2)):
                    roots.add(pid)
                    continue
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        roots.add(pid)
            except OSError:
                pass
        found = roots | descendants(table, roots)
        found.discard(os.getpid())
        for pid in found:
            self._seen.setdefault(pid, table[pid][1])
        alive = {pid for pid, start in self._seen.items() if pid in table and table[pid][1] == start}
        alive.discard(os.getpid())
        return sorted(alive)

    def stop(self) -> list[int]:
        """Stop every process of the cluster (``pids``); returns those still alive after
        (should be none). Safe to call more than once, and after a failed ``start``."""
        import os
        import signal
        import time

        self._ray_shutdown()
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 3.0)):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + wait
            while self.pids() and time.monotonic() < end:
                time.sleep(0.1)
        left = self.pids()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left

    def driver(self, env: Mapping[str, str | None] | None = None) -> Any:
        """A context manager: this process as a driver of the cluster. Inside, ``driver_env``
        (updated by ``env``, where None removes a variable: a driver without the token) is in
        ``os.environ``, inherited ``RAY_ADDRESS`` / ``RAY_AUTH_*`` removed, and Ray's cached
        view of its auth settings refreshed; after, the previous values come back. Ray is
        shut down on the way in and out: a driver's auth settings count when it connects."""
        import contextlib
        import os

        wanted = {**self.driver_env, **(env or {})}

        @contextlib.contextmanager
        def session() -> Any:
            saved = {k: v for k, v in os.environ.items() if k.startswith(self.FOREIGN_ENV)}
            self._ray_shutdown()
            try:
                for k in saved:
                    del os.environ[k]
                os.environ.update({k: v for k, v in wanted.items() if v is not None})
                self._refresh_ray_auth()
                yield self
            finally:
                self._ray_shutdown()
                for k in [k for k in os.environ if k.startswith(self.FOREIGN_ENV)]:
                    del os.environ[k]
                os.environ.update(saved)
                self._refresh_ray_auth()

        return session()

    @staticmethod
    def _link(path: str) -> str:
        import os

        try:
            return os.readlink(path)
        except OSError:
            return ""

    @staticmethod
    def _ray_shutdown() -> None:
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()

    @staticmethod
    def _refresh_ray_auth() -> None:
        """Make this process's Ray read ``RAY_AUTH_*`` again: it caches the auth mode (in
        its config) and the token (in its token loader) the first time it needs them."""
        if "ray" not in sys.modules:
            return  # nothing cached yet
        try:
            from ray._raylet import AuthenticationTokenLoader, Config
        except ImportError:  # a Ray without token authentication
            return
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()

    def __enter__(self) -> "RayCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
