"""Which model can draft for which: each engine's compatibility rule (compat.py), verdicts
for models on disk remembered until a file changes (verdicts.py), and the draft each main
model uses by default (defaults.py)."""
