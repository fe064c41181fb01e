"""What ``init`` and zero-config read from an arena's files: pure, table-driven, literal inputs."""

from __future__ import annotations

import json
import re
import sys

import pytest

from autoresearch.config import validate_config
from autoresearch.scaffold import config_text
from autoresearch.survey import (NUMBER, best_metric, budget_from_readonly, is_config_only, karpathy_budget,
                                 printed_metrics, survey)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NANO_TRAIN = '''import sys
import torch
from model import GPT
out_dir = 'out'
dataset = 'openwebtext'
max_iters = 600000
learning_rate = 6e-4
exec(open('configurator.py').read())
for iter_num in range(max_iters):
    if iter_num % 250 == 0:
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    print(f"iter {iter_num}: loss {lossf:.4f}, time {dt*1000:.2f}ms, mfu {running_mfu*100:.2f}%")
'''
NANO_FILES = {
    "train.py": NANO_TRAIN,
    "model.py": "import torch\nclass GPT:\n    pass\n",
    "configurator.py": "import sys\nfor arg in sys.argv[1:]:\n    exec(open(arg).read())\n",
    "config/train_shakespeare_char.py": "# small\nout_dir = 'out-shakespeare-char'\ndataset = 'shakespeare_char'\nmax_iters = 5000\n",
    "config/train_gpt2.py": "batch_size = 12\nmax_iters = 600000\n",
    "config/eval_gpt2.py": "batch_size = 8\neval_only = True\n",
    "data/shakespeare_char/prepare.py": "import os\nprint('prepared')\n",
    "data/openwebtext/prepare.py": "import os\nprint('prepared')\n",
    "sample.py": "print('sampled')\n",
    "README.md": "Train it:\n\n```\npython train.py config/train_shakespeare_char.py\n```\n",
}


@pytest.mark.parametrize("code, name, pattern, goal", [
    ('print(f"val_bpb:          {val_bpb:.6f}")', "val_bpb", None, "minimize"),
    ("print('val_bpb: 1.0')", "val_bpb", None, "minimize"),
    ('print("val_loss:", loss)', "val_loss", None, "minimize"),
    ('print(f"step {i}: train loss {a:.4f}, val loss {b:.4f}")', "val_loss", "val loss " + NUMBER, "minimize"),
    ('print("step %d | val_acc=%.3f" % (i, acc))', "val_acc", "val_acc=" + r"\s*" + NUMBER, "maximize"),
    ('logger.info("eval loss: {:.4f}".format(x))', "eval_loss", "eval loss:" + r"\s*" + NUMBER, "minimize"),
    ('logging.info("test accuracy %.2f", acc)', "test_accuracy", "test accuracy " + NUMBER, "maximize"),
    ('print(f"tokens per iteration will be: {n:,}")', None, None, None),
    ("print('epoch: 3')", None, None, None),
    ('print("Loss is {}, stopping training".format(loss))', None, None, None),  # a message: words follow
    # a label in prose that ends the line: named without its verb (a review: "Test accuracy is" got none)
    ('print(f"Test accuracy is {acc:.4f}")', "test_accuracy", "Test accuracy is " + NUMBER, "maximize"),
    ('print("Validation loss is", val_loss)', "validation_loss", "Validation loss is " + NUMBER, "minimize"),
    ('print("Solved! Running reward is now {}".format(r))', "reward", "reward is now " + NUMBER, "maximize"),
    ('wandb.log({"val/loss": x})', None, None, None),
])
def test_the_metric_a_line_prints(code, name, pattern, goal):
    m = best_metric(printed_metrics("train.py", code))
    if name is None:
        assert m is None
        return
    assert (m.name, m.pattern, m.goal) == (name, pattern, goal)
    assert m.where == "train.py:1"


def test_held_out_numbers_beat_training_numbers_and_summary_lines_beat_patterns():
    code = ('print(f"step {i} | loss: {l:.4f}")\nprint(f"step {i}: train loss {a}, val loss {b}")\n'
            'print(f"val_bpb: {v:.6f}")\nprint(f"train_loss: {t}")\n')
    assert best_metric(printed_metrics("t.py", code)).name == "val_bpb"
    assert best_metric(printed_metrics("t.py", code.replace('print(f"val_bpb: {v:.6f}")\n', ""))).name == "val_loss"
    # a scikit-learn trial: the cross-validated score, not the test split's accuracy printed after it
    cv = 'print(f"CV ROC-AUC: {auc:.4f} ± {sd:.4f}")\nprint(f"Test accuracy: {acc:.4f}")\n'
    found = best_metric(printed_metrics("t.py", cv))
    assert found is not None and found.label.startswith("CV ROC-AUC") and found.goal == "maximize"


@pytest.mark.parametrize("line, value", [
    ("step 250: train loss 1.2345, val loss 1.4567", "1.4567"),
    ("step 250: train loss 1.2345, val loss nan", "nan"),
    ("step 9: train loss 1e-3, val loss 2.5e-03", "2.5e-03"),
])
def test_the_pattern_reads_the_printed_number(line, value):
    m = best_metric(printed_metrics("train.py", NANO_TRAIN))
    assert re.findall(m.pattern, line)[-1] == value


@pytest.mark.parametrize("files, expected", [
    ({"train.py": "", "prepare.py": "TIME_BUDGET = 300        # seconds\n"}, (True, 300.0)),
    ({"train.py": "", "prepare.py": "TIME_BUDGET: int = 5 * 60\n"}, (True, 300.0)),
    ({"train.py": "", "prepare.py": "import os\nTIME_BUDGET = int(os.environ['B'])\n"}, (True, None)),
    ({"train.py": "", "prepare.py": "def f():\n    TIME_BUDGET = 300\n"}, (False, None)),   # not module-level
    ({"train.py": "", "prepare.py": "TIME_BUDGET = 300\ndef broken(:\n"}, (True, 300.0)),  # does not parse
    ({"train.py": "", "prepare.py": "MAX_SEQ_LEN = 2048\n"}, (False, None)),
    ({"train.py": ""}, (False, None)),
    ({"prepare.py": "TIME_BUDGET = 300\n"}, (False, None)),
])
def test_karpathy_layout(files, expected):
    assert karpathy_budget(files) == expected


@pytest.mark.parametrize("text, expected", [
    ("out_dir = 'out'\nmax_iters = 5000\n", True),
    ('"""doc"""\nimport time\nwandb_run_name = "ft-" + str(time.time())\n', True),
    ("max_iters = 5000\nprint(max_iters)\n", False),
    ("import os\n", False),
    ("def f():\n    pass\n", False),
    ("cfg.lr = 3\n", False),
    ("x = (\n", False),
])
def test_config_only_files(text, expected):
    assert is_config_only(text) is expected


