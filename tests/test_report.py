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
    assert len(list((arena / ".autoresearch").glob("*/report.html"))) == 1  # the HTML report is written alongside


def test_write_progress_png_directly(tmp_path):
    exps = [exp(0, "keep", 2.0, "baseline"), exp(1, "keep", 1.0, "a much better idea with a long description text")]
    pts = write_progress_png(exps, "val_bpb", Goal.MINIMIZE, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000 and len(pts["kept"]) == 2


# -- the HTML and markdown reports ----------------------------------------------------------------
import html.parser  # noqa: E402

import pytest  # noqa: E402

from autoresearch.report.data import effect, summarize  # noqa: E402
from autoresearch.testing import constant_edit  # noqa: E402
from conftest import ledger_rows  # noqa: E402


def test_effect_with_and_without_standard_errors():
    assert effect(1.0, 2.0, 0.03, 0.04) == pytest.approx({"delta": -1.0, "ci": 1.959964 * 0.05, "pct": -50.0})
    assert effect(3.0, 2.0, None, 0.1) == {"delta": 1.0, "ci": None, "pct": 50.0}


def test_summarize_counts_chain_duty_and_money():
    def e(i, status, metric, parent=None, commit=None, se=None, runs=(), tokens=0, cost=0.0):
        return {"id": i, "status": status, "metric": metric, "parent": parent, "commit": commit, "se": se,
                "description": f"e{i}", "runs": list(runs), "tokens": tokens, "cost": cost}
    runs0 = [{"started_at": 100.0, "duration_s": 10.0, "slot": "a"}, {"started_at": 100.0, "duration_s": 10.0, "slot": "b"}]
    exps = [e(0, "keep", 2.0, commit="c0", se=0.01, runs=runs0),
            e(1, "keep", 1.8, parent="c0", commit="c1", se=0.02, runs=[{"started_at": 110.0, "duration_s": 10.0, "slot": "a"}], tokens=100, cost=0.5),
            e(2, "crash", None, parent="c1", runs=[{"started_at": 110.0, "duration_s": 5.0, "slot": "b"}], tokens=50, cost=0.25),
            e(3, "discard", 1.9, parent="c1"), e(4, "invalid", None), e(5, "running", None)]
    s = summarize({"goal": "minimize"}, exps)
    assert s["experiments"] == 5 and s["candidates"] == 4 and s["crash_rate"] == 0.25
    assert s["counts"] == {"keep": 2, "discard": 1, "crash": 1, "timeout": 0, "invalid": 1}
    assert s["best"]["id"] == 1 and s["baseline"] == 2.0
    assert s["vs_baseline"] == pytest.approx({"delta": -0.2, "ci": 1.959964 * (0.01 ** 2 + 0.02 ** 2) ** 0.5, "pct": -10.0})
    assert [(r["id"], r["parent_id"], round(r["delta"], 6)) for r in s["chain"]] == [(1, 0, -0.2)]
    assert s["wall_s"] == 20.0 and s["busy_s"] == 35.0 and s["slots"] == 2 and s["duty"] == pytest.approx(35 / 40)
    assert (s["tokens"], s["cost"]) == (150, 0.75)


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.circles, self.ids, self._stack = [], [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "tr" and "data-id" in a:
            self.rows.append({"id": int(a["data-id"]), "metric": None})
        if tag == "td" and "metric" in (a.get("class") or "") and self.rows:
            self.rows[-1]["metric"] = float(a["data-v"]) if a.get("data-v") else None
        if tag == "circle":
            self.circles.append((int(a["data-id"]), float(a["data-metric"]), a["class"].split()[1]))


def test_html_and_markdown_reports_match_the_ledger(arena, tmp_path):
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
        {"description": "narrow", "edits": [constant_edit("WIDTH", 64, 16)]},
        {"description": "bad dropout", "edits": [constant_edit("DROPOUT", 0.3, -0.5)]},
        {"description": "not editable", "edits": [{"path": "prepare.py", "search": "a", "replace": "b"}]},
        {"description": "wider <b>bold</b>", "edits": [constant_edit("WIDTH", 64, 256)]},
    ])
    assert run_cli("run", arena, "--tag", "r", "--proposals", props).returncode == 0
    r = run_cli("report", arena, "--out", tmp_path / "report.html")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "report.html").read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    page = _Page()
    page.feed(text)
    page.close()
    ledger = {x["id"]: x for x in ledger_rows(arena, "SELECT * FROM experiments")}
    assert {"summary", "chart", "chain", "experiments"} <= page.ids
    assert [row["id"] for row in page.rows] == sorted(ledger)
    for row in page.rows:
        expected = ledger[row["id"]]["metric"]
        assert row["metric"] == (None if expected is None else pytest.approx(expected))
    assert sorted(page.circles) == sorted((i, pytest.approx(x["metric"]), x["status"]) for i, x in ledger.items()
                                          if x["status"] in ("keep", "discard"))
    assert "wider &lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold</b>" not in text  # escaped
    assert '<span class="add">+LEARNING_RATE = 0.003' in text  # the diff, highlighted
    assert "DROPOUT must be in [0, 1)" in text  # the crash's reason and log tail
    assert "1.12886 (#5, wider" in text.replace("1.128856", "1.12886")
    md = run_cli("report", arena, "--format", "md")
    assert md.returncode == 0, md.stderr
    assert "| 5 | keep | 1.12886 | 1 | wider &lt;b&gt;bold&lt;/b&gt; |" in md.stdout  # HTML inert in markdown too
    assert "| 1 | lower lr | 1.32886 | -0.1367 (-9.33 %) |" in md.stdout
    assert "- experiments: 6 (keep 3, discard 1, crash 1, invalid 1)" in md.stdout
    assert run_cli("report", arena, "--format", "pdf").returncode == 2
