"""The sandbox's report poster: one asyncio loop in a background thread, many keep-alive connections.

A Python client doing one blocking request at a time tops out near ~600 requests/s here
(docs/performance.md); the send benchmark needs >= 1,000 reports/s posted. So reports are plain bytes
written over a small pool of persistent HTTP/1.1 connections by `concurrency` coroutines, and the
scheduler is a heap of due times, so 1000 reports of one batch cost one lock and one wake-up.
Like Sinch, a 5xx or 429 answer is retried with backoff (Retry-After honoured); any other 4xx drops
the report for good.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import heapq
import itertools
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

log = logging.getLogger("carriers.sandbox")


@dataclass(order=True)
class Outgoing:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(default=0, compare=False)


class ReportSender:
    def __init__(self, *, concurrency: int = 32, max_attempts: int = 10, timeout: float = 10.0):
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._heap: list[Outgoing] = []
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self.stats = {"posted": 0, "ok": 0, "retried": 0, "dropped_4xx": 0, "gave_up": 0, "errors": 0}
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-report-sender", daemon=True)
        self._thread.start()
        self._ready.wait()

    # -- public, thread-safe -------------------------------------------------------------------------

    def schedule(self, items: list[tuple[float, str, bytes]]) -> None:
        """items: (due as time.monotonic(), url, JSON body bytes)."""
        if not items:
            return
        with self._lock:
            for due, url, body in items:
                heapq.heappush(self._heap, Outgoing(due, next(self._seq), url, body))
        self.loop.call_soon_threadsafe(self._wake.set)

    def pending(self) -> int:
        with self._lock:
            queued = len(self._heap)
        return queued + self._queue.qsize() + self._inflight

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.01)
        return False

    def clear(self) -> None:
        with self._lock:
            self._heap.clear()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):  # best effort at teardown
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- loop ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._wake = asyncio.Event()
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._inflight = 0
        self.loop.create_task(self._scheduler())
        for _ in range(self.concurrency):
            self.loop.create_task(self._worker())
        self._ready.set()
        self.loop.run_forever()

    async def _scheduler(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            due: list[Outgoing] = []
            with self._lock:
                while self._heap and self._heap[0].due <= now:
                    due.append(heapq.heappop(self._heap))
                next_due = self._heap[0].due if self._heap else None
            for item in due:
                self._queue.put_nowait(item)
            wait = 1.0 if next_due is None else max(0.0, next_due - time.monotonic())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await asyncio.sleep(0)

    async def _worker(self) -> None:
        conns: dict[tuple[str, str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        while True:
            item = await self._queue.get()
            self._inflight += 1
            try:
                status, retry_after = await self._post(conns, item)
            except Exception as exc:  # connection refused/reset, timeout: retry like a 5xx
                self.stats["errors"] += 1
                log.debug("report post to %s failed: %s", urlsplit(item.url).netloc, exc)
                status, retry_after = 0, None
            finally:
                self._inflight -= 1
            self.stats["posted"] += 1
            if 200 <= status < 300:
                self.stats["ok"] += 1
            elif 400 <= status < 500 and status != 429:
                self.stats["dropped_4xx"] += 1
            elif item.attempt + 1 >= self.max_attempts:
                self.stats["gave_up"] += 1
            else:
                self.stats["retried"] += 1
                backoff = retry_after if retry_after is not None else min(0.2 * 2**item.attempt, 30.0)
                with self._lock:
                    heapq.heappush(
                        self._heap,
                        Outgoing(time.monotonic() + backoff, next(self._seq), item.url, item.body, item.attempt + 1),
                    )
                self._wake.set()

    async def _post(self, conns, item: Outgoing) -> tuple[int, float | None]:
        parts = urlsplit(item.url)
        secure = parts.scheme == "https"
        host, port = parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80)
        key = (parts.scheme, host, port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        auth = ""
        if parts.username is not None:
            token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
            auth = f"Authorization: Basic {token}\r\n"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc.rsplit('@', 1)[-1]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(item.body)}\r\n"
            f"User-Agent: parley-sinch-sandbox\r\n{auth}\r\n"
        ).encode()
        for reuse in (True, False):
            conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = conns.pop(key, None) if reuse else None
            if conn is None:
                conn = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=ssl.create_default_context() if secure else None),
                    self.timeout,
                )
            reader, writer = conn
            try:
                writer.write(head + item.body)
                status, headers, keep = await asyncio.wait_for(self._read_response(reader), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                writer.close()
                if reuse:  # a stale keep-alive connection: try once on a fresh one
                    continue
                raise ConnectionError(str(exc)) from exc
            if keep:
                conns[key] = conn
            else:
                writer.close()
            retry_after = None
            if status == 429 and headers.get("retry-after", "").replace(".", "", 1).isdigit():
                retry_after = float(headers["retry-after"])
            return status, retry_after
        raise ConnectionError("unreachable")

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bool]:
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        version, status = status_line.split(b" ", 2)[:2]
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif "content-length" in headers:
            await reader.readexactly(int(headers["content-length"]))
        else:
            await reader.read()
            return int(status), headers, False
        keep = headers.get("connection", "").lower() != "close" and version == b"HTTP/1.1"
        return int(status), headers, keep
