"""Metrics as programs print them (issue 17, item 4): ``[metric] pattern`` for the target,
``[metric.patterns]`` for secondary metrics. Parsing is pure and table-driven; config
validation through ``load_config``; two campaigns through the real CLI on a nanoGPT-style
arena that prints ``step N: train loss X, val loss Y`` and no ``name: value`` line."""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from pathlib import Path

import pytest

from autoresearch.config import load_config
from autoresearch.errors import ConfigError, UsageError
from autoresearch.metrics import MAX_PATTERNS, measure, parse_patterns
from autoresearch.testing import commit_all, write_proposals
from conftest import git, ledger_rows, run_cli

VAL = r"val loss ([0-9.]+)"
TRAIN = r"train loss ([0-9.]+)"
NANOGPT = ("step 0: train loss 4.2000, val loss 4.2100\n"
           "iter 0: loss 4.1800, time 12.00ms, mfu -100.00%\n"
           "step 100: train loss 2.9000, val loss 2.9500\n"
           "iter 100: loss 2.8800, time 11.00ms, mfu 3.10%\n"
           "step 200: train loss 2.5747, val loss 2.6098\n")


# -- parsing (pure) -------------------------------------------------------------------------------

@pytest.mark.parametrize("output, patterns, values, bad", [
    # the last match in the output counts (nanoGPT prints the val loss at every eval interval)
    (NANOGPT, {"val_loss": VAL, "train_loss": TRAIN}, {"val_loss": 2.6098, "train_loss": 2.5747}, {}),
    # a carriage return ends a line: progress output rewritten in place, no newline at all
    ("val loss 3.0\rval loss 2.5\rval loss 2.25", {"val_loss": VAL}, {"val_loss": 2.25}, {}),
    ("val loss 2.0\n\r 10% |###   | eta 3s\r 20% |####  |", {"val_loss": VAL}, {"val_loss": 2.0}, {}),
    ("step 1: val loss 3.5\r\nstep 2: val loss 3.25\r\n", {"val_loss": VAL}, {"val_loss": 3.25}, {}),
    # several matches on one line: the last one
    ("val loss 9.0 ... val loss 1.5\n", {"val_loss": VAL}, {"val_loss": 1.5}, {}),
    # no match: nothing (measure then says the metric is missing)
    ("step 0: train loss 4.2\n", {"val_loss": VAL}, {}, {}),
    ("", {"val_loss": VAL}, {}, {}),
    # a named group is the value, whatever other groups there are
    ("acc=91.5% (top1)\n", {"acc": r"acc=(?P<value>[0-9]+(\.[0-9]+)?)%"}, {"acc": 91.5}, {}),
    # a capture that is not a number is reported as such, with its text
    ("val loss 2.61.\n", {"val_loss": VAL}, {}, {"val_loss": "2.61."}),
    ("val loss: n/a\n", {"val_loss": r"val loss: (\S+)"}, {}, {"val_loss": "n/a"}),
    ("val loss: nan\n", {"val_loss": r"val loss: (\S+)"}, {"val_loss": math.nan}, {}),
    ("val loss 1e-3\n", {"val_loss": r"val loss (\S+)"}, {"val_loss": 0.001}, {}),
    # an optional group that took no part in the last match: an earlier line's value
    ("val loss 2.0\nval loss none\n", {"val_loss": r"val loss ([0-9.]+)?"}, {"val_loss": 2.0}, {}),
    # a bad regex (the config refuses it) matches nothing rather than raising
    ("val loss 2.0\n", {"val_loss": r"val loss ([0-9.]+"}, {}, {}),
    # only the last MB is read, as for `name: value` lines
    ("val loss 1.0\n" + "x" * (1 << 20) + "\n", {"val_loss": VAL}, {}, {}),
])
def test_parse_patterns(output, patterns, values, bad):
    found, unparsable, texts = parse_patterns(output, patterns)
    assert found.keys() == values.keys()
    for name, value in values.items():
        assert (math.isnan(value) and math.isnan(found[name])) or found[name] == value
        assert float(texts[name]) == found[name] or math.isnan(found[name])
    assert unparsable == bad


