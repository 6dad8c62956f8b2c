"""Numbers typed by people (query parameters, form fields): ASCII digits only.

`str.isdigit()` and a Unicode `\\d` accept far more than 0-9: `"²".isdigit()` is true
and `int("²")` raises (a 500 where a 400 belonged); `int("٣")` is 3 and `float("1_0")`
is 10.0, so text nobody means as a number slipped through as one. These take exactly
what a JSON number or a plain integer looks like, and say None for anything else, so
the caller answers with an error naming its parameter.
"""

from __future__ import annotations

import re

INTEGER = re.compile(r"[+-]?[0-9]{1,30}", re.ASCII)
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
MAX_TEXT = 100  # longer text is no number anyone types


def ascii_int(text: str, signed: bool = True) -> int | None:
    """The integer of plain ASCII digits (optionally signed); None for anything else."""
    if len(text) > MAX_TEXT or not INTEGER.fullmatch(text):
        return None
    if not signed and text[0] in "+-":
        return None
    return int(text)


def ascii_float(text: str) -> float | None:
    """A decimal number as JSON or a person writes it (1, -2.5, 1e3); None for anything
    else (inf, nan, 1_000, Unicode digits). Still check the result is in range."""
    if len(text) > MAX_TEXT or not DECIMAL.fullmatch(text):
        return None
    return float(text)
