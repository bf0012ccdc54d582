"""Small English helpers for messages: "1 error" / "2 errors", "an address", "a union"."""

from __future__ import annotations

#: Words that begin with a vowel letter but the sound of "y" or "w" ("a union").
_CONSONANT_SOUNDS = ("uni", "use", "usu", "uti", "ura", "eu", "one", "once")
#: Words that begin with a silent "h" ("an hour").
_VOWEL_SOUNDS = ("hour", "honest", "honour", "heir")


def plural(count: int, word: str, many: str | None = None) -> str:
    """``plural(1, "error")`` -> "1 error"; ``plural(41000, "error")`` -> "41,000 errors"."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def article(word: str) -> str:
    """The indefinite article for `word`: "an" before a vowel sound, else "a"."""
    lower = word.lower().lstrip("'\"`")
    if lower.startswith(_VOWEL_SOUNDS):
        return "an"
    if lower.startswith(_CONSONANT_SOUNDS):
        return "a"
    return "an" if lower[:1] in ("a", "e", "i", "o", "u") else "a"


def with_article(word: str) -> str:
    """``with_article("upazila_office")`` -> "an upazila_office"; "a union"."""
    return f"{article(word)} {word}"
