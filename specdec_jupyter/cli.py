"""The `specdec-jupyter` command: fetch models, generate with provenance in the terminal."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from .display.progress import showing
from .display.stats_layout import stats_to_text
from .display.terminal import event_to_ansi
from .engines.registry import DEFAULT_KIND, KIND_OF_FORMAT, KINDS, EngineNote, engine_kind
from .engines.resolve import resolve
from .errors import SettingsError, SpecDecError, one_line
from .models.catalog import CATALOG, DEFAULT_DRAFT, DEFAULT_MAIN, GROUPS, resolve_names
from .models.fetch import fetch, is_fetched
from .models.paths import models_dir
from .sessions.result import GenerationResult
from .settings import LoadOptions, RpcWorker, RunSettings, add_flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="specdec-jupyter",
        description="Speculative decoding on llama.cpp, MLX or a toy pair: a draft model "
        "proposes, the main model verifies, accepted draft tokens print green.",
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
    list_parser = model_commands.add_parser(
        "list",
        help="models found on disk (ours, $SPECDEC_MODEL_PATH, LM Studio's, the Hugging Face "
        "cache), and why any of them is unusable",
    )
    list_parser.add_argument("folders", nargs="*", help="more folders to search")
    list_parser.add_argument("--json", action="store_true", help="print one JSON array")
    convert = model_commands.add_parser(
        "convert-mlx",
        help="make mlx-lm model folders from GGUF files or catalog models "
        "(into <models folder>/mlx/NAME-<bits>bit unless --out; kept if already there)",
    )
    convert.add_argument("sources", nargs="+", help=".gguf files, catalog names or groups")
    convert.add_argument(
        "--bits", type=int, choices=(4, 8, 16, 32), default=4, help="4/8: quantized; 16/32: float"
    )
    convert.add_argument("--out", type=Path, help="the folder to write (one source only)")
    convert.add_argument("--quiet", action="store_true", help="no progress bar")

    compat = commands.add_parser(
        "compat", help="which models can draft for MAIN, and why the others cannot"
    )
    compat.add_argument("main", help="main model: a path, catalog name or listed name")
    compat.add_argument(
        "candidates", nargs="*", help="draft candidates (default: every model found)"
    )
    compat.add_argument("--json", action="store_true", help="print one JSON object")

    serve = commands.add_parser(
        "serve", help="LM Studio's /api/v0 and OpenAI's /v1 API, with draft_model and stats"
    )
    serve.add_argument("folders", nargs="*", help="more folders to find models in")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=1234)
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on every request")
    add_flags(serve, LoadOptions)

    worker = commands.add_parser(
        "rpc-worker",
        help="offer this machine's GPUs (or else its CPU) to a main model loaded elsewhere "
        "with --rpc HOST:PORT (llama.cpp's RPC backend; this same build on both sides)",
    )
    worker.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default loopback; RPC has no authentication: another "
        "address belongs on a trusted network only)",
    )
    worker.add_argument("--port", type=int, default=50052)
    worker.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    worker.add_argument(
        "--cache",
        type=Path,
        help="a folder where the worker keeps the weights it is sent, so the next load of "
        "the same model sends only their hashes",
    )

    generate = commands.add_parser("generate", help="generate text, speculatively by default")
    generate.add_argument(
        "--main",
        help="main model: a catalog name, a path, or a name `models list` prints "
        f"(default {DEFAULT_MAIN}; toy-trigram on --engine toy)",
    )
    generate.add_argument(
        "--draft",
        help=f"draft model, named as --main (default {DEFAULT_DRAFT}, or toy-bigram, "
        "when --main is not given, else none)",
    )
    generate.add_argument("--prompt", required=True, help="the user message (or raw text)")
    generate.add_argument(
        "--engine",
        choices=list(KINDS),
        help="llama.cpp runs .gguf files, mlx runs MLX model folders (catalog names are "
        "converted to MLX on first use), toy the numpy n-gram pair; default: the model's own",
    )
    add_flags(generate, RunSettings)
    add_flags(generate, LoadOptions)
    generate.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "models":
            handlers = {"list": _models_list, "convert-mlx": _models_convert_mlx}
            with showing(not getattr(args, "quiet", True)):  # fetching and converting
                return handlers.get(args.models_command, _models_fetch)(args)
        if args.command == "compat":
            return _compat(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "rpc-worker":
            return _rpc_worker(args)
        return _generate(args)
    except (SpecDecError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
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
        path = fetch(model)
        print(f"{model.key}: {'already there' if already else 'fetched'} at {path}")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from .display.listing import models_report
    from .models.discovery import discover, model_roots

    models = discover(args.folders)
    if args.json:
        listed = [{**m.to_dict(), "engine": KIND_OF_FORMAT[m.info.format]} for m in models]
        print(json.dumps(listed, ensure_ascii=False, indent=1))
    else:
        print(models_report(models, model_roots(args.folders)))
    return 0


def _compat(args: argparse.Namespace) -> int:
    from .display.listing import compat_report
    from .models.discovery import discover
    from .models.drafts.verdicts import check_drafts
    from .models.metadata import read_model_info

    main_path = resolve(args.main, fetch=False).path
    main_info = read_model_info(main_path)
    if main_info.problem:
        raise SpecDecError(f"{main_path}: {main_info.problem}")
    if args.candidates:
        named = [(name, resolve(name, fetch=False).path) for name in args.candidates]
    else:
        named = [(m.name, m.path) for m in discover() if m.path.resolve() != main_path.resolve()]
    verdicts = check_drafts(main_path, [path for _, path in named])
    rows = [(name, verdict) for (name, _), verdict in zip(named, verdicts, strict=True)]
    if args.json:
        report = {
            "main": {"name": args.main, **main_info.to_dict()},
            "candidates": [{"name": name, **verdict.to_dict()} for name, verdict in rows],
        }
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(compat_report(args.main, main_info, rows))
    return 0


def _models_convert_mlx(args: argparse.Namespace) -> int:
    try:
        from .models.mlx.catalog import convert_once, mlx_model_dir
    except ImportError as exc:
        raise SpecDecError(
            f"converting to MLX needs mlx and mlx-lm ({exc}); "
            "install them with: pip install 'specdec_jupyter[mlx]'"
        ) from exc
    jobs: list[tuple[str, Path, Callable[[], Path]]] = []  # (label, target, GGUF getter)
    for source in args.sources:
        path = Path(source).expanduser()
        if path.is_file():
            jobs.append((path.name, mlx_model_dir(path.stem, args.bits), partial(Path, path)))
        else:
            for model in resolve_names([source]):
                fetched = partial(fetch, model)
                jobs.append((model.key, mlx_model_dir(model.key, args.bits), fetched))
    if args.out is not None:
        if len(jobs) != 1:
            raise SpecDecError("--out names one folder: give exactly one model to convert")
        jobs = [(jobs[0][0], args.out, jobs[0][2])]
    for label, target, gguf in jobs:
        started = time.perf_counter()
        if convert_once(gguf(), target, bits=args.bits):
            print(f"{label}: converted in {time.perf_counter() - started:.0f} s to {target}")
        else:
            print(f"{label}: already there at {target}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .server.serve import serve
    from .sessions.manager import EngineManager

    manager = EngineManager(options=LoadOptions.among(vars(args)))
    serve(args.host, args.port, api_key=args.api_key, folders=args.folders, manager=manager)
    return 0


def _rpc_worker(args: argparse.Namespace) -> int:
    from .engines.rpc.worker import serve

    worker = RpcWorker.parse(f"{args.host}:{args.port}")
    if args.threads is not None and args.threads < 1:
        raise SettingsError(f"--threads must be at least 1, got {args.threads}")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # llama.cpp serves in C: Ctrl-C ends it there
    serve(worker, threads=args.threads, cache=args.cache, say=_say_whole_line)
    return 0


def _say_whole_line(text: str) -> None:
    """One write per line: llama.cpp prints to the same stdout from its own thread, and a
    line written in pieces (print's text, then its newline) can end up inside one of its."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def _generate(args: argparse.Namespace) -> int:
    from .sessions.session import load  # llama.cpp loads only for the commands that need it

    default_main, default_draft = engine_kind(args.engine or DEFAULT_KIND).default_pair
    main_ref = args.main or default_main
    draft_ref = args.draft if args.main else (args.draft or default_draft)
    settings = RunSettings.among(vars(args))  # checked before any model loads
    options = LoadOptions.among(vars(args)).settled(seeded=settings.seed is not None)
    if not settings.use_draft and (args.draft or settings.draft_mode):
        raise SettingsError("--no-draft runs plain decoding: drop --draft and --draft-mode")
    if not settings.use_draft or settings.draft_mode == "lookup":
        draft_ref = None
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", EngineNote)
        session = load(
            main_ref,
            draft_ref,
            draft_mode=settings.draft_mode,
            engine=args.engine,
            options=options,
            progress=not args.json,
        )
    for note in notes:
        print(f"note: {note.message}", file=sys.stderr)
    stopping = _StopOnInterrupt()
    color = sys.stdout.isatty() and not args.json
    events = []
    with stopping:
        for event in session.stream(args.prompt, settings, should_stop=stopping):
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
