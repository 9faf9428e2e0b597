"""The edge tier (WAF, ENC, HA): the public entry point, the WAF in front of both app servers, and
the floating address the two WAFs share.

The tests speak to the public URL of .lab/endpoints.json from this machine, which stands on the
lab's public network as the internet does (the lab CA: .lab/ca.crt); the steady streams run on the
lab's client container. Names, ports and paths come from the topology and the roles.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import time
import urllib.parse
import uuid

import pytest
import yaml
from conftest import LAB_DIR, REPO

from rempart import drill
from rempart import topology as model
from rempart.attacks import ATTACKS
from rempart.lab_client import multipart

pytestmark = [pytest.mark.WAF, pytest.mark.ENC, pytest.mark.HA]
# The roles these tests cover (the docs' role pages name this file).
ROLES = ("waf", "keepalived")

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
WAFS = model.members(TOPOLOGY, "waf")
ENTRY = TOPOLOGY["floating"]["waf"]["public"]
HTTP_PORT = model.port(TOPOLOGY, "http")
WAF_DEFAULTS = yaml.safe_load((REPO / "roles/waf/defaults/main.yml").read_text(encoding="utf-8"))
WAF_VARS = yaml.safe_load((REPO / "roles/waf/vars/main.yml").read_text(encoding="utf-8"))
APP_DEFAULTS = yaml.safe_load((REPO / "roles/app/defaults/main.yml").read_text(encoding="utf-8"))
# The refused requests' audit log (role waf writes it, role rsyslog ships it): the topology's wiring names it.
AUDIT_LOG = TOPOLOGY["wiring"]["shipped_logs"]["waf-blocks"]
SECRETS = yaml.safe_load((LAB_DIR / "secrets.yml").read_text(encoding="utf-8")) if (LAB_DIR / "secrets.yml").exists() else {}


class Public:
    """A browser on the internet: HTTPS to the public URL, trusting the lab's CA (as a citizen's
    machine trusts a public one), cookies kept."""

    def __init__(self, base: str):
        self.base = urllib.parse.urlsplit(base)
        self.context = ssl.create_default_context(cafile=str(LAB_DIR / "ca.crt"))
        self.cookies: dict[str, str] = {}

    def __call__(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> dict:
        conn = http.client.HTTPSConnection(self.base.hostname, self.base.port or 443, context=self.context, timeout=30)
        try:
            sent = dict(headers or {})
            if self.cookies and "Cookie" not in sent:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            tls = conn.sock.version() if conn.sock else None
            found: dict[str, list[str]] = {}
            for name, value in answer.getheaders():
                found.setdefault(name.lower(), []).append(value)
            for cookie in found.get("set-cookie", []):
                name, _, value = cookie.split(";", 1)[0].partition("=")
                self.cookies[name] = value
            return {"status": answer.status, "headers": found, "body": answer.read(), "tls": tls}
        finally:
            conn.close()


@pytest.fixture(scope="module")
def public(endpoints) -> Public:
    return Public(endpoints["urls"]["public"])


def holder() -> str:
    found = drill.entry_holder()
    assert found, f"no WAF holds the public address {ENTRY}"
    return found


def audit_lines(host: str) -> list[dict]:
    out = drill.inside(host, ["cat", AUDIT_LOG]).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_endpoints_give_the_floating_address_as_the_public_url(endpoints):
    assert endpoints["urls"]["public"] == drill.public_url() == f"https://{ENTRY}/"
    assert sum(1 for host in WAFS if drill.entry_holder() == host) == 1


def test_the_citizen_uses_the_e_service_through_the_waf(public):
    home = public("GET", "/")
    assert home["status"] == 200 and home["tls"] in ("TLSv1.2", "TLSv1.3")
    # A real message, with the punctuation people write, and a document.
    message = ("Bonjour, je déménage le 1er mars (rue de l'Église 12, 2e étage) : merci de m'envoyer l'attestation "
               "d'ici au 15.03 - c'est urgent ! Tél. +41 79 123 45 67; e-mail: ada@example.org")
    body, kind = multipart({"procedure": drill.procedure(), "full_name": "Zoë O'Brien-Müller", "email": "zoe@example.org",
                            "message": message}, drill.DOCUMENT, "attestation (copie) n°2.pdf")
    sent = public("POST", "/submissions", {"Content-Type": kind, "Accept": "application/json"}, body)
    assert sent["status"] == 201, sent["body"][:500]
    receipt = json.loads(sent["body"])
    assert public("GET", receipt["status_url"])["status"] == 200
    # An agent signs in, lists, opens, downloads and changes the status.
    agent = Public(drill.public_url())
    form = agent("GET", "/agent/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form["body"].decode()).group(1)
    signed = agent("POST", "/agent/login", {"Content-Type": "application/x-www-form-urlencoded"},
                   urllib.parse.urlencode({"csrf": csrf, "login": "agent1", "password": SECRETS["lab_eservice_agent_password"]}).encode())
    assert signed["status"] == 303, signed["body"][:300]
    listing = agent("GET", "/agent/")
    assert listing["status"] == 200 and receipt["receipt"] in listing["body"].decode()
    submission = re.search(r'href="/agent/submissions/([0-9a-f-]+)">' + receipt["receipt"], listing["body"].decode()).group(1)
    detail = agent("GET", f"/agent/submissions/{submission}")
    assert detail["status"] == 200
    download = agent("GET", f"/agent/documents/{receipt['document_id']}")
    assert download["status"] == 200 and download["body"] == drill.DOCUMENT
    csrf = re.search(r'name="csrf" value="([^"]+)"', detail["body"].decode()).group(1)
    change = agent("POST", f"/agent/submissions/{submission}/status", {"Content-Type": "application/x-www-form-urlencoded"},
                   urllib.parse.urlencode({"csrf": csrf, "status": "in-review"}).encode())
    assert change["status"] == 303
    assert json.loads(public("GET", receipt["status_url"], {"Accept": "application/json"})["body"])["status"] == "in-review"


def test_answers_carry_hsts_and_the_security_headers_and_no_version(public):
    answer = public("GET", "/")
    headers = answer["headers"]
    assert headers["strict-transport-security"][0].startswith(f"max-age={WAF_DEFAULTS['waf_hsts_max_age']}")
    for name in WAF_DEFAULTS["waf_headers"]:
        assert len(headers.get(name.lower(), [])) == 1, name
    # The application's own, stricter policy is kept.
    assert "default-src 'none'" in headers["content-security-policy"][0]
    assert headers.get("server") == ["nginx"]
    assert "x-powered-by" not in headers
    missing = public("GET", f"/nothing-{uuid.uuid4().hex}")
    assert b"nginx/" not in missing["body"] and b"gunicorn" not in missing["body"]


def test_port_80_only_redirects_to_https():
    conn = http.client.HTTPConnection(ENTRY, HTTP_PORT, timeout=10)
    conn.request("GET", "/agent/login?x=1")
    answer = conn.getresponse()
    assert answer.status == 301
    assert answer.getheader("Location") == f"https://{ENTRY}/agent/login?x=1"


def test_the_attack_set_is_blocked_with_403_and_logged(public):
    """rempart/attacks.py's set; each request carries a marker in its path, to be found in the audit log."""
    where = holder()
    markers = {}
    for name, method, path, headers, body in ATTACKS:
        marker = uuid.uuid4().hex
        split = urllib.parse.urlsplit(path)
        marked = f"{split.path.rstrip('/')}/m{marker}" + (f"?{split.query}" if split.query else "")
        answer = Public(drill.public_url())(method, marked, {"Accept": "text/html", **headers}, body)
        markers[name] = (marker, answer["status"])
    not_blocked = {name: status for name, (_, status) in markers.items() if status != 403}
    assert not not_blocked, f"not blocked with 403: {not_blocked}"
    logged = json.dumps(audit_lines(where))
    unlogged = [name for name, (marker, _) in markers.items() if marker not in logged]
    assert not unlogged, f"blocked but not in {AUDIT_LOG} on {where}: {unlogged}"


