"""Every setting a run or a model load takes, declared once: its default, its check, and how
each door offers it.

`RunSettings` is how to generate (max_tokens, temperature, ...), `LoadOptions` how to open a
pair of models (n_ctx, threads, GPU layers). Each field carries its rule (a `check`, which
refuses a bad value with a `SettingsError` naming it and the allowed range) and its `Door`:
the help text and command-line flag the CLI, the magics and `serve` derive their arguments
from, and the control a widget's settings form draws. A new setting is one field here; the
doors pick it up (the engines and the loop still have to use it).

A value is checked when the object is made (`RunSettings(...)`, `RunSettings.of(base,
**overrides)`), once per request, before any model loads.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import Field, asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Literal, TypeVar

from .errors import SettingsError

DraftMode = Literal["model", "lookup", "hybrid"]
DRAFT_MODES: tuple[DraftMode, ...] = ("model", "lookup", "hybrid")


# -- the rules -------------------------------------------------------------------------------


INT32_MAX = 2**31 - 1  # what llama.cpp's int fields hold: past it a value would wrap
SEED_LIMIT = 2**64  # seeds key 64-bit noise: a larger one would wrap onto a smaller one
MAX_THREADS = 512  # ggml's GGML_MAX_N_THREADS


def _integer(name: str, value: Any, minimum: int, rule: str, maximum: int = INT32_MAX) -> int:
    """An integer in [minimum, maximum] (by default what a C int holds, so nothing a backend
    is handed wraps)."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be {rule}, got {shown(value)}")
    return int(value)


