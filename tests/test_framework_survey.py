"""The YAML configs a Hydra training script composes (``framework_survey``), and ``init`` on a
Lightning-Hydra-style project of our own (the layout of ashleve/lightning-hydra-template:
``configs/train.yaml`` picks ``data/``, ``model/``, ``trainer/`` options; the
hyperparameters live there, not in the script)."""

from __future__ import annotations

import json
import subprocess

import pytest

from autoresearch.framework_survey import _hydra_defaults, hydra_configs
from autoresearch.testing import commit_all
from conftest import run_cli

TRAIN_YAML = """# @package _global_
defaults:
  - _self_
  - data: digits
  - model: mlp
  - callbacks: default
  - logger: null
  - trainer: default
  - paths: default
  - hydra: default
  - experiment: null
  - optional local: default
seed: 12345
"""
CONFIGS = {
    "configs/train.yaml": TRAIN_YAML,
    "configs/data/digits.yaml": "batch_size: 64\nnum_workers: 2\ntrain_val_test_split: [1200, 300, 297]\n",
    "configs/model/mlp.yaml": "defaults:\n  - optimizer: adam\nhidden: 32\ndropout: 0.1\n",
    "configs/model/optimizer/adam.yaml": "lr: 0.003\nweight_decay: 0.0001\n",
    "configs/trainer/default.yaml": "max_epochs: 4\nlog_every_n_steps: 10\ngradient_clip_val: 1.0\n",
    "configs/callbacks/default.yaml": "early_stopping:\n  patience: 3\n",
    "configs/paths/default.yaml": "log_dir: logs\n",
    "configs/hydra/default.yaml": "run:\n  dir: outputs\n",
}
SCRIPT = '''import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="{path}", config_name="train.yaml")
def main(cfg: DictConfig) -> None:
    print(f"val_loss: {{cfg.model.hidden * 0.01}}")


if __name__ == "__main__":
    main()
'''
COMPOSED = ["configs/train.yaml", "configs/data/digits.yaml", "configs/model/mlp.yaml",
            "configs/model/optimizer/adam.yaml", "configs/trainer/default.yaml"]


def _project(repo, script: str, config_path: str):
    """A Hydra project on disk: ``script`` composing CONFIGS from ``config_path``."""
    for rel, text in {script: SCRIPT.format(path=config_path), **CONFIGS}.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    return repo


@pytest.mark.parametrize("script, path, want", [
    ("train.py", "configs", COMPOSED),
    ("src/train.py", "../configs", COMPOSED),                  # the template's layout: relative to the script
    ("src/train.py", "configs", []),                           # src/configs/: not there
    ("train.py", "../configs", []),                            # above the repository: nothing of ours
])
def test_the_configs_a_hydra_script_composes(script, path, want):
    files = {script: SCRIPT.format(path=path), **CONFIGS}
    assert hydra_configs(script, files) == want


def test_a_script_without_hydra_composes_nothing():
    assert hydra_configs("train.py", {"train.py": "print('val_loss: 1')\n", **CONFIGS}) == []
    none = SCRIPT.replace('config_path="{path}"', "config_path=None").format(path="")
    assert hydra_configs("train.py", {"train.py": none, "train.yaml": TRAIN_YAML}) == []  # no folder: no file
    assert hydra_configs("train.py", {"train.py": "def main(:\n", **CONFIGS}) == []  # not Python: nothing


@pytest.mark.parametrize("text, want", [
    ("defaults:\n  - _self_\n  - model: mlp\n", [("model", "mlp")]),
    ("defaults:\n  - override /trainer: gpu\n  - optional local: default\n", [("local", "default")]),
    ("defaults:\n  - /model@net: mlp\n  - logger: [csv, tb]\n  - data: null\n",
     [("/model", "mlp"), ("logger", "csv"), ("logger", "tb")]),
    ("defaults:\n  - base\n", [("", "base")]),
    ("lr: 0.1\n", []),
    ("defaults: [\n", []),                                     # not YAML: nothing
])
def test_a_defaults_list_is_read_as_hydra_reads_it(text, want):
    assert _hydra_defaults(text) == want


