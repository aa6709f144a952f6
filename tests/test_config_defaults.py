"""The built-in settings are package data (an installed wheel has them), and a user's file replaces them.

Needs no TensorFlow: the settings are read, and bad files refused, before any training code loads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import offline
from edgeemo.cli import main
from offline.training.train_config import CONFIGS, PAPER_HYPERPARAMETERS, TRAIN_CONFIG, load_hyperparameters, load_settings


def test_the_defaults_live_inside_the_offline_package():
    package = Path(offline.__file__).resolve().parent
    assert CONFIGS.resolve() == package / "resources" / "configs"
    assert sorted(p.name for p in CONFIGS.glob("*.toml")) == [
        "default_bundle.toml", "default_bundle_hyperparameters.toml", "paper_hyperparameters.toml", "train.toml"]
    assert TRAIN_CONFIG.parent == CONFIGS and PAPER_HYPERPARAMETERS.parent == CONFIGS


def test_every_built_in_settings_file_loads():
    assert load_settings().train.seeds == 10  # the paper's protocol
    assert load_settings(quick=True).hyperparameters is not None  # quick mode's tiny models
    assert load_settings(CONFIGS / "default_bundle.toml").train.seeds == 1
    paper = load_hyperparameters()
    assert sorted(paper) == [16, 32, 64, 128, 234]  # the paper's Tables 1-5
    assert all(len(rows) == 6 for rows in paper.values())
    assert 64 in load_hyperparameters(CONFIGS / "default_bundle_hyperparameters.toml")


@pytest.mark.parametrize("verb, flag", [("train", "--config"), ("train", "--hyperparameters"), ("select", "--config")])
def test_a_missing_user_file_is_one_line_naming_its_flag(tmp_path, capsys, verb, flag):
    missing = tmp_path / "mine.toml"
    run_args = ["--out", str(tmp_path / "run")] if verb == "train" else [str(tmp_path / "run")]
    assert main([verb, *run_args, "--data", str(tmp_path / "data.npz"), flag, str(missing)]) == 2
    assert capsys.readouterr().err == f"edgeemo: error: {flag} {missing}: no such file\n"
    assert not (tmp_path / "run").exists()


def test_a_user_settings_file_replaces_the_defaults(tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text(TRAIN_CONFIG.read_text(encoding="utf-8").replace("learning_rate = 1e-4", "learning_rate = -1"))
    argv = ["train", "--data", str(tmp_path / "data.npz"), "--out", str(tmp_path / "run"), "--config", str(mine)]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"edgeemo: error: {mine}: train learning_rate must be positive\n"
