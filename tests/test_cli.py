"""The ``edgeemo`` command line: info, flag errors."""

import subprocess
import sys

import pytest

from edgeemo.cli import main


def test_info_names_versions_and_the_model_bundle(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("edgeemo", "mediapipe", "onnxruntime", "numba", "tensorflow", "onnxruntime providers"):
        assert name in out
    assert "CPUExecutionProvider" in out
    assert "default model bundle" in out


def test_console_script_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "edgeemo", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("edgeemo ")


def test_bad_flag_value_names_the_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "synth", "--sequences", "zero"])
    assert exit_info.value.code == 2
    assert "--sequences" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--frame-queue", "--process-every", "--every"])
def test_a_serve_count_below_one_is_one_line_naming_the_flag(capsys, flag):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--camera", "demo", flag, "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and flag in err and len(err.strip().splitlines()[-1]) < 200
