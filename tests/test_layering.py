"""Layering rule of DESIGN.md: the engine never imports streamlit or plotly."""

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
