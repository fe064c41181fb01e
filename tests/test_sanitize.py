"""Text a run or a model produced, made inert (issue 16, classes 8 and 10). Pure."""

from __future__ import annotations

import pytest

from autoresearch.report.dashboard import host_allowed
from autoresearch.sanitize import clean_text, markdown_cell, one_line


@pytest.mark.parametrize("text, newlines, expected", [
    ("plain", True, "plain"),
    ("red \x1b[31mtext\x1b[0m", True, "red text"),                             # colours go whole
    ("title \x1b]0;pwned\x07done", True, "title done"),                         # OSC: the window title
    ("erase \x1b[2J\x1b[Hscreen", True, "erase screen"),
    ("nul\x00byte", True, "nul\ufffdbyte"),                                     # git refuses NUL; C strings end
    ("bell\x07 and \x9b c1", True, "bell\ufffd and \ufffd c1"),                 # C0 and C1 controls
    ("tab\tand\nnewline", True, "tab\tand\nnewline"),
    ("two\nlines\r\nthree", False, "two lines three"),
    ("carriage\rreturn", True, "carriage\ufffdreturn"),                         # \r would overwrite the line
])
def test_clean_text(text, newlines, expected):
    assert clean_text(text, newlines=newlines) == expected


def test_limits():
    assert clean_text("x" * 50, limit=10) == "x" * 9 + "…"
    assert one_line("a\n\n  b\tc\x1b[1m", limit=300) == "a b c"
    assert len(one_line("y" * 10_000)) == 300


@pytest.mark.parametrize("text, expected", [
    ("a | b", "a \\| b"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("two\nlines", "two lines"),
    ("[link](javascript:x) *bold* `code`", "\\[link\\](javascript:x) \\*bold\\* \\`code\\`"),
    ("without #2", "without #2"),                                                # no heading inside a cell
])
def test_markdown_cell(text, expected):
    assert markdown_cell(text) == expected


@pytest.mark.parametrize("header, ok", [
    ("127.0.0.1:8765", True), ("localhost:8765", True), ("[::1]:8765", True), ("localhost", True),
    ("LOCALHOST:8765", True), ("127.0.0.1:9999", False), ("evil.example:8765", False),  # DNS rebinding
    ("evil.example", False), ("127.0.0.1.evil.example:8765", False), ("", False), ("[::1]:1", False),
])
def test_the_dashboard_answers_only_to_loopback_names(header, ok):
    assert host_allowed(header, 8765) is ok
