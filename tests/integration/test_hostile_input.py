"""Hostile input against one running worker: garbage, broken Avro, absurd values, unicode
tricks, injection-looking strings, a 50 MB photo. Each gets an answer with a reason (a
dead letter, or the decision the engine documents), good events around them are all
decided, the worker stays up, and no raw PII of the inputs reaches an output or the log.
"""

from __future__ import annotations

import copy
import io
import itertools
import random
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import KafkaError, Message, Producer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from greencredit.infra.endpoints import Endpoints
from greencredit.streams.codec import AvroCodec
from greencredit.streams.deadletter import MAX_ORIGINAL_BYTES
from greencredit.streams.errors import CodecError
from greencredit.streams.topics import TOPICS
from tests.factories import application, example, native, transaction
from tests.integration.conftest import Worker
from tests.pii_scan import PiiSecrets, raw_messages

APPLICATIONS = "greencredit.loan-applications"
DECISIONS = "greencredit.decisions"
DEAD_LETTER = "greencredit.dead-letter"
ALERTS = "greencredit.fraud-alerts"
DEVICES = "greencredit.device-signals"
CODEC = AvroCodec()
_numbers = itertools.count(40_000)  # unique application numbers across the module
_published: list[dict[str, Any]] = []  # every decodable event sent: the PII to look for


@dataclass
class Case:
    """One input and the answer the engine documents for it."""

    label: str
    topic: str
    value: bytes | None
    dead: str | None = None  # expected dead-letter error_type ...
    reason: str = ""  # ... and a part of its reason
    decided: Callable[[dict[str, Any]], bool] | None = None  # or: a decision passing this
    application_id: str = ""
    alert_for: str = ""  # or: a fraud alert raised by this source event id
    position: tuple[int, int] = (-1, -1)  # (partition, offset) once published


@pytest.fixture(scope="module")
def worker(fresh_stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker for the whole module: it has to survive everything sent to it."""
    running = Worker(fresh_stack, tmp_path_factory.mktemp("hostile"), "hostile")
    running.start()
    try:
        running.wait_assigned()
        yield running
    finally:
        running.stop()


def _codec_error(value: bytes | None, topic: str) -> str | None:
    """The codec's verdict: the error type a message must be dead-lettered with, if any."""
    try:
        CODEC.decode(value, topic)
    except CodecError as exc:
        return exc.error_type
    return None


def _unchecked(topic: str, record: dict[str, Any]) -> bytes:
    """Wire-format bytes of a record the codec's validation would refuse to encode."""
    return CODEC.encode(topic, record, validate=False)


def _good() -> Case:
    app = application(next(_numbers))
    _published.append(app)
    return Case(
        f"good {app['application_id']}",
        APPLICATIONS,
        CODEC.encode(APPLICATIONS, app),
        decided=lambda d: True,
        application_id=app["application_id"],
    )


def _decided_app(label: str, check: Callable[[dict[str, Any]], bool], **changes: Any) -> Case:
    app = application(next(_numbers), **changes)
    _published.append(app)
    value = _unchecked(APPLICATIONS, app)
    return Case(label, APPLICATIONS, value, decided=check, application_id=app["application_id"])


def _invalid_app(label: str, reason: str, **changes: Any) -> Case:
    app = application(next(_numbers), **changes)
    _published.append(app)
    return Case(label, APPLICATIONS, _unchecked(APPLICATIONS, app), "InvalidEvent", reason)


def _garbage(label: str, topic: str, value: bytes | None, reason: str = "") -> Case:
    error = _codec_error(value, topic)
    assert error is not None, f"{label} must not decode"
    return Case(label, topic, value, error, reason)


def _timestamp_beyond_datetime() -> bytes:
    """A LoanApplication whose occurred_at (a long) is past what any datetime can hold."""
    reader = CODEC.catalog.reader("greencredit.v1.LoanApplication")
    schema = copy.deepcopy(reader.raw)
    for field in schema["fields"]:
        if field["name"] == "occurred_at":
            field["type"] = "long"
    app = application(next(_numbers))
    app["occurred_at"] = 2**62
    schema_id = CODEC.ids.id_for(f"{APPLICATIONS}-value", reader)
    buffer = io.BytesIO(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), app)
    return buffer.getvalue()


