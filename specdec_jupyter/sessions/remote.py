"""A session on a server (`specdec-jupyter serve`) with `load()`'s API: the kernel stays here,
the models run where the server is.

    remote = sd.connect("http://gpu-box:1234", model="qwen2.5-coder-1.5b",
                        draft="qwen2.5-coder-0.5b")   # draft=DEFAULT: the server's default
    result = remote.generate("Write a quicksort in Python.")   # same TokenEvents and stats
    for event in remote.stream("Explain the Pythagorean theorem"): ...

Tokens arrive as the server streams them, each chunk's provenance turned back into
`TokenEvent`s and the last chunk's stats into `GenerationStats`, so everything that shows a
local result shows a remote one. The run settings travel as the request body's fields, by
their `RunSettings` names. Only the standard library talks HTTP here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from ..decoding.events import GenerationStats, TokenEvent
from ..errors import ContextOverflowError, SettingsError, SpecDecError, UnknownModelError
from ..settings import RunSettings
from .pair import DEFAULT, Remembered
from .result import GenerationResult
from .session import Prompt
from .wire import stats_from_dict, token_from_dict

_ERRORS: dict[int, type[SpecDecError]] = {404: UnknownModelError, 413: ContextOverflowError}


class RemoteError(SpecDecError):
    """The server refused a request; the message is the server's."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class RemoteSession:
    """`Session`'s `stream()` / `generate()` against a server; `model` and `draft` are ids
    from `models()` (draft None: plain decoding; DEFAULT: the server's default draft)."""

    def __init__(
        self,
        url: str,
        model: str,
        draft: str | Remembered | None = DEFAULT,
        api_key: str | None = None,
        timeout: float = 600.0,
    ):
        address = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if address is None or address.scheme not in ("http", "https") or not address.netloc:
            raise SettingsError(
                f"{url!r} is not a server's address; give one like http://gpu-box:1234 "
                "(where `specdec-jupyter serve` runs)"
            )
        self.url = url.rstrip("/")
        self.model, self.draft = model, draft
        self.api_key, self.timeout = api_key, timeout
        self.last_stats: GenerationStats | None = None

    def models(self) -> list[dict[str, Any]]:
        """The server's models as LM Studio lists them (id, arch, format, state, ...)."""
        return self.get("/api/v0/models")["data"]

    def get(self, path: str) -> Any:
        """The JSON the server answers a GET of `path` with."""
        with self._open("GET", path) as reply:
            return json.load(reply)

    def stream(
        self,
        prompt: Prompt,
        settings: RunSettings | None = None,
        *,
        continue_: bool = False,
        should_stop: Callable[[], bool] | None = None,
        **overrides: Any,
    ) -> Iterator[TokenEvent]:
        """Yield tokens as the server streams them; `last_stats` holds the stats afterwards.
        Settings and options are `Session.stream`'s; stopping closes the stream, which
        cancels the run on the server after its current round."""
        path, body = self._request(prompt, RunSettings.of(settings, **overrides), continue_)
        self.last_stats = None
        with self._open("POST", path, body) as reply:
            for line in reply:
                if should_stop is not None and should_stop():
                    return
                if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RemoteError(chunk["error"]["message"], 500)
                for token in chunk.get("provenance", []):
                    if should_stop is not None and should_stop():
                        return  # a chunk may carry many rounds: stop between its tokens too
                    yield token_from_dict(token)
                if "stats" in chunk:
                    self.last_stats = stats_from_dict(chunk["stats"])

    def generate(
        self, prompt: Prompt, settings: RunSettings | None = None, **options: Any
    ) -> GenerationResult:
        """Run to the end and return text, events and stats (options as for `stream`)."""
        events = list(self.stream(prompt, settings, **options))
        if self.last_stats is None:
            raise RemoteError("the server's stream ended without its stats", 502)
        return GenerationResult(events, self.last_stats)

    def _request(
        self, prompt: Prompt, settings: RunSettings, continue_: bool
    ) -> tuple[str, dict[str, Any]]:
        """The endpoint and body: the settings as fields, the draft as `draft_model`."""
        body: dict[str, Any] = {"model": self.model, "stream": True, **settings.to_dict()}
        if not settings.use_draft or self.draft is None:
            body["draft_model"] = None
        elif self.draft is not DEFAULT:
            body["draft_model"] = self.draft
        if settings.raw and isinstance(prompt, str):
            return "/v1/completions", {**body, "prompt": prompt}
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        messages = list(messages)
        if continue_ and (not messages or messages[-1].get("role") != "assistant"):
            raise SettingsError(
                "continue_=True needs the conversation to end with the assistant's message"
            )
        return "/v1/chat/completions", {**body, "messages": messages}

    def _open(self, method: str, path: str, body: dict[str, Any] | None = None):
        headers = {"Content-Type": "application/json"}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code} from {self.url}"
            error = _ERRORS.get(exc.code)
            raise (error(message) if error else RemoteError(message, exc.code)) from None
        except urllib.error.URLError as exc:
            raise RemoteError(
                f"cannot reach {self.url} ({exc.reason}); is `specdec-jupyter serve` running?",
                503,
            ) from None

    def __repr__(self) -> str:
        return f"RemoteSession({self.url!r}, model={self.model!r}, draft={self.draft!r})"


def connect(
    url: str,
    model: str | None = None,
    draft: str | Remembered | None = DEFAULT,
    *,
    api_key: str | None = None,
) -> RemoteSession:
    """A session on the server at `url`; `model` defaults to the server's first GGUF model
    (else its first), `draft` to the model's default draft on the server (None: no draft)."""
    session = RemoteSession(url, model or "", draft, api_key)
    if model is None:
        listed = session.models()
        if not listed:
            raise RemoteError(f"{url} serves no models", 404)
        gguf = [m["id"] for m in listed if m.get("compatibility_type") == "gguf"]
        session.model = gguf[0] if gguf else listed[0]["id"]
    return session
