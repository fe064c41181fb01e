"""The node side of the Ray runner (``runners/remote.py``) and the runner's pure parts,
without a cluster: real files, real subprocesses."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from autoresearch import __version__
from autoresearch.config import load_config
from autoresearch.errors import ConfigError
from autoresearch.runners.ray import fitting_nodes
from autoresearch.runners.remote import SetupError, execute
from autoresearch.runs.spec import DEFAULT_ENV_ALLOW, NodeSetup, Phase, RemoteJob, RemoteParts


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BASE = {"train.py": "print('val_loss: 2.0')\n", "prepare.py": "SPLIT = 0.9\n", "sub/data.txt": "abc\n"}


def _job(tmp_path: Path, **over) -> RemoteJob:
    """A typed job as the driver sends it; ``over`` names any field of the job, its parts or its node setup."""
    parts = dict(command=f"{sys.executable} train.py", commit="c1", rel=".", phase=Phase.RUN, slot=0,
                 env_allow=tuple(DEFAULT_ENV_ALLOW), extra_env={"AUTORESEARCH_SEED": "7"}, sandbox_paths=None, hidden=())
    node = dict(work_dir=str(tmp_path / "node"), prepare="", prepare_timeout_s=60.0, data_paths=())
    top = dict(timeout_s=20.0, log_cap_bytes=1 << 20, kill_grace_s=1.0, limits=None, version=__version__, key="drv-0",
               tree="t1", files={}, deleted=())
    for k, v in over.items():
        if k == "phase":
            v = Phase(v)
        elif isinstance(v, list):
            v = tuple(v)
        (parts if k in parts else node if k in node else top)[k] = v
    return RemoteJob(parts=RemoteParts(**parts), node=NodeSetup(**node), **top)


def test_a_run_in_a_scratch_worktree_sends_back_log_and_runtime_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-node-secret")
    fetches = []

    def fetch() -> bytes:
        fetches.append(1)
        return _tar(BASE)

    train = ("import os, json\n"
             "open('prepare.py', 'a').write('SPLIT = 0.5\\n')\n"  # a runtime write to a readonly file
             "os.remove('sub/data.txt')\n"
             "open('ckpt.bin', 'w').write('weights')\n"
             "print('seed', os.environ['AUTORESEARCH_SEED'], 'key', os.environ.get('ANTHROPIC_API_KEY'))\n"
             "print('arena', os.environ['AUTORESEARCH_ARENA_DIR'])\n"
             "json.dump({'val_loss': 1.5}, open(os.environ['AUTORESEARCH_RESULT_FILE'], 'w'))\n")
    out = execute(_job(tmp_path, files={"train.py": (train.encode(), 0o644)}), fetch)
    assert out.exit_code == 0, out.log
    log = out.log.decode()
    assert "seed 7 key None" in log  # the node's secrets are filtered like the driver's
    assert f"arena {tmp_path / 'node' / 'base' / 't1'}" in log
    assert json.loads(out.result_json) == {"val_loss": 1.5}
    assert out.changed == {"prepare.py": b"SPLIT = 0.9\nSPLIT = 0.5\n", "sub/data.txt": None}
    # the base on the node is untouched (copies, not links), and fetched once for many runs
    assert (tmp_path / "node" / "base" / "t1" / "prepare.py").read_text() == "SPLIT = 0.9\n"
    execute(_job(tmp_path, commit="c2"), fetch)
    assert len(fetches) == 1
    # nothing of the run is left in the node's results or logs
    assert not any((tmp_path / "node" / "results").iterdir())
    assert not any((tmp_path / "node" / "logs").iterdir())


def test_the_eval_runs_in_the_run_worktree_without_importable_leftovers(tmp_path):
    fetch = lambda: _tar(BASE)  # noqa: E731
    train = "open('ckpt.txt', 'w').write('0.75')\nopen('json.py', 'w').write('raise SystemExit(9)')\n"
    run = execute(_job(tmp_path, files={"train.py": (train.encode(), 0o644)}), fetch)
    assert run.exit_code == 0
    ev = execute(_job(tmp_path, phase="eval", command=f"{sys.executable} -c \"import json; "
                      "print('val_loss:', open('ckpt.txt').read())\""), fetch)
    assert ev.exit_code == 0 and "val_loss: 0.75" in ev.log.decode()
    assert ev.removed == ("json.py",)  # it would have shadowed the stdlib module in the eval
    # an eval for a commit whose run is not on this node: lost (the driver runs both again elsewhere)
    lost = execute(_job(tmp_path, phase="eval", commit="other"), fetch)
    assert "gone from node" in lost.lost


def test_prepare_runs_once_per_node_and_a_failing_one_says_why(tmp_path):
    counter = tmp_path / "count"
    prepare = f"{sys.executable} -c \"open('{counter}', 'a').write('x')\""
    for commit in ("c1", "c2"):
        assert execute(_job(tmp_path, prepare=prepare, commit=commit), lambda: _tar(BASE)).exit_code == 0
    assert counter.read_text() == "x"
    bad = _job(tmp_path, tree="t2", prepare="echo downloading; exit 4")
    with pytest.raises(SetupError, match=r"(?s)prepare `echo downloading; exit 4` failed.*exit 4.*downloading"):
        execute(bad, lambda: _tar(BASE))


@pytest.mark.parametrize("over, message", [
    ({"version": "0.0.1"}, "install the same version on every node"),
    ({"data_paths": ["/no/such/shared/dataset"]}, "lacks /no/such/shared/dataset"),
    ({"files": {"../escape.py": (b"x", 0o644)}}, "refusing a path outside the worktree"),
])
def test_a_node_that_cannot_run_the_arena_raises_setup_errors(tmp_path, over, message):
    with pytest.raises(SetupError, match=message):
        execute(_job(tmp_path, **over), lambda: _tar(BASE))


@pytest.mark.parametrize("nodes, need, fits", [
    ([{"NodeID": "a", "Alive": True, "Resources": {"CPU": 4.0, "GPU": 2.0}}], {"CPU": 1.0, "GPU": 1.0}, ["a"]),
    ([{"NodeID": "a", "Alive": True, "Resources": {"CPU": 4.0}}], {"GPU": 1.0}, []),
    ([{"NodeID": "a", "Alive": False, "Resources": {"GPU": 8.0}},
      {"NodeID": "b", "Alive": True, "Resources": {"GPU": 0.5}}], {"GPU": 1.0}, []),
    ([{"NodeID": "a", "Alive": True, "Resources": {"CPU": 2.0, "fake_gpu": 1.0}},
      {"NodeID": "b", "Alive": True, "Resources": {"CPU": 0.0}}], {"fake_gpu": 1.0, "CPU": 1.0}, ["a"]),
])
def test_fitting_nodes(nodes, need, fits):
    assert fitting_nodes(nodes, need) == fits


def test_ray_slots_are_a_number_not_devices(tmp_path):
    (tmp_path / "autoresearch.toml").write_text(
        '[arena]\nrun = "python train.py"\neditable = ["train.py"]\n[metric]\nname = "loss"\n'
        '[runner]\nkind = "ray"\nslots = ["cuda:0", "cuda:1"]\n')
    with pytest.raises(ConfigError, match="slots is a number of experiments run at once"):
        load_config(tmp_path)


def test_importing_the_core_never_imports_ray():
    code = ("import sys, autoresearch, autoresearch.api, autoresearch.cli, autoresearch.engine, autoresearch.config; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_eval_only_files_are_not_in_the_runs_scratch_but_in_the_evals(tmp_path):
    fetch = lambda: _tar(BASE)  # noqa: E731
    probe = f"{sys.executable} -c \"import os; print('has data:', os.path.exists('sub/data.txt'))\""
    run = execute(_job(tmp_path, command=probe, hidden=["sub"]), fetch)
    assert "has data: False" in run.log.decode() and run.changed == {}  # hidden, and not a runtime change
    ev = execute(_job(tmp_path, command=probe, phase="eval"), fetch)
    assert "has data: True" in ev.log.decode()
