"""FLORES readers, minimal-pair files, synthetic transliteration and word swaps."""

from __future__ import annotations

import re
import string

import numpy as np
import pytest

from repgeom.languages.corpora import member_sentences
from repgeom.languages.pairs import make_minimal_pairs, swap_adjacent_words
from repgeom.languages.readers import (
    find_flores,
    flores_candidates,
    read_flores_file,
    read_minimal_pairs,
)
from repgeom.languages.transliteration import (
    script_group,
    synthetic_code,
    transliterate,
    untransliterate,
)

ENG = ["The cat sat.", "A dog ran home.", "Birds fly south in winter."]
FRA = ["Le chat était assis.", "Un chien a couru.", "Les oiseaux volent au sud."]


def _write(path, lines, newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))


def read_flores(root, split, codes):
    """Each language's sentences as the workflow reads them: the file the plan finds
    (find_flores), read by the member's job (read_flores_file)."""
    return {code: read_flores_file(find_flores(root, split, code)) for code in codes}


def test_read_flores_200_layout(tmp_path):
    _write(tmp_path / "dev" / "eng_Latn.dev", ENG)
    _write(tmp_path / "dev" / "fra_Latn.dev", FRA, newline="\r\n")
    out = read_flores(tmp_path, "dev", ["eng_Latn", "fra_Latn"])
    assert out == {"eng_Latn": ENG, "fra_Latn": FRA}


def test_read_flores_plus_layouts(tmp_path):
    _write(tmp_path / "devtest" / "devtest.eng_Latn", ENG)  # FLORES+ release zip
    _write(tmp_path / "devtest" / "fra_Latn", FRA)  # plain text
    out = read_flores(tmp_path, "devtest", ["eng_Latn", "fra_Latn"])
    assert list(out) == ["eng_Latn", "fra_Latn"]
    assert out["eng_Latn"] == ENG and out["fra_Latn"] == FRA


def test_line_separators_inside_a_sentence_do_not_split(tmp_path):
    lines = ["one\u2028still one", "two\x85still two"]
    _write(tmp_path / "dev" / "x_Latn.dev", lines)
    assert read_flores(tmp_path, "dev", ["x_Latn"])["x_Latn"] == lines


def test_read_flores_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "dev").mkdir()
    table = pa.table({"id": [3, 1, 2], "text": [ENG[2], ENG[0], ENG[1]]})
    pq.write_table(table, tmp_path / "dev" / "eng_Latn.parquet")
    assert read_flores(tmp_path, "dev", ["eng_Latn"])["eng_Latn"] == ENG


def test_missing_language_names_every_path(tmp_path):
    _write(tmp_path / "dev" / "eng_Latn.dev", ENG)
    with pytest.raises(FileNotFoundError) as err:
        read_flores(tmp_path, "dev", ["eng_Latn", "xyz_Latn"])
    msg = str(err.value)
    assert "xyz_Latn" in msg
    for path in flores_candidates(tmp_path, "dev", "xyz_Latn"):
        assert str(path) in msg


def test_wrong_length_language_raises(tmp_path):
    _write(tmp_path / "dev" / "eng_Latn.dev", ENG)
    _write(tmp_path / "dev" / "fra_Latn.dev", FRA[:2])
    files = {c: str(find_flores(tmp_path, "dev", c)) for c in ("eng_Latn", "fra_Latn")}
    entry = {
        "origin": "flores",
        "group": "flores",
        "members": list(files),
        "anchor": files["eng_Latn"],
    }
    assert member_sentences({**entry, "member": "eng_Latn", "file": files["eng_Latn"]}) == ENG
    with pytest.raises(ValueError, match=r"fra_Latn.*2 sentences.*eng_Latn.*3"):
        member_sentences({**entry, "member": "fra_Latn", "file": files["fra_Latn"]})


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("pairs.csv", 'good,bad,x\n"A b, c",B a c,1\nok,bad,2\n'),
        ("crlf.csv", 'good,bad\r\n"A b, c",B a c\r\nok,bad\r\n'),
        ("bom.csv", '\ufeffgood,bad\n"A b, c",B a c\nok,bad\n'),
        ("pairs.tsv", "good\tbad\nA b, c\tB a c\nok\tbad\n"),
        ("pairs.txt", "good;bad\nA b, c;B a c\nok;bad\n"),
        ("pairs.jsonl", '{"good": "A b, c", "bad": "B a c"}\n{"good": "ok", "bad": "bad"}\n'),
    ],
)
def test_read_minimal_pairs(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    assert read_minimal_pairs(path, "good", "bad") == (["A b, c", "ok"], ["B a c", "bad"])


def test_files_not_in_utf8_are_refused_naming_file_and_byte(tmp_path):
    flores = tmp_path / "dev" / "fra_Latn.dev"
    flores.parent.mkdir()
    flores.write_bytes("Le chat était assis.\n".encode("latin-1"))
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(flores))}: byte 8 \(0xe9\) is not valid utf-8"
    ):
        read_flores(tmp_path, "dev", ["fra_Latn"])
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes("good,bad\nnaïve,naïf\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{re.escape(str(pairs))}: byte 11 .*convert this one"):
        read_minimal_pairs(pairs, "good", "bad")


