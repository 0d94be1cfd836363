"""The teaching widget: speculative decoding one round at a time, stage by stage.

    from specdec_jupyter.widgets import TeachWidget
    TeachWidget(engine="toy")                     # the numpy pair: instant, no download
    TeachWidget("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b", temperature=1.0)

A round, in stages: the draft proposes k tokens (q of each, its top alternatives as
bars); the main model scores them in one pass (p bars beside q); each draft token is
judged, u against min(1, p/q); a rejection shows max(0, p - q) and the residual it
normalises to, which the correction is drawn from, a full accept the bonus token, an
accepted end-of-generation token nothing more; Back steps back through earlier rounds.
A draft of another vocabulary (SmolLM2-135M for Qwen2.5-Coder) drafts text: its round
first shows the draft's own tokens (their ids in its vocabulary) and the text they spell,
then the main model's tokens for that text, each proposed with q = 1, and what waits.
The rounds are computed by `walkthrough.py` with the loop's own parts; this class wires
the buttons to it and publishes its state as traits. Front-end actions run on a worker
thread, so the kernel stays free while a real model computes a round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import traitlets as t

from ...decoding.sampling import SamplingSettings
from ...display.stats_layout import stop_reason_in_words
from ...engines.base import Engine
from ...engines.registry import DEFAULT_KIND
from ...errors import SettingsError, SpecDecError
from ...sessions.manager import EngineManager
from ...sessions.pair import Pair
from ...sessions.service import EngineService
from ...sessions.wire import PROBABILITY_DIGITS, token_to_dict
from ...settings import RunSettings
from ..base import STATIC, Widget, describe, form_fields, on_messages, refuse_unknown
from ..base import status as _status
from .walkthrough import TEACHER, Walkthrough

TOY_PROMPT = "when the draft model"  # the toy models know only their corpus's words
MODEL_PROMPT = "Explain speculative decoding in two sentences."
# The run settings a teacher takes: what shapes the distributions (as the loop samples), the
# seed of its draws and the length; a teacher's own defaults: sampling, so u matters.
RUN_SETTINGS = (*(f.name for f in fields(SamplingSettings)), "seed", "max_tokens")
DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "k": 4,
    **{key: value for key, value in TEACHER.to_dict().items() if key in RUN_SETTINGS},
}
SETTING_FIELDS = [
    {"key": "prompt", "kind": "text", "label": "Prompt"},
    {"key": "k", "kind": "number", "label": "k", "step": 1, "min": 1, "max": 16},
    *form_fields(RunSettings, only=RUN_SETTINGS),
]


Action = Callable[[Walkthrough, Engine, Engine], None]


class TeachWidget(Widget):
    """Step through speculative decoding on a model pair: Back, Step, Finish round,
    Play/Pause (a step every `interval` seconds), Reset, and the settings (`DEFAULTS`):
    prompt, k, and the run settings that shape the draws (temperature, top_k, top_p, ...),
    seed and max_tokens.

    `main` and `draft` name models as `EngineManager` does (on engine="toy" the pair is
    toy-trigram and toy-bigram); without `draft`, the one remembered for `main`, else the
    first compatible one. `walkthrough.current` is the round on show (a `RoundTrace`).
    """

    _esm = STATIC / "teach.js"
    _css = STATIC / "teach.css"

    engine = t.Unicode().tag(sync=True)
    main_model = t.Unicode().tag(sync=True)
    draft_model = t.Unicode().tag(sync=True)
    settings = t.Dict().tag(sync=True)  # DEFAULTS' keys, as the walkthrough on show has them
    setting_fields = t.List(t.Dict(), SETTING_FIELDS).tag(sync=True)  # the form's controls
    trace = t.Dict().tag(sync=True)  # the round on show: RoundTrace.to_dict()
    stage = t.Int(0).tag(sync=True)  # how far into trace["stages"] is shown
    tokens = t.List(t.Dict()).tag(sync=True)  # the text so far, in the chat's token format
    counts = t.Dict().tag(sync=True)
    stop_reason = t.Unicode().tag(sync=True)  # "" until the generation has ended
    playing = t.Bool(False).tag(sync=True)
    interval = t.Float(1.0).tag(sync=True)  # seconds between Play's steps: the speed control
    can_go_back = t.Bool(False).tag(sync=True)
    status = t.Dict(_status()).tag(sync=True)

    def __init__(
        self,
        main: str | None = None,
        draft: str | None = None,
        *,
        engine: str = DEFAULT_KIND,
        manager: EngineManager | None = None,
        prompt: str | None = None,
        interval: float = 1.0,
        **settings: Any,
    ):
        refuse_unknown("TeachWidget", settings, DEFAULTS)
        service = EngineService(engine, manager)
        main_key = service.key_of(main) if main is not None else service.default_main()
        if main_key is None:
            raise SpecDecError(
                f"no {engine} models found; fetch some with "
                "`specdec-jupyter models fetch qwen2.5-coder-pair`, or use engine='toy'"
            )
        draft_key = service.key_of(draft) if draft is not None else _some_draft(service, main_key)
        super().__init__(
            engine=engine,
            main_model=_name(main_key),
            draft_model=_name(draft_key),
            interval=interval,
            settings=DEFAULTS,
        )
        self._service = service
        # Exact unless the manager was told otherwise: what the learner sees verified is
        # what plain decoding gives, whatever the draft proposes.
        self._pair = Pair(main_key, draft_key, options=service.manager.options.settled(True))
        self._lock = threading.Lock()  # one action at a time on the walkthrough
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="specdec teach")
        self._wake = threading.Event()  # ends a Play wait early on Pause
        self.walkthrough: Walkthrough
        on_messages(self, self._on_message)
        self.reset(
            prompt=prompt or (TOY_PROMPT if service.engine == "toy" else MODEL_PROMPT), **settings
        )

    # -- the buttons ---------------------------------------------------------------------

    def step(self) -> None:
        """Show the next stage of the round; after its last, compute the next round."""
        self._drive(Walkthrough.step)

    def back(self) -> None:
        """Show the stage before (into earlier rounds, as they were drawn)."""
        with self._lock, self.hold_sync():
            self.walkthrough.back()
            self._publish()

    def finish_round(self) -> None:
        """Show the rest of the round (at its end: all of the next round)."""
        self._drive(Walkthrough.finish_round)

    def reset(self, **changes: Any) -> None:
        """Start again from the prompt, with any of the settings (`DEFAULTS`' keys) changed;
        the first round's draft is shown at once."""
        refuse_unknown("TeachWidget.reset", changes, DEFAULTS)
        values = {**self.settings, **changes}
        if not isinstance(values["prompt"], str):
            raise SettingsError(f"the prompt must be text, got {values['prompt']!r}")
        run = RunSettings.among(values)
        with self._lock, self._service.hold(self._pair) as session:
            prompt = values["prompt"]
            text = session.draft_prompt_tokens(prompt) if session.text_level else None
            walkthrough = Walkthrough(
                session.prompt_tokens(prompt), values["k"], run, draft_prompt=text
            )
            walkthrough.step(session.main, session.draft)
            self.walkthrough = walkthrough
            with self.hold_sync():
                self.settings = {**values, **{key: run.to_dict()[key] for key in RUN_SETTINGS}}
                self._publish()

    def play(self) -> None:
        """Step every `interval` seconds, on a worker thread, until the end or `pause()`."""
        if self.playing or self.walkthrough.done:
            return
        self.playing = True
        self._wake.clear()
        self._worker.submit(self._play)

    def pause(self) -> None:
        self.playing = False
        self._wake.set()

    @t.validate("interval")
    def _interval_not_negative(self, proposal: dict) -> float:
        if proposal["value"] < 0:
            raise t.TraitError(
                f"interval (seconds between Play's steps) must be 0 or more, "
                f"got {proposal['value']}"
            )
        return proposal["value"]

    # -- wiring ----------------------------------------------------------------------------

    def _drive(self, action: Action) -> None:
        """Run `action` on the walkthrough with the pair held, then publish the result."""
        with self._lock, self._service.hold(self._pair) as session:
            walkthrough = self.walkthrough
            if walkthrough.round_shown and walkthrough.stop_reason is None:
                self.status = _status("busy", f"Computing round {len(walkthrough.rounds) + 1}…")
            action(walkthrough, session.main, session.draft)
            with self.hold_sync():
                self._publish()

    def _publish(self) -> None:
        walkthrough = self.walkthrough
        current = walkthrough.current
        self.trace = current.to_dict() if current is not None else {}
        self.stage = walkthrough.stage
        self.tokens = [token_to_dict(e, PROBABILITY_DIGITS) for e in walkthrough.visible_events]
        self.stop_reason = walkthrough.stop_reason if walkthrough.done else ""
        finished = {"finished": stop_reason_in_words(self.stop_reason)} if self.stop_reason else {}
        self.counts = walkthrough.counts() | finished
        self.can_go_back = walkthrough.can_go_back
        self.status = _status("done" if walkthrough.done else "idle")

    def _play(self) -> None:
        while self.playing and not self.walkthrough.done:
            if not self._reported(self.step):
                break
            self._wake.wait(self.interval)
        self.playing = False

    def _reported(self, action: Callable[[], None]) -> bool:
        """Run a front-end action; an error shows in the widget, in words. False on one."""
        try:
            action()
        except Exception as exc:
            self.status = _status("error", describe(exc))
            return False
        return True

    def _on_message(self, content: dict) -> None:
        kind = content.get("type")
        if kind == "play":
            self.play()
            return
        self.pause()
        if kind in ("step", "back", "finish_round"):
            self._worker.submit(self._reported, getattr(self, kind))
        elif kind == "reset":
            settings = {k: v for k, v in content.get("settings", {}).items() if k in DEFAULTS}
            self._worker.submit(self._reported, lambda: self.reset(**settings))

    def __repr__(self) -> str:
        trace = self.trace
        where = (
            f"round {trace['number']}, stage {self.stage + 1}/{len(trace['stages'])}"
            if trace
            else "no round"
        )
        settings = ", ".join(f"{key}={value!r}" for key, value in self.settings.items())
        return (
            f"TeachWidget(engine={self.engine!r}, main={self.main_model!r}, "
            f"draft={self.draft_model!r}, {settings}, {where})"
        )


def _some_draft(service: EngineService, main: str) -> str:
    """The draft remembered for `main`, else the first that can draft for it (those of its
    vocabulary are listed first; one of another drafts text): teaching needs one."""
    draft = service.default_draft(main)
    if draft is None:
        compatible, _ = service.drafts(main)
        draft = compatible[0].key if compatible else None
    if draft is None:
        raise SpecDecError(
            f"no draft model can draft for {_name(main)}; fetch a compatible pair with "
            "`specdec-jupyter models fetch qwen2.5-coder-pair`, or use engine='toy'"
        )
    return draft


def _name(key: str) -> str:
    """How a model is shown: toy names as they are, files by their name."""
    return Path(key).name
