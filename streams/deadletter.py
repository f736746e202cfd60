"""Dead-letter records: an input we could not process, its reason and its original bytes.

The builder lives with every other output builder in streams/records.py; these names stay
importable from here for existing callers.
"""

from __future__ import annotations

from .records import DEAD_LETTER_NAMESPACE, MAX_ORIGINAL_BYTES, dead_letter_record

__all__ = ["DEAD_LETTER_NAMESPACE", "MAX_ORIGINAL_BYTES", "dead_letter_record"]
