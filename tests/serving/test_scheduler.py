"""The batching scheduler without a model: batches by key up to max_batch / max_wait, a bounded queue, cancel,
deadlines, a failing output failing alone, drain."""
import threading
import time

import pytest

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation.request import Request
from magnet_jax.io.errors import Cancelled
from magnet_jax.serving.engine import Work
from magnet_jax.serving.jobs import Job, JobTable
from magnet_jax.serving.scheduler import Draining, QueueFull, Scheduler


def _job(*texts, frames=10, deadline=None) -> Job:
  return Job({}, [Work(Request(t, i, duration=frames / 50), DecodingConfig(), len(t)) for i, t in enumerate(texts)],
             deadline=deadline)


class Recorder:
  """A runner that records its batches, fails batches holding 'bad', and can be held back."""

  def __init__(self):
    self.batches, self.gate = [], threading.Event()
    self.gate.set()

  def __call__(self, batch):
    self.gate.wait(10)
    self.batches.append([(item.job.id, item.work.request.description) for item in batch])
    if any(item.work.request.description == 'bad' for item in batch):
      raise FloatingPointError('non-finite logits at step 3')
    for item in batch:
      item.job.output_done(item.index, f'/out/{item.index}', {})


def _wait(jobs, timeout=10.0):
  end = time.monotonic() + timeout
  while not all(job.final for job in jobs):
    assert time.monotonic() < end, [job.state for job in jobs]
    time.sleep(0.01)


def test_batches_by_key_up_to_max_batch():
  runner = Recorder()
  scheduler = Scheduler(runner, max_batch=3, max_wait=0.3)
  jobs = [_job('aaaa', 'bbbb'), _job('cc'), _job('dddd', 'eeee', 'ffff'), _job('gggg', frames=20)]
  for job in jobs:
    scheduler.submit(job)
  scheduler.start()
  _wait(jobs)
  texts = [[text for _, text in batch] for batch in runner.batches]
  # The oldest output picks the key (4 tokens, 10 frames): 3 join it, oldest first; then the rest in age order.
  assert texts == [['aaaa', 'bbbb', 'dddd'], ['cc'], ['eeee', 'ffff'], ['gggg']]
  assert all(job.state == 'done' for job in jobs) and jobs[0].batch_sizes == [3, 3]


def test_max_wait_bounds_the_wait_for_batch_mates():
  runner = Recorder()
  scheduler = Scheduler(runner, max_batch=8, max_wait=0.2)
  scheduler.start()
  start = time.monotonic()
  job = _job('solo')
  scheduler.submit(job)
  _wait([job])
  assert 0.2 <= time.monotonic() - start < 5 and runner.batches == [[(job.id, 'solo')]]


def test_full_queue_cancel_and_deadline():
  runner = Recorder()
  scheduler = Scheduler(runner, max_batch=2, max_wait=0.0, max_queue=3)
  first, second = _job('a', 'b'), _job('c')
  scheduler.submit(first)
  scheduler.submit(second)
  with pytest.raises(QueueFull, match=r'queue is full \(3 of 3') as error:
    scheduler.submit(_job('d'))
  assert error.value.retry_after >= 1
  assert scheduler.cancel(first) and first.state == 'cancelled' and scheduler.depth == 1
  assert not scheduler.cancel(first)
  late = _job('e', deadline=time.monotonic() - 1)
  scheduler.submit(late)
  scheduler.start()
  _wait([second, late])
  assert second.state == 'done' and late.state == 'expired' and 'deadline' in late.error
  assert [text for batch in runner.batches for _, text in batch] == ['c']


def test_a_failing_output_fails_alone():
  runner = Recorder()
  scheduler = Scheduler(runner, max_batch=4, max_wait=0.2)
  good, bad, other = _job('bbb'), _job('bad'), _job('ccc')
  for job in (good, bad, other):
    scheduler.submit(job)
  scheduler.start()
  _wait([good, bad, other])
  assert (good.state, other.state, bad.state) == ('done', 'done', 'failed')
  assert bad.error == 'non-finite logits at step 3'
  assert [len(batch) for batch in runner.batches] == [3, 1, 1, 1]  # the batch failed, then each alone


def test_drain_finishes_queued_work_then_rejects():
  runner = Recorder()
  runner.gate.clear()
  scheduler = Scheduler(runner, max_batch=1, max_wait=0.0)
  jobs = [_job('a'), _job('b'), _job('c')]
  for job in jobs:
    scheduler.submit(job)
  scheduler.start()
  threading.Timer(0.3, runner.gate.set).start()
  assert scheduler.close(drain=10) == 0
  assert [job.state for job in jobs] == ['done'] * 3
  with pytest.raises(Draining):
    scheduler.submit(_job('d'))

  runner = Recorder()
  runner.gate.clear()
  scheduler = Scheduler(runner, max_batch=1, max_wait=0.0)
  jobs = [_job('a'), _job('b')]
  for job in jobs:
    scheduler.submit(job)
  scheduler.start()
  time.sleep(0.1)
  assert scheduler.close(drain=0.2) == 1  # 'a' is running (held), 'b' is rejected
  # Every job ends with the drain, the running one too (its batch sees `final` and stops), so every progress
  # stream gets its final state; a second close waits no longer than the first's drain.
  assert [job.state for job in jobs] == ['failed', 'failed'] and 'while this job ran' in jobs[0].error
  assert 'before this job ran' in jobs[1].error
  start = time.monotonic()
  assert scheduler.close(drain=30) == 0 and time.monotonic() - start < 1
  runner.gate.set()


def test_deadlines_expire_queued_jobs_while_a_batch_runs_but_never_a_started_job():
  runner = Recorder()
  runner.gate.clear()
  scheduler = Scheduler(runner, max_batch=1, max_wait=0.0)
  running, queued = _job('a', 'b', deadline=time.monotonic() + 0.3), _job('c', deadline=time.monotonic() + 0.3)
  scheduler.submit(running)
  scheduler.submit(queued)
  scheduler.start()
  time.sleep(0.8)  # the first batch ('a') is held past both deadlines
  assert queued.state == 'expired' and queued.error == 'deadline passed before the job could start'
  assert running.state == 'running'
  runner.gate.set()
  _wait([running])
  assert running.state == 'done' and [text for batch in runner.batches for _, text in batch] == ['a', 'b']


def test_a_cancelled_batch_is_not_run_again():
  class Stopping(Recorder):
    def __call__(self, batch):  # the engine's `stop`: every job of the batch ended -> Cancelled
      self.batches.append([item.work.request.description for item in batch])
      for item in batch:
        item.job.update(state='cancelled')
      raise Cancelled('cancelled after decoding step 1 of 4')

  runner = Stopping()
  scheduler = Scheduler(runner, max_batch=4, max_wait=0.2)
  jobs = [_job('aaa'), _job('bbb')]
  for job in jobs:
    scheduler.submit(job)
  scheduler.start()
  _wait(jobs)
  assert runner.batches == [['aaa', 'bbb']] and [job.state for job in jobs] == ['cancelled'] * 2


def test_the_job_table_never_forgets_a_job_before_it_ends():
  table = JobTable(keep=3)
  waiting = _job('queued')
  table.add(waiting)
  for _ in range(50):  # another client's create + cancel pairs
    job = _job('x')
    table.add(job)
    job.update(state='cancelled')
  table.add(_job('last'))
  assert table.get(waiting.id) is waiting and len(table) == 1 + 3 + 1
