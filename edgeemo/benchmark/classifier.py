"""Latency of the six emotion models per frame against the number of landmarks K, T-EMO and R-EMO.

Each (K, architecture) gets a bundle built with ``offline.training.model.build_model`` from the paper's per-emotion
hyperparameters (``offline/resources/configs/paper_hyperparameters.toml``; K = 468 takes K = 234's, as training does) and
exported with ``offline.export.onnx_export.export_onnx``, then timed through ``edgeemo.classifier.EmotionClassifier``
as ``edgeemo serve`` runs it: six ONNX Runtime sessions, batch 1, one thread. The weights are untrained:
latency depends on the graph's operations and shapes, not on the weights' values. Where TensorFlow is not
installed (an edge box), the same graphs are built with ``onnx`` itself (edgeemo.benchmark.graphs).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeemo.benchmark import graphs as bench_graphs
from edgeemo.benchmark.timing import Timings, measure
from edgeemo.bundle import load_bundle, write_manifest
from edgeemo.classifier import EmotionClassifier
from edgeemo.commands.common import DEFAULT_FRAMES, import_offline
from edgeemo.emotions import EMOTIONS
from edgeemo.face import N_LANDMARKS
from edgeemo.normalize import NORMALIZATION

KS = (468, 234, 128, 64, 32, 16)
ARCHS = {"t-emo": "T-EMO", "r-emo": "R-EMO"}
FRAME_STRIDE = 1
THRESHOLD = 0.5


def spread_landmarks(k: int) -> list[int]:
    """K distinct landmark indices spread over the mesh (which ones does not change the cost)."""
    return [int(i) for i in np.linspace(0, N_LANDMARKS - 1, k).round()]


def tensorflow_available() -> bool:
    """Whether the models can be built in Keras and exported with tf2onnx here (the offline extra)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("keras", "tf2onnx"))
    except ImportError:  # a finder that refuses the module outright
        return False


def build_bundle(folder: Path, k: int, arch: str, *, quick: bool = False,
                 frames: int = DEFAULT_FRAMES, graphs: str | None = None) -> dict[str, object]:
    """Write an untrained bundle for K landmarks and one architecture into ``folder``; return what was built.

    Full: each emotion's own F, Q, R from the paper. Quick: the tiny quick-mode model of the built-in train.toml (offline/resources/configs),
    one ONNX file that all six emotions load, so the whole grid builds in seconds. ``graphs``: "tf2onnx"
    (Keras models exported as ``edgeemo export`` does), "onnx" (edgeemo.benchmark.graphs), None: tf2onnx
    where TensorFlow is installed."""
    graphs = graphs or ("tf2onnx" if tensorflow_available() else "onnx")
    config = import_offline("offline.training.train_config")
    if graphs == "tf2onnx":
        model_module = import_offline("offline.training.model")
        export = import_offline("offline.export.onnx_export")
        keras = import_offline("keras")
    rng = np.random.default_rng(k)

    settings = config.load_settings(quick=quick)
    table = config.load_hyperparameters()
    landmarks = spread_landmarks(k)
    folder.mkdir(parents=True, exist_ok=True)
    # The standardisation layer a trained bundle has (settings.model.standardize), with neutral statistics.
    standardize = ((np.zeros((2, k), np.float32), np.ones((2, k), np.float32))
                   if settings.model.standardize else None)
    models, hyperparameters, files = {}, {}, {}
    for emotion in EMOTIONS:
        if quick and settings.hyperparameters is not None:
            hyper, source = settings.hyperparameters, "quick"
        else:
            hyper, source_k = config.hyperparameters_for(table, k, emotion)
            source = f"k{source_k}"
        key = tuple(hyper)
        if key not in files:
            name = f"{emotion}.onnx"
            if graphs == "tf2onnx":
                model = model_module.build_model(
                    frames, k, *hyper, arch=arch, kernel=tuple(settings.model.kernel),
                    stride=tuple(settings.model.stride), dropout=settings.model.dropout, seed=0,
                    standardize=standardize,
                )
                export.export_onnx(model, folder / name, frames, k)
                keras.backend.clear_session()  # 72 models in one process: keep Keras' graph state from growing
            else:
                bench_graphs.write_model(folder / name, bench_graphs.random_weights(
                    rng, landmarks, *hyper, kernel=tuple(settings.model.kernel), stride=tuple(settings.model.stride),
                    standardize=settings.model.standardize), frames)
            files[key] = name
        models[emotion] = {"file": files[key], "landmarks": landmarks, "threshold": THRESHOLD,
                           "input_name": "landmarks"}
        hyperparameters[emotion] = {**hyper._asdict(), "from": source}
    write_manifest(folder, {
        "bundle_id": f"bench-{arch}-k{k}{'-quick' if quick else ''}", "emotions": list(EMOTIONS), "frames": frames,
        "frame_stride": FRAME_STRIDE, "normalization": NORMALIZATION, "models": models,
        "architecture": {"name": arch, "kernel": list(settings.model.kernel), "stride": list(settings.model.stride),
                         "standardize": settings.model.standardize},
        "hyperparameters": hyperparameters,
        "training_data": {"untrained": "initial weights, for timing only: latency does not depend on their values"},
    })
    return {"hyperparameters": hyperparameters, "onnx_files": len(files), "graphs": graphs,
            "onnx_bytes": sum((folder / name).stat().st_size for name in files.values())}


def time_classifier(bundle_path: Path, budget_s: float, warmup: int = 20, seed: int = 0) -> Timings:
    """Seconds per call of ``EmotionClassifier.classify`` (all six models) on one window, one thread."""
    bundle = load_bundle(bundle_path)
    classifier = EmotionClassifier(bundle, threads=1)
    rng = np.random.default_rng(seed)
    # Normalised landmarks are face-relative coordinates of order 0.1 to 1.
    window = rng.normal(0.0, 0.3, (bundle.frames, 2, len(bundle.landmarks_union))).astype(np.float32)
    return measure(lambda: classifier.classify(window), budget_s, warmup=warmup)


def build_all(workdir: Path, *, quick: bool,
              progress: Callable[[str], None] = lambda message: None) -> dict[tuple[int, str], dict[str, object]]:
    """Build every (K, architecture) bundle under ``workdir``; what each holds, by (K, architecture)."""
    built = {}
    for k in KS:
        for arch in ARCHS:
            progress(f"build K={k} {ARCHS[arch]}")
            built[(k, arch)] = build_bundle(bundle_path(workdir, k, arch), k, arch, quick=quick)
    return built


def time_all(workdir: Path, built: dict[tuple[int, str], dict[str, object]], budget_s: float,
             progress: Callable[[str], None] = lambda message: None) -> list[dict[str, object]]:
    """One row per (K, architecture): the milliseconds per frame and what the bundle holds."""
    rows = []
    for k in KS:
        for arch in ARCHS:
            progress(f"time K={k} {ARCHS[arch]}")
            times = time_classifier(bundle_path(workdir, k, arch), budget_s)
            rows.append({"k": k, "arch": ARCHS[arch], **times.summary(), **built[(k, arch)]})
    return rows


def bundle_path(workdir: Path, k: int, arch: str) -> Path:
    return workdir / f"{arch}-k{k}"
