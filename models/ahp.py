"""Analytic Hierarchy Process: risk-indicator weights from a lender's pairwise judgements.

A lender says how much more one risk criterion matters than another on Saaty's 1-9
scale. The principal eigenvector of that pairwise matrix gives the weights; the
consistency ratio (CR) says whether the judgements agree with each other well enough
to trust them (CR < 0.10). A hierarchy (goal -> criteria -> sub-criteria, any depth)
composes local weights into global ones. Pure numpy, no I/O.

Document formats (JSON; the lender-config event carries the hierarchy form)::

    {"criteria": ["a", "b"], "matrix": [[1, 3], ["1/3", 1]]}
    {"root": "goal", "nodes": [
        {"name": "goal", "criteria": ["a", "b"], "matrix": [[1, 3], [0.333, 1]]},
        {"name": "b", "criteria": ["b1", "b2"], "weights": {"b1": 2, "b2": 1}}]}

A criterion that is also a node name is an inner node, otherwise a leaf (an indicator).
Keys starting with "_" are comments and ignored.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CONSISTENCY_LIMIT",
    "RANDOM_INDEX",
    "SAATY_SCALE",
    "AhpInconsistencyError",
    "AhpInputError",
    "HierarchyResult",
    "Judgement",
    "PairwiseResult",
    "evaluate_hierarchy",
    "nearest_saaty_value",
    "pairwise_priorities",
    "parse_ahp_document",
    "random_index",
    "total_consistency_ratio",
]

# Saaty's random consistency index RI for n = 1..15 criteria: RANDOM_INDEX[n - 1].
# fmt: off
RANDOM_INDEX: tuple[float, ...] = (
    0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57, 1.59,
)
# fmt: on

CONSISTENCY_LIMIT = 0.10
"""Saaty's acceptance threshold: judgements with CR >= 0.10 are sent back for review."""

SAATY_SCALE: tuple[float, ...] = tuple(
    sorted([1.0 / k for k in range(2, 10)] + [float(k) for k in range(1, 10)])
)
"""Every value a judgement can take on Saaty's scale: 1/9, 1/8, ..., 1/2, 1, 2, ..., 9."""

# Users type reciprocals rounded to three decimals (0.333, 0.167, 0.143, 0.111). The
# worst of those, 0.167 * 6 = 1.002, must pass; a real slip (3 against 0.5) must not.
_RTOL = 5e-3

_FRACTION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?)\s*)?")


class AhpInputError(ValueError):
    """Judgements or a hierarchy that cannot be turned into weights; names the cell or node."""


@dataclass(frozen=True)
class Judgement:
    """One judgement ``matrix[row][col]``: how much ``row_name`` matters next to ``col_name``."""

    row: int
    col: int
    row_name: str
    col_name: str
    value: float
    implied: float
    """The ratio w_row / w_col of the weights derived from all judgements."""
    suggested: float
    """The Saaty value nearest ``implied`` (one step toward it if ``value`` is already it)."""


class AhpInconsistencyError(AhpInputError):
    """Judgements too contradictory to trust (CR >= 0.10).

    ``judgement`` is the one whose change, to the Saaty value the derived weights imply,
    most reduces inconsistency (lambda_max); ``node`` is the hierarchy node (None for a
    single matrix).
    """

    def __init__(
        self, message: str, *, cr: float, judgement: Judgement, node: str | None = None
    ) -> None:
        super().__init__(message)
        self.cr = cr
        self.judgement = judgement
        self.node = node


@dataclass(frozen=True)
class PairwiseResult:
    """Weights and consistency of one pairwise comparison matrix."""

    criteria: tuple[str, ...]
    weights: dict[str, float]
    lambda_max: float
    ci: float
    cr: float
    consistent: bool


@dataclass(frozen=True)
class HierarchyResult:
    """Local, global and leaf weights of a hierarchy, with its consistency.

    ``node_results[name]`` is None for a node given direct weights (no judgements, no CR).
    ``global_weights`` covers the root (1.0), every inner node and every leaf.
    """

    root: str
    local: dict[str, dict[str, float]]
    global_weights: dict[str, float]
    leaf_weights: dict[str, float]
    node_results: dict[str, PairwiseResult | None]
    cr_total: float
    consistent: bool


