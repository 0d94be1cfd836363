"""The tree stays ruff-clean (lint rules and formatting, as configured in pyproject.toml), and
imports between the layers run one way (README's "Where things live")."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

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


# What each layer must not import: a token is born (engines) and judged (decoding) below where
# it is carried (sessions) and shown (display, widgets), and models on disk know none of them.
FORBIDDEN = {
    "models": ("engines", "decoding", "sessions", "display", "widgets", "server"),
    "engines": ("decoding", "sessions", "display", "widgets", "server"),
    "decoding": ("sessions", "display", "widgets", "server"),
    "display": ("sessions", "widgets", "server"),
    "sessions": ("widgets", "server"),
}
TOP_LEVEL = {"__init__", "cli", "errors", "magics", "progress", "settings"}


@pytest.mark.parametrize("layer", FORBIDDEN)
def test_layers_import_only_the_layers_below(layer):
    forbidden = tuple(f"specdec_jupyter.{name}" for name in FORBIDDEN[layer])
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name.startswith(forbidden) and name.split(".")[1] in FORBIDDEN[layer]
    ]
    assert not offenders, f"{layer}/ imports a layer above it:\n" + "\n".join(offenders)


def test_the_top_level_keeps_only_entry_points_and_shared_basics():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == TOP_LEVEL, "a module that belongs to a layer's folder: " + ", ".join(
        sorted(modules - TOP_LEVEL)
    )


def test_readme_maps_every_folder_of_the_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    unmapped = [name for name in sorted(folders) if f"`specdec_jupyter/{name}/`" not in readme]
    assert not unmapped, "README's map of the layers misses " + ", ".join(unmapped)


def test_the_package_and_benchmarks_never_import_the_tests():
    """What a user or a benchmark runs (loopback RPC workers, say) lives in the package."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in (PACKAGE, ROOT / "benchmarks")
        for path in sorted(folder.rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name == "tests" or name.startswith("tests.")
    ]
    assert not offenders, "\n".join(offenders)
