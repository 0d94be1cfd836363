"""Waiting on a chat widget as it changes, never on the clock."""

from __future__ import annotations

import threading

from specdec_jupyter.widgets import ChatWidget


def settled(widget: ChatWidget, timeout: float = 30) -> dict:
    """The widget's status once nothing is loading any more (waited on as the status
    changes, never by the clock)."""
    loaded = threading.Event()

    def check(_change: dict | None = None) -> None:
        if widget.status["state"] != "loading":
            loaded.set()

    widget.observe(check, "status")
    check()
    assert loaded.wait(timeout), "the models never finished loading"
    widget.unobserve(check, "status")
    return widget.status
