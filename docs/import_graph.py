"""The import graph of segcli/, drawn from the source (ast; nothing is imported), and its two
rules: arrows between layers point down only, and no module imports itself round a circle.

Every import that runs counts, those inside functions too: an import placed in a function for
start-up time is still an arrow of the design. Imports under `if TYPE_CHECKING:` never run and
are left out (a backend's settings are typed as config.Settings, a dataset item names the
file facts it carries).

    python docs/import_graph.py            # the layer graph, circles and upward arrows; exit 1 on any
    python docs/import_graph.py --modules  # every module-to-module arrow too
    python docs/import_graph.py --dot      # the layer graph in Graphviz dot

tests/test_layers.py runs the same checks (`upward`, `circles`).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "segcli"

# Layers, top first. A module may import its own layer and any layer below it, never one above.
# Layers on the same row are siblings: neither imports the other.
LAYERS: list[tuple[str, ...]] = [
    ("__main__",),  # `python -m segcli`
    ("cli",),
    ("services",),
    ("config",),
    ("backends",),
    ("engine",),
    ("render",),
    ("datasets",),
    ("media",),
    ("core",),
]
RANK = {name: len(LAYERS) - i for i, row in enumerate(LAYERS) for name in row}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _targets(node: ast.AST, here: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from .x import y
        package = here.split(".") if is_package else here.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in known else base)  # `from pkg import module` names the module
    return out


def _running(tree: ast.AST):
    """Every node but those under an `if TYPE_CHECKING:` block."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def edges(known: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """module -> the segcli modules it imports (anywhere in it)."""
    known = known or modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        found: set[str] = set()
        for node in _running(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(node, name, path.name == "__init__.py", known):
                while target and target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]  # `segcli.x.y.z` where z is a name in y
                if target.startswith("segcli") and target in known and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # `segcli` itself (its __init__): no layer


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Each arrow from a module to one in a higher layer, or across siblings."""
    bad = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            a, b = layer(src), layer(dst)
            if a is None or b is None or a == b:
                continue
            if a not in RANK or b not in RANK:
                bad.append(f"{src} -> {dst}: a layer the diagram does not name ({a if a not in RANK else b})")
            elif RANK[b] >= RANK[a]:
                bad.append(f"{src} -> {dst}: {a} may not import {b}")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for src, targets in graph.items():
        a = layer(src)
        if a is None:
            continue
        out.setdefault(a, set()).update(b for b in map(layer, targets) if b is not None and b != a)
    return out


def main(argv: list[str]) -> int:
    graph = edges()
    layers = layer_graph(graph)
    if "--dot" in argv:
        print("digraph segcli {\n  rankdir=TB;")
        for a in sorted(layers, key=lambda n: -RANK.get(n, 0)):
            for b in sorted(layers[a], key=lambda n: -RANK.get(n, 0)):
                print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    print("layers (top first) and what each imports:")
    for row in LAYERS:
        for name in row:
            print(f"  {name:9} -> {', '.join(sorted(layers.get(name, ()), key=lambda n: -RANK.get(n, 0))) or '-'}")
    if "--modules" in argv:
        for src in sorted(graph):
            print(f"{src} -> {', '.join(sorted(graph[src])) or '-'}")
    bad, loops = upward(graph), circles(graph)
    for line in bad:
        print("UPWARD  " + line)
    for group in loops:
        print("CIRCLE  " + " <-> ".join(group))
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} arrows, {len(bad)} upward, {len(loops)} circles")
    return 1 if bad or loops else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
