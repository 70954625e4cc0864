"""Strict number fields of procfs text: what the kernel writes, nothing more lenient.

Python's int() also takes signs, blanks, underscores and non-ASCII digits, and refuses
numbers over 4300 digits with a plain ValueError; kernel fields have none of that, so a
field that does is malformed and gets a ParseError.
"""

from __future__ import annotations

import re

from ns_exporter.procfs.errors import ParseError

_DECIMAL = re.compile(rb"[0-9]{1,20}")  # u64 has at most 20 decimal digits
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")  # a 64-bit mask


def unsigned(raw: bytes | str, what: str) -> int:
    """A non-negative decimal field such as a pid, a tick count or an inode."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if not _DECIMAL.fullmatch(data):
        raise ParseError(f"{what}: {data[:40]!r} is not an unsigned decimal number")
    return int(data)


def hex_mask(raw: bytes, what: str) -> int:
    """A 64-bit hexadecimal mask such as CapEff."""
    if not _HEX.fullmatch(raw):
        raise ParseError(f"{what}: {raw[:40]!r} is not a 64-bit hexadecimal mask")
    return int(raw, 16)
