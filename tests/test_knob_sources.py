"""Knobs where people keep hyperparameters (issue 17): every source, written back in place,
frozen by how the code uses a value (fixtures with neutral names), declared constraints,
``autoresearch knobs``, and a campaign on an arena in each style."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from autoresearch.edits import apply_edits
from autoresearch.errors import ConfigError
from autoresearch.proposers.knob_code import discover, find_knobs, render_edits, written_value
from autoresearch.proposers.knob_constraints import broken, parse_constraints
from autoresearch.proposers.knob_space import Space, frozen_by_value, infer_space
from autoresearch.proposers.knob_usage import REASONS, frozen_by_use, modules
from autoresearch.proposers.knobs import KnobsProposer
from autoresearch.protocols import ProposalContext
from autoresearch.records import Goal
from autoresearch.testing import commit_all
from conftest import git, ledger_rows, run_cli


def values(path: str, text: str) -> dict[str, object]:
    return {k.name: k.value for k in find_knobs(path, text)}


# -- sources ---------------------------------------------------------------------------------------

SCRIPT = '''import argparse
from dataclasses import dataclass, field

LR = 3e-4
BATCH = 2**5
BETAS = (0.8, 0.95)
MODE = "fast"
depth = 4                 # a lowercase global bound once: a setting
steps_done = 0            # state: rebound below
_private = 1.0
Alias = 3

@dataclass
class TrainConfig:
    width: int = 64
    dropout: float = 0.1
    name: str = "run"
    tags: list = field(default_factory=list)

def main():
    global steps_done
    steps_done += 1
    p = argparse.ArgumentParser()
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("-n", "--n-iters", type=int, default=100)
    p.add_argument("--out", dest="out_dir", default="out")
    p.add_argument("--flag", action="store_true")
'''

CONFIG_ONLY = '''# a nanoGPT-style config file: every statement an assignment
import math
out_dir = 'out-tiny'
eval_interval = 250
learning_rate = 1e-3
beta2 = 0.99
n_layer = 6
always_save = False
'''

YAML = '''model:
  width: 128
  act: gelu
optimizer:
  lr: 0.001
  betas: [0.9, 0.999]
trainer:
  max_epochs: 3
lr: 5
'''

JSON = '''{"optimizer": {"lr": 0.01, "momentum": 0.9}, "batch_size": 32, "name": "x"}'''

TOML = '''seed = 1
[optimizer]
lr = 3e-4   # peak
warmup = 1_000
[model]
depth = 6
name = "small"
[[layers]]
size = 3
'''


@pytest.mark.parametrize("path, text, expected", [
    ("train.py", SCRIPT, {"LR": 3e-4, "BATCH": 32, "BETAS[0]": 0.8, "BETAS[1]": 0.95, "MODE": "fast", "depth": 4,
                          "TrainConfig.width": 64, "TrainConfig.dropout": 0.1, "TrainConfig.name": "run",
                          "weight_decay": 0.1, "n_iters": 100, "out_dir": "out"}),
    ("config/tiny.py", CONFIG_ONLY, {"out_dir": "out-tiny", "eval_interval": 250, "learning_rate": 1e-3, "beta2": 0.99,
                                     "n_layer": 6, "always_save": False}),
    ("conf.yaml", YAML, {"model.width": 128, "model.act": "gelu", "optimizer.lr": 0.001, "optimizer.betas[0]": 0.9,
                         "optimizer.betas[1]": 0.999, "trainer.max_epochs": 3, "lr": 5}),
    ("conf.json", JSON, {"optimizer.lr": 0.01, "optimizer.momentum": 0.9, "batch_size": 32, "name": "x"}),
    ("conf.toml", TOML, {"seed": 1, "optimizer.lr": 3e-4, "optimizer.warmup": 1000, "model.depth": 6, "model.name": "small"}),
    ("notes.txt", "LR = 1", {}),
    ("broken.py", "LR = (", {}),
])
def test_every_source_is_found_by_its_settled_name(path, text, expected):
    assert values(path, text) == expected


@pytest.mark.parametrize("path, text, changes", [
    ("train.py", SCRIPT, {"LR": 1e-3, "BATCH": 64, "BETAS[0]": 0.85, "BETAS[1]": 0.99, "TrainConfig.width": 96,
                          "weight_decay": 0.05, "n_iters": 300, "MODE": "slow", "depth": 6}),
    ("config/tiny.py", CONFIG_ONLY, {"learning_rate": 3e-3, "always_save": True, "out_dir": "elsewhere"}),
    ("conf.yaml", YAML, {"optimizer.lr": 2e-5, "optimizer.betas[1]": 0.99, "model.act": "relu", "lr": 7, "model.width": 96}),
    ("conf.json", JSON, {"optimizer.lr": 0.02, "batch_size": 64, "name": "y z"}),
    ("conf.toml", TOML, {"optimizer.lr": 1e-3, "optimizer.warmup": 2000, "model.name": "big"}),
])
def test_new_values_are_written_in_place_and_read_back(path, text, changes):
    knobs = find_knobs(path, text)
    by_name = {k.name: k for k in knobs}
    edits = render_edits(knobs, {n: written_value(by_name[n], v) for n, v in changes.items()})
    assert len({(e.path, e.search) for e in edits}) == len(edits)
    new = text
    for e in edits:
        assert new.count(e.search) == 1, e.search
        new = new.replace(e.search, e.replace)
    got = values(path, new)
    for name, value in changes.items():
        assert got[name] == pytest.approx(value) if isinstance(value, float) else got[name] == value, (name, got[name])
    unchanged = {n: v for n, v in values(path, text).items() if n not in changes}
    assert {n: got[n] for n in unchanged} == unchanged  # nothing else moved
    if path.endswith(".py"):
        compile(new, path, "exec")


def test_a_repeated_line_gets_enough_context_to_match_once():
    text = "a:\n  lr: 0.1\nb:\n  lr: 0.1\n"
    knobs = find_knobs("c.yaml", text)
    (edit,) = render_edits(knobs, {"b.lr": 0.2})
    assert text.count(edit.search) == 1 and text.replace(edit.search, edit.replace) == "a:\n  lr: 0.1\nb:\n  lr: 0.2\n"


@pytest.mark.parametrize("path, text, changes, expected", [
    # line breaks that str.splitlines() sees and parsers do not: the edit lands on its own line
    ("a.py", "# \u2028 pasted\nLR = 0.1\nWD = 0.5\n", {"WD": 0.7}, "# \u2028 pasted\nLR = 0.1\nWD = 0.7\n"),
    ("a.py", "A = 1\n\x0c\nLR = 0.1\nB = 0.5\n", {"B": 0.7}, "A = 1\n\x0c\nLR = 0.1\nB = 0.7\n"),
    ("a.py", "S = 'x\u2028y'\nLR = 0.1\n", {"LR": 0.037}, "S = 'x\u2028y'\nLR = 0.037\n"),
    # a knob on the first line whose text recurs below (or inside a longer line)
    ("c.toml", "lr = 0.1\n[b]\nlr = 0.1\n", {"lr": 0.5}, "lr = 0.5\n[b]\nlr = 0.1\n"),
    ("a.py", "LR = 0.1\nBASE_LR = 0.1\n", {"LR": 0.2}, "LR = 0.2\nBASE_LR = 0.1\n"),
    ("c.yaml", "lr: 0.1\nmodel:\n  lr: 0.1\n", {"lr": 0.3}, "lr: 0.3\nmodel:\n  lr: 0.1\n"),
    # CRLF files keep their line endings
    ("a.py", "A = 1\r\nLR = 0.1\r\n", {"LR": 0.2}, "A = 1\r\nLR = 0.2\r\n"),
])
def test_edits_land_on_the_knobs_own_line(path, text, changes, expected):
    from autoresearch.edits import apply_edits

    edits = render_edits(find_knobs(path, text), changes)
    assert apply_edits({path: text}, edits, [path])[path] == expected


def test_yaml_aliases_and_toml_multiline_strings_are_no_knobs():
    assert values("c.yaml", "base: &b {lr: 0.1, wd: 0.01}\nexp: *b\nexp2:\n  <<: *b\n  depth: 2\n") == \
        {"base.lr": 0.1, "base.wd": 0.01, "exp2.depth": 2}
    assert values("c.toml", 'notes = """\nwd = 0.1\n[eval]\n"""\nlr = 0.2\n') == {"lr": 0.2}


@pytest.mark.parametrize("text", ["A=" + "-" * 5000 + "1", "A = " + " + ".join(["1"] * 20000), "[" * 5000 + "]" * 5000])
def test_pathological_files_find_nothing_rather_than_crash(text):
    assert find_knobs("a.py", text) == [] or all(k.name == "A" for k in find_knobs("a.py", text))
    assert find_knobs("a.yaml", text) in ([], find_knobs("a.yaml", text))
    modules({"a.py": text})


def test_a_name_in_two_files_is_qualified_with_its_file():
    knobs = discover({"train.py": "LR = 0.1\nDEPTH = 2\n", "config/a.py": "LR = 0.2\n"})
    assert sorted(k.name for k in knobs) == ["DEPTH", "config/a.py:LR", "train.py:LR"]


# -- what is frozen, by use (the names are neutral on purpose) -----------------------------------------

USES = '''import time, random, logging
import torch
log = logging.getLogger()
ALPHA = 3.5e12       # only in a printed ratio
BRAVO = 100          # a cadence
CHARLIE = 5000       # bounds a step counter
DELTA = 0.01         # a real hyperparameter
ECHO = 42            # a seed
FOXTROT = 7          # printed directly, and logged
GOLF = 64            # printed, and also really used
HOTEL = 30.0         # bounds the elapsed time
INDIA = 8            # passed to a function we do not follow
JULIET = 0.5         # never read in this file

def lr_at(step):
    return DELTA * min(1.0, step / 10)

random.seed(ECHO)
torch.manual_seed(ECHO + 1)
t0 = time.time()
step = 0
model = torch.nn.Linear(GOLF, INDIA)
while True:
    elapsed = time.time() - t0
    loss = lr_at(step)
    if step % BRAVO == 0:
        rate = 100 * loss / ALPHA
        print(f"step {step} loss {loss:.3f} rate {rate:.2f} {FOXTROT} {GOLF}")
        log.info("size %d", FOXTROT)
    if step >= CHARLIE or elapsed > HOTEL:
        break
    step += 1
'''


@pytest.mark.parametrize("name, why", [
    ("ALPHA", REASONS["printed"]), ("BRAVO", REASONS["cadence"]), ("CHARLIE", REASONS["bound"]), ("DELTA", None),
    ("ECHO", REASONS["seed"]), ("FOXTROT", REASONS["printed"]), ("GOLF", None), ("HOTEL", REASONS["bound"]),
    ("INDIA", None), ("JULIET", None),
])
def test_a_value_is_frozen_by_how_the_code_uses_it(name, why):
    assert frozen_by_use(name, modules({"train.py": USES})) == why


def test_a_field_default_that_every_construction_overrides_is_frozen():
    from autoresearch.proposers.knob_usage import default_unused

    code = "from dataclasses import dataclass\n@dataclass\nclass Cfg:\n    width: int = 8\n    depth: int = 2\n" \
           "cfg = Cfg(width=WIDTH)\nother = Cfg(width=4, depth=3)\n"
    mods = modules({"m.py": code})
    assert default_unused("Cfg", "width", mods).startswith("its default is never used")
    assert default_unused("Cfg", "depth", mods) is None  # the first construction uses its default
    assert default_unused("Cfg", "width", modules({"m.py": code + "third = Cfg(**kw)\n"})) is None


LIT = """import lightning as L
import torch


