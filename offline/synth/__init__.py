"""The built-in synthetic landmark dataset: ``edgeemo data synth --out FILE``.

CK+-like neutral-to-apex sequences plus live-camera windows (apex held, offset to neutral, neutral), on
people made from real faces (London dev: DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666, CC BY 4.0),
moved by FACS action units, filmed by a virtual camera and normalised like real frames. Beside the dataset
goes ``<stem>.truth.json``: each emotion's units and the landmarks they move, how close the synthetic smile is
to real smiles, and how a classifier trained on the synthetic data scores real sequences.

Modules, one job each: mesh (landmark groups, distances on the mesh), faces (the real faces, the face frame),
fields (displacement fields from controls), smile_fit (AU6/AU12 fitted to real smiles), action_units,
expressions (emotions as units), identities, timeline, render (camera and tracker), plan (who shows what),
generate (windows to dataset), truth, calibration (closeness to real faces).
"""

from __future__ import annotations

from pathlib import Path

from edgeemo.io import atomic_write_json
from offline.dataset import LandmarkDataset
from offline.synth.calibration import real_smile_transfer_report, smile_calibration_report
from offline.synth.generate import GENERATOR, generate
from offline.synth.plan import WINDOW_KINDS, Settings
from offline.synth.truth import ground_truth

__all__ = ["synthesize", "truth_path", "Settings", "generate", "ground_truth", "smile_calibration_report",
           "real_smile_transfer_report"]


def truth_path(out: Path) -> Path:
    """``data/synth.npz`` -> ``data/synth.truth.json``."""
    out = Path(out)
    return out.with_name((out.stem if out.suffix == ".npz" else out.name) + ".truth.json")


def synthesize(
    out: Path, sequences: int = 574, subjects: int = 120, test_fraction: float = 87 / 574, frames: int = 16,
    windows: tuple[str, ...] = WINDOW_KINDS, seed: int = 0,
) -> LandmarkDataset:
    """Make the synthetic dataset, write it to ``out`` and its ground truth beside it, print its summary."""
    settings = Settings(sequences, subjects, test_fraction, frames, tuple(windows), seed)
    dataset = generate(settings)
    truth = {
        "generator": GENERATOR, "dataset": Path(out).name, "settings": settings.as_meta(), **ground_truth(),
        "smile_calibration": smile_calibration_report(), "real_smile_transfer": real_smile_transfer_report(),
    }
    dataset.meta["truth"] = truth_path(out).name
    dataset.save(out)
    atomic_write_json(truth_path(out), truth)
    print(dataset.summary())
    return dataset
