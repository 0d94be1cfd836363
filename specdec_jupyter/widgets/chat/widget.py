"""The chat widget: LM Studio's chat with speculative decoding, in a notebook cell.

    from specdec_jupyter.widgets import ChatWidget
    ChatWidget("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b", temperature=0.0)

The conversation and its provenance are traits, so a saved notebook reopens with the
chat as it was; the reply being generated streams to the browser in batched custom
messages (../batching.py). Loading and generating run on worker threads, so the kernel
stays free; errors land in the widget in words. Behaviour lives in the EngineService (and
the EngineManager behind it): this class only wires the user's actions to them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import traitlets as t
from IPython.display import HTML

from ...decoding.events import GenerationStats, TokenEvent
from ...engines.registry import DEFAULT_KIND
from ...errors import SpecDecError
from ...progress import Progress
from ...sessions.generation import Generation
from ...sessions.manager import EngineManager
from ...sessions.pair import DEFAULT, Pair
from ...sessions.remote_service import RemoteService
from ...sessions.service import EngineService, Service
from ...sessions.wire import Message
from ...settings import LoadOptions, RunSettings
from ..base import STATIC, Widget, describe, form_fields, refuse_unknown
from ..base import status as _status
from ..batching import TokenBatcher
from ..continuation import next_round, shift_event
from ..conversation_html import conversation_to_html
from ..reply import finish_reply
from .versions import add_version, replace_shown, show_version

# The settings a chat offers: every run setting and load option that has a control in the
# form, at their declared defaults, except a chat's longer replies and its draft mode:
# "model" (the draft model), "lookup" (copies from the conversation, free, no draft model
# needed) or "hybrid" (both, the policy picks per round).
SETTING_FIELDS = form_fields(RunSettings, LoadOptions)
DEFAULT_SETTINGS: dict[str, Any] = {
    key: value
    for key, value in (
        RunSettings(max_tokens=512, draft_mode="model").to_dict() | LoadOptions().to_dict()
    ).items()
    if key in {field["key"] for field in SETTING_FIELDS}
}
LOAD_SETTINGS = [key for key in LoadOptions.names() if key in DEFAULT_SETTINGS]  # reload on change


def _form_part(options: LoadOptions) -> dict[str, Any]:
    """The load options a chat's settings show."""
    return {key: value for key, value in options.to_dict().items() if key in LOAD_SETTINGS}


# How a reply joins the conversation: a new message, a new version of the last reply
# (Regenerate), or more of the last reply's text (Continue).
ReplyKind = Literal["new", "version", "continue"]


