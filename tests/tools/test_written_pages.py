"""Written pages that name a test (`path/to/test_file.py::test_name`) name one that exists: a page
cannot keep citing, as proof, a test that was renamed or removed (DOC)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rempart.traceability import REPO, markers_of_tests

DOCS = REPO / "docs"
REFERENCE = re.compile(r"`((?:tests|roles)/[\w./-]+\.py)::(\w+)`")

# ISMS: the Annex A page (docs/iso-27001.md) names its evidence as tests; this proves each exists.
pytestmark = [pytest.mark.DOC, pytest.mark.ISMS]


def missing_references(page: Path, repo: Path = REPO) -> list[str]:
    """The `file::test` references of a page whose file or test does not exist."""
    missing = []
    for file, name in REFERENCE.findall(page.read_text(encoding="utf-8")):
        path = repo / file
        if not path.is_file() or name not in markers_of_tests(path.read_text(encoding="utf-8")):
            missing.append(f"{file}::{name}")
    return missing


def test_every_test_a_page_names_exists():
    pages = sorted(DOCS.rglob("*.md"))
    named = {page: REFERENCE.findall(page.read_text(encoding="utf-8")) for page in pages}
    assert sum(len(refs) for refs in named.values()) >= 10, "no page names tests any more: is the pattern still right?"
    stale = {str(page.relative_to(REPO)): missing for page in pages if (missing := missing_references(page))}
    assert not stale, f"pages name tests that do not exist (rename them on the page): {stale}"


def test_a_renamed_test_is_reported(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_kept():\n    pass\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("| a | `tests/test_x.py::test_kept`, `tests/test_x.py::test_gone`, `tests/test_y.py::test_z` |\n", encoding="utf-8")
    assert missing_references(page, tmp_path) == ["tests/test_x.py::test_gone", "tests/test_y.py::test_z"]
