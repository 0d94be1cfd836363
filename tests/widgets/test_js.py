"""The front end's own tests (vitest + happy-dom, in js/tests), run from pytest so CI's one
command covers them, and a check that JS and Python colour draft tokens identically."""

from __future__ import annotations

import json
import re
import subprocess

from specdec_jupyter.decoding.events import TokenEvent
from specdec_jupyter.display.reply_html import reply_to_html
from tests.support import ROOT
from tests.support.js_fixture import FIXTURE, written

JS = ROOT / "js"


def npm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args], cwd=JS, capture_output=True, text=True, timeout=600)


def test_vitest_suite_passes():
    if not (JS / "node_modules" / ".bin" / "vitest").exists():  # `pip install` may have skipped npm
        installed = npm("ci", "--no-audit", "--no-fund")
        assert installed.returncode == 0, installed.stderr
    done = npm("test")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)  # CI may force colours on
    assert re.search(r"Tests\s+\d+ passed", summary), summary


def test_js_and_python_shade_draft_tokens_alike():
    """The live widget (JS) and the HTML fallback (token_html.py) give each token one green:
    by the main model's p, else by min(1, p/q), else the deepest."""
    numbers = [(None, None), (None, 0.3), (0.0, 1.0), (0.1, 1.0), (1 / 3, 0.5), (0.77, 1.0)]
    numbers += [(1.0, 1.0), (1.5, None)]
    tokens = [{"p_main": p, "acceptance": a} for p, a in numbers]
    script = (
        f"import {{ draftBackground }} from {json.dumps((JS / 'src' / 'provenance.js').as_uri())};"
        f"console.log(JSON.stringify({json.dumps(tokens)}.map(draftBackground)));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    from_js = json.loads(done.stdout)
    events = [TokenEvent(1, "x", "draft", 1, p, 0.5, a) for p, a in numbers]
    from_python = re.findall(r"background: (rgba\(var\([^)]*\), [\d.]+\))", reply_to_html(events))
    assert len(set(from_js)) > 4
    assert from_js == from_python


def test_the_js_tests_read_what_python_writes_now():
    """The fixture the vitest suite reads is what the widgets send today (regenerate it with
    `python -m tests.support.js_fixture`), so a change on this side reaches the JS tests."""
    assert FIXTURE.read_text(encoding="utf-8") == written()
