"""Helpers the tests share: tiny models written on the fly, engines that record or script
their calls, a JupyterLab driven in Chromium, IPython's test shell."""

from pathlib import Path

ROOT = Path(__file__).parents[2]  # the repository
