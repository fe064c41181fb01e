import json
import math

import pytest

from autoresearch.metrics import measure, memory_gb, parse_result_json, parse_summary

KARPATHY = """step 00953 (100.0%) | loss: 3.1 | lrm: 0.00
---
val_bpb:          0.997900
training_seconds: 300.1
peak_vram_mb:     45060.2
num_steps:        953
depth:            8
"""


@pytest.mark.parametrize(
    "output, expected, bad",
    [
        (KARPATHY, {"val_bpb": 0.9979, "training_seconds": 300.1, "peak_vram_mb": 45060.2, "num_steps": 953, "depth": 8}, {}),
        ("val_bpb: 1.5\nval_bpb: 1.2\n", {"val_bpb": 1.2}, {}),  # no separator: last occurrence wins
        ("---\nval_bpb: 1.5\n---\nval_bpb: 1.1\nsteps: 3\n", {"val_bpb": 1.1, "steps": 3}, {}),  # last block wins
        ("---\nval_bpb: 1.5\n---\nnothing here\n", {"val_bpb": 1.5}, {}),  # an empty last block is skipped
        ("val_bpb: 3,28\n", {}, {"val_bpb": "3,28"}),  # unparsable decimal comma
        ("val_bpb: nan\n", {"val_bpb": math.nan}, {}),
        ("val_bpb: inf\n", {"val_bpb": math.inf}, {}),
        ("device: cuda\nval_bpb: 2\n", {"val_bpb": 2.0}, {}),  # non-numeric values ignored
        ("loss: 1.0 | acc: 2\n", {}, {}),  # not a summary line
        ("", {}, {}),
    ],
)
def test_parse_summary(output, expected, bad):
    values, unparsable = parse_summary(output)
    assert values.keys() == expected.keys()
    for k, v in expected.items():
        assert (math.isnan(v) and math.isnan(values[k])) or values[k] == v
    assert unparsable == bad


@pytest.mark.parametrize(
    "text, expected, problem",
    [
        ('{"val_bpb": 1.5, "steps": 10, "ok": true, "name": "x"}', {"val_bpb": 1.5, "steps": 10.0}, ""),
        ('{"eval": {"val_bpb": 1.5}}', {"eval.val_bpb": 1.5}, ""),
        ('{"val_bpb": NaN}', {"val_bpb": math.nan}, ""),
        ("[1, 2]", {}, "result file does not hold a JSON object"),
        ("{broken", {}, "result file is not valid JSON"),
    ],
)
def test_parse_result_json(text, expected, problem):
    values, prob = parse_result_json(text)
    assert prob.startswith(problem)
    assert values.keys() == expected.keys()


@pytest.mark.parametrize(
    "kwargs, metric, problem_part, warning_part",
    [
        # printed only
        (dict(run_output="val_bpb: 1.25\n", run_json=None), 1.25, "", None),
        # the JSON result file wins over a disagreeing printed line (FAULTS 2)
        (dict(run_output="val_bpb: 0.5\n", run_json='{"val_bpb": 1.25}'), 1.25, "", "disagrees with the result file"),
        # agreeing values: no warning
        (dict(run_output="val_bpb: 1.25\n", run_json='{"val_bpb": 1.25}'), 1.25, "", None),
        # with eval configured only the eval counts; a fake printed metric is a warning
        (dict(run_output="val_bpb: 0.1\n", run_json='{"val_bpb": 0.1}', eval_output="", eval_json='{"val_bpb": 2.0}',
              eval_configured=True), 2.0, "", "only the eval's"),
        # eval configured but silent: the run's own number does not count
        (dict(run_output="val_bpb: 0.1\n", run_json=None, eval_output="no metric", eval_json=None, eval_configured=True),
         None, "the eval reported no val_bpb", None),
        # FAULTS 3: nan, inf, unparsable
        (dict(run_output="val_bpb: nan\n", run_json=None), None, "val_bpb is nan", None),
        (dict(run_output="", run_json='{"val_bpb": Infinity}'), None, "val_bpb is inf", None),
        (dict(run_output="val_bpb: 3,28\n", run_json=None), None, "not a number: '3,28'", None),
        (dict(run_output="hello\n", run_json=None), None, "the run reported no val_bpb", None),
        (dict(run_output="val_bpb: 1\n", run_json="{oops"), 1.0, "", "not valid JSON"),
    ],
)
def test_measure_precedence(kwargs, metric, problem_part, warning_part):
    m = measure("val_bpb", **kwargs)
    assert m.metric == metric
    assert problem_part in m.problem
    if warning_part is None:
        assert m.warnings == ()
    else:
        assert any(warning_part in w for w in m.warnings), m.warnings