def test_the_audit_log_holds_no_cookie_password_or_document(public):
    marker = uuid.uuid4().hex
    body, kind = multipart({"procedure": drill.procedure(), "full_name": "<script>alert(1)</script>", "email": "a@example.org",
                            "message": marker}, drill.DOCUMENT, "d.pdf")
    answer = public("POST", f"/submissions/m{marker}", {"Content-Type": kind, "Cookie": f"secret={marker}x"}, body)
    assert answer["status"] == 403
    where = holder()
    lines = [line for line in audit_lines(where) if marker in json.dumps(line)]
    assert lines, "the blocked request is not in the audit log"
    text = json.dumps(lines)
    assert f"{marker}x" not in text and "rempart drill document" not in text
    # One id across the logs: the audit entry's transaction is the access log's request_id.
    accessed = []
    for _ in range(10):  # the access log is written at least every second
        accessed = [json.loads(line) for line in drill.inside(where, ["cat", WAF_VARS["__waf_access_log"]]).stdout.splitlines()
                    if marker in line]
        if accessed:
            break
        time.sleep(0.5)
    assert [entry["request_id"] for entry in accessed] == [lines[0]["transaction"]["unique_id"]]


def test_request_size_matches_the_application(public):
    # The app's largest document (plus its form) passes the WAF's limit; a larger body is refused by the WAF.
    assert WAF_DEFAULTS["waf_max_body_bytes"] >= APP_DEFAULTS["app_settings"]["max_document_bytes"] + 64 * 1024
    body, kind = multipart({"procedure": drill.procedure(), "full_name": "Big", "email": "a@example.org", "message": "m"},
                           b"%PDF-1.4\n" + b"0" * (WAF_DEFAULTS["waf_max_body_bytes"] + 1024), "big.pdf")
    assert public("POST", "/submissions", {"Content-Type": kind, "Accept": "application/json"}, body)["status"] == 413
    document = b"%PDF-1.4\n" + b"1" * (APP_DEFAULTS["app_settings"]["max_document_bytes"] - 64) + b"\n%%EOF\n"
    body, kind = multipart({"procedure": drill.procedure(), "full_name": "Largest", "email": "a@example.org", "message": "m"},
                           document, "largest.pdf")
    assert public("POST", "/submissions", {"Content-Type": kind, "Accept": "application/json"}, body)["status"] == 201


