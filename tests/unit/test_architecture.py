"""The shape of the house (ARCHITECTURE.md, issue 9), held by tests: no import circle, small files, adapters at
the top, no transport details below them, and every error code a client can get listed in the catalogue."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from facewarden import errors

SRC = Path(__file__).resolve().parents[2] / "src" / "facewarden"
ADAPTERS = ("facewarden.api", "facewarden.cli", "facewarden.web")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    return (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING") or (
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every facewarden module this one imports, at any depth except under `if TYPE_CHECKING:`."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("facewarden"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("facewarden"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(path, name, set(mods)) for name, path in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_no_import_circle_anywhere_in_src() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_file_in_src_over_500_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_nothing_below_the_adapters_imports_them() -> None:
    graph = _graph()
    upward = {(m, d) for m, deps in graph.items() if not m.startswith(ADAPTERS)
              for d in deps if d.startswith(ADAPTERS)}
    assert upward == set()


def test_no_http_status_or_url_below_the_adapters() -> None:
    """Errors carry kinds; only the API turns them into statuses and knows its own URLs."""
    offenders = []
    for name, path in _modules().items():
        if name.startswith(ADAPTERS) or name == "facewarden.audit.witness":  # the witness protocol's own client
            continue
        text = path.read_text()
        if re.search(r"status\s*=\s*[1-5]\d\d\b", text) or "/v1/" in text:
            offenders.append(name)
    assert offenders == []


def _raised_codes() -> list[tuple[str, str | None, str]]:
    """(code, class name or None, module) for every `code="..."` keyword and `code = "..."` class attribute."""
    out = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        func = node.func
                        cls = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                        out.append((kw.value.value, cls, name))
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                            and getattr(stmt.targets[0], "id", None) == "code"
                            and isinstance(stmt.value, ast.Constant)):
                        out.append((stmt.value.value, node.name, name))
    return out


def test_every_error_code_is_in_the_catalogue_with_its_kind() -> None:
    codes = _raised_codes()
    assert len(codes) > 100  # the scan sees the use cases' codes
    missing = sorted({c for c, _, _ in codes if c not in errors.CATALOGUE})
    assert missing == []
    wrong_kind = []
    for code, cls_name, module in codes:
        cls = getattr(errors, cls_name or "", None) or getattr(importlib.import_module(module), cls_name or "", None)
        if isinstance(cls, type) and issubclass(cls, errors.FaceWardenError) and \
                errors.CATALOGUE[code][0] is not cls.kind:
            wrong_kind.append((code, cls_name, module))
    assert wrong_kind == []


@pytest.mark.parametrize("cls", [errors.InvalidInput, errors.TooLarge, errors.Gone, errors.RateLimited])
def test_errors_carry_a_kind_and_no_status(cls: type[errors.FaceWardenError]) -> None:
    exc = cls("message", code="x")
    assert exc.code == "x" and isinstance(exc.kind, errors.ErrorKind) and not hasattr(exc, "status")
