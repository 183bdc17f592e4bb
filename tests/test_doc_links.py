"""README.md and docs/*.md name only files that exist: every relative link, and every repository
path written in a code span (`kdjax/...`, `launch/...`, `experiments/...`, ...), resolves."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "launch/tpu/README.md",
        *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]
# a path in a code span: repository-relative, under one of the top-level folders
REPO_PATH = re.compile(r"^(?:kdjax|launch|experiments|papers|bench|tests|docs)/[\w./-]*$")
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


def code_paths(text: str) -> list[str]:
    """Repository paths named in the code spans of a Markdown text (outside fenced blocks, which
    hold commands), without a `:arg` suffix; templates (`<name>`, `*`, `{...}`) are skipped."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out = []
    for span in re.findall(r"`([^`\n]+)`", text):
        for tok in re.split(r"[\s,;()=]+", span):
            tok = tok.strip("'\"").split(":")[0].rstrip(".")
            if REPO_PATH.match(tok) and not re.search(r"[<>*{}]", tok):
                out.append(tok)
    return out


def test_relative_links_parse():
    text = ("[a](docs/x.md) ![b](reproduction/p.png) [c](https://e.org/y) [d](#top) "
            "[e](../f.md#sec \"title\") `[g](not/a/link.md)`\n```\n[h](nor/this)\n```\n")
    assert relative_links(text) == ["docs/x.md", "reproduction/p.png", "../f.md"]


def test_code_paths_parse():
    text = ("`kdjax/run.py`, `python -m launch.main --config=experiments/quickstart.py:full` "
            "`kdjax/methods/<name>/` `pip install x` `runs/x` `--workdir=docs/x.md`\n"
            "```\n`kdjax/not/this.py`\n```\n")
    assert code_paths(text) == ["kdjax/run.py", "experiments/quickstart.py", "docs/x.md"]


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        links = relative_links(f.read())
    base = os.path.dirname(os.path.join(ROOT, doc))
    missing = [t for t in links if not os.path.exists(os.path.normpath(os.path.join(base, t)))]
    assert not missing, f"{doc}: links to missing files: {missing}"


# docs/errors.md names bad inputs on purpose; docs/reproduction.md is generated from the registry,
# where a not-yet-implemented entry names the config it lacks
@pytest.mark.parametrize("doc", [d for d in DOCS
                                 if d not in ("docs/errors.md", "docs/reproduction.md")])
def test_every_path_in_a_code_span_exists(doc):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        paths = code_paths(f.read())
    missing = [p for p in paths if not os.path.exists(os.path.join(ROOT, p))]
    assert not missing, f"{doc}: names files that do not exist: {missing}"
