"""The one web configuration every exporter of the platform serves with (filter rempart_exporter_web_config, MON, ENC):
TLS with the host's certificate, a client certificate of the environment's CA required, whatever the paths hold."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

pytestmark = [pytest.mark.MON, pytest.mark.ENC]
REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("rempart_exporter", REPO / "plugins/filter/rempart_exporter.py")
exporter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exporter)


def test_the_web_configuration_requires_a_client_certificate_of_the_ca():
    text = exporter.rempart_exporter_web_config("postgres_exporter", "/etc/rempart/pki/host.crt",
                                                "/etc/rempart/pki/private/host.key", "/etc/rempart/pki/ca.crt")
    assert "(role postgres_exporter)" in text.splitlines()[0]
    assert yaml.safe_load(text) == {
        "tls_server_config": {"cert_file": "/etc/rempart/pki/host.crt", "key_file": "/etc/rempart/pki/private/host.key",
                              "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "/etc/rempart/pki/ca.crt",
                              "min_version": "TLS12"},
        "http_server_config": {"http2": False}}


def test_a_path_reaches_the_exporter_as_written_and_a_second_line_is_refused():
    odd = "/etc/pki dir/it's: #1 \"x\".crt"
    assert yaml.safe_load(exporter.rempart_exporter_web_config("x", odd, odd, odd))["tls_server_config"]["cert_file"] == odd
    with pytest.raises(AnsibleFilterError, match="cert must be one line"):
        exporter.rempart_exporter_web_config("x", "/a.crt\nclient_auth_type: NoClientCert", "/k", "/ca")
