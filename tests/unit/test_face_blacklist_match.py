"""The pure blacklist matcher: cosine nearest entry over an in-memory matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from greencredit.infra.face_blacklist import (
    BlacklistMatcher,
    DimensionMismatchError,
    Match,
    normalise_embeddings,
)

D = 16


def unit_rows(n: int, dim: int = D, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def matcher_of(matrix: np.ndarray, threshold: float = 0.5) -> BlacklistMatcher:
    return BlacklistMatcher([f"bl-{i}" for i in range(len(matrix))], matrix, threshold)


def test_exact_entry_matches_itself_with_similarity_one() -> None:
    matrix = unit_rows(50)
    matches = matcher_of(matrix).best_match(matrix[[7, 31]])
    assert [m.entry_id for m in matches if m] == ["bl-7", "bl-31"]
    assert all(m is not None and m.similarity == pytest.approx(1.0, abs=1e-5) for m in matches)


def test_unnormalised_query_is_renormalised() -> None:
    matrix = unit_rows(10)
    (match,) = matcher_of(matrix).best_match(matrix[3] * 42.0)
    assert match is not None
    assert match.entry_id == "bl-3"
    assert match.similarity == pytest.approx(1.0, abs=1e-5)


def test_threshold_is_respected() -> None:
    entry = np.zeros((1, D), dtype=np.float32)
    entry[0, 0] = 1.0
    query = np.zeros((1, D), dtype=np.float32)
    query[0, :2] = [0.8, 0.6]  # cosine 0.8 with the entry
    assert matcher_of(entry, threshold=0.81).best_match(query) == [None]
    (match,) = matcher_of(entry, threshold=0.79).best_match(query)
    assert match == Match("bl-0", pytest.approx(0.8, abs=1e-6))
    shared = matcher_of(entry, threshold=0.79).with_threshold(0.9)
    assert shared.best_match(query) == [None]


def test_empty_blacklist_matches_nothing() -> None:
    empty = BlacklistMatcher([], np.empty((0, 0), dtype=np.float32), threshold=0.5)
    assert empty.best_match(unit_rows(3)) == [None, None, None]
    sized = BlacklistMatcher([], np.empty((0, D), dtype=np.float32), threshold=0.5, dim=D)
    assert sized.best_match(unit_rows(1)) == [None]
    with pytest.raises(DimensionMismatchError):
        sized.best_match(unit_rows(1, dim=D + 1))


def test_dimension_mismatch_is_a_clear_error() -> None:
    with pytest.raises(DimensionMismatchError, match=r"dimension 8 does not match .* 16"):
        matcher_of(unit_rows(5)).best_match(unit_rows(2, dim=8))


@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, D)), np.full((1, D), np.nan), np.ones((2, 3, D)), np.ones((1, 0))],
)
def test_invalid_queries_are_rejected(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        matcher_of(unit_rows(5)).best_match(bad)


def test_invalid_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="threshold"):
        matcher_of(unit_rows(2), threshold=1.5)


finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(
    entries=arrays(np.float32, st.tuples(st.integers(1, 40), st.just(6)), elements=finite),
    queries=arrays(np.float32, st.tuples(st.integers(1, 5), st.just(6)), elements=finite),
    threshold=st.floats(-1.0, 1.0),
)
def test_best_match_equals_brute_force(
    entries: np.ndarray, queries: np.ndarray, threshold: float
) -> None:
    norms = np.linalg.norm(entries.astype(np.float64), axis=1)
    entries = entries[norms > 1e-3]
    queries = queries[np.linalg.norm(queries.astype(np.float64), axis=1) > 1e-3]
    if not len(entries) or not len(queries):
        return
    ids = [f"bl-{i}" for i in range(len(entries))]
    matches = BlacklistMatcher(ids, normalise_embeddings(entries), threshold).best_match(queries)

    for query, match in zip(queries.tolist(), matches, strict=True):
        sims = [_cosine(query, entry) for entry in entries.tolist()]
        best_sim = max(sims)
        if abs(best_sim - threshold) < 1e-4:
            continue  # float32 vs float64 rounding decides; either answer is right
        if best_sim < threshold:
            assert match is None
            continue
        assert match is not None
        assert match.similarity == pytest.approx(best_sim, abs=1e-4)
        # Near-ties may resolve to another entry; its exact similarity must then be the max.
        assert sims[ids.index(match.entry_id)] == pytest.approx(best_sim, abs=1e-4)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
