"""Filter ``rempart_exporter_web_config``: the web configuration (Prometheus exporter-toolkit) every exporter of the
platform serves with: TLS with the host's certificate of role pki, and only clients that present a certificate of
the environment's CA (the monitoring hosts, which the firewall lets in). One text for every exporter::

    "{{ 'node_exporter' | rempart_exporter_web_config(cert='/etc/rempart/pki/host.crt',
                                                     key='/etc/rempart/pki/private/host.key', ca='/etc/rempart/pki/ca.crt') }}"
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError


def rempart_exporter_web_config(role, cert, key, ca):
    for name, value in (("role", role), ("cert", cert), ("key", key), ("ca", ca)):
        if not isinstance(value, str) or not value or "\n" in value:
            raise AnsibleFilterError(f"rempart_exporter_web_config: {name} must be one line of text, not {value!r}")
    return "\n".join([
        f"# Written by Ansible (role {role}): the exporter's TLS (exporter web config), the host's certificate of",
        "# role pki, and only clients with a certificate of the environment's CA (the monitoring hosts).",
        "tls_server_config:",
        f"  cert_file: {json.dumps(cert)}",
        f"  key_file: {json.dumps(key)}",
        "  client_auth_type: RequireAndVerifyClientCert",
        f"  client_ca_file: {json.dumps(ca)}",
        "  min_version: TLS12",
        "http_server_config:",
        "  http2: false",
        "",
    ])


class FilterModule:
    def filters(self):
        return {"rempart_exporter_web_config": rempart_exporter_web_config}
