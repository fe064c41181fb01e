"""A campaign's settings belong to it (DESIGN.md): what it recorded when it started is what
a resumed run and an ablation use, unless their own command line says otherwise. Pure
parts table-driven; the rest through the real CLI and a real ledger."""

from __future__ import annotations

import json
import sqlite3

import pytest

from autoresearch.ablate_knobs import _edit_back
from autoresearch.campaign_config import differences, settings_text
from autoresearch.cli_ablate import verdict_text
from autoresearch.edits import apply_edits
from autoresearch.proposers.knob_code import find_knobs
from autoresearch.testing import constant_edit, make_synthetic_arena, write_proposals
from conftest import git, run_cli


@pytest.mark.parametrize("a, b, keys", [
    ({"arena": {"time_budget_s": 10.0}}, {"arena": {"time_budget_s": 10.0}}, []),
    ({"arena": {"time_budget_s": 10.0, "run": "x"}}, {"arena": {"time_budget_s": 7.0, "run": "x"}}, ["arena.time_budget_s"]),
    ({"runner": {"slots": 1}}, {"runner": {"slots": [1, 2]}}, ["runner.slots"]),
    ({"a": {"b": {"c": 1}}}, {"a": {"b": {}}}, ["a.b.c"]),
    ({"a": 1}, {"b": 1}, ["a", "b"]),
    ({"proposer": {"knobs": {"space": {"optimizer.lr": {"low": 0.1}}}}}, {"proposer": {"knobs": {"space": {}}}},
     ['proposer.knobs.space."optimizer.lr"']),                              # a knob's dotted name, quoted
])
def test_differences(a, b, keys):
    assert differences(a, b) == keys


@pytest.mark.parametrize("config, text", [
    ({"arena": {"time_budget_s": 10.0, "timeout_s": 30.0}, "judge": {"policy": "greedy"}, "runner": {"slots": 2, "seed": 3}},
     "time budget 10 s per run, timeout 30 s, judge greedy, slots 2, seed 3"),
    ({"arena": {"time_budget_s": 60, "timeout_s": None}}, "time budget 60 s per run, timeout 180 s"),  # 2 x budget + 60
    ({"runner": {"slots": ["cuda:0", "cuda:1"]}}, "slots cuda:0,cuda:1"),
    ({}, ""),
    ({"arena": "not a table"}, ""),
])
def test_settings_text(config, text):
    assert settings_text(config) == text


@pytest.mark.parametrize("row, text", [
    ({"verdict": "essential", "problem": "", "effect": 0.2}, "essential"),
    ({"verdict": "does not revert cleanly", "problem": "does not revert cleanly on the final incumbent", "effect": None},
     "does not revert cleanly on the final incumbent"),
    ({"verdict": "superseded", "problem": "superseded by #10: LR set again later", "effect": None},
     "superseded by #10: LR set again later"),
    ({"verdict": "does not revert cleanly", "problem": "the knob LR is no longer in the code", "effect": None},
     "does not revert cleanly: the knob LR is no longer in the code"),
    ({"problem": "crash: the run exited with code 1"}, "crash: the run exited with code 1"),
])
def test_verdict_text(row, text):
    assert verdict_text(row) == text


@pytest.mark.parametrize("before, now, after", [
    ("LR = 0.01\n", "LR = 0.004841  # tuned\n", "LR = 0.01  # tuned\n"),
    ("LR = 0.0012345\n", "LR = 0.003\n", "LR = 0.0012345\n"),          # more digits than the proposer writes: kept
    ("WIDTH = 2**6\n", "WIDTH = 2**8\n", "WIDTH = 2**6\n"),
    ("BETAS = (0.9, 0.95)\n", "BETAS = (0.9, 0.99)\n", "BETAS = (0.9, 0.95)\n"),
])
def test_a_knob_is_set_back_to_its_value_before(before, now, after):
    old = {k.name: k for k in find_knobs("train.py", before)}
    cur = {k.name: k for k in find_knobs("train.py", now)}
    name = next(n for n in cur if cur[n].value != old[n].value)
    assert apply_edits({"train.py": now}, [_edit_back(cur[name], old[name])], ["train.py"])["train.py"] == after


