"""Every engine kind in one table, as llama.cpp's `common_speculative` keeps its name map.

An entry says how to open a model, how to find and list its models, how to judge a draft
for it, and which load options it takes. `load()`, the CLI, the EngineManager, the
widgets and the magics read `KINDS` (and `engines.resolve` for names); none keeps a list
of its own. Backends import only when a model of theirs opens, so a machine without MLX
still lists it, with the reason it cannot run.
"""

from __future__ import annotations

import importlib.util
import platform
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import ClassVar

from ..errors import IncompatibleDraftError, ModelFileError, SpecDecError, UnknownModelError
from ..models.catalog import CATALOG, DEFAULT_DRAFT, DEFAULT_MAIN
from ..models.discovery import discover
from ..models.drafts.compat import Compatibility
from ..models.drafts.verdicts import DraftVerdict, VerdictStore, check_draft
from ..models.fetch import fetch, is_fetched, model_path
from ..models.names import details, short_name
from ..settings import LoadOptions, RpcWorker
from .base import Engine


class EngineNote(UserWarning):
    """Something a user should know about how a model runs, that is not an error: an option
    this engine does not take, GPU layers asked of a build without a GPU."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model as the resolver found it: the kind that runs it and its key (an absolute path,
    or the name of a built-in model). Equal ones are the same model, wherever it was named; a
    `ModelReference` (engines.resolve) is what names one."""

    kind: str
    key: str
    size: int = 0  # bytes on disk: what the manager counts against its memory budget

    @property
    def path(self) -> Path:
        return Path(self.key)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ListedModel:
    """A model an engine kind can run, as a selector shows it: a short `label` (catalog name
    or file stem), the rest in `details` (a tooltip)."""

    model: ResolvedModel
    label: str
    details: str = ""


@dataclass(frozen=True)
class Availability:
    available: bool
    note: str = ""  # why it cannot run, or what to know when it does

    def to_dict(self) -> dict[str, object]:
        return {"available": self.available, "note": self.note}


class EngineKind(ABC):
    """One entry of the table. Subclasses fill in the backend's parts."""

    name: str
    formats: tuple[str, ...] = ()  # formats on disk it runs ("gguf", "mlx"); () for built-ins
    options: tuple[str, ...] = ("n_ctx", "exact")  # the LoadOptions fields it honours
    modules: tuple[str, ...] = ()  # what must import for it to run
    install_hint: str = ""
    default_pair: tuple[str, str] = (DEFAULT_MAIN, DEFAULT_DRAFT)  # what a chat opens with

    def availability(self) -> Availability:
        return _import_availability(self.modules, self.install_hint)

    def require_available(self) -> None:
        availability = self.availability()
        if not availability.available:
            raise SpecDecError(f"the {self.name} engine cannot run here: {availability.note}")

    def open(self, model: ResolvedModel, options: LoadOptions) -> Engine:
        """Load `model` with `options` (those this kind does not take are ignored); what a
        user should know about this engine here (MLX without acceleration) is a note."""
        self.require_available()
        note = self.availability().note
        if note:
            warnings.warn(EngineNote(note), stacklevel=3)
        try:
            return self._open(model, options)
        except ImportError as exc:  # installed, but broken
            raise SpecDecError(
                f"the {self.name} engine cannot run here: {exc}; {self.install_hint}"
            ) from exc

    def note_ignored(self, options: LoadOptions) -> None:
        """A note for each option a user set that this kind does not take (an MLX model has
        no layers to offload): worth knowing, not an error."""
        for name in options.changed():
            if name not in (*self.options, "verbose"):
                warnings.warn(
                    EngineNote(f"the {self.name} engine does not take {name}; it is ignored"),
                    stacklevel=3,
                )

    @abstractmethod
    def _open(self, model: ResolvedModel, options: LoadOptions) -> Engine:
        """Load the model; `open` has checked the backend imports."""

    builtin_names: tuple[str, ...] = ()  # the models this kind carries itself (the toy pair)

    def builtin(self, name: str) -> ResolvedModel | None:
        """A model this kind carries itself, by name (the toy pair)."""
        return ResolvedModel(self.name, name) if name in self.builtin_names else None

    def catalog_model(self, key: str, *, fetch_now: bool) -> Path:
        """The catalog model `key` in this kind's format (fetched first when `fetch_now`)."""
        raise UnknownModelError(f"the {self.name} engine runs no catalog models")

    def models(self) -> list[ListedModel]:
        """Every model of this kind on the machine (discovery's folders), usable ones only."""
        listed = []
        for found in discover():
            if found.info.usable and found.info.format in self.formats:
                model = ResolvedModel(self.name, str(found.path.absolute()), found.info.size_bytes)
                listed.append(ListedModel(model, short_name(found.path), details(found.info)))
        return listed

    def judge(
        self, main: ResolvedModel, draft: ResolvedModel, store: VerdictStore | None = None
    ) -> DraftVerdict:
        """Can `draft` draft for `main` on this engine? This kind's rule decides, with its
        reasons (cached until either file changes)."""
        return replace(check_draft(main.path, draft.path, store=store), engine=self.name)