@pytest.mark.parametrize(
    "metrics, expected",
    [({"peak_vram_mb": 2048.0, "peak_memory_mb": 1024.0}, 2.0), ({"peak_memory_mb": 512.0}, 0.5), ({}, None)],
)
def test_memory_gb(metrics, expected):
    assert memory_gb(metrics) == expected


# -- what a run cannot do to the parser (issue 16, classes 8 and 9) ------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("text, problem", [
    ('{"val_bpb": 1.5, "steps": ' + "9" * 400 + "}", "is not usable JSON (an integer of 400 digits)"),
    ('{"val_bpb": ' + "1" * 4400 + "}", "is not usable JSON (an integer of 4400 digits)"),
    ('{"a": ' + DEEP + ', "val_bpb": 1}', "nests deeper than 20 levels"),
    ('{"x": "[[[[[[[[[[[[[[[[[[[[[[[[[[", "val_bpb": 1.5}', ""),  # brackets inside strings do not count
    ('{"val_bpb": 1e999}', ""),                                     # a float overflows to inf: measured as inf
])
def test_result_json_limits(text, problem):
    values, prob = parse_result_json(text, "val_bpb")
    assert prob.startswith("result file " + problem) if problem else prob == ""
    if not problem:
        assert "val_bpb" in values


def test_result_json_names_are_plain_and_counted():
    data = {f"m{i}": i for i in range(1000)} | {"\x1b[31mred": 1.0, "a\nb": 2.0, "val_bpb": 0.5, "": 3.0}
    values, prob = parse_result_json(json.dumps(data), "val_bpb")
    assert prob == "" and values["val_bpb"] == 0.5
    assert len(values) <= 201 and not any("\x1b" in k or "\n" in k for k in values)


@pytest.mark.parametrize("output, keep, expected, bad", [
    # per-epoch JSON records, then a `---` block of other numbers: the target from before it (trial 4)
    ('{"epoch": 1, "val_f1": 0.5}\n{"epoch": 2, "val_f1": 0.61}\n---\ntraining_seconds: 4.2\n', "val_f1",
     {"val_f1": 0.61, "training_seconds": 4.2}, {}),
    ("val_loss: 2.0\nval_loss: 1.5\n---\nsteps: 9\n", "val_loss", {"val_loss": 1.5, "steps": 9.0}, {}),
    ("val_loss: 2.0\n---\nval_loss: 1.8\n", "val_loss", {"val_loss": 1.8}, {}),  # the block's own value wins
    ("val_loss: 2,0\n---\nsteps: 9\n", "val_loss", {"steps": 9.0}, {"val_loss": "2,0"}),  # said, not dropped
    ("train_loss: 2.0\n---\nsteps: 9\n", "val_loss", {"steps": 9.0}, {}),  # other names stay the block's
])
def test_the_target_printed_before_a_summary_block(output, keep, expected, bad):
    assert parse_summary(output, keep=keep) == (expected, bad)


def test_a_target_from_before_the_block_never_contradicts_a_result_file():
    """A review: the fallback's stale training line made an eval's run invalid (printed 2.7,
    the result file 2.5) and a plain run warn."""
    ev = "val_loss: 3.1\nval_loss: 2.7\n---\neval_seconds: 4.0\n"
    m = measure("val_loss", run_output="", run_json=None, eval_output=ev, eval_json='{"val_loss": 2.5}', eval_configured=True)
    assert m.metric == 2.5 and m.conflict == ""
    m = measure("val_loss", run_output="val_loss: 2.9\n---\ntraining_seconds: 4.0\n", run_json='{"val_loss": 2.5}')
    assert m.metric == 2.5 and m.warnings == ()
    assert measure("val_loss", run_output="val_loss: 2.9\n---\nsteps: 4\n", run_json=None).metric == 2.9
    ev = "val_loss: 3.1\nval_loss: 2.7\n---\neval_seconds = 4.0\n"  # a block of `name = value` lines (a review)
    m = measure("val_loss", run_output="", run_json=None, eval_output=ev, eval_json='{"val_loss": 2.5}', eval_configured=True)
    assert m.metric == 2.5 and m.conflict == ""


