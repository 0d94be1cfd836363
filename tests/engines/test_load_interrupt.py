"""Ctrl-C during a model load stops the load (issue 23 C7): it was swallowed inside llama.cpp's
callbacks ("Exception ignored on calling ctypes callback") and the load went on."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, threading, _thread, time
from specdec_jupyter import load

def interrupt_once_loading():
    # What a Ctrl-C does, sent once the main thread is inside llama.cpp's load: a timer
    # cannot know when that is, so the main thread's frames are watched.
    main = threading.main_thread().ident
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(main)
        while frame is not None and frame.f_code.co_name != "load_model":
            frame = frame.f_back
        if frame is not None:
            _thread.interrupt_main()
            return
        time.sleep(0.001)

threading.Thread(target=interrupt_once_loading).start()
try:
    load(sys.argv[1], n_ctx=64, n_threads=1, progress=False)
    print("loaded")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_during_a_load_stops_it(tiny_paths):
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(tiny_paths[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Exception ignored" not in done.stderr
    assert done.stdout.strip() == "interrupted"