class LlamaCppKind(EngineKind):
    name = "llama.cpp"
    formats = ("gguf",)
    options = ("n_ctx", "n_threads", "gpu_layers", "rpc", "exact", "parallel")
    modules = ("llama_cpp",)
    install_hint = "pip install llama-cpp-python"

    def _open(self, model: ResolvedModel, options: LoadOptions) -> Engine:
        from .llamacpp import LlamaCppEngine, gpu_offload_supported

        if options.rpc:  # all layers on the workers unless told, in a process of its own
            from .rpc.hosted import HostedEngine

            return HostedEngine(
                model.path,
                workers=[RpcWorker.parse(worker) for worker in options.rpc],
                n_ctx=options.n_ctx,
                n_threads=options.n_threads,
                gpu_layers=-1 if options.gpu_layers is None else options.gpu_layers,
                exact=bool(options.exact),
                verbose=options.verbose,
            )
        layers = options.gpu_layers
        if layers is None:
            layers = -1 if gpu_offload_supported() else 0
        elif layers != 0 and not gpu_offload_supported():
            warnings.warn(EngineNote(NO_GPU_NOTE.format(layers=layers)), stacklevel=3)
            layers = 0
        return LlamaCppEngine(
            model.path,
            n_ctx=options.n_ctx,
            n_threads=options.n_threads,
            gpu_layers=layers,
            exact=bool(options.exact),
            n_seq=options.parallel or 1,
            verbose=options.verbose,
        )

    def catalog_model(self, key: str, *, fetch_now: bool) -> Path:
        model = CATALOG[key]
        if fetch_now:
            return fetch(model)
        if is_fetched(model):
            return model_path(model)
        raise UnknownModelError(
            f"{key!r} is in the catalog but not fetched; run `specdec-jupyter models fetch {key}`"
        )


NO_GPU_NOTE = (
    "this llama-cpp-python build has no GPU backend, so gpu_layers={layers} runs on the CPU; "
    'for CUDA reinstall it with CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall '
    "--no-cache-dir llama-cpp-python (Metal is built in on Apple silicon)"
)


class MlxKind(EngineKind):
    name = "mlx"
    formats = ("mlx",)
    modules = ("mlx.core", "mlx_lm")
    install_hint = "pip install 'specdec_jupyter[mlx]'"

    def availability(self) -> Availability:
        availability = super().availability()
        if availability.available and not _mlx_on_gpu():
            return replace(
                availability,
                note="MLX runs on the CPU here, without acceleration (about 2 s a token for a "
                "1.5B model); on a Mac it runs on the GPU with Metal",
            )
        return availability

    def _open(self, model: ResolvedModel, options: LoadOptions) -> Engine:
        from .mlx import MlxEngine

        return MlxEngine(model.path, n_ctx=options.n_ctx)

    def catalog_model(self, key: str, *, fetch_now: bool) -> Path:
        from ..models.mlx.catalog import catalog_mlx_model, mlx_model_dir

        folder = mlx_model_dir(key)
        if fetch_now:
            self.require_available()  # converting needs mlx-lm
            return catalog_mlx_model(CATALOG[key])
        if folder.is_dir():
            return folder
        raise UnknownModelError(
            f"{key!r} has no MLX folder yet; run `specdec-jupyter models convert-mlx {key}`"
        )


