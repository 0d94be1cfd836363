"""Acceptance (accepted / drafted) at T=0.8 and k=4: rejection sampling (no seed) against
keyed Gumbel-max sampling (a seed), the price of a seed that fixes the text.

    python benchmarks/seeded_acceptance.py toy-trigram toy-bigram 60
    python benchmarks/seeded_acceptance.py qwen2.5-coder-1.5b qwen2.5-coder-0.5b 6
"""

from __future__ import annotations

import sys

from specdec_jupyter import load

TOY_PROMPTS = ["when the draft model", "the main model", "speculative decoding"]
PROMPTS = [
    "Write a Python function that reverses a linked list.",
    "Explain what a hash map is.",
    "Write a quicksort in Python.",
]


def main(main_model: str, draft_model: str, runs: int) -> None:
    session = load(main_model, draft_model, n_ctx=1024, progress=False)
    prompts = TOY_PROMPTS if main_model.startswith("toy-") else PROMPTS
    for label, seeds in (("rejection (no seed)", [None] * runs), ("keyed (seed)", range(runs))):
        accepted = drafted = 0
        for i, seed in enumerate(seeds):
            stats = session.generate(
                prompts[i % len(prompts)], temperature=0.8, seed=seed, draft_tokens=4,
                max_tokens=64,
            ).stats  # fmt: skip
            accepted += stats.accepted_draft_tokens_count
            drafted += stats.total_draft_tokens_count
        print(f"{main_model}: {label}: {accepted}/{drafted} = {accepted / max(drafted, 1):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
