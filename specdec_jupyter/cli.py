"""The `specdec-jupyter` command: fetch models, generate with provenance in the terminal."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .display.progress import showing
from .display.stats_layout import stats_to_text
from .display.terminal import event_to_ansi
from .engines.registry import DEFAULT_KIND, KIND_OF_FORMAT, KINDS, EngineNote, engine_kind
from .engines.resolve import resolve
from .errors import SettingsError, SpecDecError, one_line
from .models.catalog import CATALOG, DEFAULT_DRAFT, DEFAULT_MAIN, GROUPS, resolve_names
from .models.fetch import fetch, is_fetched
from .models.hub import (
    HUB_MODELS,
    HUB_PAIRS,
    HubMirror,
    ModelHub,
    fetch_hub_model,
    hub_names,
    is_hub_name,
)
from .models.paths import models_dir
from .sessions.examples import CODE_EDIT, CODE_EDIT_TITLE
from .sessions.result import GenerationResult
from .settings import LoadOptions, RpcWorker, RunSettings, add_flags

if TYPE_CHECKING:
    from .sessions.session import Session


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
    fetch_parser.add_argument(
        "names",
        nargs="*",
        help="catalog names or groups (see --list), or hub names: owner/repo[:QUANT] as "
        "llama.cpp's -hf takes them (Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M), or a seed pair "
        "(llama-3.1-8b-pair, qwen2.5-14b-pair, deepseek-r1-distill-qwen-32b-pair)",
    )
    fetch_parser.add_argument(
        "--mirror", help="a folder laid out as the model hub (owner/repo/files) to fetch from"
    )
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

    costs = commands.add_parser(
        "costs",
        help="the call costs `auto` remembers per model and machine (--reset forgets them)",
    )
    costs.add_argument("--reset", action="store_true", help="forget every remembered cost")

    serve = commands.add_parser(
        "serve", help="LM Studio's /api/v0 and OpenAI's /v1 API, with draft_model and stats"
    )
    serve.add_argument("folders", nargs="*", help="more folders to find models in")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=_port, default=1234, help="0: any free port")
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on every request")
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides loopback ones (repeatable; '*': any)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web page allowed to call the server from a browser, e.g. "
        "http://localhost:8888 (repeatable)",
    )
    serve.add_argument(
        "--cors", action="store_true", help="let any web page call the server (CORS for all)"
    )
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
    generate.add_argument("--prompt", required=True, help="the user message (or raw text)")
    _add_generation_flags(generate)
    demo = commands.add_parser(
        "demo",
        help="speculative decoding where it pays on this machine: a code edit, drafted by "
        "copying from the prompt and by the draft model (draft mode hybrid, auto), then plain "
        "decoding on the same prompt for the speedup",
    )
    demo.add_argument("--prompt", default=CODE_EDIT, help="another prompt (default: a code edit)")
    _add_generation_flags(demo)
    demo.set_defaults(draft_mode="hybrid", compare=True, max_tokens=320)
    return parser


def _add_generation_flags(parser: argparse.ArgumentParser) -> None:
    """What `generate` and `demo` share: the models, every run setting and load option."""
    parser.add_argument(
        "--main",
        help="main model: a catalog name, a path, or a name `models list` prints "
        f"(default {DEFAULT_MAIN}; toy-trigram on --engine toy)",
    )
    parser.add_argument(
        "--draft",
        help=f"draft model, named as --main (default: the one remembered for the main model, "
        f"{DEFAULT_DRAFT} for {DEFAULT_MAIN})",
    )
    parser.add_argument(
        "--engine",
        choices=list(KINDS),
        help="llama.cpp runs .gguf files, mlx runs MLX model folders (catalog names are "
        "converted to MLX on first use), toy the numpy n-gram pair; default: the model's own",
    )
    add_flags(parser, RunSettings)
    add_flags(parser, LoadOptions)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _port(word: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    if not word.isdigit() or int(word) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {word!r}")
    return int(word)


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
        if args.command == "costs":
            return _costs(args)
        if args.command == "rpc-worker":
            return _rpc_worker(args)
        return _generate(args)  # generate, demo
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
        print("from a model hub (owner/repo[:QUANT] fetches any GGUF repository):")
        for pair, keys in HUB_PAIRS.items():
            print(f"  {pair:24} pair: {', '.join(f'{k} ({HUB_MODELS[k]})' for k in keys)}")
        return 0
    hub = HubMirror(Path(args.mirror)) if args.mirror else ModelHub()
    for name in args.names:
        if name in CATALOG or name in GROUPS or not is_hub_name(name):
            for model in resolve_names([name]):
                already = is_fetched(model)
                path = fetch(model)
                print(f"{model.key}: {'already there' if already else 'fetched'} at {path}")
            continue
        for hub_name in hub_names(name):
            print(f"{hub_name}: at {fetch_hub_model(hub_name, hub)}")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from .display.listing import models_report
    from .models.discovery import discover, model_roots
    from .models.names import short_name

    models = discover(args.folders)
    if args.json:
        listed = [
            {**m.to_dict(), "label": short_name(m.path), "engine": KIND_OF_FORMAT[m.info.format]}
            for m in models
        ]
        print(json.dumps(listed, ensure_ascii=False, indent=1))
    else:
        print(models_report(models, model_roots(args.folders)))
    return 0


def _compat(args: argparse.Namespace) -> int:
    from .display.listing import compat_report
    from .models.discovery import discover
    from .models.drafts.verdicts import check_drafts
    from .models.metadata import read_model_info
    from .models.names import short_name

    main_path = resolve(args.main, fetch=False).path
    main_info = read_model_info(main_path)
    if main_info.problem:
        raise SpecDecError(f"{main_path}: {main_info.problem}")
    if args.candidates:
        named = [(name, resolve(name, fetch=False).path) for name in args.candidates]
    else:
        named = [
            (short_name(m.path), m.path)
            for m in discover()
            if m.path.resolve() != main_path.resolve()
        ]
    verdicts = check_drafts(main_path, [path for _, path in named])
    rows = [(name, verdict) for (name, _), verdict in zip(named, verdicts, strict=True)]
    found_elsewhere = []  # drafts of the same vocabulary beyond the candidates named
    if args.candidates and not any(v.compatible and not v.text_level for v in verdicts):
        judged = {path.resolve() for _, path in named} | {main_path.resolve()}
        others = [m for m in discover() if m.path.resolve() not in judged]
        verdicts_elsewhere = check_drafts(main_path, [m.path for m in others])
        found_elsewhere = [
            short_name(model.path)
            for model, verdict in zip(others, verdicts_elsewhere, strict=True)
            if verdict.compatible and not verdict.text_level
        ]
    if args.json:
        report = {
            "main": {"name": args.main, **main_info.to_dict()},
            "candidates": [{"name": name, **verdict.to_dict()} for name, verdict in rows],
            "found_elsewhere": found_elsewhere,
        }
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print(compat_report(args.main, main_info, rows, found_elsewhere))
    return 0


def _costs(args: argparse.Namespace) -> int:
    from .decoding.cost_memory import default_store
    from .display.listing import costs_answer

    print(costs_answer(default_store(), args.reset))
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
    try:
        serve(
            args.host,
            args.port,
            api_key=args.api_key,
            folders=args.folders,
            manager=manager,
            allow_hosts=args.allow_host,
            allow_origins=[*args.allow_origin, *(["*"] if args.cors else [])],
        )
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: no traceback
        pass
    finally:
        manager.close()
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

    settings = RunSettings.among(vars(args))  # checked before any model loads
    options = LoadOptions.among(vars(args)).settled(seeded=settings.seed is not None)
    if not settings.use_draft and (args.draft or settings.draft_mode):
        raise SettingsError("--no-draft runs plain decoding: drop --draft and --draft-mode")
    main_ref = args.main or engine_kind(args.engine or DEFAULT_KIND).default_pair[0]
    draft_ref = None
    if settings.use_draft and settings.draft_mode != "lookup":
        draft_ref = args.draft or _default_draft(main_ref, args.engine)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", EngineNote)
        session = load(
            main_ref,
            draft_ref,
            draft_mode=settings.draft_mode if draft_ref or settings.draft_mode else None,
            engine=args.engine,
            options=options,
            progress=not args.json,
        )
    for note in notes:
        print(f"note: {note.message}", file=sys.stderr)
    if args.command == "demo" and not args.json:
        print(_demo_header(session, settings, args.prompt), file=sys.stderr)
    stopping = _StopOnInterrupt()
    color = sys.stdout.isatty() and not args.json
    events = []
    with stopping, closing(session):  # freed at once: a model on RPC workers holds them
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


def _demo_header(session: Session, settings: RunSettings, prompt: str) -> str:
    drafts = {
        "hybrid": f"copied from the prompt or drafted by {session.draft and session.draft.name}",
        "lookup": "copied from the prompt",
        "model": f"drafted by {session.draft and session.draft.name}",
    }.get(settings.draft_mode or session.draft_mode or "", "none")
    plain = "; then plain decoding of the same prompt, for the speedup" if settings.compare else ""
    return (
        f"{CODE_EDIT_TITLE if prompt == CODE_EDIT else 'Your prompt'}, on {session.main.name}; "
        f"drafts {drafts} (draft tokens {settings.draft_tokens}){plain}. Accepted draft "
        "tokens print green.\n"
    )


def _default_draft(main: str, engine: str | None) -> str | None:
    """The draft `main` runs with when none is named: the one remembered for it, else its
    engine's default pair's; with none, a note says so (plain decoding is no silent choice)."""
    from .sessions.service import EngineService

    service = EngineService(engine or resolve(main, fetch=False).kind)
    key = service.key_of(main)
    draft = service.default_draft(key)
    if draft is None:
        print(
            f"note: no draft model is remembered for {main}: plain decoding. Name one with "
            f"--draft (`specdec-jupyter compat {main}` lists those that fit), or use "
            "--draft-mode lookup, which needs none",
            file=sys.stderr,
        )
    return draft


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
