"""Models on disk: the catalog, fetching, finding models in users' folders, reading their
metadata, and judging which can draft for which."""
