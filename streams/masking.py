"""Masking of personal data at egress, and keyed pseudonyms for joins.

Four kinds of PII never leave the engine unmasked: ID-card numbers, bank-card
numbers, phone numbers and e-mail addresses. Every mask is idempotent
(masking a masked value returns it unchanged), so layers can mask defensively.
Joins never use masked values (they collide); they use :func:`pseudonym`.
"""

from __future__ import annotations

import hmac
import re

__all__ = [
    "PII_FIELDS",
    "mask_card",
    "mask_email",
    "mask_id_card",
    "mask_phone",
    "mask_record",
    "pseudonym",
    "scrub_text",
]

_STAR = "*"


def _keep_ends(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        # Too short to show anything safely: hide all but the last character.
        return _STAR * max(len(value) - 1, 0) + value[-1:]
    return value[:head] + _STAR * (len(value) - head - tail) + value[-tail:]


def mask_id_card(number: str) -> str:
    """ID-card number: first 6 (region code) and last 4 kept, e.g. 110105********1234."""
    return _keep_ends(number.strip(), 6, 4)


def mask_card(number: str) -> str:
    """Bank-card number (PAN): first 6 (BIN) and last 4 kept, separators dropped."""
    digits = re.sub(r"[\s-]", "", number)
    return _keep_ends(digits, 6, 4)


def mask_phone(number: str) -> str:
    """Phone number: e.g. 13812345678 -> 138****5678; a +country prefix is kept."""
    compact = re.sub(r"[\s()-]", "", number)
    prefix = ""
    if compact.startswith("+"):
        # Keep the country code visible only for the common 11-digit Chinese mobiles.
        match = re.match(r"\+(86)(?=\d{11}$)", compact)
        prefix = f"+{match.group(1)}" if match else "+"
        compact = compact[len(prefix) :]
    if len(compact) >= 11:
        return prefix + _keep_ends(compact, 3, 4)
    # Shorter numbers (landlines, extensions): show even less.
    return prefix + _keep_ends(compact, 2, 2)


def mask_email(address: str) -> str:
    """E-mail: first letter of the local part and the domain, e.g. z***@example.com."""
    local, sep, domain = address.strip().partition("@")
    if not sep:
        return _keep_ends(address, 1, 0)
    return (local[:1] + "***" if local else "***") + "@" + domain


def mask_name(name: str) -> str:
    """Personal name: first character kept, e.g. Zhang Wei -> Z********."""
    stripped = name.strip()
    return stripped[:1] + _STAR * max(len(stripped) - 1, 0)


# Field names (in any of our schemas) that hold PII, and how each is masked.
PII_FIELDS = {
    "id_card_number": mask_id_card,
    "bank_card_number": mask_card,
    "card_number": mask_card,
    "phone": mask_phone,
    "email": mask_email,
    "full_name": mask_name,
}


# Biometric fields are withheld entirely: there is no useful partial view of a face.
BIOMETRIC_FIELDS = frozenset({"face_image", "liveness_frames"})


def _withheld(item: object) -> object:
    if isinstance(item, bytes | bytearray):
        return f"<{len(item)} bytes withheld>"
    if isinstance(item, list):
        return [_withheld(i) for i in item]
    return item


def mask_record(value: object) -> object:
    """Copy of a decoded event with every PII field masked (recursively); idempotent."""
    if isinstance(value, dict):
        return {
            key: PII_FIELDS[key](item)
            if key in PII_FIELDS and isinstance(item, str)
            else _withheld(item)
            if key in BIOMETRIC_FIELDS
            else mask_record(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_record(item) for item in value]
    return value


def pseudonym(value: str, key: bytes, kind: str) -> str:
    """Keyed hash (HMAC-SHA256) of a PII value, for joins and Redis keys.

    `kind` separates name spaces so an ID number and a phone number with the
    same digits never share a pseudonym. Values are normalised (spaces, dashes,
    case) so formatting differences do not split one person into two.
    """
    # Most values have nothing to strip (alphanumeric): skip the regex for them.
    stripped = value if value.isalnum() else _STRIPPED_RE.sub("", value)
    digest = hmac.digest(key, f"{kind}:{stripped.lower()}".encode(), "sha256")
    return f"{kind}_{digest[:16].hex()}"


_STRIPPED_RE = re.compile(r"[\s-]")


# Patterns for free text (error messages, dead-letter reasons, log lines).
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ID_CARD_RE = re.compile(r"(?<![\d*])\d{17}[\dXx](?![\d*])")  # PRC resident ID, 18 chars
_CARD_RE = re.compile(r"(?<![\d*])\d(?:[ -]?\d){12,18}(?![\d*])")  # 13-19 digit PANs
_PHONE_RE = re.compile(r"(?<![\d*])(?:\+\d{1,3}[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?![\d*])")


def scrub_text(text: str) -> str:
    """Mask every ID-card, card, phone number and e-mail address found in free text.

    Used on anything human-readable that leaves the engine (errors, reasons,
    logs), where a value may have been echoed by a library.
    """
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group()), text)
    text = _ID_CARD_RE.sub(lambda m: mask_id_card(m.group()), text)
    text = _PHONE_RE.sub(lambda m: mask_phone(m.group()), text)
    text = _CARD_RE.sub(lambda m: mask_card(m.group()), text)
    return text
