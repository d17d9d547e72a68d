"""One of our servers in this very process, for measurements that watch a single process.

Run: ``python real_server.py MODEL`` starts ``MODEL`` with the handler ``bench_serve.py`` gives
it, prints the port on stdout and serves until stdin closes, like ``minimal_servers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import HANDLERS

from pytest_concurrency.serve import start_server

if __name__ == "__main__":
    with start_server(HANDLERS[sys.argv[1]], sys.argv[1]) as server:
        print(server.port, flush=True)
        while sys.stdin.buffer.read(1):
            pass
