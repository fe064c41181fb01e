from autoresearch.records import Experiment, Goal, Status
from autoresearch.report.plot import progress_points, write_progress_png
from autoresearch.testing import write_proposals
from conftest import run_cli


def exp(i, status, metric, desc="x"):
    return Experiment(id=i, status=Status(status), description=desc, proposer="p", parent=None, commit=None, metric=metric)


def test_progress_points():
    exps = [exp(0, "keep", 2.0, "baseline"), exp(1, "discard", 2.5), exp(2, "keep", 1.5, "lr"), exp(3, "crash", None),
            exp(4, "discard", 1.7), exp(5, "invalid", None), exp(6, "keep", 1.2, "wider"), exp(7, "running", None)]
    pts = progress_points(exps, Goal.MINIMIZE)
    assert pts["kept"] == [(0, 2.0, "baseline"), (2, 1.5, "lr"), (6, 1.2, "wider")]
    assert pts["discarded"] == [(1, 2.5), (4, 1.7)]
    assert pts["best_x"] == [0, 1, 2, 4, 6] and pts["best_y"] == [2.0, 2.0, 1.5, 1.5, 1.2]
    assert pts["no_metric"] == 2 and pts["total"] == 7


def test_report_plot_writes_a_png(arena, tmp_path):
    props = write_proposals(tmp_path / "p.json", [{"description": "lower lr", "edits": [
        {"path": "train.py", "search": "LEARNING_RATE = 0.01", "replace": "LEARNING_RATE = 0.003"}]}])
    assert run_cli("run", arena, "--proposals", props).returncode == 0
    out = tmp_path / "chart" / "progress.png"
    r = run_cli("report", arena, "--plot", out)
    assert r.returncode == 0, r.stderr
    assert "2 experiments, 1 kept improvements" in r.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run_cli("report", arena).returncode == 2
    assert "not built yet" in run_cli("report", arena, "--out", tmp_path / "r.html").stderr


def test_write_progress_png_directly(tmp_path):
    exps = [exp(0, "keep", 2.0, "baseline"), exp(1, "keep", 1.0, "a much better idea with a long description text")]
    pts = write_progress_png(exps, "val_bpb", Goal.MINIMIZE, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000 and len(pts["kept"]) == 2
