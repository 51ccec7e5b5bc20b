"""A restricted arithmetic evaluator for ``FunctionalDataAxis`` expressions.

HyperSpy stores expressions in sympy syntax (``"a / (x + b)"``, ``"a*x**2 + b"``,
``"exp(-x/tau)"``). They come from files, so they are never passed to ``eval`` or
``sympify``: :func:`parse` turns the text into a tree of Python's ``ast`` nodes (parsing
does not execute anything) and accepts only numbers, names, ``+ - * / **`` (``^`` as
power, as sympy reads it), unary signs and calls of a fixed set of numpy functions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from intake_zspy.errors import ZspyFormatError

__all__ = ["Expression", "parse"]

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "ln": np.log,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "Abs": np.abs,
    "abs": np.abs,
}
_CONSTANTS = {"pi": np.pi, "E": np.e}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: np.negative,
    ast.UAdd: np.positive,
}
_MAX_LENGTH = 1000
_MAX_DEPTH = 50


@dataclass(frozen=True)
class Expression:
    """A parsed expression: call it with values for its variables."""

    text: str
    tree: ast.expr
    variables: frozenset[str]

    def __call__(self, values: Mapping[str, Any]) -> Any:
        missing = self.variables - set(values)
        if missing:
            raise ZspyFormatError(
                f"expression {self.text!r} needs values for {', '.join(sorted(missing))}"
            )
        floats = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        with np.errstate(all="ignore"):
            return _evaluate(self.tree, floats)


def parse(text: str) -> Expression:
    """Parse ``text`` into an :class:`Expression`, refusing anything but arithmetic.

    Raises
    ------
    ZspyFormatError
        The text is not a supported arithmetic expression.
    """
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        raise ZspyFormatError(f"unsupported axis expression {text!r}")
    try:
        # sympy reads ``^`` as power (same precedence as ``**``), so translate the text
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body
        depth = _depth(tree)
    except SyntaxError as exc:
        raise ZspyFormatError(f"cannot parse axis expression {text!r}: {exc.msg}") from exc
    except RecursionError as exc:
        raise ZspyFormatError(f"axis expression {text!r} is nested too deeply") from exc
    if depth > _MAX_DEPTH:
        raise ZspyFormatError(f"axis expression {text!r} is nested too deeply")
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    variables: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in _FUNCTIONS and id(node) not in callees:
                raise ZspyFormatError(f"function {node.id!r} used as a value in {text!r}")
            if node.id not in _FUNCTIONS and node.id not in _CONSTANTS:
                variables.add(node.id)
        elif isinstance(node, ast.Call):
            if not (
                isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS
                and not node.keywords
                and len(node.args) == 1
            ):
                raise ZspyFormatError(
                    f"unsupported function call in axis expression {text!r} "
                    "(one positional argument to a known function)"
                )
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ZspyFormatError(f"unsupported constant in axis expression {text!r}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ZspyFormatError(f"unsupported operator in axis expression {text!r}")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ZspyFormatError(f"unsupported operator in axis expression {text!r}")
        elif not isinstance(node, ast.Load | ast.operator | ast.unaryop):
            raise ZspyFormatError(
                f"unsupported syntax ({type(node).__name__}) in axis expression {text!r}"
            )
    return Expression(text, tree, frozenset(variables))


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(c) for c in children), default=0)


def _evaluate(node: ast.expr, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # parse() admits only numbers
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in values:
            return values[node.id]
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(_evaluate(arg, values) for arg in node.args))
    raise AssertionError(f"unexpected node {node!r}")  # parse() admits nothing else
