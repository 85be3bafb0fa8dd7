"""Serving magnet-jax over HTTP: a batching scheduler in front of one `MagnetPipeline`, a FastAPI app (JSON API,
server-sent progress, Prometheus metrics, a web page) and `serve(ServeOptions)`, which `magnet-jax serve` calls.
See docs/serving.md.

  schema.py     the request body (pydantic), its decoding part derived from DecodingConfig's metadata
  service.py    checks requests against the model, owns the scheduler and the output folder
  scheduler.py  the bounded queue, batching, deadlines, cancel, drain
  engine.py     a batch of outputs -> one pipeline call, on every local device
  jobs.py       a request's state as the API reports it
  app.py        the HTTP routes and the web page
  guard.py      who may talk to the server and how much: Host, Origin, token, body size (ASGI middleware)
  live.py       the live WebSocket: one endless stream per listener, prompt changes from the next window
  metrics.py    Prometheus metrics of one server
"""
