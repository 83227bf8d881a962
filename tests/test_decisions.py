"""docs/decisions.md: every decision that code and documents cite exists, and none is cited
as a "design decision" of a document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECISIONS = ROOT / "docs" / "decisions.md"
TREES = ("host", "rtl", "firmware", "tests", "bench", "docs", "README.md")
SUFFIXES = {".py", ".md", ".v", ".c", ".h", ".sh"}


def cited_files():
    for top in TREES:
        path = ROOT / top
        for f in [path] if path.is_file() else sorted(path.rglob("*")):
            if f.is_file() and f.suffix in SUFFIXES and f != Path(__file__).resolve():
                yield f, f.read_text(encoding="utf-8", errors="replace")


def test_every_cited_decision_has_an_anchor_and_a_numbered_heading():
    text = DECISIONS.read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    headings = {m.group(1) for m in re.finditer(r"^## (\d+)\. ", text, re.M)}
    assert headings and headings <= anchors
    numbers = sorted(int(h) for h in headings)
    assert numbers == list(range(1, len(numbers) + 1))  # numbered 1..N, none skipped
    cited = []
    for f, body in cited_files():
        for m in re.finditer(r"decisions\.md#([\w-]+)((?:, #\w+)*)", body):
            keys = [m.group(1)] + re.findall(r"#(\w+)", m.group(2))
            cited += [(f.relative_to(ROOT), k) for k in keys]
    for m in re.finditer(r"\]\(#(\w+)\)", text):  # links inside decisions.md
        cited.append((DECISIONS.relative_to(ROOT), m.group(1)))
    assert len(cited) > 10
    missing = [(str(f), k) for f, k in cited if k not in anchors]
    assert not missing


def test_no_comment_points_at_a_design_document_outside_the_repository():
    stale = [str(f.relative_to(ROOT)) for f, body in cited_files()
             if re.search(r"design decision \d|design card|\.\./design\.md|shared/seeds", body)]
    assert not stale
