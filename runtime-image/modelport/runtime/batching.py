"""Runs model calls off the event loop, one at a time, merging concurrent requests into batches.

Adaptive: the worker takes whatever requests are waiting (up to ``max_batch_size`` rows) and runs
them as one framework call; while that call runs, new requests queue up and form the next batch.
A lone request waits at most ``max_batch_wait_ms`` for company, and by default not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from modelport.runtime.loaders.base import ServedModel

log = logging.getLogger("modelport.runtime")

Array = np.ndarray[Any, Any]
Outputs = dict[str, Array]
_T = TypeVar("_T")

#: Model calls known to take under this run inline on the event loop (see ``Scheduler._run``).
INLINE_BUDGET_SECONDS = 0.002
#: ... and only for this many rows or fewer.
INLINE_MAX_ROWS = 256
#: Calls measured on the model thread before inline calls are considered (twice this many are
#: remembered).
_MEASURE_CALLS = 8


@dataclass
class _Job:
    inputs: dict[str, Array]
    outputs: tuple[str, ...]
    future: asyncio.Future[Outputs]
    rows: int
    key: tuple[Any, ...] = field(default=())


class Scheduler:
    """Serialises model calls on one worker thread; merges requests when batching is on."""

    def __init__(
        self,
        model: ServedModel,
        *,
        max_batch_size: int = 1,
        max_batch_wait_ms: float = 0.0,
        call_delay_seconds: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.batching = max_batch_size > 1 and model.batchable
        self.max_batch_size = max_batch_size
        self.max_wait = max_batch_wait_ms / 1000.0
        self._delay = call_delay_seconds
        self._on_batch = on_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelport-model")
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._carry: _Job | None = None
        self._recent: deque[float] = deque(maxlen=2 * _MEASURE_CALLS)

    async def predict(
        self, inputs: dict[str, Array], outputs: Sequence[str], time_limit: float | None = None
    ) -> Outputs:
        """One request's prediction.

        Raises TimeoutError when ``time_limit`` passes first; a request that times out before its
        model call starts is dropped, one already running finishes on the model thread.
        """
        loop = asyncio.get_running_loop()
        if not self.batching:
            rows = _rows(inputs)
            return await self._run(rows, time_limit, self._call, inputs, tuple(outputs))
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._batch_loop(), name="modelport-batcher")
        assert self._queue is not None
        rows = _rows(inputs)
        key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items()))
        job = _Job(inputs, tuple(outputs), loop.create_future(), rows, key)
        self._queue.put_nowait(job)
        return await asyncio.wait_for(job.future, time_limit)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------------- the model call

    async def _run(
        self, rows: int, time_limit: float | None, fn: Callable[..., _T], *args: Any
    ) -> _T:
        """Call ``fn`` inline when calls are known to be tiny, else on the model thread.

        A thread hand-off costs more than a sub-millisecond model call, so such calls run on
        the event loop; anything slower (or unmeasured, or large) runs on the model thread,
        where the request's deadline can still answer 504 while it runs.
        """
        if self._inline_ok(rows):
            return self._timed(fn, *args)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._timed, fn, *args)
        return await asyncio.wait_for(future, time_limit)

    def _inline_ok(self, rows: int) -> bool:
        # The fastest recent call is the model's own cost: on the model thread a call's wall
        # time also counts the wait for the GIL, which is longest exactly when the loop is busy.
        recent = self._recent
        return (
            self._delay == 0
            and len(recent) >= _MEASURE_CALLS
            and rows <= INLINE_MAX_ROWS
            and min(recent) < INLINE_BUDGET_SECONDS
        )

    def _timed(self, fn: Callable[..., _T], *args: Any) -> _T:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._recent.append(time.perf_counter() - started)

    def _call(self, inputs: dict[str, Array], outputs: tuple[str, ...]) -> Outputs:
        if self._delay:
            time.sleep(self._delay)
        if self._on_batch is not None:
            self._on_batch(1)
        return self.model.predict(inputs, outputs)

    # ----------------------------------------------------------------- batching

    async def _batch_loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._collect()
            live = [job for job in batch if not job.future.done()]
            if live:
                await self._execute(live)

    async def _collect(self) -> list[_Job]:
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, rows = [first], first.rows
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_batch_size:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if rows + job.rows > self.max_batch_size or job.key != first.key:
                self._carry = job
                break
            batch.append(job)
            rows += job.rows
        return batch

    async def _execute(self, batch: list[_Job]) -> None:
        try:
            results = await self._run(sum(job.rows for job in batch), None, self._call_batch, batch)
        except Exception as exc:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, result in zip(batch, results, strict=True):
            if not job.future.done():
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _call_batch(self, batch: list[_Job]) -> list[Outputs | BaseException]:
        if len(batch) == 1:
            return [self._call_one(batch[0])]
        asked = {name for job in batch for name in job.outputs}
        wanted = tuple(n for n in self.model.signature.output_names if n in asked)
        merged = {
            name: np.concatenate([job.inputs[name] for job in batch]) for name in batch[0].inputs
        }
        total = sum(job.rows for job in batch)
        try:
            if self._delay:
                time.sleep(self._delay)
            if self._on_batch is not None:
                self._on_batch(total)
            out = self.model.predict(merged, wanted)
        except Exception:
            log.debug("a batch of %d requests failed; running them one by one", len(batch))
            return [self._call_one(job) for job in batch]
        if any(v.ndim == 0 or v.shape[0] != total for v in out.values()):
            return [self._call_one(job) for job in batch]
        cuts = np.cumsum([job.rows for job in batch])[:-1]
        parts = {name: np.split(value, cuts) for name, value in out.items()}
        return [{name: parts[name][i] for name in job.outputs} for i, job in enumerate(batch)]

    def _call_one(self, job: _Job) -> Outputs | BaseException:
        try:
            return self._call(job.inputs, job.outputs)
        except Exception as exc:
            return exc


def _rows(inputs: dict[str, Array]) -> int:
    first = next(iter(inputs.values()))
    return int(first.shape[0]) if first.ndim else 1
