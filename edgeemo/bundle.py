"""The model bundle: a folder with ``manifest.json`` and one ONNX file per emotion.

The contract (every manifest field, the ONNX shapes, the version rule) is docs/contracts/bundle.md;
keep it in step with this module. Written by ``edgeemo export`` (offline), read here by the runtime,
which never needs TensorFlow. The loader refuses a bundle whose manifest, files or shapes disagree, with
one line saying which; it refuses a newer ``schema_version`` (SCHEMA_VERSION) and ignores fields it does
not know.

manifest.json fields the loader reads: schema_version, bundle_id, emotions (exactly EMOTIONS), frames (P),
frame_stride, normalization (must be edgeemo.normalize.NORMALIZATION) and
models: {emotion: {file, sha256, landmarks: [int, 0..467], threshold: (0, 1), input_name}}.
Optional (docs/streaming.md; added without a schema bump, see docs/contracts/bundle.md): frame_interval_s,
window_s, streaming {encoder, head, encoding_width, ...}. Schema 2 (docs/calibration.md): representation
"rest-relative/v1" with rest_estimator {settings} and uncalibrated (a sub-folder holding the absolute bundle
served until a face's rest is known).
Each ONNX model takes float32 [batch, frames, 2, K, 1], the x and y of its own K landmarks in the order the
manifest lists them, and returns [batch, 2]: the probabilities of "not this emotion" and "this emotion".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeemo.calibration import ABSOLUTE, REPRESENTATIONS, REST_RELATIVE, RestSettings
from edgeemo.emotions import EMOTIONS
from edgeemo.errors import EdgeemoError
from edgeemo.face import N_LANDMARKS
from edgeemo.io import atomic_write_json
from edgeemo.normalize import NORMALIZATION

SCHEMA_VERSION = 2  # 2: models may read faces relative to the person's rest (representation)
MANIFEST = "manifest.json"
UNCALIBRATED_FOLDER = "uncalibrated"  # where a calibrated bundle written by export keeps its absolute fallback
DEFAULT_FRAME_INTERVAL_S = 1 / 30  # what a bundle without frame_interval_s was trained for (30 fps data)


@dataclass(frozen=True)
class EmotionModel:
    emotion: str
    path: Path
    landmarks: np.ndarray  # int64 [K]: indices into the 468, in the order the model reads them
    threshold: float
    input_name: str


@dataclass(frozen=True)
class StreamingPair:
    """The fused per-frame encoder and six-emotion head (edgeemo.streaming_graphs)."""

    encoder: Path
    head: Path
    encoding_width: int


@dataclass(frozen=True)
class ModelBundle:
    path: Path
    bundle_id: str
    frames: int
    frame_stride: int
    normalization: str
    models: tuple[EmotionModel, ...]  # in EMOTIONS order
    manifest: dict
    frame_interval_s: float = DEFAULT_FRAME_INTERVAL_S
    streaming: StreamingPair | None = None
    representation: str = ABSOLUTE  # what the models read (edgeemo.calibration)
    rest_settings: RestSettings | None = None  # the rest estimator's, with a rest-relative representation
    uncalibrated: "ModelBundle | None" = None  # served while a face's rest is unknown (rest-relative only)

    @property
    def calibrated(self) -> bool:
        """Whether the models read each face relative to its own rest."""
        return self.representation == REST_RELATIVE

    def has_window(self, frames: int, frame_stride: int, frame_interval_s: float) -> bool:
        """Whether this bundle's windows are ``frames`` frames, every ``frame_stride``-th, at that interval."""
        return (self.frames, self.frame_stride) == (frames, frame_stride) and \
            abs(self.frame_interval_s - frame_interval_s) <= 1e-9

    @property
    def window_step_s(self) -> float:
        """Seconds between two frames of a window."""
        return self.frame_stride * self.frame_interval_s

    @property
    def window_s(self) -> float:
        """Seconds from a window's first frame to its last."""
        return (self.frames - 1) * self.window_step_s

    @property
    def landmarks_union(self) -> np.ndarray:
        """Sorted indices of every landmark some model reads: all the landmarker has to hand on."""
        return np.unique(np.concatenate([m.landmarks for m in self.models]))

    @property
    def thresholds(self) -> np.ndarray:
        return np.array([m.threshold for m in self.models], dtype=np.float32)

    def summary(self) -> str:
        lines = [
            f"bundle {self.bundle_id} at {self.path}",
            f"  window: {self.frames} frames, stride {self.frame_stride}, {self.window_s:.3f} s at "
            f"{1 / self.frame_interval_s:g} fps; normalisation {self.normalization}",
            f"  runtime: {'fused streaming pair' if self.streaming else 'one model per emotion'}",
            f"  representation: {self.representation}"
            + (f" (until a face's rest is known: {self.uncalibrated.bundle_id})" if self.uncalibrated else ""),
            f"  landmarks read: {len(self.landmarks_union)} of {N_LANDMARKS}",
        ]
        accuracy = self.manifest.get("accuracy", {})
        for m in self.models:
            lines.append(f"  {m.emotion:<10} K={len(m.landmarks):<4} threshold {m.threshold:.3f}"
                         f"{_accuracy_text(accuracy.get(m.emotion))}")
        arch = self.manifest.get("architecture")
        if arch:
            lines.append(f"  architecture: {json.dumps(arch, sort_keys=True)}")
        data = self.manifest.get("training_data")
        if data:
            lines.append(f"  trained on: {json.dumps(data, sort_keys=True)}")
        return "\n".join(lines)


