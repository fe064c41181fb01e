"""What a Hydra or Lightning project's files say, read without running anything (for
``init``; newcomers' Lightning-Hydra trials, 2026-12-04):

- the YAML files a Hydra training script composes, so that they are editable (the
  hyperparameters live in ``configs/model/*.yaml``, and init left them out);
- the metrics a LightningModule logs to its progress bar (``self.log("val/loss", ...,
  prog_bar=True)``), which Lightning prints there (``val/loss=0.106``) and in its results
  table (``│ val/loss │ 0.106 │``), not as a ``name: value`` line: init wrote ``val_bpb``;
- the keys of the records a script prints as JSON lines (``print(json.dumps(rec))``), which
  the harness reads as ``name: value`` lines (a fourth newcomer's trial: init found no metric).

Pure."""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath
from typing import Mapping

# Hydra config groups that set up the run, not the research: left out of editable
_HYDRA_INFRA = {"hydra", "paths", "logger", "extras", "local", "debug", "experiment", "hparams_search", "callbacks",
                "log", "launcher", "sweeper"}


def hydra_configs(script: str, files: Mapping[str, str]) -> list[str]:
    """The YAML files a Hydra script composes (``@hydra.main(config_path=..., config_name=...)``):
    the primary config and the options its ``defaults`` list picks (``- model: mnist`` is
    ``model/mnist.yaml``; those they pick in turn too), but ``_HYDRA_INFRA``'s groups,
    ``null`` options and ``override`` entries; only files in ``files``. Pure."""
    tree = _parse(files.get(script) or "")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)] if tree is not None else []
    found = next(({k.arg: k.value.value for k in n.keywords if isinstance(k.value, ast.Constant)}
                  for n in calls if _called(n.func) == "main" and any(k.arg == "config_name" for k in n.keywords)), None)
    if not found or not isinstance(found.get("config_name"), str) or not isinstance(found.get("config_path"), str):
        return []  # (config_path=None: Hydra adds no folder of configs, so there is no file to edit)
    root = PurePosixPath(script).parent / found["config_path"]
    parts: list[str] = []
    for part in root.parts:  # ../configs from src/: configs (the repository's own layout, not the disk's)
        if part == "..":
            if not parts:
                return []
            parts.pop()
        elif part != ".":
            parts.append(part)
    base = "/".join(parts)
    out: list[str] = []

    def visit(name: str, depth: int) -> None:
        path = f"{base}/{name}" if base else name
        path = path if path.endswith((".yaml", ".yml")) else f"{path}.yaml"
        if path in out or path not in files or depth > 3:
            return
        out.append(path)
        here = name.rsplit("/", 1)[0] if "/" in name else ""  # the config's own group: its entries are relative to it
        for group, option in _hydra_defaults(files[path]):
            where = group[1:] if group.startswith("/") else "/".join(p for p in (here, group) if p)
            if where.split("/")[0] not in _HYDRA_INFRA:
                visit(f"{where}/{option}" if where else option, depth + 1)

    visit(found["config_name"], 0)
    return out


def _hydra_defaults(text: str) -> list[tuple[str, str]]:
    """(group, option) of each entry of a Hydra config's ``defaults`` list: the group
    relative to the config's own (``/model``: from the root; "": a config of its own
    group); ``_self_``, ``null`` options and ``override`` entries left out. Pure."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return []
    entries = doc.get("defaults") if isinstance(doc, dict) else None
    out: list[tuple[str, str]] = []
    for e in entries if isinstance(entries, list) else []:
        items = [("", e)] if isinstance(e, str) else list(e.items()) if isinstance(e, dict) else []
        for key, value in items:
            key = str(key).removeprefix("optional ").strip()
            if key.startswith("override ") or value == "_self_":
                continue
            group = key.split("@")[0].rstrip("/")  # a leading / (absolute: from the config root) is kept
            for option in value if isinstance(value, list) else [value]:
                if isinstance(option, str):
                    out.append((group, option))
    return out


def _called(func: ast.AST) -> str | None:
    """The name a call calls: ``main`` of ``hydra.main(...)`` and of ``main(...)``."""
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def logged_metrics(path: str, text: str, number: str) -> list[tuple[str, str, int]]:
    """(name, pattern, line) of each metric a LightningModule (a class whose bases name
    ``LightningModule``) logs to the progress bar in ``text``: ``self.log("val_loss", ...,
    prog_bar=True)``, ``self.log_dict({...}, prog_bar=True)``, in source order. Without
    ``prog_bar`` Lightning prints it only in the table of ``trainer.validate``/``test``, so it
    is left out (a review: init chose a metric the run never printed). The pattern reads the
    number after the name in the progress bar (``val/loss=0.106``), the table (``│ val/loss
    │ 0.106 │``, or spaces without rich) or a ``name: value`` line (``number``: the
    number's regex, one group). Pure."""
    tree = _parse(text)
    out: list[tuple[str, str, int]] = []
    classes = [c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
               and any(ast.unparse(b).rsplit(".", 1)[-1] == "LightningModule" for b in c.bases)] if tree else []
    calls = sorted({id(n): n for c in classes for n in ast.walk(c) if isinstance(n, ast.Call)}.values(),
                   key=lambda n: (n.lineno, n.col_offset))
    for n in calls:
        f = n.func
        if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"
                and f.attr in ("log", "log_dict") and _shown(n)):
            continue
        kw = {k.arg: k.value for k in n.keywords if k.arg}
        first = n.args[0] if n.args else kw.get("name" if f.attr == "log" else "dictionary")
        keys = [first] if f.attr == "log" else first.keys if isinstance(first, ast.Dict) else []
        for k in keys:
            if isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.strip():
                name = k.value.strip()
                pattern = rf"(?<![\w./-]){re.escape(name)}(?![\w./-])(?:\s*[=:│|]\s*|\s+)" + number
                out.append((name, pattern, n.lineno))
    return out