def test_init_makes_a_hydra_projects_configs_editable_and_their_knobs_are_searched(tmp_path):
    repo = _project(tmp_path / "project", "train.py", "configs")
    r = run_cli("init", repo)
    assert r.returncode == 0, r.stdout + r.stderr
    commit_all(repo, "autoresearch arena")  # a folder that was no repository: the user commits, after a review
    config = (repo / "autoresearch.toml").read_text()
    assert f"editable = {json.dumps(['train.py', *COMPOSED])}" in config.replace("', '", '", "')
    listed = run_cli("knobs", repo, "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    knobs = {k["name"]: k for k in json.loads(listed.stdout)}
    searched = {n for n, k in knobs.items() if not k.get("frozen")}
    assert searched == {"batch_size", "hidden", "dropout", "lr", "weight_decay", "gradient_clip_val"}
    assert "patience" not in knobs and "log_dir" not in knobs  # callbacks/ and paths/ are not editable
    assert knobs["max_epochs"]["frozen"].startswith("bounds a step counter")
    assert subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                          text=True).stdout == ""


def test_init_writes_a_runnable_config_for_a_hydra_script_in_a_folder(tmp_path):
    """A newcomer's trial (2026-12-04): init on the template's `src/train.py` layout wrote
    `editable = ["train.py"]`, `run = "python train.py"`: none of it existed."""
    repo = _project(tmp_path / "project", "src/train.py", "../configs")
    r = run_cli("init", repo)
    assert r.returncode == 0, r.stdout + r.stderr
    commit_all(repo, "autoresearch arena")  # a folder that was no repository: the user commits, after a review
    config = (repo / "autoresearch.toml").read_text()
    assert f"editable = {json.dumps(['src/train.py', *COMPOSED])}" in config.replace("', '", '", "')
    assert 'run = "python src/train.py"' in config and 'name = "val_loss"' in config
    dry = run_cli("run", repo, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_yaml_files_have_their_own_share_of_the_survey(tmp_path):
    """init reads YAML now (Hydra's configs): a folder of many data YAML files sorted before
    the script must not push the script out of what init reads."""
    from autoresearch.scaffold import repo_files

    (tmp_path / "annotations").mkdir()
    for i in range(2100):
        (tmp_path / "annotations" / f"{i:04}.yaml").write_text("label: 1\n")
    _project(tmp_path, "train.py", "configs")
    files = repo_files(tmp_path, in_repo=False)
    assert "train.py" in files and sum(p.endswith(".yaml") for p in files) == 500
    assert set(CONFIGS) <= set(files)  # a config folder's first


LIT_MODULE = '''import lightning as L


class LitDigits(L.LightningModule):
    def training_step(self, batch, i):
        self.log("train/loss", 1.0, prog_bar=True)

    def validation_step(self, batch, i):
        self.log("val/loss", 1.0, prog_bar=True)
        self.log_dict({"val/acc": 0.9, "lr": 0.1}, prog_bar=True)
        self.log("val/f1", 0.5)                          # not on the progress bar: never printed by fit

    def test_step(self, batch, i):
        self.log(name="test/loss", value=1.0, prog_bar=True)


class Trainer:                                           # a hand-written trainer's log: not Lightning's
    def log(self, name, value):
        self.writer.add_scalar(name, value)

    def fit(self):
        self.log("val_acc", 0.9)
'''
# what Lightning prints: the progress bar (lines end at \r), then the test table
LIGHTNING_OUTPUT = (
    "Epoch 0: 100%|██████████| 8/8 [00:00<00:00, v_num=0, train/loss=0.912, val/loss=0.5123, val/acc=0.80]\r"
    "Epoch 1: 100%|██████████| 8/8 [00:00<00:00, v_num=0, train/loss=0.301, val/loss=0.2042, val/acc=0.91]\n"
    "┃        Test metric        ┃       DataLoader 0        ┃\n"
    "│         test/loss         │    0.21875000596046448    │\n"
)
PLAIN_TABLE = "       Test metric             DataLoader 0\n        test/loss            0.25\n"  # without rich


def test_a_lightning_projects_logged_metric_is_found_and_its_pattern_reads_lightnings_output():
    """A newcomer's trial (2026-12-04): `self.log("val_loss", ...)` and Lightning's printed
    table gave "no printed metric found", and init wrote val_bpb."""
    from autoresearch.metrics import parse_patterns
    from autoresearch.survey import survey

    quiet = SCRIPT.format(path="../configs").replace("print(f\"val_loss: {cfg.model.hidden * 0.01}\")", "pass")
    s = survey({"src/train.py": quiet, "src/models/digits.py": LIT_MODULE,
                "tests/test_digits.py": "class T(LightningModule):\n    def f(self):\n        self.log('val/zzz_loss', 1)\n",
                **CONFIGS})
    assert (s.script, s.run) == ("src/train.py", "python src/train.py")  # the one train.py, in a folder
    assert s.editable == ("src/train.py", *COMPOSED)
    m = s.metric
    assert (m.name, m.goal, m.where, m.logged) == ("val/loss", "minimize", "src/models/digits.py:9", True)
    plain = {"train.py": "print(f'final_loss: {1}')\n", "trainer.py": LIT_MODULE.split("class LitDigits")[0] +
             "class Trainer:\n    def fit(self):\n        self.log('val_acc', 0.9, prog_bar=True)\n"}
    assert survey(plain).metric.name == "final_loss"  # a plain trainer's self.log is no Lightning metric (a review)
    assert [o.name for o in s.others] == ["train/loss", "val/acc", "test/loss"]  # not lr; not the tests' metric
    values, _, _ = parse_patterns(LIGHTNING_OUTPUT, {"val/loss": m.pattern, "test/loss": s.others[-1].pattern})
    assert values == {"val/loss": 0.2042, "test/loss": 0.21875000596046448}  # the last epoch's; the table's
    assert parse_patterns(PLAIN_TABLE, {"test/loss": s.others[-1].pattern})[0] == {"test/loss": 0.25}
    printed = {"train.py": "print(f'val_loss: {0.1}')\n", "model.py": LIT_MODULE}
    assert survey(printed).metric.name == "val_loss"  # a printed summary line is read first


def test_a_validation_metric_is_chosen_before_a_test_metric():
    from autoresearch.survey import survey

    code = "print(f'test_loss: {1}')\nprint(f'val_loss: {2}')\nprint(f'test_acc: {3}')\n"
    assert survey({"train.py": code}).metric.name == "val_loss"



def test_a_train_py_under_examples_is_named_not_adopted():
    """A library's examples/mnist/train.py is not the project's training (a review)."""
    from autoresearch.survey import survey

    s = survey({"examples/mnist/train.py": "print('val_loss: 1')\n", "lib/model.py": "x = 1\n"})
    assert s.script is None and s.other_scripts == ("examples/mnist/train.py",)


def test_the_keys_of_the_json_records_a_script_prints():
    """A fourth newcomer's trial (2026-12-05): `print(json.dumps({...}))` per epoch; init found
    no metric. Records written to a file, or over several lines, are not the run's output."""
    from autoresearch.framework_survey import json_logged

    code = ("import json, sys, logging\nlog = logging.getLogger(__name__)\nrec = {'epoch': 1}\nrec['val_f1'] = 0.5\n"
            "print(json.dumps(rec))\nlog.info(json.dumps({'val_loss': 1.0}))\n"
            "sys.stdout.write(json.dumps({'val_acc': 2}) + '\\n')\nf.write(json.dumps({'file_loss': 3}) + '\\n')\n"
            "print(json.dumps({'file2_loss': 3}), file=f)\nprint(json.dumps({'cfg_loss': 3}, indent=2))\n"
            "print(json.dumps({'err_loss': 3}), file=sys.stderr)\nrec.update(test_f1=0.2)\n")
    assert json_logged(code) == [("epoch", 5), ("val_f1", 5), ("test_f1", 5), ("val_loss", 6), ("val_acc", 7),
                                 ("err_loss", 11)]
    assert json_logged("def (:\n") == []



def test_json_data_files_crowd_out_no_hydra_config(tmp_path):
    """A review (2026-12-05): once init read JSON files too, 600 of them (a data set) took the
    share that Hydra's YAML configs had, and `exp/*.yaml` was no longer found."""
    from autoresearch.scaffold import repo_files

    repo = tmp_path / "r"
    (repo / "data" / "training").mkdir(parents=True)
    for i in range(600):
        (repo / "data" / "training" / f"{i:03d}.json").write_text('{"a": 1, "b": 2}')
    (repo / "exp" / "model").mkdir(parents=True)
    (repo / "exp" / "train.yaml").write_text("defaults:\n  - model: mlp\nlr: 0.1\n")
    (repo / "exp" / "model" / "mlp.yaml").write_text("width: 64\n")
    (repo / "train.py").write_text("import hydra\n@hydra.main(config_path='exp', config_name='train')\n"
                                   "def main(cfg):\n    loss.backward()\n")
    files = repo_files(repo, in_repo=False)
    assert "exp/train.yaml" in files and "exp/model/mlp.yaml" in files and "train.py" in files
    assert sum(p.endswith(".json") for p in files) <= 500
