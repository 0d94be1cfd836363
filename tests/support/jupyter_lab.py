"""JupyterLab in a real browser, for the widgets' browser tests: a server on loopback (no
token, a free port) serving notebooks written from cell sources, and Debian's headless
Chromium driven by Playwright (which never downloads a browser of its own) with a notebook
open and all its cells run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# What every browser test is marked with: `-m "not browser"` leaves them out.
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/setup)"),
]
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # never fetch a browser

LAB_SETTINGS = {  # quiet and deterministic: no news, every cell attached, widget state saved
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, sources: Sequence[str]) -> None:
    cells = [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
        for c in sources
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4}
    path.write_text(json.dumps({**notebook, "nbformat_minor": 5}))


@contextmanager
def jupyter_lab(
    home: Path, notebooks: dict[str, Sequence[str]], settings: dict[str, dict] | None = None
) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server in `home` serving `notebooks` (file name: cell sources), with
    `settings` (plugin: values) beside the quiet defaults; yields its URL and the
    notebooks' folder."""
    folder = home / "notebooks"
    folder.mkdir()
    for name, sources in notebooks.items():
        write_notebook(folder / name, sources)
    for plugin, values in {**LAB_SETTINGS, **(settings or {})}.items():
        path = home / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "SPECDEC_CONFIG_DIR": str(home / "config"),  # default drafts stay the user's own
    }
    port = free_port()
    command = [
        *(sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root"),
        *(f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"),
        *("--IdentityProvider.token=", "--ServerApp.password="),
        *("--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={folder}"),
    ]
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (home / "lab.log").read_text()
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, (home / "lab.log").read_text()
                time.sleep(0.5)
        yield url, folder
    finally:
        server.terminate()
        server.wait(30)
        log.close()


@contextmanager
def notebook_page(url: str, name: str) -> Iterator:
    """A Chromium page with notebook `name` open and all its cells run once its kernel is up."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/lab/tree/{name}")
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        page.wait_for_function(  # the kernel is up before the cells are run
            "window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status"
            " === 'idle'"
        )
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            yield page
        finally:
            browser.close()


@contextmanager
def lab_notebook(
    home: Path, name: str, cells: Sequence[str], settings: dict[str, dict] | None = None
) -> Iterator:
    """JupyterLab serving one notebook, open in Chromium with its cells run: the page."""
    with jupyter_lab(home, {name: cells}, settings) as (url, _), notebook_page(url, name) as page:
        yield page


def ask_and_wait(chat, prompt: str, timeout_ms: int = 180_000):
    """Send `prompt` in the chat widget `chat` and return its first finished reply (stats in)."""
    chat.locator(".specdec-input").fill(prompt)
    chat.locator(".specdec-input").press("Enter")
    reply = chat.locator(".specdec-assistant:not(.specdec-live)").first
    reply.locator(".specdec-stats").wait_for(timeout=timeout_ms)
    return reply
