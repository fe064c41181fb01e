"""The harness measures a run's peak resident memory itself (``peak_rss_mb``): sampled over
the run's whole process tree (or its memory cgroup's peak), stored with the run's metrics,
and the ``memory_gb`` column's fallback when the run reports no GPU memory. A run cannot
set it by printing or writing it."""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from autoresearch.metrics import memory_gb
from autoresearch.records import Measurement
from autoresearch.runners.local import LocalRunner
from autoresearch.runs.spec import DEFAULT_ENV_ALLOW, RunSpec, child_env
from autoresearch.testing import make_synthetic_arena, write_proposals
from conftest import ledger_rows, run_cli

# A child process holds 200 MB for 1.5 s (written, so resident); the parent prints and
# writes a forged peak_rss_mb, which must not count.
TRAIN = textwrap.dedent("""
    import json, os, subprocess, sys
    subprocess.run([sys.executable, "-c", "import time; b = b'x' * (200 << 20); time.sleep(1.5)"], check=True)
    print("---")
    print("val_loss: 1.000000")
    print("peak_rss_mb: 99999")
    with open(os.environ["AUTORESEARCH_RESULT_FILE"], "w") as f:
        json.dump({"val_loss": 1.0, "peak_rss_mb": 99999}, f)
""")


def _spec(tmp_path: Path, script: str) -> RunSpec:
    (tmp_path / "job.py").write_text(script)
    return RunSpec(command=f"{sys.executable} job.py", cwd=tmp_path, env=child_env(os.environ, DEFAULT_ENV_ALLOW, {}),
                   timeout_s=30, log_path=tmp_path / "logs" / "run.log", token=uuid.uuid4().hex,
                   result_file=tmp_path / "result.json", log_cap_bytes=1 << 20, kill_grace_s=0.5)


def test_the_peak_rss_of_the_whole_tree_is_measured(tmp_path):
    out = LocalRunner().run(_spec(tmp_path, TRAIN))
    assert out.exit_code == 0, out.log_tail
    assert out.peak_rss_mb is not None and 150 <= out.peak_rss_mb < 2000, out.peak_rss_mb


def test_the_harness_own_memory_does_not_count(tmp_path):
    """A small run of a big harness is small (``ru_maxrss`` of a vfork'd root would report
    the harness's own peak)."""
    ballast = b"x" * (300 << 20)
    out = LocalRunner().run(_spec(tmp_path, "import time\ntime.sleep(0.6)\n"))
    assert len(ballast) and out.exit_code == 0, out.log_tail
    assert out.peak_rss_mb is not None and 1 < out.peak_rss_mb < 100, out.peak_rss_mb


def test_with_its_own_memory_cgroup_the_cgroups_peak_counts(tmp_path):
    import dataclasses

    from autoresearch.runners.limits import machine_cgroups
    from autoresearch.runs.spec import ResourceLimits

    if "memory" not in machine_cgroups().bases:
        pytest.fail("this test needs a writable memory cgroup (run the tests as root on a machine with cgroups, as CI does)")
    s = dataclasses.replace(_spec(tmp_path, TRAIN), limits=ResourceLimits(memory_mb=1024))
    handle = LocalRunner().start(s)
    assert handle.cgroup is not None and handle.cgroup.memory
    out = handle.wait()
    assert out.exit_code == 0, out.log_tail
    assert handle.cgroup_peak_mb is not None and out.peak_rss_mb == round(handle.cgroup_peak_mb, 1)
    assert 200 <= out.peak_rss_mb < 1024, out.peak_rss_mb


@pytest.mark.parametrize("metrics, measured, expected, warned", [
    ({"val": 1.0}, {"peak_rss_mb": 300.0}, {"val": 1.0, "peak_rss_mb": 300.0}, False),
    ({"val": 1.0, "peak_rss_mb": 99999.0}, {"peak_rss_mb": 300.0}, {"val": 1.0, "peak_rss_mb": 300.0}, True),
    ({"val": 1.0, "peak_rss_mb": 99999.0}, {"peak_rss_mb": None}, {"val": 1.0}, True),  # never the run's value
    ({"val": 1.0}, {"peak_rss_mb": math.nan}, {"val": 1.0}, False),
    ({"val": 1.0}, {"other": 5.0}, {"val": 1.0}, False),  # only harness metrics are taken
])
def test_harness_metrics_replace_what_the_run_reported(metrics, measured, expected, warned):
    m = Measurement(metric=1.0, metrics=metrics).with_harness_metrics(measured)
    assert dict(m.metrics) == expected and m.metric == 1.0
    assert any("peak_rss_mb" in w for w in m.warnings) is warned


@pytest.mark.parametrize("metrics, expected", [
    ({"peak_vram_mb": 2048.0, "peak_rss_mb": 512.0}, 2.0),   # GPU memory first
    ({"peak_memory_mb": 1024.0, "peak_rss_mb": 512.0}, 1.0),
    ({"peak_rss_mb": 512.0}, 0.5),                          # else the harness's measurement
    ({"peak_rss_mb": math.nan}, None),
    ({}, None),
])
def test_memory_gb_falls_back_to_the_peak_rss(metrics, expected):
    assert memory_gb(metrics) == expected


def test_a_cpu_campaign_fills_memory_gb_and_a_printed_value_does_not_win(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"train.py": TRAIN})
    props = write_proposals(tmp_path / "p.json", [])
    r = run_cli("run", arena, "--proposals", props, "--max-experiments", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = (arena / "results.tsv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split("\t")[3] == "keep", rows
    assert 0.1 < float(rows[1].split("\t")[2]) < 2.0, rows  # 200 MB and the parent: about 0.2 GB, never 97.7
    exp = json.loads(ledger_rows(arena, "SELECT metrics_json FROM experiments WHERE id=0")[0]["metrics_json"])
    assert 150 <= exp["peak_rss_mb"] < 2000, exp
    runs = ledger_rows(arena, "SELECT metrics_json FROM runs")
    assert runs and all(150 <= json.loads(x["metrics_json"])["peak_rss_mb"] < 2000 for x in runs)


def test_a_ray_node_measures_the_run_and_sends_the_peak_back(tmp_path):
    """``remote.execute`` runs through the local runner on the node; the peak travels back
    in the NodeResult (``RayHandle._outcome`` copies it into the RunOutcome)."""
    from autoresearch.runners.remote import execute
    from test_ray_node import BASE, _job, _tar

    train = "import time\nb = b'x' * (120 << 20)\ntime.sleep(0.7)\nprint('val_loss: 2.0')\n"
    out = execute(_job(tmp_path, files={"train.py": (train.encode(), 0o644)}), lambda: _tar(BASE))
    assert out.exit_code == 0, out.log
    assert out.peak_rss_mb is not None and 110 <= out.peak_rss_mb < 2000, out.peak_rss_mb
