"""Remove invisible junk that PDF producers and editors leave in text.

pdfium reports some hyphens as U+FFFE; Word leaves BOMs and soft hyphens in
metadata. None of it is meant to be read, and it splits words for full-text
search and the embedder, so titles and chunk text drop it.
"""

from __future__ import annotations

import re

# Noncharacters (U+FDD0-FDEF and the last two code points of every plane), BOM /
# zero-width no-break space, soft hyphen, zero-width space, word joiner, and C0/C1
# controls other than tab and newlines. ZWJ/ZWNJ stay: scripts and emoji need them.
_JUNK = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ufdd0-\ufdef"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
    + "]"
)


def strip_junk(text: str) -> str:
    """`text` without noncharacters, BOMs, soft hyphens and stray control characters."""
    return _JUNK.sub("", text)