SIGN_IN_BURST = """
import http.client, ssl, sys
context = ssl.create_default_context(cafile="/etc/ssl/certs/ca-certificates.crt")
codes = []
for _ in range(int(sys.argv[2])):
    conn = http.client.HTTPSConnection(sys.argv[1], 443, context=context, timeout=10)
    conn.request("POST", "/agent/login", body=b"csrf=x&login=nobody&password=guess",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    codes.append(conn.getresponse().status)
    conn.close()
print(" ".join(map(str, codes)))
"""


def test_guessing_passwords_is_slowed_per_client():
    limit = next(limit for limit in WAF_DEFAULTS["waf_rate_limits"] if limit.get("path") == "/agent/login")
    tries = int(limit["burst"]) + 5
    # From the lab's client (its own address: this machine's limits are left alone).
    result = subprocess.run(["docker", "exec", "-i", drill.CITIZEN, "python3", "-", ENTRY, str(tries)], input=SIGN_IN_BURST,
                            capture_output=True, text=True, check=True, timeout=120)
    codes = [int(c) for c in result.stdout.split()]
    assert 429 in codes[int(limit["burst"]) + 1:], codes
    assert 429 not in codes[:int(limit["burst"])], codes


def test_testssl_finds_no_vulnerability_and_no_weak_protocol_or_cipher(tmp_path):
    out = tmp_path / "testssl.json"
    subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "--add-ca", str(LAB_DIR / "ca.crt"),
                    "--protocols", "--std", "--vulnerable", "--server-defaults", "--headers",
                    "--jsonfile", str(out), f"{ENTRY}:443"], capture_output=True, text=True, check=False, timeout=900)
    findings = json.loads(out.read_text(encoding="utf-8"))
    # The lab's own CA publishes no revocation list or OCSP responder (docs/pki.md): a property of the
    # lab's certificate, not of the TLS configuration this test judges.
    known = {"cert_revocation"}
    bad = [f"{f['id']}: {f['severity']} {f['finding']}" for f in findings
           if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL") and f["id"] not in known]
    assert not bad, "\n".join(bad)
    offered = {f["id"]: f["finding"] for f in findings if f["id"] in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")}
    assert all("not offered" in offered[p] for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1")), offered
    assert offered["TLS1_2"].startswith("offered") and offered["TLS1_3"].startswith("offered"), offered


def test_losing_the_waf_that_holds_the_address_keeps_the_public_url_answering():
    result = drill.drill_waf()
    print(f"waf: {json.dumps(result)}")
    assert result["holder_after"] != result["holder_before"]
    assert result["address_moved_s"] is not None
    assert result["requests_after_event"] > 0
    assert result["holder_once_back"] == result["holder_after"], "the address moved back when the lost WAF returned"


def test_losing_an_app_server_fails_no_request_of_a_steady_stream():
    result = drill.drill_app()
    print(f"app: {json.dumps(result)}")
    assert result["requests_after_event"] > 0
    assert result["failed_requests"] == 0, result
