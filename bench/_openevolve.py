"""OpenEvolve's overhead per iteration, measured the way bench/overhead.py measures ours.

OpenEvolve (pinned to 0.4.1, from PyPI) runs in a venv of its own, never in the project's:
by default `<tmpdir>/autoresearch-bench-openevolve`, or the `venv` argument, or the
AUTORESEARCH_OPENEVOLVE_VENV environment variable. It is created and filled with
`pip install openevolve==0.4.1` when it lacks that version, and reused otherwise.

One measurement starts two processes with that venv's python, each in a session of its own
so that everything they start is ended with them, on success and on failure alike:

- a fake OpenAI-compatible chat-completions server on 127.0.0.1 (stdlib http.server,
  HTTP/1.1 keep-alive, TCP_NODELAY) that answers at once with one SEARCH/REPLACE block
  turning the parent's `X = <old>` into `X = <k>`, k being its request counter, so that
  every iteration evaluates a program no earlier iteration had;
- a driver that runs OpenEvolve's own controller (`OpenEvolve(...).run()`) for `iterations`
  iterations on a 3-line program, with an evaluator whose `evaluate(program_path)` runs
  `/bin/sh -c "echo val_score: X"` as our runner spawns a run (new session, output to a
  pipe read to EOF) and returns {"combined_score": X, "val_score": X}. Afterwards the
  driver times, in the same process, the bare subprocess (the evaluator's own helper, as
  many times as there were iterations) and a chat completion to the fake server through
  OpenEvolve's own OpenAI client class, replaying the last prompt OpenEvolve sent.

Per-iteration wall time comes from timestamps the evaluator writes after each evaluation
(monotonic clock): iteration k's time is the end of evaluation k minus the end of
evaluation k-1, evaluation 0 being the initial program's. That is the same definition as
ours (time between consecutive "finish" events) and has nanosecond resolution, whereas
OpenEvolve's "completed in X.XXs" log lines have 10 ms resolution and leave out the prompt
building in the worker and the database work in the main process. The first WARMUP
iterations are discarded: they include the start of the process pool and its worker's
imports and first connection, and they are the batch OpenEvolve submits up front (one
per island, 5 islands by default) before the steady state of one submission per result.

    python bench/_openevolve.py [--iterations 50] [--venv PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPENEVOLVE_VERSION = "0.4.1"
VENV_ENV_VAR = "AUTORESEARCH_OPENEVOLVE_VENV"
WARMUP = 5
LLM_ROUNDTRIPS = 30  # timed chat completions after the run (plus 3 untimed first)

# --- files written into the temporary directory, run with the OpenEvolve venv's python ---

INITIAL_PROGRAM = '''"""Benchmark program: one constant, changed by the fake LLM each iteration."""
# EVOLVE-BLOCK-START
X = 0
# EVOLVE-BLOCK-END


def value():
    return X
'''

EVALUATOR = r'''"""Evaluator: runs the trivial run of the autoresearch overhead benchmark."""
import os
import re
import subprocess
import time

STAMPS = os.environ["OE_BENCH_STAMPS"]


def run_trivial(n):
    """The run as autoresearch's runner spawns it: /bin/sh -c, new session, pipe read to EOF."""
    p = subprocess.Popen(["/bin/sh", "-c", f"echo val_score: {n}"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    out = p.stdout.read()
    p.stdout.close()
    p.wait()
    return out


def evaluate(program_path):
    with open(program_path) as f:
        n = int(re.search(r"^X = (-?\d+)[ \t]*$", f.read(), re.M).group(1))
    t0 = time.monotonic()
    out = run_trivial(n)
    t1 = time.monotonic()
    score = float(re.search(rb"val_score: (\S+)", out).group(1))
    with open(STAMPS, "a") as f:
        f.write(f"{os.getpid()} {n} {t0:.9f} {t1:.9f}\n")
    return {"combined_score": score, "val_score": score}
'''

SERVER = r'''"""Fake OpenAI-compatible chat-completions server for the OpenEvolve benchmark."""
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"requests": 0, "unparsed": 0, "last": b"{}"}


def reply_for(request):
    """A SEARCH/REPLACE block on the parent program's X line, with a new value each call."""
    user = request["messages"][-1]["content"]
    with lock:
        state["requests"] += 1
        k = state["requests"]
    # the parent is the program under "# Current Program"; the history above it shows others
    m = re.search(r"^X = (-?\d+)[ \t]*$", user[user.rfind("# Current Program"):], re.M)
    if m is None:
        with lock:
            state["unparsed"] += 1
        return "I found nothing to change."
    return (f"Setting X to {k}.\n\n<<<<<<< SEARCH\nX = {m.group(1)}\n=======\nX = {k}\n"
            ">>>>>>> REPLACE\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints
    disable_nagle_algorithm = True  # headers and body are two writes

    def _send(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = json.loads(body)
        content = reply_for(request)
        with lock:
            state["last"] = body
        prompt_tokens = sum(len(m.get("content") or "") for m in request["messages"]) // 4
        completion_tokens = len(content) // 4
        self._send({
            "id": f"chatcmpl-bench-{state['requests']}", "object": "chat.completion",
            "created": int(time.time()), "model": request.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    def do_GET(self):
        with lock:
            if self.path == "/last":
                self._send(json.loads(state["last"]))
            else:
                self._send({"requests": state["requests"], "unparsed": state["unparsed"]})

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
'''

DRIVER = r'''"""Runs OpenEvolve against the fake server, then the bare run and LLM round-trip timings."""
import asyncio
import importlib.util
import json
import os
import platform
import sys
import time
import urllib.request

import openevolve
from openevolve.config import Config
from openevolve.controller import OpenEvolve
from openevolve.llm.openai import OpenAILLM

work, port, iterations, roundtrips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = f"http://127.0.0.1:{port}"


def server_json(path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


config = Config.from_dict({
    "max_iterations": iterations,
    "llm": {"api_base": base + "/v1", "api_key": "bench-fake-key",
            "models": [{"name": "bench-fake-model", "weight": 1.0}]},
    "evaluator": {"cascade_evaluation": False, "use_llm_feedback": False, "parallel_evaluations": 1},
})
output_dir = os.path.join(work, "openevolve_output")
controller = OpenEvolve(os.path.join(work, "initial_program.py"), os.path.join(work, "evaluator.py"),
                        config, output_dir=output_dir)
t0 = time.monotonic()
best = asyncio.run(controller.run(iterations=iterations))
run_s = time.monotonic() - t0
llm_requests = server_json("/stats")

# the bare run: the evaluator's own helper, in this process
spec = importlib.util.spec_from_file_location("bench_evaluator", os.path.join(work, "evaluator.py"))
evaluator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(evaluator)
bare = []
for i in range(iterations):
    t = time.perf_counter()
    evaluator.run_trivial(i)
    bare.append(time.perf_counter() - t)

# one chat completion through OpenEvolve's own client class, replaying its last real prompt
last = server_json("/last")
system, messages = last["messages"][0]["content"], last["messages"][1:]


async def roundtrip_times():
    llm = OpenAILLM(config.llm.models[0])
    times = []
    for _ in range(3 + roundtrips):
        t = time.perf_counter()
        await llm.generate_with_context(system, messages)
        times.append(time.perf_counter() - t)
    await llm.client.close()
    return times[3:]


llm_times = asyncio.run(roundtrip_times())
checkpoints = os.path.join(output_dir, "checkpoints")
json.dump({
    "openevolve_version": openevolve.__version__,
    "python": platform.python_version(),
    "run_s": run_s,
    "best_score": (best.metrics or {}).get("combined_score") if best else None,
    "programs_in_database": len(controller.database.programs),
    "num_islands": config.database.num_islands,
    "checkpoints_written": sorted(os.listdir(checkpoints)) if os.path.isdir(checkpoints) else [],
    "llm_requests_during_run": llm_requests["requests"],
    "llm_replies_without_diff": llm_requests["unparsed"],
    "prompt_chars": sum(len(m["content"]) for m in last["messages"]),
    "bare_s": bare,
    "llm_s": llm_times,
}, open(os.path.join(work, "result.json"), "w"))
'''


# --- project side: standard library only ---

def _log(msg: str) -> None:
    print(f"[openevolve bench] {msg}", file=sys.stderr, flush=True)


def default_venv() -> Path:
    env = os.environ.get(VENV_ENV_VAR)
    return Path(env) if env else Path(tempfile.gettempdir()) / "autoresearch-bench-openevolve"


def _installed_version(python: Path) -> str | None:
    r = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('openevolve'))"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_venv(venv: Path | None = None) -> Path:
    """The python of a venv holding openevolve==OPENEVOLVE_VERSION, made or filled if needed."""
    venv = Path(venv) if venv is not None else default_venv()
    python = venv / "bin" / "python"
    if python.exists() and _installed_version(python) == OPENEVOLVE_VERSION:
        return python
    if not python.exists():
        _log(f"creating venv {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=sys.stderr)
    _log(f"pip install openevolve=={OPENEVOLVE_VERSION} into {venv} (a minute or so) ...")
    t = time.monotonic()
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"openevolve=={OPENEVOLVE_VERSION}"], check=True, stdout=sys.stderr)
    installed = _installed_version(python)
    if installed != OPENEVOLVE_VERSION:
        raise RuntimeError(f"{venv}: openevolve {installed} installed, wanted {OPENEVOLVE_VERSION}")
    _log(f"installed in {time.monotonic() - t:.0f} s")
    return python


def _end_group(p: subprocess.Popen) -> None:
    """End a process started with start_new_session=True and whatever is left in its group."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)  # the group outlives its leader while a member is left
        except ProcessLookupError:
            break
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _read_port(server: subprocess.Popen, timeout: float = 30.0) -> int:
    ready, _, _ = select.select([server.stdout], [], [], timeout)
    line = server.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        raise RuntimeError(f"fake LLM server did not start (said {line!r}, exit {server.poll()})")
    return int(line.split()[1])


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _ms(xs: list[float]) -> list[float]:
    return [round(x * 1000, 3) for x in xs]


def measure_openevolve(iterations: int = 50, *, venv: Path | None = None) -> dict:
    """Run OpenEvolve for `iterations` iterations against a fake LLM and a trivial evaluator.

    Returns a JSON-able dict; times in ms. overhead_ms = median(iteration) - median(bare eval);
    overhead_without_llm_ms subtracts the median client-side LLM round trip as well.
    """
    if iterations < WARMUP + 2:
        raise ValueError(f"iterations must be at least {WARMUP + 2} (the first {WARMUP} are warm-up)")
    t_call = time.monotonic()
    python = ensure_venv(venv)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="autoresearch-bench-oe-") as d:
        work = Path(d)
        for name, text in (("initial_program.py", INITIAL_PROGRAM), ("evaluator.py", EVALUATOR),
                           ("fake_llm_server.py", SERVER), ("driver.py", DRIVER)):
            (work / name).write_text(text)
        stamps, log = work / "stamps.txt", work / "driver.log"
        env = {k: v for k, v in os.environ.items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy") and not k.startswith("OPENAI_")}
        env.update(OE_BENCH_STAMPS=str(stamps), PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost")
        try:
            server = subprocess.Popen([str(python), str(work / "fake_llm_server.py")], cwd=work, env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=open(work / "server.log", "wb"), start_new_session=True)
            procs.append(server)
            port = _read_port(server)
            _log(f"running OpenEvolve {OPENEVOLVE_VERSION} for {iterations} iterations ...")
            with open(log, "wb") as out:
                driver = subprocess.Popen([str(python), str(work / "driver.py"), str(work), str(port),
                                           str(iterations), str(LLM_ROUNDTRIPS)], cwd=work, env=env,
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
                procs.append(driver)
                try:
                    rc = driver.wait(timeout=300 + 5 * iterations)
                except subprocess.TimeoutExpired:
                    raise RuntimeError(f"OpenEvolve driver timed out; log tail:\n{_tail(log)}") from None
            if rc != 0 or not (work / "result.json").exists():
                raise RuntimeError(f"OpenEvolve driver failed (exit {rc}); log tail:\n{_tail(log)}")
            raw = json.loads((work / "result.json").read_text())
            rows = [line.split() for line in stamps.read_text().splitlines()]
            log_text = log.read_text(errors="replace")
        finally:
            for p in reversed(procs):
                _end_group(p)

    # evaluation 0 is the initial program's (main process), the rest the worker's, in order
    ends = [float(r[3]) for r in rows]
    eval_in_run = [float(r[3]) - float(r[2]) for r in rows[1:]]
    walls = [b - a for a, b in zip(ends, ends[1:])]
    kept = walls[WARMUP:]
    med_iter = statistics.median(kept)
    med_bare = statistics.median(raw["bare_s"])
    med_llm = statistics.median(raw["llm_s"])
    failed = iterations - (len(rows) - 1)
    setup = (
        f"OpenEvolve {raw['openevolve_version']} (PyPI) in its own venv, Python {raw['python']}, driven through "
        f"its controller OpenEvolve(...).run(iterations={iterations}). It always runs iterations in a "
        f"ProcessPoolExecutor: evaluator.parallel_evaluations=1 gives one worker process, so one iteration "
        f"executes at a time, but the main process keeps up to {raw['num_islands']} iterations queued (one per "
        f"island; database snapshots taken at submission) and does its database work while the worker runs "
        f"the next one. evaluator: cascade_evaluation=false, use_llm_feedback=false, timeout/retries default. "
        f"Database, prompt and evolution settings at their defaults (in memory, {raw['num_islands']} islands, "
        f"MAP-Elites on complexity/diversity, diff-based SEARCH/REPLACE, log_prompts, INFO logging to console "
        f"and file). checkpoint_interval at its default 100: checkpoints written during the run: "
        f"{raw['checkpoints_written'] or 'none'}. LLM: fake OpenAI-compatible server on 127.0.0.1 in its own "
        f"process (http.server, HTTP/1.1 keep-alive), answering at once with one SEARCH/REPLACE block that sets "
        f"X to a new value; evaluate() runs /bin/sh -c 'echo val_score: X' (new session, pipe read to EOF). "
        f"Iteration wall time = interval between the ends of consecutive evaluations (evaluator timestamps); "
        f"first {WARMUP} iterations discarded as warm-up. bare_eval_ms: the same subprocess run {iterations} "
        f"times in the driver process after the run. llm_roundtrip_ms: OpenEvolve's OpenAILLM client, "
        f"{LLM_ROUNDTRIPS} chat completions replaying its last prompt ({raw['prompt_chars']} chars)."
    )
    return {
        "openevolve_version": raw["openevolve_version"],
        "python": raw["python"],
        "host_python": platform.python_version(),
        "iterations": iterations,
        "warmup_discarded": WARMUP,
        "iteration_ms": _ms(kept),
        "warmup_iteration_ms": _ms(walls[:WARMUP]),
        "median_iteration_ms": round(med_iter * 1000, 3),
        "p90_iteration_ms": round(sorted(kept)[int(0.9 * len(kept))] * 1000, 3),
        "bare_eval_ms": round(med_bare * 1000, 3),
        "eval_in_run_ms": round(statistics.median(eval_in_run) * 1000, 3) if eval_in_run else None,
        "llm_roundtrip_ms": round(med_llm * 1000, 3),
        "overhead_ms": round((med_iter - med_bare) * 1000, 3),
        "overhead_without_llm_ms": round((med_iter - med_bare - med_llm) * 1000, 3),
        "failed_iterations": failed,
        "worker_processes": len({r[0] for r in rows[1:]}),
        "llm_requests_during_run": raw["llm_requests_during_run"],
        "llm_replies_without_diff": raw["llm_replies_without_diff"],
        "iteration_errors_logged": len(re.findall(r"Iteration \d+ error", log_text)),
        "error_log_lines": log_text.count(" - ERROR - "),
        "programs_in_database": raw["programs_in_database"],
        "best_score": raw["best_score"],
        "checkpoints_written": raw["checkpoints_written"],
        "openevolve_run_s": round(raw["run_s"], 3),
        "total_s": round(time.monotonic() - t_call, 3),
        "setup": setup,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--venv", type=Path, default=None,
                    help=f"venv for OpenEvolve (default ${VENV_ENV_VAR} or <tmpdir>/autoresearch-bench-openevolve)")
    args = ap.parse_args()
    print(json.dumps(measure_openevolve(args.iterations, venv=args.venv), indent=2))


if __name__ == "__main__":
    main()
