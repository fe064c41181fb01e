"""Constraints between knobs: ``[proposer.knobs] constraints``, expressions a proposal
must satisfy, such as karpathy's ``TOTAL_BATCH_SIZE % (DEVICE_BATCH_SIZE * MAX_SEQ_LEN)
== 0``. Names are knob names (``ADAM_BETAS[1]``, ``optimizer.lr``) or constants of the
arena's Python files (``MAX_SEQ_LEN`` from the readonly ``prepare.py``). Evaluated by a
small interpreter of arithmetic, comparisons and boolean logic: nothing is executed. Pure.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError

_BIN: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs, "int": int, "float": float,
                                        "round": round, "log2": math.log2, "sqrt": math.sqrt}


class _Unknown(Exception):
    pass


def _name(node: ast.AST) -> str | None:
    """A knob name written in an expression: ``A``, ``a.b.c``, ``A[1]``, ``a.b[0]``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
        base = _name(node.value)
        return None if base is None else f"{base}[{node.slice.value}]"
    return None


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    name = _name(node)
    if name is not None and name in env:
        return env[name]
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool, str):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, env) for e in node.elts)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
        return _eval(node.value, env)[node.slice.value]
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        a, b = _eval(node.left, env), _eval(node.right, env)
        _bounded(node.op, a, b)
        return _BIN[type(node.op)](a, b)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}[type(node.op)](v) \
            if type(node.op) in (ast.USub, ast.UAdd, ast.Not) else _fail(node)
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, env)
            if type(op) not in _CMP or not _CMP[type(op)](left, right):
                return False if type(op) in _CMP else _fail(node)
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        args = [_eval(a, env) for a in node.args]
        if node.func.id == "round" and len(args) > 1 and isinstance(args[1], int) and abs(args[1]) > 100:
            raise ValueError("round() to more than 100 digits")
        return _FUNCS[node.func.id](*args)
    if name is not None:
        raise _Unknown(name)
    return _fail(node)


_MAX_BITS = 4096  # integers in a constraint stay below 2**4096; texts and tuples below 10,000 items


def _bounded(op: ast.operator, a: Any, b: Any) -> None:
    """Refuse an operation whose result would be huge (a constraint is checked for every
    proposal: it must stay cheap)."""
    if isinstance(op, ast.Pow) and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if abs(b) > 64 or (isinstance(a, int) and isinstance(b, int) and a.bit_length() * max(b, 0) > _MAX_BITS):
            raise ValueError("a power too large")
    if isinstance(op, ast.Mult):
        for seq, n in ((a, b), (b, a)):
            if isinstance(seq, (str, tuple)) and isinstance(n, int) and len(seq) * n > 10_000:
                raise ValueError("a repeated text or tuple too long")
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > _MAX_BITS:
            raise ValueError("a product too large")


def _fail(node: ast.AST) -> Any:
    raise ValueError(f"{ast.unparse(node)!r} is not allowed (arithmetic, comparisons, and/or/not, "
                     f"{', '.join(sorted(_FUNCS))})")


@dataclass(frozen=True)
class Constraint:
    text: str
    tree: ast.Expression

    def holds(self, env: Mapping[str, Any]) -> bool:
        """Whether the values satisfy it (an arithmetic error, such as a division by zero,
        counts as broken)."""
        try:
            return bool(_eval(self.tree, env))
        except (ArithmeticError, ValueError, TypeError, IndexError, _Unknown, MemoryError, RecursionError):
            return False


def parse_constraints(texts: Sequence[str], env: Mapping[str, Any]) -> list[Constraint]:
    """Compile the constraints and check each can be evaluated with the names known now
    (knob values and arena constants), raising ConfigError that says what is wrong."""
    out = []
    for text in texts:
        where = f"[proposer.knobs] constraints: {text!r}"
        if len(text) > 2000:
            raise ConfigError(f"{where[:80]}...: longer than 2000 characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise ConfigError(f"{where} is not an expression ({e.msg})") from None
        except (RecursionError, MemoryError, ValueError):
            raise ConfigError(f"{where} nests too deeply") from None
        try:
            _eval(tree, env)
        except _Unknown as e:
            raise ConfigError(f"{where} names {e.args[0]!r}, which is neither a knob nor a constant of the "
                              "arena's Python files (see `autoresearch knobs`)") from None
        except (ArithmeticError, TypeError, IndexError):
            pass  # a value that breaks it now is reported by the caller
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
        except (RecursionError, MemoryError):
            raise ConfigError(f"{where} nests too deeply or grows too large") from None
        out.append(Constraint(text, tree))
    return out


def broken(constraints: Sequence[Constraint], env: Mapping[str, Any]) -> Constraint | None:
    """The first constraint the values break, or None."""
    return next((c for c in constraints if not c.holds(env)), None)