def random_index(n: int) -> float:
    """Return Saaty's random index RI for an n x n matrix (n = 1..15)."""
    if not 1 <= n <= len(RANDOM_INDEX):
        raise AhpInputError(
            f"{n} criteria: pairwise comparison supports 1 to {len(RANDOM_INDEX)} criteria "
            "(Saaty's random index is tabulated only that far); split them into sub-criteria"
        )
    return RANDOM_INDEX[n - 1]


def nearest_saaty_value(ratio: float) -> float:
    """Round a positive ratio to the nearest value on Saaty's scale (nearest in log space)."""
    target = math.log(ratio)
    return min(SAATY_SCALE, key=lambda s: abs(math.log(s) - target))


def pairwise_priorities(
    criteria: Sequence[str], matrix: Any, *, require_consistency: bool = True
) -> PairwiseResult:
    """Weights of ``criteria`` from their pairwise ``matrix`` (principal eigenvector).

    Raises AhpInputError for a malformed matrix and, unless ``require_consistency`` is
    False, AhpInconsistencyError when CR >= 0.10.
    """
    result, _ = _pairwise(criteria, matrix, "", require_consistency, node=None)
    return result


def evaluate_hierarchy(
    spec: Mapping[str, Any], *, require_consistency: bool = True
) -> HierarchyResult:
    """Local weights per node, global weights down the tree, and CR_total.

    Local weights are the hierarchical single sorting; multiplying them down from the
    root (weight 1) gives the hierarchical total sorting, so leaf weights sum to 1.
    Every pairwise node must have CR < 0.10 and so must CR_total (see
    total_consistency_ratio); otherwise AhpInconsistencyError names the node.
    """
    root, nodes = _parse_hierarchy(spec)
    _check_tree(root, nodes)
    order = _tree_order(root, nodes)
    local: dict[str, dict[str, float]] = {}
    node_results: dict[str, PairwiseResult | None] = {}
    matrices: dict[str, np.ndarray] = {}
    for name in order:
        node = nodes[name]
        where = f"node {name!r}: "
        if node.matrix is not None:
            result, matrices[name] = _pairwise(
                node.criteria, node.matrix, where, require_consistency, node=name
            )
            node_results[name], local[name] = result, dict(result.weights)
        else:
            node_results[name], local[name] = None, _direct_weights(node, where)

    global_weights = {root: 1.0}
    for name in order:  # pre-order: a parent's global weight is known before its children
        for criterion, weight in local[name].items():
            global_weights[criterion] = global_weights[name] * weight
    leaf_weights = {name: w for name, w in global_weights.items() if name not in nodes}

    cr_total = total_consistency_ratio(node_results, global_weights)
    if require_consistency and cr_total >= CONSISTENCY_LIMIT:
        _raise_total_inconsistency(cr_total, node_results, global_weights, matrices)
    consistent = cr_total < CONSISTENCY_LIMIT and all(
        r.consistent for r in node_results.values() if r is not None
    )
    return HierarchyResult(
        root, local, global_weights, leaf_weights, node_results, cr_total, consistent
    )


def total_consistency_ratio(
    node_results: Mapping[str, PairwiseResult | None], global_weights: Mapping[str, float]
) -> float:
    """CR_total = sum_j(w_j * CI_j) / sum_j(w_j * RI_j) over the pairwise nodes j.

    w_j is node j's global weight; nodes with direct weights have no CI and are left
    out. Returns 0 when the denominator is 0 (only nodes of 1-2 criteria, which are
    always consistent). If every node has CR_j < 0.10 then CR_total < 0.10 too (a
    weighted mediant of the node ratios); it is still checked as the textbook criterion.
    """
    numerator = denominator = 0.0
    for name, result in node_results.items():
        if result is not None:
            numerator += global_weights[name] * result.ci
            denominator += global_weights[name] * random_index(len(result.criteria))
    return numerator / denominator if denominator > 0 else 0.0


