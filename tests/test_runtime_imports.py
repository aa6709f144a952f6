"""The runtime package imports neither TensorFlow nor the offline package (edge devices have neither)."""

import subprocess
import sys

# Every runtime module is imported, and the whole CLI parser built, in a fresh interpreter.
_PROBE = """
import importlib, pkgutil, sys
import edgeemo
for module in pkgutil.walk_packages(edgeemo.__path__, "edgeemo."):
    if module.name != "edgeemo.__main__":
        importlib.import_module(module.name)
from edgeemo.cli import build_parser
build_parser().parse_args(["info"])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras", "offline", "mediapipe", "tf2onnx"})
print(",".join(heavy))
"""


def test_importing_the_runtime_loads_no_tensorflow_offline_or_mediapipe():
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"runtime imported: {result.stdout.strip()}"


_WITHOUT_OFFLINE_EXTRA = """
import sys
class Missing:  # as on a device installed without edgeemo[offline]: these packages are not there
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "scipy", "sklearn", "matplotlib", "tf2onnx", "ray"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from edgeemo.commands.common import import_offline
from edgeemo.errors import EdgeemoError
try:
    import_offline("offline.data.face_template")
except EdgeemoError as exc:
    print(exc)
"""


def test_offline_code_without_the_offline_extra_says_which_extra_to_install():
    result = subprocess.run([sys.executable, "-c", _WITHOUT_OFFLINE_EXTRA], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == (
        "'offline.data.face_template' needs the offline tools (scipy is not installed): pip install 'edgeemo[offline]'"
    )