class ChatWidget(Widget):
    """A multi-turn chat whose replies show which tokens the draft model got accepted.

    `main` and `draft` name models as `engines.resolve` does (catalog name, path, or a name
    `specdec-jupyter models list` shows); `draft` defaults to the one remembered for
    `main` (DEFAULT), None means no draft. `engine` is a registry name ("llama.cpp", "mlx",
    "toy"). Keyword settings: every run setting and load option of the settings form
    (`DEFAULT_SETTINGS`: temperature, top_k, top_p, max_tokens, seed, stop, draft_tokens,
    draft_mode, use_draft, system, n_ctx, n_threads, gpu_layers, draft_gpu_layers).
    `server="http://host:1234"` (with `api_key`) chats with the models of a
    `specdec-jupyter serve` server instead, which loads and runs them with its own options.
    """

    _esm = STATIC / "chat.js"
    _css = STATIC / "chat.css"

    _chat_id = t.Unicode().tag(sync=True)
    engines = t.List(t.Dict()).tag(sync=True)  # engine_choices(): name, available, note
    engine = t.Unicode(DEFAULT_KIND).tag(sync=True)
    models = t.List(t.Dict()).tag(sync=True)
    main_model = t.Unicode().tag(sync=True)
    drafts = t.List(t.Dict()).tag(sync=True)
    incompatible = t.List(t.Dict()).tag(sync=True)
    draft_model = t.Unicode().tag(sync=True)  # "" for none
    default_draft = t.Unicode().tag(sync=True)
    status = t.Dict(_status()).tag(sync=True)
    settings = t.Dict().tag(sync=True)
    setting_fields = t.List(t.Dict(), SETTING_FIELDS).tag(sync=True)  # the form's controls
    messages = t.List(t.Dict()).tag(sync=True)
    show_draft = t.Bool(True).tag(sync=True)
    undo = t.Unicode().tag(sync=True)  # what Undo brings back, in words; "" for nothing

    def __init__(
        self,
        main: str | None = None,
        draft: Any = DEFAULT,
        *,
        engine: str = DEFAULT_KIND,
        manager: EngineManager | None = None,
        server: str | None = None,
        api_key: str | None = None,
        **settings: Any,
    ):
        refuse_unknown("ChatWidget", settings, DEFAULT_SETTINGS)
        # `server=URL`: the models of a `specdec-jupyter serve` server, run there.
        self._service: Service = (
            RemoteService(server, api_key) if server else EngineService(engine, manager)
        )
        super().__init__(
            _chat_id=uuid.uuid4().hex,
            engines=self._service.engines(),
            engine=self._service.engine,
            settings={**DEFAULT_SETTINGS, **_form_part(self._service.options), **settings},
        )
        self._run: Generation | None = None
        self._running = threading.Lock()  # taken while a reply starts and while it is recorded
        self._replied = threading.Event()  # set when no reply is under way
        self._replied.set()
        self._queued: list[str] = []  # messages sent while a reply ran, oldest first
        self._undone: list[Message] | None = None  # the conversation before a Clear or an edit
        self._chosen_drafts: dict[str, str] = {}  # main model: the draft the user picked for it
        self._selection = 0  # counts selections, so a slow load never reports on a newer one
        self._selecting = False
        self.on_msg(self._on_message)
        self._select(main, draft)
        self.observe(self._on_engine, "engine")
        self.observe(self._on_main, "main_model")
        self.observe(self._on_draft, "draft_model")
        self.observe(self._on_settings, "settings")

    # -- the user's actions (the buttons call these too) ------------------------------------

    def ask(self, text: str) -> None:
        """Send a user message and start the reply (returns at once; `wait()` for the end).
        A message sent while a reply runs is queued and sent when that reply ends."""
        if not text.strip():
            return
        with self._running:
            if self._run is not None:  # kept, not dropped: sent when the reply ends
                self._queued.append(text)
                self.status = _status(
                    "generating", f"Queued: sent when this reply ends ({len(self._queued)})."
                )
                return
        self._keep_for_undo(None)  # the conversation has moved on from what Undo would bring
        self.messages = [*self.messages, {"role": "user", "content": text}]
        self._reply()

    def stop(self) -> None:
        """End the reply after the current round; what was generated stays."""
        if self._run is not None:
            self._run.cancel()

    def regenerate(self) -> None:
        """Generate the last reply again (with the current models and settings), as a new
        version of it: the earlier versions stay, one click away (the 1/2 switcher)."""
        if self._refuse_while_running():
            return
        self._keep_for_undo(None)
        if self.messages and self.messages[-1]["role"] == "assistant":
            *before, last = self.messages
            self.messages = before
            self._reply("version", last)
        elif self.messages:
            self._reply()

    def continue_reply(self) -> None:
        """Extend the last reply where its text ends (`continue_=True`), its tokens and
        their provenance kept, the new rounds numbered after its own."""
        if self._refuse_while_running():
            return
        if not self.messages or self.messages[-1]["role"] != "assistant":
            self.status = _status("error", "Nothing to continue: the chat has no reply yet.")
            return
        self._keep_for_undo(None)
        *before, last = self.messages
        self.messages = before
        self._reply("continue", last)

    def edit(self, index: int, text: str) -> None:
        """Ask again from user message `index`, with `text` in its place; what came after it
        goes (Undo brings it back)."""
        if self._refuse_while_running():
            return
        messages = self.messages
        if not 0 <= index < len(messages) or messages[index]["role"] != "user":
            self.status = _status("error", f"Message {index} is not one of yours to edit.")
            return
        if not text.strip():
            self.status = _status("error", "An edited message cannot be empty: write something.")
            return
        self._keep_for_undo(f"Undo edit (brings back {len(messages) - index} messages)")
        self.messages = [*messages[:index], {"role": "user", "content": text}]
        self._reply()

    def show_version(self, index: int, version: int) -> None:
        """Show version `version` (from 0) of reply `index`, with the conversation that
        followed it; the chat goes on from the version shown."""
        if self._refuse_while_running():
            return
        try:
            self.messages = show_version(self.messages, index, version)
        except IndexError as exc:
            self.status = _status("error", f"{exc}.")

    def clear(self) -> None:
        """Empty the conversation (Undo brings it back)."""
        if self._refuse_while_running() or not self.messages:
            return
        self._keep_for_undo(f"Undo clear (brings back {len(self.messages)} messages)")
        self.messages = []
        self.status = _status()

    def undo_last(self) -> None:
        """Bring back the conversation as it was before the last Clear or edit."""
        if self._refuse_while_running() or self._undone is None:
            return
        self.messages, self._undone = self._undone, None
        self.undo = ""

    def _keep_for_undo(self, label: str | None) -> None:
        """Offer Undo, saying what it brings back; None: the offer ends (a new turn)."""
        self._undone = list(self.messages) if label else None
        self.undo = label or ""

    def wait(self, timeout: float | None = None) -> Message | None:
        """Wait for the reply being generated; return the last message of the conversation."""
        self._replied.wait(timeout)
        return self.messages[-1] if self.messages else None

    def set_default_draft(self) -> None:
        """Remember the chosen draft as this main model's default (across restarts)."""
        with self._reporting():
            self._service.set_default_draft(self.main_model, self.draft_model or None)
            self.default_draft = self.draft_model

    def _on_message(self, _widget: Any, content: dict, _buffers: list) -> None:
        kind = content.get("type")
        if kind == "send":
            self.ask(str(content.get("text", "")))
        elif kind == "edit":
            self.edit(int(content["index"]), str(content.get("text", "")))
        elif kind == "show_version":
            self.show_version(int(content["index"]), int(content["version"]))
        elif kind == "continue":
            self.continue_reply()
        elif kind in ("stop", "regenerate", "clear", "undo_last", "set_default_draft"):
            getattr(self, kind)()

    # -- generating ----------------------------------------------------------------------

    def _refuse_while_running(self) -> bool:
        if self._run is None:
            return False
        self.status = _status("generating", "A reply is being generated: Stop it first.")
        return True

    def _reply(self, kind: ReplyKind = "new", base: Message | None = None) -> None:
        """Start a reply to the conversation; `base` is the reply that Regenerate makes a
        new version of, or that Continue extends (taken out of `messages` meanwhile)."""
        settings = dict(self.settings)
        draft, mode, drafter = self._drafting(settings)
        provenance = {
            "main_model": self._label(self.main_model),
            "draft_model": drafter,
            "settings": settings,
        }
        continued = kind == "continue" and base is not None
        shown = [*self.messages, base] if continued else self.messages
        history = [{"role": m["role"], "content": m["content"]} for m in shown if m["content"]]
        offset = next_round(base.get("tokens", []), base.get("rounds", [])) if continued else 0
        self.status = _status("generating", "Continuing…" if continued else "Generating…")
        self.send({"type": "reply_start"})
        if continued and base.get("tokens"):  # the live reply starts as the reply it extends
            self.send({"type": "tokens", "tokens": base["tokens"]})
        self._replied.clear()
        batcher = TokenBatcher(lambda tokens: self.send({"type": "tokens", "tokens": tokens}))

        def on_event(event: TokenEvent) -> None:
            batcher.add(shift_event(event, offset))

        def on_end(run: Generation) -> None:
            batcher.flush()
            self._finish(run.events, run.stats, run.error, provenance, kind, base)

        # The run's listeners record the reply; holding the lock until `_run` is set keeps a
        # run that ends at once from finishing before it has been recorded as running.
        with self._running:
            try:
                if not self.main_model:  # "" would resolve to the current folder
                    raise SpecDecError("no main model is chosen: pick one in the selector")
                run_settings = RunSettings.among(  # checked as given: 2.5 tokens is refused
                    {**settings, "draft_mode": mode, "use_draft": mode is not None}
                )
                self._run = self._service.start(
                    history,
                    self._pair(draft),
                    run_settings,
                    continue_=continued,
                    on_event=on_event,
                    on_end=on_end,
                )
            except Exception as exc:  # shown in the widget; the kernel carries on
                self._record([], None, exc, provenance, kind, base)

    def _drafting(self, settings: dict[str, Any]) -> tuple[str | None, Any, str | None]:
        """What drafts a reply: the draft model's key, the draft mode, and the drafter's name
        for the reply's provenance; no mode for plain decoding. A mode we do not know goes
        on as it is, for the run to refuse in words."""
        mode = settings["draft_mode"] if settings["use_draft"] else None
        if mode == "lookup":
            return None, mode, "prompt lookup"
        if mode not in ("model", "hybrid"):
            return None, mode, None
        if not self.draft_model:
            return None, None, None  # no draft model chosen: plain decoding
        name = self._label(self.draft_model)
        return self.draft_model, mode, f"{name} + prompt lookup" if mode == "hybrid" else name

    def _finish(
        self,
        events: list[TokenEvent],
        stats: GenerationStats | None,
        error: BaseException | None,
        provenance: dict,
        kind: ReplyKind,
        base: Message | None,
    ) -> None:
        with self._running:
            queued = self._queued.pop(0) if self._queued else None
            self._record(events, stats, error, provenance, kind, base, settled=queued is None)
        if queued is not None:
            self.messages = [*self.messages, {"role": "user", "content": queued}]
            self._reply()

    def _record(
        self,
        events: list[TokenEvent],
        stats: GenerationStats | None,
        error: BaseException | None,
        provenance: dict,
        kind: ReplyKind = "new",
        base: Message | None = None,
        *,
        settled: bool = True,
    ) -> None:
        """Add the reply; `settled=False` when a queued message follows, so `wait()` goes on."""
        reply = finish_reply(
            events,
            stats,
            error=describe(error) if error else None,
            speeds_of=self.main_model,
            continues=base if kind == "continue" else None,
            **provenance,
        )
        if base is not None and kind == "version":
            reply = add_version(base, reply)
        elif base is not None and kind == "continue":
            reply = replace_shown(base, reply)
        self.messages = [*self.messages, reply]
        self._run = None  # only now: a message sent meanwhile must not land before the reply
        self.status = _status()
        if settled:
            self._replied.set()

    # -- models ------------------------------------------------------------------------------

    def _select(self, main: str | None, draft: Any) -> None:
        """Fill the selectors for the engine and choose a main model and a draft."""
        with self._reporting(), self._choosing():
            self._service.require_available()
            self.models = [choice.to_dict() for choice in self._service.models()]
            key = self._service.key_of(main) if main is not None else self._service.default_main()
            if key is None:
                raise SpecDecError(
                    f"no {self.engine} models found; fetch some with "
                    "`specdec-jupyter models fetch qwen2.5-coder-pair`"
                )
            self._refresh_drafts(key)
            self.main_model = key
            self.draft_model = self._draft_key(draft)
            if draft is not DEFAULT:
                self._chosen_drafts[key] = self.draft_model
            self._prepare()

    def _draft_key(self, draft: Any) -> str:
        """The key of the chosen draft: "" for none; a draft that cannot serve is refused."""
        if draft is DEFAULT:
            return self.default_draft if self._is_compatible(self.default_draft) else ""
        if draft is None:
            return ""
        key = self._service.key_of(draft)
        if not self._is_compatible(key):
            reasons = next((m["notes"] for m in self.incompatible if m["key"] == key), [])
            raise SpecDecError(
                f"{self._label(key)} cannot draft for {self._label(self.main_model)}"
                + (f": {'; '.join(reasons)}" if reasons else "")
                + ". Pick a draft from the list, or none."
            )
        return key

    def _is_compatible(self, key: str) -> bool:
        return any(choice["key"] == key for choice in self.drafts)

    def _refresh_drafts(self, main: str) -> None:
        compatible, incompatible = self._service.drafts(main)
        self.drafts = [choice.to_dict() for choice in compatible]
        self.incompatible = [choice.to_dict() for choice in incompatible]
        self.default_draft = self._service.default_draft(main) or ""

    def _label(self, key: str) -> str:
        for choice in [*self.models, *self.drafts, *self.incompatible]:
            if choice["key"] == key:
                return choice["label"]
        return key

    def _prepare(self) -> None:
        """Load the chosen pair on a worker thread, showing progress while it loads."""
        self._selection += 1
        selection, main, draft = self._selection, self.main_model, self.draft_model or None
        names = " and ".join(self._label(key) for key in (main, draft) if key)
        self.status = _status("loading", f"Loading {names}…")

        pair = self._pair(draft)

        def report(event: Progress) -> None:  # the status bar: what is loading, how far
            if selection == self._selection and self.status["state"] == "loading":
                self.status = _status("loading", event.describe(), event.fraction)

        def load() -> None:
            try:
                self._service.prepare(pair, on_progress=report)
                outcome = _status()
            except Exception as exc:
                outcome = _status("error", describe(exc))
            if selection == self._selection and self.status["state"] == "loading":
                self.status = outcome

        threading.Thread(target=load, name="specdec load", daemon=True).start()

    def _pair(self, draft: str | None) -> Pair:
        """The chosen main model with `draft`, and the load options of the settings."""
        return Pair(self.main_model, draft, options=LoadOptions.among(self.settings))

    @t.validate("settings")
    def _complete_settings(self, proposal: dict) -> dict[str, Any]:
        """A partial settings dict keeps the defaults of what it leaves out."""
        return {**DEFAULT_SETTINGS, **proposal["value"]}

    def _on_settings(self, change: dict) -> None:
        if any(change["old"].get(key) != change["new"].get(key) for key in LOAD_SETTINGS):
            with self._reporting():
                self._prepare()

    def _on_engine(self, change: dict) -> None:
        if self._refuse_while_running():
            return
        with self._reporting():
            self._service = self._service.with_engine(change["new"])
            self._select(None, DEFAULT)

    def _on_main(self, change: dict) -> None:
        if self._selecting:
            return
        with self._reporting(), self._choosing():
            self._refresh_drafts(change["new"])
            chosen = self._chosen_drafts.get(change["new"], DEFAULT)
            if chosen and not self._is_compatible(chosen):  # no longer fits: the default
                chosen = DEFAULT
            self.draft_model = self._draft_key(chosen if chosen else None)
            self._prepare()

    def _on_draft(self, change: dict) -> None:
        if not self._selecting:
            self._chosen_drafts[self.main_model] = change["new"]
            self._prepare()

    @contextmanager
    def _reporting(self) -> Iterator[None]:
        """Show an error as the widget's status, in words, instead of a traceback."""
        try:
            yield
        except Exception as exc:
            self.status = _status("error", describe(exc))

    @contextmanager
    def _choosing(self) -> Iterator[None]:
        """Selections Python makes itself do not re-enter the observers of the user's."""
        self._selecting = True
        try:
            yield
        finally:
            self._selecting = False

    # -- outside a live kernel -------------------------------------------------------------

    def snapshot(self) -> HTML:
        """The conversation so far as static HTML, in the widget's colours: display it in a
        cell to keep a copy that renders without a kernel (GitHub, nbconvert)."""
        return HTML(conversation_to_html(self.messages))

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        """The live widget, plus HTML of the chat as it is now, for places without a kernel
        (the HTML is not refreshed as the chat goes on: `snapshot()` takes a later copy)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        error = self.status["message"] if self.status["state"] == "error" else None
        return {**data, "text/html": conversation_to_html(self.messages, error)}, metadata

    def __repr__(self) -> str:
        draft = self._label(self.draft_model) if self.draft_model else None
        return (
            f"ChatWidget(engine={self.engine!r}, main={self._label(self.main_model)!r}, "
            f"draft={draft!r}, {len(self.messages)} messages)"
        )