@pytest.mark.parametrize("train, prepare, expected", [
    ("from prepare import MAX_SEQ_LEN, TIME_BUDGET\n", "TIME_BUDGET = 300\n", ("train.py", "prepare.py", "TIME_BUDGET", 300.0)),
    ("import os\nfrom prepare import TIME_BUDGET\nTIME_BUDGET = float(os.environ.get('AUTORESEARCH_TIME_BUDGET', TIME_BUDGET))\n",
     "TIME_BUDGET = 300\n", None),
    ("from prepare import TIME_BUDGET\n", "import os\nTIME_BUDGET = int(os.environ['AUTORESEARCH_TIME_BUDGET'])\n", None),
    ("from prepare import MAX_SEQ_LEN\n", "TIME_BUDGET = 300\n", None),
    ("from other import TIME_BUDGET\n", "TIME_BUDGET = 300\n", None),
])
def test_a_budget_taken_from_a_readonly_file(train, prepare, expected):
    files = {"train.py": train, "prepare.py": prepare}
    assert budget_from_readonly(files, ["train.py"], ["prepare.py"]) == expected


def test_survey_of_a_nanogpt_layout():
    s = survey(NANO_FILES)
    assert s.script == "train.py"
    assert s.editable == ("train.py", "config/train_shakespeare_char.py")
    assert s.run == "python train.py config/train_shakespeare_char.py" and "README" in s.run_why
    assert s.readonly == ("data/openwebtext/prepare.py", "data/shakespeare_char/prepare.py")
    assert (s.data, s.data_other) == (("data/shakespeare_char",), ("data/openwebtext",))  # the config's dataset
    assert set(s.helpers) == {"model.py", "configurator.py"}
    assert s.unused_configs == ("config/eval_gpt2.py", "config/train_gpt2.py")
    assert (s.metric.name, s.metric.pattern) == ("val_loss", "val loss " + NUMBER)
    assert s.length == {"max_iters": ("5000", "config/train_shakespeare_char.py")}
    assert s.budget is None and not s.reads_budget


def test_survey_without_a_readme_takes_the_only_training_config():
    files = {k: v for k, v in NANO_FILES.items() if k not in ("README.md", "config/train_gpt2.py")}
    assert survey(files).run == "python train.py config/train_shakespeare_char.py"
    files["config/train_gpt2.py"] = NANO_FILES["config/train_gpt2.py"]
    assert survey(files).run == "python train.py"  # two candidates: the comment lists them


def test_survey_of_a_karpathy_layout():
    s = survey({"train.py": 'from prepare import TIME_BUDGET\nprint(f"val_bpb:          {v:.6f}")\n',
                "prepare.py": "TIME_BUDGET = 300\ndef evaluate_bpb():\n    pass\n", "README.md": "uv run train.py\n"})
    assert (s.editable, s.readonly, s.run, s.budget, s.uv_run) == (("train.py",), ("prepare.py",), "python train.py", 300.0, True)
    assert (s.metric.name, s.metric.pattern) == ("val_bpb", None)


def test_a_training_script_in_a_folder_is_named_not_ignored():
    """A newcomer's trial (2026-12-04), a Lightning-Hydra layout: `init` said there was no
    train.py yet, although src/train.py was there; later (a second trial) it is the script:
    the one train.py, in a folder, run from the repository's root."""
    from autoresearch.scaffold import _found

    s = survey({"src/train.py": "import yaml\nprint('val/loss=0.1')\n", "src/models/mlp.py": "class M: pass\n",
                "tests/train_test.py": "def test(): pass\n", "src/tests/train_smoke.py": "x = 1\n",
                "src/models/trainer.py": "class T: pass\n", "scripts/train_tokenizer.py": "x = 1\n"})
    assert (s.script, s.run, s.editable) == ("src/train.py", "python src/train.py", ("src/train.py",))
    assert s.other_scripts == ("scripts/train_tokenizer.py",)
    assert list(_found(s, pattern_ok=True))[0] == "found: src/train.py (run: python src/train.py); editable src/train.py"
    assert "other training scripts: scripts/train_tokenizer.py" in config_text(s, pattern_ok=True)
    two = survey({"src/train.py": "x = 1\n", "baselines/train.py": "x = 1\n"})  # two: named, not guessed
    assert two.script is None and two.other_scripts == ("baselines/train.py", "src/train.py")
    assert list(_found(two, pattern_ok=True)) == [
        'note: there is no train.py at the top of the repository, but baselines/train.py, src/train.py: set '
        '[arena] run (e.g. "python baselines/train.py"), editable (it and the config files it reads, YAML under '
        'configs/ too) and [metric] name in autoresearch.toml']
    assert survey({}).other_scripts == () and "no train.py yet" in list(_found(survey({}), pattern_ok=True))[0]


MNIST_STYLE = (  # pytorch/examples' layout: main.py, argparse, Adadelta, a "Test set:" line
    "import argparse\nimport torch\n\n"
    "def test(model, loader):\n"
    "    print('\\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\\n'.format(loss, correct, n, 100. * correct / n))\n\n"
    "def main():\n    p = argparse.ArgumentParser()\n    p.add_argument('--lr', type=float, default=1.0)\n"
    "    args = p.parse_args()\n    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)\n"
    "    loss.backward()\n    optimizer.step()\n\n"
    "if __name__ == '__main__':\n    main()\n")
TOOL = "import sys\n\nif __name__ == '__main__':\n    print(sys.argv)\n"  # runs, trains nothing
FIT_SCALER = "from sklearn.preprocessing import StandardScaler\n\nif __name__ == '__main__':\n    StandardScaler().fit(x)\n"


@pytest.mark.parametrize("files, script", [
    ({"main.py": MNIST_STYLE}, "main.py"),  # the only script that trains
    ({"main.py": MNIST_STYLE, "download.py": TOOL}, "main.py"),
    ({"main.py": MNIST_STYLE, "finetune.py": MNIST_STYLE}, None),  # two: not guessed
    ({"main.py": MNIST_STYLE, "finetune.py": MNIST_STYLE, "README.md": "Run `python finetune.py --lr 0.5`"}, "finetune.py"),
    ({"main.py": MNIST_STYLE, "README.md": "python download.py first"}, "main.py"),  # the README runs no trainer
    ({"main.py": MNIST_STYLE.replace("if __name__ == '__main__':\n    main()\n", "")}, None),  # a module, not a script
    ({"cli.py": TOOL}, None),
    ({"models/main.py": MNIST_STYLE}, None),  # only at the top
    ({"main.py": MNIST_STYLE, "train_gan.py": "if __name__ == '__main__':\n    pass\n"}, "train_gan.py"),  # train*.py first
    # (a review) a README runs its data step first; data, evaluation and test scripts are never the one
    ({"prepare.py": FIT_SCALER, "main.py": MNIST_STYLE, "README.md": "python prepare.py\npython main.py"}, "main.py"),
    ({"prepare_data.py": FIT_SCALER}, None),
    ({"test_model.py": MNIST_STYLE, "evaluate.py": MNIST_STYLE, "setup.py": MNIST_STYLE}, None),
    # a wrapper the README runs, whose import trains (its own __main__ a debug one)
    ({"main.py": "import engine\nimport argparse\nengine.run(argparse.ArgumentParser().parse_args())\n",
      "engine.py": MNIST_STYLE, "README.md": "python main.py --lr 0.1"}, "main.py"),
    # no __main__ guard: the README's (kuangliu/pytorch-cifar), not a guess
    ({"main.py": MNIST_STYLE.replace("if __name__ == '__main__':\n    main()\n", "main()\n"),
      "README.md": "`python main.py --lr=0.01`"}, "main.py"),
    ({"main_dino.py": MNIST_STYLE, "eval_knn.py": MNIST_STYLE, "README.md":
      "python -m torch.distributed.launch --nproc_per_node=8 main_dino.py --arch vit_small"}, "main_dino.py"),
    ({"run.py": MNIST_STYLE, "finetune.py": MNIST_STYLE, "README.md": "torchrun --nproc_per_node 4 finetune.py"},
     "finetune.py"),
    ({"run.py": MNIST_STYLE, "finetune.py": MNIST_STYLE, "README.md": "python3.10 -u run.py"}, "run.py"),
])
def test_a_training_script_not_named_train(files, script):
    """A newcomer's trial (2026-12-05) on a pytorch/examples-style repository: `init` wrote
    editable = ["train.py"] and said to write it, although main.py was the training script."""
    s = survey(files)
    assert s.script == script
    if script == "main.py" and len(files) == 1:
        assert (s.run, s.editable, s.script_why) == ("python main.py", ("main.py",), "the only script at the top that trains")
        from autoresearch.scaffold import _found

        assert list(_found(s, pattern_ok=True))[0] == ("found: main.py, the only script at the top that trains "
                                                       "(run: python main.py); editable main.py")
        assert s.metric is not None and s.metric.name == "average_loss" and s.metric.goal == "minimize"
        assert s.budget is None and not s.reads_budget  # init's note: its own settings decide a run's length