def test_metric_spam_is_bounded_and_the_target_survives():
    spam = "".join(f"m{i}: {i}\n" for i in range(300_000)) + "val_bpb: 0.75\n" + "".join(f"n{i}: 1\n" for i in range(1000))
    values, bad = parse_summary(spam, keep="val_bpb")
    assert values["val_bpb"] == 0.75 and len(values) + len(bad) <= 201
    m = measure("val_bpb", run_output=spam, run_json=None)
    assert m.metric == 0.75 and len(m.metrics) <= 201


@pytest.mark.parametrize("printed, from_file, conflict", [
    ("val_bpb: 0.9979\n", '{"val_bpb": 0.99794}', False),    # within the printed precision
    ("val_bpb: 0.9979\n", '{"val_bpb": 0.5}', True),         # another writer planted the file
    ("val_bpb: 1\n", '{"val_bpb": 1.4}', False),             # printed as an integer: half a unit
    ("val_bpb: 1\n", '{"val_bpb": 1.6}', True),
    ("nothing printed\n", '{"val_bpb": 0.5}', False),        # only one channel: nothing to compare
])
def test_an_eval_whose_file_and_printed_value_disagree_is_a_conflict(printed, from_file, conflict):
    m = measure("val_bpb", run_output="", run_json=None, eval_output=printed, eval_json=from_file, eval_configured=True)
    assert bool(m.conflict) is conflict, m.conflict


def test_the_runs_json_is_not_even_parsed_when_an_eval_decides():
    m = measure("val_bpb", run_output="", run_json="[" * 100_000, eval_output="val_bpb: 1.0\n", eval_json=None,
                eval_configured=True)
    assert m.metric == 1.0 and m.warnings == ()


@pytest.mark.parametrize("target, printed, hint", [
    ("val_bpb", {"val_loss": 0.6974}, 'did you mean [metric] name = "val_loss"'),
    ("val_loss", {"val_loss_ema": 1.0, "acc": 0.5}, 'did you mean [metric] name = "val_loss_ema"'),
    ("val_bpb", {"acc": 0.5, "loss": 3.0}, "it printed acc, loss"),
    ("val_bpb", {}, ""),
])
def test_a_missing_target_names_what_was_printed(target, printed, hint):
    from autoresearch.metric_hints import did_you_mean

    got = did_you_mean(target, printed)
    assert (hint in got) if hint else got == ""
    m = measure(target, run_output="".join(f"{k}: {v}\n" for k, v in printed.items()), run_json=None)
    assert m.metric is None and (hint in m.problem if hint else m.problem.endswith("or a JSON result at AUTORESEARCH_RESULT_FILE)"))


LIGHTNING_BAR = "Epoch 9: 100%|##########| 32/32 [v_num=0, train/loss=0.1139, val/loss=0.1060, val/acc=0.9460]\n"
LIGHTNING_TABLE = "│         test/loss         │    0.124781               │\n"


@pytest.mark.parametrize("target, output, config, value", [
    ("val/loss", LIGHTNING_BAR, None, 0.106),                           # a progress bar's piece
    ("val/acc", LIGHTNING_BAR * 3, None, 0.946),
    ("test/loss", LIGHTNING_TABLE, None, 0.124781),                     # a table's row
    ("val/loss", LIGHTNING_BAR, "val_loss=([0-9.]+)", 0.106),           # a pattern with a typo: the one that reads it
    ("val_bpb", "step 10 val_bpb 1.2345 lr 0.1\n", None, 1.2345),
    ("loss", "train/val/loss=3.0 only\n", None, None),                 # another name's tail is not the target
    ("loss", "[loss=0.5, v_num=0, val_loss=0.6]\n", None, 0.5),         # nor does its pattern read val_loss
    ("val_loss", "val_loss2=0.3 val_loss=0.4\n", None, 0.4),            # nor val_loss2
    ("val/acc", "lr: 0.001\n" + LIGHTNING_BAR, None, 0.946),            # printed names too: the pattern first
    ("acc", "nothing here\n", None, None),
])
def test_a_target_printed_within_a_line_gets_the_pattern_that_reads_it(target, output, config, value):
    """A newcomer's trial (2026-12-04): Lightning prints `val/loss=0.1060` in its progress
    bar and `│ test/loss │ 0.12 │` in its test table; the error now gives the pattern, and
    that pattern reads the number."""
    import re

    m = measure(target, run_output=output, run_json=None, pattern=config)
    assert m.metric is None
    hint = re.search(r"read it with \[metric\] pattern = '(.*)'$", m.problem)
    if value is None:
        assert hint is None and "within a line" not in m.problem
        return
    assert hint, m.problem
    again = measure(target, run_output=output, run_json=None, pattern=hint.group(1))
    assert again.metric == pytest.approx(value) and again.problem == ""


