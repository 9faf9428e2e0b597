#!/usr/bin/python3
"""The lab's receiver of Alertmanager's notifications (webhook), on the monitoring hosts only: it
records every notification it is sent, with the path it was sent to (one per receiver), so that the
lab tests can assert that an alert really was told, and told resolved. Listens on the loopback
address only, on the port given; GET / answers every notification recorded, as a JSON list."""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOG = Path(sys.argv[2] if len(sys.argv) > 2 else "/var/lib/rempart-lab-alert-recorder/notifications.jsonl")


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            notification = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        with LOG.open("a", encoding="utf-8") as log:
            log.write(json.dumps({"path": self.path, "received": time.time(), "notification": notification}) + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        rows = [json.loads(line) for line in LOG.read_text(encoding="utf-8").splitlines()] if LOG.exists() else []
        answer = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Recorder).serve_forever()
