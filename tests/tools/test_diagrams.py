"""The topology's diagrams (SVG drawn when the site is built): every host, zone and flow of the data is
drawn, nothing is fetched when a page shows them, and the topology page embeds them (DOC, SEG)."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest

from rempart import mkdocs_hooks, topology
from rempart.roledocs import topology_page
from rempart.topology.diagrams import flows_svg, network_svg

pytestmark = [pytest.mark.DOC, pytest.mark.SEG]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def lab():
    return topology.load_all()["lab"]


def _texts(svg: str) -> list[str]:
    return [element.text or "" for element in ET.fromstring(svg).iter(f"{SVG}text")]


def test_network_diagram_draws_every_host_in_its_site_and_zone(lab):
    svg = network_svg(lab, "lab")
    texts = _texts(svg)  # well-formed XML, or this raises
    for name, host in lab["hosts"].items():
        assert name in texts and f"overlay {host['overlay']}" in texts
    assert all(site in texts for site in lab["sites"]) and all(f"zone {zone}" in texts for zone in lab["zones"])
    assert any(lab["floating"]["waf"]["public"] in text for text in texts)
    assert "href" not in svg  # nothing to fetch, no link out


def test_flow_diagram_has_an_arrow_per_flow_and_dashes_the_planned_ones(lab):
    flows = lab["flows"]
    between = [n for n, flow in enumerate(flows) if flow["from"] != flow["to"]]
    planned = between[0]
    svg = flows_svg(lab, {planned: "planned"})
    arrows = [p for p in ET.fromstring(svg).iter(f"{SVG}path") if p.get("marker-end")]
    assert len(arrows) == len(between)
    assert sum(1 for p in arrows if p.get("stroke-dasharray")) == 1
    # A flow within one function is written on it.
    looped = next(flow for flow in flows if flow["from"] == flow["to"])
    assert any(text.startswith("↻ ") and ", ".join(looped["services"]) in text for text in _texts(svg))


def test_a_new_host_appears_in_the_drawing(lab):
    grown = copy.deepcopy(lab)
    many = ["monitoring", "log_collector", "backup_repository", "witness", "etcd", "bastion", "app"]
    grown["hosts"]["app3"] = {**lab["hosts"]["app1"], "overlay": "10.232.0.23", "functions": many}
    texts = _texts(network_svg(grown, "lab"))
    assert "app3" in texts
    # Every function is written, however many a host has: the boxes grow, nothing is cut.
    assert set(many) <= {word for text in texts for word in text.split(", ")}


def test_the_site_gets_a_network_diagram_per_environment_and_the_page_embeds_them():
    drawn = mkdocs_hooks.diagrams()
    environments = [env for env in topology.ENVIRONMENTS if env in topology.load_all()]
    assert set(drawn) == {f"diagrams/network-{env}.svg" for env in environments} | {"diagrams/flows.svg"}
    page = topology_page()
    assert all(f"](diagrams/network-{env}.svg)" in page for env in environments)
    assert "](diagrams/flows.svg)" in page
