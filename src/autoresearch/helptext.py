"""Help texts of the command line as they are written.

typer renders help with rich markup: a help string that says ``[proposer.llm]`` loses it
(a style tag, dropped: "LLM model name ( model)."), and a docstring's line breaks stay in
the commands list and in later paragraphs, which breaks sentences in the middle at any
other terminal width. ``PlainHelpGroup`` makes every help text of the group and of its
commands plain once, when typer builds them; the strings in ``cli.py`` stay as they read.
"""

from __future__ import annotations

import inspect
from typing import Any

from rich.markup import escape
from typer.core import TyperGroup


def plain_text(text: str) -> str:
    """``text`` escaped for rich markup, each paragraph on one line; a paragraph that
    starts with ``\\b`` (click's "do not rewrap") keeps its lines. Pure."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(escape(p.lstrip("\b").strip("\n") if p.startswith("\b") else " ".join(p.split()))
                       for p in paragraphs)


def _plain_help(command: Any) -> None:
    """A command's description, its line in the commands list and its parameters' help."""
    if getattr(command, "_plain_help", False):
        return
    command._plain_help = True
    if command.help:
        command.help = plain_text(command.help)
        command.short_help = command.help.split("\n\n", 1)[0]
    for param in command.params:
        if getattr(param, "help", None):
            param.help = plain_text(param.help)


class PlainHelpGroup(TyperGroup):
    """The command group (``typer.Typer(cls=...)``) whose help texts, and its commands',
    are plain text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_help(self)
        for command in self.commands.values():
            _plain_help(command)
