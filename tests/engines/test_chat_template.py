"""A model's chat template renders within a budget, and every failure in it is one error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from specdec_jupyter.engines.chat_template import ChatTemplateError, render_chat

MESSAGES = [{"role": "user", "content": "hi"}]


def _render(template: str) -> str:
    return render_chat(template, MESSAGES, model_name="m")


def test_a_real_shaped_template_still_renders():
    template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
        "{% for i in range(2) %}.{% endfor %}{{ range(3)|list|length }}"
    )
    assert _render(template) == "<|user|>hi..3"


def test_nested_loops_are_refused_in_bounded_time():
    """On an unbounded renderer this template runs for hours; the subprocess bounds the test."""
    code = (
        "from specdec_jupyter.engines.chat_template import render_chat\n"
        "t = '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}'\n"
        "render_chat(t, [{'role': 'user', 'content': 'hi'}], model_name='m')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "ChatTemplateError: the chat template of m runs too long" in done.stderr


def test_a_reused_range_counts_on_every_pass():
    template = "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}"
    with pytest.raises(ChatTemplateError, match="runs too long"):
        _render(template)


def test_huge_output_is_refused():
    with pytest.raises(ChatTemplateError, match="writes over"):
        _render("{% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}")


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 10.0 ** 400 }}", "OverflowError"),
        ("{% include messages %}", "TypeError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ],
)
def test_python_errors_inside_a_template_are_chat_template_errors(template, name):
    with pytest.raises(ChatTemplateError, match=f"the chat template of m failed: {name}"):
        _render(template)
