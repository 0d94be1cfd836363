"""The real models of the catalog, fetched once into the models folder (CI's setup has)."""

from __future__ import annotations

from pathlib import Path

from specdec_jupyter.models.catalog import CATALOG
from specdec_jupyter.models.fetch import fetch

SEED_PROMPTS = [
    "Write a quicksort algorithm in Python. Write code only.",
    "Explain the Pythagorean theorem",
    "Plan a 1 day trip to DC",
]


def catalog_file(key: str) -> Path:
    """A real model from the catalog, fetched on first use."""
    return fetch(CATALOG[key])