class LitClassifier(L.LightningModule):
    def __init__(self, hidden: int = 64, lr: float = 1e-3, *, dropout=0.1, name="mlp", _cache=8, width=None):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.Dropout(dropout))

    def configure_optimizers(self, eps=1e-8):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, eps=eps)


class Digits(LightningDataModule):
    def __init__(self, batch_size: int = 32):
        super().__init__()


class Plain(torch.nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
"""


def test_a_lightning_modules_init_defaults_are_knobs_and_written_in_place():
    """A newcomer's trial (2026-12-04): a plain Lightning project keeps its hyperparameters
    as ``__init__`` defaults of its LightningModule; none of them was a knob."""
    knobs = {k.name: k for k in find_knobs("model.py", LIT)}
    assert [n for n in knobs] == ["LitClassifier.hidden", "LitClassifier.lr", "LitClassifier.dropout",
                                  "LitClassifier.name", "Digits.batch_size"]  # not _private, None, a method's, nn.Module's
    assert knobs["LitClassifier.lr"].value == 1e-3 and knobs["LitClassifier.lr"].kind == "field"
    posonly = "class P(LightningModule):\n    def __init__(self, hidden=64, /, lr=1e-3):\n        pass\n"
    assert {k.name: k.value for k in find_knobs("p.py", posonly)} == {"P.hidden": 64, "P.lr": 1e-3}  # (a review)
    edits = render_edits(list(knobs.values()), {"LitClassifier.lr": 3e-4, "LitClassifier.dropout": 0.2})
    new = apply_edits({"model.py": LIT}, edits, ["model.py"])["model.py"]
    assert "def __init__(self, hidden: int = 64, lr: float = 0.0003, *, dropout=0.2, name=" in new
    train = "from model import LitClassifier\nmodel = LitClassifier(hidden=128)\n"  # hidden is always passed
    k, spaces = KnobsProposer().survey({"model.py": LIT, "train.py": train})
    frozen = {x.name: x.frozen for x in k}
    assert frozen["LitClassifier.hidden"] == "its default is never used: every LitClassifier(...) sets hidden"
    assert {"LitClassifier.lr", "LitClassifier.dropout", "Digits.batch_size"} <= set(spaces)


IDIOMS = '''import math
KILO = 4       # gradient accumulation: the % guards the optimiser step
LIMA = 0.1     # label smoothing: reaches loss.backward()
MIKE = 0.01    # weight decay, added to the loss
NOVEMBER = 2.0 # a temperature inside math.log
OSCAR = 100    # starts an EMA: compared with the counter, but stops nothing
PAPA = 10      # a framework's run length
QUEBEC = 50    # a framework's logging cadence
step = 0
for batch in data:
    loss = crit(model(batch)) * (1 - LIMA) + MIKE * l2(model)
    loss = loss / KILO
    loss.backward()
    if step % KILO == 0:
        optimizer.step()
    if step > OSCAR:
        ema.update(model)
    scale = math.log(1 / NOVEMBER)
    model.scale = scale
    step += 1
trainer = Trainer(max_epochs=PAPA, log_every_n_steps=QUEBEC)
'''


@pytest.mark.parametrize("name, why", [
    ("KILO", None), ("LIMA", None), ("MIKE", None), ("NOVEMBER", None), ("OSCAR", None),
    ("PAPA", REASONS["bound"]), ("QUEBEC", REASONS["cadence"]),
])
def test_training_idioms_are_real_uses_and_framework_lengths_are_not(name, why):
    assert frozen_by_use(name, modules({"train.py": IDIOMS})) == why


LOOPS = """import torch
EPOCHS = 10
N_STEPS = 100
N_LAYERS = 4
ROUNDS = 3
STEPS = 200
N_CRITIC = 5
ACCUM = 4
N_EPOCHS = 3
MORE_EPOCHS = 2
SCHED_EPOCHS = 5
WARMUP_FRAC = 0.05
HELPER_ACCUM = 4
LIMIT_VAL = 1.0
layers = [torch.nn.Linear(8, 8) for i in range(N_LAYERS)]
for epoch in range(EPOCHS):
    train_one_epoch()
for k in range(N_STEPS):
    loss = model(x)
    loss.backward()
    opt.step()
for r in range(ROUNDS):
    evaluate(r)
for step in range(STEPS):
    w = w - 0.1 * grad(w)
for it in range(1000):                    # a GAN: the critic's inner steps are a setting
    for _ in range(N_CRITIC):
        d_loss.backward()
        d_opt.step()
    for micro in range(ACCUM):            # gradient accumulation's micro-steps too
        loss.backward()
    g_opt.step()


def fit():
    for epoch in tqdm(range(N_EPOCHS)):  # through tqdm, inside a function
        train_one_epoch()
    for ep in trange(MORE_EPOCHS):
        train_one_epoch()
trainer = Trainer(limit_val_batches=LIMIT_VAL)
total_steps = SCHED_EPOCHS * len(loader)     # the schedule's length follows the run's (a newcomer's trial)
warmup = int(WARMUP_FRAC * total_steps)
for epoch in range(SCHED_EPOCHS):
    for xb in loader:
        lr = base_lr * min(1.0, step / warmup)
        loss.backward()
        opt.step()


def train_step():                             # gradient accumulation in a function of its own (a review)
    for micro in range(HELPER_ACCUM):
        (loss / HELPER_ACCUM).backward()
    opt.step()
"""


@pytest.mark.parametrize("name, why", [
    ("EPOCHS", REASONS["bound"]),     # the newcomer's `for epoch in range(EPOCHS)`, searched up to 30
    ("N_STEPS", REASONS["bound"]),    # a loop that steps the optimiser
    ("N_LAYERS", None),               # builds the model
    ("ROUNDS", None),                 # neither
    ("STEPS", None),                  # a hand-written update is not recognised (docs/first-hour.md's STEPS)
    ("N_CRITIC", None),               # an inner loop (a review: frozen as the run's length)
    ("ACCUM", None),
    ("N_EPOCHS", REASONS["bound"]),   # for epoch in tqdm(range(...))
    ("MORE_EPOCHS", REASONS["bound"]),  # trange
    ("LIMIT_VAL", REASONS["eval"]),   # Lightning's evaluation set, searched 0.1..10 in the trial
    ("SCHED_EPOCHS", REASONS["bound"]),  # the training loop's length, whatever else uses it (a trial: searched 2..15)
    ("WARMUP_FRAC", None),            # a share of that length: a setting
    ("HELPER_ACCUM", None),           # a loop that steps, outermost in a helper, with a real use: a setting
])
def test_a_training_loops_length_and_the_evaluation_sets_size_are_frozen_by_use(name, why):
    assert frozen_by_use(name, modules({"train.py": LOOPS})) == why


SKLEARN = """
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
X, y = make_classification(n_samples=N_SAMPLES, n_informative=N_INFORMATIVE, class_sep=CLASS_SEP, flip_y=FLIP_Y,
                           random_state=0)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=HOLD, random_state=0)
