"""Real things for the hook tests: a hook script run as a subprocess, and an HTTP server.

``HOOK_SCRIPT`` reads the alert JSON lines on stdin and appends one record per alert
(its offset from ``FINK_OFFSET``, its id, the batch size, the line itself) to
``$HOOK_LOG`` when it succeeds; every call is noted in ``$HOOK_TRIES``. It exits 3
(after a line on stderr) when one of its alerts' offsets is in ``$HOOK_FAIL``
(comma-separated), and sleeps ``$HOOK_SLEEP`` seconds per alert first.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOOK_SCRIPT = r'''
import json, os, sys, time
lines = sys.stdin.buffer.read().splitlines()
first = int(os.environ["FINK_OFFSET"])
assert int(os.environ["FINK_ALERTS"]) == len(lines)
with open(os.environ["HOOK_TRIES"], "a") as fh:
    fh.write(f"{first} {len(lines)}\n")
time.sleep(float(os.environ.get("HOOK_SLEEP", "0")) * len(lines))
fail = {int(x) for x in os.environ.get("HOOK_FAIL", "").split(",") if x}
if fail & set(range(first, first + len(lines))):
    print(f"hook refuses offset {sorted(fail)}", file=sys.stderr)
    sys.exit(3)
with open(os.environ["HOOK_LOG"], "a") as fh:
    for i, line in enumerate(lines):
        alert = json.loads(line)
        ident = alert.get("candid") or alert.get("alertId")
        fh.write(json.dumps({"offset": first + i, "id": ident, "n": len(lines),
                             "line": line.decode()}) + "\n")
'''


def write_script(folder: Path) -> Path:
    """The hook script in ``folder``."""
    path = folder / "hook.py"
    path.write_text(HOOK_SCRIPT)
    return path


def read_log(path: Path) -> list[dict]:
    """The records the hook script appended (none if it never succeeded)."""
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


class WebhookServer:
    """A real HTTP server on 127.0.0.1 in a thread, recording every POST.

    The first ``fail_first`` requests get ``fail_status``; requests whose text contains
    one of ``refuse`` always get ``refuse_status``; the others 200.
    """

    def __init__(self, *, fail_first: int = 0, fail_status: int = 500,
                 refuse: tuple[str, ...] = (), refuse_status: int = 503) -> None:
        self.requests: list[dict] = []
        self.accepted: list[dict] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.requests.append(body)
                    outer.paths.append(self.path)
                    n = len(outer.requests)
                    if n <= fail_first:
                        status = fail_status
                    elif any(r in body.get("text", "") for r in refuse):
                        status = refuse_status
                    else:
                        status = 200
                        outer.accepted.append(body)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/s3cr3t-token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