@pytest.mark.parametrize("target, output, value", [
    ("val_bpb", "step 100\nvalidation bpb = 2.997469\n", 2.997469),       # a newcomer's trial: the words, spelt out
    ("val_bpb", "Val BPB: 1.5\n", 1.5),
    ("val_loss", "epoch 3\n  val-loss 0.25\n", 0.25),
    ("val_loss", "validation loss: 0.31\nvalidation loss: 0.29\n", 0.29),  # the last one
    ("val_bpb", "final validation bpb: 2.9\n", 2.9),                       # words before the label's own
    ("val_bpb", "validation bpb = 2.99\r\n", 2.99),
    ("val_bpb", "validation bpb = 2.99\ntraining_seconds: 300.1\npeak_vram_mb: 45060.2\nnum_steps: 953\n", 2.99),
    ("val_loss", "step 100 val loss 2.5\nstep 200 val loss 2.4\n", 2.4),   # no step number in the pattern
    ("average_loss", "Test set: Average loss: 0.2312, Accuracy: 935/1000 (94%)\n", 0.2312),  # within a line (MNIST)
    ("accuracy", "\nTest set: Average loss: 0.2312, Accuracy: 935/1000 (94%)\n\nTrain Epoch: 2 [0/600]\tLoss: 0.4\n", 935),
    ("val_loss", "epoch 3: val loss 0.25 (best 0.2), lr 0.01\n", 0.25),
    ("val_bpb", "train bpb = 2.9\n", None),                                # another metric: not offered
    ("val_bpb", "loss = 3.0\nlr 0.01\n", None),
    ("accuracy", "acc: 0.9\n", None),                                       # a printed name: did_you_mean's part
    ("acc", "accumulation steps: 4\n", None),                              # words that only start alike
    ("loss", "loss scale 65536\n", None),
    ("val_loss", "val loss batches 20\n", None),
    ("lr", "lr_warmup 100\n", None),
])
def test_a_line_that_reads_like_the_target_gets_the_pattern_that_reads_it(target, output, value):
    import re

    m = measure(target, run_output=output, run_json=None)
    assert m.metric is None
    hint = re.search(r"it printed '([^']*)': print '[^']*: <number>' instead, or read it with \[metric\] pattern = '(.*)'$",
                     m.problem)
    if value is None:
        assert hint is None, m.problem
        return
    assert hint, m.problem
    again = measure(target, run_output=output, run_json=None, pattern=hint.group(2))
    assert again.metric == pytest.approx(value) and again.problem == ""
    later = measure(target, run_output=output + output.replace(str(value), "1.25").replace("200", "300"), run_json=None,
                    pattern=hint.group(2))
    assert later.metric == pytest.approx(1.25)  # the pattern reads the last such line of a longer run, not a step's


def test_a_label_and_a_number_on_different_lines_are_not_one():
    from autoresearch.metric_hints import labelled_like

    assert labelled_like("val_bpb", "validation bpb\n\n2.99\n") is None


