"""Models on disk: the catalog of known models, where they live, and fetching them."""
