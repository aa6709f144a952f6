"""The documentation: links that resolve, a README a newcomer can read, contract pages that match the code."""

import re
import subprocess
from pathlib import Path

import pytest

from edgeemo import bundle, messages
from offline.data import dataset

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_MAX_LINES = 220
CONTRACTS = {  # page -> (the version key it names, the code's version)
    "dataset.md": ("schema_version", dataset.SCHEMA_VERSION),
    "bundle.md": ("schema_version", bundle.SCHEMA_VERSION),
    "messages.md": ("schema", messages.SCHEMA_VERSION),
}

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link targets of a Markdown text that point into the repository (not URLs, not same-page anchors);
    links inside code are not links."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = (m.group(1) for m in _LINK.finditer(text))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_the_link_finder_sees_links_and_skips_code():
    text = "See [a](docs/a.md#x), ![fig](img/b.png), [web](https://x.org), [here](#top).\n`[c](c.md)`\n```\n[d](d.md)\n```\n"
    assert relative_links(text) == ["docs/a.md#x", "img/b.png"]
    assert "docs/contracts/bundle.md" in relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert {"real-faces-does-the-default-bundle-transfer", "selecting-landmarks-edgeemo-select"} <= (
        anchors(DOCS / "data.md") | anchors(DOCS / "method-and-results.md"))


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file(page):
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve()
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files or headings: {broken}"


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", page.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_fits_a_first_read():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"


def test_readme_keeps_the_test_command_where_ci_reads_it():
    # CI runs the second line after the marker (.ci/run).
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    marker = lines.index("<!-- test-command -->")
    assert lines[marker + 1] == "```bash"
    assert lines[marker + 2].endswith(".venv/bin/python -m pytest")


@pytest.mark.parametrize("page", sorted(CONTRACTS))
def test_contract_pages_state_the_version_the_code_has(page):
    key, version = CONTRACTS[page]
    text = (DOCS / "contracts" / page).read_text(encoding="utf-8")
    stated = re.search(r"Current version: `(\w+)` (\d+)", text)
    assert stated, f"docs/contracts/{page}: no 'Current version: `{key}` N' line"
    assert (stated.group(1), int(stated.group(2))) == (key, version)
    history = re.findall(r"^\| (\d+) \|", text.split("## History", 1)[-1], re.M)
    assert history and int(history[-1]) == version, f"docs/contracts/{page}: the History ends at {history[-1:]}"
    # The tables that list the contracts (README, docs index) state the same version.
    for index in (ROOT / "README.md", DOCS / "README.md"):
        rows = [row for row in index.read_text(encoding="utf-8").splitlines() if f"contracts/{page})" in row
                and row.startswith("|")]
        assert rows, f"{index.relative_to(ROOT)}: no table row for contracts/{page}"
        for row in rows:
            assert f"`{key}` {version} |" in row, f"{index.relative_to(ROOT)}: {row}"


def _repository_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")
        return [ROOT / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but the usual caches
        skip = {".git", ".venv", "__pycache__", ".pytest_cache", "node_modules"}
        return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def test_no_file_cites_a_design_document_outside_the_repository():
    # The contracts live in docs/contracts/; the name is split so that this file does not match itself.
    name = "DESIGN" + ".md"
    citing = []
    for path in _repository_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: images, models, archives
        if name in text:
            citing.append(str(path.relative_to(ROOT)))
    assert not citing, f"files that cite {name}: {citing}"
