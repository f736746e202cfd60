"""Masking at egress: formats, idempotence, free-text scrubbing, pseudonyms."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from greencredit.streams.masking import (
    mask_card,
    mask_email,
    mask_id_card,
    mask_phone,
    mask_record,
    pseudonym,
    scrub_text,
)


def test_formats():
    assert mask_id_card("110105199003071234") == "110105********1234"
    assert mask_card("6222 0212 3456 7890 123") == "622202*********0123"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "+86138****5678"
    assert mask_email("zhang.wei@example.com") == "z***@example.com"


@given(st.from_regex(r"\d{17}[\dX]", fullmatch=True))
def test_id_card_mask_is_idempotent_and_hides_the_middle(number):
    masked = mask_id_card(number)
    assert mask_id_card(masked) == masked
    assert masked[6:-4] == "*" * 8


@given(st.from_regex(r"\d{13,19}", fullmatch=True))
def test_card_mask_is_idempotent(number):
    masked = mask_card(number)
    assert mask_card(masked) == masked
    assert masked[:6] == number[:6] and masked[-4:] == number[-4:]


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_phone_mask_is_idempotent(number):
    masked = mask_phone(number)
    assert mask_phone(masked) == masked
    assert number[3:7] not in masked[3:7]


@given(st.emails())
def test_email_mask_is_idempotent(address):
    masked = mask_email(address)
    assert mask_email(masked) == masked
    assert masked.endswith(address.rsplit("@", 1)[1])


def test_scrub_text_masks_everything_it_finds():
    text = (
        "failed for 110105199003071234 card 6222021234567890123 "
        "phone 13812345678 mail zhang.wei@example.com"
    )
    scrubbed = scrub_text(text)
    for secret in ("110105199003071234", "6222021234567890123", "13812345678", "zhang.wei@"):
        assert secret not in scrubbed
    assert scrub_text(scrubbed) == scrubbed


def test_mask_record_masks_nested_pii_fields():
    record = {
        "applicant": {
            "full_name": "Zhang Wei",
            "phone": "13812345678",
            "email": "a@b.cn",
            "id_card_number": "110105199003071234",
            "bank_card_number": "6222021234567890123",
        },
        "amount": 3,
    }
    masked = mask_record(record)
    assert masked["applicant"]["phone"] == "138****5678"
    assert masked["applicant"]["full_name"] == "Z********"
    assert masked["amount"] == 3
    assert mask_record(masked) == masked


def test_pseudonyms_are_keyed_normalised_and_kind_separated():
    key = b"k1"
    assert pseudonym("138 1234 5678", key, "phone") == pseudonym("13812345678", key, "phone")
    assert pseudonym("13812345678", key, "phone") != pseudonym("13812345678", b"k2", "phone")
    assert pseudonym("13812345678", key, "phone") != pseudonym("13812345678", key, "id")
    assert "13812345678" not in pseudonym("13812345678", key, "phone")


def test_mask_record_withholds_biometric_bytes():
    masked = mask_record({"face_image": b"\xff\xd8" * 10, "liveness_frames": [b"a", b"bb"]})
    assert masked == {
        "face_image": "<20 bytes withheld>",
        "liveness_frames": ["<1 bytes withheld>", "<2 bytes withheld>"],
    }
    assert mask_record(masked) == masked


def _reference_pseudonym(value: str, key: bytes, kind: str) -> str:
    # The definition, spelled out slowly: strip whitespace and dashes, lower-case, HMAC.
    import hashlib
    import hmac
    import re

    normalised = re.sub(r"[\s-]", "", value).lower()
    digest = hmac.new(key, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}_{digest[:32]}"


@given(
    st.text(max_size=30) | st.from_regex(r"[0-9A-Za-z \t\-]{0,24}", fullmatch=True),
    st.binary(min_size=1, max_size=40),
    st.sampled_from(["id", "phone", "device", "card"]),
)
def test_pseudonym_follows_its_definition(value: str, key: bytes, kind: str) -> None:
    assert pseudonym(value, key, kind) == _reference_pseudonym(value, key, kind)
