"""Cheaper forms of per-application helpers give exactly what the plain forms gave."""

from __future__ import annotations

import dataclasses
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.models import application_checks as checks
from greencredit.models.green import IntegrityState

# Mostly ASCII with separators, control, format and wide characters mixed in.
_TEXT = st.text(
    st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x7F),
        st.sampled_from(" \t\n-\u00a0\u200b\u202e\u2028\u3000\ufeff\x7f\x85"),
        st.characters(),
    ),
    max_size=40,
)


@settings(max_examples=2000)
@given(_TEXT)
def test_character_classes_match_the_per_character_tests(text: str) -> None:
    assert checks._invisible(text) == any(unicodedata.category(c) in ("Cc", "Cf") for c in text)
    assert checks._printable_ascii(text) == all(" " <= c <= "~" for c in text)
    plain_id = all("!" <= c <= "~" for c in text)
    assert (checks._opaque_id(text) != "not printable ASCII without spaces") == (
        not text or len(text) > checks.MAX_ID_CHARS or plain_id
    )


@given(
    st.text(min_size=1, max_size=10),
    st.integers(1, 10**12),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_integrity_state_dict_is_asdicts(
    loan_id: str, principal: int, spent: int, flag: bool
) -> None:
    state = IntegrityState(loan_id, "solar", principal, spent, spent // 2, flag, not flag)
    assert state.to_dict() == dataclasses.asdict(state)
    assert list(state.to_dict()) == list(dataclasses.asdict(state))
    assert IntegrityState.from_dict(state.to_dict()) == state
