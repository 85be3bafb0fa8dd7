"""The batching scheduler: a bounded queue of outputs and one worker thread that runs them in batches.

Policy: the oldest queued output picks the batch's key (`engine.Work.key`: mode, decoding, frames, prompt token
count, audio length, infill span); every queued output with that key joins it, oldest first, up to `max_batch`.
The batch runs as soon as it is full, or when its oldest output has waited `max_wait` seconds. Outputs of
cancelled jobs are dropped, and a job still waiting to start when its deadline passes expires, at that moment even
while a batch runs (a second thread watches the deadlines); a job that started is never expired. A batch that
fails is retried one output at a time, so a bad output (non-finite logits, say) fails its own job only. The runner
learns from `Job.final` that every job of its batch ended (cancelled, or failed by the drain) and can stop.

`close(drain)` stops new submissions (`Draining`), lets the worker finish what is queued for up to `drain`
seconds in all (however often it is called), then fails what is left, running or queued, so every job ends; files
are only ever published whole (`audio.files.AtomicAudioFile`).
"""
import math
import threading
import time
from collections.abc import Callable

from magnet_jax.serving.jobs import Item, Job

Runner = Callable[[list[Item]], None]  # runs one batch: writes each item's output or raises


class QueueFull(Exception):
  """The queue has no room; try again after `retry_after` seconds."""

  def __init__(self, message: str, retry_after: int):
    super().__init__(message)
    self.retry_after = retry_after


class Draining(Exception):
  """The server is shutting down and takes no new work."""


class Scheduler:
  """Queue + worker thread (see the module docstring).

  Args:
    runner: runs a batch of items (same key), writing each one's output; raises if the batch fails.
    max_batch: most outputs in one call.
    max_wait: seconds the oldest queued output waits for batch mates.
    max_queue: most queued outputs; more are refused with `QueueFull`.
    on_batch: told the size of every batch that runs (metrics).
  """

  def __init__(self, runner: Runner, max_batch: int = 8, max_wait: float = 0.05, max_queue: int = 64,
               on_batch: Callable[[int], None] | None = None):
    if max_batch < 1 or max_queue < 1 or max_wait < 0:
      raise ValueError(f'max_batch ({max_batch}) and max_queue ({max_queue}) must be >= 1, max_wait >= 0')
    self.runner, self.max_batch, self.max_wait, self.max_queue = runner, max_batch, max_wait, max_queue
    self.on_batch = on_batch
    self._queue: list[Item] = []
    self._cond = threading.Condition()
    self._closing = False
    self._drain_until: float | None = None  # when the drain ends (set by the first `close`)
    self._running: list[Item] = []
    self._batch_seconds = 1.0  # running estimate of one batch's time, for Retry-After
    self._thread = threading.Thread(target=self._work, name='magnet-jax-scheduler', daemon=True)
    self._reaper = threading.Thread(target=self._reap, name='magnet-jax-deadlines', daemon=True)

  def start(self) -> None:
    self._thread.start()
    self._reaper.start()

  @property
  def closing(self) -> bool:
    """Whether `close` was called (new submissions are refused)."""
    return self._closing

  @property
  def depth(self) -> int:
    """Outputs waiting to run."""
    with self._cond:
      return len(self._queue)

  def submit(self, job: Job) -> None:
    """Queues every output of `job`.

    Raises:
      Draining: after `close`; QueueFull: not enough room for all of its outputs.
    """
    with self._cond:
      if self._closing:
        raise Draining('the server is shutting down')
      if len(self._queue) + len(job.items) > self.max_queue:
        batches = math.ceil((len(self._queue) + len(job.items)) / self.max_batch)
        raise QueueFull(f'the queue is full ({len(self._queue)} of {self.max_queue} outputs waiting)',
                        max(1, math.ceil(batches * self._batch_seconds)))
      self._queue.extend(job.items)
      self._cond.notify_all()

  def cancel(self, job: Job) -> bool:
    """Removes the job's queued outputs and marks it cancelled (a running batch finishes; its outputs for this job
    are not published). False if the job had already ended."""
    with self._cond:
      if job.final:
        return False
      self._queue = [item for item in self._queue if item.job is not job]
      job.update(state='cancelled')
      return True

  def close(self, drain: float) -> int:
    """Stops taking work, finishes the queue until `drain` seconds after the first call, then fails what is left
    (the batch still running included, which then stops at its next decoding step); returns how many queued
    outputs were rejected."""
    with self._cond:
      self._closing = True
      if self._drain_until is None:
        self._drain_until = time.monotonic() + drain
      self._cond.notify_all()
    if self._thread.is_alive():
      self._thread.join(max(0.0, self._drain_until - time.monotonic()))
    with self._cond:
      left, self._queue = self._queue, []
      running = list(self._running)
    for item in running:
      item.job.update(state='failed', error='the server shut down while this job ran')
    for item in left:
      item.job.update(state='failed', error='rejected: the server shut down before this job ran')
    return len(left)

  def _expire(self, now: float) -> None:
    """Drops the outputs of ended jobs, and expires jobs that have not started by their deadline (lock held)."""
    for item in [i for i in self._queue if i.job.final or (i.job.state == 'queued' and i.job.deadline is not None
                                                            and now > i.job.deadline)]:
      self._queue.remove(item)
      item.job.update(state='expired', error='deadline passed before the job could start')

  def _reap(self) -> None:
    """Expires queued jobs at their deadline, also while the worker is busy with a batch."""
    with self._cond:
      while not (self._closing and not self._queue):
        now = time.monotonic()
        self._expire(now)
        deadlines = [item.job.deadline for item in self._queue if item.job.deadline is not None]
        self._cond.wait(max(0.01, min(deadlines) - now) if deadlines else None)

  def _take(self) -> list[Item] | None:
    """The next batch (blocking), or None once closed and empty."""
    with self._cond:
      while True:
        now = time.monotonic()
        self._expire(now)
        if not self._queue:
          if self._closing:
            return None
          self._cond.wait()
          continue
        head = self._queue[0]
        batch = [item for item in self._queue if item.work.key == head.work.key][:self.max_batch]
        wait = head.queued_at + self.max_wait - now
        if len(batch) < self.max_batch and wait > 0 and not self._closing:
          self._cond.wait(wait)
          continue
        self._queue = [item for item in self._queue if item not in batch]
        self._running = batch
        return batch

  def _work(self) -> None:
    while (batch := self._take()) is not None:
      start = time.monotonic()
      self._run(batch)
      with self._cond:
        self._running = []
      self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.monotonic() - start)

  def _run(self, batch: list[Item]) -> None:
    if self.on_batch is not None:
      self.on_batch(len(batch))
    for item in batch:
      item.job.update(state='running', batch_sizes=item.job.batch_sizes + [len(batch)])
    try:
      self.runner(batch)
    except Exception as e:  # noqa: BLE001 (any failure of a batch is retried alone, then reported on its job)
      if len(batch) > 1:
        for item in batch:
          if not item.job.final:  # a cancelled job stopped the batch: it is not run again
            self._run([item])
        return
      batch[0].job.update(state='failed', error=one_line(e))


def one_line(error: BaseException) -> str:
  """An exception as one line of text (its type when it has no message)."""
  text = ' '.join(str(error).split())
  return text or type(error).__name__
