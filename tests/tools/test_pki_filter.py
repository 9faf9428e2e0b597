"""The pki role's decision: which certificates to issue again, and the reason it gives (ENC)."""

from __future__ import annotations

import pytest

from rempart.roledocs import filter_plugin

pki = filter_plugin("pki")

pytestmark = pytest.mark.ENC

WANTED = {"name": "host", "common_name": "db1", "dns": ["db1"], "ip": ["10.232.0.31"], "usage": ["server", "client"]}
RIGHT = {
    "key": True, "cert": True, "same_key": True, "trusted": True, "fresh": True, "subject": "CN=db1",
    "end": "Feb 28 12:00:00 2027 GMT", "names": "DNS:db1, IP Address:10.232.0.31",
    "usage": "TLS Web Server Authentication, TLS Web Client Authentication",
}


def test_the_right_certificate_is_left_alone():
    assert pki.pki_to_issue([WANTED], {"host": RIGHT}) == []


def test_names_and_uses_in_another_order_are_the_same():
    found = {**RIGHT, "names": "IP Address:10.232.0.31, DNS:db1",
             "usage": "TLS Web Client Authentication, TLS Web Server Authentication"}
    assert pki.pki_to_issue([WANTED], {"host": found}) == []


@pytest.mark.parametrize(("change", "reason"), [
    (None, "no key yet"),
    ({"key": False}, "no key yet"),
    ({"cert": False}, "no certificate yet"),
    ({"same_key": False}, "not for this host's key"),
    ({"trusted": False}, "not signed by the environment's CA"),
    ({"subject": "CN=db2"}, "subject 'CN=db2'"),
    ({"names": "DNS:db1, IP Address:10.231.0.31"}, "names 'DNS:db1, IP Address:10.231.0.31'"),
    ({"usage": "TLS Web Server Authentication"}, "uses 'TLS Web Server Authentication'"),
    ({"fresh": False}, "ends on Feb 28 12:00:00 2027 GMT, within the renewal period"),
])
def test_each_difference_issues_again_and_says_why(change, reason):
    probe = {} if change is None else {"host": {**RIGHT, **change}}
    issued = pki.pki_to_issue([WANTED], probe)
    assert [entry["name"] for entry in issued] == ["host"]
    assert reason in issued[0]["reason"]


def test_request_names_and_uses_as_the_crypto_modules_take_them():
    assert pki.pki_subject_alt_names(WANTED) == ["DNS:db1", "IP:10.232.0.31"]
    assert pki.pki_usages(WANTED) == ["serverAuth", "clientAuth"]


def test_an_entry_point_gets_a_server_certificate_for_its_names_and_its_floating_address():
    topology = {"floating": {"waf": {"public": "192.0.2.130", "names": ["eservice.example.ch"]}}}
    assert pki.pki_floating_certificates(topology, ["waf"]) == [
        {"name": "waf-public", "common_name": "eservice.example.ch", "dns": ["eservice.example.ch"], "ip": ["192.0.2.130"],
         "usage": ["server"]}]
    # Without a name the address is the name; a host without such a function gets none.
    assert pki.pki_floating_certificates({"floating": {"waf": {"public": "10.233.0.10"}}}, ["waf"])[0]["common_name"] == "10.233.0.10"
    assert pki.pki_floating_certificates(topology, ["app"]) == []
