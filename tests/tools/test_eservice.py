"""The reference e-service's parts that need no database: envelope encryption, password hashes, the
key holder's protocol, and the answers given before the database is asked (validation, sealed)."""

from __future__ import annotations

import base64
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "apps" / "eservice"), str(REPO / "roles" / "app" / "files")]

from eservice import crypto, passwords  # noqa: E402

pytestmark = [pytest.mark.ENC, pytest.mark.KEY]

KEY = base64.b64encode(os.urandom(32)).decode()
PDF = b"%PDF-1.4\n" + os.urandom(2000) + b"\n%%EOF\n"


def test_a_document_is_sealed_and_opened_only_with_its_key_and_its_id():
    ring = crypto.Keyring.from_secrets({"kek": KEY})
    sealed = ring.seal(PDF, "doc-1")
    assert PDF not in sealed.ciphertext and len(sealed.ciphertext) == len(PDF) + 16
    assert ring.open(sealed, "doc-1") == PDF
    with pytest.raises(Exception):  # bound to its row: another id does not open it
        ring.open(sealed, "doc-2")
    other = crypto.Keyring.from_secrets({"kek": base64.b64encode(os.urandom(32)).decode()})
    with pytest.raises(crypto.KeyUnavailable):
        other.open(sealed, "doc-1")


def test_rotation_rewraps_the_data_key_under_the_new_key():
    old = crypto.Keyring.from_secrets({"kek": KEY})
    sealed = old.seal(PDF, "d")
    new_key = base64.b64encode(os.urandom(32)).decode()
    during = crypto.Keyring.from_secrets({"kek": new_key, "kek_previous": KEY})
    assert during.ids == sorted([old.current_id, during.current_id])
    rewrapped = crypto.Sealed(during.current_id, during.rewrap(sealed.kek_id, sealed.wrapped_key), sealed.nonce, sealed.ciphertext)
    after = crypto.Keyring.from_secrets({"kek": new_key})
    assert after.open(rewrapped, "d") == PDF
    with pytest.raises(crypto.KeyUnavailable):
        after.open(sealed, "d")


@pytest.mark.parametrize("text", ["", "c2hvcnQ=", "not base64!", base64.b64encode(os.urandom(31)).decode()],
                         ids=["empty", "5 bytes", "not base64", "31 random bytes"])
def test_an_unusable_key_is_refused_without_showing_it(text):
    with pytest.raises(crypto.KeyUnavailable) as error:
        crypto.Keyring.from_secrets({"kek": text})
    assert not text or text not in str(error.value)


def test_password_hashes_verify_and_refuse():
    encoded = passwords.hash_password("correct horse battery")
    assert passwords.verify("correct horse battery", encoded)
    assert not passwords.verify("correct horse batterY", encoded)
    assert not passwords.verify("anything", "md5$abc")


def test_the_hash_tool_reads_the_password_on_standard_input():
    done = subprocess.run([sys.executable, "-m", "eservice", "hash-password"], input="a long enough password\n",
                          capture_output=True, text=True, cwd=REPO / "apps" / "eservice", check=False)
    assert done.returncode == 0, done.stderr
    assert passwords.verify("a long enough password", done.stdout.strip())


@pytest.fixture()
def app(monkeypatch):
    keyholder = importlib.import_module("rempart_keyholder")
    module = importlib.import_module("eservice.app")
    monkeypatch.setattr(module, "keyholder", keyholder)
    monkeypatch.setattr(keyholder, "_secrets", {})
    application = module.create_app({"database_service": "none", "procedures": {"p": "A procedure"},
                                     "agents": [], "max_document_bytes": 4096})
    return application


def test_sealed_until_the_keys_arrive(app):
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["sealed"] is True
    assert client.get("/healthz").status_code == 200
    upload = client.post("/submissions", data={"procedure": "p", "full_name": "A", "email": "a@example.org",
                                               "document": (__import__("io").BytesIO(PDF[:3000]), "x.pdf")},
                         headers={"Accept": "application/json"})
    assert upload.status_code == 503 and "sealed" in upload.json["error"]
    assert client.get("/agent/", headers={"Accept": "application/json"}).status_code == 503