@pytest.mark.parametrize("files", [NANO_FILES, {}, {"train.py": "print('val_bpb: 1.0')\n"},
                                   {"train.py": "import os\nB = os.environ['AUTORESEARCH_TIME_BUDGET']\n"}])
@pytest.mark.parametrize("pattern_ok", [True, False])
def test_the_written_config_is_valid_and_says_where_each_guess_came_from(files, pattern_ok):
    s = survey(files)
    text = config_text(s, pattern_ok=pattern_ok)
    raw = tomllib.loads(text)
    config = validate_config(raw, "autoresearch.toml")
    assert list(config.arena.editable) == list(s.editable)
    assert "experiment's run directory" in text and 'experiment"s' not in text
    if s.metric is not None and s.metric.pattern is not None:
        assert raw["metric"].get("pattern") == (s.metric.pattern if pattern_ok else None)
        assert s.metric.where in text


@pytest.mark.parametrize("ready, line", [
    (("data/shakespeare_char",), '\ndata = ["data/shakespeare_char"]\n'),
    ((), '\n# data = ["data/shakespeare_char"]\n'),   # not prepared yet: the run would refuse the line
])
def test_the_data_a_run_reads_is_linked_once_it_is_prepared(ready, line):
    s = survey(NANO_FILES)
    assert s.data == ("data/shakespeare_char",)
    text = config_text(s, pattern_ok=True, data_ready=ready)
    assert line in text
    assert ("python data/shakespeare_char/prepare.py" in text) is (not ready)


@pytest.mark.parametrize("text, expected", [
    ("loss.backward()\n", True),
    ("model.fit(x, y)\n", True),
    ("optimizer = SGD()\n...\noptimizer.step()\n", True),
    ("opt.step()\n", False),                       # a step of something that names no optimizer
    ("import torch.optim as optim\nscheduler.step()\n", True),
    ("print('hello')\n", False),
    ("trainer = Trainer(model=m, args=a)\ntrainer.train()\n", True),  # Hugging Face's run_*.py (a review)
    ("model.train()\n", False),                     # a mode switch, not training
    ("optimizer\n" * 20_000, False),               # no step: linear, not a pattern rescanning the file (a review)
    ("from lightning.pytorch.cli import LightningCLI\ncli = LightningCLI(LitModel, DataModule)\n", True),  # fit trains
    ("import pytorch_lightning.cli\npytorch_lightning.cli.LightningCLI(Lit)\n", True),
    ("# we do not use LightningCLI(...) here\nimport argparse\n", False),  # a mention is no call (a review)
    ("class Lit(L.LightningModule):\n    def training_step(self, batch, i):\n", False),  # the model, not the script
])
def test_what_trains(text, expected):
    from autoresearch.train_script import trains

    assert trains(text) is expected


PKG_TRAIN = ("import logging\nfrom .config import TrainConfig\nfrom .data import make_data\n\n"
             "def main():\n    cfg = TrainConfig()\n    loss.backward()\n    opt.step()\n"
             "    logging.info('epoch %d val_loss=%.4f', e, v)\n\nif __name__ == '__main__':\n    main()\n")
PKG_CONFIG = ("from dataclasses import dataclass, field\n\n\n@dataclass\nclass TrainConfig:\n    lr: float = 3e-3\n"
              "    epochs: int = 5\n\n    def to_dict(self):\n        return {}\n")


def test_a_training_script_in_a_package_runs_as_a_module_with_its_config_editable():
    """A newcomer's trial (2026-12-05): `python -m mlp_exp.train` in the README, relative
    imports, the hyperparameters in a dataclass in mlp_exp/config.py. init ran it as
    `python mlp_exp/train.py` (ImportError: attempted relative import with no known parent
    package) and left config.py out (the knobs table was empty)."""
    files = {"mlp_exp/__init__.py": "", "mlp_exp/train.py": PKG_TRAIN, "mlp_exp/config.py": PKG_CONFIG,
             "mlp_exp/data.py": "def make_data():\n    return 1\n", "README.md": "python -m mlp_exp.train lr=1e-3\n"}
    s = survey(files)
    assert (s.script, s.run, s.script_why) == ("mlp_exp/train.py", "python -m mlp_exp.train",
                                               "the README runs `python -m mlp_exp.train`")
    assert s.editable == ("mlp_exp/train.py", "mlp_exp/config.py") and s.readonly == ("mlp_exp/data.py",)
    assert s.metric is not None and s.metric.name == "val_loss"
    # without the README: its relative imports say the same
    assert survey({k: v for k, v in files.items() if k != "README.md"}).run == "python -m mlp_exp.train"


@pytest.mark.parametrize("script, files, readme, run", [
    ("pkg/train.py", {"pkg/__init__.py": "", "pkg/train.py": "from .config import C\n"}, "", "python -m pkg.train"),
    # an import of its own package alone: the script may set up its own path (a review: `from src.models
    # import Net` after a sys.path insert, `from utils import ...` beside it; -m broke it)
    ("pkg/train.py", {"pkg/__init__.py": "", "pkg/train.py": "from pkg.config import C\n"}, "", None),
    ("pkg/train.py", {"pkg/__init__.py": "", "pkg/train.py": "import torch\n"}, "", None),  # runs as a file
    ("pkg/train.py", {"pkg/train.py": "from .config import C\n"}, "", None),  # no package: no -m
    # a README that runs it as a file wins (the Lightning-Hydra template: rootutils sets the path up)
    ("src/train.py", {"src/__init__.py": "", "src/train.py": "from .x import y\n"}, "python src/train.py", None),
    ("a/b/train.py", {"a/b/train.py": "x = 1\n"}, "python -u -m a.b.train --lr 3", "python -m a.b.train"),
    ("train.py", {"train.py": "from .x import y\n"}, "python -m train", None),  # at the top: a file
    ("pkg/train.py", {"pkg/__init__.py": "", "pkg/train.py": "x = 1\n"}, "python -m pkg.trainer", None),
    # a package run through its __main__.py (a review: `python -m mypkg.train` ran nothing)
    ("mypkg/train.py", {"mypkg/__init__.py": "", "mypkg/__main__.py": "from .train import train\ntrain()\n",
                        "mypkg/train.py": "from .config import C\ndef train():\n    pass\n"}, "python -m mypkg",
     "python -m mypkg"),
    ("mypkg/train.py", {"mypkg/__init__.py": "", "mypkg/__main__.py": "print(1)\n", "mypkg/train.py": "x = 1\n"},
     "python -m mypkg", None),  # its __main__ does not run the script
])
def test_how_a_script_in_a_folder_is_started(script, files, readme, run):
    from autoresearch.train_script import module_launch

    got = module_launch(script, files, readme)
    assert (got[0] if got else None) == run
    assert got is None or got[1]  # it says why


