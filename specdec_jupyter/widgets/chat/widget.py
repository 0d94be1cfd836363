"""The chat widget: LM Studio's chat with speculative decoding, in a notebook cell.

    from specdec_jupyter.widgets import ChatWidget
    ChatWidget("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b", temperature=0.0)

The conversation and its provenance are traits, so a saved notebook reopens with the
chat as it was; the reply being generated streams to the browser in batched custom
messages (../batching.py). Loading and generating run on worker threads, so the kernel
stays free; errors land in the widget in words. This class wires the user's actions to
the parts that do the work: the conversation's edits (conversation.py, plain functions over
data), the reply queue (replies.py), the choice of models (selection.py), one way to finish a
reply (../reply.py), and a `Service` (this kernel's models, or a server's).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import traitlets as t
from IPython.display import HTML

from ...engines.registry import DEFAULT_KIND
from ...errors import SpecDecError
from ...progress import Progress
from ...sessions.examples import CODE_EDIT, CODE_EDIT_TITLE
from ...sessions.generation import Generation
from ...sessions.manager import EngineManager
from ...sessions.pair import DEFAULT, Pair
from ...sessions.remote_service import RemoteService
from ...sessions.service import EngineService, Service
from ...sessions.wire import Message
from ...settings import LoadOptions, RunSettings
from ..base import STATIC, Widget, describe, form_fields, on_messages, refuse_unknown
from ..base import status as _status
from ..batching import TokenBatcher
from ..continuation import next_round, shift_event
from ..conversation_html import conversation_to_html
from ..reply import finish_reply
from . import conversation as talk
from .conversation import Conversation, Refused, ReplyKind
from .replies import ReplyQueue
from .selection import ChosenDrafts, DraftOffer

# The settings a chat offers: every run setting and load option that has a control in the
# form, at their declared defaults, except a chat's longer replies and its draft mode:
# "hybrid" (copies from the conversation where they are right, which costs nothing, and the
# draft model where it pays: the policy picks per round), or "model" or "lookup" alone.
SETTING_FIELDS = form_fields(RunSettings, LoadOptions)
DEFAULT_SETTINGS: dict[str, Any] = {
    key: value
    for key, value in (
        RunSettings(max_tokens=512, draft_mode="hybrid").to_dict() | LoadOptions().to_dict()
    ).items()
    if key in {field["key"] for field in SETTING_FIELDS}
}
# What an empty chat offers to start from: a code edit, where copying from the prompt pays on
# any machine, with plain decoding run beside it so the reply shows its speedup.
SUGGESTIONS = [
    {
        "title": f"{CODE_EDIT_TITLE}, with the speedup over plain decoding",
        "prompt": CODE_EDIT,
        "compare": True,
        "note": "Sends the prompt; plain decoding then runs on it too, for the speedup",
    }
]
LOAD_SETTINGS = [key for key in LoadOptions.names() if key in DEFAULT_SETTINGS]  # reload on change


def chat_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Those of `values` a chat's settings show (a chat takes no others)."""
    return {key: value for key, value in values.items() if key in DEFAULT_SETTINGS}


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
    engines = t.List(t.Dict()).tag(sync=True)  # the service's: name, available, note
    engine = t.Unicode(DEFAULT_KIND).tag(sync=True)
    models = t.List(t.Dict()).tag(sync=True)
    main_model = t.Unicode().tag(sync=True)
    drafts = t.List(t.Dict()).tag(sync=True)
    incompatible = t.List(t.Dict()).tag(sync=True)
    draft_model = t.Unicode().tag(sync=True)  # "" for none
    default_draft = t.Unicode().tag(sync=True)
    draft_guidance = t.Unicode().tag(sync=True)  # with no compatible draft: what to do instead
    status = t.Dict(_status()).tag(sync=True)
    settings = t.Dict().tag(sync=True)
    setting_fields = t.List(t.Dict(), SETTING_FIELDS).tag(sync=True)  # the form's controls
    messages = t.List(t.Dict()).tag(sync=True)
    show_draft = t.Bool(True).tag(sync=True)
    undo = t.Unicode().tag(sync=True)  # what Undo brings back, in words; "" for nothing
    suggestions = t.List(t.Dict(), SUGGESTIONS).tag(sync=True)  # an empty chat's first prompts

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
            settings={
                **DEFAULT_SETTINGS,
                **chat_settings(self._service.options.to_dict()),
                **settings,
            },
        )
        self._conversation = Conversation()
        self._replies = ReplyQueue()
        self._offer = DraftOffer("", [], [], "")
        self._chosen = ChosenDrafts()
        self._selection = 0  # counts selections, so a slow load never reports on a newer one
        self._selecting = False
        on_messages(self, self._on_message)
        self._select(main, draft)
        self.observe(self._on_engine, "engine")
        self.observe(self._on_main, "main_model")
        self.observe(self._on_draft, "draft_model")
        self.observe(self._on_settings, "settings")

    # -- the user's actions (the buttons call these too) ------------------------------------

    def ask(self, text: str, compare: bool = False) -> None:
        """Send a user message and start the reply (returns at once; `wait()` for the end);
        `compare`: run plain decoding on it too, for the speedup (as the setting does). A
        message sent while a reply runs is queued and sent when that reply ends."""
        if not text.strip():
            return
        waiting = self._replies.queue(text)
        if waiting:
            self.status = _status("generating", f"Queued: sent when this reply ends ({waiting}).")
            return
        self._show(talk.ask(self._conversation, text))
        self._reply(compare=compare)

    def stop(self) -> None:
        """End the reply after the current round; what was generated stays."""
        self._replies.cancel()

    def regenerate(self) -> None:
        """Generate the last reply again (with the current models and settings), as a new
        version of it: the earlier versions stay, one click away (the 1/2 switcher)."""
        if self._refuse_while_running() or not self._conversation.messages:
            return
        conversation, last = talk.last_reply(self._conversation)
        self._show(conversation)
        self._reply("version" if last is not None else "new", last)

    def continue_reply(self) -> None:
        """Extend the last reply where its text ends, its tokens and their provenance kept,
        the new rounds numbered after its own."""
        if self._refuse_while_running():
            return
        conversation, last = talk.last_reply(self._conversation)
        if last is None:
            self.status = _status("error", "Nothing to continue: the chat has no reply yet.")
            return
        self._show(conversation)
        self._reply("continue", last)

    def edit(self, index: int, text: str) -> None:
        """Ask again from user message `index`, with `text` in its place; what came after it
        goes (Undo brings it back)."""
        if self._apply(lambda c: talk.edit(c, index, text)):
            self._reply()

    def show_version(self, index: int, version: int) -> None:
        """Show version `version` (from 0) of reply `index`, with the conversation that
        followed it; the chat goes on from the version shown."""
        self._apply(lambda c: talk.show_version(c, index, version))

    def clear(self) -> None:
        """Empty the conversation (Undo brings it back)."""
        if self._conversation.messages and self._apply(talk.clear):
            self.status = _status()

    def undo_last(self) -> None:
        """Bring back the conversation as it was before the last Clear or edit."""
        if self._conversation.undone is not None:
            self._apply(talk.undo)

    def wait(self, timeout: float | None = None) -> Message | None:
        """Wait for the reply being generated; return the last message of the conversation."""
        self._replies.wait(timeout)
        return self.messages[-1] if self.messages else None

    def take_over(self, previous: ChatWidget) -> None:
        """Go on with `previous`'s conversation here (its cell was run again, `%specdec chat`
        does this): its reply stops after the current round, keeping what it generated, the
        messages it queued are dropped, and it closes, so no run is left holding the models
        with nothing on screen to stop it."""
        previous._replies.abandon()
        previous.wait()
        self._show(Conversation(list(previous.messages)))
        previous.close()

    def set_default_draft(self) -> None:
        """Remember the chosen draft as this main model's default (across restarts)."""
        with self._reporting():
            self._service.set_default_draft(self.main_model, self.draft_model or None)
            self.default_draft = self.draft_model

    def _on_message(self, content: dict) -> None:
        kind = content.get("type")
        if kind == "send":
            self.ask(str(content.get("text", "")), compare=content.get("compare") is True)
        elif kind == "edit":
            self.edit(int(content["index"]), str(content.get("text", "")))
        elif kind == "show_version":
            self.show_version(int(content["index"]), int(content["version"]))
        elif kind == "continue":
            self.continue_reply()
        elif kind in ("stop", "regenerate", "clear", "undo_last", "set_default_draft"):
            getattr(self, kind)()

    # -- the conversation ------------------------------------------------------------------

    def _show(self, conversation: Conversation) -> None:
        """Make `conversation` the chat's, and show it (and what Undo would bring back)."""
        self._conversation = conversation
        with self.hold_sync():
            self.messages = conversation.messages
            self.undo = conversation.undo_label

    def _apply(self, action: Any) -> bool:
        """Apply an edit to the conversation, unless a reply runs or it is refused (then the
        status says why); whether it was applied."""
        if self._refuse_while_running():
            return False
        try:
            self._show(action(self._conversation))
        except Refused as exc:
            self.status = _status("error", str(exc))
            return False
        return True

    def _refuse_while_running(self) -> bool:
        if not self._replies.busy:
            return False
        self.status = _status("generating", "A reply is being generated: Stop it first.")
        return True

    # -- generating ----------------------------------------------------------------------

    def _reply(
        self, kind: ReplyKind = "new", base: Message | None = None, compare: bool = False
    ) -> None:
        """Start a reply to the conversation; `base` is the reply that Regenerate makes a
        new version of, or that Continue extends (taken out of `messages` meanwhile)."""
        settings = dict(self.settings) | ({"compare": True} if compare else {})
        draft, mode, drafter = self._drafting(settings)
        provenance = {
            "main_model": self._label(self.main_model),
            "draft_model": drafter,
            "settings": settings,
        }
        continued = base if kind == "continue" else None
        offset = next_round(base.get("tokens", []), base.get("rounds", [])) if continued else 0
        self.status = _status("generating", "Continuing…" if continued else "Generating…")
        self.send({"type": "reply_start"})
        if continued and base.get("tokens"):  # the live reply starts as the reply it extends
            self.send({"type": "tokens", "tokens": base["tokens"]})
        batcher = TokenBatcher(lambda tokens: self.send({"type": "tokens", "tokens": tokens}))

        def record(run: Generation | None, error: BaseException | None) -> None:
            events, stats = (run.events, run.stats) if run is not None else ([], None)
            reply = finish_reply(
                events,
                stats,
                error=describe(error) if error else None,
                speeds_of=self.main_model,
                continues=continued,
                **provenance,
            )
            self._show(talk.add_reply(self._conversation, reply, kind, base))
            self.status = _status()

        def on_end(run: Generation) -> None:
            batcher.flush()
            queued = self._replies.finish(lambda: record(run, run.error))
            if queued is not None:
                self._show(talk.ask(self._conversation, queued))
                self._reply()

        def begin() -> Generation:
            if not self.main_model:  # "" would resolve to the current folder
                raise SpecDecError("no main model is chosen: pick one in the selector")
            run_settings = RunSettings.among(  # checked as given: 2.5 tokens is refused
                {**settings, "draft_mode": mode, "use_draft": mode is not None}
            )
            return self._service.start(
                talk.prompt(self._conversation.messages, continued),
                self._pair(draft),
                run_settings,
                continue_=continued is not None,
                on_event=lambda event: batcher.add(shift_event(event, offset)),
                on_end=on_end,
            )

        self._replies.start(begin, lambda exc: record(None, exc))

    def _drafting(self, settings: dict[str, Any]) -> tuple[str | None, Any, str | None]:
        """What drafts a reply: the draft model's key, the draft mode, and the drafter's name
        for the reply's provenance; no mode for plain decoding. A mode we do not know goes
        on as it is, for the run to refuse in words."""
        mode = settings["draft_mode"] if settings["use_draft"] else None
        if mode == "lookup":
            return None, mode, "prompt lookup"
        if mode not in ("model", "hybrid"):
            return None, mode, None
        if not self.draft_model:  # no draft model: copies alone in hybrid, else plain decoding
            return (None, "lookup", "prompt lookup") if mode == "hybrid" else (None, None, None)
        name = self._label(self.draft_model)
        return self.draft_model, mode, f"{name} + prompt lookup" if mode == "hybrid" else name

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
            self._offer_drafts(key)
            self.main_model = key
            self.draft_model = self._offer.key_of(draft, self._service, self._label)
            if draft is not DEFAULT:
                self._chosen.pick(key, self.draft_model)
            self._prepare()

    def _offer_drafts(self, main: str) -> None:
        """Fill the draft selector (and its list of incompatible models) for `main`."""
        self._offer = offer = DraftOffer.of(self._service, main)
        with self.hold_sync():
            self.drafts, self.incompatible = offer.compatible, offer.incompatible
            self.default_draft, self.draft_guidance = offer.default, offer.guidance

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
            self._offer_drafts(change["new"])
            chosen = self._chosen.for_main(self._offer)
            self.draft_model = self._offer.key_of(chosen, self._service, self._label)
            self._prepare()

    def _on_draft(self, change: dict) -> None:
        if not self._selecting:
            self._chosen.pick(self.main_model, change["new"])
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
