"""The sandbox carrier (Sinch XMS wire format). `python -m carriers.sandbox --port 8090 [--workers N]`.

See carriers/sandbox/server.py and docs/carriers.md.
"""

from .server import SandboxConfig, SandboxState, SandboxThread, make_server, parse_mix

__all__ = ["SandboxConfig", "SandboxState", "SandboxThread", "make_server", "parse_mix"]