def _accuracy_text(metrics: object) -> str:
    """', test accuracy 0.95, balanced 0.93, AUC 0.98 (streaming)' from an export's per-protocol metrics."""
    if not isinstance(metrics, dict):
        return ""
    protocol = "streaming" if "streaming" in metrics else next(iter(metrics), None)
    values = metrics.get(protocol) if protocol else None
    if not isinstance(values, dict):
        return ""
    parts = [f"{name} {values[key]:.3f}" for key, name in
             (("accuracy", "accuracy"), ("balanced_accuracy", "balanced"), ("roc_auc", "AUC"))
             if isinstance(values.get(key), (int, float))]
    return f", test {', '.join(parts)} ({protocol})" if parts else ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: dict) -> None:
    """Fill in the schema version and every model file's SHA-256, then write manifest.json atomically.

    The version is the lowest that reads the bundle right: 1 for absolute models (older runtimes serve them),
    2 once the models read faces relative to a rest (a version-1 reader would feed them absolute faces)."""
    absolute = manifest.get("representation", ABSOLUTE) == ABSOLUTE
    manifest = dict(manifest, schema_version=1 if absolute else SCHEMA_VERSION)
    for emotion, entry in manifest["models"].items():
        entry["sha256"] = sha256_file(folder / entry["file"])
    for part in ("encoder", "head"):
        if part in manifest.get("streaming", {}):
            manifest["streaming"][part]["sha256"] = sha256_file(folder / manifest["streaming"][part]["file"])
    atomic_write_json(folder / MANIFEST, manifest)


