"""The compute devices llama.cpp's ggml library offers, read from its own device registry.

llama-cpp-python's `llama_supports_gpu_offload()` also answers yes for a build with the RPC
backend, which offloads to other machines' workers only once they are named; whether layers
can go to a GPU of this machine is whether ggml registered a GPU device. An RPC worker's
devices (engines/rpc/) are ggml devices too, of a registry of their own.
"""

from __future__ import annotations

import ctypes
from functools import cache

import llama_cpp
from llama_cpp._ctypes_extensions import load_shared_library

GGML_BACKEND_DEVICE_TYPE_CPU = 0
GGML_BACKEND_DEVICE_TYPE_GPU = 1
GGML_BACKEND_DEVICE_TYPE_IGPU = 2

Device = int  # a ggml_backend_dev_t: an address


def library(name: str) -> ctypes.CDLL:
    """One of the ggml libraries llama-cpp-python ships ("ggml", "ggml-rpc")."""
    return load_shared_library(name, llama_cpp.llama_cpp._base_path)


@cache
def _ggml() -> ctypes.CDLL:
    ggml = library("ggml")
    for function, arguments, result in (
        ("ggml_backend_dev_by_type", [ctypes.c_int], ctypes.c_void_p),
        ("ggml_backend_dev_count", [], ctypes.c_size_t),
        ("ggml_backend_dev_get", [ctypes.c_size_t], ctypes.c_void_p),
        ("ggml_backend_dev_type", [ctypes.c_void_p], ctypes.c_int),
        ("ggml_backend_dev_name", [ctypes.c_void_p], ctypes.c_char_p),
        ("ggml_backend_dev_description", [ctypes.c_void_p], ctypes.c_char_p),
        ("ggml_backend_reg_dev_count", [ctypes.c_void_p], ctypes.c_size_t),
        ("ggml_backend_reg_dev_get", [ctypes.c_void_p, ctypes.c_size_t], ctypes.c_void_p),
        ("ggml_backend_free", [ctypes.c_void_p], None),
    ):
        getattr(ggml, function).argtypes = arguments
        getattr(ggml, function).restype = result
    return ggml


@cache
def rpc_library() -> ctypes.CDLL:
    """ggml's RPC backend: a client's `ggml_backend_rpc_add_server` and
    `ggml_backend_rpc_init` (engines/rpc/devices.py) and a worker's
    `ggml_backend_rpc_start_server` (engines/rpc/worker.py)."""
    rpc = library("ggml-rpc")
    rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_init.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
    rpc.ggml_backend_rpc_init.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_start_server.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
        ctypes.c_void_p,
    ]
    rpc.ggml_backend_rpc_start_server.restype = None
    return rpc


def has_gpu() -> bool:
    """Whether this build registered a GPU of this machine (CUDA, Metal, Vulkan...)."""
    return bool(gpus())


def gpus() -> list[Device]:
    """This machine's GPUs, as ggml registered them (RPC workers are never registered)."""
    ggml = _ggml()
    devices = (ggml.ggml_backend_dev_get(i) for i in range(ggml.ggml_backend_dev_count()))
    gpu_types = (GGML_BACKEND_DEVICE_TYPE_GPU, GGML_BACKEND_DEVICE_TYPE_IGPU)
    return [device for device in devices if ggml.ggml_backend_dev_type(device) in gpu_types]


def cpu() -> Device:
    return _ggml().ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)


def registry_devices(registry: int) -> list[Device]:
    """The devices of a ggml backend registry (an RPC worker's)."""
    ggml = _ggml()
    return [
        ggml.ggml_backend_reg_dev_get(registry, i)
        for i in range(ggml.ggml_backend_reg_dev_count(registry))
    ]


def device_name(device: Device) -> str:
    """The name llama.cpp's log gives the device ("CPU", "CUDA0", "RPC1")."""
    return _ggml().ggml_backend_dev_name(device).decode()


def device_description(device: Device) -> str:
    """What the device is (a GPU's model; an RPC worker's host:port)."""
    return _ggml().ggml_backend_dev_description(device).decode()


def free_backend(backend: int) -> None:
    _ggml().ggml_backend_free(backend)


def device_list(devices: list[Device]) -> ctypes.Array:
    """The NULL-terminated array `llama_model_params.devices` takes."""
    return (ctypes.c_void_p * (len(devices) + 1))(*devices, None)