def _mlx_on_gpu() -> bool:
    """Whether MLX computes on a GPU here (Metal, on a Mac); imports MLX only on a Mac."""
    if platform.system() != "Darwin":
        return False
    import mlx.core as mx

    return mx.default_device() == mx.gpu


class ToyKind(EngineKind):
    """Two numpy n-gram models over one word vocabulary: instant, nothing to download."""

    name = "toy"
    options = ("n_ctx", "exact", "parallel")
    MAIN, DRAFT = "toy-trigram", "toy-bigram"
    default_pair = (MAIN, DRAFT)
    DETAILS: ClassVar[dict[str, str]] = {
        MAIN: "numpy trigram model",
        DRAFT: "numpy bigram model",
    }
    builtin_names = (MAIN, DRAFT)

    def _open(self, model: ResolvedModel, options: LoadOptions) -> Engine:
        from .toy import toy_engine

        return toy_engine(model.key, n_ctx=options.n_ctx, n_seq=options.parallel or 1)

    def models(self) -> list[ListedModel]:
        return [
            ListedModel(ResolvedModel(self.name, key), key, about)
            for key, about in self.DETAILS.items()
        ]

    def judge(
        self, main: ResolvedModel, draft: ResolvedModel, store: VerdictStore | None = None
    ) -> DraftVerdict:
        # One vocabulary for both, by construction.
        return DraftVerdict(main.path, draft.path, self.name, {self.name: Compatibility(True)})


KINDS: dict[str, EngineKind] = {kind.name: kind for kind in (LlamaCppKind(), MlxKind(), ToyKind())}
DEFAULT_KIND = "llama.cpp"
KIND_OF_FORMAT = {fmt: kind.name for kind in KINDS.values() for fmt in kind.formats}


def engine_kind(name: str) -> EngineKind:
    """The registry's entry called `name`; an unknown name lists the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown engine {name!r}; choose one of {', '.join(KINDS)}"
        ) from None


def engine_choices() -> list[dict[str, object]]:
    """Every kind with whether it runs here and why not: what an engine selector shows."""
    return [{"name": kind.name, **kind.availability().to_dict()} for kind in KINDS.values()]


@cache
def _import_availability(modules: Sequence[str], install_hint: str) -> Availability:
    """Whether the backend's modules are installed, found without importing them (MLX and
    mlx-lm take seconds to import; a selector should not)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # its parent package is missing
            found = False
        if not found:
            return Availability(False, f"{module} is not installed; {install_hint}")
    return Availability(True)


def require_draft(
    main: ResolvedModel, draft: ResolvedModel, store: VerdictStore | None = None
) -> None:
    """Refuse a draft that cannot serve `main`: itself, another engine's model, or one the
    engine's rule rejects (with the rule's reasons)."""
    if draft == main:
        raise SpecDecError(
            f"{main.name} cannot draft for itself (it would use the same cache); "
            "pick a smaller model of its family, or no draft"
        )
    if draft.kind != main.kind:
        raise IncompatibleDraftError(
            f"{draft.name} runs on {draft.kind} and {main.name} on {main.kind}; a draft runs "
            "on its main model's engine",
            [f"engines {main.kind} vs {draft.kind}"],
        )
    KINDS[main.kind].judge(main, draft, store).require_compatible()


def model_file_error(model: ResolvedModel, kind: EngineKind) -> ModelFileError:
    """The error for a model on disk that `kind` does not run, saying what the path is."""
    if kind.name == "mlx":
        return ModelFileError(
            f"{model.path} is a file, but the MLX engine runs model folders (config.json, "
            f"*.safetensors, tokenizer files); make one from a GGUF file with "
            f"`specdec-jupyter models convert-mlx {model.path}`"
        )
    if not kind.formats:
        return ModelFileError(
            f"the {kind.name} engine runs only its own models ({', '.join(kind.builtin_names)}), "
            f"not {model.path}"
        )
    return ModelFileError(
        f"{model.path} is a folder (MLX models are folders); the {kind.name} engine runs "
        f"{', '.join(kind.formats)} files. Use engine='mlx', or pick a .gguf model"
    )
