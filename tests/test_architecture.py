"""Architecture rules, checked on the source (AST only: the app is never imported, so this is fast).

1. No import cycle among booking_app modules.
2. No function-level import of a booking_app module (move the shared piece down instead).
3. ui/ and api/ contain no SQL: no sqlalchemy/sqlmodel import, no `rx.session`.
4. No underscore-private name imported or used across modules.
5. Layering: models/, integrations/ and db never import services/api/ui/jobs; services never
   import api/ui/jobs; api and ui never import each other.
6. No file in booking_app/ over 800 lines.

How an import counts (rules 1 and 5): `from pkg import mod` imports pkg/__init__ and mod;
`from pkg.mod import name` and `import pkg.mod` import pkg.mod (a module's own parent packages
are always initialised before it, so they are not edges). Imports under `if TYPE_CHECKING:` do
not run and are ignored.
"""
from __future__ import annotations

import ast
import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "booking_app"
MAX_LINES = 800


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


@functools.cache
def tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_package(name: str) -> bool:
    return name in modules() and modules()[name].name == "__init__.py"


def _absolute(name: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from X import …` names (resolving relative imports)."""
    if not node.level:
        return node.module or ""
    base = name.split(".")
    if not _is_package(name):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _walk(node: ast.AST, in_function: bool = False):
    """Yield (import node, inside a function?) for every import not under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if _type_checking_block(child):
            for sub in child.orelse:
                yield from _walk(ast.Module(body=[sub], type_ignores=[]), in_function)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        yield from _walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                     ast.Lambda)))


def imports(name: str, source: ast.Module | None = None) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, node, inside a function?) for each module `name` imports."""
    out = []
    for node, in_function in _walk(source or tree(name)):
        if isinstance(node, ast.Import):
            out += [(alias.name, node, in_function) for alias in node.names]
            continue
        target = _absolute(name, node)
        out.append((target, node, in_function))
        for alias in node.names:
            if f"{target}.{alias.name}" in modules():
                out.append((f"{target}.{alias.name}", node, in_function))
    return out


def graph() -> dict[str, set[str]]:
    return {name: {target for target, _, in_function in imports(name) if target in modules() and not in_function}
            for name in modules()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (or a self-loop), Tarjan's."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _where(name: str, node: ast.AST) -> str:
    return f"{modules()[name].relative_to(ROOT) if name in modules() else name}:{node.lineno}"


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


# -- 1. cycles ---------------------------------------------------------------------------------

def test_no_import_cycle():
    edges = graph()
    cycles = _cycles(edges)
    report = []
    for members in cycles:
        inside = set(members)
        lines = [f"  {m} -> {', '.join(sorted(edges[m] & inside))}" for m in members]
        report.append(f"cycle of {len(members)} modules:\n" + "\n".join(lines))
    assert not cycles, "import cycles in booking_app/:\n" + "\n".join(report)


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# -- 2. lazy imports ---------------------------------------------------------------------------

def lazy_imports(name: str, source: ast.Module | None = None) -> list[str]:
    return sorted({f"{_where(name, node)}: {ast.unparse(node)}" for target, node, in_function in imports(name, source)
                   if in_function and (target == "booking_app" or target.startswith("booking_app."))})


def test_no_function_level_import_of_booking_app():
    bad = [line for name in modules() for line in lazy_imports(name)]
    assert not bad, "imports inside functions (move the shared piece down a layer):\n" + "\n".join(bad)


# -- 3. no SQL in ui/ and api/ -----------------------------------------------------------------

SQL_PACKAGES = ("sqlalchemy", "sqlmodel")


def test_ui_and_api_contain_no_sql():
    bad = []
    for name in modules():
        if _layer(name) not in ("ui", "api"):
            continue
        for target, node, _ in imports(name):
            if target.split(".")[0] in SQL_PACKAGES:
                bad.append(f"{_where(name, node)} imports {target}")
        for node in ast.walk(tree(name)):
            if (isinstance(node, ast.Attribute) and node.attr == "session"
                    and isinstance(node.value, ast.Name) and node.value.id == "rx"):
                bad.append(f"{_where(name, node)} uses rx.session")
    assert not bad, "SQL in ui/ or api/ (call a service instead):\n" + "\n".join(bad)


# -- 4. private names --------------------------------------------------------------------------

def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def private_uses(name: str, source: ast.Module | None = None) -> list[str]:
    """`from booking_app.x import _name` and `x._name` (x a booking_app module) in module `name`."""
    source = source or tree(name)
    bad = []
    aliases: dict[str, str] = {}  # local name -> the booking_app module it is bound to
    for target, node, _ in imports(name, source):
        if not target.startswith("booking_app"):
            continue
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in modules():
                    aliases[alias.asname or alias.name] = full
                elif _private(alias.name) and target != name:
                    bad.append(f"{_where(name, node)} imports {full}")
        else:
            for alias in node.names:
                if alias.asname and alias.name == target:
                    aliases[alias.asname] = target
    for node in ast.walk(source):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and aliases[node.value.id] != name):
            bad.append(f"{_where(name, node)} uses {aliases[node.value.id]}.{node.attr}")
    return sorted(set(bad))


def test_no_private_names_across_modules():
    bad = [line for name in modules() for line in private_uses(name)]
    assert not bad, "private names used across modules (make them public or move them):\n" + "\n".join(bad)


def test_the_checks_catch_what_they_should():
    source = ast.parse(
        "from booking_app.services.catalog import _int\n"
        "from booking_app.services import availability\n"
        "import booking_app.services.slots as sl\n"
        "def f():\n"
        "    from booking_app.services import bookings\n"
        "    return availability._LOOKAHEAD, sl._Usage, availability.__name__\n"
        "if TYPE_CHECKING:\n"
        "    from booking_app.api import app\n")
    name = "booking_app.services.example"
    assert lazy_imports(name, source) == [f"{name}:5: from booking_app.services import bookings"]
    assert private_uses(name, source) == [
        f"{name}:1 imports booking_app.services.catalog._int",
        f"{name}:6 uses booking_app.services.availability._LOOKAHEAD",
        f"{name}:6 uses booking_app.services.slots._Usage",
    ]
    assert "booking_app.api.app" not in {target for target, _, _ in imports(name, source)}
    assert {"booking_app.services", "booking_app.services.availability"} <= {
        target for target, _, _ in imports(name, source)}


# -- 5. layering -------------------------------------------------------------------------------

FORBIDDEN = {
    "models": {"services", "api", "ui", "jobs"},
    "integrations": {"services", "api", "ui", "jobs"},
    "db": {"services", "api", "ui", "jobs"},
    "services": {"api", "ui", "jobs"},
    "api": {"ui"},
    "ui": {"api"},
}


def test_layers():
    bad = []
    for name in modules():
        forbidden = FORBIDDEN.get(_layer(name), set())
        for target, node, _ in imports(name):
            if target.startswith("booking_app.") and _layer(target) in forbidden:
                bad.append(f"{_where(name, node)} ({_layer(name)}) imports {target}")
    assert not bad, "layering violations:\n" + "\n".join(sorted(set(bad)))


# -- 6. file size ------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [MAX_LINES])
def test_no_file_over_the_line_limit(limit):
    bad = [f"{path.relative_to(ROOT)}: {n} lines" for path in modules().values()
           if (n := len(path.read_text(encoding="utf-8").splitlines())) > limit]
    assert not bad, f"files over {limit} lines (split them):\n" + "\n".join(bad)