def test_minimal_pairs_quoted_newline(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('good,bad\n"two\nlines",x\u2028y\n', encoding="utf-8")
    assert read_minimal_pairs(path, "good", "bad") == (["two\nlines"], ["x\u2028y"])


def test_minimal_pairs_missing_column_names_found_ones(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("sentence_good,sentence_bad\na,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\['good'\].*sentence_good.*sentence_bad"):
        read_minimal_pairs(path, "good", "sentence_bad")


def test_minimal_pairs_empty_cell(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("g\tb\na\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 1"):
        read_minimal_pairs(path, "g", "b")


@pytest.mark.parametrize("script", ["Cyrl", "Grek"])
def test_transliteration_is_invertible(script):
    rng = np.random.default_rng(0)
    other = "Grek" if script == "Cyrl" else "Cyrl"
    foreign = transliterate("the quick brown fox", other)  # letters of the other script
    alphabet = (
        string.ascii_letters + string.digits + string.punctuation + " \téßçñ€ς\u0301" + foreign
    )
    for _ in range(200):
        text = "".join(rng.choice(list(alphabet), size=int(rng.integers(0, 60))))
        out = transliterate(text, script)
        assert untransliterate(out, script) == text
        assert not any(ch in string.ascii_letters for ch in out)
    assert transliterate(string.ascii_letters, script) != string.ascii_letters
    assert len(set(transliterate(string.ascii_letters, script))) == 52


@pytest.mark.parametrize(("script", "text"), [("Cyrl", "Москва and London"), ("Grek", "α and b")])
def test_transliteration_refuses_target_letters(script, text):
    with pytest.raises(ValueError, match="not be invertible"):
        transliterate(text, script)


def test_transliteration_bad_script():
    with pytest.raises(ValueError, match="script"):
        transliterate("abc", "Arab")


def test_synthetic_labels_and_groups():
    code = synthetic_code("eng_Latn", "Cyrl")
    assert "synthetic" in code
    assert script_group(code) == script_group("eng_Latn") == "eng"


def _one_adjacent_swap(a: list[str], b: list[str]) -> bool:
    if len(a) != len(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and (a[diff[0]], a[diff[1]])
        == (
            b[diff[1]],
            b[diff[0]],
        )
    )


def test_minimal_pairs_differ_by_one_adjacent_swap():
    sentences = [
        "the cat sat on the mat",
        "  spaced   out\twords here ",
        "word",
        "",
        "yes yes yes",
        "yes yes no",
        "中文没有空格",
        "a b",
    ]
    good, bad = make_minimal_pairs(sentences, seed=3)
    assert len(good) == len(bad) == 4  # "word", "", "yes yes yes", the Chinese line skipped
    for g, b in zip(good, bad, strict=True):
        assert g != b
        assert _one_adjacent_swap(g.split(), b.split())
    assert good[1] == "spaced out words here"
    again = make_minimal_pairs(sentences, seed=3)
    assert again == (good, bad)


def test_swap_none_when_no_distinct_neighbours():
    rng = np.random.default_rng(0)
    assert swap_adjacent_words("same same", rng) is None
    assert swap_adjacent_words("solo", rng) is None
    assert swap_adjacent_words("x y", rng) == "y x"


def test_parquet_without_pyarrow_says_so(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "eng_Latn.parquet").write_bytes(b"PAR1")
    with pytest.raises(ImportError, match="pyarrow"):
        read_flores(tmp_path, "dev", ["eng_Latn"])
