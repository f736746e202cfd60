"""Derived CO2e factors: an arithmetic expression over named input figures, each with a source.

The taxonomy file states every factor together with the inputs it was derived from and the
expression that combines them, so a reviewer can recompute it. Parsing recomputes the factor
and refuses a file whose stated figure no longer follows from its inputs.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "Derivation",
    "DerivationError",
    "SourcedInput",
    "evaluate",
    "parse_derivation",
    "parse_grade_derivations",
    "parse_zero_claim",
]

# Long enough for any factor in the file; short enough that a pathological string is refused
# before it reaches the parser.
_MAX_EXPRESSION_CHARS: Final = 400
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_OPERATORS: Final = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


class DerivationError(ValueError):
    """A derivation that cannot be trusted; the message says where and why."""


@dataclass(frozen=True)
class SourcedInput:
    """One figure a factor is derived from, with its unit and the ``_sources`` key it came from."""

    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Derivation:
    """``expression`` over ``inputs``; the factor is its value rounded to ``round_to`` places."""

    expression: str
    inputs: Mapping[str, SourcedInput] = field(default_factory=dict)
    round_to: int = 1
    zero_because: str = ""
    # For a purpose-level zero claim: the saving per unit of use under the least favourable
    # sourced inputs, which must not be positive (see parse_zero_claim).
    bound: Derivation | None = None
    bound_unit: str = ""

    def value(self) -> float:
        """The factor this derivation states, rounded as the file states it."""
        values = {name: item.value for name, item in self.inputs.items()}
        return round(evaluate(self.expression, values), self.round_to)


def _eval(node: ast.AST, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body, values)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise DerivationError(f"only numbers may appear as constants, got {node.value!r}")
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise DerivationError(f"{node.id!r} is not one of the inputs")
        return values[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _eval(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Div) and right == 0:
            raise DerivationError("division by zero")
        return _OPERATORS[type(node.op)](left, right)
    raise DerivationError(f"only + - * / and parentheses are allowed, got {ast.dump(node)[:60]}")


def _parse(expression: Any) -> ast.Expression:
    if not isinstance(expression, str) or not expression.strip():
        raise DerivationError(f"expression must be a non-empty string, got {expression!r}")
    if len(expression) > _MAX_EXPRESSION_CHARS:
        raise DerivationError(f"expression is longer than {_MAX_EXPRESSION_CHARS} characters")
    try:
        return ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise DerivationError(f"expression {expression!r} does not parse: {exc.msg}") from exc


def evaluate(expression: str, values: Mapping[str, float]) -> float:
    """Value of an arithmetic ``expression`` (+ - * / and parentheses) over named ``values``."""
    result = _eval(_parse(expression), values)
    if not math.isfinite(result):
        raise DerivationError(f"expression {expression!r} is not finite")
    return result


def _names(expression: str) -> set[str]:
    return {n.id for n in ast.walk(_parse(expression)) if isinstance(n, ast.Name)}


_SYNTAX: Final = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant)
_SYMBOLS: Final = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


def _check_syntax(expression: str) -> None:
    """Refuse anything but arithmetic without evaluating (some inputs may come later)."""
    for node in ast.walk(_parse(expression)):
        if not isinstance(node, _SYNTAX + _SYMBOLS):
            raise DerivationError(f"only + - * / and parentheses are allowed, got {type(node)}")
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            raise DerivationError(f"only numbers may appear as constants, got {node.value!r}")


def _input(raw: Any, where: str, sources: Mapping[str, str]) -> SourcedInput:
    if not isinstance(raw, Mapping) or set(raw) - {"value", "unit", "source", "note"}:
        raise DerivationError(f"{where}: must be an object with value, unit, source (and note)")
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DerivationError(f"{where}.value: must be a finite number, got {value!r}")
    if value < 0:
        raise DerivationError(f"{where}.value: must not be negative, got {value!r}")
    unit, source = raw.get("unit"), raw.get("source")
    if not isinstance(unit, str) or not unit.strip():
        raise DerivationError(f"{where}.unit: must be a non-empty string, got {unit!r}")
    if not isinstance(source, str) or source not in sources:
        raise DerivationError(f"{where}.source: {source!r} is not a key of _sources")
    return SourcedInput(float(value), unit, source)


def _inputs(raw: Any, where: str, sources: Mapping[str, str]) -> dict[str, SourcedInput]:
    if not isinstance(raw, Mapping):
        raise DerivationError(f"{where}: must be an object of named inputs, got {raw!r}")
    parsed = {}
    for name, item in raw.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise DerivationError(f"{where}: {name!r} is not a lower_snake_case name")
        parsed[name] = _input(item, f"{where}.{name}", sources)
    return parsed


def _checked(derivation: Derivation, where: str) -> Derivation:
    """Evaluate once and refuse inputs the expression never reads (they hint at drift)."""
    derivation.value()
    unused = sorted(set(derivation.inputs) - _names(derivation.expression))
    if unused:
        raise DerivationError(f"{where}: input(s) {', '.join(unused)} not used in the expression")
    if not derivation.inputs:
        raise DerivationError(f"{where}: an expression needs at least one sourced input")
    return derivation


def parse_derivation(
    raw: Any, where: str, sources: Mapping[str, str], *, per_grade: bool = False
) -> Derivation:
    """Validate ``{"expression", "inputs", "round_to"}``; every input names a ``_sources`` key.

    With ``per_grade`` the expression may also read inputs that each grade supplies
    (``"per_grade"``, see :func:`parse_grade_derivations`), so it is only checked for syntax.
    """
    allowed = {"expression", "inputs", "round_to"} | ({"per_grade"} if per_grade else set())
    if not isinstance(raw, Mapping) or set(raw) - allowed:
        raise DerivationError(f"{where}: must be an object with keys {sorted(allowed)}")
    round_to = raw.get("round_to", 1)
    if isinstance(round_to, bool) or not isinstance(round_to, int) or not 0 <= round_to <= 9:
        raise DerivationError(f"{where}.round_to: must be an integer 0..9, got {round_to!r}")
    expression = raw.get("expression")
    if not isinstance(expression, str):
        raise DerivationError(f"{where}.expression: must be a string, got {expression!r}")
    try:
        derivation = Derivation(
            expression=expression,
            inputs=MappingProxyType(_inputs(raw.get("inputs", {}), f"{where}.inputs", sources)),
            round_to=round_to,
        )
        if per_grade:
            _check_syntax(expression)  # the grade inputs are not known yet
            return derivation
        return _checked(derivation, where)
    except DerivationError as exc:
        if str(exc).startswith(where):
            raise
        raise DerivationError(f"{where}: {exc}") from exc


def parse_grade_derivations(
    raw: Any, base: Derivation, where: str, sources: Mapping[str, str]
) -> dict[str, Derivation]:
    """Per-grade derivations: the base expression with grade inputs, or a stated zero.

    A grade entry is ``{"inputs": {...}}`` (merged over the base inputs) or
    ``{"zero_because": "..."}`` for grades the factor deliberately credits with nothing.
    """
    if not isinstance(raw, Mapping):
        raise DerivationError(f"{where}: must be an object keyed by grade, got {raw!r}")
    parsed = {}
    for grade, entry in raw.items():
        here = f"{where}.{grade}"
        if isinstance(entry, Mapping) and set(entry) == {"zero_because"}:
            why = entry["zero_because"]
            if not isinstance(why, str) or not why.strip():
                raise DerivationError(f"{here}.zero_because: must say why, got {why!r}")
            parsed[grade] = Derivation("0", {}, base.round_to, why)
            continue
        if not isinstance(entry, Mapping) or set(entry) != {"inputs"}:
            raise DerivationError(f"{here}: must be {{'inputs': ...}} or {{'zero_because': ...}}")
        merged = dict(base.inputs) | _inputs(entry["inputs"], f"{here}.inputs", sources)
        try:
            parsed[grade] = _checked(
                Derivation(base.expression, MappingProxyType(merged), base.round_to), here
            )
        except DerivationError as exc:
            if str(exc).startswith(here):
                raise
            raise DerivationError(f"{here}: {exc}") from exc
    return parsed


def parse_zero_claim(raw: Any, where: str, sources: Mapping[str, str]) -> Derivation:
    """A stated zero: ``{"zero_because": "...", "bound": {"expression", "inputs", "unit"}}``.

    For a purpose whose saving cannot be shown to be positive, the file claims nothing
    instead of leaving the estimate unknown. ``bound`` is the saving per unit of use (per
    km, per passenger-km) under the least favourable sourced inputs; the claim is accepted
    only while that bound is not positive, because a positive lower bound means a factor can
    be derived and must be. As for appliance grades below the market average, no negative
    credit is recorded.
    """
    if not isinstance(raw, Mapping) or set(raw) != {"zero_because", "bound"}:
        raise DerivationError(f"{where}: a zero claim must be {{'zero_because', 'bound'}}")
    why = raw["zero_because"]
    if not isinstance(why, str) or not why.strip():
        raise DerivationError(f"{where}.zero_because: must say why, got {why!r}")
    bound_raw = raw["bound"]
    if not isinstance(bound_raw, Mapping) or "unit" not in bound_raw:
        raise DerivationError(f"{where}.bound: must be an object with a unit")
    unit = bound_raw["unit"]
    if not isinstance(unit, str) or not unit.strip():
        raise DerivationError(f"{where}.bound.unit: must be a non-empty string, got {unit!r}")
    bound = parse_derivation(
        {k: v for k, v in bound_raw.items() if k != "unit"}, f"{where}.bound", sources
    )
    if bound.value() > 0:
        raise DerivationError(
            f"{where}.bound: the least favourable saving is {bound.value()!r} {unit}, above "
            "zero: derive a factor instead of claiming none"
        )
    return Derivation("0", {}, bound.round_to, why, bound, unit)
