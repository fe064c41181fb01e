from pathlib import Path

import pytest

from autoresearch.config import load_config, parse_override
from autoresearch.errors import ConfigError, UsageError
from autoresearch.layout import infer_config

GOOD = """
[arena]
editable = ["train.py"]
readonly = ["prepare.py"]
run = "python train.py"
time_budget_s = 60

[metric]
name = "val_bpb"
"""


def write(tmp_path: Path, text: str, name: str = "autoresearch.toml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_good_config_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD)).config
    assert cfg.arena.editable == ["train.py"]
    assert cfg.arena.hard_timeout_s == 180  # 2 x budget + 60
    assert cfg.arena.hard_eval_timeout_s == 180
    assert cfg.metric.goal.value == "minimize"
    assert cfg.judge.policy == "confirm" and cfg.judge.baseline_runs == 8 and cfg.runner.kind == "local" and cfg.runner.slots == 1


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "\n[judge]\npolicy = \"greedy\"\ncolour = 1\n", "unknown key 'colour' in [judge] (autoresearch.toml)"),
        (GOOD.replace("[metric]", "[metrics]"), "unknown key 'metrics' in [top level]"),
        (GOOD.replace('name = "val_bpb"', 'name = "val_bpb"\ngoal = "lower"'), "metric.goal"),
        (GOOD.replace("time_budget_s = 60", "time_budget_s = -5"), "arena.time_budget_s"),
        (GOOD.replace("time_budget_s = 60", "time_budget_s = 60\ntimeout_s = 10"), "timeout_s (10) is shorter than time_budget_s"),
        (GOOD.replace('editable = ["train.py"]', 'editable = []'), "arena.editable"),
        (GOOD.replace('editable = ["train.py"]', 'editable = ["../train.py"]'), "leaves the arena directory"),
        (GOOD.replace('editable = ["train.py"]', 'editable = ["/abs/train.py"]'), "is absolute"),
        (GOOD.replace('readonly = ["prepare.py"]', 'readonly = ["train.py"]'), "both editable and readonly"),
        (GOOD.replace('run = "python train.py"', ""), "missing key 'arena.run' (autoresearch.toml)"),
        (GOOD.replace('run = "python train.py"', 'run = "   "'), "the command is empty"),
        (GOOD + "\n[proposer]\nkind = \"magic\"\n", "not a proposer kind"),
        (GOOD + "\n[runner]\nslots = 0\n", "runner.slots"),
        ("[arena\n", "not valid TOML"),
        # a regex in double quotes (a newcomer's trial): what to write instead
        (GOOD.replace('name = "val_bpb"', 'name = "val_bpb"\npattern = "val_bpb (\\d+)"'),
         "write a regex in single quotes, pattern = 'loss: (\\d+)'"),
    ],
)
def test_bad_configs_name_key_and_file(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    assert message in str(e.value)


def test_pyproject_table(tmp_path):
    text = "[project]\nname = 'x'\n\n" + GOOD.replace("[arena]", "[tool.autoresearch.arena]").replace("[metric]", "[tool.autoresearch.metric]")
    loaded = load_config(write(tmp_path, text, "pyproject.toml"))
    assert loaded.source == "pyproject.toml [tool.autoresearch]"
    assert loaded.config.metric.name == "val_bpb"


def test_pyproject_errors_name_the_file(tmp_path):
    text = GOOD.replace("[arena]", "[tool.autoresearch.arena]").replace("[metric]", "[tool.autoresearch.metric]") + "bogus = 1\n"
    with pytest.raises(ConfigError, match=r"unknown key 'bogus' in \[metric\] \(pyproject.toml \[tool.autoresearch\]\)"):
        load_config(write(tmp_path, text, "pyproject.toml"))


def test_overrides_are_validated_and_named(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), {"arena.time_budget_s": 5, "runner.seed": 7}).config
    assert cfg.arena.time_budget_s == 5 and cfg.runner.seed == 7 and cfg.arena.hard_timeout_s == 70
    # the command line alone to blame: a usage error (exit 2)
    with pytest.raises(UsageError, match=r"arena.time_budget_s: .*\(the command line"):
        load_config(write(tmp_path, GOOD), {"arena.time_budget_s": 0})
    with pytest.raises(UsageError, match=r"unknown key 'nope' in \[arena\] \(the command line\)"):
        load_config(write(tmp_path, GOOD), {"arena.nope": 1})
    with pytest.raises(UsageError, match=r"unknown key 'nosuch' in \[top level\] \(the command line\)"):
        load_config(write(tmp_path, GOOD), {"nosuch.key": 1})
    with pytest.raises(UsageError, match=r"finite"):
        load_config(write(tmp_path, GOOD), {"arena.time_budget_s": float("inf")})
    # a whole-table check an override took part in names both, and stays a config error (exit 1)
    with pytest.raises(ConfigError, match=r"shorter than time_budget_s .*autoresearch.toml, with the command line's "
                                          r"arena.time_budget_s"):
        load_config(write(tmp_path, GOOD), {"arena.time_budget_s": 500, "arena.timeout_s": 100})


