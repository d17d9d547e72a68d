"""The subprocess behind ``start_server(..., isolated=True)``.

Protocol, one JSON document per line: the parent writes the configuration, the child answers
``{"event": "ready", "port": ..., "pids": [...]}`` (or ``{"event": "error", ...}``). Then the
parent writes commands (``stats``, ``reset``, ``stop``) and the child answers each; the answer
to ``stop`` carries what the detectors found here (see ``_watch.py``). End of input means the
parent is gone: the child stops its server and exits. The handler's own output
to stdout goes to stderr, so it can never corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for the protocol and point fd 1 (and sys.stdout) at stderr."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def main() -> int:
    out = _protocol_stream()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    config = json.loads(sys.stdin.readline())
    for entry in reversed(config["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if config.get("cpu_affinity"):
        os.sched_setaffinity(0, config["cpu_affinity"])

    import resource

    from pytest_concurrency.serve._procmetrics import raise_fd_limit
    from pytest_concurrency.serve._server import start_server, stats_to_json
    from pytest_concurrency.serve._watch import WatchSettings, watching
    from pytest_concurrency.serve.models import MODELS
    from pytest_concurrency.serve.models._base import ServeOptions

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        raise_fd_limit(hard)  # a server must be able to hold as many connections as allowed
    options = ServeOptions(**config["options"])
    watch = WatchSettings.from_json(config.get("watch"))
    model = config["model"]
    # Handlers run here, or in workers that watch themselves with the same settings.
    owner = f"the {model} server (isolated, pid {os.getpid()})"
    worker_watch: dict[str, Any] = {}
    if MODELS[model].watches_workers:
        worker_watch = {
            "watch_loop_ms": watch.loop_ms,
            "watch_leaks": watch.leak_kinds,
            "leak_grace_ms": watch.leak_grace_ms,
            "leak_allow": watch.leak_allow,
        }
    with watching(watch, owner) as findings:
        try:
            handle = start_server(
                config["handler"],
                model,
                host=config["host"],
                port=config["port"],
                http=config["http"],
                max_header_bytes=config["max_header_bytes"],
                max_body_bytes=config["max_body_bytes"],
                workers=options.workers,
                pool_size=options.pool_size,
                backlog=options.backlog,
                shutdown_timeout=options.shutdown_timeout,
                **worker_watch,
            )
        except Exception as error:
            send({"event": "error", "type": type(error).__name__, "error": str(error)})
            return 1
        backend = handle._backend
        send({"event": "ready", "port": handle.port, "pids": backend.engine.child_pids()})
        problem = None
        try:
            for line in sys.stdin:
                command = line.strip()
                if command == "stats":
                    send({"stats": stats_to_json(backend.engine_stats())})
                elif command == "reset":
                    handle.reset_peaks()
                    send({"ok": True})
                elif command == "stop":
                    break
        except KeyboardInterrupt:
            pass
        finally:
            try:
                handle.stop()
            except Exception as error:
                problem = str(error)
    findings.add(handle.findings)
    send(
        {
            "event": "stopped",
            "problem": problem,
            "stats": stats_to_json(backend.engine_stats()),
            "findings": findings.to_json(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