@pytest.mark.parametrize("kwargs, metric, metrics, problem, warning", [
    # the target through the pattern, a secondary metric through [metric.patterns]
    (dict(run_output=NANOGPT, pattern=VAL, patterns={"train_loss": TRAIN}), 2.6098,
     {"val_loss": 2.6098, "train_loss": 2.5747}, "", None),
    # in one output the pattern wins over a `val_loss:` line
    (dict(run_output="val_loss: 9.0\nstep 5: val loss 1.25\n", pattern=VAL), 1.25, {"val_loss": 1.25}, "", None),
    # the pattern finds nothing: the `val_loss:` line counts
    (dict(run_output="---\nval_loss: 1.5\n", pattern=VAL), 1.5, {"val_loss": 1.5}, "", None),
    # nothing at all: the usual missing-metric path, which names the pattern
    (dict(run_output="step 0: train loss 4.2\n", pattern=VAL), None, {}, "the run reported no val_loss", None),
    (dict(run_output="step 0: train loss 4.2\n", pattern=VAL), None, {}, "val loss ([0-9.]+)", None),
    # a capture that is not a finite number: the experiment crashes with the reason, the harness does not
    (dict(run_output="val loss 2.61.\n", pattern=VAL), None, {}, "val_loss is not a number: '2.61.'", None),
    (dict(run_output="val loss: inf\n", pattern=r"val loss: (\S+)"), None, {}, "val_loss is inf", None),
    # a secondary capture that is not a finite number: dropped with a warning
    (dict(run_output="val loss 2.0, grad norm 1.2.3\n", pattern=VAL, patterns={"grad_norm": r"grad norm ([0-9.]+)"}),
     2.0, {"val_loss": 2.0}, "", "pattern for grad_norm matched '1.2.3'"),
    (dict(run_output="val loss 2.0, grad norm nan\n", pattern=VAL, patterns={"grad_norm": r"grad norm (\S+)"}),
     2.0, {"val_loss": 2.0}, "", "not a finite number"),
    # the JSON result file still wins over the printed (matched) value
    (dict(run_output="val loss 0.5\n", run_json='{"val_loss": 1.25}', pattern=VAL), 1.25, {"val_loss": 1.25}, "",
     "printed val_loss=0.5 disagrees with the result file"),
    (dict(run_output="val loss 1.2500\n", run_json='{"val_loss": 1.25001}', pattern=VAL), 1.25001,
     {"val_loss": 1.25001}, "", None),  # within the printed precision: agrees
    # with an eval: only the eval's output counts, its matched value included
    (dict(run_output="val loss 0.0001\n", pattern=VAL, eval_output="eval: val loss 2.0\n", eval_configured=True),
     2.0, {"val_loss": 2.0}, "", "only the eval's 2 counts"),
    (dict(run_output="val loss 0.0001\n", pattern=VAL, eval_output="no numbers\n", eval_configured=True),
     None, {}, "the eval reported no val_loss", None),
    # secondary metrics are read from the run and the eval alike
    (dict(run_output="train loss 2.5\n", pattern=VAL, patterns={"train_loss": TRAIN},
          eval_output="val loss 2.75\n", eval_configured=True), 2.75, {"val_loss": 2.75, "train_loss": 2.5}, "", None),
])
def test_measure_with_patterns(kwargs, metric, metrics, problem, warning):
    kwargs = {"run_json": None, **kwargs}
    m = measure("val_loss", **kwargs)
    assert m.metric == metric
    assert dict(m.metrics) == metrics or (metric is None and problem)
    assert problem in m.problem
    if warning is None:
        assert m.warnings == ()
    else:
        assert any(warning in w for w in m.warnings), m.warnings


@pytest.mark.parametrize("printed, from_file, conflict", [
    ("step 9: val loss 0.9979\n", '{"val_loss": 0.99794}', False),  # within the printed precision
    ("step 9: val loss 0.9979\n", '{"val_loss": 0.5}', True),       # something else wrote one of them
])
def test_the_evals_matched_value_and_its_result_file_must_agree(printed, from_file, conflict):
    m = measure("val_loss", run_output="", run_json=None, eval_output=printed, eval_json=from_file,
                eval_configured=True, pattern=VAL)
    assert bool(m.conflict) is conflict, m.conflict
    assert m.metric == json.loads(from_file)["val_loss"]


@pytest.mark.parametrize("output", [
    "val loss " + "9" * (1 << 20),                                   # one line of 1 MB, no newline
    " " * (1 << 20),                                                  # 1 MB of what \s* would try everywhere
    ("x" * 2000 + "\n") * 520,                                        # 1 MB of long lines that never match
    "\r".join(["val loss ."] * 100_000),                              # 1 MB of progress updates
])
def test_big_outputs_stay_fast(output):
    patterns = {f"m{i}": r"\s*val loss\s*([0-9.]+)\s*$" for i in range(MAX_PATTERNS)}
    start = time.perf_counter()
    m = measure("val_loss", run_output=output, run_json=None, pattern=r"\s*val\s*loss\s*([0-9.]+)", patterns=patterns)
    assert time.perf_counter() - start < 5.0
    assert m.metric is None or m.metric > 0


# -- config --------------------------------------------------------------------------------------

CONFIG = """
[arena]
editable = ["train.py"]
run = "python train.py"

[metric]
name = "val_loss"
"""


def load(tmp_path: Path, metric_lines: str, overrides: dict | None = None):
    text = CONFIG + metric_lines
    (tmp_path / "autoresearch.toml").write_text(text)
    return load_config(tmp_path, overrides).config


