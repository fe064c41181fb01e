"""The reports: the progress chart (PNG), the HTML report (checked parsed, and rendered in
a real headless Chromium), the markdown report, and what ``run`` writes when it ends. The
pure parts (ticks, kinds, lanes, importance) table-driven; the rest on real campaigns in
temporary git repositories."""

import html.parser
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from autoresearch.records import Experiment, Goal, Status
from autoresearch.report.axes import log_ticks, nice_ticks, pow2_ticks, tick_label
from autoresearch.report.charts import chart_svg, kind, lanes
from autoresearch.report.data import effect, incumbent, summarize
from autoresearch.report.importance import MIN_TRIALS, param_importance
from autoresearch.report.netdiff import fence
from autoresearch.report.text import effect_text
from autoresearch.report.plot import progress_points, write_progress_png
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import git, ledger_rows, run_cli


def exp(i, status, metric, desc="x", reason=""):
    return Experiment(id=i, status=Status(status), description=desc, proposer="p", parent=None, commit=None, metric=metric,
                      reason=reason)


def test_progress_points():
    exps = [exp(0, "keep", 2.0, "baseline"), exp(1, "discard", 2.5), exp(2, "keep", 1.5, "lr"), exp(3, "crash", None),
            exp(4, "discard", 1.7), exp(5, "invalid", None), exp(6, "keep", 1.2, "wider"), exp(7, "running", None),
            exp(8, "discard", 1.1, reason="dropped: beat its parent #2 (...), but on the new incumbent #6: ...")]
    pts = progress_points(exps, Goal.MINIMIZE)
    assert pts["kept"] == [(0, 2.0, "baseline"), (2, 1.5, "lr"), (6, 1.2, "wider")]
    assert pts["discarded"] == [(1, 2.5), (4, 1.7)] and pts["dropped"] == [(8, 1.1)]
    assert pts["best_x"] == [0, 1, 2, 4, 6, 8] and pts["best_y"] == [2.0, 2.0, 1.5, 1.5, 1.2, 1.2]
    assert pts["no_metric"] == 2 and pts["total"] == 8


def test_report_plot_writes_a_png(arena, tmp_path):
    props = write_proposals(tmp_path / "p.json", [{"description": "lower lr", "edits": [
        {"path": "train.py", "search": "LEARNING_RATE = 0.01", "replace": "LEARNING_RATE = 0.003"}]}])
    assert run_cli("run", arena, "--proposals", props).returncode == 0
    out = tmp_path / "chart" / "progress.png"
    r = run_cli("report", arena, "--plot", out)
    assert r.returncode == 0, r.stderr
    assert "2 experiments, 1 kept improvement)" in r.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((arena / ".autoresearch").glob("*/report.html"))) == 1  # the HTML report is written alongside


