"""Models on disk: the catalog (catalog.py), fetching (fetch.py), finding models in users'
folders (discovery.py), reading their metadata (metadata.py; per format in gguf/ and mlx/),
and judging which can draft for which (drafts/). Engines import from here, never the
reverse: nothing under models/ imports specdec_jupyter.engines (tests/test_style.py)."""