@pytest.mark.parametrize(
    "text, key, value",
    [("arena.time_budget_s=30", "arena.time_budget_s", 30), ("metric.name=loss", "metric.name", "loss"),
     ('arena.editable=["a.py", "b.py"]', "arena.editable", ["a.py", "b.py"]), ("judge.policy=greedy", "judge.policy", "greedy")],
)
def test_parse_override(text, key, value):
    assert parse_override(text) == (key, value)


@pytest.mark.parametrize("text, words", [
    ("arena.run", "KEY=VALUE"), ("arena..run=x", "an empty part"), ("=3", "an empty part"),
    ("arena.time budget=3", "the part 'time budget'"),
])
def test_parse_override_refuses_malformed_keys_as_usage_errors(text, words):
    with pytest.raises(UsageError, match=words):
        parse_override(text)


@pytest.mark.parametrize(
    "files, uv, expected",
    [
        ({"train.py": "", "prepare.py": "TIME_BUDGET = 300  # seconds\n", "program.md": ""}, False,
         {"arena": {"editable": ["train.py"], "readonly": ["prepare.py"], "program": "program.md", "run": "python train.py",
                    "time_budget_s": 300.0}, "metric": {"name": "val_bpb", "goal": "minimize"}}),
        ({"train.py": "", "prepare.py": "TIME_BUDGET: int = 60\n", "pyproject.toml": ""}, True,
         {"arena": {"editable": ["train.py"], "readonly": ["prepare.py"], "run": "uv run train.py", "time_budget_s": 60.0},
          "metric": {"name": "val_bpb", "goal": "minimize"}}),
        # not karpathy's layout (train.py and a prepare.py that sets TIME_BUDGET): `init`, not guesses
        ({"train.py": "", "prepare.py": "MAX_SEQ_LEN = 2048\n", "pyproject.toml": ""}, True, None),
        ({"train.py": "", "pyproject.toml": ""}, False, None),
        ({"prepare.py": "TIME_BUDGET = 300\n"}, True, None),
    ],
)
def test_infer_karpathy_layout(files, uv, expected):
    assert infer_config(files, uv_on_path=uv) == expected


def test_no_config_and_no_layout_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="autoresearch init"):
        load_config(tmp_path)