def test_patterns_load(tmp_path):
    cfg = load(tmp_path, "pattern = 'val loss ([0-9.]+)'\n[metric.patterns]\ntrain_loss = 'train loss ([0-9.]+)'\n"
                         "\"eval/acc\" = 'acc (?P<value>[0-9]+(\\.[0-9]+)?)%'\n")
    assert cfg.metric.pattern == VAL
    assert cfg.metric.patterns == {"train_loss": TRAIN, "eval/acc": r"acc (?P<value>[0-9]+(\.[0-9]+)?)%"}
    assert load(tmp_path, "").metric.pattern is None and load(tmp_path, "").metric.patterns == {}


@pytest.mark.parametrize("lines, message", [
    ("pattern = 'val loss ([0-9.]+'\n", "metric.pattern: not a valid regular expression: missing ), unterminated"),
    ("pattern = 'val loss [0-9.]+'\n", "it has 0 capture groups"),
    ("pattern = '(\\w+) loss ([0-9.]+)'\n", "it has 2 capture groups"),
    ("pattern = '(\\w+) loss ([0-9.]+)'\n", "(?P<value>...)"),
    ("pattern = '([0-9.]*)'\n", "matches an empty line"),
    ("pattern = ''\n", "the pattern is empty"),
    (f"pattern = '{'x' * 600}([0-9]+)'\n", "at most 500"),
    ("pattern = '(?:\\w+\\s?)*loss ([0-9.]+)'\n", "repeats a repetition"),
    ("pattern = '(a+)+'\n", "exponential time"),
    ("pattern = 5\n", "metric.pattern"),
    ("[metric.patterns]\ntrain_loss = 'train loss ('\n", "metric.patterns.train_loss: not a valid regular expression"),
    ("[metric.patterns]\n\"bad name!\" = 'x ([0-9]+)'\n", "'bad name!' is not a metric name"),
    ("[metric.patterns]\nval_loss = 'v ([0-9]+)'\n", "set its regex as [metric] pattern"),
    ("[metric.patterns]\n" + "".join(f"m{i} = 'm{i} ([0-9]+)'\n" for i in range(MAX_PATTERNS + 1)),
     f"at most {MAX_PATTERNS}"),
])
def test_bad_patterns_are_config_errors_that_say_the_fix(tmp_path, lines, message):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, lines)
    assert message in str(e.value)
    assert "(autoresearch.toml" in str(e.value)
    if "regular expression" in message or "capture groups" in message or "empty" in message:
        assert "e.g. 'val loss ([0-9.]+)'" in str(e.value)


def test_a_bad_pattern_from_the_command_line_is_a_usage_error(tmp_path):
    assert load(tmp_path, "", {"metric.pattern": VAL}).metric.pattern == VAL
    with pytest.raises(UsageError, match=r"metric.pattern: not a valid regular expression.*\(the command line"):
        load(tmp_path, "", {"metric.pattern": "val loss (["})


# -- campaigns through the real CLI ----------------------------------------------------------------

TRAIN_PY = '''"""A nanoGPT-style training script: progress lines, no summary block."""
import math
import sys

LEARNING_RATE = 0.01
MAX_ITERS = 300
EVAL_INTERVAL = 100


def losses(lr, step):
    """Loss at a step: falls with training, lowest near lr = 0.003."""
    floor = 1.5 + 40 * abs(math.log10(lr / 0.003)) ** 2 / 100
    return floor + 2.5 * math.exp(-step / 80) + 0.02, floor + 2.5 * math.exp(-step / 80)


if __name__ == "__main__":
    for step in range(MAX_ITERS + 1):
        if step % EVAL_INTERVAL == 0:
            train, val = losses(LEARNING_RATE, step)
            print(f"step {step}: train loss {train:.4f}, val loss {val:.4f}")
        if step % 50 == 0:
            sys.stdout.write(f"\\riter {step}: loss {losses(LEARNING_RATE, step)[0]:.4f}, time 1.00ms")
    print()
'''

EVALUATE_PY = '''"""The trusted evaluator: reads the constants, prints what nanoGPT's estimate_loss would."""
import train

train_loss, val_loss = train.losses(train.LEARNING_RATE, train.MAX_ITERS)
print(f"eval: train loss {train_loss:.4f}, val loss {val_loss:.4f}")
'''


