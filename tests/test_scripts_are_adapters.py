"""Every script under scripts/ is an adapter: it reads snakemake.input/params/output, calls the
library and writes; the logic lives in the library, where it is typed and tested."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
MAX_CODE_LINES = 40
LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def code_lines(source: str) -> int:
    """Lines holding code: comments, blank lines and docstrings (a statement that is only a
    string, wherever it stands) do not count."""
    lines: set[int] = set()
    statement: list[tokenize.TokenInfo] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or tok.type in LAYOUT - {tokenize.NEWLINE}:
            continue
        if tok.type != tokenize.NEWLINE:
            statement.append(tok)
            continue
        if not all(t.type == tokenize.STRING for t in statement):
            for t in statement:
                lines.update(range(t.start[0], t.end[0] + 1))
        statement = []
    return len(lines)


def test_code_lines_leave_out_docstrings_and_comments():
    source = '''"""Module docstring
over two lines."""

import os  # a comment

# a comment line
x = (
    1,
    2,
)
"""a string statement"""


def f():
    """Docstring."""
    return os.sep
'''
    assert code_lines(source) == 1 + 4 + 2


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_script_is_an_adapter(script):
    n = code_lines((SCRIPTS / script).read_text(encoding="utf-8"))
    assert n <= MAX_CODE_LINES, (
        f"scripts/{script} has {n} code lines (at most {MAX_CODE_LINES}): move its logic into "
        "a library function of repgeom (typed, tested) and leave the script reading "
        "snakemake.input/params/output, calling it and writing"
    )
