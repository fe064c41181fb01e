"""A knobs proposal is a set of values: on a new incumbent it is written again, not dropped.

The pure part (``rebase_knobs``) is table-driven; the campaign part runs the real knobs
proposer with two slots and proposals prepared ahead, on an arena where every change beats
the baseline, so proposals made on the baseline meet an incumbent that changed the same
lines (issue 20, item 2)."""

from __future__ import annotations

import json
import re

import pytest

from autoresearch.proposers.knob_code import discover, render_edits
from autoresearch.proposers.knob_space import Space
from autoresearch.proposers.knob_rebase import is_knobs_proposal, moved_knobs, rebase_knobs
from autoresearch.records import FileEdit, Proposal
from autoresearch.testing import make_synthetic_arena
from conftest import git, ledger_rows, run_cli

CODE = "LR = 0.01\nBETAS = (0.9, 0.95)\nDROPOUT = 0.3\n"
SPACES = {
    "LR": {"kind": "float", "low": 0.001, "high": 0.1, "log": True},
    "BETAS[0]": {"kind": "float", "low": 0.5, "high": 0.99, "log": False},
    "DROPOUT": {"kind": "float", "low": 0.0, "high": 1.0, "log": False},
}


def knobs_proposal(code: str, values: dict, parent_values: dict) -> Proposal:
    """A proposal shaped like the knobs proposer's: params here equal the values (the
    spaces above are plain float spaces)."""
    knobs = discover({"train.py": code})
    changes = {n: v for n, v in values.items() if parent_values[n] != v}
    full = {**parent_values, **values}
    return Proposal(
        description="x", edits=render_edits(knobs, changes), proposer="knobs",
        meta={"knobs": {"params": full, "values": full, "signature": "s", "sampler": "tpe", "trial": 3,
                        "spaces": SPACES, "parent": {"params": dict(parent_values), "metric": 1.0}}})


def apply(code: str, edits: tuple[FileEdit, ...]) -> str:
    for e in edits:
        assert code.count(e.search) == 1, (e.search, code)
        code = code.replace(e.search, e.replace)
    return code


BASE = {"LR": 0.01, "BETAS[0]": 0.9, "DROPOUT": 0.3}


@pytest.mark.parametrize("proposed, incumbent_code, expected_code, expected_params", [
    # the incumbent changed the same line: the proposal's value is written on it
    ({"LR": 0.02}, "LR = 0.005\nBETAS = (0.9, 0.95)\nDROPOUT = 0.3\n",
     "LR = 0.02\nBETAS = (0.9, 0.95)\nDROPOUT = 0.3\n", {"LR": 0.02, "BETAS[0]": 0.9, "DROPOUT": 0.3}),
    # the incumbent changed another knob: it keeps the incumbent's value (params say so)
    ({"LR": 0.02}, "LR = 0.01\nBETAS = (0.9, 0.95)\nDROPOUT = 0.1\n",
     "LR = 0.02\nBETAS = (0.9, 0.95)\nDROPOUT = 0.1\n", {"LR": 0.02, "BETAS[0]": 0.9, "DROPOUT": 0.1}),
    # a tuple element next to one the incumbent changed
    ({"BETAS[0]": 0.8}, "LR = 0.01\nBETAS = (0.9, 0.99)\nDROPOUT = 0.3\n",
     "LR = 0.01\nBETAS = (0.8, 0.99)\nDROPOUT = 0.3\n", {"LR": 0.01, "BETAS[0]": 0.8, "DROPOUT": 0.3}),
    # other code changed around the knobs (an LLM's keep): still found by name
    ({"LR": 0.02, "DROPOUT": 0.5}, "import math\n\nLR = 0.01  # tuned\nBETAS = (0.9, 0.95)\nDROPOUT = 0.3\nX = 1\n",
     "import math\n\nLR = 0.02  # tuned\nBETAS = (0.9, 0.95)\nDROPOUT = 0.5\nX = 1\n",
     {"LR": 0.02, "BETAS[0]": 0.9, "DROPOUT": 0.5}),
])
def test_a_knobs_proposal_is_written_again_on_the_new_code(proposed, incumbent_code, expected_code, expected_params):
    p = knobs_proposal(CODE, proposed, BASE)
    assert is_knobs_proposal(p) and moved_knobs(p.meta["knobs"]) == sorted(proposed)
    out = rebase_knobs(p, {"train.py": incumbent_code}, 0.7)
    assert isinstance(out, Proposal), out
    assert apply(incumbent_code, out.edits) == expected_code
    stored = out.meta["knobs"]
    assert stored["params"] == expected_params and stored["values"] == expected_params
    incumbent_params = {k.name: k.value for k in discover({"train.py": incumbent_code}) if k.name in SPACES}
    assert stored["parent"] == {"params": incumbent_params, "metric": 0.7}
    assert stored["rebased"] == 1 and stored["signature"] != "s"
    assert all(f"{n} " in out.description for n in moved_knobs(stored) if stored["values"][n] != incumbent_params[n])


