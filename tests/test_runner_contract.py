"""The Runner contract, one suite over every runner: the local one, and the Ray one on a
real cluster on loopback. A spec is built the way the engine builds it (``runs/spec.py``)
in a real run directory of a real repository; what comes back must mean the same thing
whichever runner ran it: exit code and log, the result file, a crash or a timeout as data,
a stop, no secret in the run, runtime writes to tracked files visible at home, a capped log.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from autoresearch.runners.proctree import new_run_token
from autoresearch.runs.spec import Phase, Placement, RunSettings, RunSpec, build_run_spec
from autoresearch.slots import Slot
from autoresearch.store.workspace import Workspace
from autoresearch.testing import RayCluster, commit_all
from conftest import git

SECRET = "AUTORESEARCH_CONTRACT_API_KEY"  # a credential-looking name: never passed to a run


@pytest.fixture(scope="module")
def cluster():
    c = RayCluster(workers=1, cpus=2)
    os.environ[SECRET] = "sk-node-secret"  # the nodes inherit it when they start
    try:
        c.start()  # stops what it started when it fails
    except BaseException:
        c.stop()
        raise
    finally:
        os.environ.pop(SECRET, None)
    try:
        with c.driver():
            yield c
    finally:
        left = c.stop()
        assert left == [], f"processes of the test cluster left behind: {left}"


@pytest.fixture(params=["local", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow])])
def kind(request):
    return request.param


@pytest.fixture
def ws(tmp_path):
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    (r / "train.py").write_text("print('hello')\n")
    (r / "prepare.py").write_text("SPLIT = 0.9\n")
    commit_all(r, "init")
    w = Workspace(r)
    yield w
    w.close()


@pytest.fixture
def runner(kind, ws, request):
    if kind == "local":
        from autoresearch.runners.local import LocalRunner

        return LocalRunner()
    from autoresearch.config import RayTable
    from autoresearch.runners.ray import RayRunner

    c = request.getfixturevalue("cluster")
    return RayRunner(RayTable(address=c.address, work_dir=str(c.temp_dir / "nodes")), ws)


def spec(ws: Workspace, tmp: Path, command: str, *, timeout: float = 30, cap: int = 1 << 20,
         env: dict[str, str] | None = None) -> RunSpec:
    settings = RunSettings(run=command, eval=None, time_budget_s=5, run_timeout_s=timeout, eval_timeout_s=timeout,
                           log_cap_bytes=cap, kill_grace_s=0.5)
    commit = ws.head()
    workdir = ws.dirs.materialize("t", "slot-0", commit)
    name = new_run_token()[-8:]
    place = Placement(top=ws.dirs.top_of(workdir), cwd=workdir, result_file=tmp / "results" / f"{name}.json",
                      log_path=tmp / "logs" / f"{name}.log", arena=ws.arena, state_dir=ws.state_dir, git_dir=ws.git_dir)
    return build_run_spec(settings, slot=Slot(0, "local"), phase=Phase.RUN, place=place, commit=commit, seed=7,
                          exp_id=3, attempt=1, token=new_run_token(), base_env=env or dict(os.environ))


PY = sys.executable


def test_a_run_reports_its_exit_its_log_and_its_result(runner, ws, tmp_path):
    code = ("import json, os; print('seed', os.environ['AUTORESEARCH_SEED'], 'exp', os.environ['AUTORESEARCH_EXPERIMENT_ID']);"
            "json.dump({'val_loss': 1.25}, open(os.environ['AUTORESEARCH_RESULT_FILE'], 'w'))")
    s = spec(ws, tmp_path, f"{PY} -c \"{code}\"")
    out = runner.start(s).wait()
    assert (out.exit_code, out.timed_out, out.interrupted, out.infra) == (0, False, False, "")
    assert "seed 7 exp 3" in out.log_tail and "seed 7 exp 3" in Path(out.log_path).read_text()
    assert out.log_path == str(s.log_path)
    assert json.loads(out.result_json) == {"val_loss": 1.25}


def test_a_crash_is_data_not_an_exception(runner, ws, tmp_path):
    out = runner.start(spec(ws, tmp_path, f"{PY} -c \"import sys; print('bad'); sys.exit(3)\"")).wait()
    assert out.exit_code == 3 and not out.timed_out and "bad" in out.log_tail


def test_the_timeout_kills_the_run_and_its_children(runner, ws, tmp_path):
    pidfile = tmp_path / "child.pid"
    command = f"sh -c 'sleep 300 & echo $! > {pidfile}; wait'"
    t0 = time.monotonic()
    out = runner.start(spec(ws, tmp_path, command, timeout=2)).wait()
    assert out.timed_out and out.exit_code is None
    assert time.monotonic() - t0 < 30
    child = int(pidfile.read_text())
    end = time.monotonic() + 10
    while _alive(child) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(child)


def test_a_stop_interrupts_the_run(runner, ws, tmp_path):
    stop = threading.Event()
    handle = runner.start(spec(ws, tmp_path, f"{PY} -c \"import time; print('started', flush=True); time.sleep(300)\""), stop)
    threading.Timer(1.5, stop.set).start()
    t0 = time.monotonic()
    out = handle.wait()
    assert out.interrupted and not out.timed_out and out.exit_code is None
    assert time.monotonic() - t0 < 30


def test_no_secret_reaches_a_run(runner, ws, tmp_path):
    env = {**os.environ, SECRET: "sk-driver-secret", "OPENAI_API_KEY": "sk-other"}
    code = f"import os; print('secret', os.environ.get('{SECRET}'), os.environ.get('OPENAI_API_KEY'))"
    out = runner.start(spec(ws, tmp_path, f"{PY} -c \"{code}\"", env=env)).wait()
    assert out.exit_code == 0 and "secret None None" in out.log_tail


def test_runtime_writes_to_tracked_files_are_seen_at_home(runner, ws, tmp_path):
    # the readonly check reads the run's directory here, whichever machine ran it
    s = spec(ws, tmp_path, f"{PY} -c \"open('prepare.py', 'a').write('SPLIT = 0.5\\n')\"")
    out = runner.start(s).wait()
    assert out.exit_code == 0
    assert (s.cwd / "prepare.py").read_text() == "SPLIT = 0.9\nSPLIT = 0.5\n"


def test_the_log_is_capped_head_and_tail_kept(runner, ws, tmp_path):
    code = "import sys; sys.stdout.write('HEAD\\n' + 'x' * 400000 + '\\nTAIL\\n')"
    out = runner.start(spec(ws, tmp_path, f"{PY} -c \"{code}\"", cap=64 * 1024)).wait()
    text = Path(out.log_path).read_text()
    assert out.exit_code == 0 and text.startswith("HEAD") and text.rstrip().endswith("TAIL")
    assert len(text) < 80 * 1024 and "bytes of output omitted" in text


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
