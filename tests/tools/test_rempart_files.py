"""The rempart_files module, run by Ansible on this machine: writes, reports, validates, dry-runs."""

from __future__ import annotations

import getpass
import grp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ME = getpass.getuser()
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def run(tmp_path: Path, files: list[dict], *options: str) -> dict:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - rempart_files:\n        files: " + json.dumps(files) + "\n      register: result\n"
        "    - ansible.builtin.copy:\n        content: '{{ result | to_json }}'\n"
        f"        dest: {tmp_path / 'result.json'}\n        mode: '0600'\n      check_mode: false\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook), *options],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )
    if completed.returncode != 0:
        return {"failed": True, "output": completed.stdout + completed.stderr}
    return json.loads((tmp_path / "result.json").read_text())


def spec(path: Path, content: str, mode: str = "0640", **extra) -> dict:
    return {"path": str(path), "content": content, "owner": ME, "group": MY_GROUP, "mode": mode, **extra}


def test_writes_once_then_reports_nothing_to_do(tmp_path):
    target = tmp_path / "etc" / "one.conf"
    first = run(tmp_path, [spec(target, "a = 1\n")])
    assert first["changed"] and first["changed_paths"] == [str(target)]
    assert target.read_text() == "a = 1\n"
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    second = run(tmp_path, [spec(target, "a = 1\n")])
    assert not second["changed"] and second["changed_paths"] == []


def test_a_mode_change_alone_is_a_change(tmp_path):
    target = tmp_path / "two.conf"
    run(tmp_path, [spec(target, "x\n")])
    target.chmod(0o666)
    result = run(tmp_path, [spec(target, "x\n")])
    assert result["changed_paths"] == [str(target)]
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_file_that_fails_validation_never_goes_live(tmp_path):
    target = tmp_path / "checked.conf"
    run(tmp_path, [spec(target, "good\n")])
    result = run(tmp_path, [spec(target, "bad\n", validate="grep -q good %s")])
    assert result.get("failed")
    assert "failed validation" in result["output"] and "unchanged" in result["output"]
    assert target.read_text() == "good\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rempart-")]


def test_check_mode_reports_and_touches_nothing(tmp_path):
    target = tmp_path / "dry.conf"
    gone = tmp_path / "old.deny"
    gone.write_text("x")
    result = run(tmp_path, [spec(target, "new\n"), {"path": str(gone), "state": "absent"}], "--check", "--diff")
    assert result["changed_paths"] == [str(target), str(gone)]
    assert not target.exists() and gone.exists()


def test_absent_removes(tmp_path):
    gone = tmp_path / "cron.deny"
    gone.write_text("x")
    assert run(tmp_path, [{"path": str(gone), "state": "absent"}])["changed"]
    assert not gone.exists()


@pytest.mark.parametrize("bad", [{"path": "relative/path", "content": "x"}, {"path": "/tmp/x", "content": "x", "owner": "no-such-user-zz"}])
def test_bad_input_fails_with_the_path_named(tmp_path, bad):
    result = run(tmp_path, [bad])
    assert result.get("failed")
    assert bad["path"] in result["output"]


def test_directories_and_links_in_list_order(tmp_path):
    folder = tmp_path / "conf.d"
    inside = folder / "50-x.conf"
    link = tmp_path / "localtime"
    link.write_text("a file where the link goes")
    entries = [
        {"path": str(folder), "state": "directory", "owner": ME, "group": MY_GROUP, "mode": "0750"},
        spec(inside, "x\n"),
        {"path": str(link), "state": "link", "src": str(inside)},
    ]
    first = run(tmp_path, entries)
    assert first["changed_paths"] == [str(folder), str(inside), str(link)]
    assert folder.stat().st_mode & 0o777 == 0o750
    assert os.readlink(link) == str(inside)
    assert run(tmp_path, entries)["changed_paths"] == []
    folder.chmod(0o755)
    assert run(tmp_path, entries, "--check")["changed_paths"] == [str(folder)]
    assert folder.stat().st_mode & 0o777 == 0o755


def test_a_file_never_replaces_a_directory(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    result = run(tmp_path, [spec(folder, "x\n")])
    assert result.get("failed") and f"{folder} is a directory" in result["output"]
