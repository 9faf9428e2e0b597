"""An HTTPS client that runs on a lab host (piped to its python3), for the tests and the drills.

The application listens only for the hosts the flow matrix lets reach it, and only with a
certificate of the environment's CA: the tests and the drills therefore speak to it from one of
those hosts (a WAF), with that host's certificate, as the WAF itself will. Python's standard
library only. Arguments: the CA, certificate and key files. Two modes, chosen by the first line on
standard input:

- ``{"mode": "requests"}``: then one JSON request per line (method, url, headers, body in base64;
  ``truncate``: send that many bytes of the body only, then cut the connection), one JSON answer per
  line (status, headers, body in base64; or error);
- ``{"mode": "uploads", "urls": [...], "interval": s, "document_b64": ...}``: submits a document
  again and again, to each URL in turn, until a line arrives on standard input; a submission is
  retried (on the next URL) until acknowledged (201). Prints one JSON document: every upload, when
  it was first tried and acknowledged, its receipt and how many tries it took;
- ``{"mode": "stream", "url": ..., "interval": s, "procedure": ..., "document_b64": ...}``: a citizen's
  steady use until a line arrives on standard input: the form (GET), then its submission with the
  document (POST), again and again, each request sent once (no retry). Prints one JSON document: every
  request, when it started, how long it took, and its status or error.

Run on the lab's client (the internet's side), it is given the CA only: no client certificate.
Moments are read on the monotonic clock, which a container shares with the machine running the
drills (one kernel): they compare with the drills' own moments, whatever the wall clock does.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

CONTEXT: ssl.SSLContext | None = None  # the host's certificate, set when run as a script


def request(method: str, url: str, headers: dict | None = None, body: bytes | None = None, timeout: float = 10) -> tuple:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=CONTEXT, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        conn.close()


def truncated(url: str, headers: dict, body: bytes, keep: int) -> None:
    """Announce the whole body, send its first ``keep`` bytes, then cut the connection (an upload
    that fails half-way)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=CONTEXT, timeout=10)
    conn.putrequest("POST", parts.path)
    for name, value in {**headers, "Content-Length": str(len(body))}.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(body[:keep])
    time.sleep(0.5)
    conn.close()


def multipart(fields: dict, document: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the fields and one file named ``document``, and its Content-Type."""
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="document"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + document + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def requests_mode() -> None:
    for line in sys.stdin:
        asked = json.loads(line)
        try:
            body = base64.b64decode(asked["body_b64"]) if asked.get("body_b64") else None
            if asked.get("truncate"):
                truncated(asked["url"], asked.get("headers") or {}, body, int(asked["truncate"]))
                print(json.dumps({"status": None, "headers": [], "body_b64": ""}), flush=True)
                continue
            status, headers, content = request(asked["method"], asked["url"], asked.get("headers"), body)
            print(json.dumps({"status": status, "headers": headers, "body_b64": base64.b64encode(content).decode()}), flush=True)
        except (OSError, http.client.HTTPException) as error:
            print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)


def uploads_mode(asked: dict) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    document, urls, rows, n, turn = base64.b64decode(asked["document_b64"]), asked["urls"], [], 0, 0
    while not stop.is_set():
        n += 1
        row = {"n": n, "tried": time.monotonic(), "acked": None, "tries": 0, "receipt": None, "via": None}
        rows.append(row)
        while not stop.is_set():
            row["tries"] += 1
            url = urls[turn % len(urls)]
            turn += 1
            body, kind = multipart({"procedure": asked["procedure"], "full_name": f"Drill {n}", "email": "drill@example.org",
                                    "message": f"upload {n}"}, document, f"drill-{n}.pdf")
            try:
                status, _, content = request("POST", url + "/submissions", {"Content-Type": kind, "Accept": "application/json"}, body, 5)
                if status == 201:
                    row["acked"], row["receipt"], row["via"] = time.monotonic(), json.loads(content)["receipt"], url
                    break
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.2)
        time.sleep(float(asked.get("interval", 0.1)))
    print(json.dumps({"rows": rows}))


def stream_mode(asked: dict) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    document, url, rows, n = base64.b64decode(asked["document_b64"]), asked["url"].rstrip("/"), [], 0
    while not stop.is_set():
        n += 1
        if n % 2:
            method, path, headers, body = "GET", "/", {}, None
        else:
            body, kind = multipart({"procedure": asked["procedure"], "full_name": f"Stream {n}", "email": "stream@example.org",
                                    "message": f"request {n}"}, document, f"stream-{n}.pdf")
            method, path, headers = "POST", "/submissions", {"Content-Type": kind, "Accept": "application/json"}
        row = {"n": n, "method": method, "started": time.monotonic(), "status": None, "error": None}
        try:
            row["status"] = request(method, url + path, headers, body, 10)[0]
        except (OSError, http.client.HTTPException) as error:
            row["error"] = f"{type(error).__name__}: {error}"
        row["seconds"] = round(time.monotonic() - row["started"], 3)
        rows.append(row)
        time.sleep(float(asked.get("interval", 0.05)))
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":  # run on a lab host; the tests import multipart() only
    CONTEXT = ssl.create_default_context(cafile=sys.argv[1])
    if len(sys.argv) > 3:
        CONTEXT.load_cert_chain(sys.argv[2], sys.argv[3])
    first = json.loads(sys.stdin.readline())
    {"requests": lambda _asked: requests_mode(), "uploads": uploads_mode, "stream": stream_mode}[first["mode"]](first)