def parse_ahp_document(
    doc: Any, *, require_consistency: bool = True
) -> PairwiseResult | HierarchyResult:
    """Evaluate a decoded JSON document: a single matrix or a hierarchy (see module doc)."""
    if not isinstance(doc, Mapping):
        raise AhpInputError(f"an AHP document must be a JSON object, got {_json_type(doc)}")
    keys = _public_keys(doc)
    if keys & {"root", "nodes"}:
        return evaluate_hierarchy(doc, require_consistency=require_consistency)
    if keys & {"criteria", "matrix"}:
        _require_keys(doc, {"criteria", "matrix"}, set(), "a single-matrix document")
        return pairwise_priorities(
            doc["criteria"], doc["matrix"], require_consistency=require_consistency
        )
    raise AhpInputError(
        "expected either {criteria, matrix} (one pairwise matrix) or {root, nodes} "
        f"(a hierarchy); got keys {sorted(keys)}"
    )


# --- one pairwise matrix ---------------------------------------------------------


def _pairwise(
    criteria: Any, matrix: Any, where: str, require_consistency: bool, node: str | None
) -> tuple[PairwiseResult, np.ndarray]:
    names = _criteria_names(criteria, where)
    try:
        ri = random_index(len(names))
    except AhpInputError as err:
        raise AhpInputError(f"{where}{err}") from None
    judgements = _judgement_matrix(names, matrix, where)
    weights, lambda_max = _principal_eigenvector(judgements)
    n = len(names)
    # lambda_max >= n for a positive reciprocal matrix; max() drops rounding noise.
    ci = max(0.0, (lambda_max - n) / (n - 1)) if n > 2 else 0.0
    cr = ci / ri if ri > 0 else 0.0
    result = PairwiseResult(
        criteria=names,
        weights={name: float(w) for name, w in zip(names, weights, strict=True)},
        lambda_max=lambda_max,
        ci=ci,
        cr=cr,
        consistent=cr < CONSISTENCY_LIMIT,
    )
    if require_consistency and not result.consistent:
        judgement = _worst_judgement(names, judgements, weights)
        raise AhpInconsistencyError(
            f"{where}inconsistent judgements: CR = {cr:.3f} >= {CONSISTENCY_LIMIT:.2f}; "
            + _revisit_advice(judgement),
            cr=cr,
            judgement=judgement,
            node=node,
        )
    return result, judgements


def _judgement_matrix(names: tuple[str, ...], matrix: Any, where: str) -> np.ndarray:
    """Validate judgements on Saaty's scale; return them as an exactly reciprocal matrix."""
    rows = _judgement_rows(names, matrix, where)
    values = _judgement_values(names, rows, where)
    n = len(names)
    for i in range(n):
        if abs(values[i, i] - 1) > _RTOL:
            raise AhpInputError(
                f"{where}{_cell(i, i, names[i], names[i])} = {_shown(rows[i][i])}; "
                "a criterion compared with itself must be 1"
            )
    for i in range(n):
        for j in range(i + 1, n):
            if abs(values[i, j] * values[j, i] - 1) > _RTOL:
                raise AhpInputError(
                    f"{where}{_cell(i, j, names[i], names[j])} = {_shown(rows[i][j])} but "
                    f"matrix[{j}][{i}] = {_shown(rows[j][i])}; expected {_fmt(1 / values[i, j])}"
                )
    # The entry >= 1 is the one typed on the integer scale (3, not 0.333); rebuilding its
    # mirror as the exact reciprocal keeps rounding out of the eigenvector.
    return np.where(values >= values.T, values, 1.0 / values.T)


def _judgement_rows(names: tuple[str, ...], matrix: Any, where: str) -> list[Any]:
    """The matrix as n rows of n cells (shape only; the values are checked next)."""
    n = len(names)
    rows = matrix.tolist() if isinstance(matrix, np.ndarray) else matrix
    if not _is_list(rows):
        raise AhpInputError(f"{where}matrix must be a list of rows, got {_json_type(rows)}")
    if len(rows) != n:
        raise AhpInputError(
            f"{where}matrix has {len(rows)} rows but there are {n} criteria ({', '.join(names)})"
        )
    for i, row in enumerate(rows):
        if not _is_list(row) or len(row) != n:
            got = f"{len(row)} values" if _is_list(row) else _json_type(row)
            raise AhpInputError(
                f"{where}matrix row {i} ({names[i]}) has {got}, expected {n} values"
            )
    return list(rows)


