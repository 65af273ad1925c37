# The front door. `make run` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-send bench-lines bench-redirect bench-backfill bench-migrate bench-chaos bench-webapp bench-webapp-reports bench-history bench-retention services stop-services clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Starts the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set.
services: $(STAMP)
	$(PY) -m config.embedded start

stop-services: $(STAMP)
	$(PY) -m config.embedded stop

run: services
	$(PY) manage.py migrate --noinput
	$(PY) -m config.devserver

# Browser tests (tests/browser/) need a Chromium: /usr/bin/chromium (Debian's `chromium`) or CHROMIUM_PATH.
test: services
	@chromium="$${CHROMIUM_PATH:-}"; \
	if [ -z "$$chromium" ]; then for c in /usr/bin/chromium /usr/bin/chromium-browser; do \
		if [ -x "$$c" ]; then chromium="$$c"; break; fi; done; fi; \
	if [ -n "$$chromium" ] && [ -x "$$chromium" ]; then echo "browser tests: running with $$chromium"; \
	else echo "browser tests: SKIPPED, no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)"; fi
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy .

bench: bench-send bench-redirect bench-backfill bench-migrate bench-webapp-reports

bench-send: services
	$(PY) bench/bench_send.py

# 50 organizations × 20 lines at 10/s, one blast each launched together: first message per organization,
# spread, aggregate vs one line, pacing from the carrier's record (docs/send-pipeline.md, "Many lines at once").
bench-lines: services
	$(PY) bench/bench_lines.py

bench-redirect: services
	$(PY) bench/bench_redirect.py

bench-backfill: services
	$(PY) bench/bench_backfill.py

bench-migrate: services
	$(PY) bench/bench_migrate.py

# The inbox, thread and live polls with 100,000 conversations: p50/p95 and queries per page (docs/webapp.md).
bench-webapp: services
	$(PY) bench/bench_webapp.py

# The report pages with a 100,000-recipient blast: p50/p95 cold and warm (docs/webapp.md).
bench-webapp-reports: services
	$(PY) bench/bench_webapp_reports.py

# A 2,000-message blast under each fault (worker SIGKILL, broker flush, carrier outage, duplicated and
# early reports, web restart) vs without: duplicates, lost, stuck, seconds (docs/recovery.md).
bench-chaos: services
	$(PY) bench/bench_chaos.py

# Deleting 1,000,000 processed webhook events past the retention while the intake stores more: rows/s,
# each 5,000-row statement's time, the intake's INSERT latency (docs/carriers.md, "Retention of stored webhooks").
bench-retention: services
	$(PY) bench/bench_retention.py

# The blast, webhook, redirect, backfill and API figures on the database as it is, then again after loading
# a two-year history of SCALE x 10,000,000 messages, side by side (docs/performance.md, "History"). Needs
# a fresh database: the history stays in it (several GB at SCALE=1).
SCALE ?= 1
bench-history: services
	$(PY) bench/bench_history.py --scale $(SCALE)

clean: stop-services
	rm -rf .data