splitter = StratifiedKFold(n_splits=SPLITS, shuffle=True)
model = RandomForestClassifier(n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH)
auc = cross_val_score(model, Xtr, ytr, cv=K, scoring="roc_auc").mean()
print(f"CV ROC-AUC: {auc:.4f}")
"""


@pytest.mark.parametrize("name, why", [
    ("N_SAMPLES", REASONS["data"]), ("N_INFORMATIVE", REASONS["data"]), ("CLASS_SEP", REASONS["data"]),
    ("FLIP_Y", REASONS["data"]),      # the data set a generator makes: a newcomer's trial searched them all
    ("HOLD", REASONS["eval"]), ("SPLITS", REASONS["eval"]), ("K", REASONS["eval"]),  # how the metric is measured
    ("N_ESTIMATORS", None), ("MAX_DEPTH", None),  # the model's: searched
])
def test_a_generated_data_set_and_the_cross_validation_are_frozen_by_use(name, why):
    assert frozen_by_use(name, modules({"train.py": SKLEARN})) == why


def test_a_loop_length_read_by_a_name_two_knobs_share_does_not_override_a_real_use():
    # `epochs` and `scheduler.warmup.epochs` are both read as `.epochs` (a review): a real use may be the other's
    assert frozen_by_use("SCHED_EPOCHS", modules({"train.py": LOOPS}), shared=True) is None
    assert frozen_by_use("EPOCHS", modules({"train.py": LOOPS}), shared=True) == REASONS["bound"]  # no real use at all


def test_an_argparse_option_the_run_command_sets_is_frozen():
    code = "import argparse\np = argparse.ArgumentParser()\np.add_argument('--weight-decay', type=float, default=0.1)\n" \
           "p.add_argument('--lr', type=float, default=0.1)\nargs = p.parse_args()\nfit(args.lr, args.weight_decay)\n"
    knobs, spaces = KnobsProposer(run_command="python train.py --weight-decay=0.01").survey({"train.py": code})
    frozen = {k.name: k.frozen for k in knobs}
    assert frozen["weight_decay"].startswith("set by the run command (--weight-decay)") and "lr" in spaces


def test_uses_are_followed_into_other_files_and_through_attributes():
    # nanoGPT: the config file's values become globals of train.py; argparse values are read as args.NAME
    train = "import time\nstep = 0\nwhile step < max_iters:\n    if step % args.log_every == 0: print(step)\n    step += 1\n"
    mods = modules({"train.py": train})
    assert frozen_by_use("max_iters", mods) == REASONS["bound"]
    assert frozen_by_use("log_every", mods) == REASONS["cadence"]


HYDRA_TRAINER = """_target_: lightning.pytorch.trainer.Trainer
min_epochs: 1
max_epochs: 10
log_every_n_steps: 25
check_val_every_n_epoch: 1
gradient_clip_val: 0.5
accumulate_grad_batches: 2
"""


def test_a_config_files_run_length_and_cadence_keys_are_frozen_by_name():
    """A newcomer's Hydra trial (2026-12-04) searched ``trainer.max_epochs`` from 3 to 30:
    Hydra hands the ``trainer:`` config to Lightning's Trainer, so the code shows no use of
    it. A config file's key that is a framework's run length or cadence is frozen by its
    name; a Python constant of that name is judged by its use, as before."""
    files = {"configs/trainer/default.yaml": HYDRA_TRAINER,
             "train.py": "import hydra\nlog.info(f'Instantiating trainer <{cfg.trainer._target_}>')\n"}
    knobs, spaces = KnobsProposer().survey(files)
    frozen = {k.name: k.frozen for k in knobs}
    assert frozen["_target_"].startswith("a string")  # not "only printed or logged", though the script logs it
    for key in ("min_epochs", "max_epochs"):
        assert frozen[key] == REASONS["bound"]
    for key in ("log_every_n_steps", "check_val_every_n_epoch"):
        assert frozen[key] == REASONS["cadence"]
    assert set(spaces) == {"gradient_clip_val", "accumulate_grad_batches"}
    python = "max_epochs = 10\nlr = 0.1\nfit(lr, max_epochs)\n"  # a real use seen: searched
    assert "max_epochs" in KnobsProposer().survey({"train.py": python})[1]
    nested = "optimizer:\n  lr: 0.1\n  warmup:\n    epochs: 5\ntrainer:\n  max_epochs: 10\n"  # warmup's epochs: a setting
    knobs, spaces = KnobsProposer().survey({"config.yaml": nested})
    assert "optimizer.warmup.epochs" in spaces and {k.name: k.frozen for k in knobs}["trainer.max_epochs"] == REASONS["bound"]
    data = {"configs/data/toy.yaml": "n_samples: 1024\nbatch_size: 32\n", "configs/model/nerf.yaml": "n_samples: 64\n"}
    knobs, spaces = KnobsProposer().survey(data)  # a count of samples in the data's file is the data set's
    assert {k.name: k.frozen for k in knobs}["configs/data/toy.yaml:n_samples"].startswith("the data set")
    assert "configs/model/nerf.yaml:n_samples" in spaces  # a NeRF's samples per ray: a setting (a review)
    toml = "[trainer]\nmax_epochs = 10\nlr = 0.1\n"
    knobs, spaces = KnobsProposer().survey({"config.toml": toml})
    assert {k.name: k.frozen for k in knobs}["trainer.max_epochs"] == REASONS["bound"] and "trainer.lr" in spaces


@pytest.mark.parametrize("name, value, is_int, space, why", [
    ("WARMUP_RATIO", 0.0, False, Space("float", 0.0, 1.0), None),
    ("warmup_frac", 0.0, False, Space("float", 0.0, 1.0), None),
    ("WEIGHT_DECAY", 0.0, False, None, "zero"),
    ("OFFSET", -1, True, None, "negative"),
    ("USE_BIAS", True, False, None, "a boolean"),
    ("ACT", "gelu", False, None, "a string"),
    ("beta2", 0.99, False, Space("beta", 0.001, 0.1, log=True), None),
    ("n_layer", 6, True, Space("int", 2, 18, log=True), None),
    ("BATCH", 32, True, Space("pow2", 3, 7), None),
    # a Hydra/Lightning project's YAML (a newcomer's trial): shapes, the evaluation set, the machine
    ("net.input_size", 20, True, None, "a shape the data fixes"),
    ("output_size", 2, True, None, "a shape the data fixes"),
    ("model.num_classes", 10, True, None, "a shape the data fixes"),
    ("VOCAB_SIZE", 256, True, None, "a shape the data fixes"),
    ("n_val", 500, True, None, "the evaluation set"),
    ("num_test_samples", 500, True, None, "the evaluation set"),
    ("eval_iters", 200, True, None, "the evaluation set"),
    ("EVAL_BATCH_SIZE", 64, True, None, "the evaluation set"),          # measures, trains nothing
    ("val_batch_size", 256, True, None, "the evaluation set"),
    ("VAL_BATCH", 32, True, None, "the evaluation set"),
    ("test_bs", 128, True, None, "the evaluation set"),
    ("train_batch_size", 32, True, Space("pow2", 3, 7), None),         # the training's own: searched
    ("data.val_split", 0.1, False, None, "the evaluation set"),
    ("trainer.devices", 1, True, None, "the machine"),
    ("num_workers", 4, True, None, "the machine"),
    ("data.train_val_test_split[1]", 5000, True, None, "the evaluation set"),  # a datamodule's split sizes
    # a newcomer's Lightning trial (2026-12-04): the data set and its shape were searched, and a
    # "19.7 % better" keep halved n_samples and doubled n_features
    ("ToyDataModule.n_samples", 1024, True, None, "the data set"),
    ("data.noise", 0.5, False, None, "the data set"),                # a LightningCLI trial kept a halved noise
    ("DataTrainingArguments.max_seq_length", 128, True, None, "the length the inputs"),  # an HF trial
    ("block_size", 256, True, None, "the length the inputs"),         # nanoGPT's context: the metric's too
    ("MAX_SEQ_LEN", 2048, True, None, "the length the inputs"),
    ("max_new_tokens", 64, True, Space("pow2", 4, 8), None),          # a sampling length: searched
    ("SyntheticData.label_noise", 0.1, False, None, "the data set"),
    ("data.class_sep", 1.0, False, None, "the data set"),
    ("model.noise", 0.1, False, Space("float", 0.01, 1.0, log=True), None),  # not the data's: a setting
    ("data.augment.noise_std", 0.1, False, Space("float", 0.01, 1.0, log=True), None),  # augmentation (a review)
    ("MetadataEncoder.noise", 0.1, False, Space("float", 0.01, 1.0, log=True), None),  # not `data` (a review)
    ("DATASET.LABEL_NOISE", 0.1, False, None, "the data set"),        # YACS style (a review)
    ("DATA.noise", 0.1, False, None, "the data set"),
    ("traindata.noise", 0.1, False, None, "the data set"),
    ("ToyDataModule.noise", 0.1, False, None, "the data set"),
    ("actor.noise_std", 0.2, False, Space("float", 0.02, 2.0, log=True), None),  # a policy's: searched
    ("N_samples", 64, True, Space("pow2", 4, 8), None),             # a NeRF's samples per ray (a review)
    ("num_points", 50, True, Space("int", 17, 150, log=True), None),  # not the data's: searched
    ("train_size", 224, True, Space("int", 75, 672, log=True), None),  # an image resolution
    ("validation_split", 0.2, False, None, "the evaluation set"),     # Keras's name
    ("train_split", 0.8, False, None, "the evaluation set"),
    ("split_ratio", 0.8, False, None, "the evaluation set"),
    ("DATASET_SIZE", 1000, True, None, "the data set"),
    ("n_train", 500, True, None, "the data set"),
    ("ToyDataModule.n_features", 16, True, None, "a shape the data fixes"),
    ("LitClassifier.in_dim", 16, True, None, "a shape the data fixes"),
    ("IN_FEATURES", 16, True, None, "a shape the data fixes"),
    ("IMAGE_SIZE", 32, True, None, "a shape the data fixes"),
    ("val_fraction", 0.25, False, None, "the evaluation set"),
    ("TRAIN_FRAC", 0.8, False, None, "the evaluation set"),
    ("VAL_RATIO", 0.2, False, None, "the evaluation set"),
    ("scheduler.gamma", 0.5, False, Space("beta", 0.05, 0.9, log=True), None),  # a decay factor: never above 1
    ("gamma", 0.7, False, Space("beta", 0.03, 0.9, log=True), None),  # nor below 0.1 (0 stops the learning; a trial)
    ("momentum", 0.7, False, Space("beta", 0.03, 1.0, log=True), None),  # a momentum of 0 is plain SGD
    ("GAMMA", 0.95, False, Space("beta", 0.005, 0.5, log=True), None),
    ("scheduler.factor", 0.1, False, Space("float", 0.01, 1.0, log=True), None),  # small: a decade down (a review)
    ("lr_gamma", 0.2, False, Space("float", 0.02, 1.0, log=True), None),
    ("focal_gamma", 2.0, False, Space("float", 0.2, 20.0, log=True), None),   # not a factor of the learning rate
    ("in_channels", 64, True, Space("pow2", 4, 8), None),            # a conv layer's input: often a hidden width
    ("train_steps", 100, True, Space("int", 33, 300, log=True), None),  # (frozen by use where it bounds a loop)
    ("trainer.limit_val_batches", 0.25, False, None, "the evaluation set"),
    ("model.dims[0]", 64, True, Space("pow2", 4, 8), None),          # an item of a list: named by the list
    ("hidden_size", 32, True, Space("pow2", 3, 7), None),            # the model's own sizes stay searched
    ("conv.out_channels", 64, True, Space("pow2", 4, 8), None),      # a layer's width, not the data's shape
    ("n_embd", 64, True, Space("pow2", 4, 8), None),
    ("n_layer_val", 2, True, Space("pow2", 0, 3), None),
    ("eval_interval", 250, True, Space("int", 83, 750, log=True), None),  # (frozen by use where it paces)
    # a scikit-learn trial: the folds of a cross-validation are how the metric is measured
    ("cv.n_splits", 5, True, None, "the evaluation set"),
    ("FOLDS", 5, True, None, "the evaluation set"),
    ("n_folds", 5, True, None, "the evaluation set"),
    ("n_estimators", 200, True, Space("int", 67, 600, log=True), None),
])
def test_default_spaces(name, value, is_int, space, why):
    got = infer_space(name, value, is_int)
    if space is None:
        assert got is None and frozen_by_value(name, value, is_int).startswith(why)
    else:
        assert (got.kind, got.log) == (space.kind, space.log)
        assert (got.low, got.high) == pytest.approx((space.low, space.high))


def test_spaces_are_shown_in_the_users_units():
    assert Space("pow2", 3, 7).user_range() == (8.0, 128.0)
    assert Space("beta", 0.01, 0.1, log=True).user_range() == pytest.approx((0.9, 0.99))


# -- constraints ---------------------------------------------------------------------------------------

ENV = {"TOTAL": 2**19, "DEVICE": 128, "SEQ": 2048, "BETAS[1]": 0.95, "optimizer.lr": 0.1, "PAIR": (1, 2)}


@pytest.mark.parametrize("text, changes, holds", [
    ("TOTAL % (DEVICE * SEQ) == 0", {}, True),
    ("TOTAL % (DEVICE * SEQ) == 0", {"DEVICE": 512}, False),
    ("TOTAL % (DEVICE * SEQ) == 0", {"TOTAL": 2**18, "DEVICE": 64}, True),
    ("BETAS[1] < 0.999 and optimizer.lr <= 1", {}, True),
    ("BETAS[1] < 0.999 and optimizer.lr <= 1", {"optimizer.lr": 2}, False),
    ("DEVICE // 0 == 1", {}, False),  # an arithmetic error breaks it
    ("max(DEVICE, 256) == 256 and PAIR[1] == 2", {}, True),
])
def test_constraints(text, changes, holds):
    (c,) = parse_constraints([text], ENV)
    assert (broken([c], {**ENV, **changes}) is None) is holds


@pytest.mark.parametrize("text, message", [
    ("TOTAL %", "is not an expression"),
    ("NOPE > 1", "names 'NOPE'"),
    ("__import__('os').system('true')", "not allowed"),
    ("DEVICE.real > 1", "names 'DEVICE.real'"),
    ("(lambda: 1)()", "not allowed"),
    ("round(2**64, -10**9) > 0", "more than 100 digits"),
    ("((((2**64)**64)**64)**64)**64 > 0", "too large"),
    ("'a' * 10**9 == 'a'", "too long"),
    ("(1,) * (2**62) == (1,)", "too long"),
    ("1" + " + 1" * 20000 + " > 0", "longer than 2000 characters"),
    ("-" * 1500 + "1 > 0", "nests too deeply"),
])
def test_bad_constraints_are_refused_with_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_constraints([text], ENV)


KARPATHY_LIKE = '''from prepare import MAX_SEQ_LEN, TIME_BUDGET
import time
TOTAL_BATCH_SIZE = 2**15
DEVICE_BATCH_SIZE = 32
MATRIX_LR = 0.04
ADAM_BETAS = (0.8, 0.95)
WARMUP_RATIO = 0.0
WINDOW_PATTERN = "SSSL"
PEAK_FLOPS = 989.5e12
assert TOTAL_BATCH_SIZE % (DEVICE_BATCH_SIZE * MAX_SEQ_LEN) == 0
grad_accum = TOTAL_BATCH_SIZE // (DEVICE_BATCH_SIZE * MAX_SEQ_LEN)
step, total = 0, 0.0
t0 = time.time()
def lr_mult(progress):
    return progress / WARMUP_RATIO if progress < WARMUP_RATIO else 1.0
while True:
    dt = time.time() - t0
    total += dt
    lr = MATRIX_LR * lr_mult(total / TIME_BUDGET)
    opt = dict(lr=lr, betas=ADAM_BETAS, pattern=WINDOW_PATTERN, accum=grad_accum)
    mfu = 100 * 6 * TOTAL_BATCH_SIZE / max(dt, 1e-9) / PEAK_FLOPS
    print(f"step {step} mfu {mfu:.1f}")
    if total >= TIME_BUDGET:
        break
    step += 1
'''
PREPARE = "MAX_SEQ_LEN = 512\nTIME_BUDGET = 300\n"


def test_proposals_keep_the_declared_constraints():
    files, readonly = {"train.py": KARPATHY_LIKE}, {"prepare.py": PREPARE}
    for sampler, variety in (("auto", 3), ("tpe", 4)):  # auto starts with small moves: fewer distinct points
        seen = set()
        for seed in range(30):
            p = KnobsProposer(seed=seed, sampler=sampler, only=("TOTAL_BATCH_SIZE", "DEVICE_BATCH_SIZE"),
                              constraints=("TOTAL_BATCH_SIZE % (DEVICE_BATCH_SIZE * MAX_SEQ_LEN) == 0",))
            ctx = ProposalContext(incumbent_commit="c", incumbent_metric=1.0, files=files, history=[], metric="m",
                                  goal=Goal.MINIMIZE, program="", readonly=readonly)
            values = p.propose(ctx).meta["knobs"]["values"]
            assert values["TOTAL_BATCH_SIZE"] % (values["DEVICE_BATCH_SIZE"] * 512) == 0, values
            seen.add((values["TOTAL_BATCH_SIZE"], values["DEVICE_BATCH_SIZE"]))
        assert len(seen) >= variety, sampler
    # the unconstrained proposer does break it sometimes: the constraint is what holds it
    broken_ones = 0
    for seed in range(30):
        p = KnobsProposer(seed=seed, only=("TOTAL_BATCH_SIZE", "DEVICE_BATCH_SIZE"))
        ctx = ProposalContext(incumbent_commit="c", incumbent_metric=1.0, files=files, history=[], metric="m",
                              goal=Goal.MINIMIZE, program="", readonly=readonly)
        v = p.propose(ctx).meta["knobs"]["values"]
        broken_ones += v["TOTAL_BATCH_SIZE"] % (v["DEVICE_BATCH_SIZE"] * 512) != 0
    assert broken_ones > 0


def test_a_constraint_the_current_values_break_is_an_error():
    p = KnobsProposer(constraints=("DEVICE_BATCH_SIZE > 64",))
    ctx = ProposalContext(incumbent_commit="c", incumbent_metric=1.0, files={"train.py": KARPATHY_LIKE}, history=[],
                          metric="m", goal=Goal.MINIMIZE, program="", readonly={"prepare.py": PREPARE})
    with pytest.raises(ConfigError, match="does not hold for the current values"):
        p.propose(ctx)


# -- autoresearch knobs --------------------------------------------------------------------------------

def arena_with(path: Path, files: dict[str, str], config: str) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / "autoresearch.toml").write_text(config)
    git(path, "init", "-q")
    commit_all(path, "arena")
    return path


def test_knobs_lists_every_knob_with_its_space_or_why_it_is_frozen(tmp_path):
    config = ('[arena]\neditable = ["train.py"]\nreadonly = ["prepare.py"]\nrun = "python train.py"\n'
              '[metric]\nname = "val_bpb"\n[proposer.knobs]\n'
              'constraints = ["TOTAL_BATCH_SIZE % (DEVICE_BATCH_SIZE * MAX_SEQ_LEN) == 0"]\n'
              '[proposer.knobs.space."WINDOW_PATTERN"]\nchoices = ["SSSL", "LLLL"]\n')
    arena = arena_with(tmp_path / "a", {"train.py": KARPATHY_LIKE, "prepare.py": PREPARE}, config)
    r = run_cli("knobs", arena, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert set(rows) >= {"TOTAL_BATCH_SIZE", "DEVICE_BATCH_SIZE", "MATRIX_LR", "ADAM_BETAS[0]", "ADAM_BETAS[1]",
                         "WARMUP_RATIO", "WINDOW_PATTERN", "PEAK_FLOPS"}
    assert rows["PEAK_FLOPS"]["frozen"] == REASONS["printed"]
    assert rows["TOTAL_BATCH_SIZE"] == {"name": "TOTAL_BATCH_SIZE", "file": "train.py", "line": 3, "value": 32768,
                                        "kind": "constant", "frozen": False,
                                        "space": {"kind": "pow2", "low": 8192.0, "high": 131072.0, "log": True}}
    assert rows["ADAM_BETAS[1]"]["space"]["high"] < 1 and rows["ADAM_BETAS[1]"]["value"] == 0.95
    assert rows["WARMUP_RATIO"]["space"] == {"kind": "float", "low": 0.0, "high": 1.0, "log": False}
    assert rows["WINDOW_PATTERN"]["space"] == {"kind": "choice", "choices": ["SSSL", "LLLL"]}
    table = run_cli("knobs", arena)
    assert table.returncode == 0 and "PEAK_FLOPS" in table.stdout and "only printed" in table.stdout, table.stdout
    dry = run_cli("run", arena, "--dry-run")
    assert dry.returncode == 0 and "PEAK_FLOPS" in dry.stdout and "constraint: TOTAL_BATCH_SIZE" in dry.stdout, dry.stdout
    bad = run_cli("knobs", arena, "--set", "proposer.knobs.freeze=[\"MATRIX_LRR\"]")
    assert bad.returncode != 0 and "did you mean MATRIX_LR" in bad.stdout + bad.stderr
    missing = run_cli("knobs", arena, "--tag", "nope")
    assert missing.returncode != 0 and "no campaign 'nope'" in missing.stdout + missing.stderr


# -- a campaign on an arena in each style ----------------------------------------------------------------

NANOGPT_STYLE = '''import os, sys
# defaults, overridden by a config file and --key=value arguments (nanoGPT's configurator)
learning_rate = 1e-2
n_embd = 8
dropout = 0.3
eval_interval = 10
max_iters = 50
out_dir = "out"
for arg in sys.argv[1:]:
    if "=" not in arg:
        exec(open(arg).read())
    else:
        key, val = arg[2:].split("=")
        globals()[key] = type(globals()[key])(val)
it = 0
while it < max_iters:
    if it % eval_interval == 0:
        print(f"step {it}")
    it += 1
loss = (learning_rate - 3e-3) ** 2 * 1e4 + (n_embd - 24) ** 2 / 100 + dropout
print(f"val_loss: {loss:.6f}")
'''
NANOGPT_CONFIG = "# tiny\nlearning_rate = 1e-2\nn_embd = 8\ndropout = 0.3\neval_interval = 5\nmax_iters = 20\n"

ARGPARSE_STYLE = '''import argparse
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=1e-2)
p.add_argument("--hidden-size", type=int, default=8)
p.add_argument("--log-every", type=int, default=10)
a = p.parse_args()
for step in range(30):
    if step % a.log_every == 0:
        print("step", step)
print(f"val_loss: {(a.lr - 3e-3) ** 2 * 1e4 + (a.hidden_size - 24) ** 2 / 100:.6f}")
'''

DATACLASS_STYLE = '''from dataclasses import dataclass

@dataclass
class TrainConfig:
    lr: float = 1e-2
    width: int = 8
    print_every: int = 10

cfg = TrainConfig()
for step in range(30):
    if step % cfg.print_every == 0:
        print("step", step)
print(f"val_loss: {(cfg.lr - 3e-3) ** 2 * 1e4 + (cfg.width - 24) ** 2 / 100:.6f}")
'''

YAML_STYLE_TRAIN = '''import yaml
cfg = yaml.safe_load(open("conf/config.yaml"))
opt, model = cfg["optimizer"], cfg["model"]
print(f"val_loss: {(opt['lr'] - 3e-3) ** 2 * 1e4 + (model['width'] - 24) ** 2 / 100:.6f}")
'''
YAML_STYLE_CONFIG = "# Hydra-style\nmodel:\n  width: 8\noptimizer:\n  lr: 0.01\n"


@pytest.mark.parametrize("style, files, editable, run, changed", [
    ("nanogpt", {"train.py": NANOGPT_STYLE, "config/tiny.py": NANOGPT_CONFIG}, ["config/tiny.py"],
     "train.py config/tiny.py --max_iters=10", "config/tiny.py"),
    ("argparse", {"train.py": ARGPARSE_STYLE}, ["train.py"], "train.py", "train.py"),
    ("dataclass", {"train.py": DATACLASS_STYLE}, ["train.py"], "train.py", "train.py"),
    ("yaml", {"train.py": YAML_STYLE_TRAIN, "conf/config.yaml": YAML_STYLE_CONFIG}, ["conf/config.yaml"], "train.py",
     "conf/config.yaml"),
])
def test_a_campaign_on_an_arena_in_each_style(tmp_path, style, files, editable, run, changed):
    readonly = [p for p in files if p not in editable]
    config = (f'[arena]\neditable = {json.dumps(editable)}\nreadonly = {json.dumps(readonly)}\n'
              f'run = {json.dumps(shlex.quote(sys.executable) + " " + run)}\ntime_budget_s = 10\n'
              '[metric]\nname = "val_loss"\n[judge]\npolicy = "greedy"\n')
    arena = arena_with(tmp_path / style, files, config)
    knobs = json.loads(run_cli("knobs", arena, "--json").stdout)
    searched = sorted(k["name"] for k in knobs if not k["frozen"])
    frozen = {k["name"]: k["frozen"] for k in knobs if k["frozen"]}
    assert searched and not any("every" in n or "interval" in n or n == "max_iters" for n in searched), (searched, frozen)
    # (lookahead 0: each proposal made on the incumbent it runs on; re-rendering a knobs proposal
    # made before a keep onto the new incumbent is issue 20's)
    r = run_cli("run", arena, "--tag", "k", "--proposer", "knobs", "--max-experiments", "6", "--set", "proposer.lookahead=0")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = ledger_rows(arena, "SELECT id, status, description FROM experiments ORDER BY id")
    assert rows[0]["status"] == "keep" and len(rows) == 6, [dict(x) for x in rows]
    assert all(x["status"] in ("keep", "discard") for x in rows), [dict(x) for x in rows]  # every edit applied and ran
    assert any(x["status"] == "keep" for x in rows[1:]), [dict(x) for x in rows]
    assert changed in git(arena, "diff", "--stat", "HEAD", "autoresearch/k")
    status = json.loads(run_cli("status", arena, "--json").stdout)
    params = [e["params"] for e in status["experiments"] if e.get("params")]
    assert params and all(set(p) <= set(searched) for p in params)


def test_a_knob_named_in_only_that_is_not_searched_is_said_and_a_zero_in_a_log_space_explained():
    """A newcomer's trial (2026-12-04): weight_decay = 0.0 listed in ``only`` stayed frozen
    without a word, and the hint's log space could not hold its 0."""
    code = "LR = 0.01\nWEIGHT_DECAY = 0.0\nWIDTH = 64\n"
    p = KnobsProposer(only=("LR", "WEIGHT_DECAY"))
    knobs, spaces = p.survey({"train.py": code})
    assert set(spaces) == {"LR"}
    assert p.notes == ["knobs: WEIGHT_DECAY is in [proposer.knobs] only but is not searched: zero: no scale to search "
                       "around; declare low and high to search it"]
    p.survey({"train.py": code + "# again\n"})
    assert len(p.notes) == 1  # said once
    declared = KnobsProposer(spaces={"WEIGHT_DECAY": {"low": 1e-6, "high": 1e-2, "log": True}})
    frozen = {k.name: k.frozen for k in declared.survey({"train.py": code})[0]}
    assert frozen["WEIGHT_DECAY"] == ("its value 0.0 lies outside the declared space (a log space cannot hold 0: "
                                      "declare low = 0.0 without log)")
    linear = KnobsProposer(spaces={"WEIGHT_DECAY": {"low": 0.0, "high": 1e-2}})
    assert "WEIGHT_DECAY" in linear.survey({"train.py": code})[1]


