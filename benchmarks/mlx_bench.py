"""The MLX section: plain, our loop, and mlx-lm's own generation on the converted Qwen pair.

    .venv/bin/python benchmarks/mlx_bench.py                  # seed prompts, 32 tokens, k = 2
    .venv/bin/python benchmarks/mlx_bench.py --max-tokens 64 --plain-only  # conversion vs GGUF

One command, one run, side by side, greedy, on the MLX conversions of the pair
(`specdec-jupyter models convert-mlx qwen2.5-coder-pair`; made on first use). For
each prompt (chat-templated): our loop plain, with k fixed and with k = "auto";
mlx-lm's `stream_generate` plain and with `draft_model=..., num_draft_tokens=k`, on
the very same loaded weights; and the GGUF original on llama.cpp, plain, as the
reference the conversion is measured against. Every run prefills from scratch.
tokens/s counts from the first token on (mlx-lm's `generation_tps` and our
`tokens_per_second` both leave the prefill out). Prints a table and writes JSON
(default benchmarks/results/mlx-<time>.json), with how many first tokens each run
shares with our plain MLX run and with llama.cpp's run of the GGUF original.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import mlx_lm
from common import machine, result_path
from mlx_lm import stream_generate
from prompts import SEED_PROMPTS
from speculative import DRAFT, MAIN, agreement

import specdec_jupyter as sd

N_CTX = 2048


def run_ours(session: sd.Session, prompt: str, max_tokens: int, k: int | str | None) -> dict:
    """Our loop, from an empty cache."""
    session.reset()
    result = session.generate(
        prompt,
        max_tokens=max_tokens,
        use_draft=k is not None,
        draft_tokens=k or 0,
    )
    stats = result.stats
    return {
        "token_ids": result.token_ids,
        "tokens_per_second": stats.tokens_per_second,
        "time_to_first_token": stats.time_to_first_token,
        "from_draft": stats.accepted_draft_tokens_count,
    }


def run_mlx_lm(session: sd.Session, prompt: list[int], max_tokens: int, k: int | None) -> dict:
    """mlx-lm's own loop on the same model objects and prompt tokens (its caches are its own)."""
    options = {} if k is None else {"draft_model": session.draft.model, "num_draft_tokens": k}
    started = time.perf_counter()
    responses = list(
        stream_generate(session.main.model, session.main.tokenizer, prompt, max_tokens, **options)
    )
    first = responses[0]
    return {
        "token_ids": [r.token for r in responses],
        "tokens_per_second": responses[-1].generation_tps,
        "time_to_first_token": first.prompt_tokens / first.prompt_tps,
        "from_draft": sum(r.from_draft for r in responses),
        "wall_seconds": time.perf_counter() - started,
    }


def run_gguf(gguf: sd.Session, prompt: str, max_tokens: int) -> dict:
    gguf.reset()
    result = gguf.generate(prompt, max_tokens=max_tokens, use_draft=False)
    return {
        "token_ids": result.token_ids,
        "tokens_per_second": result.stats.tokens_per_second,
        "time_to_first_token": result.stats.time_to_first_token,
        "from_draft": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--k", type=int, default=2, help="draft tokens per round (fixed)")
    parser.add_argument("--prompts", type=int, default=len(SEED_PROMPTS), help="how many")
    parser.add_argument("--json", type=Path, help="where to write the JSON")
    parser.add_argument(
        "--plain-only",
        action="store_true",
        help="only our plain MLX run and the GGUF original: how far the conversion agrees",
    )
    args = parser.parse_args()

    session = sd.load(MAIN, draft=DRAFT, engine="mlx", n_ctx=N_CTX)
    gguf = sd.load(MAIN, n_ctx=N_CTX)
    k = args.k
    n = args.max_tokens
    runs: dict[str, Callable[[str, list[int]], dict]] = {  # (prompt text, its tokens) -> result
        "ours plain": lambda text, _: run_ours(session, text, n, None),
        f"ours k={k}": lambda text, _: run_ours(session, text, n, k),
        "ours auto": lambda text, _: run_ours(session, text, n, "auto"),
        "mlx-lm plain": lambda _, tokens: run_mlx_lm(session, tokens, n, None),
        f"mlx-lm k={k}": lambda _, tokens: run_mlx_lm(session, tokens, n, k),
        "llama.cpp plain (GGUF)": lambda text, _: run_gguf(gguf, text, n),
    }
    if args.plain_only:
        runs = {run: runs[run] for run in ("ours plain", "llama.cpp plain (GGUF)")}
    rows = []
    for name, text in list(SEED_PROMPTS.items())[: args.prompts]:
        tokens = session.prompt_tokens(text)
        print(f"\n{name} ({len(tokens)} prompt tokens)")
        print(f"  {'run':24} {'tok/s':>6} {'TTFT s':>7} {'drafted':>7} {'=plain':>6} {'=GGUF':>6}")
        results = {run: measure(text, tokens) for run, measure in runs.items()}
        plain, original = results["ours plain"], results["llama.cpp plain (GGUF)"]
        for run, result in results.items():
            result.update(
                prompt=name,
                run=run,
                agree_with_plain=agreement(plain["token_ids"], result["token_ids"]),
                agree_with_gguf=agreement(original["token_ids"], result["token_ids"]),
            )
            rows.append(result)
            print(
                f"  {run:24} {result['tokens_per_second']:6.2f} "
                f"{result['time_to_first_token']:7.1f} {result['from_draft']:7} "
                f"{result['agree_with_plain']:6} {result['agree_with_gguf']:6}"
            )

    out = result_path(args.json, "mlx")
    info = {
        **machine(),
        "mlx": mx.__version__,
        "mlx_lm": mlx_lm.__version__,
        "device": str(mx.default_device()),
        "load_average": os.getloadavg(),
    }
    report = {"machine": info, "max_tokens": args.max_tokens, "k": k, "runs": rows}
    out.write_text(json.dumps(report, indent=1))
    print(f"\nmachine: {info}\nJSON: {out}")


if __name__ == "__main__":
    main()
