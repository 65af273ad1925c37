"""The engine's batch pipeline: a reader thread that prepares the next batches while writer threads
write the current ones, each batch one transaction, the checkpoint advancing over committed batches.

Used by the Messages step (services/messages.py), where the v2 insert (16+ index updates per message)
is the bottleneck: the reader (v1 server + Python) and two or three writing backends use both cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
from django.db import connection

from .engine import Context

# (psycopg connections opened by the reader, in `dsns` order) → the next batch, or None when done.
NextBatch = Callable[..., Any]


class BatchReader(threading.Thread):
    """Reads and transforms the next batches while the writers write the current one.

    Its own connections (Django connections are per thread); a bounded queue keeps at most
    QUEUE_DEPTH batches in memory. The two CPUs then overlap: v1 server + Python vs. v2 server.
    """

    QUEUE_DEPTH = 2

    def __init__(self, *, name: str, dsns: list[str], next_batch: NextBatch):
        super().__init__(name=name, daemon=True)
        self.dsns, self.next_batch = dsns, next_batch
        self.queue: queue.Queue = queue.Queue(maxsize=self.QUEUE_DEPTH)
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            with ExitStack() as stack:
                conns = [stack.enter_context(psycopg.connect(dsn, autocommit=True)) for dsn in self.dsns]
                while not self.stopped.is_set():
                    item = self.next_batch(*conns)
                    if item is None:
                        break
                    self._put(item)
            self._put(None)
        except BaseException as exc:  # handed to the main thread, which raises it
            self._put(exc)

    def batches(self) -> Iterator[Any]:
        """The batches in order; an error of the reader is raised here."""
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class WriterPool:
    """`count` threads, each with its own v2 connection, writing whole batches concurrently.

    Checkpoint: a batch may commit before an earlier one, so the checkpoint only advances over the
    contiguous prefix of committed batches (written right after each commit, GREATEST-guarded). A crash
    between a commit and its checkpoint only makes the rerun re-read rows it then skips by v1_id.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        table: str,
        write: Callable[[Any], int],
        size: Callable[[Any], int],
        count: int,
        bar,
    ):
        self.ctx, self.table, self.write, self.size, self.bar = ctx, table, write, size, bar
        self.work: queue.Queue = queue.Queue(maxsize=count)
        self.errors: list[BaseException] = []
        self.done: dict[int, int] = {}  # seq → hi id, committed but not yet contiguous
        self.next_seq = 0
        self.threads = [
            threading.Thread(target=self._loop, name=f"migrate-v1-writer-{i}", daemon=True) for i in range(count)
        ]
        for t in self.threads:
            t.start()

    def _loop(self) -> None:
        try:
            while True:
                try:
                    item = self.work.get(timeout=0.2)
                except queue.Empty:
                    if self.errors:
                        return
                    continue
                if item is None or self.errors:
                    return
                seq, payload = item
                hi = self.write(payload)
                with self.ctx.lock:
                    self.done[seq] = hi
                    advanced = None
                    while self.next_seq in self.done:
                        advanced = self.done.pop(self.next_seq)
                        self.next_seq += 1
                    if advanced is not None:
                        self.ctx.set_checkpoint(self.table, advanced)
                    self.bar.update(self.size(payload))
                    self.ctx.batch_committed(self.table)
        except BaseException as exc:  # re-raised by the main thread
            self.errors.append(exc)
        finally:
            connection.close()

    def submit(self, seq: int, payload) -> None:
        while not self.errors:
            try:
                self.work.put((seq, payload), timeout=0.2)
                return
            except queue.Full:
                continue
        raise self.errors[0]

    def finish(self) -> None:
        for _ in self.threads:
            while True:
                try:
                    self.work.put(None, timeout=0.2)
                    break
                except queue.Full:
                    if not any(t.is_alive() for t in self.threads):
                        break
        for t in self.threads:
            t.join()
        if self.errors:
            raise self.errors[0]


def pipeline_run(
    ctx: Context,
    *,
    table: str,
    reader: BatchReader,
    write: Callable[[Any], int],
    size: Callable[[Any], int],
    writers: int,
    bar,
) -> None:
    """Every batch of `reader` written: by `write` on this thread (writers == 1: it commits the
    checkpoint itself), or by a WriterPool of `writers` threads. `write` returns the batch's highest
    v1 id, `size` the rows it read (progress)."""
    reader.start()
    pool = None
    try:
        if writers > 1:
            pool = WriterPool(ctx, table=table, write=write, size=size, count=writers, bar=bar)
        for seq, item in enumerate(reader.batches()):
            if pool:
                pool.submit(seq, item)
                continue
            write(item)
            bar.update(size(item))
            ctx.batch_committed(table)
        if pool:
            pool.finish()
    finally:
        reader.stop()
        if pool and any(t.is_alive() for t in pool.threads):
            pool.errors.append(RuntimeError("aborted"))
