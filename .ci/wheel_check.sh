#!/usr/bin/env bash
# The wheel alone is enough: build it from the checkout's files, check what it carries, install it with
# [cpu,offline] into a fresh venv, and from a folder outside any checkout run the workstation pipeline
# small: data synth -> train --quick -> explain -> select -> bench --quick. Each must exit 0.
#
#   .ci/wheel_check.sh            (about 5 minutes on 2 cores once pip's cache has TensorFlow)
#
# PYTHON picks the interpreter (default python3); KEEP=1 keeps the work folder for a look afterwards.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/edgeemo-wheel.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "work folder: $work"; else trap 'rm -rf "$work"' EXIT; fi

step() {  # step NAME COMMAND...: run it, say how long it took; set -e stops at the first failure
  local name=$1 start=$SECONDS
  shift
  echo "--- wheel check: $name"
  "$@"
  echo "--- wheel check: $name: ok, $((SECONDS - start)) s"
}

copy_tracked_files() {
  # Only what git tracks (plus new files not ignored): no build/, .venv or stale egg-info from this checkout
  # can slip into the wheel, and uncommitted edits are checked too.
  mkdir -p "$work/src"
  git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$repo/$f" ] && printf '%s\0' "$f"; done \
    | tar -C "$repo" --null -T - -cf - | tar -C "$work/src" -xf -
}

build_wheel() {
  "$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src"
  ls "$work"/dist/edgeemo-*.whl
}

check_wheel_contents() {
  "$python" - "$work"/dist/edgeemo-*.whl <<'EOF'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
# What the commands read at run time: the default bundle, the demo clip, the face template, the built-in
# settings, the London dev landmarks (for synthetic identities) with their CC BY 4.0 attribution.
needed = [
    "edgeemo/models/default/manifest.json", "edgeemo/models/default/happiness.onnx",
    "edgeemo/resources/demo/smile.mp4", "edgeemo/resources/demo/ATTRIBUTION.md", "edgeemo/resources/face_template.npz",
    "offline/resources/configs/train.toml", "offline/resources/configs/paper_hyperparameters.toml",
    "offline/resources/configs/default_bundle.toml", "offline/resources/configs/default_bundle_hyperparameters.toml",
    "offline/resources/london-dev/landmarks.npz", "offline/resources/london-dev/LICENSE.md",
    "offline/resources/london-dev/README.md",
]
missing = [n for n in needed if n not in names]
# The London dev photos stay in the repository (tests, benchmarks); tests and benches are not the package.
unwanted = sorted(n for n in names if n.startswith(("offline/resources/london-dev/images/", "tests/", "bench/")))
if missing or unwanted:
    sys.exit(f"wheel: missing {missing}, should not carry {unwanted[:5]}")
print(f"wheel: {len(names)} files; all {len(needed)} run-time data files in it, no London dev photos")
EOF
}

install_wheel() {
  "$python" -m venv "$work/venv"
  local wheel
  wheel=$(ls "$work"/dist/edgeemo-*.whl)
  "$work/venv/bin/pip" install --quiet "$wheel[cpu,offline]"
}

edgeemo() {  # the installed command, from outside the checkout, with nothing of the checkout on the path
  (cd "$work/outside" && env -u PYTHONPATH "$work/venv/bin/edgeemo" "$@")
}

imports_from_the_venv() {
  mkdir -p "$work/outside"
  (cd "$work/outside" && env -u PYTHONPATH "$work/venv/bin/python" - "$work/venv" <<'EOF'
import sys
from pathlib import Path

import edgeemo
import offline

for module in (edgeemo, offline):
    where = Path(module.__file__).resolve()
    if not where.is_relative_to(Path(sys.argv[1]).resolve()):
        sys.exit(f"{module.__name__} imported from {where}, not from the installed wheel")
    print(f"{module.__name__}: {where.parent}")
EOF
  )
}

step "copy the tracked files" copy_tracked_files
step "build the wheel" build_wheel
step "check the wheel's files" check_wheel_contents
step "install it with [cpu,offline] in a fresh venv" install_wheel
step "import it from outside the checkout" imports_from_the_venv
step "edgeemo info" edgeemo info
step "edgeemo data synth (small)" edgeemo data synth --out data/synth.npz --sequences 200 --subjects 40
step "edgeemo train --quick" edgeemo train --data data/synth.npz --out runs/quick --quick
step "edgeemo explain (T-EMO, 16 steps)" edgeemo explain runs/quick --data data/synth.npz --arch t-emo --steps 16
step "edgeemo select (K = 32, T-EMO, 2 emotions)" \
  edgeemo select runs/quick --data data/synth.npz --quick --k 32 --arch t-emo --emotions happiness,surprise \
    --latency-budget 0.2
step "edgeemo bench --quick" edgeemo bench --quick --out bench-results
echo "wheel check passed in $SECONDS s"