def _shown(call: ast.Call) -> bool:
    """Whether a ``self.log`` call puts its value on the progress bar (``prog_bar=True``)."""
    return any(k.arg == "prog_bar" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def json_logged(text: str) -> list[tuple[str, int]]:
    """The keys of the records a file prints as JSON lines, with the printing call's line:
    ``print(json.dumps({"epoch": e, "val_f1": f1}))`` (also ``logger.info(...)`` and
    ``sys.stdout.write(json.dumps(rec) + "\\n")``), the dict written there or assigned to the
    name given (``rec = {...}``, ``rec["val_f1"] = ...``, ``rec.update(val_f1=...)``).
    autoresearch reads such a line's numbers as ``name: value`` lines (``metrics.py``). Pure."""
    tree = _parse(text)
    if tree is None:
        return []
    keys_of: dict[str, list[str]] = {}  # a name -> the string keys it is given anywhere in the file
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
                keys_of.setdefault(target.id, []).extend(_dict_keys(node.value))
            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                    and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str):
                keys_of.setdefault(target.value.id, []).append(target.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update" \
                and isinstance(node.func.value, ast.Name):
            keys_of.setdefault(node.func.value.id, []).extend(k.arg for k in node.keywords if k.arg)
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _called(node.func) in ("print", "info", "write") and node.args) \
                or not _to_the_output(node):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add):  # json.dumps(rec) + "\\n"
            arg = arg.left
        if not (isinstance(arg, ast.Call) and _called(arg.func) == "dumps" and arg.args) \
                or any(k.arg == "indent" for k in arg.keywords):  # over several lines: not one record a line
            continue
        record = arg.args[0]
        keys = _dict_keys(record) if isinstance(record, ast.Dict) else \
            keys_of.get(record.id, []) if isinstance(record, ast.Name) else []
        out += [(k, node.lineno) for k in dict.fromkeys(keys)]
    return sorted(out, key=lambda x: x[1])


def _dict_keys(node: ast.Dict) -> list[str]:
    return [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]


def _to_the_output(call: ast.Call) -> bool:
    """Whether a print, logging or write call writes to the run's output: not ``print(...,
    file=f)`` nor ``f.write(...)`` to a file (a review); a logger's ``info`` does (stderr). Pure."""
    def std(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")

    if _called(call.func) == "print":
        return all(k.arg != "file" or std(k.value) for k in call.keywords)
    if _called(call.func) == "write":
        return isinstance(call.func, ast.Attribute) and std(call.func.value)
    return True


def trainer_metrics(text: str) -> list[tuple[str, int]]:
    """The metrics Hugging Face's ``Trainer`` prints for a file that builds one with an eval
    set: ``eval_loss``, and ``eval_`` + each key of the dicts its ``compute_metrics``
    function (defined in the file) returns, with the ``Trainer(`` call's line (an HF trial:
    "no printed metric found", though the README named ``eval_accuracy``). The Trainer prints
    them as dict lines, and ``log_metrics`` as ``name = value`` lines; both are read. Pure."""
    tree = _parse(text)
    if tree is None:
        return []
    functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    out: list[tuple[str, int]] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and _called(call.func) in ("Trainer", "Seq2SeqTrainer")):
            continue
        kw = {k.arg: k.value for k in call.keywords if k.arg}
        if "eval_dataset" not in kw or (isinstance(kw["eval_dataset"], ast.Constant) and kw["eval_dataset"].value is None):
            continue
        out.append(("eval_loss", call.lineno))
        f = functions.get(kw["compute_metrics"].id) if isinstance(kw.get("compute_metrics"), ast.Name) else None
        returned = [n.value for n in ast.walk(f) if isinstance(n, ast.Return)] if f is not None else []
        out += [(f"eval_{k}", call.lineno) for d in returned if isinstance(d, ast.Dict) for k in _dict_keys(d)]
    return list(dict.fromkeys(out))