def test_a_recorded_config_that_no_longer_validates_gives_way_to_the_file(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [{"description": "lower lr",
                                                   "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    assert run_cli("run", arena, "--tag", "a", "--time-budget", "7", "--proposals", props, "-n", "1").returncode == 0
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    config = json.loads(db.execute("SELECT config_json FROM campaigns").fetchone()[0])
    config["arena"]["retired_key"] = 1  # what another version of autoresearch may have written
    db.execute("UPDATE campaigns SET config_json = ?", (json.dumps(config),))
    db.commit()
    db.close()
    r = run_cli("run", arena, "--tag", "a", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "source: autoresearch.toml" in r.stdout and "time_budget_s = 10.0" in r.stdout
    assert "settings recorded with campaign 'a' no longer validate" in r.stderr and "retired_key" in r.stderr


def test_a_ledger_of_an_older_schema_keeps_its_campaigns_settings(tmp_path):
    # opening the campaign upgrades the ledger; its recorded settings are read all the same
    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [{"description": "lower lr",
                                                   "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    assert run_cli("run", arena, "--tag", "a", "--time-budget", "7", "--proposals", props, "-n", "1").returncode == 0
    db = sqlite3.connect(arena / ".autoresearch" / "ledger.sqlite")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    r = run_cli("run", arena, "--tag", "a", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "source: recorded with campaign a" in r.stdout and "time_budget_s = 7.0" in r.stdout


# -- a metric named on the command line, and the file's pattern ------------------------------------

LOSS = "val/loss=([0-9.]+)"
ACC = "val/acc=([0-9.]+)"


@pytest.mark.parametrize("metric, written_for, after, noted", [
    ({"name": "val/acc", "pattern": LOSS}, "val/loss",                      # the file's pattern: for val/loss
     {"name": "val/acc", "patterns": {"val/loss": LOSS}}, "was written for val/loss"),
    ({"name": "val/acc", "pattern": LOSS, "patterns": {"val/acc": ACC}}, "val/loss",  # the file has one for val/acc
     {"name": "val/acc", "pattern": ACC, "patterns": {"val/loss": LOSS}}, "with its pattern from [metric.patterns]"),
    ({"name": "val/acc", "patterns": {"val/acc": ACC}}, "val/loss",
     {"name": "val/acc", "pattern": ACC, "patterns": {}}, "with its pattern from [metric.patterns]"),
    ({"name": "val/acc", "pattern": LOSS, "patterns": {"val/loss": "x=([0-9.]+)"}}, "val/loss",  # a secondary kept
     {"name": "val/acc", "patterns": {"val/loss": "x=([0-9.]+)"}}, "was written for val/loss"),
    ({"name": "val/loss", "pattern": LOSS}, "val/loss", {"name": "val/loss", "pattern": LOSS}, None),  # the same name
    ({"name": "val/acc"}, "val/loss", {"name": "val/acc"}, None),              # no pattern to move
    ({"name": "val/acc", "pattern": LOSS}, None, {"name": "val/acc", "pattern": LOSS}, None),  # the file named none
])
def test_a_metric_named_on_the_command_line_does_not_take_the_files_pattern(metric, written_for, after, noted):
    from autoresearch.config_hints import repattern_metric

    raw = {"metric": dict(metric, patterns=dict(metric.get("patterns", {}))) if "patterns" in metric else dict(metric)}
    note = repattern_metric(raw, written_for, "autoresearch.toml")
    assert raw["metric"] == after
    assert (note is None) if noted is None else (noted in note)


PRINTS_BOTH = "print('val/loss=0.4318, val/acc=0.8860')\n"


def _metric_arena(tmp_path, extra=""):
    from autoresearch.testing import commit_all
    from conftest import git

    arena = tmp_path / "arena"
    arena.mkdir(parents=True)
    (arena / "train.py").write_text("LR = 0.01\n" + PRINTS_BOTH)
    (arena / "autoresearch.toml").write_text(
        '[arena]\neditable = ["train.py"]\nrun = "python train.py"\ntime_budget_s = 5\n\n'
        f'[metric]\nname = "val/loss"\npattern = \'{LOSS}\'\n{extra}\n[judge]\npolicy = "greedy"\n')
    git(arena, "init", "-q", "-b", "main")
    commit_all(arena, "arena")
    return arena


def test_metric_on_the_command_line_reads_that_metric_not_the_files_pattern(tmp_path):
    """A newcomer's trial (2026-12-04): --metric val/acc with the file's pattern for val/loss
    recorded val/loss as val/acc, and maximised the loss."""
    arena = _metric_arena(tmp_path, extra=f'\n[metric.patterns]\n"val/acc" = \'{ACC}\'\n')
    r = run_cli("run", arena, "--tag", "acc", "--metric", "val/acc", "--goal", "maximize", "--max-experiments", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "val/acc is read with its pattern from [metric.patterns]" in r.stdout
    status = json.loads(run_cli("status", arena, "--tag", "acc", "--json").stdout)
    baseline = status["experiments"][0]
    assert baseline["metrics"] == pytest.approx({"val/acc": 0.886, "val/loss": 0.4318})  # the loss: a secondary

    bare = _metric_arena(tmp_path / "bare")  # no pattern for val/acc: it is not read through val/loss's
    r = run_cli("run", bare, "--tag", "acc", "--metric", "val/acc", "--goal", "maximize", "--max-experiments", "1")
    assert "was written for val/loss" in r.stdout
    assert r.returncode != 0 and "val/acc" in r.stdout + r.stderr
    baseline = json.loads(run_cli("status", bare, "--tag", "acc", "--json").stdout)["experiments"][0]
    assert baseline["status"] == "crash" and "val/acc" not in baseline["metrics"]
    assert "the run reported no val/acc" in baseline["reason"]  # and the pattern that would read it, not val/loss
    assert "it printed 'val/acc=0.8860' within a line: read it with [metric] pattern" in baseline["reason"]


def test_the_note_on_a_file_that_now_says_otherwise_shows_dotted_knob_names_and_a_way_out(tmp_path):
    """A newcomer's trial (2026-12-04): a space declared after the campaign started was shown
    as ``proposer.knobs.space.optimizer.weight_decay = null (the file: null)``."""
    from autoresearch.testing import commit_all

    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [{"description": "lower lr",
                                                   "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]}])
    assert run_cli("run", arena, "--tag", "a", "--time-budget", "7", "--proposals", props, "-n", "1").returncode == 0
    same = run_cli("run", arena, "--tag", "a", "--time-budget", "7", "--dry-run")
    assert same.stdout.splitlines()[0].startswith("# effective config (source: recorded with campaign a;"), same.stdout
    assert "note:" not in same.stderr
    config = arena / "autoresearch.toml"
    config.write_text(config.read_text() + '\n[proposer.knobs.space."cfg.lr"]\nlow = 0.001\nhigh = 0.1\n')
    commit_all(arena, "a space for a knob with a dot in its name")
    r = run_cli("run", arena, "--tag", "a", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert 'proposer.knobs.space."cfg.lr" = null (the file: {"low": 0.001, "high": 0.1, ' in said
    assert "--tag NEW" in said
    # the listing's first line says so too: a newcomer missed the note under a long listing
    assert r.stdout.splitlines()[0].startswith("# effective config (source: recorded with campaign a, not the file "
                                                "where it now differs: see the note at the end")


def test_a_metric_changed_in_the_file_is_said_to_need_a_new_campaign(tmp_path):
    """A scikit-learn trial: the note offered --set 'metric.name=...', which the campaign then
    refused (a campaign measures one metric)."""
    from autoresearch.testing import commit_all

    arena = make_synthetic_arena(tmp_path / "arena")
    assert run_cli("run", arena, "--tag", "a", "-n", "1").returncode == 0
    config = arena / "autoresearch.toml"
    config.write_text(config.read_text().replace('name = "val_loss"', 'name = "val_acc"'))
    commit_all(arena, "another metric")
    said = " ".join((lambda r: r.stdout + r.stderr)(run_cli("run", arena, "--tag", "a", "--dry-run")).split())
    assert 'metric.name = "val_loss" (the file: "val_acc")' in said, said
    assert "A campaign's metric cannot change: start a new campaign with the file as it is: --tag NEW" in said
    assert "--set 'metric.name" not in said
    config.write_text(config.read_text().replace("[judge]", "[judge]\nmax_runs = 4", 1))
    commit_all(arena, "and a setting")
    said = " ".join((lambda r: r.stdout + r.stderr)(run_cli("run", arena, "--tag", "a", "--dry-run")).split())
    assert "(e.g. --set judge.max_runs=4) (not the metric: that needs a new campaign)" in said, said


def test_a_typo_in_the_file_of_a_campaign_that_goes_on_is_said(tmp_path):
    """A fourth newcomer's trial (2026-12-05): `time_budget_s` renamed `time_budget` after a
    campaign started; `run --dry-run` and `run` went on with the recorded settings, silent."""
    arena = make_synthetic_arena(tmp_path / "arena")
    assert run_cli("run", arena, "--tag", "a", "-n", "1").returncode == 0
    config = arena / "autoresearch.toml"
    config.write_text(config.read_text().replace("time_budget_s", "time_budget"))
    from autoresearch.testing import commit_all

    commit_all(arena, "a typo")
    r = run_cli("run", arena, "--tag", "a", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    said = " ".join(r.stderr.split())
    assert "note: the config file has an error, not used by this campaign (it keeps its recorded settings): " in said
    assert "unknown key 'time_budget' in [arena]" in said and "did you mean 'time_budget_s'?" in said, said
    assert "a new campaign (--tag NEW) will refuse to start" in said
    went_on = run_cli("run", arena, "--tag", "a", "-n", "2")
    assert went_on.returncode == 0, went_on.stdout + went_on.stderr
    assert "did you mean 'time_budget_s'?" in " ".join((went_on.stdout + went_on.stderr).split()), went_on.stdout


def test_a_knob_frozen_in_a_file_added_to_a_zero_config_campaign_is_named_and_can_be_given(tmp_path):
    """The crash advice: freeze the knob that breaks runs. In a zero-config checkout whose
    campaign goes on, a file that only freezes a knob is read over the layout's inference,
    and the campaign says it keeps its recorded settings and how to give the new one."""
    from autoresearch.testing import commit_all, git

    arena = tmp_path / "k"
    arena.mkdir()
    (arena / "prepare.py").write_text("TIME_BUDGET = 5\n")
    (arena / "train.py").write_text("DEPTH = 2\nWIDTH = 64\nprint(f'val_bpb: {1.0 + 0.01 * DEPTH:.6f}')\n")
    git(["init", "-q"], arena)
    commit_all(arena, "arena")
    props = write_proposals(tmp_path / "p.json", [{"description": "deeper", "edits": [constant_edit("DEPTH", 2, 3)]}])
    assert run_cli("run", arena, "--tag", "a", "--proposals", props, "-n", "1").returncode == 0
    (arena / "autoresearch.toml").write_text('[proposer.knobs]\nfreeze = ["DEPTH"]\n')
    commit_all(arena, "freeze DEPTH")
    dry = run_cli("run", arena, "--tag", "a", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    said = " ".join((dry.stdout + dry.stderr).split())
    assert "keeps its recorded settings where autoresearch.toml (and the karpathy/autoresearch layout for what its " \
           "[arena] and [metric] leave out) now says otherwise: " in said
    assert "proposer.knobs.freeze = [] (the file: [\"DEPTH\"])" in said
    assert "(e.g. --set 'proposer.knobs.freeze=[\"DEPTH\"]')" in said  # what to type, not a generic example
    given = run_cli("run", arena, "--tag", "a", "--dry-run", "--set", 'proposer.knobs.freeze=["DEPTH"]')
    assert given.returncode == 0 and 'freeze = ["DEPTH"]' in given.stdout, given.stdout + given.stderr
    fresh = run_cli("run", arena, "--tag", "b", "--dry-run")
    assert fresh.returncode == 0 and 'freeze = ["DEPTH"]' in fresh.stdout and "val_bpb" in fresh.stdout, fresh.stderr
    # what `run` would refuse, a dry run says as an error and exits 1 (a newcomer's trial: it exited 0)
    typo = run_cli("run", arena, "--tag", "b", "--dry-run", "--set", 'proposer.knobs.freeze=["DEPHT"]')
    assert typo.returncode == 1 and "DEPHT (did you mean DEPTH?)" in typo.stderr, typo.stdout + typo.stderr
    assert typo.stderr.strip().splitlines()[-1].endswith("(`run` would refuse to start)")
    real = run_cli("run", arena, "--tag", "b", "--set", 'proposer.knobs.freeze=["DEPHT"]', "-n", "1")
    assert real.returncode == 1 and "DEPHT (did you mean DEPTH?)" in real.stderr


def test_a_campaign_that_goes_on_says_when_the_checkout_has_commits_it_lacks(tmp_path):
    """A fix committed after the campaign started is not in it: continuing says so (a
    newcomer's trial expected the fix to be used, and nothing said it was not)."""
    from autoresearch.testing import commit_all, set_constant

    arena = make_synthetic_arena(tmp_path / "arena")
    props = write_proposals(tmp_path / "p.json", [
        {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
        {"description": "narrow", "edits": [constant_edit("WIDTH", 64, 16)]}])
    first = run_cli("run", arena, "--tag", "a", "--proposals", props, "-n", "2")
    assert first.returncode == 0 and "lacks" not in first.stdout
    again = run_cli("run", arena, "--tag", "a", "--proposals", props, "-n", "2")
    assert again.returncode == 0 and "lacks" not in again.stdout  # nothing new in the checkout: nothing to say
    assert "resumed:" not in again.stdout  # after a clean finish nothing is stale (its run directories are routine)
    train = arena / "train.py"
    train.write_text(set_constant(train.read_text(), "DROPOUT", 0.2))
    commit_all(arena, "a fix after the campaign started")
    later = run_cli("run", arena, "--tag", "a", "--proposals", props, "-n", "3")
    assert later.returncode == 0, later.stderr
    assert "your checkout's HEAD has 1 commit(s) that campaign a's branch lacks: the campaign goes on from its own " \
           "branch without them; to try them, start a new campaign from HEAD with --tag NEW" in " ".join(later.stdout.split())


def test_commits_the_campaign_lacks_are_those_that_touch_the_arena(tmp_path):
    """In a larger repository, a commit outside the arena's folder changes nothing a campaign
    runs: not counted (an independent review's finding)."""
    from autoresearch.store.workspace import Workspace, commits_not_in
    from autoresearch.testing import commit_all, git

    repo = tmp_path / "repo"
    (repo / "arena").mkdir(parents=True)
    (repo / "arena" / "train.py").write_text("LR = 0.1\n")
    (repo / "README.md").write_text("monorepo\n")
    git(["init", "-q"], repo)
    commit_all(repo, "start")
    git(["branch", "autoresearch/a"], repo)
    ws = Workspace(repo / "arena")
    try:
        assert commits_not_in(ws, "refs/heads/autoresearch/a") == 0
        (repo / "README.md").write_text("monorepo, docs\n")
        commit_all(repo, "docs only")
        assert commits_not_in(ws, "refs/heads/autoresearch/a") == 0
        (repo / "arena" / "train.py").write_text("LR = 0.2\n")
        commit_all(repo, "a fix in the arena")
        assert commits_not_in(ws, "refs/heads/autoresearch/a") == 1
        assert commits_not_in(ws, "refs/heads/no-such-branch") == 0
    finally:
        ws.close()


@pytest.mark.parametrize("used, file, example", [
    ({"proposer": {"knobs": {"freeze": []}}}, {"proposer": {"knobs": {"freeze": ["DEPTH"]}}},
     "--set 'proposer.knobs.freeze=[\"DEPTH\"]'"),
    ({"arena": {"run": "python t.py"}}, {"arena": {"run": "python t.py --tag 🚀"}},
     "--set 'arena.run=\"python t.py --tag 🚀\"'"),                            # read back as it is, not escaped
    ({"metric": {"patterns": {}}}, {"metric": {"patterns": {"val/loss": "x=(\\d+)"}}},
     "--set arena.time_budget_s=30"),                                         # a key --set cannot name: the generic one
    ({"arena": {"timeout_s": None}}, {"arena": {"timeout_s": 120.0}}, "--set arena.timeout_s=120.0"),
])
def test_the_set_example_is_one_that_set_reads_back(used, file, example):
    from autoresearch.campaign_config import _differing, _get, _set_example
    from autoresearch.config import parse_override

    got = _set_example(_differing(file, used), file)
    assert got == example
    if "time_budget_s=30" not in got:
        import shlex

        key, value = parse_override(shlex.split(got)[1])
        assert value == _get(file, tuple(key.split(".")))


def test_a_command_run_from_a_subfolder_of_the_arena_says_which_one_it_meant(tmp_path):
    """A fifth newcomer's trial (2026-12-05): from `src/`, `run --dry-run` said to run `init`
    there and `status` to start a campaign there: a second config, beside the real one."""
    arena = make_synthetic_arena(tmp_path / "arena")
    sub = arena / "src"
    sub.mkdir()
    (sub / "train.py").write_text("print('val_loss: 1.0')\n")
    dry = run_cli("run", sub, "--dry-run")
    assert dry.returncode != 0
    said = " ".join((dry.stdout + dry.stderr).split())
    assert f"(did you mean {arena.resolve()}? it holds an arena's config or ledger: `autoresearch run {arena.resolve()}`)" in said, said
    status = run_cli("status", sub)  # no ledger above yet: status has nothing to show there either
    assert "did you mean" not in status.stderr, status.stderr
    assert run_cli("run", arena, "-n", "1", "--allow-dirty").returncode == 0  # (src/ is not committed)
    status = run_cli("status", sub)
    assert f"it holds an arena's ledger: `autoresearch status {arena.resolve()}`" in " ".join(status.stderr.split())
    outside = tmp_path / "elsewhere"  # not in a repository: nothing suggested
    outside.mkdir()
    assert "did you mean" not in run_cli("status", outside).stderr
    outer = tmp_path / "outer"  # a config above the repository's top is not this repository's arena (a review)
    (outer / "repo").mkdir(parents=True)
    (outer / "autoresearch.toml").write_text("[arena]\n")
    git(outer / "repo", "init", "-q")
    assert "did you mean" not in " ".join(run_cli("run", outer / "repo", "--dry-run").stderr.split())
