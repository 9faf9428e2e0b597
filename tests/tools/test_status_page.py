"""The public status page's generator (role status_page, STATUS), run here against a real Prometheus (Debian's
server, from build/tools/) holding a known history written by promtool's backfill: 90 days of the outside
probers' probes with one outage of 30 minutes three days ago, and each site's WAF probe. The page's numbers must
be those of that history; with no Prometheus to read, or a history that stopped, every state says "unknown";
the generations are linked for the next minutes only, and unknown/ is renewed by every run."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from local_servers import free_port, wait_ready

from rempart.engine import PROMETHEUS, PROMTOOL

pytestmark = pytest.mark.STATUS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles/status_page/files/rempart-status"
DEFAULTS = yaml.safe_load((ROOT / "roles/status_page/defaults/main.yml").read_text(encoding="utf-8"))
LAB_INCIDENTS = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/status.yml").read_text(encoding="utf-8"))["status_page_incidents"]
PATH = yaml.safe_load((ROOT / "inventories/reference.yml").read_text(encoding="utf-8"))["wiring"]["status_page_path"]
OUTAGE_MINUTES = 30
DAYS_OF_HISTORY = 91


def _history(until: float, outage_start: float, site_down_from: float | None) -> str:
    """OpenMetrics of probe_success: the outside prober each minute (0 during the outage), each site's WAF probe."""
    lines = ["# TYPE probe_success gauge"]
    start = int(until) - DAYS_OF_HISTORY * 86400
    start -= start % 60
    for at in range(start, int(until) + 1, 60):
        down = outage_start <= at < outage_start + OUTAGE_MINUTES * 60
        lines.append(f'probe_success{{job="outside-waf",instance="outside-10-233-0-250"}} {0 if down else 1} {at}')
        for site in ("dc1", "dc2"):
            lost = site == "dc2" and site_down_from is not None and at >= site_down_from
            lines.append(f'probe_success{{job="entry-waf",instance="waf-{site}",site="{site}"}} {0 if lost else 1} {at}')
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def clock():
    now = time.time()
    local = dt.datetime.fromtimestamp(now).astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    outage = (midnight - dt.timedelta(days=3) + dt.timedelta(hours=10)).timestamp()
    return {"now": now, "midnight": midnight, "outage": outage}


def _prometheus(tmp: Path, history: str) -> tuple[subprocess.Popen, str]:
    (tmp / "history.om").write_text(history, encoding="utf-8")
    subprocess.run([str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=2400h", str(tmp / "history.om"),
                    str(tmp / "data")],
                   check=True, capture_output=True)
    (tmp / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=400d"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", "the test's Prometheus", process)
    return process, url


@pytest.fixture(scope="module")
def healthy(tmp_path_factory, clock):
    """A Prometheus whose history is whole up to now, but for the outage."""
    tmp = tmp_path_factory.mktemp("healthy")
    process, url = _prometheus(tmp, _history(clock["now"], clock["outage"], None))
    yield url
    process.terminate()
    process.wait(timeout=20)


def _config(tmp: Path, url: str, **extra) -> Path:
    config = {
        "environment": "lab", "path": PATH, "public_url": f"https://10.233.0.10{PATH}", "out": str(tmp / "out"),
        "target": DEFAULTS["status_page_target"], "valid_minutes": DEFAULTS["status_page_valid_minutes"],
        "stale_after_seconds": DEFAULTS["status_page_stale_after_seconds"], "services": DEFAULTS["status_page_services"],
        "incidents": LAB_INCIDENTS, "advice": DEFAULTS["status_page_outage_advice"], "prometheus": {"url": url}, **extra,
    }
    path = tmp / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _run(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["python3", str(SCRIPT), "--config", str(config)], capture_output=True, text=True, timeout=120)


def _current(out: Path) -> Path:
    minute = dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M")
    return out / "minutes" / minute


