"""CLI: python -m carriers.sandbox --port 8090 [--workers N] [--rate-limit N] [--mix delivered=0.9,failed=0.1] ...

Every flag defaults from a SANDBOX_* environment variable (see SandboxConfig.from_env).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from .server import make_server
from .state import SandboxConfig, parse_mix


def build_parser(defaults: SandboxConfig) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m carriers.sandbox", description="Sinch XMS API sandbox carrier")
    p.add_argument("--host", default=os.environ.get("SANDBOX_HOST", defaults.host))
    p.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", defaults.port)))
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SANDBOX_WORKERS", 1)),
        help="processes sharing the port via SO_REUSEPORT",
    )
    p.add_argument("--token", default=defaults.token, help="required bearer token (default: any non-empty)")
    p.add_argument("--delay-min", type=float, default=defaults.delay_min, help="seconds to a final status (min)")
    p.add_argument("--delay-max", type=float, default=defaults.delay_max, help="seconds to a final status (max)")
    p.add_argument("--mix", default=None, help="final status weights, e.g. delivered=0.9,failed=0.05,expired=0.05")
    p.add_argument("--no-dispatched", action="store_true", help="per_recipient: no intermediate Dispatched report")
    p.add_argument("--duplicate-rate", type=float, default=defaults.duplicate_rate)
    p.add_argument("--out-of-order-rate", type=float, default=defaults.out_of_order_rate)
    p.add_argument("--error-rate", type=float, default=defaults.error_rate, help="API answers 500 at this rate")
    p.add_argument("--throttle-rate", type=float, default=defaults.throttle_rate, help="API answers 429 at this rate")
    p.add_argument(
        "--rate-limit",
        type=float,
        default=defaults.rate_limit,
        help="API requests/s per worker process; 429 + Retry-After beyond (0 = off)",
    )
    p.add_argument("--inbound-url", default=defaults.inbound_url, help="where /_sandbox/inbound posts mo_text")
    p.add_argument(
        "--callback-url",
        default=defaults.default_callback_url,
        help="default delivery report URL when a batch names none",
    )
    p.add_argument("--report-concurrency", type=int, default=defaults.report_concurrency)
    p.add_argument("--seed", default=defaults.seed)
    p.add_argument(
        "--journal",
        default=defaults.journal,
        help="JSON-lines file of accepted batches, read back at start (a restart keeps what was accepted)",
    )
    p.add_argument(
        "--hold-any-number",
        action="store_true",
        default=defaults.hold_any_number,
        help="Numbers API: every number is held by the project that asks (else only POST /_sandbox/numbers ones)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    defaults = SandboxConfig.from_env()
    args = build_parser(defaults).parse_args(argv)
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        token=args.token,
        delay_min=args.delay_min,
        delay_max=args.delay_max,
        mix=parse_mix(args.mix) if args.mix else defaults.mix,
        dispatched=defaults.dispatched and not args.no_dispatched,
        duplicate_rate=args.duplicate_rate,
        out_of_order_rate=args.out_of_order_rate,
        error_rate=args.error_rate,
        throttle_rate=args.throttle_rate,
        rate_limit=args.rate_limit,
        inbound_url=args.inbound_url,
        default_callback_url=args.callback_url,
        report_concurrency=args.report_concurrency,
        seed=args.seed,
        journal=args.journal,
        hold_any_number=args.hold_any_number,
    )
    workers = max(1, args.workers)
    if workers == 1:
        _serve(config, reuse_port=False)
        return
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            _serve(config, reuse_port=True)
            os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)


def _serve(config: SandboxConfig, *, reuse_port: bool) -> None:
    # The report sender thread and its event loop are created here, after fork, one per process.
    server, state = make_server(config, reuse_port=reuse_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"sinch sandbox pid={os.getpid()} listening on http://{config.host}:{config.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
