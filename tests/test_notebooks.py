"""The notebooks run outside a clone (a user who installed the package and downloaded one):
their code imports only what the installed package and its dependencies bring. 04 reached
into ../benchmarks and failed elsewhere with "No module named 'prompts'". nbval runs them
here; this checks what they would need anywhere else."""

from __future__ import annotations

import ast
import importlib.util
import json

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from tests.support import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def notebook_code(path) -> ast.Module:
    """The code cells as Python (magics turned into calls, as IPython runs them)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return ast.parse("\n".join(TransformerManager().transform_cell(s) for s in sources))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_needs_only_the_installed_package(path, tmp_path, monkeypatch):
    tree = notebook_code(path)
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and not n.level
    }
    assert modules, "a notebook that imports nothing is not what this test reads"
    monkeypatch.chdir(tmp_path)  # no notebooks/ or benchmarks/ beside it
    missing = [name for name in sorted(modules) if importlib.util.find_spec(name) is None]
    assert not missing, f"{path.name} imports what an install does not bring: {missing}"
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    into_the_clone = [t for t in texts if isinstance(t, str) and ("benchmarks" in t or ".." in t)]
    assert not into_the_clone, f"{path.name} reaches into the clone: {into_the_clone}"
