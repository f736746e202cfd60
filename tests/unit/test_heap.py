"""settle_heap: the worker's collector settings once its engine has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from greencredit.agents.heap import settle_heap
from greencredit.settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_freezes_what_is_alive_and_raises_the_young_threshold(restored_gc: None) -> None:
    older, oldest = gc.get_threshold()[1:]
    long_lived = [{"model": i} for i in range(1000)]
    settle_heap(50_000)
    assert gc.get_threshold() == (50_000, older, oldest)
    assert gc.get_freeze_count() >= len(long_lived)


def test_cycles_are_still_collected(restored_gc: None) -> None:
    settle_heap(50_000)

    class Node:
        pass

    first, second = Node(), Node()
    first.other, second.other = second, first  # type: ignore[attr-defined]
    del first, second
    assert gc.collect() >= 2


def test_zero_leaves_the_collector_as_it_is(restored_gc: None) -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    settle_heap(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


@pytest.mark.parametrize("value", ["-1", "10000001", "many"])
def test_the_setting_refuses_what_the_collector_should_not_get(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_GC_YOUNG_THRESHOLD", value)
    with pytest.raises(ValidationError, match="worker_gc_young_threshold"):
        Settings()


def test_the_setting_defaults_to_a_large_young_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKER_GC_YOUNG_THRESHOLD", raising=False)
    assert Settings().worker_gc_young_threshold == 50_000
