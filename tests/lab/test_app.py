"""The app tier (HA, ENC, KEY): the reference e-service on both app servers, documents encrypted
before they reach the database, keys in the process's memory only, sealed after a restart until
playbooks/unlock.yml, key rotation, agents' sessions and citizens' secret links.

The tests speak to the app servers from a WAF with its certificate (the flow matrix's client), as
the WAF does; the database is read on its servers through the engine. Names, ports and paths come
from the topology and the role.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.parse

import pytest
import yaml
from conftest import LAB_DIR, REPO, playbook, ssh

from rempart import drill
from rempart import topology as model
from rempart.lab_client import multipart

pytestmark = [pytest.mark.HA, pytest.mark.ENC, pytest.mark.KEY]
# The roles these tests cover (the docs' role pages name this file).
ROLES = ("app",)

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
APPS = model.members(TOPOLOGY, "app")
DEFAULTS = yaml.safe_load((REPO / "roles/app/defaults/main.yml").read_text(encoding="utf-8"))
VARS = yaml.safe_load((REPO / "roles/app/vars/main.yml").read_text(encoding="utf-8"))
NAME = DEFAULTS["app_name"]
SOCKET = VARS["__app_socket"].replace("{{ app_name }}", NAME)
SECRETS = yaml.safe_load((LAB_DIR / "secrets.yml").read_text(encoding="utf-8")) if (LAB_DIR / "secrets.yml").exists() else {}
AGENT, PASSWORD = "agent1", SECRETS.get("lab_eservice_agent_password", "")


@pytest.fixture(scope="module")
def web():
    client = drill.Https()
    yield client
    client.close()


def url(host: str, path: str) -> str:
    return drill.app_url(host) + path


def submit(web, host: str, document: bytes, name: str = "Ada Citizen") -> dict:
    # The name a browser sends is the client's: a path in it must not reach the download's name.
    body, kind = multipart({"procedure": drill.procedure(), "full_name": name, "email": "ada@example.org",
                            "message": "Please"}, document, "../../etc/passwd.pdf")
    answer = web("POST", url(host, "/submissions"), {"Content-Type": kind, "Accept": "application/json"}, body)
    assert answer["status"] == 201, answer
    return json.loads(answer["body"])


def cookies(answer: dict) -> dict:
    found = {}
    for header in answer["headers"].get("set-cookie", []):
        name, _, value = header.split(";", 1)[0].partition("=")
        found[name] = value
    return found


def sign_in(web, host: str, login: str = AGENT, password: str = PASSWORD) -> dict:
    form = web("GET", url(host, "/agent/login"))
    csrf = re.search(r'name="csrf" value="([^"]+)"', form["body"].decode()).group(1)
    jar = cookies(form)
    answer = web("POST", url(host, "/agent/login"),
                 {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())},
                 urllib.parse.urlencode({"csrf": csrf, "login": login, "password": password}).encode())
    return {"answer": answer, "cookie": "; ".join(f"{k}={v}" for k, v in cookies(answer).items() if "session" in k)}


def document(marker: bytes) -> bytes:
    return b"%PDF-1.4\n" + marker * 50 + os.urandom(4096) + b"\n%%EOF\n"


def psql(sql: str) -> str:
    result = drill.inside(drill.primary(), ["psql", "-XAtq", "-d", drill.DATABASE, "-c", sql], user="postgres", timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def keys(host: str, *args: str) -> dict:
    result = ssh(host, f"sudo /usr/local/sbin/rempart-app-keys {SOCKET} " + " ".join(args))
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def ready(web, host: str) -> dict:
    answer = web("GET", url(host, "/readyz"))
    return {"status": answer["status"], **json.loads(answer["body"] or b"{}")}


def test_both_app_servers_are_ready_with_their_keys(web):
    for host in APPS:
        assert ready(web, host) == {"status": 200, "ready": True, "sealed": False, "database": "writable"}, host


def test_a_document_uploaded_through_one_app_server_comes_back_byte_for_byte_through_the_other(web):
    content = document(b"cross-site document ")
    first, second = APPS[0], APPS[-1]
    receipt = submit(web, first, content)
    session = sign_in(web, second)
    assert session["answer"]["status"] == 303, session["answer"]
    page = web("GET", url(second, "/agent/"), {"Cookie": session["cookie"]})
    assert page["status"] == 200 and receipt["receipt"] in page["body"].decode()
    download = web("GET", url(second, f"/agent/documents/{receipt['document_id']}"), {"Cookie": session["cookie"]})
    assert download["status"] == 200
    assert download["body"] == content
    assert download["headers"]["content-type"] == ["application/pdf"]
    assert "attachment" in download["headers"]["content-disposition"][0] and "/" not in download["headers"]["content-disposition"][0]
    # The agent changes its status on one server; the citizen's link shows it on the other.
    submission = re.search(r'href="/agent/submissions/([0-9a-f-]+)">' + receipt["receipt"], page["body"].decode()).group(1)
    detail = web("GET", url(second, f"/agent/submissions/{submission}"), {"Cookie": session["cookie"]})
    csrf = re.search(r'name="csrf" value="([^"]+)"', detail["body"].decode()).group(1)
    change = web("POST", url(second, f"/agent/submissions/{submission}/status"),
                 {"Cookie": session["cookie"], "Content-Type": "application/x-www-form-urlencoded"},
                 urllib.parse.urlencode({"csrf": csrf, "status": "accepted"}).encode())
    assert change["status"] == 303
    status = web("GET", url(first, receipt["status_url"]), {"Accept": "application/json"})
    assert json.loads(status["body"])["status"] == "accepted"


def test_the_database_holds_ciphertext_only(web):
    marker = b"PLAINTEXT-MARKER-" + os.urandom(6).hex().encode()
    content = document(marker)
    receipt = submit(web, APPS[0], content)
    stored = psql(f"select encode(ciphertext, 'base64'), octet_length(wrapped_key), kek_id from documents "
                  f"where id = '{receipt['document_id']}'").split("|")
    ciphertext = base64.b64decode(stored[0].replace("\n", ""))
    assert len(ciphertext) == len(content) + 16  # AES-GCM: same length and a 16-byte tag
    assert marker not in ciphertext and content[:64] not in ciphertext
    assert int(stored[1]) == 40  # a 256-bit data key, wrapped (RFC 3394)
    # No column of the database holds the marker: a dump of the table does not show it.
    dump = drill.inside(drill.primary(), ["pg_dump", "-d", drill.DATABASE, "-t", "documents", "-a"], user="postgres", timeout=60)
    assert dump.returncode == 0 and marker.decode() not in dump.stdout


def test_an_upload_that_fails_half_way_leaves_nothing_behind(web):
    count = "select (select count(*) from submissions), (select count(*) from documents)"
    before = psql(count)
    body, kind = multipart({"procedure": drill.procedure(), "full_name": "Half Way", "email": "half@example.org"},
                           document(b"half way ") + os.urandom(200_000), "half.pdf")
    for host in APPS:
        web("POST", url(host, "/submissions"), {"Content-Type": kind, "Accept": "application/json"}, body, truncate=len(body) // 2)
    # A document the e-service refuses after the fields were read leaves nothing either.
    refused, kind = multipart({"procedure": drill.procedure(), "full_name": "Refused", "email": "r@example.org"},
                              b"GIF89a not accepted", "refused.pdf")
    assert web("POST", url(APPS[0], "/submissions"), {"Content-Type": kind, "Accept": "application/json"}, refused)["status"] == 422
    assert psql(count) == before


def test_the_app_answers_only_clients_with_a_certificate_of_the_environment(web):
    host = APPS[0]
    plain = subprocess.run(["docker", "exec", drill.APP_CLIENT, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                            "--max-time", "5", "--cacert", f"{drill.PKI}/ca.crt", url(host, "/healthz")],
                           capture_output=True, text=True, check=False)
    assert plain.returncode != 0, "the app answered a client without a certificate"
    assert web("GET", url(host, "/healthz"))["status"] == 200


def test_agents_cannot_be_impersonated_and_a_secret_link_shows_its_submission_only(web):
    host = APPS[0]
    mine, other = submit(web, host, document(b"mine "), "Citizen Mine"), submit(web, host, document(b"other "), "Citizen Other")
    status = web("GET", url(host, mine["status_url"]), {"Accept": "application/json"})
    assert status["status"] == 200 and json.loads(status["body"])["receipt"] == mine["receipt"]
    assert other["receipt"].encode() not in status["body"] and b"Citizen" not in status["body"]
    assert web("GET", url(host, "/status?t=" + "A" * 43))["status"] == 404
    # No session, a made-up session, a wrong password: no agent page, no document.
    for cookie in ("", "__Host-eservice-session=" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")):
        for path in ("/agent/", f"/agent/documents/{mine['document_id']}"):
            answer = web("GET", url(host, path), {"Cookie": cookie, "Accept": "application/json"})
            assert answer["status"] == 401, (path, answer["status"])
    wrong = sign_in(web, host, password=PASSWORD + "x")
    assert wrong["answer"]["status"] == 403 and not wrong["cookie"]
    # A valid session without the form's token cannot change a status (CSRF; the token is checked first).
    session = sign_in(web, host)
    change = web("POST", url(host, f"/agent/submissions/{mine['document_id']}/status"),
                 {"Cookie": session["cookie"], "Content-Type": "application/x-www-form-urlencoded"}, b"status=accepted")
    assert change["status"] == 403
    cookie = session["answer"]["headers"]["set-cookie"][0]
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Strict")) and cookie.startswith("__Host-")


def test_after_a_restart_the_app_is_sealed_and_unlock_restores_it(web):
    host = APPS[0]
    receipt = submit(web, host, document(b"before the restart "))
    restarted = ssh(host, f"sudo systemctl restart {NAME}")
    assert restarted.returncode == 0, restarted.stderr
    drill.wait_for(f"{NAME} on {host} answering again", lambda: web("GET", url(host, "/healthz"))["status"] == 200, timeout=60)
    sealed = ready(web, host)
    assert sealed["status"] == 503 and sealed["sealed"] is True
    upload = web("POST", url(host, "/submissions"), {"Accept": "application/json", "Content-Type": "multipart/form-data; boundary=x"},
                 b"--x--\r\n")
    assert upload["status"] in (422, 503)
    assert keys(host, "status")["loaded"] == []
    # The other app server serves meanwhile.
    assert ready(web, APPS[-1])["status"] == 200
    unlocked = playbook("playbooks/unlock.yml")
    assert unlocked.returncode == 0, unlocked.stdout[-3000:]
    assert ready(web, host)["status"] == 200
    session = sign_in(web, host)
    assert web("GET", url(host, f"/agent/documents/{receipt['document_id']}"), {"Cookie": session["cookie"]})["status"] == 200


def test_an_app_server_that_lost_its_power_comes_back_sealed_while_the_other_serves(web):
    host, other = APPS[0], APPS[-1]
    drill.power_off(host)
    try:
        assert ready(web, other)["status"] == 200
        receipt = submit(web, other, document(b"while the other is off "))
    finally:
        drill.power_on(host)
    drill.wait_for(f"{NAME} on {host} answering after its power came back",
                   lambda: web("GET", url(host, "/healthz"))["status"] == 200, timeout=120)
    assert ready(web, host)["sealed"] is True
    unlocked = playbook("playbooks/unlock.yml")
    assert unlocked.returncode == 0, unlocked.stdout[-3000:]
    assert ready(web, host)["status"] == 200
    session = sign_in(web, host)
    assert web("GET", url(host, f"/agent/documents/{receipt['document_id']}"), {"Cookie": session["cookie"]})["status"] == 200


def test_no_key_material_in_any_file_or_in_the_journal_of_an_app_server():
    key = SECRETS["vault_eservice_kek"]
    needles = [key.encode(), base64.b64decode(key), SECRETS["vault_postgresql_eservice_password"].encode()]
    scan = r'''
import os, sys, subprocess
needles = [bytes.fromhex(h) for h in sys.stdin.read().split()]
found = []
for top in ("/",):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
        for name in files:
            path = os.path.join(root, name)
            try:
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            found += [path for n in needles if n in data]
journal = subprocess.run(["journalctl", "--no-pager", "-o", "export"], capture_output=True).stdout
found += ["journal" for n in needles if n in journal]
print(sorted(set(found)))
'''
    for host in APPS:
        result = subprocess.run(["docker", "exec", "-i", host, "python3", "-c", scan], input=" ".join(n.hex() for n in needles),
                                capture_output=True, text=True, check=False, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]", f"{host}: key material found in {result.stdout.strip()}"


def test_key_rotation_rewraps_every_document_and_forgets_the_former_key(web):
    host = APPS[0]
    content = document(b"before the rotation ")
    receipt = submit(web, host, content)
    before = keys(host, "status")["current_key"]
    new = base64.b64encode(os.urandom(32)).decode()
    original = SECRETS["vault_eservice_kek"]
    try:
        for current, previous in ((new, original), (original, new)):  # there and back: the lab ends as its vault says
            extra = LAB_DIR / "rotation-test.yml"
            extra.write_text(yaml.safe_dump({"vault_eservice_kek": current, "vault_eservice_kek_previous": previous}), encoding="utf-8")
            extra.chmod(0o600)
            rotated = playbook("playbooks/rotate-app-key.yml", "-e", f"@{extra}")
            assert rotated.returncode == 0, rotated.stdout[-3000:]
            for app in APPS:
                state = keys(app, "status")
                assert len(state["keys"]) == 1, f"{app} still holds the former key"
            in_use = keys(host, "run", "keys-in-use")["result"]
            assert list(in_use["documents_by_key"]) == [in_use["current_key"]]
            if current == new:
                assert in_use["current_key"] != before
            session = sign_in(web, APPS[-1])
            download = web("GET", url(APPS[-1], f"/agent/documents/{receipt['document_id']}"), {"Cookie": session["cookie"]})
            assert download["status"] == 200 and download["body"] == content
    finally:
        (LAB_DIR / "rotation-test.yml").unlink(missing_ok=True)
    assert keys(host, "status")["current_key"] == before


def test_losing_the_database_primary_during_uploads_loses_no_acknowledged_upload():
    result = drill.drill_uploads()
    print(f"uploads: {json.dumps(result)}")
    assert result["acknowledged_uploads_lost"] == 0
    assert result["uploads_acknowledged_after_event"] > 0, "no upload was acknowledged after the primary was lost"


def test_after_a_switchover_the_first_request_to_each_app_server_succeeds(web):
    """The app servers hold idle connections to the primary; a switchover closes them (the old
    primary restarts as a standby) while no request runs: none of them may be handed to a request."""
    for host in APPS:
        submit(web, host, document(b"before the switchover "))
    before = drill.primary()
    switched = playbook("playbooks/switchover.yml")
    assert switched.returncode == 0, switched.stdout[-3000:]
    drill.wait_for("the cluster whole again after the switchover", drill.healthy, timeout=120)
    assert drill.primary() != before
    for host in APPS:
        assert ready(web, host)["status"] == 200, host
        submit(web, host, document(b"after the switchover "))


def test_the_unit_is_sandboxed_as_the_role_requires():
    for host in APPS:
        pid = f"$(systemctl show -p MainPID --value {NAME})"
        result = ssh(host, f"sudo sh -c 'systemd-analyze security --no-pager {NAME}.service | tail -n 1; "
                           f"grep -E \"^(CapEff|NoNewPrivs)\" /proc/{pid}/status; ps -o user= -p {pid}'")
        assert result.returncode == 0, result.stderr
        exposure = float(re.search(r"([0-9]+\.[0-9]+)", result.stdout.splitlines()[0]).group(1))
        assert exposure <= float(DEFAULTS["app_exposure_max"]), result.stdout
        assert "CapEff:\t0000000000000000" in result.stdout and "NoNewPrivs:\t1" in result.stdout
        assert result.stdout.split()[-1] == NAME
