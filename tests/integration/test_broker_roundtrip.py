"""Every example event through the real embedded broker; poison messages become dead letters."""

from __future__ import annotations

import pytest

from greencredit.streams.codec import AvroCodec
from greencredit.streams.deadletter import dead_letter_record
from greencredit.streams.errors import BadMagicByte, CorruptBody, TruncatedBody, UnknownSchemaId
from greencredit.streams.jsonform import from_json_form, to_json_form
from greencredit.streams.publish import EventPublisher, read_topic
from greencredit.streams.topics import topic
from tests.conftest import example_events

CODEC = AvroCodec()


def _config(stack):
    return {"bootstrap.servers": stack.kafka}


def test_every_example_survives_the_broker(stack):
    publisher = EventPublisher(_config(stack), CODEC)
    sent: dict[str, list[dict]] = {}
    for _, topic_name, event in example_events():
        native = from_json_form(CODEC.catalog.reader(topic(topic_name).schema).raw, event)
        publisher.publish(topic_name, native)
        sent.setdefault(topic_name, []).append(event)
    publisher.flush()
    for topic_name, events in sent.items():
        results = list(read_topic(_config(stack), topic_name, CODEC, idle_timeout=2.0))
        received = [to_json_form(None, r.event.value) for r in results if r.event is not None]
        for event in events:
            assert event in received, topic_name
        spec = topic(topic_name)
        for result in results:
            if result.event is not None:
                assert result.key == str(result.event.value[spec.key_field]).encode()


@pytest.mark.parametrize(
    ("label", "value", "error"),
    [
        ("bad-magic", b"\x07\x00\x00\x00\x02junk", BadMagicByte),
        ("unknown-id", b"\x00\x00\x00\x27\x10junk", UnknownSchemaId),
        ("truncated-header", b"\x00\x00", TruncatedBody),
    ],
)
def test_poison_message_becomes_a_dead_letter_with_original_bytes(stack, label, value, error):
    source = "greencredit.repayments"
    publisher = EventPublisher(_config(stack), CODEC)
    publisher.publish_raw(source, value, key=label.encode())
    publisher.flush()
    results = [
        r
        for r in read_topic(_config(stack), source, CODEC, idle_timeout=2.0)
        if r.key == label.encode()
    ]
    assert len(results) == 1
    result = results[0]
    assert isinstance(result.error, error)
    letter = dead_letter_record(
        source, result.error, result.raw, result.key, result.partition, result.offset
    )
    publisher.publish("greencredit.dead-letter", letter)
    publisher.flush()
    letters = [
        r.event.value
        for r in read_topic(_config(stack), "greencredit.dead-letter", CODEC, idle_timeout=2.0)
        if r.event is not None
    ]
    mine = [d for d in letters if d["event_id"] == letter["event_id"]]
    assert len(mine) == 1
    assert mine[0]["original_value"] == value
    assert mine[0]["error_type"] == error.__name__
    assert mine[0]["source_topic"] == source


def test_truncated_body_from_the_broker_is_reported(stack):
    _, topic_name, event = next(e for e in example_events() if e[0] == "repayment")
    native = from_json_form(CODEC.catalog.reader(topic(topic_name).schema).raw, event)
    cut = CODEC.encode(topic_name, native)[:-6]
    publisher = EventPublisher(_config(stack), CODEC)
    publisher.publish_raw(topic_name, cut, key=b"truncated-body")
    publisher.flush()
    results = [
        r
        for r in read_topic(_config(stack), topic_name, CODEC, idle_timeout=2.0)
        if r.key == b"truncated-body"
    ]
    assert len(results) == 1
    assert isinstance(results[0].error, TruncatedBody | CorruptBody)
