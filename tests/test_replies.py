"""Model replies kept as regression fixtures (tests/fixtures/replies): real SmolLM2 free-edit
replies (smollm2-*) and reply styles of larger models (style-*). Each must parse to the
recorded outcome, and applying it to the synthetic arena must succeed or fail as recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch.arenas import example_dir
from autoresearch.edits import apply_edits, parse_reply
from autoresearch.errors import EditError

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
NO_BLOCK = ("the reply has no SEARCH/REPLACE block",)
EXPECTED = {
    "smollm2-edits-1.txt": ("One of the experiments is:", 0, NO_BLOCK, None),
    "smollm2-edits-2.txt": ("To provide a new experiment to the dataset, it would need to be modified according to your requirements. Here is an example of what you could do:", 0, NO_BLOCK, None),
    "smollm2-edits-3.txt": ("The next experiment requires a custom edit.", 0, NO_BLOCK, None),
    "smollm2-edits-4.txt": (None, 0, NO_BLOCK, None),
    "smollm2-edits-5.txt": ("2019-08-31", 0, NO_BLOCK, None),
    "style-crlf-path-inside-fence.txt": ("Increase model width", 1, (), "applies"),
    "style-two-files-trailing-prose.txt": ("Lower the learning rate and shorten warmup", 2, (), "applies"),
    "style-truncated-at-max-tokens.txt": ("Reduce dropout", 0, ("block 1 is truncated: it has no '>>>>>>> REPLACE' line",), None),
}


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply_fixture(name):
    description, n_edits, problems, applies = EXPECTED[name]
    parsed = parse_reply((FIXTURES / name).read_text())
    if description is not None:
        assert parsed.description == description
    assert len(parsed.edits) == n_edits
    assert parsed.problems == problems
    if applies is not None:
        files = {"train.py": (example_dir("synthetic") / "train.py").read_text()}
        try:
            new = apply_edits(files, parsed.edits, ["train.py"])
        except EditError as e:
            pytest.fail(f"{name} should apply: {e}")
        assert new["train.py"] != files["train.py"]
