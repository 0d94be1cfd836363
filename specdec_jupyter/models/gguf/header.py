"""A GGUF file's header in tens of milliseconds, read by the gguf package's own reader.

`gguf.GGUFReader` makes a numpy view for every element of every array field: for
Qwen2.5's 151936 tokens, their types and 151387 merges that is about a million
views and 8 s. `GGUFHeader` keeps everything else the reader does (magic, version,
byte order, key/value fields, tensor infos, alignment) and changes two steps: an
array field holds one view over its whole payload (string arrays are walked only
to find where they end, and decoded when asked for), and tensors are recorded as
infos without data views, so a cut-short file is reported by its size.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFEndian, GGUFReader, GGUFValueType
from gguf.gguf_reader import ReaderField

from ...errors import UnusableModelError
from ..paths import not_a_file

GGUF_MAGIC = b"GGUF"
_ARRAY_HEADER_BYTES = 12  # item type (uint32) + item count (uint64)
INT64_MAX = 2**63 - 1  # what ggml's sizes hold (llama.cpp refuses a tensor past it)
SPARSE_CHECK_BYTES = 64 << 20  # smaller files may live inside the filesystem's own blocks
SPARSE_SHARE = 0.5  # a model with less of its bytes on disk is mostly holes


@dataclass(frozen=True)
class TensorInfo:
    name: str
    ggml_type: GGMLQuantizationType
    n_dims: int  # 1 for norms and biases, 2 and up for the matrices calls multiply
    n_elements: int
    n_bytes: int
    offset: int  # from the start of the file


class GGUFHeader(GGUFReader):
    """The metadata and tensor infos of a GGUF file, with arrays kept whole."""

    def __init__(self, path: str | os.PathLike[str]):
        self.tensor_infos: list[TensorInfo] = []
        super().__init__(path, "r")

    # -- the reader's steps, changed ------------------------------------------

    def _get_field_parts(
        self, orig_offs: int, raw_type: int
    ) -> tuple[int, list[np.ndarray], list[int], list[GGUFValueType]]:
        """Arrays become one view: typed for numbers (so `contents()` still works), raw
        bytes for strings (read them with `strings()`)."""
        if raw_type != GGUFValueType.ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        raw_item_type = self._get(orig_offs, np.uint32)
        count = self._get(orig_offs + 4, np.uint64)
        item_type = GGUFValueType(int(raw_item_type[0]))
        start, n_items = orig_offs + _ARRAY_HEADER_BYTES, int(count[0])
        if item_type == GGUFValueType.STRING:
            end = self._end_of_strings(start, n_items)
            dtype, n_payload = np.uint8, end - start
        elif item_type in self.gguf_scalar_to_np:
            dtype, n_payload = self.gguf_scalar_to_np[item_type], n_items
            end = start + np.dtype(dtype).itemsize * n_items
        else:  # arrays of arrays: rare and small, the reader's own way is fine
            return super()._get_field_parts(orig_offs, raw_type)
        if end > len(self.data):
            raise ValueError(f"an array at offset {orig_offs} runs past the end of the file")
        payload = self._get(start, dtype, n_payload)
        types = [GGUFValueType.ARRAY, item_type]
        return end - orig_offs, [raw_item_type, count, payload], [2], types

    def _end_of_strings(self, offset: int, count: int) -> int:
        unpack, buffer = self._unpack_length, memoryview(self.data)
        for _ in range(count):
            offset += 8 + unpack(buffer, offset)[0]
        return offset

    @property
    def _unpack_length(self):
        little = self.endianess == GGUFEndian.LITTLE
        return struct.Struct("<Q" if little else ">Q").unpack_from

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        for field in fields:
            _name_length, name, n_dims, dims, raw_type, offset = field.parts
            ggml_type = GGMLQuantizationType(int(raw_type[0]))
            block_size, type_size = GGML_QUANT_SIZES[ggml_type]
            text = bytes(name).decode("utf-8", "replace")
            shape = [int(d) for d in dims]  # Python's integers: a product cannot wrap
            n_elements = math.prod(shape)
            n_bytes = n_elements * type_size // block_size
            if any(d > INT64_MAX for d in shape) or n_elements > INT64_MAX or n_bytes > INT64_MAX:
                raise ValueError(f"tensor {text!r} of shape {shape} has a size that overflows")
            if shape and shape[0] % block_size:
                raise ValueError(
                    f"tensor {text!r} has rows of {shape[0]} values, not a multiple of its "
                    f"type's blocks of {block_size}"
                )
            self.tensor_infos.append(
                TensorInfo(
                    name=text,
                    ggml_type=ggml_type,
                    n_dims=int(n_dims[0]),
                    n_elements=n_elements,
                    n_bytes=n_bytes,
                    offset=start_offs + int(offset[0]),
                )
            )

    # -- reading fields --------------------------------------------------------

    def value(self, key: str) -> Any:
        """A scalar or string field's value, or None when the file has no such key."""
        field = self.fields.get(key)
        if field is None or field.types[0] == GGUFValueType.ARRAY:
            return None
        return field.contents()

    def array_length(self, key: str) -> int | None:
        field = self.fields.get(key)
        if field is None or field.types[0] != GGUFValueType.ARRAY:
            return None
        return int(field.parts[field.data[0] - 1][0])

    def strings(self, key: str) -> list[str]:
        """The texts of a string array field (empty when the key is missing)."""
        return [raw.decode("utf-8", "replace") for raw in self._raw_strings(key)]

    def _raw_strings(self, key: str) -> Iterator[bytes]:
        field = self.fields.get(key)
        if field is None or field.types[-1] != GGUFValueType.STRING:
            return
        payload = bytes(field.parts[field.data[0]])
        unpack = self._unpack_length
        offset = 0
        for _ in range(self.array_length(key) or 0):
            (length,) = unpack(payload, offset)
            offset += 8
            yield payload[offset : offset + length]
            offset += length

    @property
    def data_end(self) -> int:
        """Where the last tensor's data ends: past the file's size, the file is cut short."""
        return max((t.offset + t.n_bytes for t in self.tensor_infos), default=self.data_offset)


def open_gguf(path: Path) -> GGUFHeader:
    """Read a GGUF file's header, or raise UnusableModelError saying what is wrong with it."""
    reason = not_a_file(path)
    if reason is not None:
        raise UnusableModelError(path, reason)
    stat = path.stat()
    size = stat.st_size
    if size == 0:
        raise UnusableModelError(path, "the file is empty")
    on_disk = getattr(stat, "st_blocks", None)
    if on_disk is not None and size > SPARSE_CHECK_BYTES and on_disk * 512 < size * SPARSE_SHARE:
        raise UnusableModelError(
            path,
            f"only {on_disk * 512} of its {size} bytes are on disk (a sparse file: its data "
            "was never written, as after an interrupted download); download it again",
        )
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise UnusableModelError(
            path, f"not a GGUF file (it starts with {magic!r}, not {GGUF_MAGIC!r})"
        )
    try:
        header = GGUFHeader(path)
    except (ValueError, IndexError, KeyError, OverflowError, struct.error) as exc:
        raise UnusableModelError(
            path, f"its header is damaged or cut short ({type(exc).__name__}: {exc})"
        ) from exc
    if header.data_end > size:
        needed = header.data_end
        raise UnusableModelError(
            path, f"it is truncated: its tensors need {needed} bytes but the file has {size}"
        )
    return header
