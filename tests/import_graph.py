"""Static reading of the project's imports (AST only, nothing is imported): the module graph, its
cycles, and uses of another module's underscored names. tests/test_architecture.py holds the rules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ui", "gan", "style", "common", "weights", "web", "bench", "tools")  # plus app.py
TOP_LEVEL = {*PACKAGES, "app", "tests"}


def module_name(path: Path, root: Path = ROOT) -> str:
    """gan/train/__init__.py -> gan.train; app.py -> app."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files(root: Path = ROOT, with_tests: bool = False) -> dict[str, Path]:
    """Module name -> file, for app.py and every .py under the project's packages (and tests/)."""
    found = {"app": root / "app.py"} if (root / "app.py").is_file() else {}
    for package in (*PACKAGES, *(("tests",) if with_tests else ())):
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass
class ModuleInfo:
    """What one module imports (project modules only) and which underscored names it reaches into."""

    name: str
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # imported project module -> first line
    imported_private: list[tuple[int, str]] = field(default_factory=list)  # (line, "module._name") imported
    attribute_uses: list[tuple[int, str]] = field(default_factory=list)  # (line, "owner._name") in expressions
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> project module it is bound to
    external: set[str] = field(default_factory=set)  # local names bound to third-party modules and names
    external_modules: set[str] = field(default_factory=set)  # third-party modules imported (`gradio`, `torch.nn`)
    defined: set[str] = field(default_factory=set)  # names this module defines, assigns or takes as arguments


class _Reader(ast.NodeVisitor):
    """Collects imports (module level and inside functions alike) and underscored names."""

    def __init__(self, info: ModuleInfo, modules: set[str]) -> None:
        self.info, self.modules = info, modules

    def _base(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = self.info.name if self.info.is_package else self.info.name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        return f"{package}.{node.module}" if node.module else package

    def _edge(self, target: str, line: int) -> None:
        while target and target not in self.modules:
            target = target.rpartition(".")[0]
        if target and target != self.info.name:
            self.info.imports.setdefault(target, line)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            if alias.name.split(".")[0] not in TOP_LEVEL:
                self.info.external.add(local)
                self.info.external_modules.add(alias.name)
                continue
            self._edge(alias.name, node.lineno)
            if any(_is_private(part) for part in alias.name.split(".")):
                self.info.imported_private.append((node.lineno, alias.name))
            self.info.aliases[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._base(node)
        if base.split(".")[0] not in TOP_LEVEL:
            self.info.external.update(alias.asname or alias.name for alias in node.names)
            self.info.external_modules.add(base)
            return
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._edge(full if full in self.modules else base, node.lineno)
            if _is_private(alias.name) or any(_is_private(p) for p in base.split(".")):
                self.info.imported_private.append((node.lineno, full))
            if full in self.modules:
                self.info.aliases[alias.asname or alias.name] = full

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_private(node.attr):
            self.info.attribute_uses.append((node.lineno, f"{_dotted(node.value)}.{node.attr}"))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.info.defined.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.info.defined.add(node.name)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.info.defined.add(node.id)

    def visit_arg(self, node: ast.arg) -> None:
        self.info.defined.add(node.arg)


def _dotted(node: ast.expr) -> str:
    """`a.b.c` for a chain of names, `<expr>` where the chain starts with a call, subscript..."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "<expr>"


def _assigned_attributes(tree: ast.AST) -> set[str]:
    """Attributes a module's classes assign on themselves (`self._x = ...`, `cls._y = ...`): its own."""
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")}


def read_modules(root: Path = ROOT, with_tests: bool = False) -> dict[str, ModuleInfo]:
    """Every project module's imports and underscored-name uses, from its source."""
    files = project_files(root, with_tests)
    modules = set(files)
    infos = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        info = ModuleInfo(name, path.name == "__init__.py")
        _Reader(info, modules).visit(tree)
        info.defined |= _assigned_attributes(tree)
        infos[name] = info
    return infos


def foreign_private_uses(info: ModuleInfo) -> Iterator[tuple[int, str]]:
    """Underscored names `info`'s module takes from another project module: imported by name, reached
    through a project module (`zoo._cache`), or an attribute that the module never defines, assigns
    or receives itself (`trainer._step`: an object of another module's class; `self._x` inherited).
    Names reached through third-party modules (`torch._foreach_add_`) are not the project's business."""
    yield from info.imported_private
    for line, used in info.attribute_uses:
        owner, _, attr = used.rpartition(".")
        head = owner.split(".")[0]
        if head in info.external:
            continue
        if head in info.aliases or attr not in info.defined:
            yield line, used


def graph(infos: dict[str, ModuleInfo]) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    return {name: set(info.imports) for name, info in infos.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module, as a closed path."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(_path_in(component, edges))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _path_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A closed path a -> ... -> a through the component (breadth first from its first module)."""
    start = min(component)
    parents, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for node in frontier:
            for target in sorted(edges[node] & component):
                if target == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if target not in parents:
                    parents[target] = node
                    nxt.append(target)
        frontier = nxt
    return sorted(component)
