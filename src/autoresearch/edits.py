"""Pure edit application: SEARCH/REPLACE edits on file texts, the editable-path allowlist,
unified diffs and the normalised code hash used to refuse duplicate proposals.

Matching goes from strict to slightly lenient and stops there: an exact unique match, then
a unique match when the whole block is shifted by a uniform indentation. Never fuzzy: a
wrong edit is worse than a refused one. A refused edit raises ``EditError`` with which edit
failed, why, and the nearest real lines, so a model can correct itself.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, Mapping

from .errors import EditError
from .records import FileEdit


def normalize_edit_path(path: str) -> str:
    """The arena-relative POSIX form of ``path``; raises EditError for paths leaving it."""
    raw = path.strip().replace("\\", "/")
    if not raw:
        raise EditError("an edit has an empty path")
    p = PurePosixPath(raw)
    if p.is_absolute():
        raise EditError(f"{path!r} is an absolute path; edits name files relative to the arena")
    parts = [x for x in p.parts if x != "."]
    if ".." in parts:
        raise EditError(f"{path!r} leaves the arena directory")
    if parts and parts[0] == ".git":
        raise EditError(f"{path!r} is inside .git")
    return "/".join(parts)


def check_editable(path: str, editable: Iterable[str]) -> str:
    norm = normalize_edit_path(path)
    allowed = set(editable)
    if norm not in allowed:
        raise EditError(f"{path!r} is not editable; the editable files are: {', '.join(sorted(allowed))}")
    return norm


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _dedent(lines: list[str]) -> tuple[list[str], str]:
    """Remove the common leading whitespace of the non-blank lines."""
    indents = [_indent(x) for x in lines if x.strip()]
    if not indents:
        return lines, ""
    common = indents[0]
    for ind in indents[1:]:
        while not ind.startswith(common):
            common = common[:-1]
    return [x[len(common) :] if x.strip() else x.strip(" \t") for x in lines], common


def _nearest_lines(text: str, search: str, context: int = 2) -> str:
    lines = text.splitlines()
    want = search.splitlines()
    if not lines or not want:
        return ""
    n = len(want)
    best, best_at = -1.0, 0
    stripped_want = "\n".join(x.strip() for x in want)
    for i in range(0, max(1, len(lines) - n + 1)):
        window = "\n".join(x.strip() for x in lines[i : i + n])
        score = difflib.SequenceMatcher(None, stripped_want, window, autojunk=False).ratio()
        if score > best:
            best, best_at = score, i
    lo, hi = max(0, best_at - context), min(len(lines), best_at + n + context)
    return "\n".join(f"{k + 1:5d}| {lines[k]}" for k in range(lo, hi))


def _apply_one(text: str, edit: FileEdit) -> str:
    search, replace = edit.search, edit.replace
    count = text.count(search)
    if count == 1:
        return text.replace(search, replace, 1)
    if count > 1:
        raise EditError(f"the SEARCH text for {edit.path} matches {count} places; include more surrounding lines so it matches one")

    # Uniform-indentation tolerance: the block matches once when every line is shifted
    # by the same prefix (models often drop or add one level of indentation).
    search_lines = search.splitlines()
    if not search_lines or not any(x.strip() for x in search_lines):
        raise EditError(f"the SEARCH text for {edit.path} is blank")
    want, _ = _dedent(search_lines)
    lines = text.splitlines(keepends=True)
    n = len(want)
    hits: list[tuple[int, str]] = []
    for i in range(0, len(lines) - n + 1):
        window = [x.rstrip("\r\n") for x in lines[i : i + n]]
        got, prefix = _dedent(window)
        if got == want:
            hits.append((i, prefix))
    if len(hits) > 1:
        raise EditError(f"the SEARCH text for {edit.path} matches {len(hits)} places (ignoring indentation); include more surrounding lines")
    if not hits:
        near = _nearest_lines(text, search)
        hint = f"\nThe nearest lines in {edit.path} are:\n{near}" if near else ""
        raise EditError(f"the SEARCH text for {edit.path} matches nothing (not even ignoring indentation).{hint}")
    start, prefix = hits[0]
    repl_lines, _ = _dedent(replace.splitlines())
    new_block = "".join((prefix + x if x.strip() else x) + "\n" for x in repl_lines)
    old_block = "".join(lines[start : start + n])
    if not old_block.endswith("\n"):  # the block ended the file without a newline
        new_block = new_block[:-1] if new_block.endswith("\n") else new_block
    return "".join(lines[:start]) + new_block + "".join(lines[start + n :])


def apply_edits(
    files: Mapping[str, str | None],
    edits: Iterable[FileEdit],
    editable: Iterable[str],
) -> dict[str, str]:
    """Apply ``edits`` to ``files`` (path -> text, None when the file does not exist).

    Returns the new text of every file that an edit touched. Raises EditError naming the
    failing edit (1-based) and listing the edits that did apply before it.
    """
    allowed = list(editable)
    current: dict[str, str | None] = dict(files)
    touched: dict[str, str] = {}
    applied: list[int] = []
    for k, edit in enumerate(edits, start=1):
        try:
            path = check_editable(edit.path, allowed)
            norm = FileEdit(path=path, search=edit.search, replace=edit.replace)
            text = current.get(path)
            if norm.search == "":
                if text is not None and text.strip():
                    raise EditError(f"an empty SEARCH creates a file, but {path} already exists; quote the lines to replace")
                new = norm.replace
            elif text is None:
                raise EditError(f"{path} does not exist")
            else:
                new = _apply_one(text, norm)
        except EditError as e:
            done = f"\nEdits {applied} applied before it." if applied else ""
            raise EditError(f"edit {k}: {e}{done}") from None
        current[path] = new
        touched[path] = new
        applied.append(k)
    return touched


def unified_diff(old: Mapping[str, str | None], new: Mapping[str, str]) -> str:
    """A git-style unified diff of the files in ``new`` against ``old``."""
    parts = []
    for path in sorted(new):
        before = old.get(path)
        a = (before or "").splitlines(keepends=True)
        b = new[path].splitlines(keepends=True)
        if a == b:
            continue
        fromfile = f"a/{path}" if before is not None else "/dev/null"
        lines = list(difflib.unified_diff(a, b, fromfile=fromfile, tofile=f"b/{path}"))
        parts.append("".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines))
    return "".join(parts)


def code_hash(files: Mapping[str, str]) -> str:
    """A hash of code content that ignores trailing whitespace and trailing blank lines."""
    h = hashlib.sha256()
    for path in sorted(files):
        lines = [x.rstrip() for x in files[path].splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        h.update(path.encode() + b"\0" + "\n".join(lines).encode() + b"\0")
    return h.hexdigest()


# -- parsing a model's reply ----------------------------------------------------------------
_SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class ParsedReply:
    """A model's reply: a one-line description, the rationale, and the edit blocks.

    ``problems`` lists what made blocks unusable (truncated, no file path); a reply with
    problems is sent back to the model, never half-applied.
    """

    description: str
    rationale: str
    edits: tuple[FileEdit, ...]
    problems: tuple[str, ...]


def _clean_path(line: str) -> str:
    s = line.strip().strip("`*_:#").strip()
    for prefix in ("File:", "file:", "Path:", "path:", "FILE:"):
        if s.startswith(prefix):
            s = s[len(prefix):].strip()
    return s.strip("`*_ ")


def _clean_description(line: str) -> str:
    s = line.strip().lstrip("#").strip().strip("*_").strip()
    for prefix in ("Description:", "description:", "DESCRIPTION:", "Change:", "Title:"):
        if s.startswith(prefix):
            s = s[len(prefix):].strip()
    return s.strip("*_ ")[:200]


def parse_reply(text: str) -> ParsedReply:
    """Parse aider-style SEARCH/REPLACE blocks::

        description line
        rationale ...

        train.py
        ```python
        <<<<<<< SEARCH
        old lines
        =======
        new lines
        >>>>>>> REPLACE
        ```

    The file path is the last non-fence line before the block (consecutive blocks in one
    fence share it). Pure: no file is read.
    """
    if not text.strip():
        return ParsedReply("", "", (), ("the reply is empty",))
    lines = text.splitlines()
    edits, problems, path, blocks = _blocks(lines)
    first_block = next((i for i, l in enumerate(lines) if _SEARCH.match(l)), None)
    head = lines[:first_block] if first_block is not None else lines
    prose = [l for l in head if not _FENCE.match(l)]
    # drop the path line right before the first block
    if first_block is not None and prose and path is not None and _clean_path(prose[-1]) == (edits[0].path if edits else path):
        prose = prose[:-1]
    nonblank = [l for l in prose if l.strip()]
    description = _clean_description(nonblank[0]) if nonblank else ""
    rationale = "\n".join(l.strip() for l in nonblank[1:]).strip()[:2000]
    if blocks == 0:
        problems.append("the reply has no SEARCH/REPLACE block")
    return ParsedReply(description, rationale, tuple(edits), tuple(problems))


def _blocks(lines: list[str]) -> tuple[list[FileEdit], list[str], str | None, int]:
    """The SEARCH/REPLACE blocks of a reply: (edits, problems, the last path seen, blocks)."""
    edits: list[FileEdit] = []
    problems: list[str] = []
    path: str | None = None
    i, block = 0, 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        block += 1
        # the path: the nearest earlier line that is neither a fence nor blank nor a marker
        j = i - 1
        while j >= 0 and (not lines[j].strip() or _FENCE.match(lines[j])):
            j -= 1
        if j >= 0 and not _REPLACE.match(lines[j]):
            path = _clean_path(lines[j])
        k = _next(lines, i + 1, _DIVIDER)
        if k >= len(lines) or not _DIVIDER.match(lines[k]):
            problems.append(f"block {block} is truncated: its SEARCH part has no '=======' line after it")
            i = k
            continue
        m = _next(lines, k + 1, _REPLACE)
        if m >= len(lines) or not _REPLACE.match(lines[m]):
            problems.append(f"block {block} is truncated: it has no '>>>>>>> REPLACE' line")
            i = m
            continue
        if not path:
            problems.append(f"block {block} has no file path: put the path alone on the line before the block")
        else:
            edits.append(FileEdit(path=path, search="".join(x + "\n" for x in lines[i + 1:k]),
                                  replace="".join(x + "\n" for x in lines[k + 1:m])))
        i = m + 1
    return edits, problems, path, block


def _next(lines: list[str], start: int, marker: re.Pattern[str]) -> int:
    """The index of the next ``marker`` line from ``start``, stopping early at a new SEARCH."""
    k = start
    while k < len(lines) and not marker.match(lines[k]) and not _SEARCH.match(lines[k]):
        k += 1
    return k
