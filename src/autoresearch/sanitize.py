"""Text a run or a model produced, made safe to keep and to show. Pure.

A candidate controls its descriptions (through the proposer), its output and its result
files. None of it may reach git, the ledger, a terminal, results.tsv or a report as
anything but inert text: NUL bytes (git refuses them, C strings end at them), terminal
control sequences (ANSI escapes can rewrite the screen, set the window title, or in old
terminals type into the shell), other C0/C1 controls, and unbounded length.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls; ESC starts every terminal sequence
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def clean_text(text: str, *, limit: int | None = None, newlines: bool = True) -> str:
    """``text`` without terminal sequences and control characters (each becomes U+FFFD;
    whole ANSI sequences go), tabs kept, newlines kept or (``newlines=False``) turned into
    spaces, cut to ``limit`` characters."""
    text = _ANSI.sub("", text)
    if not newlines:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    text = _CONTROLS.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def one_line(text: str, limit: int = 300) -> str:
    """A description: one line, clean, bounded."""
    return " ".join(clean_text(text, newlines=False).split())[:limit]


_MD_SPECIAL = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "\\`", "[": "\\[", "]": "\\]",
                             "*": "\\*", "_": "\\_"})


def markdown_cell(text: str, limit: int = 300) -> str:
    """Text for a markdown table cell: one line, clean, markdown and HTML inert."""
    return one_line(text, limit).translate(_MD_SPECIAL)
