"""A generation request's state as the API reports it: one job, one output per prompt; the table of jobs."""
import collections
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from magnet_jax.serving.engine import Work

STATES = ('queued', 'running', 'done', 'failed', 'cancelled', 'expired')
FINAL = ('done', 'failed', 'cancelled', 'expired')


@dataclasses.dataclass(eq=False)
class Item:
  """One output of a job, the unit the scheduler batches."""
  job: 'Job'
  index: int
  work: Work
  queued_at: float = dataclasses.field(default_factory=time.monotonic)


@dataclasses.dataclass(eq=False)
class Job:
  """A generation: its request (as given), outputs, state, progress and results.

  Progress counts, per output, its decoding steps (over every window, pass and best-of candidate, as
  `engine.generate` reports them; before its batch starts, one window's steps) and then its file. `version` grows
  with every change, so a progress stream can tell when there is news.
  """
  request: dict
  works: list[Work]
  file_format: str = 'wav'
  deadline: float | None = None  # time.monotonic() by which the job must have started
  id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
  state: str = 'queued'
  error: str | None = None
  created: float = dataclasses.field(default_factory=time.time)
  timings: dict = dataclasses.field(default_factory=dict)
  records: list = dataclasses.field(default_factory=list)  # per output: its sidecar (None until written)
  paths: list = dataclasses.field(default_factory=list)    # per output: its audio file (None until written)
  batch_sizes: list = dataclasses.field(default_factory=list)
  names: list = dataclasses.field(default_factory=list)    # per output: its `prompts.Output` (file stem by seed)
  version: int = 0
  on_final: Callable[['Job'], None] | None = None  # told once, when the job reaches a final state
  _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

  def __post_init__(self):
    self.items = [Item(self, index, work) for index, work in enumerate(self.works)]
    self.records = [None] * len(self.items)
    self.paths = [None] * len(self.items)
    self.steps = [(0, work.decoding.num_steps) for work in self.works]  # per output: decoding steps (done, in all)

  def progress(self) -> dict:
    """Steps done and in all: every output's decoding steps, and its file (lock held)."""
    written = sum(path is not None for path in self.paths)
    return {'done': sum(done for done, _ in self.steps) + written,
            'total': sum(total for _, total in self.steps) + len(self.items)}

  @property
  def final(self) -> bool:
    return self.state in FINAL

  def update(self, **changes: Any) -> None:
    """Sets fields (a final state is never left) and bumps `version`."""
    with self._lock:
      if self.final and 'state' in changes:
        return
      for name, value in changes.items():
        setattr(self, name, value)
      self.version += 1
      ended = self.final and 'state' in changes
    if ended:
      self._ended()

  def _ended(self) -> None:
    self.timings['total_s'] = time.time() - self.created
    if self.on_final is not None:
      self.on_final(self)

  def decoded(self, index: int, done: int, total: int) -> None:
    """Output `index` has `done` of its `total` decoding steps."""
    with self._lock:
      self.steps[index] = (done, total)
      self.version += 1

  def output_done(self, index: int, path: str, record: dict) -> None:
    """Records a written output; the job is done once every output is."""
    with self._lock:
      self.paths[index], self.records[index] = path, record
      ended = all(p is not None for p in self.paths) and not self.final
      if ended:
        self.state = 'done'
      self.version += 1
    if ended:
      self._ended()

  def status(self) -> dict:
    """The API's view (GET /v1/generations/{id})."""
    with self._lock:
      return {'id': self.id, 'state': self.state, 'error': self.error,
              'progress': self.progress(),
              'created': self.created, 'timings': dict(self.timings), 'batch_sizes': list(self.batch_sizes),
              'request': self.request,
              'outputs': [{'index': i, 'audio': None if p is None else f'/v1/generations/{self.id}/audio/{i}',
                           'name': None if p is None else os.path.basename(p), 'sidecar': r}
                          for i, (p, r) in enumerate(zip(self.paths, self.records, strict=True))]}


class JobTable:
  """The jobs a server answers for, by id: every job until it ends, then the `keep` most recent ended ones.

  A job is never forgotten before it ends (a client's flood of created and cancelled jobs cannot make another's
  queued job unknown); unended jobs are bounded by the scheduler's queue and its running batch.
  """

  def __init__(self, keep: int = 1000):
    self.keep = keep
    self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
    self._lock = threading.Lock()

  def add(self, job: Job) -> None:
    with self._lock:
      self._jobs[job.id] = job
      ended = [job_id for job_id, job in self._jobs.items() if job.final]
      for job_id in ended[:max(0, len(ended) - self.keep)]:
        del self._jobs[job_id]

  def get(self, job_id: str) -> Job | None:
    with self._lock:
      return self._jobs.get(job_id)

  def __len__(self) -> int:
    with self._lock:
      return len(self._jobs)

  def latest(self, count: int) -> list[Job]:
    """The `count` most recently added jobs, newest first."""
    with self._lock:
      return list(self._jobs.values())[::-1][:count]
