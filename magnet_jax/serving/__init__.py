"""Serving magnet-jax over HTTP: a batching scheduler in front of one `MagnetPipeline`, a FastAPI app (JSON API,
server-sent progress, Prometheus metrics, a web page) and `serve(ServeOptions)`, which `magnet-jax serve` calls.

Modules: `engine` (a batch of outputs -> one pipeline call, devices), `scheduler` (queue, batching, deadlines,
cancel, drain), `jobs` (a request's state), `service` (checks requests against the model, owns the scheduler and
the output folder), `app` (the HTTP routes), `metrics`. See docs/serving.md.
"""