def nanogpt_arena(path: Path, *, eval_cmd: bool) -> Path:
    path.mkdir(parents=True)
    (path / "train.py").write_text(TRAIN_PY)
    python = shlex.quote(sys.executable)
    config = f'[arena]\neditable = ["train.py"]\nrun = {json.dumps(python + " train.py")}\ntime_budget_s = 10\ntimeout_s = 30\n'
    if eval_cmd:
        (path / "evaluate.py").write_text(EVALUATE_PY)
        config += f'readonly = ["evaluate.py"]\neval = {json.dumps(python + " evaluate.py")}\n'
    config += ("\n[metric]\nname = \"val_loss\"\ngoal = \"minimize\"\npattern = 'val loss ([0-9.]+)'\n"
               "[metric.patterns]\ntrain_loss = 'train loss ([0-9.]+)'\n\n"
               "[proposer]\nkind = \"scripted\"\n\n[judge]\npolicy = \"greedy\"\n")
    (path / "autoresearch.toml").write_text(config)
    git(path, "init", "-q")
    commit_all(path, "nanoGPT-style arena")
    return path


def lr_edit(old: float, new: float) -> dict:
    return {"path": "train.py", "search": f"LEARNING_RATE = {old!r}", "replace": f"LEARNING_RATE = {new!r}"}


def expected_val(lr: float, step: int = 300) -> float:
    floor = 1.5 + 40 * abs(math.log10(lr / 0.003)) ** 2 / 100
    return round(floor + 2.5 * math.exp(-step / 80), 4)


def experiments(arena: Path) -> list:
    return ledger_rows(arena, "SELECT id, status, metric, metrics_json, warnings_json, reason FROM experiments ORDER BY id")


@pytest.mark.slow
def test_a_nanogpt_style_program_needs_no_wrapper(tmp_path):
    arena = nanogpt_arena(tmp_path / "arena", eval_cmd=False)
    assert "val_loss:" not in TRAIN_PY
    props = write_proposals(tmp_path / "proposals.json", [
        {"description": "lower the learning rate", "edits": [lr_edit(0.01, 0.003)]},   # keep
        {"description": "raise it far", "edits": [lr_edit(0.003, 0.1)]},              # discard
    ])
    r = run_cli("run", arena, "--tag", "t1", "--proposals", props, "--max-experiments", "10")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = experiments(arena)
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep"), (1, "keep"), (2, "discard")]
    # the last eval interval's value counts (the first one would make every experiment tie)
    for row, lr in zip(rows, (0.01, 0.003, 0.1)):
        assert row["metric"] == pytest.approx(expected_val(lr), abs=1e-9)
        train_loss = json.loads(row["metrics_json"])["train_loss"]
        assert train_loss == pytest.approx(expected_val(lr) + 0.02, abs=1e-4)
        assert json.loads(row["warnings_json"]) == []
    assert rows[1]["metric"] < rows[0]["metric"] < rows[2]["metric"]
    tsv = (arena / "results.tsv").read_text().splitlines()
    assert tsv[0] == "commit\tval_loss\tmemory_gb\tstatus\tdescription"
    assert tsv[2].split("\t")[1:] == [f"{expected_val(0.003):.6f}", "0.0", "keep", "lower the learning rate"]


@pytest.mark.slow
def test_with_an_eval_the_evals_printed_value_is_matched(tmp_path):
    arena = nanogpt_arena(tmp_path / "arena", eval_cmd=True)
    cheat = {"path": "train.py", "search": "    print()\n",
             "replace": "    print()\n    print('step 300: train loss 0.0001, val loss 0.0001')\n"}
    props = write_proposals(tmp_path / "proposals.json", [
        {"description": "print a fake val loss", "edits": [cheat]},                   # discard: the eval decides
        {"description": "lower the learning rate", "edits": [lr_edit(0.01, 0.003)]},   # keep
    ])
    r = run_cli("run", arena, "--tag", "t1", "--proposals", props, "--max-experiments", "10")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = experiments(arena)
    assert [(x["id"], x["status"]) for x in rows] == [(0, "keep"), (1, "discard"), (2, "keep")]
    assert rows[0]["metric"] == pytest.approx(expected_val(0.01), abs=1e-9)
    assert rows[1]["metric"] == pytest.approx(expected_val(0.01), abs=1e-9)
    assert any("only the eval's" in w for w in json.loads(rows[1]["warnings_json"]))
    assert rows[2]["metric"] == pytest.approx(expected_val(0.003), abs=1e-9)


def test_a_regex_that_backtracks_on_crafted_output_cannot_hang_the_harness():
    # '.*loss.*=' backtracks quadratically per line, and a run controls its own output: the
    # patterns run in a child process with a deadline; the run then has no value, with a reason
    from autoresearch.metrics import parse_printed

    hostile = ("loss" * 500 + "\n") * 500
    started = time.monotonic()
    values, _, _, warnings = parse_printed(hostile, "val_loss", {"val_loss": r".*loss.*=\s*([0-9.]+)"}, bounded=1.0)
    assert time.monotonic() - started < 10
    assert "val_loss" not in values and any("took more than 1 s" in w for w in warnings), warnings
    ok = measure("val_loss", run_output="step 1: val loss 2.5\n", run_json=None, pattern=VAL)
    assert ok.metric == 2.5
