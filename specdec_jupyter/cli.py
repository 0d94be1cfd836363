"""The `specdec-jupyter` command: fetch models, generate with provenance in the terminal."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence

from .errors import SpecDecError
from .models.catalog import CATALOG, DEFAULT_DRAFT, DEFAULT_MAIN, GROUPS, resolve_names
from .models.fetch import fetch, is_fetched
from .models.paths import models_dir
from .render import event_to_ansi, stats_to_text
from .result import GenerationResult


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specdec-jupyter",
        description="Speculative decoding with llama.cpp: a draft model proposes, "
        "the main model verifies, accepted draft tokens print green.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="the model catalog")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch_parser = model_commands.add_parser(
        "fetch", help="fetch catalog models into the models folder ($SPECDEC_MODELS_DIR)"
    )
    fetch_parser.add_argument("names", nargs="*", help="catalog names or groups (see --list)")
    fetch_parser.add_argument("--list", action="store_true", help="show what the catalog knows")
    fetch_parser.add_argument("--quiet", action="store_true", help="no progress bar")

    generate = commands.add_parser("generate", help="generate text, speculatively by default")
    generate.add_argument(
        "--main", help=f"main model: a .gguf path or catalog name (default {DEFAULT_MAIN})"
    )
    generate.add_argument(
        "--draft",
        help=f"draft model: a .gguf path or catalog name (default {DEFAULT_DRAFT} "
        "when --main is not given, else none)",
    )
    generate.add_argument("--prompt", required=True, help="the user message (or raw text)")
    generate.add_argument("--system", help="a system message to put first")
    generate.add_argument(
        "--raw", action="store_true", help="send the prompt without a chat template"
    )
    generate.add_argument("--max-tokens", type=int, default=256)
    generate.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    generate.add_argument("--top-k", type=int, default=0, help="0 switches top-k off")
    generate.add_argument("--top-p", type=float, default=1.0)
    generate.add_argument("--seed", type=int, help="seed for sampling (temperature > 0)")
    generate.add_argument("--draft-tokens", type=int, default=3, help="tokens drafted per round")
    generate.add_argument("--no-draft", action="store_true", help="plain decoding, same loop")
    generate.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    generate.add_argument("--n-ctx", type=int, default=4096, help="context size in tokens")
    generate.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "models":
            return _models_fetch(args)
        return _generate(args)
    except SpecDecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _models_fetch(args: argparse.Namespace) -> int:
    if args.list or not args.names:
        print(f"models folder: {models_dir()}")
        for key, model in CATALOG.items():
            state = "fetched" if is_fetched(model) else "not fetched"
            print(f"  {key:24} {model.size / 1e6:7.0f} MB  {state:11}  {model.role}")
        for group, keys in GROUPS.items():
            print(f"  {group:24} group: {', '.join(keys)}")
        return 0
    for model in resolve_names(args.names):
        already = is_fetched(model)
        path = fetch(model, progress=not args.quiet)
        print(f"{model.key}: {'already there' if already else 'fetched'} at {path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .session import load  # llama.cpp loads only for the commands that need it

    main_ref = args.main or DEFAULT_MAIN
    draft_ref = args.draft if args.main else (args.draft or DEFAULT_DRAFT)
    if args.no_draft:
        draft_ref = None
    session = load(main_ref, draft_ref, n_ctx=args.n_ctx, progress=not args.json)
    stopping = _StopOnInterrupt()
    color = sys.stdout.isatty() and not args.json
    events = []
    stream = session.stream(
        args.prompt,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        draft_tokens=args.draft_tokens,
        stop=args.stop,
        system=args.system,
        raw=args.raw,
        should_stop=stopping,
    )
    with stopping:
        for event in stream:
            events.append(event)
            if not args.json:
                print(event_to_ansi(event, color), end="", flush=True)
    result = GenerationResult(events, session.last_stats)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print("\n\n" + stats_to_text(result.stats), file=sys.stderr)
    return 0


class _StopOnInterrupt:
    """Ctrl-C ends the generation after the current round, keeping the text so far;
    a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> _StopOnInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


if __name__ == "__main__":
    sys.exit(main())
