"""A new campaign without a seed gets a random one, printed and recorded; ``--seed N``
replays a search; a resumed campaign keeps its seed (issue 20, item 5)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest

from autoresearch.seeds import SEED_KEYS, names_a_seed, random_seed, seed_note, seed_overrides
from autoresearch.testing import make_synthetic_arena
from conftest import _env, ledger_rows


def run_unseeded(*args):
    """The CLI as a user runs it: no AUTORESEARCH_SEED in the environment."""
    env = {k: v for k, v in _env().items() if k != "AUTORESEARCH_SEED"}
    return subprocess.run([sys.executable, "-m", "autoresearch", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("raw, overrides, expected", [
    ({}, {}, False),
    ({"runner": {"slots": 2}}, {"judge.policy": "greedy"}, False),
    ({"runner": {"seed": 3}}, {}, True),
    ({"proposer": {"knobs": {"seed": 0}}}, {}, True),   # a seed written as 0 is a seed named
    ({}, {"runner.seed": 5}, True),
    ({}, {"proposer.llm.seed": 5}, True),
])
def test_names_a_seed(raw, overrides, expected):
    assert names_a_seed(raw, overrides) is expected


def test_seed_overrides_and_words():
    assert seed_overrides(7) == {k: 7 for k in SEED_KEYS}
    assert 1 <= random_seed(random.Random(1)) <= 99_999
    assert "--seed 42" in seed_note(42, chosen=True) and seed_note(42, chosen=False) == "seed 42"
    assert "for this new campaign" in seed_note(42, chosen=True)
    assert "starts afresh after its failed baseline" in seed_note(42, chosen=True, restarted=True)  # not "new"


def _seeds(arena, tag):
    config = json.loads(ledger_rows(arena, "SELECT config_json FROM campaigns WHERE tag=?", (tag,))[0]["config_json"])
    return config["runner"]["seed"], config["proposer"]["knobs"]["seed"]


def _proposals(arena, tag):
    return [r["description"] for r in ledger_rows(
        arena, "SELECT e.description FROM experiments e JOIN campaigns c ON c.id = e.campaign_id "
               "WHERE c.tag=? AND e.id > 0 ORDER BY e.id", (tag,))]


def test_a_new_campaign_gets_a_random_seed_printed_recorded_and_kept_on_resume(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"proposer": {"kind": "knobs", "lookahead": 0}})
    seeds = []
    for tag in ("a", "b"):
        r = run_unseeded("run", arena, "--tag", tag, "-n", "3", "--no-report")
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"seed (\d+) \(chosen at random for this new campaign", r.stdout)
        assert m, r.stdout
        seed = int(m.group(1))
        assert _seeds(arena, tag) == (seed, seed)
        seeds.append(seed)
    assert seeds[0] != seeds[1]  # two draws from 1..99999
    # resumed: the recorded seed, no new one
    r = run_unseeded("run", arena, "--tag", "a", "-n", "5", "--no-report")
    assert r.returncode == 0 and "chosen at random" not in r.stdout, r.stdout + r.stderr
    assert "runner.seed" not in r.stdout  # the campaign's own seed is not "the file says otherwise"
    assert _seeds(arena, "a") == (seeds[0], seeds[0])
    # --seed N in a new campaign replays campaign a's search
    r = run_unseeded("run", arena, "--tag", "c", "-n", "5", "--seed", str(seeds[0]), "--no-report")
    assert r.returncode == 0 and "chosen at random" not in r.stdout, r.stdout + r.stderr
    assert _proposals(arena, "c") == _proposals(arena, "a")


def test_the_dry_run_says_a_new_campaign_draws_its_seed(tmp_path):
    """A newcomer's trial (2026-12-05): the dry run showed `seed = 0`, the run then used a seed
    drawn at random."""
    from autoresearch.cli_views import RANDOM_SEED

    arena = make_synthetic_arena(tmp_path / "arena", config_overrides={"proposer": {"kind": "knobs", "lookahead": 0}})
    lines = run_unseeded("run", arena, "--dry-run").stdout.splitlines()
    assert lines.count(RANDOM_SEED) == len(SEED_KEYS) and "seed = 0" not in lines
    fixed = run_unseeded("run", arena, "--dry-run", "--seed", "7").stdout.splitlines()
    assert fixed.count("seed = 7") == len(SEED_KEYS) and RANDOM_SEED not in fixed
    r = run_unseeded("run", arena, "--tag", "t", "-n", "2", "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    seed = int(re.search(r"seed (\d+) \(chosen at random", r.stdout).group(1))  # type: ignore[union-attr]
    went_on = run_unseeded("run", arena, "--tag", "t", "--dry-run").stdout.splitlines()  # its recorded seed
    assert went_on.count(f"seed = {seed}") == len(SEED_KEYS) and RANDOM_SEED not in went_on
    beside = run_unseeded("run", arena, "--tag", "other", "--dry-run").stdout.splitlines()  # a new tag: drawn
    assert beside.count(RANDOM_SEED) == len(SEED_KEYS)

