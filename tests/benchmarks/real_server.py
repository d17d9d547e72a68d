"""One of our servers in this very process, for measurements that watch a single process.

Run: ``python real_server.py MODEL [LAG_INTERVAL]`` starts ``MODEL`` with the handler
``bench_serve.py`` gives it, prints the port on stdout and serves until stdin closes, like
``minimal_servers.py``. ``LAG_INTERVAL`` (seconds, default the servers' own 0.01) is how often
an event-loop model wakes to measure its loop lag: under valgrind, where time runs some fifty
times slower, it is stretched as much, so that the ticks keep their real share of the work.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import HANDLERS

from pytest_concurrency.serve._app import App, resolve_handler
from pytest_concurrency.serve._server import _bind
from pytest_concurrency.serve.models import engine_class
from pytest_concurrency.serve.models._base import ServeOptions

if __name__ == "__main__":
    model = sys.argv[1]
    options = ServeOptions()
    if len(sys.argv) > 2:
        options = ServeOptions(lag_interval=float(sys.argv[2]))
    app = App(resolve_handler(HANDLERS[model]))
    listener = _bind("127.0.0.1", 0, options.backlog)
    engine = engine_class(model)(model, app, listener, options)
    engine.start()
    try:
        print(listener.getsockname()[1], flush=True)
        while sys.stdin.buffer.read(1):
            pass
    finally:
        engine.stop()
