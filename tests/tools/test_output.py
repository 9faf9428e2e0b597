"""What an operator sees: expected probing is one plain line, a real failure stays a red fatal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Probe | does the thing answer?
      ansible.builtin.command: "false"
      changed_when: false
      ignore_errors: true
      vars:
        rempart_probe: the thing does not answer yet; the other way is used
    - name: Unmarked | a failure nobody expected, ignored
      ansible.builtin.command: "false"
      changed_when: false
      ignore_errors: true
    - name: Probe | a real failure of a probing task that does not expect it
      ansible.builtin.command: "false"
      changed_when: false
      vars:
        rempart_probe: never shown
"""


def test_expected_probing_is_one_plain_line_and_real_failures_stay_loud(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "probe: [localhost]: the thing does not answer yet; the other way is used" in output
    # The marked, expected negative answer prints no fatal; the two others do, in full.
    assert output.count("fatal: [localhost]: FAILED!") == 2, output
    assert "never shown" not in output


WAIT = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Wait | the file appears (written on the third attempt)
      ansible.builtin.shell: "n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}; test $n -ge 2"
      register: waited
      changed_when: false
      retries: 5
      delay: 0
      until: waited.rc == 0
      vars:
        rempart_probe: the file is not there yet
    - name: Wait | an unmarked wait keeps Ansible's lines
      ansible.builtin.command: "false"
      register: unmarked
      changed_when: false
      retries: 1
      delay: 0
      until: unmarked.rc == 0
      ignore_errors: true
"""


def test_an_expected_wait_is_one_plain_line_not_a_retry_per_attempt(tmp_path):
    playbook = tmp_path / "wait.yml"
    playbook.write_text(WAIT.format(count=tmp_path / "count"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )
    output = result.stdout + result.stderr
    assert output.count("waiting: [localhost]: the file is not there yet") == 1, output
    assert output.count("FAILED - RETRYING") == 1, output  # the unmarked wait's single retry