def _judgement_values(names: tuple[str, ...], rows: list[Any], where: str) -> np.ndarray:
    """Every cell as a positive number on Saaty's scale (1/9 .. 9)."""
    n = len(names)
    values = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            cell = where + _cell(i, j, names[i], names[j])
            value = _to_number(rows[i][j], cell)
            if not math.isfinite(value) or value <= 0:
                raise AhpInputError(f"{cell} = {_shown(rows[i][j])}; judgements must be positive")
            if not 1 / 9 * (1 - _RTOL) <= value <= 9 * (1 + _RTOL):
                raise AhpInputError(
                    f"{cell} = {_shown(rows[i][j])} is outside Saaty's scale; use 1/9 .. 9"
                )
            values[i, j] = value
    return values


def _principal_eigenvector(judgements: np.ndarray) -> tuple[np.ndarray, float]:
    eigenvalues, eigenvectors = np.linalg.eig(judgements)
    k = int(np.argmax(eigenvalues.real))
    # The Perron vector has one sign; eig returns it with an arbitrary one.
    vector = np.abs(eigenvectors[:, k].real)
    return vector / vector.sum(), float(eigenvalues[k].real)


def _worst_judgement(
    names: tuple[str, ...], judgements: np.ndarray, weights: np.ndarray
) -> Judgement:
    """Find the judgement whose move toward the derived weights most lowers lambda_max.

    Each judgement is tried at the Saaty value nearest to what the weights imply (one
    step toward it if already there); at most 105 small eigenproblems, on the error path.
    """
    best: tuple[float, int, int, float] | None = None
    for i, j in zip(*np.triu_indices(len(names), k=1), strict=True):
        suggested = _saaty_step_toward(float(judgements[i, j]), float(weights[i] / weights[j]))
        if suggested is None:
            continue
        trial = judgements.copy()
        trial[i, j], trial[j, i] = suggested, 1.0 / suggested
        _, lambda_max = _principal_eigenvector(trial)
        if best is None or lambda_max < best[0]:
            best = (lambda_max, int(i), int(j), suggested)
    if best is None:
        # Unreachable for an inconsistent matrix: some judgement always differs from w_i/w_j.
        raise AhpInputError("inconsistent judgements, but no single change would help")
    _, row, col, suggested = best
    value, implied = float(judgements[row, col]), float(weights[row] / weights[col])
    return Judgement(row, col, names[row], names[col], value, implied, suggested)


def _saaty_step_toward(value: float, implied: float) -> float | None:
    """Return the scale value nearest ``implied``, or one step from ``value`` toward it."""
    if math.isclose(value, implied, rel_tol=1e-9):
        return None
    suggested = nearest_saaty_value(implied)
    if math.isclose(suggested, value, rel_tol=_RTOL):
        position = SAATY_SCALE.index(suggested) + (1 if implied > value else -1)
        if not 0 <= position < len(SAATY_SCALE):
            return None  # already at 1/9 or 9 and the weights want further still
        suggested = SAATY_SCALE[position]
    return suggested


def _revisit_advice(judgement: Judgement) -> str:
    j = judgement
    return (
        f"revisit {_cell(j.row, j.col, j.row_name, j.col_name)} = {_fmt(j.value)} "
        f"first: the other judgements imply about {j.implied:.2f}; try {_fmt(j.suggested)} "
        f"(and matrix[{j.col}][{j.row}] = {_fmt(1 / j.suggested)})"
    )


# --- hierarchy ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    name: str
    criteria: tuple[str, ...]
    matrix: Any | None
    weights: Any | None


