"""Every relative link in README.md and docs/*.md points at a file or folder of the repository."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT)
                              for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]
# [text](target) and ![alt](target); the target ends at the first space or ')'
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def relative_links(text: str) -> list[str]:
    """The link targets of a Markdown text that name a path (no URL, no in-page anchor), without
    their #fragment; links inside code spans and fenced blocks are not links."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def test_relative_links_parse():
    text = ("[a](docs/x.md) ![b](reproduction/p.png) [c](https://e.org/y) [d](#top) "
            "[e](../f.md#sec \"title\") `[g](not/a/link.md)`\n```\n[h](nor/this)\n```\n")
    assert relative_links(text) == ["docs/x.md", "reproduction/p.png", "../f.md"]


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        links = relative_links(f.read())
    base = os.path.dirname(os.path.join(ROOT, doc))
    missing = [t for t in links if not os.path.exists(os.path.normpath(os.path.join(base, t)))]
    assert not missing, f"{doc}: links to missing files: {missing}"
