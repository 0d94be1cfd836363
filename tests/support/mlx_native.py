"""mlx-lm's own speculative generation, as a child process: the comparison test runs it on
the second core while ours runs on the first (MLX's CPU kernels use one core each).

    python tests/mlx_native.py MAIN_DIR DRAFT_DIR '[prompt tokens]' K MAX_TOKENS

prints {"first": ..., "tokens": [...], "from_draft": [...]} as JSON. mlx-lm's loop
drafts from the prompt's last token, where ours takes the first token from the
prefill as plain decoding does; so mlx-lm gets the prompt plus its own plain
first token, and its rounds line up with ours from our second token on.
"""

from __future__ import annotations

import json
import sys

import mlx.core as mx
from mlx_lm import load, stream_generate


def native_speculative(
    main_dir: str, draft_dir: str, prompt: list[int], k: int, max_tokens: int
) -> dict:
    model, tokenizer = load(main_dir)
    draft, _ = load(draft_dir)
    for m in (model, draft):
        m.set_dtype(mx.float32)  # as MlxEngine does on a CPU: the same weights, the same sums
    first = next(stream_generate(model, tokenizer, prompt, max_tokens=1)).token
    responses = list(
        stream_generate(
            model,
            tokenizer,
            [*prompt, first],
            max_tokens=max_tokens,
            draft_model=draft,
            num_draft_tokens=k,
        )
    )
    return {
        "first": first,
        "tokens": [r.token for r in responses],
        "from_draft": [r.from_draft for r in responses],
    }


if __name__ == "__main__":
    main_dir, draft_dir, prompt, k, max_tokens = sys.argv[1:]
    result = native_speculative(main_dir, draft_dir, json.loads(prompt), int(k), int(max_tokens))
    print(json.dumps(result))