def test_knobs_with_a_mistyped_editable_path_says_which_file_was_meant(tmp_path):
    """A newcomer's trial (2026-12-04): `knobs` said only "none of the editable files
    (train.py) is committed at HEAD" where `run` names src/train.py."""
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "train.py").write_text("LR = 0.1\nprint(f'val_loss: {LR}')\n")
    (repo / "autoresearch.toml").write_text('[arena]\neditable = ["train.py"]\nrun = "python src/train.py"\n'
                                            '[metric]\nname = "val_loss"\n')
    git(repo, "init", "-q")
    commit_all(repo, "a model")
    r = run_cli("knobs", repo)
    assert r.returncode != 0
    assert "none of the editable files (train.py (did you mean src/train.py?)) is committed in HEAD" in r.stderr


def test_knobs_says_when_the_files_on_disk_are_not_the_committed_ones(tmp_path):
    """A newcomer's trial (2026-12-04): `knobs` silently showed HEAD's values while train.py
    had uncommitted edits."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("LR = 0.1\nprint(f'val_loss: {LR}')\n")
    (repo / "autoresearch.toml").write_text('[arena]\neditable = ["train.py"]\nrun = "python train.py"\n'
                                            '[metric]\nname = "val_loss"\n')
    git(repo, "init", "-q")
    commit_all(repo, "a model")
    clean = run_cli("knobs", repo)
    assert clean.returncode == 0 and "differ" not in clean.stdout
    (repo / "other.py").write_bytes(b"# caf\xe9: latin-1\nWIDTH = 8\nprint(WIDTH)\n")  # not UTF-8, unchanged (a review)
    (repo / "autoresearch.toml").write_text('[arena]\neditable = ["train.py", "other.py"]\nrun = "python train.py"\n'
                                            '[metric]\nname = "val_loss"\n')
    commit_all(repo, "another file")
    assert "differ" not in run_cli("knobs", repo).stdout
    (repo / "train.py").write_text("LR = 0.3\nprint(f'val_loss: {LR}')\n")
    r = run_cli("knobs", repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: train.py differ(s) on disk from HEAD: this table is the committed version's" in r.stdout


@pytest.mark.parametrize("given, meant", [
    ("epochs", "TrainConfig.epochs"),       # a newcomer's trial: freeze = ["epochs"] got no hint
    ("DEPHT", "DEPTH"),                     # a close spelling
    ("WIDTH", "train.py:WIDTH"),            # a name defined in two files is qualified
    ("lr", "TrainConfig.lr or config/train.py:lr or optimizer.lr"),  # several: each (a review)
    ("configs/data/mnist.yaml:epochs", "TrainConfig.epochs"),           # qualified: by its last part
    ("1", None),
    ("nothing_like_it", None),
])
def test_a_misnamed_knob_gets_the_one_it_likely_means(given, meant):
    from autoresearch.proposers.knobs import close_knob

    names = {"TrainConfig.epochs", "TrainConfig.lr", "optimizer.lr", "DEPTH", "ADAM_BETAS[1]", "config/train.py:lr",
             "train.py:WIDTH"}
    assert close_knob(given, names) == meant


CONFIG_ONLY = "learning_rate = 0.01\nsave_k = 200\ndropout = 0.1\n"
CONFIG_RUNNER = ("import sys\nexec(open(sys.argv[1]).read())\nloss = 1.0\nfor step in range(1000):\n"
                 "    loss *= 1 - learning_rate * (1 - dropout)\n    if step % save_k == 0:\n"
                 "        print(f'step {step} loss {loss}')\nprint(f'val_loss: {loss}')\n")


@pytest.mark.parametrize("run", ["python train.py config.py", "python -m train config.py", "python ./train.py config.py"])
def test_a_config_only_campaign_reads_how_the_run_script_uses_the_knobs(tmp_path, run):
    """A trial (2026-12-05): with only the config editable and the script in neither list, a
    cadence the script uses as `step % save_k` was searched like a hyperparameter."""
    config = f'[arena]\neditable = ["config.py"]\nrun = "{run}"\n[metric]\nname = "val_loss"\n'
    arena = arena_with(tmp_path / "a", {"config.py": CONFIG_ONLY, "train.py": CONFIG_RUNNER}, config)
    rows = {row["name"]: row for row in json.loads(run_cli("knobs", arena, "--json").stdout)}
    assert rows["save_k"]["frozen"] and "cadence" in rows["save_k"]["frozen"], rows["save_k"]
    assert not rows["learning_rate"]["frozen"] and not rows["dropout"]["frozen"]
    dry = run_cli("run", arena, "--dry-run")
    assert dry.returncode == 0 and "frozen: a cadence" in " ".join(dry.stdout.split()), dry.stdout


@pytest.mark.parametrize("command, scripts", [
    ("python train.py --lr 3", ["train.py"]),
    ("python ./scripts/train.py config/x.py --max_iters=10", ["scripts/train.py", "config/x.py"]),
    ("python -m pkg.train --x 1", ["pkg/train.py", "pkg/train/__main__.py"]),
    ("torchrun --nproc_per_node=2 train.py", ["train.py"]),
    ("uv run train.py", ["train.py"]),
    ("bash run.sh", []),
    ("python -c 'print(1)'", []),
    ("python 'unclosed", []),
])
def test_the_scripts_a_command_starts(command, scripts):
    from autoresearch.train_script import started_scripts, usage_paths

    assert started_scripts(command) == scripts
    assert usage_paths(["train.py"], ["prepare.py"], [command, None]) == tuple(
        dict.fromkeys(["prepare.py", *[s for s in scripts if s != "train.py"]]))


def test_knobs_tag_and_the_dry_run_of_a_campaign_that_goes_on_agree(tmp_path):
    """A newcomer's trial (2026-12-05): for a campaign that goes on, `knobs --tag` read the
    file's settings and `run --dry-run` the checkout's HEAD, so they disagreed on values and
    freezes. Both now show the campaign's tip with its recorded settings, as `run` uses them."""
    from autoresearch.testing import make_synthetic_arena

    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"judge": {"policy": "greedy"}})
    r = run_cli("run", arena, "--tag", "t", "--proposer", "knobs", "-n", "4", "--set", 'proposer.knobs.freeze=["WIDTH"]',
                "--set", "proposer.lookahead=0")
    assert r.returncode == 0, r.stdout + r.stderr
    tip = {row["name"]: row for row in json.loads(run_cli("knobs", arena, "--tag", "t", "--json").stdout)}
    assert tip["WIDTH"]["frozen"], tip["WIDTH"]  # the campaign's recorded freeze, not the file's (none)
    head = {row["name"]: row for row in json.loads(run_cli("knobs", arena, "--json").stdout)}
    assert not head["WIDTH"]["frozen"]
    dry = run_cli("run", arena, "--tag", "t", "--proposer", "knobs", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "knobs (autoresearch/t at " in dry.stdout, dry.stdout
    kept = [row["name"] for row in tip.values() if row["value"] != head[row["name"]]["value"]]
    for name in kept:  # the tip's values, where the campaign moved them
        assert f"{tip[name]['value']:.6g}" in dry.stdout, (name, dry.stdout)


LIT_MODEL = ("import lightning as L\n\n\nclass LitClassifier(L.LightningModule):\n"
             "    def __init__(self, hidden_dim: int = 64, dropout: float = 0.1, lr: float = 1e-3):\n"
             "        super().__init__()\n        self.save_hyperparameters()\n"
             "        self.net = make(hidden_dim, dropout)\n\n"
             "    def configure_optimizers(self):\n        return Adam(self.parameters(), lr=self.hparams.lr)\n")


def test_a_class_default_a_config_file_sets_is_not_searched():
    """A newcomer's LightningCLI trial (2026-12-05): with src/model.py editable beside
    configs/default.yaml, `LitClassifier.lr` was searched beside `model.lr`, though the CLI
    passes the file's values; the ablation credited a keep to the dead knob."""
    from autoresearch.proposers.knob_usage import set_by_config

    main = "from lightning.pytorch.cli import LightningCLI\nfrom src.model import LitClassifier\nLightningCLI(LitClassifier)\n"
    files = {"main.py": main, "src/model.py": LIT_MODEL, "configs/default.yaml": "model:\n  hidden_dim: 64\n  lr: 0.001\n"}
    knobs, spaces = KnobsProposer().survey(files)
    frozen = {k.name: k.frozen for k in knobs}
    assert frozen["LitClassifier.lr"].startswith("set by the config file's model.lr, which the framework passes")
    assert frozen["LitClassifier.hidden_dim"].startswith("set by the config file's model.hidden_dim")
    assert {"model.lr", "model.hidden_dim", "LitClassifier.dropout"} <= set(spaces)  # the file has no dropout
    _, alone = KnobsProposer().survey({"src/model.py": LIT_MODEL})  # no config file: the defaults are the values
    assert {"LitClassifier.lr", "LitClassifier.hidden_dim", "LitClassifier.dropout"} <= set(alone)
    # no framework builds the class from the file: a TrainConfig made in code keeps its lr (a review)
    coded = {"train.py": "from dataclasses import dataclass\n\n@dataclass\nclass TrainConfig:\n    lr: float = 0.01\n\n"
             "cfg = TrainConfig()\nfit(cfg.lr)\n", "configs/scheduler.yaml": "warmup:\n  lr: 0.0001\n"}
    assert "TrainConfig.lr" in KnobsProposer().survey(coded)[1]
    hydra = "model:\n  _target_: src.model.LitClassifier\n  lr: 0.001\n"
    assert set_by_config("LitClassifier.lr", ["model.lr"], [hydra]).startswith("set by the config file's model.lr")
    assert set_by_config("LitClassifier.lr", ["lr"], [hydra]) is None  # a top-level key is no class's section
    assert set_by_config("TrainConfig.lr", ["optim.lr"], [hydra]) is None  # another class


def test_the_knobs_table_in_a_pipe_has_whole_lines(tmp_path):
    """A newcomer's trial (2026-12-05): `autoresearch knobs | less` folded every reason into
    a column of an 80-column table, 150 lines for 21 knobs."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("MAX_ITERS = 100\nLR = 0.1\nstep = 0\nwhile step < MAX_ITERS:\n    step += 1\n"
                                   "print(f'val_loss: {LR}')\n")
    (repo / "autoresearch.toml").write_text('[arena]\neditable = ["train.py"]\nrun = "python train.py"\n'
                                            '[metric]\nname = "val_loss"\n')
    git(repo, "init", "-q")
    commit_all(repo, "a model")
    r = run_cli("knobs", repo)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if "MAX_ITERS" in line)
    assert "frozen: bounds a step counter or the elapsed time: it sets how much is computed" in row, r.stdout
    assert not any(line.endswith(" ") for line in r.stdout.splitlines())  # nothing past a line's last character


HF_ARGS = '''from dataclasses import dataclass, field


@dataclass
class ModelArguments:
    hidden_size: int = field(default=64, metadata={"help": "the width"})
    num_hidden_layers: int = field(
        default=2, metadata={"help": "the depth"}
    )
    hidden_dropout_prob: float = field(default=0.1)
    model_type: str = field(default="bert")
    tags: list = field(default_factory=list)
'''


def test_a_dataclass_field_written_with_field_default_is_a_knob():
    """An HF trial (2026-12-05): Hugging Face's argument dataclasses write every field as
    `field(default=64, metadata={...})`, and init found nothing to tune."""
    knobs = {k.name: k for k in find_knobs("train.py", HF_ARGS)}
    assert {n: k.value for n, k in knobs.items() if k.kind == "field"} == {
        "ModelArguments.hidden_size": 64, "ModelArguments.num_hidden_layers": 2,
        "ModelArguments.hidden_dropout_prob": 0.1, "ModelArguments.model_type": "bert"}
    edits = render_edits(list(knobs.values()), {"ModelArguments.hidden_size": 128, "ModelArguments.num_hidden_layers": 4})
    out = apply_edits({"train.py": HF_ARGS}, edits, ["train.py"])["train.py"]
    assert 'hidden_size: int = field(default=128, metadata={"help": "the width"})' in out
    assert "        default=4, metadata={\"help\": \"the depth\"}\n" in out  # the default's own line, the rest kept
    # a field the run command sets is no knob: HfArgumentParser reads `--hidden_size 128` (a review)
    cmd = KnobsProposer(run_command="python train.py --hidden_size 128 --do_train")
    frozen = {k.name: k.frozen for k in cmd.survey({"train.py": HF_ARGS})[0]}
    assert frozen["ModelArguments.hidden_size"].startswith("set by the run command (--hidden_size)")
    assert frozen["ModelArguments.num_hidden_layers"] is None
    pydantic = "class Settings(BaseModel):\n    lr: float = Field(0.001, ge=0)\n    wd: float = Field(default=0.01)\n"
    assert {k.name: k.value for k in find_knobs("s.py", pydantic)} == {"Settings.lr": 0.001, "Settings.wd": 0.01}