def _field(manifest: dict, key: str, kind: type, where: str):
    if key not in manifest:
        raise EdgeemoError(f"{where}: field {key} is missing")
    value = manifest[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EdgeemoError(f"{where}: field {key} should be {kind.__name__}, got {value!r}")
    return value


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise EdgeemoError(f"{folder}: no such model bundle folder")
    if not path.is_file():
        raise EdgeemoError(f"{path}: missing (not a model bundle)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgeemoError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise EdgeemoError(f"{path}: should hold a JSON object")
    return manifest


def _emotion_model(folder: Path, emotion: str, entry: object, where: str) -> EmotionModel:
    where = f"{where}: models.{emotion}"
    file = _checked_file(folder, entry, where)
    landmarks = _field(entry, "landmarks", list, where)
    if not landmarks or not all(isinstance(i, int) and not isinstance(i, bool) for i in landmarks):
        raise EdgeemoError(f"{where}.landmarks should be a non-empty list of landmark indices")
    bad = [i for i in landmarks if not 0 <= i < N_LANDMARKS]
    if bad:
        raise EdgeemoError(f"{where}.landmarks holds {bad[0]}, outside 0..{N_LANDMARKS - 1}")
    if len(set(landmarks)) != len(landmarks):
        raise EdgeemoError(f"{where}.landmarks lists a landmark twice")
    threshold = _field(entry, "threshold", float, where)
    if not 0.0 < threshold < 1.0:
        raise EdgeemoError(f"{where}.threshold is {threshold}, expected strictly between 0 and 1")
    return EmotionModel(emotion, file, np.asarray(landmarks, dtype=np.int64), threshold,
                        _field(entry, "input_name", str, where))


def _checked_file(folder: Path, entry: object, where: str) -> Path:
    if not isinstance(entry, dict):
        raise EdgeemoError(f"{where} should be an object")
    file = folder / _field(entry, "file", str, where)
    if not file.is_file():
        raise EdgeemoError(f"{file}: missing from the bundle")
    if sha256_file(file) != _field(entry, "sha256", str, where):
        raise EdgeemoError(f"{file}: SHA-256 differs from the manifest (the file changed after export)")
    return file


def _frame_interval(manifest: dict, frames: int, stride: int, where: str) -> float:
    if "frame_interval_s" not in manifest:
        return DEFAULT_FRAME_INTERVAL_S
    interval = _field(manifest, "frame_interval_s", float, where)
    if not 0.0 < interval <= 10.0:
        raise EdgeemoError(f"{where}: frame_interval_s is {interval}, expected seconds in (0, 10]")
    if "window_s" in manifest:
        window = _field(manifest, "window_s", float, where)
        if abs(window - (frames - 1) * stride * interval) > 1e-6:
            raise EdgeemoError(f"{where}: window_s {window} is not (frames - 1) * frame_stride * frame_interval_s = "
                               f"{(frames - 1) * stride * interval:g}")
    return interval


def _streaming_pair(folder: Path, manifest: dict, where: str) -> StreamingPair | None:
    if "streaming" not in manifest:
        return None
    entry = _field(manifest, "streaming", dict, where)
    where = f"{where}: streaming"
    width = _field(entry, "encoding_width", int, where)
    if width < 1:
        raise EdgeemoError(f"{where}.encoding_width is {width}, expected a positive integer")
    return StreamingPair(_checked_file(folder, entry.get("encoder"), f"{where}.encoder"),
                         _checked_file(folder, entry.get("head"), f"{where}.head"), width)


def _calibration(folder: Path, manifest: dict, bundle: ModelBundle, where: str) -> dict:
    """The representation fields (schema 2): what the models read, the estimator, the uncalibrated bundle."""
    representation = manifest.get("representation", ABSOLUTE)
    if representation not in REPRESENTATIONS:
        raise EdgeemoError(f"{where}: field representation is {representation!r}, expected one of "
                           f"{', '.join(REPRESENTATIONS)}")
    if representation == ABSOLUTE:
        return {}
    settings = RestSettings.from_dict(_field(manifest, "rest_estimator", dict, where), f"{where}: rest_estimator")
    uncalibrated = load_bundle(folder / _field(manifest, "uncalibrated", str, where))
    if uncalibrated.calibrated:
        raise EdgeemoError(f"{where}: field uncalibrated names a calibrated bundle; it must read absolute faces")
    if not uncalibrated.has_window(bundle.frames, bundle.frame_stride, bundle.frame_interval_s):
        raise EdgeemoError(f"{where}: the uncalibrated bundle's window differs from this one's")
    return {"representation": representation, "rest_settings": settings, "uncalibrated": uncalibrated}


def load_bundle(path: str | Path) -> ModelBundle:
    """Read and check a bundle: manifest fields, file hashes, landmark indices, thresholds, ONNX shapes."""
    folder = Path(path)
    manifest = _read_manifest(folder)
    where = str(folder / MANIFEST)
    version = _field(manifest, "schema_version", int, where)
    if version > SCHEMA_VERSION:
        raise EdgeemoError(
            f"{where}: schema_version {version} is newer than this edgeemo reads ({SCHEMA_VERSION}): upgrade edgeemo"
        )
    if version < 1:
        raise EdgeemoError(f"{where}: schema_version {version} is not a valid version")
    emotions = _field(manifest, "emotions", list, where)
    if tuple(emotions) != EMOTIONS:
        raise EdgeemoError(f"{where}: field emotions is {emotions}, expected {list(EMOTIONS)} in that order")
    frames = _field(manifest, "frames", int, where)
    stride = _field(manifest, "frame_stride", int, where)
    if frames < 1 or stride < 1:
        raise EdgeemoError(f"{where}: frames and frame_stride must be positive, got {frames} and {stride}")
    normalization = _field(manifest, "normalization", str, where)
    if normalization != NORMALIZATION:
        raise EdgeemoError(
            f"{where}: models expect normalisation {normalization!r}, this edgeemo computes {NORMALIZATION!r}"
        )
    models = _field(manifest, "models", dict, where)
    missing = [e for e in EMOTIONS if e not in models]
    if missing:
        raise EdgeemoError(f"{where}: field models lacks {', '.join(missing)}")
    bundle = ModelBundle(
        path=folder, bundle_id=_field(manifest, "bundle_id", str, where), frames=frames, frame_stride=stride,
        normalization=normalization, models=tuple(_emotion_model(folder, e, models[e], where) for e in EMOTIONS),
        manifest=manifest, frame_interval_s=_frame_interval(manifest, frames, stride, where),
        streaming=_streaming_pair(folder, manifest, where),
    )
    calibration = _calibration(folder, manifest, bundle, where)
    if calibration:
        if version < 2:
            raise EdgeemoError(f"{where}: representation needs schema_version 2, the manifest says {version}")
        bundle = dataclasses.replace(bundle, **calibration)
    for model in bundle.models:
        check_onnx_shapes(model, frames)
    if bundle.streaming is not None:
        check_streaming_shapes(bundle)
    return bundle


def _session(path: Path):
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own exception types for unreadable models
        raise EdgeemoError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


def check_streaming_shapes(bundle: ModelBundle) -> None:
    """The pair must be encoder [N, U, 2] -> [N, E] and head [B, P, E] -> [B, 6], E the manifest's width."""
    pair, union = bundle.streaming, len(bundle.landmarks_union)
    for path, expected_in, expected_out in (
        (pair.encoder, [union, 2], [pair.encoding_width]),
        (pair.head, [bundle.frames, pair.encoding_width], [len(EMOTIONS)]),
    ):
        session = _session(path)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape[1:]) != expected_in or len(outputs) != 1 \
                or list(outputs[0].shape[1:]) != expected_out:
            raise EdgeemoError(
                f"{path}: shapes {[i.shape for i in inputs]} -> {[o.shape for o in outputs]} disagree with the "
                f"manifest ([n, {', '.join(map(str, expected_in))}] -> [n, {', '.join(map(str, expected_out))}])")


def check_onnx_shapes(model: EmotionModel, frames: int) -> None:
    """The ONNX file's input and output shapes must be what the manifest promises."""
    session = _session(model.path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    expected = [frames, 2, len(model.landmarks), 1]
    if len(inputs) != 1 or inputs[0].name != model.input_name or list(inputs[0].shape[1:]) != expected:
        got = [(i.name, i.shape) for i in inputs]
        raise EdgeemoError(
            f"{model.path}: input {got} disagrees with the manifest ({model.input_name!r}, [batch, {frames}, 2, "
            f"{len(model.landmarks)}, 1] for {frames} frames and {len(model.landmarks)} landmarks)"
        )
    if len(outputs) != 1 or outputs[0].shape[-1] != 2:
        raise EdgeemoError(f"{model.path}: output {[o.shape for o in outputs]} should be [batch, 2]")
