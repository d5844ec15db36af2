"""MkDocs hook: the reStructuredText roles of the docstrings (``:func:`name```) shown as their
code span alone in the API reference (mkdocstrings renders the docstrings as Markdown)."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **kwargs: object) -> str:
    """Drop a role's prefix before the code span it marks."""
    return ROLE.sub("", html)
