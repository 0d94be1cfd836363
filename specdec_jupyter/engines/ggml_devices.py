"""The compute devices llama.cpp's ggml library offers, read from its own device registry.

llama-cpp-python's `llama_supports_gpu_offload()` also answers yes for a build with the RPC
backend, which offloads to other machines' workers only once they are named; whether layers
can go to a GPU of this machine is whether ggml registered a GPU device.
"""

from __future__ import annotations

import ctypes
from functools import cache

import llama_cpp
from llama_cpp._ctypes_extensions import load_shared_library

GGML_BACKEND_DEVICE_TYPE_GPU = 1
GGML_BACKEND_DEVICE_TYPE_IGPU = 2


@cache
def _ggml() -> ctypes.CDLL:
    library = load_shared_library("ggml", llama_cpp.llama_cpp._base_path)
    library.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    library.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    return library


def has_gpu() -> bool:
    """Whether this build registered a GPU of this machine (CUDA, Metal, Vulkan...)."""
    by_type = _ggml().ggml_backend_dev_by_type
    return any(
        by_type(kind) for kind in (GGML_BACKEND_DEVICE_TYPE_GPU, GGML_BACKEND_DEVICE_TYPE_IGPU)
    )
