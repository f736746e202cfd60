"""JSON-form validation agrees with the codec: nothing it passes is refused when encoded."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.streams.catalog import SchemaCatalog
from greencredit.streams.codec import AvroCodec
from greencredit.streams.errors import CodecError
from greencredit.streams.json_validation import json_form_problems
from greencredit.streams.jsonform import from_json_form
from greencredit.streams.topics import topic
from tests.conftest import example_events

CATALOG = SchemaCatalog()
CODEC = AvroCodec(CATALOG)
EXAMPLES = example_events()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02", "aGVsbG8=", "CNY", "APPROVE"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _codec_accepts(topic_name: str, event: dict[str, Any]) -> bool:
    schema = CATALOG.reader(topic(topic_name).schema)
    try:
        CODEC.encode(topic_name, from_json_form(schema.raw, event))
    except CodecError:
        return False
    return True


def _problems(topic_name: str, event: Any) -> list[str]:
    return [str(p) for p in json_form_problems(CATALOG.reader(topic(topic_name).schema).raw, event)]


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_a_mutated_example_passes_only_if_the_codec_accepts_it(data):
    _, topic_name, original = data.draw(st.sampled_from(EXAMPLES))
    event = copy.deepcopy(original)
    path = data.draw(st.sampled_from(_paths(event)))
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    problems = _problems(topic_name, event)
    if not problems:
        assert _codec_accepts(topic_name, event), "validator passed what the codec refuses"
    if not _codec_accepts(topic_name, event):
        assert problems, "the codec refused an event the validator passed"


@pytest.mark.parametrize(("name", "topic_name", "event"), EXAMPLES)
def test_every_example_is_valid(name, topic_name, event):
    assert _problems(topic_name, event) == []


def test_paths_name_nested_fields_arrays_and_the_envelope():
    event = copy.deepcopy(next(e for n, _, e in EXAMPLES if n == "decision"))
    event["reasons"][0]["code"] = 7
    event["event_id"] = "not-a-uuid"
    event["tenant_id"] = "  "
    problems = _problems("greencredit.decisions", event)
    assert "reasons[0].code: expected string, got integer" in problems
    assert "event_id: expected a UUID string, got a string that is not one" in problems
    assert "tenant_id: must not be blank" in problems


def test_an_event_that_is_not_an_object():
    assert _problems("greencredit.transactions", [1, 2]) == ["(event): expected object, got array"]
