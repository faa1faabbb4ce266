"""`pip install .` gets what the code imports: one dependency list, requirements.txt."""

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Import name -> distribution name, where they differ.
DISTRIBUTION = {"sklearn": "scikit-learn"}
OPTIONAL = {"ray", "psycopg", "playwright"}  # imported only inside a guarded feature


def _requirements() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.split("==")[0].strip().lower() for line in lines
            if line.strip() and not line.startswith("#")}


def _third_party_imports() -> set[str]:
    names = set()
    for path in (ROOT / "regdemo").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "regdemo"}


def test_pyproject_takes_its_dependencies_from_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dependencies" in project["project"]["dynamic"]
    assert "dependencies" not in project["project"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["dependencies"]
    assert dynamic["file"] == ["requirements.txt"]


def test_every_library_the_package_imports_is_a_requirement():
    """numba was imported by the fused epoch but missing from pyproject's list."""
    needed = {DISTRIBUTION.get(n, n).lower() for n in _third_party_imports()} - OPTIONAL
    assert "numba" in needed
    assert needed <= _requirements(), needed - _requirements()