@pytest.mark.parametrize("text, config", [
    (PKG_CONFIG, True),
    ("import dataclasses\n\n@dataclasses.dataclass(frozen=True)\nclass C:\n    lr: float = 0.1\n", True),
    ('"""Settings."""\nDEFAULT = 3\n\n@dataclass\nclass C:\n    lr: float = 0.1\n', True),
    ("class C:\n    lr = 0.1\n", False),                        # no dataclass: could be anything
    ("@dataclass\nclass C:\n    lr: float = 0.1\n\ndef train():\n    pass\n", False),  # code too
    ("LR = 0.1\n", False),                                       # is_config_only's case, not this one
    ("def (:\n", False),
])
def test_a_module_of_dataclass_settings(text, config):
    from autoresearch.train_script import holds_config

    assert holds_config(text) is config


@pytest.mark.parametrize("path, text, found", [
    ("pkg/train.py", "from .config import C\n", ["pkg/config.py"]),
    ("pkg/train.py", "from . import config\n", ["pkg/config.py"]),
    ("pkg/sub/train.py", "from ..config import C\n", ["pkg/config.py"]),
    ("pkg/train.py", "from ...too_far import C\n", []),
    ("train.py", "from .config import C\n", []),                # a relative import at the top: nothing
    ("pkg/train.py", "from pkg.config import C\n", ["pkg/config.py"]),
])
def test_relative_imports_are_followed(path, text, found):
    from autoresearch.survey import local_imports

    assert local_imports(text, ["pkg/config.py", path], path) == found


@pytest.mark.parametrize("path, editable", [
    ("config.py", True),
    ("mlp_exp/config.py", True),
    ("data_config.py", False),             # the data's settings stay readonly (a review)
    ("evaluation/settings.py", False),     # the evaluation's too
    ("tests/fixture_config.py", False),
])
def test_which_settings_modules_become_editable(path, editable):
    from autoresearch.train_script import settings_module

    assert settings_module(path, PKG_CONFIG) is editable


def test_a_script_the_readme_runs_from_scripts_with_its_yaml_config():
    """A third newcomer's trial (2026-12-05): `python scripts/train.py --config configs/base.yaml`
    in the README, the hyperparameters in that YAML file. init said to set [arena] run by
    hand, wrote editable = ["train.py"], and, with the script at the top, left the YAML out
    (nothing to tune)."""
    train = ("import argparse, sys, yaml\nsys.path.insert(0, '.')\nfrom src.model import build\n\n"
             "p = argparse.ArgumentParser()\np.add_argument('--config', default='configs/base.yaml')\n"
             "cfg = yaml.safe_load(open(p.parse_args().config))\nloss.backward()\nopt.step()\n"
             "print(f'epoch {e} val_loss {v:.4f}')\n")
    files = {"scripts/train.py": train, "src/__init__.py": "", "src/model.py": "def build():\n    pass\n",
             "configs/base.yaml": "optim:\n  lr: 0.001\n", "configs/small.yaml": "optim:\n  lr: 0.01\n",
             "README.md": "python scripts/train.py --config configs/base.yaml\n"}
    s = survey(files)
    # the README's own command, its config file named (as a LightningCLI's must be: a later trial)
    assert (s.script, s.run, s.script_why) == ("scripts/train.py", "python scripts/train.py --config configs/base.yaml",
                                               "the README runs `python scripts/train.py --config configs/base.yaml`")
    assert s.editable == ("scripts/train.py", "configs/base.yaml")
    small = survey({**files, "README.md": "python scripts/train.py --config configs/small.yaml\n"})
    assert small.editable == ("scripts/train.py", "configs/small.yaml")  # not the default no run reads (a review)
    assert survey({k: v for k, v in files.items() if k != "README.md"}).script is None  # scripts/: not adopted unasked
    top = survey({"train.py": train, "configs/base.yaml": "optim:\n  lr: 0.001\n"})
    assert top.editable == ("train.py", "configs/base.yaml")


@pytest.mark.parametrize("text, found", [
    ("p.add_argument('--config', default='configs/base.yaml')\n", ["configs/base.yaml"]),
    ("CFG = 'configs/missing.yaml'\n", []),            # not in the repository
    ("x = 'configs/base.json'\n", []),                 # YAML only
    ("def (:\n", []),
])
def test_the_yaml_a_script_names(text, found):
    from autoresearch.train_script import named_yaml

    assert named_yaml(text, {"configs/base.yaml": "a: 1\n", "configs/base.json": "{}"}) == found


@pytest.mark.parametrize("readme, names, found", [
    ("The goal is to maximize `val_acc` on the held-out split.", ["val_loss", "val_acc"], "val_acc"),
    ("## Metric\nval_acc, higher is better\n", ["val_loss", "val_acc"], "val_acc"),
    ("We minimise val_loss.\n\nTraining prints train_loss and val_acc.", ["val_loss", "val_acc"], "val_loss"),
    ("Training prints val_loss and val_acc.", ["val_loss", "val_acc"], None),        # no sentence about a goal
    ("Target: val_acc above 0.9; also watch val_loss.", ["val_loss", "val_acc"], "val_acc"),
    ("Target: val_acc and val_loss.", ["val_loss", "val_acc"], None),                  # both in the goal's sentence
    # a fourth trial's README: the metrics' file named in passing, the goal in a sentence of its own
    ("Each epoch prints one JSON line, e.g. `{\"val_loss\": 0.45, \"val_f1\": 0.81}`; the final metrics go to "
     "`results/metrics.json`.\n\n## Goal\n\nThe goal is to maximize `val_f1` on the validation split.",
     ["val_loss", "val_f1"], "val_f1"),
    ("The final metrics are val_loss and val_f1.", ["val_loss", "val_f1"], None),
    ("The goal is to minimize the loss.", ["loss", "val_acc"], None),                 # one word: prose, not a name
    ("Our objective: final_val_acc.", ["val_acc", "final_val_acc"], "final_val_acc"),  # not the tail of a longer name
    ("Improve val_acc/top1.", ["val_acc"], None),
    ("Metrics are logged to wandb, for example val_loss.", ["val_loss"], None),  # "metrics": no goal (a review)
    ("The scoreboard shows val_loss live.", ["val_loss"], None),
    ("", ["val_acc"], None),
])
def test_the_metric_a_readme_names_as_its_goal(readme, names, found):
    from autoresearch.train_script import readme_metric

    assert readme_metric(readme, names) == found


