"""Carrier outages: how long sends retry, the per-account circuit breaker, overdue delivery reports.

See docs/send-pipeline.md ("Carrier outages") and docs/backfill.md ("Overdue delivery reports").
"""

from .env import env

# A batch whose carrier call failed transiently (timeout, connection, 5xx, 429) is retried with
# exponential backoff and full jitter: wait uniform(0, min(CAP, BASE × 2^attempt)) seconds, for as long
# as SEND_RETRY_WINDOW after its first error. An hour covers the carrier outages one can plausibly wait
# out; after it the messages stay "sending" and the recovery sweep asks the carrier about them.
SEND_RETRY_BASE_SECONDS = env.float("SEND_RETRY_BASE_SECONDS", default=1.0)
SEND_RETRY_CAP_SECONDS = env.float("SEND_RETRY_CAP_SECONDS", default=20.0)
SEND_RETRY_WINDOW_SECONDS = env.float("SEND_RETRY_WINDOW_SECONDS", default=3600.0)

# The batching window W of blast sends (messaging/ratelimit.py, docs/send-pipeline.md "Batching window"):
# on a line paced at r segments/s a blast waits until about r × W segments may go and sends them in one
# carrier call (≤ 1,000 recipients), instead of one recipient per refilled unit. It adds at most W to a
# message's wait; conversation messages never wait for it. Above 1 s it also raises the line's burst to
# r × W (the bucket must hold a whole batch), which the carrier then sees at once.
SEND_BATCH_WINDOW_SECONDS = env.float("SEND_BATCH_WINDOW_SECONDS", default=1.0)

# Circuit breaker per carrier account (carriers/breaker.py), shared by every worker through Redis.
# closed → open after this many consecutive transient failures of calls to the account;
CARRIER_BREAKER_FAILURES = env.int("CARRIER_BREAKER_FAILURES", default=5)
# open for this long (±20 % jitter), then one probe call (half-open); a failed probe doubles the
# interval up to the maximum, a successful one closes the breaker. The maximum bounds how late a
# line resumes after its carrier is back.
CARRIER_BREAKER_OPEN_SECONDS = env.float("CARRIER_BREAKER_OPEN_SECONDS", default=2.0)
CARRIER_BREAKER_OPEN_MAX_SECONDS = env.float("CARRIER_BREAKER_OPEN_MAX_SECONDS", default=15.0)
# A probe that has not reported back after this long (its worker died) is handed to the next caller.
# Above the adapter's worst call (connect 3.05 s + read 15 s).
CARRIER_BREAKER_PROBE_SECONDS = env.float("CARRIER_BREAKER_PROBE_SECONDS", default=20.0)

# Overdue delivery reports (backfill.services.messages_check_overdue, beat every minute). The delay
# itself is per carrier account (CarrierAccount.report_delay_seconds, default 900 s). Per pass: at most
# this many messages per line and this many lines; pass records are kept this many days.
BACKFILL_OVERDUE_BATCH = env.int("BACKFILL_OVERDUE_BATCH", default=500)
BACKFILL_OVERDUE_LINES = env.int("BACKFILL_OVERDUE_LINES", default=200)
BACKFILL_OVERDUE_RUNS_KEEP_DAYS = env.int("BACKFILL_OVERDUE_RUNS_KEEP_DAYS", default=7)

# Stored carrier webhooks (carriers_webhookevent): processed ones are deleted this many days after they
# were received (carriers.webhook_events_prune, hourly; docs/carriers.md "Retention"). 30: past the
# carrier's own 14 days of batches (after which our copy is the only one) and a monthly invoice cycle,
# so a disputed report of last month can still be read byte for byte. Pending, failed and invalid rows
# are never deleted. 0 keeps everything.
WEBHOOK_EVENT_RETENTION_DAYS = env.int("WEBHOOK_EVENT_RETENTION_DAYS", default=30)