def _device_signal(**changes: Any) -> dict[str, Any]:
    event = example("device_signal")
    event["occurred_at"] = datetime.now(UTC).isoformat()
    event.update(changes)
    return native("greencredit.v1.DeviceSignal", event)


def _codes(decision: dict[str, Any]) -> set[str]:
    return {r["code"] for r in decision["reasons"]}


def _hand_written() -> list[Case]:
    rng = random.Random(9)
    valid = CODEC.encode(APPLICATIONS, application(next(_numbers)))
    huge_photo = rng.randbytes(50 * 1024 * 1024)
    future_txn = transaction(next(_numbers), occurred_at="9999-12-31T23:59:59+00:00")
    emulator = _device_signal(
        event_id=str(uuid.uuid4()), device_id=f"dev-hostile-{next(_numbers)}", is_emulator=True
    )
    _published.append(future_txn)
    return [
        _garbage("random bytes", APPLICATIONS, rng.randbytes(64)),
        _garbage("truncated Avro", APPLICATIONS, valid[: len(valid) // 2]),
        _garbage("unknown schema id", APPLICATIONS, b"\x00\x00\x00\x27\x0f" + valid[5:]),
        _garbage(
            "valid Avro of the wrong schema",
            APPLICATIONS,
            CODEC.encode("greencredit.transactions", transaction(next(_numbers))),
            "carries greencredit.v1.LoanApplication",
        ),
        _garbage("empty value", APPLICATIONS, b""),
        _garbage("tombstone", APPLICATIONS, None),
        _garbage("3 MB of noise", APPLICATIONS, rng.randbytes(3_000_000), "cut to its first"),
        _garbage("timestamp past year 9999", APPLICATIONS, _timestamp_beyond_datetime()),
        _invalid_app("negative amount", "requested_amount_minor", requested_amount_minor=-5),
        _invalid_app("zero amount", "requested_amount_minor", requested_amount_minor=0),
        _invalid_app(
            "overflowing amount", "requested_amount_minor", requested_amount_minor=2**63 - 1
        ),
        _invalid_app("overflowing term", "term_months", term_months=2**31 - 1),
        _invalid_app("negative income", "monthly_income_minor", monthly_income_minor=-1),
        _invalid_app(
            "NaN in ESG",
            "esg",
            esg={
                "energy_intensity_kwh_per_10k_revenue": float("nan"),
                "renewable_share": None,
                "certifications": [],
                "environmental_violations_3y": None,
            },
        ),
        _invalid_app("occurred in year 9999", "occurred_at", occurred_at="9999-12-31T23:59:59Z"),
        _invalid_app("event id not a UUID", "event_id", event_id="'; DROP TABLE decisions;--"),
        _invalid_app("1 MB name", "full_name", applicant={"full_name": "\u5f20" * 1_000_000}),
        _invalid_app("100 kB customer id", "customer_id", customer_id="c" * 100_000),
        _invalid_app(
            "RTL override in name", "full_name", applicant={"full_name": "\u202eLI ZHANG"}
        ),
        _invalid_app(
            "zero-width space in ID number",
            "id_card_number",
            applicant={"id_card_number": "110105\u200b199003071231"},
        ),
        _invalid_app(
            "full-width digits in phone",
            "phone",
            applicant={"phone": "".join(chr(0xFF10 + int(d)) for d in "13912345678")},
        ),
        _invalid_app("id with a space and SQL", "customer_id", customer_id="cust-1' OR '1'='1"),
        _decided_app(
            "homoglyphs in name (letters are letters)",
            lambda d: True,
            applicant={"full_name": "T\u0435st P\u0435rs\u043en"},  # Cyrillic e and o
        ),
        _decided_app(
            "SQL in name",
            lambda d: True,
            applicant={"full_name": "Robert'); DROP TABLE students;--"},
        ),
        _decided_app(
            "script in e-mail",
            lambda d: True,
            applicant={"email": "<script>alert(1)</script>@example.com"},
        ),
        _decided_app(
            "quotes in customer id, echoed byte for byte",
            lambda d: d["customer_id"] == "cust-'\"<b>{{7*7}}</b>",
            customer_id="cust-'\"<b>{{7*7}}</b>",
        ),
        _decided_app(
            "50 MB face image",
            lambda d: d["decision"] == "REVIEW" and "FACE_IMAGE_TOO_LARGE" in _codes(d),
            face_image=huge_photo,
        ),
        _garbage("random bytes on transactions", "greencredit.transactions", rng.randbytes(40)),
        Case(
            "transaction dated year 9999",
            "greencredit.transactions",
            _unchecked("greencredit.transactions", future_txn),
            "ProcessingError",
            "OverflowError",
        ),
        # A bad and a good device signal back to back (one batch, as a rule): the bad one
        # is dead-lettered, the good one still raises its alert.
        Case(
            "negative SIM age on a device signal",
            DEVICES,
            _unchecked(DEVICES, _device_signal(sim_change_age_hours=-5)),
            "ProcessingError",
            "sim_change_age_hours",
        ),
        Case(
            "an emulator right after it",
            DEVICES,
            CODEC.encode(DEVICES, emulator),
            alert_for=emulator["event_id"],
        ),
    ]


def _publish(endpoints: Endpoints, cases: list[Case]) -> None:
    """Produce each case's raw bytes; record where the broker put it."""
    producer = Producer(
        {
            "bootstrap.servers": endpoints.kafka,
            "message.max.bytes": 64 * 1024 * 1024,  # room for the 50 MB photo
            "enable.idempotence": False,
        }
    )
    failures: list[str] = []

    def on_delivery(case: Case) -> Callable[[KafkaError | None, Message], None]:
        def done(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(f"{case.label}: {error.str()}")
            else:
                case.position = (message.partition() or 0, message.offset() or 0)

        return done

    for case in cases:
        producer.produce(
            case.topic, value=case.value, key=b"hostile", on_delivery=on_delivery(case)
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and failures == [], failures


def _outcomes(endpoints: Endpoints) -> tuple[dict[str, list[dict]], dict[tuple, list[dict]]]:
    """Decisions by application id (alerts by source event id); dead letters by position."""
    decisions: dict[str, list[dict[str, Any]]] = {}
    letters: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for message in raw_messages(endpoints.kafka, [DECISIONS, ALERTS, DEAD_LETTER]):
        record = CODEC.decode(message.value, message.topic).value
        if message.topic == DECISIONS:
            decisions.setdefault(record["application_id"], []).append(record)
        elif message.topic == ALERTS:
            decisions.setdefault(f"alert:{record['source_event_id']}", []).append(record)
        else:
            where = (record["source_topic"], record["source_partition"], record["source_offset"])
            letters.setdefault(where, []).append(record)
    return decisions, letters


def _answered(case: Case, decisions: dict, letters: dict) -> bool:
    # A dead letter answers any case (the assertions then check it was the expected answer).
    if (case.topic, *case.position) in letters:
        return True
    if case.alert_for:
        return f"alert:{case.alert_for}" in decisions
    return case.application_id in decisions


def _await_answers(endpoints: Endpoints, worker: Worker, cases: list[Case]) -> tuple[dict, dict]:
    deadline = time.monotonic() + 120
    while True:
        decisions, letters = _outcomes(endpoints)
        waiting = [c.label for c in cases if not _answered(c, decisions, letters)]
        if not waiting:
            return decisions, letters
        assert worker.alive(), f"worker died:\n{worker.log_tail()}"
        assert time.monotonic() < deadline, f"no answer for {waiting[:5]} ({len(waiting)})"
        time.sleep(0.5)


def _assert_answers(cases: list[Case], decisions: dict, letters: dict) -> None:
    for case in cases:
        letter_at = letters.get((case.topic, *case.position))
        if case.dead is None:
            assert letter_at is None, f"{case.label}: dead-lettered {letter_at}"
        if case.dead is not None:
            # Redeliveries repeat the same dead-letter id: one distinct letter per input.
            distinct = {r["event_id"]: r for r in letters[(case.topic, *case.position)]}
            assert len(distinct) == 1, case.label
            [letter] = distinct.values()
            assert letter["error_type"] == case.dead, (case.label, letter["error_type"])
            assert letter["reason"] and case.reason in letter["reason"], (case.label, letter)
            if case.value is not None:
                assert letter["original_value"] == case.value[:MAX_ORIGINAL_BYTES], case.label
        elif case.alert_for:
            [alert] = {a["event_id"]: a for a in decisions[f"alert:{case.alert_for}"]}.values()
            assert alert["source"] == "DEVICE_SIGNAL", case.label
        else:
            distinct = {d["event_id"]: d for d in decisions[case.application_id]}
            assert len(distinct) == 1, case.label
            [decision] = distinct.values()
            assert case.decided is not None and case.decided(decision), (case.label, decision)


def _interleaved(hostile: list[Case]) -> list[Case]:
    cases = [_good()]
    for case in hostile:
        cases += [case, _good()]
    return cases


@pytest.fixture(scope="module")
def hand_written(fresh_stack: Endpoints, worker: Worker) -> tuple[list[Case], dict, dict]:
    """The hand-written cases, each between two good applications, and their answers."""
    cases = _interleaved(_hand_written())
    _publish(fresh_stack, cases)
    return cases, *_await_answers(fresh_stack, worker, cases)


def test_hand_written_hostile_inputs_each_get_a_reason(hand_written, worker):
    cases, decisions, letters = hand_written
    _assert_answers(cases, decisions, letters)
    assert worker.alive() and worker.health() is not None


_KNOWN_IDS = [1, 2, 3, 6, 7, 16, 19]
_VALID = CODEC.encode(APPLICATIONS, application(39_999))


def _cut(at: int) -> bytes:
    return _VALID[: at % len(_VALID)]


hostile_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda schema_id, body: b"\x00" + schema_id.to_bytes(4, "big") + body,
        st.sampled_from(_KNOWN_IDS) | st.integers(0, 2**32 - 1),
        st.binary(max_size=300),
    ),
    st.builds(_cut, st.integers(0, 10**6)),
)


@settings(
    max_examples=4,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example costs seconds
    suppress_health_check=[HealthCheck.too_slow],
)
@given(payloads=st.lists(hostile_bytes, min_size=8, max_size=8))
def test_generated_garbage_is_dead_lettered_between_good_events(fresh_stack, worker, payloads):
    hostile = []
    for value in payloads:
        error = _codec_error(value, APPLICATIONS)
        if error is not None:
            hostile.append(Case("generated", APPLICATIONS, value, error))
            continue
        # It decodes (zeros make a valid empty record): the checks must then refuse it, or
        # it is an application like any other.
        event = CODEC.decode(value, APPLICATIONS).value
        _published.append(event)
        hostile.append(Case("generated, decodable", APPLICATIONS, value, "InvalidEvent"))
    cases = _interleaved(hostile)
    _publish(fresh_stack, cases)
    decisions, letters = _await_answers(fresh_stack, worker, cases)
    _assert_answers(cases, decisions, letters)
    assert worker.alive()


def test_no_output_and_no_log_line_carries_raw_pii(fresh_stack, worker, hand_written):
    """After the tests above: outputs, dead-letter reasons and the worker's log are clean.

    Dead letters keep the original bytes on purpose (a restricted topic, for replay), so
    only their reason and metadata fields are scanned here.
    """
    secrets = PiiSecrets().add_events(_published)
    assert len(secrets) >= 20
    outputs = [t.name for t in TOPICS if t.direction == "output" and t.name != DEAD_LETTER]
    findings = []
    for message in raw_messages(fresh_stack.kafka, outputs):
        findings += secrets.scan(message.value, f"{message.topic}@{message.offset}")
    letters = 0
    for message in raw_messages(fresh_stack.kafka, [DEAD_LETTER]):
        record = CODEC.decode(message.value, DEAD_LETTER).value
        metadata = f"{record['error_type']} {record['reason']} {record['source_topic']}"
        findings += secrets.scan(metadata, f"dead-letter reason @{message.offset}")
        letters += 1
    findings += secrets.scan(Path(worker.log_path).read_bytes(), "worker log")
    assert letters > 0
    assert findings == []
