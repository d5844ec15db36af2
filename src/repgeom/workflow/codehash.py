"""Which repgeom modules a script uses (transitively) and a hash of their source.

A rule passes ``code_hash(script)`` as a param, so editing a library module reruns exactly the
rules whose scripts import it, directly or through other repgeom modules.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/repgeom


def module_file(name: str) -> Path | None:
    """Source file of a repgeom module name, or None if it is not a module of this package."""
    parts = name.split(".")
    if parts[0] != "repgeom":
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_main_block(node: ast.stmt) -> bool:
    """Whether a statement is ``if __name__ == "__main__":`` (its imports run only then)."""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def imported_modules(path: Path, as_module: bool = False) -> set[str]:
    """repgeom modules imported by a source file (``from repgeom.x import y`` counts y too);
    ``as_module``: imported, so its ``if __name__ == "__main__":`` block does not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if as_module:
        tree.body = [stmt for stmt in tree.body if not is_main_block(stmt)]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    with_parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 2)}
    return {n for n in with_parents if module_file(n) is not None}


@cache
def module_closure(path: Path) -> tuple[str, ...]:
    """Every repgeom module a file depends on, transitively, sorted."""
    seen: set[str] = set()
    todo = list(imported_modules(path))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imported_modules(module_file(name), as_module=True) - seen)
    return tuple(sorted(seen))


def code_hash(script: str | Path) -> str:
    """sha256 (16 hex digits) of the sources of every repgeom module a script depends on."""
    h = hashlib.sha256()
    for name in module_closure(Path(script).resolve()):
        h.update(name.encode())
        h.update(module_file(name).read_bytes())
    return h.hexdigest()[:16]
