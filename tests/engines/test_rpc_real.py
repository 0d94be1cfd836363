"""The real Qwen2.5-Coder 1.5B spread over two RPC worker processes on loopback, the 0.5B draft
on this machine: exact greedy tokens equal to the same model run here, bit for bit, in plain
and speculative decoding; a worker killed mid-generation ends that generation with one error,
the text so far kept, and this process (the notebook's kernel) goes on."""

from __future__ import annotations

import re

import pytest

from specdec_jupyter import load
from specdec_jupyter.engines.rpc.loopback import WorkerProcess, endpoints, workers
from specdec_jupyter.errors import EngineLostError
from specdec_jupyter.sessions.session import Session
from tests.support.rpc_faults import Killer

pytestmark = pytest.mark.real

PROMPT = "Write a Python function that returns the n-th Fibonacci number."
GREEDY = {"max_tokens": 16}
OPTIONS = {"n_ctx": 512, "n_threads": 2, "exact": True, "progress": False}


@pytest.fixture(scope="module")
def two_workers():
    with workers(2, threads=1) as started:
        yield started


@pytest.fixture(scope="module")
def here(qwen_paths):
    session = load(*qwen_paths, **OPTIONS)
    yield session
    session.close()


def test_the_1_5b_on_two_workers_gives_this_machines_exact_tokens(qwen_paths, two_workers, here):
    plain = here.generate(PROMPT, use_draft=False, **GREEDY)
    there = load(*qwen_paths, rpc=endpoints(two_workers), **OPTIONS)
    try:
        assert there.generate(PROMPT, use_draft=False, **GREEDY).token_ids == plain.token_ids
        for mode, k in [("model", 3), ("hybrid", "auto")]:
            result = there.generate(PROMPT, draft_mode=mode, draft_tokens=k, **GREEDY)
            assert result.token_ids == plain.token_ids, (mode, k)
        a, b = endpoints(two_workers)
        placed = re.fullmatch(  # llama.cpp splits by the workers' free memory: 14/14 or 15/13
            rf"llama.cpp: (\d+) layers on rpc {a}, (\d+) on rpc {b}, output on rpc {b}, 2 CPU "
            "threads; exact if the workers compute on CPUs; draft: llama.cpp on the CPU, 2 "
            "threads; exact",
            result.stats.backend,
        )
        assert placed is not None, result.stats.backend
        assert int(placed[1]) + int(placed[2]) == 28, "every layer of the 1.5B on a worker"
        assert result.stats.total_draft_tokens_count > 0
    finally:
        there.close()


def test_a_worker_killed_mid_generation_leaves_the_kernel_and_its_text(qwen_paths, here):
    with workers(2, threads=1) as started:
        there = load(qwen_paths[0], rpc=endpoints(started), **OPTIONS)
        killing = Session(Killer().arm(started[0], call=4).tap(there.main))
        with pytest.raises(EngineLostError) as caught:
            killing.generate(PROMPT, use_draft=False, **GREEDY)
        assert str(caught.value).startswith(
            f"{qwen_paths[0].stem} is lost: RPC worker {started[0].endpoint} stopped answering"
        )
        assert len(caught.value.events) == 3
        there.close()
        # this process lives on: the local pair answers, and the worker back, a load works
        plain = here.generate(PROMPT, use_draft=False, **GREEDY)
        assert plain.text.startswith(caught.value.text)
        started[0] = WorkerProcess(started[0].port)
        again = load(qwen_paths[0], rpc=endpoints(started), **OPTIONS)
        try:
            assert again.generate(PROMPT, use_draft=False, **GREEDY).token_ids == plain.token_ids
        finally:
            again.close()
