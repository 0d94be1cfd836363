"""One validation of the settings a run takes, before any model loads.

`RunSettings(**raw)` checks raw values as a user, the CLI, a magic, a widget or a server
hands them over, and refuses the first bad one with a `SettingsError` naming the value and
the allowed range. The decoding dataclasses check with the same functions, so a setting has
one rule wherever it enters.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import SettingsError

DraftMode = Literal["model", "lookup", "hybrid"]
DRAFT_MODES: tuple[DraftMode, ...] = ("model", "lookup", "hybrid")


def _integer(name: str, value: Any, minimum: int, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SettingsError(f"{name} must be {rule}, got {value!r}")
    return int(value)


def _number(name: str, value: Any, allowed: Callable[[float], bool], rule: str) -> float:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or not allowed(float(value)):
        raise SettingsError(f"{name} must be {rule}, got {value!r}")
    return float(value)


def check_temperature(value: Any) -> float:
    return _number("temperature", value, lambda t: t >= 0, ">= 0 and finite (0 is greedy)")


def check_top_p(value: Any) -> float:
    return _number("top_p", value, lambda p: 0 < p <= 1, "in (0, 1] (1 switches it off)")


def check_top_k(value: Any) -> int:
    return _integer("top_k", value, 0, "an integer >= 0 (0 switches it off)")


def check_max_tokens(value: Any) -> int:
    return _integer("max_tokens", value, 1, "an integer >= 1")


def check_seed(value: Any) -> int | None:
    return None if value is None else _integer("seed", value, 0, "an integer >= 0 or None")


def check_draft_tokens(value: Any) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    return _integer("draft_tokens", value, 0, '"auto" or an integer >= 0')


def check_draft_mode(value: Any) -> DraftMode | None:
    if value is not None and value not in DRAFT_MODES:
        raise SettingsError(f"draft_mode must be one of {', '.join(DRAFT_MODES)}, got {value!r}")
    return value


def check_stops(value: Any) -> tuple[str, ...]:
    """A string is one stop string (not one per character); each must be non-empty text."""
    stops = (value,) if isinstance(value, str) else tuple(value or ())
    for stop in stops:
        if not isinstance(stop, str) or not stop:
            raise SettingsError(f"each stop must be a non-empty string, got {stop!r}")
    return stops


@dataclass(frozen=True)
class RunSettings:
    """A run's settings, checked and normalized (`stop` a tuple, integers plain ints)."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    draft_tokens: int | Literal["auto"] = "auto"
    draft_mode: DraftMode | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            object.__setattr__(self, name, check(getattr(self, name)))

    @classmethod
    def among(cls, options: Mapping[str, Any]) -> RunSettings:
        """The settings among `options` checked; other keys (`system`, `raw`...) are ignored."""
        return cls(**{key: value for key, value in options.items() if key in _CHECKS})


_CHECKS = {
    "max_tokens": check_max_tokens,
    "temperature": check_temperature,
    "top_k": check_top_k,
    "top_p": check_top_p,
    "draft_tokens": check_draft_tokens,
    "draft_mode": check_draft_mode,
    "stop": check_stops,
    "seed": check_seed,
}