@pytest.mark.parametrize("readme, found", [
    ("The goal is to maximize the validation ROC AUC.", "validation_roc_auc"),   # as printed, any case (a trial)
    ("The goal is to maximize the Validation  ROC\nAUC.", "validation_roc_auc"),
    ("The goal: validation ROC AUC and validation log loss.", None),
    ("We report the validation ROC AUC.", None),                                 # no goal's word
])
def test_the_metric_a_readme_names_by_its_printed_label(readme, found):
    from autoresearch.train_script import readme_metric

    labels = {"validation ROC AUC": "validation_roc_auc", "validation log loss": "validation_log_loss"}
    assert readme_metric(readme, labels.values(), labels) == found


def test_init_takes_the_metric_the_readme_names_and_shows_how_to_read_the_others():
    """A third newcomer's trial (2026-12-05): the README's goal was `val_acc` (maximize); init
    chose val_loss, and listed final_val_acc without the pattern that reads it, so choosing
    that name crashed the baseline."""
    from autoresearch.scaffold import _found

    train = ("import torch\nloss.backward()\nopt.step()\n"
             "print(f'epoch {e} val_loss {v:.4f} val_acc {a:.4f}')\nprint(f'final val acc = {best:.4f}')\n")
    files = {"train.py": train, "README.md": "# Tiny classifier\n\nThe goal is to maximize `val_acc`.\n"}
    s = survey(files)
    assert s.metric is not None and (s.metric.name, s.metric.goal) == ("val_acc", "maximize")
    assert s.metric_why == "the README's goal"
    assert any(line.startswith("metric: val_acc (maximize)") and line.endswith("; the README's goal)")
               for line in _found(s, pattern_ok=True))
    text = config_text(s, pattern_ok=True)
    others = [ln for ln in text.splitlines() if ln.startswith("#   ")]
    assert others and all(": pattern = '" in ln for ln in others), text
    for line in others:  # each pattern shown reads its number from the line the script prints
        name, pattern = line[4:].split(" (")[0], tomllib.loads(line.split(": ", 1)[1].replace("pattern", "p", 1))["p"]
        printed = {"val_loss": "epoch 3 val_loss 0.5000 val_acc 0.8000", "final_val_acc": "final val acc = 0.8100"}[name]
        assert re.search(pattern, printed) is not None, (name, pattern)
    assert survey({"train.py": train}).metric.name == "val_loss"  # no README: the ranking's choice
    # a README that names a training number in a goal's words does not replace the held-out one (a review)
    s = survey({"train.py": "print(f'train_loss: {t}')\nprint(f'val_loss: {v}')\n",
                "README.md": "The goal is to minimize train_loss quickly.\n"})
    assert s.metric is not None and s.metric.name == "val_loss" and not s.metric_why


@pytest.mark.parametrize("files, where", [
    ({"run.py": "import torch\nargs = p.parse_args()\ntorch.manual_seed(args.seed)\n"}, "run.py:3 torch.manual_seed"),
    ({"run.py": "import os\nseed = int(os.environ.get('AUTORESEARCH_SEED', 0))\ntorch.manual_seed(seed)\n"}, ""),
    ({"run.py": "from util import setup\n", "util.py": "import numpy as np\nnp.random.seed(1)\n"}, "util.py:2 np.random.seed"),
    ({"run.py": "import lightning as L\nL.seed_everything(42)\n"}, "run.py:2 seed_everything"),
    ({"run.py": "# torch.manual_seed(0) would make it deterministic\nprint(1)\n"}, ""),   # a comment
    ({"run.py": "print(1)\n"}, ""),
])
def test_a_run_that_seeds_itself(files, where):
    from autoresearch.train_script import own_seed

    assert own_seed(files, ["run.py", "util.py"]) == where


def test_init_says_when_the_script_ignores_the_seed_it_is_given():
    """A fourth newcomer's trial (2026-12-05): `torch.manual_seed(args.seed)`; every run gave
    one value and three changes were kept at p = 0 before anything said why."""
    from autoresearch.scaffold import _found

    train = ("import argparse, json, torch\np = argparse.ArgumentParser()\np.add_argument('--seed', type=int, default=0)\n"
             "args = p.parse_args()\ntorch.manual_seed(args.seed)\nloss.backward()\nopt.step()\n"
             "print(json.dumps({'epoch': 1, 'val_loss': 0.5}))\n")
    fixed = train.replace("torch.manual_seed(args.seed)", "torch.manual_seed(0)")
    said = list(_found(survey({"run.py": fixed, "README.md": "python run.py\n"}), pattern_ok=True))
    assert any(line.startswith("note: run.py seeds itself (run.py:5 torch.manual_seed) and does not read "
                               "AUTORESEARCH_SEED") for line in said), said
    # a seed the script takes from its --seed option is given each run's own (a scikit-learn trial)
    s = survey({"run.py": train, "README.md": "python run.py\n"})
    assert s.run == "python run.py --seed $AUTORESEARCH_SEED"
    assert not any("seeds itself" in line for line in _found(s, pattern_ok=True))
    told = survey({"run.py": train, "README.md": "python run.py --seed 42 --lr 0.1 --config c.yaml\n", "c.yaml": "a: 1\n"})
    assert told.run.startswith("python run.py --seed $AUTORESEARCH_SEED --lr 0.1"), told.run
    seeded = train.replace("torch.manual_seed(args.seed)", "torch.manual_seed(int(os.environ['AUTORESEARCH_SEED']))")
    assert not any("seeds itself" in line for line in _found(survey({"run.py": seeded, "README.md": "python run.py\n"}),
                                                              pattern_ok=True))


@pytest.mark.parametrize("path, text, settings", [
    ("configs/params.json", '{"n_estimators": 200, "max_depth": 6, "subsample": 0.8}', True),
    ("configs/params.toml", "lr = 0.1\nepochs = 3\n", True),
    ("data/vocab.json", '{"a": 1, "b": 2}', False),       # data, by its name
    ("metrics.json", '{"val_loss": 0.4, "val_acc": 0.9}', False),
    ("configs/labels.json", '{"cat": 0, "dog": 1}', False),
    ("configs/names.json", '{"model": "mlp", "optimizer": "adam"}', False),  # no numbers to tune
    ("configs/rows.json", "[1, 2, 3]", False),
    ("configs/big.json", json.dumps({f"k{i}": i for i in range(300)}), False),
    ("configs/broken.json", "{", False),
    ("params.json", '{"lr": 0.1, "epochs": 3}', True),
    ("classes.json", '{"cat": 0, "dog": 1, "bird": 2}', False),       # a lookup table (a review)
    ("configs/stats.json", '{"mean": 0.1307, "std": 0.3081}', False),  # data statistics
    ("generation_config.json", '{"top_p": 0.9, "temperature": 0.7}', False),
    ("experiment.json", '{"lr": 0.1, "epochs": 3}', False),            # no settings' name, no config folder
])
def test_which_json_and_toml_files_hold_settings(path, text, settings):
    from autoresearch.train_script import settings_file

    assert settings_file(path, text) is settings


