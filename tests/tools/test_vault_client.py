"""The vault client hands Ansible the password from the environment, and never reads a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "bin" / "vault-client"


def run(args, env):
    return subprocess.run(
        [sys.executable, str(CLIENT), *args], capture_output=True, text=True, check=False,
        env={"PATH": "/nonexistent", **env}, stdin=subprocess.DEVNULL, start_new_session=True,
    )


def test_password_from_the_environment_variable_of_that_vault_id():
    result = run(["--vault-id", "dev"], {"REMPART_VAULT_PASSWORD_DEV": "s3cret", "REMPART_VAULT_PASSWORD_PROD": "other"})
    assert result.returncode == 0
    assert result.stdout == "s3cret\n"


def test_no_password_and_no_terminal_fails_with_the_ways_to_give_one():
    result = run(["--vault-id", "prod"], {})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "REMPART_VAULT_PASSWORD_PROD" in result.stderr and "pass" in result.stderr


def test_ansible_decrypts_with_it(tmp_path):
    """End to end: ansible-vault encrypts and decrypts through the client, for the right vault id only."""
    vault = Path(sys.executable).parent / "ansible-vault"
    secret = tmp_path / "secret.yml"
    secret.write_text("token: abc\n")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "REMPART_VAULT_PASSWORD_TEST": "pw-test"}
    subprocess.run([str(vault), "encrypt", "--vault-id", f"test@{CLIENT}", "--encrypt-vault-id", "test", str(secret)],
                   check=True, env=env, capture_output=True)
    assert secret.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;test")
    shown = subprocess.run([str(vault), "view", "--vault-id", f"test@{CLIENT}", str(secret)],
                           check=True, env=env, capture_output=True, text=True)
    assert shown.stdout == "token: abc\n"
    wrong = subprocess.run([str(vault), "view", "--vault-id", f"test@{CLIENT}", str(secret)], check=False,
                           env={**env, "REMPART_VAULT_PASSWORD_TEST": "nope"}, capture_output=True, text=True)
    assert wrong.returncode != 0
