"""`%specdec` and `%%specdec`, registered by `%load_ext specdec_jupyter`.

    %specdec models                                   # what is on this machine
    %specdec load qwen2.5-coder-1.5b --draft qwen2.5-coder-0.5b
    %specdec connect http://gpu-box:1234 --model M --draft D   # or run on a server
    %specdec chat                                     # the chat widget on that pair
    %specdec teach --k 3 the main model               # speculative decoding step by step
    %%specdec --max-tokens 128                        # the cell is the prompt
    Write a quicksort in Python.
    %specdec stats                                    # the last generation's stats

Every subcommand takes --help. Argument errors are one line (IPython's UsageError), and
so are the package's own errors (a missing model, an incompatible draft), never a
traceback. One `Magics` object per shell keeps the loaded pair and the last stats;
models themselves are held by the kernel's shared EngineManager. Every run setting and load
option is a flag (declared once, in settings.py) whose default `%config` changes, as
jupysql's are: `%config SpecDecMagics.max_tokens = 128`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import traitlets
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .decoding.cost_memory import default_store
from .decoding.events import GenerationStats, TokenEvent
from .display.listing import costs_answer, models_report
from .display.progress import default_display
from .display.stats_layout import rows_to_text
from .engines.registry import DEFAULT_KIND, KINDS, EngineNote
from .engines.resolve import resolve
from .errors import SpecDecError, one_line
from .models.discovery import discover, model_roots
from .models.names import short_name
from .sessions.pair import DEFAULT, Pair, Remembered
from .sessions.remote import RemoteSession, connect
from .sessions.service import EngineService
from .settings import Declared, LoadOptions, RunSettings, Settings, add_flags
from .widgets.chat import ChatWidget
from .widgets.chat.widget import chat_settings
from .widgets.reply import ReplyWidget, finish_reply
from .widgets.teach import TeachWidget
from .widgets.teach import widget as teach

SUBCOMMANDS = ("models", "load", "connect", "chat", "teach", "stats", "costs")
OVERVIEW = """\
%specdec models                       list the models on this machine
%specdec load MAIN [--draft D | --no-draft] [--engine ENGINE] [--gpu-layers N] ...
%specdec connect URL [--model M] [--draft D | --no-draft] [--api-key KEY]   run on a server
%specdec chat                         the chat widget on the loaded pair
%specdec teach [PROMPT] [--k K] ...   step through rounds on the loaded pair (else the toy)
%specdec stats                        stats of the last generation
%specdec costs [--reset]              the call costs auto remembers (--reset forgets them)
%%specdec [--max-tokens N] [--temperature T] [--no-draft] ...   the cell is the prompt
Each takes --help."""


@magic_arguments(name="specdec models")
def _models_args(line: str) -> None:
    """List the models found on this machine (our folder, LM Studio's, the Hugging Face
    cache, $SPECDEC_MODEL_PATH), with the reason for every one that cannot be used."""


@magic_arguments(name="specdec load")
@argument("main", help="main model: catalog name, path, or a name `%%specdec models` lists")
@argument("--draft", help="draft model (default: the one remembered for MAIN, if any)")
@argument("--no-draft", action="store_true", help="no draft: plain decoding")
@argument(
    "--engine",
    choices=list(KINDS),
    help="engine (default: the model's own: llama.cpp for GGUF files, mlx for MLX folders)",
)
def _load_args(line: str) -> None:
    """Load a main model and a draft for `%%specdec` and `%specdec chat` (a bar in the cell
    shows how far each fetch and load has got); an incompatible draft is refused with the
    reasons."""


add_flags(_load_args.parser, LoadOptions)


@magic_arguments(name="specdec connect")
@argument("url", help="a `specdec-jupyter serve` server, e.g. http://gpu-box:1234")
@argument("--model", help="main model id (default: the server's first GGUF model)")
@argument("--draft", help="draft model id (default: the model's default draft there)")
@argument("--no-draft", action="store_true", help="no draft: plain decoding")
@argument("--api-key", help="the server's --api-key")
def _connect_args(line: str) -> None:
    """Run `%%specdec` cells on a server instead of this kernel (`sd.connect`); `%specdec
    load` switches back to local models."""


@magic_arguments(name="specdec chat")
def _chat_args(line: str) -> None:
    """Show the chat widget, on the pair `%specdec load` loaded (else the first model found)."""


@magic_arguments(name="specdec teach")
@argument("prompt", nargs="*", help="the prompt (default: one that suits the pair)")
@argument("--k", type=int, default=argparse.SUPPRESS, help="draft tokens per round (default 4)")
def _teach_args(line: str) -> None:
    """Show speculative decoding one round at a time, stage by stage, on the pair
    `%specdec load` loaded (with its draft), else on the toy pair: q and p bars, u
    against min(1, p/q), the residual after a rejection, the bonus after a full accept.
    Unless given, the settings are the teacher's (temperature 1, seed 0, 64 tokens)."""


