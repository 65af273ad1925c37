"""Beat schedule: far-future and periodic work is rows that these jobs pick up, never long countdowns."""

BEAT_SCHEDULE: dict[str, dict] = {}