def _parse_hierarchy(spec: Any) -> tuple[str, dict[str, _Node]]:
    if not isinstance(spec, Mapping):
        raise AhpInputError(f"a hierarchy must be a JSON object, got {_json_type(spec)}")
    _require_keys(spec, {"root", "nodes"}, set(), "a hierarchy")
    root, raw_nodes = spec["root"], spec["nodes"]
    if not isinstance(root, str) or not root:
        raise AhpInputError(f"hierarchy root must be a node name, got {_json_type(root)}")
    if not _is_list(raw_nodes) or not raw_nodes:
        raise AhpInputError("hierarchy nodes must be a non-empty list of node objects")
    nodes: dict[str, _Node] = {}
    for index, raw in enumerate(raw_nodes):
        if not isinstance(raw, Mapping):
            raise AhpInputError(f"nodes[{index}] must be an object, got {_json_type(raw)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise AhpInputError(f"nodes[{index}] needs a 'name' (a non-empty string)")
        where = f"node {name!r}: "
        if name in nodes:
            raise AhpInputError(f"duplicate node name {name!r} (nodes[{index}])")
        _require_keys(raw, {"name", "criteria"}, {"matrix", "weights"}, f"node {name!r}")
        has_matrix, has_weights = "matrix" in raw, "weights" in raw
        if has_matrix == has_weights:
            raise AhpInputError(
                f"{where}give exactly one of 'matrix' (pairwise judgements) or 'weights' "
                "(direct weights)"
            )
        nodes[name] = _Node(
            name, _criteria_names(raw["criteria"], where), raw.get("matrix"), raw.get("weights")
        )
    return root, nodes


def _check_tree(root: str, nodes: Mapping[str, _Node]) -> None:
    """Root exists, every criterion has one parent, every node hangs off the root."""
    if root not in nodes:
        raise AhpInputError(f"root {root!r} is not one of the nodes ({', '.join(nodes)})")
    parent: dict[str, str] = {}
    for node in nodes.values():
        for criterion in node.criteria:
            if criterion in parent:
                raise AhpInputError(
                    f"criterion {criterion!r} is listed under both node {parent[criterion]!r} "
                    f"and node {node.name!r}; each criterion needs exactly one parent"
                )
            parent[criterion] = node.name
    if root in parent:
        raise AhpInputError(
            f"root {root!r} is listed as a criterion of node {parent[root]!r} (a cycle)"
        )
    for name in nodes:
        path = [name]
        while path[-1] != root:
            up = parent.get(path[-1])
            if up is None:
                raise AhpInputError(
                    f"node {name!r} is not reachable from root {root!r}: no node lists "
                    f"{path[-1]!r} as a criterion"
                )
            if up in path:
                chain = " -> ".join([*path[path.index(up) :], up])
                raise AhpInputError(
                    f"node {name!r} is in a cycle ({chain}, each a criterion of the next)"
                )
            path.append(up)


def _tree_order(root: str, nodes: Mapping[str, _Node]) -> list[str]:
    """Inner nodes in pre-order, children in the order their parent lists them."""
    order: list[str] = []
    stack = [root]
    while stack:
        name = stack.pop()
        order.append(name)
        stack.extend(c for c in reversed(nodes[name].criteria) if c in nodes)
    return order


def _direct_weights(node: _Node, where: str) -> dict[str, float]:
    raw = node.weights
    if not isinstance(raw, Mapping):
        raise AhpInputError(
            f"{where}weights must be an object criterion -> weight, got {_json_type(raw)}"
        )
    for key in raw:
        if key not in node.criteria:
            raise AhpInputError(
                f"{where}weights has {key!r}, which is not one of its criteria "
                f"({', '.join(node.criteria)})"
            )
    values: dict[str, float] = {}
    for criterion in node.criteria:
        if criterion not in raw:
            raise AhpInputError(f"{where}weights is missing criterion {criterion!r}")
        cell = f"{where}weights[{criterion!r}]"
        value = _to_number(raw[criterion], cell)
        if not math.isfinite(value) or value <= 0:
            raise AhpInputError(f"{cell} = {_fmt(value)}; direct weights must be positive")
        values[criterion] = value
    total = sum(values.values())
    if not math.isfinite(total):
        raise AhpInputError(f"{where}direct weights are too large to add up; rescale them")
    return {criterion: value / total for criterion, value in values.items()}


def _raise_total_inconsistency(
    cr_total: float,
    node_results: Mapping[str, PairwiseResult | None],
    global_weights: Mapping[str, float],
    matrices: Mapping[str, np.ndarray],
) -> None:
    contribution = {
        name: global_weights[name] * r.ci for name, r in node_results.items() if r is not None
    }
    worst = max(contribution, key=lambda name: contribution[name])
    result = node_results[worst]
    if result is None:  # unreachable: contribution only holds pairwise nodes
        raise AhpInputError(f"hierarchy inconsistent overall: CR_total = {cr_total:.3f}")
    weights = np.array([result.weights[c] for c in result.criteria])
    judgement = _worst_judgement(result.criteria, matrices[worst], weights)
    raise AhpInconsistencyError(
        f"hierarchy inconsistent overall: CR_total = {cr_total:.3f} >= "
        f"{CONSISTENCY_LIMIT:.2f}; node {worst!r} contributes most; " + _revisit_advice(judgement),
        cr=cr_total,
        judgement=judgement,
        node=worst,
    )


# --- input checking ------------------------------------------------------------------


def _criteria_names(raw: Any, where: str) -> tuple[str, ...]:
    if not _is_list(raw) or not raw:
        raise AhpInputError(f"{where}criteria must be a non-empty list of names")
    names: list[str] = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not name:
            raise AhpInputError(
                f"{where}criteria[{index}] must be a non-empty string, got {_json_type(name)}"
            )
        if name in names:
            raise AhpInputError(f"{where}criterion {name!r} is listed twice")
        names.append(name)
    return tuple(names)


def _to_number(value: Any, cell: str) -> float:
    """Read a judgement: a JSON number, or a string like "3" or "1/3" as users type them."""
    if isinstance(value, bool):  # JSON true/false would otherwise pass as 1/0
        raise AhpInputError(f"{cell} = {value!r} is not a number")
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if isinstance(value, str):
        match = _FRACTION.fullmatch(value)
        if match is not None:
            numerator = float(match[1])
            denominator = float(match[2]) if match[2] is not None else 1.0
            if denominator > 0:
                return numerator / denominator
        raise AhpInputError(f'{cell} = {value!r} is not a number or a Saaty fraction like "1/3"')
    raise AhpInputError(f"{cell} must be a number, got {_json_type(value)}")


def _require_keys(
    doc: Mapping[str, Any], required: set[str], optional: set[str], what: str
) -> None:
    keys = _public_keys(doc)
    missing = sorted(required - keys)
    if missing:
        raise AhpInputError(f"{what} is missing {', '.join(repr(k) for k in missing)}")
    unknown = sorted(keys - required - optional)
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise AhpInputError(
            f"{what} has unknown key(s) {', '.join(repr(k) for k in unknown)} (expected {allowed}; "
            "prefix comments with '_')"
        )


def _public_keys(doc: Mapping[Any, Any]) -> set[str]:
    """Keys that carry data; "_"-prefixed keys are comments."""
    return {str(k) for k in doc if not str(k).startswith("_")}


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Real):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if _is_list(value):
        return "a list"
    return type(value).__name__


def _cell(i: int, j: int, row_name: str, col_name: str) -> str:
    return f"matrix[{i}][{j}] ({row_name} vs {col_name})"


def _shown(raw: Any) -> str:
    """Show a matrix entry as the user typed it ("1/3", 0.333, 3)."""
    if isinstance(raw, str):
        return repr(raw)
    value = float(raw)
    return str(round(value)) if value.is_integer() else f"{value:.4g}"


def _fmt(value: float) -> str:
    """Write a judgement the way a user would: 3, 1/3, 2.5."""
    if not math.isfinite(value):
        return str(value)
    if value >= 1 and math.isclose(value, round(value), rel_tol=_RTOL):
        return str(round(value))
    if 0 < value < 1 and math.isclose(1 / value, round(1 / value), rel_tol=_RTOL):
        return f"1/{round(1 / value)}"
    return f"{value:.4g}"
