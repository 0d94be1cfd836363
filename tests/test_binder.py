"""Binder builds the environment from binder/ alone (repo2docker ignores pyproject.toml
when binder/ exists), so its files must say what pyproject.toml says."""

from __future__ import annotations

import os
import re

import pytest

from specdec_jupyter.models.catalog import resolve_names
from tests.support import ROOT

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")


BINDER = ROOT / "binder"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"}


def expanded(requirements: list[str]) -> set[str]:
    """The requirements with our own extras (`specdec_jupyter[x]`) replaced by their lists."""
    extras = PROJECT["optional-dependencies"]
    out: set[str] = set()
    for requirement in requirements:
        own = re.fullmatch(rf"{PROJECT['name']}\[(\w+)\]", requirement)
        out |= expanded(extras[own[1]]) if own else {requirement}
    return out


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_binder_installs_the_dependencies_and_the_notebooks_extra():
    wanted = expanded(PROJECT["dependencies"]) | expanded(["specdec_jupyter[notebooks]"])
    assert requirement_lines((BINDER / "requirements.txt").read_text()) == wanted


def test_binder_python_is_one_the_package_supports():
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    minimum = PROJECT["requires-python"].removeprefix(">=")
    assert version_tuple(version) >= version_tuple(minimum)


def test_post_build_installs_the_package_and_fetches_a_catalog_pair():
    post_build = BINDER / "postBuild"
    script = post_build.read_text()
    assert os.access(post_build, os.X_OK)
    assert "set -euo pipefail" in script  # repo2docker carries on after errors otherwise
    assert re.search(r"^python -m pip install --no-deps \.$", script, re.MULTILINE)
    fetched = re.search(r"^specdec-jupyter models fetch (?:--quiet )?(\S+)$", script, re.MULTILINE)
    assert fetched and resolve_names([fetched[1]])


def test_readme_badge_launches_this_repository_on_binder():
    repository = PROJECT["urls"]["Repository"].removeprefix("https://github.com/")
    badge = f"https://mybinder.org/v2/gh/{repository}/HEAD?urlpath=lab/tree/notebooks"
    assert badge in (ROOT / "README.md").read_text()
