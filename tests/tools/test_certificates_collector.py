"""The certificates' collector of role pki (MON, category software), run here on certificates openssl
makes: each certificate's end is its leaf's (the file's first), never a chain's earliest; a missing
or broken file is said unreadable; what it writes is valid text exposition (promtool)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rempart.engine import PROMTOOL

pytestmark = [pytest.mark.MON, pytest.mark.ENC]

SCRIPT = Path(__file__).resolve().parents[2] / "roles/pki/files/rempart-certificates-metrics"
DAY = 86400


def certificate(folder: Path, name: str, days: int, subject: str) -> Path:
    path = folder / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(folder / f"{name}.key"), "-out", str(path), "-days", str(days), "-subj", subject],
                   check=True, capture_output=True)
    return path


def samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture()
def written(tmp_path):
    ca = certificate(tmp_path, "ca", 3650, "/CN=Rempart test CA")
    leaf = certificate(tmp_path, "host", 90, '/CN=db1/O=quote " and \\\\ back')  # -subj unescapes: one backslash
    short = certificate(tmp_path, "other", 5, "/CN=intermediate")
    # The host's file holds its chain after it: an intermediate that ends in five days.
    leaf.write_text(leaf.read_text() + short.read_text())
    (tmp_path / "broken.crt").write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    out = tmp_path / "metrics" / "rempart_certificates.prom"
    subprocess.run([sys.executable, str(SCRIPT), str(out), "--renew-days=30", f"--certificate=host={leaf}",
                    f"--certificate=missing={tmp_path / 'missing.crt'}", f"--certificate=broken={tmp_path / 'broken.crt'}",
                    f"--ca={ca}", "--ca-renew-days=180"], check=True, timeout=60)
    return out


def test_each_certificate_ends_when_its_leaf_ends_not_its_chain(written):
    found = samples(written.read_text())
    host = next(value for key, value in found.items() if key.startswith('rempart_certificate_not_after_seconds{certificate="host"'))
    ca = found['rempart_certificate_not_after_seconds{certificate="ca",subject="CN=Rempart test CA"}']
    assert abs(host - (time.time() + 90 * DAY)) < 120
    assert abs(ca - (time.time() + 3650 * DAY)) < 120


def test_renewal_is_due_per_certificate_and_the_ca_has_its_own(written):
    found = samples(written.read_text())
    assert found['rempart_certificate_renew_before_seconds{certificate="host"}'] == 30 * DAY
    assert found['rempart_certificate_renew_before_seconds{certificate="ca"}'] == 180 * DAY


def test_a_missing_or_broken_file_is_unreadable_and_has_no_end(written):
    found = samples(written.read_text())
    assert {key: value for key, value in found.items() if key.startswith("rempart_certificate_readable")} == {
        'rempart_certificate_readable{certificate="host"}': 1, 'rempart_certificate_readable{certificate="missing"}': 0,
        'rempart_certificate_readable{certificate="broken"}': 0, 'rempart_certificate_readable{certificate="ca"}': 1}
    assert not [key for key in found if "not_after" in key and ('"missing"' in key or '"broken"' in key)]


def test_what_it_writes_is_valid_exposition_with_labels_escaped(written):
    text = written.read_text()
    # openssl's RFC 2253 form escapes the quote and the backslash; the exposition escapes both again.
    rfc2253 = 'O=quote \\" and \\\\ back,CN=db1'
    assert 'subject="' + rfc2253.replace("\\", "\\\\").replace('"', '\\"') + '"' in text
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL} is missing: `make tools` extracts it from Debian's prometheus package")
    checked = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    assert oct(written.stat().st_mode & 0o777) == "0o644"
