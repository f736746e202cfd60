"""`greencredit validate|publish|produce|tail`: field-level errors, no PII, all or nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from greencredit.cli import app
from greencredit.cli import events as events_cli
from greencredit.streams.codec import DecodedEvent
from greencredit.streams.errors import BadMagicByte
from greencredit.streams.publish import ReadResult
from tests.conftest import example_events
from tests.factories import example

APPLICATIONS = "greencredit.loan-applications"
APPLICANT = example("loan_application")["applicant"]
RAW_PII = [APPLICANT[k] for k in ("id_card_number", "phone", "email", "bank_card_number")]


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def jsonl(tmp_path: Path, events: list[Any], name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def application(**applicant: Any) -> dict[str, Any]:
    event = example("loan_application")
    event["applicant"].update(applicant)
    return event


@pytest.fixture
def no_publishing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly if the command gets as far as creating a producer."""
    created: list[str] = []

    class Refuse:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            created.append("publisher")
            raise AssertionError("a publisher was created for invalid input")

    monkeypatch.setattr(events_cli, "EventPublisher", Refuse)
    return created


@pytest.mark.parametrize(("name", "topic", "event"), example_events())
def test_every_shipped_example_validates(tmp_path, name, topic, event):
    result = run("validate", topic, str(jsonl(tmp_path, [event], f"{name}.jsonl")))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"topic": topic, "valid": 1}


def test_problem_names_line_and_field_path(tmp_path):
    path = jsonl(tmp_path, [application(), application(), application(phone=None)])
    result = run("validate", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert f"{path}:3: applicant.phone: expected string, got null" in result.stderr
    assert ":1:" not in result.stderr and ":2:" not in result.stderr
    assert "1 of 3 events invalid" in result.stderr


def test_every_problem_of_every_record_is_reported(tmp_path):
    missing = application()
    del missing["currency"]
    wrong = application()
    wrong["credit_profile"]["age_years"] = "36"
    wrong["occurred_at"] = "2026-11-20T09:15:00"  # no offset
    path = jsonl(tmp_path, [missing, application(), wrong])
    result = run("validate", APPLICATIONS, str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert f"{path}:1: currency: required field missing" in lines
    assert f"{path}:3: credit_profile.age_years: expected integer, got string" in lines
    assert any(line.startswith(f"{path}:3: occurred_at: timestamp without") for line in lines)
    assert "2 of 3 events invalid" in result.stderr


def test_json_array_problems_name_the_index(tmp_path):
    path = tmp_path / "events.json"
    bad = application()
    bad["purpose"] = "SPACESHIP"
    path.write_text(json.dumps([application(), bad]), encoding="utf-8")
    result = run("validate", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert f"{path}[1]: purpose: expected one of " in result.stderr
    assert "SPACESHIP" not in result.output + result.stderr


def test_unparseable_line_is_reported_and_the_rest_still_checked(tmp_path):
    path = tmp_path / "events.jsonl"
    good = json.dumps(application())
    wrong = json.dumps(application(email=None))
    path.write_text(f"{good}\n{{not json\n{wrong}\n", encoding="utf-8")
    result = run("validate", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert f"{path}:2: not valid JSON" in result.stderr
    assert f"{path}:3: applicant.email: expected string, got null" in result.stderr


def test_unknown_field_is_an_error_not_silently_dropped(tmp_path):
    event = application()
    event["applicant"]["phon"] = APPLICANT["phone"]
    result = run("validate", APPLICATIONS, str(jsonl(tmp_path, [event])))
    assert result.exit_code == 2
    assert "applicant.phon: unknown field" in result.stderr


def test_errors_never_echo_personal_data(tmp_path):
    # PII in places where a careless message would quote it: wrong types, enum values,
    # unknown field names, a broken JSON line, an invalid event_id.
    phone, email = APPLICANT["phone"], APPLICANT["email"]
    wrong_types = application(phone=int(phone), id_card_number=None)
    as_enum = application()
    as_enum["purpose"] = APPLICANT["bank_card_number"]
    as_key = application()
    as_key["applicant"][email] = "x"
    as_id = application()
    as_id["event_id"] = APPLICANT["id_card_number"]
    path = jsonl(tmp_path, [wrong_types, as_enum, as_key, as_id])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f'{{"phone": "{phone}", \n')
    result = run("validate", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert result.stderr.count(f"{path}:") >= 5
    for value in RAW_PII:
        assert value not in result.output + result.stderr


def test_publish_sends_nothing_when_any_event_is_invalid(tmp_path, no_publishing):
    path = jsonl(tmp_path, [application(), application(phone=None)])
    result = run("publish", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert "nothing was published" in result.stderr
    assert no_publishing == []


def test_produce_is_a_hidden_alias_of_publish(tmp_path, no_publishing):
    path = jsonl(tmp_path, [application(phone=None)])
    result = run("produce", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert "applicant.phone: expected string, got null" in result.stderr
    listed = run("--help").stdout
    assert " publish " in listed and " produce " not in listed


def test_publish_help_says_all_or_nothing():
    text = " ".join(run("publish", "--help").stdout.split())
    assert "All or nothing" in text and "nothing is published" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "greencredit.nope", "x.jsonl"], "unknown topic"),
        (["validate", APPLICATIONS, "/nonexistent/events.jsonl"], "cannot read"),
        (["tail", "greencredit.nope"], "unknown topic"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    result = run("validate", APPLICATIONS, str(path))
    assert result.exit_code == 2
    assert "no events" in result.stderr


def _read_result(event: dict[str, Any] | None, error: Exception | None = None) -> ReadResult:
    decoded = DecodedEvent("greencredit.v1.LoanApplication", 1, 2, event) if event else None
    return ReadResult(APPLICATIONS, 3, 42, b"k", b"raw", decoded, error)  # type: ignore[arg-type]


def test_tail_line_masks_personal_data_and_withholds_bytes():
    event = copy.deepcopy(example("loan_application"))
    event["occurred_at"] = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    event["face_image"] = b"\xff\xd8 jpeg bytes"
    event["customer_id"] = APPLICANT["phone"]  # a lender keying customers by phone number
    line = events_cli._console_line(_read_result(event))
    text = json.dumps(line)
    assert line["partition"] == 3 and line["offset"] == 42
    assert line["event"]["event_id"] == event["event_id"]
    assert line["event"]["occurred_at"] == "2026-11-20T09:15:00.000Z"
    assert line["event"]["applicant"]["phone"] == "138****5678"
    assert line["event"]["face_image"] == f"<{len(event['face_image'])} bytes withheld>"
    for value in RAW_PII:
        assert value not in text


def test_tail_line_for_an_undecodable_message_is_a_scrubbed_error():
    error = BadMagicByte(f"first byte is 0x7b near {APPLICANT['email']}")
    line = events_cli._console_line(_read_result(None, error))
    assert line["error"]["type"] == "BadMagicByte"
    assert "first byte is 0x7b" in line["error"]["reason"]
    assert APPLICANT["email"] not in json.dumps(line)
