"""Shared fixtures: the real Qwen pair (fetched once into the models folder, loaded once)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from specdec_jupyter.decoding.history import HISTORY
from tests.support.real_models import catalog_file


@pytest.fixture(autouse=True)
def no_earlier_generations():
    """Each test drafts from its own generations only: lookup copies from the process's
    earlier generations (decoding/history.py), which would tie a test to the ones before it."""
    HISTORY.clear()
    yield
    HISTORY.clear()


@pytest.fixture
def interrupts_raise():
    """Ctrl-C raises KeyboardInterrupt, as in a kernel: a process a shell starts in the
    background inherits SIGINT ignored, and there an interrupt would do nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def qwen_paths() -> tuple[Path, Path]:
    return catalog_file("qwen2.5-coder-1.5b"), catalog_file("qwen2.5-coder-0.5b")


@pytest.fixture(scope="session")
def qwen_session(qwen_paths):
    from specdec_jupyter import load

    session = load(*qwen_paths, n_ctx=2048, progress=False)
    yield session
    session.close()


@pytest.fixture(scope="session")
def tiny_paths(tmp_path_factory) -> tuple[Path, Path]:
    from tests.support.tiny_models import make_tiny_pair

    return make_tiny_pair(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_session(tiny_paths):
    """The tiny pair on one thread: for models this small, thread hand-offs cost the most."""
    from specdec_jupyter import load

    session = load(*tiny_paths, n_ctx=256, n_threads=1, progress=False)
    yield session
    session.close()


@pytest.fixture(scope="session")
def tiny_exact_session(tmp_path_factory):
    """The tiny pair with Q8_0 matrices, loaded exact: logits that do not depend on a call's
    size (F32 matrices have no such kernel in llama.cpp; see models/gguf/invariance.py)."""
    from specdec_jupyter import load
    from tests.support.tiny_models import make_tiny_pair

    paths = make_tiny_pair(tmp_path_factory.mktemp("tiny-q8"), weight_type="Q8_0")
    session = load(*paths, n_ctx=256, n_threads=1, exact=True, progress=False)
    yield session
    session.close()


@pytest.fixture(scope="session")
def cross_paths(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny main model and a draft of another vocabulary ("other": other ids, other merges,
    another size), both Q8_0, so they load exact."""
    from tests.support.tiny_models import write_tiny_gguf

    folder = tmp_path_factory.mktemp("cross")
    main = write_tiny_gguf(folder / "main.gguf", seed=0, weight_type="Q8_0")
    draft = write_tiny_gguf(folder / "other.gguf", seed=0, vocab="other", weight_type="Q8_0")
    return main, draft


@pytest.fixture(scope="session")
def cross_session(cross_paths):
    """The cross pair loaded exact, on one thread: the draft drafts text."""
    from specdec_jupyter.engines.registry import engine_kind
    from specdec_jupyter.engines.resolve import resolve
    from specdec_jupyter.sessions.session import Session
    from specdec_jupyter.settings import LoadOptions

    kind = engine_kind("llama.cpp")
    options = LoadOptions(n_ctx=256, n_threads=1, exact=True)
    main, draft = (resolve(str(path)) for path in cross_paths)
    session = Session(kind.open(main, options.for_main()), kind.open(draft, options.for_draft()))
    yield session
    session.close()


@pytest.fixture(scope="session")
def shell():
    """IPython's test shell; it starts once per process (later calls return None)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import get_ipython

    return get_ipython() or InteractiveShell.instance()


@pytest.fixture
def ip(shell, tmp_path, monkeypatch):
    """The shell with `%load_ext specdec_jupyter` fresh, private config and cache folders,
    and displays captured as text and HTML."""
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))
    shell.run_line_magic("reload_ext", "specdec_jupyter")  # loads it, with fresh magics state
    monkeypatch.setattr(shell.display_formatter, "active_types", ["text/plain", "text/html"])
    return shell
