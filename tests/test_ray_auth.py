"""Ray's token authentication and the test clusters' hygiene.

Since Ray 2.5x a local ``ray.init()`` (``address = "local"``) turns token authentication on
and writes a token to ``~/.ray/auth_token``; from then on any ``ray start --head`` on that
machine without ``RAY_AUTH_MODE`` turns it on too (reading that file), while its workers and
explicit-address drivers do not: they are refused (``InvalidAuthToken``). So:

- the session is hermetic (conftest.py): its own empty HOME, no inherited RAY_AUTH_*;
- a test cluster sets its auth mode explicitly, ``disabled`` or ``token`` (with its own
  token file), and a token in the home changes nothing for either (a stray one is planted
  in the session's home while the clusters here start and run);
- a campaign runs on a cluster with auth on (driver given the token) and with auth off;
- a driver without the token gets an error, not a hang;
- a cluster whose start fails half-way leaves no process behind.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch.api import run_campaign
from autoresearch.errors import ConfigError
from autoresearch.testing import RayCluster, constant_edit, make_synthetic_arena, synthetic_true_loss, write_proposals
from conftest import REAL_HOME, SESSION_HOME, git


def _traces(needle: str) -> dict[int, str]:
    """Live processes whose command line, environment, working directory or any open file
    names ``needle`` (a cluster's temp dir), with what names it."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or not _alive(int(name)):
            continue
        where = []
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{name}/{what}", "rb") as f:
                    if needle.encode() in f.read():
                        where.append(what)
            except OSError:
                pass
        try:
            paths = ["cwd", *(f"fd/{fd}" for fd in os.listdir(f"/proc/{name}/fd"))]
        except OSError:
            paths = ["cwd"]
        for path in paths:
            try:
                link = os.readlink(f"/proc/{name}/{path}")
            except OSError:
                continue
            if needle in link:
                where.append(link)
        if where:
            out[int(name)] = f"{_cmd(int(name))[:100]}: {where[:3]}"
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def test_the_session_has_its_own_home_and_git_needs_no_global_identity(tmp_path):
    assert os.environ["HOME"] == str(SESSION_HOME) == str(Path.home())
    assert str(SESSION_HOME) != REAL_HOME
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        assert Path(os.environ[name]).is_relative_to(SESSION_HOME), name
    assert not [k for k in os.environ if k == "RAY_ADDRESS" or k.startswith("RAY_AUTH_")]
    # a subprocess sees the same home, and git finds no global identity there...
    out = subprocess.run(["git", "config", "--global", "user.email"], capture_output=True, text=True, check=False)
    assert out.returncode == 1 and out.stdout == "", out.stdout
    probe = subprocess.run([sys.executable, "-c", "import pathlib; print(pathlib.Path.home())"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == str(SESSION_HOME)
    # ...yet the tests' git helper and the package's commit_all commit
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "a")
    assert git(repo, "log", "--format=%an <%ae>") == "autoresearch-tests <tests@localhost>"
    arena = make_synthetic_arena(tmp_path / "arena")
    assert git(arena, "rev-list", "--count", "HEAD") == "1"


@pytest.mark.ray
@pytest.mark.slow
def test_a_start_that_fails_half_way_stops_what_it_started():
    """The head starts, then a worker cannot join (it has the wrong token): start() raises,
    and nothing of the cluster is left running."""

    class WrongTokenWorker(RayCluster):
        head: dict[int, str]

        def add_worker(self) -> None:
            self.head = {p: _cmd(p) for p in self.pids()}  # what the head started: must all be gone after
            wrong = self.temp_dir / "wrong_token"
            wrong.write_text(secrets.token_hex(32))
            # RAY_NUM_REDIS_GET_RETRIES: give up after ~3 tries (1 s apart) rather than 20
            self._ray("start", "--address", self.address, "--num-cpus", "1", *self._common(),
                      env={"RAY_AUTH_TOKEN_PATH": str(wrong), "RAY_NUM_REDIS_GET_RETRIES": "3"})

    cluster = WrongTokenWorker(workers=1, auth="token")
    try:
        with pytest.raises(RuntimeError, match=r"(?s)ray start --address.*InvalidAuthToken"):
            cluster.start()
        names = list(cluster.head.values())
        assert any("gcs_server" in n for n in names) and any("/raylet " in n for n in names), names
        assert any(n.startswith("ray::") for n in names), names  # the agents, found as the raylet's children
        assert [p for p in cluster.head if _alive(p)] == []
        assert cluster.pids() == []
        # and, looked for another way, no process on this machine bears a trace of the cluster
        assert _traces(str(cluster.temp_dir)) == {}
        assert not cluster.temp_dir.exists()
    finally:
        cluster.stop()  # a no-op after a clean failure; the cleanup if the test failed


_cmds: dict[int, str] = {}


def _cmd(pid: int) -> str:
    """A process's command line, remembered (the test asks about it after the process died)."""
    if pid not in _cmds:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                _cmds[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            _cmds[pid] = ""
    return _cmds[pid]


@pytest.fixture(scope="module", params=["disabled", "token"])
def cluster(request):
    """One cluster per auth mode (one at a time), started while a stray token lies in the
    session's home, as one does in any home where a local ray.init() ran: a cluster with
    auth disabled must ignore it, one with auth on must use its own token, not that one."""
    stray = Path.home() / ".ray" / "auth_token"
    before = stray.read_text() if stray.exists() else None
    stray.parent.mkdir(exist_ok=True)
    stray.write_text(secrets.token_hex(32))
    c = RayCluster(workers=1, cpus=2, resources={"fake_gpu": 2}, auth=request.param)
    try:
        c.start()
        for pid in c.pids():
            _cmd(pid)
        yield c
    finally:
        left = c.stop()
        if before is None:
            stray.unlink(missing_ok=True)
        else:
            stray.write_text(before)
        assert left == [], f"processes of the test cluster left behind: {left}"


def _arena(tmp_path: Path, cluster: RayCluster, name: str) -> Path:
    return make_synthetic_arena(tmp_path / name, config_overrides={
        "runner": {"kind": "ray", "slots": 1},
        "runner.ray": {"address": cluster.address, "resources": {"fake_gpu": 1},
                       "work_dir": str(cluster.temp_dir / "nodes")},
    })


@pytest.mark.ray
@pytest.mark.slow
def test_a_campaign_runs_on_the_cluster_with_auth_on_or_off_whatever_the_home_holds(tmp_path, cluster):
    names = [_cmd(p) for p in cluster.pids()]
    assert sum("raylet" in n for n in names) == 2 and any("gcs_server" in n for n in names), names
    # the cluster's processes run with the mode it was given, not one a home token implies
    raylets = [p for p in cluster.pids() if "/raylet " in _cmd(p)]
    with open(f"/proc/{raylets[0]}/environ", "rb") as f:
        assert f"RAY_AUTH_MODE={cluster.auth}".encode() in f.read().split(b"\0")
    arena = _arena(tmp_path, cluster, "auth-" + cluster.auth)
    proposals = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    def auth_env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k.startswith(RayCluster.FOREIGN_ENV)}

    saved = auth_env()
    with cluster.driver():
        assert {k: os.environ[k] for k in cluster.driver_env} == cluster.driver_env
        outcome, _ = run_campaign(arena, proposer_kind="scripted", proposals=proposals, max_experiments=2)
    assert auth_env() == saved  # the driver's environment is restored
    assert outcome.exit_code == 0, outcome
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    exps = {r[0]: r[1:] for r in db.execute("SELECT id, status, metric FROM experiments")}
    db.close()
    assert exps[0][0] == "keep" and exps[1][0] == "keep", exps
    assert exps[1][1] == pytest.approx(synthetic_true_loss(0.003, 64, 0.3, 500))
    assert (cluster.temp_dir / "nodes" / "scratch").is_dir()  # the runs ran on the cluster's node


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["token"], indirect=True)
def test_a_driver_without_the_token_is_refused_with_an_error_not_a_hang(tmp_path, cluster):
    arena = _arena(tmp_path, cluster, "no-token")
    # 1. a driver that does not know the cluster wants a token (no RAY_AUTH_*): Ray retries
    # the refused connection for ~20 s, then autoresearch reports it
    t0 = time.monotonic()
    with cluster.driver({"RAY_AUTH_MODE": None, "RAY_AUTH_TOKEN_PATH": None}), pytest.raises(ConfigError) as refused:
        run_campaign(arena, max_experiments=1)
    assert time.monotonic() - t0 < 90
    message = str(refused.value)
    assert repr(cluster.address) in message, message
    assert "token authentication" in message and "RAY_AUTH_TOKEN_PATH" in message, message
    # 2. a driver told to use token authentication but with no token anywhere (the home
    # has none either): Ray refuses at once, before connecting
    stray = Path.home() / ".ray" / "auth_token"
    aside = stray.with_name("auth_token.aside")
    stray.rename(aside)
    try:
        t0 = time.monotonic()
        with cluster.driver({"RAY_AUTH_TOKEN_PATH": None}), pytest.raises(Exception) as missing:
            run_campaign(arena, max_experiments=1)
        assert time.monotonic() - t0 < 30
    finally:
        aside.rename(stray)
    assert "RAY_AUTH_TOKEN_PATH" in str(missing.value), str(missing.value)
    assert isinstance(missing.value, ConfigError), type(missing.value)  # a message, not a traceback
    assert not (arena / ".autoresearch" / "ledger.sqlite").exists()  # refused before anything ran
