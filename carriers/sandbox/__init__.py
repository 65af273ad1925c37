"""The sandbox carrier (Sinch XMS wire format). `python -m carriers.sandbox --port 8090 [--workers N]`.

State (batches, outcomes, reports, counters): carriers/sandbox/state.py; the HTTP side: server.py; the
report poster: sender.py. See docs/carriers.md.
"""

from .server import SandboxThread, make_server
from .state import SandboxConfig, SandboxState, parse_mix

__all__ = ["SandboxConfig", "SandboxState", "SandboxThread", "make_server", "parse_mix"]
