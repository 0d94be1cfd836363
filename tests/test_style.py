"""The tree stays ruff-clean (lint rules and formatting, as configured in pyproject.toml), and
imports between engines and models run one way: engines import models, never the reverse."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "specdec_jupyter"


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, str(ROOT)], capture_output=True, text=True
    )


def test_ruff_check_passes():
    done = ruff("check", "--no-cache")
    assert done.returncode == 0, done.stdout


def test_ruff_format_is_applied():
    done = ruff("format", "--check", "--no-cache")
    assert done.returncode == 0, done.stdout


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it, relative imports made absolute."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]  # a module's package; for __init__.py, its own folder
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # from .. import x
    return names


def test_imported_modules_resolve_relative_imports():
    assert imported_modules(PACKAGE / "models" / "drafts" / "compat.py") >= {
        "specdec_jupyter.models.model_info",
        "specdec_jupyter.models.vocabulary",
    }
    assert "specdec_jupyter.engines.base" in imported_modules(PACKAGE / "engines" / "llamacpp.py")


def test_models_never_import_engines():
    engines = "specdec_jupyter.engines"
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((PACKAGE / "models").rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name == engines or name.startswith(f"{engines}.")
    ]
    assert not offenders, "engines import models, never the reverse:\n" + "\n".join(offenders)
