"""A main model spread over other machines with llama.cpp's RPC backend.

A worker (`specdec-jupyter rpc-worker`, `worker.py`) offers its CPU or GPU to one client at a
time; the llama.cpp engine, asked for `rpc` workers, checks that each answers in this build's
protocol (`handshake.py`), then loads the model in a process of its own (`hosted.py`,
`host.py`) that registers the workers' devices and lets llama.cpp place layers on them
(`devices.py`). `loopback.py` starts workers on this machine, to try it without a second one.
Why a process of its own: llama.cpp's RPC client ends the whole process when a
worker stops answering, and a notebook's kernel or a server must live on.
"""
