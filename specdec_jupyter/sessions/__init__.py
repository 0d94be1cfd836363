"""Carrying tokens from the loop to whoever shows them: sessions on loaded engines, runs on
worker threads, the kernel's EngineManager, the services the widgets ask, the session on a
server, and the wire format."""
