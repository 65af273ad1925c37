"""Beat schedule: far-future and periodic work is rows that these jobs pick up, never long countdowns."""

BEAT_SCHEDULE: dict[str, dict] = {
    # Nothing stays "sending" for ever: re-ask the carrier about messages stuck past
    # BACKFILL_RECONCILE_AFTER (docs/backfill.md). 10 minutes: small paced passes, well under the hour.
    "backfill.reconcile": {"task": "backfill.reconcile", "schedule": 600.0},
    # Delivery reports overdue by their carrier account's report delay (default 15 min): ask the carrier
    # once, paced (docs/backfill.md, "Overdue reports"). A tick older than its period is dropped.
    "backfill.overdue_reports": {"task": "backfill.overdue_reports", "schedule": 60.0, "options": {"expires": 55}},
    # Safety sweep for stored carrier webhooks: early reports' retries, rows a lost enqueue left behind.
    "carriers.apply_webhooks": {"task": "carriers.apply_webhooks", "schedule": 15.0},
    # Processed webhook events past WEBHOOK_EVENT_RETENTION_DAYS, 5,000 rows per statement (docs/carriers.md).
    "carriers.prune_webhooks": {"task": "carriers.prune_webhooks", "schedule": 3600.0, "options": {"expires": 3000}},
    "shortener.flush_clicks": {"task": "shortener.flush_clicks", "schedule": 1.0},  # click buffer → DB
    # Post-processing outbox drain: the floor under the debounced kick (docs/postprocessing.md). A tick
    # older than 5 s is dropped, so a busy worker does not find a pile of stale ticks.
    "postprocessing.drain": {"task": "postprocessing.drain", "schedule": 1.0, "options": {"expires": 5}},
    "postprocessing.prune": {"task": "postprocessing.prune", "schedule": 3600.0},  # done events > 7 days
    # Send pipeline (docs/send-pipeline.md): scheduled blasts/messages that are due, and the sweeper that
    # makes the broker a mere wake-up (docs/recovery.md): blast chunks not yet prepared, sends a dead
    # worker left in "sending" (after the 40 s send lease), prepared/queued messages whose task was lost.
    "messaging.release_due": {"task": "messaging.release_due", "schedule": 2.0, "options": {"expires": 10}},
    "messaging.release_stuck_sends": {
        "task": "messaging.release_stuck_sends",
        "schedule": 5.0,
        "options": {"expires": 15},
    },
    # Backfill runs whose task was lost (pending, not picked up) or whose worker died (stale heartbeat).
    "backfill.rekick": {"task": "backfill.rekick", "schedule": 30.0, "options": {"expires": 25}},
    # NICE polls whose lease expired (dead worker, lost task) get a new poll chain (docs/integrations.md).
    "integrations.nice_rekick": {"task": "integrations.nice_rekick", "schedule": 30.0, "options": {"expires": 25}},
    # Partner forwards (NICE, RingCentral) and RingCentral replies whose task was lost: their pending rows
    # past the 60 s lease (docs/recovery.md). 15 s: a lost forward is out within about a minute and a half.
    "integrations.forwards_rekick": {
        "task": "integrations.forwards_rekick",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # RingCentral teams in step with their organizations' members (changes no model signal reported).
    "integrations.ringcentral_sync_all": {
        "task": "integrations.ringcentral_sync_all",
        "schedule": 900.0,
        "options": {"expires": 600},
    },
    # NICE chats of closed conversations / opted-out contacts whose end a lost task or the admin missed.
    "integrations.nice_end_stale": {
        "task": "integrations.nice_end_stale",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}