def test_the_page_gives_the_historys_availability_per_window_and_per_day(tmp_path, healthy, clock):
    result = _run(_config(tmp_path, healthy))
    assert result.returncode == 0, result.stderr
    status = json.loads((_current(tmp_path / "out") / "status.json").read_text(encoding="utf-8"))
    assert status["state"] == "operational" and status["monitoring"] == {"reason": None}
    service = status["services"][0]
    availability = service["availability"]
    assert availability["24h"]["percent"] == pytest.approx(100)
    assert availability["7d"]["percent"] == pytest.approx(100 * (1 - OUTAGE_MINUTES / (7 * 1440)), abs=0.02)
    assert availability["30d"]["percent"] == pytest.approx(100 * (1 - OUTAGE_MINUTES / (30 * 1440)), abs=0.01)
    assert availability["90d"]["coverage_seconds"] == pytest.approx(90 * 86400, rel=0.01)
    # 99.99 % over 30 days allows 4.32 minutes; 30 were spent.
    assert service["error_budget"]["allowed_minutes"] == pytest.approx(4.32)
    assert service["error_budget"]["left_minutes"] == pytest.approx(4.32 - OUTAGE_MINUTES, abs=1.5)
    days = {day["day"]: day["percent"] for day in service["days"]}
    assert len(service["days"]) == 90
    outage_day = (clock["midnight"] - dt.timedelta(days=3)).date().isoformat()
    assert days[outage_day] == pytest.approx(100 * (1 - OUTAGE_MINUTES / 1440), abs=0.1)
    assert [percent for day, percent in days.items() if day != outage_day] == pytest.approx([100] * 89)
    page = (_current(tmp_path / "out") / "fr.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in page and "En service" in page and "<script" not in page
    shown = f"{days[outage_day]:.3f}".replace(".", ",")
    assert f'<span class="hidden">{outage_day}\u202f: {shown} %</span>' in page, "each day's bar carries its value as text"
    assert "Mise à jour mineure des serveurs de bases de données" in page
    feed = (_current(tmp_path / "out") / "feed.atom").read_text(encoding="utf-8")
    assert "urn:rempart:status:lab:2026-11-28-database-upgrade" in feed


def test_the_page_is_linked_for_its_valid_minutes_only_and_unknown_is_renewed(tmp_path, healthy):
    assert _run(_config(tmp_path, healthy)).returncode == 0
    out = tmp_path / "out"
    links = sorted(os.listdir(out / "minutes"))
    assert len(links) == DEFAULTS["status_page_valid_minutes"]
    assert links[0] == dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M") or len(links) == DEFAULTS["status_page_valid_minutes"]
    unknown = json.loads((out / "unknown" / "status.json").read_text(encoding="utf-8"))
    assert unknown["state"] == "unknown" and unknown["monitoring"] == {"reason": "expired"}
    assert "nicht erneuert" in (out / "unknown" / "de.html").read_text(encoding="utf-8")
    # A second run replaces the links and removes the generation no link points to any more.
    assert _run(_config(tmp_path, healthy)).returncode == 0
    generations = os.listdir(out / "generations")
    assert len(generations) == 1, generations
    assert {os.readlink(out / "minutes" / link) for link in os.listdir(out / "minutes")} == {f"../generations/{generations[0]}"}


def test_with_no_prometheus_to_read_every_state_is_unknown_and_the_advice_shown(tmp_path):
    result = _run(_config(tmp_path, f"http://127.0.0.1:{free_port()}"))
    assert result.returncode == 0, result.stderr
    current = _current(tmp_path / "out")
    status = json.loads((current / "status.json").read_text(encoding="utf-8"))
    assert status["state"] == "unknown" and status["monitoring"]["reason"] == "unreachable"
    assert [s["state"] for s in status["services"]] == ["unknown"]
    page = (current / "en.html").read_text(encoding="utf-8")
    assert "Our monitoring cannot be read right now" in page and "Deadlines that end while" in page
    assert "Operational" not in page


def test_a_history_that_stopped_minutes_ago_is_unknown_and_a_lost_site_is_running_on_one_site(tmp_path, clock):
    process, url = _prometheus(tmp_path, _history(clock["now"] - 600, clock["outage"], None))
    try:
        status_file = _current(tmp_path / "out") / "status.json"
        assert _run(_config(tmp_path, url)).returncode == 0
        status = json.loads(status_file.read_text(encoding="utf-8"))
        assert status["state"] == "unknown" and status["monitoring"]["reason"] == "stale", status["monitoring"]
    finally:
        process.terminate()
        process.wait(timeout=20)
    lost = tmp_path / "lost"
    lost.mkdir()
    process, url = _prometheus(lost, _history(clock["now"], clock["outage"], clock["now"] - 300))
    try:
        assert _run(_config(lost, url)).returncode == 0
        status = json.loads((_current(lost / "out") / "status.json").read_text(encoding="utf-8"))
        assert status["services"][0]["state"] == "degraded"
        assert "Läuft an einem Standort" in (_current(lost / "out") / "de.html").read_text(encoding="utf-8")
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize(("change", "said"), [
    ({"incidents": [{**LAB_INCIDENTS[0], "start": "2026-11-28 06:00"}]}, "status_page_incidents[0].start: '2026-11-28 06:00' has no time zone"),
    ({"incidents": [{**LAB_INCIDENTS[0], "title": {"en": "Only English"}}]}, "status_page_incidents[0].title: give the text in each of"),
    ({"incidents": LAB_INCIDENTS * 2}, "status_page_incidents[1].id: '2026-11-28-database-upgrade' is used twice"),
    ({"incidents": [{**LAB_INCIDENTS[0], "services": ["mail"]}]}, "status_page_incidents[0].services: 'mail' is not one of"),
    ({"target": 100}, "status_page_target: 100 must be a percentage between 0 and 100"),
    ({"advice": {"en": "x", "fr": "y"}}, "status_page_outage_advice: give the text in each of en, fr, de"),
])
def test_a_wrong_configuration_is_refused_with_the_place_and_the_fix(tmp_path, change, said):
    result = subprocess.run(["python3", str(SCRIPT), "--check", "--config", str(_config(tmp_path, "http://127.0.0.1:1", **change))],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
