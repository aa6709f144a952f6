"""The checkout is the whole project: no code, config or script reaches outside it (no sibling folder, no
developer's home), and the real test data it needs is in it, with its attribution."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LONDON_DEV = REPO / "offline" / "resources" / "london-dev"

# Code, configs and scripts: what could read a file. Documentation may describe such paths.
CODE_SUFFIXES = {".py", ".toml", ".sh", ".cfg", ".ini", ".yaml", ".yml", ".service"}
CODE_FOLDERS = {".ci"}  # scripts without a suffix
NOT_SCANNED = {"tests/test_self_contained.py"}  # this file spells the patterns out

# Each pattern: a way to name a path outside the checkout.
OUTSIDE = {
    "a path up from the current folder": re.compile(r"\.\./"),
    "a folder named shared": re.compile(r"(?<![\w-])shared/"),
    "a developer machine's path": re.compile(r"/(?:work|home|Users)/|~/|expanduser\("),
    "a folder above the repository root": re.compile(r"\b\w*(?:REPO|ROOT)\w*\.parents?\b"),
    "a path taken from an environment variable": re.compile(
        r"(?:environ\.get\(|getenv\(|environ\[)\s*[\"'](?!PATH_INFO[\"'])\w*(?:DIR|PATH|ROOT|HOME|DATA)\w*[\"']"),
}
# Path(__file__)[.resolve()].parents[N] or .parent.parent...: checked against the file's own depth.
FILE_PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?(?:\.parents\[(\d+)\]|((?:\.parent\b)+))")


def tracked_files() -> list[Path]:
    """The files git tracks (what a clone has); outside a git checkout, every file but tool output."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        return [Path(name) for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", "__pycache__", ".pytest_cache", "build", "dist"}
        return [p.relative_to(REPO) for p in REPO.rglob("*")
                if p.is_file() and not any(part in skip or part.startswith(".venv") for part in p.parts)]


def is_code(path: Path) -> bool:
    return (path.suffix in CODE_SUFFIXES or (path.name.startswith("Containerfile") and path.suffix == "")
            or path.parts[0] in CODE_FOLDERS)


def outside_references(relative: Path, text: str) -> list[str]:
    """Each line of ``text`` (the file ``relative`` to the root) that names a path outside the checkout."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in OUTSIDE.items():
            if pattern.search(line):
                found.append(f"{relative}:{number}: {what}: {line.strip()}")
        for match in FILE_PARENTS.finditer(line):
            up = int(match[1]) + 1 if match[1] is not None else match[2].count(".parent")
            if up > len(relative.parts):  # from tests/x.py one folder up is tests/, two is the root
                found.append(f"{relative}:{number}: {up} folders up from the file leaves the checkout: {line.strip()}")
    return found


def test_no_code_config_or_script_refers_outside_the_checkout():
    files = [p for p in tracked_files() if is_code(p) and str(p) not in NOT_SCANNED and (REPO / p).is_file()]
    assert len(files) > 50  # the scan saw the project (a wrong root would pass on nothing)
    found = [line for p in files for line in outside_references(p, (REPO / p).read_text(encoding="utf-8"))]
    assert found == []


# The samples name the folder through BESIDE, so that this file does not itself spell a way out.
BESIDE = "sha" + "red"


@pytest.mark.parametrize("line", [
    f'LONDON = Path("../{BESIDE}/london-dev")',
    f'data = REPO.parent / "{BESIDE}" / "faces"',
    'root = Path(__file__).resolve().parents[2]',  # from tests/x.py: the folder above the repository
    'root = Path(__file__).parent.parent.parent',
    'cache = os.environ.get("EDGEEMO_DATA_DIR")',
    'faces = Path("/work/shared/london")',
    'python -m pytest --basetemp ~/tmp',
])
def test_the_scan_catches_each_way_out(line):
    assert outside_references(Path("tests/x.py"), line)


def test_the_scan_lets_paths_inside_the_checkout_pass():
    inside = ['REPO = Path(__file__).resolve().parents[1]', 'here = Path(__file__).parent / "resources"',
              'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")', 'shared = ray.put(dataset)']
    assert [line for text in inside for line in outside_references(Path("tests/x.py"), text)] == []


def test_the_london_dev_faces_are_in_the_checkout_with_their_attribution_and_licence():
    images = sorted(p.name for p in (LONDON_DEV / "images").glob("*.jpg"))
    ids = sorted({name.split("_")[0] for name in images})
    assert len(ids) == 50
    assert images == sorted(f"{i}_{e}.jpg" for i in ids for e in ("neutral", "smiling"))
    with np.load(LONDON_DEV / "landmarks.npz") as data:
        assert data["landmarks"].shape == (100, 468, 3)
        assert sorted(f"{i}_{e}.jpg" for i, e in zip(data["face_id"], data["expression"])) == images
    readme = (LONDON_DEV / "README.md").read_text(encoding="utf-8")
    licence = (LONDON_DEV / "LICENSE.md").read_text(encoding="utf-8")
    for text in (readme, licence):  # CC BY 4.0 asks for the credit and the licence wherever the data goes
        assert "DeBruine" in text and "10.6084/m9.figshare.5047666" in text and "CC BY 4.0" in text
    assert "creativecommons.org/licenses/by/4.0" in licence
    tracked = {str(p) for p in tracked_files()}
    assert {f"offline/resources/london-dev/{name}" for name in (
        "README.md", "LICENSE.md", "landmarks.npz", "images/001_neutral.jpg")} <= tracked
