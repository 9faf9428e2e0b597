"""The public status page (STATUS), as a citizen reaches it: through the WAF at the topology's status page path,
without login. Its numbers are Prometheus's; Debian's chromium renders it in the browser's language, with no
script, and a screenshot is saved for the docs. When the page cannot see (Prometheus stopped, no run renewing it,
the monitoring host's web server stopped), it says "unknown", never an old state."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from pathlib import Path

import pytest
import yaml
from conftest import ssh
from test_edge import Public
from test_monitoring import MONITOR, api

from rempart import drill
from rempart import topology as model
from rempart.browser import Browser

pytestmark = pytest.mark.STATUS

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
PATH = TOPOLOGY["wiring"]["status_page_path"]
ROLE_VARS = yaml.safe_load((REPO / "roles/status_page/vars/main.yml").read_text(encoding="utf-8"))
UNIT = ROLE_VARS["__status_page_unit"]
OUT = ROLE_VARS["__status_page_out"]
SERVICE = yaml.safe_load((REPO / "roles/status_page/defaults/main.yml").read_text(encoding="utf-8"))["status_page_services"][0]
UP = f'max(probe_success{{job="outside-{SERVICE["function"]}"}})'
SCREENSHOT = REPO / "build" / "screenshots" / "status-page.png"


@pytest.fixture(scope="module")
def public(endpoints) -> Public:
    return Public(endpoints["urls"]["public"])


def _on_monitor(command: str) -> None:
    done = ssh(MONITOR, f"sudo sh -c {json.dumps(command)}", timeout=90)
    assert done.returncode == 0, (command, done.stderr)


def _renew() -> None:
    """A run of the generator now, as its timer does every minute."""
    _on_monitor(f"systemctl start {UNIT}.service")


def _status(public: Public) -> dict:
    answer = public("GET", PATH + "status.json")
    assert answer["status"] == 200, answer["status"]
    return json.loads(answer["body"])


def _prometheus_ready() -> bool:
    try:
        return api("/-/ready")[0] == 200
    except AssertionError:
        return False


def test_the_page_shows_prometheus_numbers_in_the_browsers_language_without_script(public):
    drill.wait_for("the outside probe seen", lambda: (_renew(), _status(public))[1]["state"] == "operational", timeout=120, interval=5)
    status = _status(public)
    at = dt.datetime.fromisoformat(status["generated"]).timestamp()
    for window, seconds in (("24h", 86400), ("7d", 7 * 86400)):
        code, body = api("/api/v1/query?" + urllib.parse.urlencode({"query": f"avg_over_time(({UP})[{seconds}s:1m])", "time": at}))
        assert code == 200, body
        expected = round(float(json.loads(body)["data"]["result"][0]["value"][1]) * 100, 4)
        assert status["services"][0]["availability"][window]["percent"] == expected, window
    with Browser() as browser:
        # The lab's CA is not the browser's; the entry point's TLS is judged by the other tests (testssl, the CA).
        browser.call("Security.setIgnoreCertificateErrors", {"ignore": True})
        browser.call("Network.enable")
        browser.call("Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": "de-CH,de;q=0.9,en;q=0.5"}})
        browser.call("Emulation.setScriptExecutionDisabled", {"value": True})
        entry = f"https://{TOPOLOGY['floating'][SERVICE['function']]['public']}"
        browser.open(entry + PATH)
        assert browser.evaluate("document.documentElement.lang") == "de"
        assert browser.evaluate("document.querySelector('h1').innerText") == "Dienststatus"
        assert browser.evaluate("document.scripts.length") == 0
        shown = f"{status['services'][0]['availability']['24h']['percent']:.3f}".replace(".", ",") + " %"
        assert shown in browser.evaluate("document.querySelector('table').innerText")
        assert "In Betrieb" in browser.evaluate("document.querySelector('.state').innerText")
        bars = browser.evaluate("[...document.querySelectorAll('ol.days li')].map(li => li.innerText.trim().length > 0)")
        assert len(bars) == 90 and all(bars), "each day's bar has its text"
        # The style sheet is served too (the WAF's Content-Security-Policy allows only the page's own).
        assert browser.evaluate("getComputedStyle(document.querySelector('.state')).color") == "rgb(255, 255, 255)"
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOT)
        french = browser.evaluate("document.querySelector('a[hreflang=fr]').href")
        browser.open(french)
        assert browser.evaluate("document.documentElement.lang") == "fr"
        assert "En service" in browser.evaluate("document.querySelector('.state').innerText")


def test_the_page_says_unknown_when_monitoring_is_stopped_when_no_run_renews_it_and_when_its_host_is_silent(public):
    try:
        _on_monitor("systemctl stop prometheus")
        _renew()
        status = _status(public)
        assert status["state"] == "unknown" and status["monitoring"]["reason"] == "unreachable", status["monitoring"]
        page = public("GET", PATH + "en/")["body"].decode()
        assert "Our monitoring cannot be read right now" in page and "Operational" not in page
    finally:
        _on_monitor("systemctl start prometheus")
    drill.wait_for("Prometheus ready again", _prometheus_ready, timeout=120, interval=2)
    try:
        # No run for valid_minutes: no link for the current minute is left (removed here rather than waited for).
        _on_monitor(f"systemctl stop {UNIT}.timer && rm -f {OUT}/minutes/*")
        answer = public("GET", PATH + "de/")
        assert answer["status"] == 200 and "nicht erneuert" in answer["body"].decode()
        assert _status(public)["monitoring"] == {"reason": "expired"}
        _on_monitor("systemctl stop nginx")
        answer = public("GET", PATH)
        assert answer["status"] == 503, answer["status"]
        assert "Service status: unknown" in answer["body"].decode() and "Dienststatus: unbekannt" in answer["body"].decode()
        assert "strict-transport-security" in answer["headers"] and "content-security-policy" in answer["headers"], answer["headers"]
    finally:
        _on_monitor(f"systemctl start nginx {UNIT}.timer")
    drill.wait_for("the page known again", lambda: (_renew(), _status(public))[1]["state"] == "operational", timeout=120, interval=5)
