"""``edgeemo data synth --out FILE``: the built-in synthetic dataset written with its ground truth beside it
(``<stem>.truth.json``); see offline.synth for how it is made."""

from __future__ import annotations

from pathlib import Path

from edgeemo.calibration import ABSOLUTE
from edgeemo.io import atomic_write_json
from offline.data.dataset import LandmarkDataset
from offline.synth.calibration import ict_smile_report, real_smile_transfer_report, smile_calibration_report
from offline.synth.generate import GENERATOR, generate
from offline.synth.plan import WINDOW_KINDS, Settings
from offline.synth.truth import ground_truth


def truth_path(out: Path) -> Path:
    """``data/synth.npz`` -> ``data/synth.truth.json``."""
    out = Path(out)
    return out.with_name((out.stem if out.suffix == ".npz" else out.name) + ".truth.json")


def synthesize(
    out: Path, sequences: int = 574, subjects: int = 120, test_fraction: float = 87 / 574, frames: int = 16,
    windows: tuple[str, ...] = WINDOW_KINDS, seed: int = 0, action_units: str = "hand",
    representation: str = ABSOLUTE,
) -> LandmarkDataset:
    """Make the synthetic dataset, write it to ``out`` and its ground truth beside it, print its summary.

    ``action_units``: where the units come from (offline.synth.unit_sources; ``hand`` is the default data).
    ``representation``: ``absolute`` faces, or ``rest-relative/v1`` (each relative to the rest the runtime's
    estimator finds on a lead-in; offline.synth.generate). The truth file's reports stay on absolute faces.
    """
    settings = Settings(sequences, subjects, test_fraction, frames, tuple(windows), seed, action_units, representation)
    dataset = generate(settings)
    truth = {
        "generator": GENERATOR, "dataset": Path(out).name, "settings": settings.as_meta(),
        **ground_truth(action_units), "smile_calibration": smile_calibration_report(),
        "real_smile_transfer": real_smile_transfer_report(action_units=action_units),
    }
    if action_units == "ict":
        truth["ict_smile_calibration"] = ict_smile_report()
    dataset.meta["truth"] = truth_path(out).name
    dataset.save(out)
    atomic_write_json(truth_path(out), truth)
    print(dataset.summary())
    return dataset