@pytest.mark.parametrize("output, target, value", [
    # a fourth newcomer's trial (2026-12-05): a JSON record per epoch, never read ("the run reported no val_f1")
    ('{"epoch": 1, "val_loss": 0.8, "val_f1": 0.7}\n{"epoch": 2, "val_loss": 0.45, "val_f1": 0.9181}\n', "val_f1", 0.9181),
    # Hugging Face's Trainer prints its logs as Python dicts
    ("{'loss': 0.6931, 'grad_norm': 1.2, 'epoch': 1.0}\n{'eval_loss': 0.52, 'eval_accuracy': 0.81, 'epoch': 1.0}\n",
     "eval_accuracy", 0.81),
    ('{"val": {"f1": 0.5}}\n', "val.f1", 0.5),                    # nested, flattened with dots as in a result file
    ('{"val_f1": 0.7}\nval_f1: 0.75\n', "val_f1", 0.75),          # with `name: value` lines: the last one wins
    ('{"val_f1": true}\n', "val_f1", None),                       # not a number
    ('{"val_f1": 0.7\n', "val_f1", None),                         # not an object
    ('{"a": ' * 50 + "1" + "}" * 50 + "\n", "a", None),           # nesting refused, no crash
    ("{'val_f1': __import__('os').getpid()}\n", "val_f1", None),  # a literal only: nothing is evaluated
    ("[1, 2]\n", "val_f1", None),
    ('INFO:__main__:{"epoch": 0, "val_f1": 0.7}\n', "val_f1", 0.7),  # logging's prefix (a review)
    ("{'big': 10**400, 'val_f1': 0.7}\n", "val_f1", None),          # an expression: the line is refused
    ("{'big': " + "9" * 400 + ", 'val_f1': 0.7}\n", "val_f1", 0.7),  # a huge integer left out, no crash
    ('{"big": 1e999, "val_f1": 0.7}\n', "val_f1", 0.7),
    # an HF trial (2026-12-05): transformers 5 writes the numbers as strings, and log_metrics as `name = value`
    ("{'eval_loss': '0.1108', 'eval_accuracy': '0.947', 'epoch': '3.0'}\n", "eval_accuracy", 0.947),
    ("***** eval metrics *****\n  epoch                   =        3.0\n  eval_accuracy           =      0.947\n",
     "eval_accuracy", 0.947),
    ('{"val_f1": "0.7"}\n', "val_f1", 0.7),
    ("{'val_f1': 'n/a'}\n", "val_f1", None),                      # a string that is no number
    ("{'val_f1': '1,234'}\n", "val_f1", None),
    ("args: lr=0.1\nval_f1=0.7\n", "val_f1", None),                 # `=` without spaces: an echoed argument
    # a scikit-learn trial: `cat metrics.json`, a JSON object over several lines
    ('fold 1\n{\n  "val_auc": 0.97306,\n  "cv": {"folds": 5}\n}\n', "val_auc", 0.97306),
    ('{\n  "val_auc": 0.9,\n  "more": {\n    "x": 1\n  }\n}\n', "val_auc", 0.9),  # nested over lines too
    ('{\n  "val_auc": 0.97306,\n', "val_auc", None),               # never closed: not a record
    ('  {\n  "val_auc": 0.5\n}\n', "val_auc", None),               # closed at another indentation: not one object
])
def test_a_printed_json_record_is_read_as_name_value_lines(output, target, value):
    m = measure(target, run_output=output, run_json=None)
    assert m.metric == value, m.problem


def test_a_diverged_record_is_not_skipped_for_an_earlier_one():
    """A review (2026-12-05): Python prints nan and inf bare, which literal_eval refuses: a
    Trainer run that diverged reported its earlier epoch's value."""
    m = measure("eval_loss", run_output="{'eval_loss': 0.52, 'epoch': 1.0}\n{'eval_loss': nan, 'epoch': 2.0}\n",
                run_json=None)
    assert m.metric is None and m.problem == "eval_loss is nan"
    assert measure("a", run_output="{'a': -inf}\n", run_json=None).problem == "a is -inf"


@pytest.mark.parametrize("printed, from_file", [
    ('{"acc": 0.812345678}\n', '{"acc": 0.8123}'),                   # the file rounds what the record holds
    ('{"split": "test", "acc": 0.75}\n', '{"acc": 0.8}'),           # a record of another split, printed last
])
def test_a_printed_json_record_takes_no_part_in_the_evals_conflict_rule(printed, from_file):
    """A review (2026-12-05): an eval that logs JSON records and writes a differently rounded
    result file had every run made invalid; the rule guards its `name: value` line."""
    m = measure("acc", run_output="", run_json=None, eval_output=printed, eval_json=from_file, eval_configured=True)
    assert m.conflict == "" and m.metric == json.loads(from_file)["acc"]


def test_a_result_files_strings_stay_strings():
    assert parse_result_json('{"val_f1": "0.7", "loss": 0.5}') == ({"loss": 0.5}, "")
