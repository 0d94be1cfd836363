"""A model on llama.cpp RPC workers: real worker processes on loopback holding a tiny model's
layers; the stats say where they went, an exact model gives this machine's tokens, and every
fault is one error naming the worker, with the process (and the text so far) living on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from specdec_jupyter import load
from specdec_jupyter.engines.rpc.handshake import (
    HANDSHAKE_SECONDS,
    check_worker,
    this_build_protocol,
)
from specdec_jupyter.engines.rpc.loopback import WorkerProcess, endpoints, free_port, workers
from specdec_jupyter.errors import EngineLostError, RpcWorkerError, SettingsError
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import LoadOptions, RpcWorker
from tests.support.rpc_faults import Killer, other_build_worker
from tests.support.tiny_models import make_tiny_pair

PROMPT = "the model token draft"
GREEDY = {"max_tokens": 24, "raw": True}


@pytest.fixture(scope="module")
def tiny_q8(tmp_path_factory):
    """A pair with Q8_0 matrices: exact on llama.cpp's CPU kernels, here and on a worker."""
    return make_tiny_pair(tmp_path_factory.mktemp("rpc-tiny"), weight_type="Q8_0")


@pytest.fixture(scope="module")
def two_workers():
    with workers(2) as started:
        yield started


def test_workers_are_written_as_llama_cpps_rpc_flag():
    options = LoadOptions(rpc="10.0.0.2:50052=3, 10.0.0.3:50052=1", draft_rpc=["10.0.0.4:1"])
    assert options.rpc == ("10.0.0.2:50052=3", "10.0.0.3:50052=1")
    assert options.for_main().draft_rpc == () and options.for_main().rpc == options.rpc
    assert options.for_draft().rpc == ("10.0.0.4:1",), "the draft's own workers, if asked"
    assert LoadOptions().for_draft().rpc == (), "the draft stays on this machine by default"
    assert RpcWorker.parse(" 10.0.0.2:50052=3 ") == RpcWorker("10.0.0.2", 50052, 3.0)


@pytest.mark.parametrize(
    ("rpc", "message"),
    [
        ("10.0.0.2", "an RPC worker is host:port or host:port=share, got '10.0.0.2'"),
        ("10.0.0.2:http", "an RPC worker is host:port"),
        ("10.0.0.2:1=-1", "share must be a number > 0"),
        ("10.0.0.2:1,10.0.0.2:1", "rpc names 10.0.0.2:1 more than once"),
        ("10.0.0.2:1=2,10.0.0.3:1", "give a share to every worker or to none"),
    ],
)
def test_a_bad_worker_is_one_line_naming_it(rpc, message):
    with pytest.raises(SettingsError, match=message) as caught:
        LoadOptions(rpc=rpc)
    assert "\n" not in str(caught.value)


def test_the_draft_needs_workers_of_its_own():
    with pytest.raises(SettingsError, match="serves one client at a time"):
        LoadOptions(rpc="127.0.0.1:5000", draft_rpc="127.0.0.1:5000")


def test_the_pair_on_two_workers_gives_this_machines_exact_tokens(tiny_q8, two_workers):
    here = load(*tiny_q8, n_ctx=256, n_threads=1, exact=True, progress=False)
    there = load(
        *tiny_q8, n_ctx=256, n_threads=1, exact=True, rpc=endpoints(two_workers), progress=False
    )
    try:
        plain = here.generate(PROMPT, use_draft=False, **GREEDY)
        for mode, k in [(None, "auto"), ("model", 3), ("lookup", "auto"), ("hybrid", 2)]:
            result = there.generate(PROMPT, draft_mode=mode, draft_tokens=k, **GREEDY)
            assert result.token_ids == plain.token_ids, (mode, k)
        first, second = endpoints(two_workers)
        assert result.stats.backend.startswith(
            f"llama.cpp: 2 layers on rpc {first}, output on rpc {second}, 1 CPU threads; "
            "exact if the workers compute on CPUs; draft: llama.cpp on the CPU"
        ), "the draft stays here"
        assert result.stats.total_draft_tokens_count > 0
        assert there.main.token_pieces() == here.main.token_pieces()  # in one call
    finally:
        there.close()
        here.close()


@pytest.mark.parametrize(
    ("shares", "gpu_layers", "placed"),
    [
        ((1, 3), None, "1 layer on rpc {a}, 1 on rpc {b}, output on rpc {b}"),
        ((3, 1), None, "2 layers on rpc {a}, output on rpc {a}"),
        ((1, 3), 1, "2 layers on the CPU, output on rpc {a}"),
    ],
)
def test_shares_and_gpu_layers_place_the_layers(tiny_q8, two_workers, shares, gpu_layers, placed):
    a, b = endpoints(two_workers)
    rpc = [f"{a}={shares[0]}", f"{b}={shares[1]}"]
    session = load(
        tiny_q8[0], n_ctx=256, n_threads=1, gpu_layers=gpu_layers, rpc=rpc, progress=False
    )
    try:
        assert session.main.backend.startswith(f"llama.cpp: {placed.format(a=a, b=b)}, ")
    finally:
        session.close()


