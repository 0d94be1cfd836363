"""`specdec-jupyter serve`: LM Studio's `/api/v0` and OpenAI's `/v1` API on the EngineManager.

`app.create_app` builds the ASGI app (Starlette), `served.ServedModels` is the table of
model ids a client may name, `requests.parse_request` reads a request body in one place,
and `shapes` holds the response bodies (OpenAI's, plus LM Studio's `stats`, and our
per-token `provenance`).
"""
