"""The docs site as a reader gets it: built from this checkout, served on the loopback, opened in
Debian's headless chromium. The pages a reviewer starts from render, the diagrams are drawn, searching a
variable's name finds its role's page, every page names its commit, and nothing is fetched from another
host. Screenshots go to build/screenshots/ (DOC)."""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from rempart import mkdocs_hooks
from rempart.browser import Browser

pytestmark = pytest.mark.DOC
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "build" / "screenshots"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built with the repository's mkdocs.yml (hooks included), served on a free loopback port."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
                           cwd=REPO, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *_args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with Browser(width=1280, height=900) as opened:
        yield opened


def _foreign_requests(browser: Browser, origin: str) -> list[str]:
    return browser.evaluate(
        f"performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith({origin!r}) && !n.startsWith('data:'))")


@pytest.mark.parametrize(("page", "shows"), [
    ("index.html", "What the platform is made of"),
    ("requirements.html", "Requirements and traceability"),
    ("hardening.html", "SSH server (role sshd)"),
    ("roles/waf.html", "waf_paranoia_level"),
])
def test_a_reviewers_pages_render_with_their_commit_and_nothing_from_elsewhere(site, browser, page, shows):
    browser.open(f"{site}/{page}")
    browser.wait_for(f"document.body.innerText.includes({shows!r})")
    assert mkdocs_hooks.stamp() in browser.evaluate("document.querySelector('.md-footer-meta, footer').innerText")
    # The content column is wide enough for the tables (at 1280 px, not the theme's narrow default).
    assert browser.evaluate("document.querySelector('.md-content').getBoundingClientRect().width") > 900
    assert _foreign_requests(browser, site) == []
    browser.screenshot(SHOTS / page.replace("/", "-").replace(".html", ".png"))


def test_the_topology_diagrams_are_drawn_and_visible(site, browser):
    browser.open(f"{site}/topology.html")
    images = browser.evaluate("Array.from(document.querySelectorAll('img[src^=\"diagrams/\"]'))"
                              ".map(i => [i.getAttribute('src'), i.complete && i.naturalWidth, i.getBoundingClientRect().width])")
    assert {src for src, _, _ in images} >= {"diagrams/flows.svg", "diagrams/network-lab.svg"}
    assert all(loaded > 0 and shown > 300 for _, loaded, shown in images), images
    browser.evaluate("document.querySelector('img[src=\"diagrams/flows.svg\"]').scrollIntoView()")
    browser.screenshot(SHOTS / "topology-flows.png")


def test_searching_a_variables_name_finds_its_roles_page(site, browser):
    variable = next(iter(yaml.safe_load((REPO / "roles" / "sshd" / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
                         ["argument_specs"]["main"]["options"]))
    browser.open(f"{site}/index.html?q={variable}")
    browser.wait_for("document.querySelectorAll('.md-search-result__item').length > 0")
    found = browser.evaluate("Array.from(document.querySelectorAll('.md-search-result__item a')).map(a => a.getAttribute('href'))")
    assert any(href.split("#")[0].endswith("/roles/sshd.html") for href in found), found
    browser.screenshot(SHOTS / "search.png")


@pytest.mark.parametrize("page", ["asvs.html", "owasp-top-10.html", "iso-27001.html", "threat-model.html", "runbooks.html", "roles/app.html"])
def test_tables_naming_tests_and_paths_fit_the_column_at_1280_px(site, browser, page):
    """The pages whose tables name tests, paths and variables: they wrap at the identifiers' separators
    (the hooks' <wbr>) instead of scrolling sideways, and no identifier breaks mid-word."""
    browser.open(f"{site}/{page}")
    browser.wait_for("document.querySelectorAll('.md-typeset__scrollwrap').length > 0")
    wide = browser.evaluate("Array.from(document.querySelectorAll('.md-typeset__scrollwrap'))"
                            ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.querySelector('th') && e.querySelector('th').innerText)")
    assert wide == [], f"tables wider than the column on {page} (first heading): {wide}"
    assert browser.evaluate("document.querySelectorAll('td code wbr').length") > 0
