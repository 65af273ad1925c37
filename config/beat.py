"""Beat schedule: far-future and periodic work is rows that these jobs pick up, never long countdowns."""

BEAT_SCHEDULE: dict[str, dict] = {
    # Nothing stays "sending" for ever: re-ask the carrier about messages stuck past
    # BACKFILL_RECONCILE_AFTER (docs/backfill.md). 10 minutes: small paced passes, well under the hour.
    "backfill.reconcile": {"task": "backfill.reconcile", "schedule": 600.0},
    "shortener.flush_clicks": {"task": "shortener.flush_clicks", "schedule": 1.0},  # click buffer → DB
}
