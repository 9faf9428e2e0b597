"""Secrets held in the application process's memory only (role app).

Role app starts ``serve(path)`` in the application's (single) worker process. Root, and nobody
else (the peer's uid is checked with SO_PEERCRED), delivers the secrets over that Unix socket:
``playbooks/unlock.yml`` and the role itself, with ``rempart-app-keys``. Nothing is written to a
disk; after the process restarts (service restart, reboot) the application is sealed again until
the next delivery.

The application registers, when it loads: ``loader(secrets)`` (checks and takes the secrets;
raising refuses them and keeps the former ones), ``status()`` (what may be shown: never a secret)
and named ``actions`` (run in the process, with the secrets it holds: database migrations, key
rotation). Requests and answers are one JSON document each; the client ends its request by closing
its sending side.
"""

from __future__ import annotations

import hmac
import json
import os
import socket
import struct
import threading
import traceback

_secrets: dict[str, str] = {}
_lock = threading.Lock()
_hooks: dict = {"loader": None, "status": None, "actions": {}}
MAX_REQUEST = 1024 * 1024


def register(loader=None, status=None, actions=None) -> None:
    _hooks.update(loader=loader, status=status, actions=dict(actions or {}))


def get(name: str) -> str | None:
    with _lock:
        return _secrets.get(name)


def loaded() -> list[str]:
    with _lock:
        return sorted(_secrets)


def _same(a: dict, b: dict) -> bool:
    encode = lambda d: json.dumps(d, sort_keys=True).encode()  # noqa: E731
    return hmac.compare_digest(encode(a), encode(b))


def _handle(request: dict) -> dict:
    op = request.get("op")
    if op == "status":
        extra = _hooks["status"]() if _hooks["status"] else {}
        return {"ok": True, "loaded": loaded(), **extra}
    if op == "put":
        new = request.get("secrets")
        if not isinstance(new, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in new.items()):
            return {"ok": False, "error": "secrets: an object of names to texts"}
        with _lock:
            changed = not _same(new, _secrets)
        if changed and not request.get("check"):
            if _hooks["loader"]:
                _hooks["loader"](new)  # raises to refuse: the former secrets stay
            with _lock:
                _secrets.clear()
                _secrets.update(new)
        return {"ok": True, "changed": changed}
    if op == "run":
        action = _hooks["actions"].get(request.get("action"))
        if action is None:
            return {"ok": False, "error": f"no action {request.get('action')!r} (known: {', '.join(sorted(_hooks['actions']))})"}
        return {"ok": True, "result": action(**request.get("args", {}))}
    return {"ok": False, "error": f"unknown op {op!r} (status, put, run)"}


def _serve_one(conn: socket.socket) -> None:
    with conn:
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != 0:
            conn.sendall(json.dumps({"ok": False, "error": "only root may talk to the key holder"}).encode())
            return
        data = b""
        while len(data) <= MAX_REQUEST:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        try:
            answer = _handle(json.loads(data))
        except Exception as error:  # the answer says what failed; never the secrets
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            if not isinstance(error, (ValueError, KeyError, LookupError)):
                answer["where"] = traceback.format_exc(limit=3).splitlines()[-3:]
        conn.sendall(json.dumps(answer, default=str).encode())


def serve(path: str) -> threading.Thread:
    """Listen on ``path`` (mode 0600, the application's account) in a thread of this process."""
    if os.path.exists(path):
        os.unlink(path)  # left by a former process
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)
    try:
        server.bind(path)
    finally:
        os.umask(umask)
    server.listen(4)

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            try:
                _serve_one(conn)
            except OSError:
                pass

    thread = threading.Thread(target=loop, name="rempart-keyholder", daemon=True)
    thread.start()
    return thread
