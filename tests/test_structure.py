"""How the package hangs together, read from its source: no import cycle (lazy imports included; an
``if TYPE_CHECKING:`` block never runs), the SSH library behind the transfer layer only, and each feed
kind a room of its own."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "batchsync"
KIND_MODULES = {"layout", "schemas", "decide", "erp", "outcomes", "kind"}


def _module_name(path: Path) -> str:
    """``kinds/purchase_orders/decide.py`` -> ``kinds.purchase_orders.decide``; a package by its folder."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run: an ``if TYPE_CHECKING:`` block is for the type checker only."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _imports() -> dict[str, set[str]]:
    """Module -> the batchsync modules it imports anywhere it runs (a function's lazy import too), by dotted
    name below ``batchsync``; ``from batchsync.kinds.x import decide`` names the module when there is one."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths if "_data" not in p.parts}
    graph: dict[str, set[str]] = {}
    for path in paths:
        if "_data" in path.parts:
            continue
        found: set[str] = set()
        for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "batchsync":
                base = str(node.module).partition(".")[2]
                named = {f"{base}.{a.name}".lstrip(".") for a in node.names}
                found |= (named & modules) or {base}
            elif isinstance(node, ast.Import):
                found |= {a.name.partition(".")[2] for a in node.names if a.name.startswith("batchsync.")}
        graph[_module_name(path)] = found & modules - {_module_name(path)}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            if found := visit(imported, [*path, module]):
                return found
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _imports()
    assert {"transfer", "sftp", "sources", "pipeline", "kinds.purchase_orders.kind"} <= set(graph)  # it reads all
    assert _cycle(graph) is None


def test_each_feed_kind_is_a_room_of_its_own() -> None:
    """A kind's whole logic in its package; the engine reaches it through the registry only, and no kind
    reaches into another."""
    from batchsync.kinds import KINDS, feed_kind

    graph = _imports()
    for name in KINDS:
        assert {p.stem for p in (PACKAGE / "kinds" / name).glob("*.py")} >= KIND_MODULES
        kind = feed_kind(name)
        assert kind.name == name and kind.layout.kind == name
    rooms = tuple(f"kinds.{k}" for k in KINDS)
    for module, imported in graph.items():
        own = next((r for r in rooms if module == r or module.startswith(r + ".")), None)
        reached = {i for i in imported if i.startswith(rooms)}
        if own is None:
            assert not reached, f"{module} imports a feed kind's modules: {sorted(reached)}"
        else:
            assert all(i.startswith(own) for i in reached), f"{module} reaches into another kind: {sorted(reached)}"


def test_the_engine_has_no_branch_per_kind() -> None:
    """process.py runs every kind the same way: it never names one."""
    source = (PACKAGE / "process.py").read_text(encoding="utf-8")
    from batchsync.kinds import KINDS

    assert not [k for k in KINDS if k in source]


def test_the_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_sftp_source_imports_the_ssh_library() -> None:
    users = sorted(_module_name(p) for p in PACKAGE.rglob("*.py") if "paramiko" in _top_names(p))
    assert users == ["sftp"]


def _top_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names