@pytest.mark.parametrize("text, missing, budget, error", [
    ('[proposer.knobs]\nfreeze = ["DEPTH"]\n', "[arena] and [metric]", 300, "missing key 'arena' "),
    ('[metric]\nname = "val_bpb"\ngoal = "minimize"\n[proposer.knobs]\nfreeze = ["DEPTH"]\n', "[arena]", 300,
     "missing key 'arena' "),
    ('[arena]\ntime_budget_s = 60\n[proposer.knobs]\nfreeze = ["DEPTH"]\n', "[arena] and [metric]", 60,  # some keys
     "missing key 'arena.editable'"),
])
def test_a_partial_config_in_karpathys_layout_keeps_what_the_layout_gives(tmp_path, text, missing, budget, error):
    """The crash advice says to freeze a knob in the config: in a zero-config checkout, a file
    holding only that (or only a budget) must not switch the layout's inference off (a
    newcomer's trial got "missing key 'arena'"); the file's own keys win."""
    (tmp_path / "train.py").write_text("DEPTH = 4\n")
    (tmp_path / "prepare.py").write_text("TIME_BUDGET = 300\n")
    (tmp_path / "autoresearch.toml").write_text(text)
    loaded = load_config(tmp_path)
    assert loaded.config.arena.run == "python train.py" and loaded.config.arena.time_budget_s == budget
    assert loaded.config.metric.name == "val_bpb" and loaded.config.proposer.knobs.freeze == ["DEPTH"]
    assert loaded.source == f"autoresearch.toml (and the karpathy/autoresearch layout for what its {missing} leave out)"
    assert loaded.config.arena.readonly == ["prepare.py"]
    (tmp_path / "prepare.py").write_text("MAX_SEQ_LEN = 2048\n")  # not the layout: the file alone, and its error
    with pytest.raises(ConfigError, match=error):
        load_config(tmp_path)


def test_a_config_without_a_whole_table_says_what_it_needs(tmp_path):
    (tmp_path / "autoresearch.toml").write_text('[proposer.knobs]\nfreeze = ["DEPTH"]\n')
    with pytest.raises(ConfigError, match=r"missing key 'arena' \(autoresearch.toml\); a config needs its \[arena\] "
                                          r"and \[metric\] tables \(docs/config.md lists their keys\)"):
        load_config(tmp_path)


def test_the_readme_config_example_is_valid():
    """The documented config must load: docs that match the code."""
    import re
    from pathlib import Path

    from autoresearch.config import Config, tomllib  # tomllib, or tomli on 3.10

    docs = Path(__file__).resolve().parent.parent / "docs"  # the reference first (tests/test_texts.py: every doc)
    readme = "".join((docs / name).read_text() for name in ("config.md", "proposers.md", "scaling.md"))
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 3
    Config.model_validate(tomllib.loads(blocks[0]))
    for block in blocks[1:]:  # the shapes, provider, agent and Ray examples, on top of a minimal arena
        data = tomllib.loads(block)
        Config.model_validate({"arena": {"editable": ["train.py"], "run": "python train.py"},
                               "metric": {"name": "val_bpb"}, **data})


@pytest.mark.parametrize("loc, hint", [
    (("judge", "polcy"), ": did you mean 'policy'?"),
    (("proposer", "knobs", "space", "LR", "lwo"), ": did you mean 'low'?"),
    (("arena", "editible"), ": did you mean 'editable'?"),
    (("arena", "zzzz"), ""),
    (("nosuch", "x"), ""),
])
def test_a_misspelt_key_gets_the_closest_one(loc, hint):
    from autoresearch.config import Config
    from autoresearch.config_hints import close_key

    assert close_key(Config, loc) == hint


@pytest.mark.parametrize("missing, present, said", [
    (["train.py"], ["src/train.py", "README.md"], "train.py (did you mean src/train.py?)"),   # the same name in a folder
    (["trian.py"], ["train.py", "prepare.py"], "trian.py (did you mean train.py?)"),          # a typo
    (["src/modle.py", "x.py"], ["src/model.py"], "src/modle.py (did you mean src/model.py?), x.py"),
    (["model.py"], ["train.py", "prepare.py"], "model.py"),                                    # nothing near
    (["train.py"], [], "train.py"),
    (["train.py"], ["old/attic/train.py", "src/train.py"], "train.py (did you mean src/train.py?)"),  # the shallowest
    (["train.py"], ["train.py"], "train.py"),  # tracked but gone from the disk: not itself
])
def test_a_missing_path_gets_the_nearest_file(missing, present, said):
    from autoresearch.config_hints import close_paths

    assert close_paths(missing, present) == said
