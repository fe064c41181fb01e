"""Runs see the environment the harness was installed in: when autoresearch runs from a
virtual environment, that venv's bin directory comes first on the runs' PATH (as if it
were activated), and a failing run's reason names the Python that ran. Pure functions
table-driven; the rest through real subprocesses (the CLI, the local runner, a Ray node's
side of a run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.config import load_config
from autoresearch.runs.spec import harness_venv, interpreter, run_settings, venv_first, with_interpreter
from autoresearch.testing import make_synthetic_arena
from conftest import _env, ledger_rows

VENV_PYTHON = os.path.join(sys.prefix, "bin", "python")


def _venv(tmp_path: Path, marker: str | None = None) -> str:
    (tmp_path / "v" / "bin").mkdir(parents=True)
    if marker:
        (tmp_path / "v" / marker).write_text("")
    return str(tmp_path / "v")


@pytest.mark.parametrize("case, marker, environ, found", [
    ("not a venv", None, {}, False),
    ("a venv", None, {}, True),
    ("a venv, activated", None, {"VIRTUAL_ENV": "SELF"}, True),
    ("another venv activated: the user's choice", None, {"VIRTUAL_ENV": "/elsewhere/.venv"}, False),
    ("pipx's own environment", "pipx_metadata.json", {}, False),
    ("uv tool's own environment", "uv-receipt.toml", {}, False),
])
def test_which_venv_runs_find_first(tmp_path, case, marker, environ, found):
    prefix = _venv(tmp_path, marker)
    base = prefix if case == "not a venv" else "/usr"
    environ = {k: (prefix if v == "SELF" else v) for k, v in environ.items()}
    assert harness_venv(prefix, base, environ) == (prefix if found else None), case


@pytest.mark.parametrize("env, venv, path", [
    ({"PATH": "/usr/bin:/bin"}, None, "/usr/bin:/bin"),
    ({"PATH": "/usr/bin:/bin"}, "/v", "/v/bin:/usr/bin:/bin"),
    ({"PATH": "/usr/bin:/v/bin:/bin"}, "/v", "/v/bin:/usr/bin:/bin"),    # once, first
    ({"PATH": "/v/bin/:/bin"}, "/v", "/v/bin:/bin"),
    ({}, "/v", "/v/bin"),
])
def test_venv_first(env, venv, path):
    out = venv_first(env, venv)
    assert out.get("PATH", "") == path
    assert out.get("VIRTUAL_ENV") == venv
    assert env.get("VIRTUAL_ENV") is None  # the given environment is left alone


@pytest.fixture
def bin_dir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("python", "python3", "python3.12"):
        (d / name).write_text("#!/bin/sh\n")
        (d / name).chmod(0o755)
    return d


@pytest.mark.parametrize("command, expected", [
    ("python train.py", "BIN/python"),
    ("python3 -u train.py --lr 3", "BIN/python3"),
    ("python3.12 train.py", "BIN/python3.12"),
    ("OMP_NUM_THREADS=1 python train.py", "BIN/python"),
    ("env CUDA_VISIBLE_DEVICES=0 python3 train.py", "BIN/python3"),
    ("./venv/bin/python train.py", "CWD/venv/bin/python"),
    ("/opt/py/bin/python3 train.py", "/opt/py/bin/python3"),
    ("PATH=/opt/bin:$PATH python train.py", None),   # the command sets PATH itself
    ("uv run train.py", None),
    ("torchrun --nproc 2 train.py", None),
    ("pythonista train.py", None),
    ("python 'unbalanced", None),
    ("", None),
])
def test_the_interpreter_a_command_runs(bin_dir, tmp_path, command, expected):
    got = interpreter(command, {"PATH": f"/nonexistent:{bin_dir}"}, tmp_path)
    if expected is not None:
        expected = expected.replace("BIN", str(bin_dir)).replace("CWD", str(tmp_path))
    assert got == expected


def test_a_reason_names_the_python_that_ran(bin_dir, tmp_path):
    env = {"PATH": str(bin_dir)}
    said = with_interpreter("the run exited with code 1: ModuleNotFoundError: No module named 'torch.nn'",
                            "python train.py", env, tmp_path)
    # what to do, where the module is missing (a fifth trial: an unactivated project venv)
    assert f"(ran with {bin_dir}/python, which lacks torch: start autoresearch with the project's environment " \
           "active" in said and "name that Python in [arena] run" in said, said
    assert with_interpreter("the run exited with code 1: ValueError: bad", "python train.py", env,
                            tmp_path).endswith(f"(ran with {bin_dir}/python)")
    (tmp_path / "src").mkdir()  # the project's own package: a path problem, not the environment's (a review)
    assert with_interpreter("the run exited with code 1: ModuleNotFoundError: No module named 'src'",
                            "python scripts/train.py", env, tmp_path).endswith(f"(ran with {bin_dir}/python)")
    assert with_interpreter("the run exited with code 2", "bash run.sh", env, tmp_path) == "the run exited with code 2"


def test_the_setting_turns_it_off_and_ray_leaves_it_to_each_node(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    assert sys.prefix != sys.base_prefix, "the tests run from the project's virtual environment (make test)"
    assert run_settings(load_config(arena).config).venv == harness_venv()
    assert run_settings(load_config(arena, {"runner.harness_venv": False}).config).venv is None
    ray = run_settings(load_config(arena, {"runner.kind": "ray"}).config)
    assert ray.venv is None and ray.venv_first  # the node finds its own (runs/spec.py node_spec)


WHICH = '''"""Notes the Python that ran it."""
import sys
{imports}
from prepare import evaluate, report

LEARNING_RATE = 0.01
WIDTH = 64
DROPOUT = 0.3
WARMUP_STEPS = 500

if __name__ == "__main__":
    open({notes!r}, "a").write(sys.executable + "\\n")
    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))
'''


def _plain_shell_env() -> dict[str, str]:
    """The harness started as `.venv/bin/autoresearch` from a shell that did not activate
    the venv: nothing of it on PATH, no VIRTUAL_ENV."""
    env = _env({"PATH": "/usr/local/bin:/usr/bin:/bin"})
    env.pop("VIRTUAL_ENV", None)
    return env


def test_runs_find_the_harness_venv_first_and_a_crash_says_which_python_ran(tmp_path):
    assert sys.prefix != sys.base_prefix, "the tests run from the project's virtual environment (make test)"
    notes = tmp_path / "pythons.txt"
    arena = make_synthetic_arena(tmp_path / "arena", python="python",  # found on PATH, as users write it
                                 extra_files={"train.py": WHICH.format(imports="", notes=str(notes))})
    r = subprocess.run([sys.executable, "-m", "autoresearch", "run", str(arena), "-n", "1"], env=_plain_shell_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert notes.read_text().split() == [VENV_PYTHON]  # not whatever `python` the shell's PATH has
    dry = subprocess.run([sys.executable, "-m", "autoresearch", "run", str(arena), "--dry-run"], env=_plain_shell_env(),
                         capture_output=True, text=True, timeout=120)
    assert f"# runs find {sys.prefix}/bin first on PATH" in dry.stdout  # and it says so
    # a run that fails names the interpreter it ran with
    broken = make_synthetic_arena(tmp_path / "broken", python="python", extra_files={
        "train.py": WHICH.format(imports="import no_such_module_anywhere", notes=str(notes))})
    r = subprocess.run([sys.executable, "-m", "autoresearch", "run", str(broken), "-n", "1"], env=_plain_shell_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "No module named 'no_such_module_anywhere'" in r.stderr
    assert f"(ran with {VENV_PYTHON}, which lacks no_such_module_anywhere:" in " ".join(r.stderr.split())
    reason = ledger_rows(broken, "SELECT reason FROM experiments WHERE id = 0")[0]["reason"]
    assert f"(ran with {VENV_PYTHON}, which lacks no_such_module_anywhere:" in reason


def test_on_a_ray_node_the_nodes_venv_comes_first(tmp_path, monkeypatch):
    # the node side of a Ray run, in this process (a node started from this venv)
    from autoresearch import __version__
    from autoresearch.runners.remote import execute
    from autoresearch.runs.spec import DEFAULT_ENV_ALLOW, NodeSetup, Phase, RemoteJob, RemoteParts

    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    parts = RemoteParts(command="python -c 'import os, sys; print(sys.executable, os.environ[\"VIRTUAL_ENV\"])'",
                        commit="c1", rel=".", phase=Phase.RUN, slot=0, env_allow=tuple(DEFAULT_ENV_ALLOW),
                        extra_env={}, venv_first=True)
    job = RemoteJob(parts=parts, timeout_s=20.0, log_cap_bytes=1 << 20, kill_grace_s=1.0, limits=None,
                    version=__version__, key="drv-0", tree="t1", files={}, deleted=(),
                    node=NodeSetup(work_dir=str(tmp_path / "node")))
    out = execute(job, lambda: _empty_tar())
    assert out.exit_code == 0, out.log
    assert out.log.decode().split() == [VENV_PYTHON, sys.prefix]


def _empty_tar() -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w"):
        pass
    return buf.getvalue()
