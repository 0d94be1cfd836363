"""Many clients on one model: aggregate tokens/s and per-request latency for N concurrent
clients, served one at a time (the server before batching), batched plain and batched
speculative, side by side in one run; optionally llama-server built from the same llama.cpp
sources (`-np N`, with and without `-md`) on the same models and prompts.

    nice -n -20 .venv/bin/python benchmarks/concurrency.py --quick  # 1, 2 clients, 24 tokens
    .venv/bin/python benchmarks/concurrency.py                      # 1, 2, 4, 8 clients, 128
    .venv/bin/python benchmarks/concurrency.py --llama-server ~/llama.cpp/build/bin/llama-server

Each client is a thread with its own `openai` client, sending `--requests` chat requests one
after another (greedy, non-streaming), all clients starting together. Aggregate tokens/s is
every reply's tokens over the wall-clock time from the first request sent to the last reply;
a request's latency is from its sending to its whole reply. The first client's requests are
short (`--short-tokens`, a quarter of the others by default): its p95 latency among N clients
against its latency alone (N = 1) is the short-request target. "one at a time" is the same server
with `parallel=1` and the draft, as the server served before batching; its aggregate at the
same N is what the other ways are divided by (`ratio`).

Every server runs for the whole benchmark (batched plain and speculative are one server), and
each number of clients is measured `--repeat` times, every way in turn within each repeat (the
order turning each time), so a machine that speeds up or slows down over minutes moves all the
ways alike; a way's aggregate is the median of its repeats, its latencies are over all of them.
Every way gets one warm-up request that loads the models. Targets (issue 27): at 4 clients
batched at least 2x one at a time; at 4 and 8 at least llama-server's; a short request's p95
latency at 4 within 2x its latency alone. Writes the JSON, a table (.md) and a chart (.png) to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import perf_counter

import openai

sys.path.insert(0, str(Path(__file__).parent))

from common import Report, figure, parser, result_path
from prompts import PROSE_PROMPTS, SEED_PROMPTS

from specdec_jupyter.engines.rpc.loopback import free_port
from specdec_jupyter.models.catalog import CATALOG
from specdec_jupyter.models.fetch import fetch
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.settings import LoadOptions

MAIN, DRAFT = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"
PROMPTS = [*SEED_PROMPTS.values(), PROSE_PROMPTS["lighthouse"]]
SERIAL = "one at a time"
LLAMA_SERVER_START = 300.0  # seconds a llama-server may take to load


@dataclass(frozen=True)
class Way:
    """One way of serving the clients: a server at a URL, the model id and the body's extras."""

    name: str
    model: str
    extra: dict


@dataclass(frozen=True)
class Sent:
    started: float
    ended: float
    tokens: int
    short: bool


def one_client(way: Way, url: str, index: int, clients: int, args, go: threading.Barrier):
    """A client's requests, in turn, once every client is ready."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", timeout=3600.0, max_retries=0)
    go.wait()
    sent, short = [], index == 0
    for n in range(args.requests):
        prompt = PROMPTS[(index + n * clients) % len(PROMPTS)]
        started = perf_counter()
        reply = client.chat.completions.create(
            model=way.model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=args.short_tokens if short else args.max_tokens,
            temperature=0,
            extra_body=way.extra,
        )
        assert reply.usage is not None
        sent.append(Sent(started, perf_counter(), reply.usage.completion_tokens, short))
    return sent


def measure(way: Way, url: str, clients: int, args) -> tuple[list[Sent], float]:
    """`clients` clients at once on `url`: every request sent, and the wall-clock seconds
    from the first sent to the last reply."""
    go = threading.Barrier(clients)
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one_client, way, url, i, clients, args, go) for i in range(clients)]
        sent = [s for future in futures for s in future.result()]
    return sent, max(s.ended for s in sent) - min(s.started for s in sent)


def summary(way: Way, clients: int, repeats: list[tuple[list[Sent], float]]) -> dict:
    """A way's row at `clients` clients: the median aggregate tokens/s of its repeats, and
    latencies over all their requests."""
    sent = [s for requests, _ in repeats for s in requests]
    latencies = sorted(s.ended - s.started for s in sent)
    short = sorted(s.ended - s.started for s in sent if s.short)
    speeds = [sum(s.tokens for s in requests) / wall for requests, wall in repeats]
    return {
        "way": way.name,
        "clients": clients,
        "requests": len(sent),
        "tokens": sum(s.tokens for s in sent),
        "repeats": len(repeats),
        "tokens_per_second": statistics.median(speeds),
        "tokens_per_second_each": speeds,
        "latency_p50": statistics.median(latencies),
        "latency_p95": _p95(latencies),
        "short_latency_p95": _p95(short),
    }


def _p95(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextmanager
def ours(parallel: int, args) -> Iterator[str]:
    """`specdec-jupyter serve` on a thread, with `parallel` sequences per model."""
    options = LoadOptions(n_ctx=args.n_ctx, n_threads=args.threads, parallel=parallel)
    manager = EngineManager(options=options)
    try:
        with serving_in_background(SpecDecServer(manager, ServedModels())) as url:
            yield url
    finally:
        manager.close()


@contextmanager
def llama_server(binary: Path, parallel: int, draft: bool, args) -> Iterator[str]:
    """llama-server on the same models, `-np parallel` (a context of n_ctx per slot)."""
    port = free_port()  # a port of its own: the servers run side by side
    command = [
        str(binary), "-m", str(fetch(CATALOG[MAIN])), "-np", str(parallel),
        "-c", str(args.n_ctx * parallel), "-t", str(args.threads or os.cpu_count()),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    if draft:
        command += ["-md", str(fetch(CATALOG[DRAFT]))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LLAMA_SERVER_START
        while not _healthy(url):  # llama-server has no readiness signal but /health: polled
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{binary} did not start: {' '.join(command)}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def servers(args) -> dict[str, AbstractContextManager[str]]:
    """Every server the ways need, by name (each a context manager giving its URL)."""
    most = max(args.clients)
    made = {"ours, one sequence": ours(1, args), "ours, batched": ours(most, args)}
    if args.llama_server is not None:
        made["llama-server"] = llama_server(args.llama_server, most, False, args)
        made["llama-server -md"] = llama_server(args.llama_server, most, True, args)
    return made


def ways(args) -> list[tuple[Way, str]]:
    """Each way with the name of the server it runs on."""
    most = max(args.clients)
    listed = [
        (Way(SERIAL, MAIN, {"draft_model": DRAFT}), "ours, one sequence"),
        (Way("batched plain", MAIN, {"draft_model": None}), "ours, batched"),
        (Way("batched speculative", MAIN, {"draft_model": DRAFT}), "ours, batched"),
    ]
    if args.llama_server is not None:
        listed += [
            (Way(f"llama-server -np {most}", MAIN, {}), "llama-server"),
            (Way(f"llama-server -np {most} -md", MAIN, {}), "llama-server -md"),
        ]
    return listed


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each row's aggregate tokens/s over one at a time's at the same number of clients."""
    serial = {r["clients"]: r["tokens_per_second"] for r in rows if r["way"] == SERIAL}
    return [{**r, "ratio": r["tokens_per_second"] / serial[r["clients"]]} for r in rows]


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| way | clients | tokens/s (all clients) | x one at a time | latency p50 (s) | p95 (s) "
        "| short request p95 (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['way']} | {r['clients']} | {r['tokens_per_second']:.1f} | {r['ratio']:.2f}x "
            f"| {r['latency_p50']:.1f} | {r['latency_p95']:.1f} | {r['short_latency_p95']:.1f} |"
        )
    return "\n".join(lines)