def test_input_is_checked_by_content_and_size_with_clear_answers(app):
    client = app.test_client()
    io = __import__("io")
    fake = client.post("/submissions", headers={"Accept": "application/json"},
                       data={"procedure": "p", "full_name": "A", "email": "a@example.org",
                             "document": (io.BytesIO(b"MZ\x90\x00 an executable"), "letter.pdf")})
    assert fake.status_code == 422 and any("checked by content" in e for e in fake.json["errors"])
    wrong = client.post("/submissions", headers={"Accept": "application/json"},
                        data={"procedure": "nope", "full_name": "", "email": "x"})
    assert wrong.status_code == 422 and len(wrong.json["errors"]) == 4
    big = client.post("/submissions", headers={"Accept": "application/json"},
                      data={"procedure": "p", "full_name": "A", "email": "a@example.org",
                            "document": (io.BytesIO(b"%PDF-" + b"0" * 8000), "big.pdf")})
    assert big.status_code == 413


def test_security_headers_on_every_answer(app):
    answer = app.test_client().get("/")
    assert answer.status_code == 200
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def _ask(path: Path, request: dict) -> dict:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(path))
    client.sendall(json.dumps(request).encode())
    client.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="the key holder answers root only")
def test_the_key_holder_takes_checks_and_refuses(tmp_path, monkeypatch):
    keyholder = importlib.import_module("rempart_keyholder")
    monkeypatch.setattr(keyholder, "_secrets", {})
    taken = []

    def loader(secrets):
        if secrets.get("kek") == "bad":
            raise ValueError("kek is unusable")
        taken.append(sorted(secrets))

    keyholder.register(loader=loader, status=lambda: {"sealed": not keyholder.loaded()}, actions={"echo": lambda **kw: kw})
    path = tmp_path / "keys.sock"
    keyholder.serve(str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert _ask(path, {"op": "status"})["sealed"] is True
    assert _ask(path, {"op": "put", "secrets": {"kek": "k1"}, "check": True}) == {"ok": True, "changed": True}
    assert keyholder.get("kek") is None  # a check changes nothing
    assert _ask(path, {"op": "put", "secrets": {"kek": "k1"}})["changed"] is True
    assert _ask(path, {"op": "put", "secrets": {"kek": "k1"}})["changed"] is False
    refused = _ask(path, {"op": "put", "secrets": {"kek": "bad"}})
    assert refused["ok"] is False and "unusable" in refused["error"] and keyholder.get("kek") == "k1"
    status = _ask(path, {"op": "status"})
    assert status["loaded"] == ["kek"] and "k1" not in json.dumps(status)
    assert _ask(path, {"op": "run", "action": "echo", "args": {"a": 1}})["result"] == {"a": 1}
    assert _ask(path, {"op": "run", "action": "nope"})["ok"] is False
    # The operator's tool says the same, and tells a missing process apart.
    tool = REPO / "roles" / "app" / "files" / "rempart-app-keys"
    done = subprocess.run([sys.executable, str(tool), str(path), "status"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["loaded"] == ["kek"]
    gone = subprocess.run([sys.executable, str(tool), str(tmp_path / "none.sock"), "status"], capture_output=True, text=True, check=False)
    assert gone.returncode == 3


def test_the_role_copies_the_source_without_caches_and_gives_each_agent_its_hash(tmp_path):
    sys.path.insert(0, str(REPO / "roles" / "app" / "filter_plugins"))
    filters = importlib.import_module("app").FilterModule().filters()
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    files = filters["app_source_files"](str(tmp_path), "/opt/x/app")
    assert [f["path"] for f in files] == ["/opt/x/app", "/opt/x/app/pkg", "/opt/x/app/pkg/__init__.py"]
    assert files[-1]["content"] == "x = 1\n" and files[1]["state"] == "directory"
    with pytest.raises(ValueError, match="not a folder"):
        filters["app_source_files"](str(tmp_path / "missing"), "/opt/x/app")
    agents = filters["app_with_hashes"]([{"login": "a"}, {"login": "b"}], {"a": "scrypt$1"})
    assert agents == [{"login": "a", "password_hash": "scrypt$1"}, {"login": "b", "password_hash": ""}]