def test_a_worker_not_there_is_named_before_anything_loads(tiny_q8, two_workers):
    missing = f"127.0.0.1:{free_port()}"
    with pytest.raises(RpcWorkerError) as caught:
        load(*tiny_q8, rpc=[two_workers[0].endpoint, missing], progress=False)
    message = str(caught.value)
    assert message.startswith(f"RPC worker {missing} is not there (Connection refused)")
    assert "specdec-jupyter rpc-worker" in message and "\n" not in message


@pytest.mark.parametrize(
    ("version", "said"),
    [
        ((6, 1, 0), "speaks RPC protocol 6.1.0, this build 7.0.0: it is another llama.cpp build"),
        ((7, 3, 0), "speaks RPC protocol 7.3.0, this build 7.0.0"),
        (None, "closed the connection at the handshake: it speaks another RPC protocol"),
    ],
)
def test_a_worker_of_another_build_is_a_clear_error(tiny_q8, version, said):
    assert this_build_protocol() == (7, 0, 0)
    with other_build_worker(version) as endpoint, pytest.raises(RpcWorkerError) as caught:
        load(*tiny_q8, rpc=endpoint, progress=False)
    assert str(caught.value).startswith(f"RPC worker {endpoint} {said}")


HOLDER = """
import sys
from specdec_jupyter import load
session = load(sys.argv[1], n_ctx=256, n_threads=1, rpc=sys.argv[2], progress=False)
print("loaded", flush=True)
sys.stdin.read()  # until the test lets go
session.close()
"""


def test_a_worker_busy_with_another_process_is_named_as_busy(tiny_q8):
    """A worker serves one client at a time and never says it is busy (handshake.py): the
    load waits the handshake's time, then names it, and loads once the other client is gone."""
    with workers(1) as (worker,):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tiny_q8[0]), worker.endpoint],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline() == "loaded\n", "the other process holds the worker"
            with pytest.raises(RpcWorkerError) as caught:
                load(tiny_q8[0], n_ctx=256, n_threads=1, rpc=worker.endpoint, progress=False)
        finally:
            holder.stdin.close()
            assert holder.wait() == 0
        message = str(caught.value)
        assert message.startswith(
            f"RPC worker {worker.endpoint} is busy: it took the connection but has not answered "
            f"in {HANDSHAKE_SECONDS:.0f} s, as a worker serving another client does"
        )
        assert "start another worker" in message and "\n" not in message
        session = load(tiny_q8[0], n_ctx=256, n_threads=1, rpc=worker.endpoint, progress=False)
        try:
            assert session.generate(PROMPT, use_draft=False, **GREEDY).token_ids
        finally:
            session.close()


def test_a_worker_of_this_build_answers_the_handshake(two_workers):
    assert check_worker(RpcWorker.parse(two_workers[0].endpoint)) == this_build_protocol()


def test_a_worker_lost_mid_generation_ends_it_keeping_the_text(tiny_q8):
    with workers(2) as started:
        options = {"n_ctx": 256, "n_threads": 1, "progress": False}
        session = load(tiny_q8[0], rpc=endpoints(started), **options)
        plain = session.generate(PROMPT, use_draft=False, **GREEDY)
        killing = Session(Killer().arm(started[1], call=6).tap(session.main))
        with pytest.raises(EngineLostError) as caught:
            killing.generate(PROMPT, use_draft=False, **GREEDY)
        lost = caught.value
        assert str(lost).startswith(
            f"{tiny_q8[0].stem} is lost: RPC worker {started[1].endpoint} stopped answering "
            "(llama.cpp: Remote RPC server crashed or returned malformed response); start the "
            "worker again if it is gone"
        )
        assert len(lost.events) == 5 and plain.text.startswith(lost.text)
        assert session.main.lost
        with pytest.raises(EngineLostError):  # said again, not a hang or a crash
            session.generate(PROMPT, **GREEDY)
        session.close()

        started[1] = WorkerProcess(started[1].port)  # the worker back; the next load works
        again = load(tiny_q8[0], rpc=endpoints(started), **options)
        assert again.generate(PROMPT, use_draft=False, **GREEDY).text == plain.text
        again.close()


def test_a_worker_off_loopback_says_rpc_has_no_authentication():
    worker = WorkerProcess(host="0.0.0.0")
    try:
        notes = [line for line in worker.lines if "authentication" in line]
        assert notes == [
            f"note: RPC has no authentication: whoever reaches 0.0.0.0:{worker.port} can use "
            "this machine's memory and devices; keep it on a trusted network\n"
        ]
    finally:
        worker.kill()
    loopback = WorkerProcess()
    loopback.kill()
    assert not any("authentication" in line for line in loopback.lines)
