"""Text folding for string search: case- and accent-insensitive, Vietnamese-aware.

`Nguyễn` → `nguyen`, `Đức` → `duc`: NFKD decomposition, combining marks dropped, đ/Đ
(which do not decompose) mapped to d, then lower-cased.
"""

from __future__ import annotations

import unicodedata

_EXTRA = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o"})
MAX_INDEXED = 255


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_EXTRA))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())[:MAX_INDEXED]
