"""Ctrl-C during a model load stops the load (issue 23 C7): it was swallowed inside llama.cpp's
callbacks ("Exception ignored on calling ctypes callback") and the load went on."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT

CODE = """
import signal, sys, threading
from specdec_jupyter import load
from tests.support.gated import interrupt_main_once_in

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a kernel, not ignored
threading.Thread(target=interrupt_main_once_in, args=("load_model",)).start()
try:
    load(sys.argv[1], n_ctx=64, n_threads=1, progress=False)
    print("loaded")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_during_a_load_stops_it(tiny_paths):
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(tiny_paths[0])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Exception ignored" not in done.stderr
    assert done.stdout.strip() == "interrupted"
