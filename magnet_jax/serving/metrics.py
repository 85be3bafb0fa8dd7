"""Prometheus metrics of one server (its own registry, so several servers can live in one process, e.g. tests)."""
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
  """Queue depth, batch sizes, job latency and outcomes, rejections, compile events."""

  def __init__(self, depth: Callable[[], int]):
    self.registry = CollectorRegistry()
    r = self.registry
    Gauge('magnet_queue_depth', 'Outputs waiting to run.', registry=r).set_function(depth)
    self.batch_size = Histogram('magnet_batch_size', 'Outputs per call of the compiled program.',
                                buckets=BATCH_BUCKETS, registry=r)
    self.latency = Histogram('magnet_job_seconds', 'Seconds from submission to the end of a job, by final state.',
                             ['state'], buckets=LATENCY_BUCKETS, registry=r)
    self.rejected = Counter('magnet_rejected_total', 'Requests refused before queuing, by HTTP status.', ['status'],
                            registry=r)
    self.compiles = Counter('magnet_compile_events_total', 'Programs compiled (or read from the XLA cache).',
                            registry=r)
    self.compile_seconds = Counter('magnet_compile_seconds_total', 'Seconds spent compiling programs.', registry=r)

  def render(self) -> bytes:
    return generate_latest(self.registry)
