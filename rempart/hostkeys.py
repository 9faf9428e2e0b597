"""The hosts' SSH keys an environment's operators trust: ``rempart_ssh_host_keys``, one public key per host of the
topology and per outside prober, read from the machine's console (never from the connection itself) and written
into the operators' ``known_hosts`` by ``playbooks/tasks/ssh-config.yml``.

``problems`` says what is wrong with them, each problem a sentence naming the host and the fix, so that a run
stops before it trusts a key it should not (or connects to a host whose key nobody recorded)."""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping

# The key types the sshd role serves (sshd_host_key_types: ed25519, rsa), by the name OpenSSH writes them with.
KEY_TYPES = ("ssh-ed25519", "ssh-rsa")
HOW = ("read it on the host's console, never over the network: `cat /etc/ssh/ssh_host_ed25519_key.pub` "
       "(or the provider's first-boot output)")


def _fields(blob: str) -> list[bytes] | None:
    """The SSH strings a base64 key blob is made of (RFC 4253: a length, then that many bytes), or None."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return None
    fields = []
    while raw:
        if len(raw) < 4:
            return None
        (length,) = struct.unpack(">I", raw[:4])
        if length > len(raw) - 4:
            return None
        fields.append(raw[4:4 + length])
        raw = raw[4 + length:]
    return fields


def is_public_key(line: str) -> bool:
    """Whether ``line`` is ``<type> <base64> [comment]`` of a whole key of a type sshd serves: an ed25519 key
    (its type and 32 bytes) or an RSA one (its type, exponent and modulus), the type inside the same as outside."""
    words = str(line).split()
    if len(words) < 2 or words[0] not in KEY_TYPES:
        return False
    fields = _fields(words[1])
    if not fields or fields[0] != words[0].encode():
        return False
    if words[0] == "ssh-ed25519":
        return len(fields) == 2 and len(fields[1]) == 32
    return len(fields) == 3


def problems(keys, names: list[str], where: str) -> list[str]:
    """What is wrong with ``keys`` (host name → ``"<type> <base64> [comment]"``) for the machines ``names``:
    machines without a key, names that are no machine of the environment, lines that are no public key."""
    if not isinstance(keys, Mapping):
        kind = "a list" if isinstance(keys, list) else "a string" if isinstance(keys, str) else type(keys).__name__
        return [f"{where}: rempart_ssh_host_keys must map each host's name to its public key (`db1: ssh-ed25519 AAAA...`), "
                f"not {kind}."]
    keys = {str(name): key for name, key in keys.items()}
    found = []
    missing = [name for name in names if not keys.get(name)]
    if missing:
        found.append(f"{where}: rempart_ssh_host_keys has no key for {', '.join(missing)}: {HOW}; "
                     f"then add `{missing[0]}: ssh-ed25519 AAAA...`.")
    unknown = sorted(set(keys) - set(names))
    if unknown:
        found.append(f"{where}: rempart_ssh_host_keys names {', '.join(unknown)}, which the topology does not hold "
                     f"(its hosts: {', '.join(names)}): remove or correct the name.")
    for name in names:
        if keys.get(name) and not is_public_key(keys[name]):
            found.append(f"{where}: rempart_ssh_host_keys.{name} is no whole {' or '.join(KEY_TYPES)} public key "
                         f"(`<type> <base64>`, as in the host's /etc/ssh/ssh_host_*_key.pub): {HOW}.")
    return found