def chart(rows: list[dict], path: Path, title: str) -> None:
    with figure(path, title, (7, 4.5)) as ax:
        for name in dict.fromkeys(r["way"] for r in rows):
            mine = [r for r in rows if r["way"] == name]
            clients, speeds = [r["clients"] for r in mine], [r["tokens_per_second"] for r in mine]
            ax.plot(clients, speeds, "o-", label=name)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel("aggregate tokens/s")
        ax.set_xticks(sorted({r["clients"] for r in rows}))
        ax.legend(fontsize=8)


def main() -> None:
    flags = parser(__doc__, quick="1 and 2 clients, 24 tokens")
    flags.add_argument("--clients", type=int, nargs="+", help="numbers of clients (1 2 4 8)")
    flags.add_argument("--max-tokens", type=int, help="tokens per request (128, quick 24)")
    flags.add_argument("--short-tokens", type=int, help="the first client's (max-tokens / 4)")
    flags.add_argument("--requests", type=int, default=1, help="requests per client, in turn")
    flags.add_argument("--repeat", type=int, help="measures of each way at each N (3, quick 1)")
    flags.add_argument("--n-ctx", type=int, default=1024, help="context per sequence")
    flags.add_argument("--llama-server", type=Path, help="a llama-server binary to compare")
    flags.add_argument("--out", type=Path, help="the JSON's path (the .md and .png go beside)")
    args = flags.parse_args()
    args.clients = args.clients or ([1, 2] if args.quick else [1, 2, 4, 8])
    args.max_tokens = args.max_tokens or (24 if args.quick else 128)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.short_tokens = args.short_tokens or max(1, args.max_tokens // 4)
    out = result_path(args.out, f"concurrency{'-quick' if args.quick else ''}")
    report = Report(
        out,
        args.threads,
        main=MAIN,
        draft=DRAFT,
        max_tokens=args.max_tokens,
        short_tokens=args.short_tokens,
        requests_per_client=args.requests,
        repeats=args.repeat,
        n_ctx=args.n_ctx,
        cores=os.cpu_count(),
    )
    listed = ways(args)
    rows = []
    with ExitStack() as stack:
        urls = {name: stack.enter_context(server) for name, server in servers(args).items()}
        warm_up = argparse.Namespace(**{**vars(args), "requests": 1})
        for way, server in listed:
            measure(way, urls[server], 1, warm_up)
        for clients in args.clients:
            repeats: dict[str, list[tuple[list[Sent], float]]] = {w.name: [] for w, _ in listed}
            for turn in range(args.repeat):
                shift = turn % len(listed)
                for way, server in listed[shift:] + listed[:shift]:
                    repeats[way.name].append(measure(way, urls[server], clients, args))
            for way, _ in listed:
                rows.append(summary(way, clients, repeats[way.name]))
                print(json.dumps(rows[-1]), flush=True)
    rows = with_ratios(rows)
    table = markdown_table(rows)
    title = f"{MAIN} (draft {DRAFT}), greedy, {args.max_tokens} tokens a request, "
    title += report.setting()
    report.write(table, partial(chart, rows, title=title), runs=rows)
    print(table)
    report.done()


if __name__ == "__main__":
    main()