def test_write_progress_png_directly(tmp_path):
    exps = [exp(0, "keep", 2.0, "baseline"), exp(1, "keep", 1.0, "a much better idea with a long description text")]
    pts = write_progress_png(exps, "val_bpb", Goal.MINIMIZE, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000 and len(pts["kept"]) == 2


# -- the HTML and markdown reports ----------------------------------------------------------------




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
    vs = dict(s["vs_baseline"])
    assert vs.pop("better") is True  # lower is better here: -0.2 is an improvement
    assert vs == pytest.approx({"delta": -0.2, "ci": 1.959964 * (0.01 ** 2 + 0.02 ** 2) ** 0.5, "pct": -10.0})
    assert effect_text(s["vs_baseline"]) == "0.2 (10.00 %) better, 95 % interval ±0.044"
    assert effect_text(effect(2.2, 2.0, None, None, Goal.MINIMIZE)) == "0.2 (10.00 %) worse"
    assert effect_text(effect(2.2, 2.0, None, None, Goal.MAXIMIZE)) == "0.2 (10.00 %) better"
    assert [(r["id"], r["parent_id"], round(r["delta"], 6)) for r in s["chain"]] == [(1, 0, -0.2)]
    assert s["wall_s"] == 20.0 and s["busy_s"] == 35.0 and s["slots"] == 2 and s["duty"] == pytest.approx(35 / 40)
    assert (s["tokens"], s["cost"]) == (150, 0.75)
    # a first attempt of the baseline that failed a day before its fix is not the campaign's time
    failed = {"started_at": 100.0 - 86400, "duration_s": 1.0, "slot": "a", "attempt": 1, "status": "crash"}
    exps[0] = {**e(0, "keep", 2.0, commit="c0", se=0.01, runs=[failed, *({**r, "attempt": 2} for r in runs0)]), "attempt": 2}
    s = summarize({"goal": "minimize"}, exps)
    assert s["wall_s"] == 20.0 and s["busy_s"] == 35.0
    exps[0]["runs"][0] = {**failed, "started_at": 90.0, "status": "ok"}  # a failed attempt's ok run: not counted either
    assert summarize({"goal": "minimize"}, exps)["wall_s"] == 20.0  # (a review: days of wall time)
    interrupted = {**failed, "started_at": 95.0, "status": "interrupted"}  # an attempt interrupted and resumed counts
    exps[0]["runs"].insert(1, interrupted)
    assert summarize({"goal": "minimize"}, exps)["wall_s"] == 30.0


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
        if tag == "circle" and (a.get("class") or "").startswith("pt "):
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
    assert "| # | status | val_loss | runs | proposer | description | reason |" in md.stdout
    assert "| 5 | keep | 1.12886 | 1 | scripted | wider &lt;b&gt;bold&lt;/b&gt; | 1.12886 beats the incumbent's" in md.stdout  # HTML inert
    assert "| 3 | crash | - | 1 | scripted | bad dropout | " in md.stdout and "DROPOUT must be in \\[0, 1)" in md.stdout
    assert "| 1 | lower lr | 1.32886 | 0.1367 (9.33 %) better |" in md.stdout
    assert "- experiments: 6 (keep 3, discard 1, crash 1, invalid 1)" in md.stdout
    assert run_cli("report", arena, "--format", "pdf").returncode == 2


# -- axes, kinds, lanes, importance: pure -----------------------------------------------------------


@pytest.mark.parametrize("lo, hi, n, ticks", [
    (0.0, 10.0, 5, [0, 2, 4, 6, 8, 10]),
    (1.1294, 2.8131, 5, [1.5, 2.0, 2.5]),
    (-0.5, 13.5, 5, [0, 2.5, 5, 7.5, 10, 12.5]),
    (0.97, 1.03, 4, [0.98, 1.0, 1.02]),
    (-3.0, -1.0, 4, [-3.0, -2.5, -2.0, -1.5, -1.0]),
    (5.0, 5.0, 5, [5.0]),
    (2.0, 1.0, 2, [1.0, 1.5, 2.0]),
])
def test_nice_ticks(lo, hi, n, ticks):
    assert nice_ticks(lo, hi, n) == pytest.approx(ticks)


@pytest.mark.parametrize("lo, hi, ticks", [
    (0.001, 0.1, [0.001, 0.01, 0.1]),
    (0.0015, 0.09, [0.002, 0.005, 0.01, 0.02, 0.05]),
    (16, 256, [20, 50, 100, 200]),
    (150, 1500, [200, 500, 1000]),
    (0.0, 1.0, []),  # not a log range
])
def test_log_ticks(lo, hi, ticks):
    assert log_ticks(lo, hi) == pytest.approx(ticks)


@pytest.mark.parametrize("values, ticks", [
    ([16, 64, 256], [16, 32, 64, 128, 256]), ([8, 4096], [8, 32, 128, 512, 2048]), ([64], [64]),
    ([16, 20], None), ([0.5, 2], None), ([], None),
])
def test_pow2_ticks(values, ticks):
    assert pow2_ticks(values, 5) == ticks


@pytest.mark.parametrize("x, text", [(0.0, "0"), (2.5, "2.5"), (1500.0, "1500"), (0.001, "0.001"), (0.0001, "0.0001"),
                                     (2e5, "2e+05"), (1.0000000001, "1"), (-0.25, "-0.25")])
def test_tick_label(x, text):
    assert tick_label(x) == text


@pytest.mark.parametrize("status, reason, expected", [
    ("keep", "1.2 beats the incumbent's 1.3", "keep"), ("discard", "1.4 does not beat the incumbent's 1.3", "discard"),
    ("discard", "dropped: beat its parent #7 (...), but on the new incumbent #9: ...", "dropped"),
    ("invalid", "stale: proposed for abc1234; on the incumbent def5678: ...", "stale"),
    ("invalid", "edit outside editable: ../x", "invalid"), ("crash", "exit code 1", "crash"),
])
def test_kind(status, reason, expected):
    assert kind({"status": status, "reason": reason}) == expected


@pytest.mark.parametrize("kept, tip", [
    ([(0, "c0", None)], 0),
    ([(0, "c0", None), (2, "c2", "c0"), (5, "c5", "c2")], 5),
    ([(0, "c0", None), (3, "c3", "c0"), (2, "c2", "c3")], 2),  # kept in finishing order, not id order
    ([], None),
])
def test_incumbent_is_the_tip_of_the_kept_chain(kept, tip):
    exps = [{"id": i, "status": "keep", "commit": c, "parent": p} for i, c, p in kept]
    exps.append({"id": 9, "status": "discard", "commit": "c9", "parent": "c0"})
    got = incumbent(exps)
    assert (got["id"] if got else None) == tip


def test_lanes_split_a_slot_label_shared_by_overlapping_runs():
    runs = [{"slot": "cpu:1", "start": 0.0, "end": 2.0, "exp": 1}, {"slot": "cpu:1", "start": 1.0, "end": 3.0, "exp": 2},
            {"slot": "cpu:1", "start": 2.0, "end": 4.0, "exp": 3}, {"slot": "cuda:0", "start": 0.0, "end": 9.0, "exp": 4}]
    assert [(name, [r["exp"] for r in row]) for name, row in lanes(runs)] == [
        ("cpu:1 (1)", [1, 3]), ("cpu:1 (2)", [2]), ("cuda:0", [4])]


def test_chart_marks_dropped_stale_and_failed_experiments_apart_from_ordinary_discards():
    exps = [{"id": 0, "status": "keep", "metric": 2.0, "description": "baseline", "reason": "baseline"},
            {"id": 1, "status": "discard", "metric": 2.2, "description": "a", "reason": "2.2 does not beat 2.0"},
            {"id": 2, "status": "discard", "metric": 1.5, "description": "b", "reason": "dropped: beat its parent #0"},
            {"id": 3, "status": "invalid", "metric": None, "description": "c", "reason": "stale: proposed for abc"},
            {"id": 4, "status": "crash", "metric": None, "description": "d", "reason": "exit code 1"}]
    svg = chart_svg(exps, Goal.MINIMIZE)
    page = _Svg()
    page.feed(svg)
    marks = {int(a["data-id"]): (tag, a["class"].split(), a.get("fill"), a.get("stroke")) for tag, a in page.marks}
    assert marks[1][:3] == ("circle", ["pt", "discard", "discard"], "#9a9a9a")
    assert marks[2][0] == "circle" and marks[2][1][2] == "dropped" and marks[2][2] == "#fff"  # hollow, orange ring
    assert marks[2][3] not in (None, "#9a9a9a")
    assert marks[3][0] == "path" and marks[3][1] == ["nm", "invalid", "stale"]  # no metric: a cross under the axis
    assert marks[4][0] == "path" and marks[4][1] == ["nm", "crash", "crash"]
    assert "dropped (beat its parent; the incumbent moved)" in svg and "stale (proposed for an old incumbent)" in svg
    assert len(page.ticks) >= 4  # axis ticks, not only min and max


class _Svg(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.marks, self.ticks = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-id" in a and tag in ("circle", "path"):
            self.marks.append((tag, a))
        if tag == "text" and a.get("class") == "tick":
            self.ticks.append(a)


def knobs_history(n, value=lambda lr, width: (lr - 0.01) ** 2 * 1e4 + width * 1e-5):
    """A knobs history of ``n`` experiments (the stored shape of proposers/knobs.py)."""
    import random
    rng = random.Random(1)
    spaces = {"LR": {"kind": "float", "low": 1e-4, "high": 0.1, "log": True, "choices": []},
              "WIDTH": {"kind": "pow2", "low": 3, "high": 9, "log": False, "choices": []}}
    parent = {"params": {"LR": 0.01, "WIDTH": 6}, "metric": value(0.01, 64)}
    out = [Experiment(id=0, status=Status.KEEP, description="baseline", proposer="baseline", parent=None, commit="c0",
                      metric=parent["metric"])]
    for i in range(1, n + 1):
        params = {"LR": round(10 ** rng.uniform(-4, -1), 6), "WIDTH": rng.randint(3, 9)}
        out.append(Experiment(id=i, status=Status.DISCARD, description=f"e{i}", proposer="knobs", parent="c0", commit=f"c{i}",
                              metric=value(params["LR"], 2 ** params["WIDTH"]),
                              meta={"knobs": {"params": params, "spaces": spaces, "parent": parent}}))
    return out


def test_importance_says_plainly_when_there_are_too_few_trials():
    few = param_importance(knobs_history(MIN_TRIALS - 2), Goal.MINIMIZE)  # + the baseline: MIN_TRIALS - 1 points
    assert few["importances"] == {} and few["trials"] == MIN_TRIALS - 1
    assert few["note"].startswith("too few trials for parameter importance: 9 distinct knob settings")
    none = param_importance([exp(0, "keep", 2.0, "baseline"), exp(1, "discard", 2.5)], Goal.MINIMIZE)
    assert none["importances"] == {} and "no knobs experiments" in none["note"]


@pytest.mark.parametrize("goal", [Goal.MINIMIZE, Goal.MAXIMIZE])
def test_importance_ranks_the_knob_that_moves_the_metric_first(goal):
    sign = 1 if goal is Goal.MINIMIZE else -1
    history = knobs_history(40, lambda lr, width: sign * ((lr - 0.01) ** 2 * 1e4 + width * 1e-6))
    imp = param_importance(history, goal)
    assert imp["trials"] == 41 and imp["note"] == ""
    assert list(imp["importances"]) == ["LR", "WIDTH"] and imp["importances"]["LR"] > 0.6
    assert sum(imp["importances"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize("text, expected", [("plain", "```"), ("a ``` b", "````"), ("x ````` y", "``````")])
def test_fence_is_longer_than_any_backtick_run(text, expected):
    assert fence(text) == expected


# -- what `run` writes when it ends ---------------------------------------------------------------

def report_lines(arena: Path, tag: str) -> list[str]:
    folder = arena / ".autoresearch" / tag
    return [f"report:   {folder / 'report.html'}", f"markdown: {folder / 'report.md'} (for a pull request)",
            f"chart:    {folder / 'progress.png'} (also {arena / 'progress.png'})"]


def constants(text: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"^([A-Z_]+) = ([-+0-9.e]+)", text, re.M)}


@pytest.fixture(scope="module")
def knobs_campaign(tmp_path_factory):
    """A real knobs campaign on two slots (so some proposals go stale or are dropped), long
    enough for parameter importance."""
    arena = make_synthetic_arena(tmp_path_factory.mktemp("knobs") / "arena")
    r = run_cli("run", arena, "--tag", "k", "--proposer", "knobs", "--sampler", "tpe", "-n", "20", "--slots", "2", report=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return arena, r


@pytest.mark.slow
def test_run_ends_naming_the_report_chart_and_markdown(knobs_campaign):
    arena, r = knobs_campaign
    lines = r.stdout.rstrip().splitlines()
    assert "done: reached --max-experiments 20" in lines[-4]
    assert lines[-3:] == report_lines(arena, "k")
    assert lines[-5].startswith(f"next: `autoresearch ablate {arena} --tag k` measures, on fresh seeds")  # a keep
    for line in lines[-3:]:
        assert Path(line.split()[1]).stat().st_size > 1000
    assert (arena / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert git(arena, "status", "--porcelain") == ""  # our files stay out of the user's checkout


@pytest.mark.slow
def test_status_json_carries_every_knobs_experiments_values(knobs_campaign):
    arena, _ = knobs_campaign
    searched = sorted(k["name"] for k in json.loads(run_cli("knobs", arena, "--json").stdout) if not k["frozen"])
    status = json.loads(run_cli("status", arena, "--json", "--tag", "k").stdout)
    knob_exps = [e for e in status["experiments"] if e["proposer"] == "knobs"]
    assert len(knob_exps) == 19 and searched
    for e in knob_exps:
        assert sorted(e["params"]) == searched, e  # complete: every knob searched, not only the changed ones
        for name, old, new in re.findall(r"([A-Z_]+) ([^\s,]+) → ([^\s,]+)", e["description"]):
            assert e["params"][name] == pytest.approx(float(new)), e  # the user's units (never 2**k or 1 - x)
        if e["commit"]:  # what ran: the committed file holds exactly these values
            written = constants(git(arena, "show", f"{e['commit']}:train.py"))
            assert {n: written[n] for n in searched} == pytest.approx(e["params"]), e
    assert "params" not in status["experiments"][0]  # the baseline is no knobs experiment


@pytest.mark.slow
def test_markdown_report_has_reasons_and_the_net_diff(knobs_campaign):
    arena, _ = knobs_campaign
    md = (arena / ".autoresearch" / "k" / "report.md").read_text()
    base = ledger_rows(arena, "SELECT base_commit FROM campaigns WHERE tag='k'")[0]["base_commit"]
    net = git(arena, "diff", "--no-color", f"{base}..autoresearch/k", "--", "train.py")
    assert net and f"```diff\n{net}\n```" in md
    tip = git(arena, "rev-parse", "autoresearch/k")
    assert f"### Net change: base `{base[:7]}` → #" in md and f"`{tip[:7]}` (editable files)" in md
    assert "| # | status | val_loss | runs | proposer | description | reason |" in md
    assert re.search(r"^\| 1 \| \w+ \| .* \| knobs \(tpe\) \|", md, re.M)  # what made it: the sampler it asked
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| \w+ \| .* \| ([^|]*) \|$", md, re.M)}
    for x in ledger_rows(arena, "SELECT id, reason FROM experiments"):
        assert rows[x["id"]].strip(), x["id"]  # every experiment says why
    assert "### Parameter importance (Optuna's PED-ANOVA, " in md and "| WIDTH | " in md


def test_report_failures_cost_neither_the_outcome_nor_the_exit_code(arena, tmp_path):
    props = write_proposals(tmp_path / "p.json", [{"description": "lower lr", "edits": [
        constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    r = run_cli("run", arena, "--tag", "f", "--proposals", props, "-n", "1", "--no-report")
    assert r.returncode == 0 and "report:" not in r.stdout and not (arena / ".autoresearch" / "f" / "report.md").exists()
    (arena / ".autoresearch" / "f" / "report.html").mkdir()  # the report cannot be written there
    r = run_cli("run", arena, "--tag", "f", "--proposals", props, report=True)
    assert r.returncode == 0, r.stderr
    assert "done: proposals exhausted" in r.stdout
    assert f"report: the report ({arena}/.autoresearch/f/report.html) was not written: " in " ".join(r.stderr.split())
    assert r.stdout.rstrip().splitlines()[-2:] == report_lines(arena, "f")[1:]  # the others were written
    assert ledger_rows(arena, "SELECT status FROM experiments WHERE id=1")[0]["status"] == "keep"


# -- the HTML report in a real browser ------------------------------------------------------------

def chromium():
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chrome or not driver:
        pytest.fail("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver "
                    "(make setup does it when it runs as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1100"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.slow
def test_the_html_report_in_a_real_browser(knobs_campaign, tmp_path):
    from selenium.webdriver.common.by import By

    arena, _ = knobs_campaign
    page = arena / ".autoresearch" / "k" / "report.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # offline: nothing to fetch
    ledger = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason, metric FROM experiments")}
    runs = ledger_rows(arena, "SELECT experiment_id, slot FROM runs")
    browser = chromium()
    try:
        browser.get(page.as_uri())
        css = lambda sel: browser.find_elements(By.CSS_SELECTOR, sel)  # noqa: E731
        severe = [x for x in browser.get_log("browser") if x["level"] == "SEVERE"]
        assert not severe, severe
        for sel in ("#chart", "#timeline", "#params", "#importance", "#net-diff", "#experiments"):
            assert css(sel) and css(sel)[0].size["height"] > 0, sel  # rendered, not only present
        importance = {r.get_attribute("data-param"): float(r.find_element(By.CSS_SELECTOR, "td.num").text)
                      for r in css("#importance tr[data-param]")}
        assert set(importance) == {"LEARNING_RATE", "WIDTH", "DROPOUT", "WARMUP_STEPS"}
        assert sum(importance.values()) == pytest.approx(1.0, abs=0.01)
        assert len(css("#params svg.param")) == 4
        bars = css("#timeline g.run")
        assert sorted(int(b.get_attribute("data-exp")) for b in bars) == sorted(r["experiment_id"] for r in runs)
        assert len({b.get_attribute("data-slot") for b in bars}) >= 2  # both slots visible
        assert len(css("#chart text.tick")) >= 6  # ticks on both axes, not only min and max
        for i, x in ledger.items():
            k = "dropped" if str(x["reason"]).startswith("dropped") else \
                "stale" if str(x["reason"]).startswith("stale") else x["status"]
            mark = css(f'#chart [data-id="{i}"]')
            assert len(mark) == 1 and k in mark[0].get_attribute("class").split(), (i, k)
            assert mark[0].tag_name == ("circle" if x["metric"] is not None else "path"), (i, k)
        artifacts = Path(os.environ.get("AUTORESEARCH_TEST_ARTIFACTS") or tmp_path)
        artifacts.mkdir(parents=True, exist_ok=True)
        browser.set_window_size(1300, 3000)
        assert browser.save_screenshot(str(artifacts / "report.png"))
    finally:
        browser.quit()


def test_a_dropped_candidate_is_marked_as_such_everywhere(tmp_path):
    # two slots, two improving edits of one line, both made on the baseline: the first to
    # finish is kept; the other beat its parent but cannot be re-applied, so it is dropped
    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=1.0)
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lr 0.003", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
        {"description": "lr 0.004", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.004)]}])
    r = run_cli("run", arena, "--tag", "d", "--proposals", props, "--slots", "2", report=True)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, reason, metric FROM experiments")}
    dropped = [i for i, x in rows.items() if x["reason"].startswith("dropped")]
    assert len(dropped) == 1 and rows[dropped[0]]["status"] == "discard", rows
    text = (arena / ".autoresearch" / "d" / "report.html").read_text()
    page = _Svg()
    page.feed(text[text.index('<svg id="chart"'):text.index("</svg>", text.index('<svg id="chart"'))])
    mark = next(a for tag, a in page.marks if a["data-id"] == str(dropped[0]))
    assert mark["class"] == "pt discard dropped" and mark["fill"] == "#fff"  # a hollow ring, not a grey dot
    assert f'<tr data-id="{dropped[0]}" data-kind="dropped">' in text
    md = (arena / ".autoresearch" / "d" / "report.md").read_text()
    assert re.search(rf"^\| {dropped[0]} \| discard \| .* \| dropped: beat its parent #0 ", md, re.M), md
    from autoresearch.status import open_ledger_readonly

    ledger, campaign = open_ledger_readonly(arena, "d")
    try:
        pts = progress_points(ledger.experiments(campaign), Goal.MINIMIZE)
    finally:
        ledger.close()
    assert [i for i, _ in pts["dropped"]] == dropped and all(i != dropped[0] for i, _ in pts["discarded"])


@pytest.mark.parametrize("total, kept, title", [
    (12, 3, "12 experiments, 2 kept improvements"),   # the baseline is kept, and no improvement
    (10, 2, "10 experiments, 1 kept improvement"),    # a newcomer's trial: "1 kept improvements"
    (1, 1, "1 experiment, 0 kept improvements"),
    (0, 0, "0 experiments, 0 kept improvements"),
])
def test_the_progress_charts_title(total, kept, title):
    from autoresearch.report.plot import kept_title

    assert kept_title(total, kept) == title


@pytest.mark.parametrize("ab, best, said", [
    (None, None, None),
    ({"rows": [{"variant": "full", "commit": "c1"}]}, {"commit": "c1"}, None),  # leave-one-out rows only: no net row
    ({"rows": [{"variant": "full", "commit": "c1", "runs": [1.0, 1.1]},
               {"variant": "baseline", "verdict": "holds", "effect": 0.2, "ci": 0.05, "p_value": 0.004,
                "runs": [1.2, 1.3]}]}, {"commit": "c1"},
     "holds: +0.2 ± 0.05 on 2 fresh seed(s), p = 0.004 (`autoresearch ablate`)"),
    ({"rows": [{"variant": "full", "commit": "c0aaaaaaaa"},
               {"variant": "baseline", "verdict": "not confirmed", "effect": -0.001, "ci": 0.03, "p_value": 0.86,
                "runs": [1, 2, 3]}]}, {"commit": "c2"},   # the campaign went on after the check
     "not confirmed: -0.001 ± 0.03 on 3 fresh seed(s), p = 0.86 (of an earlier incumbent, c0aaaaa) (`autoresearch ablate`)"),
])
def test_the_net_check_in_the_summary(ab, best, said):
    from autoresearch.report.text import net_check

    assert net_check(ab, best) == said


@pytest.mark.parametrize(
    "spans, sessions, wall",
    [([(100, 110), (110, 125)], [], 25),                       # no session known: first run to last
     ([(100, 110), (110, 125)], [90], 25),                     # one session
     ([(100, 110), (5000, 5020)], [90, 4990], 30),             # stopped for over an hour, then resumed
     ([(100, 110), (105, 130), (5000, 5020)], [90, 4990], 50),  # overlapping runs on two slots
     ([(100, 110), (5000, 5020)], [90, 200, 4990], 30)],        # a session that ran nothing
)
def test_wall_time_is_summed_over_sessions(spans, sessions, wall):
    from autoresearch.report.data import active_wall

    assert active_wall(spans, sessions) == wall


def test_a_resumed_campaign_is_not_charged_for_the_time_it_sat_stopped(tmp_path):
    import time

    from autoresearch.report.data import report_data
    from autoresearch.status import open_ledger_readonly
    from autoresearch.store.ledger import sessions

    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=0.2)
    props = write_proposals(tmp_path / "p.json", [
        {"description": f"{name} {new}", "edits": [constant_edit(name, old, new)]}
        for name, old, new in (("LEARNING_RATE", 0.01, 0.003), ("WIDTH", 64, 48), ("DROPOUT", 0.3, 0.2))])
    first = run_cli("run", arena, "--tag", "s", "--proposals", props, "--max-experiments", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    time.sleep(4.0)  # stopped
    second = run_cli("run", arena, "--tag", "s", "--proposals", props, "--max-experiments", "4")
    assert second.returncode == 0, second.stdout + second.stderr
    ledger, campaign = open_ledger_readonly(arena, "s")
    try:
        assert len(sessions(ledger, campaign)) == 2
        summary = report_data(ledger, campaign)["summary"]
        runs = ledger.runs(campaign)
    finally:
        ledger.close()
    span = max(r["started_at"] + r["duration_s"] for r in runs) - min(r["started_at"] for r in runs)
    assert span > 4.0 and summary["wall_s"] < span - 3.5, (summary["wall_s"], span, second.stdout)
    assert summary["busy_s"] == pytest.approx(sum(r["duration_s"] for r in runs)) and len(runs) == 4


def test_a_schema_5_ledger_is_read_as_it_is_and_upgraded_by_the_next_run(tmp_path):
    """A review: every read-only command refused a ledger the version before wrote (schema 5,
    no sessions table), telling the user to run a campaign to upgrade it."""
    import sqlite3

    from autoresearch.report.data import report_data
    from autoresearch.status import open_ledger_readonly
    from autoresearch.store.ledger import SCHEMA_VERSION, sessions

    arena = make_synthetic_arena(tmp_path / "arena", run_seconds=0.2)
    assert run_cli("run", arena, "--tag", "s", "--max-experiments", "1").returncode == 0
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    db.execute("DROP TABLE sessions")
    db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    status = run_cli("status", arena)
    assert status.returncode == 0 and "older schema" not in status.stdout + status.stderr, status.stdout + status.stderr
    ledger, campaign = open_ledger_readonly(arena, "s")
    try:
        assert sessions(ledger, campaign) == [] and report_data(ledger, campaign)["summary"]["wall_s"] > 0
    finally:
        ledger.close()
    assert run_cli("run", arena, "--tag", "s", "--max-experiments", "1").returncode == 0  # upgrades it
    ledger, campaign = open_ledger_readonly(arena, "s")
    try:
        assert len(sessions(ledger, campaign)) == 1
        assert ledger.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    finally:
        ledger.close()