add_flags(_teach_args.parser, RunSettings, only=teach.RUN_SETTINGS)


@magic_arguments(name="specdec stats")
def _stats_args(line: str) -> None:
    """Show the stats of the last generation (a `%%specdec` cell or a reply in the chat
    widget), with LM Studio's names."""


@magic_arguments(name="specdec costs")
@argument("--reset", action="store_true", help="forget every remembered cost")
def _costs_args(line: str) -> None:
    """Show the call costs `draft_tokens="auto"` remembers per model file and machine (a
    main model's call by its size, a draft model's token), or forget them with --reset."""


@magic_arguments(name="%specdec")
def _cell_args(line: str) -> None:
    """Generate from the cell's text (one user message) with the loaded pair; the reply
    streams into the cell, accepted draft tokens in green. A flag not given takes its
    `%config SpecDecMagics` default."""


add_flags(_cell_args.parser, RunSettings)


def _configurable(settings: type[Declared]) -> dict[str, traitlets.TraitType]:
    """A `%config`-able trait per setting, defaulting to the declared default (checked when
    a run uses it, as a flag's value is)."""
    return {
        f.name: traitlets.Any(f.default, help=f.metadata["door"].help).tag(config=True)
        for f in settings.declared()
    }


@magics_class
class SpecDecMagics(Magics):
    """`%specdec` and `%%specdec`; the defaults of every run setting and load option are
    traits here, for `%config SpecDecMagics.NAME = VALUE`."""

    vars().update(_configurable(RunSettings) | _configurable(LoadOptions))

    def __init__(self, shell: Any):
        super().__init__(shell)
        self.service: EngineService | None = None
        self.remote: RemoteSession | None = None  # `%specdec connect`: cells run there
        self.main: str | None = None
        self.draft: str | None = None
        self.options = LoadOptions()  # what the loaded pair was loaded with
        self.last_stats: list[list[str]] | None = None  # rows, as stats_rows formats them
        self.chat: ChatWidget | None = None  # the last `%specdec chat`, taken over when run again

    def configured(self, settings: type[Settings], args: Any) -> Settings:
        """The settings the flags give, the rest as `%config` has them."""
        return settings.among({name: getattr(self, name) for name in settings.names()} | vars(args))

    @line_cell_magic
    def specdec(self, line: str, cell: str | None = None) -> Any:
        """Speculative decoding: `%specdec models|load|chat|stats`, or `%%specdec` with the
        cell as the prompt. Add --help to any of them."""
        with _one_line_errors():
            if cell is not None:
                return self._generate(line, cell)
            command, _, rest = line.strip().partition(" ")
            if command in ("", "-h", "--help"):
                print(OVERVIEW)
                return None
            if command not in SUBCOMMANDS:
                raise UsageError(
                    f"%specdec: unknown command {command!r}; use one of "
                    f"{', '.join(SUBCOMMANDS)} (each takes --help), or %%specdec for a prompt"
                )
            return getattr(self, f"_{command}")(rest)

    def _models(self, rest: str) -> None:
        if _parse(_models_args, rest) is not None:
            print(models_report(discover(), model_roots()))

    def _load(self, rest: str) -> None:
        args = _parse(_load_args, rest)
        if args is None:
            return
        if args.draft and args.no_draft:
            raise UsageError("%specdec load: give --draft D or --no-draft, not both")
        try:
            options = self.configured(LoadOptions, args)
        except ValueError as exc:
            raise UsageError(f"%specdec load: {exc}") from None
        engine = args.engine or resolve(args.main).kind
        service = EngineService(engine)
        main = service.key_of(args.main)
        draft = None if args.no_draft else args.draft and service.key_of(args.draft)
        if draft is None and not args.no_draft:
            draft = service.default_draft(main)
        named = short_name(Path(main)) + (f" with draft {short_name(Path(draft))}" if draft else "")
        print(f"loading {named}" + ("" if draft else " (no draft)") + " …")
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always", EngineNote)
            service.prepare(Pair(main, draft, options=options), on_progress=default_display())
        for note in notes:
            print(f"note: {note.message}")
        self.service, self.main, self.draft = service, main, draft
        self.options, self.remote = options, None
        print(f"ready ({service.engine})")

    def _load_default(self) -> None:
        """No pair loaded yet: the one `%specdec chat` opens with (the engine's default main
        model when it is here, else the first found, with its default draft), loaded as
        `%specdec load` loads it, so a first `%%specdec` cell runs as a first chat does."""
        main = EngineService(DEFAULT_KIND).default_main()
        if main is None:
            raise SpecDecError(
                "no model loaded and none found: fetch the pair with `specdec-jupyter models "
                "fetch qwen2.5-coder-pair`, or run `%specdec load MAIN [--draft D]` (or "
                "`%specdec connect URL`)"
            )
        print("no pair loaded yet: the chat's default pair (`%specdec load` picks another)")
        self._load(shlex.quote(main))

    def _connect(self, rest: str) -> None:
        args = _parse(_connect_args, rest)
        if args is None:
            return
        if args.draft and args.no_draft:
            raise UsageError("%specdec connect: give --draft D or --no-draft, not both")
        draft = None if args.no_draft else (args.draft or DEFAULT)
        remote = connect(args.url, args.model, draft, api_key=args.api_key)
        served = {m["id"] for m in remote.models()}
        if remote.model not in served:
            raise SpecDecError(
                f"{args.url} does not serve {remote.model!r}; it serves {', '.join(sorted(served))}"
            )
        self.remote = remote
        print(
            f"connected to {remote.url}: {remote.model}"
            + (" (no draft)" if draft is None else f" with draft {_draft_name(draft)}")
        )

    def _chat(self, rest: str) -> ChatWidget | None:
        if _parse(_chat_args, rest) is None:
            return None
        if self.remote is not None:
            remote = self.remote
            chat = ChatWidget(remote.model, remote.draft, server=remote.url, api_key=remote.api_key)
        elif self.service is None:
            chat = ChatWidget()
        else:  # the loaded pair as it was loaded (exact, context...): the same models
            loaded = chat_settings(self.options.to_dict())
            chat = ChatWidget(self.main, self.draft, engine=self.service.engine, **loaded)
        if self.chat is not None:  # the cell run again: its conversation goes on here
            chat.take_over(self.chat)
        chat.observe(self._remember_reply, "messages")
        self.chat = chat
        return chat

    def _teach(self, rest: str) -> TeachWidget | None:
        args = _parse(_teach_args, rest)
        if args is None:
            return None
        if self.service is None:
            main, draft, engine = None, None, "toy"
        elif self.draft is None:
            raise SpecDecError(
                "the loaded pair has no draft: `%specdec load MAIN --draft D` first "
                "(or `%specdec load toy-trigram --engine toy`)"
            )
        else:
            main, draft, engine = self.main, self.draft, self.service.engine
        settings = {key: value for key, value in vars(args).items() if key != "prompt"}
        try:
            return TeachWidget(
                main, draft, engine=engine, prompt=_unquoted(" ".join(args.prompt)), **settings
            )
        except ValueError as exc:  # a setting out of range
            raise UsageError(f"%specdec teach: {exc}") from None

    def _stats(self, rest: str) -> None:
        if _parse(_stats_args, rest) is None:
            return
        if self.last_stats is None:
            print("no generation yet: run a %%specdec cell or chat in %specdec chat")
            return
        print(rows_to_text(self.last_stats))

    def _costs(self, rest: str) -> None:
        args = _parse(_costs_args, rest)
        if args is None:
            return
        print(costs_answer(default_store(), args.reset))

    def _remember_reply(self, change: dict) -> None:
        replies = [m for m in change["new"] if m["role"] == "assistant" and "stats_rows" in m]
        if replies:
            self.last_stats = replies[-1]["stats_rows"]

    def _generate(self, line: str, cell: str) -> None:
        args = _parse(_cell_args, line)
        if args is None:
            return
        prompt = cell.strip()
        if not prompt:
            raise UsageError("%%specdec: the cell is empty; write the prompt below the magic")
        settings = self.configured(RunSettings, args)
        events, stats_of, main, draft = self._run(prompt, settings)
        reply = ReplyWidget()
        shown = display(reply, display_id=True)
        error, shown_events = None, []
        try:
            for event in events:  # on this thread: the widget's messages need the cell's context
                shown_events.append(event)
                reply.add(event)
        except SpecDecError as exc:  # shown with the text generated before it
            error = str(exc)
        stats = stats_of()
        message = finish_reply(
            shown_events,
            stats,
            error=error,
            speeds_of=self.main if self.remote is None and self.main else main,
            main_model=main,
            draft_model=draft,
            settings=settings.to_dict(),
        )
        reply.finish(message)
        shown.update(reply)  # once, at the end: the HTML copy for viewers without a kernel
        if stats is not None:
            self.last_stats = message["stats_rows"]

    def _run(
        self, prompt: str, settings: RunSettings
    ) -> tuple[Iterable[TokenEvent], Callable[[], GenerationStats | None], str, str | None]:
        """The cell's events, where its stats will be, and the two models' names: from the
        server after `%specdec connect`, else from the loaded pair."""
        if self.remote is not None:
            remote = self.remote
            draft = remote.draft if settings.use_draft else None
            events = remote.stream(prompt, settings)
            return events, lambda: remote.last_stats, remote.model, _draft_name(draft)
        if self.service is None or self.main is None:
            self._load_default()
        assert self.service is not None and self.main is not None
        draft = self.draft if settings.use_draft else None
        run = self.service.start(prompt, Pair(self.main, draft, options=self.options), settings)
        return run, lambda: run.stats, short_name(Path(self.main)), _draft_name(draft)


def _draft_name(draft: str | Remembered | None) -> str | None:
    """How a reply names its draft: a model's short name, "default" for a server's own."""
    if draft is DEFAULT:
        return "default"
    return draft and short_name(Path(draft))


def _unquoted(text: str) -> str | None:
    """The words as the user meant them: `teach "What is x?"` without its quotes (IPython's
    parser keeps them); None for none."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    return text or None


def _parse(func: Callable, rest: str) -> Any:
    """Parsed arguments, or None after printing the help when --help was asked for; a line
    that cannot be split into words (an open quote) is a UsageError."""
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"{func.parser.prog}: {exc} in {rest!r}") from None
    if {"-h", "--help"} & set(words):
        print(func.parser.format_help())
        return None
    return parse_argstring(func, rest)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """The package's errors are written for users: show the message, not a traceback."""
    try:
        yield
    except (SpecDecError, OSError) as exc:  # OSError: the user's files (permissions, folders)
        print(f"specdec: {one_line(exc)}", file=sys.stderr)
