import pytest

from autoresearch.edits import apply_edits, check_editable, code_hash, unified_diff
from autoresearch.errors import EditError
from autoresearch.records import FileEdit

SRC = """import math

LR = 0.04
DEPTH = 8


def step(x):
    if x > 0:
        y = x * LR
        return y
    return 0
"""


@pytest.mark.parametrize(
    "search, replace, expected_fragment",
    [
        ("LR = 0.04", "LR = 0.02", "LR = 0.02\nDEPTH"),
        ("DEPTH = 8\n", "DEPTH = 6\n", "DEPTH = 6\n"),
        # uniform indentation tolerance: the model dropped the block's indentation
        ("if x > 0:\n    y = x * LR\n", "if x >= 0:\n    y = x * LR * 2\n", "    if x >= 0:\n        y = x * LR * 2\n"),
        # ... or added one level too many
        ("            y = x * LR\n            return y\n", "            return x * LR\n", "        return x * LR\n    return 0"),
    ],
)
def test_apply_matches(search, replace, expected_fragment):
    out = apply_edits({"train.py": SRC}, [FileEdit("train.py", search, replace)], ["train.py"])
    assert expected_fragment in out["train.py"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (FileEdit("train.py", "LR = 0.05", "LR = 1"), "matches nothing"),
        (FileEdit("train.py", "    return", "    return None"), "matches 2 places"),
        (FileEdit("train.py", "\n\n", ""), "matches"),
        (FileEdit("prepare.py", "x", "y"), "not editable"),
        (FileEdit("../train.py", "x", "y"), "leaves the arena"),
        (FileEdit("/etc/passwd", "x", "y"), "absolute path"),
        (FileEdit(".git/config", "x", "y"), "inside .git"),
        (FileEdit("", "x", "y"), "empty path"),
        (FileEdit("train.py", "", "new file"), "already exists"),
        (FileEdit("train.py", "   \n", "x"), "blank"),
    ],
)
def test_apply_refuses(edit, message):
    with pytest.raises(EditError, match=message):
        apply_edits({"train.py": SRC}, [edit], ["train.py"])


def test_no_match_shows_nearest_lines():
    with pytest.raises(EditError) as e:
        apply_edits({"train.py": SRC}, [FileEdit("train.py", "DEPTH = 9", "DEPTH = 1")], ["train.py"])
    assert "    4| DEPTH = 8" in str(e.value)


def test_failure_names_block_and_applied_ones():
    edits = [FileEdit("train.py", "LR = 0.04", "LR = 0.03"), FileEdit("train.py", "nope", "x")]
    with pytest.raises(EditError, match=r"(?s)edit 2: .*\nEdits \[1\] applied before it"):
        apply_edits({"train.py": SRC}, edits, ["train.py"])


def test_several_files_and_sequential_edits():
    files = {"a.py": "A = 1\n", "b.py": "B = 2\n", "new.py": None}
    edits = [
        FileEdit("a.py", "A = 1", "A = 10"),
        FileEdit("a.py", "A = 10", "A = 11"),
        FileEdit("./b.py", "B = 2", "B = 3"),
        FileEdit("new.py", "", "C = 1\n"),
    ]
    out = apply_edits(files, edits, ["a.py", "b.py", "new.py"])
    assert out == {"a.py": "A = 11\n", "b.py": "B = 3\n", "new.py": "C = 1\n"}


def test_last_line_without_newline_keeps_shape():
    out = apply_edits({"t.py": "A = 1\nB = 2"}, [FileEdit("t.py", "  B = 2", "  B = 3")], ["t.py"])
    assert out["t.py"] == "A = 1\nB = 3"


@pytest.mark.parametrize("path", ["train.py", "./train.py", "sub/../train.py"])
def test_check_editable_normalises(path):
    if ".." in path:
        with pytest.raises(EditError):
            check_editable(path, ["train.py"])
    else:
        assert check_editable(path, ["train.py"]) == "train.py"


def test_code_hash_ignores_trailing_whitespace_only():
    a = code_hash({"t.py": "A = 1\nB = 2\n"})
    assert a == code_hash({"t.py": "A = 1   \nB = 2\n\n\n"})
    assert a != code_hash({"t.py": "A = 1\nB = 3\n"})
    assert a != code_hash({"u.py": "A = 1\nB = 2\n"})


def test_unified_diff():
    d = unified_diff({"t.py": "A = 1\n", "n.py": None}, {"t.py": "A = 2\n", "n.py": "N = 1\n"})
    assert "--- a/t.py\n+++ b/t.py" in d and "-A = 1\n+A = 2\n" in d
    assert "--- /dev/null\n+++ b/n.py" in d
    assert unified_diff({"t.py": "A\n"}, {"t.py": "A\n"}) == ""
