"""What the pki role decides from its probe: which certificates to issue, and why."""

from __future__ import annotations

from rempart.topology import entry_name

# Extended key usages as OpenSSL prints them (x509 -ext extendedKeyUsage), and as the CSR module names them.
USAGES = {"server": ("TLS Web Server Authentication", "serverAuth"), "client": ("TLS Web Client Authentication", "clientAuth")}


def _names(certificate: dict) -> list[str]:
    """Subject alternative names, as OpenSSL prints them."""
    return [f"DNS:{name}" for name in certificate.get("dns", [])] + [f"IP Address:{address}" for address in certificate.get("ip", [])]


def pki_subject_alt_names(certificate: dict) -> list[str]:
    """Subject alternative names, as community.crypto.openssl_csr_pipe takes them."""
    return [f"DNS:{name}" for name in certificate.get("dns", [])] + [f"IP:{address}" for address in certificate.get("ip", [])]


def pki_usages(certificate: dict) -> list[str]:
    return [USAGES[usage][1] for usage in certificate.get("usage", [])]


def _split(text: str) -> set[str]:
    return {part.strip() for part in text.split(",") if part.strip()}


def pki_reason(certificate: dict, found: dict | None) -> str:
    """Why this certificate must be issued (again), or '' when the one on the host is right."""
    if not found or not found.get("key"):
        return "no key yet"
    if not found.get("cert"):
        return "no certificate yet"
    if not found.get("same_key"):
        return "the certificate is not for this host's key"
    if not found.get("trusted"):
        return "not signed by the environment's CA"
    if found.get("subject") != f"CN={certificate['common_name']}":
        return f"subject {found.get('subject')!r} instead of CN={certificate['common_name']}"
    if _split(found.get("names", "")) != set(_names(certificate)):
        return f"names {found.get('names')!r} instead of {', '.join(_names(certificate))!r}"
    if _split(found.get("usage", "")) != {USAGES[usage][0] for usage in certificate.get("usage", [])}:
        return f"uses {found.get('usage')!r} instead of {', '.join(certificate.get('usage', []))}"
    if not found.get("fresh"):
        return f"ends on {found.get('end')}, within the renewal period"
    return ""


def pki_to_issue(certificates: list[dict], probe: dict) -> list[dict]:
    """The certificates to issue, each with its reason."""
    out = []
    for certificate in certificates:
        reason = pki_reason(certificate, probe.get(certificate["name"]))
        if reason:
            out.append({**certificate, "reason": reason})
    return out


def pki_floating_certificates(topology: dict, functions: list) -> list[dict]:
    """One server certificate per floating public address of the host's functions (the topology's
    ``floating``): named ``<function>-public``, for the entry point's names and its address."""
    out = []
    for function in functions or []:
        entry = (topology.get("floating") or {}).get(function)
        if not entry:
            continue
        names = list(entry.get("names") or [])
        out.append({"name": f"{function}-public", "common_name": entry_name(entry),
                    "dns": names, "ip": [str(entry["public"])], "usage": ["server"]})
    return out


class FilterModule:
    def filters(self):
        return {"pki_to_issue": pki_to_issue, "pki_subject_alt_names": pki_subject_alt_names, "pki_usages": pki_usages,
                "pki_floating_certificates": pki_floating_certificates}
