"""Contact bulk import: 10,000 rows per request (POST /api/v1/contacts/import), in-process.

Measures, median of RUNS runs, each on a fresh organization with numbers never seen before (the phone
parser has an LRU cache; a rerun of the same numbers would measure the cache):
  - the whole request through Django + DRF (JSON body and text/csv body), API-key authenticated;
  - inside the service: row validation (phone normalization dominates) vs the one INSERT ... unnest;
  - the baseline the house style rules out: one ORM create() per row (on 1,000 rows).
The last line of output is one JSON object with every figure.

    flock /tmp/parley-bench.lock .venv/bin/python bench/bench_contact_import.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from common import django_setup, log

RUNS = 3
ROWS = 10_000
ORM_ROWS = 1_000


def main() -> int:
    django_setup()
    from rest_framework.test import APIClient

    from messaging.models import Contact
    from messaging.services import contacts as svc
    from organizations.models import Organization
    from organizations.services import api_key_create

    def numbers(seed: int, n: int) -> list[str]:
        # Varied national formats, as a CSV export from a CRM would have them.
        out = []
        for i in range(n):
            k = seed * n + i
            area = ("737", "512", "415", "212")[k % 4]
            exchange, line = 200 + (k // 10000) % 800, k % 10000
            out.append(
                (f"({area}) {exchange}-{line:04d}", f"{area}.{exchange}.{line:04d}", f"+1{area}{exchange}{line:04d}")[
                    k % 3
                ]
            )
        return out

    orgs = []
    figures: dict[str, list[float]] = {k: [] for k in ("json_s", "csv_s", "validate_s", "insert_s", "orm_per_row_s")}
    seed = int(time.time()) % 50  # a different number range on every invocation too
    try:
        for run in range(RUNS):
            org = Organization.objects.create(name=f"bench import {run}")
            orgs.append(org)
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(organization=org, name='bench').raw_key}")
            base = seed * 10 + run * 4
            # JSON request
            rows = [
                {
                    "phone_number": p,
                    "first_name": f"F{i}",
                    "last_name": "Bench",
                    "email": f"u{i}@example.com",
                    "custom_fields": {"tier": "gold" if i % 7 == 0 else "std"},
                }
                for i, p in enumerate(numbers(base, ROWS))
            ]
            body = json.dumps({"contacts": rows})
            t0 = time.perf_counter()
            response = api.generic("POST", "/api/v1/contacts/import", body, content_type="application/json")
            figures["json_s"].append(time.perf_counter() - t0)
            assert response.status_code == 200 and response.json()["created"] == ROWS, response.content[:300]
            # CSV request
            csv_body = "phone_number,first_name,last_name,tier\n" + "".join(
                f"{p},F{i},Bench,std\n" for i, p in enumerate(numbers(base + 1, ROWS))
            )
            t0 = time.perf_counter()
            response = api.generic("POST", "/api/v1/contacts/import", csv_body, content_type="text/csv")
            figures["csv_s"].append(time.perf_counter() - t0)
            assert response.json()["created"] == ROWS, response.content[:300]
            # Inside the service: validation vs the INSERT
            raw_rows = [{"phone_number": p, "first_name": "x"} for p in numbers(base + 2, ROWS)]
            t0 = time.perf_counter()
            cleaned = [svc._clean_row(r)[0] for r in raw_rows]
            figures["validate_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            svc._insert_contacts(organization_id=org.pk, rows=cleaned, on_conflict=svc.OnConflict.SKIP)
            figures["insert_s"].append(time.perf_counter() - t0)
            # Baseline: per-row ORM create
            orm_numbers = [svc.try_normalize(p) for p in numbers(base + 3, ORM_ROWS)]
            t0 = time.perf_counter()
            for p in orm_numbers:
                Contact.objects.create(organization=org, phone_number=p, first_name="x")
            figures["orm_per_row_s"].append((time.perf_counter() - t0) / ORM_ROWS)
            log(
                f"run {run}: json {figures['json_s'][-1]:.3f}s csv {figures['csv_s'][-1]:.3f}s "
                f"validate {figures['validate_s'][-1]:.3f}s insert {figures['insert_s'][-1]:.3f}s"
            )
    finally:
        for org in orgs:
            org.delete()

    med = {k: statistics.median(v) for k, v in figures.items()}
    result = {
        "rows_per_request": ROWS,
        "runs": RUNS,
        "json_request_s": round(med["json_s"], 3),
        "json_rows_per_s": round(ROWS / med["json_s"]),
        "csv_request_s": round(med["csv_s"], 3),
        "csv_rows_per_s": round(ROWS / med["csv_s"]),
        "validate_rows_per_s": round(ROWS / med["validate_s"]),
        "insert_rows_per_s": round(ROWS / med["insert_s"]),
        "orm_create_rows_per_s": round(1 / med["orm_per_row_s"]),
    }
    log(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
