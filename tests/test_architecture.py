"""The house rules that a reader of the code can check: no import cycles, engines apart, public boundaries.

All read the sources' syntax trees (tests/import_graph.py): nothing is imported, so they take well
under a second. Function-level imports count like module-level ones.
"""

from __future__ import annotations

import re
import textwrap

from tests.import_graph import ROOT, ModuleInfo, cycles, foreign_private_uses, graph, read_modules

ENGINES = ("gan", "style")
UI_FRAMEWORKS = ("gradio", "gradio_client", "spaces")
# Not a project module's private name: the marker Gradio's MCP server reads on a handler (what its public
# gr.mcp.tool decorator sets), written by ui/forms.py to keep session-bound endpoints off the tool list.
GRADIO_PROTOCOL = {("ui.forms", "target._mcp_type")}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_import_graph_has_no_cycles():
    found = cycles(graph(read_modules(ROOT)))
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def test_cycle_finder_names_the_cycle_function_level_imports_included(tmp_path):
    for name, text in {"gan/__init__.py": "", "gan/a.py": "import gan.b\n",
                       "gan/b.py": "def f():\n    from gan.c import x\n", "gan/c.py": "from gan import a\n",
                       "gan/d.py": "from gan.a import y\n"}.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(graph(read_modules(tmp_path))) == [["gan.a", "gan.b", "gan.c", "gan.a"]]


def test_engines_import_no_ui_framework_and_not_each_other():
    wrong = []
    for name, info in read_modules(ROOT).items():
        if _top(name) not in ENGINES:
            continue
        others = [m for m in info.imports if (_top(m) in ENGINES and _top(m) != _top(name)) or _top(m) in ("ui", "app")]
        wrong += [f"{name} imports {m}" for m in others]
        wrong += [f"{name} imports {m}" for m in info.external_modules if _top(m) in UI_FRAMEWORKS]
    assert not wrong, "; ".join(wrong)


def test_no_module_uses_another_modules_underscored_names():
    uses = {(name, used): line for name, info in read_modules(ROOT, with_tests=True).items()
            for line, used in foreign_private_uses(info)}
    wrong = [f"{name}:{line} uses {used}" for (name, used), line in sorted(uses.items())
             if (name, used) not in GRADIO_PROTOCOL]
    assert not wrong, "give these a public name: " + "; ".join(wrong)


def test_underscore_rule_sees_imports_module_attributes_and_foreign_objects(tmp_path):
    code = textwrap.dedent('''
        from gan import zoo
        from gan.zoo import _cache
        import torch

        class Mine:
            def __init__(self):
                self._own = 1

            def f(self, trainer, other: "Mine"):
                torch._foreach_add_([], 1)  # third-party: not the project's business
                zoo._folder.cache_clear()
                return trainer._batch, self._own, other._own, self._inherited
    ''')
    (tmp_path / "gan").mkdir()
    for name, text in {"__init__.py": "", "zoo.py": "", "user.py": code}.items():
        (tmp_path / "gan" / name).write_text(text)
    info: ModuleInfo = read_modules(tmp_path)["gan.user"]
    assert sorted(used for _, used in foreign_private_uses(info)) == [
        "gan.zoo._cache", "self._inherited", "trainer._batch", "zoo._folder"]


def test_the_repo_stands_alone():
    """No pointer to documents outside the repository, nor to issue numbers of a tracker."""
    outside = re.compile(r"DESIGN\.md|\.\./shared|\bissues? ?#?\d+|\bticket #?\d+", re.IGNORECASE)
    texts = [ROOT / name for name in ("README.md", "Makefile", "requirements.txt", "requirements-dev.txt",
                                      "pyproject.toml", "app.py")]
    for folder in ("docs", "ui", "gan", "style", "common", "weights", "bench", "tools", "tests", ".ci"):
        texts += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".sh", "") and p.is_file()]
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in texts if "artifacts" not in path.parts
             for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if outside.search(line) and path.name != "test_architecture.py"]
    assert not found, "\n".join(found)
