"""Showing tokens and stats: reply HTML with every token's provenance, the stats layout,
terminal output and listings, and progress bars."""
