"""Search keys for names: the form a name is stored in beside itself, and a query is put in
before it is compared, so that matching ignores case and diacritics (Nguyễn = Nguyen,
Đ = D) with a plain indexed comparison on any database instead of a function per row."""

from __future__ import annotations

import unicodedata

# Đ/đ carry no combining mark to strip (they are letters of their own in Unicode); Ð/ð
# (eth) are what Vietnamese text converted from legacy encodings (TCVN3, VNI) often holds
# instead of them, so they fold the same way.
LETTERS = str.maketrans({"đ": "d", "ð": "d"})
PN_COMPONENTS = str.maketrans({"^": " "})


def fold(text: str) -> str:
    """``text`` without case, diacritics or repeated whitespace: ``"Nguyễn  Thị Ánh"`` and
    ``"NGUYEN THI ANH"`` both give ``"nguyen thi anh"``. A Vietnamese letter stays one
    character, so a DICOM ``?`` wildcard still stands for one letter; ``*`` and ``?`` pass
    unchanged."""
    # Unicode's compatibility caseless form (D146): casefolding can produce combining marks
    # (İ gives i + dot above) and NFKD can produce capitals (ᴬ gives A), so each runs twice.
    once = unicodedata.normalize("NFKD", unicodedata.normalize("NFD", text).casefold())
    decomposed = unicodedata.normalize("NFKD", once.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.translate(LETTERS).split())


def person_name(value: str) -> str:
    """The search key of a DICOM person name (PN, PS3.5 6.2): its first non-empty component
    group (alphabetic, else ideographic, else phonetic), components as words, folded.
    ``"Nguyễn^Thị Ánh"`` and the query ``"nguyen thi anh"`` give the same key."""
    groups = [g for g in value.split("=") if g.strip(" ^")]
    return fold(groups[0].translate(PN_COMPONENTS)) if groups else ""