SKLEARN_TRAIN = '''import argparse, json, logging
from sklearn.ensemble import GradientBoostingClassifier
logger = logging.getLogger(__name__)
DATA_SEED = 0

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--params", default="configs/params.json")
    args = p.parse_args()
    params = json.load(open(args.params))
    model = GradientBoostingClassifier(**params)
    model.fit(X, y)
    logger.info("validation ROC AUC = %.4f", auc)
    logger.info("validation log loss = %.4f", ll)

if __name__ == "__main__":
    main()
'''


def test_init_on_a_scikit_learn_project_with_its_params_in_json():
    """A fifth newcomer's trial (2026-12-05): `configs/params.json` was left out (nothing to
    tune), the metric was the log loss though the README's goal is "the validation ROC AUC",
    and `random_state: 42` in the JSON went unremarked (every run the same)."""
    from autoresearch.scaffold import _found

    files = {"src/train.py": SKLEARN_TRAIN, "src/features.py": "def add_features(df):\n    return df\n",
             "configs/params.json": '{\n  "n_estimators": 200,\n  "subsample": 0.8,\n  "random_state": 42\n}\n',
             "README.md": "Run `python src/train.py`.\n\n## Goal\n\nThe goal is to maximize the validation ROC AUC.\n"}
    s = survey(files)
    assert s.editable == ("src/train.py", "configs/params.json")
    assert s.metric is not None and (s.metric.name, s.metric.goal, s.metric_why) == (
        "validation_roc_auc", "maximize", "the README's goal")
    assert s.own_seed == "configs/params.json:4 random_state"
    said = list(_found(s, pattern_ok=True))
    assert any("seeds itself (configs/params.json:4 random_state)" in line for line in said), said


RL_CONFIG = "GAMMA = 0.99\nLR = 3e-3\nHIDDEN = 64\nN_EPISODES = 300\nEVAL_EPISODES = 10\nSEED = 0\n"
RL_TRAIN = '''import torch
from rl.config import GAMMA, LR, HIDDEN, N_EPISODES, EVAL_EPISODES, SEED

def main():
    torch.manual_seed(SEED)
    opt = torch.optim.Adam(policy.parameters(), lr=LR)
    for it in range(N_EPISODES):
        loss.backward()
        opt.step()
        print(f"iter {it} | mean_return {r:.1f} | loss {loss.item():.3f}")
    print(f"Eval mean return: {m:.1f} +/- {s:.1f}")

if __name__ == "__main__":
    main()
'''


def test_init_on_a_reinforcement_learning_package_run_as_a_module():
    """A sixth newcomer's trial (2026-12-05): the README runs `python -m rl.ppo`; init said
    "there is no train.py yet", and with the script found chose the PPO surrogate loss
    (minimize) over "Eval mean return" (maximize)."""
    from autoresearch.scaffold import _found

    files = {"rl/__init__.py": "", "rl/config.py": RL_CONFIG, "rl/ppo.py": RL_TRAIN,
             "README.md": "Train with `python -m rl.ppo`.\n\nThe goal is to maximize the evaluation mean return.\n"}
    s = survey(files)
    assert (s.script, s.run) == ("rl/ppo.py", "python -m rl.ppo")
    assert s.script_why == "the README runs `python -m rl.ppo`"  # said once
    assert "rl/config.py" in s.editable
    assert s.metric is not None and (s.metric.name, s.metric.goal) == ("eval_mean_return", "maximize")
    assert re.search(s.metric.pattern, "Eval mean return: 143.2 +/- 21.0").group(1) == "143.2"
    assert any("seeds itself (rl/ppo.py:5 torch.manual_seed)" in line for line in _found(s, pattern_ok=True))
    # a README that runs a tool as a module names no trainer
    assert survey({"rl/__init__.py": "", "rl/ppo.py": RL_TRAIN, "README.md": "python -m pip install -e .\n"}).script is None


ENGINE = "def train_one_epoch(model, opt):\n    loss.backward()\n    opt.step()\n\ndef evaluate(model):\n    pass\n"
MAIN = "from pkg.engine import train_one_epoch\nif __name__ == '__main__':\n    loss.backward()\n    print(f'val_loss: {v}')\n"


@pytest.mark.parametrize("readme", ["python -m pkg.sample", "python -m evaluation.run", "python -m tests.smoke_run",
                                    "python -m scripts.tools.finetune", "python -m pip install -e ."])
def test_a_module_the_readme_runs_does_not_beat_the_real_trainer(readme):
    """A review (2026-12-05): a module that only imports the engine (to sample or evaluate),
    or one under tests/ or scripts/, was taken over the top-level main.py that trains."""
    files = {"main.py": MAIN, "pkg/__init__.py": "", "pkg/engine.py": ENGINE,
             "pkg/sample.py": "from pkg.engine import evaluate\nevaluate(None)\n",
             "evaluation/__init__.py": "", "evaluation/run.py": "from pkg.engine import evaluate\n",
             "tests/__init__.py": "", "tests/smoke_run.py": "loss.backward()\nopt.step()\n",
             "scripts/__init__.py": "", "scripts/tools/__init__.py": "",
             "scripts/tools/finetune.py": "loss.backward()\noptim = 1\nopt.step()\n", "README.md": readme + "\n"}
    assert survey(files).script == "main.py"


def test_a_package_the_readme_runs_starts_as_the_package():
    """A review (2026-12-05): `python -m pkg` whose __main__.py imports the trainer got
    `run = "python pkg/__main__.py"`, which fails: No module named 'pkg'."""
    files = {"pkg/__init__.py": "", "pkg/engine.py": ENGINE,
             "pkg/__main__.py": "from pkg.engine import train_one_epoch\ntrain_one_epoch(None, None)\n",
             "README.md": "python -m pkg\n"}
    s = survey(files)
    assert (s.script, s.run) == ("pkg/__main__.py", "python -m pkg")


def test_a_nested_train_script_the_readme_runs_as_a_module():
    """A review (2026-12-05): with src/train.py and scripts/train.py, `python -m src.train` in
    the README found nothing, where `python src/train.py` did."""
    train = "loss.backward()\nopt.step()\nprint(f'val_loss: {v}')\n"
    files = {"src/__init__.py": "", "src/train.py": train, "scripts/train.py": train, "README.md": "python -m src.train\n"}
    s = survey(files)
    assert (s.script, s.run) == ("src/train.py", "python -m src.train")


def test_a_return_code_is_no_metric():
    """A review (2026-12-05): once "return" was a metric word, "download return code: 0" was
    taken as the metric to maximise, over the training loss."""
    s = survey({"train.py": "print(f'download return code: {rc}')\nloss.backward()\n"
                            "print(f'step {i} train loss {loss.item():.3f}')\n"})
    assert s.metric is not None and s.metric.name == "train_loss"