def shown(value: Any) -> str:
    """A value as an error shows it: a huge number by its size, not its thousand digits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(value) > 10**40:
        return f"a number of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _number(name: str, value: Any, allowed: Callable[[float], bool], rule: str) -> float:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or not allowed(float(value)):
        raise SettingsError(f"{name} must be {rule}, got {shown(value)}")
    return float(value)


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def check_temperature(value: Any) -> float:
    return _number("temperature", value, lambda t: t >= 0, ">= 0 and finite (0 is greedy)")


def check_top_p(value: Any) -> float:
    return _number("top_p", value, lambda p: 0 < p <= 1, "in (0, 1] (1 switches it off)")


def check_min_p(value: Any) -> float:
    return _number("min_p", value, lambda p: 0 <= p <= 1, "in [0, 1] (0 switches it off)")


def check_top_k(value: Any) -> int:
    return _integer("top_k", value, 0, "an integer >= 0 (0 switches it off)")


def check_max_tokens(value: Any) -> int:
    return _integer("max_tokens", value, 1, f"an integer >= 1 (at most {INT32_MAX})")


def check_seed(value: Any) -> int | None:
    if value is None:
        return None
    return _integer("seed", value, 0, "an integer >= 0 and < 2**64, or None", SEED_LIMIT - 1)


def check_draft_tokens(value: Any) -> int | Literal["auto"]:
    if isinstance(value, str) and value == "auto":
        return "auto"
    return _integer("draft_tokens", value, 0, '"auto" or an integer >= 0')


def check_draft_mode(value: Any) -> DraftMode | None:
    if value is not None and (not isinstance(value, str) or value not in DRAFT_MODES):
        raise SettingsError(
            f"draft_mode must be one of {', '.join(DRAFT_MODES)}, got {shown(value)}"
        )
    return value


def check_stops(value: Any) -> tuple[str, ...]:
    """A string is one stop string (not one per character), a list or tuple several; each
    must be non-empty text (a mapping or a set is refused, not read for its keys)."""
    if value is None:
        return ()
    if not isinstance(value, str | list | tuple):
        raise SettingsError(f"stop must be a string or a list of strings, got {shown(value)}")
    stops = (value,) if isinstance(value, str) else tuple(value)
    for stop in stops:
        if not isinstance(stop, str) or not stop:
            raise SettingsError(f"each stop must be a non-empty string, got {shown(stop)}")
        check_unicode("a stop string", stop)
    return stops


def check_unicode(name: str, text: str) -> str:
    """`text` if it can be encoded, else one line on where it is not text (a lone surrogate,
    as Python keeps the bytes of invalid UTF-8 in a command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SettingsError(
            f"{name} is not valid text: character {exc.start} is {text[exc.start]!r} (a "
            "stray byte of invalid UTF-8, or half a surrogate pair); send UTF-8 text"
        ) from None
    return text


def check_prompt(prompt: Any) -> None:
    """A prompt is text, or a list of {"role": text, "content": text} messages; all of it
    valid Unicode."""
    if isinstance(prompt, str):
        check_unicode("the prompt", prompt)
        return
    if not isinstance(prompt, list | tuple):
        raise SettingsError(f"a prompt is text or a list of messages, got {type(prompt).__name__}")
    for i, message in enumerate(prompt):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise SettingsError(
                f'message {i} must be {{"role": text, "content": text}}, got {shown(message)}'
            )
        check_unicode(f"message {i}'s content", message["content"])


def _check_flag(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{name} must be True or False, got {shown(value)}")
        return value

    return check


def _check_text(name: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise SettingsError(f"{name} must be text or None, got {shown(value)}")
        return check_unicode(name, value) if value else None

    return check


def check_n_ctx(value: Any) -> int:
    return _integer("n_ctx", value, 1, f"a positive number of tokens (at most {INT32_MAX})")


def check_threads(value: Any) -> int | None:
    if value is None:
        return None
    return _integer(
        "n_threads", value, 1, f"at least 1 and at most {MAX_THREADS} (or None)", MAX_THREADS
    )


MAX_PARALLEL = 64


def check_parallel(value: Any) -> int | None:
    if value is None:
        return None
    parallel = _integer("parallel", value, 1, f"an integer from 1 to {MAX_PARALLEL} (or None)")
    if parallel > MAX_PARALLEL:
        raise SettingsError(f"parallel must be an integer from 1 to {MAX_PARALLEL}, got {value!r}")
    return parallel


def default_parallel() -> int:
    """Requests a server (or a notebook's manager) serves at once on one model when not told:
    twice the cores, from 2 to 8, and no more than a sequence per 2 GB of memory (each holds
    its own keys and values). On a CPU a call of n tokens costs well under n calls of one,
    and the more so the more cores share it."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return max(1, min(8, 2 * (os.cpu_count() or 1), memory // (2 << 30)))


def check_exact(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise SettingsError(
            f"exact must be True, False or None (the door decides), got {shown(value)}"
        )
    return value


@dataclass(frozen=True)
class RpcWorker:
    """One entry of `rpc`: a llama.cpp RPC worker's address, "host:port", and its share of
    the layers after "=" (as llama.cpp's --tensor-split; None: llama.cpp splits by the
    workers' free memory)."""

    host: str
    port: int
    share: float | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> RpcWorker:
        """The worker `text` names; a malformed one is refused, with the form expected."""
        address, _, share = text.strip().partition("=")
        host, _, port = address.strip().rpartition(":")
        wrong = f"an RPC worker is host:port or host:port=share, got {text!r}"
        if not host or ":" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(wrong)
        try:
            part = float(share) if share else None
        except ValueError:
            raise SettingsError(wrong) from None
        if part is not None and not (math.isfinite(part) and part > 0):
            raise SettingsError(f"an RPC worker's share must be a number > 0, got {text!r}")
        return cls(host.strip(), int(port), part)

    def __str__(self) -> str:
        return self.endpoint if self.share is None else f"{self.endpoint}={self.share:g}"


def _check_workers(name: str) -> Callable[[Any], tuple[str, ...]]:
    """Workers as a list, or one string of them separated by commas (as llama.cpp's --rpc);
    each named once, and a share for every one or none."""

    def check(value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else list(value or ())
        if not all(isinstance(item, str) for item in items):
            raise SettingsError(f"{name} must be host:port strings, got {value!r}")
        workers = [RpcWorker.parse(part) for item in items for part in item.split(",") if part]
        endpoints = [worker.endpoint for worker in workers]
        twice = sorted({e for e in endpoints if endpoints.count(e) > 1})
        if twice:
            raise SettingsError(f"{name} names {', '.join(twice)} more than once")
        if len({worker.share is None for worker in workers}) > 1:
            raise SettingsError(f"{name}: give a share to every worker or to none, got {value!r}")
        return tuple(str(worker) for worker in workers)

    return check


def _check_layers(name: str) -> Callable[[Any], int | None]:
    rule = f"-1 (all), 0 (none) or a number of layers up to {INT32_MAX} (None: all on a GPU build)"
    return lambda value: None if value is None else _integer(name, value, -1, rule)


# -- how a setting is declared -----------------------------------------------------------------


def draft_tokens_word(word: str) -> int | str:
    """A command line's draft tokens: auto, or a number (checked with the rest)."""
    return word if word == "auto" else int(word) if word.lstrip("-").isdigit() else word


@dataclass(frozen=True)
class Door:
    """How a setting is offered where it is not a Python keyword.

    `help` and `parse` (a command-line word to a value; None for a switch) make the flag of
    the CLI, the magics and `serve` (`flag`, by default --name-with-dashes; a switch sets the
    opposite of the default); `repeat` takes the flag once per value (stop strings). `form` is
    the control a widget's settings form draws (`kind`: number, optional number, choice,
    options, checkbox, text, lines; with `label`, `step`, `min`, `max`, `choices`), None for
    a setting no form shows.
    """

    help: str
    parse: Callable[[str], Any] | None = str
    flag: str = ""
    repeat: bool = False
    choices: tuple[str, ...] = ()
    form: Mapping[str, Any] | None = None


def setting(default: Any, check: Callable[[Any], Any], door: Door) -> Any:
    """A field of a settings class: its default, its rule, its door."""
    return field(default=default, metadata={"check": check, "door": door})


Settings = TypeVar("Settings", bound="Declared")


class Declared:
    """What RunSettings and LoadOptions share: the check of every field when made, the
    declarations the doors read, and making one from a base and overrides."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            object.__setattr__(self, f.name, f.metadata["check"](getattr(self, f.name)))

    @classmethod
    def declared(cls) -> list[Field]:
        return list(fields(cls))  # type: ignore[arg-type]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in cls.declared())

    @classmethod
    def of(cls: type[Settings], base: Settings | None = None, **overrides: Any) -> Settings:
        """`base` (default: the defaults) with `overrides`, checked; an unknown name is refused
        with the known ones. A `base` without overrides is taken as it is: checked already."""
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            raise SettingsError(
                f"{cls.__name__} has no {', '.join(unknown)}; known: {', '.join(cls.names())}"
            )
        if base is None:
            return cls(**overrides)
        return replace(base, **overrides) if overrides else base

    @classmethod
    def among(cls: type[Settings], values: Mapping[str, Any]) -> Settings:
        """The settings among `values`, checked; other keys are left to other objects."""
        return cls.of(None, **{key: values[key] for key in cls.names() if key in values})

    def to_dict(self) -> dict[str, Any]:
        """As JSON has it (tuples as lists): a widget's state, a request's body."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()  # type: ignore[call-overload]
        }


def number(label: str, **control: Any) -> dict[str, Any]:
    return {"kind": "number", "label": label, **control}


# -- the settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings(Declared):
    """A run's settings, checked and normalized (`stop` a tuple, integers plain ints).

    `draft_mode` None is the session's own; `use_draft` False is plain decoding through the
    same loop; `system` a system message put first; `raw` sends a string prompt without the
    chat template; `compare` runs plain decoding on the prompt after a speculative run, for
    `GenerationStats.baseline_tokens_per_second` (the speedup over plain in the same run).
    """

    max_tokens: int = setting(
        256,
        check_max_tokens,
        Door("the most tokens to generate", int, form=number("Max tokens", step=1, min=1)),
    )
    temperature: float = setting(
        0.0,
        check_temperature,
        Door("0 is greedy", float, form=number("Temperature", step=0.05, min=0)),
    )
    top_k: int = setting(
        0,
        check_top_k,
        Door("keep the k likeliest tokens (0: all)", int, form=number("Top-k", step=1, min=0)),
    )
    top_p: float = setting(
        1.0,
        check_top_p,
        Door(
            "keep the likeliest tokens up to this much probability (1: all)",
            float,
            form=number("Top-p", step=0.05, min=0, max=1),
        ),
    )
    min_p: float = setting(
        0.0,
        check_min_p,
        Door(
            "keep the tokens at least this share as likely as the likeliest (0: all)",
            float,
            form=number("Min-p", step=0.01, min=0, max=1),
        ),
    )
    seed: int | None = setting(
        None,
        check_seed,
        Door(
            "seed of the sampling (temperature > 0): the same text at any draft length",
            int,
            form={"kind": "optional number", "label": "Seed (empty: none)", "step": 1, "min": 0},
        ),
    )
    stop: tuple[str, ...] = setting(
        (),
        check_stops,
        Door(
            "a stop string (repeatable)",
            repeat=True,
            form={"kind": "lines", "label": "Stop strings (one a line)"},
        ),
    )
    draft_tokens: int | Literal["auto"] = setting(
        "auto",
        check_draft_tokens,
        Door(
            "tokens drafted per round: auto (measure, draft only what pays) or a number K",
            draft_tokens_word,
            form={"kind": "choice", "label": "Draft tokens", "choices": ["auto", *range(1, 17)]},
        ),
    )
    draft_mode: DraftMode | None = setting(  # noqa: RUF009 (an immutable Literal, as ruff cannot see)
        None,
        check_draft_mode,
        Door(
            "where drafts come from: the draft model (the default when one is loaded), lookup "
            "(copies from the prompt and output, no draft model), or hybrid (both)",
            choices=DRAFT_MODES,
            form={
                "kind": "options",
                "label": "Drafts from (lookup: copies from the conversation, no draft model)",
                "choices": list(DRAFT_MODES),
            },
        ),
    )
    use_draft: bool = setting(
        True,
        _check_flag("use_draft"),
        Door(
            "plain decoding, through the same loop",
            None,
            flag="--no-draft",
            form={"kind": "checkbox", "label": "Speculative decoding (use the draft)"},
        ),
    )
    system: str | None = setting(
        None,
        _check_text("system"),
        Door("a system message to put first", form={"kind": "text", "label": "System prompt"}),
    )
    raw: bool = setting(
        False, _check_flag("raw"), Door("send the prompt without a chat template", None)
    )
    compare: bool = setting(
        False,
        _check_flag("compare"),
        Door(
            "then run plain decoding on the same prompt, for the speedup over it (stats)",
            None,
            form={"kind": "checkbox", "label": "Measure the speedup over plain (runs twice)"},
        ),
    )


LAYERS_FORM = {"kind": "optional number", "step": 1, "min": -1, "placeholder": "auto"}


@dataclass(frozen=True)
class LoadOptions(Declared):
    """How to open a pair of models. `gpu_layers`: the main model's layers offloaded to the
    GPU, as llama-server's `-ngl` (0: none, -1: all); None offloads all when the build has a
    GPU backend (LM Studio and llama-server do so by default), else none;
    `draft_gpu_layers` the draft's (`-ngld`). `rpc`: llama.cpp RPC workers the main model's
    layers are spread over (then `gpu_layers` counts the layers they hold, all by default);
    `draft_rpc` the draft's, which stays on this machine unless given: it must be cheap, and
    a worker serves one client, so it needs workers of its own. `n_threads` None: every
    core. `exact`: see
    the README's "Exact mode"; None leaves it to the door (a seeded run of the engine manager
    is exact, a session from `load()` is fast). `parallel`: how many requests run at once on
    a model, each with a sequence (a cache) of its own and their rounds batched (llama-server's
    `-np`); None: `default_parallel()` for a server or a notebook's manager, 1 for `load()`.

    A model opens with `for_main()` or `for_draft()`: the options that concern it, so a model
    opened twice with the same view is one engine. `DRAFT_OF` names the fields that are the
    draft's own value of another field.
    """

    DRAFT_OF: ClassVar[dict[str, str]] = {
        "draft_gpu_layers": "gpu_layers",
        "draft_rpc": "rpc",
    }

    n_ctx: int = setting(
        4096,
        check_n_ctx,
        Door("context size in tokens", int, form=number("Context (tokens)", step=256, min=1)),
    )
    n_threads: int | None = setting(
        None,
        check_threads,
        Door(
            "CPU threads (default: every core)",
            int,
            flag="--threads",
            form={
                "kind": "optional number",
                "label": "CPU threads (empty: every core)",
                "step": 1,
                "min": 1,
            },
        ),
    )
    gpu_layers: int | None = setting(
        None,
        _check_layers("gpu_layers"),
        Door(
            "main model's layers on the GPU (with --rpc: on the workers), as llama-server's "
            "-ngl (-1: all, 0: none; default: all when llama.cpp has a GPU backend or workers)",
            int,
            form={**LAYERS_FORM, "label": "GPU layers, main model (empty: all on a GPU build)"},
        ),
    )
    draft_gpu_layers: int | None = setting(
        None,
        _check_layers("draft_gpu_layers"),
        Door(
            "draft model's layers on the GPU, as llama-server's -ngld (default as --gpu-layers)",
            int,
            flag="--gpu-layers-draft",
            form={**LAYERS_FORM, "label": "GPU layers, draft (empty: all on a GPU build)"},
        ),
    )
    rpc: tuple[str, ...] = setting(
        (),
        _check_workers("rpc"),
        Door(
            "llama.cpp RPC workers to spread the main model's layers over, as llama.cpp's "
            "--rpc: host:port, comma-separated; host:port=share splits the layers as "
            "--tensor-split does (start each with `specdec-jupyter rpc-worker`)",
            form={
                "kind": "lines",
                "label": "RPC workers, main model (host:port[=share], one a line)",
            },
        ),
    )
    draft_rpc: tuple[str, ...] = setting(
        (),
        _check_workers("draft_rpc"),
        Door(
            "RPC workers for the draft (default: none, the draft runs here); workers of its "
            "own, as a worker serves one client",
            flag="--rpc-draft",
            form={"kind": "lines", "label": "RPC workers, draft (empty: on this machine)"},
        ),
    )
    exact: bool | None = setting(
        None,
        check_exact,
        Door(
            "kernels whose logits do not depend on how many tokens a call holds, so every "
            "draft mode and k gives plain decoding's tokens bit for bit (slower on a CPU; "
            "default: exact for a run with a seed)",
            None,
            form={"kind": "checkbox", "label": "Exact: plain decoding's tokens bit for bit"},
        ),
    )
    parallel: int | None = setting(
        None,
        check_parallel,
        Door(
            "requests served at once on one model, their rounds batched into one call, as "
            "llama-server's -np (default: from the machine's cores and memory; 1 for load())",
            int,
            form={
                "kind": "optional number",
                "label": "Parallel requests per model (empty: from the machine)",
                "step": 1,
                "min": 1,
                "max": MAX_PARALLEL,
            },
        ),
    )
    verbose: bool = setting(
        False, _check_flag("verbose"), Door("the backend's own log on stderr", None)
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        endpoints = {RpcWorker.parse(worker).endpoint for worker in self.rpc}
        shared = sorted(endpoints & {RpcWorker.parse(w).endpoint for w in self.draft_rpc})
        if shared:
            raise SettingsError(
                f"RPC worker {', '.join(shared)} is given for the main model and the draft; a "
                "worker serves one client at a time: start another one for the draft"
            )

    def settled(self, seeded: bool) -> LoadOptions:
        """Exactness left open, settled by the run: a seeded run promises the same text every
        time, which an exact pair keeps whatever k is drafted."""
        return self if self.exact is not None else replace(self, exact=seeded)

    def serving(self) -> LoadOptions:
        """Parallel requests left open, settled for a server or a notebook's manager, which
        serve several at once: as many as the machine suits (`default_parallel`)."""
        return self if self.parallel is not None else replace(self, parallel=default_parallel())

    def for_main(self) -> LoadOptions:
        """The options the main model opens with (the draft's own ones at their defaults)."""
        return replace(self, **{name: _default(name) for name in self.DRAFT_OF})

    def for_draft(self) -> LoadOptions:
        """The options the draft opens with: its own values in place of the main model's."""
        own = {target: getattr(self, name) for name, target in self.DRAFT_OF.items()}
        return replace(self, **own, **{name: _default(name) for name in self.DRAFT_OF})

    def changed(self) -> list[str]:
        """The options set to something other than their default."""
        return [f.name for f in self.declared() if getattr(self, f.name) != f.default]


def _default(name: str) -> Any:
    return next(f.default for f in LoadOptions.declared() if f.name == name)


# -- command lines -----------------------------------------------------------------------------


def add_flags(
    parser: argparse.ArgumentParser,
    settings: type[Declared],
    only: Collection[str] | None = None,
) -> None:
    """One flag per setting of `settings` (or of those named in `only`); a flag not given is
    absent from the parsed arguments (`settings.among(vars(args))` takes those given), so the
    defaults stay where they are declared, or configured (the magics' `%config`)."""
    for f in settings.declared():
        if only is not None and f.name not in only:
            continue
        door: Door = f.metadata["door"]
        flag = door.flag or f"--{f.name.replace('_', '-')}"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": door.help}
        if door.parse is None and f.default is None:
            kwargs["action"] = argparse.BooleanOptionalAction  # --x, --no-x, or the door's
        elif door.parse is None:
            kwargs["action"] = "store_false" if f.default else "store_true"
        else:
            kwargs["type"] = door.parse
            if door.repeat:
                kwargs["action"] = "append"
            if door.choices:
                kwargs["choices"] = door.choices
        parser.add_argument(flag, **kwargs)
