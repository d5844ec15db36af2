"""Synthetic transliteration of Latin-script text into other scripts, and language labels.

A fixed letter-for-letter map per script (not phonetic transcription) lets the study compare
scripts offline; every text it makes is synthetic and is labelled so by :func:`synthetic_code`.
"""

from __future__ import annotations

_LATIN = "abcdefghijklmnopqrstuvwxyz"
# Fixed letter-for-letter maps (not phonetic transcription), bijective on a-z and A-Z.
SCRIPT_LETTERS = {
    "Cyrl": "абцдефгхийклмнопщрстувшжыз",
    # 24 common Greek letters plus yot (ϳ) for j and koppa (ϙ) for q; final sigma is not used.
    "Grek": "αβξδεφγηιϳκλμνοπϙρστυθωχψζ",
}


def _tables(script: str) -> tuple[dict[int, str], dict[int, str]]:
    if script not in SCRIPT_LETTERS:
        raise ValueError(f"script must be one of {sorted(SCRIPT_LETTERS)}, got {script!r}")
    lower = SCRIPT_LETTERS[script]
    forward = {}
    for src, dst in zip(_LATIN, lower, strict=True):
        forward[src] = dst
        forward[src.upper()] = dst.upper()
    if len(set(forward.values())) != len(forward):
        raise AssertionError(f"the {script} map is not a bijection")
    fwd = {ord(k): v for k, v in forward.items()}
    inv = {ord(v): k for k, v in forward.items()}
    return fwd, inv


def transliterate(text: str, script: str) -> str:
    """Synthetic transliteration of Latin letters a–z/A–Z into ``script`` ('Cyrl' or 'Grek').

    Each Latin letter maps to one fixed letter of the target script; every other character
    passes through unchanged. Text that already contains one of the 52 target letters is refused
    (ValueError) because its inverse would be ambiguous; with that rule
    ``untransliterate(transliterate(t, s), s) == t`` for every accepted ``t``.
    """
    fwd, inv = _tables(script)
    for pos, ch in enumerate(text):
        if ord(ch) in inv:
            raise ValueError(
                f"text already contains {ch!r} (position {pos}), an output letter of the {script} "
                "map; transliterating it would not be invertible. Transliterate Latin-script text"
            )
    return text.translate(fwd)


def untransliterate(text: str, script: str) -> str:
    """Inverse of :func:`transliterate`: target letters back to Latin, the rest unchanged."""
    _, inv = _tables(script)
    return text.translate(inv)


def synthetic_code(code: str, script: str) -> str:
    """Language label of a synthetic transliteration, e.g. 'eng_Latn-synthetic-Cyrl'."""
    return f"{code}-synthetic-{script}"


def script_group(code: str) -> str:
    """Language part of a FLORES code ('srp' for 'srp_Cyrl' and 'srp_Latn-synthetic-Grek')."""
    return code.split("-", 1)[0].split("_", 1)[0]