@pytest.mark.parametrize("readme, command, config", [
    ("Train:\n```bash\npython main.py fit --config configs/default.yaml\n```\n",
     "python main.py fit --config configs/default.yaml", "configs/default.yaml"),
    ("`python main.py fit --config=configs/default.yaml` trains it.\n",
     "python main.py fit --config=configs/default.yaml", "configs/default.yaml"),
    ("$ python3 main.py fit -c configs/default.yaml && python main.py test\n",
     "python3 main.py fit -c configs/default.yaml", "configs/default.yaml"),
    ("python main.py fit --config configs/other.yaml\n", None, None),          # a file the repository lacks
    ("python main.py fit --config <your.yaml>\n", None, None),                 # a placeholder
    ("python main.py fit --config $CONFIG configs/default.yaml\n", None, None),
    ("python main.py --lr 0.1\n", None, None),                                 # no config file: the script alone
    ("python mainx.py fit --config configs/default.yaml\n", None, None),       # another script
    # a review: an evaluation first, then the training; placeholders; a smoke test
    ("Evaluate: `python main.py test --config configs/default.yaml --ckpt_path best.ckpt`\n"
     "Train: `python main.py fit --config configs/default.yaml`\n",
     "python main.py fit --config configs/default.yaml", "configs/default.yaml"),
    ("`python main.py fit --config configs/default.yaml --trainer.fast_dev_run=true`\n"
     "`python main.py fit --config configs/default.yaml --trainer.max_epochs=5`\n",
     "python main.py fit --config configs/default.yaml --trainer.max_epochs=5", "configs/default.yaml"),
    ("python main.py fit --config configs/default.yaml ...\n", None, None),
    ("python main.py fit --config configs/default.yaml --data path/to/data\n", None, None),
    ("python main.py validate --config configs/default.yaml\n", None, None),
    ("python main.py --config configs/default.yaml --lr 0.1\npython main.py --config configs/default.yaml\n",
     "python main.py --config configs/default.yaml --lr 0.1", "configs/default.yaml"),  # the README's order
    ("`python main.py fit --config configs/default.yaml --print_config`\n"  # shows, not trains (a review)
     "`python main.py fit --config configs/default.yaml`\n", "python main.py fit --config configs/default.yaml",
     "configs/default.yaml"),
    ("python3 -u main.py fit --config configs/default.yaml 2>&1 | tee log\n",  # -u kept, no `2` (a review)
     "python3 -u main.py fit --config configs/default.yaml", "configs/default.yaml"),
])
def test_the_readmes_command_with_its_config_file(readme, command, config):
    from autoresearch.train_script import readme_command

    found = readme_command("main.py", readme, ["main.py", "configs/default.yaml"])
    assert found == (None if command is None else (command, config, None))


LIGHTNING_CLI = {
    "main.py": "from lightning.pytorch.cli import LightningCLI\nfrom src.model import Lit\nfrom src.data import DM\n\n"
               "def cli_main():\n    LightningCLI(Lit, DM)\n\nif __name__ == '__main__':\n    cli_main()\n",
    "src/model.py": "import lightning as L\nclass Lit(L.LightningModule):\n    def __init__(self, lr=1e-3):\n"
                    "        super().__init__()\n    def training_step(self, batch, i):\n        return 0\n"
                    "    def validation_step(self, batch, i):\n        self.log('val_acc', 0.5, prog_bar=True)\n",
    "src/data.py": "import lightning as L\nclass DM(L.LightningDataModule):\n    pass\n",
    "configs/default.yaml": "seed_everything: 42\ntrainer:\n  max_epochs: 10\nmodel:\n  lr: 0.001\n",
    "README.md": "# mlp\n\n```bash\npython main.py fit --config configs/default.yaml\n```\n\n"
                 "The goal is the best validation accuracy (`val_acc`).\n",
}


def test_a_lightning_cli_project_runs_as_its_readme_says():
    """A newcomer's LightningCLI trial (2026-12-05): init said "there is no train.py yet" and
    wrote `python train.py`; found by name it would have run `python main.py`, which stops
    without its subcommand, and left the YAML that holds every setting out of editable."""
    s = survey(LIGHTNING_CLI)
    assert s.script == "main.py"
    assert s.run == "python main.py fit --config configs/default.yaml --seed_everything $AUTORESEARCH_SEED"
    assert s.editable == ("main.py", "configs/default.yaml")
    assert s.metric is not None and (s.metric.name, s.metric.goal) == ("val_acc", "maximize")
    assert s.own_seed == ""  # its seed_everything: 42 is overridden by the run command
    coded = {**LIGHTNING_CLI, "src/data.py": LIGHTNING_CLI["src/data.py"] + "    def setup(self, stage):\n"
             "        torch.manual_seed(1234)\n"}  # a seed in the code still counts (a review)
    assert survey(coded).own_seed == "src/data.py:5 torch.manual_seed"
    plain = {**LIGHTNING_CLI, "main.py": LIGHTNING_CLI["main.py"].replace("LightningCLI(", "Cli(")}
    plain["src/model.py"] = plain["src/model.py"].replace("LightningModule", "Module")
    assert survey({**plain, "main.py": plain["main.py"] + "model.fit()\n"}).own_seed == "configs/default.yaml:1 seed_everything"


HF_TRAIN = '''import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed


@dataclass
class ModelArguments:
    hidden_size: int = field(default=64, metadata={"help": "width"})
    hidden_dropout_prob: float = field(default=0.1)


def compute_metrics(p):
    preds = p.predictions.argmax(-1)
    return {"accuracy": float((preds == p.label_ids).mean())}


def main():
    parser = HfArgumentParser((ModelArguments, TrainingArguments))
    model_args, training_args = parser.parse_args_into_dataclasses()
    set_seed(training_args.seed)
    trainer = Trainer(model=build(model_args), args=training_args, train_dataset=train_ds,
                      eval_dataset=eval_ds, compute_metrics=compute_metrics)
    trainer.train()
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)


if __name__ == "__main__":
    main()
'''
HF_README = """# tiny-bert

```bash
python train.py \\
  --output_dir out \\
  --do_train --do_eval \\
  --learning_rate 5e-4 \\
  --seed 42 \\
  --report_to none
```

The goal is the best eval accuracy (`eval_accuracy`).
"""


