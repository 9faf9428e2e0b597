"""The requirements page: IDs the same everywhere, implementations from tags, tests from markers,
results from the results files, and planned requirements said to be planned (DOC)."""

from __future__ import annotations

import textwrap

import pytest

from rempart import traceability
from rempart.topology import docs as topology_docs

pytestmark = pytest.mark.DOC


def test_the_requirement_ids_are_the_schema_s_and_pytest_s_and_every_text_and_path_is_there():
    assert traceability.check(traceability.load_requirements()) == []


def test_a_missing_or_extra_id_is_refused():
    requirements = traceability.load_requirements()
    errors = traceability.check(requirements[:-1])
    assert len(errors) == 1 and "the topology schema's requirement vocabulary" in errors[0]


def test_markers_come_from_the_module_and_from_each_test():
    source = textwrap.dedent("""
        import pytest
        pytestmark = [pytest.mark.SEG, pytest.mark.LINK]

        @pytest.mark.ENC
        @pytest.mark.parametrize("x", [1])
        def test_one(x):
            pass

        def test_two():
            pass

        def helper():
            pass
    """)
    assert traceability.markers_of_tests(source) == {"test_one": ["SEG", "LINK", "ENC", "parametrize"], "test_two": ["SEG", "LINK"]}


def test_implementations_come_from_tags_of_phases_and_tasks(tmp_path):
    tasks = tmp_path / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(textwrap.dedent("""
        - name: Configure the thing
          ansible.builtin.import_tasks: configure.yml
          tags: [demo, SEG, ENC]
        - name: Untagged
          ansible.builtin.debug: {msg: x}
        - name: A block
          tags: HA
          block:
            - name: Inside, inherits HA, adds nothing new
              ansible.builtin.debug: {msg: x}
              tags: [HA]
    """), encoding="utf-8")
    found = traceability.implementations(["SEG", "ENC", "HA", "WAF"], roles_dir=tmp_path)
    assert found == {"SEG": {"demo": ["Configure the thing"]}, "ENC": {"demo": ["Configure the thing"]},
                     "HA": {"demo": ["A block"]}, "WAF": {}}


def test_the_page_marks_what_nothing_implements_as_planned_and_shows_the_rest():
    requirements = [{"id": "SEG", "requirement": "Segmented.", "done": "Zones."},
                    {"id": "WAF", "requirement": "A WAF.", "done": "Blocked."}]
    text = traceability.render(requirements, {"SEG": {"firewall": ["Rules"]}, "WAF": {}},
                               {"SEG": {"tests/lab/test_segmentation.py": ["test_pairs"]}, "WAF": {}},
                               {"SEG": ["a figure (commit `abc1234`)"], "WAF": []})
    seg, waf = text.split("## SEG")[1].split("## WAF")
    assert "role [`firewall`](roles/firewall.md): *Rules*" in seg
    assert "`tests/lab/test_segmentation.py`: `test_pairs`" in seg and "commit `abc1234`" in seg
    assert '!!! note "Planned"' in waf and "No test carries" in waf
    assert "| [WAF](#waf) | A WAF. | **planned** | 0 | – |" in text


def test_what_is_built_comes_from_the_roles_and_the_playbooks(tmp_path):
    (tmp_path / "roles" / "demo" / "defaults").mkdir(parents=True)
    (tmp_path / "roles" / "demo" / "defaults" / "main.yml").write_text(
        "demo_port: \"{{ rempart_topology.services['postgresql'].ports | first }}\"\n"
        "demo_ssh: \"{{ rempart_topology.services.ssh.ports | first }}\"\n"
        "demo_peers: \"{{ groups['etcd'] }}\"\n", encoding="utf-8")
    (tmp_path / "roles" / "probe" / "defaults").mkdir(parents=True)
    (tmp_path / "roles" / "probe" / "defaults" / "main.yml").write_text(
        "probe_scrape_services: [node-exporter, patroni-api]  # what it scrapes\nprobe_upstream_service: app\n", encoding="utf-8")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "tier.yml").write_text(
        "- name: A tier\n  hosts: db:backup_repository:!bastion\n  roles: [demo]\n"
        "- name: Probes\n  hosts: monitoring\n  tasks:\n    - name: The probe\n      ansible.builtin.include_role:\n        name: probe\n",
        encoding="utf-8")
    built = topology_docs.what_is_built(tmp_path)
    assert built.services == {"postgresql", "ssh"}
    assert built.groups == {"etcd", "db", "backup_repository", "bastion", "monitoring"}
    assert built.used == {"db": {"postgresql", "ssh"}, "backup_repository": {"postgresql", "ssh"},
                          "monitoring": {"node-exporter", "patroni-api", "app"}}


@pytest.mark.parametrize(("flow", "state"), [
    ({"from": "db", "to": "db", "services": ["postgresql"]}, "built"),
    ({"from": "operators", "to": "bastion", "services": ["ssh"]}, "built"),
    ({"from": "app", "to": "db", "services": ["postgresql"]}, "server side built"),
    ({"from": "db", "to": "app", "services": ["postgresql"]}, "planned"),
    ({"from": "internet", "to": "waf", "services": ["https"]}, "planned"),
])
def test_a_flow_is_built_only_when_its_service_is_used_and_its_ends_exist(flow, state):
    assert topology_docs.flow_state(flow, {"postgresql", "ssh"}, {"db", "bastion"}) == state


@pytest.mark.parametrize(("flow", "state"), [
    ({"from": "monitoring", "to": "all", "services": ["node-exporter", "icmp"]}, "built"),
    ({"from": "monitoring", "to": "db", "services": ["patroni-api", "postgres-exporter"]}, "server side built"),
    ({"from": "bastion", "to": "all", "services": ["ssh"]}, "built"),
])
def test_the_sending_end_must_use_one_of_the_flow_s_services(flow, state):
    """A function that exists (Prometheus on monitoring) does not make every flow it sends built: its
    roles must name one of the flow's services (node-exporter, not yet the Patroni API)."""
    used = {"monitoring": {"node-exporter", "prometheus"}, "all": {"ssh"}}
    built = topology_docs.flow_state(flow, {"node-exporter", "patroni-api", "ssh"}, {"monitoring", "db", "bastion"}, used)
    assert built == state
