"""The shape of the package, kept by tests: small functions, classes and modules; protocols
that import no implementation; one module that writes durable state; dependencies that
point one way. Read with ``ast``; nothing is imported or run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import autoresearch

PACKAGE = Path(autoresearch.__file__).parent
MAX_FUNCTION_LINES = 60
MAX_CLASS_METHODS = 20
MAX_MODULE_LINES = 500

# Methods that write the ledger or move git refs: only the journal calls them.
LEDGER_WRITES = {"add_experiment", "set_running", "finish_experiment", "requeue", "update_stats", "start_run",
                 "finish_run_by_token", "abandon_open_runs", "create_campaign", "touch_campaign", "rebase_campaign",
                 "add_ablation", "tx"}
REF_WRITES = {"update_ref", "delete_ref"}
WRITERS = {"engine/journal.py"}
DEFINERS = {"store/ledger.py", "store/ledger_writer.py", "store/workspace.py", "store/gitobjects.py",
            "store/ledger_watch.py"}  # (the watch puts back what another process changed in our rows)


def modules() -> list[tuple[str, ast.Module, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("arenas/"):  # the example arenas are training code, not the harness
            continue
        text = path.read_text(encoding="utf-8")
        out.append((rel, ast.parse(text, filename=rel), text))
    return out


MODULES = modules()


def imported(tree: ast.Module, rel: str) -> set[str]:
    """Absolute names of the package's modules that ``rel`` imports (relative imports resolved)."""
    package = ["autoresearch", *rel.split("/")[:-1]]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("autoresearch")}


def test_the_package_was_found():
    rels = {rel for rel, _, _ in MODULES}
    assert {"engine/experiment.py", "engine/journal.py", "protocols.py", "runs/spec.py"} <= rels


@pytest.mark.parametrize("rel, tree, text", MODULES, ids=[m[0] for m in MODULES])
def test_functions_classes_and_modules_stay_small(rel, tree, text):
    lines = text.count("\n") + 1
    assert lines <= MAX_MODULE_LINES, f"{rel} has {lines} lines (at most {MAX_MODULE_LINES}): split it by what it does"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            assert n <= MAX_FUNCTION_LINES, f"{rel}:{node.lineno} {node.name} is {n} lines (at most {MAX_FUNCTION_LINES})"
        if isinstance(node, ast.ClassDef):
            methods = [b for b in node.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef))]
            assert len(methods) <= MAX_CLASS_METHODS, \
                f"{rel}:{node.lineno} class {node.name} has {len(methods)} methods (at most {MAX_CLASS_METHODS})"


def test_protocols_import_records_and_run_specs_only():
    tree = next(t for rel, t, _ in MODULES if rel == "protocols.py")
    allowed = {"autoresearch.records", "autoresearch.runs.spec"}
    bad = {n for n in imported(tree, "protocols.py") if not any(n == a or n.startswith(a + ".") for a in allowed)}
    assert not bad, f"protocols.py imports implementation modules: {sorted(bad)}"


def _calls(tree: ast.Module, names: set[str]) -> list[tuple[int, str]]:
    return [(node.lineno, node.func.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names]


def test_only_the_journal_writes_the_ledger_and_git_refs():
    offenders = []
    for rel, tree, text in MODULES:
        if rel in WRITERS or rel in DEFINERS:
            continue
        offenders += [f"{rel}:{line} .{name}()" for line, name in _calls(tree, LEDGER_WRITES | REF_WRITES)]
        if any(isinstance(n, ast.Constant) and n.value == "update-ref" for n in ast.walk(tree)):
            offenders.append(f"{rel}: runs git update-ref")  # (a message that names the command is fine)
        if "LedgerWriter" in text:
            offenders.append(f"{rel}: uses LedgerWriter")
    assert not offenders, "durable writes outside engine/journal.py:\n" + "\n".join(offenders)


def test_the_writers_know_their_crash_points():
    # every durable step of the documented order has its crash point in the journal
    from autoresearch.faults import POINTS

    text = next(t for rel, _, t in MODULES if rel == "engine/journal.py")
    missing = [p for p in POINTS if p != "mid_run" and f'"{p}"' not in text]
    assert not missing, f"crash points missing from the journal: {missing}"


def test_dependencies_point_one_way():
    problems = []
    for rel, tree, _ in MODULES:
        names = imported(tree, rel)
        if rel != "__main__.py" and any(n == "autoresearch.cli" or n.startswith("autoresearch.cli.") for n in names):
            problems.append(f"{rel} imports the CLI")
        if rel.startswith(("engine/", "store/", "runs/", "runners/", "proposers/")):
            up = {n for n in names if n.count(".") and n.split(".")[1] in ("api", "cli", "console")}
            if up:
                problems.append(f"{rel} imports {sorted(up)}")
        if rel.startswith(("store/", "runs/")):
            engine = {n for n in names if n.startswith("autoresearch.engine")}
            if engine:
                problems.append(f"{rel} (a lower layer) imports the engine: {sorted(engine)}")
    assert not problems, "\n".join(problems)


def test_the_ray_node_side_stays_light():
    # a Ray worker imports runners/remote.py: standard library and light modules only (no
    # pydantic config, no git store), so a fresh worker starts its first task sooner
    tree = next(t for rel, t, _ in MODULES if rel == "runners/remote.py")
    heavy = {n for n in imported(tree, "runners/remote.py")
             if n.startswith(("autoresearch.config", "autoresearch.store", "autoresearch.engine"))}
    assert not heavy, sorted(heavy)
