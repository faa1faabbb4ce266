"""The layering rules (docs/architecture.md): the engine never imports streamlit or plotly,
no import cycles inside regdemo/, and no module reaches into another's private names."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "regdemo"
# Everything but the chart builders and the page pieces is engine side.
ENGINE_MODULES = sorted(
    p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("plots", "__init__", "__main__")
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_engine_side_is_all_there():
    """The modules the rule protects exist (the parametrized test is not vacuous)."""
    assert {"config", "datasets", "augment", "models", "regularizers", "callbacks",
            "engine", "presets", "cli"} <= set(ENGINE_MODULES)


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_modules_import_no_ui_library(module):
    """Engine-side modules import neither streamlit nor plotly."""
    path = PACKAGE / f"{module}.py"
    assert not _imports(path) & {"streamlit", "plotly"}


def test_only_plots_imports_plotly_and_only_ui_imports_streamlit():
    """plotly in plots.py (the static figures) only; streamlit only under regdemo/ui/."""
    for path in PACKAGE.rglob("*.py"):
        found = _imports(path)
        rel = path.relative_to(PACKAGE).as_posix()
        if "plotly" in found:
            assert rel == "plots.py", rel
        if "streamlit" in found:
            assert rel.startswith("ui/"), rel


def test_the_checker_sees_imports():
    """The parser catches both import forms (so the rule above cannot pass vacuously)."""
    probe = PACKAGE.parent / "tests" / "_probe_layering.py"
    probe.write_text("import plotly.express as px\nfrom streamlit import session_state\n")
    try:
        assert _imports(probe) == {"plotly", "streamlit"}
    finally:
        probe.unlink()


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the package (the package itself left out:
    importing any submodule runs its __init__ anyway)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.with_suffix("").relative_to(PACKAGE.parent).parts
        if parts[-1] != "__init__":
            out[".".join(parts)] = path
    return out


def _package_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The regdemo modules a file imports anywhere (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("regdemo"):
            found |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            if node.module in modules:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & modules.keys()
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_inside_the_package():
    """Lazy imports inside functions count too: a cycle is a cycle at run time."""
    modules = _modules()
    graph = {m: _package_imports(p, modules) - {m} for m, p in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # it sees


def _private_names(tree) -> tuple[set[str], set[str]]:
    """(private names a module defines, private attributes it reads off other objects)."""
    defined, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and \
                not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            used.add(node.attr)
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("regdemo"):
            used |= {a.name for a in node.names}
    private = lambda names: {n for n in names if n.startswith("_") and not n.endswith("__")}  # noqa: E731
    return private(defined), private(used)


def test_no_module_reaches_into_another_modules_private_names():
    """A private name (leading underscore) is read only in the module that defines it."""
    names = {m: _private_names(ast.parse(p.read_text())) for m, p in _modules().items()}
    for module, (defined, used) in names.items():
        elsewhere = set().union(*(d for m, (d, _) in names.items() if m != module))
        assert not (used - defined) & elsewhere, (module, sorted((used - defined) & elsewhere))
    probe = ast.parse("from regdemo.x import _helper\nt._divergence(1)\nself._own = 1\n")
    assert _private_names(probe) == ({"_own"}, {"_helper", "_divergence"})  # it sees
