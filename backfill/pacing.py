"""A token bucket shared by the threads of one backfill, with a pool-wide pause for 429 answers.

Pacing is by start time (GCRA / virtual scheduling): request n may start at `t0 + n / rate`. A small
burst tolerance lets a thread that woke up late catch up instead of losing its slot for good (so
the average stays at the rate on a busy 2-core machine) without ever exceeding `rate` over any
window longer than the tolerance. A 429 pauses the whole pool, not one thread: the carrier counts
requests per account, so one thread backing off while the others go on would keep it overloaded.
Each pause also lowers the rate by 10 % for the rest of the run (to at most a tenth of the asked
rate): asked for more than the carrier allows, the pool settles just under its limit instead of
meeting a 429 every second (bench: --rate 400 against a 200/s limit).
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, *, burst_seconds: float = 0.05, clock=time.monotonic, sleep=time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        # At most ~rate*burst_seconds requests may start back to back after a stall (>= 1).
        self.tolerance = max(self.interval, burst_seconds)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = clock()  # theoretical start time of the next request
        self._paused_until = 0.0
        self.floor = self.rate / 10
        self.pauses = 0  # how many times a 429 paused the pool (reported in the summary)

    def acquire(self) -> None:
        """Block until this thread may send one request."""
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    wait, reserved = self._paused_until - now, False
                else:
                    start = max(self._next, now - self.tolerance)
                    # Reserve the slot now so that threads queue in order instead of racing.
                    self._next = start + self.interval
                    wait, reserved = start - now, True
                    if wait <= 0:
                        return
            self._sleep(wait)
            if reserved:
                with self._lock:
                    # A 429 that arrived while we slept voids the slot: wait for the pause to end.
                    if self._clock() >= self._paused_until:
                        return

    def pause(self, seconds: float) -> None:
        """Stop every thread for `seconds` (a 429's Retry-After); later requests resume paced."""
        with self._lock:
            now = self._clock()
            until = now + max(0.0, seconds)
            if until > self._paused_until:
                if now >= self._paused_until:  # a new episode, not the in-flight stragglers of one
                    self.rate = max(self.floor, self.rate * 0.9)
                    self.interval = 1.0 / self.rate
                self._paused_until = until
                self.pauses += 1
            # Slots reserved before the pause must not all fire at once when it ends.
            self._next = max(self._next, until)