@pytest.mark.parametrize("proposed, incumbent_code, constraints, reason", [
    ({"LR": 0.02}, "LEARNING = 0.01\nBETAS = (0.9, 0.95)\nDROPOUT = 0.3\n", (), "no longer in the code: LR"),
    ({"LR": 0.02}, "LR = 0.02\nBETAS = (0.9, 0.95)\nDROPOUT = 0.3\n", (), "already holds every value"),
    # another proposer moved a knob outside its space: the point would not be the code that runs
    ({"LR": 0.02}, "LR = 0.01\nBETAS = (0.9, 0.95)\nDROPOUT = 1.5\n", (), "DROPOUT lie outside the search space"),
    ({"LR": 0.02}, "LR = 0.01\nBETAS = (0.9, 0.95)\nDROPOUT = 0.9\n", ("LR * DROPOUT < 0.015",),
     "breaks the constraint 'LR * DROPOUT < 0.015'"),
])
def test_a_knobs_proposal_that_cannot_move_says_why(proposed, incumbent_code, constraints, reason):
    out = rebase_knobs(knobs_proposal(CODE, proposed, BASE), {"train.py": incumbent_code}, None, constraints=constraints)
    assert isinstance(out, str) and reason in out, out


def test_other_proposals_are_not_knobs_proposals():
    assert not is_knobs_proposal(Proposal("x", proposer="scripted", meta={"index": 0}))
    assert not is_knobs_proposal(Proposal("x", proposer="knobs", meta={"knobs": {"params": {}}}))


TRAIN = '''"""Every change beats the baseline: the loss peaks at the starting values."""
import math, time
from prepare import report

LEARNING_RATE = 0.01
DROPOUT = 0.3
WIDTH = 64

if __name__ == "__main__":
    time.sleep(0.4)
    report({"val_loss": 3.0 - abs(math.log(LEARNING_RATE / 0.01)) - abs(DROPOUT - 0.3) - abs(math.log(WIDTH / 64))})
'''


@pytest.mark.slow
def test_with_two_slots_no_knobs_proposal_is_dropped_and_the_ledger_holds_what_ran(tmp_path):
    arena = make_synthetic_arena(tmp_path / "arena", extra_files={"train.py": TRAIN}, config_overrides={
        "proposer": {"kind": "knobs", "lookahead": 2}, "judge": {"policy": "greedy"},
        "proposer.knobs": {"only": ["LEARNING_RATE", "DROPOUT", "WIDTH"], "changes_per_trial": 3}})
    r = run_cli("run", arena, "--tag", "k", "--slots", "2", "--max-experiments", "9", timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    exps = {e["id"]: dict(e) for e in ledger_rows(arena, "SELECT * FROM experiments ORDER BY id")}
    assert len(exps) == 9
    reasons = {i: e["reason"] or "" for i, e in exps.items()}
    assert not [i for i, x in reasons.items() if "matches nothing" in x or x.startswith(("stale", "dropped"))], reasons
    assert all(e["status"] in ("keep", "discard") for e in exps.values()), reasons
    rebased = [i for i, e in exps.items() if json.loads(e["proposal_json"]).get("meta", {}).get("knobs", {}).get("rebased")]
    assert rebased, "two slots and proposals prepared ahead: some proposal met a new incumbent"
    for i, e in exps.items():  # the ledger's point is the code that ran
        if i == 0:
            continue
        code = git(arena, "show", f"{e['commit_sha']}:train.py")
        stored = json.loads(e["proposal_json"])["meta"]["knobs"]
        for name in ("LEARNING_RATE", "DROPOUT", "WIDTH"):
            written = re.search(rf"^{name} = (.+)$", code, re.M).group(1)
            assert float(written) == pytest.approx(stored["values"][name]), (i, name, written, stored["values"])
        parent_code = git(arena, "show", f"{e['parent']}:train.py")
        for name, param in stored["parent"]["params"].items():
            value = float(re.search(rf"^{name} = (.+)$", parent_code, re.M).group(1))
            assert Space.from_dict(stored["spaces"][name]).to_param(int(value) if name == "WIDTH" else value) \
                == pytest.approx(param), (i, name, value, param)