def test_a_hugging_face_trainer_script_configured_on_its_command_line():
    """An HF trial (2026-12-05): init found no metric (eval_accuracy, which the Trainer prints),
    ran `python train.py` without the README's --do_train --do_eval (nothing trained), found
    no knob in `field(default=...)`, and left --seed 42 fixed."""
    from autoresearch.framework_survey import trainer_metrics

    assert trainer_metrics(HF_TRAIN) == [("eval_loss", 22), ("eval_accuracy", 22)]
    assert trainer_metrics(HF_TRAIN.replace("eval_dataset=eval_ds, ", "")) == []  # no eval set: no eval metrics
    assert trainer_metrics(HF_TRAIN.replace("eval_dataset=eval_ds, ", "eval_dataset=None, ")) == []
    s = survey({"train.py": HF_TRAIN, "README.md": HF_README})
    assert s.run == ("python train.py --output_dir out --do_train --do_eval --learning_rate 5e-4 "
                     "--seed $AUTORESEARCH_SEED --report_to none")
    assert s.metric is not None and (s.metric.name, s.metric.goal) == ("eval_accuracy", "maximize")
    assert s.own_seed == ""  # set_seed(training_args.seed): the command's seed, now AUTORESEARCH_SEED
    fixed = survey({"train.py": HF_TRAIN.replace("set_seed(training_args.seed)", "set_seed(1234)"), "README.md": HF_README})
    assert fixed.own_seed == "train.py:21 set_seed"  # a literal seed in the code is still named
    plain = survey({"train.py": HF_TRAIN.replace("HfArgumentParser", "ArgParser"), "README.md": HF_README})
    assert plain.run == "python train.py"  # flags alone are adopted for HfArgumentParser scripts only
    launched = survey({"train.py": HF_TRAIN, "README.md": HF_README.replace("python train.py", "accelerate launch train.py")})
    assert launched.run == s.run.replace("python", "accelerate launch --num_processes 1", 1)
    assert "the README runs `accelerate launch ... train.py`, here one process per slot" in launched.script_why


HFP = "HfArgumentParser((ModelArguments, TrainingArguments))"


@pytest.mark.parametrize("command, text, expected", [
    ("python train.py --seed 42 --do_train", HFP, "python train.py --seed $AUTORESEARCH_SEED --do_train"),
    ("python train.py --seed=42", HFP, "python train.py --seed $AUTORESEARCH_SEED"),
    ("python train.py --do_train", HFP, "python train.py --do_train --seed $AUTORESEARCH_SEED"),
    ("python train.py args.json", HFP, "python train.py args.json"),  # one JSON argument: read whole (a review)
    ("python train.py --do_train", "HfArgumentParser((A,))", "python train.py --do_train"),  # no --seed option
    ("python main.py fit --config c.yaml", "from lightning.pytorch.cli import (\n    ArgsType,\n    LightningCLI,\n)\n"
     "LightningCLI(M)\n", "python main.py fit --config c.yaml --seed_everything $AUTORESEARCH_SEED"),  # over lines
    ("python main.py fit", "from pytorch_lightning.utilities.cli import LightningCLI\nclass CLI(LightningCLI):\n"
     "    pass\n\nCLI(M)\n", "python main.py fit --seed_everything $AUTORESEARCH_SEED"),  # the old path, a subclass
    ("python main.py fit --config c.yaml", "from lightning.pytorch.cli import LightningCLI\nLightningCLI(M)\n",
     "python main.py fit --config c.yaml --seed_everything $AUTORESEARCH_SEED"),
    ("python main.py fit --config c.yaml", "# we don't use LightningCLI(...) here\nimport argparse\n",
     "python main.py fit --config c.yaml"),                                   # a mention is no call (a review)
    ("python train.py --seed 42", "import argparse", "python train.py --seed 42"),
])
def test_the_run_command_draws_each_runs_seed(command, text, expected):
    from autoresearch.train_script import seeded_command

    assert seeded_command(command, text) == expected


@pytest.mark.parametrize("readme, command", [
    ("Usage: python train.py --help\npython train.py --do_train --output_dir out\n", "python train.py --do_train --output_dir out"),
    ("Evaluate: python train.py --output_dir out --do_eval --model_name_or_path ck\n"
     "Train: python train.py --output_dir out --do_train --do_eval\n", "python train.py --output_dir out --do_train --do_eval"),
    ("python train.py --do_eval --output_dir out\n", None),  # an evaluation only: the script alone
])
def test_an_hf_readmes_training_line(readme, command):
    """A review: `--help` and an evaluation line came before the training one."""
    from autoresearch.train_script import readme_command

    found = readme_command("train.py", readme, ["train.py"], flags=True)
    assert (found[0] if found else None) == command


@pytest.mark.parametrize("readme, command, launcher", [
    ("accelerate launch train.py --do_train --output_dir out\n",
     "accelerate launch --num_processes 1 train.py --do_train --output_dir out", "accelerate launch"),
    ("torchrun --nproc_per_node=8 train.py \\\n  --do_train --output_dir out\n",
     "torchrun --standalone --nproc_per_node 1 train.py --do_train --output_dir out", "torchrun --nproc_per_node=8"),
    ("accelerate launch --config_file acc.yaml --num_processes 2 train.py --do_train\n",
     "accelerate launch --num_processes 1 train.py --do_train", "accelerate launch --config_file acc.yaml --num_processes 2"),
    ("python -m torch.distributed.run --nproc_per_node 4 train.py --do_train\n",
     "python -m torch.distributed.run --standalone --nproc_per_node 1 train.py --do_train",
     "python -m torch.distributed.run --nproc_per_node 4"),
    ("python3 -m torch.distributed.launch --nproc_per_node=2 train.py --do_train\n",  # it passes --local_rank: kept
     "python3 -m torch.distributed.launch --standalone --nproc_per_node 1 train.py --do_train",
     "python3 -m torch.distributed.launch --nproc_per_node=2"),
    ("deepspeed train.py --deepspeed ds.json --do_train\n", "deepspeed --num_gpus 1 train.py --deepspeed ds.json --do_train",
     "deepspeed"),
    ("accelerate launch other_train.py --do_train\n", None, None),               # another script
    ("mytorchrun train.py --do_train\n", None, None),                            # not a launcher we know
    ("accelerate launch train.py --do_eval --output_dir out\n", None, None),      # an evaluation
    # a review: prose, and another script before ours, are not a launcher's options
    ("We use deepspeed to run train.py on 8 GPUs\n", None, None),
    ("Use torchrun to launch train.py --do_train with 8 GPUs\n", None, None),
    ("torchrun --nproc_per_node 8 other.py --teacher train.py --do_train\n", None, None),
])
def test_a_launchers_readme_line_runs_one_process(readme, command, launcher):
    """An HF trial: a README that starts the script with accelerate or torchrun gave `python
    train.py` without its arguments, so nothing trained. A DeepSpeed config is the
    launcher's, not a config of the run to edit."""
    from autoresearch.train_script import readme_command

    found = readme_command("train.py", readme, ["train.py", "ds.json"], flags=True)
    assert found is None or found[1] is None
    assert (found[0], found[2]) == (command, launcher) if command else found is None


@pytest.mark.parametrize("named, chosen, text, kept", [
    (["configs/base.yaml"], "configs/small.yaml", "", []),                         # its option's default, replaced
    (["configs/base.yaml"], None, "", ["configs/base.yaml"]),                      # no README config: kept
    (["configs/defaults.yaml"], "configs/default.yaml", "parser_kwargs={'default_config_files': ['configs/defaults.yaml']}",
     ["configs/defaults.yaml"]),                                                   # read on every run (a review)
    (["configs/model.yaml", "configs/data_opts.yaml"], "configs/model_large.yaml", "",
     ["configs/model.yaml", "configs/data_opts.yaml"]),                           # which one is replaced? neither
    (["conf/a.yaml"], "configs/small.yaml", "", ["conf/a.yaml"]),                  # another folder
])
def test_which_named_configs_a_readme_command_replaces(named, chosen, text, kept):
    from autoresearch.train_script import kept_configs

    assert kept_configs(named, chosen, text) == kept
