"""The PII scanner used by the fault tests: finds exact raw values, prints only masked ones."""

from __future__ import annotations

from greencredit.streams.masking import mask_record, scrub_text
from tests.factories import application, transaction
from tests.pii_scan import PiiSecrets


def test_finds_each_raw_value_and_reports_it_masked():
    app = application(1)
    secrets = PiiSecrets().add_events([app])
    person = app["applicant"]
    blob = f"x {person['phone']} y {person['email']}".encode()
    findings = secrets.scan(blob, "log")
    assert {f.kind for f in findings} == {"phone", "email"}
    for finding in findings:
        assert finding.masked not in (person["phone"], person["email"])
        assert finding.where == "log"


def test_masked_output_is_clean_and_raw_output_is_not():
    apps = [application(n) for n in range(3)] + [transaction(4)]
    secrets = PiiSecrets().add_events(apps)
    assert len(secrets) >= 13  # 4 kinds x 3 applicants + the card of the transaction
    assert secrets.scan(repr(mask_record(apps)), "masked") == []
    assert secrets.scan(scrub_text(repr(apps)), "scrubbed") == []
    raw = secrets.scan(repr(apps), "raw")
    assert {f.kind for f in raw} == {"id_card", "bank_card", "phone", "email"}


def test_separators_do_not_hide_a_number():
    secrets = PiiSecrets()
    secrets.add("phone", "+86 139-1234-5678")
    assert secrets.scan("call +8613912345678", "t")
    assert secrets.scan("phone=+86 139-1234-5678", "t")


def test_short_values_are_not_searched():
    secrets = PiiSecrets()
    secrets.add("phone", "123")
    assert len(secrets) == 0 and secrets.scan("123123", "t") == []
