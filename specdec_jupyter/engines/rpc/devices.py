"""The workers' devices, added as llama.cpp's `--rpc` adds them (common/arg.cpp): each
worker's registry from `ggml_backend_rpc_add_server`, whose devices the model is then given
in `llama_model_params.devices` (never registered process-wide, so `ggml_devices.has_gpu`
still speaks of this machine alone), with each worker's share as `--tensor-split` gives it.

Each worker is asked for the handshake (handshake.py) just before, and then held on one
connection until the model's context holds its own: llama.cpp's client opens a connection for
each step of a load while nothing holds one, and a worker serves one client at a time, so
another client that took the worker between two steps would leave this load waiting, without
a word, for as long as that client keeps it. What is left is the moment between the handshake
and the held connection: a client that takes the worker just then makes this load wait for it
(Ctrl-C in the notebook ends the wait, hosted.py).

Only a process that may end with a worker calls this: llama.cpp's client aborts on a worker
that stops answering (hosted.py keeps that away from the notebook).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp

from ...errors import RpcWorkerError
from ...settings import RpcWorker
from .. import ggml_devices
from .handshake import check_worker


@dataclass
class WorkerDevices:
    """What a model load needs to spread its layers over the workers, and the words for
    where they went."""

    devices: list[ggml_devices.Device]
    split: list[float] | None  # a share per device, or None: llama.cpp's split by memory
    labels: dict[str, str]  # device name, as llama.cpp's log has it -> "rpc host:port"
    held: list[int]  # a backend per worker, holding its connection until `__exit__`

    def add(self, worker: RpcWorker) -> list[float]:
        """Check `worker`, hold it and take its devices; returns a share per device."""
        check_worker(worker)
        rpc = ggml_devices.rpc_library()
        self.held.append(rpc.ggml_backend_rpc_init(worker.endpoint.encode(), 0))
        registry = rpc.ggml_backend_rpc_add_server(worker.endpoint.encode())
        found = ggml_devices.registry_devices(registry) if registry else []
        if not found:
            raise RpcWorkerError(f"RPC worker {worker.endpoint} offers no device")
        for number, device in enumerate(found):
            several = f" #{number}" if len(found) > 1 else ""
            self.labels[ggml_devices.device_name(device)] = f"rpc {worker.endpoint}{several}"
        self.devices += found
        return [(worker.share or 0.0) / len(found)] * len(found)

    def __enter__(self) -> WorkerDevices:
        return self

    def __exit__(self, *exc: object) -> None:
        """Let go of the workers (a model's context, once made, holds connections of its own)."""
        while self.held:
            ggml_devices.free_backend(self.held.pop())

    def params(self, params: llama_cpp.llama_model_params) -> list[ctypes.Array]:
        """Point a load's `params` at the devices and shares; returns the arrays, which must
        live until the load returns."""
        devices = ggml_devices.device_list(self.devices)
        params.devices = ctypes.cast(devices, ctypes.c_void_p)
        arrays = [devices]
        if self.split is not None:
            shares = (ctypes.c_float * llama_cpp.llama_max_devices())(*self.split)
            params.tensor_split = shares
            arrays.append(shares)
        return arrays


def worker_devices(workers: Sequence[RpcWorker]) -> WorkerDevices:
    """Every device of every worker, in the order given (a worker with several GPUs shares
    its part evenly among them), each worker checked and held (the module's doc); an
    RpcWorkerError names one that is not there, busy or of another build."""
    if not llama_cpp.llama_supports_rpc():
        raise RpcWorkerError(
            "this llama-cpp-python was built without the RPC backend; reinstall it with "
            'CMAKE_ARGS="-DGGML_RPC=on" pip install --force-reinstall --no-cache-dir '
            "llama-cpp-python"
        )
    placement = WorkerDevices([], None, {}, [])
    split: list[float] = []
    try:
        for worker in workers:
            split += placement.add(worker)
    except BaseException:
        placement.__exit__()  # let go of the workers held so far
        raise
    if all(worker.share is not None for worker in workers):
        placement.split = split
    return placement
